//! Reads every shader module with naga (the version wgpu uses), so that a WGSL error is a compile
//! error that names the file and line, not a panic when the program starts; and writes, from what
//! naga read, the Rust side of the shaders (src/shaders.rs includes it): each module's source, its
//! entry points with their workgroup sizes, its binding numbers by variable name and its u32
//! constants. Nothing about the shaders is kept by hand on the host.
//!
//! A module is shaders/common.wgsl (the prelude: types and functions only) followed by one other
//! file of shaders/, and is named after that file.
use std::fmt::Write as _;
use std::path::Path;

const PRELUDE: &str = "common.wgsl";

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

/// LatentParams -> LATENT_PARAMS.
fn screaming(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// The layouts of the structs the host mirrors (gpu/params.rs checks its copies against them at
/// compile time); a struct bound in several modules must have one layout.
fn generate_layouts(modules: &[Reflected]) -> String {
    let mut seen: Vec<(&Layout, &str)> = Vec::new();
    for m in modules {
        for layout in &m.structs {
            match seen.iter().find(|s| s.0.name == layout.name) {
                Some((first, module)) if (first.size, &first.fields) != (layout.size, &layout.fields) => {
                    panic!("struct {} differs between shaders/{module}.wgsl and shaders/{}.wgsl", layout.name, m.name)
                }
                Some(_) => {}
                None => seen.push((layout, &m.name)),
            }
        }
    }
    let mut out = String::from(
        "/// The WGSL structs bound as uniforms or storage: size and field offsets in bytes.\npub mod layout {\n",
    );
    out += "    use super::StructLayout;\n";
    for (Layout { name, size, fields }, module) in seen {
        let list: Vec<String> = fields.iter().map(|(f, o)| format!("(\"{f}\", {o})")).collect();
        writeln!(out, "    /// `{name}` (first in shaders/{module}.wgsl).").unwrap();
        writeln!(
            out,
            "    pub const {}: StructLayout = StructLayout {{ size: {size}, fields: &[{}] }};",
            screaming(name),
            list.join(", ")
        )
        .unwrap();
    }
    out + "}\n"
}

/// linear_forward -> LinearForward.
fn camel(name: &str) -> String {
    name.split('_').map(|w| w[..1].to_uppercase() + &w[1..]).collect()
}

/// A struct bound as a uniform or storage: its name, size and (field, offset) list, in bytes.
struct Layout {
    name: String,
    size: u32,
    fields: Vec<(String, u32)>,
}

/// What the host needs of one validated module.
struct Reflected {
    name: String,
    files: Vec<String>,
    entries: Vec<(String, [u32; 3])>,
    bindings: Vec<(String, u32)>,
    /// Per entry (in `entries`' order), the storage buffers it uses: an adapter limits them per
    /// shader stage, and a pipeline's layout holds only the bindings its entry point uses.
    storage_buffers: Vec<u32>,
    constants: Vec<(String, u32)>,
    structs: Vec<Layout>,
}

fn reflect(
    module_name: &str,
    files: &[(String, String)],
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
) -> Reflected {
    let own_text = &files.last().expect("a module has its own file").1;
    let entries = module.entry_points.iter().map(|e| (e.name.clone(), e.workgroup_size)).collect();
    let mut bindings: Vec<(String, u32)> = module
        .global_variables
        .iter()
        .filter_map(|(_, v)| Some((v.name.clone()?.to_uppercase(), v.binding.as_ref()?.binding)))
        .collect();
    bindings.sort_by_key(|b| b.1);
    let storage_buffers = (0..module.entry_points.len())
        .map(|i| {
            let uses = info.get_entry_point(i);
            let storage =
                |v: &naga::GlobalVariable| v.binding.is_some() && matches!(v.space, naga::AddressSpace::Storage { .. });
            module.global_variables.iter().filter(|&(h, v)| storage(v) && !uses[h].is_empty()).count() as u32
        })
        .collect();
    // The module's own u32 constants (the prelude's are left out: they are not its interface).
    let constants = module
        .constants
        .iter()
        .filter_map(|(_, c)| {
            let name = c.name.clone()?;
            let declared_here = own_text.contains(&format!("const {name}:"));
            match module.global_expressions[c.init] {
                naga::Expression::Literal(naga::Literal::U32(v)) if declared_here => Some((name, v)),
                _ => None,
            }
        })
        .collect();
    let mut structs: Vec<Layout> = Vec::new();
    for (_, v) in module.global_variables.iter().filter(|(_, v)| v.binding.is_some()) {
        let ty = &module.types[v.ty];
        if let (Some(name), naga::TypeInner::Struct { members, span }) = (&ty.name, &ty.inner) {
            let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
            if !structs.iter().any(|s| &s.name == name) {
                structs.push(Layout { name: name.clone(), size: *span, fields });
            }
        }
    }
    let files = files.iter().map(|f| f.0.clone()).collect();
    Reflected { name: module_name.to_string(), files, entries, bindings, storage_buffers, constants, structs }
}

/// Shader modules the host binds with one set of binding numbers, a family per launcher
/// (src/network/linear/cpu.rs, src/network/linear/tiled.rs): every binding a module names must
/// have the number its family's first module gives it.
const BINDING_FAMILIES: &[&[&str]] = &[
    &["linear", "linear_vec4", "linear_vec4_subgroup", "linear_rows", "linear_rows_subgroup"],
    &["linear_tiled", "linear_split_subgroup"],
];

/// The families' mismatches: "shaders/<module>.wgsl: ..." per binding that differs.
fn check_binding_families(modules: &[Reflected]) -> Vec<String> {
    let find = |name: &str| modules.iter().find(|m| m.name == name);
    let mut failures = Vec::new();
    for family in BINDING_FAMILIES {
        let Some(first) = find(family[0]) else { continue };
        for module in family[1..].iter().filter_map(|name| find(name)) {
            for (binding, number) in &module.bindings {
                match first.bindings.iter().find(|(b, _)| b == binding) {
                    Some((_, n)) if n == number => {}
                    found => failures.push(format!(
                        "shaders/{}.wgsl: binding {} is @binding({number}), but shaders/{}.wgsl, whose launcher \
                         binds the family, {}",
                        module.name,
                        binding.to_lowercase(),
                        first.name,
                        found.map_or("has no such binding".to_string(), |(_, n)| format!("gives it @binding({n})"))
                    )),
                }
            }
        }
    }
    failures
}

/// src/shaders.rs's generated half: a Rust module per shader module, and the `Entry` enum.
fn generate(modules: &[Reflected]) -> String {
    let mut out = String::from("// Generated by build.rs from shaders/*.wgsl: do not edit.\n\n");
    for m in modules {
        let sources: Vec<String> =
            m.files.iter().map(|f| format!("include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/{f}\"))")).collect();
        writeln!(out, "/// shaders/{}.wgsl, after the prelude.\npub mod {} {{", m.name, m.name).unwrap();
        writeln!(out, "    pub const SOURCE: &str = concat!({});", sources.join(", \"\\n\", ")).unwrap();
        for (name, value) in &m.constants {
            writeln!(out, "    pub const {name}: u32 = {value};").unwrap();
        }
        writeln!(out, "    // Binding numbers (group 0), by the WGSL variable's name.").unwrap();
        for (name, value) in &m.bindings {
            if m.constants.iter().any(|c| &c.0 == name) {
                panic!("shaders/{}.wgsl: the binding `{}` and a constant share a name", m.name, name.to_lowercase());
            }
            writeln!(out, "    pub const {name}: u32 = {value};").unwrap();
        }
        writeln!(out, "}}\n").unwrap();
    }
    let (most, entry) = modules
        .iter()
        .flat_map(|m| m.storage_buffers.iter().zip(&m.entries).map(move |(n, e)| (*n, format!("{}::{}", m.name, e.0))))
        .max_by_key(|e| e.0)
        .expect("at least one entry point");
    writeln!(
        out,
        "/// The most storage buffers one entry point binds, and that entry (module::function): what an\n\
         /// adapter must allow per shader stage.\n\
         pub const MOST_STORAGE_BUFFERS: (u32, &str) = ({most}, \"{entry}\");\n"
    )
    .unwrap();
    let all: Vec<(&Reflected, &(String, [u32; 3]))> =
        modules.iter().flat_map(|m| m.entries.iter().map(move |e| (m, e))).collect();
    out += "/// Every compute entry point of every module.\n";
    out += "#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum Entry {\n";
    for (m, (name, _)) in &all {
        writeln!(out, "    /// `{name}` in shaders/{}.wgsl.\n    {},", m.name, camel(name)).unwrap();
    }
    out += "}\n\nimpl Entry {\n    pub const ALL: &[Entry] = &[\n";
    for (_, (name, _)) in &all {
        writeln!(out, "        Entry::{},", camel(name)).unwrap();
    }
    out +=
        "    ];\n\n    /// The WGSL function's name.\n    pub fn name(self) -> &'static str {\n        match self {\n";
    for (_, (name, _)) in &all {
        writeln!(out, "            Entry::{} => \"{name}\",", camel(name)).unwrap();
    }
    out += "        }\n    }\n\n    /// The module's full source (prelude included).\n";
    out += "    pub fn source(self) -> &'static str {\n        match self {\n";
    for (m, (name, _)) in &all {
        writeln!(out, "            Entry::{} => {}::SOURCE,", camel(name), m.name).unwrap();
    }
    out += "        }\n    }\n\n    /// The module's name.\n    pub fn module(self) -> &'static str {\n        match self {\n";
    for (m, (name, _)) in &all {
        writeln!(out, "            Entry::{} => \"{}\",", camel(name), m.name).unwrap();
    }
    out += "        }\n    }\n\n    /// @workgroup_size, as declared.\n";
    out += "    pub fn workgroup_size(self) -> [u32; 3] {\n        match self {\n";
    for (_, (name, size)) in &all {
        writeln!(out, "            Entry::{} => {size:?},", camel(name)).unwrap();
    }
    out += "        }\n    }\n}\n";
    out
}

fn main() {
    println!("cargo:rerun-if-changed=shaders");
    let mut names: Vec<String> = std::fs::read_dir("shaders")
        .expect("reading shaders/")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".wgsl") && n != PRELUDE)
        .collect();
    names.sort();
    let read = |name: &str| {
        let path = Path::new("shaders").join(name);
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        (format!("shaders/{name}"), text)
    };
    let prelude = read(PRELUDE);
    let mut failures = Vec::new();
    let mut modules = Vec::new();
    for file in &names {
        let module = file.trim_end_matches(".wgsl");
        let files = vec![prelude.clone(), read(file)];
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
                // Subgroup operations only in the modules named *_subgroup, which the host builds
                // only on adapters with subgroups (gpu/kernels.rs: buildable).
                let mut capabilities = naga::valid::Capabilities::default();
                if module.ends_with("_subgroup") {
                    capabilities |= naga::valid::Capabilities::SUBGROUP;
                }
                let mut validator = naga::valid::Validator::new(naga::valid::ValidationFlags::all(), capabilities);
                validator.subgroup_stages(naga::valid::ShaderStages::COMPUTE);
                validator.subgroup_operations(naga::valid::SubgroupOperationSet::all());
                match validator.validate(&parsed) {
                    Err(e) => failures.push(report(e.location(&source), e.emit_to_string(&source))),
                    Ok(info) => modules.push(reflect(module, &files, &parsed, &info)),
                }
            }
        }
    }
    failures.extend(check_binding_families(&modules));
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("{f}");
        }
        panic!(
            "{} shader check(s) failed (naga validation, binding families):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("shaders.rs");
    std::fs::write(&out, generate(&modules) + &generate_layouts(&modules))
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
