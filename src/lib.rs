//! wgvae: variational autoencoders trained entirely in WGSL compute shaders through wgpu.
//!
//! Layout: `shaders/` holds the kernels, `gpu` runs them, `reference` mirrors each one on the CPU,
//! `model` is the architecture, `trainer` the GPU training step, `train` the command around it.
pub mod bench;
pub mod cli;
pub mod data;
pub mod gpu;
pub mod images;
pub mod model;
pub mod reference;
pub mod shaders;
pub mod train;
pub mod trainer;
