//! The linear layer's launches. For the GPU family the workgroup-memory tiles of
//! network/linear_tiled.rs; for the CPU family shaders/linear.wgsl, linear_vec4.wgsl,
//! linear_vec4_subgroup.wgsl and linear_rows(_subgroup).wgsl, as the kernel plan's
//! LinearVariant::choose picks them (plan/linear.rs).
use super::{linear_tiled as tiled, Kind, Layer};
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::Dims;
use crate::gpu::{Launch, Launcher};
pub use crate::plan::linear::{linear_groups, LinearOp, LinearVariant};
use crate::plan::{KernelFamily, LinearKernel};
use crate::reference::linear as reference;
use crate::shaders::{self, Entry};
use shaders::linear::{AUX, COLS_PER_LANE, DIMS, LHS, OUT, RHS, WG};

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

/// One product of `layer` over `batch` rows, writing `rows` x `cols`, with the variant chosen for
/// it. Each of the three is batch x n_in x n_out multiply-adds.
fn product(l: Launcher, op: LinearOp, layer: &Layer, binds: &[Bind], batch: usize, written: (usize, usize)) -> Launch {
    let variant = cpu_variant(l, layer, op, batch);
    let flops = 2 * (batch * layer.n_in * layer.n_out) as u64;
    l.grid(variant.entry(op), binds, variant.groups(op, batch, written))
        .with_flops(flops)
        .with_bytes(layer.product_traffic(batch))
}

fn tiled(l: Launcher) -> bool {
    l.plan().family() == KernelFamily::Gpu
}

/// The CPU family's variant the plan gives `op` of `layer` over `batch` rows.
fn cpu_variant(l: Launcher, layer: &Layer, op: LinearOp, batch: usize) -> LinearVariant {
    match l.plan().linear((layer.n_in, layer.n_out), op, batch) {
        LinearKernel::Variant(v) => v,
        other => unreachable!("the CPU family's launcher got {other:?}"),
    }
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
    let variant = cpu_variant(l, layer, LinearOp::BackwardWeight, rows);
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

/// nn.Linear: y = act(x W^T + b), W [n_out, n_in].
pub struct Linear;

impl Kind for Linear {
    fn shapes(&self, layer: &Layer) -> [Vec<usize>; 2] {
        [vec![layer.n_out, layer.n_in], vec![layer.n_out]]
    }

    fn macs_per_row(&self, layer: &Layer) -> usize {
        layer.n_in * layer.n_out
    }

    fn forward(
        &self,
        l: Launcher,
        layer: &Layer,
        params: &wgpu::Buffer,
        rows: usize,
        (input, output): (&wgpu::Buffer, &wgpu::Buffer),
    ) -> Vec<Launch> {
        forward(l, layer, params, rows, input, output)
    }

    fn backward(
        &self,
        l: Launcher,
        layer: &Layer,
        (params, grads): (&wgpu::Buffer, Option<&wgpu::Buffer>),
        rows: usize,
        (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
        d_input: Option<&wgpu::Buffer>,
    ) -> Vec<Launch> {
        let mut launches = Vec::new();
        if let Some(d_input) = d_input {
            launches.extend(backward_input(l, layer, params, rows, d_output, input, d_input));
        }
        if let Some(grads) = grads {
            launches.extend(backward_params(l, layer, grads, rows, input, d_output));
        }
        launches
    }

    fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let (weight, bias) = layer.tensors_in(params);
        reference::linear_forward(input, weight, bias, rows, layer.n_in, layer.n_out, layer.relu)
    }

    fn reference_backward_input(
        &self,
        layer: &Layer,
        params: &[f32],
        input: &[f32],
        d_output: &[f32],
        rows: usize,
    ) -> Vec<f32> {
        let (weight, _) = layer.tensors_in(params);
        reference::linear_backward_input(d_output, weight, input, rows, layer.n_in, layer.n_out, layer.relu_input)
    }

    fn reference_backward_params(
        &self,
        layer: &Layer,
        _params: &[f32],
        input: &[f32],
        d_output: &[f32],
        rows: usize,
    ) -> [Vec<f32>; 2] {
        [
            reference::linear_backward_weight(d_output, input, rows, layer.n_in, layer.n_out),
            reference::linear_backward_bias(d_output, rows, layer.n_out),
        ]
    }
}
