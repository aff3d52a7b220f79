//! The `train` command: epochs of GPU training steps, a validation pass, pictures and metrics.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::checkpoint::{self, Checkpoint, EpochMetrics};
use crate::commands::interrupt::{self, Interrupted};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::draws::{epoch_order, prior_draws};
use crate::gpu::params::LossTotals;
use crate::gpu::DeviceChoice;
use crate::images::write_grid;
use crate::images::write_reconstructions;
use crate::run_lock::RunLock;
use crate::session::{self, Session};
use crate::trainer::TickQueue;

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
    /// Stop as Ctrl-C does after this many optimizer steps in all (for testing resume).
    pub interrupt_after_steps: Option<u32>,
    pub device: DeviceChoice,
}

/// Where a run starts: from scratch, or from a checkpoint's progress.
struct Start {
    epochs_done: usize,
    step_in_epoch: usize,
    optimizer_step: u32,
    totals: LossTotals,
    history: Vec<EpochMetrics>,
}

/// Opens a new run from flags, or reopens the run in --resume's directory with its training state;
/// either way with the run directory's lock held.
fn open_run(args: &TrainOptions) -> Result<(Session, PathBuf, Start, RunLock)> {
    let Some(dir) = &args.resume else {
        let config = args.new.clone().context("train: neither a new run's config nor --resume")?;
        let session = session::open_new(config, &args.device)?;
        let out = args.out.clone().unwrap_or_else(|| default_out(&session.data));
        prepare_out_dir(&out)?;
        let lock = RunLock::acquire(&out)?;
        let start = Start {
            epochs_done: 0,
            step_in_epoch: 0,
            optimizer_step: 0,
            totals: LossTotals::default(),
            history: Vec::new(),
        };
        return Ok((session, out, start, lock));
    };
    // The lock first, so that a busy run says so even before its first checkpoint.
    let run_dir = if dir.is_file() { dir.parent().unwrap_or(dir) } else { dir.as_path() };
    if !run_dir.is_dir() {
        checkpoint::resolve(dir).context("--resume")?; // its error says what is missing
    }
    let lock = RunLock::acquire(run_dir)?;
    let file = checkpoint::resolve(dir).context("--resume")?;
    let ck = checkpoint::load(&file)?;
    let (Some((adam_m, adam_v)), Some(progress)) = (&ck.adam, &ck.progress) else {
        bail!(
            "{}: holds no optimizer state or progress (a model.safetensors?); --resume needs the run's {}",
            file.display(),
            checkpoint::CHECKPOINT_FILE
        );
    };
    let mut config = ck.config.clone();
    if let Some(epochs) = args.epochs {
        config.epochs = epochs;
    }
    if progress.epochs_done >= config.epochs {
        bail!(
            "{}: the run has finished all {} of its epochs; give --epochs N (more than {}) to train on",
            dir.display(),
            progress.epochs_done,
            progress.epochs_done
        );
    }
    let data = session::load_data(&config, None)?;
    if data.fingerprint() != config.data_fingerprint {
        bail!(
            "{}: the data at {} is not what this run trained on (fingerprint {} vs {}); resuming would not \
               reproduce the run",
            file.display(),
            data.name,
            data.fingerprint(),
            config.data_fingerprint
        );
    }
    let session = session::open(config, &args.device, data, &ck.params)?;
    session.trainer.restore(&session.gpu, &ck.params, adam_m, adam_v, progress.optimizer_step);
    session.trainer.set_baseline_state(&session.gpu, progress.baseline_bits.map(f32::from_bits));
    if let Some(table) = &ck.table {
        session.trainer.set_table(&session.gpu, table);
    } else if session.config.inference == crate::objective::Inference::PerDatapoint {
        bail!(
            "{}: a per-datapoint run's checkpoint must hold its table {}",
            file.display(),
            checkpoint::TABLE_NAMES[0]
        );
    }
    let [rec_sum, kl_sum, examples] = progress.totals_bits.map(f32::from_bits);
    let start = Start {
        epochs_done: progress.epochs_done,
        step_in_epoch: progress.step_in_epoch,
        optimizer_step: progress.optimizer_step,
        totals: LossTotals { rec_sum, kl_sum, examples, pad: 0.0 },
        history: progress.history.clone(),
    };
    Ok((session, dir.clone(), start, lock))
}

