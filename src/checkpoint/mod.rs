//! Checkpoints as safetensors files.
//!
//! Tensor names follow pytorch/examples' VAE state_dict, weights [out, in] as nn.Linear:
//!   one hidden layer (the default 784-400-20): fc1 (encoder), fc21 (mean head), fc22 (log-variance
//!   head), fc3 and fc4 (decoder), each `.weight` and `.bias`;
//!   deeper nets: encoder.{i} for the encoder's hidden layers, the heads fc21 and fc22 as above,
//!   and decoder.{i} for the decoder's layers in order (the last gives the logits);
//!   categorical latents replace fc21 / fc22 by one layer of logits, fc2 (encoder.{L} when deeper);
//!   a conditional model adds prior.weight [2 latent, class block] and prior.bias (p(z|y)), and its
//!   first encoder and decoder layers take the one-hot class block as extra input columns.
//!
//! A run directory holds two files, each replaced atomically (temp file, fsync, rename):
//!   checkpoint.safetensors: the model, Adam's moments (optimizer.exp_avg.<name>,
//!     optimizer.exp_avg_sq.<name>) and, in the metadata, the config and the progress (epoch, step,
//!     loss totals of an unfinished epoch, RNG position, per-epoch metrics). `train --resume` reads it.
//!   model.safetensors: the model tensors alone, so that
//!     `model.load_state_dict(safetensors.torch.load_file("model.safetensors"))` works unchanged.
//! Both carry the config, so either serves `eval`, `sample` and the other picture commands.
mod read;
pub mod state_dict;
mod write;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::config::RunConfig;
use crate::gpu::params::LossTotals;
use crate::model::Model;
pub use crate::network::TensorSlot;

pub const CHECKPOINT_FILE: &str = "checkpoint.safetensors";
pub const MODEL_FILE: &str = "model.safetensors";
pub use read::{from_bytes, load, parse, read_bytes, resolve, weights_for};
pub use state_dict::{from_state_dict, is_state_dict};
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use write::sorted_header;
pub use write::{save, to_bytes};

const CONFIG_KEY: &str = "wgvae.config";
const PROGRESS_KEY: &str = "wgvae.progress";

/// One epoch's line of metrics.csv.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub train_loss: f32,
    pub train_rec: f32,
    pub train_kl: f32,
    pub val_loss: f32,
    pub val_rec: f32,
    pub val_kl: f32,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl EpochMetrics {
    /// An epoch's line from its training and validation loss totals, the seconds it trained and
    /// the images it trained on; an error when the validation loss is not finite.
    pub fn from_totals(
        epoch: usize,
        train: &LossTotals,
        val: &LossTotals,
        seconds: f64,
        images: usize,
    ) -> Result<Self> {
        let ((train_loss, train_rec, train_kl), (val_loss, val_rec, val_kl)) = (train.means(), val.means());
        if !val_loss.is_finite() {
            bail!("validation loss is not finite after epoch {epoch} (train loss {train_loss}); try a lower --lr");
        }
        Ok(EpochMetrics {
            epoch,
            train_loss,
            train_rec,
            train_kl,
            val_loss,
            val_rec,
            val_kl,
            seconds,
            images_per_second: images as f64 / seconds.max(1e-9),
        })
    }
}

/// Where the random streams stand. Every draw is counter-based, so this position is all that is
/// needed to continue them: eps and binarization are Philox4x32-10 keyed by (seed, stream) with
/// counters (element, batch cursor, optimizer step); the epoch's shuffle is StdRng seeded by
/// (seed << 32) ^ epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngPosition {
    pub generator: String,
    pub seed: u32,
    pub optimizer_step: u32,
    pub epoch: usize,
    pub cursor: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// Epochs finished (validated, pictured, checkpointed).
    pub epochs_done: usize,
    /// Steps already taken in epoch epochs_done + 1 (non-zero after an interruption).
    pub step_in_epoch: usize,
    /// Adam steps taken in all.
    pub optimizer_step: u32,
    /// The unfinished epoch's loss totals (rec_sum, kl_sum, examples) as f32 bit patterns, exact.
    pub totals_bits: [u32; 3],
    /// The score estimator's running-mean baseline [mean, initialised], as f32 bit patterns.
    #[serde(default)]
    pub baseline_bits: [u32; 2],
    pub rng: RngPosition,
    pub history: Vec<EpochMetrics>,
}

/// The model's tensors, in state_dict order, with their names (see the module comment): each
/// layer's `name.weight` and `name.bias` (Model::names), except that a Gaussian encoder's last
/// layer [2Z, n_in] is fc21 (rows 0..Z) stacked on fc22 (rows Z..2Z).
pub fn tensor_slots(model: &Model) -> Vec<TensorSlot> {
    let (z, heads) = (model.arch.latent, model.encoder.len() - 1);
    let mut slots = Vec::new();
    for (i, (layer, name)) in model.layers().zip(&model.names).enumerate() {
        if i != heads || model.arch.categorical.is_some() {
            slots.extend(layer.tensors(name));
            continue;
        }
        for (k, name) in ["fc21", "fc22"].iter().enumerate() {
            let slot = |name: String, at, shape| TensorSlot { name, at, shape };
            slots.push(slot(format!("{name}.weight"), layer.weight_at + k * z * layer.n_in, vec![z, layer.n_in]));
            slots.push(slot(format!("{name}.bias"), layer.bias_at + k * z, vec![z]));
        }
    }
    slots
}

/// What a checkpoint holds, host-side.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub config: RunConfig,
    /// Flat parameter buffer (model.rs layout, padding 0).
    pub params: Vec<f32>,
    /// Adam's moments in the same layout; absent in model.safetensors.
    pub adam: Option<(Vec<f32>, Vec<f32>)>,
    pub progress: Option<Progress>,
    /// Per-datapoint inference: the table of variational parameters [training images, 2 latent]
    /// and its Adam moments (checkpoint.safetensors only).
    pub table: Option<[Vec<f32>; 3]>,
}

/// Tensor names of the per-datapoint table and its moments.
pub const TABLE_NAMES: [&str; 3] =
    ["posterior.mulv", "optimizer.exp_avg.posterior.mulv", "optimizer.exp_avg_sq.posterior.mulv"];
