//! `wgvae encode`: the codes it writes are the encoder's on the same images, in each format, and
//! read back as written; latents.png beside them; bad output paths refused before any work.
use wgvae::commands::codes_file;
use wgvae::gpu::DeviceChoice;
use wgvae::session::CheckpointSource;

use super::checkpoints::{s, trained};
use super::python::python;
use super::{assert_fails_with, stderr, wgvae};

#[test]
fn encoded_codes_should_be_the_encoders_and_read_back_as_written() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("codes.safetensors");
    let o = wgvae(&["encode", "--checkpoint", s(trained()), "--out", s(&out)]);
    assert!(o.status.success(), "encode failed: {}", stderr(&o));
    let codes = codes_file::read(&out).expect("read the codes back");

    let source = CheckpointSource { checkpoint: trained().to_path_buf(), data: None, device: DeviceChoice::default() };
    let (session, _) = wgvae::session::open_checkpoint(&source, None, None).expect("open checkpoint");
    let n = session.data.val.len();
    let picks: Vec<u32> = (0..n as u32).collect();
    let rows = pollster::block_on(session.trainer.encode(&session.gpu, &picks)).expect("encode");
    let latent = session.config.latent_width();
    let (mean, logvar): (Vec<f32>, Vec<f32>) = (
        rows.chunks(2 * latent).flat_map(|r| r[..latent].to_vec()).collect(),
        rows.chunks(2 * latent).flat_map(|r| r[latent..].to_vec()).collect(),
    );
    assert_eq!((codes.len(), codes.width), (n, latent));
    assert!(codes.mean == mean && codes.logvar.as_ref() == Some(&logvar), "codes differ from the encoder's");
    assert_eq!(codes.label, session.data.val.labels);
    assert!(codes.index == picks && codes.split.iter().all(|&s| s == 1), "index and split columns");
    assert_eq!(codes.class_names.len(), 10, "the digits' names");
    let png = std::fs::read(dir.path().join("latents.png")).expect("latents.png beside the codes");
    assert_eq!(&png[1..4], b"PNG");
}

#[test]
fn every_format_should_hold_the_same_codes() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (file, split) in [("val.safetensors", "val"), ("all.npy", "all"), ("all.csv", "all")] {
        let out = dir.path().join(file);
        let o = wgvae(&["encode", "--checkpoint", s(trained()), "--out", s(&out), "--split", split]);
        assert!(o.status.success(), "encode to {file} failed: {}", stderr(&o));
    }
    let check = r#"
import csv, sys
import numpy as np
from safetensors.numpy import load_file
d = sys.argv[1]
a = np.load(d + "/all.npy")
t = load_file(d + "/val.safetensors")
val = a[a["split"] == 1]
assert len(a) == 10000 and len(val) == 1000, (len(a), len(val))
for k in ["mean", "logvar", "label", "index"]:
    assert np.array_equal(val[k], t[k]), k
assert np.array_equal(a["index"][:9000], np.arange(9000)), "training rows first, by index"
rows = list(csv.reader(open(d + "/all.csv")))
w = a["mean"].shape[1]
assert rows[0][:5] == ["split", "index", "label", "class", "mean_0"], rows[0]
m = np.array([[float(x) for x in r[4:4 + w]] for r in rows[1:]], dtype=np.float32)
assert np.array_equal(m, a["mean"]), "the CSV's means read back as the same f32"
assert [r[0] for r in rows[1:]].count("val") == 1000
"#;
    let o = std::process::Command::new(python()).args(["-c", check, s(dir.path())]).output().expect("python3");
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn encode_should_refuse_an_output_it_cannot_write_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("codes.txt");
    assert_fails_with(&["encode", "--checkpoint", s(trained()), "--out", s(&bad)], &[".safetensors, .npy or .csv"]);
    let missing = dir.path().join("no/such/codes.npy");
    assert_fails_with(&["encode", "--checkpoint", s(trained()), "--out", s(&missing)], &["does not exist"]);
    assert!(std::fs::read_dir(dir.path()).expect("dir").next().is_none(), "nothing written");
}
