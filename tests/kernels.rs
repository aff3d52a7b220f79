//! Every WGSL entry point against its CPU reference (src/reference/kernels.rs) on seeded inputs at
//! sizes that are not multiples of the workgroup sizes; finite-difference checks of every backward
//! reference; statistics of the random numbers; GPU training steps against the reference trainer.
//! GPU tests need an adapter and fail (never skip) without one; install lavapipe to get one.
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use wgvae::gpu::kernels::{bind, submit};
use wgvae::gpu::params::*;
use wgvae::gpu::params::{Counters, LossTotals};
use wgvae::gpu::{self, Gpu, Kernels, Launch};
use wgvae::model::Decoder;
use wgvae::objective::ObjectiveSettings;
use wgvae::reference::kernels as r;

fn gpu() -> &'static (Gpu, Kernels) {
    static GPU: OnceLock<(Gpu, Kernels)> = OnceLock::new();
    GPU.get_or_init(|| {
        let gpu = Gpu::open(None, None).unwrap_or_else(|e| panic!("GPU tests need an adapter: {e:#}"));
        let kernels = Kernels::new(&gpu);
        (gpu, kernels)
    })
}

fn random(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..n).map(|_| rng.random_range(-scale..scale)).collect()
}

fn run(launch: Launch) {
    submit(&gpu().0, &[std::slice::from_ref(&launch)]);
}

fn storage(data: &[f32]) -> wgpu::Buffer {
    gpu::storage_with(&gpu().0, "test", data)
}

fn uniform<T: bytemuck::Pod>(value: &T) -> wgpu::Buffer {
    gpu::uniform_with(&gpu().0, "test params", value)
}

fn read(buffer: &wgpu::Buffer, len: usize) -> Vec<f32> {
    gpu::read(&gpu().0, buffer, 0, len)
}

/// Max |a - b| / (1 + |b|) must stay under tol; prints the first mismatches otherwise.
fn assert_close(name: &str, got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    let err = |i: usize| (got[i] - want[i]).abs() / (1.0 + want[i].abs());
    let worst = (0..got.len()).map(err).fold(0.0f32, f32::max);
    if !(worst <= tol) {
        let bad: Vec<String> = (0..got.len())
            .filter(|&i| !(err(i) <= tol))
            .take(5)
            .map(|i| format!("[{i}] gpu {} ref {}", got[i], want[i]))
            .collect();
        panic!("{name}: max relative error {worst} > {tol}; first mismatches: {}", bad.join(", "));
    }
}

// Awkward sizes: not multiples of 64 (workgroup), 8 (tile rows) or 256 (a workgroup's columns);
// n_out > 256 so several workgroups share a row block. The scalar kernels also get widths that are
// not multiples of 4; the vec4 kernels need multiples of 4 (the trainer picks them only then).
const B: usize = 13;
const SCALAR: (&str, usize, usize) = ("", 37, 261);
const VEC4: (&str, usize, usize) = ("_vec4", 36, 268);

fn dims(n_in: usize, n_out: usize, relu: bool) -> wgpu::Buffer {
    uniform(&Dims { batch: B as u32, n_in: n_in as u32, n_out: n_out as u32, relu: relu as u32 })
}

fn check_linear_forward(
    (suffix, n_in, n_out): (&str, usize, usize),
    reference: fn(&[f32], &[f32], &[f32], usize, usize, usize, bool) -> Vec<f32>,
) {
    let (x, w, b) = (random(B * n_in, 1, 1.0), random(n_out * n_in, 2, 0.5), random(n_out, 3, 0.5));
    for relu in [false, true] {
        let (xb, wb, bb, yb) = (storage(&x), storage(&w), storage(&b), storage(&vec![0.0; B * n_out]));
        let d = dims(n_in, n_out, relu);
        let name = format!("linear_forward{suffix}");
        run(gpu().1.get(&name).launch(
            &gpu().0,
            &[bind(0, &d), bind(1, &xb), bind(2, &wb), bind(3, &bb), bind(4, &yb)],
            linear_groups(B, n_out),
        ));
        assert_close(&name, &read(&yb, B * n_out), &reference(&x, &w, &b, B, n_in, n_out, relu), 1e-5);
    }
}

fn check_linear_backward_input(
    (suffix, n_in, n_out): (&str, usize, usize),
    reference: fn(&[f32], &[f32], &[f32], usize, usize, usize, bool) -> Vec<f32>,
) {
    let (dy, w) = (random(B * n_out, 4, 1.0), random(n_out * n_in, 5, 0.5));
    let x: Vec<f32> = random(B * n_in, 6, 1.0).iter().map(|v| v.max(0.0)).collect(); // a ReLU output
    for relu_input in [false, true] {
        let (dyb, wb, xb, dxb) = (storage(&dy), storage(&w), storage(&x), storage(&vec![0.0; B * n_in]));
        let d = dims(n_in, n_out, relu_input);
        let name = format!("linear_backward_input{suffix}");
        run(gpu().1.get(&name).launch(
            &gpu().0,
            &[bind(0, &d), bind(1, &dyb), bind(2, &wb), bind(3, &xb), bind(4, &dxb)],
            linear_groups(B, n_in),
        ));
        assert_close(&name, &read(&dxb, B * n_in), &reference(&dy, &w, &x, B, n_in, n_out, relu_input), 1e-5);
    }
}

fn check_linear_backward_weight(
    (suffix, n_in, n_out): (&str, usize, usize),
    reference: fn(&[f32], &[f32], usize, usize, usize) -> Vec<f32>,
) {
    let (dy, x) = (random(B * n_out, 7, 1.0), random(B * n_in, 8, 1.0));
    let (dyb, xb, dwb) = (storage(&dy), storage(&x), storage(&vec![0.0; n_out * n_in]));
    let d = dims(n_in, n_out, false);
    let name = format!("linear_backward_weight{suffix}");
    run(gpu().1.get(&name).launch(
        &gpu().0,
        &[bind(0, &d), bind(1, &dyb), bind(2, &xb), bind(4, &dwb)],
        linear_groups(n_out, n_in),
    ));
    assert_close(&name, &read(&dwb, n_out * n_in), &reference(&dy, &x, B, n_in, n_out), 1e-5);
}

#[test]
fn linear_forward_should_match_reference() {
    check_linear_forward(SCALAR, r::linear_forward);
}

#[test]
fn linear_forward_vec4_should_match_reference() {
    check_linear_forward(VEC4, r::linear_forward_vec4);
}

#[test]
fn linear_backward_input_should_match_reference() {
    check_linear_backward_input(SCALAR, r::linear_backward_input);
}

#[test]
fn linear_backward_input_vec4_should_match_reference() {
    check_linear_backward_input(VEC4, r::linear_backward_input_vec4);
}

#[test]
fn linear_backward_weight_should_match_reference() {
    check_linear_backward_weight(SCALAR, r::linear_backward_weight);
}

#[test]
fn linear_backward_weight_vec4_should_match_reference() {
    check_linear_backward_weight(VEC4, r::linear_backward_weight_vec4);
}

#[test]
fn linear_backward_bias_should_match_reference() {
    let (_, _, n_out) = SCALAR;
    let dy = random(B * n_out, 9, 1.0);
    let (dyb, dbb) = (storage(&dy), storage(&vec![0.0; n_out]));
    let d = dims(1, n_out, false);
    run(gpu().1.get("linear_backward_bias").launch(
        &gpu().0,
        &[bind(0, &d), bind(1, &dyb), bind(4, &dbb)],
        groups_of_64(n_out),
    ));
    assert_close("linear_backward_bias", &read(&dbb, n_out), &r::linear_backward_bias(&dy, B, n_out), 1e-5);
}

const LATENT: usize = 7;

fn latent_params(batch: usize) -> wgpu::Buffer {
    latent_params_with(batch, 1.0, 0, 0.0, 1.0)
}

fn latent_params_with(batch: usize, beta: f32, warmup_steps: u32, free_bits: f32, sample_scale: f32) -> wgpu::Buffer {
    uniform(&LatentParams {
        batch: batch as u32,
        latent: LATENT as u32,
        seed: 1234,
        stream: 3,
        beta,
        warmup_steps,
        free_bits,
        sample_scale,
    })
}

fn counters(step: u32, cursor: u32) -> Counters {
    Counters { step, cursor, ..Counters::new() }
}

#[test]
fn reparam_forward_should_match_reference() {
    let mulv = random(B * 2 * LATENT, 10, 1.5);
    let c = counters(5, 26);
    let (p, cb, mb) = (latent_params(B), gpu::storage_with(&gpu().0, "counters", &[c]), storage(&mulv));
    let (eb, zb) = (storage(&vec![0.0; B * LATENT]), storage(&vec![0.0; B * LATENT]));
    run(gpu().1.get("reparam_forward").launch(
        &gpu().0,
        &[bind(0, &p), bind(1, &cb), bind(2, &mb), bind(3, &eb), bind(4, &zb)],
        groups_of_64((B * LATENT).div_ceil(4)),
    ));
    let (eps, z) = r::reparam_forward(&mulv, B, LATENT, 1234, 3, &c);
    assert_close("reparam_forward eps", &read(&eb, B * LATENT), &eps, 1e-5);
    assert_close("reparam_forward z", &read(&zb, B * LATENT), &z, 1e-5);
}

#[test]
fn reparam_backward_should_match_reference() {
    let (mulv, eps, dz) = (random(B * 2 * LATENT, 11, 1.5), random(B * LATENT, 12, 2.0), random(B * LATENT, 13, 1.0));
    let p = latent_params(B);
    let (mb, eb, dzb, db) = (storage(&mulv), storage(&eps), storage(&dz), storage(&vec![0.0; B * 2 * LATENT]));
    run(gpu().1.get("reparam_backward").launch(
        &gpu().0,
        &[bind(0, &p), bind(2, &mb), bind(3, &eb), bind(5, &dzb), bind(6, &db)],
        groups_of_64(B * LATENT),
    ));
    assert_close(
        "reparam_backward",
        &read(&db, B * 2 * LATENT),
        &r::reparam_backward(&dz, &eps, &mulv, B, LATENT),
        1e-5,
    );
}

