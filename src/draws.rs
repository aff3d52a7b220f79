//! The host's fixed draws: each epoch's shuffle, the prior latents the sample grids decode, and
//! the manifold's grid of latents.
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
    if let Some((groups, categories)) = config.categorical() {
        categorical_prior_codes(n, groups, categories, seed)
    } else {
        prior_latents(n, config.latent_width(), seed)
    }
}

/// A 2-D latent's grid for the manifold picture: n x n points at the prior's quantiles
/// (i + 1) / (n + 1), z1 rising left to right and z2 bottom to top, [n * n, 2] row by row.
pub fn manifold_latents(n: usize) -> Vec<f32> {
    let q = |i: usize| inverse_normal_cdf((i + 1) as f64 / (n + 1) as f64) as f32;
    (0..n).flat_map(|row| (0..n).flat_map(move |col| [q(col), q(n - 1 - row)])).collect()
}

/// The standard normal's quantile function for p in (0, 1): Acklam's rational approximation
/// (relative error below 1.2e-9), ample for placing a grid.
pub fn inverse_normal_cdf(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < LOW {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - LOW {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}
