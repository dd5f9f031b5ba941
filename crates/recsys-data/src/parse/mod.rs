//! The fast delimited-text parser behind every ratings loader.
//!
//! Files are read in large chunks that end at a line break; each chunk is cut in two at a line
//! break and both halves are parsed on their own thread straight into typed columns. Memory stays
//! at the columns plus one chunk, and line numbers stay exact for error messages.

mod fields;
mod line;
mod parallel;
mod reader;
mod sink;

use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};
use fields::memchr;
use line::{Interners, parse_part};
use parallel::parse_parallel;
use reader::spawn_reader;

/// What a column of a ratings file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Item,
    Rating,
    Timestamp,
    Skip,
}

/// How to read a delimited ratings file.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Field separator: one byte (`\t`, `,`, `;`, `|`) or a string such as `::`.
    pub delimiter: Vec<u8>,
    /// Role of each column; every line must have exactly this many fields.
    pub columns: Vec<Role>,
    /// Lines to skip at the top (a header).
    pub header_lines: u64,
    /// Ids are strings rather than integers.
    pub string_ids: bool,
}

impl Layout {
    fn position(&self, role: Role) -> Option<usize> {
        self.columns.iter().position(|&r| r == role)
    }
}

/// Raw columns as read: ids as written in the file (integers, or codes into `*_names` when
/// ids are strings), ratings and timestamps.
#[derive(Debug, Default)]
pub struct RawColumns {
    pub users: Vec<u32>,
    pub items: Vec<u32>,
    pub ratings: Vec<f32>,
    pub timestamps: Option<Vec<i64>>,
    /// String ids by code, when the layout has string ids.
    pub user_names: Option<Vec<String>>,
    pub item_names: Option<Vec<String>>,
    /// The file, and the line number of row 0 (for messages about rows).
    pub path: PathBuf,
    pub first_line: u64,
}

impl RawColumns {
    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// The 1-based line of a row.
    pub fn line_of(&self, row: usize) -> u64 {
        self.first_line + row as u64
    }
}

const CHUNK: usize = 16 << 20;

