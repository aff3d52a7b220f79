//! One readable function per WGSL entry point, with the entry point's name and shapes.
//! Tests compare each kernel against these, and check each backward here by finite differences.
use crate::config::AdamConfig;
use crate::gpu::params::{Counters, LossTotals, NO_BAD_STEP};
pub use crate::random::{normal4, philox4x32_10, uniform_open};
// The linear layer's references, so that this module holds every entry point's name.
pub use super::data::gather_batch;
pub use super::linear::*;
pub use super::linear_tiled::*;

// ---- shaders/common.wgsl: Philox and Box-Muller are src/random.rs ----

// ---- shaders/latent.wgsl ----

/// (eps, z) [batch, latent] from mulv [batch, 2 latent]; eps drawn from Philox counter
/// (element / 4, cursor, step, stream) under key (seed, 0).
pub fn reparam_forward(
    mulv: &[f32],
    batch: usize,
    latent: usize,
    seed: u32,
    stream: u32,
    counters: &Counters,
) -> (Vec<f32>, Vec<f32>) {
    let total = batch * latent;
    let mut eps = vec![0.0; total];
    let mut z = vec![0.0; total];
    for e in 0..total {
        let block = (e / 4) as u32;
        let noise = normal4(philox4x32_10([block, counters.cursor, counters.step, stream], [seed, 0]));
        let (b, j) = (e / latent, e % latent);
        let mu = mulv[b * 2 * latent + j];
        let logvar = mulv[b * 2 * latent + latent + j];
        eps[e] = noise[e % 4];
        z[e] = mu + (0.5 * logvar).exp() * eps[e];
    }
    (eps, z)
}

/// dmulv [batch, 2 latent] from dz: dmu = dz, dlogvar = dz eps sigma / 2.
pub fn reparam_backward(dz: &[f32], eps: &[f32], mulv: &[f32], batch: usize, latent: usize) -> Vec<f32> {
    let mut dmulv = vec![0.0; batch * 2 * latent];
    for b in 0..batch {
        for j in 0..latent {
            let e = b * latent + j;
            let logvar = mulv[b * 2 * latent + latent + j];
            dmulv[b * 2 * latent + j] = dz[e];
            dmulv[b * 2 * latent + latent + j] = dz[e] * eps[e] * 0.5 * (0.5 * logvar).exp();
        }
    }
    dmulv
}

/// kl [batch] = KL(N(mu, exp(logvar)) || N(0, I)) per row.
pub fn gaussian_kl_forward(mulv: &[f32], batch: usize, latent: usize) -> Vec<f32> {
    (0..batch)
        .map(|b| {
            let s: f32 = (0..latent)
                .map(|j| {
                    let mu = mulv[b * 2 * latent + j];
                    let logvar = mulv[b * 2 * latent + latent + j];
                    1.0 + logvar - mu * mu - logvar.exp()
                })
                .sum();
            -0.5 * s
        })
        .collect()
}

/// KL_j of row b: -1/2 (1 + logvar - mu^2 - exp(logvar)).
fn kl_term(mulv: &[f32], latent: usize, b: usize, j: usize) -> f32 {
    let (mu, logvar) = (mulv[b * 2 * latent + j], mulv[b * 2 * latent + latent + j]);
    -0.5 * (1.0 + logvar - mu * mu - logvar.exp())
}

/// The KL weight at optimizer step `step`: beta ramped from 0 over `warmup_steps` (kl_weight in
/// common.wgsl).
pub fn kl_weight(beta: f32, warmup_steps: u32, step: u32) -> f32 {
    crate::objective::kl_weight(beta, warmup_steps, step)
}

/// The KL objective gaussian_kl_backward differentiates: weight * sum_j batch * max(free_bits,
/// mean over the batch of KL_j); with free_bits 0, weight * the sum of every row's KL.
pub fn weighted_kl_objective(mulv: &[f32], batch: usize, latent: usize, weight: f32, free_bits: f32) -> f64 {
    (0..latent)
        .map(|j| {
            let sum: f64 = (0..batch).map(|b| kl_term(mulv, latent, b, j) as f64).sum();
            if free_bits > 0.0 {
                (batch as f64) * (sum / batch as f64).max(free_bits as f64)
            } else {
                sum
            }
        })
        .sum::<f64>()
        * weight as f64
}

/// Adds d weighted_kl_objective / d mulv to dmulv; `weight` = kl_weight(..) x sample_scale. With
/// free bits this is free_bits_gate then gaussian_kl_backward_gated, as the trainer launches them.
pub fn gaussian_kl_backward(mulv: &[f32], dmulv: &mut [f32], batch: usize, latent: usize, weight: f32, free_bits: f32) {
    let gate = match free_bits > 0.0 {
        true => free_bits_gate(mulv, batch, latent, free_bits),
        false => vec![1.0; latent],
    };
    gaussian_kl_backward_gated(mulv, dmulv, &gate, batch, latent, weight);
}

