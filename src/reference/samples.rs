//! CPU mirrors of shaders/samples.wgsl: several samples per input, IWAE's weights and the
//! score-function estimator. Rows are samples; row r belongs to input r / samples.

/// log_w [rows] = -rec + weight sum_j (eps^2 + logvar - z^2) / 2, weight the KL weight
/// (log p(x|z) + log p(z) - log q(z|x) at weight 1).
pub fn log_weight_forward(mulv: &[f32], eps: &[f32], z: &[f32], rec: &[f32], latent: usize, weight: f32) -> Vec<f32> {
    (0..rec.len())
        .map(|r| {
            let ratio: f32 = (0..latent)
                .map(|j| {
                    let (e, zj) = (eps[r * latent + j], z[r * latent + j]);
                    0.5 * (e * e + mulv[r * 2 * latent + latent + j] - zj * zj)
                })
                .sum();
            -rec[r] + weight * ratio
        })
        .collect()
}

/// coef [rows]: softmax of log_w over each input's samples.
pub fn iwae_weights(log_w: &[f32], samples: usize) -> Vec<f32> {
    log_w
        .chunks(samples)
        .flat_map(|group| {
            let m = group.iter().cloned().fold(f32::MIN, f32::max);
            let s: f32 = group.iter().map(|&l| (l - m).exp()).sum();
            group.iter().map(move |&l| (l - m).exp() / s)
        })
        .collect()
}

/// The IWAE loss of a batch from its log weights: sum over inputs of -log mean_k exp(log_w).
pub fn iwae_loss(log_w: &[f32], samples: usize) -> f64 {
    log_w
        .chunks(samples)
        .map(|group| {
            let m = group.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
            -(m + (group.iter().map(|&l| (l as f64 - m).exp()).sum::<f64>() / samples as f64).ln())
        })
        .sum()
}

/// dmulv [rows, 2 latent]: d/dmu = dz + coef z; d/dlogvar = (dz + coef z) sigma eps / 2 - coef / 2.
pub fn sampled_latent_backward(
    mulv: &[f32],
    eps: &[f32],
    z: &[f32],
    coef: &[f32],
    dz: &[f32],
    latent: usize,
) -> Vec<f32> {
    let mut dmulv = vec![0.0; mulv.len()];
    for e in 0..z.len() {
        let (r, j) = (e / latent, e % latent);
        let lv_at = r * 2 * latent + latent + j;
        let total = dz[e] + coef[r] * z[e];
        dmulv[r * 2 * latent + j] = total;
        dmulv[lv_at] = total * 0.5 * (0.5 * mulv[lv_at]).exp() * eps[e] - 0.5 * coef[r];
    }
    dmulv
}

/// The control variate of row r: 0, the running mean (0 until initialised), or the mean log_w of
/// the input's other samples.
pub fn control_variate(log_w: &[f32], r: usize, samples: usize, baseline: u32, state: [f32; 2]) -> f32 {
    match baseline {
        1 => state[0] * state[1],
        2 => {
            let first = (r / samples) * samples;
            let s: f32 = log_w[first..first + samples].iter().sum();
            (s - log_w[r]) / (samples - 1) as f32
        }
        _ => 0.0,
    }
}

/// dmulv [rows, 2 latent] = -(f - b) / samples x grad log q(z|x) at fixed z:
/// d/dmu = eps / sigma, d/dlogvar = (eps^2 - 1) / 2.
pub fn score_backward(
    mulv: &[f32],
    eps: &[f32],
    log_w: &[f32],
    latent: usize,
    samples: usize,
    baseline: u32,
    state: [f32; 2],
) -> Vec<f32> {
    let mut dmulv = vec![0.0; mulv.len()];
    for e in 0..eps.len() {
        let (r, j) = (e / latent, e % latent);
        let lv_at = r * 2 * latent + latent + j;
        let a = -(log_w[r] - control_variate(log_w, r, samples, baseline, state)) / samples as f32;
        dmulv[r * 2 * latent + j] = a * eps[e] * (-0.5 * mulv[lv_at]).exp();
        dmulv[lv_at] = a * 0.5 * (eps[e] * eps[e] - 1.0);
    }
    dmulv
}

/// The running mean after a batch: set by the first, then decay b + (1 - decay) mean(log_w).
pub fn score_baseline_update(log_w: &[f32], state: [f32; 2], decay: f32) -> [f32; 2] {
    let mean = log_w.iter().sum::<f32>() / log_w.len() as f32;
    if state[1] == 0.0 {
        [mean, 1.0]
    } else {
        [decay * state[0] + (1.0 - decay) * mean, 1.0]
    }
}

/// score_baseline_update with the batch's sum added by a tree (the same mean up to rounding).
pub fn score_baseline_update_tree(log_w: &[f32], state: [f32; 2], decay: f32) -> [f32; 2] {
    score_baseline_update(log_w, state, decay)
}
