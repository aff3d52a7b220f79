//! The `nce` command: noise-contrastive estimation of an unnormalized model against a fitted
//! mixture (`wgvae mixture`), with the classification accuracy and c per epoch (metrics.csv), an
//! importance-sampled log Z with q as the proposal, -log p(x) on the validation split with c and
//! with that log Z, grids of the highest- and lowest-scoring validation images (best.png,
//! worst.png) and the model (nce.safetensors).
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::config::AdamConfig;
use crate::data::{self, Source};
use crate::draws::epoch_order;
use crate::files::write_atomic;
use crate::gpu::params::{NceTotals, NO_BAD_STEP};
use crate::gpu::{DeviceChoice, Gpu, Kernels};
use crate::images::write_grid;
use crate::mixture::Family;
use crate::nce::file::{NceModel, FILE};
use crate::nce::gpu::{GpuNce, NceSettings};
use crate::nce::report::measure;
use crate::nce::{Base, Noise, Scorer};
use crate::run_lock::RunLock;
use crate::tensorboard::EventFile;

pub struct NceOptions {
    /// The mixture run (or file) whose q is the noise.
    pub noise: PathBuf,
    pub epochs: usize,
    /// k, noise draws per data point.
    pub noise_samples: usize,
    pub hidden: Vec<usize>,
    /// What the network's output is added to in the model's log density.
    pub base: Base,
    pub batch: usize,
    pub lr: f32,
    /// Draws of q for the log Z estimate.
    pub log_z_samples: usize,
    pub seed: u32,
    pub source: Source,
    pub out: Option<PathBuf>,
    /// Write a TensorBoard event file into `out`.
    pub tensorboard: bool,
    pub device: DeviceChoice,
}

/// Images per grid.
const GRID: usize = 64;