#[test]
fn gaussian_kl_forward_should_match_reference() {
    let mulv = random(B * 2 * LATENT, 14, 2.0);
    let (p, mb, kb) = (latent_params(B), storage(&mulv), storage(&vec![0.0; B]));
    run(gpu().1.get("gaussian_kl_forward").launch(
        &gpu().0,
        &[bind(0, &p), bind(2, &mb), bind(7, &kb)],
        groups_of_64(B),
    ));
    assert_close("gaussian_kl_forward", &read(&kb, B), &r::gaussian_kl_forward(&mulv, B, LATENT), 1e-5);
}

#[test]
fn gaussian_kl_backward_should_match_reference_with_beta_warmup_and_free_bits() {
    let (mulv, start) = (random(B * 2 * LATENT, 15, 2.0), random(B * 2 * LATENT, 16, 1.0));
    // A free-bits threshold between the dimensions' mean KLs, so some dimensions pass and some do not.
    let mut means: Vec<f64> = (0..LATENT).map(|j| dim_mean_kl(&mulv, B, LATENT, j)).collect();
    means.sort_by(f64::total_cmp);
    let free_bits = ((means[LATENT / 2] + means[LATENT / 2 - 1]) / 2.0) as f32;
    // (beta, warm-up steps, free bits, sample scale) at optimizer step 7.
    for (beta, warmup, fb, scale) in [(1.0, 0, 0.0, 1.0), (0.5, 20, 0.0, 1.0), (2.0, 0, free_bits, 0.25)] {
        let (p, mb, db) = (latent_params_with(B, beta, warmup, fb, scale), storage(&mulv), storage(&start));
        let cb = gpu::storage_with(&gpu().0, "c", &[counters(7, 0)]);
        run(gpu().1.get("gaussian_kl_backward").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &cb), bind(2, &mb), bind(6, &db)],
            groups_of_64(B * LATENT),
        ));
        let mut want = start.clone();
        r::gaussian_kl_backward(&mulv, &mut want, B, LATENT, r::kl_weight(beta, warmup, 7) * scale, fb);
        assert_close(
            &format!("gaussian_kl_backward beta {beta} warm-up {warmup} free bits {fb}"),
            &read(&db, B * 2 * LATENT),
            &want,
            1e-5,
        );
        if fb > 0.0 {
            let untouched =
                (0..LATENT).filter(|&j| (0..B).all(|b| want[b * 2 * LATENT + j] == start[b * 2 * LATENT + j])).count();
            assert!(untouched > 0 && untouched < LATENT, "free bits should stop some dimensions, not all: {untouched}");
        }
    }
    assert_eq!(r::kl_weight(0.5, 20, 7), 0.5 * 7.0 / 20.0);
    assert_eq!(r::kl_weight(0.5, 20, 70), 0.5);
}

/// Mean over the batch of latent dimension j's KL.
fn dim_mean_kl(mulv: &[f32], batch: usize, latent: usize, j: usize) -> f64 {
    (0..batch)
        .map(|b| {
            let (m, l) = (mulv[b * 2 * latent + j] as f64, mulv[b * 2 * latent + latent + j] as f64);
            -0.5 * (1.0 + l - m * m - l.exp())
        })
        .sum::<f64>()
        / batch as f64
}

const PIXELS: usize = 83;

fn loss_params(pass_rows: u32, training: bool) -> wgpu::Buffer {
    loss_params_repeat(pass_rows, training, 1)
}

fn loss_params_repeat(pass_rows: u32, training: bool, repeat: usize) -> wgpu::Buffer {
    uniform(&LossParams {
        batch: B as u32,
        pixels: PIXELS as u32,
        pass_rows,
        training: training as u32,
        repeat: repeat as u32,
        fixed_batch: 0,
        pad: [0; 2],
    })
}

#[test]
fn bernoulli_rec_forward_should_match_reference() {
    // Logits up to +-40: the stable softplus must not overflow or lose the tail. Rows are samples of
    // ceil(13 / repeat) inputs.
    let logits = random(B * PIXELS, 17, 40.0);
    let x: Vec<f32> = random(B * PIXELS, 18, 1.0).iter().map(|v| v.abs()).collect();
    for repeat in [1, 3] {
        let (p, lb, xb, rb) =
            (loss_params_repeat(B as u32, true, repeat), storage(&logits), storage(&x), storage(&vec![0.0; B]));
        run(gpu().1.get("bernoulli_rec_forward").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &lb), bind(3, &xb), bind(4, &rb)],
            groups_of_64(B),
        ));
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
        let (p, lb, xb, db) = (
            loss_params_repeat(B as u32, true, repeat),
            storage(&logits),
            storage(&x),
            storage(&vec![0.0; B * PIXELS]),
        );
        let cb = storage(&coef);
        run(gpu().1.get("bernoulli_rec_backward").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &lb), bind(3, &xb), bind(5, &db), bind(8, &cb)],
            groups_of_64(B * PIXELS),
        ));
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
        let (lb, xb, rb, db, cb) = (
            storage(&logits),
            storage(&x),
            storage(&vec![0.0; B]),
            storage(&vec![0.0; B * 2 * PIXELS]),
            storage(&coef),
        );
        run(gpu().1.get("gaussian_rec_forward").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &lb), bind(3, &xb), bind(4, &rb)],
            groups_of_64(B),
        ));
        assert_close(
            &format!("gaussian_rec_forward repeat {repeat}"),
            &read(&rb, B),
            &r::gaussian_rec_forward(&logits, &x, B, PIXELS, repeat),
            1e-5,
        );
        run(gpu().1.get("gaussian_rec_backward").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &lb), bind(3, &xb), bind(5, &db), bind(8, &cb)],
            groups_of_64(B * PIXELS),
        ));
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
    let rec = random(B, 21, 100.0);
    let kl = random(B, 22, 10.0);
    let mut nan_rec = rec.clone();
    nan_rec[3] = f32::NAN;
    // (rec, pass_rows, training, repeat): pass_rows 30 or 23 cuts the batch inside it.
    for (rec, pass_rows, training, repeat, fixed) in [
        (rec.clone(), 100u32, true, 1, false),
        (rec.clone(), 30, false, 1, false),
        (nan_rec, 100, true, 1, false),
        (rec.clone(), 23, true, 4, false),
        (rec.clone(), 30, true, 1, true),
    ] {
        let start_counters = counters(7, 20);
        let start_totals = LossTotals { rec_sum: 1.0, kl_sum: 2.0, examples: 3.0, pad: 0.0 };
        let p = uniform(&LossParams {
            batch: B as u32,
            pixels: PIXELS as u32,
            pass_rows,
            training: training as u32,
            repeat: repeat as u32,
            fixed_batch: fixed as u32,
            pad: [0; 2],
        });
        let (cb, rb, kb) = (gpu::storage_with(&gpu().0, "c", &[start_counters]), storage(&rec), storage(&kl));
        let tb = gpu::storage_with(&gpu().0, "totals", &[start_totals]);
        run(gpu().1.get("finish_step").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &cb), bind(4, &rb), bind(6, &kb), bind(7, &tb)],
            [1, 1, 1],
        ));
        let (mut want_c, mut want_t) = (start_counters, start_totals);
        r::finish_step(&rec, &kl, pass_rows, training, repeat, fixed, &mut want_c, &mut want_t);
        assert_eq!(gpu::read::<Counters>(&gpu().0, &cb, 0, 1)[0], want_c);
        let got_t = gpu::read::<LossTotals>(&gpu().0, &tb, 0, 1)[0];
        if rec.iter().all(|v| v.is_finite()) {
            assert_close("finish_step totals", bytemuck::cast_slice(&[got_t]), bytemuck::cast_slice(&[want_t]), 1e-5);
        } else {
            assert_eq!(want_c.bad_step, 7, "the reference must flag the NaN");
        }
    }
}

#[test]
fn adam_step_should_match_reference() {
    let n = 1000;
    let (g, w0, m0) = (random(n, 23, 1.0), random(n, 24, 1.0), random(n, 25, 0.1));
    let v0: Vec<f32> = random(n, 26, 0.1).iter().map(|v| v * v).collect();
    let cfg = wgvae::config::AdamConfig { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let p = uniform(&AdamParams {
        count: n as u32,
        lr: cfg.lr,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
        pad: [0; 3],
    });
    let cb = gpu::storage_with(&gpu().0, "c", &[counters(4, 0)]);
    let (gb, wb, mb, vb) = (storage(&g), storage(&w0), storage(&m0), storage(&v0));
    run(gpu().1.get("adam_step").launch(
        &gpu().0,
        &[bind(0, &p), bind(1, &cb), bind(2, &gb), bind(3, &wb), bind(4, &mb), bind(5, &vb)],
        groups_of_64(n),
    ));
    let (mut w, mut m, mut v) = (w0.clone(), m0.clone(), v0.clone());
    r::adam_step(&g, &mut w, &mut m, &mut v, 4, &cfg);
    assert_close("adam_step weights", &read(&wb, n), &w, 1e-6);
    assert_close("adam_step m", &read(&mb, n), &m, 1e-6);
    assert_close("adam_step v", &read(&vb, n), &v, 1e-6);
}

#[test]
fn gather_batch_should_match_reference_in_every_binarize_mode() {
    let (images_n, pixels) = (29usize, 84usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(27);
    let images: Vec<u8> = (0..images_n * pixels).map(|_| rng.random()).collect();
    let words: Vec<u32> = images.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let order: Vec<u32> = (0..20).map(|_| rng.random_range(0..images_n as u32)).collect();
    let c = counters(3, 10); // rows 10.. of a 20-row pass: the last 3 of 13 are padding
    for binarize in [wgvae::data::Binarize::None, wgvae::data::Binarize::Dynamic, wgvae::data::Binarize::Static] {
        let p = uniform(&GatherParams {
            batch: B as u32,
            words: (pixels / 4) as u32,
            pass_rows: 20,
            binarize: binarize.code(),
            seed: 99,
            stream: STREAM_BINARIZE,
            pad: [0; 2],
        });
        let cb = gpu::storage_with(&gpu().0, "c", &[c]);
        let (ib, ob, xb) = (
            gpu::storage_with(&gpu().0, "images", &words),
            gpu::storage_with(&gpu().0, "order", &order),
            storage(&vec![7.0; B * pixels]),
        );
        run(gpu().1.get("gather_batch").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &cb), bind(2, &ib), bind(3, &ob), bind(4, &xb)],
            groups_of_64(B * pixels / 4),
        ));
        let want = r::gather_batch(&images, pixels, &order, B, 20, binarize, 99, STREAM_BINARIZE, &c);
        assert_close(&format!("gather_batch {binarize:?}"), &read(&xb, B * pixels), &want, 0.0);
    }
}

