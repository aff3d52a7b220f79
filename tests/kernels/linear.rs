//! shaders/linear.wgsl, linear_vec4.wgsl and linear_vec4_subgroup.wgsl against their references,
//! every variant.
use crate::common::*;

// Awkward sizes: not multiples of 64 (workgroup), 16 (tile rows) or 256 (a workgroup's columns);
// n_out > 256 so several workgroups share a row block. The scalar kernels also get widths that are
// not multiples of 4; the vec4 kernels need multiples of 4 (the trainer picks them only then).
const SCALAR: (usize, usize) = (37, 261);
const VEC4: (usize, usize) = (36, 268);
use shaders::linear::{AUX, DIMS, LHS, OUT, RHS};
use wgvae::network::linear::{LinearOp, LinearVariant};

type Forward = fn(&[f32], &[f32], &[f32], usize, usize, usize, bool) -> Vec<f32>;
type BackwardWeight = fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>;

fn dims(n_in: usize, n_out: usize, relu: bool) -> wgpu::Buffer {
    dims_for(B, n_in, n_out, relu)
}

fn dims_for(batch: usize, n_in: usize, n_out: usize, relu: bool) -> wgpu::Buffer {
    uniform(&Dims { rows: batch as u32, n_in: n_in as u32, n_out: n_out as u32, relu: relu as u32 })
}

fn check_linear_forward(variant: LinearVariant, shape: (usize, usize), reference: Forward) {
    check_linear_forward_at(variant, B, shape, reference);
}

/// The variant's forward over `batch` rows against `reference`; returns its output (ReLU).
fn check_linear_forward_at(
    variant: LinearVariant,
    batch: usize,
    (n_in, n_out): (usize, usize),
    reference: Forward,
) -> Vec<f32> {
    let entry = variant.entry(LinearOp::Forward);
    let (x, w, b) = (random(batch * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
    let mut got = Vec::new();
    for relu in [false, true] {
        let (xb, wb, bb, yb) = (storage(&x), storage(&w), storage(&b), storage(&vec![0.0; batch * n_out]));
        let d = dims_for(batch, n_in, n_out, relu);
        let name = format!("{} batch {batch}", entry.name());
        run(gpu().1.get(entry).launch(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &xb), bind(RHS, &wb), bind(AUX, &bb), bind(OUT, &yb)],
            variant.groups(LinearOp::Forward, batch, (batch, n_out)),
        ));
        got = read(&yb, batch * n_out);
        assert_close(&name, &got, &reference(&x, &w, &b, batch, n_in, n_out, relu), 1e-5);
    }
    got
}

fn check_linear_backward_input(variant: LinearVariant, shape: (usize, usize), reference: Forward) {
    check_linear_backward_input_at(variant, B, shape, reference);
}

/// The variant's input gradient over `batch` rows against `reference`; returns its output (ReLU mask).
fn check_linear_backward_input_at(
    variant: LinearVariant,
    batch: usize,
    (n_in, n_out): (usize, usize),
    reference: Forward,
) -> Vec<f32> {
    let entry = variant.entry(LinearOp::BackwardInput);
    let (dy, w) = (random(batch * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
    let x: Vec<f32> = random(batch * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
    let mut got = Vec::new();
    for relu_input in [false, true] {
        let (dyb, wb, xb, dxb) = (storage(&dy), storage(&w), storage(&x), storage(&vec![0.0; batch * n_in]));
        let d = dims_for(batch, n_in, n_out, relu_input);
        let name = format!("{} batch {batch}", entry.name());
        run(gpu().1.get(entry).launch(
            &gpu().0,
            &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &wb), bind(AUX, &xb), bind(OUT, &dxb)],
            variant.groups(LinearOp::BackwardInput, batch, (batch, n_in)),
        ));
        got = read(&dxb, batch * n_in);
        assert_close(&name, &got, &reference(&dy, &w, &x, batch, n_in, n_out, relu_input), 1e-5);
    }
    got
}

/// The variant's weight gradient over `batch` rows against `reference`; returns its output.
fn check_linear_backward_weight_at(
    variant: LinearVariant,
    batch: usize,
    (n_in, n_out): (usize, usize),
    reference: BackwardWeight,
) -> Vec<f32> {
    let entry = variant.entry(LinearOp::BackwardWeight);
    let (dy, x) = (random(batch * n_out, 7, 1.0), random(batch * n_in, 8, 1.0));
    let (dyb, xb, dwb) = (storage(&dy), storage(&x), storage(&vec![0.0; n_out * n_in]));
    let d = dims_for(batch, n_in, n_out, false);
    let name = format!("{} batch {batch}", entry.name());
    run(gpu().1.get(entry).launch(
        &gpu().0,
        &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &dwb)],
        variant.groups(LinearOp::BackwardWeight, batch, (n_out, n_in)),
    ));
    let got = read(&dwb, n_out * n_in);
    assert_close(&name, &got, &reference(&dy, &x, batch, n_in, n_out), 1e-5);
    got
}

