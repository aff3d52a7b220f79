//! shaders/linear.wgsl and shaders/linear_vec4.wgsl against their references, every variant.
use crate::common::*;

// Awkward sizes: not multiples of 64 (workgroup), 8 (tile rows) or 256 (a workgroup's columns);
// n_out > 256 so several workgroups share a row block. The scalar kernels also get widths that are
// not multiples of 4; the vec4 kernels need multiples of 4 (the trainer picks them only then).
const SCALAR: (usize, usize) = (37, 261);
const VEC4: (usize, usize) = (36, 268);
use shaders::linear::{AUX, DIMS, LHS, OUT, RHS};
use wgvae::network::linear::{LinearOp, LinearVariant};

type Forward = fn(&[f32], &[f32], &[f32], usize, usize, usize, bool) -> Vec<f32>;
type BackwardWeight = fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>;

fn dims(n_in: usize, n_out: usize, relu: bool) -> wgpu::Buffer {
    uniform(&Dims { batch: B as u32, n_in: n_in as u32, n_out: n_out as u32, relu: relu as u32 })
}

fn check_linear_forward(variant: LinearVariant, (n_in, n_out): (usize, usize), reference: Forward) {
    let entry = variant.entry(LinearOp::Forward);
    let (x, w, b) = (random(B * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
    for relu in [false, true] {
        let (xb, wb, bb, yb) = (storage(&x), storage(&w), storage(&b), storage(&vec![0.0; B * n_out]));
        let d = dims(n_in, n_out, relu);
        let name = entry.name();
        run(gpu().1.get(entry).launch(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &xb), bind(RHS, &wb), bind(AUX, &bb), bind(OUT, &yb)],
            variant.groups(LinearOp::Forward, B, (B, n_out)),
        ));
        assert_close(name, &read(&yb, B * n_out), &reference(&x, &w, &b, B, n_in, n_out, relu), 1e-5);
    }
}

fn check_linear_backward_input(variant: LinearVariant, (n_in, n_out): (usize, usize), reference: Forward) {
    let entry = variant.entry(LinearOp::BackwardInput);
    let (dy, w) = (random(B * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
    let x: Vec<f32> = random(B * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
    for relu_input in [false, true] {
        let (dyb, wb, xb, dxb) = (storage(&dy), storage(&w), storage(&x), storage(&vec![0.0; B * n_in]));
        let d = dims(n_in, n_out, relu_input);
        let name = entry.name();
        run(gpu().1.get(entry).launch(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &wb), bind(AUX, &xb), bind(OUT, &dxb)],
            variant.groups(LinearOp::BackwardInput, B, (B, n_in)),
        ));
        assert_close(name, &read(&dxb, B * n_in), &reference(&dy, &w, &x, B, n_in, n_out, relu_input), 1e-5);
    }
}

fn check_linear_backward_weight(variant: LinearVariant, (n_in, n_out): (usize, usize), reference: BackwardWeight) {
    let entry = variant.entry(LinearOp::BackwardWeight);
    let (dy, x) = (random(B * n_out, 7, 1.0), random(B * n_in, 8, 1.0));
    let (dyb, xb, dwb) = (storage(&dy), storage(&x), storage(&vec![0.0; n_out * n_in]));
    let d = dims(n_in, n_out, false);
    let name = entry.name();
    run(gpu().1.get(entry).launch(
        &gpu().0,
        &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &dwb)],
        variant.groups(LinearOp::BackwardWeight, B, (n_out, n_in)),
    ));
    assert_close(name, &read(&dwb, n_out * n_in), &reference(&dy, &x, B, n_in, n_out), 1e-5);
}

#[test]
fn linear_forward_should_match_reference() {
    check_linear_forward(LinearVariant::Scalar, SCALAR, r::linear_forward);
}

#[test]
fn linear_forward_vec4_should_match_reference() {
    check_linear_forward(LinearVariant::Vec4, VEC4, r::linear_forward_vec4);
}

#[test]
fn linear_forward_rows_should_match_reference() {
    // Narrow and wide outputs: a partial column tile, and more than one.
    for shape in [(36, 20), VEC4] {
        check_linear_forward(LinearVariant::Rows, shape, r::linear_forward_rows);
    }
}

#[test]
fn linear_backward_input_rows_should_match_reference() {
    for shape in [(20, 36), VEC4] {
        check_linear_backward_input(LinearVariant::Rows, shape, r::linear_backward_input_rows);
    }
}

#[test]
fn linear_backward_weight_rows_should_match_reference() {
    use shaders::linear_rows::SLICE;
    // One slice (B rows: dW itself, the same sums as linear_backward_weight_vec4), then a batch of
    // 17 slices, the last one short, whose partials linear_sum_slices adds.
    let (n_in, n_out) = (20, 12);
    for batch in [B, 16 * SLICE as usize + 37] {
        let (dy, x) = (random(batch * n_out, 7, 1.0), random(batch * n_in, 8, 1.0));
        let slices = batch.div_ceil(SLICE as usize);
        let (dyb, xb, pb) = (storage(&dy), storage(&x), storage(&vec![0.0; slices * n_out * n_in]));
        let d = uniform(&Dims { batch: batch as u32, n_in: n_in as u32, n_out: n_out as u32, relu: 0 });
        let variant = LinearVariant::Rows;
        run(gpu().1.get(variant.entry(LinearOp::BackwardWeight)).launch(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &pb)],
            variant.groups(LinearOp::BackwardWeight, batch, (n_out, n_in)),
        ));
        let partials = read(&pb, slices * n_out * n_in);
        let want = r::linear_backward_weight_rows(&dy, &x, batch, n_in, n_out, SLICE as usize);
        assert_close("linear_backward_weight_rows", &partials, &want, 1e-5);
        let dwb = storage(&vec![0.0; n_out * n_in]);
        run(gpu().1.get(Entry::LinearSumSlices).launch_over(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &pb), bind(OUT, &dwb)],
            n_out * n_in / 4,
        ));
        let sum = read(&dwb, n_out * n_in);
        assert_close("linear_sum_slices", &sum, &r::linear_sum_slices(&partials, n_out * n_in), 1e-6);
        assert_close("sliced dW", &sum, &r::linear_backward_weight(&dy, &x, batch, n_in, n_out), 1e-4);
    }
}

#[test]
fn linear_backward_input_should_match_reference() {
    check_linear_backward_input(LinearVariant::Scalar, SCALAR, r::linear_backward_input);
}

#[test]
fn linear_backward_input_vec4_should_match_reference() {
    check_linear_backward_input(LinearVariant::Vec4, VEC4, r::linear_backward_input_vec4);
}

#[test]
fn linear_backward_weight_should_match_reference() {
    check_linear_backward_weight(LinearVariant::Scalar, SCALAR, r::linear_backward_weight);
}

#[test]
fn linear_backward_weight_vec4_should_match_reference() {
    check_linear_backward_weight(LinearVariant::Vec4, VEC4, r::linear_backward_weight_vec4);
}

#[test]
fn linear_backward_bias_should_match_reference() {
    let (_, n_out) = SCALAR;
    let dy = random(B * n_out, 9, 1.0);
    let (dyb, dbb) = (storage(&dy), storage(&vec![0.0; n_out]));
    let d = dims(1, n_out, false);
    run(gpu().1.get(Entry::LinearBackwardBias).launch_over(
        &gpu().0,
        &[bind(DIMS, &d), bind(LHS, &dyb), bind(OUT, &dbb)],
        n_out,
    ));
    assert_close("linear_backward_bias", &read(&dbb, n_out), &r::linear_backward_bias(&dy, B, n_out), 1e-5);
}
