//! Ticks: a run of training steps submitted together with a copy of the loss totals and the
//! counters into one of two persistent staging buffers. The host reads tick N (waiting for that
//! submission only) while the GPU already runs tick N + 1, so the GPU never idles on a readback
//! and no staging buffer is made per tick.
use std::cell::Cell;
use std::collections::VecDeque;

use super::GpuTrainer;
use crate::gpu::faults::GpuFault;
use crate::gpu::params::{Counters, LossTotals, NO_BAD_STEP};
use crate::gpu::{mapped_range, Gpu, Mapping};

const TOTALS_BYTES: u64 = std::mem::size_of::<LossTotals>() as u64;
const SLOT_BYTES: u64 = TOTALS_BYTES + std::mem::size_of::<Counters>() as u64;

/// The two staging buffers, used in turn: at most two ticks may be in flight.
pub(super) struct TickSlots {
    slots: [wgpu::Buffer; 2],
    next: Cell<usize>,
}

impl TickSlots {
    pub(super) fn new(gpu: &Gpu) -> TickSlots {
        let slot = || crate::gpu::staging(gpu, "tick readback", SLOT_BYTES);
        TickSlots { slots: [slot(), slot()], next: Cell::new(0) }
    }
}

/// A submitted tick; `GpuTrainer::read_tick` waits for it. Read every tick, in order, before
/// submitting a third: its slot is busy until then.
#[must_use = "a tick's slot stays mapped until the tick is read"]
pub struct Tick {
    slot: usize,
    submission: wgpu::SubmissionIndex,
    mapping: Mapping,
}

impl GpuTrainer {
    /// Submits `steps` training steps and the copy of their totals and counters, in one submission.
    pub fn submit_tick(&self, gpu: &Gpu, steps: usize) -> Result<Tick, GpuFault> {
        let slot = self.ticks.next.get();
        self.ticks.next.set(1 - slot);
        let staging = &self.ticks.slots[slot];
        let mut encoder = gpu.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for _ in 0..steps {
                for launch in &self.train_step {
                    launch.record(&mut pass);
                }
            }
        }
        encoder.copy_buffer_to_buffer(&self.bufs.totals, 0, staging, 0, TOTALS_BYTES);
        encoder.copy_buffer_to_buffer(&self.bufs.counters, 0, staging, TOTALS_BYTES, SLOT_BYTES - TOTALS_BYTES);
        let submission = gpu.queue.submit([encoder.finish()]);
        gpu.check()?;
        let mapping = Mapping::request(&staging.slice(..));
        Ok(Tick { slot, submission, mapping })
    }

    /// Waits for `tick`'s submission (not for later ones) and reads the totals of the pass so far
    /// and the counters, as they were when its last step ended.
    pub async fn read_tick(&self, gpu: &Gpu, tick: Tick) -> Result<(LossTotals, Counters), GpuFault> {
        tick.mapping.wait(gpu, tick.submission).await?;
        let staging = &self.ticks.slots[tick.slot];
        let bytes = mapped_range(gpu, &staging.slice(..))?.to_vec();
        staging.unmap();
        let totals: LossTotals = bytemuck::pod_read_unaligned(&bytes[..TOTALS_BYTES as usize]);
        let counters: Counters = bytemuck::pod_read_unaligned(&bytes[TOTALS_BYTES as usize..]);
        Ok((totals, counters))
    }

    /// An error naming the step where the loss stopped being finite, if one did (the GPU records
    /// the first such step in the counters).
    pub fn check_finite(&self, c: &Counters, epoch: usize) -> anyhow::Result<()> {
        if c.bad_step != NO_BAD_STEP {
            let in_epoch = c.bad_step as usize - (epoch - 1) * self.steps_per_epoch + 1;
            anyhow::bail!(
                "the loss became non-finite at epoch {epoch}, step {in_epoch} of {} (optimizer step {}); \
                 try a lower --lr",
                self.steps_per_epoch,
                c.bad_step + 1
            );
        }
        Ok(())
    }
}

/// An epoch's submitted ticks, oldest first, each with the steps of the epoch done when it ends:
/// at most two, so the GPU runs the next tick while the host reads one.
pub struct TickQueue {
    tick_steps: usize,
    steps: usize,
    submitted: usize,
    in_flight: VecDeque<(Tick, usize)>,
}

impl TickQueue {
    /// An epoch of `steps` steps of which `done` have run, in ticks sized for `gpu` (KernelPlan::tick_steps in plan/mod.rs).
    pub fn new(gpu: &Gpu, steps: usize, done: usize) -> TickQueue {
        TickQueue { tick_steps: gpu.plan().tick_steps(), steps, submitted: done, in_flight: VecDeque::new() }
    }

    /// Whether another tick may go: fewer than two in flight and steps left to submit.
    pub fn can_submit(&self) -> bool {
        self.in_flight.len() < 2 && self.submitted < self.steps
    }

    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    /// Submits a tick of tick_steps steps, or fewer (`most`, and what is left of the epoch);
    /// returns how many.
    pub fn submit(&mut self, trainer: &GpuTrainer, gpu: &Gpu, most: usize) -> Result<usize, GpuFault> {
        let n = self.tick_steps.min(most).min(self.steps - self.submitted).max(1);
        let tick = trainer.submit_tick(gpu, n)?;
        self.submitted += n;
        self.in_flight.push_back((tick, self.submitted));
        Ok(n)
    }

    /// Reads the oldest tick: the epoch's totals so far, the counters and the steps done; None
    /// when nothing is in flight.
    pub async fn read(
        &mut self,
        trainer: &GpuTrainer,
        gpu: &Gpu,
    ) -> Result<Option<(LossTotals, Counters, usize)>, GpuFault> {
        let Some((tick, done)) = self.in_flight.pop_front() else { return Ok(None) };
        let (totals, counters) = trainer.read_tick(gpu, tick).await?;
        Ok(Some((totals, counters, done)))
    }
}
