//! Resident memory over training steps.
use crate::common::*;

/// Training steps must not grow the process's memory: a kernel shape once made lavapipe leak
/// 137 KB per dispatch (see gaussian_kl_backward). Every option that adds launches is on here.
#[test]
fn training_steps_should_not_grow_resident_memory() {
    use clap::Parser;
    #[derive(clap::Parser)]
    struct Wrapper {
        #[command(flatten)]
        model: wgvae::cli::ModelArgs,
    }
    let rss_kib = || -> i64 {
        let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux)");
        status
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    };
    let args = Wrapper::parse_from([
        "test",
        "--hidden",
        "36",
        "--latent",
        "8",
        "--batch",
        "64",
        "--mc-samples",
        "2",
        "--free-bits",
        "0.1",
        "--kl-warmup",
        "1",
    ])
    .model;
    let config = args.to_config(1).expect("config");
    let s = wgvae::session::open_new(config, &wgvae::gpu::DeviceChoice::default()).expect("session");
    s.trainer.start_epoch(&s.gpu, &wgvae::commands::draws::epoch_order(s.data.train.len(), 1, 1));
    let step = |n: usize| {
        for _ in 0..n {
            s.trainer.train_steps(&s.gpu, 1);
            gpu::wait(&s.gpu);
        }
    };
    step(10);
    let before = rss_kib();
    step(60);
    let grew = rss_kib() - before;
    assert!(grew < 2048, "60 training steps grew resident memory by {grew} KiB");
}
