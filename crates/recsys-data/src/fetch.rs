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

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};

/// Where GroupLens serves the releases.
const BASE_URL: &str = "https://files.grouplens.org/datasets/movielens";

/// Name of the marker file written into an extracted release once it is complete. It holds the
/// release name and the SHA-256 of the zip it came from.
pub const MARKER: &str = ".recsys-complete";

/// A MovieLens release that GroupLens publishes as a zip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Release {
    /// MovieLens 100K (1998): 100,000 ratings, 943 users, 1,682 movies.
    Ml100k,
    /// MovieLens 1M (2003): 1,000,209 ratings, 6,040 users, 3,706 movies.
    Ml1m,
    /// MovieLens 10M (2009): 10,000,054 ratings, 69,878 users, 10,677 movies.
    Ml10m,
    /// MovieLens 20M (2015): 20,000,263 ratings, 138,493 users, 26,744 movies.
    Ml20m,
    /// MovieLens 25M (2019): 25,000,095 ratings, 162,541 users, 59,047 movies.
    Ml25m,
    /// The small "latest" extract (version of 9/2018): 100,836 ratings, 610 users, 9,724 movies.
    MlLatestSmall,
}

impl Release {
    /// Every release, smallest first.
    pub const ALL: [Release; 6] = [
        Release::Ml100k,
        Release::MlLatestSmall,
        Release::Ml1m,
        Release::Ml10m,
        Release::Ml20m,
        Release::Ml25m,
    ];

    /// The release's name, as GroupLens names the zip: `ml-100k`, `ml-1m`, ...
    pub fn name(self) -> &'static str {
        match self {
            Release::Ml100k => "ml-100k",
            Release::Ml1m => "ml-1m",
            Release::Ml10m => "ml-10m",
            Release::Ml20m => "ml-20m",
            Release::Ml25m => "ml-25m",
            Release::MlLatestSmall => "ml-latest-small",
        }
    }

    /// The official download address, `https://files.grouplens.org/datasets/movielens/<name>.zip`.
    pub fn url(self) -> String {
        format!("{BASE_URL}/{}.zip", self.name())
    }

    /// The folder the zip extracts to (`ml-10M100K` for ml-10m; the release name otherwise).
    pub fn folder(self) -> &'static str {
        match self {
            Release::Ml10m => "ml-10M100K",
            other => other.name(),
        }
    }

    /// Size of the official zip in bytes.
    ///
    /// Sources: the tensorflow/datasets checksum file (see [`Release::sha256`]) for all but
    /// ml-10m, whose size (65,566,137) is pinned by public download scripts that check it.
    pub fn size(self) -> u64 {
        match self {
            Release::Ml100k => 4_924_029,
            Release::Ml1m => 5_917_549,
            Release::Ml10m => 65_566_137,
            Release::Ml20m => 198_702_078,
            Release::Ml25m => 261_978_986,
            Release::MlLatestSmall => 978_202,
        }
    }

    /// SHA-256 of the official zip, lowercase hex; `None` where no published value was found
    /// (ml-10m), in which case a download is checked by its [size](Release::size) only.
    ///
    /// Source: tensorflow/datasets, `tensorflow_datasets/url_checksums/movielens.txt`, which
    /// pins URL, byte size and SHA-256 of ml-100k, ml-1m, ml-20m, ml-25m and ml-latest-small.
    /// Each value is also pinned, identically, by other public code: a Julia `DataDeps`
    /// registration of the GroupLens data (ml-20m, ml-latest-small) and several download scripts
    /// that verify the archives (ml-100k, ml-1m, ml-20m, ml-25m).
    ///
    /// For ml-10m only GroupLens' MD5 (`ce571fd55effeba0271552578f2648bd`) is published; no
    /// public SHA-256 could be found, and none is invented here.
    ///
    /// ml-latest-small is re-issued by GroupLens from time to time; the value is that of the
    /// 9/2018 issue, so a later issue is rejected rather than silently loaded.
    pub fn sha256(self) -> Option<&'static str> {
        match self {
            Release::Ml100k => {
                Some("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229")
            }
            Release::Ml1m => {
                Some("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20")
            }
            Release::Ml10m => None,
            Release::Ml20m => {
                Some("96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3")
            }
            Release::Ml25m => {
                Some("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa")
            }
            Release::MlLatestSmall => {
                Some("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436")
            }
        }
    }
}

