//! Checkpoints, resume, evaluation and the picture commands, on small trained models.
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use wgvae::checkpoint::{self, Checkpoint};
use wgvae::config::spec::Network;
use wgvae::gpu::DeviceChoice;
use wgvae::model::{Architecture, Model};
use wgvae::session::CheckpointSource;

use super::{assert_fails_with, stderr, wgvae};

/// The flags of `trained()`: a small model with a 2-D latent.
pub const SMALL: &[&str] = &["--hidden", "24", "--latent", "2", "--seed", "3"];

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// A 2-epoch run of a small model with a 2-D latent, trained once and shared by the tests.
pub fn trained() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("run");
        let mut args = vec!["train", "--epochs", "2", "--out", s(&out)];
        args.extend(SMALL);
        let o = wgvae(&args);
        assert!(o.status.success(), "train failed: {}", stderr(&o));
        (dir, out)
    })
    .1
}

fn open(run: &Path) -> wgvae::session::Session {
    let args = CheckpointSource { checkpoint: run.to_path_buf(), data: None, device: DeviceChoice::default() };
    wgvae::session::open_checkpoint(&args, None, None).expect("open checkpoint").0
}

fn bits(ck: &Checkpoint) -> Vec<u32> {
    ck.params.iter().map(|v| v.to_bits()).collect()
}

/// The loss columns of metrics.csv (the timing columns differ between runs).
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .expect("metrics.csv")
        .lines()
        .map(|l| l.split(',').take(7).collect::<Vec<_>>().join(","))
        .collect()
}

fn no_partial_files(run: &Path) {
    for e in std::fs::read_dir(run).expect("run dir") {
        let p = e.expect("entry").path();
        assert!(!p.to_string_lossy().ends_with(".partial"), "left behind: {}", p.display());
    }
}

#[test]
fn checkpoint_should_hold_pytorch_names_config_and_progress() {
    let ck = checkpoint::load(trained()).expect("load");
    assert_eq!(ck.config.model.network, Network::Mlp { hidden: vec![24] });
    assert_eq!(ck.config.latent_width(), 2);
    let progress = ck.progress.as_ref().expect("progress in checkpoint.safetensors");
    assert_eq!((progress.epochs_done, progress.step_in_epoch, progress.optimizer_step), (2, 0, 140));
    assert_eq!(progress.history.len(), 2);
    let (m, v) = ck.adam.as_ref().expect("Adam moments");
    assert!(m.iter().any(|&x| x != 0.0) && v.iter().all(|&x| x >= 0.0));
    let names: Vec<String> =
        checkpoint::tensor_slots(&Model::new(ck.config.architecture())).into_iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        [
            "fc1.weight",
            "fc1.bias",
            "fc21.weight",
            "fc21.bias",
            "fc22.weight",
            "fc22.bias",
            "fc3.weight",
            "fc3.bias",
            "fc4.weight",
            "fc4.bias"
        ]
    );
    let model_only = checkpoint::load(&trained().join(checkpoint::MODEL_FILE)).expect("model.safetensors");
    assert_eq!(bits(&model_only), bits(&ck));
    assert!(model_only.adam.is_none() && model_only.progress.is_none());
    // Deeper nets: encoder.{i}, the fc21/fc22 heads, decoder.{i}.
    let deep = Model::new(Architecture::mlp(wgvae::data::ImageShape::mnist(), vec![32, 16], 3));
    let names: Vec<String> =
        checkpoint::tensor_slots(&deep).into_iter().map(|t| t.name).filter(|n| n.ends_with("weight")).collect();
    assert_eq!(
        names,
        [
            "encoder.0.weight",
            "encoder.1.weight",
            "fc21.weight",
            "fc22.weight",
            "decoder.0.weight",
            "decoder.1.weight",
            "decoder.2.weight"
        ]
    );
    no_partial_files(trained());
}

#[test]
fn python_should_load_the_checkpoint_and_reproduce_the_decoder() {
    let session = open(trained());
    let z: Vec<f32> = (0..37 * 2).map(|i| ((i * 7919) % 101) as f32 / 25.0 - 2.0).collect();
    let probs = pollster::block_on(session.trainer.decode(&session.gpu, &z, &[])).unwrap();
    let dir = tempfile::tempdir().expect("temp dir");
    let (zf, pf) = (dir.path().join("z.f32"), dir.path().join("probs.f32"));
    std::fs::write(&zf, bytemuck::cast_slice::<f32, u8>(&z)).expect("write z");
    std::fs::write(&pf, bytemuck::cast_slice::<f32, u8>(&probs)).expect("write probs");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checkpoint_interop.py");
    let o = Command::new(super::python::python())
        .args([s(&script), s(trained()), s(&zf), s(&pf)])
        .output()
        .expect("python3");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), stderr(&o));
}

