//! shaders/latent.wgsl: the reparameterized sample and the Gaussian KL, forward and backward.
use crate::gpu::params::Counters;
use crate::random::{normal4, philox4x32_10};

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

/// kl [batch] = KL(N(mu_q, exp(lv_q)) || N(mu_p, exp(lv_p))), rows [mu | logvar] of mulv and prior.
pub fn gaussian_kl2_forward(mulv: &[f32], prior: &[f32], batch: usize, latent: usize) -> Vec<f32> {
    (0..batch)
        .map(|b| {
            0.5 * (0..latent)
                .map(|j| {
                    let at = b * 2 * latent + j;
                    let (d, lv_q, lv_p) = (mulv[at] - prior[at], mulv[at + latent], prior[at + latent]);
                    lv_p - lv_q + (lv_q.exp() + d * d) * (-lv_p).exp() - 1.0
                })
                .sum::<f32>()
        })
        .collect()
}

/// Adds weight x d kl / d mulv to dmulv; returns weight x d kl / d prior.
pub fn gaussian_kl2_backward(
    mulv: &[f32],
    prior: &[f32],
    dmulv: &mut [f32],
    batch: usize,
    latent: usize,
    weight: f32,
) -> Vec<f32> {
    let mut dprior = vec![0.0; prior.len()];
    for b in 0..batch {
        for j in 0..latent {
            let at = b * 2 * latent + j;
            let lv_at = at + latent;
            let (d, inv_var_p, var_q) = (mulv[at] - prior[at], (-prior[lv_at]).exp(), mulv[lv_at].exp());
            dmulv[at] += weight * d * inv_var_p;
            dmulv[lv_at] += weight * 0.5 * (var_q * inv_var_p - 1.0);
            dprior[at] = -weight * d * inv_var_p;
            dprior[lv_at] = weight * 0.5 * (1.0 - (var_q + d * d) * inv_var_p);
        }
    }
    dprior
}
