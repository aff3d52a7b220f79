//! The notes' demonstrations: eval's table over K and proposals, and the `toy`, `mixture` and
//! `nce` commands.
use crate::checkpoints::{s, trained};
use crate::{assert_fails_with, stderr, wgvae};

struct Row {
    proposal: String,
    k: usize,
    nll: f64,
    stderr: f64,
    ess: f64,
}

fn read_importance_csv(path: &std::path::Path) -> Vec<Row> {
    let text = std::fs::read_to_string(path).expect("importance.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("proposal,k,nll,stderr,ess"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let num = |i: usize| f[i].parse::<f64>().unwrap_or_else(|_| panic!("bad number in {l}"));
            Row { proposal: f[0].to_string(), k: num(1) as usize, nll: num(2), stderr: num(3), ess: num(4) }
        })
        .collect()
}

#[test]
fn eval_should_tabulate_each_k_and_proposal_with_the_prior_worse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let args = ["--iw-samples", "1", "10", "100", "--proposal", "encoder", "prior", "--max-images", "60"];
    let o = wgvae(&[&["eval", "--checkpoint", s(trained()), "--out", s(dir.path())][..], &args].concat());
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("mean ESS") && out.contains("one-sample negative ELBO"), "{out}");
    let rows = read_importance_csv(&dir.path().join("importance.csv"));
    assert_eq!(rows.len(), 6);
    let png = image::open(dir.path().join("importance.png")).expect("importance.png decodes");
    assert!(png.width() > 600 && png.height() > 300);
    for r in &rows {
        assert!(r.ess >= 1.0 - 1e-4 && r.ess <= r.k as f64 * (1.0 + 1e-4), "ESS {} outside [1, {}]", r.ess, r.k);
        assert!(r.stderr > 0.0 && r.nll.is_finite());
    }
    for proposal in ["encoder", "prior"] {
        let line: Vec<&Row> = rows.iter().filter(|r| r.proposal == proposal).collect();
        assert_eq!(line.iter().map(|r| r.k).collect::<Vec<_>>(), [1, 10, 100]);
        for w in line.windows(2) {
            // The estimates of one image are correlated across K, so the images' standard error
            // bounds any rise generously.
            assert!(
                w[1].nll <= w[0].nll + w[0].stderr,
                "{proposal}: K = {} gave {} after {}",
                w[1].k,
                w[1].nll,
                w[0].nll
            );
        }
    }
    for k in [1, 10, 100] {
        let at = |p: &str| rows.iter().find(|r| r.proposal == p && r.k == k).expect("row");
        let (enc, prior) = (at("encoder"), at("prior"));
        assert!(prior.nll > enc.nll, "K = {k}: the prior's {} is not worse than the encoder's {}", prior.nll, enc.nll);
        assert!(prior.ess / k as f64 <= enc.ess / k as f64 + 1e-6 || k == 1, "K = {k}: the prior's ESS is higher");
    }
}

#[test]
fn eval_should_reject_bad_k_and_proposals() {
    let run = s(trained());
    assert_fails_with(&["eval", "--checkpoint", run, "--iw-samples", "10", "0"], &["--iw-samples 0", "between 1"]);
    assert_fails_with(&["eval", "--checkpoint", run, "--proposal", "posterior"], &["posterior", "encoder", "prior"]);
}

#[test]
fn toy_should_write_its_table_and_picture_and_end_near_the_optimum() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = wgvae(&["toy", "--samples", "2000", "--steps", "120", "--out", s(dir.path())]);
    assert!(o.status.success(), "toy failed: {}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("toy.csv")).expect("toy.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("estimator,theta0,grad_mean,grad_var,exact_grad,theta_final"));
    let rows: Vec<Vec<String>> = lines.map(|l| l.split(',').map(String::from).collect()).collect();
    assert_eq!(rows.iter().map(|r| r[0].as_str()).collect::<Vec<_>>(), ["reinforce", "reparameterization"]);
    for r in &rows {
        let num = |i: usize| r[i].parse::<f64>().expect("a number");
        assert_eq!(num(4), 12.0, "F'(0) = 2 a b");
        assert!((num(5) + 1.5).abs() < 0.1, "{} ended at {}", r[0], num(5));
    }
    let grad_var = |i: usize| rows[i][3].parse::<f64>().expect("a number");
    assert!(grad_var(0) > 10.0 * grad_var(1), "REINFORCE's variance should dwarf the reparameterization's");
    image::open(dir.path().join("toy.png")).expect("toy.png decodes");
}

