//! The linear layer: its kernels are one family of WGSL modules, and the kernel plan picks one
//! `LinearKernel` per product (plan/linear.rs): a CPU-family variant (cpu.rs), or the GPU family's
//! workgroup-memory tiles or split subgroup kernel (tiled.rs). The products' buffers are named by
//! role (`Forward`, `BackwardInput`, `Weights`), not by position.
pub mod cpu;
mod operands;
pub mod tiled;

pub use operands::{BackwardInput, Forward, Weights};

use super::{Kind, Layer};
use crate::gpu::{Launch, Launcher};
pub use crate::plan::linear::{linear_groups, LinearOp, LinearVariant};
use crate::plan::LinearKernel;

/// The plan's kernel for `op` of `layer` over `rows`.
fn kernel(l: Launcher, layer: &Layer, op: LinearOp, rows: usize) -> LinearKernel {
    l.plan().linear((layer.n_in, layer.n_out), op, rows)
}

/// output [rows, n_out] = act(input [rows, n_in] W^T + b), W and b read from `params`.
pub fn forward(l: Launcher, layer: &Layer, params: &wgpu::Buffer, rows: usize, io: Forward) -> Vec<Launch> {
    forward_with_bias(l, layer, Weights::of(layer, params), rows, io)
}

/// `forward` with the bias bound from elsewhere.
pub fn forward_with_bias(l: Launcher, layer: &Layer, w: Weights, rows: usize, io: Forward) -> Vec<Launch> {
    forward_by(l, kernel(l, layer, LinearOp::Forward, rows), layer, w, rows, io)
}

/// d_input [rows, n_in] = d_output [rows, n_out] W, masked where the layer's input is 0 (with
/// layer.relu_input).
pub fn backward_input(
    l: Launcher,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    io: BackwardInput,
) -> Vec<Launch> {
    backward_input_by(l, kernel(l, layer, LinearOp::BackwardInput, rows), layer, params, rows, io)
}

/// dW [n_out, n_in] = d_output^T input and db [n_out] = the column sums of d_output, into `grads`.
pub fn backward_params(l: Launcher, layer: &Layer, grads: &wgpu::Buffer, rows: usize, io: Operands) -> Vec<Launch> {
    backward_weight_by(l, kernel(l, layer, LinearOp::BackwardWeight, rows), (layer, true), grads, rows, io)
}

/// dW [n_out, n_in] = d_output^T input alone, into `grads`.
pub fn backward_weight(l: Launcher, layer: &Layer, grads: &wgpu::Buffer, rows: usize, io: Operands) -> Vec<Launch> {
    backward_weight_by(l, kernel(l, layer, LinearOp::BackwardWeight, rows), (layer, false), grads, rows, io)
}

/// The weight gradient's operands: the layer's input [rows, n_in] and d_output [rows, n_out].
pub type Operands<'a> = (&'a wgpu::Buffer, &'a wgpu::Buffer);

/// `forward` by a given kernel (the plan's, or each in turn in the kernel tests).
pub fn forward_by(
    l: Launcher,
    kernel: LinearKernel,
    layer: &Layer,
    w: Weights,
    rows: usize,
    io: Forward,
) -> Vec<Launch> {
    match kernel {
        LinearKernel::Variant(v) => cpu::forward(l, v, layer, w, rows, io),
        planned => tiled::forward(l, planned, layer, w, rows, io),
    }
}

/// `backward_input` by a given kernel.
pub fn backward_input_by(
    l: Launcher,
    kernel: LinearKernel,
    layer: &Layer,
    params: &wgpu::Buffer,
    rows: usize,
    io: BackwardInput,
) -> Vec<Launch> {
    assert!(io.mask.is_some() || !layer.relu_input, "a masked input gradient needs the layer's input");
    match kernel {
        LinearKernel::Variant(v) => cpu::backward_input(l, v, layer, params, rows, io),
        planned => tiled::backward_input(l, planned, layer, params, rows, io),
    }
}

/// dW into `grads` by a given kernel, and db too where `with_bias`.
pub fn backward_weight_by(
    l: Launcher,
    kernel: LinearKernel,
    (layer, with_bias): (&Layer, bool),
    grads: &wgpu::Buffer,
    rows: usize,
    io: Operands,
) -> Vec<Launch> {
    match kernel {
        LinearKernel::Variant(v) => {
            let mut launches = cpu::backward_weight(l, v, layer, grads, rows, io);
            launches.extend(with_bias.then(|| cpu::backward_bias(l, layer, grads, rows, io.1)));
            launches
        }
        planned => tiled::backward_weight(l, planned, layer, grads, rows, io, with_bias),
    }
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
        forward(l, layer, params, rows, Forward { input, output })
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
            let io = BackwardInput { d_output, mask: Some(input), d_input };
            launches.extend(backward_input(l, layer, params, rows, io));
        }
        if let Some(grads) = grads {
            launches.extend(backward_params(l, layer, grads, rows, (input, d_output)));
        }
        launches
    }
}
