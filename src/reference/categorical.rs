//! CPU mirrors of shaders/categorical.wgsl: Gumbel-softmax relaxed categorical latents.
use super::kernels::{kl_weight, philox4x32_10, uniform_open};
use crate::gpu::params::CategoricalParams;
use crate::gpu::params::Counters;

/// tau_start (tau_end / tau_start)^min(1, step / anneal_steps); tau_end without annealing.
pub fn temperature(p: &CategoricalParams, step: u32) -> f32 {
    crate::objective::temperature((p.tau_start, p.tau_end, p.anneal_steps), step)
}

/// (noise, z) [rows, groups * categories]: Gumbel noise g and y = softmax((logits + g) / tau) per group.
pub fn gumbel_softmax_forward(p: &CategoricalParams, logits: &[f32], counters: &Counters) -> (Vec<f32>, Vec<f32>) {
    let (groups, c) = (p.groups as usize, p.categories as usize);
    let tau = temperature(p, counters.step);
    let mut noise = vec![0.0; logits.len()];
    let mut z = vec![0.0; logits.len()];
    for e in 0..p.rows as usize * groups {
        let (r, first) = (e / groups, e * c);
        for k in 0..c {
            let bits = philox4x32_10(
                [r as u32, ((e % groups) * c + k) as u32, counters.step, p.stream],
                [p.seed, counters.cursor],
            );
            noise[first + k] = -(-uniform_open(bits[0]).ln()).ln();
        }
        let scaled: Vec<f32> = (0..c).map(|k| (logits[first + k] + noise[first + k]) / tau).collect();
        let m = scaled.iter().cloned().fold(f32::MIN, f32::max);
        let s: f32 = scaled.iter().map(|v| (v - m).exp()).sum();
        for k in 0..c {
            z[first + k] = (scaled[k] - m).exp() / s;
        }
    }
    (noise, z)
}

/// dlogits = y (dz - y . dz) / tau per group.
pub fn gumbel_softmax_backward(p: &CategoricalParams, z: &[f32], dz: &[f32], counters: &Counters) -> Vec<f32> {
    let c = p.categories as usize;
    let tau = temperature(p, counters.step);
    let mut d = vec![0.0; z.len()];
    for first in (0..z.len()).step_by(c) {
        let dot: f32 = (0..c).map(|k| z[first + k] * dz[first + k]).sum();
        for k in 0..c {
            d[first + k] = z[first + k] * (dz[first + k] - dot) / tau;
        }
    }
    d
}

/// Log-probabilities of one group's logits.
fn log_softmax(l: &[f32]) -> Vec<f32> {
    let m = l.iter().cloned().fold(f32::MIN, f32::max);
    let log_s = l.iter().map(|v| (v - m).exp()).sum::<f32>().ln();
    l.iter().map(|v| v - m - log_s).collect()
}

/// kl [rows] = sum over groups of sum_k q_k log q_k + log(categories), q = softmax(logits).
pub fn categorical_kl_forward(p: &CategoricalParams, logits: &[f32]) -> Vec<f32> {
    let (groups, c) = (p.groups as usize, p.categories as usize);
    (0..p.rows as usize)
        .map(|r| {
            (0..groups)
                .map(|g| {
                    let lq = log_softmax(&logits[(r * groups + g) * c..(r * groups + g + 1) * c]);
                    lq.iter().map(|v| v.exp() * v).sum::<f32>() + (c as f32).ln()
                })
                .sum()
        })
        .collect()
}

/// Adds w q_k (log q_k - sum_j q_j log q_j) to dlogits, w = kl_weight(..) x sample_scale.
pub fn categorical_kl_backward(p: &CategoricalParams, logits: &[f32], dlogits: &mut [f32], counters: &Counters) {
    let c = p.categories as usize;
    let w = kl_weight(p.beta, p.warmup_steps, counters.step) * p.sample_scale;
    for first in (0..logits.len()).step_by(c) {
        let lq = log_softmax(&logits[first..first + c]);
        let h: f32 = lq.iter().map(|v| v.exp() * v).sum();
        for k in 0..c {
            dlogits[first + k] += w * lq[k].exp() * (lq[k] - h);
        }
    }
}