impl fmt::Display for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Release {
    type Err = DataError;

    /// Parses `ml-100k`, `ml-1m`, `ml-10m`, `ml-20m`, `ml-25m` or `ml-latest-small`
    /// (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        let key = s.trim().to_ascii_lowercase();
        Release::ALL
            .into_iter()
            .find(|r| r.name() == key)
            .ok_or_else(|| {
                let names: Vec<&str> = Release::ALL.iter().map(|r| r.name()).collect();
                DataError::Invalid(format!(
                    "unknown MovieLens release {s:?}; expected one of {}",
                    names.join(", ")
                ))
            })
    }
}

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

/// Streams `url` into `out`, hashing on the way; returns the SHA-256 (hex) and the byte count.
fn download(
    url: &str,
    out: &mut File,
    out_path: &Path,
    progress: bool,
    size_hint: Option<u64>,
    release: Release,
) -> Result<(String, u64)> {
    let failed = |message: String| DataError::Download {
        url: url.to_string(),
        message,
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .user_agent(concat!("recsys/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let mut response = agent.get(url).call().map_err(|e| {
        failed(format!(
            "{e} (no network? download the zip by other means and install it with `recsys data fetch <release> --zip <file>`)"
        ))
    })?;
    let total = response.body().content_length().or(size_hint);
    let bar = (progress && io::stderr().is_terminal()).then(|| progress_bar(total, release));

    let mut reader = response.body_mut().as_reader();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut received = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(failed(format!(
                    "connection lost after {received} bytes: {e}"
                )));
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|e| DataError::io(out_path, e))?;
        received += n as u64;
        if let Some(bar) = &bar {
            bar.inc(n as u64);
        }
    }
    out.sync_all().map_err(|e| DataError::io(out_path, e))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok((format!("{:x}", hasher.finalize()), received))
}

fn progress_bar(total: Option<u64>, release: Release) -> indicatif::ProgressBar {
    let bar = match total {
        Some(len) => indicatif::ProgressBar::new(len),
        None => indicatif::ProgressBar::new_spinner(),
    };
    let template = "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}";
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(format!("downloading {release}"));
    bar
}

