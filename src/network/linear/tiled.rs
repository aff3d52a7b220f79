//! The GPU family's linear launches (shaders/linear_tiled.wgsl): workgroup-memory tiles of 64 x 64
//! outputs, the reduction split into slices when the output alone would launch too few workgroups
//! to fill a big GPU, the bias gradient inside the weight gradient. Narrow products whose plan is
//! split take linear_split_subgroup.wgsl where the adapter has subgroups (one launch), bound alike
//! (build.rs checks that the two modules share binding numbers).
use super::super::Layer;
use super::operands::{BackwardInput, Forward, Weights};
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::{GatherParams, TiledDims};
use crate::gpu::{self, Launch, Launcher};
use crate::plan::linear::{split_entry, tiled_entries};
pub use crate::plan::TiledPlan;
use crate::plan::{LinearKernel, LinearOp};
use crate::shaders::linear_tiled::{AUX, BIAS_OUT, DIMS, LHS, OUT, RHS};
use crate::shaders::Entry;

/// linear_tiled.wgsl's uniform for a product of `plan` on `layer` over `batch` rows.
fn tiled_dims(plan: &TiledPlan, layer: &Layer, batch: usize, relu: bool, bias: bool) -> TiledDims {
    TiledDims {
        rows: batch as u32,
        n_in: layer.n_in as u32,
        n_out: layer.n_out as u32,
        relu: relu as u32,
        slice_len: plan.slice_len as u32,
        slices: plan.slices as u32,
        bias: bias as u32,
        pad: 0,
    }
}

/// The tiled plan whose uniform both kernels read, for the plan's `kernel` of `op` (the split
/// kernel reads dims.rows .. bias of a one-slice plan).
fn tiled_plan(kernel: LinearKernel, layer: &Layer, op: LinearOp, rows: usize) -> TiledPlan {
    match kernel {
        LinearKernel::Tiled(plan) => plan,
        _ => {
            let (out_rows, out_cols, depth) = TiledPlan::shape((layer.n_in, layer.n_out), op, rows);
            TiledPlan::new(out_rows, out_cols, depth)
        }
    }
}

fn counted(launch: Launch, layer: &Layer, rows: usize) -> Launch {
    launch.with_flops(2 * (rows * layer.n_in * layer.n_out) as u64).with_bytes(layer.product_traffic(rows))
}

fn partials(l: Launcher, plan: &TiledPlan, len: usize) -> wgpu::Buffer {
    gpu::zeroed::<f32>(l.gpu, "tiled partial sums", plan.slices * len)
}

/// output [rows, n_out] = act(input W^T + bias) by the plan's `kernel`.
pub fn forward(l: Launcher, kernel: LinearKernel, layer: &Layer, w: Weights, rows: usize, io: Forward) -> Vec<Launch> {
    let Forward { input, output } = io;
    let plan = tiled_plan(kernel, layer, LinearOp::Forward, rows);
    let u = l.uniform("tiled dims", &tiled_dims(&plan, layer, rows, layer.relu, false));
    let weight = bind_range(RHS, w.params, layer.weight_at, layer.weight_len());
    let bias = Bind { binding: AUX, ..w.bias };
    let product = |entry: Entry, out: &wgpu::Buffer, grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, input), weight, bias, bind(OUT, out)];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let LinearKernel::Split(grid) = kernel {
        return vec![product(split_entry(LinearOp::Forward), output, grid)];
    }
    if plan.slices == 1 {
        return vec![product(tiled_entries(LinearOp::Forward).0, output, plan.grid)];
    }
    let sums = partials(l, &plan, rows * layer.n_out);
    let finish = [bind(DIMS, &u), bind(LHS, &sums), bias, bind(OUT, output)];
    vec![
        product(tiled_entries(LinearOp::Forward).0, &sums, plan.grid),
        l.over(tiled_entries(LinearOp::Forward).1, &finish, rows * layer.n_out),
    ]
}

/// d_input [rows, n_in] = d_output W, masked where the layer's input (a ReLU output) is 0.
pub fn backward_input(
    l: Launcher,
    kernel: LinearKernel,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    io: BackwardInput,
) -> Vec<Launch> {
    let (BackwardInput { d_output, d_input, .. }, input) = (io, io.aux());
    let plan = tiled_plan(kernel, layer, LinearOp::BackwardInput, rows);
    let u = l.uniform("tiled dims", &tiled_dims(&plan, layer, rows, layer.relu_input, false));
    let weight = bind_range(RHS, params, layer.weight_at, layer.weight_len());
    let product = |entry: Entry, out: &wgpu::Buffer, grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), weight, bind(AUX, input), bind(OUT, out)];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let LinearKernel::Split(grid) = kernel {
        return vec![product(split_entry(LinearOp::BackwardInput), d_input, grid)];
    }
    if plan.slices == 1 {
        return vec![product(tiled_entries(LinearOp::BackwardInput).0, d_input, plan.grid)];
    }
    let sums = partials(l, &plan, rows * layer.n_in);
    let finish = [bind(DIMS, &u), bind(LHS, &sums), bind(AUX, input), bind(OUT, d_input)];
    vec![
        product(tiled_entries(LinearOp::BackwardInput).0, &sums, plan.grid),
        l.over(tiled_entries(LinearOp::BackwardInput).1, &finish, rows * layer.n_in),
    ]
}

