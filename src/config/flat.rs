//! The config's stored form and the conversions to and from the typed `RunConfig`.
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use super::spec::{Bound, ConvSpec, Elbo, Estimator as TypedEstimator, KlSchedule, Method, ModelSpec, Network};
use super::{in_unit_interval, AdamConfig, ArchChoice, RunConfig};
use crate::data::{Binarize, Builtin, ColorMode, ImageShape};
use crate::model::{Decoder, Norm};
use crate::objective::{Baseline, Estimator, Inference, Objective};

/// A run's config as checkpoints store it (the JSON of `wgvae.config`): flat, one field per flag.
/// Fields added after the first release have defaults, so older checkpoints still load. A
/// RunConfig is read through it (`RunConfig::try_from`, which refuses the combinations no run can
/// use) and written as it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FlatConfig {
    /// (channels, height, width) of the data's images; checkpoints before it were all 1 x 28 x 28.
    #[serde(default = "ImageShape::mnist")]
    pub(crate) shape: ImageShape,
    pub(crate) hidden: Vec<usize>,
    /// MLP or conv (auto only until the data is loaded; checkpoints before it were MLPs).
    #[serde(default)]
    pub(crate) arch: ArchChoice,
    /// The conv encoder's channel widths (the decoder mirrors them).
    #[serde(default)]
    pub(crate) conv_channels: Vec<usize>,
    /// The conv VAE's normalisation after each hidden convolution, and its groups.
    #[serde(default)]
    pub(crate) norm: Norm,
    #[serde(default = "default_norm_groups")]
    pub(crate) norm_groups: usize,
    pub(crate) latent: usize,
    pub(crate) batch: usize,
    pub(crate) epochs: usize,
    pub(crate) lr: f32,
    pub(crate) adam_beta1: f32,
    pub(crate) adam_beta2: f32,
    pub(crate) adam_eps: f32,
    pub(crate) seed: u32,
    pub(crate) binarize: Binarize,
    /// IDX folder given with --data, else None and `dataset` names the built-in set.
    pub(crate) data: Option<PathBuf>,
    pub(crate) dataset: Builtin,
    /// A folder of images: the (height, width) they are resized to (None: their own), grey or RGB,
    /// and whether undecodable files are skipped.
    #[serde(default)]
    pub(crate) image_size: Option<(usize, usize)>,
    #[serde(default)]
    pub(crate) color: ColorMode,
    #[serde(default)]
    pub(crate) skip_bad: bool,
    /// Dataset::fingerprint of the data the run trained on.
    pub(crate) data_fingerprint: String,
    pub(crate) wgvae_version: String,
    #[serde(default)]
    pub(crate) objective: Objective,
    #[serde(default)]
    pub(crate) estimator: Estimator,
    #[serde(default)]
    pub(crate) baseline: Baseline,
    /// Samples of z per input: IWAE's K, or the ELBO's Monte Carlo samples.
    #[serde(default = "one_usize")]
    pub(crate) samples: usize,
    #[serde(default = "one_f32")]
    pub(crate) beta: f32,
    #[serde(default)]
    pub(crate) kl_warmup_epochs: usize,
    #[serde(default)]
    pub(crate) free_bits: f32,
    #[serde(default)]
    pub(crate) decoder: Decoder,
    /// A class-conditional model (--conditional); its class count comes from the data.
    #[serde(default)]
    pub(crate) conditional: bool,
    /// Classes of a conditional model, 0 until the data is loaded and for an unconditional one.
    #[serde(default)]
    pub(crate) classes: usize,
    /// Their names (class folder names, or digits), as `sample --class NAME` takes them.
    #[serde(default)]
    pub(crate) class_names: Vec<String>,
    /// Relaxed categorical latents: groups x categories (then latent = their product); 0 groups
    /// for a Gaussian latent.
    #[serde(default)]
    pub(crate) latent_groups: usize,
    #[serde(default)]
    pub(crate) latent_categories: usize,
    /// Gumbel-softmax temperature, annealed geometrically from tau_start to tau_end over the run.
    #[serde(default = "one_f32")]
    pub(crate) tau_start: f32,
    #[serde(default = "one_f32")]
    pub(crate) tau_end: f32,
    #[serde(default)]
    pub(crate) inference: Inference,
    /// Per-datapoint inference: table updates per decoder step before it, and their learning rate.
    #[serde(default)]
    pub(crate) inner_steps: usize,
    #[serde(default)]
    pub(crate) inner_lr: f32,
}