fn install_zip_expecting(
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
fn hash_file(path: &Path) -> Result<(String, u64)> {
    let file = File::open(path).map_err(|e| DataError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut hasher = Sha256::new();
    let size = io::copy(&mut reader, &mut hasher).map_err(|e| DataError::io(path, e))?;
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// Extracts a verified zip into a temporary folder in `cache_dir`, writes the marker, and renames
/// the release folder into place (replacing an incomplete one).
fn install_verified(
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

/// Extracts every entry of a zip under `dest`, refusing entries that would land outside it.
fn extract(zip_path: &Path, dest: &Path) -> Result<()> {
    let file = File::open(zip_path).map_err(|e| DataError::io(zip_path, e))?;
    let mut archive = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|e| DataError::format(zip_path, format!("not a readable zip archive: {e}")))?;
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
        let out = dest.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&out).map_err(|e| DataError::io(&out, e))?;
            continue;
        }
        if let Some(parent) = out.parent() {
            fs::create_dir_all(parent).map_err(|e| DataError::io(parent, e))?;
        }
        let mut file = File::create(&out).map_err(|e| DataError::io(&out, e))?;
        // Read errors here include CRC mismatches of damaged entries.
        io::copy(&mut entry, &mut file)
            .map_err(|e| DataError::format(zip_path, format!("entry {name:?}: {e}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use zip::write::SimpleFileOptions;

    /// Writes a zip with the given `(name, contents)` entries (names ending in `/` are folders).
    fn make_zip(path: &Path, entries: &[(&str, &str)]) {
        let mut w = zip::ZipWriter::new(File::create(path).unwrap());
        let opts =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        for (name, contents) in entries {
            if name.ends_with('/') {
                w.add_directory(*name, opts).unwrap();
            } else {
                w.start_file(*name, opts).unwrap();
                w.write_all(contents.as_bytes()).unwrap();
            }
        }
        w.finish().unwrap();
    }

    fn ml100k_zip(dir: &Path) -> PathBuf {
        let path = dir.join("ml-100k.zip");
        make_zip(
            &path,
            &[
                ("ml-100k/", ""),
                ("ml-100k/u.data", "1\t1\t5\t874965758\n2\t1\t3\t876893171\n"),
                ("ml-100k/u.item", "1|Toy Story (1995)|01-Jan-1995||\n"),
            ],
        );
        path
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(dir) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    fn expecting(sha256: &str) -> Expected {
        Expected {
            sha256: Some(sha256.to_string()),
            size: None,
        }
    }

    /// Serves `body` once over HTTP on a loopback port, announcing `announced` bytes.
    fn serve_once(body: Vec<u8>, announced: usize) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/ml-100k.zip", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        });
        (url, handle)
    }

    #[test]
    fn release_names_round_trip() {
        for r in Release::ALL {
            assert_eq!(r.name().parse::<Release>().unwrap(), r);
            assert_eq!(r.to_string(), r.name());
            assert_eq!(
                r.url(),
                format!(
                    "https://files.grouplens.org/datasets/movielens/{}.zip",
                    r.name()
                )
            );
            if let Some(h) = r.sha256() {
                assert!(
                    h.len() == 64
                        && h.bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                );
            }
            assert!(r.size() > 0);
        }
        assert_eq!("ML-1M".parse::<Release>().unwrap(), Release::Ml1m);
        assert_eq!(Release::Ml10m.folder(), "ml-10M100K");
        assert_eq!(Release::MlLatestSmall.folder(), "ml-latest-small");
        let err = "ml-5m".parse::<Release>().unwrap_err().to_string();
        assert!(
            err.contains("ml-5m") && err.contains("ml-latest-small"),
            "{err}"
        );
    }

    #[test]
    fn cache_dir_resolution() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == k)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        assert_eq!(
            cache_dir_from(env(&[
                ("RECSYS_CACHE", "/data/rc"),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ])),
            PathBuf::from("/data/rc")
        );
        assert_eq!(
            cache_dir_from(env(&[
                ("RECSYS_CACHE", ""),
                ("XDG_CACHE_HOME", "/x"),
                ("HOME", "/h")
            ])),
            PathBuf::from("/x/recsys")
        );
        assert_eq!(
            cache_dir_from(env(&[("XDG_CACHE_HOME", "relative"), ("HOME", "/h")])),
            PathBuf::from("/h/.cache/recsys")
        );
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h")])),
            PathBuf::from("/h/.cache/recsys")
        );
        assert!(
            default_cache_dir().ends_with("recsys") || std::env::var_os("RECSYS_CACHE").is_some()
        );
    }

    #[test]
    fn wrong_checksum_is_rejected_and_leaves_nothing() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let zip = ml100k_zip(src.path());
        let (actual, _) = hash_file(&zip).unwrap();

        let err = install_zip(Release::Ml100k, &zip, cache.path()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Format { .. }), "{err:?}");
        assert!(msg.contains(Release::Ml100k.sha256().unwrap()), "{msg}");
        assert!(msg.contains(&actual), "{msg}");
        assert_eq!(entries(cache.path()), Vec::<String>::new());
        assert!(zip.exists(), "the caller's zip is left alone");
        assert!(!is_complete(&cache.path().join("ml-100k")));
    }

    #[test]
    fn good_zip_is_installed_with_marker() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let zip = ml100k_zip(src.path());
        let (sha, _) = hash_file(&zip).unwrap();

        // An incomplete earlier attempt (no marker) is replaced.
        fs::create_dir_all(cache.path().join("ml-100k")).unwrap();
        fs::write(cache.path().join("ml-100k/u.data"), "half").unwrap();

        let dir =
            install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha)).unwrap();
        assert_eq!(dir, cache.path().join("ml-100k"));
        assert!(is_complete(&dir));
        assert!(fs::read_to_string(dir.join(MARKER)).unwrap().contains(&sha));
        assert_eq!(
            fs::read_to_string(dir.join("u.data")).unwrap(),
            "1\t1\t5\t874965758\n2\t1\t3\t876893171\n"
        );
        assert_eq!(entries(cache.path()), vec!["ml-100k"]);

        // Complete: fetch answers from the cache without touching the network.
        assert_eq!(fetch(Release::Ml100k, cache.path(), false).unwrap(), dir);
    }

    #[test]
    fn zip_without_the_release_folder_is_rejected() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let zip = src.path().join("other.zip");
        make_zip(&zip, &[("something-else/u.data", "1\t1\t5\t1\n")]);
        let (sha, _) = hash_file(&zip).unwrap();
        let err = install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha))
            .unwrap_err();
        assert!(err.to_string().contains("no folder ml-100k/"), "{err}");
        assert_eq!(entries(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn entries_escaping_the_folder_are_rejected() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let zip = src.path().join("evil.zip");
        make_zip(&zip, &[("ml-100k/u.data", "x"), ("../../escaped.txt", "x")]);
        let (sha, _) = hash_file(&zip).unwrap();
        let err = install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha))
            .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
        assert_eq!(entries(cache.path()), Vec::<String>::new());
        assert!(!src.path().parent().unwrap().join("escaped.txt").exists());
    }

    #[test]
    fn size_is_checked_without_a_hash() {
        let expected = Expected {
            sha256: None,
            size: Some(10),
        };
        assert!(expected.check("ab", 10).is_ok());
        let msg = expected.check("ab", 11).unwrap_err();
        assert!(msg.contains("expected 10 bytes, got 11"), "{msg}");
    }

    #[test]
    fn offline_gives_a_clean_download_error() {
        let cache = tempfile::tempdir().unwrap();
        let url = "http://127.0.0.1:9/ml-100k.zip";
        let err = fetch_from(
            Release::Ml100k,
            url,
            cache.path(),
            true,
            &Expected::of(Release::Ml100k),
        )
        .unwrap_err();
        match &err {
            DataError::Download { url: u, message } => {
                assert_eq!(u, url);
                assert!(!message.is_empty());
            }
            other => panic!("expected a download error, got {other:?}"),
        }
        assert!(err.to_string().contains(url));
        assert_eq!(entries(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn download_verify_and_install_over_http() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let bytes = fs::read(ml100k_zip(src.path())).unwrap();
        let (sha, _) = hash_file(&src.path().join("ml-100k.zip")).unwrap();

        let (url, server) = serve_once(bytes.clone(), bytes.len());
        let dir = fetch_from(Release::Ml100k, &url, cache.path(), false, &expecting(&sha)).unwrap();
        server.join().unwrap();
        assert!(is_complete(&dir));
        assert_eq!(entries(cache.path()), vec!["ml-100k"]);
    }

    #[test]
    fn corrupt_download_is_rejected_and_removed() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        let bytes = fs::read(ml100k_zip(src.path())).unwrap();
        let (url, server) = serve_once(bytes.clone(), bytes.len());
        let err = fetch_from(
            Release::Ml100k,
            &url,
            cache.path(),
            false,
            &Expected::of(Release::Ml100k),
        )
        .unwrap_err();
        server.join().unwrap();
        let msg = err.to_string();
        assert!(matches!(err, DataError::Download { .. }), "{err:?}");
        assert!(
            msg.contains(&url) && msg.contains("sha256 mismatch"),
            "{msg}"
        );
        assert!(msg.contains(Release::Ml100k.sha256().unwrap()), "{msg}");
        assert_eq!(entries(cache.path()), Vec::<String>::new());
    }

    #[test]
    fn truncated_download_is_rejected_and_removed() {
        let cache = tempfile::tempdir().unwrap();
        let (url, server) = serve_once(vec![b'P'; 100], 5_000);
        let err = fetch_from(
            Release::Ml100k,
            &url,
            cache.path(),
            false,
            &Expected::of(Release::Ml100k),
        )
        .unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, DataError::Download { .. }), "{err:?}");
        assert_eq!(entries(cache.path()), Vec::<String>::new());
    }
}