pub fn train(args: &TrainOptions) -> Result<()> {
    let (session, out, start, _lock) = open_run(args)?;
    let Session { config, gpu, data, trainer, .. } = &session;
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
    if args.resume.is_some() {
        println!(
            "resuming after epoch {} step {} (optimizer step {})",
            start.epochs_done, start.step_in_epoch, start.optimizer_step
        );
    }
    interrupt::install_ctrl_c();
    let stop_at = args.interrupt_after_steps;

    let steps = trainer.steps_per_epoch;
    let b = config.batch;
    let prior = prior_draws(config, 64, config.seed);
    let mut history = start.history;
    let val_refiner = (config.inference == crate::objective::Inference::PerDatapoint).then(|| {
        let adam = crate::config::AdamConfig { lr: config.inner_lr, ..config.adam() };
        crate::refine::Refiner::new(
            gpu,
            &session.kernels,
            &trainer.model,
            trainer.params(),
            trainer.val_images(),
            config.batch,
            config.binarize,
            config.seed,
            adam,
            true,
        )
    });
    // Optimizer steps submitted in all: every one has been read back whenever an epoch ends.
    let mut global_submitted = start.optimizer_step;
    let mut writer = super::epoch_writer::EpochWriter::new();
    for epoch in start.epochs_done + 1..=config.epochs {
        let bar = indicatif::ProgressBar::new(steps as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", config.epochs));
        let started = Instant::now();
        let order = epoch_order(data.train.len(), config.seed, epoch);
        let mut done = 0;
        if epoch == start.epochs_done + 1 && start.step_in_epoch > 0 {
            done = start.step_in_epoch;
            trainer.resume_epoch(gpu, &order, done, start.totals);
        } else {
            trainer.start_epoch(gpu, &order);
        }
        let first_step = done;
        let mut train_totals = start.totals; // read back once per tick; the last read is the epoch's
        let mut queue = TickQueue::new(gpu, steps, done);
        while done < steps {
            while queue.can_submit() && !interrupt::stop_requested() {
                let most = stop_at.map_or(usize::MAX, |at| at.saturating_sub(global_submitted) as usize);
                global_submitted += queue.submit(trainer, gpu, most) as u32;
                if stop_at.is_some_and(|at| global_submitted >= at) {
                    interrupt::request_stop();
                }
            }
            if let Some((totals, counters, steps_done)) = pollster::block_on(queue.read(trainer, gpu)) {
                (train_totals, done) = (totals, steps_done);
                trainer.check_finite(&counters, epoch)?;
                bar.set_position(done as u64);
                bar.set_message(format!("loss {:.2}", train_totals.means().0));
            }
            // Stopping: once the submitted ticks are read, the checkpoint holds every step run.
            if interrupt::stop_requested() && queue.is_empty() && done < steps {
                bar.finish_and_clear();
                writer.finish()?; // the last epoch's files first
                let ck = checkpoint_now(&session, &history, epoch - 1, done, train_totals);
                checkpoint::save(&out, &ck, &trainer.model)?;
                return Err(Interrupted(format!(
                    "interrupted at epoch {epoch}, step {done} of {steps}; checkpoint written. Continue with: \
                     wgvae train --resume {}",
                    out.display()
                ))
                .into());
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let val_totals = match &val_refiner {
            // No encoder: the validation ELBO after inferring each image's q from the prior.
            Some(refiner) => refiner.run(gpu, VAL_REFINE_STEPS, 1, |_| {}).after,
            None => trainer.evaluate(gpu),
        };
        let m = EpochMetrics::from_totals(epoch, &train_totals, &val_totals, seconds, (steps - first_step) * b)?;
        println!(
            "epoch {epoch:>3}/{}  train {:8.3} (rec {:8.3} kl {:6.3})  val {:8.3} (rec {:8.3} kl {:6.3})  {seconds:6.2} s  \
             {:7.0} img/s",
            config.epochs,
            m.train_loss,
            m.train_rec,
            m.train_kl,
            m.val_loss,
            m.val_rec,
            m.val_kl,
            m.images_per_second
        );
        history.push(m);
        // Everything the epoch's files need is read from the GPU here; the writer thread encodes
        // and syncs them while the next epoch trains.
        // Prior samples: 8 x 8 of p(z), or for a conditional model a row of 8 per class from p(z|y).
        let (samples, count) = if config.classes > 0 {
            (crate::commands::pictures::class_grid(trainer, gpu, 8, config.seed, 1.0), 8 * config.classes)
        } else {
            (trainer.decode(gpu, &prior), 64)
        };
        let last = epoch == config.epochs;
        // Reconstructions need an encoder.
        let reconstructions = (last && val_refiner.is_none()).then(|| {
            let n = 32.min(data.val.len());
            let picks: Vec<u32> = (0..n).map(|i| (i * data.val.len() / n) as u32).collect();
            (trainer.reconstruct(gpu, &picks), n)
        });
        let ck = checkpoint_now(&session, &history, epoch, 0, LossTotals::default());
        let (dir, history_now, title, shape, model) =
            (out.clone(), history.clone(), data.name.clone(), data.shape, trainer.model.clone());
        writer.write(move || {
            write_metrics(&dir.join("metrics.csv"), &history_now)?;
            crate::curves::draw(&dir.join("curves.png"), &history_now, &title)?;
            write_grid(&dir.join(format!("samples_epoch{epoch:03}.png")), &samples, count, shape, 8)?;
            if last {
                write_grid(&dir.join("samples.png"), &samples, count, shape, 8)?;
            }
            if let Some(((x, probs), n)) = reconstructions {
                write_reconstructions(&dir.join("reconstructions.png"), &x, &probs, n, shape)?;
            }
            checkpoint::save(&dir, &ck, &model)
        })?;
        if interrupt::stop_requested() && epoch < config.epochs {
            writer.finish()?;
            return Err(Interrupted(format!(
                "interrupted after epoch {epoch}; checkpoint written. Continue with: wgvae train --resume {}",
                out.display()
            ))
            .into());
        }
    }
    writer.finish()?;
    if let Some(mib) = peak_rss_mib() {
        println!("peak resident memory: {mib:.0} MiB");
    }
    println!("wrote {}", out.display());
    Ok(())
}

/// The run's state after `epochs_done` epochs and `step_in_epoch` steps of the next one, read
/// from the GPU.
fn checkpoint_now(
    session: &Session,
    history: &[EpochMetrics],
    epochs_done: usize,
    step_in_epoch: usize,
    totals: LossTotals,
) -> Checkpoint {
    let Session { config, gpu, trainer, .. } = session;
    pollster::block_on(trainer.snapshot(gpu, config, history, epochs_done, step_in_epoch, totals))
}

/// metrics.csv from the whole history (rewritten atomically, so a resumed run's file is whole).
fn write_metrics(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut csv =
        String::from("epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second\n");
    for m in history {
        csv += &format!(
            "{},{},{},{},{},{},{},{:.4},{:.1}\n",
            m.epoch,
            m.train_loss,
            m.train_rec,
            m.train_kl,
            m.val_loss,
            m.val_rec,
            m.val_kl,
            m.seconds,
            m.images_per_second
        );
    }
    crate::files::write_atomic(path, csv.as_bytes())
}