#[test]
fn resume_after_an_interruption_should_reproduce_the_uninterrupted_run_bit_for_bit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("interrupted");
    // 100 steps: epoch 2, step 30 of 70.
    let mut args = vec!["train", "--epochs", "2", "--out", s(&run), "--interrupt-after-steps", "100"];
    args.extend(SMALL);
    let o = wgvae(&args);
    assert_eq!(o.status.code(), Some(130), "an interrupted run exits with 130: {}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "says how to continue: {}", stderr(&o));
    let mid = checkpoint::load(&run).expect("checkpoint of the interrupted run");
    let progress = mid.progress.expect("progress");
    assert_eq!((progress.epochs_done, progress.step_in_epoch, progress.optimizer_step), (1, 30, 100));

    let o = wgvae(&["train", "--resume", s(&run)]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    let (resumed, straight) =
        (checkpoint::load(&run).expect("resumed"), checkpoint::load(trained()).expect("straight"));
    assert_eq!(bits(&resumed), bits(&straight), "weights differ from the uninterrupted run");
    let ((rm, rv), (sm, sv)) = (resumed.adam.expect("adam"), straight.adam.expect("adam"));
    assert!(rm == sm && rv == sv, "Adam's moments differ from the uninterrupted run");
    assert_eq!(losses(&run), losses(trained()), "metrics differ from the uninterrupted run");
    no_partial_files(&run);

    assert_fails_with(&["train", "--resume", s(&run)], &["finished all 2", "--epochs"]);
}

#[test]
fn ctrl_c_should_checkpoint_and_resume_should_match_the_uninterrupted_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("ctrl-c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_wgvae"))
        .args(["train", "--epochs", "3", "--out", s(&run)])
        .args(SMALL)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn wgvae");
    let stdout = child.stdout.take().expect("stdout");
    // SIGINT as soon as epoch 1 is reported: it lands during epoch 2 (or, on a fast adapter, later).
    for line in BufReader::new(stdout).lines() {
        if line.expect("line").starts_with("epoch   1/3") {
            let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
            assert!(killed.success());
            break;
        }
    }
    let o = child.wait_with_output().expect("wait");
    let err = stderr(&o);
    assert!(err.contains("Ctrl-C"), "the signal was seen: {err}");
    assert_eq!(o.status.code(), Some(130), "exits with 130 after Ctrl-C: {err}");
    let o = wgvae(&["train", "--resume", s(&run), "--epochs", "2"]);
    let progress = checkpoint::load(&run).expect("checkpoint").progress.expect("progress");
    if progress.epochs_done < 2 || o.status.success() {
        assert!(o.status.success(), "resume failed: {}", stderr(&o));
        assert_eq!(
            bits(&checkpoint::load(&run).expect("resumed")),
            bits(&checkpoint::load(trained()).expect("straight"))
        );
        assert_eq!(losses(&run), losses(trained()));
    }
    no_partial_files(&run);
}

#[test]
fn importance_sampled_nll_should_lie_below_the_elbo_and_fall_as_k_grows() {
    let session = open(trained());
    let elbo = pollster::block_on(session.trainer.evaluate(&session.gpu)).unwrap();
    let neg_elbo = ((elbo.rec_sum + elbo.kl_sum) / elbo.examples) as f64;
    let mut previous = f64::INFINITY;
    let encoder = wgvae::importance::Proposal::Encoder;
    for r in wgvae::commands::eval::importance_nll(&session, &[1, 10, 100], encoder, 1).unwrap() {
        let k = r.k;
        let (nll, se) = wgvae::commands::importance_table::mean_and_se(&r.nll);
        // The same K samples: log-mean-exp >= mean (Jensen), image by image.
        for (i, (a, b)) in r.nll.iter().zip(&r.neg_elbo).enumerate() {
            assert!(*a <= *b + 1e-3, "K = {k}, image {i}: IS estimate {a} above the same samples' negative ELBO {b}");
        }
        if k == 1 {
            // K = 1 is a one-sample ELBO estimate: equal to the analytic-KL ELBO in expectation.
            assert!((nll - neg_elbo).abs() < 1.0, "K = 1 gives {nll} but the negative ELBO is {neg_elbo}");
        } else {
            assert!(nll < neg_elbo, "K = {k}: {nll} is not below the negative ELBO {neg_elbo}");
        }
        assert!(nll < previous, "K = {k}: {nll} ± {se} did not fall from {previous}");
        previous = nll;
    }
}

