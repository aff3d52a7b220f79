//! shaders/linear_tiled.wgsl (the GPU family's linear products) against its references: whole
//! reductions and reductions cut into slices with their `_sum` kernels, at widths that are not
//! multiples of the 64 x 64 tile, of its 16-deep stages or of 4.
use crate::common::*;
use shaders::linear_tiled::{AUX, BIAS_OUT, DIMS, LHS, OUT, RHS};
use wgvae::plan::TiledPlan;

/// Two row tiles, the second partial.
const ROWS: usize = 67;
/// (n_in, n_out): a partial second column tile; a deep reduction into a narrow output.
const SHAPES: [(usize, usize); 2] = [(37, 70), (150, 5)];
/// Slice lengths: the whole reduction in one slice, and slices of two stages.
const SLICE_LENS: [usize; 2] = [usize::MAX / 2, 32];

fn tiled_dims(plan: &TiledPlan, (n_in, n_out): (usize, usize), relu: bool, bias: bool) -> wgpu::Buffer {
    uniform(&TiledDims {
        rows: ROWS as u32,
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

/// shaders/linear_split_subgroup.wgsl's three products against their references: reductions
/// shorter than a workgroup (idle lanes) and longer than one pass of its 64 lanes, outputs that
/// are not whole 4 x 4 blocks, on whatever subgroup size the adapter runs.
#[test]
fn linear_split_subgroup_should_match_reference() {
    if !built_or_never_planned("linear_split_subgroup") {
        return;
    }
    let (g, k) = gpu();
    let plan = TiledPlan::with_slice_len(ROWS, 1, 1, 16); // only dims.rows .. bias are read
    for (n_in, n_out) in [(150, 5), (37, 70), (9, 3)] {
        let (x, w, b) = (random(ROWS * n_in, 11, 1.0), random(n_out * n_in, 12, 0.5), random(n_out, 13, 0.5));
        let dy = random(ROWS * n_out, 14, 1.0);
        let relu_x: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        let (xb, wb, bb, dyb, rxb) = (storage(&x), storage(&w), storage(&b), storage(&dy), storage(&relu_x));
        let grid = |rows: usize, cols: usize| [cols.div_ceil(4) as u32, rows.div_ceil(4) as u32, 1];
        for relu in [false, true] {
            let d = tiled_dims(&plan, (n_in, n_out), relu, false);
            let y = storage(&vec![0.0; ROWS * n_out]);
            let binds = [bind(DIMS, &d), bind(LHS, &xb), bind(RHS, &wb), bind(AUX, &bb), bind(OUT, &y)];
            run(k.get(Entry::LinearForwardSplitSubgroup).launch(g, &binds, grid(ROWS, n_out)));
            let want = r::linear_forward_split_subgroup(&x, &w, &b, (ROWS, n_in, n_out), relu);
            let case = format!("linear_forward_split_subgroup {n_in}->{n_out}, relu {relu}");
            assert_close(&case, &read(&y, ROWS * n_out), &want, 1e-5);

            let dx = storage(&vec![0.0; ROWS * n_in]);
            let binds = [bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &wb), bind(AUX, &rxb), bind(OUT, &dx)];
            run(k.get(Entry::LinearBackwardInputSplitSubgroup).launch(g, &binds, grid(ROWS, n_in)));
            let want = r::linear_backward_input_split_subgroup(&dy, &w, &relu_x, (ROWS, n_in, n_out), relu);
            let case = format!("linear_backward_input_split_subgroup {n_in}->{n_out}, relu {relu}");
            assert_close(&case, &read(&dx, ROWS * n_in), &want, 1e-5);
        }
        for bias in [false, true] {
            let d = tiled_dims(&plan, (n_in, n_out), false, bias);
            // db's buffer starts as NaN: without dims.bias the kernel must leave it alone.
            let (dw, db) = (storage(&vec![0.0; n_out * n_in]), storage(&vec![f32::NAN; n_out]));
            let binds = [bind(DIMS, &d), bind(LHS, &dyb), bind(RHS, &xb), bind(OUT, &dw), bind(BIAS_OUT, &db)];
            run(k.get(Entry::LinearBackwardWeightSplitSubgroup).launch(g, &binds, grid(n_out, n_in)));
            let (want_dw, want_db) = r::linear_backward_weight_split_subgroup(&dy, &x, (ROWS, n_in, n_out));
            let case = format!("linear_backward_weight_split_subgroup {n_in}->{n_out}, bias {bias}");
            assert_close(&format!("{case}: dW"), &read(&dw, n_out * n_in), &want_dw, 1e-5);
            let db = read(&db, n_out);
            if bias {
                assert_close(&format!("{case}: db"), &db, &want_db, 1e-5);
            } else {
                assert!(db.iter().all(|v| v.is_nan()), "{case}: wrote db without dims.bias");
            }
        }
    }
}

#[test]
fn split_subgroup_should_take_narrow_split_products_only() {
    use wgvae::plan::linear::split_grid;
    let at =
        |rows: usize, cols: usize, depth: usize| split_grid(&TiledPlan::new(rows, cols, depth), (rows, cols), 65_535);
    // The default model at batch 128: the 400 -> 40 layer's forward product and the 20 <- 400
    // input gradient are narrow and split; the 784 -> 400 forward is split but wide; the weight
    // gradients are too short to split.
    assert_eq!(at(128, 40, 400), Some([10, 32, 1]));
    assert_eq!(at(128, 20, 400), Some([5, 32, 1]));
    assert_eq!(at(128, 400, 784), None);
    assert_eq!(at(40, 400, 128), None);
    // At batch 2048 the latent layers' weight gradients split, and go to the subgroup kernel.
    assert_eq!(at(40, 400, 2048), Some([100, 10, 1]));
    // Through the plan: the split kernel with subgroups, the tiled kernel's split without.
    use wgvae::plan::{LinearKernel, LinearOp};
    let adapter = gpu().0.plan().adapter().clone();
    let plan = |subgroups: bool| KernelPlan::forced(adapter.clone(), KernelFamily::Gpu, subgroups);
    let kernel = plan(false).linear((400, 40), LinearOp::Forward, 128);
    assert_eq!(kernel, LinearKernel::Tiled(TiledPlan::new(128, 40, 400)));
    if adapter.subgroups.is_some() {
        assert_eq!(plan(true).linear((400, 40), LinearOp::Forward, 128), LinearKernel::Split([10, 32, 1]));
    }
}

/// linear_forward_gather_tiled: the first layer's product with the batch gathered inside, against
/// gather_batch's reference followed by linear_forward_tiled's, in every binarize mode, whole and
/// in slices (with linear_forward_tiled_sum), with padding rows past the pass; x as gather_batch's.
#[test]
fn linear_forward_gather_tiled_should_match_reference() {
    use wgvae::data::Binarize;
    let (g, k) = gpu();
    let (images_n, n_in, n_out) = (29usize, 84usize, 70usize); // 21 words: a partial last stage
    let mut rng = rand::rngs::StdRng::seed_from_u64(31);
    let images: Vec<u8> = (0..images_n * n_in).map(|_| rng.random()).collect();
    let order: Vec<u32> = (0..90).map(|_| rng.random_range(0..images_n as u32)).collect();
    let c = counters(3, 10); // rows 10.. of an 80-row pass: the last 3 of 67 are padding
    let (w, b) = (random(n_out * n_in, 32, 0.5), random(n_out, 33, 0.5));
    let (ib, ob, cb) = (
        gpu::images_with(g, "images", &images),
        gpu::storage_with(g, "order", &order),
        gpu::storage_with(g, "c", &[c]),
    );
    let (wb, bb) = (storage(&w), storage(&b));
    for binarize in [Binarize::None, Binarize::Dynamic, Binarize::Static] {
        for slice_len in SLICE_LENS {
            use shaders::linear_tiled::{COUNTERS, GATHER_PARAMS, IMAGES, ORDER, X};
            let plan = TiledPlan::with_slice_len(ROWS, n_out, n_in, slice_len);
            let d = tiled_dims(&plan, (n_in, n_out), true, false);
            let p = uniform(&GatherParams {
                batch: ROWS as u32,
                words: (n_in / 4) as u32,
                pass_rows: 80,
                binarize: binarize.code(),
                seed: 99,
                stream: STREAM_BINARIZE,
                first_image: 0,
                shard_images: images_n as u32,
            });
            let out_len = plan.slices * ROWS * n_out;
            let (yb, xb) = (storage(&vec![0.0; out_len]), storage(&vec![7.0; ROWS * n_in]));
            let binds = [
                bind(DIMS, &d),
                bind(RHS, &wb),
                bind(AUX, &bb),
                bind(OUT, &yb),
                bind(GATHER_PARAMS, &p),
                bind(COUNTERS, &cb),
                bind(IMAGES, &ib),
                bind(ORDER, &ob),
                bind(X, &xb),
            ];
            run(k.get(Entry::LinearForwardGatherTiled).launch(g, &binds, plan.grid));
            let gather = (order.as_slice(), 80, (binarize, 99, STREAM_BINARIZE), &c);
            let (want, want_x) =
                r::linear_forward_gather_tiled(&images, gather, &w, &b, (ROWS, n_in, n_out), true, plan.slice_len);
            let case = format!("linear_forward_gather_tiled {binarize:?}, {} slices", plan.slices);
            assert_ulps(&format!("{case}: x"), &read(&xb, ROWS * n_in), &want_x, DIVISION_ULPS);
            assert_close(&case, &read(&yb, out_len), &want, 1e-5);
        }
    }
}
