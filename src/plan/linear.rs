//! The linear layer's kernels and their dispatch shapes: the CPU family's variants (linear.wgsl,
//! linear_vec4(_subgroup).wgsl, linear_rows(_subgroup).wgsl), the GPU family's tiles
//! (linear_tiled.wgsl, its reduction cut into slices where the output alone is too few tiles) and
//! the narrow products' subgroup split (linear_split_subgroup.wgsl). KernelPlan::linear chooses.
use crate::shaders::{self, Entry};
use shaders::linear::{COLS_PER_LANE, TILE_ROWS, WG};
use shaders::linear_tiled::{BK, TILE};

/// The three products of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearOp {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The CPU family's kernels for a linear layer; each owns its entry points and its dispatch shape.
/// A new one is its WGSL file, a variant here with its match arms, and its rule in `choose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearVariant {
    /// linear.wgsl: register tiles with scalar loads, any widths.
    Scalar,
    /// linear.wgsl's _narrow entry points: one output per lane, for widths not multiples of 4
    /// that write fewer columns than a workgroup has lanes (Scalar leaves most lanes idle there:
    /// 63 of 64 for the NCE scorer's one output); bit-identical to Scalar.
    Narrow,
    /// linear_vec4.wgsl: the same tiles with vec4 loads, for widths that are multiples of 4 (3.1x
    /// faster on lavapipe, design-notes.md).
    Vec4,
    /// linear_rows.wgsl: vec4 loads with the lanes over rows, for products that write fewer than a
    /// workgroup's 256 columns; bit-identical to Vec4, whose weight gradient it uses.
    Rows,
    /// linear_vec4_subgroup.wgsl: Vec4's tiles and sums with the shared rows loaded once per
    /// subgroup and broadcast, for adapters with 8-lane subgroups (lavapipe); bit-identical to Vec4.
    Vec4Subgroup,
    /// linear_rows_subgroup.wgsl: Rows with the rows all lanes share (W's; dy's in the weight
    /// gradient, taken only for n_in a multiple of 32, when a subgroup's lanes share them) loaded
    /// once per 8-lane subgroup and broadcast; bit-identical to Rows.
    RowsSubgroup,
}

impl LinearVariant {
    /// Every variant, for the tests (each is tested whatever the adapter picks).
    pub const ALL: [LinearVariant; 6] = [
        LinearVariant::Scalar,
        LinearVariant::Narrow,
        LinearVariant::Vec4,
        LinearVariant::Rows,
        LinearVariant::Vec4Subgroup,
        LinearVariant::RowsSubgroup,
    ];

    /// The CPU family's rule for one product of a layer `n_in -> n_out` over `rows` (the batch),
    /// with `eight_lanes` where the adapter runs the 8-lane modules. The weight gradient takes Rows
    /// for a narrow n_in within one slice (the same sums as Vec4, every lane busy) and for long
    /// batches (cut into slices).
    pub fn choose((n_in, n_out): (usize, usize), op: LinearOp, rows: usize, eight_lanes: bool) -> LinearVariant {
        let narrow = |width: usize| width < (WG * COLS_PER_LANE) as usize;
        let slice = shaders::linear_rows::SLICE as usize;
        let rows_wins = match op {
            LinearOp::Forward => narrow(n_out),
            LinearOp::BackwardInput => narrow(n_in),
            LinearOp::BackwardWeight => (narrow(n_in) && rows <= slice) || rows >= 16 * slice,
        };
        // Widths that are not multiples of 4 take the scalar tiles, or for fewer written columns
        // than a workgroup's lanes one output per lane.
        let written = if op == LinearOp::Forward { n_out } else { n_in };
        let vec4_widths = n_in.is_multiple_of(4) && n_out.is_multiple_of(4);
        if !vec4_widths && written < WG as usize {
            LinearVariant::Narrow
        } else if !vec4_widths {
            LinearVariant::Scalar
        } else if rows_wins && eight_lanes && (op != LinearOp::BackwardWeight || n_in.is_multiple_of(32)) {
            LinearVariant::RowsSubgroup
        } else if rows_wins {
            LinearVariant::Rows
        } else if eight_lanes {
            LinearVariant::Vec4Subgroup
        } else {
            LinearVariant::Vec4
        }
    }

