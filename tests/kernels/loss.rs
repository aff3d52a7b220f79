//! shaders/loss.wgsl through its launcher (launches/loss.rs): the reconstruction terms and
//! finish_step, each kernel under the family whose plan picks it.
use crate::common::*;
use wgvae::launches::loss::{Reconstruction, StepEnd};

/// The launcher of `family`'s plan (the CPU family: an invocation per row; the GPU family: a
/// workgroup per row and trees).
fn family(family: KernelFamily) -> Gpu {
    gpu_with(family, true)
}

fn rec<'a>(
    decoder: Decoder,
    (logits, x, rec): (&'a wgpu::Buffer, &'a wgpu::Buffer, &'a wgpu::Buffer),
) -> Reconstruction<'a> {
    Reconstruction { decoder, logits, x, rec, rows: B, pixels: PIXELS }
}

#[test]
fn bernoulli_rec_forward_should_match_reference() {
    // Logits up to +-40: the stable softplus must not overflow or lose the tail. Rows are samples of
    // ceil(13 / repeat) inputs.
    let logits = random(B * PIXELS, 17, 40.0);
    let x: Vec<f32> = random(B * PIXELS, 18, 1.0).iter().map(|v| v.abs()).collect();
    for repeat in [1, 3] {
        let (p, lb, xb, rb) =
            (loss_params_repeat(B as u32, true, repeat), storage(&logits), storage(&x), storage(&[0.0; B]));
        let g = &family(KernelFamily::Cpu);
        run(rec(Decoder::Bernoulli, (&lb, &xb, &rb)).forward(gpu::Launcher { gpu: g, kernels: &gpu().1 }, &p));
        assert_close(
            &format!("bernoulli_rec_forward repeat {repeat}"),
            &read(&rb, B),
            &r::bernoulli_rec_forward(&logits, &x, B, PIXELS, repeat),
            1e-5,
        );
    }
}

#[test]
fn bernoulli_rec_backward_should_match_reference() {
    let logits = random(B * PIXELS, 19, 40.0);
    let x: Vec<f32> = random(B * PIXELS, 20, 1.0).iter().map(|v| v.abs()).collect();
    let coef: Vec<f32> = random(B, 44, 1.0).iter().map(|v| v.abs()).collect();
    for repeat in [1, 3] {
        let (p, lb, xb, db) =
            (loss_params_repeat(B as u32, true, repeat), storage(&logits), storage(&x), storage(&[0.0; B * PIXELS]));
        let (cb, unused) = (storage(&coef), storage(&[0.0; 4]));
        let l = gpu::Launcher { gpu: &gpu().0, kernels: &gpu().1 };
        run(rec(Decoder::Bernoulli, (&lb, &xb, &unused)).backward(l, &p, &db, &cb));
        assert_close(
            &format!("bernoulli_rec_backward repeat {repeat}"),
            &read(&db, B * PIXELS),
            &r::bernoulli_rec_backward(&logits, &x, &coef, PIXELS, repeat),
            1e-5,
        );
    }
}

#[test]
fn gaussian_rec_forward_and_backward_should_match_reference() {
    // Log-variances from -9 to 7: some rows outside the clamp [-6, 4] on each side.
    let logits: Vec<f32> = random(B * 2 * PIXELS, 56, 1.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if (i / PIXELS) % 2 == 1 { v * 8.0 - 1.0 } else { v * 1.5 })
        .collect();
    let x: Vec<f32> = random(B * PIXELS, 57, 1.0).iter().map(|v| v.abs()).collect();
    let coef: Vec<f32> = random(B, 58, 1.0).iter().map(|v| v.abs()).collect();
    for repeat in [1, 3] {
        let p = loss_params_repeat(B as u32, true, repeat);
        let (lb, xb, rb, db, cb) =
            (storage(&logits), storage(&x), storage(&[0.0; B]), storage(&[0.0; B * 2 * PIXELS]), storage(&coef));
        let g = &family(KernelFamily::Cpu);
        let l = gpu::Launcher { gpu: g, kernels: &gpu().1 };
        run(rec(Decoder::Gaussian, (&lb, &xb, &rb)).forward(l, &p));
        assert_close(
            &format!("gaussian_rec_forward repeat {repeat}"),
            &read(&rb, B),
            &r::gaussian_rec_forward(&logits, &x, B, PIXELS, repeat),
            1e-5,
        );
        run(rec(Decoder::Gaussian, (&lb, &xb, &rb)).backward(l, &p, &db, &cb));
        assert_close(
            &format!("gaussian_rec_backward repeat {repeat}"),
            &read(&db, B * 2 * PIXELS),
            &r::gaussian_rec_backward(&logits, &x, &coef, PIXELS, repeat),
            1e-5,
        );
    }
}

