//! What `eval` takes (built by cli/ from the flags), for a VAE (eval.rs) or a density model
//! (eval_density.rs) alike.
use std::path::PathBuf;

use crate::importance::Proposal;
use crate::session::CheckpointSource;

pub struct EvalOptions {
    pub from: CheckpointSource,
    /// Importance samples per image for the estimate of -log p(x): each K is measured.
    pub iw_samples: Vec<usize>,
    /// Where the z_k come from: each proposal is measured.
    pub proposals: Vec<Proposal>,
    /// Folder for importance.csv and importance.png [default: beside the checkpoint].
    pub out: Option<PathBuf>,
    pub max_images: Option<usize>,
    /// Seed of the importance samples.
    pub seed: u32,
    /// An NCE model's draws of q for log Z.
    pub log_z_samples: usize,
}