    /// The module that holds the variant's entry points.
    pub fn module(self) -> &'static str {
        self.entry(LinearOp::Forward).module()
    }

    pub fn entry(self, op: LinearOp) -> Entry {
        use LinearOp::*;
        use LinearVariant::*;
        match (self, op) {
            (Scalar, Forward) => Entry::LinearForward,
            (Scalar, BackwardInput) => Entry::LinearBackwardInput,
            (Scalar, BackwardWeight) => Entry::LinearBackwardWeight,
            (Narrow, Forward) => Entry::LinearForwardNarrow,
            (Narrow, BackwardInput) => Entry::LinearBackwardInputNarrow,
            (Narrow, BackwardWeight) => Entry::LinearBackwardWeightNarrow,
            (Vec4, Forward) => Entry::LinearForwardVec4,
            (Vec4, BackwardInput) => Entry::LinearBackwardInputVec4,
            (Vec4, BackwardWeight) => Entry::LinearBackwardWeightVec4,
            (Rows, BackwardWeight) => Entry::LinearBackwardWeightRows,
            (Rows, Forward) => Entry::LinearForwardRows,
            (Rows, BackwardInput) => Entry::LinearBackwardInputRows,
            (Vec4Subgroup, Forward) => Entry::LinearForwardVec4Subgroup,
            (Vec4Subgroup, BackwardInput) => Entry::LinearBackwardInputVec4Subgroup,
            (Vec4Subgroup, BackwardWeight) => Entry::LinearBackwardWeightVec4Subgroup,
            (RowsSubgroup, Forward) => Entry::LinearForwardRowsSubgroup,
            (RowsSubgroup, BackwardInput) => Entry::LinearBackwardInputRowsSubgroup,
            (RowsSubgroup, BackwardWeight) => Entry::LinearBackwardWeightRowsSubgroup,
        }
    }

    /// Workgroups for `op` writing `rows` x `cols` outputs (for the weight gradient: n_out x
    /// n_in, over a batch of `batch`): WG lanes of COLS_PER_LANE columns (one vec4 in
    /// linear_vec4.wgsl and linear_vec4_subgroup.wgsl) by the module's TILE_ROWS rows; lanes of
    /// LANE_ROWS rows by TILE_COLS columns for linear_rows.wgsl, whose weight gradient numbers its
    /// (column, row block, slice) invocations on a 2-D grid.
    pub fn groups(self, op: LinearOp, batch: usize, (rows, cols): (usize, usize)) -> [u32; 3] {
        use shaders::linear_rows::{LANE_ROWS, SLICE, TILE_COLS, WG as ROWS_WG};
        match (self, op) {
            (LinearVariant::Rows | LinearVariant::RowsSubgroup, LinearOp::Forward | LinearOp::BackwardInput) => {
                [(rows as u32).div_ceil(ROWS_WG * LANE_ROWS), (cols as u32).div_ceil(TILE_COLS), 1]
            }
            (LinearVariant::Rows | LinearVariant::RowsSubgroup, LinearOp::BackwardWeight) => {
                let slices = (batch as u32).div_ceil(SLICE);
                flat_grid((cols as u32 / 4) * (rows as u32).div_ceil(TILE_COLS) * slices, ROWS_WG)
            }
            (LinearVariant::Scalar, _) => linear_groups(rows, cols, TILE_ROWS),
            (LinearVariant::Narrow, _) => flat_grid((rows * cols) as u32, WG),
            (LinearVariant::Vec4 | LinearVariant::Vec4Subgroup, _) => {
                linear_groups(rows, cols, shaders::linear_vec4::TILE_ROWS)
            }
        }
    }

    /// The partial sums a weight gradient over `batch` rows writes before linear_sum_slices adds
    /// them: more than one only for Rows.
    pub fn slices(self, op: LinearOp, batch: usize) -> usize {
        match (self, op) {
            (LinearVariant::Rows | LinearVariant::RowsSubgroup, LinearOp::BackwardWeight) => {
                batch.div_ceil(shaders::linear_rows::SLICE as usize)
            }
            _ => 1,
        }
    }
}

