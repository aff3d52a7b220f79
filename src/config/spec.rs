//! The run's choices as types: the network, and the method (latent, objective, inference) in one
//! enum whose variants are the combinations that train together, so a config cannot hold one
//! that does not (categorical latents with IWAE, a conditional model with per-datapoint
//! inference, a score-function baseline under the reparameterized estimator, ...).
use crate::model::Decoder;
use crate::objective::{Baseline, Gradient};

/// The encoder and decoder.
#[derive(Clone, Debug, PartialEq)]
pub enum Network {
    /// `--arch auto` until the data is loaded (session::complete_config): the MLP, or for a folder
    /// of images whose sides its depth divides, the conv VAE.
    Auto { hidden: Vec<usize>, conv: ConvSpec },
    /// Linear layers of these widths (encoder order; the decoder mirrors them).
    Mlp { hidden: Vec<usize> },
    /// The conv VAE (model.rs conv_paths).
    Conv(ConvSpec),
}

/// The conv VAE's channel widths (encoder order) and its GroupNorm's groups, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    pub channels: Vec<usize>,
    pub group_norm: Option<usize>,
}

/// The architecture: the network and what the decoder outputs per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub network: Network,
    pub decoder: Decoder,
}

/// The KL term's weight: beta, reached linearly over `warmup_epochs` (0: from the start).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KlSchedule {
    pub beta: f32,
    pub warmup_epochs: usize,
}

impl Default for KlSchedule {
    fn default() -> Self {
        KlSchedule { beta: 1.0, warmup_epochs: 0 }
    }
}

/// The reparameterized ELBO with `samples` draws of z per input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Elbo {
    pub samples: usize,
    pub kl: KlSchedule,
}

/// How the encoder's gradient is estimated under the ELBO.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Estimator {
    /// Through z = mu + sigma eps, the KL's gradient in closed form, below `free_bits` nats per
    /// dimension none (0: off).
    Reparam { free_bits: f32 },
    /// The score function with a control variate.
    Score { baseline: Baseline },
}

impl Estimator {
    /// The trainer's name for it.
    pub fn gradient(self) -> Gradient {
        match self {
            Estimator::Reparam { free_bits } => Gradient::Reparam { free_bits },
            Estimator::Score { baseline } => Gradient::Score { baseline },
        }
    }
}

/// A Gaussian VAE's bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    Elbo {
        samples: usize,
        kl: KlSchedule,
        estimator: Estimator,
    },
    /// The importance-weighted bound over `k` samples (reparameterized, no KL term).
    Iwae {
        k: usize,
    },
}

/// The latent, the objective and the inference: the combinations that train together.
#[derive(Clone, Debug, PartialEq)]
pub enum Method {
    /// Gaussian latents of `latent` dimensions, amortized q(z|x).
    Gaussian { latent: usize, bound: Bound },
    /// A CVAE: q(z|x, y), p(x|z, y) and a learned p(z|y); `classes` and their names come from the
    /// data (0 and none until it is loaded).
    Conditional { latent: usize, classes: usize, class_names: Vec<String>, elbo: Elbo },
    /// Relaxed categorical latents (Gumbel-softmax), the temperature annealed geometrically from
    /// tau.0 to tau.1 over the run.
    Categorical { groups: usize, categories: usize, tau: (f32, f32), elbo: Elbo },
    /// A q per training image, updated `inner_steps` times per decoder step with Adam at
    /// `inner_lr`: the one-sample ELBO.
    PerDatapoint { latent: usize, kl: KlSchedule, inner_steps: usize, inner_lr: f32 },
}

impl Method {
    /// Width of z: the Gaussian's dimensions, or groups x categories.
    pub fn latent_width(&self) -> usize {
        match *self {
            Method::Gaussian { latent, .. }
            | Method::Conditional { latent, .. }
            | Method::PerDatapoint { latent, .. } => latent,
            Method::Categorical { groups, categories, .. } => groups * categories,
        }
    }

    /// Samples of z per input (IWAE's K, or the ELBO's).
    pub fn samples(&self) -> usize {
        match *self {
            Method::Gaussian { bound: Bound::Elbo { samples, .. }, .. } => samples,
            Method::Gaussian { bound: Bound::Iwae { k }, .. } => k,
            Method::Conditional { elbo, .. } | Method::Categorical { elbo, .. } => elbo.samples,
            Method::PerDatapoint { .. } => 1,
        }
    }

    /// The classes of a conditional model (0 otherwise).
    pub fn classes(&self) -> usize {
        match self {
            Method::Conditional { classes, .. } => *classes,
            _ => 0,
        }
    }

    /// Their names, as `sample --class NAME` takes them (none for other models).
    pub fn class_names(&self) -> &[String] {
        match self {
            Method::Conditional { class_names, .. } => class_names,
            _ => &[],
        }
    }

    /// (groups, categories) of categorical latents.
    pub fn categorical(&self) -> Option<(usize, usize)> {
        match *self {
            Method::Categorical { groups, categories, .. } => Some((groups, categories)),
            _ => None,
        }
    }

    /// The KL term's schedule (IWAE has no KL term: the neutral one).
    pub fn kl(&self) -> KlSchedule {
        match *self {
            Method::Gaussian { bound: Bound::Elbo { kl, .. }, .. } | Method::PerDatapoint { kl, .. } => kl,
            Method::Gaussian { bound: Bound::Iwae { .. }, .. } => KlSchedule::default(),
            Method::Conditional { elbo, .. } | Method::Categorical { elbo, .. } => elbo.kl,
        }
    }

    /// The flag that sets the samples: --k for IWAE, --mc-samples otherwise.
    pub fn samples_flag(&self) -> &'static str {
        match self {
            Method::Gaussian { bound: Bound::Iwae { .. }, .. } => "--k",
            _ => "--mc-samples",
        }
    }
}
