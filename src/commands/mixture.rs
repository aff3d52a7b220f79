//! The `mixture` command: EM for a mixture of Bernoulli or Gaussian products on the GPU, with the
//! exact train and validation log-likelihood per iteration (metrics.csv), the components by weight
//! (components.png, components.csv), samples (samples.png) and the fit (mixture.safetensors).
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::data::{Dataset, Source};
use crate::files::write_atomic;
use crate::gpu::{DeviceChoice, Gpu, Kernels};
use crate::images::write_grid;
use crate::mixture::em::GpuMixture;
use crate::mixture::file::{FitSummary, FILE};
use crate::mixture::{initial_totals, Family, Mixture, Spec};
use crate::run_lock::RunLock;
use crate::tensorboard::EventFile;

pub struct MixtureOptions {
    pub components: usize,
    pub family: Family,
    pub iterations: usize,
    /// Stop when an iteration gains less than this, in nats per training image.
    pub tolerance: f64,
    pub pseudo_count: f32,
    pub var_floor: f32,
    pub seed: u32,
    pub source: Source,
    pub out: Option<PathBuf>,
    /// Write a TensorBoard event file into `out`.
    pub tensorboard: bool,
    pub device: DeviceChoice,
}

pub fn mixture(args: &MixtureOptions) -> Result<()> {
    let data = args.source.load()?;
    let k = args.components;
    if k > data.train.len() {
        bail!("--components {k}: more than the {} training images of {}", data.train.len(), data.name);
    }
    if data.val.is_empty() {
        bail!("{}: the validation split is empty", data.name);
    }
    let spec = Spec {
        components: k,
        family: args.family,
        pixels: data.shape.pixels(),
        pseudo_count: args.pseudo_count,
        var_floor: args.var_floor,
    };
    let out = args.out.clone().unwrap_or_else(|| super::timestamped_run_dir("mixture"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let _lock = RunLock::acquire(&out)?;
    let gpu = Gpu::open(&args.device)?;
    let kernels = Kernels::new(&gpu);
    print_start(args, &data, &gpu);
    let started = Instant::now();
    let (initial, _) = initial_totals(&spec, &data.train, args.seed as u64);
    let chunk = crate::mixture::em::chunk_rows(&spec);
    let em = GpuMixture::new((&gpu, &kernels), spec, data.shape, (&data.train, &data.val), &initial, chunk)?;
    let mut events = args.tensorboard.then(|| EventFile::create(&out, None)).transpose()?;
    let Fitted { csv, iterations: done, fit, train, val } = fit_by_em(&em, (&gpu, &mut events), args, &data, started)?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{done} EM iterations in {seconds:.2} s: log p(x) train {train:.3}, validation {val:.3} nats per image \
         (-log p(x) {:.3} on validation)",
        -val
    );
    write_atomic(&out.join("metrics.csv"), csv.as_bytes())?;
    write_pictures(&out, &fit, args.seed)?;
    let summary = FitSummary {
        data: &data.name,
        source: Some((&args.source, &data)),
        iterations: done,
        train_loglik: train,
        val_loglik: val,
    };
    crate::mixture::file::save(&out.join(FILE), &fit, &summary)?;
    println!("wrote {}", out.display());
    Ok(())
}

/// The adapter, the family and its settings, the data.
fn print_start(args: &MixtureOptions, data: &Dataset, gpu: &Gpu) {
    println!("adapter: {}", gpu.describe());
    println!(
        "{} mixture of {} components on {} ({} train / {} validation images of {}), pseudo-count {}{}",
        args.family.name(),
        args.components,
        data.name,
        data.train.len(),
        data.val.len(),
        data.shape,
        args.pseudo_count,
        match args.family {
            Family::Gaussian => format!(", variance floor {}", args.var_floor),
            Family::Bernoulli => String::new(),
        }
    );
}

/// What EM ended with: metrics.csv's rows, the iterations run, the fit and its log-likelihoods per
/// image (train, validation).
struct Fitted {
    csv: String,
    iterations: usize,
    fit: Mixture,
    train: f64,
    val: f64,
}

/// EM iterations until --iterations or until the objective gains less than --tolerance, with a
/// progress bar and a row of metrics.csv per iteration (and one for the final fit).
fn fit_by_em(
    em: &GpuMixture,
    (gpu, events): (&Gpu, &mut Option<EventFile>),
    args: &MixtureOptions,
    data: &Dataset,
    started: Instant,
) -> Result<Fitted> {
    let (n_train, n_val) = (data.train.len() as f64, data.val.len() as f64);
    let bar = indicatif::ProgressBar::new(args.iterations as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("EM {pos}/{len} [{bar:30}] {elapsed} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut csv = String::from("iteration,train_loglik,val_loglik,objective,seconds\n");
    let mut last_objective = f64::NEG_INFINITY;
    let mut row = |i: usize, (train, val): (f64, f64), fit: &Mixture| -> Result<f64> {
        if !(train.is_finite() && val.is_finite()) {
            bail!("EM iteration {i}: the log-likelihood is not finite (train {train}, validation {val})");
        }
        let objective = (train + fit.log_prior()) / n_train;
        let t = started.elapsed().as_secs_f64();
        csv += &format!("{i},{},{},{objective},{t:.3}\n", train / n_train, val / n_val);
        if let Some(events) = events.as_mut() {
            let values = [("train/loglik", train / n_train), ("val/loglik", val / n_val), ("objective", objective)];
            events.scalars(i as u64, &values.map(|(tag, v)| (tag, v as f32)))?;
        }
        bar.set_message(format!("train {:.3} val {:.3} nats/image", train / n_train, val / n_val));
        Ok(objective)
    };
    let mut done = 0;
    while done < args.iterations {
        let before = em.read(gpu)?;
        let ll = em.iterate(gpu)?;
        let objective = row(done, ll, &before)?;
        done += 1;
        bar.inc(1);
        let gain = objective - last_objective;
        last_objective = objective;
        if gain < args.tolerance {
            break;
        }
    }
    let (train_ll, val_ll) = em.evaluate(gpu)?;
    let sum = |v: &[f32]| v.iter().map(|&x| x as f64).sum::<f64>();
    let fit = em.read(gpu)?;
    row(done, (sum(&train_ll), sum(&val_ll)), &fit)?;
    bar.finish_and_clear();
    let (train, val) = (sum(&train_ll) / n_train, sum(&val_ll) / n_val);
    Ok(Fitted { csv, iterations: done, fit, train, val })
}

/// components.png (means, heaviest first, 10 a row), components.csv (their weights), samples.png.
fn write_pictures(out: &std::path::Path, fit: &Mixture, seed: u32) -> Result<()> {
    let d = fit.spec.pixels;
    let order = fit.by_weight();
    let means: Vec<f32> = order.iter().flat_map(|&(k, _)| fit.means[k * d..(k + 1) * d].iter().copied()).collect();
    write_grid(&out.join("components.png"), &means, order.len(), fit.shape, 10)?;
    let mut csv = String::from("rank,component,weight\n");
    for (rank, (k, w)) in order.iter().enumerate() {
        csv += &format!("{rank},{k},{w}\n");
    }
    write_atomic(&out.join("components.csv"), csv.as_bytes())?;
    let samples = fit.sample(64, seed as u64);
    write_grid(&out.join("samples.png"), &samples, 64, fit.shape, 8)
}