#[test]
fn eval_and_picture_commands_should_run_on_a_checkpoint() {
    let run = trained();
    let o = wgvae(&["eval", "--checkpoint", s(run), "--iw-samples", "20", "--max-images", "70"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    assert!(
        out.contains("-log p(x)")
            && out.lines().any(|l| l.split_whitespace().take(2).eq(["encoder", "20"]))
            && out.contains("70 images"),
        "{out}"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let png = |name: &str| dir.path().join(name);
    let cmds: [(&str, Vec<&str>, (u32, u32)); 4] = [
        ("sample", vec!["--n", "12", "--cols", "4", "--temperature", "0.7"], (4, 3)),
        ("reconstruct", vec!["--n", "10"], (8, 4)),
        ("interpolate", vec!["--start", "0", "5", "--end", "9", "17", "--frames", "6"], (8, 2)),
        ("manifold", vec!["--n", "7"], (7, 7)),
    ];
    for (cmd, extra, (cols, rows)) in cmds {
        let path = png(&format!("{cmd}.png"));
        let mut args = vec![cmd, "--checkpoint", s(run), "--out", s(&path)];
        args.extend(extra);
        let o = wgvae(&args);
        assert!(o.status.success(), "{cmd} failed: {}", stderr(&o));
        let img = image::open(&path).unwrap_or_else(|e| panic!("{cmd}: PNG does not decode: {e}")).to_luma8();
        assert_eq!((img.width(), img.height()), (cols * 30 + 2, rows * 30 + 2), "{cmd}: grid of {cols}x{rows}");
        let (lo, hi) = img.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        assert!(hi > lo + 100, "{cmd}: nearly flat ({lo}..{hi})");
    }
    // Defaults write beside the checkpoint.
    let o = wgvae(&["sample", "--checkpoint", s(&run.join(checkpoint::CHECKPOINT_FILE))]);
    assert!(o.status.success() && run.join("sample.png").is_file(), "{}", stderr(&o));
}

/// Writes a checkpoint whose tensors are `model`'s but whose config is `config`'s.
fn save_mismatched(dir: &Path, config_hidden: Vec<usize>, model_hidden: Vec<usize>) -> PathBuf {
    let ck = checkpoint::load(trained()).expect("load");
    let model = Model::new(Architecture::mlp(wgvae::data::ImageShape::mnist(), model_hidden, 2));
    let mut config = ck.config.clone();
    config.model.network = Network::Mlp { hidden: config_hidden };
    let bad = Checkpoint { config, params: model.init_params(1), adam: None, progress: None, table: None };
    std::fs::create_dir_all(dir).expect("dir");
    checkpoint::save(dir, &bad, &model).expect("save");
    dir.join(checkpoint::MODEL_FILE)
}

#[test]
fn bad_checkpoints_and_flags_should_fail_clearly_and_overwrite_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let good = std::fs::read(trained().join(checkpoint::CHECKPOINT_FILE)).expect("read");
    let eval = |path: &Path, needles: &[&str]| {
        assert_fails_with(&["eval", "--checkpoint", s(path), "--iw-samples", "2"], needles);
    };

    eval(&d.join("nothing-here.safetensors"), &["nothing-here.safetensors", "no such checkpoint"]);
    eval(d, &["no checkpoint.safetensors"]);
    let truncated = d.join("truncated.safetensors");
    std::fs::write(&truncated, &good[..good.len() / 2]).expect("write");
    eval(&truncated, &["truncated.safetensors", "not a valid safetensors file"]);
    let not_json = d.join("not-json.safetensors");
    let mut bytes = 16u64.to_le_bytes().to_vec();
    bytes.extend(b"{this is not js}");
    std::fs::write(&not_json, bytes).expect("write");
    eval(&not_json, &["not-json.safetensors", "not a valid safetensors file"]);
    let no_config = d.join("no-config.safetensors");
    let t = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &[0u8; 4]).expect("view");
    std::fs::write(&no_config, safetensors::serialize([("fc1.weight", t)], None).expect("serialize")).expect("write");
    // Without a wgvae config it is read as a PyTorch state dict, which this one is not.
    eval(&no_config, &["no-config.safetensors", "PyTorch state dict", "fc21.weight"]);

    let shapes = save_mismatched(&d.join("shapes"), vec![24], vec![30]);
    eval(&shapes, &["fc1.weight", "[30, 784]", "784-24-2", "[24, 784]"]);
    let deeper = save_mismatched(&d.join("deeper"), vec![24], vec![24, 12]);
    eval(&deeper, &["fc1.weight is missing", "784-24-2"]);
    // A stored config edited to a combination the flags refuse (no RunConfig can hold it) is
    // refused on reading, with the same message.
    let edited = d.join("edited.safetensors");
    with_config_json(&trained().join(checkpoint::MODEL_FILE), &edited, |c| {
        (c["objective"], c["samples"], c["conditional"], c["classes"]) =
            ("iwae".into(), 5.into(), true.into(), 10.into());
    });
    eval(&edited, &["not a valid config", "--conditional"]);

    let run = d.join("run");
    std::fs::create_dir_all(&run).expect("dir");
    assert_fails_with(&["train", "--resume", s(&run)], &["--resume", "no checkpoint.safetensors"]);
    std::fs::write(run.join(checkpoint::CHECKPOINT_FILE), &good[..100]).expect("write");
    assert_fails_with(
        &["train", "--resume", s(&run), "--epochs", "3"],
        &["checkpoint.safetensors", "not a valid safetensors file"],
    );
    assert_eq!(
        std::fs::read(run.join(checkpoint::CHECKPOINT_FILE)).expect("read"),
        &good[..100],
        "a failed resume overwrote the file"
    );
    assert!(!run.join("metrics.csv").exists());
    let model_only = d.join("model-only");
    std::fs::create_dir_all(&model_only).expect("dir");
    std::fs::copy(trained().join(checkpoint::MODEL_FILE), model_only.join(checkpoint::CHECKPOINT_FILE)).expect("copy");
    assert_fails_with(&["train", "--resume", s(&model_only), "--epochs", "3"], &["no optimizer state"]);
    assert_fails_with(&["train", "--resume", s(trained()), "--batch", "64"], &["--batch", "--resume"]);

    assert_fails_with(&["eval", "--checkpoint", s(trained()), "--iw-samples", "0"], &["--iw-samples 0"]);
    assert_fails_with(&["sample", "--checkpoint", s(trained()), "--temperature", "0"], &["--temperature"]);
    assert_fails_with(
        &["interpolate", "--checkpoint", s(trained()), "--start", "1", "--end", "5000"],
        &["5000", "out of range"],
    );
    assert_fails_with(
        &["interpolate", "--checkpoint", s(trained()), "--start", "1", "2", "--end", "3"],
        &["--start", "--end"],
    );
    let four_d = d.join("four-d");
    let mut args = vec!["train", "--epochs", "1", "--hidden", "8", "--latent", "4", "--out", s(&four_d)];
    args.push("--batch");
    args.push("512");
    let o = wgvae(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_fails_with(&["manifold", "--checkpoint", s(&four_d)], &["4-D latent", "--latent 2"]);
}

#[test]
fn refine_should_report_a_positive_amortization_gap() {
    let o = wgvae(&["refine", "--checkpoint", s(trained()), "--steps", "40", "--max-images", "150", "--draws", "4"]);
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "refine failed: {}", stderr(&o));
    let gap: f64 = out
        .lines()
        .find(|l| l.starts_with("amortization gap:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no gap in: {out}"));
    assert!(gap > 0.0, "refining each input's q(z|x) should raise its ELBO: {out}");
    assert_fails_with(&["refine", "--checkpoint", s(trained()), "--steps", "0"], &["--steps 0"]);
    assert_fails_with(&["refine", "--checkpoint", s(trained()), "--lr", "-1"], &["--lr"]);
}

/// Copies the safetensors file `src` to `dst` with its wgvae.config JSON changed by `edit`.
fn with_config_json(src: &Path, dst: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(src).expect("read");
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).expect("header");
    let mut metadata = header.metadata().clone().expect("metadata");
    let mut config: serde_json::Value = serde_json::from_str(&metadata["wgvae.config"]).expect("config JSON");
    edit(&mut config);
    metadata.insert("wgvae.config".to_string(), config.to_string());
    let tensors = safetensors::SafeTensors::deserialize(&bytes).expect("tensors").tensors();
    std::fs::write(dst, safetensors::serialize(tensors, Some(metadata)).expect("serialize")).expect("write");
}