// ---- random numbers ----

#[test]
fn philox_reference_should_match_published_known_answers() {
    // Known-answer vectors of Random123 (kat_vectors, philox4x32_10).
    assert_eq!(r::philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(r::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(
        r::philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn gpu_normals_should_have_mean_0_variance_1_and_gaussian_tails() {
    // eps from reparam_forward with mu = 0, logvar = 0 is the raw N(0, 1) stream.
    let batch = 4099; // 4099 * 7 = 28693 draws, not a multiple of 4
    let n = batch * LATENT;
    let p = latent_params(batch);
    let cb = gpu::storage_with(&gpu().0, "c", &[counters(11, 0)]);
    let (mb, eb, zb) = (storage(&vec![0.0; batch * 2 * LATENT]), storage(&vec![0.0; n]), storage(&vec![0.0; n]));
    run(gpu().1.get("reparam_forward").launch(
        &gpu().0,
        &[bind(0, &p), bind(1, &cb), bind(2, &mb), bind(3, &eb), bind(4, &zb)],
        groups_of_64(n.div_ceil(4)),
    ));
    let e: Vec<f64> = read(&eb, n).iter().map(|&v| v as f64).collect();
    let nf = n as f64;
    let mean = e.iter().sum::<f64>() / nf;
    let var = e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let beyond = |k: f64| e.iter().filter(|v| v.abs() > k).count() as f64 / nf;
    // Tolerances are 5 standard errors of each statistic.
    assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
    for (k, p) in [(1.0, 0.317_310_5), (2.0, 0.045_500_3), (3.0, 0.002_699_8)] {
        let se = (p * (1.0 - p) / nf).sqrt();
        assert!((beyond(k) - p).abs() < 5.0 * se, "P(|eps| > {k}) = {} but N(0,1) gives {p}", beyond(k));
    }
    assert!(e.iter().all(|v| v.is_finite() && v.abs() < 7.0), "a draw is not finite or beyond 7 sigma");
    // Different steps give different (uncorrelated) draws.
    let (eps_a, _) = r::reparam_forward(&vec![0.0; 2 * 64], 64, 1, 1, 0, &counters(0, 0));
    let (eps_b, _) = r::reparam_forward(&vec![0.0; 2 * 64], 64, 1, 1, 0, &counters(1, 0));
    let dot: f32 = eps_a.iter().zip(&eps_b).map(|(a, b)| a * b).sum();
    assert!(dot.abs() / 64.0 < 0.5, "draws of consecutive steps look correlated");
}

// ---- finite differences of the backward references ----

/// Central difference of f at x along coordinate i.
fn numeric_grad(f: &dyn Fn(&[f32]) -> f64, x: &[f32], i: usize, h: f32) -> f64 {
    let (mut up, mut down) = (x.to_vec(), x.to_vec());
    up[i] += h;
    down[i] -= h;
    (f(&up) - f(&down)) / (2.0 * h as f64)
}

/// Compares analytic with central differences on about 40 coordinates. `smooth(up, down)` says
/// whether f is differentiable between the two perturbed points (no ReLU changed side); a
/// difference across a kink measures nothing, so those coordinates are skipped, and at least
/// three quarters of them must be checked.
fn check_grad(
    name: &str,
    f: &dyn Fn(&[f32]) -> f64,
    smooth: &dyn Fn(&[f32], &[f32]) -> bool,
    x: &[f32],
    analytic: &[f32],
) {
    let h = 1e-2;
    let (mut checked, mut tried) = (0, 0);
    for i in (0..x.len()).step_by(x.len().div_ceil(40).max(1)) {
        tried += 1;
        let (mut up, mut down) = (x.to_vec(), x.to_vec());
        up[i] += h;
        down[i] -= h;
        if !smooth(&up, &down) {
            continue;
        }
        checked += 1;
        let num = numeric_grad(f, x, i, h);
        let err = (num - analytic[i] as f64).abs() / (1.0 + num.abs());
        assert!(err < 2e-2, "{name}[{i}]: analytic {} vs finite difference {num}", analytic[i]);
    }
    assert!(4 * checked >= 3 * tried, "{name}: only {checked} of {tried} coordinates were away from a ReLU kink");
}

fn always(_: &[f32], _: &[f32]) -> bool {
    true
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

#[test]
fn linear_backward_references_should_match_finite_differences() {
    let (b, n_in, n_out) = (5, 6, 7);
    let (x, w, bias, probe) =
        (random(b * n_in, 30, 1.0), random(n_out * n_in, 31, 1.0), random(n_out, 32, 1.0), random(b * n_out, 33, 1.0));
    // L = sum(probe * relu(x W^T + b)); its gradient wrt y is probe, masked by the ReLU.
    let y = r::linear_forward(&x, &w, &bias, b, n_in, n_out, true);
    let dy: Vec<f32> = probe.iter().zip(&y).map(|(p, y)| if *y > 0.0 { *p } else { 0.0 }).collect();
    let positive = |x: &[f32], w: &[f32], bias: &[f32]| -> Vec<bool> {
        r::linear_forward(x, w, bias, b, n_in, n_out, false).iter().map(|&p| p > 0.0).collect()
    };
    check_grad(
        "dx",
        &|x| dot(&probe, &r::linear_forward(x, &w, &bias, b, n_in, n_out, true)),
        &|up, down| positive(up, &w, &bias) == positive(down, &w, &bias),
        &x,
        &r::linear_backward_input(&dy, &w, &x, b, n_in, n_out, false),
    );
    check_grad(
        "dW",
        &|w| dot(&probe, &r::linear_forward(&x, w, &bias, b, n_in, n_out, true)),
        &|up, down| positive(&x, up, &bias) == positive(&x, down, &bias),
        &w,
        &r::linear_backward_weight(&dy, &x, b, n_in, n_out),
    );
    check_grad(
        "db",
        &|bias| dot(&probe, &r::linear_forward(&x, &w, bias, b, n_in, n_out, true)),
        &|up, down| positive(&x, &w, up) == positive(&x, &w, down),
        &bias,
        &r::linear_backward_bias(&dy, b, n_out),
    );
    // The input-side ReLU mask: x itself a ReLU output, masked where it is 0.
    let x_relu: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    let y_relu = r::linear_forward(&x_relu, &w, &bias, b, n_in, n_out, true);
    let dy_relu: Vec<f32> = probe.iter().zip(&y_relu).map(|(p, y)| if *y > 0.0 { *p } else { 0.0 }).collect();
    let dx = r::linear_backward_input(&dy_relu, &w, &x_relu, b, n_in, n_out, true);
    let through_relu = |x: &[f32]| {
        let h: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        dot(&probe, &r::linear_forward(&h, &w, &bias, b, n_in, n_out, true))
    };
    let sides = |x: &[f32]| -> Vec<bool> {
        let h: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        let mut s: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        s.extend(positive(&h, &w, &bias));
        s
    };
    check_grad("dx through the input ReLU", &through_relu, &|up, down| sides(up) == sides(down), &x, &dx);
}

#[test]
fn latent_backward_references_should_match_finite_differences() {
    let (b, latent) = (3, 5);
    let mulv = random(b * 2 * latent, 34, 1.0);
    let c = counters(2, 0);
    let (eps, _) = r::reparam_forward(&mulv, b, latent, 8, 0, &c);
    let probe = random(b * latent, 35, 1.0);
    // L = sum(probe * z(mulv)) + sum(kl(mulv)) with eps held fixed.
    let loss = |m: &[f32]| {
        let z: Vec<f32> = (0..b * latent)
            .map(|e| {
                let (i, j) = (e / latent, e % latent);
                m[i * 2 * latent + j] + (0.5 * m[i * 2 * latent + latent + j]).exp() * eps[e]
            })
            .collect();
        dot(&probe, &z) + r::gaussian_kl_forward(m, b, latent).iter().map(|&v| v as f64).sum::<f64>()
    };
    let mut analytic = r::reparam_backward(&probe, &eps, &mulv, b, latent);
    r::gaussian_kl_backward(&mulv, &mut analytic, b, latent, 1.0, 0.0);
    check_grad("dmulv", &loss, &always, &mulv, &analytic);
}

#[test]
fn weighted_kl_backward_reference_should_match_finite_differences() {
    let (b, latent) = (4, 6);
    let mulv = random(b * 2 * latent, 45, 1.5);
    // Free bits at the median dimension's mean KL: half the dimensions get a zero gradient. Coordinates
    // whose perturbation moves a dimension across the threshold are skipped (the kink of the max).
    let kl_mean = |m: &[f32], j: usize| dim_mean_kl(m, b, latent, j);
    let mut means: Vec<f64> = (0..latent).map(|j| kl_mean(&mulv, j)).collect();
    means.sort_by(f64::total_cmp);
    let fb = ((means[latent / 2] + means[latent / 2 - 1]) / 2.0) as f32;
    for (weight, free_bits) in [(0.3f32, 0.0f32), (1.7, fb)] {
        let loss = |m: &[f32]| r::weighted_kl_objective(m, b, latent, weight, free_bits);
        let mut analytic = vec![0.0; mulv.len()];
        r::gaussian_kl_backward(&mulv, &mut analytic, b, latent, weight, free_bits);
        let same_side =
            |a: &[f32], c: &[f32]| (0..latent).all(|j| (kl_mean(a, j) >= fb as f64) == (kl_mean(c, j) >= fb as f64));
        check_grad("weighted dmulv", &loss, &same_side, &mulv, &analytic);
    }
}

#[test]
fn sampled_latent_backward_reference_should_match_finite_differences() {
    use wgvae::reference::samples as rs;
    let (rows, latent) = (5, 4);
    let mulv = random(rows * 2 * latent, 46, 1.0);
    let (eps, dz, coef) = (random(rows * latent, 47, 2.0), random(rows * latent, 48, 1.0), random(rows, 49, 1.0));
    let z_of = |m: &[f32]| -> Vec<f32> {
        (0..rows * latent)
            .map(|e| {
                let (r, j) = (e / latent, e % latent);
                m[r * 2 * latent + j] + (0.5 * m[r * 2 * latent + latent + j]).exp() * eps[e]
            })
            .collect()
    };
    // F = dz . z(mulv) - sum_r coef_r (log p(z_r) - log q(z_r|x)), eps fixed: what the kernel differentiates.
    let loss = |m: &[f32]| {
        let z = z_of(m);
        let neg_ratio: f64 = (0..rows)
            .map(|r| {
                coef[r] as f64
                    * -(0..latent)
                        .map(|j| {
                            let e = eps[r * latent + j] as f64;
                            0.5 * (e * e + m[r * 2 * latent + latent + j] as f64 - (z[r * latent + j] as f64).powi(2))
                        })
                        .sum::<f64>()
            })
            .sum();
        dot(&dz, &z) + neg_ratio
    };
    let z = z_of(&mulv);
    check_grad(
        "sampled dmulv",
        &loss,
        &always,
        &mulv,
        &rs::sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, latent),
    );
    // log_weight_forward at weight 1 is log p(x|z) + log p(z) - log q(z|x) written out in full.
    let rec = random(rows, 50, 100.0);
    let lw = rs::log_weight_forward(&mulv, &eps, &z, &rec, latent, 1.0);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    for r in 0..rows {
        let (mut log_pz, mut log_qz) = (0.0, 0.0);
        for j in 0..latent {
            let (mu, lv, zj) =
                (mulv[r * 2 * latent + j] as f64, mulv[r * 2 * latent + latent + j] as f64, z[r * latent + j] as f64);
            log_pz += -0.5 * zj * zj - half_log_2pi;
            log_qz += -0.5 * (zj - mu).powi(2) / lv.exp() - 0.5 * lv - half_log_2pi;
        }
        assert!((lw[r] as f64 - (-(rec[r] as f64) + log_pz - log_qz)).abs() < 1e-3, "row {r}");
    }
}

#[test]
fn iwae_weights_reference_should_be_minus_the_gradient_of_the_iwae_loss() {
    use wgvae::reference::samples as rs;
    let samples = 4;
    let log_w: Vec<f32> = random(3 * samples, 51, 3.0).iter().map(|v| v - 200.0).collect();
    let minus_coef: Vec<f32> = rs::iwae_weights(&log_w, samples).iter().map(|c| -c).collect();
    check_grad("d iwae / d log w", &|l: &[f32]| rs::iwae_loss(l, samples), &always, &log_w, &minus_coef);
}

#[test]
fn score_backward_reference_should_be_the_signal_times_the_score_of_q() {
    use wgvae::reference::samples as rs;
    let (rows, latent, samples) = (3, 4, 3);
    let mulv = random(rows * 2 * latent, 52, 1.0);
    let (eps, log_w) = (random(rows * latent, 53, 2.0), random(rows, 54, 50.0));
    let z: Vec<f32> = (0..rows * latent)
        .map(|e| {
            let (r, j) = (e / latent, e % latent);
            mulv[r * 2 * latent + j] + (0.5 * mulv[r * 2 * latent + latent + j]).exp() * eps[e]
        })
        .collect();
    // With no baseline, dmulv = -(f / samples) d/dmulv log q(z|x) at the drawn z, held fixed.
    let loss = |m: &[f32]| -> f64 {
        (0..rows)
            .map(|r| {
                -(log_w[r] as f64) / samples as f64
                    * (0..latent)
                        .map(|j| {
                            let (mu, lv, zj) = (
                                m[r * 2 * latent + j] as f64,
                                m[r * 2 * latent + latent + j] as f64,
                                z[r * latent + j] as f64,
                            );
                            -0.5 * (zj - mu).powi(2) / lv.exp() - 0.5 * lv
                        })
                        .sum::<f64>()
            })
            .sum()
    };
    check_grad(
        "score dmulv",
        &loss,
        &always,
        &mulv,
        &rs::score_backward(&mulv, &eps, &log_w, latent, samples, 0, [0.0; 2]),
    );
    // A baseline b replaces f by f - b: leave-one-out from the other samples, or the running mean.
    let loo = rs::score_backward(&mulv, &eps, &log_w, latent, samples, 2, [0.0; 2]);
    let none = rs::score_backward(&mulv, &eps, &log_w, latent, samples, 0, [0.0; 2]);
    let b0 = (log_w[1] + log_w[2]) / 2.0;
    assert!(((loo[0] - none[0] * (log_w[0] - b0) / log_w[0]) / none[0]).abs() < 1e-4);
    assert_eq!(rs::control_variate(&log_w, 0, samples, 1, [7.0, 1.0]), 7.0);
    assert_eq!(rs::score_baseline_update(&[1.0, 3.0], [0.0, 0.0], 0.9), [2.0, 1.0]);
    assert!((rs::score_baseline_update(&[1.0, 3.0], [10.0, 1.0], 0.9)[0] - 9.2).abs() < 1e-5);
}

#[test]
fn bernoulli_rec_backward_reference_should_match_finite_differences() {
    let (b, pixels) = (3, 11);
    let logits = random(b * pixels, 36, 6.0);
    let x: Vec<f32> = random(b * pixels, 37, 1.0).iter().map(|v| v.abs()).collect();
    let loss = |l: &[f32]| r::bernoulli_rec_forward(l, &x, b, pixels, 1).iter().map(|&v| v as f64).sum::<f64>();
    check_grad("dlogits", &loss, &always, &logits, &r::bernoulli_rec_backward(&logits, &x, &vec![1.0; b], pixels, 1));
    // Rows as samples of fewer inputs, each row weighted: the weighted sum of rows' losses.
    let (coef, repeat) = (random(b, 55, 1.0), 2);
    let loss = |l: &[f32]| {
        r::bernoulli_rec_forward(l, &x, b, pixels, repeat).iter().zip(&coef).map(|(&v, &c)| (v * c) as f64).sum::<f64>()
    };
    check_grad(
        "weighted dlogits",
        &loss,
        &always,
        &logits,
        &r::bernoulli_rec_backward(&logits, &x, &coef, pixels, repeat),
    );
}

#[test]
fn gaussian_rec_backward_reference_should_match_finite_differences() {
    let (b, pixels, repeat) = (4, 9, 2);
    // Log-variances inside the clamp, and two outside it (their gradient is 0, as the clamp's).
    let mut logits: Vec<f32> = random(b * 2 * pixels, 59, 1.5).to_vec();
    logits[pixels] = -8.0;
    logits[3 * pixels + 1] = 6.0;
    let x: Vec<f32> = random(b / repeat * pixels, 60, 1.0).iter().map(|v| v.abs()).collect();
    let coef = random(b, 61, 1.0);
    let loss = |l: &[f32]| {
        r::gaussian_rec_forward(l, &x, b, pixels, repeat).iter().zip(&coef).map(|(&v, &c)| (v * c) as f64).sum::<f64>()
    };
    let inside = |up: &[f32], down: &[f32]| {
        up.iter().zip(down).enumerate().all(|(i, (u, d))| {
            (i / pixels) % 2 == 0
                || ((*u > r::LOGVAR_MIN) == (*d > r::LOGVAR_MIN) && (*u < r::LOGVAR_MAX) == (*d < r::LOGVAR_MAX))
        })
    };
    check_grad(
        "gaussian dlogits",
        &loss,
        &inside,
        &logits,
        &r::gaussian_rec_backward(&logits, &x, &coef, pixels, repeat),
    );
}

// ---- whole training steps ----

#[test]
fn gpu_training_steps_should_match_reference_trainer() {
    // hidden 45: scalar kernels around it; hidden 44 with latent 8: every layer on the vec4 kernels.
    training_steps_should_match_reference(vec![45], 6, ObjectiveSettings::default());
    training_steps_should_match_reference(vec![44], 8, ObjectiveSettings::default());
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_for_every_objective() {
    use wgvae::objective::{Baseline, Estimator, Objective};
    let base = ObjectiveSettings::default();
    let modes = [
        ObjectiveSettings { objective: Objective::Iwae, samples: 3, ..base.clone() },
        ObjectiveSettings { estimator: Estimator::Score, baseline: Baseline::Loo, samples: 3, ..base.clone() },
        ObjectiveSettings { estimator: Estimator::Score, baseline: Baseline::Mean, samples: 2, ..base.clone() },
        ObjectiveSettings { estimator: Estimator::Score, samples: 1, beta: 0.7, warmup_steps: 3, ..base.clone() },
        ObjectiveSettings { samples: 2, beta: 0.5, warmup_steps: 3, free_bits: 0.05, ..base.clone() },
    ];
    for mode in modes {
        training_steps_should_match_reference(vec![45], 6, mode);
    }
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_a_gaussian_decoder() {
    training_steps_should_match_reference_with(vec![44], 8, ObjectiveSettings::default(), Decoder::Gaussian);
    let iwae =
        ObjectiveSettings { objective: wgvae::objective::Objective::Iwae, samples: 2, ..ObjectiveSettings::default() };
    training_steps_should_match_reference_with(vec![45], 6, iwae, Decoder::Gaussian);
}

fn training_steps_should_match_reference(hidden: Vec<usize>, latent: usize, objective: ObjectiveSettings) {
    training_steps_should_match_reference_with(hidden, latent, objective, Decoder::Bernoulli);
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_for_a_conditional_model() {
    // latent 6 + class block 12: scalar kernels; latent 8 + 12 = 20 and 784 + 12: vec4 kernels.
    training_steps_should_match_reference_full(vec![45], 6, ObjectiveSettings::default(), Decoder::Bernoulli, 10);
    let two = ObjectiveSettings { samples: 2, beta: 0.5, warmup_steps: 2, ..ObjectiveSettings::default() };
    training_steps_should_match_reference_full(vec![44], 8, two, Decoder::Gaussian, 10);
}

fn training_steps_should_match_reference_with(
    hidden: Vec<usize>,
    latent: usize,
    objective: ObjectiveSettings,
    decoder: Decoder,
) {
    training_steps_should_match_reference_full(hidden, latent, objective, decoder, 0);
}

fn training_steps_should_match_reference_categorical(
    hidden: Vec<usize>,
    (groups, categories): (usize, usize),
    objective: ObjectiveSettings,
) {
    training_steps_should_match_reference_arch(
        hidden,
        groups * categories,
        objective,
        Decoder::Bernoulli,
        0,
        Some((groups, categories)),
    );
}

fn training_steps_should_match_reference_full(
    hidden: Vec<usize>,
    latent: usize,
    objective: ObjectiveSettings,
    decoder: Decoder,
    classes: usize,
) {
    training_steps_should_match_reference_arch(hidden, latent, objective, decoder, classes, None);
}

fn training_steps_should_match_reference_arch(
    hidden: Vec<usize>,
    latent: usize,
    objective: ObjectiveSettings,
    decoder: Decoder,
    classes: usize,
    categorical: Option<(usize, usize)>,
) {
    use wgvae::config::TrainSettings;
    use wgvae::model::{Architecture, Decoder, Model};
    use wgvae::reference::trainer::ReferenceTrainer;
    use wgvae::trainer::GpuTrainer;
    let data = wgvae::data::embedded().expect("embedded data");
    let take = |from: usize, n: usize| wgvae::data::Split {
        images: data.train.images[from * 784..(from + n) * 784].to_vec(),
        labels: data.train.labels[from..from + n].to_vec(),
        pixels: 784,
    };
    let (train, val) = (take(0, 61), take(3000, 9));
    let model = Model::new(Architecture {
        image: wgvae::data::ImageShape::mnist(),
        hidden,
        latent,
        decoder,
        classes,
        categorical,
    });
    let settings = TrainSettings {
        batch: 13,
        adam: wgvae::config::AdamConfig { lr: 3e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        seed: 5,
        binarize: wgvae::data::Binarize::Dynamic,
        objective: objective.clone(),
        tau_start: 2.0,
        tau_end: 0.5,
        anneal_steps: 3,
    };
    let mut params = model.init_params(5);
    if let Some(prior) = &model.prior {
        // A prior that is not N(0, I), so that every term of the two-Gaussian KL is exercised.
        let noise = random(prior.n_in * prior.n_out, 77, 0.3);
        params[prior.weight_at..prior.weight_at + noise.len()].copy_from_slice(&noise);
    }
    let (g, k) = gpu();
    let gpu_trainer = GpuTrainer::new(g, k, model.clone(), settings.clone(), &params, &train, &val);
    let mut reference = ReferenceTrainer::new(model, settings, params);
    let order = wgvae::commands::draws::epoch_order(train.len(), 5, 1);
    gpu_trainer.start_epoch(g, &order);
    reference.start_pass();
    let pass_rows = (gpu_trainer.steps_per_epoch * 13) as u32;
    for step in 0..4 {
        gpu_trainer.train_steps(g, 1);
        reference.train_step(&train.images, &train.labels, &order, pass_rows);
        let (got, want) = (gpu_trainer.totals(g), reference.totals);
        // Running totals after each step: every step's rec and kl must agree.
        assert_close(
            &format!("{objective:?}: losses through step {step}"),
            &[got.rec_sum, got.kl_sum, got.examples],
            &[want.rec_sum, want.kl_sum, want.examples],
            1e-4,
        );
        // Every step's gradient, relative to its largest component: the first at the same weights
        // (float rounding only); later ones at weights that Adam moved apart by rounding.
        let (gg, gr) = (gpu_trainer.read_grads(g), &reference.grads);
        let scale = gr.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = gg.iter().zip(gr).fold(0.0f32, |m, (a, b)| m.max((a - b).abs())) / scale;
        let tol = if step == 0 { 2e-5 } else { 2e-3 };
        assert!(
            worst < tol,
            "{objective:?} {decoder:?}: gradient of step {step} differs by {worst} of its largest component"
        );
    }
    // Adam moves a weight by about lr per step whatever the gradient's size, so a component whose
    // gradient is rounding noise may step the other way: allow that (2 lr) but nothing more, and
    // require the weights to agree closely on the whole.
    let (wg, wr) = (gpu_trainer.read_params(g), &reference.params);
    let diffs: Vec<f32> = wg.iter().zip(wr).map(|(a, b)| (a - b).abs()).collect();
    let (worst, mean) = (diffs.iter().fold(0.0f32, |m, &d| m.max(d)), diffs.iter().sum::<f32>() / diffs.len() as f32);
    assert!(
        worst <= 2.0 * 3e-3 && mean < 1e-5,
        "{objective:?} {decoder:?}: weights after 4 steps differ by up to {worst}, {mean} on average"
    );
    assert_eq!(gpu_trainer.counters(g).step, 4);
}

// ---- shaders/importance.wgsl ----

mod importance {
    use super::*;
    use wgvae::reference::importance as ri;

    // 5 images x 13 samples = 65 rows (not a multiple of 64); latent 7 (not a multiple of 4).
    const IMAGES: usize = 5;
    const SAMPLES: usize = 13;
    /// Mean over the batch of latent dimension j's KL.
    fn dim_mean_kl(mulv: &[f32], batch: usize, latent: usize, j: usize) -> f64 {
        (0..batch)
            .map(|b| {
                let (m, l) = (mulv[b * 2 * latent + j] as f64, mulv[b * 2 * latent + latent + j] as f64);
                -0.5 * (1.0 + l - m * m - l.exp())
            })
            .sum::<f64>()
            / batch as f64
    }

    const PIXELS: usize = 83;

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
        }
    }

    fn launch(name: &str, p: &IwParams, binds: &[(u32, &wgpu::Buffer)], invocations: usize) {
        let u = uniform(p);
        let mut all = vec![bind(0, &u)];
        all.extend(binds.iter().map(|&(i, b)| bind(i, b)));
        run(gpu().1.get(name).launch(&gpu().0, &all, groups_of_64(invocations)));
    }

    #[test]
    fn iw_sample_should_match_reference() {
        let p = params(26, 1000);
        let mulv = random(IMAGES * 2 * LATENT, 40, 1.5);
        let rows = IMAGES * SAMPLES;
        let (mb, zb, lb) = (storage(&mulv), storage(&vec![0.0; rows * LATENT]), storage(&vec![0.0; rows]));
        launch("iw_sample", &p, &[(1, &mb), (2, &zb), (3, &lb)], rows);
        let (z, log_ratio) = ri::iw_sample(&p, &mulv);
        assert_close("iw_sample z", &read(&zb, rows * LATENT), &z, 1e-5);
        assert_close("iw_sample log_ratio", &read(&lb, rows), &log_ratio, 1e-4);
    }

    #[test]
    fn iw_log_weight_should_match_reference() {
        let p = params(0, SAMPLES as u32);
        let rows = IMAGES * SAMPLES;
        let (logits, log_ratio) = (random(rows * PIXELS, 41, 6.0), random(rows, 42, 5.0));
        let x: Vec<f32> = random(IMAGES * PIXELS, 43, 1.0).iter().map(|v| v.abs()).collect();
        let (lb, xb, rb, wb) = (storage(&logits), storage(&x), storage(&log_ratio), storage(&vec![0.0; rows]));
        launch("iw_log_weight", &p, &[(3, &rb), (4, &lb), (5, &xb), (6, &wb)], rows);
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
        launch("iw_log_weight_gaussian", &p, &[(3, &rb), (4, &lb), (5, &xb), (6, &wb)], rows);
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
        let n_results = 17 + IMAGES;
        let (sb, resb) = (storage(&vec![0.0; IMAGES * 4]), storage(&vec![0.0; n_results * 2]));
        let (mut state, mut result) = (vec![0.0; IMAGES * 4], vec![0.0; n_results * 2]);
        for (c, log_w) in chunks.iter().enumerate() {
            let p = params(c as u32 * SAMPLES as u32, total);
            let wb = storage(log_w);
            launch("iw_accumulate", &p, &[(6, &wb), (7, &sb), (8, &resb)], IMAGES);
            ri::iw_accumulate(&p, log_w, &mut state, &mut result);
            assert_close(&format!("iw_accumulate state after chunk {c}"), &read(&sb, IMAGES * 4), &state, 1e-5);
        }
        let got = read(&resb, n_results * 2);
        assert_close("iw_accumulate result", &got, &result, 1e-5);
        for i in 0..IMAGES {
            let all: Vec<f64> =
                chunks.iter().flat_map(|c| c[i * SAMPLES..(i + 1) * SAMPLES].to_vec()).map(|v| v as f64).collect();
            let m = all.iter().cloned().fold(f64::MIN, f64::max);
            let lme = m + (all.iter().map(|v| (v - m).exp()).sum::<f64>() / all.len() as f64).ln();
            let at = (17 + i) * 2;
            assert!((got[at] as f64 + lme).abs() < 1e-3, "image {i}: estimate {} vs direct {}", got[at], -lme);
            let mean = all.iter().sum::<f64>() / all.len() as f64;
            assert!((got[at + 1] as f64 + mean).abs() < 1e-3, "image {i}: mean log weight");
            assert!(got[at] <= got[at + 1] + 1e-4, "log-mean-exp >= mean (Jensen) for image {i}");
        }
    }

    /// The whole GPU estimate (ImportanceSampler: gather, encoder, chunks of decoder passes) against
    /// the CPU references composed by hand, with K split into several chunks.
    #[test]
    fn importance_sampler_should_match_the_composed_references() {
        use wgvae::importance::{plan, ImportanceSampler, ROWS};
        use wgvae::model::{Architecture, Decoder, Model};
        let data = wgvae::data::embedded().expect("embedded data");
        let n = 3;
        let split = wgvae::data::Split {
            images: data.val.images[..n * 784].to_vec(),
            labels: data.val.labels[..n].to_vec(),
            pixels: 784,
        };
        let model = Model::new(Architecture {
            image: wgvae::data::ImageShape::mnist(),
            hidden: vec![9],
            latent: 3,
            decoder: Decoder::Bernoulli,
            classes: 0,
            categorical: None,
        });
        let params = model.init_params(3);
        let k = ROWS + 5; // two chunks per image, the second smaller
        assert_eq!(plan(k, n), (1, (ROWS + 5).div_ceil(2)));
        let (g, kernels) = gpu();
        let pb = storage(&params);
        let sampler = ImportanceSampler::new(
            g,
            kernels,
            &model,
            &pb,
            (&gpu::images_with(g, "images", &split.images), n),
            k,
            wgvae::data::Binarize::None,
            1,
            7,
        );
        let got = sampler.run(g, k, |_| {});
        let w = |l: &wgvae::model::Layer| {
            (&params[l.weight_at..l.weight_at + l.n_in * l.n_out], &params[l.bias_at..l.bias_at + l.n_out])
        };
        for i in 0..n {
            let x: Vec<f32> = split.image(i).iter().map(|&v| v as f32 / 255.0).collect();
            let mut h = x.clone();
            for l in &model.encoder {
                let (wt, b) = w(l);
                h = r::linear_forward(&h, wt, b, 1, l.n_in, l.n_out, l.relu);
            }
            let p = IwParams {
                images: 1,
                samples: k as u32,
                latent: 3,
                pixels: 784,
                first_image: i as u32,
                first_sample: 0,
                total_samples: k as u32,
                seed: 7,
            };
            let (z, log_ratio) = ri::iw_sample(&p, &h);
            let mut d = z;
            for l in &model.decoder {
                let (wt, b) = w(l);
                d = r::linear_forward(&d, wt, b, k, l.n_in, l.n_out, l.relu);
            }
            let log_w = ri::iw_log_weight(&p, &d, &x, &log_ratio);
            let (mut state, mut result) = (vec![0.0; 4], vec![0.0; (i + 1) * 2]);
            ri::iw_accumulate(&p, &log_w, &mut state, &mut result);
            assert_close(
                &format!("image {i}: -log p(x), K = {k}"),
                &[got.nll[i], got.neg_elbo[i]],
                &result[i * 2..],
                1e-4,
            );
        }
    }
}

// ---- shaders/rows.wgsl and shaders/samples.wgsl ----

mod samples {
    use super::*;
    use wgvae::reference::samples as rs;

    // 5 inputs x 3 samples = 15 rows; latent 7.
    const INPUTS: usize = 5;
    const S: usize = 3;
    const ROWS: usize = INPUTS * S;

    #[test]
    fn repeat_rows_and_sum_row_groups_should_match_reference() {
        let width = 2 * LATENT;
        let p = uniform(&RowParams { inputs: INPUTS as u32, samples: S as u32, width: width as u32, pad: 0 });
        let per_input = random(INPUTS * width, 60, 1.0);
        let (src, dst) = (storage(&per_input), storage(&vec![0.0; ROWS * width]));
        run(gpu().1.get("repeat_rows").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &src), bind(2, &dst)],
            groups_of_64(ROWS * width),
        ));
        assert_close("repeat_rows", &read(&dst, ROWS * width), &rs::repeat_rows(&per_input, INPUTS, S, width), 0.0);
        let per_sample = random(ROWS * width, 61, 1.0);
        let (src, dst) = (storage(&per_sample), storage(&vec![0.0; INPUTS * width]));
        run(gpu().1.get("sum_row_groups").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &src), bind(2, &dst)],
            groups_of_64(INPUTS * width),
        ));
        assert_close(
            "sum_row_groups",
            &read(&dst, INPUTS * width),
            &rs::sum_row_groups(&per_sample, INPUTS, S, width),
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

    fn launch(name: &str, p: &wgpu::Buffer, binds: &[(u32, &wgpu::Buffer)], invocations: usize) {
        let mut all = vec![bind(0, p)];
        all.extend(binds.iter().map(|&(i, b)| bind(i, b)));
        run(gpu().1.get(name).launch(&gpu().0, &all, groups_of_64(invocations)));
    }

    #[test]
    fn log_weight_forward_should_match_reference_with_a_warming_kl_weight() {
        let (mulv, eps, z, rec) = (
            random(ROWS * 2 * LATENT, 62, 1.5),
            random(ROWS * LATENT, 63, 2.0),
            random(ROWS * LATENT, 64, 2.0),
            random(ROWS, 65, 300.0),
        );
        let cb = gpu::storage_with(&gpu().0, "c", &[counters(3, 0)]);
        let (mb, eb, zb, rb, wb) =
            (storage(&mulv), storage(&eps), storage(&z), storage(&rec), storage(&vec![0.0; ROWS]));
        launch(
            "log_weight_forward",
            &params(0, 0.8, 10),
            &[(1, &cb), (2, &mb), (3, &eb), (4, &zb), (5, &rb), (6, &wb)],
            ROWS,
        );
        let want = rs::log_weight_forward(&mulv, &eps, &z, &rec, LATENT, r::kl_weight(0.8, 10, 3));
        assert_close("log_weight_forward", &read(&wb, ROWS), &want, 1e-5);
    }

    #[test]
    fn iwae_weights_should_match_reference() {
        // Log weights near -700: exp without the max would underflow to 0 / 0.
        let log_w: Vec<f32> = random(ROWS, 66, 20.0).iter().map(|v| v - 700.0).collect();
        let (wb, cb) = (storage(&log_w), storage(&vec![0.0; ROWS]));
        launch("iwae_weights", &params(0, 1.0, 0), &[(6, &wb), (7, &cb)], INPUTS);
        let got = read(&cb, ROWS);
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
        let (mb, eb, zb, cb, dzb, db) = (
            storage(&mulv),
            storage(&eps),
            storage(&z),
            storage(&coef),
            storage(&dz),
            storage(&vec![0.0; ROWS * 2 * LATENT]),
        );
        launch(
            "sampled_latent_backward",
            &params(0, 1.0, 0),
            &[(2, &mb), (3, &eb), (4, &zb), (7, &cb), (8, &dzb), (9, &db)],
            ROWS * LATENT,
        );
        assert_close(
            "sampled_latent_backward",
            &read(&db, ROWS * 2 * LATENT),
            &rs::sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, LATENT),
            1e-5,
        );
    }

    #[test]
    fn score_backward_and_baseline_update_should_match_reference_for_every_baseline() {
        let (mulv, eps) = (random(ROWS * 2 * LATENT, 72, 1.5), random(ROWS * LATENT, 73, 2.0));
        let log_w: Vec<f32> = random(ROWS, 74, 40.0).iter().map(|v| v - 250.0).collect();
        for (baseline, state) in [(0u32, [0.0f32, 0.0]), (1, [0.0, 0.0]), (1, [-240.0, 1.0]), (2, [0.0, 0.0])] {
            let (mb, eb, wb, db, bb) = (
                storage(&mulv),
                storage(&eps),
                storage(&log_w),
                storage(&vec![0.0; ROWS * 2 * LATENT]),
                storage(&state),
            );
            let p = params(baseline, 1.0, 0);
            launch("score_backward", &p, &[(2, &mb), (3, &eb), (6, &wb), (9, &db), (10, &bb)], ROWS * LATENT);
            assert_close(
                &format!("score_backward baseline {baseline} state {state:?}"),
                &read(&db, ROWS * 2 * LATENT),
                &rs::score_backward(&mulv, &eps, &log_w, LATENT, S, baseline, state),
                1e-5,
            );
            launch("score_baseline_update", &p, &[(6, &wb), (10, &bb)], 1);
            assert_close("score_baseline_update", &read(&bb, 2), &rs::score_baseline_update(&log_w, state, 0.9), 1e-6);
        }
    }
}

// ---- the estimators as random variables ----

/// At fixed weights and batch: every estimator is unbiased (its mean gradient agrees with the
/// reparameterization gradient's within their standard errors) and the control variates cut the
/// score-function estimator's variance, which stays above the reparameterization estimator's.
#[test]
fn score_function_estimates_should_be_unbiased_and_noisier_than_reparam() {
    use wgvae::commands::gradvar::{estimators, measure};
    let data = wgvae::data::embedded().expect("embedded data");
    let mut config = small_model_args().to_config(1).expect("config");
    config.data_fingerprint = data.fingerprint();
    let params = wgvae::model::Model::new(config.architecture()).init_params(3);
    let repeats = 60;
    let (g, k) = gpu();
    let stats = measure(g, k, &config, &data, &params, repeats, &estimators(3));
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reparam", "score, no baseline", "score, running mean", "score, leave-one-out"]);
    let (reparam, none, mean, loo) = (&stats[0], &stats[1], &stats[2], &stats[3]);
    for s in &stats[1..] {
        let diff2: f64 = s.mean.iter().zip(&reparam.mean).map(|(a, b)| (a - b).powi(2)).sum();
        // E|mean_s - mean_r|^2 = (tr_s + tr_r) / R for unbiased estimators; allow 3 times that.
        let expected = (s.total_variance + reparam.total_variance) / repeats as f64;
        assert!(
            diff2 < 3.0 * expected,
            "{}: |mean - reparam mean|^2 = {diff2:.4e}, noise alone gives {expected:.4e}",
            s.name
        );
    }
    assert!(
        reparam.total_variance < loo.total_variance && reparam.total_variance < mean.total_variance,
        "reparam {} vs score with baselines {} / {}",
        reparam.total_variance,
        mean.total_variance,
        loo.total_variance
    );
    assert!(
        10.0 * loo.total_variance < none.total_variance && 10.0 * mean.total_variance < none.total_variance,
        "baselines should cut the variance tenfold: none {}, mean {}, loo {}",
        none.total_variance,
        mean.total_variance,
        loo.total_variance
    );
    assert!(reparam.snr > loo.snr && loo.snr > none.snr);
}

fn small_model_args() -> wgvae::cli::ModelArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        model: wgvae::cli::ModelArgs,
    }
    Wrapper::parse_from(["test", "--hidden", "24", "--latent", "4", "--batch", "32", "--seed", "3"]).model
}

