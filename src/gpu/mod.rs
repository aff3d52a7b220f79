//! Everything that talks to wgpu: the device, the compute kernels and buffer helpers.
pub mod buffers;
pub mod context;
pub mod faults;
pub mod kernels;
pub mod params;
#[cfg(not(target_arch = "wasm32"))]
pub mod timing;

pub use crate::plan::{KernelFamily, KernelPlan};
pub use buffers::*;
#[cfg(not(target_arch = "wasm32"))]
pub use context::list_adapters;
pub use context::{Backend, DeviceChoice, Gpu, KernelChoice};
pub use kernels::{Kernel, Kernels, Launch, Launcher};
