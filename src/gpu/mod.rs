//! Everything that talks to wgpu: the device, the compute kernels and buffer helpers.
pub mod buffers;
pub mod context;
pub mod faults;
pub mod kernels;
pub mod params;
pub mod timing;

pub use buffers::*;
pub use context::{list_adapters, Backend, DeviceChoice, Gpu, KernelChoice};
pub use kernels::{Kernel, Kernels, Launch, Launcher};
