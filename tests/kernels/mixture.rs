//! shaders/mixture.wgsl and EM on the GPU (src/mixture/em.rs): iterations against the CPU
//! reference, EM's objective never falling, and the parameters of known mixtures recovered.
use crate::common::*;
use wgvae::data::{ImageShape, Split};
use wgvae::mixture::em::{log_densities, GpuMixture};
use wgvae::mixture::{initial_totals, Family, Spec};
use wgvae::reference::mixture::{em_iteration, m_step, MixtureState};

fn split(images: Vec<u8>, pixels: usize) -> Split {
    let n = images.len() / pixels;
    Split { images, labels: vec![0; n], pixels }
}

/// `n` images of `d` pixels from a known mixture: component c = i % weights' cumulative draw;
/// Bernoulli pixels are 0 or 255, Gaussian ones rounded to bytes.
fn draw(family: Family, means: &[Vec<f32>], weights: &[f64], sd: f32, n: usize, seed: u64) -> Split {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let d = means[0].len();
    let mut images = Vec::with_capacity(n * d);
    for _ in 0..n {
        let u: f64 = rng.random();
        let mut acc = 0.0;
        let c = weights.iter().position(|w| {
            acc += w;
            acc > u
        });
        let m = &means[c.unwrap_or(0)];
        for &mu in m {
            let v = match family {
                Family::Bernoulli => (rng.random::<f32>() < mu) as u8 as f32,
                Family::Gaussian => {
                    let (u1, u2): (f32, f32) = (rng.random::<f32>().max(1e-9), rng.random());
                    mu + sd * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
                }
            };
            images.push((v.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    split(images, d)
}

fn spec(family: Family, components: usize, pixels: usize) -> Spec {
    Spec { components, family, pixels, pseudo_count: 0.5, var_floor: 1e-3 }
}

fn shape(pixels: usize) -> ImageShape {
    ImageShape { channels: 1, height: 1, width: pixels }
}

/// Three iterations on 150 training rows in chunks of 64 (the last one short) and 37 validation
/// rows, K = 7 (padded to 8), 20 pixels: every mixture kernel, the E-step product and the
/// statistics against the reference, iteration by iteration; for both families.
#[test]
fn mixture_em_should_match_reference_iterations() {
    let (g, kernels) = gpu();
    for family in [Family::Bernoulli, Family::Gaussian] {
        let s = spec(family, 7, 20);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let bytes = |n: usize, rng: &mut rand::rngs::StdRng| (0..n * 20).map(|_| rng.random::<u8>()).collect();
        let (train, val) = (split(bytes(150, &mut rng), 20), split(bytes(37, &mut rng), 20));
        let (initial, rows) = initial_totals(&s, &train, 9);
        assert_eq!(rows.len(), 7);
        let em = GpuMixture::new((g, kernels), s, shape(20), (&train, &val), &initial, 64).unwrap();
        let (kp, d) = (s.padded(), s.pixels);
        let mut state = MixtureState {
            nat: vec![0.0; s.stats_len()],
            means: vec![0.0; kp * d],
            variances: vec![s.var_floor; kp * d],
            log_weights: vec![0.0; kp],
        };
        m_step(&s.params(0, 0, 7), &initial, &mut state);
        let p = s.params(0, 0, train.len());
        for i in 0..3 {
            let (got_train, _) = em.iterate(g).unwrap();
            let want: f64 = em_iteration(&p, &train.images, 64, &mut state).iter().map(|&v| v as f64).sum();
            let tol = 1e-4 * want.abs().max(1.0);
            assert!((got_train - want).abs() < tol, "{family:?} iteration {i}: GPU {got_train} reference {want}");
        }
        let fit = em.read(g).unwrap();
        assert_close("mixture means", &fit.means, &state.means[..7 * d], 1e-3);
        assert_close("mixture log weights", &fit.log_weights, &state.log_weights[..7], 1e-3);
        if family == Family::Gaussian {
            assert_close("mixture variances", &fit.variances, &state.variances[..7 * d], 1e-3);
        }
        let (got_train, got_val) = em.evaluate(g).unwrap();
        let mut want_val = vec![0.0; val.len()];
        let mut probe = state.clone();
        let pv = s.params(0, 0, val.len());
        want_val.copy_from_slice(&em_iteration(&pv, &val.images, 64, &mut probe));
        let want_train = em_iteration(&p, &train.images, 64, &mut state.clone());
        assert_close("mixture train loglik", &got_train, &want_train, 2e-3);
        assert_close("mixture val loglik", &got_val, &want_val, 2e-3);
        // A file's mixture is scored from the host's E-step weights: the GPU M-step's, padding too.
        let from_file = log_densities((g, kernels), &fit, &val).unwrap();
        assert_close("mixture val loglik from its parameters", &from_file, &got_val, 1e-4);
    }
}

/// EM with the smoothing prior maximises log-likelihood + log prior: that sum never falls (to
/// float rounding), and here the log-likelihood alone does not either.
#[test]
fn mixture_em_should_never_lower_its_objective() {
    let (g, kernels) = gpu();
    for family in [Family::Bernoulli, Family::Gaussian] {
        let truth: Vec<Vec<f32>> =
            (0..4).map(|c| (0..36).map(|j| if (j / 9) == c { 0.8 } else { 0.15 }).collect()).collect();
        let train = draw(family, &truth, &[0.25; 4], 0.2, 900, 1);
        let val = draw(family, &truth, &[0.25; 4], 0.2, 100, 2);
        let s = spec(family, 6, 36);
        let (initial, _) = initial_totals(&s, &train, 4);
        let em = GpuMixture::new((g, kernels), s, shape(36), (&train, &val), &initial, 256).unwrap();
        let (mut last_objective, mut last_ll) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
        for i in 0..25 {
            let fit = em.read(g).unwrap();
            let (ll, _) = em.iterate(g).unwrap();
            let objective = ll + fit.log_prior();
            let slack = 1e-6 * objective.abs();
            assert!(
                objective >= last_objective - slack,
                "{family:?} iteration {i}: objective {last_objective} -> {objective}"
            );
            assert!(ll >= last_ll - slack, "{family:?} iteration {i}: log-likelihood {last_ll} -> {ll}");
            (last_objective, last_ll) = (objective, ll);
        }
    }
}

/// Data from known mixtures of three components: EM with K = 3 recovers the means (and the
/// Gaussian's variances) and the weights up to a permutation of the components.
#[test]
fn mixture_em_should_recover_a_known_mixture() {
    let (g, kernels) = gpu();
    let weights = [0.5, 0.3, 0.2];
    let d = 24;
    let truth: Vec<Vec<f32>> =
        (0..3).map(|c| (0..d).map(|j| if j % 3 == c { 0.85 } else { 0.1 + 0.02 * c as f32 }).collect()).collect();
    for (family, sd, seed) in [(Family::Bernoulli, 0.0, 5), (Family::Gaussian, 0.05, 6)] {
        let train = draw(family, &truth, &weights, sd, 6000, seed);
        let val = draw(family, &truth, &weights, sd, 100, seed + 10);
        let s = spec(family, 3, d);
        let (initial, _) = initial_totals(&s, &train, 7);
        let em = GpuMixture::new((g, kernels), s, shape(d), (&train, &val), &initial, 4096).unwrap();
        for _ in 0..60 {
            em.iterate(g).unwrap();
        }
        let fit = em.read(g).unwrap();
        for (c, mean) in truth.iter().enumerate() {
            // The fitted component closest to the true one.
            let dist = |k: usize| -> f32 { (0..d).map(|j| (fit.means[k * d + j] - mean[j]).abs()).sum() };
            let k = (0..3).min_by(|&a, &b| dist(a).total_cmp(&dist(b))).unwrap();
            let worst = (0..d).map(|j| (fit.means[k * d + j] - mean[j]).abs()).fold(0.0, f32::max);
            assert!(worst < 0.05, "{family:?} component {c}: means off by up to {worst}");
            let w = (fit.log_weights[k] as f64).exp();
            assert!((w - weights[c]).abs() < 0.03, "{family:?} component {c}: weight {w}, true {}", weights[c]);
            if family == Family::Gaussian {
                // Rounding to bytes adds 1 / (12 * 255^2) to each variance.
                let want = sd * sd + 1.0 / (12.0 * 255.0 * 255.0);
                for j in 0..d {
                    let v = fit.variances[k * d + j];
                    assert!(
                        (v / want - 1.0).abs() < 0.25,
                        "{family:?} component {c} pixel {j}: variance {v}, true {want}"
                    );
                }
            }
        }
    }
}
