//! shaders/toy.wgsl: seed 004's two gradient estimators against their references and their
//! closed forms, and SGD reaching the optimum.
use crate::common::*;
use wgvae::gpu::params::ToyParams;
use wgvae::reference::toy as rt;
use wgvae::toy::{run, Problem};

const NOTES: Problem = Problem { a: 2.0, b: 3.0 };

/// Three steps on the GPU against the references step by step, with 1,000 draws (not a multiple of
/// 64 or 256).
#[test]
fn toy_draws_and_toy_step_should_match_reference() {
    let (g, kernels) = gpu();
    let (draws, steps, lr, seed) = (1000, 3, 0.05, 11);
    let got = run(g, kernels, NOTES, 0.25, (draws, steps), lr, seed).unwrap();
    let p = ToyParams { draws: draws as u32, a: NOTES.a, b: NOTES.b, lr, seed };
    let (mut theta, mut step) = ([0.25f32; 2], 0u32);
    let mut trajectory = vec![0.0; (steps + 1) * 2];
    let mut moments = vec![0.0; steps * 4];
    trajectory[..2].copy_from_slice(&theta);
    for _ in 0..steps {
        let grads = rt::toy_draws(&p, theta, step);
        rt::toy_step(&p, &grads, &mut theta, &mut step, &mut trajectory, &mut moments);
    }
    let flat_t: Vec<f32> = got.trajectory.iter().flatten().copied().collect();
    let flat_m: Vec<f32> = got.moments.iter().flat_map(|m| [m[0].0, m[0].1, m[1].0, m[1].1]).collect();
    // The steps move theta by lr times means of functions of the draws.
    assert_close("toy trajectory", &flat_t, &trajectory, DRAWN_REL);
    assert_close("toy moments", &flat_m, &moments, DRAWN_REL);
}

/// The closed forms at the notes' a = 2, b = 3, theta = 0 (mu = 3): F' = 2 a mu = 12, Var of the
/// reparameterization 4 a^2 = 16, of REINFORCE a^2 (mu^4 + 14 mu^2 + 15) = 888.
#[test]
fn toy_closed_forms_should_match_hand_derivations() {
    assert_eq!(NOTES.exact_grad(0.0), 12.0);
    assert_eq!(NOTES.moment(0, 0.0, 1), 12.0, "REINFORCE is unbiased");
    assert_eq!(NOTES.moment(1, 0.0, 1), 12.0, "the reparameterization is unbiased");
    assert!((NOTES.variance(1, 0.0) - 16.0).abs() < 1e-9);
    assert!((NOTES.variance(0, 0.0) - 888.0).abs() < 1e-9);
    // A Gaussian's fourth central moment is 3 sigma^4.
    assert!((NOTES.central_fourth(1, 0.0) - 3.0 * 256.0).abs() < 1e-6);
}

/// 2^20 draws at theta_0: each estimator's mean within 5 standard errors of F'(theta_0), and its
/// sample variance within 5 of its own standard errors ((mu_4 - sigma^4) / N, from the closed forms)
/// of the closed-form variance.
#[test]
fn toy_estimators_should_agree_with_their_closed_forms() {
    let (g, kernels) = gpu();
    let n = 1 << 20;
    for (problem, theta) in [(NOTES, 0.0), (Problem { a: -0.5, b: 1.0 }, 0.7)] {
        let got = run(g, kernels, problem, theta as f32, (n, 1), 0.01, 5).unwrap();
        for e in 0..2 {
            let (mean, var) = got.moments[0][e];
            let exact_var = problem.variance(e, theta);
            let se_mean = (exact_var / n as f64).sqrt();
            let exact = problem.exact_grad(theta);
            assert!(
                (mean as f64 - exact).abs() < 5.0 * se_mean,
                "estimator {e}: mean {mean} vs F' = {exact} (standard error {se_mean})"
            );
            let se_var = ((problem.central_fourth(e, theta) - exact_var * exact_var) / n as f64).sqrt();
            assert!(
                (var as f64 - exact_var).abs() < 5.0 * se_var + 1e-4 * exact_var,
                "estimator {e}: variance {var} vs {exact_var} (standard error {se_var})"
            );
        }
    }
}

#[test]
fn toy_sgd_should_end_near_the_optimum() {
    let (g, kernels) = gpu();
    let got = run(g, kernels, NOTES, 0.0, (1000, 150), 0.05, 3).unwrap();
    let last = got.trajectory.last().expect("a trajectory");
    for (e, t) in last.iter().enumerate() {
        assert!((*t as f64 - NOTES.optimum()).abs() < 0.1, "estimator {e} ended at {t}, optimum -1.5");
    }
}
