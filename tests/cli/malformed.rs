//! Malformed input as a table (malformed_cases.rs): each case makes its files in a fresh folder,
//! runs one command, and asserts the exit code (1 for a refused run, 2 for flags clap rejects) and
//! the key words of the message: what is wrong, and where. None may panic or leave a half-written
//! file.
use std::path::Path;

use super::checkpoints::{s, trained};
use super::malformed_cases::CASES;
use super::{stderr, wgvae};

#[test]
fn malformed_inputs_should_fail_with_their_exit_code_and_a_message_that_says_what_and_where() {
    assert!(CASES.len() >= 30, "the suite has {} cases", CASES.len());
    let mut failures = Vec::new();
    for case in CASES {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        (case.setup)(d);
        let fill = |a: &str| a.replace("{d}", s(d)).replace("{run}", s(trained()));
        let mut args: Vec<String> = case.args.iter().map(|a| fill(a)).collect();
        // Whatever a command would write goes to the case's folder, should it run after all.
        if ["train", "mixture", "nce"].contains(&case.args[0])
            && !case.args.iter().any(|a| *a == "--out" || *a == "--resume")
        {
            args.extend(["--out".to_string(), fill("{d}/out")]);
        }
        let o = wgvae(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let err = stderr(&o);
        let missing: Vec<String> = case.needles.iter().map(|n| fill(n)).filter(|n| !err.contains(n.as_str())).collect();
        let partial = walk(d).into_iter().filter(|p| p.ends_with(".partial")).collect::<Vec<_>>();
        if o.status.code() != Some(case.code) || !missing.is_empty() || err.contains("panicked") || !partial.is_empty()
        {
            failures.push(format!(
                "{}: exit {:?} (expected {}), missing {missing:?}, partial files {partial:?}: {err}",
                case.name,
                o.status.code(),
                case.code
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), CASES.len(), failures.join("\n"));
}

/// Every file under `dir`, as strings.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}
