//! The linear products through their launcher (network::linear's `*_by`, one LinearKernel at a
//! time): the CPU family's variants (shaders/linear.wgsl's tiles and _narrow ones, linear_vec4.wgsl,
//! linear_vec4_subgroup.wgsl, linear_rows(_subgroup).wgsl) against their references, every variant.
use crate::common::*;
use wgvae::gpu::align_floats;
use wgvae::network::linear::{self, BackwardInput, Forward as Io, LinearOp, LinearVariant, Weights};
use wgvae::network::{Layer, LayerKind};
use wgvae::plan::LinearKernel;

// Awkward sizes: not multiples of 64 (workgroup), 16 (tile rows) or 256 (a workgroup's columns);
// n_out > 256 so several workgroups share a row block. The scalar kernels also get widths that are
// not multiples of 4; the vec4 kernels need multiples of 4 (the trainer picks them only then).
const SCALAR: (usize, usize) = (37, 261);
const VEC4: (usize, usize) = (36, 268);

type Forward = fn(&[f32], &[f32], &[f32], usize, usize, usize, bool) -> Vec<f32>;
type BackwardWeight = fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>;

/// A linear layer n_in -> n_out, W at 0 and b after it; ReLU on its output and a mask on its
/// input gradient where `relu`.
pub fn linear_layer((n_in, n_out): (usize, usize), relu: bool) -> Layer {
    let bias_at = align_floats(n_in * n_out);
    Layer { kind: LayerKind::Linear, n_in, n_out, relu, relu_input: relu, weight_at: 0, bias_at }
}

/// y [rows, n_out] = act(x W^T + b) by `kernel`, and the entry points it ran.
pub fn forward(
    kernel: LinearKernel,
    layer: &Layer,
    rows: usize,
    x: &[f32],
    (w, b): (&[f32], &[f32]),
) -> (Vec<f32>, Vec<&'static str>) {
    let mut params = vec![0.0; layer.bias_at + layer.n_out];
    params[..w.len()].copy_from_slice(w);
    params[layer.bias_at..].copy_from_slice(b);
    let (pb, xb, yb) = (storage(&params), storage(x), storage(&vec![0.0; rows * layer.n_out]));
    let io = Io { input: &xb, output: &yb };
    let names = run_all(linear::forward_by(launcher(), kernel, layer, Weights::of(layer, &pb), rows, io));
    (read(&yb, rows * layer.n_out), names)
}

/// dx [rows, n_in] = dy W, masked where x is 0 (with layer.relu_input), by `kernel`.
pub fn backward_input(
    kernel: LinearKernel,
    layer: &Layer,
    rows: usize,
    dy: &[f32],
    w: &[f32],
    x: &[f32],
) -> (Vec<f32>, Vec<&'static str>) {
    let (dyb, wb, xb, dxb) = (storage(dy), storage(w), storage(x), storage(&vec![0.0; rows * layer.n_in]));
    let io = BackwardInput { d_output: &dyb, mask: Some(&xb), d_input: &dxb };
    let names = run_all(linear::backward_input_by(launcher(), kernel, layer, &wb, rows, io));
    (read(&dxb, rows * layer.n_in), names)
}

/// (dW [n_out, n_in], db [n_out]) by `kernel` from x and dy; db stays NaN without `with_bias`.
pub fn backward_weight(
    kernel: LinearKernel,
    (layer, with_bias): (&Layer, bool),
    rows: usize,
    (x, dy): (&[f32], &[f32]),
) -> ([Vec<f32>; 2], Vec<&'static str>) {
    let mut start = vec![0.0; layer.bias_at + layer.n_out];
    start[layer.bias_at..].fill(f32::NAN);
    let (xb, dyb, gb) = (storage(x), storage(dy), storage(&start));
    let names = run_all(linear::backward_weight_by(launcher(), kernel, (layer, with_bias), &gb, rows, (&xb, &dyb)));
    let grads = read(&gb, start.len());
    ([grads[..layer.weight_len()].to_vec(), grads[layer.bias_at..].to_vec()], names)
}

