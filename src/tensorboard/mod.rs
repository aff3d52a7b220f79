//! TensorBoard event files: what TensorBoard (and wandb, comet, anything that reads its files)
//! shows of a run. A file is a sequence of records, each a length (u64), its masked CRC-32C, an
//! Event message (proto.rs) and the data's masked CRC-32C, little-endian. Every event is written
//! and flushed as it comes, so a run killed mid-epoch leaves a file readable up to its last
//! event. A resumed run writes a new file that opens with SessionLog START at its checkpoint's
//! step: readers drop what an earlier file logged past it, so no step is shown twice.
pub mod proto;

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use prost::Message;

use proto::{
    Event, Experiment, HParamsData, HParamsPluginData, Image, Kind, MetricInfo, MetricName, PluginData, ProtoValue,
    SessionEndInfo, SessionLog, SessionStartInfo, Summary, SummaryMetadata, TensorProto, Value, What,
};

/// TensorBoard's mask of a record's CRC-32C.
fn masked_crc(bytes: &[u8]) -> u32 {
    let crc = crc32c::crc32c(bytes);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// One event file being written.
pub struct EventFile {
    file: File,
    path: PathBuf,
}

impl EventFile {
    /// A new file in `dir`, named so that TensorBoard reads a run's files in the order written;
    /// `purge_from`: a resumed run's first new step, from which readers drop earlier files' events.
    pub fn create(dir: &Path, purge_from: Option<u64>) -> Result<EventFile> {
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros());
        let name = format!(
            "events.out.tfevents.{:010}.{:06}.wgvae.{}",
            stamp / 1_000_000,
            stamp % 1_000_000,
            std::process::id()
        );
        let path = dir.join(name);
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut events = EventFile { file, path };
        events.write(0, What::FileVersion("brain.Event:2".into()))?;
        if let Some(step) = purge_from {
            events.write(step, What::SessionLog(SessionLog { status: 1 }))?;
        }
        Ok(events)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&mut self, step: u64, what: What) -> Result<()> {
        let data = Event { wall_time: now(), step: step as i64, what: Some(what) }.encode_to_vec();
        let len = (data.len() as u64).to_le_bytes();
        let mut record = Vec::with_capacity(data.len() + 16);
        record.extend(len);
        record.extend(masked_crc(&len).to_le_bytes());
        record.extend(&data);
        record.extend(masked_crc(&data).to_le_bytes());
        self.file
            .write_all(&record)
            .and_then(|_| self.file.flush())
            .with_context(|| format!("writing {}", self.path.display()))
    }

    fn summary(&mut self, step: u64, value: Vec<Value>) -> Result<()> {
        self.write(step, What::Summary(Summary { value }))
    }

    /// Scalars `(tag, value)` at `step`, in one event.
    pub fn scalars(&mut self, step: u64, values: &[(&str, f32)]) -> Result<()> {
        let value = values
            .iter()
            .map(|&(tag, v)| Value { tag: tag.into(), metadata: None, value: Some(Kind::SimpleValue(v)) })
            .collect();
        self.summary(step, value)
    }

    /// A PNG image of `(width, height)` with `channels` (1 grey, 3 RGB) under `tag`.
    pub fn image(
        &mut self,
        step: u64,
        tag: &str,
        png: &[u8],
        (width, height): (usize, usize),
        channels: usize,
    ) -> Result<()> {
        let image = Image {
            height: height as i32,
            width: width as i32,
            colorspace: channels as i32,
            encoded_image_string: png.to_vec(),
        };
        self.summary(step, vec![Value { tag: tag.into(), metadata: None, value: Some(Kind::Image(image)) }])
    }

    /// Markdown `text` under `tag` (the text plugin).
    pub fn text(&mut self, step: u64, tag: &str, text: &str) -> Result<()> {
        let tensor = TensorProto {
            dtype: 7,
            tensor_shape: Some(Default::default()),
            string_val: vec![text.as_bytes().to_vec()],
        };
        let metadata = plugin("text", Vec::new());
        self.summary(step, vec![Value { tag: tag.into(), metadata: Some(metadata), value: Some(Kind::Tensor(tensor)) }])
    }

    /// The run's config as hparams, with the scalar `metric` (its last value) as the metric.
    pub fn hparams(&mut self, hparams: Vec<(String, ProtoValue)>, metric: &str) -> Result<()> {
        let experiment = Experiment {
            hparam_infos: hparams.iter().map(|(name, _)| proto::HParamInfo { name: name.clone() }).collect(),
            metric_infos: vec![MetricInfo { name: Some(MetricName { tag: metric.into() }) }],
        };
        let start = SessionStartInfo { hparams: hparams.into_iter().collect(), start_time_secs: now() };
        self.hparams_event("_hparams_/experiment", HParamsData::Experiment(experiment))?;
        self.hparams_event("_hparams_/session_start_info", HParamsData::SessionStartInfo(start))
    }

    /// The run ended well: the hparams session's end.
    pub fn hparams_end(&mut self, step: u64) -> Result<()> {
        let end = SessionEndInfo { status: 1, end_time_secs: now() };
        let content = HParamsPluginData { version: 0, data: Some(HParamsData::SessionEndInfo(end)) }.encode_to_vec();
        let value =
            Value { tag: "_hparams_/session_end_info".into(), metadata: Some(plugin("hparams", content)), value: None };
        self.summary(step, vec![value])
    }

    fn hparams_event(&mut self, tag: &str, data: HParamsData) -> Result<()> {
        let content = HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
        self.summary(0, vec![Value { tag: tag.into(), metadata: Some(plugin("hparams", content)), value: None }])
    }
}

fn plugin(name: &str, content: Vec<u8>) -> SummaryMetadata {
    SummaryMetadata { plugin_data: Some(PluginData { plugin_name: name.into(), content }) }
}

/// A config's top-level fields as hparams: numbers, strings and bools as they are, lists and
/// anything else as their JSON text; nulls left out.
pub fn hparams_of(config: &serde_json::Value) -> Vec<(String, ProtoValue)> {
    let Some(fields) = config.as_object() else { return Vec::new() };
    fields
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let kind = match v {
                serde_json::Value::Number(n) => proto::ProtoKind::Number(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::String(s) => proto::ProtoKind::Text(s.clone()),
                serde_json::Value::Bool(b) => proto::ProtoKind::Bool(*b),
                other => proto::ProtoKind::Text(other.to_string()),
            };
            (k.clone(), ProtoValue { kind: Some(kind) })
        })
        .collect()
}
