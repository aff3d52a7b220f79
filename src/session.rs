//! Opening a run: its config (from flags or a checkpoint), its data, the adapter and the trainer.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::checkpoint::{self, Checkpoint, RunConfig};
use crate::cli::{CheckpointArgs, DeviceArgs, Latent, ModelArgs};
use crate::data::{self, Dataset};
use crate::gpu::{Gpu, Kernels};
use crate::model::Model;
use crate::trainer::{GpuTrainer, TrainSettings};

/// Pixels of every supported dataset (28 x 28).
pub const PIXELS: usize = 784;

pub struct Session {
    pub config: RunConfig,
    pub gpu: Gpu,
    pub kernels: Kernels,
    pub data: Dataset,
    pub trainer: GpuTrainer,
}

/// A new run's config; `data_fingerprint` is filled in once the data is loaded.
pub fn config_from_args(args: &ModelArgs, epochs: usize) -> RunConfig {
    RunConfig {
        input: PIXELS,
        hidden: args.hidden.clone(),
        latent: args.latent_width(),
        batch: args.batch,
        epochs,
        lr: args.lr,
        adam_beta1: 0.9,
        adam_beta2: 0.999,
        adam_eps: 1e-8,
        seed: args.seed,
        binarize: args.binarize,
        data: args.data.as_ref().map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
        dataset: args.dataset,
        data_fingerprint: String::new(),
        wgvae_version: env!("CARGO_PKG_VERSION").to_string(),
        objective: args.objective,
        estimator: args.estimator,
        baseline: args.baseline,
        samples: args.samples(),
        beta: args.beta,
        kl_warmup_epochs: args.kl_warmup,
        free_bits: args.free_bits,
        decoder: args.decoder,
        classes: 0, // set from the data by with_classes when --conditional
        latent_groups: if args.latent == Latent::Categorical { args.groups } else { 0 },
        latent_categories: if args.latent == Latent::Categorical { args.categories } else { 0 },
        tau_start: args.tau_start,
        tau_end: args.tau_end,
        inference: args.inference,
        inner_steps: args.inner_steps,
        inner_lr: args.inner_lr,
    }
}

pub fn settings(config: &RunConfig, steps_per_epoch: usize) -> TrainSettings {
    TrainSettings {
        batch: config.batch,
        adam: config.adam(),
        seed: config.seed,
        binarize: config.binarize,
        objective: config.objective_settings(steps_per_epoch),
        tau_start: config.tau_start,
        tau_end: config.tau_end,
        anneal_steps: (config.epochs * steps_per_epoch) as u32,
    }
}

/// The config's data, or `data_override` (an IDX folder) in its place.
pub fn load_data(config: &RunConfig, data_override: Option<&PathBuf>) -> Result<Dataset> {
    let data = data::load(data_override.or(config.data.as_ref()), config.dataset, config.input)?;
    if config.classes > 0 && data.classes() > config.classes {
        bail!(
            "{}: labels go up to {}, but the conditional model knows {} classes",
            data.name,
            data.classes() - 1,
            config.classes
        );
    }
    if data.train.len() < config.batch {
        bail!("--batch {}: larger than the {} training images of {}", config.batch, data.train.len(), data.name);
    }
    Ok(data)
}

/// Opens the adapter and builds the trainer with weights `params` (model.rs layout).
pub fn open(config: RunConfig, device: &DeviceArgs, data: Dataset, params: &[f32]) -> Result<Session> {
    let gpu = Gpu::open(device.backend, device.adapter.as_deref())?;
    let model = Model::new(config.architecture());
    let kernels = Kernels::new(&gpu);
    let settings = settings(&config, data.train.len() / config.batch);
    let trainer = GpuTrainer::new(&gpu, &kernels, model, settings, params, &data.train, &data.val);
    Ok(Session { config, gpu, kernels, data, trainer })
}

/// A conditional model's class count from its data: one more than the largest label.
pub fn with_classes(config: &mut RunConfig, args: &ModelArgs, data: &Dataset) {
    if args.conditional {
        config.classes = data.classes();
    }
}

/// A fresh run from flags: data loaded, weights initialised as PyTorch would.
pub fn open_new(args: &ModelArgs, epochs: usize, device: &DeviceArgs) -> Result<Session> {
    let mut config = config_from_args(args, epochs);
    let data = load_data(&config, None)?;
    config.data_fingerprint = data.fingerprint();
    with_classes(&mut config, args, &data);
    let params = Model::new(config.architecture()).init_params(config.seed as u64);
    open(config, device, data, &params)
}

/// A session on a checkpoint's weights, for the commands that evaluate or picture a model. Its
/// validation split is the checkpoint's own, or `data_override`'s, cut to `max_images`.
pub fn open_checkpoint(
    args: &CheckpointArgs,
    data_override: Option<&PathBuf>,
    max_images: Option<usize>,
) -> Result<(Session, Checkpoint)> {
    let ck = checkpoint::load(&args.checkpoint)?;
    let mut data = load_data(&ck.config, data_override)?;
    if data_override.is_none() && data.fingerprint() != ck.config.data_fingerprint {
        eprintln!("warning: the data at {} differs from what this checkpoint was trained on", data.name);
    }
    if let Some(n) = max_images.filter(|&n| n < data.val.len()) {
        data.val.images.truncate(n * data.val.pixels);
        data.val.labels.truncate(n);
    }
    if data.val.is_empty() {
        bail!("{}: the evaluation split is empty", data.name);
    }
    let session = open(ck.config.clone(), &args.device, data, &ck.params)?;
    Ok((session, ck))
}

/// Commands that go through the encoder refuse a model trained with per-datapoint inference.
pub fn require_encoder(s: &Session, what: &str) -> Result<()> {
    if s.config.inference == crate::objective::Inference::PerDatapoint {
        bail!(
            "{what} needs an encoder; this model was trained with per-datapoint inference (`wgvae refine` infers \
               its q(z|x) per image, from the prior)"
        );
    }
    Ok(())
}

/// Where a command writes by default: beside the checkpoint (a file, or a run directory).
pub fn beside_checkpoint(checkpoint: &Path, file: &str) -> PathBuf {
    let dir = if checkpoint.is_dir() {
        checkpoint.to_path_buf()
    } else {
        checkpoint.parent().map(|p| p.to_path_buf()).unwrap_or_default()
    };
    dir.join(file)
}
