//! The command-line flags of the model, the device and the training commands: clap structs whose
//! doc comments are the --help text. cli/mod.rs turns them into the config and the commands'
//! options, once.
use std::path::PathBuf;

use clap::{Args, Parser};

use crate::config::defaults;
use crate::config::ArchChoice;
use crate::data::Binarize;
use crate::data::{Builtin, ColorMode};
use crate::gpu::{Backend, KernelChoice};
use crate::model::Decoder;
use crate::model::Norm;
use crate::objective::{Baseline, Estimator, Inference, Objective};

#[derive(Args, Debug, Clone)]
pub struct DevicesArgs {
    /// Print, for each adapter (or the --profile), the kernel plan of the model the flags describe:
    /// every linear launch with its kernel and grid, the step's other choices, whether it fits.
    #[arg(long)]
    pub plan: bool,
    /// The plan on a described adapter instead of the ones found: lavapipe, lavapipe-128,
    /// swiftshader, llvmpipe-gl, webgpu, h100, rdna, apple-m, intel-xe (implies --plan).
    #[arg(long)]
    pub profile: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Graphics API to use [default: all that are available].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Use the adapter whose name contains this text (case-insensitive); see `wgvae devices`.
    #[arg(long)]
    pub adapter: Option<String>,
    /// Kernel family: `auto` picks by the adapter's type (CPU adapters such as lavapipe take `cpu`,
    /// real GPUs `gpu`: workgroup-memory tiles).
    #[arg(long, value_enum, default_value = "auto")]
    pub kernels: KernelChoice,
}

