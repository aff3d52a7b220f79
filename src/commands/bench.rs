//! The `bench` command: training throughput of the whole step, then each kernel on its own.
//! Times are wall-clock around submit-and-wait, so they work on every adapter (no timestamp
//! queries needed); the per-kernel table shows where a step's time goes.
use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Result;

use crate::commands::draws::epoch_order;
use crate::config::RunConfig;
use crate::gpu::kernels::submit;
use crate::gpu::DeviceChoice;
use crate::gpu::{self, Launch};
use crate::session::{self, Session};

pub struct BenchOptions {
    /// The model and batch to time (one epoch's worth of steps at most).
    pub config: RunConfig,
    /// Timed training steps, after 5 warm-up steps.
    pub steps: usize,
    /// Repetitions of each kernel when timing kernels one by one.
    pub kernel_reps: usize,
    /// Print every launch of the step (in order, with its grid), not only the sums per kernel.
    pub each: bool,
    pub device: DeviceChoice,
}

pub fn bench(args: &BenchOptions) -> Result<()> {
    let Session { gpu, data, trainer, .. } = session::open_new(args.config.clone(), &args.device)?;
    println!("adapter: {}", gpu.describe());
    if let Ok(width) = std::env::var("LP_NATIVE_VECTOR_WIDTH") {
        println!("LP_NATIVE_VECTOR_WIDTH={width}");
    }
    let b = args.config.batch;
    let steps = args.steps.min(trainer.steps_per_epoch - 5.min(trainer.steps_per_epoch - 1));
    trainer.start_epoch(&gpu, &epoch_order(data.train.len(), args.config.seed, 1));
    trainer.train_steps(&gpu, 5.min(trainer.steps_per_epoch - 1));
    gpu::wait(&gpu);

    let started = Instant::now();
    trainer.train_steps(&gpu, steps);
    gpu::wait(&gpu);
    let seconds = started.elapsed().as_secs_f64();
    let per_step = seconds / steps as f64;
    let ips = b as f64 / per_step;
    let gflops = trainer.model.flops_per_example() * ips / 1e9;
    println!(
        "training: {steps} steps of batch {b} in {seconds:.3} s: {ips:.0} images/s, {:.2} ms/step, \
              {:.2} s/epoch ({} steps), {gflops:.2} GFLOP/s in the matmuls",
        per_step * 1e3,
        per_step * trainer.steps_per_epoch as f64,
        trainer.steps_per_epoch
    );

    // Each launch alone, repeated: the sum over a step approximates the step's time.
    let mut by_kernel: BTreeMap<&str, (usize, f64, u64)> = BTreeMap::new();
    let mut total = 0.0;
    for launch in trainer.train_step_launches() {
        let reps: Vec<&[Launch]> = (0..args.kernel_reps).map(|_| std::slice::from_ref(launch)).collect();
        gpu::wait(&gpu);
        let t = Instant::now();
        submit(&gpu, &reps);
        gpu::wait(&gpu);
        let ms = t.elapsed().as_secs_f64() * 1e3 / args.kernel_reps as f64;
        total += ms;
        if args.each {
            println!(
                "    {:<34} {:>16} {ms:9.3} ms{}",
                launch.name,
                format!("{:?}", launch.workgroups),
                rate(launch.flops, ms)
            );
        }
        let entry = by_kernel.entry(launch.name).or_default();
        entry.0 += 1;
        entry.1 += ms;
        entry.2 += launch.flops;
    }
    println!("per kernel, each launched alone {} times (ms per step, launches per step, share):", args.kernel_reps);
    let mut rows: Vec<_> = by_kernel.into_iter().collect();
    rows.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
    for (name, (count, ms, flops)) in rows {
        println!("  {name:<34} {ms:9.3} ms  x{count:<2} {:5.1}%{}", 100.0 * ms / total, rate(flops, ms));
    }
    println!("  {:<34} {total:9.3} ms (sum of kernels alone; the step took {:.3} ms)", "total", per_step * 1e3);
    Ok(())
}

/// "  12.3 GFLOP/s" for a launch that counts its flops, else nothing.
fn rate(flops: u64, ms: f64) -> String {
    if flops == 0 {
        return String::new();
    }
    format!("  {:6.2} GFLOP/s", flops as f64 / (ms * 1e6))
}
