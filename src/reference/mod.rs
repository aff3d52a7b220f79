//! Plain CPU references. `kernels` has one function per WGSL entry point, with the same name;
//! `trainer` runs the training step from them in the GPU trainer's order.
pub mod kernels;
pub mod trainer;
