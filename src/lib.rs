//! wgvae: variational autoencoders trained entirely in WGSL compute shaders through wgpu.
//!
//! Layout, in the direction imports run: `cli` turns flags into a validated `config::RunConfig`
//! and runs one of `commands`; `session` opens a run (data, adapter, trainer) and `checkpoint`
//! reads and writes its files (`tensor_file` the mixture's and NCE's); `trainer`, `refine`,
//! `importance`, `toy`, `mixture` and `nce` record launch lists from
//! `launches` (one launcher per shader family) and `network` (the layers), for the architecture
//! in `model`, with the kernels `plan` picks for the adapter; `gpu` runs them, `shaders` is what build.rs read of the WGSL. `reference` mirrors
//! every kernel on the CPU, for the tests.
pub mod checkpoint;
pub mod cli;
#[cfg(not(target_arch = "wasm32"))]
pub mod commands;
pub mod config;
#[cfg(not(target_arch = "wasm32"))]
pub mod curves;
pub mod data;
pub mod draws;
pub mod files;
pub mod fits;
pub mod gpu;
pub mod images;
#[cfg(not(target_arch = "wasm32"))]
pub mod importance;
pub mod launches;
#[cfg(not(target_arch = "wasm32"))]
pub mod mixture;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod nce;
pub mod network;
pub mod objective;
pub mod plan;
pub mod random;
pub mod reference;
#[cfg(not(target_arch = "wasm32"))]
pub mod refine;
#[cfg(not(target_arch = "wasm32"))]
pub mod run_lock;
pub mod session;
pub mod shaders;
#[cfg(not(target_arch = "wasm32"))]
pub mod tensor_file;
#[cfg(not(target_arch = "wasm32"))]
pub mod tensorboard;
#[cfg(not(target_arch = "wasm32"))]
pub mod toy;
pub mod trainer;
