//! src/network/ on the CPU: the same walks along a path of layers that the GPU side records, each
//! layer by its kind's CPU mirror (network::Mirror, implemented beside each kind's kernel references).
use crate::network::Layer;

/// output [rows, n_out] of input [rows, n_in].
pub fn layer_forward(layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
    layer.kind.computation().reference_forward(layer, params, input, rows)
}

/// d_input [rows, n_in] from d_output [rows, n_out], masked where `input` came out of a ReLU.
pub fn layer_backward_input(layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32> {
    layer.kind.computation().reference_backward_input(layer, params, input, d_output, rows)
}

/// Writes the layer's weight and bias gradients into the flat gradient vector.
pub fn layer_backward_params(layer: &Layer, grads: &mut [f32], input: &[f32], d_output: &[f32], rows: usize) {
    let [dw, db] = layer.kind.computation().reference_backward_params(layer, input, d_output, rows);
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
