//! A python3 that has numpy and safetensors (the interop tests) or TensorBoard (its reader): the
//! system's when it has them, otherwise a virtual environment made once under target/ (and said
//! so), so `cargo test` sets itself up on a fresh machine. Fails, saying what to install, only
//! without python3 or a registry.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn has_packages(python: &Path, packages: &[&str]) -> bool {
    let import = format!("import {}", packages.join(", "));
    Command::new(python).args(["-c", &import]).output().is_ok_and(|o| o.status.success())
}

fn run(what: &str, python: &Path, args: &[&str]) -> Result<(), String> {
    let o = Command::new(python)
        .args(args)
        .output()
        .map_err(|e| format!("{what}: cannot run {}: {e}", python.display()))?;
    if o.status.success() {
        return Ok(());
    }
    Err(format!("{what} failed:\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

fn make_venv(dir: &Path, packages: &[&str]) -> Result<PathBuf, String> {
    let python = dir.join("bin/python3");
    if has_packages(&python, packages) {
        return Ok(python);
    }
    eprintln!(
        "python3 lacks {}: installing them into a virtual environment in {} (once)",
        packages.join(" and "),
        dir.display()
    );
    let venv = dir.to_str().ok_or("the target directory's path is not UTF-8")?;
    run("python3 -m venv", Path::new("python3"), &["-m", "venv", "--clear", venv])
        .map_err(|e| format!("{e}\n(on Debian: `apt-get install -y python3-venv`)"))?;
    let mut install = vec!["-m", "pip", "install", "--quiet", "--disable-pip-version-check"];
    install.extend(packages);
    run("pip install into the virtual environment", &python, &install)
        .map_err(|e| format!("{e}\n(pip needs the package registry, PyPI, to be reachable)"))?;
    if !has_packages(&python, packages) {
        return Err(format!("{} still cannot import {}", python.display(), packages.join(", ")));
    }
    Ok(python)
}

/// A python3 that imports `packages`, found or made once per `venv` name.
fn find(cell: &'static OnceLock<Result<PathBuf, String>>, packages: &[&str], venv: &str) -> &'static Path {
    let found = cell.get_or_init(|| {
        if Command::new("python3").arg("--version").output().is_err() {
            return Err("this test needs python3 (`apt-get install -y python3 python3-venv`)".into());
        }
        let system = PathBuf::from("python3");
        if has_packages(&system, packages) {
            return Ok(system);
        }
        make_venv(&Path::new(env!("CARGO_TARGET_TMPDIR")).join(venv), packages)
    });
    match found {
        Ok(p) => p,
        Err(e) => panic!("no python3 with {}: {e}", packages.join(" and ")),
    }
}

/// The python3 to run the interop scripts with (numpy and safetensors).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    find(&PYTHON, &["numpy", "safetensors"], "python-venv")
}

/// A python3 with TensorBoard, whose own reader checks the event files.
pub fn tensorboard_python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    find(&PYTHON, &["tensorboard"], "tensorboard-venv")
}
