//! The `train` command: epochs of GPU training steps, a validation pass, pictures and metrics.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};

use super::epoch_writer::{checkpoint_now, EpochWriter};
use super::train_control::CliControl;
use super::train_log::RunLog;
use crate::checkpoint::{self, EpochMetrics};
use crate::commands::interrupt::{self, Interrupted};
use crate::config::spec::Method;
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::draws::{epoch_order, prior_draws};
use crate::gpu::params::LossTotals;
use crate::gpu::{DeviceChoice, Launcher};
use crate::refine::{RefineSettings, Refiner};
use crate::run_lock::RunLock;
use crate::session::{self, Session, Start};
use crate::trainer::EpochSteps;

/// Per-datapoint inference: Adam steps on each validation image's q, from the prior, before its ELBO.
pub const VAL_REFINE_STEPS: usize = 50;

fn default_out(data: &Dataset) -> PathBuf {
    let stem = data.name.split(|c: char| !c.is_ascii_alphanumeric()).find(|s| !s.is_empty()).unwrap_or("run");
    super::timestamped_run_dir(stem)
}

fn prepare_out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("--out {}: cannot create the run directory", dir.display()))?;
    let probe = dir.join(".write-test");
    std::fs::write(&probe, b"")
        .with_context(|| format!("--out {}: the run directory is not writable", dir.display()))?;
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

/// What `train` needs: a new run's config, or a run directory to resume (with more epochs).
pub struct TrainOptions {
    /// A new run's config (epochs included); None with `resume`.
    pub new: Option<RunConfig>,
    pub resume: Option<PathBuf>,
    /// With `resume`: train to this many epochs instead of the checkpoint's.
    pub epochs: Option<usize>,
    pub out: Option<PathBuf>,
    /// A new run's initial weights (`--init`): a checkpoint or a PyTorch state dict.
    pub init: Option<PathBuf>,
    /// Stop as Ctrl-C does after this many optimizer steps in all (for testing resume).
    pub interrupt_after_steps: Option<u32>,
    /// Write TensorBoard event files into the run directory (not with --no-tensorboard).
    pub tensorboard: bool,
    /// Submit an invalid dispatch after this many optimizer steps in all (for testing how a GPU
    /// failure ends a run).
    pub inject_fault_after_steps: Option<u32>,
    pub device: DeviceChoice,
}

/// A new run from flags (with --init's weights, or random ones), its directory locked.
fn open_new_run(args: &TrainOptions) -> Result<(Session, PathBuf, Start, RunLock)> {
    let config = args.new.clone().context("train: neither a new run's config nor --resume")?;
    let session = match &args.init {
        None => session::open_new(config, &args.device)?,
        Some(init) => {
            let (config, data) = session::new_run_data(config)?;
            let params = checkpoint::weights_for(init, &config)?;
            println!("init: the weights of {}, a fresh optimizer", init.display());
            session::open(config, &args.device, data, &params)?
        }
    };
    let out = args.out.clone().unwrap_or_else(|| default_out(&session.data));
    prepare_out_dir(&out)?;
    let lock = RunLock::acquire(&out)?;
    Ok((session, out, Start::default(), lock))
}

/// Opens a new run from flags, or reopens the run in --resume's directory with its training state;
/// either way with the run directory's lock held.
fn open_run(args: &TrainOptions) -> Result<(Session, PathBuf, Start, RunLock)> {
    let Some(dir) = &args.resume else { return open_new_run(args) };
    // The lock first, so that a busy run says so even before its first checkpoint.
    let run_dir = if dir.is_file() { dir.parent().unwrap_or(dir) } else { dir.as_path() };
    if !run_dir.is_dir() {
        checkpoint::resolve(dir).context("--resume")?; // its error says what is missing
    }
    let lock = RunLock::acquire(run_dir)?;
    let file = checkpoint::resolve(dir).context("--resume")?;
    let (session, start) = session::resume(&file, args.epochs, &args.device)?;
    Ok((session, dir.clone(), start, lock))
}