#[test]
fn finish_step_should_match_reference_and_catch_non_finite_losses() {
    // Both kernels: finish_step (one invocation) and finish_step_tree (64 lanes and a tree), at 13
    // rows and at 150 (two full passes of the lanes and a partial one).
    type Reference = fn(&[f32], &[f32], u32, bool, usize, bool, &mut Counters, &mut LossTotals);
    let kernels: [(KernelFamily, Entry, Reference); 2] = [
        (KernelFamily::Cpu, Entry::FinishStep, r::finish_step),
        (KernelFamily::Gpu, Entry::FinishStepTree, r::finish_step_tree),
    ];
    for (kernel_family, entry, reference) in kernels {
        let g = &family(kernel_family);
        for rows in [B, 150] {
            let rec = random(rows, 21, 100.0);
            let kl = random(rows, 22, 10.0);
            let mut nan_rec = rec.clone();
            nan_rec[rows - 3] = f32::NAN;
            // (rec, pass_rows, training, repeat, fixed batch): pass_rows cuts the batch inside it.
            let cut = 20 + rows as u32 / 2;
            for (rec, pass_rows, training, repeat, fixed) in [
                (rec.clone(), 1000u32, true, 1, false),
                (rec.clone(), cut, false, 1, false),
                (nan_rec, 1000, true, 1, false),
                (rec.clone(), cut, true, 4, false),
                (rec.clone(), cut, true, 1, true),
            ] {
                let name = format!("{} rows {rows} pass_rows {pass_rows} repeat {repeat}", entry.name());
                let start_counters = counters(7, 20);
                let start_totals = LossTotals { rec_sum: 1.0, kl_sum: 2.0, examples: 3.0, pad: 0.0 };
                let p = uniform(&LossParams {
                    rows: rows as u32,
                    pixels: PIXELS as u32,
                    pass_rows,
                    training: training as u32,
                    repeat: repeat as u32,
                    fixed_batch: fixed as u32,
                    pad: [0; 2],
                });
                let (cb, rb, kb) = (gpu::storage_with(&gpu().0, "c", &[start_counters]), storage(&rec), storage(&kl));
                let tb = gpu::storage_with(&gpu().0, "totals", &[start_totals]);
                let end = StepEnd { counters: &cb, rec: &rb, kl: &kb, totals: &tb };
                let launch = end.launch(gpu::Launcher { gpu: g, kernels: &gpu().1 }, &p);
                assert_eq!(launch.name, entry.name(), "the {kernel_family:?} family's kernel");
                run(launch);
                let (mut want_c, mut want_t) = (start_counters, start_totals);
                reference(&rec, &kl, pass_rows, training, repeat, fixed, &mut want_c, &mut want_t);
                assert_eq!(gpu::read::<Counters>(&gpu().0, &cb, 0, 1).unwrap()[0], want_c, "{name}");
                let got_t = gpu::read::<LossTotals>(&gpu().0, &tb, 0, 1).unwrap()[0];
                if rec.iter().all(|v| v.is_finite()) {
                    let (got, want) =
                        (bytemuck::cast_slice(&[got_t]).to_vec(), bytemuck::cast_slice(&[want_t]).to_vec());
                    assert_close(&name, &got, &want, 1e-5);
                    assert_eq!(got_t.examples, want_t.examples, "{name}: rows counted");
                } else {
                    assert_eq!(want_c.bad_step, 7, "the reference must flag the NaN");
                }
            }
        }
    }
}

