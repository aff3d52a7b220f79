//! TensorBoard event files, read back with TensorBoard's own reader (event_accumulator, in a
//! virtual environment under target/): every scalar against metrics.csv, the grids' PNG bytes
//! against the files, the config as text and hparams, and a run interrupted and resumed logging
//! each step once, without a gap.
use std::process::Command;

use super::checkpoints::{s, SMALL};
use super::python::tensorboard_python;
use super::{small_mnist, stderr, wgvae};

/// Reads DIR's events and checks them against DIR's metrics.csv and PNGs; prints "ok".
const CHECK: &str = r#"
import csv, glob, sys
import numpy as np
from tensorboard.backend.event_processing import event_accumulator as ea
d, steps = sys.argv[1], int(sys.argv[2])
acc = ea.EventAccumulator(d, size_guidance={ea.SCALARS: 0, ea.IMAGES: 0, ea.TENSORS: 0})
acc.Reload()
rows = list(csv.DictReader(open(d + "/metrics.csv")))
f32 = lambda v: float(np.float32(v))
for name in ["loss", "rec", "kl"]:
    val = acc.Scalars("val/" + name)
    assert [e.step for e in val] == [steps * (i + 1) for i in range(len(rows))], [e.step for e in val]
    assert [e.value for e in val] == [f32(r["val_" + name]) for r in rows], name
    train = acc.Scalars("train/" + name)
    at = [e.step for e in train]
    assert at == sorted(set(at)) and at[0] > 0, f"train/{name}: steps once each, in order: {at}"
    ends = {e.step: e.value for e in train}
    assert [ends[steps * (i + 1)] for i in range(len(rows))] == [f32(r["train_" + name]) for r in rows], name
speed = acc.Scalars("images_per_second")
assert all(abs(e.value - float(r["images_per_second"])) <= 0.051 for e, r in zip(speed, rows)), "images/s"
for tag, file in [("samples", "samples.png"), ("reconstructions", "reconstructions.png")]:
    last = acc.Images(tag)[-1]
    assert last.step == steps * len(rows) and last.encoded_image_string == open(d + "/" + file, "rb").read(), tag
assert len(acc.Images("samples")) == len(rows)
assert b"784-24-2" in acc.Tensors("config")[0].tensor_proto.string_val[0]
assert set(acc.PluginTagToContent("hparams")) >= {"_hparams_/experiment", "_hparams_/session_start_info"}
print("ok", len(glob.glob(d + "/events.out.tfevents.*")))
"#;

fn check(dir: &std::path::Path, steps: usize) -> String {
    let o =
        Command::new(tensorboard_python()).args(["-c", CHECK, s(dir), &steps.to_string()]).output().expect("python3");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn event_files_should_hold_the_run_as_metrics_csv_and_the_pngs_do() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let mut args = vec!["train", "--data", small_mnist(), "--out", s(&run), "--epochs", "3"];
    args.extend(SMALL);
    let o = wgvae(&args);
    assert!(o.status.success(), "train: {}", stderr(&o));
    let steps = 1800 / 128;
    assert_eq!(check(&run, steps), "ok 1");

    // Interrupted mid-epoch 2 and resumed: two files, every step once, no gap.
    let cut = dir.path().join("cut");
    let mut args =
        vec!["train", "--data", small_mnist(), "--out", s(&cut), "--interrupt-after-steps", "20", "--epochs", "3"];
    args.extend(SMALL);
    assert_eq!(wgvae(&args).status.code(), Some(130));
    let o = wgvae(&["train", "--resume", s(&cut)]);
    assert!(o.status.success(), "resume: {}", stderr(&o));
    assert_eq!(check(&cut, steps), "ok 2");

    let quiet = dir.path().join("quiet");
    let mut args = vec!["train", "--data", small_mnist(), "--out", s(&quiet), "--no-tensorboard", "--epochs", "1"];
    args.extend(SMALL);
    assert!(wgvae(&args).status.success());
    let names: Vec<String> =
        std::fs::read_dir(&quiet).expect("dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    assert!(!names.iter().any(|n| n.contains("tfevents")), "--no-tensorboard: {names:?}");
}

/// Prints each scalar's values of DIR's events as "tag v1 v2 ...", tags sorted.
const SCALARS: &str = r#"
import sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0})
acc.Reload()
for tag in sorted(acc.Tags()["scalars"]):
    print(tag, *[repr(e.value) for e in acc.Scalars(tag)], sep=" ")
"#;

/// metrics.csv's `column` of `dir`, as f32.
fn column(dir: &std::path::Path, column: &str) -> Vec<f32> {
    let text = std::fs::read_to_string(dir.join("metrics.csv")).expect("metrics.csv");
    let mut lines = text.lines();
    let at = lines.next().expect("header").split(',').position(|c| c == column).expect("column");
    lines.map(|l| l.split(',').nth(at).and_then(|v| v.parse::<f64>().ok()).expect("a number") as f32).collect()
}

fn scalar(dir: &std::path::Path, tag: &str) -> Vec<f32> {
    let o = Command::new(tensorboard_python()).args(["-c", SCALARS, s(dir)]).output().expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let line = out.lines().find(|l| l.split(' ').next() == Some(tag)).unwrap_or_else(|| panic!("no {tag} in {out}"));
    line.split(' ').skip(1).map(|v| v.parse().expect("a number")).collect()
}

#[test]
fn mixture_and_nce_should_log_what_their_metrics_csv_holds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mixture, nce) = (dir.path().join("mixture"), dir.path().join("nce"));
    let o = wgvae(&["mixture", "--components", "3", "--iterations", "2", "--out", s(&mixture)]);
    assert!(o.status.success(), "mixture: {}", stderr(&o));
    assert_eq!(scalar(&mixture, "val/loglik"), column(&mixture, "val_loglik"));
    assert_eq!(scalar(&mixture, "objective"), column(&mixture, "objective"));
    let args = ["nce", "--noise", s(&mixture), "--epochs", "2", "--hidden", "16", "--noise-samples", "2"];
    let o = wgvae(&[&args[..], &["--log-z-samples", "1000", "--out", s(&nce)]].concat());
    assert!(o.status.success(), "nce: {}", stderr(&o));
    assert_eq!(scalar(&nce, "val/loss"), column(&nce, "val_loss"));
    assert_eq!(scalar(&nce, "train/accuracy"), column(&nce, "train_accuracy"));
}
