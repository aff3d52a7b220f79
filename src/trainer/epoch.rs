//! One epoch's training steps, in ticks (ticks.rs), as the CLI and the web page both run them:
//! submit while fewer than two ticks are in flight, read the oldest, report it, until the epoch's
//! steps have run or the caller stops submitting.
use super::{GpuTrainer, TickQueue};
use crate::gpu::params::LossTotals;
use crate::gpu::Gpu;

/// What the caller of `run_steps` decides and sees between ticks.
pub trait EpochControl {
    /// How many more steps may be submitted now: usize::MAX for no limit, 0 to stop the epoch
    /// once the ticks in flight are read (Ctrl-C, or the CLI's --interrupt-after-steps).
    fn allowance(&mut self) -> usize {
        usize::MAX
    }

    /// `steps` more steps were submitted.
    fn submitted(&mut self, _steps: usize) {}

    /// A tick was read: `done` of the epoch's `steps` steps have run, with loss totals `totals`.
    /// An error (a log that cannot be written) ends the epoch with it.
    fn tick(&mut self, done: usize, steps: usize, totals: &LossTotals) -> anyhow::Result<()>;
}

/// Where an epoch's steps ended: all `steps_per_epoch` done, or fewer when the caller stopped.
#[derive(Clone, Copy, Debug)]
pub struct EpochSteps {
    pub done: usize,
    pub totals: LossTotals,
}

impl GpuTrainer {
    /// Runs epoch `epoch` (1-based) from `from` (steps already done and their totals: a resumed
    /// epoch, else (0, zeros)) over `order`, a permutation of the training images. Errors: a GPU
    /// failure, or a loss that became non-finite (naming the step).
    pub async fn run_steps(
        &self,
        gpu: &Gpu,
        (epoch, order): (usize, &[u32]),
        from: EpochSteps,
        control: &mut impl EpochControl,
    ) -> anyhow::Result<EpochSteps> {
        if from.done > 0 {
            self.resume_epoch(gpu, order, from.done, from.totals);
        } else {
            self.start_epoch(gpu, order);
        }
        let steps = self.steps_per_epoch;
        let mut queue = TickQueue::new(gpu, steps, from.done);
        let mut at = from;
        loop {
            while queue.can_submit() {
                let most = control.allowance();
                if most == 0 {
                    break;
                }
                control.submitted(queue.submit(self, gpu, most)?);
            }
            // Nothing in flight: every step has run, or the caller stopped submitting.
            let Some((totals, counters, done)) = queue.read(self, gpu).await? else { return Ok(at) };
            at = EpochSteps { done, totals };
            self.check_finite(&counters, epoch)?;
            control.tick(done, steps, &totals)?;
        }
    }
}
