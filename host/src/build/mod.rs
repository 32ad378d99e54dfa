//! Building agents and workflows into components. An agent is a Rust crate
//! (`agents/<name>/`), a Python module (`agents/<name>.py`) or a TypeScript or JavaScript
//! module (`agents/<name>.ts`, `.js`), directly in `agents/` or in a tenant's folder
//! (`agents/<tenant>/`); a workflow is a crate in `workflows/`. Each builds into
//! `<name>.wasm` beside its source, which the host loads.

mod cargo;
mod javascript;
mod python;
mod toolchain;

use std::path::{Path, PathBuf};

pub use cargo::{build_crate, ensure_target};
pub use toolchain::Toolchains;

/// The compilation target of components.
pub const TARGET: &str = "wasm32-wasip2";

/// The language an agent's source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// A crate's folder (holding `Cargo.toml`).
    Rust,
    /// A `.py` module.
    Python,
    /// A `.ts` or `.js` module.
    JavaScript,
}

/// The language of an agent source at `path`, if it is one.
pub fn language_of(path: &Path) -> Option<Language> {
    if is_crate(path) {
        return Some(Language::Rust);
    }
    let name = path.file_name()?.to_str()?;
    if !path.is_file() || !is_agent_file_name(name) {
        return None;
    }
    match path.extension()?.to_str()? {
        "py" => Some(Language::Python),
        "ts" | "js" => Some(Language::JavaScript),
        _ => None,
    }
}

/// Whether a file name can be an agent's: `.py`, `.ts` or `.js`, not hidden (editors'
/// and systems' files start with `.`) and not a TypeScript declaration file (`.d.ts`).
pub fn is_agent_file_name(name: &str) -> bool {
    !name.starts_with('.')
        && !name.ends_with(".d.ts")
        && [".py", ".ts", ".js"].iter().any(|x| name.ends_with(x))
}

/// The crates of one folder: each subfolder holding a `Cargo.toml`, and, one level down,
/// those of each subfolder that holds none (a tenant's folder, `agents/<tenant>/<name>/`).
pub fn crates_in(dir: &Path) -> Vec<PathBuf> {
    let mut crates = sources_in(dir);
    crates.retain(|p| is_crate(p));
    crates
}

/// The agent sources of one folder (crates and `.py`/`.ts`/`.js` files), directly and in
/// each subfolder that is not a crate (a tenant's folder), sorted.
pub fn sources_in(dir: &Path) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    for entry in entries(dir) {
        if language_of(&entry).is_some() {
            sources.push(entry);
        } else if entry.is_dir() {
            sources.extend(entries(&entry).filter(|p| language_of(p).is_some()));
        }
    }
    sources.sort();
    sources
}

/// Whether `dir` is a crate's folder.
pub fn is_crate(dir: &Path) -> bool {
    dir.join("Cargo.toml").is_file()
}

fn entries(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    entries.map(|e| e.path())
}

/// The component a source builds into: `<name>.wasm` beside it.
pub fn component_of(source: &Path) -> PathBuf {
    source.with_extension("wasm")
}

/// Builds one agent source (a crate, a `.py`, `.ts` or `.js` file) with its language's
/// toolchain, fetched first if need be, and returns the path of the component built
/// under `target_dir`. Compiler errors go to stderr, pointing at the author's file.
pub fn component(source: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let tools = Toolchains::default();
    match language_of(source) {
        Some(Language::Rust) => build_crate(source, Some(target_dir)),
        Some(Language::Python) => python::build(source, target_dir, &tools),
        Some(Language::JavaScript) => javascript::build(source, target_dir, &tools),
        None => Err(format!("{} is not an agent's source", source.display())),
    }
}

/// A project's folders of sources, and where their builds go.
#[derive(Debug, Clone)]
pub struct Project {
    /// `agents/`: agent crates and files, directly or in a tenant's folder.
    pub agents_dir: PathBuf,
    /// `workflows/`: workflow crates.
    pub workflows_dir: PathBuf,
    /// Cargo's target folder for crates not in a workspace of their own choosing; Python
    /// and JavaScript builds keep their work and their outputs under it too.
    pub target_dir: PathBuf,
}

/// What one `build_all` did.
#[derive(Debug, Default)]
pub struct Built {
    /// Components written (or already up to date), as `<name>` or `<tenant>/<name>`.
    pub agents: Vec<String>,
    /// Workflow components written (or already up to date), as `<name>`.
    pub workflows: Vec<String>,
    /// Sources that failed, with why (a compiler's own output went to stderr).
    pub failed: Vec<String>,
}