pub fn nce(args: &NceOptions) -> Result<()> {
    let mixture = crate::mixture::file::load(&args.noise).context("--noise")?;
    let data = args.source.load()?;
    if data.shape != mixture.shape {
        bail!(
            "{} has images of {}, but the noise mixture {} was fitted to images of {}",
            data.name,
            data.shape,
            args.noise.display(),
            mixture.shape
        );
    }
    if data.train.len() < args.batch {
        bail!("--batch {}: more than the {} training images of {}", args.batch, data.train.len(), data.name);
    }
    let out = args.out.clone().unwrap_or_else(|| super::timestamped_run_dir("nce"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = RunLock::acquire(&out)?;
    let gpu = Gpu::open(&args.device)?;
    let kernels = Kernels::new(&gpu);
    println!("adapter: {}", gpu.describe());
    let family = mixture.spec.family;
    let scorer = Scorer::new(data.shape.pixels(), &args.hidden, args.base);
    println!(
        "NCE on {} ({} train / {} validation images{}) against a {}-component {} mixture, k = {} noise draws \
         per image, scorer {}",
        data.name,
        data.train.len(),
        data.val.len(),
        if family == Family::Bernoulli { ", binarized: the noise is binary" } else { "" },
        mixture.spec.components,
        family.name(),
        args.noise_samples,
        scorer.describe(),
    );
    let started = Instant::now();
    let adam = AdamConfig { lr: args.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let settings = NceSettings { batch: args.batch, noise: args.noise_samples, adam, seed: args.seed };
    let initial = scorer.init_params(args.seed as u64, 0.0);
    let nce =
        GpuNce::new((&gpu, &kernels), (scorer, Noise::new(&mixture), settings), (&data.train, &data.val), &initial)?;
    if args.base == Base::None {
        // Start near q's scale: the output's bias at the noise's mean log q (one step's draws).
        let (_, log_q) = nce.noise_scores((&gpu, &kernels), 1)?;
        let mean_log_q = log_q.iter().map(|&v| v as f64).sum::<f64>() / log_q.len() as f64;
        nce.write_params(&gpu, &nce.scorer.init_params(args.seed as u64, mean_log_q as f32));
    }

    let mut events = args.tensorboard.then(|| EventFile::create(&out, None)).transpose()?;
    let csv = train_epochs(&nce, (&gpu, &mut events), args, data.train.len(), started)?;
    let train_seconds = started.elapsed().as_secs_f64();

    let (report, scored) = measure(&nce, (&gpu, &kernels), args.log_z_samples)?;
    report.print(family, Some(train_seconds), started.elapsed().as_secs_f64());
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    write_extremes(&out, &scored.x, &scored.log_p, data.shape)?;
    let mut summary = report.metadata(&data.name, args.epochs);
    summary.extend(args.source.metadata(&data));
    summary.insert("seed".to_string(), args.seed.to_string());
    let model = NceModel {
        scorer: nce.scorer.clone(),
        params: nce.read_params(&gpu)?,
        noise: mixture,
        noise_samples: args.noise_samples,
        shape: data.shape,
        summary,
    };
    crate::nce::file::save(&out.join(FILE), &model)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// --epochs epochs of NCE steps, each with a validation pass; metrics.csv's rows.
fn train_epochs(
    nce: &GpuNce,
    (gpu, events): (&Gpu, &mut Option<EventFile>),
    args: &NceOptions,
    train_images: usize,
    started: Instant,
) -> Result<String> {
    let style = indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} steps {elapsed}")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    let k = args.noise_samples as f64;
    let rates =
        |t: NceTotals| (t.loss_sum as f64 / t.examples as f64, t.correct_sum as f64 / ((1.0 + k) * t.examples as f64));
    let mut csv = String::from("epoch,train_loss,train_accuracy,val_loss,val_accuracy,c,seconds\n");
    let chunk = 25usize;
    for epoch in 1..=args.epochs {
        nce.start_epoch(gpu, &epoch_order(train_images, args.seed, epoch));
        let bar = indicatif::ProgressBar::new(nce.steps_per_epoch as u64).with_style(style.clone());
        bar.set_prefix(epoch.to_string());
        let mut done = 0;
        while done < nce.steps_per_epoch {
            let n = chunk.min(nce.steps_per_epoch - done);
            nce.train_steps(gpu, n)?;
            done += n;
            bar.inc(n as u64);
        }
        bar.finish_and_clear();
        let train = rates(nce.totals(gpu)?);
        let counters = nce.counters(gpu)?;
        if counters.bad_step != NO_BAD_STEP || !train.0.is_finite() {
            bail!(
                "the NCE loss was not finite at optimizer step {} (epoch {epoch}): try a lower --lr (given {}); \
                 nothing was written",
                counters.bad_step,
                args.lr
            );
        }
        let val = rates(nce.evaluate(gpu)?);
        let c = nce.scorer.c(&nce.read_params(gpu)?);
        let t = started.elapsed().as_secs_f64();
        println!(
            "epoch {epoch:>3}/{}  train loss {:.4} accuracy {:.4}  validation loss {:.4} accuracy {:.4}  c {c:.3}  \
             {t:.1} s",
            args.epochs, train.0, train.1, val.0, val.1
        );
        csv += &format!("{epoch},{},{},{},{},{c},{t:.3}\n", train.0, train.1, val.0, val.1);
        if let Some(events) = events.as_mut() {
            let values =
                [("train/loss", train.0), ("train/accuracy", train.1), ("val/loss", val.0), ("val/accuracy", val.1)];
            let mut values: Vec<(&str, f32)> = values.iter().map(|&(tag, v)| (tag, v as f32)).collect();
            values.push(("c", c));
            events.scalars(epoch as u64, &values)?;
        }
    }
    Ok(csv)
}

/// best.png and worst.png: the validation images the model scores highest and lowest, highest
/// (lowest) first, 8 a row.
fn write_extremes(out: &std::path::Path, x: &[f32], scores: &[f64], shape: data::ImageShape) -> Result<()> {
    let d = shape.pixels();
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let n = GRID.min(order.len());
    let images =
        |picks: &[usize]| -> Vec<f32> { picks.iter().flat_map(|&i| x[i * d..(i + 1) * d].iter().copied()).collect() };
    write_grid(&out.join("best.png"), &images(&order[..n]), n, shape, 8)?;
    let worst: Vec<usize> = order.iter().rev().take(n).copied().collect();
    write_grid(&out.join("worst.png"), &images(&worst), n, shape, 8)
}
