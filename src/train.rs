//! The `train` command: epochs of GPU training steps, a validation pass, pictures and metrics.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::cli::{ModelArgs, TrainArgs};
use crate::data::{self, Dataset};
use crate::gpu::{Gpu, Kernels};
use crate::images::write_grid;
use crate::model::{Architecture, Model};
use crate::reference::kernels::{normal4, philox4x32_10, AdamConfig, LossTotals, NO_BAD_STEP};
use crate::trainer::{GpuTrainer, TrainSettings};

/// Steps per submission: the host reads the running loss once per tick, never per step.
pub const TICK_STEPS: usize = 25;
const PIXELS: usize = 784;

pub struct Session {
    pub gpu: Gpu,
    pub data: Dataset,
    pub trainer: GpuTrainer,
}

pub fn settings(args: &ModelArgs) -> TrainSettings {
    TrainSettings {
        batch: args.batch,
        adam: AdamConfig { lr: args.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        seed: args.seed,
        binarize: args.binarize,
    }
}

/// Loads the data, opens the adapter and builds the trainer (with freshly initialised weights).
pub fn open_session(args: &ModelArgs) -> Result<Session> {
    let data = data::load(args.data.as_ref(), args.dataset, PIXELS)?;
    if data.train.len() < args.batch {
        bail!("--batch {}: larger than the {} training images of {}", args.batch, data.train.len(), data.name);
    }
    let gpu = Gpu::open(args.device.backend, args.device.adapter.as_deref())?;
    let model = Model::new(Architecture { input: PIXELS, hidden: args.hidden.clone(), latent: args.latent });
    let params = model.init_params(args.seed as u64);
    let kernels = Kernels::new(&gpu);
    let trainer = GpuTrainer::new(&gpu, &kernels, model, settings(args), &params, &data.train, &data.val);
    Ok(Session { gpu, data, trainer })
}

/// The epoch's shuffle, a function of (seed, epoch) alone.
pub fn epoch_order(n: usize, seed: u32, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(((seed as u64) << 32) ^ epoch as u64);
    order.shuffle(&mut rng);
    order
}

/// Fixed prior draws for the sample grids, so each epoch's grid shows the same z.
pub fn prior_latents(n: usize, latent: usize, seed: u32) -> Vec<f32> {
    (0..(n * latent).div_ceil(4))
        .flat_map(|i| normal4(philox4x32_10([i as u32, 0, 0, 0x5A3D], [seed, 1])))
        .take(n * latent)
        .collect()
}

fn mean(t: &LossTotals) -> (f32, f32, f32) {
    let n = t.examples.max(1.0);
    ((t.rec_sum + t.kl_sum) / n, t.rec_sum / n, t.kl_sum / n)
}

fn default_out(data: &Dataset) -> PathBuf {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let stem = data.name.split(|c: char| !c.is_ascii_alphanumeric()).find(|s| !s.is_empty()).unwrap_or("run").to_string();
    PathBuf::from("runs").join(format!("{stem}-{secs}"))
}

fn prepare_out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("--out {}: cannot create the run directory", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"").with_context(|| format!("--out {}: the run directory is not writable", dir.display()))?;
    std::fs::remove_file(&probe).ok();
    Ok(())
}

