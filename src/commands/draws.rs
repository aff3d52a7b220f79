//! The host's fixed draws: each epoch's shuffle, and the prior latents the sample grids decode.
use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::config::RunConfig;
use crate::random::{normal4, philox4x32_10};

/// The epoch's shuffle, a function of (seed, epoch) alone.
pub fn epoch_order(n: usize, seed: u32, epoch: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(((seed as u64) << 32) ^ epoch as u64);
    order.shuffle(&mut rng);
    order
}

/// Fixed prior draws for the sample grids, so each epoch's grid shows the same z.
pub fn prior_latents(n: usize, latent: usize, seed: u32) -> Vec<f32> {
    (0..(n * latent).div_ceil(4))
        .flat_map(|i| normal4(philox4x32_10([i as u32, 0, 0, 0x5A3D], [seed, 1])))
        .take(n * latent)
        .collect()
}

/// Fixed draws from a categorical prior: each group's category uniform, as one-hot codes [n, groups x categories].
pub fn categorical_prior_codes(n: usize, groups: usize, categories: usize, seed: u32) -> Vec<f32> {
    let mut codes = vec![0.0; n * groups * categories];
    for i in 0..n * groups {
        let bits = philox4x32_10([i as u32, 0, 0, 0x5A3E], [seed, 1]);
        codes[i * categories + (bits[0] as usize % categories)] = 1.0;
    }
    codes
}

/// Fixed prior draws of the run's latent, Gaussian or categorical, for the sample grids.
pub fn prior_draws(config: &RunConfig, n: usize, seed: u32) -> Vec<f32> {
    if config.latent_groups > 0 {
        categorical_prior_codes(n, config.latent_groups, config.latent_categories, seed)
    } else {
        prior_latents(n, config.latent, seed)
    }
}