#[derive(Args, Debug, Clone)]
pub struct ModelArgs {
    /// Examples per optimizer step.
    #[arg(long, default_value_t = 128)]
    pub batch: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    /// Latent dimensions of the Gaussian latent, or `categorical` for Gumbel-softmax relaxed
    /// categorical latents (--groups x --categories).
    #[arg(long, default_value = "20", value_parser = parse_latent)]
    pub latent: Latent,
    /// Categorical latents: independent categorical variables.
    #[arg(long, default_value_t = 20)]
    pub groups: usize,
    /// Categorical latents: classes of each variable.
    #[arg(long, default_value_t = 10)]
    pub categories: usize,
    /// Categorical latents: Gumbel-softmax temperature at the start of training.
    #[arg(long, default_value_t = defaults::TAU_START, allow_negative_numbers = true)]
    pub tau_start: f32,
    /// Categorical latents: temperature at the end (annealed geometrically over the run).
    #[arg(long, default_value_t = defaults::TAU_END, allow_negative_numbers = true)]
    pub tau_end: f32,
    /// The encoder and decoder: mlp (--hidden), conv (--conv-channels), or auto (the MLP for IDX
    /// digits, the conv VAE for image folders whose sides its depth divides).
    #[arg(long, value_enum, default_value_t = ArchChoice::Auto)]
    pub arch: ArchChoice,
    /// --arch conv: the encoder's channel widths, each a Conv2d(4, stride 2, padding 1) + ReLU
    /// halving the sides (the decoder mirrors them with ConvTranspose2d).
    #[arg(long, num_args = 1.., default_values_t = vec![32, 64])]
    pub conv_channels: Vec<usize>,
    /// --arch conv: a normalisation after every hidden convolution of the encoder and the decoder
    /// (not the output layer), before its ReLU: none, or group (nn.GroupNorm, affine).
    #[arg(long, value_enum, default_value_t = Norm::None)]
    pub norm: Norm,
    /// --norm group: the groups of channels normalised together; must divide every width.
    #[arg(long, default_value_t = 8)]
    pub norm_groups: usize,
    /// Hidden layer widths, encoder order (the decoder mirrors them), e.g. --hidden 512 256.
    #[arg(long, num_args = 1.., default_values_t = vec![400])]
    pub hidden: Vec<usize>,
    /// Seed for initialisation, shuffling and every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// How grey levels become decoder targets.
    #[arg(long, value_enum, default_value_t = Binarize::None)]
    pub binarize: Binarize,
    /// Your data: a folder of images (DIR/<class>/*.png|jpg|bmp|webp, or a flat folder; DIR/train
    /// with DIR/val or DIR/test as splits), or of IDX files (train-images-idx3-ubyte[.gz],
    /// train-labels-idx1-ubyte[.gz], optionally t10k-*). Without a validation split every tenth
    /// training image is held out.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folders of images: resize every image to N x N or H x W (HxW) [default: their own size,
    /// which must then agree].
    #[arg(long, value_name = "N|HxW", value_parser = parse_size)]
    pub image_size: Option<(usize, usize)>,
    /// Folders of images: grey (one channel) or RGB (three); auto is RGB when any image has colour.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
    /// Folders of images: leave out files that cannot be decoded (and say how many) instead of stopping.
    #[arg(long)]
    pub skip_bad: bool,
    /// Built-in dataset, when --data is not given.
    #[arg(long, value_enum, default_value_t = Builtin::Mnist10k)]
    pub dataset: Builtin,
    /// p(x|z): Bernoulli on grey levels (as pytorch/examples), or a diagonal Gaussian with a learned
    /// mean and log-variance per pixel (its loss is a density, so not comparable with Bernoulli's).
    #[arg(long, value_enum, default_value_t = Decoder::Bernoulli)]
    pub decoder: Decoder,
    /// A class-conditional VAE (CVAE): q(z|x, y), p(x|z, y) and a learned prior p(z|y), the class
    /// y taken from the data's labels.
    #[arg(long)]
    pub conditional: bool,
    /// q(z|x) from an encoder (amortized), or a table of (mu, logvar) per training image.
    #[arg(long, value_enum, default_value_t = Inference::Amortized)]
    pub inference: Inference,
    /// Per-datapoint inference: updates of the batch's (mu, logvar) before each decoder step.
    #[arg(long, default_value_t = defaults::INNER_STEPS)]
    pub inner_steps: usize,
    /// Per-datapoint inference: Adam learning rate of the (mu, logvar) table.
    #[arg(long, default_value_t = defaults::INNER_LR, allow_negative_numbers = true)]
    pub inner_lr: f32,
    /// Training objective.
    #[arg(long, value_enum, default_value_t = Objective::Elbo)]
    pub objective: Objective,
    /// Importance samples per input for --objective iwae [default: 5].
    #[arg(long)]
    pub k: Option<usize>,
    /// Gradient estimator for the encoder (the decoder's gradient is always pathwise).
    #[arg(long, value_enum, default_value_t = Estimator::Reparam)]
    pub estimator: Estimator,
    /// Control variate for --estimator score.
    #[arg(long, value_enum, default_value_t = Baseline::None)]
    pub baseline: Baseline,
    /// Samples of z per input for the ELBO's Monte Carlo estimate (the gradient averages them).
    #[arg(long, default_value_t = 1)]
    pub mc_samples: usize,
    /// Weight of the KL term (beta-VAE); the reported loss stays the plain negative ELBO.
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub beta: f32,
    /// KL warm-up: the KL weight ramps linearly from 0 to --beta over this many epochs.
    #[arg(long, default_value_t = 0)]
    pub kl_warmup: usize,
    /// Free bits: nats per latent dimension; a dimension whose batch-mean KL is below this gets no
    /// KL gradient (Kingma et al. 2016), against posterior collapse. 0 turns it off.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub free_bits: f32,
}