/// src/refine.rs against its composition from reference kernels: two batches (the second partial),
/// the ELBO before and after 3 Adam steps on each input's (mu, logvar).
#[test]
fn refine_should_match_the_reference_refinement() {
    use wgvae::model::{Architecture, Decoder, Model};
    let data = wgvae::data::embedded().expect("embedded data");
    let (n, batch) = (11, 8);
    let split = wgvae::data::Split {
        images: data.val.images[..n * 784].to_vec(),
        labels: data.val.labels[..n].to_vec(),
        pixels: 784,
    };
    let model = Model::new(Architecture {
        image: wgvae::data::ImageShape::mnist(),
        hidden: vec![45],
        latent: 6,
        decoder: Decoder::Bernoulli,
        classes: 0,
        categorical: None,
    });
    let params = model.init_params(9);
    let adam = wgvae::config::AdamConfig { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let (g, k) = gpu();
    let pb = storage(&params);
    let refiner = wgvae::refine::Refiner::new(
        g,
        k,
        &model,
        &pb,
        (&gpu::images_with(g, "images", &split.images), n),
        batch,
        wgvae::data::Binarize::None,
        4,
        adam,
        false,
    );
    let got = refiner.run(g, 3, 2, |_| {});
    let (mut before, mut after) = (LossTotals::default(), LossTotals::default());
    for first in [0, batch] {
        let real = batch.min(n - first);
        let x: Vec<f32> =
            (0..batch).flat_map(|i| split.image(first + i.min(real - 1)).iter().map(|&v| v as f32 / 255.0)).collect();
        let (b, a) = wgvae::reference::refine::refine(&model, &params, &x, batch, real, 3, 2, 4, &adam);
        for (sum, t) in [(&mut before, b), (&mut after, a)] {
            sum.rec_sum += t.rec_sum;
            sum.kl_sum += t.kl_sum;
            sum.examples += t.examples;
        }
    }
    let flat = |t: &LossTotals| [t.rec_sum, t.kl_sum, t.examples];
    assert_close("refine: ELBO before", &flat(&got.before), &flat(&before), 1e-4);
    assert_close("refine: ELBO after", &flat(&got.after), &flat(&after), 1e-4);
    assert_eq!(got.before.examples, (n * 2) as f32);
    assert!(after.rec_sum + after.kl_sum < before.rec_sum + before.kl_sum, "3 steps at lr 0.05 should raise the ELBO");
}

// ---- shaders/condition.wgsl, gather_labels and the two-Gaussian KL ----

mod condition {
    use super::*;
    use wgvae::reference::condition as rc;

    fn column_params(
        rows: usize,
        src_width: usize,
        dst_width: usize,
        count: usize,
        src_offset: usize,
        dst_offset: usize,
        repeat: usize,
    ) -> wgpu::Buffer {
        uniform(&ColumnParams {
            rows: rows as u32,
            src_width: src_width as u32,
            dst_width: dst_width as u32,
            count: count as u32,
            src_offset: src_offset as u32,
            dst_offset: dst_offset as u32,
            repeat: repeat as u32,
            pad: 0,
        })
    }

    #[test]
    fn copy_columns_and_one_hot_columns_should_match_reference() {
        let (rows, src_w, dst_w) = (13, 37, 50);
        let src = random(rows * src_w, 80, 1.0);
        let start = random(rows * dst_w, 81, 1.0);
        let (sb, db) = (storage(&src), storage(&start));
        let p = column_params(rows, src_w, dst_w, 30, 5, 3, 1);
        run(gpu().1.get("copy_columns").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &sb), bind(2, &db)],
            groups_of_64(rows * 30),
        ));
        let mut want = start.clone();
        rc::copy_columns(&src, &mut want, rows, src_w, dst_w, 30, 5, 3);
        assert_close("copy_columns", &read(&db, rows * dst_w), &want, 0.0);

        let labels: Vec<u32> = (0..5).map(|i| (i * 7 % 10) as u32).collect();
        let lb = gpu::storage_with(&gpu().0, "labels", &labels);
        let p = column_params(rows, 0, dst_w, 12, 0, 37, 3);
        run(gpu().1.get("one_hot_columns").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &db), bind(3, &lb)],
            groups_of_64(rows * 12),
        ));
        rc::one_hot_columns(&labels, &mut want, rows, dst_w, 12, 37, 3);
        assert_close("one_hot_columns", &read(&db, rows * dst_w), &want, 0.0);
    }

    #[test]
    fn gather_labels_should_match_reference() {
        let labels: Vec<u32> = (0..29).map(|i| (i * 3 % 10) as u32).collect();
        let order: Vec<u32> = (0..29).rev().collect();
        let c = counters(0, 20);
        let p = uniform(&GatherParams {
            batch: B as u32,
            words: 0,
            pass_rows: 29,
            binarize: 0,
            seed: 0,
            stream: 0,
            pad: [0; 2],
        });
        let (cb, ob, lb) = (
            gpu::storage_with(&gpu().0, "c", &[c]),
            gpu::storage_with(&gpu().0, "o", &order),
            gpu::storage_with(&gpu().0, "l", &labels),
        );
        let yb = gpu::storage_with(&gpu().0, "y", &vec![99u32; B]);
        run(gpu().1.get("gather_labels").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &cb), bind(3, &ob), bind(5, &lb), bind(6, &yb)],
            groups_of_64(B),
        ));
        assert_eq!(gpu::read::<u32>(&gpu().0, &yb, 0, B), rc::gather_labels(&labels, &order, B, 29, &c));
    }

    #[test]
    fn gaussian_kl2_should_match_reference() {
        let (mulv, prior, start) =
            (random(B * 2 * LATENT, 82, 1.5), random(B * 2 * LATENT, 83, 1.5), random(B * 2 * LATENT, 84, 1.0));
        let p = latent_params_with(B, 0.5, 10, 0.0, 0.5);
        let cb = gpu::storage_with(&gpu().0, "c", &[counters(4, 0)]);
        let (mb, pb, kb) = (storage(&mulv), storage(&prior), storage(&vec![0.0; B]));
        run(gpu().1.get("gaussian_kl2_forward").launch(
            &gpu().0,
            &[bind(0, &p), bind(2, &mb), bind(7, &kb), bind(8, &pb)],
            groups_of_64(B),
        ));
        assert_close("gaussian_kl2_forward", &read(&kb, B), &rc::gaussian_kl2_forward(&mulv, &prior, B, LATENT), 1e-5);
        let (db, dpb) = (storage(&start), storage(&vec![0.0; B * 2 * LATENT]));
        run(gpu().1.get("gaussian_kl2_backward").launch(
            &gpu().0,
            &[bind(0, &p), bind(1, &cb), bind(2, &mb), bind(6, &db), bind(8, &pb), bind(9, &dpb)],
            groups_of_64(B * LATENT),
        ));
        let mut want = start.clone();
        let want_prior = rc::gaussian_kl2_backward(&mulv, &prior, &mut want, B, LATENT, r::kl_weight(0.5, 10, 4) * 0.5);
        assert_close("gaussian_kl2_backward dmulv", &read(&db, B * 2 * LATENT), &want, 1e-5);
        assert_close("gaussian_kl2_backward dprior", &read(&dpb, B * 2 * LATENT), &want_prior, 1e-5);
        // With the prior at N(0, I) it is the standard KL.
        let standard = vec![0.0; B * 2 * LATENT];
        assert_close(
            "KL to N(0, I)",
            &rc::gaussian_kl2_forward(&mulv, &standard, B, LATENT),
            &r::gaussian_kl_forward(&mulv, B, LATENT),
            1e-5,
        );
    }

    #[test]
    fn gaussian_kl2_backward_reference_should_match_finite_differences() {
        let (b, latent) = (3, 4);
        let (mulv, prior) = (random(b * 2 * latent, 85, 1.0), random(b * 2 * latent, 86, 1.0));
        let mut dq = vec![0.0; mulv.len()];
        let dp = rc::gaussian_kl2_backward(&mulv, &prior, &mut dq, b, latent, 0.7);
        let kl = |q: &[f32], p: &[f32]| {
            0.7 * rc::gaussian_kl2_forward(q, p, b, latent).iter().map(|&v| v as f64).sum::<f64>()
        };
        check_grad("kl2 dq", &|q: &[f32]| kl(q, &prior), &always, &mulv, &dq);
        check_grad("kl2 dp", &|p: &[f32]| kl(&mulv, p), &always, &prior, &dp);
    }
}

