//! Tests of the download, verification and installation of releases, over a loopback server.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpListener;

use zip::write::SimpleFileOptions;

use super::install::{hash_file, install_zip_expecting};
use super::*;

/// Writes a zip with the given `(name, contents)` entries (names ending in `/` are folders).
fn make_zip(path: &Path, entries: &[(&str, &str)]) {
    let mut w = zip::ZipWriter::new(File::create(path).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
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
    assert!(default_cache_dir().ends_with("recsys") || std::env::var_os("RECSYS_CACHE").is_some());
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

    let dir = install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha)).unwrap();
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
    let err =
        install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha)).unwrap_err();
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
    let err =
        install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha)).unwrap_err();
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

/// A zip of the ML-10M folder with `entries` (name under `ml-10M100K/`, contents), checked as
/// ML-10M is when no SHA-256 is published: by its size only (here, its own size).
fn install_ml10m(entries: &[(&str, &str)]) -> (Result<PathBuf>, tempfile::TempDir) {
    let src = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let zip = src.path().join("ml-10m.zip");
    let named: Vec<(String, &str)> = entries
        .iter()
        .map(|(n, c)| (format!("ml-10M100K/{n}"), *c))
        .collect();
    let refs: Vec<(&str, &str)> = named.iter().map(|(n, c)| (n.as_str(), *c)).collect();
    make_zip(&zip, &refs);
    let (_, size) = hash_file(&zip).unwrap();
    let expected = Expected {
        sha256: None,
        size: Some(size),
    };
    let out = install_zip_expecting(Release::Ml10m, &zip, cache.path(), &expected);
    (out, cache)
}

#[test]
fn ml10m_zip_without_its_required_members_is_rejected() {
    let ratings = "1::1::5::838985046\n";
    let movies = "1::Toy Story (1995)::Comedy\n";
    let tags = "1::1::funny::1139045764\n";
    let (err, cache) = install_ml10m(&[("movies.dat", movies), ("tags.dat", tags)]);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("ml-10M100K/ratings.dat"), "{err}");
    assert_eq!(entries(cache.path()), Vec::<String>::new());
    let (err, _) = install_ml10m(&[
        ("ratings.dat", ""),
        ("movies.dat", movies),
        ("tags.dat", tags),
    ]);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("ratings.dat is empty"), "{err}");
    let (ok, _cache) = install_ml10m(&[
        ("ratings.dat", ratings),
        ("movies.dat", movies),
        ("tags.dat", tags),
    ]);
    assert!(is_complete(&ok.unwrap()));
}

#[test]
fn symlink_entries_are_rejected() {
    let src = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let zip = src.path().join("link.zip");
    {
        let mut w = zip::ZipWriter::new(File::create(&zip).unwrap());
        let opts = SimpleFileOptions::default();
        w.start_file("ml-100k/u.data", opts).unwrap();
        w.write_all(b"1\t1\t5\t874965758\n").unwrap();
        w.add_symlink("ml-100k/u.item", "/etc/passwd", opts)
            .unwrap();
        w.finish().unwrap();
    }
    let (sha, _) = hash_file(&zip).unwrap();
    let err =
        install_zip_expecting(Release::Ml100k, &zip, cache.path(), &expecting(&sha)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    assert_eq!(entries(cache.path()), Vec::<String>::new());
}
