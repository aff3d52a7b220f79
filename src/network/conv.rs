//! The convolution layers' launches (shaders/conv.wgsl): Conv2d and ConvTranspose2d over `rows`
//! NCHW images, one invocation per value written.
use super::{ConvShape, Layer, LayerKind};
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::ConvDims;
use crate::gpu::{Launch, Launcher};
use crate::shaders::{conv, Entry};
use conv::{AUX, DIMS, DST, SRC, WEIGHT};

/// The kernels' ConvDims for `rows` images of `c` (relu: on the output forward, the input's mask
/// backward).
pub fn conv_dims(c: &ConvShape, rows: usize, relu: bool) -> ConvDims {
    ConvDims {
        batch: rows as u32,
        c_in: c.input.0 as u32,
        h_in: c.input.1 as u32,
        w_in: c.input.2 as u32,
        c_out: c.output.0 as u32,
        h_out: c.output.1 as u32,
        w_out: c.output.2 as u32,
        kernel: c.kernel as u32,
        stride: c.stride as u32,
        padding: c.padding as u32,
        relu: relu as u32,
        pad: 0,
    }
}

fn dims(l: Launcher, c: &ConvShape, rows: usize, relu: bool) -> wgpu::Buffer {
    l.uniform("conv dims", &conv_dims(c, rows, relu))
}

/// (forward, backward input, backward weight) of the layer's kind.
fn entries(layer: &Layer) -> (Entry, Entry, Entry) {
    match layer.kind {
        LayerKind::ConvTranspose2d(_) => {
            (Entry::ConvTranspose2dForward, Entry::ConvTranspose2dBackwardInput, Entry::ConvTranspose2dBackwardWeight)
        }
        _ => (Entry::Conv2dForward, Entry::Conv2dBackwardInput, Entry::Conv2dBackwardWeight),
    }
}

/// output [rows, c_out h_out w_out] = act(the layer of input [rows, c_in h_in w_in]).
pub fn forward(
    l: Launcher,
    layer: &Layer,
    c: &ConvShape,
    params: &wgpu::Buffer,
    rows: usize,
    (input, output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Launch {
    let u = dims(l, c, rows, layer.relu);
    let binds = [
        bind(DIMS, &u),
        bind(SRC, input),
        bind_range(WEIGHT, params, layer.weight_at, layer.weight_len()),
        bind_range(AUX, params, layer.bias_at, layer.bias_len()),
        bind(DST, output),
    ];
    l.over(entries(layer).0, &binds, rows * layer.n_out)
}

/// d_input from d_output, masked where the layer's input (a ReLU output) is 0.
pub fn backward_input(
    l: Launcher,
    layer: &Layer,
    c: &ConvShape,
    params: &wgpu::Buffer,
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
    d_input: &wgpu::Buffer,
) -> Launch {
    let u = dims(l, c, rows, layer.relu_input);
    let binds = [
        bind(DIMS, &u),
        bind(SRC, d_output),
        bind_range(WEIGHT, params, layer.weight_at, layer.weight_len()),
        bind(AUX, input),
        bind(DST, d_input),
    ];
    l.over(entries(layer).1, &binds, rows * layer.n_in)
}

/// The weight's and the bias's gradients, into `grads`.
pub fn backward_params(
    l: Launcher,
    layer: &Layer,
    c: &ConvShape,
    grads: &wgpu::Buffer,
    rows: usize,
    (input, d_output): (&wgpu::Buffer, &wgpu::Buffer),
) -> Vec<Launch> {
    let u = dims(l, c, rows, false);
    let weight = [
        bind(DIMS, &u),
        bind(SRC, d_output),
        bind(AUX, input),
        bind_range(DST, grads, layer.weight_at, layer.weight_len()),
    ];
    let bias = [bind(DIMS, &u), bind(SRC, d_output), bind_range(DST, grads, layer.bias_at, layer.bias_len())];
    vec![
        l.over(entries(layer).2, &weight, layer.weight_len()),
        l.over(Entry::ConvBackwardBias, &bias, layer.bias_len()),
    ]
}
