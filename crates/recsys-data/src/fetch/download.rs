//! Streaming a release's zip over HTTP into a file, hashing it on the way, with a progress bar.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Release;
use crate::error::{DataError, Result};

/// Streams `url` into `out`, hashing on the way; returns the SHA-256 (hex) and the byte count.
pub(super) fn download(
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
