//! Resident memory over training steps, measured in a process of its own: the other tests of this
//! binary run in parallel threads and move the process's resident size by megabytes.
use crate::common::*;

const ALONE: &str = "WGVAE_MEMORY_TEST_ALONE";

/// Training steps must not grow the process's memory: a kernel shape once made lavapipe leak
/// 137 KB per dispatch (see gaussian_kl_backward). Every option that adds launches is on here.
#[test]
fn training_steps_should_not_grow_resident_memory() {
    if std::env::var_os(ALONE).is_none() {
        // Run this test again, alone, in a child process of this test binary.
        let exe = std::env::current_exe().expect("the test binary's path");
        let name = "memory::training_steps_should_not_grow_resident_memory";
        let out = std::process::Command::new(exe)
            .args([name, "--exact", "--test-threads", "1", "--nocapture"])
            .env(ALONE, "1")
            .output()
            .expect("running the memory test in a child process");
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "the memory test, run alone, failed:\n{text}");
        return;
    }
    measure_training_memory();
}

fn measure_training_memory() {
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
    s.trainer.start_epoch(&s.gpu, &wgvae::draws::epoch_order(s.data.train.len(), 1, 1));
    let step = |n: usize| {
        for _ in 0..n {
            s.trainer.train_steps(&s.gpu, 1).unwrap();
            gpu::wait(&s.gpu).unwrap();
        }
    };
    step(10);
    let before = rss_kib();
    step(60);
    let grew = rss_kib() - before;
    assert!(grew < 2048, "60 training steps grew resident memory by {grew} KiB");
}
