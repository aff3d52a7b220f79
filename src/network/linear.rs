//! The linear layer's launches. For GPU adapters (KernelFamily::Gpu) the workgroup-memory tiles of
//! network/linear_tiled.rs; for CPU adapters shaders/linear.wgsl, linear_vec4.wgsl,
//! linear_vec4_subgroup.wgsl and linear_rows.wgsl: the vec4 kernels when both widths are multiples
//! of 4 (through subgroups where the adapter has 8-lane ones, with lanes over rows for narrow
//! outputs), else the scalar ones.
use super::{linear_tiled as tiled, Layer};
use crate::gpu::kernels::{bind, bind_range, Bind, KernelFamily};
use crate::gpu::params::Dims;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{self, Entry};
use shaders::linear::{AUX, COLS_PER_LANE, DIMS, LHS, OUT, RHS, TILE_ROWS, WG};

// The host binds every family with linear.wgsl's numbers; linear.wgsl and linear_vec4.wgsl are
// dispatched alike (WG lanes x one vec4 of columns each, a tile of rows per workgroup: 8 in
// linear.wgsl, 16 in the vec4 modules, where the tiles' loads are vec4s).
const _: () = assert!(
    shaders::linear_vec4::DIMS == DIMS
        && shaders::linear_vec4::LHS == LHS
        && shaders::linear_vec4::RHS == RHS
        && shaders::linear_vec4::AUX == AUX
        && shaders::linear_vec4::OUT == OUT
        && shaders::linear_rows::DIMS == DIMS
        && shaders::linear_rows::LHS == LHS
        && shaders::linear_rows::RHS == RHS
        && shaders::linear_rows::AUX == AUX
        && shaders::linear_rows::OUT == OUT
        && COLS_PER_LANE == 4
        && shaders::linear_vec4::WG == WG
        && shaders::linear_vec4_subgroup::DIMS == DIMS
        && shaders::linear_vec4_subgroup::LHS == LHS
        && shaders::linear_vec4_subgroup::RHS == RHS
        && shaders::linear_vec4_subgroup::AUX == AUX
        && shaders::linear_vec4_subgroup::OUT == OUT
        && shaders::linear_vec4_subgroup::TILE_ROWS == shaders::linear_vec4::TILE_ROWS
        && shaders::linear_vec4_subgroup::WG == WG
        && shaders::linear_rows_subgroup::DIMS == DIMS
        && shaders::linear_rows_subgroup::LHS == LHS
        && shaders::linear_rows_subgroup::RHS == RHS
        && shaders::linear_rows_subgroup::AUX == AUX
        && shaders::linear_rows_subgroup::OUT == OUT
        && shaders::linear_rows_subgroup::WG == shaders::linear_rows::WG
        && shaders::linear_rows_subgroup::LANE_ROWS == shaders::linear_rows::LANE_ROWS
        && shaders::linear_rows_subgroup::TILE_COLS == shaders::linear_rows::TILE_COLS
        && shaders::linear_rows_subgroup::SLICE == shaders::linear_rows::SLICE,
    "the linear kernel families must share bindings (and each *_subgroup module its plain one's dispatch shape)"
);

