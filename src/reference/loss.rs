//! shaders/loss.wgsl: the Bernoulli and Gaussian reconstruction losses and the step's end.
use crate::gpu::params::{Counters, LossTotals, NO_BAD_STEP};

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
pub use self::bernoulli_rec_forward as bernoulli_rec_forward_rows;

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
pub use self::gaussian_rec_forward as gaussian_rec_forward_rows;

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
pub use self::finish_step as finish_step_tree;
