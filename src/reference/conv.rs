//! CPU mirrors of shaders/conv.wgsl, NCHW as PyTorch: x [batch, c_in, h_in, w_in], y [batch,
//! c_out, h_out, w_out]; Conv2d weight [c_out, c_in, k, k], ConvTranspose2d weight [c_in, c_out, k,
//! k]. Written as scatter loops over (input, tap) pairs, the other way round from the kernels'
//! gathers, so that the two agree only if the index arithmetic is right.
use crate::gpu::params::ConvDims;
use crate::network::conv::conv_dims;
use crate::network::conv_kinds::{Conv2d, ConvTranspose2d};
use crate::network::{ConvShape, Layer, Mirror};

pub(super) fn sizes(d: &ConvDims) -> [usize; 10] {
    [d.rows, d.c_in, d.h_in, d.w_in, d.c_out, d.h_out, d.w_out, d.kernel, d.stride, d.padding].map(|v| v as usize)
}

/// Every (n, ci, iy, ix, co, oy, ox, ky, kx) where Conv2d's output (oy, ox) taps input (iy, ix)
/// through kernel offset (ky, kx), i.e. iy = oy stride + ky - padding; ConvTranspose2d has the same
/// pairs with input and output swapped.
fn taps(d: &ConvDims, mut f: impl FnMut([usize; 9])) {
    let [b, ci_n, h_in, w_in, co_n, h_out, w_out, k, s, p] = sizes(d);
    for n in 0..b {
        for co in 0..co_n {
            for oy in 0..h_out {
                for ox in 0..w_out {
                    for ci in 0..ci_n {
                        for ky in 0..k {
                            for kx in 0..k {
                                let (iy, ix) =
                                    ((oy * s + ky) as isize - p as isize, (ox * s + kx) as isize - p as isize);
                                if iy >= 0 && ix >= 0 && (iy as usize) < h_in && (ix as usize) < w_in {
                                    f([n, ci, iy as usize, ix as usize, co, oy, ox, ky, kx]);
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) fn relu_if(v: &mut [f32], relu: bool) {
    if relu {
        v.iter_mut().for_each(|x| *x = x.max(0.0));
    }
}

/// y = act(conv(x, W) + b).
pub fn conv2d_forward(d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut y: Vec<f32> =
        (0..d.rows as usize * c_out * h_out * w_out).map(|i| bias[(i / (h_out * w_out)) % c_out]).collect();
    taps(d, |[n, ci, iy, ix, co, oy, ox, ky, kx]| {
        y[((n * c_out + co) * h_out + oy) * w_out + ox] +=
            w[((co * c_in + ci) * k + ky) * k + kx] * x[((n * c_in + ci) * h_in + iy) * w_in + ix];
    });
    relu_if(&mut y, d.relu != 0);
    y
}

/// dx from dy, masked where x is 0 when `d.relu` (the layer's input came out of a ReLU).
pub fn conv2d_backward_input(d: &ConvDims, dy: &[f32], w: &[f32], x: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut dx = vec![0.0; d.rows as usize * c_in * h_in * w_in];
    taps(d, |[n, ci, iy, ix, co, oy, ox, ky, kx]| {
        dx[((n * c_in + ci) * h_in + iy) * w_in + ix] +=
            w[((co * c_in + ci) * k + ky) * k + kx] * dy[((n * c_out + co) * h_out + oy) * w_out + ox];
    });
    mask(&mut dx, x, d.relu != 0);
    dx
}

pub(super) fn mask(dx: &mut [f32], x: &[f32], relu_input: bool) {
    if relu_input {
        dx.iter_mut().zip(x).filter(|(_, &x)| x <= 0.0).for_each(|(d, _)| *d = 0.0);
    }
}

/// dW [c_out, c_in, k, k].
pub fn conv2d_backward_weight(d: &ConvDims, dy: &[f32], x: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut dw = vec![0.0; c_out * c_in * k * k];
    taps(d, |[n, ci, iy, ix, co, oy, ox, ky, kx]| {
        dw[((co * c_in + ci) * k + ky) * k + kx] +=
            dy[((n * c_out + co) * h_out + oy) * w_out + ox] * x[((n * c_in + ci) * h_in + iy) * w_in + ix];
    });
    dw
}

/// db [c_out] = dy summed over the batch and positions.
pub fn conv_backward_bias(d: &ConvDims, dy: &[f32]) -> Vec<f32> {
    let (c_out, plane) = (d.c_out as usize, (d.h_out * d.w_out) as usize);
    let mut db = vec![0.0; c_out];
    for (i, v) in dy.iter().enumerate() {
        db[(i / plane) % c_out] += v;
    }
    db
}

/// The Conv2d that a ConvTranspose2d of `d` is the transpose of: input and output swapped.
fn transposed(d: &ConvDims) -> ConvDims {
    ConvDims { c_in: d.c_out, h_in: d.h_out, w_in: d.w_out, c_out: d.c_in, h_out: d.h_in, w_out: d.w_in, ..*d }
}

/// y = act(conv_transpose(x, W) + b), W [c_in, c_out, k, k].
pub fn conv_transpose2d_forward(d: &ConvDims, x: &[f32], w: &[f32], bias: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut y: Vec<f32> =
        (0..d.rows as usize * c_out * h_out * w_out).map(|i| bias[(i / (h_out * w_out)) % c_out]).collect();
    // The Conv2d from y's shape to x's: its "output" (oy, ox) is our input, its "input" ours.
    taps(&transposed(d), |[n, co, oy, ox, ci, iy, ix, ky, kx]| {
        y[((n * c_out + co) * h_out + oy) * w_out + ox] +=
            w[((ci * c_out + co) * k + ky) * k + kx] * x[((n * c_in + ci) * h_in + iy) * w_in + ix];
    });
    relu_if(&mut y, d.relu != 0);
    y
}

/// dx from dy, masked where x is 0 when `d.relu`.
pub fn conv_transpose2d_backward_input(d: &ConvDims, dy: &[f32], w: &[f32], x: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut dx = vec![0.0; d.rows as usize * c_in * h_in * w_in];
    taps(&transposed(d), |[n, co, oy, ox, ci, iy, ix, ky, kx]| {
        dx[((n * c_in + ci) * h_in + iy) * w_in + ix] +=
            w[((ci * c_out + co) * k + ky) * k + kx] * dy[((n * c_out + co) * h_out + oy) * w_out + ox];
    });
    mask(&mut dx, x, d.relu != 0);
    dx
}

/// dW [c_in, c_out, k, k].
pub fn conv_transpose2d_backward_weight(d: &ConvDims, dy: &[f32], x: &[f32]) -> Vec<f32> {
    let [_, c_in, h_in, w_in, c_out, h_out, w_out, k, ..] = sizes(d);
    let mut dw = vec![0.0; c_in * c_out * k * k];
    taps(&transposed(d), |[n, co, oy, ox, ci, iy, ix, ky, kx]| {
        dw[((ci * c_out + co) * k + ky) * k + kx] +=
            x[((n * c_in + ci) * h_in + iy) * w_in + ix] * dy[((n * c_out + co) * h_out + oy) * w_out + ox];
    });
    dw
}

/// Conv2d, or with `transposed` ConvTranspose2d.
struct Convolution {
    shape: ConvShape,
    transposed: bool,
}

impl Mirror for Convolution {
    fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
        let ((weight, bias), d) = (layer.tensors_in(params), conv_dims(&self.shape, rows, layer.relu));
        match self.transposed {
            false => conv2d_forward(&d, input, weight, bias),
            true => conv_transpose2d_forward(&d, input, weight, bias),
        }
    }

    fn reference_backward_input(
        &self,
        layer: &Layer,
        params: &[f32],
        input: &[f32],
        d_output: &[f32],
        rows: usize,
    ) -> Vec<f32> {
        let ((weight, _), d) = (layer.tensors_in(params), conv_dims(&self.shape, rows, layer.relu_input));
        match self.transposed {
            false => conv2d_backward_input(&d, d_output, weight, input),
            true => conv_transpose2d_backward_input(&d, d_output, weight, input),
        }
    }

    fn reference_backward_params(&self, _: &Layer, input: &[f32], d_output: &[f32], rows: usize) -> [Vec<f32>; 2] {
        let d = conv_dims(&self.shape, rows, false);
        let weight = match self.transposed {
            false => conv2d_backward_weight(&d, d_output, input),
            true => conv_transpose2d_backward_weight(&d, d_output, input),
        };
        [weight, conv_backward_bias(&d, d_output)]
    }
}

/// Conv2d and ConvTranspose2d through `Convolution`.
macro_rules! convolution {
    ($kind:ty, $transposed:expr) => {
        impl Mirror for $kind {
            fn reference_forward(&self, layer: &Layer, params: &[f32], input: &[f32], rows: usize) -> Vec<f32> {
                Convolution { shape: self.0, transposed: $transposed }.reference_forward(layer, params, input, rows)
            }

            fn reference_backward_input(
                &self,
                layer: &Layer,
                params: &[f32],
                input: &[f32],
                d_output: &[f32],
                rows: usize,
            ) -> Vec<f32> {
                Convolution { shape: self.0, transposed: $transposed }
                    .reference_backward_input(layer, params, input, d_output, rows)
            }

            fn reference_backward_params(
                &self,
                layer: &Layer,
                input: &[f32],
                d_output: &[f32],
                rows: usize,
            ) -> [Vec<f32>; 2] {
                Convolution { shape: self.0, transposed: $transposed }
                    .reference_backward_params(layer, input, d_output, rows)
            }
        }
    };
}
convolution!(Conv2d, false);
convolution!(ConvTranspose2d, true);
