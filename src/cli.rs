//! Command-line interface: flags (their doc comments are the --help text), checked once into
//! the settings the rest of the program uses.
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::data::Builtin;
use crate::gpu::Backend;
use crate::model::Decoder;
use crate::objective::{Baseline, Estimator, Inference, Objective};
use crate::reference::kernels::Binarize;

#[derive(Parser, Debug)]
#[command(name = "wgvae", version, about = "Train variational autoencoders on any GPU with WGSL compute shaders")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a VAE; writes sample grids, reconstructions, metrics.csv, curves.png and checkpoints
    /// into the run directory. Ctrl-C stops after the current steps with a checkpoint to --resume.
    Train(TrainArgs),
    /// Validation negative ELBO and the importance-sampled estimate of -log p(x) of a checkpoint.
    Eval(EvalArgs),
    /// A grid of samples from the prior, decoded.
    Sample(SampleArgs),
    /// Validation inputs beside their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Decoded paths between the latent means of pairs of validation inputs, a row per pair.
    Interpolate(InterpolateArgs),
    /// For a 2-D latent: the decoded grid over the prior's inverse CDF (Kingma & Welling, fig. 4).
    Manifold(ManifoldArgs),
    /// The amortization gap: the validation ELBO with the encoder's q(z|x), and after gradient steps
    /// on each input's own (mu, logvar) with the decoder frozen.
    Refine(RefineArgs),
    /// Variance of the encoder-gradient estimators (reparameterization vs score function with
    /// each control variate) at fixed weights and a fixed batch.
    Gradvar(GradvarArgs),
    /// Measure training speed (images/s, seconds per epoch, time per kernel) on the adapter.
    Bench(BenchArgs),
    /// List the GPU adapters wgpu can use.
    Devices(DeviceArgs),
}

#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Graphics API to use [default: all that are available].
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    /// Use the adapter whose name contains this text (case-insensitive); see `wgvae devices`.
    #[arg(long)]
    pub adapter: Option<String>,
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
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    pub tau_start: f32,
    /// Categorical latents: temperature at the end (annealed geometrically over the run).
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub tau_end: f32,
    /// Hidden layer widths, encoder order (the decoder mirrors them), e.g. --hidden 512 256.
    #[arg(long, num_args = 1.., default_values_t = vec![400])]
    pub hidden: Vec<usize>,
    /// Seed for initialisation, shuffling and every random draw.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// How grey levels become decoder targets.
    #[arg(long, value_enum, default_value_t = Binarize::None)]
    pub binarize: Binarize,
    /// Folder of IDX files: train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], and
    /// optionally t10k-* (then used for validation; otherwise every tenth training image is).
    #[arg(long)]
    pub data: Option<PathBuf>,
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
    #[arg(long, default_value_t = 5)]
    pub inner_steps: usize,
    /// Per-datapoint inference: Adam learning rate of the (mu, logvar) table.
    #[arg(long, default_value_t = 3e-2, allow_negative_numbers = true)]
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
    /// Stop as Ctrl-C does after this many optimizer steps in all (for testing resume).
    #[arg(long, hide = true)]
    pub interrupt_after_steps: Option<u32>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

pub const DEFAULT_EPOCHS: usize = 10;

#[derive(Args, Debug, Clone)]
pub struct RefineArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Adam steps on each input's (mu, logvar).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Adam learning rate of the refinement.
    #[arg(long, default_value_t = 1e-2, allow_negative_numbers = true)]
    pub lr: f32,
    /// Draws of z per input when measuring the ELBO before and after (the same draws both times).
    #[arg(long, default_value_t = 10)]
    pub draws: usize,
    /// Refine only the first N validation images.
    #[arg(long)]
    pub max_images: Option<usize>,
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

/// A checkpoint to load (its config comes with it) and the adapter to run it on.
#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// checkpoint.safetensors or model.safetensors, or a run directory holding a checkpoint.
    #[arg(long, value_name = "PATH")]
    pub checkpoint: PathBuf,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Importance samples per image for the estimate of -log p(x).
    #[arg(long, default_value_t = 1000)]
    pub iw_samples: usize,
    /// Evaluate on this IDX folder's t10k-* split (or its held-out tenth) instead of the
    /// checkpoint's validation split.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Evaluate only the first N images of the split.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Seed of the importance samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
}

