//! Stopping a training run early on request (Ctrl-C, or --interrupt-after-steps): the run
//! finishes the steps in flight, writes a checkpoint and returns `Interrupted`, which main turns
//! into exit status 130.
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by Ctrl-C (or --interrupt-after-steps): stop after the steps in flight, checkpoint, exit.
static STOP: AtomicBool = AtomicBool::new(false);

/// The run ended early on request, with a checkpoint to resume from; main exits with 130.
#[derive(Debug)]
pub struct Interrupted(pub String);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Interrupted {}

/// Ctrl-C during a training run (main.rs installs the handler): the first asks the run to stop
/// after the steps in flight and returns true; a second returns false, and main quits at once
/// (checkpoints are written atomically, so nothing is torn).
pub fn ctrl_c() -> bool {
    if STOP.swap(true, Ordering::SeqCst) {
        eprintln!("\nsecond Ctrl-C: quitting without a new checkpoint");
        return false;
    }
    eprintln!("\nCtrl-C: finishing the steps in flight, then writing a checkpoint (Ctrl-C again to quit at once)");
    true
}

/// Asks the run to stop after the steps in flight (--interrupt-after-steps).
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}
