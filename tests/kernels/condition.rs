//! shaders/condition.wgsl, gather_labels and the two-Gaussian KL.
use crate::common::*;
use wgvae::launches::{condition, GaussianRows};
use wgvae::reference::condition as rc;

#[test]
fn copy_columns_and_one_hot_columns_should_match_reference() {
    let (rows, src_w, dst_w) = (13, 37, 50);
    let src = random(rows * src_w, 80, 1.0);
    let start = random(rows * dst_w, 81, 1.0);
    let (sb, db) = (storage(&src), storage(&start));
    run(condition::copy_columns(launcher(), rows, (&sb, src_w, 5), (&db, dst_w, 3), 30));
    let mut want = start.clone();
    rc::copy_columns(&src, &mut want, rows, src_w, dst_w, 30, 5, 3);
    assert_close("copy_columns", &read(&db, rows * dst_w), &want, 0.0);

    let labels: Vec<u32> = (0..5).map(|i| (i * 7 % 10) as u32).collect();
    let lb = gpu::storage_with(&gpu().0, "labels", &labels);
    run(condition::one_hot_columns(launcher(), rows, &lb, 3, 12, (&db, dst_w, 37)));
    rc::one_hot_columns(&labels, &mut want, rows, dst_w, 12, 37, 3);
    assert_close("one_hot_columns", &read(&db, rows * dst_w), &want, 0.0);
}

#[test]
fn gather_labels_should_match_reference() {
    let labels: Vec<u32> = (0..29).map(|i| (i * 3 % 10) as u32).collect();
    let order: Vec<u32> = (0..29).rev().collect();
    let c = counters(0, 20);
    let (cb, ob, lb) = (
        gpu::storage_with(&gpu().0, "c", &[c]),
        gpu::storage_with(&gpu().0, "o", &order),
        gpu::storage_with(&gpu().0, "l", &labels),
    );
    let yb = gpu::storage_with(&gpu().0, "y", &[99u32; B]);
    run(wgvae::launches::gather_labels(launcher(), (&lb, &ob, &cb), B, 29, &yb));
    assert_eq!(gpu::read::<u32>(&gpu().0, &yb, 0, B).unwrap(), r::gather_labels(&labels, &order, B, 29, &c));
}

#[test]
fn gaussian_kl2_should_match_reference() {
    let (mulv, prior, start) =
        (random(B * 2 * LATENT, 82, 1.5), random(B * 2 * LATENT, 83, 1.5), random(B * 2 * LATENT, 84, 1.0));
    let p = latent_params_with(B, 0.5, 10, 0.0, 0.5);
    let cb = gpu::storage_with(&gpu().0, "c", &[counters(4, 0)]);
    let (mb, pb, kb) = (storage(&mulv), storage(&prior), storage(&[0.0; B]));
    let unused = storage(&[0.0; 4]);
    let q = |d_mulv| GaussianRows {
        rows: B,
        latent: LATENT,
        counters: &cb,
        mulv: &mb,
        d_mulv,
        eps: &unused,
        z: &unused,
        dz: &unused,
    };
    run(q(&unused).kl2_forward(launcher(), &p, &pb, &kb));
    assert_close("gaussian_kl2_forward", &read(&kb, B), &r::gaussian_kl2_forward(&mulv, &prior, B, LATENT), 1e-5);
    let (db, dpb) = (storage(&start), storage(&[0.0; B * 2 * LATENT]));
    run(q(&db).kl2_backward(launcher(), &p, &pb, &dpb));
    let mut want = start.clone();
    let want_prior = r::gaussian_kl2_backward(&mulv, &prior, &mut want, B, LATENT, r::kl_weight(0.5, 10, 4) * 0.5);
    assert_close("gaussian_kl2_backward dmulv", &read(&db, B * 2 * LATENT), &want, 1e-5);
    assert_close("gaussian_kl2_backward dprior", &read(&dpb, B * 2 * LATENT), &want_prior, 1e-5);
    // With the prior at N(0, I) it is the standard KL.
    let standard = vec![0.0; B * 2 * LATENT];
    assert_close(
        "KL to N(0, I)",
        &r::gaussian_kl2_forward(&mulv, &standard, B, LATENT),
        &r::gaussian_kl_forward(&mulv, B, LATENT),
        1e-5,
    );
}

#[test]
fn gaussian_kl2_backward_reference_should_match_finite_differences() {
    let (b, latent) = (3, 4);
    let (mulv, prior) = (random(b * 2 * latent, 85, 1.0), random(b * 2 * latent, 86, 1.0));
    let mut dq = vec![0.0; mulv.len()];
    let dp = r::gaussian_kl2_backward(&mulv, &prior, &mut dq, b, latent, 0.7);
    let kl =
        |q: &[f32], p: &[f32]| 0.7 * r::gaussian_kl2_forward(q, p, b, latent).iter().map(|&v| v as f64).sum::<f64>();
    check_grad("kl2 dq", &|q: &[f32]| kl(q, &prior), &always, &mulv, &dq);
    check_grad("kl2 dp", &|p: &[f32]| kl(&mulv, p), &always, &prior, &dp);
}
