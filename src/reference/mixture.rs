//! CPU mirrors of shaders/mixture.wgsl (EM for a mixture of Bernoulli or diagonal Gaussian
//! products), one function per entry point, and `em_iteration`: one EM iteration from them and the
//! linear references, in the GPU's order (src/mixture/em.rs).
use super::linear::{linear_backward_bias, linear_backward_weight, linear_forward};
use crate::gpu::params::MixtureParams;

/// Gaussian (family 1) rows carry [x, x^2].
const FAMILY_GAUSSIAN: u32 = 1;
const EMPTY_WEIGHT: f32 = 1e-20;
const LOG_TWO_PI: f32 = 1.837_877_1;
const DEAD_LOG_WEIGHT: f32 = -1e30;
/// Lanes of mixture_log_weights' workgroup (MIXTURE_LANES in the shader).
const LANES: usize = 64;

fn features(p: &MixtureParams) -> usize {
    p.pixels as usize * if p.family == FAMILY_GAUSSIAN { 2 } else { 1 }
}

/// x [rows, F] from the chunk's image bytes [rows, D]: pixel / 255, and its square for the Gaussian.
pub fn mixture_unpack(p: &MixtureParams, images: &[u8]) -> Vec<f32> {
    let (rows, d_count, f) = (p.rows as usize, p.pixels as usize, features(p));
    let mut x = vec![0.0; rows * f];
    for r in 0..rows {
        for d in 0..d_count {
            let v = images[r * d_count + d] as f32 / 255.0;
            x[r * f + d] = v;
            if p.family == FAMILY_GAUSSIAN {
                x[r * f + d_count + d] = v * v;
            }
        }
    }
    x
}

/// The E-step's end per row: loglik[first_row + r] = logsumexp(L_r), and L_r = softmax(L_r).
pub fn mixture_responsibilities(p: &MixtureParams, logits: &mut [f32], loglik: &mut [f32]) {
    let k_count = p.components as usize;
    for r in 0..p.rows as usize {
        let row = &mut logits[r * k_count..(r + 1) * k_count];
        let top = row.iter().copied().fold(row[0], f32::max);
        let sum: f32 = row.iter().map(|l| (l - top).exp()).sum();
        let lse = top + sum.ln();
        for l in row.iter_mut() {
            *l = (*l - lse).exp();
        }
        loglik[p.first_row as usize + r] = lse;
    }
}

/// totals += stats over the bias_at + K statistics; the first chunk (first_row 0) starts them.
pub fn mixture_accumulate(p: &MixtureParams, stats: &[f32], totals: &mut [f32]) {
    for i in 0..(p.bias_at + p.components) as usize {
        totals[i] = if p.first_row == 0 { 0.0 } else { totals[i] } + stats[i];
    }
}

/// The M-step per (pixel, component): means (and variances) from totals, and W in nat.
pub fn mixture_m_step(p: &MixtureParams, totals: &[f32], nat: &mut [f32], means: &mut [f32], variances: &mut [f32]) {
    let (d_count, f, a) = (p.pixels as usize, features(p), p.pseudo_count);
    for k in 0..p.components as usize {
        let n_k = totals[p.bias_at as usize + k];
        for d in 0..d_count {
            let at = k * d_count + d;
            if p.family != FAMILY_GAUSSIAN {
                let s = totals[k * f + d];
                means[at] = (s + a) / (n_k + 2.0 * a);
                nat[k * f + d] = (s + a).ln() - ((n_k - s).max(0.0) + a).ln();
                continue;
            }
            if n_k > EMPTY_WEIGHT {
                let m = totals[k * f + d] / n_k;
                means[at] = m;
                variances[at] = (totals[k * f + d_count + d] / n_k - m * m).max(p.var_floor);
            }
            let v = variances[at];
            nat[k * f + d] = means[at] / v;
            nat[k * f + d_count + d] = -0.5 / v;
        }
    }
}

