//! Every entry point's reference by its name, in one namespace for the kernel tests (`r::`) and
//! the reference trainer: the modules' own files (reference/<module>.rs beside
//! shaders/<module>.wgsl) re-exported, with Philox and Box-Muller (src/random.rs, which
//! shaders/common.wgsl mirrors).
pub use super::adam::*;
pub use super::bench::*;
pub use super::data::{gather_batch, gather_labels};
pub use super::latent::*;
pub use super::linear::*;
pub use super::linear_tiled::*;
pub use super::loss::*;
pub use crate::random::{normal4, philox4x32_10, uniform_open};