/// Parses a whole ratings file. `scale` (min, max) rejects ratings outside it.
pub fn parse_file(path: &Path, layout: &Layout, scale: Option<(f32, f32)>) -> Result<RawColumns> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io(path, e))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let has_ts = layout.position(Role::Timestamp).is_some();
    for role in [Role::User, Role::Item, Role::Rating] {
        if layout.position(role).is_none() {
            return Err(DataError::format(
                path,
                format!("the column mapping names no {role:?} column"),
            ));
        }
    }

    let mut out = RawColumns {
        timestamps: has_ts.then(Vec::new),
        path: path.to_path_buf(),
        first_line: layout.header_lines + 1,
        ..Default::default()
    };
    let mut interner = layout.string_ids.then(Interners::default);

    let mut line_no: u64 = 1; // line number of the first line of the chunk at hand
    let mut header_left = layout.header_lines;
    let mut estimated = false;
    let mut feed = |chunk: &[u8], out: &mut RawColumns| -> Result<()> {
        let mut body = chunk;
        while header_left > 0 && !body.is_empty() {
            let end = memchr(b'\n', body).map_or(body.len(), |p| p + 1);
            body = &body[end..];
            header_left -= 1;
            line_no += 1;
        }
        if body.is_empty() {
            return Ok(());
        }
        if !estimated {
            // Size the columns once from the first chunk's mean line length, so they are not
            // reallocated (and briefly doubled) while growing.
            estimated = true;
            let lines = count_lines(body).max(1);
            let per_line = body.len() as f64 / lines as f64;
            let rows = ((size as f64 / per_line) * 1.02) as usize + 16;
            reserve_columns(out, rows);
        }
        let lines = match interner.as_mut() {
            Some(int) => parse_part(body, layout, scale, line_no, Some(int), out),
            None => parse_parallel(body, layout, scale, line_no, out),
        }
        .map_err(|e| e.into_error(path))?;
        line_no += lines;
        Ok(())
    };

    // SAFETY: the map is read-only and private; the file is not written by this process. (A
    // file truncated by another process while it is read is the usual caveat of any mmap.)
    let map = (size > 0)
        .then(|| unsafe { memmap2::Mmap::map(&file) }.ok())
        .flatten();
    let result = if let Some(map) = map {
        // Walk the mapped file in chunks cut at line breaks; pages of parsed chunks are
        // released as we go, so resident memory stays at the columns plus about one chunk.
        let _ = map.advise(memmap2::Advice::Sequential);
        let bytes: &[u8] = &map;
        let mut start = 0usize;
        let mut released = 0usize;
        let page = 4096usize;
        (|| -> Result<()> {
            while start < bytes.len() {
                let mut end = (start + CHUNK).min(bytes.len());
                if end < bytes.len() {
                    end = match memchr(b'\n', &bytes[end..]) {
                        Some(p) => end + p + 1,
                        None => bytes.len(),
                    };
                }
                feed(&bytes[start..end], &mut out)?;
                start = end;
                let upto = start / page * page;
                if upto > released {
                    // SAFETY: the range lies in this read-only private map and is never read
                    // again; dropping its pages only lowers resident memory.
                    let _ = unsafe {
                        map.unchecked_advise_range(
                            memmap2::UncheckedAdvice::DontNeed,
                            released,
                            upto - released,
                        )
                    };
                    released = upto;
                }
            }
            Ok(())
        })()
    } else {
        let (chunk_tx, chunk_rx) = std::sync::mpsc::sync_channel(1);
        let (recycle_tx, recycle_rx) = std::sync::mpsc::channel();
        let reader = spawn_reader(file, chunk_tx, recycle_rx);
        let result = (|| -> Result<()> {
            for buf in chunk_rx.iter() {
                let buf = buf.map_err(|e| DataError::io(path, e))?;
                feed(&buf, &mut out)?;
                let _ = recycle_tx.send(buf);
            }
            Ok(())
        })();
        drop(chunk_rx);
        let _ = reader.join();
        result
    };
    result?;
    if let Some(int) = interner {
        out.user_names = Some(int.users.names);
        out.item_names = Some(int.items.names);
    }
    if out.is_empty() {
        let detail = if layout.header_lines > 0 && line_no > 1 {
            " (header only)".to_string()
        } else {
            " (the file is empty)".to_string()
        };
        return Err(DataError::Empty {
            path: path.to_path_buf(),
            detail,
        });
    }
    Ok(out)
}

fn reserve_columns(out: &mut RawColumns, rows: usize) {
    out.users.reserve_exact(rows);
    out.items.reserve_exact(rows);
    out.ratings.reserve_exact(rows);
    huge_pages(&mut out.users);
    huge_pages(&mut out.items);
    huge_pages(&mut out.ratings);
    if let Some(t) = out.timestamps.as_mut() {
        t.reserve_exact(rows);
        huge_pages(t);
    }
}

/// Asks the kernel to back a large column's spare capacity with transparent huge pages: filling
/// hundreds of megabytes then takes a few hundred page faults instead of a hundred thousand.
fn huge_pages<T>(v: &mut Vec<T>) {
    #[cfg(target_os = "linux")]
    {
        const HUGE: usize = 2 << 20;
        let spare = v.spare_capacity_mut();
        let bytes = std::mem::size_of_val(spare);
        if bytes < 4 * HUGE {
            return;
        }
        let start = spare.as_mut_ptr() as usize;
        let aligned = start.next_multiple_of(HUGE);
        let len = (start + bytes - aligned) / HUGE * HUGE;
        // SAFETY: the range lies inside this vector's own allocation; MADV_HUGEPAGE is advice
        // that changes no contents, and a refusal (THP disabled) is harmless.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// An error found while parsing, before the path is attached.
pub(crate) struct LineError {
    line: u64,
    message: String,
}

impl LineError {
    fn into_error(self, path: &Path) -> DataError {
        DataError::parse(path, self.line, self.message)
    }
}

/// Line count of a chunk: its line breaks, plus a last line without one.
fn count_lines(part: &[u8]) -> usize {
    part.iter().filter(|&&b| b == b'\n').count()
        + usize::from(part.last().is_some_and(|&b| b != b'\n'))
}

#[cfg(test)]
mod tests;
