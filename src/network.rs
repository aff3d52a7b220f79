//! Launches for the MLP's linear layers at a given batch size, shared by the trainer and the
//! evaluators (which run the same weights on other row counts).
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::Dims;
use crate::gpu::{self, Gpu, Kernel, Kernels, Launch};
use crate::model::Layer;
use crate::shaders::{self, Entry};

use shaders::linear::{AUX, DIMS, LHS, OUT, RHS};

// The host binds both variants with linear.wgsl's numbers.
const _: () = assert!(
    shaders::linear_vec4::DIMS == DIMS
        && shaders::linear_vec4::LHS == LHS
        && shaders::linear_vec4::RHS == RHS
        && shaders::linear_vec4::AUX == AUX
        && shaders::linear_vec4::OUT == OUT,
    "linear.wgsl and linear_vec4.wgsl must number their bindings alike"
);

use shaders::linear::{COLS_PER_LANE, TILE_ROWS, WG};

// linear_vec4.wgsl has linear.wgsl's dispatch shape (WG lanes x one vec4 of columns, TILE_ROWS rows),
// so linear_groups serves both.
const _: () = assert!(
    COLS_PER_LANE == 4 && shaders::linear_vec4::TILE_ROWS == TILE_ROWS && shaders::linear_vec4::WG == WG,
    "linear_vec4.wgsl shares linear.wgsl's dispatch shape: change both together"
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

/// The vec4 variant (linear_vec4.wgsl) when both widths are multiples of 4, else the scalar one.
pub fn linear_kernel<'k>(kernels: &'k Kernels, op: LinearOp, l: &Layer) -> &'k Kernel {
    let vec4 = l.n_in.is_multiple_of(4) && l.n_out.is_multiple_of(4);
    kernels.get(match (op, vec4) {
        (LinearOp::Forward, false) => Entry::LinearForward,
        (LinearOp::Forward, true) => Entry::LinearForwardVec4,
        (LinearOp::BackwardInput, false) => Entry::LinearBackwardInput,
        (LinearOp::BackwardInput, true) => Entry::LinearBackwardInputVec4,
        (LinearOp::BackwardWeight, false) => Entry::LinearBackwardWeight,
        (LinearOp::BackwardWeight, true) => Entry::LinearBackwardWeightVec4,
    })
}

pub fn dims(gpu: &Gpu, l: &Layer, batch: usize, relu: bool) -> wgpu::Buffer {
    let d = Dims { batch: batch as u32, n_in: l.n_in as u32, n_out: l.n_out as u32, relu: relu as u32 };
    gpu::uniform_with(gpu, "dims", &d)
}

/// output [batch, n_out] = act(input [batch, n_in] W^T + b), W and b read from `params`.
pub fn forward(
    gpu: &Gpu,
    kernels: &Kernels,
    params: &wgpu::Buffer,
    l: &Layer,
    batch: usize,
    input: &wgpu::Buffer,
    output: &wgpu::Buffer,
) -> Launch {
    let u = dims(gpu, l, batch, l.relu);
    linear_kernel(kernels, LinearOp::Forward, l).launch(
        gpu,
        &[
            bind(DIMS, &u),
            bind(LHS, input),
            bind_range(RHS, params, l.weight_at, l.n_in * l.n_out),
            bind_range(AUX, params, l.bias_at, l.n_out),
            bind(OUT, output),
        ],
        linear_groups(batch, l.n_out),
    )
}

/// d_input [batch, n_in] = d_output [batch, n_out] W, masked where the layer's input came out of
/// a ReLU (`input` is that input).
#[allow(clippy::too_many_arguments)]
pub fn backward_input(
    gpu: &Gpu,
    kernels: &Kernels,
    params: &wgpu::Buffer,
    l: &Layer,
    batch: usize,
    d_output: &wgpu::Buffer,
    input: &wgpu::Buffer,
    d_input: &wgpu::Buffer,
) -> Launch {
    let u = dims(gpu, l, batch, l.relu_input);
    linear_kernel(kernels, LinearOp::BackwardInput, l).launch(
        gpu,
        &[
            bind(DIMS, &u),
            bind(LHS, d_output),
            bind_range(RHS, params, l.weight_at, l.n_in * l.n_out),
            bind(AUX, input),
            bind(OUT, d_input),
        ],
        linear_groups(batch, l.n_in),
    )
}

/// One zeroed [batch, n_out] buffer per layer.
pub fn activations(gpu: &Gpu, label: &str, layers: &[Layer], batch: usize) -> Vec<wgpu::Buffer> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| gpu::storage_zeroed(gpu, &format!("{label}{i}"), batch * l.n_out * 4))
        .collect()
}

/// The layers in order: input -> outputs[0] -> ... -> outputs[last].
pub fn forward_path(
    gpu: &Gpu,
    kernels: &Kernels,
    params: &wgpu::Buffer,
    layers: &[Layer],
    batch: usize,
    input: &wgpu::Buffer,
    outputs: &[wgpu::Buffer],
) -> Vec<Launch> {
    layers
        .iter()
        .enumerate()
        .map(|(i, l)| {
            forward(gpu, kernels, params, l, batch, if i == 0 { input } else { &outputs[i - 1] }, &outputs[i])
        })
        .collect()
}
