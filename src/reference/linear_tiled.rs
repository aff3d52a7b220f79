//! shaders/linear_tiled.wgsl: the linear layer's products for GPUs, whose reduction is cut into
//! slices of `slice_len` indices. With one slice each product returns its finished result; with
//! more it returns the slices' raw partial sums [slices, rows, cols], which its `_sum` kernel adds.
//! Below them, shaders/linear_split_subgroup.wgsl's products for narrow outputs.
use super::data::gather_batch;
use super::linear::{linear_backward_bias, linear_backward_input, linear_backward_weight, linear_forward};
use crate::data::Binarize;
use crate::gpu::params::Counters;

/// Slices of `slice_len` over a reduction of `depth` (at least one).
pub fn tiled_slices(depth: usize, slice_len: usize) -> usize {
    depth.div_ceil(slice_len).max(1)
}

/// [slices, rows, cols] of sum over k in slice s of term(row, col, k).
fn sliced_sums(
    rows: usize,
    cols: usize,
    depth: usize,
    slice_len: usize,
    term: impl Fn(usize, usize, usize) -> f32,
) -> Vec<f32> {
    let slices = tiled_slices(depth, slice_len);
    let mut out = vec![0.0; slices * rows * cols];
    for s in 0..slices {
        for i in 0..rows {
            for j in 0..cols {
                let ks = s * slice_len..depth.min((s + 1) * slice_len);
                out[(s * rows + i) * cols + j] = ks.map(|k| term(i, j, k)).sum();
            }
        }
    }
    out
}

/// y [batch, n_out] = act(x W^T + b) with one slice, else the partials of x W^T.
pub fn linear_forward_tiled(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    relu: bool,
    slice_len: usize,
) -> Vec<f32> {
    if tiled_slices(n_in, slice_len) == 1 {
        return linear_forward(x, w, b, batch, n_in, n_out, relu);
    }
    sliced_sums(batch, n_out, n_in, slice_len, |m, n, k| x[m * n_in + k] * w[n * n_in + k])
}

/// linear_forward_tiled with x gathered from one shard of images as gather_batch gathers it:
/// (y or the partials, x [batch, n_in]). `gather` = gather_batch's arguments after the images.
#[allow(clippy::type_complexity)]
pub fn linear_forward_gather_tiled(
    images: &[u8],
    gather: (&[u32], u32, (Binarize, u32, u32), &Counters),
    w: &[f32],
    b: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    relu: bool,
    slice_len: usize,
) -> (Vec<f32>, Vec<f32>) {
    let (order, pass_rows, draws, counters) = gather;
    let mut x = vec![0.0; batch * n_in];
    let shard = (0, images.len() / n_in);
    gather_batch(images, shard, n_in, order, (batch, pass_rows), draws, counters, &mut x);
    (linear_forward_tiled(&x, w, b, (batch, n_in, n_out), relu, slice_len), x)
}

/// y = act(the partials summed + b).
pub fn linear_forward_tiled_sum(partials: &[f32], b: &[f32], (batch, n_out): (usize, usize), relu: bool) -> Vec<f32> {
    let size = batch * n_out;
    (0..size)
        .map(|e| {
            let y = partials.iter().skip(e).step_by(size).sum::<f32>() + b[e % n_out];
            if relu {
                y.max(0.0)
            } else {
                y
            }
        })
        .collect()
}

/// dx [batch, n_in] = (dy W) act'(x) with one slice, else the partials of dy W.
pub fn linear_backward_input_tiled(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    relu_input: bool,
    slice_len: usize,
) -> Vec<f32> {
    if tiled_slices(n_out, slice_len) == 1 {
        return linear_backward_input(dy, w, x, batch, n_in, n_out, relu_input);
    }
    sliced_sums(batch, n_in, n_out, slice_len, |m, k, n| dy[m * n_out + n] * w[n * n_in + k])
}

/// dx = the partials summed, 0 where x (a ReLU output) is not positive.
pub fn linear_backward_input_tiled_sum(partials: &[f32], x: &[f32], relu_input: bool) -> Vec<f32> {
    let size = x.len();
    (0..size)
        .map(|e| {
            let dx = partials.iter().skip(e).step_by(size).sum::<f32>();
            if relu_input && x[e] <= 0.0 {
                0.0
            } else {
                dx
            }
        })
        .collect()
}

/// (dW [n_out, n_in], db [n_out]) with one slice, else their partials [slices, ...].
pub fn linear_backward_weight_tiled(
    dy: &[f32],
    x: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    slice_len: usize,
) -> (Vec<f32>, Vec<f32>) {
    if tiled_slices(batch, slice_len) == 1 {
        return (linear_backward_weight(dy, x, batch, n_in, n_out), linear_backward_bias(dy, batch, n_out));
    }
    let dw = sliced_sums(n_out, n_in, batch, slice_len, |n, k, m| dy[m * n_out + n] * x[m * n_in + k]);
    let db = sliced_sums(1, n_out, batch, slice_len, |_, n, m| dy[m * n_out + n]);
    (dw, db)
}

/// (dW, db): the partials of each summed over the slices.
pub fn linear_backward_weight_tiled_sum(
    dw_partials: &[f32],
    db_partials: &[f32],
    (n_in, n_out): (usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    let sum = |p: &[f32], size: usize| (0..size).map(|e| p.iter().skip(e).step_by(size).sum()).collect();
    (sum(dw_partials, n_out * n_in), sum(db_partials, n_out))
}

// shaders/linear_split_subgroup.wgsl: the same products, each reduction whole (the kernel cuts it
// among a workgroup's lanes and adds the parts in its own order).

/// y [batch, n_out] = act(x W^T + b).
pub fn linear_forward_split_subgroup(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    relu: bool,
) -> Vec<f32> {
    linear_forward(x, w, b, batch, n_in, n_out, relu)
}

/// dx [batch, n_in] = (dy W) act'(x).
pub fn linear_backward_input_split_subgroup(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
    relu_input: bool,
) -> Vec<f32> {
    linear_backward_input(dy, w, x, batch, n_in, n_out, relu_input)
}

/// (dW [n_out, n_in], db [n_out]).
pub fn linear_backward_weight_split_subgroup(
    dy: &[f32],
    x: &[f32],
    (batch, n_in, n_out): (usize, usize, usize),
) -> (Vec<f32>, Vec<f32>) {
    (linear_backward_weight(dy, x, batch, n_in, n_out), linear_backward_bias(dy, batch, n_out))
}