#[test]
fn linear_vec4_subgroup_should_match_reference_and_vec4_bit_for_bit() {
    // Batches of 13 (one tile of 16 rows, part clamped; the weight gradient's one full block of 8
    // rows and a tail of 5) and 37 (three tiles; four blocks and a tail), the weights' widths
    // neither multiples of the subgroup nor of a workgroup's 256 columns.
    if !built_or_never_planned("linear_vec4_subgroup") {
        return;
    }
    let (sg, v4) = (LinearVariant::Vec4Subgroup, LinearVariant::Vec4);
    for batch in [B, 37] {
        let forward = check_linear_forward_at(sg, batch, VEC4, r::linear_forward_vec4_subgroup);
        assert_eq!(forward, check_linear_forward_at(v4, batch, VEC4, r::linear_forward_vec4), "forward, batch {batch}");
        let input = check_linear_backward_input_at(sg, batch, VEC4, r::linear_backward_input_vec4_subgroup);
        let want = check_linear_backward_input_at(v4, batch, VEC4, r::linear_backward_input_vec4);
        assert_eq!(input, want, "input gradient, batch {batch}");
        let weight = check_linear_backward_weight_at(sg, batch, VEC4, r::linear_backward_weight_vec4_subgroup);
        let want = check_linear_backward_weight_at(v4, batch, VEC4, r::linear_backward_weight_vec4);
        assert_eq!(weight, want, "weight gradient, batch {batch}");
    }
}

#[test]
fn linear_rows_subgroup_should_match_reference_and_rows_bit_for_bit() {
    // A partial column tile and several; 13 rows (one lane's rows of 4, part clamped) and 300 (two
    // workgroups of 256 rows).
    if !built_or_never_planned("linear_rows_subgroup") {
        return;
    }
    let (sg, rows) = (LinearVariant::RowsSubgroup, LinearVariant::Rows);
    for batch in [B, 300] {
        for shape in [(36, 20), VEC4] {
            let forward = check_linear_forward_at(sg, batch, shape, r::linear_forward_rows_subgroup);
            let want = check_linear_forward_at(rows, batch, shape, r::linear_forward_rows);
            assert_eq!(forward, want, "forward {shape:?}, batch {batch}");
        }
        for shape in [(20, 36), VEC4] {
            let input = check_linear_backward_input_at(sg, batch, shape, r::linear_backward_input_rows_subgroup);
            let want = check_linear_backward_input_at(rows, batch, shape, r::linear_backward_input_rows);
            assert_eq!(input, want, "input gradient {shape:?}, batch {batch}");
        }
    }
}

#[test]
fn linear_forward_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_forward_at(LinearVariant::Scalar, batch, SCALAR, r::linear_forward);
    }
}

#[test]
fn linear_forward_vec4_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_forward_at(LinearVariant::Vec4, batch, VEC4, r::linear_forward_vec4);
    }
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

