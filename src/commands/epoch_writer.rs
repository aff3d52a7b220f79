//! The files a training epoch leaves (metrics.csv, curves.png, the sample grids, the
//! reconstructions, the checkpoint) written on a thread of their own, so that the GPU starts the
//! next epoch while they are encoded, plotted and synced. The main thread reads everything they
//! need from the GPU first; each file is still written atomically, and in the order queued.
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;

use anyhow::{anyhow, Result};

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
