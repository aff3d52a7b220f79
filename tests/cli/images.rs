//! Folders of images (ImageFolder layout, flat folders, splits, PNG and JPEG, grey and colour) as
//! `--data`: training writes RGB grids for colour data, conditional models sample by class name,
//! and every bad folder fails with a message that names the problem.
use std::path::{Path, PathBuf};

use super::{assert_fails_with, stderr, wgvae};

pub(super) fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(|a| a.as_str()).collect()
}

pub(super) fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Image `i` of class `c`: a (height, width) image whose values depend on (i, c, channel, y, x).
fn pixels(i: usize, c: usize, (h, w): (usize, usize), channels: usize) -> Vec<u8> {
    (0..h * w * channels).map(|k| ((k * 7 + i * 31 + c * 90) % 256) as u8).collect()
}

/// Writes `n` images per class (no class folders when `classes` is empty) under `dir`.
pub(super) fn write_folder(dir: &Path, classes: &[&str], n: usize, size: (usize, usize), colour: bool) {
    let names: Vec<&str> = if classes.is_empty() { vec![""] } else { classes.to_vec() };
    for (c, class) in names.iter().enumerate() {
        let d = dir.join(class);
        std::fs::create_dir_all(&d).expect("class dir");
        for i in 0..n {
            let (w, h) = (size.1 as u32, size.0 as u32);
            let path = d.join(format!("{i:03}.{}", if i % 4 == 3 { "jpg" } else { "png" }));
            if colour {
                let img = image::RgbImage::from_raw(w, h, pixels(i, c, size, 3)).expect("rgb image");
                img.save(&path).expect("save");
            } else {
                let img = image::GrayImage::from_raw(w, h, pixels(i, c, size, 1)).expect("grey image");
                img.save(&path).expect("save");
            }
        }
    }
}

const SMALL: &[&str] = &["--epochs", "1", "--hidden", "16", "--latent", "2", "--batch", "8"];

fn train(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--data", s(data), "--out", s(out)];
    args.extend(SMALL);
    args.extend(extra);
    wgvae(&args)
}

#[test]
fn a_colour_image_folder_should_train_and_write_rgb_grids() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("shapes");
    write_folder(&data.join("train"), &["cat", "dog"], 20, (6, 10), true);
    write_folder(&data.join("val"), &["cat", "dog"], 4, (6, 10), true);
    let out = dir.path().join("run");
    let o = train(&data, &out, &["--conditional"]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("40 train / 8 validation") && stdout.contains("180-16-2"), "{stdout}");
    for png in ["samples.png", "reconstructions.png"] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png}: {e}"));
        assert_eq!(img.color(), image::ColorType::Rgb8, "{png} is RGB");
    }
    let cat = dir.path().join("cat.png");
    let o = wgvae(&["sample", "--checkpoint", s(&out), "--class", "dog", "--n", "4", "--out", s(&cat)]);
    assert!(o.status.success() && cat.is_file(), "sample --class dog: {}", stderr(&o));
    assert_fails_with(&["sample", "--checkpoint", s(&out), "--class", "cow"], &["--class cow", "cat, dog"]);
}

#[test]
fn the_data_command_should_describe_a_folder_and_its_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("pets");
    write_folder(&data, &["cat", "dog"], 10, (6, 10), true);
    let grid = dir.path().join("grid.png");
    let run = || wgvae(&["data", s(&data), "--out", s(&grid), "--n", "5"]);
    let o = run();
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "data failed: {}", stderr(&o));
    for needle in ["6x10x3 RGB", "classes: 2 (cat, dog)", "train:      18 images (cat 9, dog 9)", "written to"] {
        assert!(out.contains(needle), "expected {needle:?} in: {out}");
    }
    assert_eq!(image::open(&grid).expect("grid").color(), image::ColorType::Rgb8);
    let again = String::from_utf8_lossy(&run().stdout).to_string();
    assert!(again.contains("cache: read from"), "the second look reads the cache: {again}");
}

/// A dataset split into many shards (WGVAE_SHARD_BYTES forced down to 25 images of 8 x 8) trains
/// to the same bits as the same dataset in one buffer.
#[test]
fn sharded_training_should_match_unsharded_bit_for_bit() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("digits");
    write_folder(&data, &["a", "b", "c"], 100, (8, 8), false);
    let run = |name: &str, max_binding: Option<&str>| {
        let out = dir.path().join(name);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_wgvae"));
        cmd.args(["train", "--data", s(&data), "--out", s(&out), "--binarize", "dynamic"]).args(SMALL);
        cmd.env("WGVAE_CACHE_DIR", dir.path().join("cache"));
        if let Some(bytes) = max_binding {
            cmd.env("WGVAE_SHARD_BYTES", bytes);
        }
        let o = cmd.output().expect("running wgvae");
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        let shards = String::from_utf8_lossy(&o.stdout).contains("in 11 + 2 buffers");
        assert_eq!(shards, max_binding.is_some(), "{name}: the images' buffers");
        let csv = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics");
        let losses: Vec<String> = csv.lines().map(|l| l.split(',').take(7).collect::<Vec<_>>().join(",")).collect();
        let params = wgvae::checkpoint::load(&out.join("model.safetensors")).expect("model").params;
        (losses, params.iter().map(|v| v.to_bits()).collect::<Vec<u32>>())
    };
    let whole = run("whole", None);
    let sharded = run("sharded", Some("1600")); // 270 training images in 11 shards, 30 validation in 2
    assert_eq!(whole.0, sharded.0, "the loss columns");
    assert!(whole.1 == sharded.1, "the weights differ between the sharded and the unsharded run");
}