// ---- shaders/categorical.wgsl ----

mod categorical {
    use super::*;
    use wgvae::reference::categorical as rcat;

    // 13 rows x 3 groups of 7 categories (21 columns, not a multiple of 4).
    const ROWS: usize = 13;
    const GROUPS: usize = 3;
    const CATS: usize = 7;

    fn params() -> CategoricalParams {
        CategoricalParams {
            rows: ROWS as u32,
            groups: GROUPS as u32,
            categories: CATS as u32,
            seed: 21,
            stream: 0,
            anneal_steps: 10,
            tau_start: 2.0,
            tau_end: 0.5,
            beta: 0.8,
            warmup_steps: 8,
            sample_scale: 0.5,
            pad: 0,
        }
    }

    fn launch(name: &str, p: &CategoricalParams, c: &Counters, binds: &[(u32, &wgpu::Buffer)], invocations: usize) {
        let (u, cb) = (uniform(p), gpu::storage_with(&gpu().0, "c", &[*c]));
        let mut all = vec![bind(0, &u)];
        if name != "categorical_kl_forward" {
            // the one entry point that does not read the counters
            all.push(bind(1, &cb));
        }
        all.extend(binds.iter().map(|&(i, b)| bind(i, b)));
        run(gpu().1.get(name).launch(&gpu().0, &all, groups_of_64(invocations)));
    }

