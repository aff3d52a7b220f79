//! Opening a run: its config (from flags or a checkpoint), its data, the adapter and the trainer.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

#[cfg(not(target_arch = "wasm32"))]
use crate::checkpoint::{self, Checkpoint, EpochMetrics};
use crate::config::spec::{ConvSpec, Method, Network};
use crate::config::{RunConfig, TrainSettings};
use crate::data::{self, Dataset};
#[cfg(not(target_arch = "wasm32"))]
use crate::gpu::params::LossTotals;
use crate::gpu::{DeviceChoice, Gpu, Kernels};
use crate::model::Model;
use crate::trainer::GpuTrainer;

pub struct Session {
    pub config: RunConfig,
    pub gpu: Gpu,
    pub kernels: Kernels,
    /// The run's data; its training images are on the GPU only (data.train.images is empty).
    pub data: Dataset,
    pub trainer: GpuTrainer,
}

/// A checkpoint to load (its config comes with it) and the adapter to run it on.
#[derive(Clone, Debug)]
pub struct CheckpointSource {
    /// checkpoint.safetensors or model.safetensors, or a run directory holding a checkpoint.
    pub checkpoint: PathBuf,
    /// The data to run it on instead of the checkpoint's (`--data`).
    pub data: Option<PathBuf>,
    pub device: DeviceChoice,
}

/// The config's data, or `data_override` (an IDX folder) in its place; it must fit the config.
pub fn load_data(config: &RunConfig, data_override: Option<&PathBuf>) -> Result<Dataset> {
    let data = data::load(data_override.or(config.data.as_ref()), config.dataset, &config.folder_options())?;
    if data.shape != config.shape {
        bail!("{}: images are {}, but the model was built for {}", data.name, data.shape, config.shape);
    }
    check_fits(config, &data)?;
    Ok(data)
}

fn check_fits(config: &RunConfig, data: &Dataset) -> Result<()> {
    config.check_conv_sides()?;
    if config.classes() > 0 && data.classes() > config.classes() {
        bail!(
            "{}: labels go up to {}, but the conditional model knows {} classes",
            data.name,
            data.classes() - 1,
            config.classes()
        );
    }
    if data.train.len() < config.batch {
        bail!("--batch {}: larger than the {} training images of {}", config.batch, data.train.len(), data.name);
    }
    Ok(())
}

/// A new run's config completed from its data: the images' shape, the class count of a
/// conditional model and the fingerprint; validated again with them.
pub fn new_run_data(config: RunConfig) -> Result<(RunConfig, Dataset)> {
    let data = data::load(config.data.as_ref(), config.dataset, &config.folder_options())?;
    Ok((complete_config(config, &data)?, data))
}

/// A new run's config completed from `data` (see new_run_data), for a front end that brings its
/// data as bytes.
pub fn complete_config(mut config: RunConfig, data: &Dataset) -> Result<RunConfig> {
    config.shape = data.shape;
    if let Network::Auto { hidden, conv } = &config.model.network {
        config.model.network = resolve_auto(&config, data, hidden, conv)?;
    }
    config.data_fingerprint = data.fingerprint();
    if let Method::Conditional { classes, class_names, .. } = &mut config.method {
        let Some(names) = &data.class_names else {
            bail!(
                "--conditional needs labelled data, but {} is a flat folder of images: put them in class folders \
                 (DIR/<class>/*.png)",
                data.name
            );
        };
        (*classes, *class_names) = (data.classes(), names.clone());
    }
    config.validate()?;
    check_fits(&config, data)?;
    Ok(config)
}

/// `--arch auto`'s choice for `data`: IDX digits get the pytorch/examples MLP (the parity model);
/// folders of images the conv VAE, when its depth divides their sides.
fn resolve_auto(config: &RunConfig, data: &Dataset, hidden: &[usize], conv: &ConvSpec) -> Result<Network> {
    let folder = config.data.as_ref().is_some_and(|d| !data::is_idx_dir(d));
    let step = 1 << conv.channels.len();
    let divisible = data.shape.height.is_multiple_of(step) && data.shape.width.is_multiple_of(step);
    if folder {
        let why = match divisible {
            true => format!("--conv-channels {:?}", conv.channels),
            false => format!("the sides are not multiples of {step}, which --arch conv needs"),
        };
        let chose = if divisible { "the conv VAE" } else { "the MLP" };
        println!("model: --arch auto chose {chose} for {} images ({why})", data.shape);
    }
    if folder && divisible {
        return Ok(Network::Conv(conv.clone()));
    }
    if conv.group_norm.is_some() {
        bail!("--norm group normalises the conv VAE's feature maps: it needs --arch conv (this run is an MLP)");
    }
    Ok(Network::Mlp { hidden: hidden.to_vec() })
}

