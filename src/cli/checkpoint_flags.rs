//! The flags of the commands that read a checkpoint: eval, refine, encode and the picture commands.
use std::path::PathBuf;

use clap::Args;

use super::flags::DeviceArgs;
use crate::commands::encode::EncodeSplit;
use crate::importance::Proposal;

/// A checkpoint to load (its config comes with it) and the adapter to run it on.
#[derive(Args, Debug, Clone)]
pub struct CheckpointArgs {
    /// checkpoint.safetensors or model.safetensors, or a run directory holding a checkpoint (eval
    /// also reads a mixture's or an NCE model's file or run).
    #[arg(long, value_name = "PATH")]
    pub checkpoint: PathBuf,
    /// Run it on this folder's images (an image folder, or an IDX folder: its t10k-* split or
    /// held-out tenth) instead of the data the checkpoint records; for a PyTorch state dict,
    /// instead of the embedded digits.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArgs,
}

#[derive(Args, Debug, Clone)]
pub struct EvalArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// Importance samples per image for the estimate of -log p(x); several K (`1 10 100 1000`)
    /// are measured in one pass, K = 10's samples being the first 10 of K = 100's.
    #[arg(long, num_args = 1.., default_values_t = [1000])]
    pub iw_samples: Vec<usize>,
    /// Where the z_k come from: the encoder's q(z|x), or the prior p(z) (naive Monte Carlo); give
    /// both (`encoder prior`) to compare them.
    #[arg(long, value_enum, num_args = 1.., default_values_t = [Proposal::Encoder])]
    pub proposal: Vec<Proposal>,
    /// Folder for importance.csv and importance.png [default: beside the checkpoint].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate only the first N images of the split.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Seed of the importance samples.
    #[arg(long, default_value_t = 1)]
    pub seed: u32,
    /// An NCE model's: draws of its noise mixture for the importance-sampled log Z.
    #[arg(long, default_value_t = 20_000)]
    pub log_z_samples: usize,
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
    /// For a conditional model: samples of this class only, by number or by name (a class folder's)
    /// [default: a row of --cols per class].
    #[arg(long)]
    pub class: Option<String>,
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
pub struct EncodeArgs {
    #[command(flatten)]
    pub from: CheckpointArgs,
    /// The codes' file: .safetensors (tensors mean, logvar, label, index, split), .npy (a
    /// structured array with those fields) or .csv; latents.png is written beside it.
    #[arg(long)]
    pub out: PathBuf,
    /// Which images: the training split, the validation split, or both (the split column says which).
    #[arg(long, value_enum, default_value_t = EncodeSplit::Val)]
    pub split: EncodeSplit,
    /// Encode only the first N images.
    #[arg(long)]
    pub max_images: Option<usize>,
}
