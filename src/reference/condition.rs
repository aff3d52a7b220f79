//! CPU mirrors of shaders/condition.wgsl, gather_labels (shaders/data.wgsl) and the two-Gaussian
//! KL of shaders/latent.wgsl: the pieces of a class-conditional VAE.
use crate::gpu::params::Counters;

/// dst[r, dst_offset + c] = src[r, src_offset + c] for c < count.
#[allow(clippy::too_many_arguments)]
pub fn copy_columns(
    src: &[f32],
    dst: &mut [f32],
    rows: usize,
    src_width: usize,
    dst_width: usize,
    count: usize,
    src_offset: usize,
    dst_offset: usize,
) {
    for r in 0..rows {
        for c in 0..count {
            dst[r * dst_width + dst_offset + c] = src[r * src_width + src_offset + c];
        }
    }
}

/// dst[r, dst_offset + c] = [c == labels[r / repeat]] for c < count.
pub fn one_hot_columns(
    labels: &[u32],
    dst: &mut [f32],
    rows: usize,
    dst_width: usize,
    count: usize,
    dst_offset: usize,
    repeat: usize,
) {
    for r in 0..rows {
        for c in 0..count {
            dst[r * dst_width + dst_offset + c] = (labels[r / repeat] == c as u32) as u32 as f32;
        }
    }
}

/// y [batch]: the labels of the batch's rows, 0 for padding rows.
pub fn gather_labels(labels: &[u32], order: &[u32], batch: usize, pass_rows: u32, counters: &Counters) -> Vec<u32> {
    (0..batch)
        .map(|b| {
            let row = counters.cursor + b as u32;
            if row < pass_rows {
                labels[order[row as usize] as usize]
            } else {
                0
            }
        })
        .collect()
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
