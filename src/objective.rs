//! What the trainer optimises and how it estimates the encoder's gradient (seeds 000-004):
//! the ELBO or the importance-weighted bound, the reparameterization or score-function estimator
//! with a control variate, several samples per input, and the KL term's weight (beta, warm-up, free bits).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The evidence lower bound, with the Gaussian KL in closed form.
    #[default]
    Elbo,
    /// The importance-weighted bound of Burda et al. (2015) over --k samples per input.
    Iwae,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Estimator {
    /// Pathwise: gradients flow through z = mu + sigma eps.
    #[default]
    Reparam,
    /// Score function (REINFORCE): (f - b) grad log q(z|x), f = log p(x|z) + log p(z) - log q(z|x).
    Score,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// No control variate.
    #[default]
    None,
    /// A running mean of the learning signal f over past batches.
    Mean,
    /// For each sample, the mean f of the input's other samples (needs --mc-samples 2 or more).
    Loo,
}

impl Baseline {
    pub fn code(self) -> u32 {
        match self {
            Baseline::None => 0,
            Baseline::Mean => 1,
            Baseline::Loo => 2,
        }
    }
}

/// How q(z|x) is parameterised.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Inference {
    /// An encoder network maps each x to its q(z|x) (a VAE).
    #[default]
    Amortized,
    /// Each training image has its own (mu, logvar), fitted by Adam alongside the decoder, with
    /// --inner-steps updates of the batch's parameters per decoder step (seed 000's first algorithm).
    PerDatapoint,
}

/// Decay of the running-mean baseline per step.
pub const BASELINE_DECAY: f32 = 0.9;

/// How the trainer gets the gradient in q's parameters: each estimator with what it alone needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Gradient {
    /// The ELBO through z = mu + sigma eps, with free bits per latent dimension (0: none).
    Reparam { free_bits: f32 },
    /// The ELBO by the score function, with its control variate.
    Score { baseline: Baseline },
    /// The importance-weighted bound over the samples (K of them).
    Iwae,
}

/// The objective as the trainer runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectiveSettings {
    pub gradient: Gradient,
    /// Samples of z per input (IWAE's K, or the ELBO's Monte Carlo samples).
    pub samples: usize,
    pub beta: f32,
    pub warmup_steps: u32,
    /// Per-datapoint inference: (inner steps per decoder step, Adam learning rate of the table).
    pub per_datapoint: Option<(usize, f32)>,
}

impl ObjectiveSettings {
    /// The free bits per latent dimension: 0 but for the reparameterized ELBO's.
    pub fn free_bits(&self) -> f32 {
        match self.gradient {
            Gradient::Reparam { free_bits } => free_bits,
            _ => 0.0,
        }
    }

    /// The score function's control variate (None for the other estimators).
    pub fn baseline(&self) -> Baseline {
        match self.gradient {
            Gradient::Score { baseline } => baseline,
            _ => Baseline::None,
        }
    }
}

impl Default for ObjectiveSettings {
    fn default() -> Self {
        ObjectiveSettings {
            gradient: Gradient::Reparam { free_bits: 0.0 },
            samples: 1,
            beta: 1.0,
            warmup_steps: 0,
            per_datapoint: None,
        }
    }
}

/// The KL weight at optimizer step `step`: beta ramped from 0 over `warmup_steps` (kl_weight in
/// common.wgsl; the reference and the run's log use this one).
pub fn kl_weight(beta: f32, warmup_steps: u32, step: u32) -> f32 {
    if warmup_steps == 0 {
        return beta;
    }
    beta * (step as f32 / warmup_steps as f32).min(1.0)
}

/// The Gumbel-softmax temperature at optimizer step `step`: tau_start (tau_end / tau_start)^min(1,
/// step / anneal_steps), tau_end without annealing (categorical.wgsl).
pub fn temperature((tau_start, tau_end, anneal_steps): (f32, f32, u32), step: u32) -> f32 {
    if anneal_steps == 0 {
        return tau_end;
    }
    let t = (step as f32 / anneal_steps as f32).min(1.0);
    tau_start * (tau_end / tau_start).powf(t)
}
