//! shaders/linear_tiled.wgsl (the GPU family's linear products) against its references: whole
//! reductions and reductions cut into slices with their `_sum` kernels, at widths that are not
//! multiples of the 64 x 64 tile, of its 16-deep stages or of 4.
use crate::common::*;
use shaders::linear_tiled::{AUX, BIAS_OUT, DIMS, LHS, OUT, RHS};
use wgvae::network::linear_tiled::TiledPlan;

/// Two row tiles, the second partial.
const ROWS: usize = 67;
/// (n_in, n_out): a partial second column tile; a deep reduction into a narrow output.
const SHAPES: [(usize, usize); 2] = [(37, 70), (150, 5)];
/// Slice lengths: the whole reduction in one slice, and slices of two stages.
const SLICE_LENS: [usize; 2] = [usize::MAX / 2, 32];

fn tiled_dims(plan: &TiledPlan, (n_in, n_out): (usize, usize), relu: bool, bias: bool) -> wgpu::Buffer {
    uniform(&TiledDims {
        batch: ROWS as u32,
        n_in: n_in as u32,
        n_out: n_out as u32,
        relu: relu as u32,
        slice_len: plan.slice_len as u32,
        slices: plan.slices as u32,
        bias: bias as u32,
        pad: 0,
    })
}

fn finish(entry: Entry, binds: &[wgvae::gpu::kernels::Bind], n: usize) {
    run(gpu().1.get(entry).launch_over(&gpu().0, binds, n));
}