/// Opens the adapter and builds the trainer with weights `params` (model.rs layout).
#[cfg(not(target_arch = "wasm32"))]
pub fn open(config: RunConfig, device: &DeviceChoice, data: Dataset, params: &[f32]) -> Result<Session> {
    pollster::block_on(open_async(config, device, data, params))
}

/// What a run is, derived once from its config and data and handed on: the model, and the
/// trainer's settings with epochs turned into optimizer steps.
pub struct RunPlan {
    pub model: Model,
    pub settings: TrainSettings,
}

impl RunPlan {
    pub fn new(config: &RunConfig, data: &Dataset) -> RunPlan {
        let steps_per_epoch = data.train.len() / config.batch;
        let settings = config.train_settings(steps_per_epoch);
        RunPlan { model: Model::new(config.architecture()), settings }
    }
}

/// `open` as a future (the browser's front end awaits it).
pub async fn open_async(config: RunConfig, device: &DeviceChoice, data: Dataset, params: &[f32]) -> Result<Session> {
    let gpu = Gpu::open_async(device).await?;
    let plan = RunPlan::new(&config, &data);
    crate::fits::check_limits(gpu.plan(), &config, &plan.model)?;
    build(gpu, (config, plan), data, params).await
}

/// A fresh run's session with weights initialised as PyTorch would, once the sizes are known to
/// fit: a browser tab may not even hold the weights of a model the adapter refuses.
pub async fn open_new_async(config: RunConfig, device: &DeviceChoice, data: Dataset) -> Result<Session> {
    let gpu = Gpu::open_async(device).await?;
    let plan = RunPlan::new(&config, &data);
    crate::fits::check_limits(gpu.plan(), &config, &plan.model)?;
    let params = plan.model.init_params(config.seed as u64);
    build(gpu, (config, plan), data, &params).await
}

/// The trainer on `gpu` with weights `params`, after check_limits.
async fn build(gpu: Gpu, (config, plan): (RunConfig, RunPlan), data: Dataset, params: &[f32]) -> Result<Session> {
    let RunPlan { model, settings } = plan;
    // Out of device memory is an error to report with the sizes, not a panic; anything the checks
    // above missed is an error naming the pipeline or buffer (faults.rs), not a panic.
    let out_of_memory = gpu.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    let invalid = gpu.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let (images, state) = (data.train.images.len() + data.val.images.len(), 16 * model.param_count);
    let kernels = Kernels::new(&gpu);
    let trainer = GpuTrainer::new(&gpu, &kernels, model, settings, params, &data.train, &data.val);
    if let Some(e) = invalid.pop().await {
        bail!("building the trainer's pipelines and buffers: {}", crate::gpu::faults::describe(&e, &gpu.info.name));
    }
    if let Some(e) = out_of_memory.pop().await {
        let mib = |b: usize| b as f64 / (1 << 20) as f64;
        bail!(
            "the GPU has too little memory for this run: {:.1} MiB of images and {:.1} MiB of weights, gradients and \
             Adam's moments, besides the activations ({e}); try a smaller --batch, model or --image-size",
            mib(images),
            mib(state)
        );
    }
    // The training images live on the GPU from here on: the host keeps only their labels, so a
    // run's host memory does not hold the dataset twice (decoded bytes and the device's copy).
    let mut data = data;
    data.train.images = Vec::new();
    Ok(Session { config, gpu, kernels, data, trainer })
}

/// A fresh run from a config: data loaded, weights initialised as PyTorch would.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_new(config: RunConfig, device: &DeviceChoice) -> Result<Session> {
    let (config, data) = new_run_data(config)?;
    pollster::block_on(open_new_async(config, device, data))
}