    #[test]
    fn gumbel_softmax_and_categorical_kl_should_match_reference() {
        let (p, c) = (params(), counters(4, 26));
        let n = ROWS * GROUPS * CATS;
        let logits = random(n, 90, 3.0);
        let (lb, nb, zb) = (storage(&logits), storage(&vec![0.0; n]), storage(&vec![0.0; n]));
        launch("gumbel_softmax_forward", &p, &c, &[(2, &lb), (3, &nb), (4, &zb)], ROWS * GROUPS);
        let (noise, z) = rcat::gumbel_softmax_forward(&p, &logits, &c);
        assert_close("gumbel noise", &read(&nb, n), &noise, 1e-5);
        assert_close("gumbel_softmax_forward", &read(&zb, n), &z, 1e-5);
        let dz = random(n, 91, 1.0);
        let (dzb, db) = (storage(&dz), storage(&vec![0.0; n]));
        launch("gumbel_softmax_backward", &p, &c, &[(4, &zb), (5, &dzb), (6, &db)], ROWS * GROUPS);
        let mut want = rcat::gumbel_softmax_backward(&p, &z, &dz, &c);
        assert_close("gumbel_softmax_backward", &read(&db, n), &want, 1e-5);
        let kb = storage(&vec![0.0; ROWS]);
        launch("categorical_kl_forward", &p, &c, &[(2, &lb), (7, &kb)], ROWS);
        assert_close("categorical_kl_forward", &read(&kb, ROWS), &rcat::categorical_kl_forward(&p, &logits), 1e-5);
        launch("categorical_kl_backward", &p, &c, &[(2, &lb), (6, &db)], ROWS * GROUPS);
        rcat::categorical_kl_backward(&p, &logits, &mut want, &c);
        assert_close("categorical_kl_backward", &read(&db, n), &want, 1e-5);
        assert!(
            (rcat::temperature(&p, 0) - 2.0).abs() < 1e-6
                && (rcat::temperature(&p, 5) - 1.0).abs() < 1e-5
                && (rcat::temperature(&p, 50) - 0.5).abs() < 1e-6,
            "geometric annealing from 2 to 0.5 over 10 steps"
        );
    }