/// Per component: log_weights[k] = log pi_k and nat's bias_k, summed over pixels as the shader's 64
/// lanes and tree do; DEAD_LOG_WEIGHT for padding components (k >= live).
pub fn mixture_log_weights(
    p: &MixtureParams,
    totals: &[f32],
    means: &[f32],
    variances: &[f32],
    nat: &mut [f32],
    log_weights: &mut [f32],
) {
    let (d_count, f, a) = (p.pixels as usize, features(p), p.pseudo_count);
    for k in 0..p.components as usize {
        let n_k = totals[p.bias_at as usize + k];
        let mut partial = [0.0f32; LANES];
        for d in 0..d_count {
            partial[d % LANES] += if p.family != FAMILY_GAUSSIAN {
                ((n_k - totals[k * f + d]).max(0.0) + a).ln() - (n_k + 2.0 * a).ln()
            } else {
                let (m, v) = (means[k * d_count + d], variances[k * d_count + d]);
                -0.5 * (m * m / v + LOG_TWO_PI + v.ln())
            };
        }
        if k >= p.live as usize {
            log_weights[k] = DEAD_LOG_WEIGHT;
            nat[p.bias_at as usize + k] = DEAD_LOG_WEIGHT;
            continue;
        }
        let mut width = LANES / 2;
        while width > 0 {
            for lane in 0..width {
                partial[lane] += partial[lane + width];
            }
            width /= 2;
        }
        let log_pi = (n_k + a).ln() - (p.total_rows as f32 + p.live as f32 * a).ln();
        log_weights[k] = log_pi;
        nat[p.bias_at as usize + k] = log_pi + partial[0];
    }
}

/// The fitted state the GPU keeps: nat [bias_at + K], means and variances [K, D], log_weights [K].
#[derive(Clone, Debug, PartialEq)]
pub struct MixtureState {
    pub nat: Vec<f32>,
    pub means: Vec<f32>,
    pub variances: Vec<f32>,
    pub log_weights: Vec<f32>,
}

/// The M-step from `totals` (the GPU's last two launches of an iteration, or of the start).
pub fn m_step(p: &MixtureParams, totals: &[f32], state: &mut MixtureState) {
    mixture_m_step(p, totals, &mut state.nat, &mut state.means, &mut state.variances);
    mixture_log_weights(p, totals, &state.means, &state.variances, &mut state.nat, &mut state.log_weights);
}

/// One EM iteration over `images` [N, D] bytes in chunks of `chunk` rows: returns log p(x_n) under
/// the state it starts from, and leaves the M-step's state. `p` gives the sizes (rows and first_row
/// are set per chunk).
pub fn em_iteration(p: &MixtureParams, images: &[u8], chunk: usize, state: &mut MixtureState) -> Vec<f32> {
    let (n, d_count, k_count, f) = (p.total_rows as usize, p.pixels as usize, p.components as usize, features(p));
    let bias_at = p.bias_at as usize;
    let mut loglik = vec![0.0; n];
    let mut totals = vec![f32::NAN; bias_at + k_count];
    for first in (0..n).step_by(chunk) {
        let rows = chunk.min(n - first);
        let cp = MixtureParams { rows: rows as u32, first_row: first as u32, ..*p };
        let x = mixture_unpack(&cp, &images[first * d_count..(first + rows) * d_count]);
        let (w, b) = (&state.nat[..k_count * f], &state.nat[bias_at..bias_at + k_count]);
        let mut logits = linear_forward(&x, w, b, rows, f, k_count, false);
        mixture_responsibilities(&cp, &mut logits, &mut loglik);
        let mut stats = vec![0.0; bias_at + k_count];
        stats[..k_count * f].copy_from_slice(&linear_backward_weight(&logits, &x, rows, f, k_count));
        stats[bias_at..].copy_from_slice(&linear_backward_bias(&logits, rows, k_count));
        mixture_accumulate(&cp, &stats, &mut totals);
    }
    m_step(p, &totals, state);
    loglik
}
