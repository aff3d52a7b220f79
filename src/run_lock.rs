//! One training run per run directory: `train` holds an OS file lock on DIR/run.lock for as long
//! as it runs, with its process id written inside so that a second run can say who holds it. The
//! OS releases the lock when the process dies however it dies, so a lock file left by a killed
//! run is recognised as stale (its lock is free) and taken over.
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

pub const LOCK_FILE: &str = "run.lock";

/// The held lock; dropping it empties and removes the lock file, then releases the lock.
pub struct RunLock {
    file: File,
    path: PathBuf,
}

impl RunLock {
    /// Takes `dir`'s lock, or fails naming the process that holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("{}: cannot open the run directory's lock file", path.display()))?;
        let mut holder = String::new();
        file.read_to_string(&mut holder).ok();
        let holder = holder.trim().to_string();
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let who = if holder.is_empty() { "another wgvae process".to_string() } else { holder };
                bail!(
                    "{}: the run directory is in use by {who} (its lock is {}); wait for that run to end, or \
                     give another --out",
                    dir.display(),
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                eprintln!(
                    "warning: {}: this file system has no file locks, so a second run on this directory \
                     would not be stopped",
                    path.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("{}: cannot lock the run directory", path.display()));
            }
        }
        if !holder.is_empty() {
            println!("{}: took over the lock left by {holder}, which is no longer running", dir.display());
        }
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        writeln!(file, "wgvae process {}", std::process::id())
            .with_context(|| format!("{}: cannot write the lock file", path.display()))?;
        file.sync_all().ok();
        Ok(RunLock { file, path })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        self.file.set_len(0).ok();
        std::fs::remove_file(&self.path).ok();
        self.file.unlock().ok();
    }
}