pub async fn train(args: &TrainOptions) -> Result<()> {
    let (session, out, start, _lock) = open_run(args)?;
    print_start(&session, &out, args.resume.as_ref().map(|_| &start));
    let Session { config, gpu, data, trainer, .. } = &session;
    let steps = trainer.steps_per_epoch;
    let prior = prior_draws(config, 64, config.seed);
    let val_refiner = validation_refiner(&session);
    let mut history = start.history;
    // Optimizer steps submitted in all: every one has been read back whenever an epoch ends.
    let mut submitted = start.optimizer_step;
    let resumed_at = args.resume.as_ref().map(|_| start.optimizer_step);
    let log = RunLog::open(&out, args.tensorboard, config, resumed_at)?;
    let mut writer = EpochWriter::new();
    for epoch in start.epochs_done + 1..=config.epochs {
        let from = match epoch == start.epochs_done + 1 {
            true => EpochSteps { done: start.step_in_epoch, totals: start.totals },
            false => EpochSteps { done: 0, totals: LossTotals::default() },
        };
        let started = Instant::now();
        let order = epoch_order(data.train.len(), config.seed, epoch);
        let flags = (args.interrupt_after_steps, args.inject_fault_after_steps);
        let mut control = CliControl::new(flags, (epoch, config.epochs, steps), &mut submitted, (gpu, &log));
        let ran = trainer.run_steps(gpu, (epoch, &order), from, &mut control).await;
        control.bar.finish_and_clear();
        let ran = ran?;
        if ran.done < steps {
            // Stopped: the ticks in flight were read, so the checkpoint holds every step run.
            writer.finish()?; // the last epoch's files first
            let ck = checkpoint_now(&session, &history, epoch - 1, ran.done, ran.totals).await?;
            checkpoint::save(&out, &ck, &trainer.model)?;
            let done = ran.done;
            let how = format!("at epoch {epoch}, step {done} of {steps}");
            return Err(Interrupted(format!("interrupted {how}; checkpoint written. {}", resume_hint(&out))).into());
        }
        let seconds = started.elapsed().as_secs_f64();
        let val_totals = match &val_refiner {
            // No encoder: the validation ELBO after inferring each image's q from the prior.
            Some(refiner) => refiner.run(gpu, VAL_REFINE_STEPS, 1, |_| {})?.after,
            None => trainer.evaluate(gpu).await?,
        };
        let images = (steps - from.done) * config.batch;
        let m = EpochMetrics::from_totals(epoch, &ran.totals, &val_totals, seconds, images)?;
        print_epoch(&m, config.epochs);
        history.push(m.clone());
        let step = (epoch * steps) as u32;
        log.epoch(step, &m, config, &trainer.settings)?;
        writer.queue_epoch(&session, (&out, &log, step), (&history, &prior, val_refiner.is_none())).await?;
        if interrupt::stop_requested() && epoch < config.epochs {
            writer.finish()?;
            let message = format!("interrupted after epoch {epoch}; checkpoint written. {}", resume_hint(&out));
            return Err(Interrupted(message).into());
        }
    }
    writer.finish()?;
    log.finish((config.epochs * steps) as u32)?;
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory: {mib:.0} MiB");
    }
    println!("wrote {}", out.display());
    Ok(())
}

fn resume_hint(out: &Path) -> String {
    format!("Continue with: wgvae train --resume {}", out.display())
}

/// The adapter, the data, the model and the run directory; where a resumed run goes on from.
fn print_start(session: &Session, out: &Path, resumed: Option<&Start>) {
    let Session { config, gpu, data, trainer, .. } = session;
    println!("adapter: {}", gpu.describe());
    println!(
        "data: {}: {} train / {} validation images; model {} ({} parameters); run directory {}",
        data.name,
        data.train.len(),
        data.val.len(),
        config.describe(),
        trainer.model.layers().map(|l| l.weight_len() + l.bias_len()).sum::<usize>(),
        out.display()
    );
    let (train_shards, val_shards) = trainer.image_shards();
    if train_shards + val_shards > 2 {
        println!("data: on the GPU in {train_shards} + {val_shards} buffers (one storage binding holds fewer images)");
    }
    if let Some(start) = resumed {
        println!(
            "resuming after epoch {} step {} (optimizer step {})",
            start.epochs_done, start.step_in_epoch, start.optimizer_step
        );
    }
}

fn print_epoch(m: &EpochMetrics, epochs: usize) {
    println!(
        "epoch {:>3}/{epochs}  train {:8.3} (rec {:8.3} kl {:6.3})  val {:8.3} (rec {:8.3} kl {:6.3})  {:6.2} s  \
         {:7.0} img/s",
        m.epoch, m.train_loss, m.train_rec, m.train_kl, m.val_loss, m.val_rec, m.val_kl, m.seconds, m.images_per_second
    );
}

/// Per-datapoint inference has no encoder: validation infers each image's q from the prior.
fn validation_refiner(session: &Session) -> Option<Refiner> {
    let Session { config, gpu, trainer, .. } = session;
    let Method::PerDatapoint { inner_lr, .. } = config.method else { return None };
    Some({
        let adam = crate::config::AdamConfig { lr: inner_lr, ..config.adam() };
        let settings = RefineSettings {
            batch: config.batch,
            binarize: config.binarize,
            data_seed: config.seed,
            adam,
            from_prior: true,
        };
        let l = Launcher { gpu, kernels: &session.kernels };
        Refiner::new(l, (&trainer.model, trainer.params()), trainer.val_images(), settings)
    })
}
