//! Every backward reference against central differences of its forward.
use crate::common::*;

#[test]
fn linear_backward_references_should_match_finite_differences() {
    let (b, n_in, n_out) = (5, 6, 7);
    let (x, w, bias, probe) =
        (random(b * n_in, 30, 1.0), random(n_out * n_in, 31, 1.0), random(n_out, 32, 1.0), random(b * n_out, 33, 1.0));
    // L = sum(probe * relu(x W^T + b)); its gradient wrt y is probe, masked by the ReLU.
    let y = r::linear_forward(&x, &w, &bias, b, n_in, n_out, true);
    let dy: Vec<f32> = probe.iter().zip(&y).map(|(p, y)| if *y > 0.0 { *p } else { 0.0 }).collect();
    let positive = |x: &[f32], w: &[f32], bias: &[f32]| -> Vec<bool> {
        r::linear_forward(x, w, bias, b, n_in, n_out, false).iter().map(|&p| p > 0.0).collect()
    };
    check_grad(
        "dx",
        &|x| dot(&probe, &r::linear_forward(x, &w, &bias, b, n_in, n_out, true)),
        &|up, down| positive(up, &w, &bias) == positive(down, &w, &bias),
        &x,
        &r::linear_backward_input(&dy, &w, &x, b, n_in, n_out, false),
    );
    check_grad(
        "dW",
        &|w| dot(&probe, &r::linear_forward(&x, w, &bias, b, n_in, n_out, true)),
        &|up, down| positive(&x, up, &bias) == positive(&x, down, &bias),
        &w,
        &r::linear_backward_weight(&dy, &x, b, n_in, n_out),
    );
    check_grad(
        "db",
        &|bias| dot(&probe, &r::linear_forward(&x, &w, bias, b, n_in, n_out, true)),
        &|up, down| positive(&x, &w, up) == positive(&x, &w, down),
        &bias,
        &r::linear_backward_bias(&dy, b, n_out),
    );
    // The input-side ReLU mask: x itself a ReLU output, masked where it is 0.
    let x_relu: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
    let y_relu = r::linear_forward(&x_relu, &w, &bias, b, n_in, n_out, true);
    let dy_relu: Vec<f32> = probe.iter().zip(&y_relu).map(|(p, y)| if *y > 0.0 { *p } else { 0.0 }).collect();
    let dx = r::linear_backward_input(&dy_relu, &w, &x_relu, b, n_in, n_out, true);
    let through_relu = |x: &[f32]| {
        let h: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        dot(&probe, &r::linear_forward(&h, &w, &bias, b, n_in, n_out, true))
    };
    let sides = |x: &[f32]| -> Vec<bool> {
        let h: Vec<f32> = x.iter().map(|v| v.max(0.0)).collect();
        let mut s: Vec<bool> = x.iter().map(|&v| v > 0.0).collect();
        s.extend(positive(&h, &w, &bias));
        s
    };
    check_grad("dx through the input ReLU", &through_relu, &|up, down| sides(up) == sides(down), &x, &dx);
}

#[test]
fn latent_backward_references_should_match_finite_differences() {
    let (b, latent) = (3, 5);
    let mulv = random(b * 2 * latent, 34, 1.0);
    let c = counters(2, 0);
    let (eps, _) = r::reparam_forward(&mulv, b, latent, 8, 0, &c);
    let probe = random(b * latent, 35, 1.0);
    // L = sum(probe * z(mulv)) + sum(kl(mulv)) with eps held fixed.
    let loss = |m: &[f32]| {
        let z: Vec<f32> = (0..b * latent)
            .map(|e| {
                let (i, j) = (e / latent, e % latent);
                m[i * 2 * latent + j] + (0.5 * m[i * 2 * latent + latent + j]).exp() * eps[e]
            })
            .collect();
        dot(&probe, &z) + r::gaussian_kl_forward(m, b, latent).iter().map(|&v| v as f64).sum::<f64>()
    };
    let mut analytic = r::reparam_backward(&probe, &eps, &mulv, b, latent);
    r::gaussian_kl_backward(&mulv, &mut analytic, b, latent, 1.0, 0.0);
    check_grad("dmulv", &loss, &always, &mulv, &analytic);
}

