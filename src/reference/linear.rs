//! CPU mirrors of the linear layer's three kernel families (shaders/linear.wgsl,
//! linear_vec4.wgsl, linear_rows.wgsl): one function per entry point, the same name; the vec4 and
//! rows families compute the same products, so theirs call the plain ones.
use crate::network::linear::Linear;
use crate::network::{Layer, Mirror};

// ---- shaders/linear.wgsl ----

/// y [batch, n_out] = act(x [batch, n_in] W^T + b), W [n_out, n_in].
pub fn linear_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0; batch * n_out];
    for m in 0..batch {
        for n in 0..n_out {
            let dot: f32 = (0..n_in).map(|k| x[m * n_in + k] * w[n * n_in + k]).sum();
            let pre = dot + b[n];
            y[m * n_out + n] = if relu { pre.max(0.0) } else { pre };
        }
    }
    y
}

/// dx [batch, n_in] = dy W, masked where the input x (a ReLU output when relu_input) is 0.
pub fn linear_backward_input(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu_input: bool,
) -> Vec<f32> {
    let mut dx = vec![0.0; batch * n_in];
    for m in 0..batch {
        for k in 0..n_in {
            let s: f32 = (0..n_out).map(|n| dy[m * n_out + n] * w[n * n_in + k]).sum();
            dx[m * n_in + k] = if relu_input && x[m * n_in + k] <= 0.0 { 0.0 } else { s };
        }
    }
    dx
}

/// dW [n_out, n_in] = dy^T x.
pub fn linear_backward_weight(dy: &[f32], x: &[f32], batch: usize, n_in: usize, n_out: usize) -> Vec<f32> {
    let mut dw = vec![0.0; n_out * n_in];
    for n in 0..n_out {
        for k in 0..n_in {
            dw[n * n_in + k] = (0..batch).map(|m| dy[m * n_out + n] * x[m * n_in + k]).sum();
        }
    }
    dw
}

/// db [n_out] = column sums of dy [batch, n_out].
pub fn linear_backward_bias(dy: &[f32], batch: usize, n_out: usize) -> Vec<f32> {
    (0..n_out).map(|n| (0..batch).map(|m| dy[m * n_out + n]).sum()).collect()
}

// ---- The other modules of the CPU family compute the same sums (tests/kernels/linear.rs holds
// the bit-for-bit ones to each other); their entry points' names, for the kernels' tests:
// shaders/linear.wgsl's _narrow entry points, one output per invocation;
// shaders/linear_vec4.wgsl, vec4 loads (n_in, n_out multiples of 4);
// shaders/linear_vec4_subgroup.wgsl, linear_vec4's rows shared through subgroups;
// shaders/linear_rows(_subgroup).wgsl, the forward and input-gradient products, lanes over rows ----
pub use self::linear_backward_input as linear_backward_input_narrow;
pub use self::linear_backward_input as linear_backward_input_rows;
pub use self::linear_backward_input as linear_backward_input_rows_subgroup;
pub use self::linear_backward_input as linear_backward_input_vec4;
pub use self::linear_backward_input as linear_backward_input_vec4_subgroup;
pub use self::linear_backward_weight as linear_backward_weight_narrow;
pub use self::linear_backward_weight as linear_backward_weight_vec4;
pub use self::linear_backward_weight as linear_backward_weight_vec4_subgroup;
pub use self::linear_forward as linear_forward_narrow;
pub use self::linear_forward as linear_forward_rows;
pub use self::linear_forward as linear_forward_rows_subgroup;
pub use self::linear_forward as linear_forward_vec4;
pub use self::linear_forward as linear_forward_vec4_subgroup;

/// The partial dW of each slice of `slice` rows, [slices, n_out, n_in] (one slice: dW itself).
pub fn linear_backward_weight_rows(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    slice: usize,
) -> Vec<f32> {
    (0..batch.div_ceil(slice))
        .flat_map(|s| {
            let rows = (s * slice)..(batch.min((s + 1) * slice));
            let (dy, x) = (&dy[rows.start * n_out..rows.end * n_out], &x[rows.start * n_in..rows.end * n_in]);
            linear_backward_weight(dy, x, rows.len(), n_in, n_out)
        })
        .collect()
}

/// linear_rows_subgroup.wgsl: linear_backward_weight_rows, dy's rows broadcast across a subgroup.
pub fn linear_backward_weight_rows_subgroup(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    slice: usize,
) -> Vec<f32> {
    linear_backward_weight_rows(dy, x, batch, n_in, n_out, slice)
}

/// dW = the sum of `partials` [slices, len] over the slices.
pub fn linear_sum_slices(partials: &[f32], len: usize) -> Vec<f32> {
    (0..len).map(|i| partials.iter().skip(i).step_by(len).sum()).collect()
}

/// nn.Linear from the functions above.
impl Mirror for Linear {
    fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let (weight, bias) = layer.tensors_in(params);
        linear_forward(input, weight, bias, rows, layer.n_in, layer.n_out, layer.relu)
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
        linear_backward_input(d_output, weight, input, rows, layer.n_in, layer.n_out, layer.relu_input)
    }

    fn reference_backward_params(&self, layer: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        [
            linear_backward_weight(d_output, input, rows, layer.n_in, layer.n_out),
            linear_backward_bias(d_output, rows, layer.n_out),
        ]
    }
}
