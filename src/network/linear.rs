//! The linear layer's launches (shaders/linear.wgsl and shaders/linear_vec4.wgsl): the vec4 variant
//! when both widths are multiples of 4, else the scalar one; both share one dispatch shape.
use super::Layer;
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::Dims;
use crate::gpu::{Kernels, Launch, Launcher};
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

/// The three products of a linear layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearOp {
    Forward,
    BackwardInput,
    BackwardWeight,
}

/// The kernel families that compute a linear layer; each owns its entry points and its dispatch
/// shape. A new family (say, a workgroup-memory GEMM for discrete GPUs) is its WGSL file, a
/// variant here with its two match arms, and its rule in `choose`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearVariant {
    /// linear.wgsl: register tiles with scalar loads, any widths.
    Scalar,
    /// linear_vec4.wgsl: the same tiles with vec4 loads, for widths that are multiples of 4 (3.1x
    /// faster on lavapipe, design-notes.md).
    Vec4,
}

impl LinearVariant {
    /// Every variant, for the tests (each is tested whatever the adapter picks).
    pub const ALL: [LinearVariant; 2] = [LinearVariant::Scalar, LinearVariant::Vec4];

    /// Where the choice is made, once per layer: by the layer's widths today; by the adapter too
    /// (`kernels.adapter`) once a family is faster on some adapters than on others.
    pub fn choose(_kernels: &Kernels, layer: &Layer) -> LinearVariant {
        if layer.n_in.is_multiple_of(4) && layer.n_out.is_multiple_of(4) {
            LinearVariant::Vec4
        } else {
            LinearVariant::Scalar
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
        }
    }

    /// Workgroups for a product with `rows` x `cols` outputs: WG lanes of COLS_PER_LANE columns
    /// (one vec4 in linear_vec4.wgsl) by TILE_ROWS rows, for both families.
    pub fn groups(self, rows: usize, cols: usize) -> [u32; 3] {
        match self {
            LinearVariant::Scalar | LinearVariant::Vec4 => linear_groups(rows, cols),
        }
    }
}

/// Workgroups for a linear.wgsl or linear_vec4.wgsl product with `rows` x `cols` outputs.
pub fn linear_groups(rows: usize, cols: usize) -> [u32; 3] {
    [(cols as u32).div_ceil(WG * COLS_PER_LANE), (rows as u32).div_ceil(TILE_ROWS), 1]
}

/// One product of `layer` with the variant chosen for it.
fn product(l: Launcher, op: LinearOp, layer: &Layer, binds: &[Bind], (rows, cols): (usize, usize)) -> Launch {
    let variant = LinearVariant::choose(l.kernels, layer);
    l.grid(variant.entry(op), binds, variant.groups(rows, cols))
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
    let binds = [
        bind(DIMS, &u),
        bind(LHS, input),
        bind_range(RHS, params, layer.weight_at, layer.weight_len()),
        bind_range(AUX, params, layer.bias_at, layer.n_out),
        bind(OUT, output),
    ];
    product(l, LinearOp::Forward, layer, &binds, (rows, layer.n_out))
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
    let binds = [
        bind(DIMS, &u),
        bind(LHS, d_output),
        bind_range(RHS, params, layer.weight_at, layer.weight_len()),
        bind(AUX, input),
        bind(OUT, d_input),
    ];
    product(l, LinearOp::BackwardInput, layer, &binds, (rows, layer.n_in))
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
    let binds = [
        bind(DIMS, &u),
        bind(LHS, d_output),
        bind(RHS, input),
        bind_range(OUT, grads, layer.weight_at, layer.weight_len()),
    ];
    let weight = product(l, LinearOp::BackwardWeight, layer, &binds, (layer.n_out, layer.n_in));
    let bias = l.over(
        Entry::LinearBackwardBias,
        &[bind(DIMS, &u), bind(LHS, d_output), bind_range(OUT, grads, layer.bias_at, layer.n_out)],
        layer.n_out,
    );
    vec![weight, bias]
}