impl Project {
    /// Builds every agent and workflow, going on past failures.
    pub fn build_all(&self) -> Result<Built, String> {
        let agents = sources_in(&self.agents_dir);
        let mut built = Built::default();
        let workflows = crates_in(&self.workflows_dir);
        if agents.iter().chain(&workflows).any(|p| is_crate(p)) {
            ensure_target()?;
        }
        for (sources, names) in [
            (agents, &mut built.agents),
            (workflows, &mut built.workflows),
        ] {
            for source in sources {
                match self.build(&source) {
                    Ok(name) => names.push(name),
                    Err(e) => built.failed.push(e),
                }
            }
        }
        Ok(built)
    }

    /// Builds one source and writes its component beside it (`agents/<name>/` or
    /// `agents/<name>.py` → `agents/<name>.wasm`), left untouched when the bytes are the
    /// same. Returns its name, `<tenant>/<name>` for a tenant's agent.
    pub fn build(&self, source: &Path) -> Result<String, String> {
        let name = self.name_of(source);
        let dest = component_of(source);
        let others: Vec<String> = entries(source.parent().unwrap_or(Path::new(".")))
            .filter(|p| p != source && component_of(p) == dest && language_of(p).is_some())
            .map(|p| p.display().to_string())
            .collect();
        if !others.is_empty() {
            return Err(format!(
                "{} and {} name the same agent '{name}'; keep one",
                source.display(),
                others.join(" and ")
            ));
        }
        eprintln!("Building {name}…");
        let wasm = component(source, &self.target_dir)?;
        copy_if_changed(&wasm, &dest)
            .map_err(|e| format!("cannot write {}: {e}", dest.display()))?;
        Ok(name)
    }

    /// A source's name as the host knows its component: the crate folder's or file's
    /// name (without extension), after its tenant's for a tenant's agent.
    pub fn name_of(&self, source: &Path) -> String {
        let stem = |p: &Path| {
            let name = if p.is_dir() {
                p.file_name()
            } else {
                p.file_stem()
            };
            name.map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let parent = source.parent().unwrap_or(source);
        let in_group = [&self.agents_dir, &self.workflows_dir]
            .iter()
            .all(|d| !same_folder(parent, d));
        if in_group {
            format!("{}/{}", stem(parent), stem(source))
        } else {
            stem(source)
        }
    }
}

fn same_folder(a: &Path, b: &Path) -> bool {
    a == b
        || a.canonicalize()
            .ok()
            .is_some_and(|a| b.canonicalize().ok() == Some(a))
}

/// Files a Python or JavaScript build writes into its work folder: (relative path,
/// contents).
type Inputs<'a> = &'a [(&'a str, &'a str)];

/// A fresh work folder under `target_dir/flue-<kind>/` holding `inputs`; removed when
/// dropped.
fn work_folder(target_dir: &Path, kind: &str, inputs: Inputs) -> Result<tempfile::TempDir, String> {
    let dir = target_dir.join(format!("flue-{kind}"));
    let io = |e: std::io::Error| format!("cannot write {}: {e}", dir.display());
    std::fs::create_dir_all(&dir).map_err(io)?;
    let work = tempfile::Builder::new()
        .prefix("work-")
        .tempdir_in(&dir)
        .map_err(io)?;
    for (name, text) in inputs {
        let path = work.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(work.path())).map_err(io)?;
        std::fs::write(&path, text).map_err(io)?;
    }
    Ok(work)
}