    #[test]
    fn categorical_backward_references_should_match_finite_differences() {
        let (p, c) = (CategoricalParams { rows: 2, ..params() }, counters(4, 0));
        let n = 2 * GROUPS * CATS;
        let logits = random(n, 92, 2.0);
        let (noise, _) = rcat::gumbel_softmax_forward(&p, &logits, &c);
        let probe = random(n, 93, 1.0);
        // L = probe . y(logits) with the Gumbel noise held fixed, plus the weighted KL.
        let w = r::kl_weight(p.beta, p.warmup_steps, c.step) * p.sample_scale;
        let tau = rcat::temperature(&p, c.step);
        let loss = |l: &[f32]| {
            let y: Vec<f32> = l
                .chunks(CATS)
                .zip(noise.chunks(CATS))
                .flat_map(|(lg, g)| {
                    let s: Vec<f64> = lg.iter().zip(g).map(|(a, b)| ((a + b) / tau) as f64).collect();
                    let m = s.iter().cloned().fold(f64::MIN, f64::max);
                    let t: f64 = s.iter().map(|v| (v - m).exp()).sum();
                    s.into_iter().map(move |v| ((v - m).exp() / t) as f32)
                })
                .collect();
            dot(&probe, &y) + w as f64 * rcat::categorical_kl_forward(&p, l).iter().map(|&v| v as f64).sum::<f64>()
        };
        let (_, y) = rcat::gumbel_softmax_forward(&p, &logits, &c);
        let mut analytic = rcat::gumbel_softmax_backward(&p, &y, &probe, &c);
        rcat::categorical_kl_backward(&p, &logits, &mut analytic, &c);
        check_grad("categorical dlogits", &loss, &always, &logits, &analytic);
    }

