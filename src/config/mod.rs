//! The run's configuration: one `RunConfig` that defines a run (with the same config and adapter a
//! run is reproducible), its choices as types (spec.rs) so that no combination that cannot train
//! can be written down, stored flat (flat.rs) as checkpoints have always held it. `validate()`
//! checks the values' ranges, naming the flag that sets each.
mod flat;
pub mod spec;
mod validate;

use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::data::{Binarize, Builtin, ColorMode, FolderOptions, ImageShape};
use crate::model::Architecture;
use crate::objective::{Gradient, ObjectiveSettings};
pub use flat::FlatConfig;

/// The flags' defaults for the settings a method may not use: the command line starts from them,
/// and a stored config writes them for the methods that ignore them (as checkpoints always held).
pub mod defaults {
    /// Gumbel-softmax temperature at the start and at the end of training.
    pub const TAU_START: f32 = 1.0;
    pub const TAU_END: f32 = 0.5;
    /// Per-datapoint inference: table updates per decoder step, and their learning rate.
    pub const INNER_STEPS: usize = 5;
    pub const INNER_LR: f32 = 3e-2;
}
use spec::{Bound, Method, ModelSpec, Network};

/// The encoder and decoder flag: an MLP (`--hidden`) or convolutions (`--conv-channels`); auto
/// picks when the data is loaded (session::complete_config says why).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ArchChoice {
    Auto,
    #[default]
    Mlp,
    Conv,
}

/// Everything that defines a run. Checkpoints store it as a FlatConfig (the JSON of
/// `wgvae.config`), and reading one refuses combinations no run can use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "FlatConfig", into = "FlatConfig")]
pub struct RunConfig {
    /// (channels, height, width) of the data's images.
    pub shape: ImageShape,
    pub model: ModelSpec,
    pub method: Method,
    pub batch: usize,
    pub epochs: usize,
    pub optimizer: AdamConfig,
    pub seed: u32,
    pub binarize: Binarize,
    /// IDX or image folder given with --data, else None and `dataset` names the built-in set.
    pub data: Option<PathBuf>,
    pub dataset: Builtin,
    /// A folder of images: the (height, width) they are resized to (None: their own), grey or RGB,
    /// and whether undecodable files are skipped.
    pub image_size: Option<(usize, usize)>,
    pub color: ColorMode,
    pub skip_bad: bool,
    /// Dataset::fingerprint of the data the run trained on.
    pub data_fingerprint: String,
    pub wgvae_version: String,
}

