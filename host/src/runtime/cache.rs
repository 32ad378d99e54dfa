//! The on-disk cache of compiled components, keyed by the component's content hash and
//! the engine's compatibility hash, so a second start does not recompile; and the
//! components this host refused, with why, so a second start does not compile them to
//! refuse them again.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::GuestError;

/// Returns the component for `wasm`, its SHA-256, and whether it came from the cache;
/// `verdict` names what a refusal depends on besides the bytes (the world the caller
/// expects, the memory cap), for the refusals remembered.
pub(super) fn load_or_compile(
    engine: &Engine,
    cache_dir: &Path,
    wasm: &[u8],
    verdict: &str,
) -> Result<(Component, String, bool), GuestError> {
    let digest = digest(wasm);
    let refusal = refusal_path(engine, cache_dir, &digest, verdict);
    if let Ok(reason) = std::fs::read_to_string(&refusal) {
        return Err(GuestError::Invalid(reason));
    }
    let path = artifact_path(engine, cache_dir, &digest);
    if path.exists() {
        // SAFETY: files under the cache directory are written only by `store_artifact`
        // below, from `Engine::precompile_component` with an engine of the same
        // compatibility hash (part of the path), so they are trusted artifacts.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok((component, digest, true));
        }
        tracing::warn!(path = %path.display(), "cached artifact unreadable; recompiling");
    }
    if !wasm.starts_with(b"\0asm") {
        return Err(GuestError::Invalid(
            "the file is not WebAssembly (no \\0asm header)".into(),
        ));
    }
    let refuse = |reason: String| {
        remember(&refusal, &reason);
        GuestError::Invalid(reason)
    };
    let artifact =
        (engine.precompile_component(wasm)).map_err(|e| refuse(format!("{}", e.root_cause())))?;
    // SAFETY: as above: the bytes were produced by this engine a moment ago. What fails
    // here is what the engine's limits refuse (more core instances than the pool holds).
    let component = unsafe { Component::deserialize(engine, &artifact) }
        .map_err(|e| refuse(format!("{}", e.root_cause())))?;
    // The component is compiled: a cache that cannot be written costs the next start a
    // compile, not this one its agent.
    if let Err(e) = store_artifact(&path, &artifact) {
        tracing::warn!("{e}");
    }
    Ok((component, digest, false))
}

/// Remembers why the component `digest` names was refused under `verdict`. Kept per
/// engine and per host version, since another host may accept it.
pub(super) fn remember_refusal(
    engine: &Engine,
    cache_dir: &Path,
    digest: &str,
    verdict: &str,
    reason: &str,
) {
    remember(&refusal_path(engine, cache_dir, digest, verdict), reason);
}

/// Writes a refusal's reason; a failure to write is only logged.
fn remember(path: &Path, reason: &str) {
    if let Err(e) = store_artifact(path, reason.as_bytes()) {
        tracing::warn!("{e}");
    }
}

fn artifact_path(engine: &Engine, cache_dir: &Path, digest: &str) -> PathBuf {
    engine_dir(engine, cache_dir).join(format!("{digest}.cwasm"))
}

fn refusal_path(engine: &Engine, cache_dir: &Path, digest: &str, verdict: &str) -> PathBuf {
    let host = env!("CARGO_PKG_VERSION");
    let wit = super::WIT_VERSION;
    engine_dir(engine, cache_dir).join(format!("{digest}.refused-{verdict}-{host}-wit{wit}"))
}

fn engine_dir(engine: &Engine, cache_dir: &Path) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    cache_dir.join(format!("{:016x}", h.finish()))
}

/// Writes atomically (a temporary file of its own, then a rename) so that a crash never
/// leaves half a file, and two writers of the same file (two hosts, or two threads,
/// compiling the same component) never write into one temporary file.
fn store_artifact(path: &Path, bytes: &[u8]) -> Result<(), GuestError> {
    let io = |e: std::io::Error| {
        GuestError::Host(format!(
            "cannot write the compile cache at {}: {e}",
            path.display()
        ))
    };
    let dir = path.parent().expect("artifact paths have a parent");
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    std::io::Write::write_all(&mut tmp, bytes).map_err(io)?;
    tmp.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The hex SHA-256 of a component's bytes: its identity in the cache and the registry.
pub fn digest(wasm: &[u8]) -> String {
    hex(&Sha256::digest(wasm))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
