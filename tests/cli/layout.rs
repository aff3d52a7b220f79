//! The source tree's layout rules, read from src/: only the launchers (launches/, network/) and
//! the kernel layer (gpu/, plan/, shaders.rs) name a WGSL entry point or a binding, the kernel
//! tests launch through them, and no two files import each other, directly or around a circle.
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/").flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every .rs file under src/, as (module path, text without comments).
fn modules() -> BTreeMap<Vec<String>, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .iter()
        .map(|f| {
            let rel = f.strip_prefix(&src).expect("under src").with_extension("");
            let mut path: Vec<String> = rel.iter().map(|c| c.to_string_lossy().to_string()).collect();
            if matches!(path.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                path.pop();
            }
            let text = std::fs::read_to_string(f).expect("read source");
            let code: String = text.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n");
            (path, code)
        })
        .collect()
}

#[test]
fn only_launchers_and_the_kernel_layer_should_name_entry_points_and_bindings() {
    let allowed = ["launches", "network", "gpu", "plan", "shaders"];
    let offenders: Vec<String> = modules()
        .into_iter()
        .filter(|(path, _)| !path.first().is_some_and(|top| allowed.contains(&top.as_str())))
        .filter(|(_, code)| ["Entry::", "bind(", "bind_range("].iter().any(|n| code.contains(n)))
        .map(|(path, _)| path.join("/"))
        .collect();
    assert!(offenders.is_empty(), "name a kernel or a binding outside the launchers: {offenders:?}");
}

