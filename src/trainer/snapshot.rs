//! The run's state read from the GPU as a `Checkpoint`: what the CLI writes after every epoch
//! (and on Ctrl-C) and what the web page downloads.
use super::GpuTrainer;
use crate::checkpoint::{Checkpoint, EpochMetrics, Progress, RngPosition};
use crate::config::RunConfig;
use crate::gpu::faults::GpuResult;
use crate::gpu::params::LossTotals;
use crate::gpu::Gpu;

impl GpuTrainer {
    /// The run's state after `epochs_done` epochs and `step_in_epoch` steps of the next one,
    /// whose loss totals so far are `totals`.
    pub async fn snapshot(
        &self,
        gpu: &Gpu,
        config: &RunConfig,
        history: &[EpochMetrics],
        epochs_done: usize,
        step_in_epoch: usize,
        totals: LossTotals,
    ) -> GpuResult<Checkpoint> {
        let (params, adam_m, adam_v) = self.read_training_state(gpu).await?;
        let counters = self.counters(gpu).await?;
        let progress = Progress {
            epochs_done,
            step_in_epoch,
            optimizer_step: counters.step,
            totals_bits: [totals.rec_sum.to_bits(), totals.kl_sum.to_bits(), totals.examples.to_bits()],
            baseline_bits: self.baseline_state(gpu).await?.map(f32::to_bits),
            rng: RngPosition {
                generator: "philox4x32-10 counters (element, cursor, step, stream) key (seed, 0); epoch shuffle StdRng((seed << 32) ^ epoch)".into(),
                seed: config.seed,
                optimizer_step: counters.step,
                epoch: epochs_done + 1,
                cursor: (step_in_epoch * config.batch) as u32,
            },
            history: history.to_vec(),
        };
        let table = self.read_table(gpu).await?;
        Ok(Checkpoint { config: config.clone(), params, adam: Some((adam_m, adam_v)), progress: Some(progress), table })
    }
}
