//! The seeds' estimators and objectives from the command line: each trains, its loss falls, and
//! its flags are checked.
use super::{assert_fails_with, small_mnist, stderr, wgvae};

/// Validation losses per epoch of a short run with `extra` flags.
fn val_losses(extra: &[&str]) -> Vec<f64> {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let run = out.to_str().expect("utf-8");
    let mut args =
        vec!["train", "--data", small_mnist(), "--epochs", "2", "--hidden", "32", "--latent", "4", "--out", run];
    args.extend(extra);
    let o = wgvae(&args);
    assert!(o.status.success(), "train {extra:?} failed: {}", stderr(&o));
    for png in ["samples.png", "reconstructions.png", "curves.png"] {
        assert!(out.join(png).is_file(), "train {extra:?} wrote no {png}");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    csv.lines().skip(1).map(|l| l.split(',').nth(4).expect("val_loss").parse().expect("number")).collect()
}

fn assert_loss_falls(extra: &[&str]) {
    let v = val_losses(extra);
    assert!(
        v.len() == 2 && v.iter().all(|x| x.is_finite()) && v[1] < v[0],
        "train {extra:?}: validation loss {v:?} did not fall"
    );
}

#[test]
fn iwae_training_should_lower_the_loss() {
    assert_loss_falls(&["--objective", "iwae", "--k", "4"]);
}

#[test]
fn score_function_training_should_lower_the_loss_with_each_baseline() {
    assert_loss_falls(&["--estimator", "score", "--baseline", "loo", "--mc-samples", "3"]);
    assert_loss_falls(&["--estimator", "score", "--baseline", "mean"]);
}

#[test]
fn beta_warmup_and_free_bits_should_train() {
    assert_loss_falls(&["--beta", "0.5", "--kl-warmup", "1", "--free-bits", "0.1", "--mc-samples", "2"]);
}

#[test]
fn gaussian_decoder_training_should_lower_the_loss() {
    assert_loss_falls(&["--decoder", "gaussian"]);
}

#[test]
fn gradvar_should_write_a_table_and_a_plot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("gv");
    let o = wgvae(&[
        "gradvar",
        "--repeats",
        "4",
        "--samples",
        "2",
        "--hidden",
        "16",
        "--latent",
        "3",
        "--batch",
        "16",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "gradvar failed: {}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("gradvar.csv")).expect("gradvar.csv");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "header and 4 estimators: {csv}");
    assert!(rows[1].starts_with("reparam,2,4,") && rows[4].starts_with("score, leave-one-out,"), "{csv}");
    image::open(out.join("gradvar.png")).expect("gradvar.png decodes");
}

#[test]
fn objective_flags_that_do_not_combine_should_be_rejected() {
    assert_fails_with(&["train", "--objective", "iwae", "--estimator", "score"], &["--objective iwae", "reparam"]);
    assert_fails_with(&["train", "--k", "5"], &["--k", "iwae"]);
    assert_fails_with(&["train", "--baseline", "loo", "--estimator", "score"], &["--baseline loo", "--mc-samples"]);
    assert_fails_with(&["train", "--baseline", "mean"], &["--baseline", "--estimator score"]);
    assert_fails_with(&["train", "--objective", "iwae", "--beta", "2"], &["--beta"]);
    assert_fails_with(&["train", "--free-bits", "-1"], &["--free-bits"]);
    assert_fails_with(&["train", "--mc-samples", "0"], &["--mc-samples 0"]);
    assert_fails_with(&["train", "--objective", "iwae", "--k", "1000", "--batch", "128"], &["65536 rows"]);
    assert_fails_with(&["gradvar", "--estimator", "score"], &["gradvar compares the estimators"]);
    assert_fails_with(&["gradvar", "--repeats", "1"], &["--repeats 1"]);
}

#[test]
fn conditional_training_should_lower_the_loss_and_sample_a_row_per_class() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cvae");
    let o = wgvae(&[
        "train",
        "--data",
        small_mnist(),
        "--conditional",
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--latent",
        "4",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "train --conditional failed: {}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    let v: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(4).expect("val").parse().expect("number")).collect();
    assert!(v[1] < v[0], "validation loss {v:?} did not fall");
    let grid = image::open(out.join("samples.png")).expect("samples.png");
    assert_eq!((grid.width(), grid.height()), (8 * 30 + 2, 10 * 30 + 2), "a row of 8 per class");
    let ck = wgvae::checkpoint::load(&out).expect("checkpoint");
    assert_eq!(ck.config.classes(), 10);
    let names: Vec<String> = wgvae::checkpoint::tensor_slots(&wgvae::model::Model::new(ck.config.architecture()))
        .into_iter()
        .map(|t| format!("{} {:?}", t.name, t.shape))
        .collect();
    assert!(
        names.contains(&"prior.weight [8, 12]".to_string()) && names.contains(&"fc1.weight [32, 796]".to_string()),
        "{names:?}"
    );

    let run = out.to_str().expect("utf-8");
    let three = dir.path().join("three.png");
    let o =
        wgvae(&["sample", "--checkpoint", run, "--class", "3", "--n", "16", "--out", three.to_str().expect("utf-8")]);
    assert!(o.status.success(), "sample --class failed: {}", stderr(&o));
    assert_fails_with(&["sample", "--checkpoint", run, "--class", "10"], &["--class 10", "0 to 9"]);
    assert_fails_with(&["eval", "--checkpoint", run, "--iw-samples", "2"], &["conditional", "not supported yet"]);
    assert_fails_with(&["manifold", "--checkpoint", run], &["conditional"]);
    assert_fails_with(&["train", "--conditional", "--objective", "iwae"], &["--conditional"]);
}

#[test]
fn categorical_latents_should_train_and_sample_one_hot_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("cat");
    let o = wgvae(&[
        "train",
        "--data",
        small_mnist(),
        "--latent",
        "categorical",
        "--groups",
        "6",
        "--categories",
        "5",
        "--tau-start",
        "2",
        "--tau-end",
        "0.5",
        "--epochs",
        "2",
        "--hidden",
        "32",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "train --latent categorical failed: {}", stderr(&o));
    let csv = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    let v: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(4).expect("val").parse().expect("number")).collect();
    assert!(v[1] < v[0], "validation loss {v:?} did not fall");
    let ck = wgvae::checkpoint::load(&out).expect("checkpoint");
    assert_eq!((ck.config.categorical(), ck.config.latent_width()), (Some((6, 5)), 30));
    let run = out.to_str().expect("utf-8");
    for cmd in ["sample", "interpolate", "reconstruct"] {
        let o = wgvae(&[cmd, "--checkpoint", run]);
        assert!(o.status.success(), "{cmd} on a categorical model failed: {}", stderr(&o));
    }
    assert_fails_with(&["eval", "--checkpoint", run, "--iw-samples", "2"], &["categorical"]);
    assert_fails_with(&["refine", "--checkpoint", run], &["categorical"]);
    assert_fails_with(&["manifold", "--checkpoint", run], &["categorical"]);
    assert_fails_with(&["train", "--latent", "categorical", "--categories", "1"], &["--categories 1"]);
    assert_fails_with(&["train", "--latent", "categorical", "--tau-end", "0"], &["--tau-end 0"]);
    assert_fails_with(&["train", "--latent", "categorical", "--objective", "iwae"], &["--latent categorical"]);
    assert_fails_with(&["train", "--latent", "sometimes"], &["sometimes", "categorical"]);
}

#[test]
fn per_datapoint_inference_should_train_resume_exactly_and_refine_from_the_prior() {
    let dir = tempfile::tempdir().expect("temp dir");
    let flags = [
        ["--data", small_mnist()].as_slice(),
        &["--inference", "per-datapoint", "--inner-steps", "2", "--hidden", "32", "--latent", "4", "--epochs", "2"],
    ]
    .concat();
    let (straight, cut) = (dir.path().join("straight"), dir.path().join("cut"));
    let o = wgvae(&[&["train", "--out", straight.to_str().expect("utf-8")][..], &flags].concat());
    assert!(o.status.success(), "train --inference per-datapoint failed: {}", stderr(&o));
    let csv = std::fs::read_to_string(straight.join("metrics.csv")).expect("metrics.csv");
    let v: Vec<f64> = csv.lines().skip(1).map(|l| l.split(',').nth(4).expect("val").parse().expect("number")).collect();
    assert!(v[1] < v[0], "validation loss {v:?} did not fall");

    // Interrupted mid-epoch and resumed: the same table and weights, to the bit.
    let o = wgvae(
        &[&["train", "--out", cut.to_str().expect("utf-8"), "--interrupt-after-steps", "20"][..], &flags].concat(),
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let o = wgvae(&["train", "--resume", cut.to_str().expect("utf-8")]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    let (a, b) =
        (wgvae::checkpoint::load(&straight).expect("straight"), wgvae::checkpoint::load(&cut).expect("resumed"));
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&a.params), bits(&b.params), "weights differ after resume");
    let (ta, tb) = (a.table.expect("table"), b.table.expect("table"));
    assert_eq!(ta[0].len(), 1800 * 8);
    assert!(ta.iter().zip(&tb).all(|(x, y)| bits(x) == bits(y)), "the per-datapoint table differs after resume");

    let run = straight.to_str().expect("utf-8");
    let o = wgvae(&["refine", "--checkpoint", run, "--steps", "20", "--max-images", "64", "--draws", "2"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success() && out.contains("prior q = N(0, I)"), "refine: {out}{}", stderr(&o));
    assert_fails_with(&["reconstruct", "--checkpoint", run], &["per-datapoint"]);
    assert_fails_with(&["eval", "--checkpoint", run, "--iw-samples", "2"], &["per-datapoint"]);
    assert_fails_with(
        &["train", "--inference", "per-datapoint", "--objective", "iwae"],
        &["--inference per-datapoint"],
    );
}
