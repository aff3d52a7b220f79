//! The files a training epoch leaves (metrics.csv, curves.png, the sample grids, the
//! reconstructions, the checkpoint) written on a thread of their own, so that the GPU starts the
//! next epoch while they are encoded, plotted and synced. The main thread reads everything they
//! need from the GPU first; each file is still written atomically, and in the order queued.
use std::path::Path;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

use super::train_log::RunLog;
use crate::checkpoint::{self, Checkpoint, EpochMetrics};
use crate::files::write_atomic;
use crate::gpu::params::LossTotals;
use crate::images::{reconstruction_rows, Grid};
use crate::session::Session;

type Job = Box<dyn FnOnce() -> Result<()> + Send>;

pub struct EpochWriter {
    jobs: Option<SyncSender<Job>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl EpochWriter {
    pub fn new() -> EpochWriter {
        // One epoch's files queued behind the one being written, at most: memory stays bounded
        // and a failed write is noticed within an epoch.
        let (jobs, queue) = sync_channel::<Job>(1);
        let thread = std::thread::spawn(move || queue.into_iter().try_for_each(|job| job()));
        EpochWriter { jobs: Some(jobs), thread: Some(thread) }
    }

    /// Queues `job` after the earlier ones. If an earlier one failed, its error comes back here
    /// (the writer has stopped) and `job` is not run.
    pub fn write(&mut self, job: impl FnOnce() -> Result<()> + Send + 'static) -> Result<()> {
        if let Some(jobs) = &self.jobs {
            if jobs.send(Box::new(job)).is_ok() {
                return Ok(());
            }
        }
        self.finish()?;
        Err(anyhow!("the run's file writer has stopped"))
    }

    /// Reads what the files of the epoch `history` ends with need from the GPU (prior samples:
    /// 8 x 8 of p(z), or for a conditional model a row of 8 per class from p(z|y); reconstructions
    /// when the model has an encoder, for reconstructions.png after the last epoch and for `log`;
    /// the checkpoint) and queues their writing, and the grids' logging at optimizer step `step`.
    pub async fn queue_epoch(
        &mut self,
        session: &Session,
        (out, log, step): (&Path, &RunLog, u32),
        (history, prior, has_encoder): (&[EpochMetrics], &[f32], bool),
    ) -> Result<()> {
        let Session { config, gpu, data, trainer, .. } = session;
        let epoch = history.len();
        let (samples, count) = if config.classes() > 0 {
            (crate::commands::pictures::class_grid(trainer, gpu, 8, config.seed, 1.0).await?, 8 * config.classes())
        } else {
            (trainer.decode(gpu, prior, &[]).await?, 64)
        };
        let last = epoch == config.epochs;
        let reconstructions = match has_encoder && (last || log.is_on()) {
            true => {
                let n = 32.min(data.val.len());
                let picks: Vec<u32> = (0..n).map(|i| (i * data.val.len() / n) as u32).collect();
                Some((trainer.reconstruct(gpu, &picks).await?, n))
            }
            false => None,
        };
        let ck = checkpoint_now(session, history, epoch, 0, LossTotals::default()).await?;
        let (dir, history, title, shape, model) =
            (out.to_path_buf(), history.to_vec(), data.name.clone(), data.shape, trainer.model.clone());
        let log = log.clone();
        self.write(move || {
            write_metrics(&dir.join("metrics.csv"), &history)?;
            crate::curves::draw(&dir.join("curves.png"), &history, &title)?;
            let grid = Grid::new(&samples, count, shape, 8);
            let png = grid.png()?;
            write_atomic(&dir.join(format!("samples_epoch{epoch:03}.png")), &png)?;
            if last {
                write_atomic(&dir.join("samples.png"), &png)?;
            }
            log.image(step, "samples", &grid, &png)?;
            if let Some(((x, probs), n)) = reconstructions {
                let rows = reconstruction_rows(&x, &probs, n, shape);
                let grid = Grid::new(&rows, rows.len() / shape.pixels(), shape, 8);
                let png = grid.png()?;
                if last {
                    write_atomic(&dir.join("reconstructions.png"), &png)?;
                }
                log.image(step, "reconstructions", &grid, &png)?;
            }
            checkpoint::save(&dir, &ck, &model)
        })
    }

    /// Waits until every queued file is written; the first error, if any.
    pub fn finish(&mut self) -> Result<()> {
        self.jobs = None; // closes the queue: the thread ends after the last job
        match self.thread.take() {
            Some(thread) => thread.join().unwrap_or_else(|_| Err(anyhow!("the run's file writer panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for EpochWriter {
    /// An early return (an error) still waits for the files already queued: none is left half
    /// written when the process exits.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The run's state after `epochs_done` epochs and `step_in_epoch` steps of the next one, read
/// from the GPU.
pub async fn checkpoint_now(
    session: &Session,
    history: &[EpochMetrics],
    epochs_done: usize,
    step_in_epoch: usize,
    totals: LossTotals,
) -> Result<Checkpoint> {
    let Session { config, gpu, trainer, .. } = session;
    Ok(trainer.snapshot(gpu, config, history, epochs_done, step_in_epoch, totals).await?)
}

/// metrics.csv from the whole history (rewritten atomically, so a resumed run's file is whole).
fn write_metrics(path: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut csv =
        String::from("epoch,train_loss,train_rec,train_kl,val_loss,val_rec,val_kl,seconds,images_per_second\n");
    for m in history {
        csv += &format!(
            "{},{},{},{},{},{},{},{:.4},{:.1}\n",
            m.epoch,
            m.train_loss,
            m.train_rec,
            m.train_kl,
            m.val_loss,
            m.val_rec,
            m.val_kl,
            m.seconds,
            m.images_per_second
        );
    }
    crate::files::write_atomic(path, csv.as_bytes())
}
