//! One thin launcher per shader family: each binds its kernel's buffers by name and owns its
//! dispatch shape, so the trainer, the refiner and the importance sampler write launch sequences
//! as calls (network/ holds the layers' launchers).
pub mod adam;
pub mod bench;
pub mod categorical;
pub mod condition;
pub mod data;
pub mod importance;
pub mod latent;
pub mod loss;
pub mod mixture;
pub mod nce;
pub mod rows;
pub mod samples;
pub mod table;
pub mod toy;

pub use adam::adam_step;
pub use categorical::CategoricalRows;
pub use data::{gather_labels, Gather};
pub use importance::ImportanceRows;
pub use latent::GaussianRows;
pub use loss::{loss_params, Reconstruction, StepEnd};
pub use samples::SampleRows;
pub use table::Table;
pub use toy::ToyBuffers;
