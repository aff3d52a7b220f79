//! shaders/conv.wgsl against src/reference/conv.rs at awkward shapes (odd sides, channel counts
//! that are not multiples of 4, batch 3, taps across the padded borders), and the backward
//! references against finite differences of their forwards.
use crate::common::*;
use wgvae::gpu::align_floats;
use wgvae::gpu::kernels::Bind;
use wgvae::network::conv::{self, Move};
use wgvae::network::conv_kinds::{Conv2d, ConvTranspose2d};
use wgvae::network::{ConvShape, Layer, LayerKind};
use wgvae::reference::conv as rc;

/// Conv2d shapes: batch 3, 3 -> 5 channels, a 7 x 9 input; the output side follows.
fn conv(kernel: u32, stride: u32, padding: u32, relu: bool) -> ConvDims {
    let (h_in, w_in) = (7, 9);
    let out = |i: u32| (i + 2 * padding - kernel) / stride + 1;
    let (h_out, w_out) = (out(h_in), out(w_in));
    ConvDims {
        rows: 3,
        c_in: 3,
        h_in,
        w_in,
        c_out: 5,
        h_out,
        w_out,
        kernel,
        stride,
        padding,
        relu: relu as u32,
        pad: 0,
    }
}

/// ConvTranspose2d shapes: batch 3, 5 -> 3 channels, a 3 x 4 input.
fn transpose(kernel: u32, stride: u32, padding: u32, relu: bool) -> ConvDims {
    let (h_in, w_in) = (3, 4);
    let out = |i: u32| (i - 1) * stride + kernel - 2 * padding;
    let (h_out, w_out) = (out(h_in), out(w_in));
    ConvDims {
        rows: 3,
        c_in: 5,
        h_in,
        w_in,
        c_out: 3,
        h_out,
        w_out,
        kernel,
        stride,
        padding,
        relu: relu as u32,
        pad: 0,
    }
}

/// The shapes every test runs: the conv VAE's (kernel 4, stride 2, padding 1) and a stride-1 one.
fn shapes(of: fn(u32, u32, u32, bool) -> ConvDims, relu: bool) -> [ConvDims; 2] {
    [of(4, 2, 1, relu), of(3, 1, 1, relu)]
}

/// Values in x, in y and in the weight.
fn sizes(d: &ConvDims) -> (usize, usize, usize) {
    let x = (d.rows * d.c_in * d.h_in * d.w_in) as usize;
    let y = (d.rows * d.c_out * d.h_out * d.w_out) as usize;
    (x, y, (d.c_in * d.c_out * d.kernel * d.kernel) as usize)
}

/// The layer of geometry `d` (a Conv2d, or a ConvTranspose2d where `transposed`) with its weight
/// at 0 and its bias after it, ReLU on its output and mask on its input where d.relu.
fn layer(d: &ConvDims, transposed: bool) -> (Layer, ConvShape) {
    let shape = ConvShape {
        input: (d.c_in as usize, d.h_in as usize, d.w_in as usize),
        output: (d.c_out as usize, d.h_out as usize, d.w_out as usize),
        kernel: d.kernel as usize,
        stride: d.stride as usize,
        padding: d.padding as usize,
    };
    let kind = match transposed {
        false => LayerKind::Conv2d(Conv2d(shape)),
        true => LayerKind::ConvTranspose2d(ConvTranspose2d(shape)),
    };
    let (nx, ny, nw) = sizes(d);
    let relu = d.relu != 0;
    let layer = Layer { kind, n_in: nx / 3, n_out: ny / 3, relu, relu_input: relu, weight_at: 0, bias_at: 0 };
    (Layer { bias_at: align_floats(nw), ..layer }, shape)
}