/// dW [n_out, n_in] = d_output^T input into `grads`, and with `with_bias` db [n_out] (the column
/// sums of d_output) in the same launch.
pub fn backward_weight(
    l: Launcher,
    kernel: LinearKernel,
    layer: &Layer,
    grads: &wgpu::Buffer,
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
    with_bias: bool,
) -> Vec<Launch> {
    let plan = tiled_plan(kernel, layer, LinearOp::BackwardWeight, rows);
    let u = l.uniform("tiled dims", &tiled_dims(&plan, layer, rows, false, with_bias));
    let unused = gpu::zeroed::<f32>(l.gpu, "no bias gradient", 4);
    let d_weight = bind_range(OUT, grads, layer.weight_at, layer.weight_len());
    let d_bias = match with_bias {
        true => bind_range(BIAS_OUT, grads, layer.bias_at, layer.n_out),
        false => bind(BIAS_OUT, &unused),
    };
    let product = |entry: Entry, (dw, db): (Bind, Bind), grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), dw, db];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let LinearKernel::Split(grid) = kernel {
        return vec![product(split_entry(LinearOp::BackwardWeight), (d_weight, d_bias), grid)];
    }
    if plan.slices == 1 {
        return vec![product(tiled_entries(LinearOp::BackwardWeight).0, (d_weight, d_bias), plan.grid)];
    }
    let (dw_sums, db_sums) = (partials(l, &plan, layer.weight_len()), partials(l, &plan, layer.n_out));
    let finish = [bind(DIMS, &u), bind(LHS, &dw_sums), bind(RHS, &db_sums), d_weight, d_bias];
    vec![
        product(tiled_entries(LinearOp::BackwardWeight).0, (bind(OUT, &dw_sums), bind(BIAS_OUT, &db_sums)), plan.grid),
        l.over(tiled_entries(LinearOp::BackwardWeight).1, &finish, layer.weight_len()),
    ]
}

/// Where a first layer's product gathers its input (linear_forward_gather_tiled): one shard of
/// images, the pass's order read at the cursor in `counters`, and x [params.batch, n_in] to write
/// for the kernels that read the batch later.
pub struct GatheredInput<'a> {
    pub images: &'a wgpu::Buffer,
    pub order: &'a wgpu::Buffer,
    pub counters: &'a wgpu::Buffer,
    pub x: &'a wgpu::Buffer,
    pub params: GatherParams,
}

/// `forward` of a first layer with the batch gathered inside the product from `input`, which it
/// also writes to input.x: one launch fewer than the gather and `forward`. Only where the plan's
/// first_layer_gathers holds.
pub fn forward_gathered(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    input: &GatheredInput,
    output: &wgpu::Buffer,
) -> Vec<Launch> {
    let rows = input.params.batch as usize;
    let kernel = l.plan().linear((layer.n_in, layer.n_out), LinearOp::Forward, rows);
    let LinearKernel::Tiled(plan) = kernel else { panic!("forward_gathered: the plan gives this layer {kernel:?}") };
    forward_gathered_by(l, plan, layer, params, input, output)
}

/// `forward_gathered` by a given tiled plan (the plan's, or the kernel tests' slices).
pub fn forward_gathered_by(
    l: Launcher,
    plan: TiledPlan,
    layer: &Layer,
    params: &wgpu::Buffer,
    input: &GatheredInput,
    output: &wgpu::Buffer,
) -> Vec<Launch> {
    use crate::shaders::linear_tiled::{COUNTERS, GATHER_PARAMS, IMAGES, ORDER, X};
    let rows = input.params.batch as usize;
    assert_eq!(
        layer.n_in,
        4 * input.params.words as usize,
        "forward_gathered: the layer must take the images as they are"
    );
    let u = l.uniform("tiled dims", &tiled_dims(&plan, layer, rows, layer.relu, false));
    let g = l.uniform("gather params", &input.params);
    let weight = bind_range(RHS, params, layer.weight_at, layer.weight_len());
    let bias = bind_range(AUX, params, layer.bias_at, layer.n_out);
    let product = |out: &wgpu::Buffer| {
        let binds = [
            bind(DIMS, &u),
            weight,
            bias,
            bind(OUT, out),
            bind(GATHER_PARAMS, &g),
            bind(COUNTERS, input.counters),
            bind(IMAGES, input.images),
            bind(ORDER, input.order),
            bind(X, input.x),
        ];
        counted(l.grid(Entry::LinearForwardGatherTiled, &binds, plan.grid), layer, rows)
    };
    if plan.slices == 1 {
        return vec![product(output)];
    }
    let sums = partials(l, &plan, rows * layer.n_out);
    let finish = [bind(DIMS, &u), bind(LHS, &sums), bias, bind(OUT, output)];
    vec![product(&sums), l.over(tiled_entries(LinearOp::Forward).1, &finish, rows * layer.n_out)]
}
