//! Ticks: a run of training steps submitted together with a copy of the loss totals and the
//! counters into one of two persistent staging buffers. The host reads tick N (waiting for that
//! submission only) while the GPU already runs tick N + 1, so the GPU never idles on a readback
//! and no staging buffer is made per tick.
use std::cell::Cell;
use std::sync::{Arc, Mutex};

use super::GpuTrainer;
use crate::gpu::params::{Counters, LossTotals};
use crate::gpu::{faults, Gpu};

const TOTALS_BYTES: u64 = std::mem::size_of::<LossTotals>() as u64;
const SLOT_BYTES: u64 = TOTALS_BYTES + std::mem::size_of::<Counters>() as u64;

type MapResult = Arc<Mutex<Option<Result<(), wgpu::BufferAsyncError>>>>;

/// The two staging buffers, used in turn: at most two ticks may be in flight.
pub(super) struct TickSlots {
    slots: [wgpu::Buffer; 2],
    next: Cell<usize>,
}

impl TickSlots {
    pub(super) fn new(gpu: &Gpu) -> TickSlots {
        let slot = || {
            gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tick readback"),
                size: SLOT_BYTES,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        };
        TickSlots { slots: [slot(), slot()], next: Cell::new(0) }
    }
}

/// A submitted tick; `GpuTrainer::read_tick` waits for it. Read every tick, in order, before
/// submitting a third: its slot is busy until then.
#[must_use = "a tick's slot stays mapped until the tick is read"]
pub struct Tick {
    slot: usize,
    submission: wgpu::SubmissionIndex,
    mapped: MapResult,
}

impl GpuTrainer {
    /// Submits `steps` training steps and the copy of their totals and counters, in one submission.
    pub fn submit_tick(&self, gpu: &Gpu, steps: usize) -> Tick {
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
        let mapped: MapResult = Arc::new(Mutex::new(None));
        let result = mapped.clone();
        staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            *result.lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
        });
        Tick { slot, submission, mapped }
    }

    /// Waits for `tick`'s submission (not for later ones) and reads the totals of the pass so far
    /// and the counters, as they were when its last step ended.
    pub fn read_tick(&self, gpu: &Gpu, tick: Tick) -> (LossTotals, Counters) {
        let wait = wgpu::PollType::Wait { submission_index: Some(tick.submission), timeout: None };
        if let Err(e) = gpu.device.poll(wait) {
            faults::stop(&faults::lost(&gpu.info.name, &e.to_string()));
        }
        if let Some(Err(e)) = tick.mapped.lock().unwrap_or_else(|p| p.into_inner()).take() {
            faults::stop(&faults::lost(&gpu.info.name, &e.to_string()));
        }
        let staging = &self.ticks.slots[tick.slot];
        let bytes =
            staging.slice(..).get_mapped_range().expect("a tick's slot is mapped once its submission is done").to_vec();
        staging.unmap();
        let totals: LossTotals = bytemuck::pod_read_unaligned(&bytes[..TOTALS_BYTES as usize]);
        let counters: Counters = bytemuck::pod_read_unaligned(&bytes[TOTALS_BYTES as usize..]);
        (totals, counters)
    }
}