fn one_usize() -> usize {
    1
}

fn one_f32() -> f32 {
    1.0
}

fn default_norm_groups() -> usize {
    8
}

impl FlatConfig {
    /// The objective, estimator, inference and latent flags that do not work together, named.
    fn check_combinations(&self) -> Result<()> {
        let reparam_elbo = self.objective == Objective::Elbo && self.estimator == Estimator::Reparam;
        let conditional = self.conditional || self.classes > 0;
        if self.latent_groups > 0 && !(reparam_elbo && self.free_bits == 0.0 && !conditional) {
            bail!(
                "--latent categorical trains the ELBO with the Gumbel-softmax (reparameterized) gradient, without \
                 --free-bits or --conditional"
            );
        }
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
        if conditional && !(reparam_elbo && self.free_bits == 0.0) {
            bail!("--conditional trains the ELBO with --estimator reparam, without --free-bits");
        }
        if self.inference == Inference::PerDatapoint {
            if !reparam_elbo || self.samples != 1 || conditional || self.latent_groups > 0 || self.free_bits != 0.0 {
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
        if self.arch == ArchChoice::Mlp && self.norm == Norm::Group {
            bail!("--norm group normalises the conv VAE's feature maps: it needs --arch conv (this run is an MLP)");
        }
        Ok(())
    }

    fn network(&self) -> Network {
        let conv = ConvSpec {
            channels: self.conv_channels.clone(),
            group_norm: (self.norm == Norm::Group).then_some(self.norm_groups),
        };
        match self.arch {
            ArchChoice::Auto => Network::Auto { hidden: self.hidden.clone(), conv },
            ArchChoice::Mlp => Network::Mlp { hidden: self.hidden.clone() },
            ArchChoice::Conv => Network::Conv(conv),
        }
    }

    /// The method these flags describe; check_combinations has refused the others.
    fn method(&self) -> Method {
        let kl = KlSchedule { beta: self.beta, warmup_epochs: self.kl_warmup_epochs };
        let elbo = Elbo { samples: self.samples, kl };
        if self.latent_groups > 0 {
            let (groups, categories, tau) =
                (self.latent_groups, self.latent_categories, (self.tau_start, self.tau_end));
            return Method::Categorical { groups, categories, tau, elbo };
        }
        let latent = self.latent;
        if self.inference == Inference::PerDatapoint {
            return Method::PerDatapoint { latent, kl, inner_steps: self.inner_steps, inner_lr: self.inner_lr };
        }
        if self.conditional || self.classes > 0 {
            let (classes, class_names) = (self.classes, self.class_names.clone());
            return Method::Conditional { latent, classes, class_names, elbo };
        }
        let bound = match (self.objective, self.estimator) {
            (Objective::Iwae, _) => Bound::Iwae { k: self.samples },
            (Objective::Elbo, Estimator::Reparam) => Bound::Elbo {
                samples: self.samples,
                kl,
                estimator: TypedEstimator::Reparam { free_bits: self.free_bits },
            },
            (Objective::Elbo, Estimator::Score) => {
                Bound::Elbo { samples: self.samples, kl, estimator: TypedEstimator::Score { baseline: self.baseline } }
            }
        };
        Method::Gaussian { latent, bound }
    }
}

impl TryFrom<FlatConfig> for RunConfig {
    type Error = anyhow::Error;

    fn try_from(f: FlatConfig) -> Result<RunConfig> {
        f.check_combinations()?;
        if f.latent_groups > 0 && f.latent != f.latent_groups * f.latent_categories {
            bail!("latent {} is not --groups {} x --categories {}", f.latent, f.latent_groups, f.latent_categories);
        }
        Ok(RunConfig {
            shape: f.shape,
            model: ModelSpec { network: f.network(), decoder: f.decoder },
            method: f.method(),
            batch: f.batch,
            epochs: f.epochs,
            optimizer: AdamConfig { lr: f.lr, beta1: f.adam_beta1, beta2: f.adam_beta2, eps: f.adam_eps },
            seed: f.seed,
            binarize: f.binarize,
            data: f.data,
            dataset: f.dataset,
            image_size: f.image_size,
            color: f.color,
            skip_bad: f.skip_bad,
            data_fingerprint: f.data_fingerprint,
            wgvae_version: f.wgvae_version,
        })
    }
}

impl From<RunConfig> for FlatConfig {
    /// The flat fields of each choice; those a choice has no use for get the flags' defaults (an
    /// MLP's conv widths and a conv VAE's hidden widths are left empty).
    fn from(c: RunConfig) -> FlatConfig {
        let (arch, hidden, conv) = match c.model.network {
            Network::Auto { hidden, conv } => (ArchChoice::Auto, hidden, Some(conv)),
            Network::Mlp { hidden } => (ArchChoice::Mlp, hidden, None),
            Network::Conv(conv) => (ArchChoice::Conv, Vec::new(), Some(conv)),
        };
        let group_norm = conv.as_ref().and_then(|c| c.group_norm);
        let mut f = FlatConfig {
            shape: c.shape,
            hidden,
            arch,
            conv_channels: conv.map(|c| c.channels).unwrap_or_default(),
            norm: if group_norm.is_some() { Norm::Group } else { Norm::None },
            norm_groups: group_norm.unwrap_or_else(default_norm_groups),
            latent: c.method.latent_width(),
            batch: c.batch,
            epochs: c.epochs,
            lr: c.optimizer.lr,
            adam_beta1: c.optimizer.beta1,
            adam_beta2: c.optimizer.beta2,
            adam_eps: c.optimizer.eps,
            seed: c.seed,
            binarize: c.binarize,
            data: c.data,
            dataset: c.dataset,
            image_size: c.image_size,
            color: c.color,
            skip_bad: c.skip_bad,
            data_fingerprint: c.data_fingerprint,
            wgvae_version: c.wgvae_version,
            objective: Objective::Elbo,
            estimator: Estimator::Reparam,
            baseline: Baseline::None,
            samples: c.method.samples(),
            beta: c.method.kl().beta,
            kl_warmup_epochs: c.method.kl().warmup_epochs,
            free_bits: 0.0,
            decoder: c.model.decoder,
            conditional: false,
            classes: c.method.classes(),
            class_names: c.method.class_names().to_vec(),
            latent_groups: 0,
            latent_categories: 0,
            tau_start: super::defaults::TAU_START,
            tau_end: super::defaults::TAU_END,
            inference: Inference::Amortized,
            inner_steps: super::defaults::INNER_STEPS,
            inner_lr: super::defaults::INNER_LR,
        };
        match c.method {
            Method::Gaussian { bound: Bound::Iwae { .. }, .. } => f.objective = Objective::Iwae,
            Method::Gaussian { bound: Bound::Elbo { estimator, .. }, .. } => match estimator {
                TypedEstimator::Reparam { free_bits } => f.free_bits = free_bits,
                TypedEstimator::Score { baseline } => (f.estimator, f.baseline) = (Estimator::Score, baseline),
            },
            Method::Conditional { .. } => f.conditional = true,
            Method::Categorical { groups, categories, tau, .. } => {
                (f.latent_groups, f.latent_categories, f.tau_start, f.tau_end) = (groups, categories, tau.0, tau.1)
            }
            Method::PerDatapoint { inner_steps, inner_lr, .. } => {
                (f.inference, f.inner_steps, f.inner_lr) = (Inference::PerDatapoint, inner_steps, inner_lr)
            }
        }
        f
    }
}
