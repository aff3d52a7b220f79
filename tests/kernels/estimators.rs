//! The estimators as random variables (gradvar's measurement), and src/refine.rs against its reference.
use crate::common::*;
use wgvae::refine::{RefineSettings, Refiner};

/// At fixed weights and batch: every estimator is unbiased (its mean gradient agrees with the
/// reparameterization gradient's within their standard errors) and the control variates cut the
/// score-function estimator's variance, which stays above the reparameterization estimator's.
#[test]
fn score_function_estimates_should_be_unbiased_and_noisier_than_reparam() {
    use wgvae::commands::gradvar::{estimators, measure};
    let data = wgvae::data::embedded().expect("embedded data");
    let mut config = small_model_args().to_config(1).expect("config");
    config.data_fingerprint = data.fingerprint();
    let params = wgvae::model::Model::new(config.architecture()).init_params(3);
    let repeats = 60;
    let (g, k) = gpu();
    let stats = measure(g, k, &config, &data, &params, repeats, &estimators(3)).unwrap();
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["reparam", "score, no baseline", "score, running mean", "score, leave-one-out"]);
    let (reparam, none, mean, loo) = (&stats[0], &stats[1], &stats[2], &stats[3]);
    for s in &stats[1..] {
        let diff2: f64 = s.mean.iter().zip(&reparam.mean).map(|(a, b)| (a - b).powi(2)).sum();
        // E|mean_s - mean_r|^2 = (tr_s + tr_r) / R for unbiased estimators; allow 3 times that.
        let expected = (s.total_variance + reparam.total_variance) / repeats as f64;
        assert!(
            diff2 < 3.0 * expected,
            "{}: |mean - reparam mean|^2 = {diff2:.4e}, noise alone gives {expected:.4e}",
            s.name
        );
    }
    assert!(
        reparam.total_variance < loo.total_variance && reparam.total_variance < mean.total_variance,
        "reparam {} vs score with baselines {} / {}",
        reparam.total_variance,
        mean.total_variance,
        loo.total_variance
    );
    assert!(
        10.0 * loo.total_variance < none.total_variance && 10.0 * mean.total_variance < none.total_variance,
        "baselines should cut the variance tenfold: none {}, mean {}, loo {}",
        none.total_variance,
        mean.total_variance,
        loo.total_variance
    );
    assert!(reparam.snr > loo.snr && loo.snr > none.snr);
}

fn small_model_args() -> wgvae::cli::ModelArgs {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        model: wgvae::cli::ModelArgs,
    }
    Wrapper::parse_from(["test", "--hidden", "24", "--latent", "4", "--batch", "32", "--seed", "3"]).model
}

/// src/refine.rs against its composition from reference kernels: two batches (the second partial),
/// the ELBO before and after 3 Adam steps on each input's (mu, logvar).
#[test]
fn refine_should_match_the_reference_refinement() {
    use wgvae::model::{Architecture, Model};
    let data = wgvae::data::embedded().expect("embedded data");
    let (n, batch) = (11, 8);
    let split = wgvae::data::Split {
        images: data.val.images[..n * 784].to_vec(),
        labels: data.val.labels[..n].to_vec(),
        pixels: 784,
    };
    let model = Model::new(Architecture::mlp(wgvae::data::ImageShape::mnist(), vec![45], 6));
    let params = model.init_params(9);
    let adam = wgvae::config::AdamConfig { lr: 0.05, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let (g, k) = gpu();
    let pb = storage(&params);
    let settings =
        RefineSettings { batch, binarize: wgvae::data::Binarize::None, data_seed: 4, adam, from_prior: false };
    let images = gpu::ImageShards::new(g, "images", &split.images, split.pixels);
    let refiner = Refiner::new(gpu::Launcher { gpu: g, kernels: k }, (&model, &pb), &images, settings);
    let got = refiner.run(g, 3, 2, |_| {}).unwrap();
    let (mut before, mut after) = (LossTotals::default(), LossTotals::default());
    for first in [0, batch] {
        let real = batch.min(n - first);
        let x: Vec<f32> =
            (0..batch).flat_map(|i| split.image(first + i.min(real - 1)).iter().map(|&v| v as f32 / 255.0)).collect();
        let (b, a) = wgvae::reference::refine::refine(&model, &params, &x, batch, real, 3, 2, 4, &adam);
        for (sum, t) in [(&mut before, b), (&mut after, a)] {
            sum.rec_sum += t.rec_sum;
            sum.kl_sum += t.kl_sum;
            sum.examples += t.examples;
        }
    }
    let flat = |t: &LossTotals| [t.rec_sum, t.kl_sum, t.examples];
    assert_close("refine: ELBO before", &flat(&got.before), &flat(&before), 1e-4);
    assert_close("refine: ELBO after", &flat(&got.after), &flat(&after), 1e-4);
    assert_eq!(got.before.examples, (n * 2) as f32);
    assert!(after.rec_sum + after.kl_sum < before.rec_sum + before.kl_sum, "3 steps at lr 0.05 should raise the ELBO");
}
