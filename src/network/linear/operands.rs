//! The buffers of the linear products, named by role.
use super::super::Layer;
use crate::gpu::kernels::{bind_range, Bind};

/// A forward product's input [rows, n_in] and output [rows, n_out].
#[derive(Clone, Copy)]
pub struct Forward<'a> {
    pub input: &'a wgpu::Buffer,
    pub output: &'a wgpu::Buffer,
}

/// An input-gradient product: d_output [rows, n_out] in, d_input [rows, n_in] out, and the
/// layer's input where its gradient is masked (layer.relu_input: zero where the input is).
#[derive(Clone, Copy)]
pub struct BackwardInput<'a> {
    pub d_output: &'a wgpu::Buffer,
    pub mask: Option<&'a wgpu::Buffer>,
    pub d_input: &'a wgpu::Buffer,
}

impl<'a> BackwardInput<'a> {
    /// What the kernels bind as aux: the mask, or without one d_output as a stand-in (the
    /// shaders read aux only under the mask, but every binding needs a buffer).
    pub fn aux(&self) -> &'a wgpu::Buffer {
        self.mask.unwrap_or(self.d_output)
    }
}

/// The weight W [n_out, n_in] at the layer's place in `params`, and the bias (n_out floats).
#[derive(Clone, Copy)]
pub struct Weights<'a> {
    pub params: &'a wgpu::Buffer,
    pub bias: Bind<'a>,
}

impl<'a> Weights<'a> {
    /// The layer's own weight and bias, both in `params`.
    pub fn of(layer: &Layer, params: &'a wgpu::Buffer) -> Weights<'a> {
        Weights { params, bias: bind_range(0, params, layer.bias_at, layer.n_out) }
    }
}
