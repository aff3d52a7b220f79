//! Validates every shader module with naga (the version wgpu uses) so that a WGSL error is a
//! compile error that names the file and line, not a panic when the program starts.
use std::path::Path;

include!("src/shader_modules.rs");

/// Maps a line of the concatenated module back to (file, line in that file).
fn locate(files: &[(String, String)], line: u32) -> (String, u32) {
    let mut first = 1u32;
    for (name, text) in files {
        let lines = text.lines().count() as u32 + 1; // + 1: the "\n" that joins files
        if line < first + lines {
            return (name.clone(), line - first + 1);
        }
        first += lines;
    }
    (files.last().map(|f| f.0.clone()).unwrap_or_default(), line)
}

fn main() {
    println!("cargo:rerun-if-changed=shaders");
    println!("cargo:rerun-if-changed=src/shader_modules.rs");
    let mut failures = Vec::new();
    for (module, names) in SHADER_MODULES {
        let files: Vec<(String, String)> = names
            .iter()
            .map(|name| {
                let path = Path::new("shaders").join(name);
                println!("cargo:rerun-if-changed={}", path.display());
                let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
                (format!("shaders/{name}"), text)
            })
            .collect();
        let source = files.iter().map(|f| f.1.as_str()).collect::<Vec<_>>().join("\n");
        let report = |location: Option<naga::SourceLocation>, detail: String| {
            let (file, line) =
                location.map(|l| locate(&files, l.line_number)).unwrap_or_else(|| (module.to_string(), 0));
            let column = location.map(|l| l.line_position).unwrap_or(0);
            format!("{file}:{line}:{column}: in shader module `{module}`\n{detail}")
        };
        match naga::front::wgsl::parse_str(&source) {
            Err(e) => failures.push(report(e.location(&source), e.emit_to_string(&source))),
            Ok(parsed) => {
                let mut validator = naga::valid::Validator::new(
                    naga::valid::ValidationFlags::all(),
                    naga::valid::Capabilities::default(),
                );
                if let Err(e) = validator.validate(&parsed) {
                    failures.push(report(e.location(&source), e.emit_to_string(&source)));
                }
            }
        }
    }
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        panic!("{} shader module(s) failed naga validation:\n{}", failures.len(), failures.join("\n"));
    }
}