/// The three products of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearOp {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The kernels that compute a linear layer on CPU adapters; each owns its entry points and its
/// dispatch shape. A new one is its WGSL file, a variant here with its match arms, and its rule in
/// `choose`. (GPU adapters take network/linear_tiled.rs, whose launches are planned differently.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearVariant {
    /// linear.wgsl: register tiles with scalar loads, any widths.
    Scalar,
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
    pub const ALL: [LinearVariant; 5] = [
        LinearVariant::Scalar,
        LinearVariant::Vec4,
        LinearVariant::Rows,
        LinearVariant::Vec4Subgroup,
        LinearVariant::RowsSubgroup,
    ];

    /// Where the choice is made, per product, on a CPU adapter: by the layer's widths, and
    /// whether the adapter has the 8-lane subgroups the *Subgroup variants need (`subgroups`). `rows`: the
    /// product's batch. The weight gradient takes Rows for a narrow n_in within one slice (the
    /// same sums as Vec4, every lane busy) and for long batches (cut into slices).
    pub fn choose(layer: &Layer, op: LinearOp, rows: usize, subgroups: bool) -> LinearVariant {
        let narrow = |width: usize| width < (WG * COLS_PER_LANE) as usize;
        let slice = shaders::linear_rows::SLICE as usize;
        let rows_wins = match op {
            LinearOp::Forward => narrow(layer.n_out),
            LinearOp::BackwardInput => narrow(layer.n_in),
            LinearOp::BackwardWeight => (narrow(layer.n_in) && rows <= slice) || rows >= 16 * slice,
        };
        if !(layer.n_in.is_multiple_of(4) && layer.n_out.is_multiple_of(4)) {
            LinearVariant::Scalar
        } else if rows_wins && subgroups && (op != LinearOp::BackwardWeight || layer.n_in.is_multiple_of(32)) {
            LinearVariant::RowsSubgroup
        } else if rows_wins {
            LinearVariant::Rows
        } else if subgroups {
            LinearVariant::Vec4Subgroup
        } else {
            LinearVariant::Vec4
        }
    }

    pub fn entry(self, op: LinearOp) -> Entry {
        match (self, op) {
            (LinearVariant::Scalar, LinearOp::Forward) => Entry::LinearForward,
            (LinearVariant::Scalar, LinearOp::BackwardInput) => Entry::LinearBackwardInput,
            (LinearVariant::Scalar, LinearOp::BackwardWeight) => Entry::LinearBackwardWeight,
            (LinearVariant::Vec4, LinearOp::Forward) => Entry::LinearForwardVec4,
            (LinearVariant::Vec4, LinearOp::BackwardInput) => Entry::LinearBackwardInputVec4,
            (LinearVariant::Vec4, LinearOp::BackwardWeight) => Entry::LinearBackwardWeightVec4,
            (LinearVariant::Rows, LinearOp::BackwardWeight) => Entry::LinearBackwardWeightRows,
            (LinearVariant::Rows, LinearOp::Forward) => Entry::LinearForwardRows,
            (LinearVariant::Rows, LinearOp::BackwardInput) => Entry::LinearBackwardInputRows,
            (LinearVariant::Vec4Subgroup, LinearOp::Forward) => Entry::LinearForwardVec4Subgroup,
            (LinearVariant::Vec4Subgroup, LinearOp::BackwardInput) => Entry::LinearBackwardInputVec4Subgroup,
            (LinearVariant::Vec4Subgroup, LinearOp::BackwardWeight) => Entry::LinearBackwardWeightVec4Subgroup,
            (LinearVariant::RowsSubgroup, LinearOp::Forward) => Entry::LinearForwardRowsSubgroup,
            (LinearVariant::RowsSubgroup, LinearOp::BackwardInput) => Entry::LinearBackwardInputRowsSubgroup,
            (LinearVariant::RowsSubgroup, LinearOp::BackwardWeight) => Entry::LinearBackwardWeightRowsSubgroup,
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
                let n = (cols as u32 / 4) * (rows as u32).div_ceil(TILE_COLS) * slices;
                let groups = n.div_ceil(ROWS_WG).max(1);
                let x = groups.min(65_535);
                [x, groups.div_ceil(x), 1]
            }
            (LinearVariant::Scalar, _) => linear_groups(rows, cols, TILE_ROWS),
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

/// One product of `layer` over `batch` rows, writing `rows` x `cols`, with the variant chosen for
/// it. Each of the three is batch x n_in x n_out multiply-adds.
fn product(l: Launcher, op: LinearOp, layer: &Layer, binds: &[Bind], batch: usize, written: (usize, usize)) -> Launch {
    let variant = LinearVariant::choose(layer, op, batch, l.kernels.eight_lane_subgroups);
    let flops = 2 * (batch * layer.n_in * layer.n_out) as u64;
    l.grid(variant.entry(op), binds, variant.groups(op, batch, written))
        .with_flops(flops)
        .with_bytes(traffic(layer, batch))
}

/// Bytes each of a layer's three products over `rows` moves at least: two of x [rows, n_in],
/// W [n_out, n_in] and y [rows, n_out] read, the third written.
pub fn traffic(layer: &Layer, rows: usize) -> u64 {
    4 * (rows * layer.n_in + layer.n_in * layer.n_out + rows * layer.n_out) as u64
}

fn tiled(l: Launcher) -> bool {
    l.kernels.family == KernelFamily::Gpu
}

fn dims(l: Launcher, layer: &Layer, rows: usize, relu: bool) -> wgpu::Buffer {
    let d = Dims { batch: rows as u32, n_in: layer.n_in as u32, n_out: layer.n_out as u32, relu: relu as u32 };
    l.uniform("dims", &d)
}

/// output [rows, n_out] = act(input [rows, n_in] W^T + b), W and b read from `params`.
pub fn forward(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Vec<Launch> {
    forward_with_bias(l, layer, params, bind_range(AUX, params, layer.bias_at, layer.n_out), rows, (input, output))
}

/// `forward` with the bias bound from elsewhere (`bias`: n_out floats at binding AUX).
pub fn forward_with_bias(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    bias: Bind,
    rows: usize,
    (input, output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    if tiled(l) {
        return tiled::forward(l, layer, params, bias, rows, (input, output));
    }
    let u = dims(l, layer, rows, layer.relu);
    let binds = [
        bind(DIMS, &u),
        bind(LHS, input),
        bind_range(RHS, params, layer.weight_at, layer.weight_len()),
        Bind { binding: AUX, ..bias },
        bind(OUT, output),
    ];
    vec![product(l, LinearOp::Forward, layer, &binds, rows, (rows, layer.n_out))]
}

/// d_input [rows, n_in] = d_output [rows, n_out] W, masked where `input` (a ReLU output) is 0.
pub fn backward_input(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    d_output: &wgpu::Buffer,
    input: &wgpu::Buffer,
    d_input: &wgpu::Buffer,
) -> Vec<Launch> {
    if tiled(l) {
        return tiled::backward_input(l, layer, params, rows, (d_output, input, d_input));
    }
    let u = dims(l, layer, rows, layer.relu_input);
    let binds = [
        bind(DIMS, &u),
        bind(LHS, d_output),
        bind_range(RHS, params, layer.weight_at, layer.weight_len()),
        bind(AUX, input),
        bind(OUT, d_input),
    ];
    vec![product(l, LinearOp::BackwardInput, layer, &binds, rows, (rows, layer.n_in))]
}

/// dW [n_out, n_in] = d_output^T input and db [n_out] = the column sums of d_output, into `grads`.
pub fn backward_params(
    l: Launcher,
    layer: &Layer,
    grads: &wgpu::Buffer,
    rows: usize,
    input: &wgpu::Buffer,
    d_output: &wgpu::Buffer,
) -> Vec<Launch> {
    if tiled(l) {
        return tiled::backward_weight(l, layer, grads, rows, (input, d_output), true);
    }
    let u = dims(l, layer, rows, false);
    let bias = l.over(
        Entry::LinearBackwardBias,
        &[bind(DIMS, &u), bind(LHS, d_output), bind_range(OUT, grads, layer.bias_at, layer.n_out)],
        layer.n_out,
    );
    let mut launches = backward_weight(l, layer, grads, rows, input, d_output);
    launches.push(bias);
    launches
}

/// dW [n_out, n_in] = d_output^T input alone, into `grads`: one launch, or for a long batch the
/// slices' partial sums and their sum.
pub fn backward_weight(
    l: Launcher,
    layer: &Layer,
    grads: &wgpu::Buffer,
    rows: usize,
    input: &wgpu::Buffer,
    d_output: &wgpu::Buffer,
) -> Vec<Launch> {
    if tiled(l) {
        return tiled::backward_weight(l, layer, grads, rows, (input, d_output), false);
    }
    let u = dims(l, layer, rows, false);
    let d_weight = bind_range(OUT, grads, layer.weight_at, layer.weight_len());
    let variant = LinearVariant::choose(layer, LinearOp::BackwardWeight, rows, l.kernels.eight_lane_subgroups);
    let slices = variant.slices(LinearOp::BackwardWeight, rows);
    let written = (layer.n_out, layer.n_in);
    if slices == 1 {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), d_weight];
        return vec![product(l, LinearOp::BackwardWeight, layer, &binds, rows, written)];
    }
    let partials = crate::gpu::storage_zeroed(l.gpu, "weight gradient slices", slices * layer.weight_len() * 4);
    let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), bind(OUT, &partials)];
    let sum = l.over(Entry::LinearSumSlices, &[bind(DIMS, &u), bind(LHS, &partials), d_weight], layer.weight_len() / 4);
    vec![product(l, LinearOp::BackwardWeight, layer, &binds, rows, written), sum]
}
