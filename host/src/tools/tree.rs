//! The file trees a sandbox offers: paths the model gives, resolved inside the
//! sandbox root or refused, and the operations the file tools need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The most bytes a virtual tree holds, over all its files.
pub(super) const MAX_VIRTUAL_BYTES: usize = 16 << 20;
/// The most files a listing or search walks.
pub(super) const MAX_WALK: usize = 20_000;

/// A path inside the sandbox, relative to its root: `src/main.rs`, or `` for the root.
pub(super) type RelPath = String;

/// Resolves a path the model gave against the sandbox root `cwd`. Relative paths are
/// taken from the root; absolute ones must lie under it. `..` may not climb above it.
pub(super) fn resolve(cwd: &str, path: &str) -> Result<RelPath, String> {
    let relative = if path.starts_with('/') {
        let root = cwd.trim_end_matches('/');
        match path.strip_prefix(root) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') || root.is_empty() => rest,
            _ => {
                return Err(format!(
                    "'{path}' is outside the sandbox (its root is {cwd})"
                ));
            }
        }
    } else {
        path
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("'{path}' escapes the sandbox"));
                }
            }
            part => parts.push(part),
        }
    }
    Ok(parts.join("/"))
}

/// The file operations the built-in tools are written against.
pub(super) trait FileTree: Send + Sync {
    /// A file's text.
    fn read(&self, path: &str) -> Result<String, String>;
    /// Creates or replaces a file, creating its folders.
    fn write(&mut self, path: &str, content: &str) -> Result<(), String>;
    /// The entries of a folder, sorted, folders marked with a trailing `/`.
    fn list(&self, dir: &str) -> Result<Vec<String>, String>;
    /// Every file under a folder (relative to the root), sorted, at most [`MAX_WALK`].
    fn files(&self, dir: &str) -> Result<Vec<RelPath>, String>;
}

/// `dir/name`, or `name` at the root.
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `dir` itself or inside it.
fn is_under(path: &str, dir: &str) -> bool {
    dir.is_empty() || path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// An in-memory file tree, kept with the session.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VirtualTree {
    /// Each file's text, by its path relative to the sandbox root (`src/main.rs`).
    pub files: BTreeMap<RelPath, String>,
}

impl FileTree for VirtualTree {
    fn read(&self, path: &str) -> Result<String, String> {
        self.files.get(path).cloned().ok_or_else(|| {
            if self.files.keys().any(|f| is_under(f, path)) {
                format!("'{path}' is a folder")
            } else {
                format!("'{path}' does not exist")
            }
        })
    }

    fn write(&mut self, path: &str, content: &str) -> Result<(), String> {
        if path.is_empty() || self.files.keys().any(|f| f != path && is_under(f, path)) {
            return Err(format!("'{path}' is a folder"));
        }
        if let Some(file) = self
            .files
            .keys()
            .find(|f| is_under(path, f) && f.as_str() != path)
        {
            return Err(format!("'{file}' is a file, not a folder"));
        }
        let used: usize = self
            .files
            .iter()
            .filter(|(f, _)| f.as_str() != path)
            .map(|(_, c)| c.len())
            .sum();
        if used + content.len() > MAX_VIRTUAL_BYTES {
            return Err(format!(
                "the sandbox is full ({} MiB at most)",
                MAX_VIRTUAL_BYTES >> 20
            ));
        }
        self.files.insert(path.to_string(), content.to_string());
        Ok(())
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        if self.files.contains_key(dir) {
            return Err(format!("'{dir}' is a file"));
        }
        let prefix = join(dir, "");
        let mut entries: Vec<String> = self
            .files
            .keys()
            .filter_map(|f| f.strip_prefix(&prefix))
            .map(|rest| match rest.split_once('/') {
                Some((folder, _)) => format!("{folder}/"),
                None => rest.to_string(),
            })
            .collect();
        entries.dedup();
        if entries.is_empty() && !dir.is_empty() {
            return Err(format!("'{dir}' does not exist"));
        }
        Ok(entries)
    }

    fn files(&self, dir: &str) -> Result<Vec<RelPath>, String> {
        Ok(self
            .files
            .keys()
            .filter(|f| is_under(f, dir))
            .take(MAX_WALK)
            .cloned()
            .collect())
    }
}

/// A host directory. Every path is checked after the symbolic links on its way are
/// followed: whatever points outside the root is refused.
#[derive(Debug, Clone)]
pub(crate) struct LocalTree {
    root: PathBuf,
}

impl LocalTree {
    /// The tree rooted at `root`, which must be an existing directory.
    pub(crate) fn new(root: &Path) -> Result<Self, String> {
        let root = root
            .canonicalize()
            .map_err(|e| format!("cannot open the sandbox folder {}: {e}", root.display()))?;
        if !root.is_dir() {
            return Err(format!(
                "the sandbox root {} is not a folder",
                root.display()
            ));
        }
        Ok(Self { root })
    }

