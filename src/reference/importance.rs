//! CPU mirrors of shaders/importance.wgsl: the importance-sampled estimate of -log p(x).
use crate::gpu::params::{IwParams, STREAM_IMPORTANCE};
use crate::reference::kernels::{normal4, philox4x32_10, softplus};

/// Below any finite log weight (LOG_SUM_START in the shader).
pub const LOG_SUM_START: f32 = -3.0e38;

/// (z [rows, latent], log_ratio [rows]) for rows = images x samples of the chunk: z = mu + sigma eps,
/// log_ratio = log p(z) - log q(z|x) = sum_j (eps^2 + logvar - z^2) / 2.
pub fn iw_sample(p: &IwParams, mulv: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (latent, rows) = (p.latent as usize, (p.images * p.samples) as usize);
    let mut z = vec![0.0; rows * latent];
    let mut log_ratio = vec![0.0; rows];
    for r in 0..rows {
        let i = r / p.samples as usize;
        let k = p.first_sample + (r % p.samples as usize) as u32;
        for j in 0..latent {
            let noise =
                normal4(philox4x32_10([p.first_image + i as u32, k, (j / 4) as u32, STREAM_IMPORTANCE], [p.seed, 0]));
            let e = noise[j % 4];
            let (mu, logvar) = (mulv[i * 2 * latent + j], mulv[i * 2 * latent + latent + j]);
            let zj = mu + (0.5 * logvar).exp() * e;
            z[r * latent + j] = zj;
            log_ratio[r] += 0.5 * (e * e + logvar - zj * zj);
        }
    }
    (z, log_ratio)
}

/// iw_sample with the prior as proposal: z = eps (iw_sample's draws), log_ratio = 0.
pub fn iw_sample_prior(p: &IwParams) -> (Vec<f32>, Vec<f32>) {
    let (latent, rows) = (p.latent as usize, (p.images * p.samples) as usize);
    let z = (0..rows * latent)
        .map(|at| {
            let (r, j) = (at / latent, at % latent);
            let (i, k) = (r / p.samples as usize, p.first_sample + (r % p.samples as usize) as u32);
            normal4(philox4x32_10([p.first_image + i as u32, k, (j / 4) as u32, STREAM_IMPORTANCE], [p.seed, 0]))[j % 4]
        })
        .collect();
    (z, vec![0.0; rows])
}

/// log_w [rows] = log_ratio - sum_d (softplus(l) - x l), x of row r being image r / samples.
pub fn iw_log_weight(p: &IwParams, logits: &[f32], x: &[f32], log_ratio: &[f32]) -> Vec<f32> {
    let pixels = p.pixels as usize;
    (0..(p.images * p.samples) as usize)
        .map(|r| {
            let i = r / p.samples as usize;
            let rec: f32 = (0..pixels)
                .map(|d| {
                    let l = logits[r * pixels + d];
                    softplus(l) - x[i * pixels + d] * l
                })
                .sum();
            log_ratio[r] - rec
        })
        .collect()
}

/// iw_log_weight for the Gaussian decoder: logits rows [means | raw log-variances].
pub fn iw_log_weight_gaussian(p: &IwParams, logits: &[f32], x: &[f32], log_ratio: &[f32]) -> Vec<f32> {
    let pixels = p.pixels as usize;
    (0..(p.images * p.samples) as usize)
        .map(|r| {
            let i = r / p.samples as usize;
            let xi = &x[i * pixels..(i + 1) * pixels];
            log_ratio[r]
                - crate::reference::kernels::gaussian_rec_forward(
                    &logits[r * 2 * pixels..(r + 1) * 2 * pixels],
                    xi,
                    1,
                    pixels,
                    1,
                )[0]
        })
        .collect()
}

/// Folds the chunk's log_w into state [images, 4] (max, scaled sum, sum of log w, scaled sum of
/// squares), reset on the first chunk; the chunk that reaches K writes result[result_offset + image * 3 ..]
/// = (-(max + log sum - log K), -(sum of log w) / K, sum^2 / sum of squares).
pub fn iw_accumulate(p: &IwParams, log_w: &[f32], state: &mut [f32], result: &mut [f32]) {
    let samples = p.samples as usize;
    for i in 0..p.images as usize {
        let (mut m, mut s, mut total, mut s2) = (LOG_SUM_START, 0.0f32, 0.0f32, 0.0f32);
        if p.first_sample > 0 {
            (m, s, total, s2) = (state[i * 4], state[i * 4 + 1], state[i * 4 + 2], state[i * 4 + 3]);
        }
        let chunk = &log_w[i * samples..(i + 1) * samples];
        let new_m = chunk.iter().fold(m, |a, &b| a.max(b));
        let rescale = (m - new_m).exp();
        s *= rescale;
        s2 *= rescale * rescale;
        for &lw in chunk {
            let w = (lw - new_m).exp();
            s += w;
            s2 += w * w;
            total += lw;
        }
        state[i * 4..i * 4 + 4].copy_from_slice(&[new_m, s, total, s2]);
        if p.first_sample + p.samples == p.total_samples {
            let k = p.total_samples as f32;
            let at = p.result_offset as usize + (p.first_image as usize + i) * 3;
            result[at..at + 3].copy_from_slice(&[-(new_m + s.ln() - k.ln()), -total / k, s * s / s2]);
        }
    }
}

/// iw_accumulate with each chunk's max and sums taken by a tree (the same state up to rounding).
pub fn iw_accumulate_rows(p: &IwParams, log_w: &[f32], state: &mut [f32], result: &mut [f32]) {
    iw_accumulate(p, log_w, state, result)
}