#[test]
fn rec_forward_backward_rows_should_match_reference() {
    // rec and dlogits from one kernel, rows laid out in rows of 2 workgroups (the test device's
    // grid_x), both outputs starting as NaN so that a row or pixel left unwritten fails.
    let bernoulli = random(B * PIXELS, 19, 40.0);
    let gaussian: Vec<f32> = random(B * 2 * PIXELS, 56, 1.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if (i / PIXELS) % 2 == 1 { v * 8.0 - 1.0 } else { v * 1.5 })
        .collect();
    let x: Vec<f32> = random(B * PIXELS, 20, 1.0).iter().map(|v| v.abs()).collect();
    let coef: Vec<f32> = random(B, 44, 1.0).iter().map(|v| v.abs()).collect();
    type Reference = fn(&[f32], &[f32], &[f32], usize, usize) -> (Vec<f32>, Vec<f32>);
    let cases: [(Decoder, &[f32], Reference); 2] = [
        (Decoder::Bernoulli, &bernoulli, r::bernoulli_rec_forward_backward_rows),
        (Decoder::Gaussian, &gaussian, r::gaussian_rec_forward_backward_rows),
    ];
    let g = &family(KernelFamily::Gpu);
    for (decoder, logits, reference) in cases {
        for repeat in [1, 3] {
            let p = loss_params_repeat(B as u32, true, repeat);
            let (lb, xb, rb, cb) = (storage(logits), storage(&x), storage(&[f32::NAN; B]), storage(&coef));
            let db = storage(&vec![f32::NAN; logits.len()]);
            let launch = rec(decoder, (&lb, &xb, &rb)).forward_backward(
                gpu::Launcher { gpu: g, kernels: &gpu().1 },
                &p,
                &db,
                &cb,
            );
            let name = format!("{} repeat {repeat}", launch.name);
            run(launch);
            let (want_rec, want_d) = reference(logits, &x, &coef, PIXELS, repeat);
            assert_close(&format!("{name} rec"), &read(&rb, B), &want_rec, 1e-5);
            assert_close(&format!("{name} dlogits"), &read(&db, logits.len()), &want_d, 1e-5);
        }
    }
}

#[test]
fn rec_forward_rows_should_match_reference() {
    // A workgroup per row: 83 pixels (one full pass of 64 lanes and a partial one), 13 rows laid out
    // in rows of 2 workgroups (the test device's grid_x), so the row index crosses grid rows.
    let bernoulli = random(B * PIXELS, 17, 40.0);
    let gaussian: Vec<f32> = random(B * 2 * PIXELS, 56, 1.0)
        .iter()
        .enumerate()
        .map(|(i, v)| if (i / PIXELS) % 2 == 1 { v * 8.0 - 1.0 } else { v * 1.5 })
        .collect();
    let x: Vec<f32> = random(B * PIXELS, 18, 1.0).iter().map(|v| v.abs()).collect();
    type Reference = fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>;
    let cases: [(Decoder, &[f32], Reference); 2] = [
        (Decoder::Bernoulli, &bernoulli, r::bernoulli_rec_forward_rows),
        (Decoder::Gaussian, &gaussian, r::gaussian_rec_forward_rows),
    ];
    let g = &family(KernelFamily::Gpu);
    for (decoder, logits, reference) in cases {
        for repeat in [1, 3] {
            let (p, lb, xb, rb) =
                (loss_params_repeat(B as u32, true, repeat), storage(logits), storage(&x), storage(&[f32::NAN; B]));
            let launch = rec(decoder, (&lb, &xb, &rb)).forward(gpu::Launcher { gpu: g, kernels: &gpu().1 }, &p);
            let name = format!("{} repeat {repeat}", launch.name);
            assert!(launch.name.ends_with("_rows"), "the GPU family's kernel: {name}");
            run(launch);
            assert_close(&name, &read(&rb, B), &reference(logits, &x, B, PIXELS, repeat), 1e-5);
        }
    }
}
