//! The linear layer's launches for GPU adapters (shaders/linear_tiled.wgsl): workgroup-memory tiles
//! of 64 x 64 outputs, the reduction split into slices when the output alone would launch too few
//! workgroups to fill a big GPU, the bias gradient inside the weight gradient. Narrow products
//! whose plan is split take linear_split_subgroup.wgsl where the adapter has subgroups (one launch).
use super::{linear_split, Layer};
use crate::gpu::kernels::{bind, bind_range, Bind};
use crate::gpu::params::{GatherParams, TiledDims};
use crate::gpu::{self, Launch, Launcher};
use crate::shaders::linear_tiled::{AUX, BIAS_OUT, BK, DIMS, LHS, OUT, RHS, TILE};
use crate::shaders::Entry;

/// Workgroups a product should launch to keep a big GPU busy: an H100 has 132 SMs, each able to
/// hold several 256-invocation workgroups.
const FILL_WORKGROUPS: usize = 264;
/// The shortest slice of a split reduction: shorter ones add more partial sums than they save.
const MIN_SLICE: usize = 128;

/// How a product of `rows` x `cols` outputs over a reduction of `depth` is launched.
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

    pub fn dims(&self, layer: &Layer, batch: usize, relu: bool, bias: bool) -> TiledDims {
        TiledDims {
            batch: batch as u32,
            n_in: layer.n_in as u32,
            n_out: layer.n_out as u32,
            relu: relu as u32,
            slice_len: self.slice_len as u32,
            slices: self.slices as u32,
            bias: bias as u32,
            pad: 0,
        }
    }
}

fn counted(launch: Launch, layer: &Layer, rows: usize) -> Launch {
    launch.with_flops(2 * (rows * layer.n_in * layer.n_out) as u64).with_bytes(super::linear::traffic(layer, rows))
}

fn partials(l: Launcher, plan: &TiledPlan, len: usize) -> wgpu::Buffer {
    gpu::storage_zeroed(l.gpu, "tiled partial sums", plan.slices * len * 4)
}

/// output [rows, n_out] = act(input W^T + bias), W from `params`, the bias bound anywhere.
pub fn forward(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    bias: Bind,
    rows: usize,
    (input, output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    let plan = TiledPlan::new(rows, layer.n_out, layer.n_in);
    let u = l.uniform("tiled dims", &plan.dims(layer, rows, layer.relu, false));
    let weight = bind_range(RHS, params, layer.weight_at, layer.weight_len());
    let bias = Bind { binding: AUX, ..bias };
    let product = |entry: Entry, out: &wgpu::Buffer, grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, input), weight, bias, bind(OUT, out)];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let Some(grid) = linear_split::grid(l, &plan, rows, layer.n_out) {
        return vec![product(Entry::LinearForwardSplitSubgroup, output, grid)];
    }
    if plan.slices == 1 {
        return vec![product(Entry::LinearForwardTiled, output, plan.grid)];
    }
    let sums = partials(l, &plan, rows * layer.n_out);
    let finish = [bind(DIMS, &u), bind(LHS, &sums), bias, bind(OUT, output)];
    vec![
        product(Entry::LinearForwardTiled, &sums, plan.grid),
        l.over(Entry::LinearForwardTiledSum, &finish, rows * layer.n_out),
    ]
}

/// d_input [rows, n_in] = d_output W, masked where `input` (a ReLU output) is 0.
pub fn backward_input(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    (d_output, input, d_input): (&wgpu::Buffer, &wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    let plan = TiledPlan::new(rows, layer.n_in, layer.n_out);
    let u = l.uniform("tiled dims", &plan.dims(layer, rows, layer.relu_input, false));
    let weight = bind_range(RHS, params, layer.weight_at, layer.weight_len());
    let product = |entry: Entry, out: &wgpu::Buffer, grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), weight, bind(AUX, input), bind(OUT, out)];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let Some(grid) = linear_split::grid(l, &plan, rows, layer.n_in) {
        return vec![product(Entry::LinearBackwardInputSplitSubgroup, d_input, grid)];
    }
    if plan.slices == 1 {
        return vec![product(Entry::LinearBackwardInputTiled, d_input, plan.grid)];
    }
    let sums = partials(l, &plan, rows * layer.n_in);
    let finish = [bind(DIMS, &u), bind(LHS, &sums), bind(AUX, input), bind(OUT, d_input)];
    vec![
        product(Entry::LinearBackwardInputTiled, &sums, plan.grid),
        l.over(Entry::LinearBackwardInputTiledSum, &finish, rows * layer.n_in),
    ]
}

/// dW [n_out, n_in] = d_output^T input into `grads`, and with `with_bias` db [n_out] (the column
/// sums of d_output) in the same launch.
pub fn backward_weight(
    l: Launcher,
    layer: &Layer,
    grads: &wgpu::Buffer,
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
    with_bias: bool,
) -> Vec<Launch> {
    let plan = TiledPlan::new(layer.n_out, layer.n_in, rows);
    let u = l.uniform("tiled dims", &plan.dims(layer, rows, false, with_bias));
    let unused = gpu::storage_zeroed(l.gpu, "no bias gradient", 16);
    let d_weight = bind_range(OUT, grads, layer.weight_at, layer.weight_len());
    let d_bias = match with_bias {
        true => bind_range(BIAS_OUT, grads, layer.bias_at, layer.n_out),
        false => bind(BIAS_OUT, &unused),
    };
    let product = |entry: Entry, (dw, db): (Bind, Bind), grid: [u32; 3]| {
        let binds = [bind(DIMS, &u), bind(LHS, d_output), bind(RHS, input), dw, db];
        counted(l.grid(entry, &binds, grid), layer, rows)
    };
    if let Some(grid) = linear_split::grid(l, &plan, layer.n_out, layer.n_in) {
        return vec![product(Entry::LinearBackwardWeightSplitSubgroup, (d_weight, d_bias), grid)];
    }
    if plan.slices == 1 {
        return vec![product(Entry::LinearBackwardWeightTiled, (d_weight, d_bias), plan.grid)];
    }
    let (dw_sums, db_sums) = (partials(l, &plan, layer.weight_len()), partials(l, &plan, layer.n_out));
    let finish = [bind(DIMS, &u), bind(LHS, &dw_sums), bind(RHS, &db_sums), d_weight, d_bias];
    vec![
        product(Entry::LinearBackwardWeightTiled, (bind(OUT, &dw_sums), bind(BIAS_OUT, &db_sums)), plan.grid),
        l.over(Entry::LinearBackwardWeightTiledSum, &finish, layer.weight_len()),
    ]
}

/// Whether a first layer over `rows` may gather its own input (`forward_gathered`): its forward
/// product runs on the tiled kernel, not linear_split_subgroup.wgsl.
pub fn gathers(l: Launcher, layer: &Layer, rows: usize) -> bool {
    linear_split::grid(l, &TiledPlan::new(rows, layer.n_out, layer.n_in), rows, layer.n_out).is_none()
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
/// also writes to input.x: one launch fewer than the gather and `forward`. Only where `gathers`
/// holds.
pub fn forward_gathered(
    l: Launcher,
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
    let plan = TiledPlan::new(rows, layer.n_out, layer.n_in);
    let u = l.uniform("tiled dims", &plan.dims(layer, rows, layer.relu, false));
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
    vec![product(&sums), l.over(Entry::LinearForwardTiledSum, &finish, rows * layer.n_out)]
}
