//! shaders/latent.wgsl through its launcher (launches/latent.rs): the reparameterized sample and
//! the Gaussian KL.
use crate::common::*;
use wgvae::launches::latent::GaussianRows;

/// The launcher over test buffers: B rows of LATENT dimensions.
fn rows<'a>(buffers: [&'a wgpu::Buffer; 6]) -> GaussianRows<'a> {
    let [counters, mulv, d_mulv, eps, z, dz] = buffers;
    GaussianRows { rows: B, latent: LATENT, counters, mulv, d_mulv, eps, z, dz }
}

#[test]
fn reparam_forward_should_match_reference() {
    let mulv = random(B * 2 * LATENT, 10, 1.5);
    let c = counters(5, 26);
    let (p, cb, mb) = (latent_params(B), gpu::storage_with(&gpu().0, "counters", &[c]), storage(&mulv));
    let (eb, zb, unused) = (storage(&[0.0; B * LATENT]), storage(&[0.0; B * LATENT]), storage(&[0.0; 4]));
    run(rows([&cb, &mb, &unused, &eb, &zb, &unused]).reparam_forward(launcher(), &p));
    let (eps, z) = r::reparam_forward(&mulv, B, LATENT, 1234, 3, &c);
    assert_close("reparam_forward eps", &read(&eb, B * LATENT), &eps, DRAW_ABS);
    // z = mu + exp(logvar / 2) eps: eps's error times the largest sigma.
    let sigma = mulv.iter().map(|v| (0.5 * v).exp()).fold(1.0f32, f32::max);
    assert_close("reparam_forward z", &read(&zb, B * LATENT), &z, DRAW_ABS * sigma);
}

#[test]
fn reparam_backward_should_match_reference() {
    let (mulv, eps, dz) = (random(B * 2 * LATENT, 11, 1.5), random(B * LATENT, 12, 2.0), random(B * LATENT, 13, 1.0));
    let p = latent_params(B);
    let (mb, eb, dzb, db) = (storage(&mulv), storage(&eps), storage(&dz), storage(&[0.0; B * 2 * LATENT]));
    let unused = storage(&[0.0; 4]);
    run(rows([&unused, &mb, &db, &eb, &unused, &dzb]).reparam_backward(launcher(), &p));
    assert_close(
        "reparam_backward",
        &read(&db, B * 2 * LATENT),
        &r::reparam_backward(&dz, &eps, &mulv, B, LATENT),
        1e-5,
    );
}

#[test]
fn gaussian_kl_forward_should_match_reference() {
    let mulv = random(B * 2 * LATENT, 14, 2.0);
    let (p, mb, kb) = (latent_params(B), storage(&mulv), storage(&[0.0; B]));
    let unused = storage(&[0.0; 4]);
    run(rows([&unused, &mb, &unused, &unused, &unused, &unused]).kl_forward(launcher(), &p, &kb));
    assert_close("gaussian_kl_forward", &read(&kb, B), &r::gaussian_kl_forward(&mulv, B, LATENT), 1e-5);
}

#[test]
fn reparam_kl_backward_should_match_reference_with_beta_warmup_and_free_bits() {
    let (mulv, eps, dz) = (random(B * 2 * LATENT, 15, 2.0), random(B * LATENT, 12, 2.0), random(B * LATENT, 13, 1.0));
    // A free-bits threshold between the dimensions' mean KLs, so some dimensions pass and some do not.
    let mut means: Vec<f64> = (0..LATENT).map(|j| dim_mean_kl(&mulv, B, LATENT, j)).collect();
    means.sort_by(f64::total_cmp);
    let free_bits = ((means[LATENT / 2] + means[LATENT / 2 - 1]) / 2.0) as f32;
    let through_sample = r::reparam_backward(&dz, &eps, &mulv, B, LATENT);
    // (beta, warm-up steps, free bits, sample scale) at optimizer step 7.
    for (beta, warmup, fb, scale) in [(1.0, 0, 0.0, 1.0), (0.5, 20, 0.0, 1.0), (2.0, 0, free_bits, 0.25)] {
        let p = latent_params_with(B, beta, warmup, fb, scale);
        let (mb, eb, dzb) = (storage(&mulv), storage(&eps), storage(&dz));
        let db = storage(&[f32::NAN; B * 2 * LATENT]); // written, not added to
        let cb = gpu::storage_with(&gpu().0, "c", &[counters(7, 0)]);
        let unused = storage(&[0.0; 4]);
        let weight = r::kl_weight(beta, warmup, 7) * scale;
        // With free bits the gate per dimension first, then the gated gradient (the launcher's two
        // launches, as the trainer runs them).
        for launch in rows([&cb, &mb, &db, &eb, &unused, &dzb]).reparam_kl_backward(launcher(), &p, fb > 0.0) {
            run(launch);
        }
        let want = if fb > 0.0 {
            let want_gate = r::free_bits_gate(&mulv, B, LATENT, fb);
            r::reparam_kl_backward_gated(&dz, &eps, &mulv, &want_gate, B, LATENT, weight)
        } else {
            r::reparam_kl_backward(&dz, &eps, &mulv, B, LATENT, weight)
        };
        // The reference against its two parts: the sample's gradient, then the KL's (free bits
        // through the objective's own gate).
        let mut parts = through_sample.clone();
        r::gaussian_kl_backward(&mulv, &mut parts, B, LATENT, weight, fb);
        assert_eq!(want, parts, "reparam_kl_backward reference = reparam_backward + gaussian_kl_backward");
        assert_close(
            &format!("reparam_kl_backward beta {beta} warm-up {warmup} free bits {fb}"),
            &read(&db, B * 2 * LATENT),
            &want,
            1e-5,
        );
        if fb > 0.0 {
            let untouched = (0..LATENT)
                .filter(|&j| (0..B).all(|b| want[b * 2 * LATENT + j] == through_sample[b * 2 * LATENT + j]))
                .count();
            assert!(untouched > 0 && untouched < LATENT, "free bits should stop some dimensions, not all: {untouched}");
        }
    }
    assert_eq!(r::kl_weight(0.5, 20, 7), 0.5 * 7.0 / 20.0);
    assert_eq!(r::kl_weight(0.5, 20, 70), 0.5);
}