/// gate [latent]: 0 where dimension j's mean KL over the batch is below free_bits, else 1.
pub fn free_bits_gate(mulv: &[f32], batch: usize, latent: usize, free_bits: f32) -> Vec<f32> {
    (0..latent)
        .map(|j| {
            let mean: f32 = (0..batch).map(|b| kl_term(mulv, latent, b, j)).sum::<f32>() / batch as f32;
            if mean < free_bits {
                0.0
            } else {
                1.0
            }
        })
        .collect()
}

/// The KL's gradient, dimension j's times gate[j], added to dmulv.
pub fn gaussian_kl_backward_gated(
    mulv: &[f32],
    dmulv: &mut [f32],
    gate: &[f32],
    batch: usize,
    latent: usize,
    weight: f32,
) {
    for j in 0..latent {
        let w = weight * gate[j];
        for b in 0..batch {
            let mu_at = b * 2 * latent + j;
            let lv_at = mu_at + latent;
            dmulv[mu_at] += w * mulv[mu_at];
            dmulv[lv_at] += w * 0.5 * (mulv[lv_at].exp() - 1.0);
        }
    }
}

/// reparam_backward, then the KL's gradient with dimension j's weight `weight` x gate[j] added
/// (reparam_kl_backward has gate 1 everywhere; reparam_kl_backward_gated free_bits_gate's).
pub fn reparam_kl_backward_gated(
    dz: &[f32],
    eps: &[f32],
    mulv: &[f32],
    gate: &[f32],
    batch: usize,
    latent: usize,
    weight: f32,
) -> Vec<f32> {
    let mut dmulv = reparam_backward(dz, eps, mulv, batch, latent);
    gaussian_kl_backward_gated(mulv, &mut dmulv, gate, batch, latent, weight);
    dmulv
}

/// reparam_kl_backward_gated with every dimension's gate 1.
pub fn reparam_kl_backward(
    dz: &[f32],
    eps: &[f32],
    mulv: &[f32],
    batch: usize,
    latent: usize,
    weight: f32,
) -> Vec<f32> {
    reparam_kl_backward_gated(dz, eps, mulv, &vec![1.0; latent], batch, latent, weight)
}

// ---- shaders/loss.wgsl ----

pub fn softplus(l: f32) -> f32 {
    l.max(0.0) + (-l.abs()).exp().ln_1p()
}

/// rec [batch] = sum_d softplus(l) - x l, row b's target being x row b / repeat.
pub fn bernoulli_rec_forward(logits: &[f32], x: &[f32], batch: usize, pixels: usize, repeat: usize) -> Vec<f32> {
    (0..batch)
        .map(|b| {
            (0..pixels)
                .map(|d| softplus(logits[b * pixels + d]) - x[(b / repeat) * pixels + d] * logits[b * pixels + d])
                .sum()
        })
        .collect()
}

/// The same sums as bernoulli_rec_forward (a workgroup per row adds them in another order).
pub fn bernoulli_rec_forward_rows(logits: &[f32], x: &[f32], batch: usize, pixels: usize, repeat: usize) -> Vec<f32> {
    bernoulli_rec_forward(logits, x, batch, pixels, repeat)
}

/// dlogits = coef[row] (sigmoid(l) - x), row b's target being x row b / repeat.
pub fn bernoulli_rec_backward(logits: &[f32], x: &[f32], coef: &[f32], pixels: usize, repeat: usize) -> Vec<f32> {
    logits
        .iter()
        .enumerate()
        .map(|(e, &l)| {
            let (b, d) = (e / pixels, e % pixels);
            coef[b] * (1.0 / (1.0 + (-l).exp()) - x[(b / repeat) * pixels + d])
        })
        .collect()
}

/// The Gaussian decoder's log-variance clamp (LOGVAR_MIN, LOGVAR_MAX in loss.wgsl).
pub const LOGVAR_MIN: f32 = -6.0;
pub const LOGVAR_MAX: f32 = 4.0;

/// rec [batch] = -log N(x; mean, exp(clamped logvar)), logits rows [means | raw log-variances].
pub fn gaussian_rec_forward(logits: &[f32], x: &[f32], batch: usize, pixels: usize, repeat: usize) -> Vec<f32> {
    let log_two_pi = (2.0 * std::f32::consts::PI).ln();
    (0..batch)
        .map(|b| {
            (0..pixels)
                .map(|d| {
                    let (m, lv) =
                        (logits[b * 2 * pixels + d], logits[b * 2 * pixels + pixels + d].clamp(LOGVAR_MIN, LOGVAR_MAX));
                    let r = x[(b / repeat) * pixels + d] - m;
                    0.5 * (log_two_pi + lv + r * r * (-lv).exp())
                })
                .sum()
        })
        .collect()
}

/// The same sums as gaussian_rec_forward, added by a workgroup per row.
pub fn gaussian_rec_forward_rows(logits: &[f32], x: &[f32], batch: usize, pixels: usize, repeat: usize) -> Vec<f32> {
    gaussian_rec_forward(logits, x, batch, pixels, repeat)
}

