//! Every WGSL entry point against its CPU reference (src/reference/) on seeded inputs at sizes
//! that are not multiples of the workgroup sizes, a file per shader family; finite differences of
//! every backward reference; statistics of the random numbers; GPU training steps against the
//! reference trainer in every mode. GPU tests need an adapter and fail (never skip) without one;
//! install lavapipe (`apt-get install mesa-vulkan-drivers`) to get one.
mod common;

mod adam_data;
mod bench;
mod categorical;
mod condition;
mod conv;
mod estimators;
mod finite_differences;
mod folder;
mod front_end;
mod importance;
mod latent;
mod layers;
mod linear;
mod linear_tiled;
mod loss;
mod memory;
mod mixture;
mod nce;
mod plan_table;
mod random;
mod samples;
mod table;
mod toy;
mod training;
mod translation;