#[test]
fn weighted_kl_backward_reference_should_match_finite_differences() {
    let (b, latent) = (4, 6);
    let mulv = random(b * 2 * latent, 45, 1.5);
    // Free bits at the median dimension's mean KL: half the dimensions get a zero gradient. Coordinates
    // whose perturbation moves a dimension across the threshold are skipped (the kink of the max).
    let kl_mean = |m: &[f32], j: usize| dim_mean_kl(m, b, latent, j);
    let mut means: Vec<f64> = (0..latent).map(|j| kl_mean(&mulv, j)).collect();
    means.sort_by(f64::total_cmp);
    let fb = ((means[latent / 2] + means[latent / 2 - 1]) / 2.0) as f32;
    for (weight, free_bits) in [(0.3f32, 0.0f32), (1.7, fb)] {
        let loss = |m: &[f32]| r::weighted_kl_objective(m, b, latent, weight, free_bits);
        let mut analytic = vec![0.0; mulv.len()];
        r::gaussian_kl_backward(&mulv, &mut analytic, b, latent, weight, free_bits);
        let same_side =
            |a: &[f32], c: &[f32]| (0..latent).all(|j| (kl_mean(a, j) >= fb as f64) == (kl_mean(c, j) >= fb as f64));
        check_grad("weighted dmulv", &loss, &same_side, &mulv, &analytic);
    }
}

#[test]
fn sampled_latent_backward_reference_should_match_finite_differences() {
    use wgvae::reference::samples as rs;
    let (rows, latent) = (5, 4);
    let mulv = random(rows * 2 * latent, 46, 1.0);
    let (eps, dz, coef) = (random(rows * latent, 47, 2.0), random(rows * latent, 48, 1.0), random(rows, 49, 1.0));
    let z_of = |m: &[f32]| -> Vec<f32> {
        (0..rows * latent)
            .map(|e| {
                let (r, j) = (e / latent, e % latent);
                m[r * 2 * latent + j] + (0.5 * m[r * 2 * latent + latent + j]).exp() * eps[e]
            })
            .collect()
    };
    // F = dz . z(mulv) - sum_r coef_r (log p(z_r) - log q(z_r|x)), eps fixed: what the kernel differentiates.
    let loss = |m: &[f32]| {
        let z = z_of(m);
        let neg_ratio: f64 = (0..rows)
            .map(|r| {
                coef[r] as f64
                    * -(0..latent)
                        .map(|j| {
                            let e = eps[r * latent + j] as f64;
                            0.5 * (e * e + m[r * 2 * latent + latent + j] as f64 - (z[r * latent + j] as f64).powi(2))
                        })
                        .sum::<f64>()
            })
            .sum();
        dot(&dz, &z) + neg_ratio
    };
    let z = z_of(&mulv);
    check_grad(
        "sampled dmulv",
        &loss,
        &always,
        &mulv,
        &rs::sampled_latent_backward(&mulv, &eps, &z, &coef, &dz, latent),
    );
    // log_weight_forward at weight 1 is log p(x|z) + log p(z) - log q(z|x) written out in full.
    let rec = random(rows, 50, 100.0);
    let lw = rs::log_weight_forward(&mulv, &eps, &z, &rec, latent, 1.0);
    let half_log_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    for r in 0..rows {
        let (mut log_pz, mut log_qz) = (0.0, 0.0);
        for j in 0..latent {
            let (mu, lv, zj) =
                (mulv[r * 2 * latent + j] as f64, mulv[r * 2 * latent + latent + j] as f64, z[r * latent + j] as f64);
            log_pz += -0.5 * zj * zj - half_log_2pi;
            log_qz += -0.5 * (zj - mu).powi(2) / lv.exp() - 0.5 * lv - half_log_2pi;
        }
        assert!((lw[r] as f64 - (-(rec[r] as f64) + log_pz - log_qz)).abs() < 1e-3, "row {r}");
    }
}

#[test]
fn iwae_weights_reference_should_be_minus_the_gradient_of_the_iwae_loss() {
    use wgvae::reference::samples as rs;
    let samples = 4;
    let log_w: Vec<f32> = random(3 * samples, 51, 3.0).iter().map(|v| v - 200.0).collect();
    let minus_coef: Vec<f32> = rs::iwae_weights(&log_w, samples).iter().map(|c| -c).collect();
    check_grad("d iwae / d log w", &|l: &[f32]| rs::iwae_loss(l, samples), &always, &log_w, &minus_coef);
}