    /// The Gumbel-max trick: argmax_k (logits_k + g_k) is distributed as softmax(logits), so the
    /// GPU's Gumbel noise must give each category its probability (within 5 standard errors).
    #[test]
    fn gumbel_noise_should_pick_categories_with_softmax_probabilities() {
        let rows = 2000;
        let p = CategoricalParams { rows: rows as u32, groups: 1, categories: 4, ..params() };
        let base = [1.0f32, 0.0, -1.0, 0.5];
        let logits: Vec<f32> = (0..rows).flat_map(|_| base).collect();
        let (lb, nb, zb) = (storage(&logits), storage(&vec![0.0; rows * 4]), storage(&vec![0.0; rows * 4]));
        launch("gumbel_softmax_forward", &p, &counters(0, 0), &[(2, &lb), (3, &nb), (4, &zb)], rows);
        let noise = read(&nb, rows * 4);
        let mut counts = [0usize; 4];
        for r in 0..rows {
            let k = (0..4)
                .max_by(|&a, &b| (base[a] + noise[r * 4 + a]).total_cmp(&(base[b] + noise[r * 4 + b])))
                .expect("4 categories");
            counts[k] += 1;
        }
        let total: f64 = base.iter().map(|&l| (l as f64).exp()).sum();
        for k in 0..4 {
            let prob = (base[k] as f64).exp() / total;
            let se = (prob * (1.0 - prob) / rows as f64).sqrt();
            let freq = counts[k] as f64 / rows as f64;
            assert!((freq - prob).abs() < 5.0 * se, "category {k}: frequency {freq} vs softmax probability {prob}");
        }
    }
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_per_datapoint_inference() {
    let per_datapoint = ObjectiveSettings {
        per_datapoint: Some((2, 0.05)),
        beta: 0.7,
        warmup_steps: 3,
        ..ObjectiveSettings::default()
    };
    training_steps_should_match_reference(vec![45], 6, per_datapoint.clone());
    training_steps_should_match_reference_with(vec![44], 8, per_datapoint, Decoder::Gaussian);
}

#[test]
fn table_kernels_should_match_reference() {
    use wgvae::reference::table as rt;
    let (images, width) = (29, 14);
    let p = TableParams {
        batch: B as u32,
        width: width as u32,
        pass_rows: 25,
        updates_per_step: 3,
        update_index: 1,
        lr: 0.01,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        pad: [0; 3],
    };
    let order: Vec<u32> = (0..images as u32).map(|i| (i * 11) % images as u32).collect();
    let c = counters(2, 13); // rows 13..26 of the pass: the last one is padding (pass_rows 25)
    let (table, m, v) = (
        random(images * width, 94, 1.0),
        random(images * width, 95, 0.1),
        random(images * width, 96, 0.1).iter().map(|x| x * x).collect::<Vec<_>>(),
    );
    let dmulv = random(B * width, 97, 1.0);
    let u = uniform(&p);
    let cb = gpu::storage_with(&gpu().0, "c", &[c]);
    let ob = gpu::storage_with(&gpu().0, "order", &order);
    let (tb, mb, vb, db, xb) =
        (storage(&table), storage(&m), storage(&v), storage(&dmulv), storage(&vec![7.0; B * width]));
    run(gpu().1.get("gather_table_rows").launch(
        &gpu().0,
        &[bind(0, &u), bind(1, &cb), bind(2, &ob), bind(3, &tb), bind(5, &xb)],
        groups_of_64(B * width),
    ));
    assert_close("gather_table_rows", &read(&xb, B * width), &rt::gather_table_rows(&p, &table, &order, &c), 0.0);
    run(gpu().1.get("table_adam_step").launch(
        &gpu().0,
        &[bind(0, &u), bind(1, &cb), bind(2, &ob), bind(3, &tb), bind(4, &db), bind(6, &mb), bind(7, &vb)],
        groups_of_64(B * width),
    ));
    let (mut wt, mut wm, mut wv) = (table.clone(), m.clone(), v.clone());
    rt::table_adam_step(&p, &mut wt, &mut wm, &mut wv, &dmulv, &order, &c);
    assert_close("table_adam_step table", &read(&tb, images * width), &wt, 1e-6);
    assert_close("table_adam_step m", &read(&mb, images * width), &wm, 1e-6);
    assert_close("table_adam_step v", &read(&vb, images * width), &wv, 1e-6);
    let untouched =
        (0..images).filter(|&i| wt[i * width..(i + 1) * width] == table[i * width..(i + 1) * width]).count();
    assert_eq!(untouched, images - 12, "only the batch's 12 real rows change");
}

#[test]
fn gpu_training_steps_should_match_reference_trainer_with_categorical_latents() {
    training_steps_should_match_reference_categorical(vec![45], (4, 5), ObjectiveSettings::default());
    let warm = ObjectiveSettings { samples: 2, beta: 0.5, warmup_steps: 2, ..ObjectiveSettings::default() };
    training_steps_should_match_reference_categorical(vec![44], (3, 4), warm);
}

/// Training steps must not grow the process's memory: a kernel shape once made lavapipe leak
/// 137 KB per dispatch (see gaussian_kl_backward). Every option that adds launches is on here.
#[test]
fn training_steps_should_not_grow_resident_memory() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        model: wgvae::cli::ModelArgs,
    }
    let rss_kib = || -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
        status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    };
    let args = Wrapper::parse_from([
        "test",
        "--hidden",
        "36",
        "--latent",
        "8",
        "--batch",
        "64",
        "--mc-samples",
        "2",
        "--free-bits",
        "0.1",
        "--kl-warmup",
        "1",
    ])
    .model;
    let config = args.to_config(1).expect("config");
    let s = wgvae::session::open_new(config, &wgvae::gpu::DeviceChoice::default()).expect("session");
    s.trainer.start_epoch(&s.gpu, &wgvae::commands::draws::epoch_order(s.data.train.len(), 1, 1));
    let step = |n: usize| {
        for _ in 0..n {
            s.trainer.train_steps(&s.gpu, 1);
            gpu::wait(&s.gpu);
        }
    };
    step(10);
    let before = rss_kib();
    step(60);
    let grew = rss_kib() - before;
    assert!(grew < 2048, "60 training steps grew resident memory by {grew} KiB");
}
