//! The command line as a whole: `wgvae COMMAND`, each command with the flags of flags.rs,
//! checkpoint_flags.rs or demo_flags.rs.
use clap::{Parser, Subcommand};

use super::checkpoint_flags::{
    EncodeArgs, EvalArgs, InterpolateArgs, ManifoldArgs, ReconstructArgs, RefineArgs, SampleArgs,
};
use super::demo_flags::{MixtureArgs, NceArgs, ToyArgs};
use super::flags::{BenchArgs, DataArgs, DevicesArgs, GradvarArgs, TrainArgs};

#[derive(Parser, Debug)]
#[command(name = "wgvae", version, about = "Train variational autoencoders on any GPU with WGSL compute shaders")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a VAE; writes sample grids, reconstructions, metrics.csv, curves.png, checkpoints and a
    /// TensorBoard log into the run directory. Ctrl-C stops after the current steps with a
    /// checkpoint to --resume.
    Train(TrainArgs),
    /// -log p(x) on the validation split: a VAE checkpoint's negative ELBO and importance-sampled
    /// estimate, a mixture's exact value, an NCE model's with c and with an estimated log Z.
    Eval(EvalArgs),
    /// A grid of samples from the prior, decoded.
    Sample(SampleArgs),
    /// Validation inputs beside their reconstructions.
    Reconstruct(ReconstructArgs),
    /// Decoded paths between the latent means of pairs of validation inputs, a row per pair.
    Interpolate(InterpolateArgs),
    /// For a 2-D latent: the decoded grid over the prior's inverse CDF (Kingma & Welling, fig. 4).
    Manifold(ManifoldArgs),
    /// Each image's q(z|x) (mean and log-variance) with its label, to a .safetensors, .npy or .csv
    /// file, and latents.png: the validation codes coloured by class.
    Encode(EncodeArgs),
    /// The amortization gap: the validation ELBO with the encoder's q(z|x), and after gradient steps
    /// on each input's own (mu, logvar) with the decoder frozen.
    Refine(RefineArgs),
    /// Variance of the encoder-gradient estimators (reparameterization vs score function with
    /// each control variate) at fixed weights and a fixed batch.
    Gradvar(GradvarArgs),
    /// The notes' worked example (seed 004): minimise F(theta) = E_{z ~ N(a theta + b, 1)}[z^2] with
    /// the REINFORCE and the reparameterization gradient estimators, side by side with the exact
    /// gradient; writes toy.csv and toy.png.
    Toy(ToyArgs),
    /// Seed 001's mixture model: K Bernoulli (or diagonal Gaussian) products over the pixels, fitted
    /// by EM on the GPU, with the exact log-likelihood per iteration; writes metrics.csv,
    /// components.png, samples.png and mixture.safetensors.
    Mixture(MixtureArgs),
    /// Seed 004's noise-contrastive estimation: an unnormalized model s(x) and its log-normaliser
    /// c, trained to tell data from k draws of a fitted mixture (--noise, a `wgvae mixture` run);
    /// reports the accuracy, c and an importance-sampled log Z; writes metrics.csv, best.png,
    /// worst.png and nce.safetensors.
    Nce(NceArgs),
    /// Measure training speed (images/s, seconds per epoch, time per kernel) on the adapter.
    Bench(BenchArgs),
    /// List the GPU adapters wgpu can use; with --plan, the kernels a run of the model would get.
    Devices(DevicesArgs),
    /// What a run would load from a data folder (or the built-in set): images per class and
    /// split, size, colour, the decoded cache; and a grid of a few of the images.
    Data(DataArgs),
}
