//! shaders/importance.wgsl: importance samples, log weights, the running log-sum-exp.
use crate::common::*;

use wgvae::launches::ImportanceRows;
use wgvae::reference::importance as ri;

// 5 images x 13 samples = 65 rows (not a multiple of 64); latent 7 (not a multiple of 4).
const IMAGES: usize = 5;
const SAMPLES: usize = 13;

fn params(first_sample: u32, total: u32) -> IwParams {
    IwParams {
        images: IMAGES as u32,
        samples: SAMPLES as u32,
        latent: LATENT as u32,
        pixels: PIXELS as u32,
        first_image: 17,
        first_sample,
        total_samples: total,
        seed: 99,
        result_offset: 6,
    }
}

/// Runs `launch` of the launcher over test buffers: IwParams `p` (images x samples rows) and
/// [z, log_ratio, x, log_w, state, result], under the plan of `family` (the accumulation's variant).
fn run_chunk(
    family: KernelFamily,
    p: &IwParams,
    [z, log_ratio, x, log_w, state, result]: [&wgpu::Buffer; 6],
    launch: impl Fn(&ImportanceRows, gpu::Launcher) -> Launch,
) -> &'static str {
    let (g, params) = (gpu_with(family, false), uniform(p));
    let rows = (p.images * p.samples) as usize;
    let chunk =
        ImportanceRows { rows, images: p.images as usize, params: &params, z, log_ratio, x, log_w, state, result };
    let launch = launch(&chunk, gpu::Launcher { gpu: &g, kernels: &gpu().1 });
    let name = launch.name;
    run(launch);
    name
}

#[test]
fn iw_sample_should_match_reference() {
    let p = params(26, 1000);
    let mulv = random(IMAGES * 2 * LATENT, 40, 1.5);
    let rows = IMAGES * SAMPLES;
    let (mb, zb, lb) = (storage(&mulv), storage(&vec![0.0; rows * LATENT]), storage(&vec![0.0; rows]));
    let u = storage(&[0.0; 4]);
    run_chunk(KernelFamily::Cpu, &p, [&zb, &lb, &u, &u, &u, &u], |c, l| c.sample(l, Some(&mb)));
    let (z, log_ratio) = ri::iw_sample(&p, &mulv);
    let sigma = mulv.iter().map(|v| (0.5 * v).exp()).fold(1.0f32, f32::max);
    assert_close("iw_sample z", &read(&zb, rows * LATENT), &z, DRAW_ABS * sigma);
    assert_close("iw_sample log_ratio", &read(&lb, rows), &log_ratio, DRAWN_REL);
}

#[test]
fn iw_log_weight_should_match_reference() {
    let p = params(0, SAMPLES as u32);
    let rows = IMAGES * SAMPLES;
    let (logits, log_ratio) = (random(rows * PIXELS, 41, 6.0), random(rows, 42, 5.0));
    let x: Vec<f32> = random(IMAGES * PIXELS, 43, 1.0).iter().map(|v| v.abs()).collect();
    let (lb, xb, rb, wb) = (storage(&logits), storage(&x), storage(&log_ratio), storage(&vec![0.0; rows]));
    let u = storage(&[0.0; 4]);
    run_chunk(KernelFamily::Cpu, &p, [&u, &rb, &xb, &wb, &u, &u], |c, l| c.log_weight(l, Decoder::Bernoulli, &lb));
    assert_close("iw_log_weight", &read(&wb, rows), &ri::iw_log_weight(&p, &logits, &x, &log_ratio), 1e-5);
}

/// Three chunks of one image batch: the running log-sum-exp and the final estimate must match
/// the reference chunk by chunk, and the estimate must equal a direct log-mean-exp.
#[test]
fn iw_log_weight_gaussian_should_match_reference() {
    let p = params(0, SAMPLES as u32);
    let rows = IMAGES * SAMPLES;
    let (logits, log_ratio) = (random(rows * 2 * PIXELS, 62, 3.0), random(rows, 63, 5.0));
    let x: Vec<f32> = random(IMAGES * PIXELS, 64, 1.0).iter().map(|v| v.abs()).collect();
    let (lb, xb, rb, wb) = (storage(&logits), storage(&x), storage(&log_ratio), storage(&vec![0.0; rows]));
    let u = storage(&[0.0; 4]);
    run_chunk(KernelFamily::Cpu, &p, [&u, &rb, &xb, &wb, &u, &u], |c, l| c.log_weight(l, Decoder::Gaussian, &lb));
    assert_close(
        "iw_log_weight_gaussian",
        &read(&wb, rows),
        &ri::iw_log_weight_gaussian(&p, &logits, &x, &log_ratio),
        1e-5,
    );
}

