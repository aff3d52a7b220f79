//! CPU mirrors of shaders/nce.wgsl (noise-contrastive estimation with a mixture as the noise), one
//! function per entry point, and `nce_batch_loss`: the loss of one batch from the scorer's outputs,
//! whose gradient the finite-difference test checks.
use crate::gpu::params::{Counters, NceParams, NceTotals, NO_BAD_STEP};
use crate::random::{normal4, philox4x32_10, uniform_open};

const COMPONENT_DRAW: u32 = u32::MAX;

fn draw_bits(p: &NceParams, c: &Counters, row: u32, slot: u32) -> [u32; 4] {
    philox4x32_10([row, c.step.wrapping_add(p.draw), slot, p.stream], [p.seed, c.cursor])
}

/// component[r] = the first k whose cumulative weight passes a uniform (else the last).
pub fn nce_pick_components(p: &NceParams, c: &Counters, log_weights: &[f32]) -> Vec<u32> {
    (0..p.noise_rows)
        .map(|r| {
            let u = uniform_open(draw_bits(p, c, r, COMPONENT_DRAW)[0]);
            let mut sum = 0.0f32;
            for k in 0..p.components {
                sum += log_weights[k as usize].exp();
                if u < sum {
                    return k;
                }
            }
            p.components - 1
        })
        .collect()
}

/// Noise rows' pixels from their components, into x from row first_noise.
pub fn nce_sample_pixels(p: &NceParams, c: &Counters, means: &[f32], stds: &[f32], component: &[u32], x: &mut [f32]) {
    let d_count = p.pixels as usize;
    for r in 0..p.noise_rows as usize {
        let from = component[r] as usize * d_count;
        let row = (p.first_noise as usize + r) * d_count;
        for q in 0..d_count.div_ceil(4) {
            let bits = draw_bits(p, c, r as u32, q as u32);
            let normals = normal4(bits);
            for i in 0..4 {
                let d = 4 * q + i;
                if d < d_count {
                    x[row + d] = if p.family == 0 {
                        if uniform_open(bits[i]) < means[from + d] {
                            1.0
                        } else {
                            0.0
                        }
                    } else {
                        means[from + d] + stds[from + d] * normals[i]
                    };
                }
            }
        }
    }
}

/// features [rows, 2D] = [x, x^2] per row.
pub fn nce_features(p: &NceParams, x: &[f32]) -> Vec<f32> {
    let (d, rows) = (p.pixels as usize, (p.first_noise + p.noise_rows) as usize);
    let mut f = vec![0.0; rows * 2 * d];
    for r in 0..rows {
        for j in 0..d {
            let v = x[r * d + j];
            f[r * 2 * d + j] = v;
            f[r * 2 * d + d + j] = v * v;
        }
    }
    f
}

fn softplus(v: f32) -> f32 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Row r's log-odds of being data: o - log k - log q, or o - log k when the model is log q + o.
fn delta_of(p: &NceParams, score: &[f32], log_q: &[f32], r: usize) -> f32 {
    score[r] - p.log_k - if p.base == 1 { 0.0 } else { log_q[r] }
}

/// (d_score [rows], row_loss [B], row_correct [B]) from the scores o and log q of every row.
pub fn nce_loss(p: &NceParams, c: &Counters, score: &[f32], log_q: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (b_count, k) = (p.data_rows as usize, p.noise as usize);
    let mut d_score = vec![0.0; score.len()];
    let (mut row_loss, mut row_correct) = (vec![0.0; b_count], vec![0.0; b_count]);
    for b in 0..b_count {
        let live = if c.cursor + (b as u32) < p.pass_rows { 1.0 } else { 0.0 };
        let delta = delta_of(p, score, log_q, b);
        let mut loss = softplus(-delta);
        let mut correct = if delta > 0.0 { 1.0 } else { 0.0 };
        d_score[b] = live * (sigmoid(delta) - 1.0);
        for j in 0..k {
            let r = p.first_noise as usize + b * k + j;
            let noise_delta = delta_of(p, score, log_q, r);
            loss += softplus(noise_delta);
            correct += if noise_delta < 0.0 { 1.0 } else { 0.0 };
            d_score[r] = live * sigmoid(noise_delta);
        }
        row_loss[b] = live * loss;
        row_correct[b] = live * correct;
    }
    (d_score, row_loss, row_correct)
}

/// The totals += the live rows', the first non-finite step noted, the cursor and step moved.
pub fn nce_finish_step(p: &NceParams, c: &mut Counters, row_loss: &[f32], row_correct: &[f32], t: &mut NceTotals) {
    let (mut loss, mut correct, mut n) = (0.0f32, 0.0f32, 0.0f32);
    for b in 0..p.data_rows {
        if c.cursor + b < p.pass_rows {
            loss += row_loss[b as usize];
            correct += row_correct[b as usize];
            n += 1.0;
        }
    }
    if !loss.is_finite() && c.bad_step == NO_BAD_STEP {
        c.bad_step = c.step;
    }
    t.loss_sum += loss;
    t.correct_sum += correct;
    t.examples += n;
    c.cursor += p.data_rows;
    if p.training == 1 {
        c.step += 1;
    }
}

/// The batch's summed loss in f64, from the scores and log q of every row (all rows live).
pub fn nce_batch_loss(p: &NceParams, score: &[f32], log_q: &[f32]) -> f64 {
    let (b_count, k) = (p.data_rows as usize, p.noise as usize);
    let softplus = |v: f64| v.max(0.0) + (-v.abs()).exp().ln_1p();
    let log_k = (k as f64).ln();
    let delta = |r: usize| score[r] as f64 - log_k - if p.base == 1 { 0.0 } else { log_q[r] as f64 };
    let mut total = 0.0;
    for b in 0..b_count {
        total += softplus(-delta(b));
        for j in 0..k {
            total += softplus(delta(p.first_noise as usize + b * k + j));
        }
    }
    total
}
