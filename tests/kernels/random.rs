//! Philox against its published answers; the GPU normals against N(0, 1).
use crate::common::*;
use wgvae::launches::GaussianRows;

#[test]
fn philox_reference_should_match_published_known_answers() {
    // Known-answer vectors of Random123 (kat_vectors, philox4x32_10).
    assert_eq!(r::philox4x32_10([0, 0, 0, 0], [0, 0]), [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    assert_eq!(r::philox4x32_10([u32::MAX; 4], [u32::MAX; 2]), [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    assert_eq!(
        r::philox4x32_10([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0]),
        [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]
    );
}

#[test]
fn gpu_normals_should_have_mean_0_variance_1_and_gaussian_tails() {
    // eps from reparam_forward with mu = 0, logvar = 0 is the raw N(0, 1) stream.
    let batch = 4099; // 4099 * 7 = 28693 draws, not a multiple of 4
    let n = batch * LATENT;
    let p = latent_params(batch);
    let cb = gpu::storage_with(&gpu().0, "c", &[counters(11, 0)]);
    let (mb, eb, zb) = (storage(&vec![0.0; batch * 2 * LATENT]), storage(&vec![0.0; n]), storage(&vec![0.0; n]));
    let q =
        GaussianRows { rows: batch, latent: LATENT, counters: &cb, mulv: &mb, d_mulv: &mb, eps: &eb, z: &zb, dz: &zb };
    run(q.reparam_forward(launcher(), &p));
    let e: Vec<f64> = read(&eb, n).iter().map(|&v| v as f64).collect();
    let nf = n as f64;
    let mean = e.iter().sum::<f64>() / nf;
    let var = e.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (nf - 1.0);
    let beyond = |k: f64| e.iter().filter(|v| v.abs() > k).count() as f64 / nf;
    // Tolerances are 5 standard errors of each statistic.
    assert!(mean.abs() < 5.0 / nf.sqrt(), "mean {mean}");
    assert!((var - 1.0).abs() < 5.0 * (2.0 / nf).sqrt(), "variance {var}");
    for (k, p) in [(1.0, 0.317_310_5), (2.0, 0.045_500_3), (3.0, 0.002_699_8)] {
        let se = (p * (1.0 - p) / nf).sqrt();
        assert!((beyond(k) - p).abs() < 5.0 * se, "P(|eps| > {k}) = {} but N(0,1) gives {p}", beyond(k));
    }
    assert!(e.iter().all(|v| v.is_finite() && v.abs() < 7.0), "a draw is not finite or beyond 7 sigma");
    // Different steps give different (uncorrelated) draws.
    let (eps_a, _) = r::reparam_forward(&vec![0.0; 2 * 64], 64, 1, 1, 0, &counters(0, 0));
    let (eps_b, _) = r::reparam_forward(&vec![0.0; 2 * 64], 64, 1, 1, 0, &counters(1, 0));
    let dot: f32 = eps_a.iter().zip(&eps_b).map(|(a, b)| a * b).sum();
    assert!(dot.abs() / 64.0 < 0.5, "draws of consecutive steps look correlated");
}

#[test]
fn draws_log_cos_and_sin_should_be_within_a_few_ulp_of_f64() {
    use wgvae::random::{cos_sin, ln_unit, uniform_open};
    let (mut worst_ln, mut worst_trig) = (0.0f64, 0.0f64);
    // Every 251st of uniform_open's 2^24 values, the ends included.
    for k in (0..1u32 << 24).step_by(251).chain([(1 << 24) - 1]) {
        let u = uniform_open(k << 8);
        let want = (u as f64).ln();
        worst_ln = worst_ln.max((ln_unit(u) as f64 - want).abs() / want.abs());
        let t = std::f32::consts::TAU * u;
        let [c, s] = cos_sin(t);
        worst_trig = worst_trig.max((c as f64 - (t as f64).cos()).abs()).max((s as f64 - (t as f64).sin()).abs());
    }
    // ln_unit: relative, a few ulp; cos_sin: absolute, a few ulp of 1 (WGSL's own allow 2^-11).
    let ulp = f32::EPSILON as f64;
    assert!(worst_ln <= 4.0 * ulp, "ln_unit: {} ulp from ln", worst_ln / ulp);
    assert!(worst_trig <= 4.0 * ulp, "cos_sin: {} ulp from cos and sin", worst_trig / ulp);
}
