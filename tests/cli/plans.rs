//! `wgvae devices --profile P` against tests/golden/plans/P.txt: what runs where, for every described
//! adapter (src/plan/profiles.rs), for the default MLP, a wider one and the conv VAE. A change to
//! a kernel choice shows up here as a diff to review; `WGVAE_BLESS=1 cargo test plans` rewrites the
//! files after such a review.
use crate::{stderr, wgvae};

/// The models each profile's file shows, one after another.
const MODELS: [&[&str]; 3] = [&[], &["--hidden", "512", "256", "--batch", "256"], &["--arch", "conv"]];

fn plans_of(profile: &str) -> String {
    let mut text = String::new();
    for model in MODELS {
        let mut args = vec!["devices", "--profile", profile];
        args.extend_from_slice(model);
        let o = wgvae(&args);
        assert!(o.status.success(), "wgvae {args:?} failed: {}", stderr(&o));
        text.push_str(&format!("$ wgvae {}\n", args.join(" ")));
        text.push_str(&String::from_utf8_lossy(&o.stdout));
        text.push('\n');
    }
    text
}

#[test]
fn devices_plan_should_match_golden_plan_for_every_profile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/plans");
    let bless = std::env::var_os("WGVAE_BLESS").is_some();
    let mut stale = Vec::new();
    for profile in wgvae::plan::profiles::all() {
        let (path, got) = (dir.join(format!("{}.txt", profile.name)), plans_of(profile.name));
        if bless {
            std::fs::create_dir_all(&dir).expect("creating tests/golden/plans");
            std::fs::write(&path, &got).expect("writing a golden plan");
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(got.as_str()) {
            stale.push(format!("{}:\n{got}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "plans differ from tests/golden/plans (review, then WGVAE_BLESS=1 cargo test plans):\n{}",
        stale.join("\n")
    );
}

#[test]
fn devices_should_name_the_profiles_when_one_is_unknown() {
    crate::assert_fails_with(&["devices", "--profile", "gtx-9000"], &["gtx-9000", "h100", "apple-m"]);
}
