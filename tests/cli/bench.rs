//! `wgvae bench`: a sweep as JSON, with either kernel family forced on this adapter.
use crate::{assert_fails_with, stderr, wgvae};

#[test]
fn bench_should_sweep_both_kernel_families_as_json() {
    // The CPU family's forward product: through subgroups where the adapter has 8-lane ones
    // (lavapipe at its default width), plain vec4 otherwise.
    let families: [(&str, &[&str]); 2] =
        [("gpu", &["linear_forward_tiled"]), ("cpu", &["linear_forward_vec4_subgroup", "linear_forward_vec4"])];
    for (kernels, matmuls) in families {
        let args = [
            "bench",
            "--steps",
            "2",
            "--kernel-reps",
            "2",
            "--latent",
            "8",
            "--sweep-batch",
            "16",
            "40",
            "--sweep-hidden",
            "24",
            "--json",
            "--kernels",
            kernels,
        ];
        let o = wgvae(&args);
        assert!(o.status.success(), "bench {kernels} failed: {}", stderr(&o));
        let runs: serde_json::Value = serde_json::from_slice(&o.stdout).expect("stdout is one JSON document");
        let runs = runs.as_array().expect("a list of runs");
        assert_eq!(runs.len(), 2, "one run per batch of the sweep");
        for (run, batch) in runs.iter().zip([16, 40]) {
            assert_eq!(run["batch"], batch);
            assert_eq!(run["kernels"], kernels);
            assert_eq!(run["model"], "784-24-8");
            for key in ["images_per_second", "ms_per_step", "floor_ms_per_step", "per_kernel_total_ms"] {
                let v = run[key].as_f64().unwrap_or(f64::NAN);
                assert!(v > 0.0 && v.is_finite(), "{kernels} batch {batch}: {key} = {v}");
            }
            let names: Vec<&str> = run["per_kernel"]
                .as_array()
                .expect("per_kernel")
                .iter()
                .map(|k| k["name"].as_str().unwrap_or(""))
                .collect();
            let matmul = matmuls.iter().find(|m| names.contains(m));
            let Some(&matmul) = matmul else { panic!("{kernels}: none of {matmuls:?} among {names:?}") };
            let product =
                run["per_kernel"].as_array().expect("per_kernel").iter().find(|k| k["name"] == matmul).expect("row");
            assert!(
                product["gflops"].as_f64().is_some_and(|g| g > 0.0),
                "{kernels}: {matmul} has no GFLOP/s: {product}"
            );
        }
        // The tables went to stderr, leaving stdout to the JSON.
        assert!(stderr(&o).contains("per kernel, each launched alone"), "{}", stderr(&o));
    }
}

#[test]
fn bench_should_reject_a_bad_sweep() {
    assert_fails_with(&["bench", "--sweep-batch", "0"], &["--batch"]);
    assert_fails_with(&["bench", "--kernels", "tpu"], &["--kernels"]);
}
