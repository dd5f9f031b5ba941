//! Verifying a zip and extracting it into the cache, publishing the release folder once complete.

use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{Expected, MARKER, Release, is_complete};
use crate::error::{DataError, Result};

pub(super) fn install_zip_expecting(
    release: Release,
    zip_path: &Path,
    cache_dir: &Path,
    expected: &Expected,
) -> Result<PathBuf> {
    let (sha256, size) = hash_file(zip_path)?;
    expected
        .check(&sha256, size)
        .map_err(|message| DataError::format(zip_path, message))?;
    install_verified(release, zip_path, cache_dir, &sha256)
}

/// SHA-256 (hex) and size of a file.
pub(super) fn hash_file(path: &Path) -> Result<(String, u64)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Sha256::new();
    let size = io::copy(&mut reader, &mut hasher).map_err(|e| DataError::io(path, e))?;
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// Extracts a verified zip into a temporary folder in `cache_dir`, writes the marker, and renames
/// the release folder into place (replacing an incomplete one).
pub(super) fn install_verified(
    release: Release,
    zip_path: &Path,
    cache_dir: &Path,
    sha256: &str,
) -> Result<PathBuf> {
    fs::create_dir_all(cache_dir).map_err(|e| DataError::io(cache_dir, e))?;
    // Removed when dropped, with whatever is still inside.
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.", release.name()))
        .suffix(".extract")
        .tempdir_in(cache_dir)
        .map_err(|e| DataError::io(cache_dir, e))?;
    extract(zip_path, staging.path())?;

    let extracted = staging.path().join(release.folder());
    if !extracted.is_dir() {
        return Err(DataError::format(
            zip_path,
            format!(
                "the archive holds no folder {}/ (is it a {release} zip?)",
                release.folder()
            ),
        ));
    }
    for member in release.required_members() {
        let path = extracted.join(member);
        let size = fs::symlink_metadata(&path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len());
        match size {
            Some(n) if n > 0 => {}
            Some(_) => {
                return Err(DataError::format(
                    zip_path,
                    format!(
                        "{}/{member} is empty (is it a {release} zip?)",
                        release.folder()
                    ),
                ));
            }
            None => {
                return Err(DataError::format(
                    zip_path,
                    format!(
                        "the archive has no {}/{member} (is it a {release} zip?)",
                        release.folder()
                    ),
                ));
            }
        }
    }
    let marker = extracted.join(MARKER);
    fs::write(&marker, format!("{release}\nsha256 {sha256}\n"))
        .map_err(|e| DataError::io(&marker, e))?;

    let target = cache_dir.join(release.folder());
    if target.exists() {
        fs::remove_dir_all(&target).map_err(|e| DataError::io(&target, e))?;
    }
    match fs::rename(&extracted, &target) {
        Ok(()) => Ok(target),
        // Another process installed the release in the meantime.
        Err(_) if is_complete(&target) => Ok(target),
        Err(e) => Err(DataError::io(&target, e)),
    }
}

/// Most bytes one archive may extract to (the largest release, ml-25m, extracts to about
/// 1.2 GB): a bound for archives whose entries claim or inflate to more.
const MAX_EXTRACTED: u64 = 8 << 30;

/// Whether a zip entry is a symbolic link (its Unix mode says so).
fn is_symlink(entry: &zip::read::ZipFile<'_, impl io::Read>) -> bool {
    entry.unix_mode().is_some_and(|m| m & 0o170000 == 0o120000)
}

/// Extracts every entry of a zip under `dest`, refusing entries that would land outside it,
/// symbolic links, and archives that extract to more than [`MAX_EXTRACTED`] bytes.
fn extract(zip_path: &Path, dest: &Path) -> Result<()> {
    let file = File::open(zip_path).map_err(|e| DataError::io(zip_path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| DataError::format(zip_path, format!("not a readable zip archive: {e}")))?;
    let mut total = 0u64;
    for k in 0..archive.len() {
        let mut entry = archive
            .by_index(k)
            .map_err(|e| DataError::format(zip_path, format!("entry {k}: {e}")))?;
        let name = entry.name().to_string();
        let Some(relative) = entry.enclosed_name() else {
            return Err(DataError::format(
                zip_path,
                format!("entry {name:?} points outside the archive folder"),
            ));
        };
        if is_symlink(&entry) {
            return Err(DataError::format(
                zip_path,
                format!("entry {name:?} is a symbolic link; release archives hold none"),
            ));
        }
        let out = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&out).map_err(|e| DataError::io(&out, e))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let mut file = File::create(&out).map_err(|e| DataError::io(&out, e))?;
        let left = MAX_EXTRACTED - total;
        // Read errors here include CRC mismatches of damaged entries.
        let n = io::copy(&mut (&mut entry).take(left + 1), &mut file)
            .map_err(|e| DataError::format(zip_path, format!("entry {name:?}: {e}")))?;
        if n > left {
            return Err(DataError::format(
                zip_path,
                format!("the archive extracts to more than {MAX_EXTRACTED} bytes"),
            ));
        }
        total += n;
    }
    Ok(())
}
