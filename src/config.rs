//! The run's configuration: one `RunConfig` that defines a run (with the same config and adapter a
//! run is reproducible), checked by one `validate()` that the command line and a loaded checkpoint
//! both go through. Its messages name the flag that sets each value.
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::{Binarize, Builtin, ColorMode, FolderOptions, ImageShape};
use crate::model::{Architecture, Decoder, Norm};
use crate::objective::{Baseline, Estimator, Inference, Objective, ObjectiveSettings};

/// The encoder and decoder: an MLP (`--hidden`) or convolutions (`--conv-channels`); auto picks
/// the MLP (session::new_run_data says why).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchChoice {
    Auto,
    #[default]
    Mlp,
    Conv,
}

/// Everything that defines a run, as checkpoints store it (the JSON of `wgvae.config`). Fields added
/// after the first release have defaults, so older checkpoints still load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// (channels, height, width) of the data's images; checkpoints before it were all 1 x 28 x 28.
    #[serde(default = "ImageShape::mnist")]
    pub shape: ImageShape,
    pub hidden: Vec<usize>,
    /// MLP or conv (auto only until the data is loaded; checkpoints before it were MLPs).
    #[serde(default)]
    pub arch: ArchChoice,
    /// The conv encoder's channel widths (the decoder mirrors them).
    #[serde(default)]
    pub conv_channels: Vec<usize>,
    /// The conv VAE's normalisation after each hidden convolution, and its groups.
    #[serde(default)]
    pub norm: Norm,
    #[serde(default = "default_norm_groups")]
    pub norm_groups: usize,
    pub latent: usize,
    pub batch: usize,
    pub epochs: usize,
    pub lr: f32,
    pub adam_beta1: f32,
    pub adam_beta2: f32,
    pub adam_eps: f32,
    pub seed: u32,
    pub binarize: Binarize,
    /// IDX folder given with --data, else None and `dataset` names the built-in set.
    pub data: Option<PathBuf>,
    pub dataset: Builtin,
    /// A folder of images: the (height, width) they are resized to (None: their own), grey or RGB,
    /// and whether undecodable files are skipped.
    #[serde(default)]
    pub image_size: Option<(usize, usize)>,
    #[serde(default)]
    pub color: ColorMode,
    #[serde(default)]
    pub skip_bad: bool,
    /// Dataset::fingerprint of the data the run trained on.
    pub data_fingerprint: String,
    pub wgvae_version: String,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default)]
    pub estimator: Estimator,
    #[serde(default)]
    pub baseline: Baseline,
    /// Samples of z per input: IWAE's K, or the ELBO's Monte Carlo samples.
    #[serde(default = "one_usize")]
    pub samples: usize,
    #[serde(default = "one_f32")]
    pub beta: f32,
    #[serde(default)]
    pub kl_warmup_epochs: usize,
    #[serde(default)]
    pub free_bits: f32,
    #[serde(default)]
    pub decoder: Decoder,
    /// A class-conditional model (--conditional); its class count comes from the data.
    #[serde(default)]
    pub conditional: bool,
    /// Classes of a conditional model, 0 until the data is loaded and for an unconditional one.
    #[serde(default)]
    pub classes: usize,
    /// Their names (class folder names, or digits), as `sample --class NAME` takes them.
    #[serde(default)]
    pub class_names: Vec<String>,
    /// Relaxed categorical latents: groups x categories (then latent = their product); 0 groups
    /// for a Gaussian latent.
    #[serde(default)]
    pub latent_groups: usize,
    #[serde(default)]
    pub latent_categories: usize,
    /// Gumbel-softmax temperature, annealed geometrically from tau_start to tau_end over the run.
    #[serde(default = "one_f32")]
    pub tau_start: f32,
    #[serde(default = "one_f32")]
    pub tau_end: f32,
    #[serde(default)]
    pub inference: Inference,
    /// Per-datapoint inference: table updates per decoder step before it, and their learning rate.
    #[serde(default)]
    pub inner_steps: usize,
    #[serde(default)]
    pub inner_lr: f32,
}

