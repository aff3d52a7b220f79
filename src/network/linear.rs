//! The linear layer's launches (shaders/linear.wgsl and shaders/linear_vec4.wgsl): the vec4 variant
//! when both widths are multiples of 4, else the scalar one; both share one dispatch shape.
use super::Layer;
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::Dims;
use crate::gpu::{Kernel, Kernels, Launch, Launcher};
use crate::shaders::{self, Entry};
use shaders::linear::{AUX, COLS_PER_LANE, DIMS, LHS, OUT, RHS, TILE_ROWS, WG};

// The host binds both variants with linear.wgsl's numbers and dispatches them alike (WG lanes x
// one vec4 of columns each, TILE_ROWS rows per workgroup).
const _: () = assert!(
    shaders::linear_vec4::DIMS == DIMS
        && shaders::linear_vec4::LHS == LHS
        && shaders::linear_vec4::RHS == RHS
        && shaders::linear_vec4::AUX == AUX
        && shaders::linear_vec4::OUT == OUT
        && COLS_PER_LANE == 4
        && shaders::linear_vec4::TILE_ROWS == TILE_ROWS
        && shaders::linear_vec4::WG == WG,
    "linear.wgsl and linear_vec4.wgsl must share bindings and dispatch shape: change both together"
);

/// Workgroups for a linear.wgsl or linear_vec4.wgsl product with `rows` x `cols` outputs.
pub fn linear_groups(rows: usize, cols: usize) -> [u32; 3] {
    [(cols as u32).div_ceil(WG * COLS_PER_LANE), (rows as u32).div_ceil(TILE_ROWS), 1]
}

/// The three products of a linear layer, each with a scalar and a vec4 variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearOp {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The variant for the layer's widths: vec4 loads need both to be multiples of 4.
pub fn linear_kernel<'k>(kernels: &'k Kernels, op: LinearOp, layer: &Layer) -> &'k Kernel {
    let vec4 = layer.n_in.is_multiple_of(4) && layer.n_out.is_multiple_of(4);
    kernels.get(match (op, vec4) {
        (LinearOp::Forward, false) => Entry::LinearForward,
        (LinearOp::Forward, true) => Entry::LinearForwardVec4,
        (LinearOp::BackwardInput, false) => Entry::LinearBackwardInput,
        (LinearOp::BackwardInput, true) => Entry::LinearBackwardInputVec4,
        (LinearOp::BackwardWeight, false) => Entry::LinearBackwardWeight,
        (LinearOp::BackwardWeight, true) => Entry::LinearBackwardWeightVec4,
    })
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
) -> Launch {
    let u = dims(l, layer, rows, layer.relu);
    linear_kernel(l.kernels, LinearOp::Forward, layer).launch(
        l.gpu,
        &[
            bind(DIMS, &u),
            bind(LHS, input),
            bind_range(RHS, params, layer.weight_at, layer.weight_len()),
            bind_range(AUX, params, layer.bias_at, layer.n_out),
            bind(OUT, output),
        ],
        linear_groups(rows, layer.n_out),
    )
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
) -> Launch {
    let u = dims(l, layer, rows, layer.relu_input);
    linear_kernel(l.kernels, LinearOp::BackwardInput, layer).launch(
        l.gpu,
        &[
            bind(DIMS, &u),
            bind(LHS, d_output),
            bind_range(RHS, params, layer.weight_at, layer.weight_len()),
            bind(AUX, input),
            bind(OUT, d_input),
        ],
        linear_groups(rows, layer.n_in),
    )
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
    let u = dims(l, layer, rows, false);
    let weight = linear_kernel(l.kernels, LinearOp::BackwardWeight, layer).launch(
        l.gpu,
        &[
            bind(DIMS, &u),
            bind(LHS, d_output),
            bind(RHS, input),
            bind_range(OUT, grads, layer.weight_at, layer.weight_len()),
        ],
        linear_groups(layer.n_out, layer.n_in),
    );
    let bias = l.over(
        Entry::LinearBackwardBias,
        &[bind(DIMS, &u), bind(LHS, d_output), bind_range(OUT, grads, layer.bias_at, layer.n_out)],
        layer.n_out,
    );
    vec![weight, bias]
}
