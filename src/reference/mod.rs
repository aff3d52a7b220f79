//! Plain CPU references: reference/<module>.rs beside each shaders/<module>.wgsl (the linear
//! family's in `linear` and `linear_tiled`) has a function, or a re-export, of each entry point's name,
//! with the same shapes (`kernels` gathers them all in one namespace); `trainer` runs the
//! training step from them in the GPU trainer's order, `refine` the per-datapoint refinement in
//! src/refine.rs's.
//!
//! A reference takes the kernel's inputs one by one and loops over indices as the kernel's
//! invocations do, so a reader can set the two side by side: hence these two lints are off here.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]
pub mod adam;
pub mod bench;
pub mod categorical;
pub mod condition;
pub mod conv;
pub mod data;
pub mod group_norm;
pub mod im2col;
pub mod importance;
pub mod kernels;
pub mod latent;
pub mod linear;
pub mod linear_tiled;
pub mod loss;
pub mod mixture;
pub mod nce;
pub mod network;
pub mod refine;
pub mod rows;
pub mod samples;
pub mod table;
pub mod toy;
pub mod trainer;