#[test]
fn toy_should_reject_bad_flags() {
    assert_fails_with(&["toy", "--a", "0"], &["--a 0", "nothing to optimise"]);
    assert_fails_with(&["toy", "--b", "NaN"], &["--b NaN", "finite"]);
    assert_fails_with(&["toy", "--theta", "inf"], &["--theta inf", "finite"]);
    assert_fails_with(&["toy", "--samples", "1"], &["--samples 1", "at least 2"]);
    assert_fails_with(&["toy", "--lr", "0"], &["--lr 0"]);
    let dir = tempfile::tempdir().expect("temp dir");
    assert_fails_with(&["toy", "--lr", "2", "--steps", "200", "--out", s(dir.path())], &["diverged", "1 / a^2"]);
    assert!(!dir.path().join("toy.csv").exists(), "a diverged run writes no table");
}

#[test]
fn mixture_should_fit_and_write_its_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let o = wgvae(&["mixture", "--components", "5", "--iterations", "4", "--out", s(dir.path())]);
    assert!(o.status.success(), "mixture failed: {}", stderr(&o));
    let text = std::fs::read_to_string(dir.path().join("metrics.csv")).expect("metrics.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("iteration,train_loglik,val_loglik,objective,seconds"));
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect()).collect();
    assert_eq!(rows.len(), 5, "the start and 4 iterations");
    for w in rows.windows(2) {
        assert!(w[1][3] >= w[0][3] - 1e-6 * w[0][3].abs(), "the objective fell: {:?} -> {:?}", w[0], w[1]);
    }
    let weights = std::fs::read_to_string(dir.path().join("components.csv")).expect("components.csv");
    let total: f64 = weights.lines().skip(1).map(|l| l.split(',').nth(2).unwrap().parse::<f64>().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-4, "the weights sum to {total}");
    for png in ["components.png", "samples.png"] {
        image::open(dir.path().join(png)).expect("the PNG decodes");
    }
    let bytes = std::fs::read(dir.path().join("mixture.safetensors")).expect("mixture.safetensors");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
    assert_eq!(st.tensor("means").expect("means").shape(), [5, 1, 28, 28]);
    // eval reads the run, reloads its data from the file's record and gives the fit's validation value.
    let o = wgvae(&["eval", "--checkpoint", s(dir.path())]);
    assert!(o.status.success(), "eval of a mixture failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let nll = number_after(&stdout, "-log p(x)");
    assert!(
        (nll + rows[4][2]).abs() < 1e-3,
        "eval's -log p(x) {nll} against the fit's validation log p {}",
        rows[4][2]
    );
}

/// The number that follows `label` in `text`.
fn number_after(text: &str, label: &str) -> f64 {
    let at = text.find(label).unwrap_or_else(|| panic!("no {label:?} in {text}")) + label.len();
    let word = text[at..].split_whitespace().next().unwrap_or_default();
    word.trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or_else(|_| panic!("{label} {word:?} in {text}"))
}

#[test]
fn mixture_should_reject_bad_flags() {
    assert_fails_with(&["mixture", "--components", "0"], &["--components 0"]);
    assert_fails_with(&["mixture", "--components", "20000"], &["--components 20000", "more than the 9000"]);
    assert_fails_with(&["mixture", "--pseudo-count", "0"], &["--pseudo-count 0", "die"]);
    assert_fails_with(&["mixture", "--family", "gaussian", "--variance-floor", "0"], &["--variance-floor 0"]);
    assert_fails_with(&["mixture", "--tolerance", "NaN"], &["--tolerance NaN"]);
}

/// A 3-component mixture fitted in 2 iterations, shared by the NCE tests.
fn small_mixture() -> &'static std::path::Path {
    static RUN: std::sync::OnceLock<(tempfile::TempDir, std::path::PathBuf)> = std::sync::OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("mixture");
        let o = wgvae(&["mixture", "--components", "3", "--iterations", "2", "--out", s(&out)]);
        assert!(o.status.success(), "mixture failed: {}", stderr(&o));
        (dir, out)
    })
    .1
}