    /// The root folder on the host.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The host path of `path`, once the deepest part of it that exists is known to
    /// resolve inside the root.
    pub(crate) fn host_path(&self, path: &str) -> Result<PathBuf, String> {
        let full = self.root.join(path);
        let mut existing = full.as_path();
        while existing.symlink_metadata().is_err() {
            existing = existing.parent().unwrap_or(&self.root);
        }
        let real = existing
            .canonicalize()
            .map_err(|_| format!("'{path}' goes through a broken symbolic link"))?;
        if !real.starts_with(&self.root) {
            return Err(format!(
                "'{path}' leads outside the sandbox through a symbolic link"
            ));
        }
        Ok(full)
    }
}

fn io_error(path: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => format!("'{path}' does not exist"),
        std::io::ErrorKind::IsADirectory => format!("'{path}' is a folder"),
        std::io::ErrorKind::InvalidData => format!("'{path}' is not UTF-8 text"),
        _ => format!("'{path}': {e}"),
    }
}

impl FileTree for LocalTree {
    fn read(&self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.host_path(path)?).map_err(|e| io_error(path, &e))
    }

    fn write(&mut self, path: &str, content: &str) -> Result<(), String> {
        let target = self.host_path(path)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error(path, &e))?;
        }
        std::fs::write(target, content).map_err(|e| io_error(path, &e))
    }

    fn list(&self, dir: &str) -> Result<Vec<String>, String> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(self.host_path(dir)?).map_err(|e| io_error(dir, &e))? {
            let entry = entry.map_err(|e| io_error(dir, &e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            entries.push(if is_dir { format!("{name}/") } else { name });
        }
        entries.sort();
        Ok(entries)
    }

    fn files(&self, dir: &str) -> Result<Vec<RelPath>, String> {
        let start = self.host_path(dir)?;
        let mut files: Vec<RelPath> = walkdir::WalkDir::new(start)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| e.file_name() != ".git")
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .take(MAX_WALK)
            .filter_map(|e| {
                let rel = e.path().strip_prefix(&self.root).ok()?;
                Some(rel.to_string_lossy().replace('\\', "/"))
            })
            .collect();
        files.sort();
        Ok(files)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_root() {
        assert_eq!(resolve("/", "a/./b/../c.txt").unwrap(), "a/c.txt");
        assert_eq!(resolve("/work", "/work/src/x").unwrap(), "src/x");
        assert_eq!(resolve("/work", "/work").unwrap(), "");
        assert_eq!(resolve("/", "/etc/passwd").unwrap(), "etc/passwd");
        assert!(resolve("/work", "../secret").is_err());
        assert!(resolve("/work", "a/../../secret").is_err());
        assert!(resolve("/work", "/etc/passwd").is_err());
        assert!(resolve("/work", "/workshop/x").is_err());
    }

    #[test]
    fn the_virtual_tree_has_folders_and_files() {
        let mut tree = VirtualTree::default();
        tree.write("src/main.rs", "fn main() {}").unwrap();
        tree.write("README.md", "hi").unwrap();
        assert_eq!(tree.list("").unwrap(), ["README.md", "src/"]);
        assert_eq!(tree.list("src").unwrap(), ["main.rs"]);
        assert!(tree.read("src").unwrap_err().contains("folder"));
        assert!(tree.write("src", "x").unwrap_err().contains("folder"));
        assert!(
            tree.write("README.md/x", "x")
                .unwrap_err()
                .contains("not a folder")
        );
        assert!(tree.list("nope").unwrap_err().contains("does not exist"));
        assert_eq!(tree.files("src").unwrap(), ["src/main.rs"]);
    }

    #[test]
    fn symbolic_links_out_of_a_local_tree_are_refused() {
        let base = std::env::temp_dir().join(format!("flue-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(&outside, root.join("link")).unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), root.join("secret")).unwrap();
        let mut tree = LocalTree::new(&root).unwrap();
        tree.write("notes/a.txt", "hello").unwrap();
        assert_eq!(tree.read("notes/a.txt").unwrap(), "hello");
        for path in ["link/secret", "secret", "link/new.txt"] {
            assert!(tree.read(path).unwrap_err().contains("outside"), "{path}");
        }
        assert!(
            tree.write("link/new.txt", "x")
                .unwrap_err()
                .contains("outside")
        );
        assert!(!outside.join("new.txt").exists());
        assert_eq!(tree.files("").unwrap(), ["notes/a.txt"]);
        let _ = std::fs::remove_dir_all(&base);
    }
}