/// The kernel tests run kernels through their launchers, so that a binding slip in a launcher
/// fails its kernel's test: none binds a buffer or launches an entry point itself (translation.rs
/// only translates every entry point's WGSL).
#[test]
fn kernel_tests_should_launch_through_the_launchers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernels");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("translation.rs"))
        .filter(|f| {
            let text = std::fs::read_to_string(f).expect("read test");
            ["bind(", "bind_range(", "launch_over(", ".get(Entry::"].iter().any(|n| text.contains(n))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(offenders.is_empty(), "kernel tests that bind or launch by hand: {offenders:?}");
}

/// GPU programs and launchers allocate their buffers one way, through gpu/ (zeroed by element
/// type and count, storage_with from data, uniforms, staging for readbacks): none outside it
/// creates a buffer itself.
#[test]
fn only_the_kernel_layer_should_create_buffers() {
    let offenders: Vec<String> = modules()
        .into_iter()
        .filter(|(path, code)| path.first().is_some_and(|top| top != "gpu") && code.contains("create_buffer"))
        .map(|(path, _)| path.join("/"))
        .collect();
    assert!(offenders.is_empty(), "create buffers outside gpu/: {offenders:?}");
}

/// The files `code` (in module `path`) refers to through `crate::` and `super::` paths.
fn imports(path: &[String], code: &str, files: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let parent = &path[..path.len().saturating_sub(1)];
    let mut found = BTreeSet::new();
    let mut resolve = |mut segments: Vec<String>| {
        while !segments.is_empty() && !files.contains(&segments) {
            segments.pop();
        }
        if !segments.is_empty() && segments != path {
            found.insert(segments);
        }
    };
    let word = |s: &str| s.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>();
    for (root, base) in [("crate::", Vec::new()), ("super::", parent.to_vec())] {
        for (at, _) in code.match_indices(root) {
            let before = code[..at].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = &code[at + root.len()..];
            let heads: Vec<String> = match rest.strip_prefix('{') {
                Some(group) => group.split('}').next().unwrap_or("").split(',').map(|s| word(s.trim())).collect(),
                None => vec![rest
                    .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                    .next()
                    .unwrap_or("")
                    .to_string()],
            };
            for head in heads {
                let segments: Vec<String> = head.split("::").filter(|s| !s.is_empty()).map(word).collect();
                resolve(base.iter().cloned().chain(segments).collect());
            }
        }
    }
    found
}

#[test]
fn no_source_files_should_import_each_other_in_a_circle() {
    let modules = modules();
    let files: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let edges: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        modules.iter().map(|(path, code)| (path, imports(path, code, &files))).collect();
    // A file is in a circle when it can reach itself.
    let mut circles = BTreeSet::new();
    for start in edges.keys() {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![(*start).clone()]);
        while let Some(at) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == *start {
                    circles.insert(start.join("/"));
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
    }
    assert!(circles.is_empty(), "files in an import circle: {circles:?}");
}

#[test]
fn no_source_file_should_pass_400_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "tests", "web/src"] {
        sources(&root.join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let lines = std::fs::read_to_string(f).expect("read source").lines().count();
            (lines > 400).then(|| format!("{} ({lines} lines)", f.strip_prefix(root).unwrap_or(f).display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}

/// The top-level modules import one way too (commands -> config, session -> trainer -> network ->
/// gpu), and the CPU reference is the tests' alone: no module outside src/reference/ imports it.
#[test]
fn top_level_modules_should_import_one_way_and_not_the_reference() {
    let modules = modules();
    let files: BTreeSet<Vec<String>> = modules.keys().cloned().collect();
    let top = |path: &[String]| path.first().cloned().unwrap_or_default();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, code) in &modules {
        for target in imports(path, code, &files) {
            if top(&target) != top(path) {
                edges.entry(top(path)).or_default().insert(top(&target));
            }
        }
    }
    let importers: Vec<&String> =
        edges.iter().filter(|(_, to)| to.contains("reference")).map(|(from, _)| from).collect();
    assert!(importers.is_empty(), "only the tests may import the CPU reference, but {importers:?} do");
    let mut circles = BTreeSet::new();
    for start in edges.keys() {
        let (mut seen, mut stack) = (BTreeSet::new(), vec![start.clone()]);
        while let Some(at) = stack.pop() {
            for next in edges.get(&at).into_iter().flatten() {
                if next == start {
                    circles.insert(start.clone());
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
    }
    assert!(circles.is_empty(), "top-level modules in an import circle: {circles:?}");
}

/// Where shaders/<module>.wgsl's launcher and reference live: src/launches/ or src/network/ (a
/// layer kind's) and src/reference/, each in a file named after the module, but for the linear
/// family's variants (network/linear/, one reference per computation) and im2col (the conv
/// layer's data movement).
fn homes(module: &str) -> (Vec<&'static str>, String) {
    match module {
        "linear" | "linear_vec4" | "linear_vec4_subgroup" | "linear_rows" | "linear_rows_subgroup" => {
            (vec!["network/linear/cpu.rs"], "linear".into())
        }
        "linear_tiled" | "linear_split_subgroup" => (vec!["network/linear/tiled.rs"], "linear_tiled".into()),
        "im2col" => (vec!["network/conv.rs"], "im2col".into()),
        _ => (vec!["launches/", "network/"], module.into()),
    }
}

/// Beside every shaders/<module>.wgsl, its launcher and its reference, and in the reference a
/// function (or a re-export) of each entry point's name.
#[test]
fn every_shader_module_should_have_a_launcher_and_a_reference_of_each_entry_point() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(root.join("shaders")).expect("shaders/").flatten() {
        let path = entry.path();
        let module = path.file_stem().expect("a name").to_string_lossy().to_string();
        if module == "common" {
            continue; // the prelude: no entry points; its Philox and Box-Muller are src/random.rs
        }
        let (launchers, reference) = homes(&module);
        let launcher_found = launchers.iter().any(|home| match home.strip_suffix('/') {
            Some(dir) => root.join(format!("src/{dir}/{module}.rs")).exists(),
            None => root.join("src").join(home).exists(),
        });
        if !launcher_found {
            problems.push(format!("{module}: no launcher in {launchers:?}"));
        }
        let reference_code = std::fs::read_to_string(root.join(format!("src/reference/{reference}.rs")));
        let Ok(reference_code) = reference_code else {
            problems.push(format!("{module}: no src/reference/{reference}.rs"));
            continue;
        };
        let wgsl = std::fs::read_to_string(&path).expect("read shader");
        let entries = wgsl.split("@compute").skip(1).filter_map(|after| {
            let name = after.split("fn ").nth(1)?.split('(').next()?;
            Some(name.trim().to_string())
        });
        for name in entries {
            let defined = [format!("pub fn {name}("), format!("pub fn {name}<"), format!(" as {name};")];
            if !defined.iter().any(|d| reference_code.contains(d.as_str())) {
                problems.push(format!("{module}::{name}: no reference of that name in src/reference/{reference}.rs"));
            }
        }
    }
    assert!(problems.is_empty(), "shader modules without their launcher or references:\n{}", problems.join("\n"));
}