#[test]
fn iw_accumulate_should_match_reference_across_chunks() {
    let total = 3 * SAMPLES as u32;
    // Log weights around -500 with a spread of 60 nats: exp without the max would underflow.
    let chunks: Vec<Vec<f32>> =
        (0..3).map(|c| random(IMAGES * SAMPLES, 50 + c, 30.0).iter().map(|v| v - 500.0).collect()).collect();
    let n_results = 17 + IMAGES + 2; // result_offset 6 = two images' results
    let (sb, resb) = (storage(&[0.0; IMAGES * 4]), storage(&vec![0.0; n_results * 3]));
    let (mut state, mut result) = (vec![0.0; IMAGES * 4], vec![0.0; n_results * 3]);
    for (c, log_w) in chunks.iter().enumerate() {
        let p = params(c as u32 * SAMPLES as u32, total);
        let wb = storage(log_w);
        let u = storage(&[0.0; 4]);
        let name = run_chunk(KernelFamily::Cpu, &p, [&u, &u, &u, &wb, &sb, &resb], |c, l| c.accumulate(l));
        assert_eq!(name, Entry::IwAccumulate.name(), "the CPU family's accumulation");
        ri::iw_accumulate(&p, log_w, &mut state, &mut result);
        assert_close(&format!("iw_accumulate state after chunk {c}"), &read(&sb, IMAGES * 4), &state, 1e-5);
    }
    let got = read(&resb, n_results * 3);
    assert_close("iw_accumulate result", &got, &result, 1e-5);
    for i in 0..IMAGES {
        let all: Vec<f64> =
            chunks.iter().flat_map(|c| c[i * SAMPLES..(i + 1) * SAMPLES].to_vec()).map(|v| v as f64).collect();
        let m = all.iter().cloned().fold(f64::MIN, f64::max);
        let lme = m + (all.iter().map(|v| (v - m).exp()).sum::<f64>() / all.len() as f64).ln();
        let at = 6 + (17 + i) * 3;
        assert!((got[at] as f64 + lme).abs() < 1e-3, "image {i}: estimate {} vs direct {}", got[at], -lme);
        let mean = all.iter().sum::<f64>() / all.len() as f64;
        assert!((got[at + 1] as f64 + mean).abs() < 1e-3, "image {i}: mean log weight");
        assert!(got[at] <= got[at + 1] + 1e-4, "log-mean-exp >= mean (Jensen) for image {i}");
        let ess = all.iter().map(|v| (v - m).exp()).sum::<f64>().powi(2)
            / all.iter().map(|v| (2.0 * (v - m)).exp()).sum::<f64>();
        assert!((got[at + 2] as f64 - ess).abs() < 1e-3 * ess, "image {i}: ESS {} vs direct {ess}", got[at + 2]);
        assert!(got[at + 2] >= 1.0 - 1e-5 && got[at + 2] <= total as f32 * (1.0 + 1e-5), "ESS outside [1, K]");
    }
}

/// The whole GPU estimate (ImportanceSampler: gather, encoder, chunks of decoder passes) against
/// the CPU references composed by hand, with K split into several chunks.
#[test]
fn importance_sampler_should_match_the_composed_references() {
    use wgvae::importance::{plan, ImportanceSampler, ROWS};
    use wgvae::model::{Architecture, Model};
    let data = wgvae::data::embedded().expect("embedded data");
    let n = 3;
    let split = wgvae::data::Split {
        images: data.val.images[..n * 784].to_vec(),
        labels: data.val.labels[..n].to_vec(),
        pixels: 784,
    };
    let model = Model::new(Architecture::mlp(wgvae::data::ImageShape::mnist(), vec![9], 3));
    let params = model.init_params(3);
    let k = ROWS + 5; // two chunks per image, the second smaller
    assert_eq!(plan(k, n, ROWS), (1, (ROWS + 5).div_ceil(2)));
    let pb = storage(&params);
    // Both families: an invocation per image accumulates on CPU adapters, a workgroup on GPUs.
    for family in [KernelFamily::Cpu, KernelFamily::Gpu] {
        let g = &gpu_with(family, true);
        let sampling = wgvae::importance::Sampling {
            ks: &[k],
            proposal: wgvae::importance::Proposal::Encoder,
            binarize: wgvae::data::Binarize::None,
            data_seed: 1,
            seed: 7,
        };
        let images = gpu::ImageShards::new(g, "images", &split.images, split.pixels);
        let l = gpu::Launcher { gpu: g, kernels: &gpu().1 };
        let sampler = ImportanceSampler::new(l, (&model, &pb), &images, sampling);
        let got = sampler.run(g, |_| {}).unwrap().pop().expect("one K");
        use wgvae::reference::network::forward_path;
        for i in 0..n {
            let x: Vec<f32> = split.image(i).iter().map(|&v| v as f32 / 255.0).collect();
            let h = forward_path(&model.encoder, &params, x.clone(), 1).pop().expect("q's parameters");
            let p = IwParams {
                images: 1,
                samples: k as u32,
                latent: 3,
                pixels: 784,
                first_image: i as u32,
                first_sample: 0,
                total_samples: k as u32,
                seed: 7,
                result_offset: 0,
            };
            let (z, log_ratio) = ri::iw_sample(&p, &h);
            let d = forward_path(&model.decoder, &params, z, k).pop().expect("logits");
            let log_w = ri::iw_log_weight(&p, &d, &x, &log_ratio);
            let (mut state, mut result) = (vec![0.0; 4], vec![0.0; (i + 1) * 3]);
            ri::iw_accumulate(&p, &log_w, &mut state, &mut result);
            assert_close(
                &format!("{family:?} family, image {i}: -log p(x), K = {k}"),
                &[got.nll[i], got.neg_elbo[i], got.ess[i]],
                &result[i * 3..],
                DRAWN_REL,
            );
        }
    }
}

