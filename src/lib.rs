//! wgvae: variational autoencoders trained entirely in WGSL compute shaders through wgpu.
//!
//! Layout: `shaders/` holds the kernels, `gpu` runs them, `reference` mirrors each one on the CPU,
//! `model` is the architecture, `network` builds its layers' launches, `trainer` the GPU training
//! step, `importance` the GPU likelihood estimate, `checkpoint` the safetensors files, `session`
//! opens a run; `train`, `eval`, `pictures`, `gradvar` and `bench` are the commands, `curves` and `images`
//! draw what they write.
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod curves;
pub mod data;
pub mod files;
pub mod gpu;
pub mod images;
pub mod importance;
pub mod launches;
pub mod model;
pub mod network;
pub mod objective;
pub mod random;
pub mod reference;
pub mod refine;
pub mod session;
pub mod shaders;
pub mod trainer;