/// The direct kernels (the GPU family's convolutions) through network::conv over `d`: forward
/// from x with (w, b); backward from x and dy into dx, dW and db. Returns [y, dx, dW, db].
fn direct(d: &ConvDims, transposed: bool, x: &[f32], (w, b): (&[f32], &[f32]), dy: &[f32]) -> [Vec<f32>; 4] {
    let (layer, shape) = layer(d, transposed);
    let mut params = vec![0.0; layer.bias_at + b.len()];
    params[..w.len()].copy_from_slice(w);
    params[layer.bias_at..].copy_from_slice(b);
    let (pb, gb) = (storage(&params), storage(&vec![0.0; params.len()]));
    let (xb, yb, dyb, dxb) = (storage(x), storage(&vec![0.0; dy.len()]), storage(dy), storage(&vec![0.0; x.len()]));
    let g = gpu_with(KernelFamily::Gpu, false);
    assert_eq!(g.plan().conv(), conv::ConvVariant::Direct);
    let l = gpu::Launcher { gpu: &g, kernels: &gpu().1 };
    let mut launches = conv::forward(l, &layer, &shape, &pb, 3, (&xb, &yb));
    launches.extend(conv::backward(l, &layer, &shape, (&pb, Some(&gb)), 3, (&xb, &dyb), Some(&dxb)));
    for launch in launches {
        run(launch);
    }
    let grads = read(&gb, params.len());
    let (dw, db) = (grads[..w.len()].to_vec(), grads[layer.bias_at..].to_vec());
    [read(&yb, dy.len()), read(&dxb, x.len()), dw, db]
}

#[test]
fn conv2d_kernels_should_match_reference() {
    for relu in [false, true] {
        for d in shapes(conv, relu) {
            let (nx, ny, nw) = sizes(&d);
            // x is a ReLU output (some zeros), for the input gradient's mask.
            let x: Vec<f32> = random(nx, 1, 1.0).iter().map(|v| v.max(0.0)).collect();
            let (w, b, dy) = (random(nw, 2, 0.5), random(d.c_out as usize, 3, 0.5), random(ny, 4, 1.0));
            let [y, dx, dw, db] = direct(&d, false, &x, (&w, &b), &dy);
            assert_close(&format!("conv2d_forward {d:?}"), &y, &rc::conv2d_forward(&d, &x, &w, &b), 1e-5);
            let want = rc::conv2d_backward_input(&d, &dy, &w, &x);
            assert_close(&format!("conv2d_backward_input {d:?}"), &dx, &want, 1e-5);
            let want = rc::conv2d_backward_weight(&d, &dy, &x);
            assert_close(&format!("conv2d_backward_weight {d:?}"), &dw, &want, 1e-5);
            assert_close("conv_backward_bias", &db, &rc::conv_backward_bias(&d, &dy), 1e-5);
        }
    }
}

#[test]
fn conv_transpose2d_kernels_should_match_reference() {
    for relu in [false, true] {
        for d in shapes(transpose, relu) {
            let (nx, ny, nw) = sizes(&d);
            let x: Vec<f32> = random(nx, 5, 1.0).iter().map(|v| v.max(0.0)).collect();
            let (w, b, dy) = (random(nw, 6, 0.5), random(d.c_out as usize, 7, 0.5), random(ny, 8, 1.0));
            let [y, dx, dw, db] = direct(&d, true, &x, (&w, &b), &dy);
            let want = rc::conv_transpose2d_forward(&d, &x, &w, &b);
            assert_close(&format!("conv_transpose2d_forward {d:?}"), &y, &want, 1e-5);
            let want = rc::conv_transpose2d_backward_input(&d, &dy, &w, &x);
            assert_close(&format!("conv_transpose2d_backward_input {d:?}"), &dx, &want, 1e-5);
            let want = rc::conv_transpose2d_backward_weight(&d, &dy, &x);
            assert_close(&format!("conv_transpose2d_backward_weight {d:?}"), &dw, &want, 1e-5);
            assert_close("conv_backward_bias (transposed)", &db, &rc::conv_backward_bias(&d, &dy), 1e-5);
        }
    }
}