#[test]
fn iw_sample_prior_should_match_reference() {
    let p = params(26, 1000);
    let rows = IMAGES * SAMPLES;
    let (zb, lb) = (storage(&vec![0.0; rows * LATENT]), storage(&vec![1.0; rows]));
    let u = storage(&[0.0; 4]);
    run_chunk(KernelFamily::Cpu, &p, [&zb, &lb, &u, &u, &u, &u], |c, l| c.sample(l, None));
    let (z, log_ratio) = ri::iw_sample_prior(&p);
    assert_close("iw_sample_prior z", &read(&zb, rows * LATENT), &z, DRAW_ABS);
    assert_eq!(read(&lb, rows), log_ratio, "the prior's log ratio is 0");
    // The prior's z are iw_sample's eps: with mu = 0 and logvar = 0 the encoder's z are the same.
    let (z_encoder, _) = ri::iw_sample(&p, &vec![0.0; IMAGES * 2 * LATENT]);
    assert_close("prior z against iw_sample at N(0, I)", &z, &z_encoder, 1e-6);
}

#[test]
fn iw_accumulate_should_give_an_ess_of_k_for_equal_weights() {
    let total = 2 * SAMPLES as u32;
    let (sb, resb) = (storage(&[0.0; IMAGES * 4]), storage(&vec![0.0; 6 + (17 + IMAGES) * 3]));
    for c in 0..2 {
        let p = params(c * SAMPLES as u32, total);
        let wb = storage(&vec![-321.5; IMAGES * SAMPLES]);
        let u = storage(&[0.0; 4]);
        let name = run_chunk(KernelFamily::Cpu, &p, [&u, &u, &u, &wb, &sb, &resb], |c, l| c.accumulate(l));
        assert_eq!(name, Entry::IwAccumulate.name(), "the CPU family's accumulation");
    }
    let got = read(&resb, 6 + (17 + IMAGES) * 3);
    for i in 0..IMAGES {
        let at = 6 + (17 + i) * 3;
        assert_eq!(got[at + 2], total as f32, "image {i}: equal weights give ESS = K");
        assert!((got[at] - 321.5).abs() < 1e-4, "image {i}: -log mean w = 321.5, got {}", got[at]);
    }
}

#[test]
fn iw_accumulate_rows_should_match_reference_across_chunks() {
    // A workgroup per image: chunks of 13 samples (part of the lanes) and of 150 (two full passes
    // of the lanes and a partial one), images laid out in rows of 2 workgroups (the test device's
    // grid_x).
    for samples in [SAMPLES, 150] {
        let total = 3 * samples as u32;
        let chunks: Vec<Vec<f32>> =
            (0..3).map(|c| random(IMAGES * samples, 80 + c, 30.0).iter().map(|v| v - 500.0).collect()).collect();
        let n_results = 17 + IMAGES + 2;
        let (sb, resb) = (storage(&[0.0; IMAGES * 4]), storage(&vec![0.0; n_results * 3]));
        let (mut state, mut result) = (vec![0.0; IMAGES * 4], vec![0.0; n_results * 3]);
        for (c, log_w) in chunks.iter().enumerate() {
            let p = IwParams { samples: samples as u32, ..params(c as u32 * samples as u32, total) };
            let (u, wb) = (storage(&[0.0; 4]), storage(log_w));
            let name = run_chunk(KernelFamily::Gpu, &p, [&u, &u, &u, &wb, &sb, &resb], |c, l| c.accumulate(l));
            assert_eq!(name, Entry::IwAccumulateRows.name(), "the GPU family's accumulation");
            ri::iw_accumulate_rows(&p, log_w, &mut state, &mut result);
            let name = format!("iw_accumulate_rows samples {samples} state after chunk {c}");
            assert_close(&name, &read(&sb, IMAGES * 4), &state, 1e-5);
        }
        let name = format!("iw_accumulate_rows samples {samples} result");
        assert_close(&name, &read(&resb, n_results * 3), &result, 1e-5);
    }
}
