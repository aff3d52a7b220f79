//! The `gradvar` command: how noisy is each estimator of the encoder's gradient? At fixed weights
//! and a fixed batch, draw R independent gradient estimates under each estimator and report the
//! norm of their mean, their total variance (the trace of the covariance) and the signal-to-noise
//! ratio |mean| / sqrt(total variance); as a table, gradvar.csv and gradvar.png.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;

use crate::config::spec::{Bound, Estimator, Method};
use crate::config::RunConfig;
use crate::data::Dataset;
use crate::draws::epoch_order;
use crate::files::write_atomic;
use crate::gpu::faults::GpuResult;
use crate::gpu::{self, DeviceChoice, Gpu, Kernels};
use crate::model::Model;
use crate::objective::{Baseline, Gradient, ObjectiveSettings};

pub struct GradvarOptions {
    /// The model the flags describe: measured at its initialisation unless `checkpoint` is given.
    pub config: RunConfig,
    /// Measure at a checkpoint's weights, with its architecture, data and batch.
    pub checkpoint: Option<PathBuf>,
    /// Independent gradient estimates per estimator.
    pub repeats: usize,
    /// Samples of z per input, for every estimator.
    pub samples: usize,
    pub out: Option<PathBuf>,
    pub device: DeviceChoice,
}
use crate::session;
use crate::trainer::GpuTrainer;

/// Unrecorded draws first, so the running-mean baseline has settled as it would in training.
const WARMUP_DRAWS: u32 = 20;

#[derive(Clone, Debug)]
pub struct EstimatorStats {
    pub name: String,
    /// The mean gradient over the draws, encoder parameters (model.rs layout).
    pub mean: Vec<f64>,
    pub mean_norm: f64,
    pub total_variance: f64,
    pub snr: f64,
    pub seconds: f64,
}

/// The estimators the seeds compare, each with `samples` samples of z per input.
pub fn estimators(samples: usize) -> Vec<(String, ObjectiveSettings)> {
    let base = ObjectiveSettings { samples, ..ObjectiveSettings::default() };
    let score = |baseline| ObjectiveSettings { gradient: Gradient::Score { baseline }, ..base.clone() };
    let mut list = vec![
        ("reparam".to_string(), base.clone()),
        ("score, no baseline".to_string(), score(Baseline::None)),
        ("score, running mean".to_string(), score(Baseline::Mean)),
    ];
    if samples >= 2 {
        list.push(("score, leave-one-out".to_string(), score(Baseline::Loo)));
    }
    list
}

/// R gradient estimates per estimator at weights `params`, on the first batch of epoch 1.
pub fn measure(
    gpu: &Gpu,
    kernels: &Kernels,
    config: &RunConfig,
    data: &Dataset,
    params: &[f32],
    repeats: usize,
    estimators: &[(String, ObjectiveSettings)],
) -> GpuResult<Vec<EstimatorStats>> {
    let model = Model::new(config.architecture());
    let encoder_len = model.decoder[0].weight_at; // the encoder's parameters come first
    let order = epoch_order(data.train.len(), config.seed, 1);
    estimators
        .iter()
        .map(|(name, objective)| {
            let started = Instant::now();
            let mut settings = config.train_settings(data.train.len() / config.batch);
            settings.objective = objective.clone();
            let trainer = GpuTrainer::new(gpu, kernels, model.clone(), settings, params, &data.train, &data.val);
            trainer.start_epoch(gpu, &order);
            for draw in 0..WARMUP_DRAWS {
                trainer.gradient_at(gpu, draw)?;
            }
            // Welford's running mean and sum of squared deviations, per coordinate.
            let (mut mean, mut m2) = (vec![0.0f64; encoder_len], vec![0.0f64; encoder_len]);
            for r in 0..repeats {
                trainer.gradient_at(gpu, WARMUP_DRAWS + r as u32)?;
                let g: Vec<f32> = gpu::read(gpu, trainer.grads_buffer(), 0, encoder_len)?;
                for i in 0..encoder_len {
                    let x = g[i] as f64;
                    let delta = x - mean[i];
                    mean[i] += delta / (r + 1) as f64;
                    m2[i] += delta * (x - mean[i]);
                }
            }
            let total_variance = m2.iter().sum::<f64>() / (repeats.max(2) - 1) as f64;
            let mean_norm = mean.iter().map(|v| v * v).sum::<f64>().sqrt();
            Ok(EstimatorStats {
                name: name.clone(),
                mean,
                mean_norm,
                total_variance,
                snr: mean_norm / total_variance.sqrt(),
                seconds: started.elapsed().as_secs_f64(),
            })
        })
        .collect()
}