#[test]
fn a_flat_grey_folder_should_train_and_refuse_a_conditional_model() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("flat");
    write_folder(&data, &[], 30, (8, 8), false);
    std::fs::write(data.join("notes.txt"), "not an image").expect("write");
    let deep =
        image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_fn(8, 8, |x, y| image::Luma([(x * y * 1000) as u16]));
    deep.save(data.join("sixteen-bit.png")).expect("a 16-bit PNG");
    let o = train(&data, &dir.path().join("run"), &[]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    assert!(stderr(&o).contains("ignored 1 files"), "the text file is counted: {}", stderr(&o));
    let o = train(&data, &dir.path().join("run2"), &["--conditional"]);
    assert!(!o.status.success() && stderr(&o).contains("flat folder"), "{}", stderr(&o));
}

#[test]
fn mixed_sizes_need_image_size_and_bad_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("mixed");
    write_folder(&data.join("a"), &[], 12, (8, 8), false);
    write_folder(&data.join("b"), &[], 12, (12, 10), true);
    let out = dir.path().join("run");
    let (data_s, out_s) = (s(&data).to_string(), s(&out).to_string());
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut args: Vec<String> = ["train", "--data", &data_s, "--out", &out_s].map(String::from).to_vec();
        args.extend(SMALL.iter().chain(extra).map(|a| a.to_string()));
        args
    };
    assert_fails_with(&strs(&base(&[])), &["differ in size", "--image-size"]);
    let o = wgvae(&strs(&base(&["--image-size", "8", "--arch", "conv"])));
    assert!(o.status.success(), "--image-size 8: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(stdout.contains("8x8x3-conv32-conv64-2"), "resized to 8x8 in RGB (auto), a conv VAE: {stdout}");
    // PyTorch's names and layouts: Conv2d [c_out, c_in, 4, 4], ConvTranspose2d [c_in, c_out, 4, 4].
    let bytes = std::fs::read(out.join("model.safetensors")).expect("model");
    let st = safetensors::SafeTensors::deserialize(&bytes).expect("safetensors");
    let shapes: Vec<(String, Vec<usize>)> = st.tensors().into_iter().map(|(n, t)| (n, t.shape().to_vec())).collect();
    for (name, shape) in [
        ("enc.0.weight", vec![32, 3, 4, 4]),
        ("enc.1.weight", vec![64, 32, 4, 4]),
        ("fc21.weight", vec![2, 256]),
        ("fc22.bias", vec![2]),
        ("fc3.weight", vec![256, 2]),
        ("dec.0.weight", vec![64, 32, 4, 4]),
        ("dec.1.weight", vec![32, 3, 4, 4]),
        ("dec.1.bias", vec![3]),
    ] {
        assert!(shapes.contains(&(name.to_string(), shape.clone())), "{name} {shape:?} in {shapes:?}");
    }
    assert_fails_with(&strs(&base(&["--image-size", "10", "--arch", "conv"])), &["--arch conv", "multiples of 4"]);
    let o = wgvae(&strs(&base(&["--image-size", "10", "--arch", "mlp"])));
    assert!(o.status.success(), "--arch mlp takes any size: {}", stderr(&o));
    assert_fails_with(&strs(&base(&["--image-size", "0x8"])), &["--image-size 0x8"]);
    assert_fails_with(&strs(&base(&["--image-size", "big"])), &["big", "HxW"]);

    let broken = data.join("a").join("broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\nnot really").expect("write");
    std::fs::write(data.join("a").join("empty.png"), b"").expect("write");
    assert_fails_with(&strs(&base(&["--image-size", "8"])), &["broken.png", "--skip-bad"]);
    let o = wgvae(&strs(&base(&["--image-size", "8", "--skip-bad"])));
    assert!(o.status.success() && stderr(&o).contains("skipped 2 images"), "{}", stderr(&o));

    std::fs::create_dir_all(data.join("c")).expect("dir");
    assert_fails_with(&strs(&base(&["--image-size", "8", "--skip-bad"])), &["\"c\"", "holds no images"]);
}

#[test]
fn folders_without_images_and_symlink_loops_should_be_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).expect("dir");
    let out = dir.path().join("run");
    assert_fails_with(&["train", "--data", s(&empty), "--out", s(&out)], &["holds no images"]);
    let looped: PathBuf = dir.path().join("looped");
    write_folder(&looped.join("a"), &[], 4, (4, 4), false);
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&looped, looped.join("a").join("again")).expect("symlink");
        assert_fails_with(&["train", "--data", s(&looped), "--out", s(&out)], &["symlink loop"]);
    }
    assert!(!out.join("metrics.csv").exists(), "no run started");
}
