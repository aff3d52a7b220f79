//! Writing checkpoints: the tensors in state_dict order, the config and progress as metadata, the
//! header sorted so that the same run writes the same bytes.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use safetensors::tensor::TensorView;
use safetensors::Dtype;

use super::{tensor_slots, Checkpoint, TensorSlot, CHECKPOINT_FILE, CONFIG_KEY, MODEL_FILE, PROGRESS_KEY, TABLE_NAMES};
use crate::files::write_atomic;
use crate::model::Model;

fn f32_bytes(values: &[f32]) -> &[u8] {
    bytemuck::cast_slice(values)
}

/// Serializes the checkpoint; `with_training_state` adds Adam's moments and the progress.
pub fn to_bytes(ck: &Checkpoint, model: &Model, with_training_state: bool) -> Result<Vec<u8>> {
    let slots = tensor_slots(model);
    let mut tensors: Vec<(String, TensorView)> = Vec::new();
    fn view<'a>(values: &'a [f32], s: &TensorSlot) -> Result<TensorView<'a>> {
        TensorView::new(Dtype::F32, s.shape.clone(), f32_bytes(&values[s.at..s.at + s.len()]))
            .context("building a tensor view")
    }
    for s in &slots {
        tensors.push((s.name.clone(), view(&ck.params, s)?));
    }
    let mut metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (CONFIG_KEY.to_string(), serde_json::to_string(&ck.config)?),
    ]);
    if with_training_state {
        if let Some((m, v)) = &ck.adam {
            for s in &slots {
                tensors.push((format!("optimizer.exp_avg.{}", s.name), view(m, s)?));
                tensors.push((format!("optimizer.exp_avg_sq.{}", s.name), view(v, s)?));
            }
        }
        if let Some(p) = &ck.progress {
            metadata.insert(PROGRESS_KEY.to_string(), serde_json::to_string(p)?);
        }
        if let Some(table) = &ck.table {
            let rows = table[0].len() / (2 * model.arch.latent);
            for (name, values) in TABLE_NAMES.iter().zip(table) {
                tensors.push((
                    name.to_string(),
                    TensorView::new(Dtype::F32, vec![rows, 2 * model.arch.latent], f32_bytes(values))
                        .context("building a tensor view")?,
                ));
            }
        }
    }
    let bytes = safetensors::serialize(tensors, Some(metadata)).context("serializing safetensors")?;
    sorted_header(bytes)
}

/// The same file with its JSON header's keys sorted (the safetensors crate writes its metadata
/// from a HashMap, whose order changes from run to run), so that the same run writes the same
/// bytes. Sorting keeps every key and value, so the header keeps its length and the data its place.
pub(crate) fn sorted_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    use std::collections::BTreeMap;
    let len = u64::from_le_bytes(bytes[..8].try_into().context("safetensors header length")?) as usize;
    let header: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&bytes[8..8 + len]).context("reading back the safetensors header")?;
    let sorted: BTreeMap<&String, serde_json::Value> = header
        .iter()
        .map(|(k, v)| {
            let v = match v.as_object() {
                Some(o) => serde_json::to_value(o.iter().collect::<BTreeMap<_, _>>()).unwrap_or(v.clone()),
                None => v.clone(),
            };
            (k, v)
        })
        .collect();
    let mut json = serde_json::to_vec(&sorted).context("writing the safetensors header")?;
    anyhow::ensure!(json.len() <= len, "the sorted safetensors header grew");
    json.resize(len, b' '); // the crate pads the header with spaces to its alignment
    bytes[8..8 + len].copy_from_slice(&json);
    Ok(bytes)
}

/// Writes checkpoint.safetensors and model.safetensors into `dir`.
pub fn save(dir: &Path, ck: &Checkpoint, model: &Model) -> Result<()> {
    write_atomic(&dir.join(CHECKPOINT_FILE), &to_bytes(ck, model, true)?)?;
    write_atomic(&dir.join(MODEL_FILE), &to_bytes(ck, model, false)?)
}