/// `variant`'s (Rows or RowsSubgroup) weight gradient over `batch` seeded rows: its partials
/// [slices, n_out, n_in] against the reference's, returned with dy and x.
fn check_weight_rows(variant: LinearVariant, (n_in, n_out): (usize, usize), batch: usize) -> [Vec<f32>; 3] {
    let (dy, x) = (random(batch * n_out, 7, 1.0), random(batch * n_in, 8, 1.0));
    let slices = batch.div_ceil(shaders::linear_rows::SLICE as usize);
    let (dyb, xb, pb) = (storage(&dy), storage(&x), storage(&vec![0.0; slices * n_out * n_in]));
    let d = uniform(&Dims { rows: batch as u32, n_in: n_in as u32, n_out: n_out as u32, relu: 0 });
    run(gpu().1.get(variant.entry(LinearOp::BackwardWeight)).launch(
        &gpu().0,
        &[bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &pb)],
        variant.groups(LinearOp::BackwardWeight, batch, (n_out, n_in)),
    ));
    let partials = read(&pb, slices * n_out * n_in);
    let slice = shaders::linear_rows::SLICE as usize;
    let want = r::linear_backward_weight_rows(&dy, &x, batch, n_in, n_out, slice);
    assert_close(&format!("{variant:?} weight gradient {n_in}->{n_out}, batch {batch}"), &partials, &want, 1e-5);
    [partials, dy, x]
}

#[test]
fn linear_backward_weight_rows_should_match_reference() {
    use shaders::linear_rows::SLICE;
    // One slice (B rows: dW itself, the same sums as linear_backward_weight_vec4), then a batch of
    // 17 slices, the last one short, whose partials linear_sum_slices adds.
    let (n_in, n_out) = (20, 12);
    for batch in [B, 16 * SLICE as usize + 37] {
        let [partials, dy, x] = check_weight_rows(LinearVariant::Rows, (n_in, n_out), batch);
        let pb = storage(&partials);
        let d = uniform(&Dims { rows: batch as u32, n_in: n_in as u32, n_out: n_out as u32, relu: 0 });
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
fn linear_backward_weight_rows_subgroup_should_match_reference_and_rows_bit_for_bit() {
    use shaders::linear_rows::SLICE;
    if !built_or_never_planned("linear_rows_subgroup") {
        return;
    }
    // 8 and 24 column vec4s (whole subgroups), a partial block of rows n; 13 rows (a block of 8
    // and a tail) and 17 slices whose last has 37 rows (4 blocks and a tail).
    for shape in [(32, 12), (96, 12)] {
        for batch in [B, 16 * SLICE as usize + 37] {
            let [got, ..] = check_weight_rows(LinearVariant::RowsSubgroup, shape, batch);
            let [want, ..] = check_weight_rows(LinearVariant::Rows, shape, batch);
            assert_eq!(got, want, "weight gradient {shape:?}, batch {batch}");
        }
    }
}

#[test]
fn linear_backward_input_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_backward_input_at(LinearVariant::Scalar, batch, SCALAR, r::linear_backward_input);
    }
}

#[test]
fn linear_backward_input_vec4_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_backward_input_at(LinearVariant::Vec4, batch, VEC4, r::linear_backward_input_vec4);
    }
}

#[test]
fn linear_backward_weight_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_backward_weight_at(LinearVariant::Scalar, batch, SCALAR, r::linear_backward_weight);
    }
}

#[test]
fn linear_backward_weight_vec4_should_match_reference() {
    // One tile of rows (13, part clamped) and three (37).
    for batch in [B, 37] {
        check_linear_backward_weight_at(LinearVariant::Vec4, batch, VEC4, r::linear_backward_weight_vec4);
    }
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

#[test]
fn linear_kernels_should_match_reference_over_long_batches() {
    // The conv VAE's patch rows run to thousands: a reduction over 5,096 rows (the weight
    // gradient) and 319 tiles of rows. (With 16-row tiles linear.wgsl's weight gradient came out
    // wrong on lavapipe at this length, so it keeps 8; the vec4 modules' 16 are right.)
    for batch in [1274, 5096] {
        let built = |(v, _): &(LinearVariant, _)| built_or_never_planned(v.module());
        for (variant, shape) in [
            (LinearVariant::Scalar, (16, 3)),
            (LinearVariant::Scalar, (48, 5)),
            (LinearVariant::Vec4, (48, 8)),
            (LinearVariant::Vec4Subgroup, (48, 8)),
        ]
        .into_iter()
        .filter(built)
        {
            check_linear_forward_at(variant, batch, shape, r::linear_forward);
            check_linear_backward_input_at(variant, batch, shape, r::linear_backward_input);
            check_linear_backward_weight_at(variant, batch, shape, r::linear_backward_weight);
        }
    }
}
