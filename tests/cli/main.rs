//! The `wgvae` binary as a user runs it: a short training run's outputs, and bad input;
//! `checkpoints` covers checkpoints, resume, evaluation and the picture commands.
use std::path::Path;
use std::process::{Command, Output};

mod bench;
mod checkpoints;
mod configs;
mod conv;
mod demos;
mod disk_full;
mod encode;
mod faults;
mod fuzz;
mod images;
mod layout;
mod malformed;
mod malformed_cases;
mod objectives;
mod plans;
mod python;
mod state_dict;
mod tensorboard;

pub fn wgvae(args: &[&str]) -> Output {
    // Decoded image caches go to a test folder, not the user's ~/.cache.
    let cache = std::env::temp_dir().join("wgvae-test-cache");
    Command::new(env!("CARGO_BIN_EXE_wgvae")).args(args).env("WGVAE_CACHE_DIR", cache).output().expect("running wgvae")
}

/// A folder of IDX files with 2,000 of the embedded set's training images and labels, evenly
/// spaced (the set is sorted by digit), 1,800 to train and 200 held out: training tests that only
/// need a loss to fall run on it in a fifth of the time.
pub fn small_mnist() -> &'static str {
    static DIR: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mnist-2000");
        std::fs::create_dir_all(&dir).expect("create the small set's folder");
        let all = wgvae::data::embedded().expect("the embedded set");
        let n = 2000usize;
        let mut images = [2051u32, n as u32, 28, 28].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        let picks: Vec<usize> = (0..n).map(|i| i * all.train.len() / n).collect();
        images.extend(picks.iter().flat_map(|&i| all.train.image(i)));
        let mut labels = [2049u32, n as u32].iter().flat_map(|v| v.to_be_bytes()).collect::<Vec<u8>>();
        labels.extend(picks.iter().map(|&i| all.train.labels[i]));
        for (name, bytes) in [("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels)] {
            let part = dir.join(format!("{name}.part"));
            std::fs::write(&part, bytes).expect("write the small set");
            std::fs::rename(&part, dir.join(name)).expect("move the small set into place");
        }
        dir.to_str().expect("utf-8 path").to_string()
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// The command must fail, without a panic, with a message containing every one of `needles`.
pub fn assert_fails_with(args: &[&str], needles: &[&str]) {
    let o = wgvae(args);
    let err = stderr(&o);
    assert!(!o.status.success(), "wgvae {args:?} succeeded; stderr: {err}");
    assert!(!err.contains("panicked"), "wgvae {args:?} panicked: {err}");
    for n in needles {
        assert!(err.contains(n), "wgvae {args:?}: expected {n:?} in the error, got: {err}");
    }
}

#[test]
fn train_should_write_decodable_pngs_and_a_metrics_row_per_epoch() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let o = wgvae(&[
        "train",
        "--epochs",
        "2",
        "--hidden",
        "64",
        "--latent",
        "4",
        "--batch",
        "256",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("adapter:"), "the adapter in use is printed: {stdout}");
    for png in ["samples.png", "samples_epoch001.png", "samples_epoch002.png", "reconstructions.png", "curves.png"] {
        let img = image::open(out.join(png)).unwrap_or_else(|e| panic!("{png} does not decode: {e}"));
        assert!(img.width() >= 8 * 28 && img.height() >= 4 * 28, "{png} is {}x{}", img.width(), img.height());
        let luma = img.to_luma8();
        let (lo, hi) = luma.pixels().fold((255u8, 0u8), |(lo, hi), p| (lo.min(p[0]), hi.max(p[0])));
        assert!(hi > lo + 100, "{png} is nearly flat ({lo}..{hi}): nothing was drawn");
    }
    let csv = std::fs::read_to_string(out.join("metrics.csv")).expect("metrics.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second");
    assert_eq!(lines.len(), 3, "one row per epoch: {csv}");
    let rows: Vec<Vec<f64>> =
        lines[1..].iter().map(|l| l.split(',').map(|v| v.parse().expect("number")).collect()).collect();
    for row in &rows {
        assert_eq!(row.len(), 9);
        assert!(row.iter().all(|v| v.is_finite() && *v >= 0.0), "{row:?}");
        assert!((row[1] - row[2] - row[3]).abs() < 1e-2, "loss = rec + kl: {row:?}");
    }
    assert!(rows[1][4] < rows[0][4], "validation loss falls from epoch 1 to 2: {csv}");
    assert!(!std::fs::read_dir(&out).expect("run dir").any(|e| e
        .expect("entry")
        .path()
        .to_string_lossy()
        .ends_with(".partial")));
}

#[test]
fn absurd_flags_should_be_rejected_naming_the_flag() {
    assert_fails_with(&["train", "--batch", "0"], &["--batch 0"]);
    assert_fails_with(&["train", "--lr", "-1"], &["--lr"]);
    assert_fails_with(&["train", "--lr", "NaN"], &["--lr"]);
    assert_fails_with(&["train", "--latent", "0"], &["--latent 0"]);
    assert_fails_with(&["train", "--epochs", "0"], &["--epochs 0"]);
    assert_fails_with(&["train", "--hidden", "0"], &["--hidden 0"]);
    assert_fails_with(&["train", "--batch", "20000"], &["--batch 20000", "9000 training images"]);
    assert_fails_with(&["train", "--binarize", "sometimes"], &["--binarize"]);
}

fn write_idx_images(path: &Path, count: u32, rows: u32, cols: u32, extra: i64) {
    let mut bytes = Vec::new();
    for v in [2051u32, count, rows, cols] {
        bytes.extend(v.to_be_bytes());
    }
    let len = (count * rows * cols) as i64 + extra;
    bytes.extend((0..len.max(0)).map(|i| (i % 251) as u8));
    std::fs::write(path, bytes).expect("write images");
}

fn write_idx_labels(path: &Path, count: u32) {
    let mut bytes = Vec::new();
    bytes.extend(2049u32.to_be_bytes());
    bytes.extend(count.to_be_bytes());
    bytes.extend((0..count).map(|i| (i % 10) as u8));
    std::fs::write(path, bytes).expect("write labels");
}

#[test]
fn bad_idx_files_should_be_rejected_naming_the_file_and_the_problem() {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path();
    let data = d.to_str().expect("utf-8");
    let images = d.join("train-images-idx3-ubyte");
    let labels = d.join("train-labels-idx1-ubyte");
    let out = d.join("out");
    let out = out.to_str().expect("utf-8");

    assert_fails_with(&["train", "--data", data, "--out", out], &["holds no images", "train-images-idx3-ubyte"]);

    write_idx_images(&images, 300, 28, 28, -100); // truncated
    write_idx_labels(&labels, 300);
    assert_fails_with(
        &["train", "--data", data, "--out", out],
        &["train-images-idx3-ubyte", "300 images of 28x28", "bytes"],
    );

    write_idx_images(&images, 300, 5, 5, 0); // 25 values per image: not a multiple of 4
    assert_fails_with(&["train", "--data", data, "--out", out], &["5x5", "multiple of 4"]);

    write_idx_images(&images, 300, 10, 10, 0); // a test split of another size
    write_idx_images(&d.join("t10k-images-idx3-ubyte"), 50, 28, 28, 0);
    write_idx_labels(&d.join("t10k-labels-idx1-ubyte"), 50);
    assert_fails_with(&["train", "--data", data, "--out", out], &["t10k-images-idx3-ubyte", "28x28", "10x10"]);
    std::fs::remove_file(d.join("t10k-images-idx3-ubyte")).expect("remove");
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte")).expect("remove");

    write_idx_images(&images, 300, 28, 28, 0);
    write_idx_labels(&labels, 299); // counts disagree
    assert_fails_with(&["train", "--data", data, "--out", out], &["300 images", "299 labels"]);

    std::fs::write(&labels, [0u8, 0, 8, 3, 0, 0, 0, 1, 7]).expect("write"); // wrong magic
    assert_fails_with(&["train", "--data", data, "--out", out], &["train-labels-idx1-ubyte", "magic"]);

    write_idx_labels(&labels, 300);
    std::fs::write(d.join("t10k-images-idx3-ubyte.gz"), b"\x1f\x8bnot really gzip").expect("write");
    write_idx_labels(&d.join("t10k-labels-idx1-ubyte"), 50);
    assert_fails_with(&["train", "--data", data, "--out", out], &["t10k-images-idx3-ubyte.gz", "gzip"]);
    assert!(!Path::new(out).join("metrics.csv").exists(), "no output for a run that never started");
}

#[test]
fn an_unwritable_run_directory_should_be_rejected_before_training() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"x").expect("write");
    let out = file.join("run");
    assert_fails_with(&["train", "--out", out.to_str().expect("utf-8")], &["--out", "cannot create the run directory"]);
}