/// The variant's forward over `batch` rows against `reference`; returns its output (ReLU).
fn check_linear_forward_at(
    variant: LinearVariant,
    batch: usize,
    shape: (usize, usize),
    reference: Forward,
) -> Vec<f32> {
    let (n_in, n_out) = shape;
    let (x, w, b) = (random(batch * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
    let mut got = Vec::new();
    for relu in [false, true] {
        let (y, names) = forward(LinearKernel::Variant(variant), &linear_layer(shape, relu), batch, &x, (&w, &b));
        assert_eq!(names, [variant.entry(LinearOp::Forward).name()]);
        assert_close(
            &format!("{} batch {batch}", names[0]),
            &y,
            &reference(&x, &w, &b, batch, n_in, n_out, relu),
            1e-5,
        );
        got = y;
    }
    got
}

fn check_linear_forward(variant: LinearVariant, shape: (usize, usize), reference: Forward) {
    check_linear_forward_at(variant, B, shape, reference);
}

/// The variant's input gradient over `batch` rows against `reference`; returns its output (ReLU mask).
fn check_linear_backward_input_at(
    variant: LinearVariant,
    batch: usize,
    shape: (usize, usize),
    reference: Forward,
) -> Vec<f32> {
    let (n_in, n_out) = shape;
    let (dy, w) = (random(batch * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
    let x: Vec<f32> = random(batch * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
    let mut got = Vec::new();
    for relu_input in [false, true] {
        let layer = linear_layer(shape, relu_input);
        let (dx, names) = backward_input(LinearKernel::Variant(variant), &layer, batch, &dy, &w, &x);
        assert_eq!(names, [variant.entry(LinearOp::BackwardInput).name()]);
        let want = reference(&dy, &w, &x, batch, n_in, n_out, relu_input);
        assert_close(&format!("{} batch {batch}", names[0]), &dx, &want, 1e-5);
        got = dx;
    }
    got
}

fn check_linear_backward_input(variant: LinearVariant, shape: (usize, usize), reference: Forward) {
    check_linear_backward_input_at(variant, B, shape, reference);
}

/// The variant's weight gradient over `batch` rows against `reference` (with the bias gradient,
/// linear_backward_bias, against its own); returns dW.
fn check_linear_backward_weight_at(
    variant: LinearVariant,
    batch: usize,
    shape: (usize, usize),
    reference: BackwardWeight,
) -> Vec<f32> {
    let (n_in, n_out) = shape;
    let (dy, x) = (random(batch * n_out, 7, 1.0), random(batch * n_in, 8, 1.0));
    let ([dw, db], names) =
        backward_weight(LinearKernel::Variant(variant), (&linear_layer(shape, false), true), batch, (&x, &dy));
    let name = format!("{} batch {batch}", variant.entry(LinearOp::BackwardWeight).name());
    assert_eq!(names.first(), Some(&variant.entry(LinearOp::BackwardWeight).name()), "{name}");
    assert_eq!(names.last(), Some(&Entry::LinearBackwardBias.name()), "{name}: then the bias gradient");
    assert_close(&name, &dw, &reference(&dy, &x, batch, n_in, n_out), 1e-5);
    assert_close(
        &format!("linear_backward_bias batch {batch}"),
        &db,
        &r::linear_backward_bias(&dy, batch, n_out),
        1e-5,
    );
    dw
}

/// `variant`'s three products of `shape` over `batch` rows, each against the reference and bit for
/// bit against `base`'s (the same sums in the same order).
fn check_bit_for_bit(variant: LinearVariant, base: LinearVariant, batch: usize, shape: (usize, usize)) {
    let case = format!("{variant:?} vs {base:?}, {shape:?}, batch {batch}");
    let forward = check_linear_forward_at(variant, batch, shape, r::linear_forward);
    assert_eq!(forward, check_linear_forward_at(base, batch, shape, r::linear_forward), "forward: {case}");
    let input = check_linear_backward_input_at(variant, batch, shape, r::linear_backward_input);
    let want = check_linear_backward_input_at(base, batch, shape, r::linear_backward_input);
    assert_eq!(input, want, "input gradient: {case}");
    let weight = check_linear_backward_weight_at(variant, batch, shape, r::linear_backward_weight);
    let want = check_linear_backward_weight_at(base, batch, shape, r::linear_backward_weight);
    assert_eq!(weight, want, "weight gradient: {case}");
}

#[test]
fn linear_vec4_subgroup_should_match_reference_and_vec4_bit_for_bit() {
    // Batches of 13 (one tile of 16 rows, part clamped; the weight gradient's one full block of 8
    // rows and a tail of 5) and 37 (three tiles; four blocks and a tail), the weights' widths
    // neither multiples of the subgroup nor of a workgroup's 256 columns.
    if !built_or_never_planned("linear_vec4_subgroup") {
        return;
    }
    for batch in [B, 37] {
        check_bit_for_bit(LinearVariant::Vec4Subgroup, LinearVariant::Vec4, batch, VEC4);
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
fn linear_narrow_should_match_reference_and_scalar_bit_for_bit() {
    // Outputs narrower than a workgroup's 64 lanes (the NCE scorer's one column; 37; 50; 3) and
    // wider (261: any width works), over 13 rows and a reduction of 1,274.
    for batch in [B, 1274] {
        for shape in [(37, 1), (3, 50), SCALAR] {
            check_bit_for_bit(LinearVariant::Narrow, LinearVariant::Scalar, batch, shape);
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
/// [slices, n_out, n_in] summed by linear_sum_slices where there are several, against the
/// references composed alike; returned with dy and x.
fn check_weight_rows(variant: LinearVariant, (n_in, n_out): (usize, usize), batch: usize) -> [Vec<f32>; 3] {
    let (dy, x) = (random(batch * n_out, 7, 1.0), random(batch * n_in, 8, 1.0));
    let layer = linear_layer((n_in, n_out), false);
    let ([dw, _], names) = backward_weight(LinearKernel::Variant(variant), (&layer, false), batch, (&x, &dy));
    let slice = shaders::linear_rows::SLICE as usize;
    let partials = r::linear_backward_weight_rows(&dy, &x, batch, n_in, n_out, slice);
    let (want, entries) = match batch.div_ceil(slice) {
        1 => (partials, vec![variant.entry(LinearOp::BackwardWeight).name()]),
        _ => (
            r::linear_sum_slices(&partials, n_out * n_in),
            vec![variant.entry(LinearOp::BackwardWeight).name(), Entry::LinearSumSlices.name()],
        ),
    };
    assert_eq!(names, entries);
    assert_close(&format!("{variant:?} weight gradient {n_in}->{n_out}, batch {batch}"), &dw, &want, 1e-5);
    [dw, dy, x]
}

#[test]
fn linear_backward_weight_rows_should_match_reference() {
    use shaders::linear_rows::SLICE;
    // One slice (B rows: dW itself, the same sums as linear_backward_weight_vec4), then a batch of
    // 17 slices, the last one short, whose partials linear_sum_slices adds.
    let (n_in, n_out) = (20, 12);
    for batch in [B, 16 * SLICE as usize + 37] {
        let [dw, dy, x] = check_weight_rows(LinearVariant::Rows, (n_in, n_out), batch);
        assert_close("sliced dW", &dw, &r::linear_backward_weight(&dy, &x, batch, n_in, n_out), 1e-4);
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
