//! Small file helpers shared by the workspace: atomic writes and text decoding.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{DataError, Result};

/// Buffer size of [`write_atomic_with`]'s writer: large enough for streamed multi-gigabyte
/// files, small next to the data that gets written.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes `bytes` to `path` atomically (see [`publish_atomic`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes))
}

/// Like [`write_atomic`], with the content produced by `fill` through a buffered writer;
/// returns what `fill` returns.
pub fn write_atomic_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<T>,
) -> Result<T> {
    publish_atomic(path, |tmp| {
        let written = (|| {
            let mut w = BufWriter::with_capacity(WRITE_BUFFER, File::create(tmp)?);
            let value = fill(&mut w)?;
            w.into_inner().map_err(|e| e.into_error())?;
            Ok(value)
        })();
        written.map_err(|e| DataError::io(path, e))
    })
}

/// Publishes a file atomically: `write` creates the whole content at the temporary path it is
/// given, in the folder of `path`; then the temporary file is flushed to disk, renamed over
/// `path`, and the folder is flushed so that the rename survives a crash too. Readers see
/// either the old file or the complete new one, never a partial one. When anything fails the
/// temporary file is removed and the error returned.
///
/// The form for writers that want a path rather than a stream (such as Burn's stores); the
/// error type is the caller's, so any error that a [`DataError`] converts into works.
pub fn publish_atomic<T, E: From<DataError>>(
    path: &Path,
    write: impl FnOnce(&Path) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let tmp = temp_path(path);
    fault_point("write", &tmp);
    let result = write(&tmp).and_then(|value| {
        fault_point("fsync", &tmp);
        sync_file(&tmp)
            .and_then(|()| {
                fault_point("rename", path);
                std::fs::rename(&tmp, path)
            })
            .map_err(|e| DataError::io(path, e))?;
        Ok(value)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    sync_folder(parent_dir(path))?;
    result
}

/// Flushes a folder's entries to disk (after a rename, creation or removal in it), so that the
/// change survives a crash of the machine too.
pub fn sync_folder(dir: &Path) -> Result<()> {
    fault_point("fsync-dir", dir);
    sync_dir(dir).map_err(|e| DataError::io(dir, e))
}

/// Whether `name` is a temporary name of [`publish_atomic`] (`.<name>.tmp-<pid>-<n>`): what a
/// crash between writing and renaming leaves behind.
pub fn is_temp_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((_, tail)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let mut parts = tail.split('-');
    let digits =
        |p: Option<&str>| p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    digits(parts.next()) && digits(parts.next()) && parts.next().is_none()
}

/// Names the environment variable of the crash injection of [`fault_point`]: the process kills
/// itself just before its `N`th file operation (counted from 1).
pub const FAULT_AT_ENV: &str = "RECSYS_FAULT_AT";
/// With this environment variable set (to anything but `0`), every [`fault_point`] prints
/// `fault point N: <operation> <path>` to stderr, which is how a test counts them.
pub const FAULT_TRACE_ENV: &str = "RECSYS_FAULT_TRACE";

/// A point where a crash can tear what is on disk: called just before each write, flush, rename,
/// removal and folder creation of the atomic writes and of run directories. Without
/// [`FAULT_AT_ENV`] and [`FAULT_TRACE_ENV`] it only counts. Crash-consistency tests set
/// `RECSYS_FAULT_AT=N` to make the process die at its `N`th point as a `kill -9` would (no
/// clean-up, no destructors), then check what it left.
pub fn fault_point(what: &str, path: &Path) {
    static SETTINGS: std::sync::OnceLock<(Option<u64>, bool)> = std::sync::OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let (at, trace) = *SETTINGS.get_or_init(|| {
        let at = std::env::var(FAULT_AT_ENV)
            .ok()
            .and_then(|v| v.trim().parse().ok());
        let trace = std::env::var_os(FAULT_TRACE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
        (at, trace)
    });
    if at.is_none() && !trace {
        return;
    }
    let n = COUNT.fetch_add(1, Ordering::SeqCst) + 1;
    if trace {
        eprintln!("fault point {n}: {what} {}", path.display());
    }
    if at == Some(n) {
        die();
    }
}

/// Ends the process at once, as `kill -9` would.
fn die() -> ! {
    #[cfg(target_os = "linux")]
    // SAFETY: sending SIGKILL to this process; nothing runs after it.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    std::process::abort()
}

/// The folder of `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A temporary name next to `path`: hidden, and unique per process and call, so that concurrent
/// writers of the same file never share one.
fn temp_path(path: &Path) -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or(OsStr::new("out")));
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    parent_dir(path).join(name)
}

/// Flushes a written file's data and metadata to disk.
fn sync_file(path: &Path) -> std::io::Result<()> {
    // Write access, as some platforms require it to flush a file.
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .sync_all()
}

/// Flushes a folder's entries to disk, so that a rename into it is durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    match File::open(dir)?.sync_all() {
        // File systems that cannot flush a folder (some network and FUSE ones) answer EINVAL.
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Ok(()),
        other => other,
    }
}

/// Folders cannot be opened as files here; the rename is as durable as the platform makes it.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Decodes latin-1 bytes (the older MovieLens releases' item files).
pub fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

/// Reads a whole file, naming it in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| DataError::io(path, e))
}

/// Reads a UTF-8 file, naming the file and line of the first invalid byte.
pub fn read_utf8(path: &Path) -> Result<String> {
    let bytes = read(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        DataError::parse(path, line, "invalid UTF-8 (this format is read as UTF-8)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn atomic_writes_replace_the_file_and_leave_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"one").unwrap();
        let n = write_atomic_with(&path, |w| w.write_all(b"two").map(|()| 3)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), vec!["a.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        write_atomic(&path, b"old").unwrap();
        let err = publish_atomic(&path, |tmp| -> Result<()> {
            std::fs::write(tmp, b"half").unwrap();
            Err(DataError::Invalid("stop".into()))
        })
        .unwrap_err();
        assert!(matches!(err, DataError::Invalid(_)));
        let err = write_atomic_with(&path, |w| {
            w.write_all(b"half")?;
            Err::<(), _>(std::io::Error::other("stop"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("a.txt"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(names(dir.path()), vec!["a.txt"]);
    }

    #[test]
    fn publish_hands_a_temporary_path_in_the_same_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.bin");
        let seen = publish_atomic(&path, |tmp| -> Result<PathBuf> {
            std::fs::write(tmp, b"x").map_err(|e| DataError::io(tmp, e))?;
            Ok(tmp.to_path_buf())
        })
        .unwrap();
        assert_eq!(seen.parent(), Some(dir.path()));
        assert_ne!(seen, path);
        assert!(!seen.exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
