//! What the web page (web/) runs, natively: flags to a config as the CLI parses them, the embedded
//! set from its files' bytes, and an epoch through the futures the page awaits (run_steps' ticks,
//! the async readbacks, the snapshot), which must give what the blocking path gives.
use wgvae::config::spec::Network;
use wgvae::gpu::params::LossTotals;
use wgvae::trainer::{EpochControl, EpochSteps};

/// Ticks of at most 7 steps, counting the reads.
struct SevenAtATime {
    reads: usize,
    done: usize,
}

impl EpochControl for SevenAtATime {
    fn allowance(&mut self) -> usize {
        7
    }

    fn tick(&mut self, done: usize, _steps: usize, _totals: &LossTotals) -> anyhow::Result<()> {
        (self.reads, self.done) = (self.reads + 1, done);
        Ok(())
    }
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[test]
fn train_config_parses_as_the_command_line_and_refuses_files() {
    let (config, device) = wgvae::cli::train_config(&flags(&[
        "--epochs",
        "3",
        "--batch",
        "64",
        "--latent",
        "2",
        "--hidden",
        "50",
        "--lr",
        "0.002",
        "--seed",
        "9",
        "--kernels",
        "gpu",
    ]))
    .expect("the page's flags");
    assert_eq!((config.epochs, config.batch, config.latent_width(), config.seed), (3, 64, 2, 9));
    assert!(matches!(&config.model.network, Network::Auto { hidden, .. } if hidden == &[50]), "{config:?}");
    assert_eq!(config.optimizer.lr, 0.002);
    assert_eq!(device.kernels, wgvae::gpu::KernelChoice::Gpu);
    let (defaults, _) = wgvae::cli::train_config(&[]).expect("no flags");
    assert_eq!((defaults.epochs, defaults.batch, defaults.latent_width()), (10, 128, 20));
    for (bad, needle) in [
        (&["--out", "x"][..], "name files"),
        (&["--batch", "0"][..], "--batch"),
        (&["--epochs", "0"][..], "--epochs"),
        (&["--lr", "abc"][..], "invalid value 'abc'"),
        (&["--bogus"][..], "--bogus"),
    ] {
        let e = format!("{:#}", wgvae::cli::train_config(&flags(bad)).expect_err("refused"));
        assert!(e.contains(needle), "{bad:?}: {e}");
    }
}

#[test]
fn embedded_set_from_bytes_is_the_embedded_set() {
    let images = std::fs::read("assets/train-images-idx3-ubyte.gz").expect("assets");
    let labels = std::fs::read("assets/train-labels-idx1-ubyte.gz").expect("assets");
    let from_bytes = wgvae::data::embedded_from(&images, &labels).expect("the page's data");
    let built_in = wgvae::data::embedded().expect("embedded");
    assert_eq!(from_bytes.fingerprint(), built_in.fingerprint());
    assert_eq!((from_bytes.train.len(), from_bytes.val.len()), (9000, 1000));
    let e = wgvae::data::embedded_from(&images[..1000], &labels).expect_err("truncated");
    assert!(format!("{e:#}").contains("embedded images"), "{e:#}");
}

#[test]
fn an_epoch_through_the_futures_matches_the_blocking_path() {
    let config_flags = flags(&["--epochs", "1", "--batch", "100", "--hidden", "24", "--latent", "3", "--seed", "4"]);
    let (config, device) = wgvae::cli::train_config(&config_flags).expect("flags");
    let run = |use_futures: bool| {
        let (config, data) = wgvae::session::new_run_data(config.clone()).expect("data");
        let s = pollster::block_on(wgvae::session::open_new_async(config, &device, data)).expect("session");
        let order = wgvae::draws::epoch_order(s.data.train.len(), s.config.seed, 1);
        let steps = s.trainer.steps_per_epoch;
        let totals = if use_futures {
            // As the CLI and web/src/run.rs train: ticks (here of at most 7 steps), two in flight.
            let mut control = SevenAtATime { reads: 0, done: 0 };
            let from = EpochSteps { done: 0, totals: LossTotals::default() };
            let ran = pollster::block_on(s.trainer.run_steps(&s.gpu, (1, &order), from, &mut control)).unwrap();
            assert_eq!((control.reads, control.done, ran.done), (steps.div_ceil(7), steps, steps));
            ran.totals
        } else {
            s.trainer.start_epoch(&s.gpu, &order);
            s.trainer.train_steps(&s.gpu, steps).unwrap();
            pollster::block_on(s.trainer.totals(&s.gpu)).unwrap()
        };
        let ck = pollster::block_on(s.trainer.snapshot(&s.gpu, &s.config, &[], 1, 0, LossTotals::default())).unwrap();
        let val = pollster::block_on(s.trainer.evaluate(&s.gpu)).unwrap();
        (totals, val, ck.params, ck.progress.expect("progress").optimizer_step)
    };
    let (a, b) = (run(true), run(false));
    assert_eq!(a.0, b.0, "training totals");
    assert_eq!(a.1, b.1, "validation totals");
    assert!(a.2 == b.2, "weights differ");
    assert_eq!(a.3 as usize, 9000 / 100, "optimizer steps");
}
