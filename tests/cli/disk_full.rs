//! A full disk while writing a checkpoint or a PNG: a clear error, the previous files intact, no
//! partial file left. Always by an injected failure (the temp file write_atomic writes is a
//! link to /dev/full, whose writes fail with ENOSPC); on a real small tmpfs too where the test
//! may mount one (as root).
use std::path::{Path, PathBuf};
use std::process::Command;

use super::checkpoints::{s, trained};
use super::{stderr, wgvae};

const NO_SPACE: &str = "No space left on device";

fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("read");
            (p, bytes)
        })
        .collect();
    out.sort();
    out
}

fn copy_run(to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for (p, bytes) in files(trained()) {
        std::fs::write(to.join(p.file_name().expect("name")), bytes).expect("copy");
    }
}

fn partials(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("read dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect()
}

#[test]
fn a_full_disk_while_writing_a_checkpoint_should_fail_clearly_and_keep_the_previous_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    copy_run(&run);
    let before = files(&run);
    std::os::unix::fs::symlink("/dev/full", run.join("checkpoint.safetensors.partial")).expect("symlink");
    let o = wgvae(&["train", "--resume", s(&run), "--epochs", "3"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(NO_SPACE) && err.contains("checkpoint.safetensors"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(partials(&run).is_empty(), "partial files left: {:?}", partials(&run));
    let ck = before.iter().find(|(p, _)| p.ends_with("checkpoint.safetensors")).expect("checkpoint");
    assert_eq!(&std::fs::read(&ck.0).expect("read"), &ck.1, "the previous checkpoint changed");
    wgvae::checkpoint::load(&run).expect("the previous checkpoint still loads");
}

#[test]
fn a_full_disk_while_writing_a_png_should_fail_clearly_and_leave_no_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let png = dir.path().join("s.png");
    std::os::unix::fs::symlink("/dev/full", dir.path().join("s.png.partial")).expect("symlink");
    let o = wgvae(&["sample", "--checkpoint", s(trained()), "--out", s(&png)]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(NO_SPACE) && err.contains("s.png"), "{err}");
    assert!(!png.exists() && partials(dir.path()).is_empty(), "files left: {:?}", files(dir.path()));
}

/// Unmounts the tmpfs however the test ends.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        Command::new("umount").arg(&self.0).status().ok();
    }
}

fn mount_tmpfs(at: &Path, bytes: u64) -> Option<Mounted> {
    std::fs::create_dir_all(at).ok()?;
    let size = format!("size={}k", bytes.div_ceil(1024));
    let o = Command::new("mount").args(["-t", "tmpfs", "-o", &size, "tmpfs", s(at)]).output().ok()?;
    if !o.status.success() {
        eprintln!("no tmpfs here ({}): the injected failures above cover a full disk", stderr(&o).trim());
        return None;
    }
    Some(Mounted(at.to_path_buf()))
}

#[test]
fn a_run_that_fills_a_small_tmpfs_should_stop_clearly_with_its_last_checkpoint_intact() {
    let dir = tempfile::tempdir().expect("temp dir");
    let small = ["--hidden", "24", "--latent", "2", "--seed", "3"];
    // One epoch on a roomy disk says how much a run directory takes.
    let sized = dir.path().join("sized");
    let o = wgvae(&[&["train", "--epochs", "1", "--out", s(&sized)][..], &small].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let used: u64 = files(&sized).iter().map(|(_, b)| b.len() as u64).sum();
    let checkpoint = std::fs::metadata(sized.join("checkpoint.safetensors")).expect("checkpoint").len();
    // Room for the first epoch's files and half a checkpoint more: the second epoch's rewrite of
    // the checkpoint (beside the old one) cannot fit.
    let Some(disk) = mount_tmpfs(&dir.path().join("disk"), used + checkpoint / 2 + 64 * 1024) else { return };
    let run = disk.0.join("run");
    let o = wgvae(&[&["train", "--epochs", "3", "--out", s(&run)][..], &small].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(NO_SPACE), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(partials(&run).is_empty(), "partial files left: {:?}", partials(&run));
    let ck = wgvae::checkpoint::load(&run).expect("the first epoch's checkpoint still loads");
    assert_eq!(ck.progress.expect("progress").epochs_done, 1);
}