/// `wgvae train`'s flags alone, for a front end that has no command line (cli::train_config).
#[derive(Parser, Debug)]
#[command(name = "wgvae train", no_binary_name = true)]
pub struct TrainFlags {
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// Passes over the training split [default: 10; with --resume, the checkpoint's].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Run directory for images, metrics and checkpoints [default: runs/<dataset>-<unix time>].
    #[arg(long, conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its checkpoint.safetensors, with its config; the
    /// result is the same as if the run had not stopped.
    #[arg(long, value_name = "RUN_DIR", conflicts_with = "ModelArgs")]
    pub resume: Option<PathBuf>,
    /// Start from these weights instead of random ones, with a fresh optimizer (fine-tuning): a
    /// wgvae checkpoint or a PyTorch state dict in safetensors, for the model the flags describe.
    #[arg(long, value_name = "PATH", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Stop as Ctrl-C does after this many optimizer steps in all (for testing resume).
    #[arg(long, hide = true)]
    pub interrupt_after_steps: Option<u32>,
    /// Write no TensorBoard event file (by default the run directory gets one: `tensorboard
    /// --logdir runs` shows every run's curves, samples and config).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Make the GPU fail after this many optimizer steps in all (for testing that failure).
    #[arg(long, hide = true)]
    pub inject_fault_after_steps: Option<u32>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct GradvarArgs {
    /// Measure at a checkpoint's weights, with its architecture, data and batch; otherwise at a
    /// fresh initialisation of the model the flags describe.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: Option<PathBuf>,
    /// Independent gradient estimates per estimator.
    #[arg(long, default_value_t = 100)]
    pub repeats: usize,
    /// Samples of z per input, for every estimator (leave-one-out needs 2 or more).
    #[arg(long, default_value_t = 4)]
    pub samples: usize,
    /// Folder for gradvar.csv and gradvar.png [default: beside the checkpoint, or runs/gradvar-<unix time>].
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// A folder of images or of IDX files [default: the built-in --dataset].
    pub dir: Option<PathBuf>,
    /// Built-in dataset, when no folder is given.
    #[arg(long, value_enum, default_value_t = Builtin::Mnist10k)]
    pub dataset: Builtin,
    /// Resize every image to N x N or H x W, as `train --image-size` would.
    #[arg(long, value_name = "N|HxW", value_parser = parse_size)]
    pub image_size: Option<(usize, usize)>,
    /// Grey or RGB, as `train --color` would.
    #[arg(long, value_enum, default_value_t = ColorMode::Auto)]
    pub color: ColorMode,
    /// Leave out files that cannot be decoded.
    #[arg(long)]
    pub skip_bad: bool,
    /// Training images in the grid.
    #[arg(long, default_value_t = 32)]
    pub n: usize,
    /// PNG to write [default: data.png in the current folder].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Timed training steps (after 5 warm-up steps).
    #[arg(long, default_value_t = 40)]
    pub steps: usize,
    /// Repetitions of each kernel when timing kernels one by one.
    #[arg(long, default_value_t = 10)]
    pub kernel_reps: usize,
    /// Also list every launch of the step in order, with its workgroup grid and time.
    #[arg(long)]
    pub each_launch: bool,
    /// Time each of these batches (with every --sweep-hidden), e.g. --sweep-batch 128 512 2048.
    #[arg(long, num_args = 1..)]
    pub sweep_batch: Vec<usize>,
    /// Time a one-hidden-layer model of each of these widths, e.g. --sweep-hidden 400 1024.
    #[arg(long, num_args = 1..)]
    pub sweep_hidden: Vec<usize>,
    /// Print the results as JSON on stdout (the tables go to stderr).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

/// --image-size: N (square) or HxW.
pub fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("'{s}' is not a size: give N or HxW, e.g. 32 or 64x48");
    let (h, w) = match s.split_once(['x', 'X']) {
        Some((h, w)) => (h.trim().parse().map_err(|_| bad())?, w.trim().parse().map_err(|_| bad())?),
        None => {
            let n = s.trim().parse().map_err(|_| bad())?;
            (n, n)
        }
    };
    Ok((h, w))
}

/// --latent: a Gaussian latent's dimensions, or relaxed categorical latents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Latent {
    Gaussian(usize),
    Categorical,
}

fn parse_latent(s: &str) -> Result<Latent, String> {
    if s == "categorical" {
        return Ok(Latent::Categorical);
    }
    s.parse::<usize>()
        .map(Latent::Gaussian)
        .map_err(|_| format!("'{s}' is neither a number of dimensions nor `categorical`"))
}
