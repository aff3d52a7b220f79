//! A plain PyTorch state_dict saved with `safetensors.torch.save_file(model.state_dict(), ..)`:
//! no wgvae metadata, so the architecture is read from the tensors' names and shapes (the names of
//! the module comment in mod.rs: pytorch/examples' fc1/fc21/fc22/fc3/fc4, deeper MLPs' encoder.{i}
//! and decoder.{i}, the conv VAE's enc.{i} and dec.{i}), and the rest of the config is what
//! `wgvae train` would use without flags. The images' shape comes from the data the command loads.
use std::collections::BTreeMap;

use anyhow::{bail, Result};
use safetensors::SafeTensors;

use super::read::Tensors;
use super::{tensor_slots, Checkpoint};
use crate::config::spec::{Bound, ConvSpec, Estimator, KlSchedule, Method, ModelSpec, Network};
use crate::config::RunConfig;
use crate::data::ImageShape;
use crate::model::{Decoder, Model};

/// `wgvae train`'s config without flags (tests/cli/state_dict.rs holds the two together).
fn train_defaults() -> RunConfig {
    let json = r#"{"shape": {"channels": 1, "height": 28, "width": 28}, "hidden": [400], "arch": "mlp",
        "conv_channels": [32, 64], "latent": 20, "batch": 128, "epochs": 10, "lr": 0.001, "adam_beta1": 0.9,
        "adam_beta2": 0.999, "adam_eps": 1e-08, "seed": 1, "binarize": "none", "data": null,
        "dataset": "mnist10k", "data_fingerprint": "", "wgvae_version": "", "tau_end": 0.5, "inner_steps": 5,
        "inner_lr": 0.03}"#;
    let mut config: RunConfig = serde_json::from_str(json).unwrap_or_else(|e| unreachable!("the defaults parse: {e}"));
    config.wgvae_version = env!("CARGO_PKG_VERSION").to_string();
    config
}

/// The shapes of the tensors whose name starts with `prefix` and ends in ".weight", by the index
/// between (enc.0.weight, enc.1.weight, ...), in order.
fn indexed(shapes: &BTreeMap<String, Vec<usize>>, prefix: &str) -> Vec<Vec<usize>> {
    let mut found: Vec<(usize, Vec<usize>)> = shapes
        .iter()
        .filter_map(|(name, shape)| {
            let i = name.strip_prefix(prefix)?.strip_suffix(".weight")?.parse().ok()?;
            Some((i, shape.clone()))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, s)| s).collect()
}

/// The config whose model has these tensors, for images of `shape`; and what was inferred.
pub fn infer(shapes: &BTreeMap<String, Vec<usize>>, shape: ImageShape) -> Result<(RunConfig, String)> {
    let dim = |name: &str, axis: usize| shapes.get(name).and_then(|s| s.get(axis).copied());
    let Some(latent) = dim("fc21.weight", 0) else {
        if shapes.contains_key("fc2.weight") || shapes.contains_key("prior.weight") {
            bail!("a state dict of categorical latents or a conditional model has no class names or groups; load it from a wgvae checkpoint");
        }
        bail!("no tensor fc21.weight: not the state dict of a VAE wgvae knows (pytorch/examples' names: fc1, fc21, fc22, fc3, fc4)");
    };
    if shapes.keys().any(|name| name.starts_with("enc_norm.") || name.starts_with("dec_norm.")) {
        bail!(
            "a state dict with nn.GroupNorm layers (enc_norm.*, dec_norm.*) does not record their groups; load the \
             model from the wgvae checkpoint that `train --norm group` writes"
        );
    }
    let mut config = train_defaults();
    config.shape = shape;
    config.method = Method::Gaussian {
        latent,
        bound: Bound::Elbo { samples: 1, kl: KlSchedule::default(), estimator: Estimator::Reparam { free_bits: 0.0 } },
    };
    let convs = indexed(shapes, "enc.");
    let (network, last_out, how) = if !convs.is_empty() {
        let channels: Vec<usize> = convs.iter().map(|s| s[0]).collect();
        let how = format!("conv VAE, channels {channels:?}");
        (Network::Conv(ConvSpec { channels, group_norm: None }), indexed(shapes, "dec.").last().map(|s| s[1]), how)
    } else if shapes.contains_key("fc1.weight") {
        let hidden = vec![dim("fc1.weight", 0).unwrap_or(0)];
        let how = format!("MLP, hidden {hidden:?}");
        (Network::Mlp { hidden }, dim("fc4.weight", 0), how)
    } else {
        let hidden: Vec<usize> = indexed(shapes, "encoder.").iter().map(|s| s[0]).collect();
        let how = format!("MLP, hidden {hidden:?}");
        (Network::Mlp { hidden }, indexed(shapes, "decoder.").last().map(|s| s[0]), how)
    };
    // The decoder's last layer gives a value per pixel (Bernoulli) or two (Gaussian); for the conv
    // VAE its ConvTranspose2d weight is [in, out channels, k, k].
    let per_pixel = if convs.is_empty() { shape.pixels() } else { shape.channels };
    let decoder = match last_out {
        Some(n) if n == 2 * per_pixel => Decoder::Gaussian,
        _ => Decoder::Bernoulli,
    };
    config.model = ModelSpec { network, decoder };
    config.validate()?;
    let said = format!("{how}, latent {latent}, {decoder:?} decoder, for images of {shape}");
    Ok((config, said))
}

/// The checkpoint a state dict makes for images of `shape` (no optimizer state, no progress),
/// and what was inferred: every tensor the inferred model needs, no other, each F32 and finite.
pub fn from_state_dict(bytes: &[u8], shape: ImageShape) -> Result<(Checkpoint, String)> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| anyhow::anyhow!("not a valid safetensors file ({e})"))?;
    let shapes: BTreeMap<String, Vec<usize>> =
        st.tensors().into_iter().map(|(name, view)| (name, view.shape().to_vec())).collect();
    let (config, said) = infer(&shapes, shape)?;
    let model = Model::new(config.architecture());
    let slots = tensor_slots(&model);
    let tensors =
        Tensors { st: &st, arch: format!("{} ({said})", config.describe()), slots: &slots, len: model.param_count };
    let params = tensors.read("")?;
    tensors.refuse_others(false)?;
    Ok((Checkpoint { config, params, adam: None, progress: None, table: None }, said))
}

/// Whether a safetensors file is a plain state dict: no wgvae config in its metadata.
pub fn is_state_dict(bytes: &[u8]) -> bool {
    let metadata = SafeTensors::read_metadata(bytes).ok().and_then(|(_, h)| h.metadata().clone());
    !metadata.is_some_and(|m| m.contains_key(super::CONFIG_KEY))
}
