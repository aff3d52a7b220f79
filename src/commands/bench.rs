//! The `bench` command: training throughput of the whole step against a floor (as many empty
//! dispatches), then each kernel of the step on its own, timed by GPU timestamps where the
//! adapter has them (gpu/timing.rs), with achieved GFLOP/s and GB/s; over a sweep of batches and
//! hidden widths when asked, as text or as JSON.
use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Result;
use serde::Serialize;

use crate::config::spec::{ModelSpec, Network};
use crate::config::RunConfig;
use crate::draws::epoch_order;
use crate::gpu;
use crate::gpu::timing::{self, Clock};
use crate::gpu::{DeviceChoice, Launcher};
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
    /// Batches and one-layer hidden widths to sweep, every pair a run; empty: the config's own.
    pub sweep_batch: Vec<usize>,
    pub sweep_hidden: Vec<usize>,
    /// The results as one JSON document on stdout (the text goes to stderr).
    pub json: bool,
    pub device: DeviceChoice,
}

/// One configuration's measurements (the JSON `bench --json` prints is a list of these).
#[derive(Serialize)]
struct BenchRun {
    adapter: String,
    kernels: String,
    model: String,
    batch: usize,
    steps: usize,
    ms_per_step: f64,
    images_per_second: f64,
    seconds_per_epoch: f64,
    steps_per_epoch: usize,
    matmul_gflops: f64,
    launches_per_step: usize,
    /// The same number of empty dispatches per step, in one submission as the steps are.
    floor_ms_per_step: f64,
    clock: Clock,
    /// Each kernel alone, summed over its launches in a step, slowest first.
    per_kernel: Vec<KernelRow>,
    per_kernel_total_ms: f64,
    /// With --each-launch: every launch of the step in order.
    launches: Vec<LaunchRow>,
}

#[derive(Serialize)]
struct KernelRow {
    name: &'static str,
    launches: usize,
    ms: f64,
    share: f64,
    gflops: Option<f64>,
    gbytes_per_second: Option<f64>,
}

#[derive(Serialize)]
struct LaunchRow {
    name: &'static str,
    workgroups: [u32; 3],
    ms: f64,
    gflops: Option<f64>,
}

pub fn bench(args: &BenchOptions) -> Result<()> {
    let mut text: Box<dyn Write> = if args.json { Box::new(std::io::stderr()) } else { Box::new(std::io::stdout()) };
    let mut runs = Vec::new();
    for config in sweep(args)? {
        let run = bench_one(args, config)?;
        print_run(&mut text, &run)?;
        runs.push(run);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&runs)?);
    }
    Ok(())
}

/// The configurations to time: the config itself, or one per (batch, hidden) of the sweep.
fn sweep(args: &BenchOptions) -> Result<Vec<RunConfig>> {
    let batches = if args.sweep_batch.is_empty() { vec![args.config.batch] } else { args.sweep_batch.clone() };
    // Without --sweep-hidden the config's own network; with it, an MLP of each width.
    let networks: Vec<Network> = match args.sweep_hidden.is_empty() {
        true => vec![args.config.model.network.clone()],
        false => args.sweep_hidden.iter().map(|&h| Network::Mlp { hidden: vec![h] }).collect(),
    };
    let mut configs = Vec::new();
    for network in &networks {
        for &batch in &batches {
            let model = ModelSpec { network: network.clone(), ..args.config.model.clone() };
            let config = RunConfig { batch, model, ..args.config.clone() };
            config.validate()?;
            configs.push(config);
        }
    }
    Ok(configs)
}

