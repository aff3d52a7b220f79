//! What happens when the GPU fails after the checks: an error no scope caught, or a lost device.
//! wgpu's default for both is a panic with a backtrace. Here the process stops with one clear
//! error instead. Nothing is lost by stopping: the failure shows up at a wgpu call or a readback,
//! before any file is written from what the GPU computed, and every file is written atomically
//! (files.rs), so the last checkpoint is whole and `train --resume` continues from it.
use std::sync::Arc;

/// The exit status of a run stopped by a GPU failure (anyhow's errors exit with 1).
pub const GPU_FAILURE_EXIT: i32 = 3;

/// Turns uncaught errors and device loss on `device` into a message and exit status 3.
pub fn install(device: &wgpu::Device, adapter: &str) {
    let name = adapter.to_string();
    device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| stop(&describe(&e, &name))));
    let name = adapter.to_string();
    device.set_device_lost_callback(move |reason, message| {
        // Dropping or destroying our own device is not a failure.
        if reason != wgpu::DeviceLostReason::Destroyed {
            stop(&lost(&name, &message));
        }
    });
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

/// Prints `message` as the program's error and exits with GPU_FAILURE_EXIT.
#[cfg(not(target_arch = "wasm32"))]
pub fn stop(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(GPU_FAILURE_EXIT)
}

/// In a browser there is no process to end: the panic reaches the page's panic hook, which shows
/// `message` (web/src/lib.rs).
#[cfg(target_arch = "wasm32")]
pub fn stop(message: &str) -> ! {
    panic!("{message}")
}
