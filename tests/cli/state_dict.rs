//! PyTorch models in: a plain state_dict in safetensors (no wgvae metadata), written here from
//! numpy with PyTorch's names, [out, in] layout and nn.Linear's initialisation bounds, as
//! pytorch/examples' VAE saves it. Its architecture is inferred, `eval` gives the negative ELBO a
//! numpy evaluation of the same weights on the same images gives (within the sampling error),
//! `sample` draws, `train --init` fine-tunes from it; bad files are refused naming the tensor.
use std::path::Path;
use std::process::Command;

use super::checkpoints::s;
use super::python::python;
use super::{assert_fails_with, stderr, wgvae};

/// Writes DIR/sd.safetensors and DIR/edited variants; prints the numpy negative ELBO and its
/// bound on the embedded digits' validation split (every tenth image, index % 10 == 9).
const SCRIPT: &str = r#"
import gzip, sys
import numpy as np
from safetensors.numpy import save_file
d, assets = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(5)
def linear(n_out, n_in):  # nn.Linear's init: U(-1/sqrt(in), 1/sqrt(in)) for weight and bias
    b = 1 / np.sqrt(n_in)
    return rng.uniform(-b, b, (n_out, n_in)).astype(np.float32), rng.uniform(-b, b, n_out).astype(np.float32)
sd = {}
for name, (o, i) in {"fc1": (400, 784), "fc21": (20, 400), "fc22": (20, 400), "fc3": (400, 20), "fc4": (784, 400)}.items():
    sd[name + ".weight"], sd[name + ".bias"] = linear(o, i)
save_file(sd, d + "/sd.safetensors")
save_file({**sd, "fc4.weight": sd["fc4.weight"][:, :399].copy()}, d + "/shape.safetensors")
save_file({k: v for k, v in sd.items() if k != "fc3.bias"}, d + "/missing.safetensors")
save_file({**sd, "extra.weight": np.zeros((2, 2), np.float32)}, d + "/unknown.safetensors")
nan = sd["fc21.bias"].copy(); nan[3] = np.nan
save_file({**sd, "fc21.bias": nan}, d + "/nan.safetensors")
raw = gzip.open(assets + "/train-images-idx3-ubyte.gz").read()[16:]
x = np.frombuffer(raw, np.uint8).reshape(-1, 784)[9::10].astype(np.float64) / 255.0
f = {k: v.astype(np.float64) for k, v in sd.items()}
h = np.maximum(x @ f["fc1.weight"].T + f["fc1.bias"], 0)
mu, lv = h @ f["fc21.weight"].T + f["fc21.bias"], h @ f["fc22.weight"].T + f["fc22.bias"]
kl = -0.5 * np.sum(1 + lv - mu ** 2 - np.exp(lv), axis=1)
S = 64
rec = np.zeros((len(x), S))
for s in range(S):
    z = mu + np.exp(0.5 * lv) * rng.standard_normal(mu.shape)
    l = np.maximum(z @ f["fc3.weight"].T + f["fc3.bias"], 0) @ f["fc4.weight"].T + f["fc4.bias"]
    rec[:, s] = np.sum(np.maximum(l, 0) + np.log1p(np.exp(-np.abs(l))) - x * l, axis=1)
value = np.mean(rec.mean(axis=1) + kl)
# wgvae's estimate: one z per image, so its standard error is sqrt(mean var_i / n); numpy's own
# (S draws per image) adds 1/S of that. Five standard errors, the printed rounding, and f32 sums.
se = np.sqrt(rec.var(axis=1, ddof=1).mean() / len(x) * (1 + 1 / S))
print(value, 5 * se + 0.0005 + 1e-5 * value)
"#;

fn negative_elbo(stdout: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with("negative ELBO")).expect("eval prints the negative ELBO");
    line.split_whitespace().nth(2).and_then(|v| v.parse().ok()).expect("a number after 'negative ELBO'")
}

#[test]
fn a_pytorch_state_dict_should_evaluate_as_numpy_does_sample_and_fine_tune() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    let o = Command::new(python()).args(["-c", SCRIPT, s(d), s(&assets)]).output().expect("python3");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    let numbers: Vec<f64> = out.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let (want, bound) = (numbers[0], numbers[1]);

    let sd = d.join("sd.safetensors");
    let o = wgvae(&["eval", "--checkpoint", s(&sd), "--iw-samples", "1", "--out", s(&d.join("eval"))]);
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "eval of a state dict: {}", stderr(&o));
    assert!(stdout.contains("a PyTorch state dict: MLP, hidden [400], latent 20, Bernoulli decoder"), "{stdout}");
    let got = negative_elbo(&stdout);
    assert!((got - want).abs() < bound, "wgvae {got} against numpy {want}: more than {bound} apart");

    let grid = d.join("grid.png");
    let o = wgvae(&["sample", "--checkpoint", s(&sd), "--out", s(&grid)]);
    assert!(o.status.success() && grid.is_file(), "sample: {}", stderr(&o));

    let run = d.join("run");
    let o = wgvae(&["train", "--init", s(&sd), "--epochs", "1", "--out", s(&run), "--interrupt-after-steps", "3"]);
    assert_eq!(o.status.code(), Some(130), "train --init: {}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("init: the weights of"));
    assert_fails_with(
        &["train", "--init", s(&sd), "--hidden", "300", "--out", s(&d.join("r2"))],
        &["fc1.weight", "[400, 784]", "[300, 784]"],
    );

    for (file, needles) in [
        ("shape", &["fc4.weight", "[784, 399]"][..]),
        ("missing", &["fc3.bias", "missing"][..]),
        ("unknown", &["extra.weight", "does not belong"][..]),
        ("nan", &["fc21.bias", "non-finite", "index 3"][..]),
    ] {
        let path = d.join(format!("{file}.safetensors"));
        assert_fails_with(&["eval", "--checkpoint", s(&path), "--iw-samples", "1"], needles);
    }
    let pt = d.join("model.pt");
    std::fs::write(&pt, b"PK\x03\x04 a zip").expect("write");
    assert_fails_with(
        &["sample", "--checkpoint", s(&pt)],
        &["pickle", "safetensors.torch", "save_file", "model.safetensors"],
    );
}

#[test]
fn a_state_dicts_defaults_should_be_trains_without_flags() {
    let (mut want, _) = wgvae::cli::train_config(&[]).expect("train's defaults");
    // What auto chooses for the digits.
    let wgvae::config::spec::Network::Auto { hidden, .. } = want.model.network.clone() else { panic!("auto") };
    want.model.network = wgvae::config::spec::Network::Mlp { hidden };
    let model = wgvae::model::Model::new(want.architecture());
    let shapes = wgvae::checkpoint::tensor_slots(&model).into_iter().map(|s| (s.name, s.shape)).collect();
    let (mut got, _) = wgvae::checkpoint::state_dict::infer(&shapes, want.shape).expect("infer");
    got.wgvae_version = want.wgvae_version.clone();
    got.data_fingerprint = want.data_fingerprint.clone();
    assert_eq!(serde_json::to_value(&got).expect("json"), serde_json::to_value(&want).expect("json"));
}
