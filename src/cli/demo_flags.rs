//! The flags of the commands that run the notes' other models and examples: `toy`, `mixture` and
//! `nce`, with the data flags they share.
use std::path::PathBuf;

use clap::Args;

use super::flags::{parse_size, DeviceArgs};
use crate::data::{Builtin, ColorMode, FolderOptions, Source};

#[derive(Args, Debug, Clone)]
pub struct ToyArgs {
    /// Slope a of the mean a theta + b (not 0: theta would not matter).
    #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
    pub a: f32,
    /// Offset b of the mean a theta + b.
    #[arg(long, default_value_t = 3.0, allow_negative_numbers = true)]
    pub b: f32,
    /// theta at the start, where the estimators' mean and variance are measured.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub theta: f32,
    /// Draws of z per gradient estimate.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Plain SGD steps from theta.
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// SGD step size (stable below 1 / a^2, as F''(theta) = 2 a^2).
    #[arg(long, default_value_t = 0.05, allow_negative_numbers = true)]
    pub lr: f32,
    /// Seed of the draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// Folder for toy.csv and toy.png [default: runs/toy-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct MixtureArgs {
    /// K, the number of components.
    #[arg(long, default_value_t = 10)]
    pub components: usize,
    /// p(x|k): Bernoulli on grey levels, or a diagonal Gaussian (a density).
    #[arg(long, value_enum, default_value_t = crate::mixture::Family::Bernoulli)]
    pub family: crate::mixture::Family,
    /// Most EM iterations.
    #[arg(long, default_value_t = 100)]
    pub iterations: usize,
    /// Stop when an iteration raises the objective (log-likelihood + log prior) by less than this,
    /// in nats per training image.
    #[arg(long, default_value_t = 1e-3)]
    pub tolerance: f64,
    /// The smoothing prior's pseudo-count A: mu = (S + A) / (N_k + 2A), pi = (N_k + A) / (N + K A).
    #[arg(long, default_value_t = 1.0)]
    pub pseudo_count: f32,
    /// Gaussian: the variances' floor.
    #[arg(long, default_value_t = 1e-3)]
    pub variance_floor: f32,
    /// Seed of the start (the K data points the components begin as).
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    #[command(flatten)]
    pub data: DataSource,
    /// Folder for the outputs [default: runs/mixture-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write no TensorBoard event file into the output folder.
    #[arg(long)]
    pub no_tensorboard: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// Where a command's images come from, as `train` reads them.
#[derive(Args, Debug, Clone)]
pub struct DataSource {
    /// A folder of images or of IDX files, as `train --data`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Built-in dataset, when --data is not given.
    #[arg(long, value_enum, default_value_t = Builtin::Mnist10k)]
    pub dataset: Builtin,
    /// Folders of images: resize every image to N x N or H x W.
    #[arg(long, value_name = "N|HxW", value_parser = parse_size)]
    pub image_size: Option<(usize, usize)>,
    /// Folders of images: grey or RGB.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
    /// Folders of images: leave out files that cannot be decoded.
    #[arg(long)]
    pub skip_bad: bool,
}

impl DataSource {
    pub fn source(self) -> Source {
        let folder = FolderOptions { size: self.image_size, color: self.color, skip_bad: self.skip_bad };
        Source { dir: self.data, dataset: self.dataset, folder }
    }
}

#[derive(Args, Debug, Clone)]
pub struct NceArgs {
    /// The noise: a `wgvae mixture` run directory (or its mixture.safetensors).
    #[arg(long)]
    pub noise: PathBuf,
    /// Passes over the training images.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// k, noise draws per data image.
    #[arg(long, default_value_t = 10)]
    pub noise_samples: usize,
    /// The scorer's hidden layer widths (ReLU), e.g. --hidden 400 or --hidden 512 256.
    #[arg(long, num_args = 1.., default_values_t = [400])]
    pub hidden: Vec<usize>,
    /// What the network's output is added to: `noise` models log p(x) = log q(x) + s(x) - c, a
    /// correction to the noise; `none` models it as s(x) - c alone, the notes' plain form.
    #[arg(long, value_enum, default_value_t = crate::nce::Base::Noise)]
    pub base: crate::nce::Base,
    /// Data images per step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam's step size.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    /// Draws of the mixture for the importance-sampled log Z.
    #[arg(long, default_value_t = 20_000)]
    pub log_z_samples: usize,
    /// Seed of the initial weights, the shuffles and the draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    #[command(flatten)]
    pub data: DataSource,
    /// Folder for the outputs [default: runs/nce-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Write no TensorBoard event file into the output folder.
    #[arg(long)]
    pub no_tensorboard: bool,
    #[command(flatten)]
    pub device: DeviceArgs,
}