#[test]
fn a_missing_fashion_mnist_install_should_say_how_to_install_it() {
    if Path::new("/usr/share/datasets/fashion-mnist").exists() {
        let o = wgvae(&["train", "--dataset", "fashion-mnist", "--epochs", "0"]);
        assert!(!o.status.success(), "--epochs 0 must still be rejected");
        return;
    }
    assert_fails_with(&["train", "--dataset", "fashion-mnist"], &["apt-get install dataset-fashion-mnist"]);
}

#[test]
fn devices_should_list_an_adapter() {
    let o = wgvae(&["devices"]);
    assert!(o.status.success(), "devices failed (no adapter? install mesa-vulkan-drivers): {}", stderr(&o));
    assert!(!o.stdout.is_empty());
}

#[test]
fn a_second_run_on_a_busy_run_directory_should_be_refused_and_a_stale_lock_taken_over() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let out_s = out.to_str().expect("utf-8 path");
    /// Kills the child however the test ends, so a failed assertion leaves no run behind.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
    let mut first = Command::new(env!("CARGO_BIN_EXE_wgvae"))
        .args(["train", "--epochs", "1000", "--hidden", "8", "--latent", "2", "--out", out_s])
        .env("WGVAE_CACHE_DIR", std::env::temp_dir().join("wgvae-test-cache"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(KillOnDrop)
        .expect("spawn the first run");
    let lock = out.join(wgvae::run_lock::LOCK_FILE);
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.is_empty()) {
        assert!(started.elapsed().as_secs() < 120, "the first run never took its lock");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let holder = format!("wgvae process {}", first.0.id());
    assert_fails_with(&["train", "--epochs", "1", "--out", out_s], &["in use by", &holder, "--out"]);
    assert_fails_with(&["train", "--resume", out_s], &["in use by", &holder]);
    // Killed, the first run leaves its lock file behind; the OS has released the lock itself.
    first.0.kill().expect("kill the first run");
    first.0.wait().expect("reap the first run");
    assert!(lock.is_file(), "a killed run cannot remove its lock file");
    let o = wgvae(&["train", "--epochs", "1", "--hidden", "8", "--latent", "2", "--out", out_s]);
    assert!(o.status.success(), "the stale lock should be taken over: {}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("took over the lock left by") && stdout.contains(&holder), "{stdout}");
    assert!(!lock.exists(), "a run that ends removes its lock file");
}