#[derive(Args, Debug, Clone)]
pub struct SampleArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Number of samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Seed of the prior draws.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// Scales the prior's standard deviation (below 1: more typical, less varied samples).
    #[arg(long, default_value_t = 1.0)]
    pub temperature: f32,
    /// For a conditional model: samples of this class only [default: a row of --cols per class].
    #[arg(long)]
    pub class: Option<usize>,
    /// Images per row.
    #[arg(long, default_value_t = 8)]
    pub cols: usize,
    /// PNG to write [default: sample.png beside the checkpoint].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Number of validation images, spread evenly over the split.
    #[arg(long, default_value_t = 32)]
    pub n: usize,
    /// PNG to write [default: reconstruct.png beside the checkpoint].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Validation indices where the paths start [default: 0 100 200 300 400 500 600 700].
    #[arg(long, num_args = 1..)]
    pub start: Vec<usize>,
    /// Validation indices where the paths end, as many as --start [default: 950 850 750 650 550 450 350 250].
    #[arg(long, num_args = 1..)]
    pub end: Vec<usize>,
    /// Decoded frames per path, the two ends included.
    #[arg(long, default_value_t = 10)]
    pub frames: usize,
    /// PNG to write [default: interpolate.png beside the checkpoint].
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args, Debug, Clone)]
pub struct ManifoldArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Images per side of the grid.
    #[arg(long, default_value_t = 20)]
    pub n: usize,
    /// PNG to write [default: manifold.png beside the checkpoint].
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
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
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

impl ModelArgs {
    /// Width of z: the Gaussian's dimensions, or groups x categories.
    pub fn latent_width(&self) -> usize {
        match self.latent {
            Latent::Gaussian(z) => z,
            Latent::Categorical => self.groups * self.categories,
        }
    }

    /// Rejects values no run can use, naming the flag.
    pub fn check(&self) -> Result<()> {
        if self.batch == 0 || self.batch > 65_536 {
            bail!("--batch {}: must be between 1 and 65536", self.batch);
        }
        if !(self.lr.is_finite() && self.lr > 0.0 && self.lr <= 1.0) {
            bail!("--lr {}: must be a number in (0, 1]", self.lr);
        }
        match self.latent {
            Latent::Gaussian(z) if z == 0 || z > 4096 => bail!("--latent {z}: must be between 1 and 4096"),
            Latent::Categorical => {
                if self.groups == 0 || self.categories < 2 || self.groups * self.categories > 4096 {
                    bail!("--groups {} --categories {}: need at least 1 group of at least 2 categories, at most 4096 in all",
                          self.groups, self.categories);
                }
                if !(self.tau_start.is_finite()
                    && self.tau_end.is_finite()
                    && self.tau_start >= 0.01
                    && self.tau_end >= 0.01
                    && self.tau_start <= 100.0
                    && self.tau_end <= 100.0)
                {
                    bail!(
                        "--tau-start {} --tau-end {}: temperatures must lie in [0.01, 100]",
                        self.tau_start,
                        self.tau_end
                    );
                }
                if self.objective != Objective::Elbo
                    || self.estimator != Estimator::Reparam
                    || self.free_bits != 0.0
                    || self.conditional
                {
                    bail!(
                        "--latent categorical trains the ELBO with the Gumbel-softmax (reparameterized) gradient, \
                           without --free-bits or --conditional"
                    );
                }
            }
            _ => {}
        }
        if let Some(bad) = self.hidden.iter().find(|&&h| h == 0 || h > 16_384) {
            bail!("--hidden {bad}: each width must be between 1 and 16384");
        }
        if self.mc_samples == 0 || self.mc_samples > 1024 {
            bail!("--mc-samples {}: must be between 1 and 1024", self.mc_samples);
        }
        if let Some(k) = self.k.filter(|&k| k == 0 || k > 1024) {
            bail!("--k {k}: must be between 1 and 1024");
        }
        if self.batch * self.samples() > 65_536 {
            bail!("--batch {} x {} samples per input: at most 65536 rows", self.batch, self.samples());
        }
        if !(self.beta.is_finite() && (0.0..=1000.0).contains(&self.beta)) {
            bail!("--beta {}: must be a number in [0, 1000]", self.beta);
        }
        if !(self.free_bits.is_finite() && (0.0..=100.0).contains(&self.free_bits)) {
            bail!("--free-bits {}: must be a number of nats in [0, 100]", self.free_bits);
        }
        if self.kl_warmup > 100_000 {
            bail!("--kl-warmup {}: at most 100000 epochs", self.kl_warmup);
        }
        match self.objective {
            Objective::Iwae => {
                if self.estimator == Estimator::Score {
                    bail!("--objective iwae trains with --estimator reparam only");
                }
                if self.mc_samples != 1 {
                    bail!("--objective iwae takes its samples from --k, not --mc-samples");
                }
                if self.beta != 1.0 || self.kl_warmup != 0 || self.free_bits != 0.0 {
                    bail!("--beta, --kl-warmup and --free-bits act on the ELBO's KL term; --objective iwae has none");
                }
            }
            Objective::Elbo => {
                if self.k.is_some() {
                    bail!("--k is the number of importance samples of --objective iwae; the ELBO uses --mc-samples");
                }
            }
        }
        if self.estimator == Estimator::Score && self.free_bits != 0.0 {
            bail!("--free-bits acts on the closed-form KL gradient, which --estimator score does not use");
        }
        if self.baseline != Baseline::None && self.estimator != Estimator::Score {
            bail!("--baseline is a control variate of --estimator score");
        }
        if self.conditional
            && (self.objective != Objective::Elbo || self.estimator != Estimator::Reparam || self.free_bits != 0.0)
        {
            bail!("--conditional trains the ELBO with --estimator reparam, without --free-bits");
        }
        if self.inference == Inference::PerDatapoint {
            if self.objective != Objective::Elbo
                || self.estimator != Estimator::Reparam
                || self.mc_samples != 1
                || self.conditional
                || self.latent == Latent::Categorical
                || self.free_bits != 0.0
            {
                bail!(
                    "--inference per-datapoint trains the one-sample ELBO of a Gaussian latent (no --objective iwae, \
                       --estimator score, --mc-samples, --conditional, --latent categorical or --free-bits)"
                );
            }
            if self.inner_steps > 100 {
                bail!("--inner-steps {}: at most 100", self.inner_steps);
            }
            if !(self.inner_lr.is_finite() && self.inner_lr > 0.0 && self.inner_lr <= 1.0) {
                bail!("--inner-lr {}: must be a number in (0, 1]", self.inner_lr);
            }
        }
        if self.baseline == Baseline::Loo && self.mc_samples < 2 {
            bail!("--baseline loo needs --mc-samples 2 or more (each sample's baseline is the others' mean)");
        }
        Ok(())
    }