/// Peak resident set size of this process in MiB (Linux), for the run summary.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub fn train(args: &TrainArgs) -> Result<()> {
    let session = open_session(&args.model)?;
    let Session { gpu, data, trainer } = &session;
    let out = args.out.clone().unwrap_or_else(|| default_out(data));
    prepare_out_dir(&out)?;
    println!("adapter: {}", gpu.describe());
    println!("data: {}: {} train / {} validation images; model {}-{}-{} ({} parameters); run directory {}",
             data.name, data.train.len(), data.val.len(), PIXELS,
             args.model.hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"), args.model.latent,
             trainer.model.layers().map(|l| l.n_in * l.n_out + l.n_out).sum::<usize>(), out.display());

    let metrics_path = out.join("metrics.csv");
    let mut metrics = std::fs::File::create(&metrics_path).with_context(|| format!("creating {}", metrics_path.display()))?;
    writeln!(metrics, "epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second")?;

    let steps = trainer.steps_per_epoch;
    let b = args.model.batch;
    let prior = prior_latents(64, args.model.latent, args.model.seed);
    for epoch in 1..=args.epochs {
        let bar = indicatif::ProgressBar::new(steps as u64);
        bar.set_style(indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template").progress_chars("=> "));
        bar.set_prefix(format!("{epoch}/{}", args.epochs));
        let started = Instant::now();
        trainer.start_epoch(gpu, &epoch_order(data.train.len(), args.model.seed, epoch));
        let mut done = 0;
        while done < steps {
            let n = TICK_STEPS.min(steps - done);
            trainer.train_steps(gpu, n);
            done += n;
            let totals = trainer.totals(gpu);
            check_finite(trainer, gpu, epoch)?;
            bar.set_position(done as u64);
            bar.set_message(format!("loss {:.2}", mean(&totals).0));
        }
        let train_totals = trainer.totals(gpu);
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let val_totals = trainer.evaluate(gpu);
        let (tl, tr, tk) = mean(&train_totals);
        let (vl, vr, vk) = mean(&val_totals);
        if !(vl.is_finite()) {
            bail!("validation loss is not finite after epoch {epoch} (train loss {tl}); try a lower --lr");
        }
        let ips = (steps * b) as f64 / seconds;
        println!("epoch {epoch:>3}/{}  train {tl:8.3} (rec {tr:8.3} kl {tk:6.3})  val {vl:8.3} (rec {vr:8.3} kl {vk:6.3})  {seconds:6.2} s  {ips:7.0} img/s",
                 args.epochs);
        writeln!(metrics, "{epoch},{tl},{tr},{tk},{vl},{vr},{vk},{seconds:.4},{ips:.1}")?;
        metrics.flush()?;

        let samples = trainer.decode(gpu, &prior);
        write_grid(&out.join(format!("samples_epoch{epoch:03}.png")), &samples, 64, data.side, 8)?;
        if epoch == args.epochs {
            write_grid(&out.join("samples.png"), &samples, 64, data.side, 8)?;
            let n = b.min(32).min(data.val.len());
            let picks: Vec<u32> = (0..n).map(|i| (i * data.val.len() / n) as u32).collect();
            let (x, probs) = trainer.reconstruct(gpu, &picks);
            write_reconstructions(&out.join("reconstructions.png"), &x, &probs, n, data.side)?;
        }
    }
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory: {mib:.0} MiB");
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn check_finite(trainer: &GpuTrainer, gpu: &Gpu, epoch: usize) -> Result<()> {
    let c = trainer.counters(gpu);
    if c.bad_step != NO_BAD_STEP {
        let in_epoch = c.bad_step as usize - (epoch - 1) * trainer.steps_per_epoch + 1;
        bail!("the loss became non-finite at epoch {epoch}, step {in_epoch} of {} (optimizer step {}); \
               try a lower --lr", trainer.steps_per_epoch, c.bad_step + 1);
    }
    Ok(())
}

/// Rows of 8 inputs, each followed by a row of their reconstructions.
fn write_reconstructions(path: &Path, x: &[f32], probs: &[f32], n: usize, side: (usize, usize)) -> Result<()> {
    let pixels = side.0 * side.1;
    let mut grid = Vec::with_capacity(2 * n * pixels);
    for start in (0..n).step_by(8) {
        let end = (start + 8).min(n);
        grid.extend_from_slice(&x[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
        grid.extend_from_slice(&probs[start * pixels..end * pixels]);
        grid.resize(grid.len() + (8 - (end - start)) * pixels, 0.0);
    }
    write_grid(path, &grid, grid.len() / pixels, side, 8)
}
