//! What a training run logs for TensorBoard (tensorboard/): the flags as text and the config as
//! hparams (a new run), the running train loss, reconstruction and KL per tick, per epoch the
//! validation's, images/s, the learning rate and the KL weight and temperature where they change,
//! and the epoch's sample grid and reconstructions. Steps are optimizer steps, so a resumed run
//! continues the curves. Shared with the epoch writer's thread, which logs the images as it
//! encodes them; `--no-tensorboard` makes every call a no-op.
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Result;

use crate::checkpoint::EpochMetrics;
use crate::config::{RunConfig, TrainSettings};
use crate::gpu::params::LossTotals;
use crate::images::Grid;
use crate::objective::{kl_weight, temperature};
use crate::tensorboard::{hparams_of, EventFile};

/// The validation loss: the scalar the hparams dashboard shows as the run's metric.
const METRIC: &str = "val/loss";

#[derive(Clone, Default)]
pub struct RunLog(Option<Arc<Mutex<EventFile>>>);

impl RunLog {
    /// A new event file in `out` (none when `enabled` is false); a new run's opens with its config,
    /// a resumed run's with the step it goes on from.
    pub fn open(out: &Path, enabled: bool, config: &RunConfig, resumed_at: Option<u32>) -> Result<RunLog> {
        if !enabled {
            return Ok(RunLog(None));
        }
        // Readers drop what earlier files logged from this step on: steps past the checkpoint's,
        // which a killed run may have logged and the resumed run logs again.
        let mut events = EventFile::create(out, resumed_at.map(|s| u64::from(s) + 1))?;
        if resumed_at.is_none() {
            let json = serde_json::to_value(config)?;
            let text = format!("{}\n\n```json\n{}\n```", config.describe(), serde_json::to_string_pretty(&json)?);
            events.text(0, "config", &text)?;
            events.hparams(hparams_of(&json), METRIC)?;
        }
        Ok(RunLog(Some(Arc::new(Mutex::new(events)))))
    }

    /// Whether the run logs (no --no-tensorboard).
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    fn events(&self) -> Option<MutexGuard<'_, EventFile>> {
        self.0.as_ref().map(|e| e.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// The running means of the epoch's training totals after optimizer step `step`.
    pub fn tick(&self, step: u32, totals: &LossTotals) -> Result<()> {
        let Some(mut events) = self.events() else { return Ok(()) };
        let (loss, rec, kl) = totals.means();
        events.scalars(step.into(), &[("train/loss", loss), ("train/rec", rec), ("train/kl", kl)])
    }

    /// An epoch's validation, speed and schedule (as the trainer's `settings` run it), at its last
    /// optimizer step `step`.
    pub fn epoch(&self, step: u32, m: &EpochMetrics, config: &RunConfig, settings: &TrainSettings) -> Result<()> {
        let Some(mut events) = self.events() else { return Ok(()) };
        let mut values = vec![
            ("val/loss", m.val_loss),
            ("val/rec", m.val_rec),
            ("val/kl", m.val_kl),
            ("images_per_second", m.images_per_second as f32),
            ("lr", config.optimizer.lr),
        ];
        let obj = &settings.objective;
        if obj.warmup_steps > 0 {
            values.push(("kl_weight", kl_weight(obj.beta, obj.warmup_steps, step)));
        }
        if config.categorical().is_some() {
            values.push((
                "temperature",
                temperature((settings.tau_start, settings.tau_end, settings.anneal_steps), step),
            ));
        }
        events.scalars(step.into(), &values)
    }

    /// A grid whose PNG is `png`, under `tag`.
    pub fn image(&self, step: u32, tag: &str, grid: &Grid, png: &[u8]) -> Result<()> {
        let Some(mut events) = self.events() else { return Ok(()) };
        events.image(step.into(), tag, png, (grid.width, grid.height), grid.channels)
    }

    /// The run finished: the hparams session ends.
    pub fn finish(&self, step: u32) -> Result<()> {
        let Some(mut events) = self.events() else { return Ok(()) };
        events.hparams_end(step.into())
    }
}