fn bench_one(args: &BenchOptions, config: RunConfig) -> Result<BenchRun> {
    let Session { gpu, data, trainer, kernels, .. } = session::open_new(config.clone(), &args.device)?;
    let b = config.batch;
    let per_epoch = trainer.steps_per_epoch;
    let warm = 5.min(per_epoch - 1);
    let steps = args.steps.min(per_epoch - warm).max(1);
    trainer.start_epoch(&gpu, &epoch_order(data.train.len(), config.seed, 1));
    trainer.train_steps(&gpu, warm)?;
    gpu::wait(&gpu)?;
    let started = std::time::Instant::now();
    trainer.train_steps(&gpu, steps)?;
    gpu::wait(&gpu)?;
    let ms_per_step = started.elapsed().as_secs_f64() * 1e3 / steps as f64;
    let images_per_second = b as f64 * 1e3 / ms_per_step;

    // The floor: the step's launch count of empty dispatches, `steps` times in one submission.
    let step = trainer.train_step_launches();
    let empty = crate::launches::bench::empty(Launcher { gpu: &gpu, kernels: &kernels });
    let empties = vec![empty; step.len()];
    let floor_ms_per_step = timing::wall_ms(&gpu, &vec![&empties[..]; steps])? / steps as f64;

    // Each launch alone, repeated: the sum over a step approximates the step's time.
    let mut by_kernel: BTreeMap<&'static str, (usize, f64, u64, u64)> = BTreeMap::new();
    let mut launches = Vec::new();
    for launch in step {
        let ms = timing::launch_ms(&gpu, launch, args.kernel_reps)?;
        if args.each {
            launches.push(LaunchRow {
                name: launch.name,
                workgroups: launch.workgroups,
                ms,
                gflops: rate(launch.flops, ms),
            });
        }
        let entry = by_kernel.entry(launch.name).or_default();
        *entry = (entry.0 + 1, entry.1 + ms, entry.2 + launch.flops, entry.3 + launch.bytes);
    }
    let total: f64 = by_kernel.values().map(|k| k.1).sum();
    let mut per_kernel: Vec<KernelRow> = by_kernel
        .into_iter()
        .map(|(name, (count, ms, flops, bytes))| KernelRow {
            name,
            launches: count,
            ms,
            share: ms / total,
            gflops: rate(flops, ms),
            gbytes_per_second: rate(bytes, ms),
        })
        .collect();
    per_kernel.sort_by(|a, b| b.ms.total_cmp(&a.ms));
    Ok(BenchRun {
        adapter: gpu.describe(),
        kernels: format!("{:?}", gpu.plan().family()).to_lowercase(),
        model: config.describe(),
        batch: b,
        steps,
        ms_per_step,
        images_per_second,
        seconds_per_epoch: ms_per_step * per_epoch as f64 / 1e3,
        steps_per_epoch: per_epoch,
        matmul_gflops: trainer.model.flops_per_example() * images_per_second / 1e9,
        launches_per_step: step.len(),
        floor_ms_per_step,
        clock: timing::clock(&gpu),
        per_kernel,
        per_kernel_total_ms: total,
        launches,
    })
}

/// Per second, in billions, of a count over `ms` (None where the launch does not count it).
fn rate(count: u64, ms: f64) -> Option<f64> {
    (count > 0 && ms > 0.0).then(|| count as f64 / (ms * 1e6))
}

fn print_run(out: &mut dyn Write, r: &BenchRun) -> Result<()> {
    let rate = |v: Option<f64>, unit: &str| v.map_or(String::new(), |v| format!("  {v:8.2} {unit}"));
    writeln!(out, "adapter: {}", r.adapter)?;
    writeln!(out, "model {} with batch {}", r.model, r.batch)?;
    writeln!(
        out,
        "training: {} steps: {:.0} images/s, {:.3} ms/step, {:.2} s/epoch ({} steps), {:.2} GFLOP/s in the matmuls",
        r.steps, r.images_per_second, r.ms_per_step, r.seconds_per_epoch, r.steps_per_epoch, r.matmul_gflops
    )?;
    writeln!(
        out,
        "floor: {} empty dispatches per step take {:.3} ms/step ({:.1}% of the step)",
        r.launches_per_step,
        r.floor_ms_per_step,
        100.0 * r.floor_ms_per_step / r.ms_per_step
    )?;
    let clock = match r.clock {
        Clock::Timestamps => "GPU timestamps",
        Clock::WallClock => "wall clock around submit and wait (no timestamp queries here)",
    };
    for l in &r.launches {
        writeln!(
            out,
            "    {:<36} {:>16} {:9.3} ms{}",
            l.name,
            format!("{:?}", l.workgroups),
            l.ms,
            rate(l.gflops, "GFLOP/s")
        )?;
    }
    writeln!(out, "per kernel, each launched alone ({clock}): ms per step, launches per step, share")?;
    for k in &r.per_kernel {
        let (flops, bytes) = (rate(k.gflops, "GFLOP/s"), rate(k.gbytes_per_second, "GB/s"));
        writeln!(out, "  {:<36} {:9.3} ms  x{:<2} {:5.1}%{flops}{bytes}", k.name, k.ms, k.launches, 100.0 * k.share)?;
    }
    writeln!(
        out,
        "  {:<36} {:9.3} ms (sum of kernels alone; the step took {:.3} ms)\n",
        "total", r.per_kernel_total_ms, r.ms_per_step
    )?;
    Ok(())
}
