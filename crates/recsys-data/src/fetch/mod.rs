//! Downloads MovieLens releases from GroupLens into a local cache, verified by SHA-256.
//!
//! [`fetch`] returns the extracted release folder, downloading it only when the cache does not
//! already hold a complete copy. Every step works on temporary names inside the cache folder
//! (a `.ml-…zip.part` download, a `.ml-….extract` folder) that are removed on failure, and the
//! extracted folder is renamed into place only once it is complete, with a marker file
//! ([`MARKER`]) inside. An interrupted or failed fetch therefore never leaves a half-written
//! release where the loaders would find it.
//!
//! [`install_zip`] does the verify-and-extract half on a zip that is already on disk, for machines
//! that cannot reach GroupLens.

mod download;
mod install;
mod release;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use download::download;
use install::{install_verified, install_zip_expecting};
pub use release::Release;

/// Name of the marker file written into an extracted release once it is complete. It holds the
/// release name and the SHA-256 of the zip it came from.
pub const MARKER: &str = ".recsys-complete";

/// The cache folder: `$RECSYS_CACHE` if set, else `$XDG_CACHE_HOME/recsys`, else
/// `~/.cache/recsys` (falling back to the system temporary folder without a home folder).
pub fn default_cache_dir() -> PathBuf {
    cache_dir_from(|key| std::env::var_os(key))
}

fn cache_dir_from(var: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    let set = |key: &str| var(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set("RECSYS_CACHE") {
        return dir;
    }
    // The XDG base directory specification says to ignore relative paths.
    if let Some(dir) = set("XDG_CACHE_HOME").filter(|d| d.is_absolute()) {
        return dir.join("recsys");
    }
    if let Some(home) = set("HOME").or_else(|| set("USERPROFILE")) {
        return home.join(".cache").join("recsys");
    }
    std::env::temp_dir().join("recsys-cache")
}

/// Returns the folder of `release` under `cache_dir`, downloading and extracting it first unless
/// a complete copy is already there.
///
/// The download goes to a temporary file in `cache_dir` (shown with a progress bar when
/// `progress` is set and stderr is a terminal), is checked against the release's SHA-256 (its
/// size for ml-10m), and is extracted by [`install_zip`]'s steps; the zip is then deleted.
///
/// Errors: [`DataError::Download`] naming the URL when the server cannot be reached, answers
/// with an error, the connection drops, or the bytes do not match (naming expected and actual
/// hash); [`DataError::Io`] when the cache cannot be written. No partial files are left behind.
pub fn fetch(release: Release, cache_dir: &Path, progress: bool) -> Result<PathBuf> {
    fetch_from(
        release,
        &release.url(),
        cache_dir,
        progress,
        &Expected::of(release),
    )
}

/// Verifies a zip of `release` that is already on disk against the release's SHA-256 (its size
/// for ml-10m) and extracts it into `cache_dir`, replacing any incomplete copy there; returns the
/// release folder. The zip itself is left alone.
///
/// A zip that does not match is rejected with a [`DataError::Format`] naming the expected and the
/// actual hash, and nothing is written to `cache_dir`.
pub fn install_zip(release: Release, zip_path: &Path, cache_dir: &Path) -> Result<PathBuf> {
    install_zip_expecting(release, zip_path, cache_dir, &Expected::of(release))
}

/// Extracts a zip of `release` into `cache_dir` with every check of an install except the
/// hash and size of the whole file (for the fuzz target of the archive reader).
pub(crate) fn install_unverified(
    release: Release,
    zip_path: &Path,
    cache_dir: &Path,
) -> Result<PathBuf> {
    install_verified(release, zip_path, cache_dir, "unverified")
}

/// Whether `folder` holds a completely extracted release.
pub fn is_complete(folder: &Path) -> bool {
    folder.join(MARKER).is_file()
}

/// What a zip must match.
#[derive(Debug, Clone)]
struct Expected {
    sha256: Option<String>,
    size: Option<u64>,
}

impl Expected {
    fn of(release: Release) -> Self {
        Self {
            sha256: release.sha256().map(str::to_string),
            size: Some(release.size()),
        }
    }

    /// `Err(reason)` when the zip's hash (or, without a hash, its size) differs.
    fn check(&self, sha256: &str, size: u64) -> std::result::Result<(), String> {
        if let Some(want) = &self.sha256 {
            if !want.eq_ignore_ascii_case(sha256) {
                let sizes = match self.size {
                    Some(s) if s != size => format!(" ({size} bytes, expected {s})"),
                    _ => format!(" ({size} bytes)"),
                };
                return Err(format!(
                    "sha256 mismatch: expected {want}, got {sha256}{sizes}"
                ));
            }
        } else if let Some(want) = self.size
            && want != size
        {
            return Err(format!(
                "size mismatch: expected {want} bytes, got {size} (sha256 {sha256})"
            ));
        }
        Ok(())
    }
}

fn fetch_from(
    release: Release,
    url: &str,
    cache_dir: &Path,
    progress: bool,
    expected: &Expected,
) -> Result<PathBuf> {
    let target = cache_dir.join(release.folder());
    if is_complete(&target) {
        return Ok(target);
    }
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    // Removed when dropped, whatever happens below.
    let mut part = tempfile::Builder::new()
        .prefix(&format!(".{}.", release.name()))
        .suffix(".zip.part")
        .tempfile_in(cache_dir)
        .map_err(|e| DataError::io(cache_dir, e))?;
    let part_path = part.path().to_path_buf();
    let (sha256, size) = download(
        url,
        part.as_file_mut(),
        &part_path,
        progress,
        expected.size,
        release,
    )?;
    expected
        .check(&sha256, size)
        .map_err(|message| DataError::Download {
            url: url.to_string(),
            message,
        })?;
    install_verified(release, &part_path, cache_dir, &sha256)
}

#[cfg(test)]
mod tests;