    /// Samples of z per input: --k for IWAE, else --mc-samples.
    pub fn samples(&self) -> usize {
        match self.objective {
            Objective::Iwae => self.k.unwrap_or(5),
            Objective::Elbo => self.mc_samples,
        }
    }
}

impl TrainArgs {
    pub fn check(&self) -> Result<()> {
        if let Some(e) = self.epochs.filter(|&e| e == 0 || e > 100_000) {
            bail!("--epochs {e}: must be between 1 and 100000");
        }
        self.model.check()
    }
}

/// Rejects sizes no picture command can use, naming the flag.
fn check_count(flag: &str, n: usize, max: usize) -> Result<()> {
    if n == 0 || n > max {
        bail!("{flag} {n}: must be between 1 and {max}");
    }
    Ok(())
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => {
            args.check()?;
            crate::train::train(&args)
        }
        Command::Eval(args) => {
            check_count("--iw-samples", args.iw_samples, 1_000_000)?;
            if let Some(n) = args.max_images {
                check_count("--max-images", n, usize::MAX)?;
            }
            crate::eval::eval(&args)
        }
        Command::Sample(args) => {
            check_count("--n", args.n, 10_000)?;
            check_count("--cols", args.cols, 1_000)?;
            if !(args.temperature.is_finite() && args.temperature > 0.0 && args.temperature <= 100.0) {
                bail!("--temperature {}: must be a number in (0, 100]", args.temperature);
            }
            crate::pictures::sample(&args)
        }
        Command::Reconstruct(args) => {
            check_count("--n", args.n, 1_000)?;
            crate::pictures::reconstruct(&args)
        }
        Command::Interpolate(args) => {
            check_count("--frames", args.frames, 100)?;
            crate::pictures::interpolate(&args)
        }
        Command::Manifold(args) => {
            check_count("--n", args.n, 100)?;
            crate::pictures::manifold(&args)
        }
        Command::Refine(args) => {
            check_count("--steps", args.steps, 100_000)?;
            check_count("--draws", args.draws, 10_000)?;
            if let Some(n) = args.max_images {
                check_count("--max-images", n, usize::MAX)?;
            }
            if !(args.lr.is_finite() && args.lr > 0.0 && args.lr <= 1.0) {
                bail!("--lr {}: must be a number in (0, 1]", args.lr);
            }
            crate::eval::refine(&args)
        }
        Command::Gradvar(args) => {
            args.model.check()?;
            check_count("--repeats", args.repeats, 100_000)?;
            check_count("--samples", args.samples, 1024)?;
            if args.repeats < 2 {
                bail!("--repeats {}: a variance needs at least 2 draws", args.repeats);
            }
            crate::gradvar::gradvar(&args)
        }
        Command::Bench(args) => {
            args.model.check()?;
            if args.steps == 0 || args.kernel_reps == 0 {
                bail!("--steps and --kernel-reps must be at least 1");
            }
            crate::bench::bench(&args)
        }
        Command::Devices(args) => {
            let adapters = crate::gpu::list_adapters(args.backend);
            if adapters.is_empty() {
                bail!("{}", crate::gpu::context::NO_ADAPTER_HINT);
            }
            for a in adapters {
                println!("{}\t{:?}\t{:?}\tdriver: {} {}", a.name, a.backend, a.device_type, a.driver, a.driver_info);
            }
            Ok(())
        }
    }
}