/// L = sum(probe * forward(x, W, b)) without the ReLU: its gradients in x, W and b are the
/// backward references given dy = probe.
#[test]
fn conv_backward_references_should_match_finite_differences() {
    type Forward = fn(&ConvDims, &[f32], &[f32], &[f32]) -> Vec<f32>;
    type Input = fn(&ConvDims, &[f32], &[f32], &[f32]) -> Vec<f32>;
    type Weight = fn(&ConvDims, &[f32], &[f32]) -> Vec<f32>;
    let cases: [(&str, ConvDims, Forward, Input, Weight); 2] = [
        ("conv2d", conv(4, 2, 1, false), rc::conv2d_forward, rc::conv2d_backward_input, rc::conv2d_backward_weight),
        (
            "conv_transpose2d",
            transpose(4, 2, 1, false),
            rc::conv_transpose2d_forward,
            rc::conv_transpose2d_backward_input,
            rc::conv_transpose2d_backward_weight,
        ),
    ];
    for (name, d, forward, input, weight) in cases {
        let (nx, ny, nw) = sizes(&d);
        let (x, w, b, probe) =
            (random(nx, 11, 1.0), random(nw, 12, 0.5), random(d.c_out as usize, 13, 0.5), random(ny, 14, 1.0));
        let loss = |x: &[f32], w: &[f32], b: &[f32]| dot(&probe, &forward(&d, x, w, b));
        check_grad(&format!("{name} dx"), &|x| loss(x, &w, &b), &always, &x, &input(&d, &probe, &w, &x));
        check_grad(&format!("{name} dW"), &|w| loss(&x, w, &b), &always, &w, &weight(&d, &probe, &x));
        check_grad(&format!("{name} db"), &|b| loss(&x, &w, b), &always, &b, &rc::conv_backward_bias(&d, &probe));
    }
}

/// Runs network::conv's data move `what` over `d`, writing `n` values from src (and aux, if any),
/// and returns dst.
fn move_values(what: Move, d: &ConvDims, src: &[f32], aux: Option<&[f32]>, n: usize) -> Vec<f32> {
    let (u, s, dst) = (uniform(d), storage(src), storage(&vec![0.0; n]));
    let a = aux.map(storage);
    run(conv::data_move(launcher(), what, (d, &u), (&s, a.as_ref().map(Bind::whole), &dst)));
    read(&dst, n)
}

#[test]
fn im2col_kernels_should_match_reference() {
    use wgvae::reference::im2col as ri;
    for relu in [false, true] {
        for d in shapes(conv, relu) {
            let (nx, ny, _) = sizes(&d);
            let ncol = (d.rows * d.h_out * d.w_out * d.c_in * d.kernel * d.kernel) as usize;
            // x and y are ReLU outputs (some zeros), for the masks.
            let x: Vec<f32> = random(nx, 31, 1.0).iter().map(|v| v.max(0.0)).collect();
            let y: Vec<f32> = random(ny, 32, 1.0).iter().map(|v| v.max(0.0)).collect();
            let (col, bias) = (random(ncol, 33, 1.0), random(d.c_in as usize, 34, 0.5));
            let name = |what: &str| format!("{what} {d:?}");
            let got = move_values(Move::Im2col, &d, &x, None, ncol);
            assert_close(&name("im2col"), &got, &ri::im2col(&d, &x), 0.0);
            let got = move_values(Move::Col2imBias, &d, &col, Some(&bias), nx);
            assert_close(&name("col2im_bias"), &got, &ri::col2im_bias(&d, &col, &bias), 1e-5);
            let got = move_values(Move::Col2imMasked, &d, &col, Some(&x), nx);
            assert_close(&name("col2im_masked"), &got, &ri::col2im_masked(&d, &col, &x), 1e-5);
            let got = move_values(Move::NchwToRows, &d, &y, None, ny);
            let rows = ri::nchw_to_rows(&d, &y);
            assert_close(&name("nchw_to_rows"), &got, &rows, 0.0);
            let got = move_values(Move::RowsToNchw, &d, &rows, Some(&y), ny);
            assert_close(&name("rows_to_nchw"), &got, &ri::rows_to_nchw(&d, &rows, &y), 0.0);
        }
    }
}