/// Workgroups for a linear.wgsl or linear_vec4(_subgroup).wgsl product with `rows` x `cols`
/// outputs, in tiles of `tile_rows` rows.
pub fn linear_groups(rows: usize, cols: usize, tile_rows: u32) -> [u32; 3] {
    [(cols as u32).div_ceil(WG * COLS_PER_LANE), (rows as u32).div_ceil(tile_rows), 1]
}

/// Workgroups a product should launch to keep a big GPU busy: an H100 has 132 SMs, each able to
/// hold several 256-invocation workgroups.
const FILL_WORKGROUPS: usize = 264;
/// The shortest slice of a split reduction: shorter ones add more partial sums than they save.
const MIN_SLICE: usize = 128;

/// Workgroups of `wg` lanes for `invocations` numbered on a 2-D grid, rows of at most 65,535
/// workgroups (WebGPU's guaranteed limit): the shaders' (wg.y groups.x + wg.x) wg + lane.
fn flat_grid(invocations: u32, wg: u32) -> [u32; 3] {
    let groups = invocations.div_ceil(wg).max(1);
    let x = groups.min(65_535);
    [x, groups.div_ceil(x), 1]
}

/// How linear_tiled.wgsl launches a product of `rows` x `cols` outputs over a reduction of `depth`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TiledPlan {
    pub slice_len: usize,
    pub slices: usize,
    pub grid: [u32; 3],
}

impl TiledPlan {
    pub fn new(rows: usize, cols: usize, depth: usize) -> TiledPlan {
        let tile = TILE as usize;
        let (tile_cols, tile_rows) = (cols.div_ceil(tile), rows.div_ceil(tile));
        let wanted = FILL_WORKGROUPS.div_ceil(tile_rows * tile_cols);
        let slices = wanted.clamp(1, (depth / MIN_SLICE).max(1));
        TiledPlan::with_slice_len(rows, cols, depth, depth.div_ceil(slices))
    }

    /// A plan with slices of `slice_len` (rounded up to a stage of BK), as tests choose them.
    pub fn with_slice_len(rows: usize, cols: usize, depth: usize, slice_len: usize) -> TiledPlan {
        let slice_len = slice_len.clamp(1, depth.max(1)).next_multiple_of(BK as usize);
        let slices = depth.div_ceil(slice_len).max(1);
        let tile = TILE as usize;
        TiledPlan { slice_len, slices, grid: [cols.div_ceil(tile) as u32, rows.div_ceil(tile) as u32, slices as u32] }
    }

    /// The output `(rows, cols)` and reduction depth of `op` for a layer `n_in -> n_out` over `rows`.
    pub fn shape((n_in, n_out): (usize, usize), op: LinearOp, rows: usize) -> (usize, usize, usize) {
        match op {
            LinearOp::Forward => (rows, n_out, n_in),
            LinearOp::BackwardInput => (rows, n_in, n_out),
            LinearOp::BackwardWeight => (n_out, n_in, rows),
        }
    }
}

/// The longest reduction the split kernel takes: it reuses each operand over a 4 x 4 block only
/// (and the weight gradient reads both across rows), so long ones go to the tiled kernel's
/// workgroup-memory tiles and slices.
const MAX_SPLIT_DEPTH: usize = 4096;

/// linear_split_subgroup.wgsl's grid for a product of `rows` x `cols` outputs that the tiled
/// kernel would launch as `tiled`, where it takes the product: the tiled plan cuts the reduction
/// into slices (its tiles alone would leave the GPU idle), one side of the output fits in one tile
/// (so few tiles: the latent layers), the reduction is at most MAX_SPLIT_DEPTH, and the grid fits
/// `max_groups` per dimension. (Whether the adapter has subgroups is the caller's question.)
pub fn split_grid(tiled: &TiledPlan, (rows, cols): (usize, usize), max_groups: u32) -> Option<[u32; 3]> {
    use shaders::linear_split_subgroup::BLOCK;
    let depth = tiled.slices * tiled.slice_len; // (rounded up to whole slices)
    let block = BLOCK as usize;
    let grid = [cols.div_ceil(block), rows.div_ceil(block)];
    let fits = grid.iter().all(|&g| g <= max_groups as usize);
    let narrow = rows.min(cols) <= TILE as usize;
    let wanted = tiled.slices > 1 && narrow && depth <= MAX_SPLIT_DEPTH && fits;
    wanted.then_some([grid[0] as u32, grid[1] as u32, 1])
}

