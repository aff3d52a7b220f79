//! shaders/linear_tiled.wgsl (the GPU family's linear products) against its references: whole
//! reductions and reductions cut into slices with their `_sum` kernels, at widths that are not
//! multiples of the 64 x 64 tile, of its 16-deep stages or of 4.
use crate::common::*;
use crate::linear::{backward_input, backward_weight, forward, linear_layer};
use wgvae::plan::{LinearKernel, LinearOp, TiledPlan};

/// Two row tiles, the second partial.
const ROWS: usize = 67;
/// (n_in, n_out): a partial second column tile; a deep reduction into a narrow output.
const SHAPES: [(usize, usize); 2] = [(37, 70), (150, 5)];
/// Slice lengths: the whole reduction in one slice, and slices of two stages.
const SLICE_LENS: [usize; 2] = [usize::MAX / 2, 32];

/// The tiled kernel of `op` over `plan`: its product alone, or with its `_sum` after it.
fn entries(op: LinearOp, plan: &TiledPlan) -> Vec<&'static str> {
    let (product, sum) = wgvae::plan::linear::tiled_entries(op);
    [product.name(), sum.name()][..1 + (plan.slices > 1) as usize].to_vec()
}

#[test]
fn linear_forward_tiled_should_match_reference() {
    for shape in SHAPES {
        let (n_in, n_out) = shape;
        let (x, w, b) = (random(ROWS * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
        for (slice_len, relu) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(ROWS, n_out, n_in, slice_len);
            let (y, names) = forward(LinearKernel::Tiled(plan), &linear_layer(shape, relu), ROWS, &x, (&w, &b));
            assert_eq!(names, entries(LinearOp::Forward, &plan));
            let mut want = r::linear_forward_tiled(&x, &w, &b, (ROWS, n_in, n_out), relu, plan.slice_len);
            if plan.slices > 1 {
                want = r::linear_forward_tiled_sum(&want, &b, (ROWS, n_out), relu);
                assert_close("sliced y", &y, &r::linear_forward(&x, &w, &b, ROWS, n_in, n_out, relu), 1e-5);
            }
            let case = format!("{names:?} {n_in}->{n_out}, {} slices, relu {relu}", plan.slices);
            assert_close(&case, &y, &want, 1e-5);
        }
    }
}

#[test]
fn linear_backward_input_tiled_should_match_reference() {
    for shape in SHAPES {
        let (n_in, n_out) = shape;
        let (dy, w) = (random(ROWS * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
        let x: Vec<f32> = random(ROWS * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
        for (slice_len, relu) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(ROWS, n_in, n_out, slice_len);
            let layer = linear_layer(shape, relu);
            let (dx, names) = backward_input(LinearKernel::Tiled(plan), &layer, ROWS, &dy, &w, &x);
            assert_eq!(names, entries(LinearOp::BackwardInput, &plan));
            let mut want = r::linear_backward_input_tiled(&dy, &w, &x, (ROWS, n_in, n_out), relu, plan.slice_len);
            if plan.slices > 1 {
                want = r::linear_backward_input_tiled_sum(&want, &x, relu);
                let whole = r::linear_backward_input(&dy, &w, &x, ROWS, n_in, n_out, relu);
                assert_close("sliced dx", &dx, &whole, 1e-5);
            }
            let case = format!("{names:?} {n_in}->{n_out}, {} slices, relu {relu}", plan.slices);
            assert_close(&case, &dx, &want, 1e-5);
        }
    }
}

#[test]
fn linear_backward_weight_tiled_should_match_reference() {
    for shape in SHAPES {
        let (n_in, n_out) = shape;
        let (dy, x) = (random(ROWS * n_out, 7, 1.0), random(ROWS * n_in, 8, 1.0));
        for (slice_len, bias) in SLICE_LENS.into_iter().flat_map(|s| [(s, false), (s, true)]) {
            let plan = TiledPlan::with_slice_len(n_out, n_in, ROWS, slice_len);
            let layer = linear_layer(shape, false);
            // db starts as NaN: without dims.bias the kernels must leave it alone.
            let ([dw, db], names) = backward_weight(LinearKernel::Tiled(plan), (&layer, bias), ROWS, (&x, &dy));
            assert_eq!(names, entries(LinearOp::BackwardWeight, &plan));
            let (mut want_dw, mut want_db) =
                r::linear_backward_weight_tiled(&dy, &x, (ROWS, n_in, n_out), plan.slice_len);
            if plan.slices > 1 {
                (want_dw, want_db) = r::linear_backward_weight_tiled_sum(&want_dw, &want_db, (n_in, n_out));
                assert_close("sliced dW", &dw, &r::linear_backward_weight(&dy, &x, ROWS, n_in, n_out), 1e-5);
            }
            let case = format!("{names:?} {n_in}->{n_out}, {} slices, bias {bias}", plan.slices);
            assert_close(&format!("{case}: dW"), &dw, &want_dw, 1e-5);
            if bias {
                assert_close(&format!("{case}: db"), &db, &want_db, 1e-5);
                assert_close("db", &db, &r::linear_backward_bias(&dy, ROWS, n_out), 1e-5);
            } else {
                assert!(db.iter().all(|v| v.is_nan()), "{case}: wrote db without dims.bias");
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
    let grid = |rows: usize, cols: usize| LinearKernel::Split([cols.div_ceil(4) as u32, rows.div_ceil(4) as u32, 1]);
    let name = |op| [wgvae::plan::linear::split_entry(op).name()];
    for shape in [(150, 5), (37, 70), (9, 3)] {
        let (n_in, n_out) = shape;
        let (x, w, b) = (random(ROWS * n_in, 11, 1.0), random(n_out * n_in, 12, 0.5), random(n_out, 13, 0.5));
        let dy = random(ROWS * n_out, 14, 1.0);
        let relu_x: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        for relu in [false, true] {
            let layer = linear_layer(shape, relu);
            let (y, names) = forward(grid(ROWS, n_out), &layer, ROWS, &x, (&w, &b));
            assert_eq!(names, name(LinearOp::Forward));
            let want = r::linear_forward_split_subgroup(&x, &w, &b, (ROWS, n_in, n_out), relu);
            assert_close(&format!("{names:?} {n_in}->{n_out}, relu {relu}"), &y, &want, 1e-5);

            let (dx, names) = backward_input(grid(ROWS, n_in), &layer, ROWS, &dy, &w, &relu_x);
            assert_eq!(names, name(LinearOp::BackwardInput));
            let want = r::linear_backward_input_split_subgroup(&dy, &w, &relu_x, (ROWS, n_in, n_out), relu);
            assert_close(&format!("{names:?} {n_in}->{n_out}, relu {relu}"), &dx, &want, 1e-5);
        }
        for bias in [false, true] {
            // db starts as NaN: without dims.bias the kernel must leave it alone.
            let layer = linear_layer(shape, false);
            let ([dw, db], names) = backward_weight(grid(n_out, n_in), (&layer, bias), ROWS, (&x, &dy));
            assert_eq!(names, name(LinearOp::BackwardWeight));
            let (want_dw, want_db) = r::linear_backward_weight_split_subgroup(&dy, &x, (ROWS, n_in, n_out));
            let case = format!("{names:?} {n_in}->{n_out}, bias {bias}");
            assert_close(&format!("{case}: dW"), &dw, &want_dw, 1e-5);
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
    use wgvae::network::linear::tiled::GatheredInput;
    let g = &gpu().0;
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
    let layer = linear_layer((n_in, n_out), true);
    let mut params = vec![0.0; layer.bias_at + n_out];
    params[..w.len()].copy_from_slice(&w);
    params[layer.bias_at..].copy_from_slice(&b);
    let pb = storage(&params);
    for binarize in [Binarize::None, Binarize::Dynamic, Binarize::Static] {
        for slice_len in SLICE_LENS {
            let plan = TiledPlan::with_slice_len(ROWS, n_out, n_in, slice_len);
            let params = GatherParams {
                batch: ROWS as u32,
                words: (n_in / 4) as u32,
                pass_rows: 80,
                binarize: binarize.code(),
                seed: 99,
                stream: STREAM_BINARIZE,
                first_image: 0,
                shard_images: images_n as u32,
            };
            let (yb, xb) = (storage(&vec![0.0; ROWS * n_out]), storage(&vec![7.0; ROWS * n_in]));
            let input = GatheredInput { images: &ib, order: &ob, counters: &cb, x: &xb, params };
            let launches =
                wgvae::network::linear::tiled::forward_gathered_by(launcher(), plan, &layer, &pb, &input, &yb);
            let names = run_all(launches);
            let want_names = [Entry::LinearForwardGatherTiled.name(), Entry::LinearForwardTiledSum.name()];
            assert_eq!(names, want_names[..1 + (plan.slices > 1) as usize]);
            let gather = (order.as_slice(), 80, (binarize, 99, STREAM_BINARIZE), &c);
            let (mut want, want_x) =
                r::linear_forward_gather_tiled(&images, gather, &w, &b, (ROWS, n_in, n_out), true, plan.slice_len);
            if plan.slices > 1 {
                want = r::linear_forward_tiled_sum(&want, &b, (ROWS, n_out), true);
            }
            let case = format!("linear_forward_gather_tiled {binarize:?}, {} slices", plan.slices);
            assert_ulps(&format!("{case}: x"), &read(&xb, ROWS * n_in), &want_x, DIVISION_ULPS);
            assert_close(&case, &read(&yb, ROWS * n_out), &want, 1e-5);
        }
    }
}