#[test]
fn nce_should_train_against_a_mixture_and_write_its_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("nce");
    let args = ["nce", "--noise", s(small_mixture()), "--epochs", "2", "--hidden", "16", "--noise-samples", "2"];
    let o = wgvae(&[&args[..], &["--log-z-samples", "1000", "--out", s(&out)]].concat());
    assert!(o.status.success(), "nce failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("log Z =") && stdout.contains("with the estimated log Z"), "the report: {stdout}");
    let text = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("epoch,train_loss,train_accuracy,val_loss,val_accuracy,c,seconds"));
    let rows: Vec<Vec<f64>> = lines.map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect()).collect();
    assert_eq!(rows.len(), 2, "a row per epoch");
    for r in &rows {
        assert!(r.iter().all(|v| v.is_finite()) && (0.0..=1.0).contains(&r[2]) && (0.0..=1.0).contains(&r[4]), "{r:?}");
    }
    // Better than the prior odds' loss, -log(1/3) - 2 log(2/3) = 1.91 nats, once trained.
    assert!(rows[1][1] < 1.9, "the train loss {} did not fall below the prior odds' 1.91", rows[1][1]);
    for png in ["best.png", "worst.png"] {
        image::open(out.join(png)).expect("the PNG decodes");
    }
    let model = wgvae::nce::file::load(&out).expect("nce.safetensors loads");
    assert_eq!(model.scorer.layers.iter().map(|l| l.n_out).collect::<Vec<_>>(), [16, 1]);
    assert_eq!((model.noise.spec.components, model.noise_samples, model.scorer.base), (3, 2, wgvae::nce::Base::Noise));
    // eval measures the file as training ended: the same images, so the same -log p(x) with c.
    let o = wgvae(&["eval", "--checkpoint", s(&out), "--log-z-samples", "1000"]);
    assert!(o.status.success(), "eval of an NCE model failed: {}", stderr(&o));
    let evaluated = String::from_utf8_lossy(&o.stdout);
    let with_c = |text: &str| number_after(text, "binarized validation images:");
    assert_eq!(with_c(&evaluated), with_c(&stdout), "eval: {evaluated}\ntraining: {stdout}");
    assert!(evaluated.contains("log Z =") && evaluated.contains("the noise alone"), "eval: {evaluated}");
}

#[test]
fn nce_should_reject_bad_noise_and_flags() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("never");
    let nce = |noise: &str, more: &[&str], needles: &[&str]| {
        assert_fails_with(&[&["nce", "--noise", noise, "--out", s(&out)][..], more].concat(), needles);
        assert!(!out.exists(), "a refused run writes nothing");
    };
    nce(s(trained()), &[], &["a VAE's run", "not a mixture"]);
    let garbage = dir.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"not a tensor file").expect("write");
    nce(s(&garbage), &[], &["garbage.safetensors"]);
    nce(s(&dir.path().join("missing")), &[], &["missing"]);
    let other = dir.path().join("other.safetensors");
    let spec = wgvae::mixture::Spec {
        components: 2,
        family: wgvae::mixture::Family::Bernoulli,
        pixels: 12,
        pseudo_count: 1.0,
        var_floor: 1e-3,
    };
    let shape = wgvae::data::ImageShape { channels: 1, height: 3, width: 4 };
    let fit = wgvae::mixture::Mixture {
        spec,
        shape,
        log_weights: vec![-0.7; 2],
        means: vec![0.5; 24],
        variances: vec![0.0; 24],
    };
    let summary = wgvae::mixture::file::FitSummary {
        data: "synthetic",
        source: None,
        iterations: 1,
        train_loglik: -8.0,
        val_loglik: -8.0,
    };
    wgvae::mixture::file::save(&other, &fit, &summary).expect("save");
    nce(s(&other), &[], &["fitted to images of"]);
    assert_fails_with(&["eval", "--checkpoint", s(&other)], &["does not record the data", "--data"]);
    let noise = s(small_mixture());
    nce(noise, &["--noise-samples", "0"], &["--noise-samples 0"]);
    nce(noise, &["--lr", "0"], &["--lr 0"]);
    nce(noise, &["--hidden", "0"], &["--hidden 0"]);
    nce(noise, &["--batch", "9001"], &["9001"]);
    nce(noise, &["--base", "bogus"], &["bogus"]);
}
