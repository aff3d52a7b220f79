//! Configs that wgvae wrote before the config was typed still load: tests/golden/
//! run_configs_8328c20.json holds the `wgvae.config` entries of checkpoints written by main at
//! 8328c20 (`train --epochs 1 --hidden 16 --latent 3 --batch 256` and each mode's flags). Each
//! reads as the typed RunConfig of the method it trained with, passes validation, and writes back
//! as a flat config that reads as the same RunConfig.
use std::collections::BTreeMap;

use wgvae::config::spec::{Bound, ConvSpec, Estimator, KlSchedule, Method, Network};
use wgvae::config::RunConfig;
use wgvae::model::Decoder;
use wgvae::objective::Baseline;

fn golden() -> BTreeMap<String, serde_json::Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/run_configs_8328c20.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read the golden configs")).expect("JSON")
}

/// Whether `config` is what `mode`'s flags trained.
fn is_what_was_trained(mode: &str, config: &RunConfig) -> bool {
    let reparam = |free_bits| Estimator::Reparam { free_bits };
    let plain = Bound::Elbo { samples: 1, kl: KlSchedule::default(), estimator: reparam(0.0) };
    let mlp = |hidden: &[usize]| config.model.network == Network::Mlp { hidden: hidden.to_vec() };
    let gaussian = |bound| config.method == Method::Gaussian { latent: 3, bound };
    match mode {
        "default" => mlp(&[16]) && gaussian(plain) && config.model.decoder == Decoder::Bernoulli,
        "deep" => mlp(&[16, 32, 16]) && gaussian(plain),
        "iwae" => gaussian(Bound::Iwae { k: 5 }),
        "score" => gaussian(Bound::Elbo {
            samples: 4,
            kl: KlSchedule::default(),
            estimator: Estimator::Score { baseline: Baseline::Loo },
        }),
        "gaussian" => {
            let kl = KlSchedule { beta: 0.5, warmup_epochs: 1 };
            gaussian(Bound::Elbo { samples: 1, kl, estimator: reparam(0.25) })
                && config.model.decoder == Decoder::Gaussian
        }
        "conditional" => matches!(&config.method,
            Method::Conditional { latent: 3, classes: 10, class_names, .. } if class_names.len() == 10),
        "categorical" => {
            matches!(config.method, Method::Categorical { groups: 4, categories: 5, tau: (2.0, 0.3), .. })
                && config.latent_width() == 20
        }
        "per_datapoint" => matches!(config.method, Method::PerDatapoint { latent: 3, inner_steps: 3, inner_lr, .. }
            if inner_lr == 0.05),
        "conv_norm" => config.model.network == Network::Conv(ConvSpec { channels: vec![4, 8], group_norm: Some(2) }),
        other => panic!("no expectation for mode {other}"),
    }
}

#[test]
fn configs_written_before_the_typed_config_should_load_as_what_they_trained() {
    let configs = golden();
    assert_eq!(configs.len(), 9, "one config per mode");
    for (mode, flat) in &configs {
        let config: RunConfig = serde_json::from_value(flat.clone()).unwrap_or_else(|e| panic!("{mode}: {e}"));
        config.validate().unwrap_or_else(|e| panic!("{mode}: {e:#}"));
        assert!(is_what_was_trained(mode, &config), "{mode} read as {config:?}");
        let written = serde_json::to_value(&config).expect("to JSON");
        let reread: RunConfig = serde_json::from_value(written).expect("reads back");
        assert_eq!(reread, config, "{mode}: written and read back");
    }
}

/// Checkpoints from before the `conditional` field: a class count meant a conditional model.
#[test]
fn a_class_count_without_the_conditional_field_should_read_as_a_conditional_model() {
    let mut flat = golden().remove("conditional").expect("the conditional mode");
    flat.as_object_mut().expect("an object").remove("conditional");
    let config: RunConfig = serde_json::from_value(flat).expect("reads");
    assert_eq!(config.classes(), 10);
}

/// A stored combination that cannot train is refused on reading, naming the flags.
#[test]
fn stored_combinations_that_cannot_train_should_be_refused() {
    let default = golden().remove("default").expect("the default mode");
    for (edits, needle) in [
        (
            vec![("latent_groups", 2.into()), ("latent_categories", 5.into()), ("objective", "iwae".into())],
            "categorical",
        ),
        (vec![("inference", "per-datapoint".into()), ("samples", 2.into())], "per-datapoint"),
        (vec![("baseline", "mean".into())], "--baseline"),
        (vec![("arch", "mlp".into()), ("norm", "group".into())], "--norm group"),
    ] {
        let mut flat = default.clone();
        for (key, value) in edits {
            flat[key] = value;
        }
        let error = serde_json::from_value::<RunConfig>(flat).expect_err(needle).to_string();
        assert!(error.contains(needle), "{error}");
    }
}
