//! The conv VAE (`--arch conv`) through every command a user runs on a model: training and a
//! resumed run that matches it to the bit, evaluation, refinement, the pictures, gradvar, and a
//! conditional model, on small folders of 8 x 8 images with narrow convolutions.
use std::path::Path;

use super::images::{s, write_folder};
use super::{stderr, wgvae};

const CONV: &[&str] = &["--arch", "conv", "--conv-channels", "4", "6", "--latent", "2", "--batch", "8", "--seed", "5"];

fn train(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--data", s(data), "--out", s(out)];
    args.extend(CONV);
    args.extend(extra);
    wgvae(&args)
}

/// The checkpoint's weights as bits.
fn weights(run: &Path) -> Vec<u32> {
    let ck = wgvae::checkpoint::load(run).expect("checkpoint");
    ck.params.iter().map(|v| v.to_bits()).collect()
}

fn losses(run: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).expect("metrics.csv");
    csv.lines().map(|l| l.split(',').take(7).collect::<Vec<_>>().join(",")).collect()
}

#[test]
fn a_conv_vae_should_train_resume_evaluate_and_draw() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    write_folder(&data, &["a", "b"], 30, (8, 8), false);
    let straight = dir.path().join("straight");
    let o = train(&data, &straight, &["--epochs", "2"]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("8x8-conv4-conv6-2"), "a conv VAE: {stdout}");

    // Interrupted in epoch 2, resumed: the same weights and losses as the straight run.
    let resumed = dir.path().join("resumed");
    let o = train(&data, &resumed, &["--epochs", "2", "--interrupt-after-steps", "9"]);
    assert_eq!(o.status.code(), Some(130), "interrupted: {}", stderr(&o));
    let o = wgvae(&["train", "--resume", s(&resumed)]);
    assert!(o.status.success(), "resume failed: {}", stderr(&o));
    assert!(weights(&resumed) == weights(&straight), "resumed weights differ from the straight run");
    let model = |run: &Path| std::fs::read(run.join("model.safetensors")).expect("model.safetensors");
    assert!(model(&resumed) == model(&straight), "model.safetensors differs byte for byte");
    assert_eq!(losses(&resumed), losses(&straight));

    let o = wgvae(&["eval", "--checkpoint", s(&straight), "--iw-samples", "8"]);
    assert!(o.status.success(), "eval failed: {}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.lines().any(|l| l.split_whitespace().take(2).eq(["encoder", "8"])), "{out}");
    let o = wgvae(&["refine", "--checkpoint", s(&straight), "--steps", "5", "--draws", "2"]);
    assert!(o.status.success(), "refine failed: {}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("amortization gap:"));
    for (cmd, extra) in [
        ("sample", vec!["--n", "6"]),
        ("reconstruct", vec!["--n", "4"]),
        ("interpolate", vec!["--start", "0", "--end", "3", "--frames", "4"]),
        ("manifold", vec!["--n", "5"]),
    ] {
        let png = dir.path().join(format!("{cmd}.png"));
        let mut args = vec![cmd, "--checkpoint", s(&straight), "--out", s(&png)];
        args.extend(extra);
        let o = wgvae(&args);
        assert!(o.status.success(), "{cmd} failed: {}", stderr(&o));
        image::open(&png).unwrap_or_else(|e| panic!("{cmd}: PNG does not decode: {e}"));
    }

    let gv = dir.path().join("gradvar");
    let mut args = vec!["gradvar", "--data", s(&data), "--repeats", "3", "--samples", "2", "--out", s(&gv)];
    args.extend(CONV);
    let o = wgvae(&args);
    assert!(o.status.success(), "gradvar failed: {}", stderr(&o));
    assert!(gv.join("gradvar.csv").is_file());

    // The same weights as a plain PyTorch state dict (model.safetensors without its metadata): the
    // conv VAE is inferred from the tensors, and its codes and samples are the checkpoint's.
    let sd = dir.path().join("sd.safetensors");
    strip_metadata(&straight.join("model.safetensors"), &sd);
    let mut outputs = Vec::new();
    for (from, name) in [(&straight, "ck"), (&sd, "sd")] {
        let (codes, png) =
            (dir.path().join(format!("codes_{name}.safetensors")), dir.path().join(format!("sample_{name}.png")));
        let o = wgvae(&["encode", "--checkpoint", s(from), "--data", s(&data), "--out", s(&codes)]);
        assert!(o.status.success(), "encode {name}: {}", stderr(&o));
        let o = wgvae(&["sample", "--checkpoint", s(from), "--data", s(&data), "--n", "6", "--out", s(&png)]);
        assert!(o.status.success(), "sample {name}: {}", stderr(&o));
        outputs.push((wgvae::commands::codes_file::read(&codes).expect("codes"), std::fs::read(&png).expect("png")));
    }
    assert!(outputs[0].0.mean == outputs[1].0.mean && outputs[0].0.logvar == outputs[1].0.logvar, "codes");
    assert!(outputs[0].1 == outputs[1].1, "the state dict's samples differ from the checkpoint's");

    // A conditional conv VAE samples a row per class.
    let cvae = dir.path().join("cvae");
    let o = train(&data, &cvae, &["--epochs", "1", "--conditional"]);
    assert!(o.status.success(), "conditional train failed: {}", stderr(&o));
    let o = wgvae(&["sample", "--checkpoint", s(&cvae), "--class", "b", "--out", s(&dir.path().join("b.png"))]);
    assert!(o.status.success(), "sample --class b failed: {}", stderr(&o));
}

/// `from`'s tensors as a plain state dict at `to`: no metadata, as safetensors.torch.save_file
/// writes a state_dict.
fn strip_metadata(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).expect("read");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let tensors: Vec<(String, safetensors::tensor::TensorView)> = st.tensors();
    std::fs::write(to, safetensors::serialize(tensors, None).expect("serialize")).expect("write");
}
