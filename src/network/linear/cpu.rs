//! The CPU family's linear launches: shaders/linear.wgsl, linear_vec4.wgsl,
//! linear_vec4_subgroup.wgsl and linear_rows(_subgroup).wgsl, whichever variant the kernel plan's
//! LinearVariant::choose gives a product (plan/linear.rs). They share linear.wgsl's binding
//! numbers (build.rs checks the family), and linear.wgsl and linear_vec4.wgsl are dispatched
//! alike (WG lanes x one vec4 of columns each, a tile of rows per workgroup).
use super::super::Layer;
use super::operands::{BackwardInput, Forward, Weights};
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::Dims;
use crate::gpu::{Launch, Launcher};
use crate::plan::linear::{LinearOp, LinearVariant};
use crate::shaders::{self, Entry};
use shaders::linear::{AUX, COLS_PER_LANE, DIMS, LHS, OUT, RHS, WG};

const _: () = assert!(
    COLS_PER_LANE == 4
        && shaders::linear_vec4::WG == WG
        && shaders::linear_vec4_subgroup::WG == WG
        && shaders::linear_vec4_subgroup::TILE_ROWS == shaders::linear_vec4::TILE_ROWS
        && shaders::linear_rows_subgroup::WG == shaders::linear_rows::WG
        && shaders::linear_rows_subgroup::LANE_ROWS == shaders::linear_rows::LANE_ROWS
        && shaders::linear_rows_subgroup::TILE_COLS == shaders::linear_rows::TILE_COLS
        && shaders::linear_rows_subgroup::SLICE == shaders::linear_rows::SLICE,
    "each *_subgroup module is dispatched as its plain one, and linear.wgsl as linear_vec4.wgsl"
);

/// One product of `layer` over `batch` rows by `variant`, writing `rows` x `cols`. Each of the
/// three is batch x n_in x n_out multiply-adds.
fn product(
    l: Launcher,
    (variant, op): (LinearVariant, LinearOp),
    layer: &Layer,
    binds: &[Bind],
    batch: usize,
    written: (usize, usize),
) -> Launch {
    let flops = 2 * (batch * layer.n_in * layer.n_out) as u64;
    l.grid(variant.entry(op), binds, variant.groups(op, batch, written))
        .with_flops(flops)
        .with_bytes(layer.product_traffic(batch))
}

fn dims(l: Launcher, layer: &Layer, rows: usize, relu: bool) -> wgpu::Buffer {
    let d = Dims { rows: rows as u32, n_in: layer.n_in as u32, n_out: layer.n_out as u32, relu: relu as u32 };
    l.uniform("dims", &d)
}

/// output = act(input W^T + bias).
pub fn forward(
    l: Launcher,
    variant: LinearVariant,
    layer: &Layer,
    w: Weights,
    rows: usize,
    io: Forward,
) -> Vec<Launch> {
    let u = dims(l, layer, rows, layer.relu);
    let binds = [
        bind(DIMS, &u),
        bind(LHS, io.input),
        bind_range(RHS, w.params, layer.weight_at, layer.weight_len()),
        Bind { binding: AUX, ..w.bias },
        bind(OUT, io.output),
    ];
    vec![product(l, (variant, LinearOp::Forward), layer, &binds, rows, (rows, layer.n_out))]
}

/// d_input = d_output W, masked where the layer's input (a ReLU output) is 0.
pub fn backward_input(
    l: Launcher,
    variant: LinearVariant,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    io: BackwardInput,
) -> Vec<Launch> {
    let u = dims(l, layer, rows, layer.relu_input);
    let binds = [
        bind(DIMS, &u),
        bind(LHS, io.d_output),
        bind_range(RHS, params, layer.weight_at, layer.weight_len()),
        bind(AUX, io.aux()),
        bind(OUT, io.d_input),
    ];
    vec![product(l, (variant, LinearOp::BackwardInput), layer, &binds, rows, (rows, layer.n_in))]
}

/// db [n_out] = the column sums of d_output, into `grads`.
pub fn backward_bias(l: Launcher, layer: &Layer, grads: &wgpu::Buffer, rows: usize, d_output: &wgpu::Buffer) -> Launch {
    let u = dims(l, layer, rows, false);
    let d_bias = bind_range(OUT, grads, layer.bias_at, layer.n_out);
    l.over(Entry::LinearBackwardBias, &[bind(DIMS, &u), bind(LHS, d_output), d_bias], layer.n_out)
}

/// dW [n_out, n_in] = d_output^T input into `grads`: one launch, or for a long batch the slices'
/// partial sums and their sum.
pub fn backward_weight(
    l: Launcher,
    variant: LinearVariant,
    layer: &Layer,
    grads: &wgpu::Buffer,
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    let u = dims(l, layer, rows, false);
    let d_weight = bind_range(OUT, grads, layer.weight_at, layer.weight_len());
    let slices = variant.slices(LinearOp::BackwardWeight, rows);
    let (op, written) = ((variant, LinearOp::BackwardWeight), (layer.n_out, layer.n_in));
    if slices == 1 {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), d_weight];
        return vec![product(l, op, layer, &binds, rows, written)];
    }
    let partials = crate::gpu::zeroed::<f32>(l.gpu, "weight gradient slices", slices * layer.weight_len());
    let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), bind(OUT, &partials)];
    let sum = l.over(Entry::LinearSumSlices, &[bind(DIMS, &u), bind(LHS, &partials), d_weight], layer.weight_len() / 4);
    vec![product(l, op, layer, &binds, rows, written), sum]
}