/// The kernel a linear product gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearKernel {
    /// A CPU-family variant.
    Variant(LinearVariant),
    /// linear_tiled.wgsl, with a `_sum` launch after it where the plan has several slices.
    Tiled(TiledPlan),
    /// linear_split_subgroup.wgsl on this grid: one launch.
    Split([u32; 3]),
}

/// A launch's workgroups: an explicit grid, or `n` invocations of a 1-D kernel (Gpu::grid_1d).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Groups {
    Grid([u32; 3]),
    Over(usize),
}

/// linear_tiled.wgsl's product and `_sum` entry points for `op`.
pub fn tiled_entries(op: LinearOp) -> (Entry, Entry) {
    match op {
        LinearOp::Forward => (Entry::LinearForwardTiled, Entry::LinearForwardTiledSum),
        LinearOp::BackwardInput => (Entry::LinearBackwardInputTiled, Entry::LinearBackwardInputTiledSum),
        LinearOp::BackwardWeight => (Entry::LinearBackwardWeightTiled, Entry::LinearBackwardWeightTiledSum),
    }
}

/// linear_split_subgroup.wgsl's entry point for `op`.
pub fn split_entry(op: LinearOp) -> Entry {
    match op {
        LinearOp::Forward => Entry::LinearForwardSplitSubgroup,
        LinearOp::BackwardInput => Entry::LinearBackwardInputSplitSubgroup,
        LinearOp::BackwardWeight => Entry::LinearBackwardWeightSplitSubgroup,
    }
}

impl LinearKernel {
    /// The launches that carry out `op` of a layer `n_in -> n_out` over `batch` rows, in order, as
    /// network/linear/cpu.rs and tiled.rs make them (tests/kernels/plan_table.rs holds the two equal): the product, then the sum of its
    /// partial sums where it writes several. (The CPU family's bias gradient, linear_backward_bias,
    /// is a launch of its own after the weight gradient's.) `gathered`: a first layer whose
    /// forward product gathers its batch (KernelPlan::first_layer_gathers; a tiled kernel).
    pub fn launches(&self, layer: (usize, usize), op: LinearOp, batch: usize, gathered: bool) -> Vec<(Entry, Groups)> {
        let (rows, cols, _) = TiledPlan::shape(layer, op, batch);
        match *self {
            LinearKernel::Variant(v) => {
                let mut launches = vec![(v.entry(op), Groups::Grid(v.groups(op, batch, (rows, cols))))];
                if v.slices(op, batch) > 1 {
                    launches.push((Entry::LinearSumSlices, Groups::Over(rows * cols / 4)));
                }
                launches
            }
            LinearKernel::Tiled(t) => {
                let (mut product, sum) = tiled_entries(op);
                if gathered && op == LinearOp::Forward {
                    product = Entry::LinearForwardGatherTiled;
                }
                let mut launches = vec![(product, Groups::Grid(t.grid))];
                if t.slices > 1 {
                    launches.push((sum, Groups::Over(rows * cols)));
                }
                launches
            }
            LinearKernel::Split(grid) => vec![(split_entry(op), Groups::Grid(grid))],
        }
    }

    /// The WGSL module of its entry points.
    pub fn module(&self) -> &'static str {
        match self {
            LinearKernel::Variant(v) => v.module(),
            LinearKernel::Tiled(_) => Entry::LinearForwardTiled.module(),
            LinearKernel::Split(_) => Entry::LinearForwardSplitSubgroup.module(),
        }
    }
}
