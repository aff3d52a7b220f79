//! shaders/rows.wgsl and shaders/samples.wgsl through their launchers (launches/rows.rs,
//! launches/samples.rs): several samples per input, IWAE, the score function.
use crate::common::*;
use wgvae::launches::rows;
use wgvae::launches::samples::SampleRows;
use wgvae::reference::samples as rs;

// 5 inputs x 3 samples = 15 rows; latent 7.
const INPUTS: usize = 5;
const S: usize = 3;
const ROWS: usize = INPUTS * S;

#[test]
fn repeat_rows_and_sum_row_groups_should_match_reference() {
    let width = 2 * LATENT;
    let p = rows::row_params(l(), INPUTS, S, width);
    let per_input = random(INPUTS * width, 60, 1.0);
    let (src, dst) = (storage(&per_input), storage(&vec![0.0; ROWS * width]));
    run(rows::repeat_rows(l(), &p, &src, &dst, ROWS * width));
    assert_close(
        "repeat_rows",
        &read(&dst, ROWS * width),
        &wgvae::reference::rows::repeat_rows(&per_input, INPUTS, S, width),
        0.0,
    );
    let per_sample = random(ROWS * width, 61, 1.0);
    let (src, dst) = (storage(&per_sample), storage(&vec![0.0; INPUTS * width]));
    run(rows::sum_row_groups(l(), &p, &src, &dst, INPUTS * width));
    assert_close(
        "sum_row_groups",
        &read(&dst, INPUTS * width),
        &wgvae::reference::rows::sum_row_groups(&per_sample, INPUTS, S, width),
        1e-6,
    );
}

fn params(baseline: u32, beta: f32, warmup_steps: u32) -> wgpu::Buffer {
    uniform(&SampleParams {
        rows: ROWS as u32,
        samples: S as u32,
        latent: LATENT as u32,
        baseline,
        beta,
        warmup_steps,
        decay: 0.9,
        pad: 0,
    })
}

fn l() -> gpu::Launcher<'static> {
    gpu::Launcher { gpu: &gpu().0, kernels: &gpu().1 }
}

/// The launcher over `params` and the buffers a test gives; the others are unread placeholders.
#[derive(Default)]
struct Bufs {
    counters: Option<wgpu::Buffer>,
    mulv: Option<wgpu::Buffer>,
    d_mulv: Option<wgpu::Buffer>,
    eps: Option<wgpu::Buffer>,
    z: Option<wgpu::Buffer>,
    dz: Option<wgpu::Buffer>,
    rec: Option<wgpu::Buffer>,
    log_w: Option<wgpu::Buffer>,
    coef: Option<wgpu::Buffer>,
    baseline: Option<wgpu::Buffer>,
}

impl Bufs {
    fn rows<'a>(&'a self, params: &'a wgpu::Buffer, unused: &'a wgpu::Buffer) -> SampleRows<'a> {
        let or = |b: &'a Option<wgpu::Buffer>| b.as_ref().unwrap_or(unused);
        SampleRows {
            rows: ROWS,
            latent: LATENT,
            params,
            counters: or(&self.counters),
            mulv: or(&self.mulv),
            d_mulv: or(&self.d_mulv),
            eps: or(&self.eps),
            z: or(&self.z),
            dz: or(&self.dz),
            rec: or(&self.rec),
            log_w: or(&self.log_w),
            coef: or(&self.coef),
            baseline: or(&self.baseline),
        }
    }
}

#[test]
fn log_weight_forward_should_match_reference_with_a_warming_kl_weight() {
    let (mulv, eps, z, rec) = (
        random(ROWS * 2 * LATENT, 62, 1.5),
        random(ROWS * LATENT, 63, 2.0),
        random(ROWS * LATENT, 64, 2.0),
        random(ROWS, 65, 300.0),
    );
    let b = Bufs {
        counters: Some(gpu::storage_with(&gpu().0, "c", &[counters(3, 0)])),
        mulv: Some(storage(&mulv)),
        eps: Some(storage(&eps)),
        z: Some(storage(&z)),
        rec: Some(storage(&rec)),
        log_w: Some(storage(&[0.0; ROWS])),
        ..Bufs::default()
    };
    let (p, unused) = (params(0, 0.8, 10), storage(&[0.0; 4]));
    run(b.rows(&p, &unused).log_weight(l()));
    let want = rs::log_weight_forward(&mulv, &eps, &z, &rec, LATENT, r::kl_weight(0.8, 10, 3));
    assert_close("log_weight_forward", &read(b.log_w.as_ref().unwrap(), ROWS), &want, 1e-5);
}

#[test]
fn iwae_weights_should_match_reference() {
    // Log weights near -700: exp without the max would underflow to 0 / 0.
    let log_w: Vec<f32> = random(ROWS, 66, 20.0).iter().map(|v| v - 700.0).collect();
    let b = Bufs { log_w: Some(storage(&log_w)), coef: Some(storage(&[0.0; ROWS])), ..Bufs::default() };
    let (p, unused) = (params(0, 1.0, 0), storage(&[0.0; 4]));
    run(b.rows(&p, &unused).iwae_weights(l(), INPUTS));
    let got = read(b.coef.as_ref().unwrap(), ROWS);
    assert_close("iwae_weights", &got, &rs::iwae_weights(&log_w, S), 1e-5);
    for group in got.chunks(S) {
        assert!((group.iter().sum::<f32>() - 1.0).abs() < 1e-5, "weights of an input sum to 1: {group:?}");
    }
}

