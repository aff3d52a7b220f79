//! What happens when the GPU fails after the checks: an error no scope caught, or a lost device.
//! wgpu's default for both is a panic with a backtrace. Here the first failure is kept in the
//! device's `Faults` and every later submission and readback returns it as a `GpuFault`, so the
//! error travels up as any other: the command's files and run lock are closed on the way, and the
//! CLI exits with GPU_FAILURE_EXIT (main.rs). Nothing is lost by stopping: the failure shows up at
//! a submission or a readback, before any file is written from what the GPU computed, and every
//! file is written atomically (files.rs), so the last checkpoint is whole.
use std::sync::{Arc, Mutex};

/// The exit status of a command stopped by a GPU failure (other errors exit with 1).
pub const GPU_FAILURE_EXIT: u8 = 3;

/// The GPU failed: the device's first uncaught error or its loss, described for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuFault(pub String);

impl std::fmt::Display for GpuFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GpuFault {}

/// What a submission or a readback returns: its result, or the device's first failure.
pub type GpuResult<T> = Result<T, GpuFault>;

/// The first failure of one device, shared with the callbacks wgpu calls on failure. Later
/// failures are consequences of the first (work built on an invalid buffer, a lost device) and
/// are dropped.
#[derive(Clone, Default)]
pub struct Faults {
    first: Arc<Mutex<Option<String>>>,
    adapter: String,
}

impl Faults {
    /// Catches uncaught errors and the loss of `device` (on adapter `adapter`) from now on.
    pub fn install(device: &wgpu::Device, adapter: &str) -> Faults {
        let faults = Faults { first: Arc::default(), adapter: adapter.to_string() };
        let sink = faults.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| sink.record(describe(&e, &sink.adapter))));
        let sink = faults.clone();
        device.set_device_lost_callback(move |reason, message| {
            // Dropping or destroying our own device is not a failure.
            if reason != wgpu::DeviceLostReason::Destroyed {
                sink.record(lost(&sink.adapter, &message));
            }
        });
        faults
    }

    fn record(&self, message: String) {
        let mut first = self.first.lock().unwrap_or_else(|p| p.into_inner());
        first.get_or_insert(message);
    }

    /// The first failure so far, if any.
    pub fn check(&self) -> Result<(), GpuFault> {
        match self.first.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(message) => Err(GpuFault(message.clone())),
            None => Ok(()),
        }
    }

    /// Records that the device was lost (`detail`: what wgpu said where it noticed, at a poll or
    /// a map) and returns the first failure, this one unless another came before.
    pub fn lost(&self, detail: &str) -> GpuFault {
        self.record(lost(&self.adapter, detail));
        self.check().expect_err("a failure was just recorded")
    }
}

/// The one-paragraph message for an error wgpu raised: the operation and labels are in wgpu's
/// description (e.g. "In a ComputePass ... Dispatch group size [100352, 1, 1] must be less or
/// equal to 65535").
pub fn describe(e: &wgpu::Error, adapter: &str) -> String {
    match e {
        wgpu::Error::OutOfMemory { source } => format!(
            "the GPU ({adapter}) ran out of memory ({source}); try a smaller --batch, --mc-samples, model or \
             --image-size"
        ),
        wgpu::Error::Validation { description, .. } => format!(
            "the GPU ({adapter}) refused an operation, which wgvae's own size checks should have caught \
             first; please report it with the command line. Try a smaller --batch, --mc-samples or model. wgpu \
             says: {}",
            description.trim()
        ),
        wgpu::Error::Internal { description, .. } => {
            format!("the GPU driver ({adapter}) failed internally: {}", description.trim())
        }
    }
}

/// The message for a lost device: a driver reset, a GPU removed, a timeout the OS enforced.
pub fn lost(adapter: &str, message: &str) -> String {
    format!(
        "the GPU device ({adapter}) was lost ({message}). Files already written are intact: a training \
         run's last checkpoint is whole, and `wgvae train --resume DIR` continues from it"
    )
}

/// Submits a dispatch without a pipeline, which wgpu refuses: a real fault on the real path, for
/// the test of how a command ends on one (`train --inject-fault-after-steps`).
pub fn inject(device: &wgpu::Device, queue: &wgpu::Queue) {
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("injected fault") });
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.dispatch_workgroups(1, 1, 1);
    }
    queue.submit([encoder.finish()]);
}

/// The GPU failure behind `e`, if one is (anywhere in its chain of causes).
pub fn find(e: &anyhow::Error) -> Option<&GpuFault> {
    e.chain().find_map(|cause| cause.downcast_ref::<GpuFault>())
}