/// A session on a checkpoint's weights, for the commands that evaluate or picture a model. Its
/// validation split is the checkpoint's own, or `data_override`'s, cut to `max_images`.
#[cfg(not(target_arch = "wasm32"))]
pub fn open_checkpoint(
    source: &CheckpointSource,
    data_override: Option<&PathBuf>,
    max_images: Option<usize>,
) -> Result<(Session, Checkpoint)> {
    let (ck, mut data) = load_checkpoint(&source.checkpoint, data_override)?;
    if let Some(n) = max_images.filter(|&n| n < data.val.len()) {
        data.val.images.truncate(n * data.val.pixels);
        data.val.labels.truncate(n);
    }
    if data.val.is_empty() {
        bail!("{}: the evaluation split is empty", data.name);
    }
    let session = open(ck.config.clone(), &source.device, data, &ck.params)?;
    Ok((session, ck))
}

/// A checkpoint and the data to run it on: a wgvae checkpoint with its own data (or
/// `data_override`'s); a plain PyTorch state dict (checkpoint/state_dict.rs) with `data_override`
/// or the embedded digits, its architecture read from its tensors for their images (said on stdout).
#[cfg(not(target_arch = "wasm32"))]
pub fn load_checkpoint(path: &Path, data_override: Option<&PathBuf>) -> Result<(Checkpoint, Dataset)> {
    let file = checkpoint::resolve(path)?;
    let bytes = checkpoint::read_bytes(&file)?;
    if !checkpoint::is_state_dict(&bytes) {
        let ck = checkpoint::parse(&file, &bytes)?;
        let data = load_data(&ck.config, data_override)?;
        if data_override.is_none() && data.fingerprint() != ck.config.data_fingerprint {
            eprintln!("warning: the data at {} differs from what this checkpoint was trained on", data.name);
        }
        return Ok((ck, data));
    }
    let data = data::load(data_override, data::Builtin::Mnist10k, &data::FolderOptions::default())?;
    let (mut ck, said) = checkpoint::from_state_dict(&bytes, data.shape).map_err(|e| {
        e.context(format!("{}: a PyTorch state dict (no wgvae config) wgvae cannot use", file.display()))
    })?;
    println!("{}: a PyTorch state dict: {said}; data {}", file.display(), data.name);
    ck.config.data = data_override.cloned();
    ck.config.data_fingerprint = data.fingerprint();
    // Evaluation runs in batches of train's default size, or of the whole split when smaller.
    ck.config.batch = ck.config.batch.min(data.train.len()).max(1);
    check_fits(&ck.config, &data)?;
    Ok((ck, data))
}

/// Commands that go through the encoder refuse a model trained with per-datapoint inference.
pub fn require_encoder(s: &Session, what: &str) -> Result<()> {
    if s.config.per_datapoint() {
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

/// Where a run starts: from scratch (the default), or from a checkpoint's progress.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Clone, Debug, Default)]
pub struct Start {
    pub epochs_done: usize,
    pub step_in_epoch: usize,
    pub optimizer_step: u32,
    pub totals: LossTotals,
    pub history: Vec<EpochMetrics>,
}

/// Reopens the run whose checkpoint is `file` with its training state (weights, Adam's moments and
/// step, the score baseline, a per-datapoint table) on the same data, checked by its fingerprint;
/// `epochs` raises the run's epoch count. Returns where training goes on.
#[cfg(not(target_arch = "wasm32"))]
pub fn resume(file: &Path, epochs: Option<usize>, device: &DeviceChoice) -> Result<(Session, Start)> {
    let ck = checkpoint::load(file)?;
    let (Some((adam_m, adam_v)), Some(progress)) = (&ck.adam, &ck.progress) else {
        bail!(
            "{}: holds no optimizer state or progress (a model.safetensors?); --resume needs the run's {}",
            file.display(),
            checkpoint::CHECKPOINT_FILE
        );
    };
    let mut config = ck.config.clone();
    if let Some(epochs) = epochs {
        config.epochs = epochs;
    }
    if progress.epochs_done >= config.epochs {
        bail!(
            "{}: the run has finished all {} of its epochs; give --epochs N (more than {}) to train on",
            file.display(),
            progress.epochs_done,
            progress.epochs_done
        );
    }
    let data = load_data(&config, None)?;
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
    let session = open(config, device, data, &ck.params)?;
    session.trainer.restore(&session.gpu, &ck.params, adam_m, adam_v, progress.optimizer_step);
    session.trainer.set_baseline_state(&session.gpu, progress.baseline_bits.map(f32::from_bits));
    if let Some(table) = &ck.table {
        session.trainer.set_table(&session.gpu, table);
    } else if session.config.per_datapoint() {
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
    Ok((session, start))
}
