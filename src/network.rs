//! Launches for the MLP's linear layers at a given batch size, shared by the trainer and the
//! evaluators (which run the same weights on other row counts).
use crate::gpu::kernels::{bind, bind_range};
use crate::gpu::params::{linear_groups, Dims};
use crate::gpu::{self, Gpu, Kernel, Kernels, Launch};
use crate::model::Layer;

/// The vec4 variant (linear_vec4.wgsl) when both widths are multiples of 4, else the scalar one.
pub fn linear_kernel<'k>(kernels: &'k Kernels, name: &str, l: &Layer) -> &'k Kernel {
    if l.n_in.is_multiple_of(4) && l.n_out.is_multiple_of(4) {
        kernels.get(&format!("{name}_vec4"))
    } else {
        kernels.get(name)
    }
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
    linear_kernel(kernels, "linear_forward", l).launch(
        gpu,
        &[
            bind(0, &u),
            bind(1, input),
            bind_range(2, params, l.weight_at, l.n_in * l.n_out),
            bind_range(3, params, l.bias_at, l.n_out),
            bind(4, output),
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
    linear_kernel(kernels, "linear_backward_input", l).launch(
        gpu,
        &[
            bind(0, &u),
            bind(1, d_output),
            bind_range(2, params, l.weight_at, l.n_in * l.n_out),
            bind(3, input),
            bind(4, d_input),
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
