//! How long launches take on the GPU, for `bench`: from timestamp queries where the device has
//! them (each repetition in its own compute pass between two timestamps), else by the wall clock
//! around a submission and its wait, which also counts the submission's fixed cost.
use std::time::Instant;

use super::faults::GpuResult;
use super::kernels::{submit, Launch};
use super::Gpu;

/// Which clock `launch_ms` used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Clock {
    Timestamps,
    WallClock,
}

pub fn clock(gpu: &Gpu) -> Clock {
    match gpu.device.features().contains(wgpu::Features::TIMESTAMP_QUERY) {
        true => Clock::Timestamps,
        false => Clock::WallClock,
    }
}

/// Mean milliseconds of one run of `launch`, over `reps` runs (at most 2,048 with timestamps).
pub fn launch_ms(gpu: &Gpu, launch: &Launch, reps: usize) -> GpuResult<f64> {
    match clock(gpu) {
        Clock::Timestamps => timestamped_ms(gpu, launch, reps.clamp(1, wgpu::QUERY_SET_MAX_QUERIES as usize / 2)),
        Clock::WallClock => Ok(wall_ms(gpu, &vec![std::slice::from_ref(launch); reps.max(1)])? / reps.max(1) as f64),
    }
}

/// Milliseconds from submitting `lists` (one pass) to the GPU's finishing them.
pub fn wall_ms(gpu: &Gpu, lists: &[&[Launch]]) -> GpuResult<f64> {
    super::wait(gpu)?;
    let started = Instant::now();
    submit(gpu, lists)?;
    super::wait(gpu)?;
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

fn timestamped_ms(gpu: &Gpu, launch: &Launch, reps: usize) -> GpuResult<f64> {
    let count = 2 * reps as u32;
    let set = gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
        label: Some("bench timestamps"),
        ty: wgpu::QueryType::Timestamp,
        count,
    });
    let resolved = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench timestamps resolved"),
        size: count as u64 * 8,
        usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device.create_command_encoder(&Default::default());
    for r in 0..reps as u32 {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(launch.name),
            timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                query_set: &set,
                beginning_of_pass_write_index: Some(2 * r),
                end_of_pass_write_index: Some(2 * r + 1),
            }),
        });
        launch.record(&mut pass);
    }
    encoder.resolve_query_set(&set, 0..count, &resolved, 0);
    gpu.queue.submit([encoder.finish()]);
    let ticks = super::read::<u64>(gpu, &resolved, 0, count as usize)?;
    let period_ns = gpu.queue.get_timestamp_period() as f64;
    let total: u64 = ticks.chunks(2).map(|t| t[1].saturating_sub(t[0])).sum();
    Ok(total as f64 * period_ns / 1e6 / reps as f64)
}
