//! One readable function per WGSL entry point, with the entry point's name and shapes.
//! Tests compare each kernel against these, and check each backward here by finite differences.
use crate::config::AdamConfig;
use crate::data::Binarize;
use crate::gpu::params::{Counters, LossTotals, NO_BAD_STEP};
pub use crate::random::{normal4, philox4x32_10, uniform_open};

// ---- shaders/common.wgsl: Philox and Box-Muller are src/random.rs ----

// ---- shaders/linear.wgsl ----

/// y [batch, n_out] = act(x [batch, n_in] W^T + b), W [n_out, n_in].
pub fn linear_forward(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu: bool,
) -> Vec<f32> {
    let mut y = vec![0.0; batch * n_out];
    for m in 0..batch {
        for n in 0..n_out {
            let dot: f32 = (0..n_in).map(|k| x[m * n_in + k] * w[n * n_in + k]).sum();
            let pre = dot + b[n];
            y[m * n_out + n] = if relu { pre.max(0.0) } else { pre };
        }
    }
    y
}

/// dx [batch, n_in] = dy W, masked where the input x (a ReLU output when relu_input) is 0.
pub fn linear_backward_input(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu_input: bool,
) -> Vec<f32> {
    let mut dx = vec![0.0; batch * n_in];
    for m in 0..batch {
        for k in 0..n_in {
            let s: f32 = (0..n_out).map(|n| dy[m * n_out + n] * w[n * n_in + k]).sum();
            dx[m * n_in + k] = if relu_input && x[m * n_in + k] <= 0.0 { 0.0 } else { s };
        }
    }
    dx
}

/// dW [n_out, n_in] = dy^T x.
pub fn linear_backward_weight(dy: &[f32], x: &[f32], batch: usize, n_in: usize, n_out: usize) -> Vec<f32> {
    let mut dw = vec![0.0; n_out * n_in];
    for n in 0..n_out {
        for k in 0..n_in {
            dw[n * n_in + k] = (0..batch).map(|m| dy[m * n_out + n] * x[m * n_in + k]).sum();
        }
    }
    dw
}

/// db [n_out] = column sums of dy [batch, n_out].
pub fn linear_backward_bias(dy: &[f32], batch: usize, n_out: usize) -> Vec<f32> {
    (0..n_out).map(|n| (0..batch).map(|m| dy[m * n_out + n]).sum()).collect()
}

// ---- shaders/linear_vec4.wgsl: the same products, loaded as vec4 (n_in, n_out multiples of 4) ----

pub fn linear_forward_vec4(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu: bool,
) -> Vec<f32> {
    linear_forward(x, w, b, batch, n_in, n_out, relu)
}

pub fn linear_backward_input_vec4(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu_input: bool,
) -> Vec<f32> {
    linear_backward_input(dy, w, x, batch, n_in, n_out, relu_input)
}

pub fn linear_backward_weight_vec4(dy: &[f32], x: &[f32], batch: usize, n_in: usize, n_out: usize) -> Vec<f32> {
    linear_backward_weight(dy, x, batch, n_in, n_out)
}

// ---- shaders/linear_rows.wgsl: the forward and input-gradient products, lanes over rows ----

pub fn linear_forward_rows(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu: bool,
) -> Vec<f32> {
    linear_forward(x, w, b, batch, n_in, n_out, relu)
}

pub fn linear_backward_input_rows(
    dy: &[f32],
    w: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    relu_input: bool,
) -> Vec<f32> {
    linear_backward_input(dy, w, x, batch, n_in, n_out, relu_input)
}

/// The partial dW of each slice of `slice` rows, [slices, n_out, n_in] (one slice: dW itself).
pub fn linear_backward_weight_rows(
    dy: &[f32],
    x: &[f32],
    batch: usize,
    n_in: usize,
    n_out: usize,
    slice: usize,
) -> Vec<f32> {
    (0..batch.div_ceil(slice))
        .flat_map(|s| {
            let rows = (s * slice)..(batch.min((s + 1) * slice));
            let (dy, x) = (&dy[rows.start * n_out..rows.end * n_out], &x[rows.start * n_in..rows.end * n_in]);
            linear_backward_weight(dy, x, rows.len(), n_in, n_out)
        })
        .collect()
}

/// dW = the sum of `partials` [slices, len] over the slices.
pub fn linear_sum_slices(partials: &[f32], len: usize) -> Vec<f32> {
    (0..len).map(|i| partials.iter().skip(i).step_by(len).sum()).collect()
}

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
    if warmup_steps == 0 {
        return beta;
    }
    beta * (step as f32 / warmup_steps as f32).min(1.0)
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

/// Adds d weighted_kl_objective / d mulv to dmulv; `weight` = kl_weight(..) x sample_scale.
pub fn gaussian_kl_backward(mulv: &[f32], dmulv: &mut [f32], batch: usize, latent: usize, weight: f32, free_bits: f32) {
    for j in 0..latent {
        if free_bits > 0.0 {
            let mean: f32 = (0..batch).map(|b| kl_term(mulv, latent, b, j)).sum::<f32>() / batch as f32;
            if mean < free_bits {
                continue;
            }
        }
        for b in 0..batch {
            let mu_at = b * 2 * latent + j;
            let lv_at = mu_at + latent;
            dmulv[mu_at] += weight * mulv[mu_at];
            dmulv[lv_at] += weight * 0.5 * (mulv[lv_at].exp() - 1.0);
        }
    }
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

// ---- shaders/data.wgsl ----

/// x [batch, pixels]'s rows whose image lies in the shard (first image, images) of the dataset,
/// from the shard's bytes [images, pixels] and the pass's order; padding rows are 0 and rows of
/// other shards' images are left as they are.
pub fn gather_batch(
    images: &[u8],
    (first_image, shard_images): (usize, usize),
    pixels: usize,
    order: &[u32],
    (batch, pass_rows): (usize, u32),
    (binarize, seed, stream): (Binarize, u32, u32),
    counters: &Counters,
    x: &mut [f32],
) {
    let words = pixels / 4;
    for b in 0..batch {
        let row = counters.cursor + b as u32;
        if row >= pass_rows {
            x[b * pixels..(b + 1) * pixels].fill(0.0);
            continue;
        }
        let image = order[row as usize] as usize;
        if image < first_image || image - first_image >= shard_images {
            continue;
        }
        for w in 0..words {
            let draw_step = if binarize == Binarize::Static { 0 } else { counters.step };
            let bits = philox4x32_10([(image * words + w) as u32, draw_step, 0, stream], [seed, 0]);
            for i in 0..4 {
                let p = images[(image - first_image) * pixels + 4 * w + i] as f32 / 255.0;
                x[b * pixels + 4 * w + i] = match binarize {
                    Binarize::None => p,
                    _ => (uniform_open(bits[i]) < p) as u32 as f32,
                };
            }
        }
    }
}