#[test]
fn score_backward_reference_should_be_the_signal_times_the_score_of_q() {
    use wgvae::reference::samples as rs;
    let (rows, latent, samples) = (3, 4, 3);
    let mulv = random(rows * 2 * latent, 52, 1.0);
    let (eps, log_w) = (random(rows * latent, 53, 2.0), random(rows, 54, 50.0));
    let z: Vec<f32> = (0..rows * latent)
        .map(|e| {
            let (r, j) = (e / latent, e % latent);
            mulv[r * 2 * latent + j] + (0.5 * mulv[r * 2 * latent + latent + j]).exp() * eps[e]
        })
        .collect();
    // With no baseline, dmulv = -(f / samples) d/dmulv log q(z|x) at the drawn z, held fixed.
    let loss = |m: &[f32]| -> f64 {
        (0..rows)
            .map(|r| {
                -(log_w[r] as f64) / samples as f64
                    * (0..latent)
                        .map(|j| {
                            let (mu, lv, zj) = (
                                m[r * 2 * latent + j] as f64,
                                m[r * 2 * latent + latent + j] as f64,
                                z[r * latent + j] as f64,
                            );
                            -0.5 * (zj - mu).powi(2) / lv.exp() - 0.5 * lv
                        })
                        .sum::<f64>()
            })
            .sum()
    };
    check_grad(
        "score dmulv",
        &loss,
        &always,
        &mulv,
        &rs::score_backward(&mulv, &eps, &log_w, latent, samples, 0, [0.0; 2]),
    );
    // A baseline b replaces f by f - b: leave-one-out from the other samples, or the running mean.
    let loo = rs::score_backward(&mulv, &eps, &log_w, latent, samples, 2, [0.0; 2]);
    let none = rs::score_backward(&mulv, &eps, &log_w, latent, samples, 0, [0.0; 2]);
    let b0 = (log_w[1] + log_w[2]) / 2.0;
    assert!(((loo[0] - none[0] * (log_w[0] - b0) / log_w[0]) / none[0]).abs() < 1e-4);
    assert_eq!(rs::control_variate(&log_w, 0, samples, 1, [7.0, 1.0]), 7.0);
    assert_eq!(rs::score_baseline_update(&[1.0, 3.0], [0.0, 0.0], 0.9), [2.0, 1.0]);
    assert!((rs::score_baseline_update(&[1.0, 3.0], [10.0, 1.0], 0.9)[0] - 9.2).abs() < 1e-5);
}

#[test]
fn bernoulli_rec_backward_reference_should_match_finite_differences() {
    let (b, pixels) = (3, 11);
    let logits = random(b * pixels, 36, 6.0);
    let x: Vec<f32> = random(b * pixels, 37, 1.0).iter().map(|v| v.abs()).collect();
    let loss = |l: &[f32]| r::bernoulli_rec_forward(l, &x, b, pixels, 1).iter().map(|&v| v as f64).sum::<f64>();
    check_grad("dlogits", &loss, &always, &logits, &r::bernoulli_rec_backward(&logits, &x, &vec![1.0; b], pixels, 1));
    // Rows as samples of fewer inputs, each row weighted: the weighted sum of rows' losses.
    let (coef, repeat) = (random(b, 55, 1.0), 2);
    let loss = |l: &[f32]| {
        r::bernoulli_rec_forward(l, &x, b, pixels, repeat).iter().zip(&coef).map(|(&v, &c)| (v * c) as f64).sum::<f64>()
    };
    check_grad(
        "weighted dlogits",
        &loss,
        &always,
        &logits,
        &r::bernoulli_rec_backward(&logits, &x, &coef, pixels, repeat),
    );
}

#[test]
fn gaussian_rec_backward_reference_should_match_finite_differences() {
    let (b, pixels, repeat) = (4, 9, 2);
    // Log-variances inside the clamp, and two outside it (their gradient is 0, as the clamp's).
    let mut logits: Vec<f32> = random(b * 2 * pixels, 59, 1.5).to_vec();
    logits[pixels] = -8.0;
    logits[3 * pixels + 1] = 6.0;
    let x: Vec<f32> = random(b / repeat * pixels, 60, 1.0).iter().map(|v| v.abs()).collect();
    let coef = random(b, 61, 1.0);
    let loss = |l: &[f32]| {
        r::gaussian_rec_forward(l, &x, b, pixels, repeat).iter().zip(&coef).map(|(&v, &c)| (v * c) as f64).sum::<f64>()
    };
    let inside = |up: &[f32], down: &[f32]| {
        up.iter().zip(down).enumerate().all(|(i, (u, d))| {
            (i / pixels) % 2 == 0
                || ((*u > r::LOGVAR_MIN) == (*d > r::LOGVAR_MIN) && (*u < r::LOGVAR_MAX) == (*d < r::LOGVAR_MAX))
        })
    };
    check_grad(
        "gaussian dlogits",
        &loss,
        &inside,
        &logits,
        &r::gaussian_rec_backward(&logits, &x, &coef, pixels, repeat),
    );
}