#[test]
fn linear_forward_tiled_should_match_reference() {
    for (n_in, n_out) in SHAPES {
        let (x, w, b) = (random(ROWS * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
        for (slice_len, relu) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(ROWS, n_out, n_in, slice_len);
            let d = tiled_dims(&plan, (n_in, n_out), relu, false);
            let out_len = plan.slices * ROWS * n_out;
            let (xb, wb, bb, yb) = (storage(&x), storage(&w), storage(&b), storage(&vec![0.0; out_len]));
            let binds = [bind(DIMS, &d), bind(LHS, &xb), bind(RHS, &wb), bind(AUX, &bb), bind(OUT, &yb)];
            run(gpu().1.get(Entry::LinearForwardTiled).launch(&gpu().0, &binds, plan.grid));
            let got = read(&yb, out_len);
            let want = r::linear_forward_tiled(&x, &w, &b, (ROWS, n_in, n_out), relu, plan.slice_len);
            let case = format!("linear_forward_tiled {n_in}->{n_out}, {} slices, relu {relu}", plan.slices);
            assert_close(&case, &got, &want, 1e-5);
            if plan.slices > 1 {
                let (pb, y) = (storage(&got), storage(&vec![0.0; ROWS * n_out]));
                finish(
                    Entry::LinearForwardTiledSum,
                    &[bind(DIMS, &d), bind(LHS, &pb), bind(AUX, &bb), bind(OUT, &y)],
                    ROWS * n_out,
                );
                let y = read(&y, ROWS * n_out);
                let sum = r::linear_forward_tiled_sum(&got, &b, (ROWS, n_out), relu);
                assert_close("linear_forward_tiled_sum", &y, &sum, 1e-6);
                assert_close("sliced y", &y, &r::linear_forward(&x, &w, &b, ROWS, n_in, n_out, relu), 1e-5);
            }
        }
    }
}

#[test]
fn linear_backward_input_tiled_should_match_reference() {
    for (n_in, n_out) in SHAPES {
        let (dy, w) = (random(ROWS * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
        let x: Vec<f32> = random(ROWS * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
        for (slice_len, relu) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(ROWS, n_in, n_out, slice_len);
            let d = tiled_dims(&plan, (n_in, n_out), relu, false);
            let out_len = plan.slices * ROWS * n_in;
            let (dyb, wb, xb, dxb) = (storage(&dy), storage(&w), storage(&x), storage(&vec![0.0; out_len]));
            let binds = [bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &wb), bind(AUX, &xb), bind(OUT, &dxb)];
            run(gpu().1.get(Entry::LinearBackwardInputTiled).launch(&gpu().0, &binds, plan.grid));
            let got = read(&dxb, out_len);
            let want = r::linear_backward_input_tiled(&dy, &w, &x, (ROWS, n_in, n_out), relu, plan.slice_len);
            let case = format!("linear_backward_input_tiled {n_in}->{n_out}, {} slices, relu {relu}", plan.slices);
            assert_close(&case, &got, &want, 1e-5);
            if plan.slices > 1 {
                let (pb, dx) = (storage(&got), storage(&vec![0.0; ROWS * n_in]));
                finish(
                    Entry::LinearBackwardInputTiledSum,
                    &[bind(DIMS, &d), bind(LHS, &pb), bind(AUX, &xb), bind(OUT, &dx)],
                    ROWS * n_in,
                );
                let dx = read(&dx, ROWS * n_in);
                assert_close(
                    "linear_backward_input_tiled_sum",
                    &dx,
                    &r::linear_backward_input_tiled_sum(&got, &x, relu),
                    1e-6,
                );
                let whole = r::linear_backward_input(&dy, &w, &x, ROWS, n_in, n_out, relu);
                assert_close("sliced dx", &dx, &whole, 1e-5);
            }
        }
    }
}

#[test]
fn linear_backward_weight_tiled_should_match_reference() {
    for (n_in, n_out) in SHAPES {
        let (dy, x) = (random(ROWS * n_out, 7, 1.0), random(ROWS * n_in, 8, 1.0));
        for (slice_len, bias) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(n_out, n_in, ROWS, slice_len);
            let d = tiled_dims(&plan, (n_in, n_out), false, bias);
            let (w_len, b_len) = (plan.slices * n_out * n_in, plan.slices * n_out);
            let (dyb, xb) = (storage(&dy), storage(&x));
            // db's buffer starts as NaN: without dims.bias the kernel must leave it alone.
            let (dwb, dbb) = (storage(&vec![0.0; w_len]), storage(&vec![f32::NAN; b_len]));
            let binds = [bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &dwb), bind(BIAS_OUT, &dbb)];
            run(gpu().1.get(Entry::LinearBackwardWeightTiled).launch(&gpu().0, &binds, plan.grid));
            let (dw, db) = (read(&dwb, w_len), read(&dbb, b_len));
            let (want_dw, want_db) = r::linear_backward_weight_tiled(&dy, &x, (ROWS, n_in, n_out), plan.slice_len);
            let case = format!("linear_backward_weight_tiled {n_in}->{n_out}, {} slices, bias {bias}", plan.slices);
            assert_close(&format!("{case}: dW"), &dw, &want_dw, 1e-5);
            if bias {
                assert_close(&format!("{case}: db"), &db, &want_db, 1e-5);
            } else {
                assert!(db.iter().all(|v| v.is_nan()), "{case}: wrote db without dims.bias");
            }
            if plan.slices > 1 {
                let (pw, pb) = (storage(&dw), storage(&db));
                let (sw, sb) = (storage(&vec![0.0; n_out * n_in]), storage(&vec![f32::NAN; n_out]));
                let binds = [bind(DIMS, &d), bind(LHS, &pw), bind(RHS, &pb), bind(OUT, &sw), bind(BIAS_OUT, &sb)];
                finish(Entry::LinearBackwardWeightTiledSum, &binds, n_out * n_in);
                let (sw, sb) = (read(&sw, n_out * n_in), read(&sb, n_out));
                let (ref_w, ref_b) = r::linear_backward_weight_tiled_sum(&dw, &db, (n_in, n_out));
                assert_close("linear_backward_weight_tiled_sum: dW", &sw, &ref_w, 1e-6);
                assert_close("sliced dW", &sw, &r::linear_backward_weight(&dy, &x, ROWS, n_in, n_out), 1e-5);
                if bias {
                    assert_close("linear_backward_weight_tiled_sum: db", &sb, &ref_b, 1e-6);
                    assert_close("sliced db", &sb, &r::linear_backward_bias(&dy, ROWS, n_out), 1e-5);
                } else {
                    assert!(
                        sb.iter().all(|v| v.is_nan()),
                        "linear_backward_weight_tiled_sum wrote db without dims.bias"
                    );
                }
            }
        }
    }
}

#[test]
fn tiled_plan_should_split_narrow_products_only() {
    // The default model's first layer at batch 128: 14 tiles, so its forward pass is split; its
    // weight gradient (91 tiles over 128 rows) is too short to split.
    let forward = TiledPlan::new(128, 400, 784);
    assert!(forward.slices > 1 && forward.slice_len.is_multiple_of(16) && forward.slices * forward.slice_len >= 784);
    assert_eq!(TiledPlan::new(400, 784, 128).slices, 1);
    // Wide products fill the GPU with tiles alone.
    assert_eq!(TiledPlan::new(2048, 1024, 784).slices, 1);
    assert_eq!(TiledPlan::new(2048, 1024, 784).grid, [16, 32, 1]);
}