/// The component built from `parts` (all of what it is compiled from: the agent's code
/// as compiled, the SDK, the toolchain's versions), kept as
/// `target_dir/flue-<kind>/<hash>.wasm`: made by `compile(output file)` unless it is
/// there already. These compilers take tens of seconds, so an agent whose parts are
/// unchanged is not compiled again.
fn componentized(
    parts: &[&[u8]],
    target_dir: &Path,
    kind: &str,
    compile: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<PathBuf, String> {
    use sha2::{Digest, Sha256};
    let mut key = Sha256::new();
    key.update(env!("CARGO_PKG_VERSION"));
    for part in parts {
        key.update((part.len() as u64).to_le_bytes());
        key.update(part);
    }
    let key: String = (key.finalize().iter().take(16))
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = target_dir.join(format!("flue-{kind}"));
    let out = dir.join(format!("{key}.wasm"));
    if out.is_file() {
        return Ok(out);
    }
    let io = |e: std::io::Error| format!("cannot write {}: {e}", out.display());
    std::fs::create_dir_all(&dir).map_err(io)?;
    let built = tempfile::Builder::new()
        .prefix(&key)
        .tempfile_in(&dir)
        .map_err(io)?
        .into_temp_path();
    compile(&built)?;
    built.persist(&out).map_err(|e| io(e.error))?;
    Ok(out)
}

/// The bytes of `inputs`, to key a cached component with.
fn inputs_bytes(inputs: Inputs) -> Vec<u8> {
    inputs
        .iter()
        .flat_map(|(name, text)| [name.as_bytes(), b"\0", text.as_bytes(), b"\0"])
        .flatten()
        .copied()
        .collect()
}

/// Runs a compiler; on failure its output goes to stderr, each line through `shown` (which
/// turns the build's own paths into the author's), and the error points at `source`.
fn run_compiler(
    mut command: std::process::Command,
    source: &Path,
    shown: impl Fn(&str) -> String,
) -> Result<(), String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if !output.status.success() {
        for text in [&output.stdout, &output.stderr] {
            for line in String::from_utf8_lossy(text).lines() {
                eprintln!("{}", shown(line));
            }
        }
    }
    output.status.success().then_some(()).ok_or_else(|| {
        format!(
            "building {} failed (see the compiler output above)",
            source.display()
        )
    })
}

/// Writes via a temporary file of its own and a rename, so that no reader sees half a
/// file and two writers never share a temporary file.
fn write_atomically(dest: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = tempfile::NamedTempFile::new_in(dest.parent().unwrap_or(Path::new(".")))?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.persist(dest).map(drop).map_err(|e| e.error)
}

/// Copies via a temporary file and a rename, so a watcher never sees half a component;
/// leaves `dest` alone when it already holds the same bytes.
fn copy_if_changed(src: &Path, dest: &Path) -> std::io::Result<()> {
    let bytes = std::fs::read(src)?;
    if std::fs::read(dest).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    write_atomically(dest, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_found_directly_and_in_tenant_folders() {
        let dir = std::env::temp_dir().join(format!("flue-crates-{}", std::process::id()));
        for folder in [
            "agents/a/src",
            "agents/acme/b/src",
            "agents/acme/notes",
            "workflows/w",
        ] {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
        }
        for manifest in ["agents/a", "agents/acme/b", "workflows/w"] {
            std::fs::write(dir.join(manifest).join("Cargo.toml"), "").unwrap();
        }
        for file in [
            "agents/p.py",
            "agents/acme/t.ts",
            "agents/notes.md",
            "workflows/x.py",
        ] {
            std::fs::write(dir.join(file), "").unwrap();
        }
        let project = Project {
            agents_dir: dir.join("agents"),
            workflows_dir: dir.join("workflows"),
            target_dir: dir.join("target"),
        };
        let agents = crates_in(&project.agents_dir);
        assert_eq!(agents, [dir.join("agents/a"), dir.join("agents/acme/b")]);
        let names: Vec<String> = agents.iter().map(|c| project.name_of(c)).collect();
        assert_eq!(names, ["a", "acme/b"]);
        assert_eq!(project.name_of(&dir.join("workflows/w")), "w");
        let sources = sources_in(&project.agents_dir);
        let names: Vec<String> = sources.iter().map(|c| project.name_of(c)).collect();
        assert_eq!(names, ["a", "acme/b", "acme/t", "p"]);
        assert_eq!(
            language_of(&dir.join("agents/p.py")),
            Some(Language::Python)
        );
        assert_eq!(
            language_of(&dir.join("agents/acme/t.ts")),
            Some(Language::JavaScript)
        );
        assert_eq!(
            component_of(&dir.join("agents/p.py")),
            dir.join("agents/p.wasm")
        );
        assert_eq!(crates_in(&project.workflows_dir), [dir.join("workflows/w")]);

        std::fs::write(dir.join("agents/a.js"), "").unwrap();
        let clash = project.build(&dir.join("agents/a.js")).unwrap_err();
        assert!(
            clash.contains("agents/a.js") && clash.contains("agents/a"),
            "{clash}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
