//! The CLI's side of a training epoch's steps (trainer/epoch.rs): the progress bar, Ctrl-C,
//! the testing flags (--interrupt-after-steps, --inject-fault-after-steps) and the per-tick log.
use anyhow::Result;

use super::interrupt;
use super::train_log::RunLog;
use crate::gpu::params::LossTotals;
use crate::trainer::EpochControl;

/// The CLI's side of an epoch's steps: the progress bar, Ctrl-C, and the testing flags.
pub(super) struct CliControl<'a> {
    pub(super) bar: indicatif::ProgressBar,
    stop_at: Option<u32>,
    fault_at: Option<u32>,
    /// Optimizer steps submitted in all, over epochs.
    submitted: &'a mut u32,
    gpu: &'a crate::gpu::Gpu,
    log: &'a RunLog,
    /// Optimizer steps before this epoch's first.
    first_step: u32,
}

impl<'a> CliControl<'a> {
    pub(super) fn new(
        (stop_at, fault_at): (Option<u32>, Option<u32>),
        (epoch, epochs, steps): (usize, usize, usize),
        submitted: &'a mut u32,
        (gpu, log): (&'a crate::gpu::Gpu, &'a RunLog),
    ) -> CliControl<'a> {
        let bar = indicatif::ProgressBar::new(steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        let first_step = ((epoch - 1) * steps) as u32;
        CliControl { bar, stop_at, fault_at, submitted, gpu, log, first_step }
    }
}

impl EpochControl for CliControl<'_> {
    fn allowance(&mut self) -> usize {
        match interrupt::stop_requested() {
            true => 0,
            false => self.stop_at.map_or(usize::MAX, |at| at.saturating_sub(*self.submitted) as usize),
        }
    }

    fn submitted(&mut self, steps: usize) {
        *self.submitted += steps as u32;
        if self.stop_at.is_some_and(|at| *self.submitted >= at) {
            interrupt::request_stop();
        }
        if self.fault_at.is_some_and(|at| *self.submitted >= at) {
            self.fault_at = None;
            crate::gpu::faults::inject(&self.gpu.device, &self.gpu.queue);
        }
    }

    fn tick(&mut self, done: usize, _steps: usize, totals: &LossTotals) -> Result<()> {
        self.bar.set_position(done as u64);
        self.bar.set_message(format!("loss {:.2}", totals.means().0));
        self.log.tick(self.first_step + done as u32, totals)
    }
}
