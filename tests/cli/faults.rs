//! A GPU failure in the middle of a run (an invalid dispatch submitted after a given step, as
//! `train --inject-fault-after-steps` does): the command says what wgpu refused, exits with 3, and
//! ends as any error does: the files of finished epochs written whole, no partial file, no lock.
use std::path::Path;

use super::checkpoints::{s, trained, SMALL};
use super::{stderr, wgvae};

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).expect("run dir").flatten().map(|e| e.file_name().to_string_lossy().into()).collect();
    names.sort();
    names
}

#[test]
fn a_gpu_fault_in_the_second_epoch_should_exit_3_and_leave_the_first_epochs_files_whole() {
    // The run `trained()` made with the same flags tells the steps per epoch.
    let steps = wgvae::checkpoint::load(trained()).expect("checkpoint").progress.expect("progress").optimizer_step / 2;
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let at = (steps + 3).to_string();
    let mut args = vec!["train", "--epochs", "2", "--out", s(&run), "--inject-fault-after-steps", &at];
    args.extend(SMALL);
    let o = wgvae(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "a GPU failure exits with 3: {err}");
    assert!(err.starts_with("error: the GPU ("), "one error line, the fault's message: {err}");
    assert!(err.contains("refused an operation") && err.to_lowercase().contains("pipeline"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let left = names(&run);
    assert!(!left.iter().any(|n| n.ends_with(".partial") || n == "run.lock"), "left behind: {left:?}");
    for file in ["checkpoint.safetensors", "metrics.csv", "curves.png", "samples_epoch001.png"] {
        assert!(left.iter().any(|n| n == file), "epoch 1 wrote {file}: {left:?}");
    }
    let ck = wgvae::checkpoint::load(&run).expect("epoch 1's checkpoint loads");
    let progress = ck.progress.expect("progress");
    assert_eq!((progress.epochs_done, progress.step_in_epoch, progress.optimizer_step), (1, 0, steps));
    // The run goes on from there as if nothing had happened.
    let o = wgvae(&["train", "--resume", s(&run)]);
    assert!(o.status.success(), "resume after the fault: {}", stderr(&o));
    let resumed = wgvae::checkpoint::load(&run).expect("checkpoint").params;
    let straight = wgvae::checkpoint::load(trained()).expect("checkpoint").params;
    assert!(resumed == straight, "resumed weights differ from the run without the fault");
}

#[test]
fn a_gpu_fault_before_any_checkpoint_should_exit_3_and_leave_only_the_log_of_what_ran() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let mut args = vec!["train", "--epochs", "1", "--out", s(&run), "--inject-fault-after-steps", "1"];
    args.extend(SMALL);
    let o = wgvae(&args);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.starts_with("error: the GPU (") && !err.contains("panicked"), "{err}");
    let left = names(&run);
    assert!(
        left.len() == 1 && left[0].starts_with("events.out.tfevents."),
        "only TensorBoard's log, no lock: {left:?}"
    );
}