fn one_usize() -> usize {
    1
}

fn one_f32() -> f32 {
    1.0
}

/// Adam's hyper-parameters (PyTorch's defaults but for the learning rate).
#[derive(Clone, Copy, Debug)]
pub struct AdamConfig {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
}

/// What the GPU trainer (and the reference trainer) need of a config, with epochs turned into steps.
#[derive(Clone, Debug)]
pub struct TrainSettings {
    pub batch: usize,
    pub adam: AdamConfig,
    pub seed: u32,
    pub binarize: Binarize,
    pub objective: ObjectiveSettings,
    /// Gumbel-softmax temperature of categorical latents: tau_start to tau_end over anneal_steps.
    pub tau_start: f32,
    pub tau_end: f32,
    pub anneal_steps: u32,
}

/// Largest batch, and largest rows (batch x samples) of one step: one grid dimension of 64-wide
/// workgroups stays far below 65,535 for the per-row kernels.
pub const MAX_ROWS: usize = 65_536;
pub const MAX_LATENT: usize = 4096;
pub const MAX_HIDDEN: usize = 16_384;
pub const MAX_SAMPLES: usize = 1024;
pub const MAX_CLASSES: usize = 256;
pub const MAX_EPOCHS: usize = 100_000;

impl RunConfig {
    /// The flag that sets `samples`: --k for IWAE, --mc-samples for the ELBO.
    pub fn samples_flag(&self) -> &'static str {
        if self.objective == Objective::Iwae {
            "--k"
        } else {
            "--mc-samples"
        }
    }

    /// Rejects values and combinations no run can use, naming the flag that sets each.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 || self.epochs > MAX_EPOCHS {
            bail!("--epochs {}: must be between 1 and {MAX_EPOCHS}", self.epochs);
        }
        if self.batch == 0 || self.batch > MAX_ROWS {
            bail!("--batch {}: must be between 1 and {MAX_ROWS}", self.batch);
        }
        in_unit_interval("--lr", self.lr)?;
        let adam_ok = (0.0..1.0).contains(&self.adam_beta1)
            && (0.0..1.0).contains(&self.adam_beta2)
            && self.adam_eps.is_finite()
            && self.adam_eps > 0.0;
        if !adam_ok {
            bail!("Adam's betas ({}, {}) and eps {} are out of range", self.adam_beta1, self.adam_beta2, self.adam_eps);
        }
        let s = self.shape;
        if s.channels == 0 || s.height == 0 || s.width == 0 || !s.pixels().is_multiple_of(4) || s.pixels() > 1 << 20 {
            bail!("images of {s}: wgvae needs 1 to 2^20 values per image, a multiple of 4");
        }
        if let Some(bad) = self.hidden.iter().find(|&&h| h == 0 || h > MAX_HIDDEN) {
            bail!("--hidden {bad}: each width must be between 1 and {MAX_HIDDEN}");
        }
        if self.hidden.is_empty() {
            bail!("--hidden: at least one hidden layer");
        }
        if self.arch == ArchChoice::Conv {
            if self.conv_channels.is_empty() || self.conv_channels.len() > 6 {
                bail!("--conv-channels: 1 to 6 widths, got {}", self.conv_channels.len());
            }
            if let Some(bad) = self.conv_channels.iter().find(|&&c| c == 0 || c > 1024) {
                bail!("--conv-channels {bad}: each width must be between 1 and 1024");
            }
        }
        if self.norm == Norm::Group {
            let groups = self.norm_groups;
            if let Some(bad) = self.conv_channels.iter().find(|&&c| groups == 0 || c % groups != 0) {
                bail!("--norm-groups {groups}: must divide every --conv-channels width, and {bad} is not a multiple");
            }
        }
        if self.latent_groups > 0 {
            self.validate_categorical()?;
        } else if self.latent == 0 || self.latent > MAX_LATENT {
            bail!("--latent {}: must be between 1 and {MAX_LATENT}", self.latent);
        }
        let samples_flag = self.samples_flag();
        if self.samples == 0 || self.samples > MAX_SAMPLES {
            bail!("{samples_flag} {}: must be between 1 and {MAX_SAMPLES}", self.samples);
        }
        if self.batch * self.samples > MAX_ROWS {
            bail!("--batch {} x {} samples per input: at most {MAX_ROWS} rows", self.batch, self.samples);
        }
        if !(self.beta.is_finite() && (0.0..=1000.0).contains(&self.beta)) {
            bail!("--beta {}: must be a number in [0, 1000]", self.beta);
        }
        if !(self.free_bits.is_finite() && (0.0..=100.0).contains(&self.free_bits)) {
            bail!("--free-bits {}: must be a number of nats in [0, 100]", self.free_bits);
        }
        if self.kl_warmup_epochs > MAX_EPOCHS {
            bail!("--kl-warmup {}: at most {MAX_EPOCHS} epochs", self.kl_warmup_epochs);
        }
        if let Some((h, w)) = self.image_size.filter(|&(h, w)| h == 0 || w == 0 || h > 4096 || w > 4096) {
            bail!("--image-size {h}x{w}: each side must be between 1 and 4096");
        }
        if self.classes > MAX_CLASSES || (self.classes > 0 && !self.conditional) {
            bail!("{} classes: a conditional model (--conditional) knows 1 to {MAX_CLASSES}", self.classes);
        }
        self.validate_combinations()
    }

    fn validate_categorical(&self) -> Result<()> {
        let (groups, categories) = (self.latent_groups, self.latent_categories);
        if categories < 2 || groups * categories > MAX_LATENT || self.latent != groups * categories {
            bail!(
                "--groups {groups} --categories {categories}: need at least 1 group of at least 2 categories, at \
                 most {MAX_LATENT} in all"
            );
        }
        let tau_ok = |t: f32| t.is_finite() && (0.01..=100.0).contains(&t);
        if !(tau_ok(self.tau_start) && tau_ok(self.tau_end)) {
            bail!("--tau-start {} --tau-end {}: temperatures must lie in [0.01, 100]", self.tau_start, self.tau_end);
        }
        if self.objective != Objective::Elbo
            || self.estimator != Estimator::Reparam
            || self.free_bits != 0.0
            || self.conditional
        {
            bail!(
                "--latent categorical trains the ELBO with the Gumbel-softmax (reparameterized) gradient, without \
                 --free-bits or --conditional"
            );
        }
        Ok(())
    }

    /// The objective, estimator, inference and model flags that do not work together.
    fn validate_combinations(&self) -> Result<()> {
        let reparam_elbo = self.objective == Objective::Elbo && self.estimator == Estimator::Reparam;
        if self.objective == Objective::Iwae {
            if self.estimator == Estimator::Score {
                bail!("--objective iwae trains with --estimator reparam only");
            }
            if self.beta != 1.0 || self.kl_warmup_epochs != 0 || self.free_bits != 0.0 {
                bail!("--beta, --kl-warmup and --free-bits act on the ELBO's KL term; --objective iwae has none");
            }
        }
        if self.estimator == Estimator::Score && self.free_bits != 0.0 {
            bail!("--free-bits acts on the closed-form KL gradient, which --estimator score does not use");
        }
        if self.baseline != Baseline::None && self.estimator != Estimator::Score {
            bail!("--baseline is a control variate of --estimator score");
        }
        if self.baseline == Baseline::Loo && self.samples < 2 {
            bail!("--baseline loo needs --mc-samples 2 or more (each sample's baseline is the others' mean)");
        }
        if self.conditional && !(reparam_elbo && self.free_bits == 0.0) {
            bail!("--conditional trains the ELBO with --estimator reparam, without --free-bits");
        }
        if self.inference == Inference::PerDatapoint {
            if !reparam_elbo || self.samples != 1 || self.conditional || self.latent_groups > 0 || self.free_bits != 0.0
            {
                bail!(
                    "--inference per-datapoint trains the one-sample ELBO of a Gaussian latent (no --objective iwae, \
                     --estimator score, --mc-samples, --conditional, --latent categorical or --free-bits)"
                );
            }
            if self.inner_steps > 100 {
                bail!("--inner-steps {}: at most 100", self.inner_steps);
            }
            in_unit_interval("--inner-lr", self.inner_lr)?;
        }
        Ok(())
    }

    /// How a folder of images becomes this run's input.
    pub fn folder_options(&self) -> FolderOptions {
        FolderOptions { size: self.image_size, color: self.color, skip_bad: self.skip_bad }
    }

    pub fn architecture(&self) -> Architecture {
        Architecture {
            image: self.shape,
            hidden: self.hidden.clone(),
            latent: self.latent,
            decoder: self.decoder,
            classes: self.classes,
            categorical: (self.latent_groups > 0).then_some((self.latent_groups, self.latent_categories)),
            conv: (self.arch == ArchChoice::Conv).then(|| self.conv_channels.clone()),
            group_norm: (self.norm == Norm::Group).then_some(self.norm_groups),
        }
    }

    pub fn adam(&self) -> AdamConfig {
        AdamConfig { lr: self.lr, beta1: self.adam_beta1, beta2: self.adam_beta2, eps: self.adam_eps }
    }

    /// The trainer's objective; warm-up is counted in optimizer steps of `steps_per_epoch`.
    pub fn objective_settings(&self, steps_per_epoch: usize) -> ObjectiveSettings {
        ObjectiveSettings {
            objective: self.objective,
            estimator: self.estimator,
            baseline: self.baseline,
            samples: self.samples,
            beta: self.beta,
            warmup_steps: (self.kl_warmup_epochs * steps_per_epoch) as u32,
            free_bits: self.free_bits,
            per_datapoint: (self.inference == Inference::PerDatapoint).then_some((self.inner_steps, self.inner_lr)),
        }
    }

    pub fn train_settings(&self, steps_per_epoch: usize) -> TrainSettings {
        TrainSettings {
            batch: self.batch,
            adam: self.adam(),
            seed: self.seed,
            binarize: self.binarize,
            objective: self.objective_settings(steps_per_epoch),
            tau_start: self.tau_start,
            tau_end: self.tau_end,
            anneal_steps: (self.epochs * steps_per_epoch) as u32,
        }
    }

    /// "784-400-20", or "28x28-conv32-conv64-20": the architecture as the train command prints it.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.shape.pixels().to_string()];
        match self.arch {
            ArchChoice::Conv => {
                parts[0] = self.shape.to_string();
                let norm = if self.norm == Norm::Group { format!("-gn{}", self.norm_groups) } else { String::new() };
                parts.extend(self.conv_channels.iter().map(|c| format!("conv{c}{norm}")));
            }
            _ => parts.extend(self.hidden.iter().map(|h| h.to_string())),
        }
        parts.push(self.latent.to_string());
        parts.join("-")
    }

    /// The conv VAE halves each side once per width: the images' sides must allow it. And only the
    /// conv VAE has a normalisation.
    pub fn check_conv_sides(&self) -> Result<()> {
        if self.norm == Norm::Group && self.arch == ArchChoice::Mlp {
            bail!("--norm group normalises the conv VAE's feature maps: it needs --arch conv (this run is an MLP)");
        }
        let depth = self.conv_channels.len() as u32;
        let step = 1usize << depth;
        let s = self.shape;
        if self.arch == ArchChoice::Conv
            && (!s.height.is_multiple_of(step) || !s.width.is_multiple_of(step) || s.height < step)
        {
            bail!(
                "--arch conv with {depth} widths halves each side {depth} times: the images' {s} sides must be \
                 multiples of {step} (pass --image-size, or fewer --conv-channels)"
            );
        }
        Ok(())
    }
}

fn default_norm_groups() -> usize {
    8
}

/// A learning rate: a number in (0, 1].
pub fn in_unit_interval(flag: &str, value: f32) -> Result<()> {
    if !(value.is_finite() && value > 0.0 && value <= 1.0) {
        bail!("{flag} {value}: must be a number in (0, 1]");
    }
    Ok(())
}
