//! Plain CPU references. `kernels` (with `linear` and `linear_tiled`), `conv`, `group_norm`, `im2col`, `samples`, `condition`, `categorical`, `table`, `importance`, `mixture`, `nce` and `toy` have one function per WGSL entry point, with
//! the same name; `trainer` runs the training step from them in the GPU trainer's order, `refine` the
//! per-datapoint refinement in src/refine.rs's.
//!
//! A reference takes the kernel's inputs one by one and loops over indices as the kernel's
//! invocations do, so a reader can set the two side by side: hence these two lints are off here.
#![allow(clippy::needless_range_loop, clippy::too_many_arguments)]
pub mod categorical;
pub mod condition;
pub mod conv;
pub mod data;
pub mod group_norm;
pub mod im2col;
pub mod importance;
pub mod kernels;
pub mod linear;
pub mod linear_tiled;
pub mod mixture;
pub mod nce;
pub mod network;
pub mod refine;
pub mod samples;
pub mod table;
pub mod toy;
pub mod trainer;
