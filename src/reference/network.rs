//! src/network/ on the CPU: a layer's forward and backward by kind, from the kernels' references,
//! and the same walks along a path of layers that the GPU side records.
use super::conv::*;
use super::kernels::{linear_backward_bias, linear_backward_input, linear_backward_weight, linear_forward};
use crate::network::conv::conv_dims;
use crate::network::{Layer, LayerKind};

fn weight<'a>(params: &'a [f32], layer: &Layer) -> &'a [f32] {
    &params[layer.weight_at..layer.weight_at + layer.weight_len()]
}

/// output [rows, n_out] of input [rows, n_in].
pub fn layer_forward(layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
    let bias = &params[layer.bias_at..layer.bias_at + layer.bias_len()];
    match layer.kind {
        LayerKind::Linear => {
            linear_forward(input, weight(params, layer), bias, rows, layer.n_in, layer.n_out, layer.relu)
        }
        LayerKind::Conv2d(c) => conv2d_forward(&conv_dims(&c, rows, layer.relu), input, weight(params, layer), bias),
        LayerKind::ConvTranspose2d(c) => {
            conv_transpose2d_forward(&conv_dims(&c, rows, layer.relu), input, weight(params, layer), bias)
        }
    }
}

/// d_input [rows, n_in] from d_output [rows, n_out], masked where `input` came out of a ReLU.
pub fn layer_backward_input(layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32> {
    match layer.kind {
        LayerKind::Linear => linear_backward_input(
            d_output,
            weight(params, layer),
            input,
            rows,
            layer.n_in,
            layer.n_out,
            layer.relu_input,
        ),
        LayerKind::Conv2d(c) => {
            conv2d_backward_input(&conv_dims(&c, rows, layer.relu_input), d_output, weight(params, layer), input)
        }
        LayerKind::ConvTranspose2d(c) => conv_transpose2d_backward_input(
            &conv_dims(&c, rows, layer.relu_input),
            d_output,
            weight(params, layer),
            input,
        ),
    }
}

/// Writes the layer's weight and bias gradients into the flat gradient vector.
pub fn layer_backward_params(layer: &Layer, grads: &mut [f32], input: &[f32], d_output: &[f32], rows: usize) {
    let (dw, db) = match layer.kind {
        LayerKind::Linear => (
            linear_backward_weight(d_output, input, rows, layer.n_in, layer.n_out),
            linear_backward_bias(d_output, rows, layer.n_out),
        ),
        LayerKind::Conv2d(c) => {
            let d = conv_dims(&c, rows, false);
            (conv2d_backward_weight(&d, d_output, input), conv_backward_bias(&d, d_output))
        }
        LayerKind::ConvTranspose2d(c) => {
            let d = conv_dims(&c, rows, false);
            (conv_transpose2d_backward_weight(&d, d_output, input), conv_backward_bias(&d, d_output))
        }
    };
    grads[layer.weight_at..layer.weight_at + dw.len()].copy_from_slice(&dw);
    grads[layer.bias_at..layer.bias_at + db.len()].copy_from_slice(&db);
}

/// Every activation of a path: [input, layer 0's output, ..., the last layer's output].
pub fn forward_path(layers: &[Layer], params: &[f32], input: Vec<f32>, rows: usize) -> Vec<Vec<f32>> {
    let mut acts = vec![input];
    for layer in layers {
        let out = layer_forward(layer, params, acts.last().expect("the path's input"), rows);
        acts.push(out);
    }
    acts
}

/// Backward along a path, last layer first, from the loss's gradient d_output at its end: every
/// layer's parameter gradients into `grads` (unless None: frozen layers), and the gradient of
/// the path's input when `want_input` (None otherwise: the first layer's is never computed).
pub fn backward_path(
    layers: &[Layer],
    params: &[f32],
    mut grads: Option<&mut [f32]>,
    acts: &[Vec<f32>],
    d_output: Vec<f32>,
    rows: usize,
    want_input: bool,
) -> Option<Vec<f32>> {
    let mut d = d_output;
    for (i, layer) in layers.iter().enumerate().rev() {
        if let Some(g) = grads.as_deref_mut() {
            layer_backward_params(layer, g, &acts[i], &d, rows);
        }
        if i == 0 && !want_input {
            return None;
        }
        d = layer_backward_input(layer, params, &acts[i], &d, rows);
    }
    Some(d)
}
