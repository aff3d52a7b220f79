//! When the GPU family's narrow products take shaders/linear_split_subgroup.wgsl instead of
//! linear_tiled.wgsl's split reduction: the reduction cut among a workgroup's lanes and added with
//! subgroup operations, one launch instead of a product into partial sums and a `_sum` launch.
use super::linear_tiled::TiledPlan;
use crate::gpu::Launcher;
use crate::shaders::linear_split_subgroup::BLOCK;
use crate::shaders::linear_tiled::TILE;

/// The longest reduction the split kernel takes: it reuses each operand over a 4 x 4 block only
/// (and the weight gradient reads both across rows), so long ones go to the tiled kernel's
/// workgroup-memory tiles and slices.
const MAX_DEPTH: usize = 4096;

/// The split kernel's grid for a product of `rows` x `cols` outputs that the tiled kernel would
/// launch as `plan`, where it takes the product: the adapter has subgroups, the tiled plan cuts
/// the reduction into slices (its tiles alone would leave the GPU idle), one side of the output
/// fits in one tile (so few tiles: the latent layers), the reduction is at most MAX_DEPTH, and
/// the grid fits the adapter.
pub fn grid(l: Launcher, plan: &TiledPlan, rows: usize, cols: usize) -> Option<[u32; 3]> {
    let depth = plan.slices * plan.slice_len; // (rounded up to whole slices)
    let block = BLOCK as usize;
    let grid = [cols.div_ceil(block), rows.div_ceil(block)];
    let fits = grid.iter().all(|&g| g <= l.gpu.device.limits().max_compute_workgroups_per_dimension as usize);
    let narrow = rows.min(cols) <= TILE as usize;
    let wanted = l.kernels.subgroups && plan.slices > 1 && narrow && depth <= MAX_DEPTH && fits;
    wanted.then_some([grid[0] as u32, grid[1] as u32, 1])
}

// linear_tiled.rs builds the bind groups of both modules alike.
const _: () = {
    use crate::shaders::{linear_split_subgroup as split, linear_tiled as tiled};
    assert!(
        split::DIMS == tiled::DIMS
            && split::LHS == tiled::LHS
            && split::RHS == tiled::RHS
            && split::AUX == tiled::AUX
            && split::OUT == tiled::OUT
            && split::BIAS_OUT == tiled::BIAS_OUT,
        "linear_split_subgroup.wgsl and linear_tiled.wgsl must share bindings"
    );
};
