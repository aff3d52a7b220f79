//! Each layer kind (network::LayerKind) on the CPU, from its kernels' reference functions: the
//! reference side's one list of kinds (`of`), which network/ does not import.
use super::conv as rc;
use super::group_norm::{self as rg, GroupNormSizes};
use super::linear as rl;
use crate::network::conv::conv_dims;
use crate::network::conv_kinds::{Conv2d, ConvTranspose2d};
use crate::network::group_norm::{GroupNorm, EPS};
use crate::network::{ConvShape, Layer, LayerKind};

/// A kind's forward and backward passes on the CPU, for a `Layer` of that kind.
pub trait LayerReference {
    /// output [rows, n_out] of input [rows, n_in].
    fn forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32>;

    /// d_input [rows, n_in] from d_output [rows, n_out], masked where `input` came out of a ReLU.
    fn backward_input(&self, layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32>;

    /// The weight's and the bias's gradients.
    fn backward_params(&self, layer: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2];
}

/// The reference of `kind`.
pub fn of(kind: &LayerKind) -> &dyn LayerReference {
    match kind {
        LayerKind::Linear => &Linear,
        LayerKind::Conv2d(k) => k,
        LayerKind::ConvTranspose2d(k) => k,
        LayerKind::GroupNorm(k) => k,
    }
}

struct Linear;

impl LayerReference for Linear {
    fn forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let (weight, bias) = layer.tensors_in(params);
        rl::linear_forward(input, weight, bias, rows, layer.n_in, layer.n_out, layer.relu)
    }

    fn backward_input(&self, layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32> {
        let (weight, _) = layer.tensors_in(params);
        rl::linear_backward_input(d_output, weight, input, rows, layer.n_in, layer.n_out, layer.relu_input)
    }

    fn backward_params(&self, layer: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        [
            rl::linear_backward_weight(d_output, input, rows, layer.n_in, layer.n_out),
            rl::linear_backward_bias(d_output, rows, layer.n_out),
        ]
    }
}

/// Conv2d, or with `transposed` ConvTranspose2d.
struct Convolution {
    shape: ConvShape,
    transposed: bool,
}

impl LayerReference for Convolution {
    fn forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let ((weight, bias), d) = (layer.tensors_in(params), conv_dims(&self.shape, rows, layer.relu));
        match self.transposed {
            false => rc::conv2d_forward(&d, input, weight, bias),
            true => rc::conv_transpose2d_forward(&d, input, weight, bias),
        }
    }

    fn backward_input(&self, layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32> {
        let ((weight, _), d) = (layer.tensors_in(params), conv_dims(&self.shape, rows, layer.relu_input));
        match self.transposed {
            false => rc::conv2d_backward_input(&d, d_output, weight, input),
            true => rc::conv_transpose2d_backward_input(&d, d_output, weight, input),
        }
    }

    fn backward_params(&self, _: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        let d = conv_dims(&self.shape, rows, false);
        let weight = match self.transposed {
            false => rc::conv2d_backward_weight(&d, d_output, input),
            true => rc::conv_transpose2d_backward_weight(&d, d_output, input),
        };
        [weight, rc::conv_backward_bias(&d, d_output)]
    }
}

/// Conv2d and ConvTranspose2d through `Convolution`.
macro_rules! convolution {
    ($kind:ty, $transposed:expr) => {
        impl LayerReference for $kind {
            fn forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
                Convolution { shape: self.0, transposed: $transposed }.forward(layer, params, input, rows)
            }

            fn backward_input(
                &self,
                layer: &Layer,
                params: &[f32],
                input: &[f32],
                d_output: &[f32],
                rows: usize,
            ) -> Vec<f32> {
                Convolution { shape: self.0, transposed: $transposed }
                    .backward_input(layer, params, input, d_output, rows)
            }

            fn backward_params(&self, layer: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
                Convolution { shape: self.0, transposed: $transposed }.backward_params(layer, input, d_output, rows)
            }
        }
    };
}
convolution!(Conv2d, false);
convolution!(ConvTranspose2d, true);

fn sizes(k: &GroupNorm, rows: usize) -> GroupNormSizes {
    GroupNormSizes { rows, channels: k.channels, groups: k.groups, spatial: k.spatial, eps: EPS }
}

impl LayerReference for GroupNorm {
    fn forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let ((gamma, beta), d) = (layer.tensors_in(params), sizes(self, rows));
        let stats = rg::group_norm_stats(&d, input);
        rg::group_norm_forward(&d, input, gamma, beta, &stats, layer.relu)
    }

    fn backward_input(&self, layer: &Layer, params: &[f32], input: &[f32], d_output: &[f32], rows: usize) -> Vec<f32> {
        let ((gamma, _), d) = (layer.tensors_in(params), sizes(self, rows));
        let stats = rg::group_norm_stats(&d, input);
        let sums = rg::group_norm_backward_stats(&d, d_output, gamma, input, &stats);
        rg::group_norm_backward_input(&d, d_output, gamma, input, &stats, &sums, layer.relu_input)
    }

    fn backward_params(&self, _: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        let d = sizes(self, rows);
        let stats = rg::group_norm_stats(&d, input);
        [rg::group_norm_backward_weight(&d, d_output, input, &stats), rg::group_norm_backward_bias(&d, d_output)]
    }
}