#[test]
fn sampled_latent_backward_should_match_reference() {
    let (mulv, eps, z) =
        (random(ROWS * 2 * LATENT, 67, 1.5), random(ROWS * LATENT, 68, 2.0), random(ROWS * LATENT, 69, 2.0));
    let (coef, dz) = (random(ROWS, 70, 1.0), random(ROWS * LATENT, 71, 1.0));
    let b = Bufs {
        mulv: Some(storage(&mulv)),
        eps: Some(storage(&eps)),
        z: Some(storage(&z)),
        coef: Some(storage(&coef)),
        dz: Some(storage(&dz)),
        d_mulv: Some(storage(&[0.0; ROWS * 2 * LATENT])),
        ..Bufs::default()
    };
    let (p, unused) = (params(0, 1.0, 0), storage(&[0.0; 4]));
    run(b.rows(&p, &unused).sampled_latent_backward(l()));
    assert_close(
        "sampled_latent_backward",
        &read(b.d_mulv.as_ref().unwrap(), ROWS * 2 * LATENT),
        &rs::sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, LATENT),
        1e-5,
    );
}

#[test]
fn score_backward_and_baseline_update_should_match_reference_for_every_baseline() {
    let (mulv, eps) = (random(ROWS * 2 * LATENT, 72, 1.5), random(ROWS * LATENT, 73, 2.0));
    let log_w: Vec<f32> = random(ROWS, 74, 40.0).iter().map(|v| v - 250.0).collect();
    for (baseline, state) in [(0u32, [0.0f32, 0.0]), (1, [0.0, 0.0]), (1, [-240.0, 1.0]), (2, [0.0, 0.0])] {
        let b = Bufs {
            mulv: Some(storage(&mulv)),
            eps: Some(storage(&eps)),
            log_w: Some(storage(&log_w)),
            d_mulv: Some(storage(&[0.0; ROWS * 2 * LATENT])),
            baseline: Some(storage(&state)),
            ..Bufs::default()
        };
        let (p, unused) = (params(baseline, 1.0, 0), storage(&[0.0; 4]));
        run(b.rows(&p, &unused).score_backward(l()));
        assert_close(
            &format!("score_backward baseline {baseline} state {state:?}"),
            &read(b.d_mulv.as_ref().unwrap(), ROWS * 2 * LATENT),
            &rs::score_backward(&mulv, &eps, &log_w, LATENT, S, baseline, state),
            1e-5,
        );
        // The baseline's update on this adapter's kernel (the next test runs both families').
        run(b.rows(&p, &unused).score_baseline_update(l()));
        let want = match gpu().0.plan().tree_reductions() {
            false => rs::score_baseline_update(&log_w, state, 0.9),
            true => rs::score_baseline_update_tree(&log_w, state, 0.9),
        };
        assert_close("score_baseline_update", &read(b.baseline.as_ref().unwrap(), 2), &want, 1e-6);
    }
}

#[test]
fn score_baseline_update_kernels_should_match_reference_past_a_workgroup() {
    // Both kernels (one invocation; 64 lanes and a tree) at 15 rows and at 150 (two full passes of
    // the lanes and a partial one), from an unset baseline and from a running one.
    type Reference = fn(&[f32], [f32; 2], f32) -> [f32; 2];
    let kernels: [(KernelFamily, Reference); 2] =
        [(KernelFamily::Cpu, rs::score_baseline_update), (KernelFamily::Gpu, rs::score_baseline_update_tree)];
    for (family, reference) in kernels {
        let g = &gpu_with(family, true);
        let l = gpu::Launcher { gpu: g, kernels: &gpu().1 };
        for rows in [ROWS, 150] {
            let log_w = random(rows, 70, 50.0);
            for state in [[0.0, 0.0], [-80.0, 1.0]] {
                let p = uniform(&SampleParams {
                    rows: rows as u32,
                    samples: S as u32,
                    latent: LATENT as u32,
                    baseline: 1,
                    beta: 1.0,
                    warmup_steps: 0,
                    decay: 0.9,
                    pad: 0,
                });
                let b = Bufs { log_w: Some(storage(&log_w)), baseline: Some(storage(&state)), ..Bufs::default() };
                let unused = storage(&[0.0; 4]);
                let launch = SampleRows { rows, ..b.rows(&p, &unused) }.score_baseline_update(l);
                let tree = launch.name == Entry::ScoreBaselineUpdateTree.name();
                assert_eq!(tree, family == KernelFamily::Gpu, "{family:?} family runs {}", launch.name);
                let name = format!("{} rows {rows} state {state:?}", launch.name);
                run(launch);
                assert_close(&name, &read(b.baseline.as_ref().unwrap(), 2), &reference(&log_w, state, 0.9), 1e-5);
            }
        }
    }
}