pub fn gradvar(args: &GradvarOptions) -> Result<()> {
    let m = &args.config;
    let one_sample_elbo =
        Bound::Elbo { samples: 1, kl: m.method.kl(), estimator: Estimator::Reparam { free_bits: 0.0 } };
    if !matches!(m.method, Method::Gaussian { bound, .. } if bound == one_sample_elbo) {
        bail!("gradvar compares the estimators itself; drop --objective, --estimator, --baseline, --mc-samples, --k, --conditional, --latent categorical, \
               --free-bits and --inference (--samples sets the samples per input)");
    }
    let (config, data, params, default_out) = match &args.checkpoint {
        Some(path) => {
            let (ck, data) = session::load_checkpoint(path, None)?;
            let out = crate::session::beside_checkpoint(path, "");
            (ck.config, data, ck.params, out)
        }
        None => {
            let (config, data) = session::new_run_data(args.config.clone())?;
            let params = Model::new(config.architecture()).init_params(config.seed as u64);
            (config, data, params, super::timestamped_run_dir("gradvar"))
        }
    };
    if config.batch * args.samples > 65_536 {
        bail!("--batch {} x --samples {}: at most 65536 rows", config.batch, args.samples);
    }
    let out = args.out.clone().unwrap_or(default_out);
    std::fs::create_dir_all(&out).map_err(|e| anyhow!("--out {}: cannot create it ({e})", out.display()))?;
    let gpu = Gpu::open(&args.device)?;
    let kernels = Kernels::new(&gpu);
    println!("adapter: {}", gpu.describe());
    println!(
        "model {} at {}; batch {} of {}; {} samples per input; {} draws per estimator",
        config.describe(),
        args.checkpoint.as_ref().map_or("initialisation".to_string(), |p| p.display().to_string()),
        config.batch,
        data.name,
        args.samples,
        args.repeats
    );
    let stats = measure(&gpu, &kernels, &config, &data, &params, args.repeats, &estimators(args.samples))?;
    let reference = stats[0].total_variance;
    println!("{:<22} {:>14} {:>16} {:>12} {:>12}", "estimator", "|mean grad|", "total variance", "vs reparam", "SNR");
    let mut csv =
        String::from("estimator,samples,repeats,mean_grad_norm,total_variance,variance_vs_reparam,snr,seconds\n");
    for s in &stats {
        println!(
            "{:<22} {:>14.4} {:>16.4e} {:>11.1}x {:>12.4}",
            s.name,
            s.mean_norm,
            s.total_variance,
            s.total_variance / reference,
            s.snr
        );
        csv += &format!(
            "{},{},{},{},{},{},{},{:.3}\n",
            s.name,
            args.samples,
            args.repeats,
            s.mean_norm,
            s.total_variance,
            s.total_variance / reference,
            s.snr,
            s.seconds
        );
    }
    write_atomic(&out.join("gradvar.csv"), csv.as_bytes())?;
    draw(&out.join("gradvar.png"), &stats, args.samples)?;
    println!("wrote {}/gradvar.csv and gradvar.png", out.display());
    Ok(())
}

/// Two bar charts: total variance (log scale) and signal-to-noise ratio, one bar per estimator.
fn draw(path: &Path, stats: &[EstimatorStats], samples: usize) -> Result<()> {
    crate::curves::register_font();
    let (w, h) = (1200u32, 480u32);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    render(&mut rgb, (w, h), stats, samples).map_err(|e| anyhow!("drawing {}: {e}", path.display()))?;
    crate::files::write_png(path, &rgb, (w, h), image::ExtendedColorType::Rgb8)
}

fn render(
    rgb: &mut [u8],
    size: (u32, u32),
    stats: &[EstimatorStats],
    samples: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(&format!("encoder gradient estimators, {samples} samples per input"), ("sans-serif", 22))?;
    let n = stats.len() as f64;
    let names: Vec<String> = stats.iter().map(|s| s.name.clone()).collect();
    let label = move |x: &f64| {
        let i = x.round();
        if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < names.len() {
            names[i as usize].clone()
        } else {
            String::new()
        }
    };
    let panels = root.split_evenly((1, 2));
    let vmax = stats.iter().map(|s| s.total_variance).fold(f64::MIN, f64::max);
    let vmin = stats.iter().map(|s| s.total_variance).fold(f64::MAX, f64::min);
    let mut chart = ChartBuilder::on(&panels[0])
        .caption("total variance (log scale)", ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..n - 0.5, (vmin / 3.0..vmax * 3.0).log_scale())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(stats.len())
        .x_label_formatter(&label)
        .y_label_formatter(&|v| format!("{v:.1e}"))
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(stats.iter().enumerate().map(|(i, s)| {
        Rectangle::new([(i as f64 - 0.35, vmin / 3.0), (i as f64 + 0.35, s.total_variance)], BLUE.mix(0.7).filled())
    }))?;
    let smax = stats.iter().map(|s| s.snr).fold(0.0, f64::max);
    let mut chart = ChartBuilder::on(&panels[1])
        .caption("signal-to-noise |mean| / sqrt(total variance)", ("sans-serif", 18))
        .margin(14)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..n - 0.5, 0.0..smax * 1.15)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(stats.len())
        .x_label_formatter(&label)
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(
        stats
            .iter()
            .enumerate()
            .map(|(i, s)| Rectangle::new([(i as f64 - 0.35, 0.0), (i as f64 + 0.35, s.snr)], RED.mix(0.7).filled())),
    )?;
    root.present()?;
    Ok(())
}