/// Adam's hyper-parameters (PyTorch's defaults but for the learning rate).
#[derive(Clone, Copy, Debug, PartialEq)]
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
    /// Width of z.
    pub fn latent_width(&self) -> usize {
        self.method.latent_width()
    }

    /// Samples of z per input (IWAE's K, or the ELBO's).
    pub fn samples(&self) -> usize {
        self.method.samples()
    }

    /// The flag that sets them: --k for IWAE, --mc-samples otherwise.
    pub fn samples_flag(&self) -> &'static str {
        self.method.samples_flag()
    }

    /// Classes of a conditional model, 0 for any other.
    pub fn classes(&self) -> usize {
        self.method.classes()
    }

    /// (groups, categories) of categorical latents.
    pub fn categorical(&self) -> Option<(usize, usize)> {
        self.method.categorical()
    }

    /// Whether the network is the conv VAE.
    pub fn is_conv(&self) -> bool {
        matches!(self.model.network, Network::Conv(_))
    }

    /// Whether each training image has its own q (no encoder).
    pub fn per_datapoint(&self) -> bool {
        matches!(self.method, Method::PerDatapoint { .. })
    }

    /// A conditional model's class names.
    pub fn class_names(&self) -> &[String] {
        self.method.class_names()
    }

    /// How a folder of images becomes this run's input.
    pub fn folder_options(&self) -> FolderOptions {
        FolderOptions { size: self.image_size, color: self.color, skip_bad: self.skip_bad }
    }

    /// The model's architecture; `auto` must have been resolved (session::complete_config).
    pub fn architecture(&self) -> Architecture {
        let (hidden, conv) = match &self.model.network {
            Network::Mlp { hidden } | Network::Auto { hidden, .. } => (hidden.clone(), None),
            Network::Conv(conv) => (Vec::new(), Some(conv.clone())),
        };
        Architecture {
            image: self.shape,
            hidden,
            latent: self.latent_width(),
            decoder: self.model.decoder,
            classes: self.classes(),
            categorical: self.categorical(),
            group_norm: conv.as_ref().and_then(|c| c.group_norm),
            conv: conv.map(|c| c.channels),
        }
    }

    pub fn adam(&self) -> AdamConfig {
        self.optimizer
    }

    /// The trainer's objective; warm-up is counted in optimizer steps of `steps_per_epoch`.
    pub fn objective_settings(&self, steps_per_epoch: usize) -> ObjectiveSettings {
        let kl = self.method.kl();
        let (gradient, per_datapoint) = match self.method {
            Method::Gaussian { bound: Bound::Iwae { .. }, .. } => (Gradient::Iwae, None),
            Method::Gaussian { bound: Bound::Elbo { estimator, .. }, .. } => (estimator.gradient(), None),
            Method::PerDatapoint { inner_steps, inner_lr, .. } => {
                (Gradient::Reparam { free_bits: 0.0 }, Some((inner_steps, inner_lr)))
            }
            Method::Conditional { .. } | Method::Categorical { .. } => (Gradient::Reparam { free_bits: 0.0 }, None),
        };
        ObjectiveSettings {
            gradient,
            samples: self.method.samples(),
            beta: kl.beta,
            warmup_steps: (kl.warmup_epochs * steps_per_epoch) as u32,
            per_datapoint,
        }
    }

    pub fn train_settings(&self, steps_per_epoch: usize) -> TrainSettings {
        let (tau_start, tau_end) = match self.method {
            Method::Categorical { tau, .. } => tau,
            _ => (1.0, 0.5),
        };
        TrainSettings {
            batch: self.batch,
            adam: self.adam(),
            seed: self.seed,
            binarize: self.binarize,
            objective: self.objective_settings(steps_per_epoch),
            tau_start,
            tau_end,
            anneal_steps: (self.epochs * steps_per_epoch) as u32,
        }
    }

    /// "784-400-20", or "28x28-conv32-conv64-20": the architecture as the train command prints it.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.shape.pixels().to_string()];
        match &self.model.network {
            Network::Conv(conv) => {
                parts[0] = self.shape.to_string();
                let norm = conv.group_norm.map_or(String::new(), |g| format!("-gn{g}"));
                parts.extend(conv.channels.iter().map(|c| format!("conv{c}{norm}")));
            }
            Network::Mlp { hidden } | Network::Auto { hidden, .. } => {
                parts.extend(hidden.iter().map(|h| h.to_string()))
            }
        }
        parts.push(self.latent_width().to_string());
        parts.join("-")
    }

    /// The conv VAE halves each side once per width: the images' sides must allow it. And only the
    /// conv VAE has a normalisation.
    pub fn check_conv_sides(&self) -> Result<()> {
        let Network::Conv(conv) = &self.model.network else { return Ok(()) };
        let depth = conv.channels.len() as u32;
        let step = 1usize << depth;
        let s = self.shape;
        if !s.height.is_multiple_of(step) || !s.width.is_multiple_of(step) || s.height < step {
            bail!(
                "--arch conv with {depth} widths halves each side {depth} times: the images' {s} sides must be \
                 multiples of {step} (pass --image-size, or fewer --conv-channels)"
            );
        }
        Ok(())
    }
}

/// A learning rate: a number in (0, 1].
pub fn in_unit_interval(flag: &str, value: f32) -> Result<()> {
    if !(value.is_finite() && value > 0.0 && value <= 1.0) {
        bail!("{flag} {value}: must be a number in (0, 1]");
    }
    Ok(())
}