/// dlogits [batch, 2 pixels]: coef (m - x) exp(-lv) for the means, coef (1 - (x - m)^2 exp(-lv)) / 2
/// for the log-variances inside the clamp (0 outside).
pub fn gaussian_rec_backward(logits: &[f32], x: &[f32], coef: &[f32], pixels: usize, repeat: usize) -> Vec<f32> {
    let mut d = vec![0.0; logits.len()];
    for b in 0..logits.len() / (2 * pixels) {
        for p in 0..pixels {
            let (m, raw) = (logits[b * 2 * pixels + p], logits[b * 2 * pixels + pixels + p]);
            let lv = raw.clamp(LOGVAR_MIN, LOGVAR_MAX);
            let r = x[(b / repeat) * pixels + p] - m;
            d[b * 2 * pixels + p] = coef[b] * -r * (-lv).exp();
            d[b * 2 * pixels + pixels + p] =
                if raw > LOGVAR_MIN && raw < LOGVAR_MAX { coef[b] * 0.5 * (1.0 - r * r * (-lv).exp()) } else { 0.0 };
        }
    }
    d
}

/// rec as bernoulli_rec_forward_rows sums it and dlogits as bernoulli_rec_backward writes it.
pub fn bernoulli_rec_forward_backward_rows(
    logits: &[f32],
    x: &[f32],
    coef: &[f32],
    pixels: usize,
    repeat: usize,
) -> (Vec<f32>, Vec<f32>) {
    let batch = logits.len() / pixels;
    let rec = bernoulli_rec_forward_rows(logits, x, batch, pixels, repeat);
    (rec, bernoulli_rec_backward(logits, x, coef, pixels, repeat))
}

/// rec as gaussian_rec_forward_rows sums it and dlogits as gaussian_rec_backward writes it.
pub fn gaussian_rec_forward_backward_rows(
    logits: &[f32],
    x: &[f32],
    coef: &[f32],
    pixels: usize,
    repeat: usize,
) -> (Vec<f32>, Vec<f32>) {
    let batch = logits.len() / (2 * pixels);
    let rec = gaussian_rec_forward_rows(logits, x, batch, pixels, repeat);
    (rec, gaussian_rec_backward(logits, x, coef, pixels, repeat))
}

/// Adds real rows (input cursor + b / repeat < pass_rows) to the totals, records the first
/// non-finite step, advances the cursor by the batch's inputs (unless the batch is fixed) and, when
/// training, the step.
pub fn finish_step(
    rec: &[f32],
    kl: &[f32],
    pass_rows: u32,
    training: bool,
    repeat: usize,
    fixed_batch: bool,
    counters: &mut Counters,
    totals: &mut LossTotals,
) {
    let (mut rec_sum, mut kl_sum, mut n) = (0.0f32, 0.0f32, 0.0f32);
    for b in 0..rec.len() {
        if counters.cursor + ((b / repeat) as u32) < pass_rows {
            rec_sum += rec[b];
            kl_sum += kl[b];
            n += 1.0;
        }
    }
    if (!rec_sum.is_finite() || !kl_sum.is_finite()) && counters.bad_step == NO_BAD_STEP {
        counters.bad_step = counters.step;
    }
    totals.rec_sum += rec_sum;
    totals.kl_sum += kl_sum;
    totals.examples += n;
    if !fixed_batch {
        counters.cursor += (rec.len() / repeat) as u32;
    }
    if training {
        counters.step += 1;
    }
}

/// finish_step's bookkeeping with the rows added by a tree (the same totals up to rounding).
pub fn finish_step_tree(
    rec: &[f32],
    kl: &[f32],
    pass_rows: u32,
    training: bool,
    repeat: usize,
    fixed_batch: bool,
    counters: &mut Counters,
    totals: &mut LossTotals,
) {
    finish_step(rec, kl, pass_rows, training, repeat, fixed_batch, counters, totals)
}

// ---- shaders/adam.wgsl ----

/// One Adam update of every weight, with bias correction for t = step + 1.
pub fn adam_step(grads: &[f32], weights: &mut [f32], m: &mut [f32], v: &mut [f32], step: u32, cfg: &AdamConfig) {
    let t = (step + 1) as f32;
    for i in 0..weights.len() {
        let g = grads[i];
        m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
        let m_hat = m[i] / (1.0 - cfg.beta1.powf(t));
        let v_hat = v[i] / (1.0 - cfg.beta2.powf(t));
        weights[i] -= cfg.lr * m_hat / (v_hat.sqrt() + cfg.eps);
    }
}

/// adam_step four parameters at a time: the same update (weights.len() a multiple of 4).
pub fn adam_step_vec4(grads: &[f32], weights: &mut [f32], m: &mut [f32], v: &mut [f32], step: u32, cfg: &AdamConfig) {
    adam_step(grads, weights, m, v, step, cfg)
}

// ---- shaders/data.wgsl: gather_batch is reference/data.rs ----

// ---- shaders/bench.wgsl ----

/// Nothing: the floor `bench` measures is the cost of dispatching itself.
pub fn bench_empty() {}
