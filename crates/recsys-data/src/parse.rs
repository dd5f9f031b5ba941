//! The fast delimited-text parser behind every ratings loader.
//!
//! Files are read in large chunks that end at a line break; each chunk is cut in two at a line
//! break and both halves are parsed on their own thread straight into typed columns. Memory stays
//! at the columns plus one chunk, and line numbers stay exact for error messages.

use std::collections::HashMap;
use std::io::Read;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use crate::error::{DataError, Result};

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

/// Where parsed rows go: growing columns, or a pre-sized slice of them.
trait Sink {
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64);
}

impl Sink for RawColumns {
    #[inline]
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64) {
        self.users.push(user);
        self.items.push(item);
        self.ratings.push(rating);
        if let Some(t) = self.timestamps.as_mut() {
            t.push(ts);
        }
    }
}

/// Rows written straight into the columns' spare capacity by one parser thread.
struct SliceSink<'a> {
    users: &'a mut [MaybeUninit<u32>],
    items: &'a mut [MaybeUninit<u32>],
    ratings: &'a mut [MaybeUninit<f32>],
    timestamps: Option<&'a mut [MaybeUninit<i64>]>,
    len: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn push(&mut self, user: u32, item: u32, rating: f32, ts: i64) {
        // Never more rows than line breaks were counted for the part (checked by the caller).
        let k = self.len;
        self.users[k].write(user);
        self.items[k].write(item);
        self.ratings[k].write(rating);
        if let Some(t) = self.timestamps.as_deref_mut() {
            t[k].write(ts);
        }
        self.len += 1;
    }
}

/// Reads `reader` in chunks of whole lines on a thread of its own, so reading overlaps parsing.
/// Buffers go back through `recycle` to be filled again.
fn spawn_reader(
    mut reader: std::fs::File,
    chunks: std::sync::mpsc::SyncSender<std::io::Result<Vec<u8>>>,
    recycle: std::sync::mpsc::Receiver<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut carry: Vec<u8> = Vec::new();
        let mut eof = false;
        while !eof {
            let mut buf = recycle
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(CHUNK + (1 << 16)));
            buf.clear();
            buf.extend_from_slice(&carry);
            carry.clear();
            let start = buf.len();
            let want = CHUNK.saturating_sub(start).max(1 << 16);
            buf.resize(start + want, 0);
            let mut filled = start;
            while filled < buf.len() {
                match reader.read(&mut buf[filled..]) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = chunks.send(Err(e));
                        return;
                    }
                }
            }
            buf.truncate(filled);
            if !eof {
                // Keep the partial last line for the next chunk.
                match buf.iter().rposition(|&b| b == b'\n') {
                    Some(p) => {
                        carry.extend_from_slice(&buf[p + 1..]);
                        buf.truncate(p + 1);
                    }
                    None => {
                        // A line longer than a chunk: keep reading into the carry.
                        carry = buf;
                        continue;
                    }
                }
            }
            if chunks.send(Ok(buf)).is_err() {
                return; // the parser stopped at an error
            }
        }
    })
}

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

/// Parses a chunk of whole lines on every core, each thread writing its rows straight into the
/// columns' spare capacity.
fn parse_parallel(
    body: &[u8],
    layout: &Layout,
    scale: Option<(f32, f32)>,
    line_no: u64,
    out: &mut RawColumns,
) -> std::result::Result<u64, LineError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads == 1 || body.len() < (1 << 20) {
        return parse_part(body, layout, scale, line_no, None, out);
    }
    // Cut the body into `threads` parts at line breaks and count each part's lines.
    let mut cuts = vec![0usize];
    for k in 1..threads {
        let target = body.len() * k / threads;
        let at = memchr(b'\n', &body[target..]).map_or(body.len(), |p| target + p + 1);
        cuts.push(at.max(*cuts.last().unwrap()));
    }
    cuts.push(body.len());
    let parts: Vec<&[u8]> = cuts.windows(2).map(|w| &body[w[0]..w[1]]).collect();
    let slots: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .iter()
            .map(|p| s.spawn(move || count_lines(p)))
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("counting thread panicked"))
            .collect()
    });
    let total: usize = slots.iter().sum();
    let base = out.users.len();
    if out.users.capacity() - base < total {
        // Grow by a tenth rather than doubling: large reallocations are remapped in place.
        let more = total.max(out.users.capacity() / 10);
        reserve_columns(out, more);
    }
    let mut users = &mut out.users.spare_capacity_mut()[..total];
    let mut items = &mut out.items.spare_capacity_mut()[..total];
    let mut ratings = &mut out.ratings.spare_capacity_mut()[..total];
    let mut timestamps = out
        .timestamps
        .as_mut()
        .map(|t| &mut t.spare_capacity_mut()[..total]);
    let mut sinks = Vec::with_capacity(parts.len());
    for &n in &slots {
        let (u, ru) = std::mem::take(&mut users).split_at_mut(n);
        let (i, ri) = std::mem::take(&mut items).split_at_mut(n);
        let (r, rr) = std::mem::take(&mut ratings).split_at_mut(n);
        users = ru;
        items = ri;
        ratings = rr;
        let t = timestamps.take().map(|t| {
            let (a, b) = t.split_at_mut(n);
            timestamps = Some(b);
            a
        });
        sinks.push(SliceSink {
            users: u,
            items: i,
            ratings: r,
            timestamps: t,
            len: 0,
        });
    }
    let results: Vec<std::result::Result<(usize, u64), LineError>> = std::thread::scope(|s| {
        let hs: Vec<_> = parts
            .iter()
            .zip(sinks)
            .map(|(part, mut sink)| {
                s.spawn(move || {
                    // Line numbers are relative to the part; fixed below on error.
                    parse_part(part, layout, scale, 1, None, &mut sink).map(|n| (sink.len, n))
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| h.join().expect("parser thread panicked"))
            .collect()
    });
    let mut lines = 0u64;
    let mut written = 0usize;
    for (k, r) in results.into_iter().enumerate() {
        match r {
            Ok((rows, n)) => {
                // A part can hold fewer rows than lines (a blank last line): close the gap.
                let from = slots[..k].iter().sum::<usize>();
                if from != written {
                    let range = from..from + rows;
                    out.users
                        .spare_capacity_mut()
                        .copy_within(range.clone(), written);
                    out.items
                        .spare_capacity_mut()
                        .copy_within(range.clone(), written);
                    out.ratings
                        .spare_capacity_mut()
                        .copy_within(range.clone(), written);
                    if let Some(t) = out.timestamps.as_mut() {
                        t.spare_capacity_mut().copy_within(range, written);
                    }
                }
                written += rows;
                lines += n;
            }
            Err(e) => {
                return Err(LineError {
                    line: line_no + lines + e.line - 1,
                    message: e.message,
                });
            }
        }
    }
    // SAFETY: the first `written` slots of each column's spare capacity were initialised above,
    // by the parser threads (each wrote exactly `rows` values at the start of its slice) and by
    // the compaction that moved them together.
    unsafe {
        out.users.set_len(base + written);
        out.items.set_len(base + written);
        out.ratings.set_len(base + written);
        if let Some(t) = out.timestamps.as_mut() {
            t.set_len(base + written);
        }
    }
    Ok(lines)
}

#[derive(Default)]
struct Interner {
    codes: HashMap<Vec<u8>, u32>,
    names: Vec<String>,
}

impl Interner {
    fn code(&mut self, field: &[u8], line: u64) -> std::result::Result<u32, LineError> {
        if let Some(&c) = self.codes.get(field) {
            return Ok(c);
        }
        let name = std::str::from_utf8(field).map_err(|_| LineError {
            line,
            message: "invalid UTF-8 in an id (ids are read as UTF-8)".into(),
        })?;
        let c = self.names.len() as u32;
        self.names.push(name.to_string());
        self.codes.insert(field.to_vec(), c);
        Ok(c)
    }
}

#[derive(Default)]
struct Interners {
    users: Interner,
    items: Interner,
}

/// Parses complete lines of `body` (the first at `line_no`), appending to `out`; returns the
/// number of lines consumed.
fn parse_part(
    body: &[u8],
    layout: &Layout,
    scale: Option<(f32, f32)>,
    line_no: u64,
    mut interner: Option<&mut Interners>,
    out: &mut impl Sink,
) -> std::result::Result<u64, LineError> {
    let delim = layout.delimiter.as_slice();
    let n_cols = layout.columns.len();
    let mut line = line_no;
    let mut rest = body;
    let (lo, hi) = scale.unwrap_or((f32::NEG_INFINITY, f32::INFINITY));
    let single = (delim.len() == 1).then(|| delim[0]);
    while !rest.is_empty() {
        if let (Some(d), None) = (single, interner.as_ref()) {
            // Fast path: numbers parsed while scanning, one pass over the bytes.
            if let Some((used, user, item, rating, ts)) = fast_line(rest, d, &layout.columns)
                && rating >= lo
                && rating <= hi
            {
                out.push(user, item, rating, ts);
                line += 1;
                rest = &rest[used..];
                continue;
            }
        }
        // General path: any delimiter, quotes, string ids, and every error message.
        let end = memchr(b'\n', rest).unwrap_or(rest.len());
        let mut text = &rest[..end];
        rest = if end < rest.len() {
            &rest[end + 1..]
        } else {
            &[]
        };
        if text.last() == Some(&b'\r') {
            text = &text[..text.len() - 1];
        }
        if text.is_empty() {
            if rest.is_empty() {
                line += 1;
                break; // a blank last line
            }
            return Err(LineError {
                line,
                message: "empty line".into(),
            });
        }
        let (mut user, mut item, mut rating, mut ts) = (0u32, 0u32, f32::NAN, 0i64);
        let mut col = 0usize;
        let mut field_start = 0usize;
        let mut pos = 0usize;
        loop {
            let at_end = pos >= text.len();
            let at_delim = !at_end && text[pos..].starts_with(delim);
            if !(at_end || at_delim) {
                pos += 1;
                continue;
            }
            if col >= n_cols {
                return Err(column_count(line, text, delim, n_cols));
            }
            let field = unquote(&text[field_start..pos]);
            match layout.columns[col] {
                Role::User => {
                    user = match interner.as_deref_mut() {
                        Some(i) => i.users.code(field, line)?,
                        None => parse_id(field).ok_or_else(|| bad_field(line, "user id", field))?,
                    }
                }
                Role::Item => {
                    item = match interner.as_deref_mut() {
                        Some(i) => i.items.code(field, line)?,
                        None => parse_id(field).ok_or_else(|| bad_field(line, "item id", field))?,
                    }
                }
                Role::Rating => {
                    rating = parse_f32(field).ok_or_else(|| bad_field(line, "rating", field))?;
                    if !(rating >= lo && rating <= hi) {
                        return Err(LineError {
                            line,
                            message: format!(
                                "rating {rating} outside the declared scale {lo}..{hi}"
                            ),
                        });
                    }
                }
                Role::Timestamp => {
                    ts = parse_i64(field).ok_or_else(|| bad_field(line, "timestamp", field))?;
                }
                Role::Skip => {}
            }
            col += 1;
            if at_end {
                break;
            }
            pos += delim.len();
            field_start = pos;
        }
        if col != n_cols {
            return Err(column_count(line, text, delim, n_cols));
        }
        out.push(user, item, rating, ts);
        line += 1;
    }
    Ok(line - line_no)
}

/// Parses one plain numeric line at the start of `b`: returns the bytes consumed (through the
/// line break) and the values, or `None` for anything unusual (quotes, signs, exponents, blank or
/// malformed lines), which the general path then handles or reports.
#[inline]
fn fast_line(b: &[u8], delim: u8, columns: &[Role]) -> Option<(usize, u32, u32, f32, i64)> {
    let (mut user, mut item, mut rating, mut ts) = (0u32, 0u32, 0f32, 0i64);
    let mut p = 0usize;
    let last = columns.len() - 1;
    for (c, role) in columns.iter().enumerate() {
        let start = p;
        match role {
            Role::User | Role::Item | Role::Timestamp => {
                let mut v: u64 = 0;
                while p < b.len() && b[p].is_ascii_digit() {
                    v = v * 10 + (b[p] - b'0') as u64;
                    p += 1;
                }
                let len = p - start;
                if len == 0 || len > 18 {
                    return None;
                }
                match role {
                    Role::User => user = u32::try_from(v).ok()?,
                    Role::Item => item = u32::try_from(v).ok()?,
                    _ => ts = v as i64,
                }
            }
            Role::Rating => {
                let mut int: u32 = 0;
                while p < b.len() && b[p].is_ascii_digit() && p - start < 7 {
                    int = int * 10 + (b[p] - b'0') as u32;
                    p += 1;
                }
                if p == start {
                    return None;
                }
                if p < b.len() && b[p] == b'.' {
                    p += 1;
                    let fs = p;
                    let (mut frac, mut scale) = (0u32, 1u32);
                    while p < b.len() && b[p].is_ascii_digit() && p - fs < 6 {
                        frac = frac * 10 + (b[p] - b'0') as u32;
                        scale *= 10;
                        p += 1;
                    }
                    if p == fs {
                        return None;
                    }
                    rating = (int as f64 + frac as f64 / scale as f64) as f32;
                } else {
                    rating = int as f32;
                }
            }
            Role::Skip => {
                while p < b.len() && b[p] != delim && b[p] != b'\n' && b[p] != b'\r' && b[p] != b'"'
                {
                    p += 1;
                }
            }
        }
        if c < last {
            if p < b.len() && b[p] == delim {
                p += 1;
            } else {
                return None;
            }
        }
    }
    // End of line: "\n", "\r\n", or the end of the buffer.
    if p == b.len() {
        return Some((p, user, item, rating, ts));
    }
    if b[p] == b'\r' {
        p += 1;
    }
    if p < b.len() && b[p] == b'\n' {
        return Some((p + 1, user, item, rating, ts));
    }
    None
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn unquote(field: &[u8]) -> &[u8] {
    if field.len() >= 2 && field[0] == b'"' && field[field.len() - 1] == b'"' {
        &field[1..field.len() - 1]
    } else {
        field
    }
}

fn column_count(line: u64, text: &[u8], delim: &[u8], expected: usize) -> LineError {
    let found = if delim.len() == 1 {
        text.iter().filter(|&&b| b == delim[0]).count() + 1
    } else {
        String::from_utf8_lossy(text)
            .matches(&*String::from_utf8_lossy(delim))
            .count()
            + 1
    };
    LineError {
        line,
        message: format!("expected {expected} fields, found {found}"),
    }
}

fn bad_field(line: u64, what: &str, field: &[u8]) -> LineError {
    let shown: String = String::from_utf8_lossy(field).chars().take(40).collect();
    LineError {
        line,
        message: format!("{what} {shown:?} is not a valid number"),
    }
}

/// A non-negative integer id that fits in u32.
fn parse_id(field: &[u8]) -> Option<u32> {
    if field.is_empty() || field.len() > 10 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in field {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
    }
    u32::try_from(v).ok()
}

fn parse_i64(field: &[u8]) -> Option<i64> {
    let (neg, digits) = match field.first() {
        Some(b'-') => (true, &field[1..]),
        _ => (false, field),
    };
    if digits.is_empty() || digits.len() > 18 {
        return std::str::from_utf8(field).ok()?.parse().ok();
    }
    let mut v: i64 = 0;
    for &b in digits {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as i64;
    }
    Some(if neg { -v } else { v })
}

/// Ratings: `d+` or `d+.d+` fast, anything else through the standard parser.
fn parse_f32(field: &[u8]) -> Option<f32> {
    let mut int: u32 = 0;
    let mut i = 0;
    while i < field.len() && field[i].is_ascii_digit() && i < 7 {
        int = int * 10 + (field[i] - b'0') as u32;
        i += 1;
    }
    if i > 0 && i == field.len() {
        return Some(int as f32);
    }
    if i > 0 && field[i] == b'.' && field.len() - i - 1 <= 6 && field.len() > i + 1 {
        let mut frac: u32 = 0;
        let mut scale: u32 = 1;
        for &b in &field[i + 1..] {
            if !b.is_ascii_digit() {
                return slow_f32(field);
            }
            frac = frac * 10 + (b - b'0') as u32;
            scale *= 10;
        }
        return Some((int as f64 + frac as f64 / scale as f64) as f32);
    }
    slow_f32(field)
}

fn slow_f32(field: &[u8]) -> Option<f32> {
    let v: f32 = std::str::from_utf8(field).ok()?.trim().parse().ok()?;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(parse_id(b"123"), Some(123));
        assert_eq!(parse_id(b"12a"), None);
        assert_eq!(parse_id(b""), None);
        assert_eq!(parse_id(b"99999999999"), None);
        assert_eq!(parse_f32(b"3.5"), Some(3.5));
        assert_eq!(parse_f32(b"4"), Some(4.0));
        assert_eq!(parse_f32(b"4.0"), Some(4.0));
        assert_eq!(parse_f32(b"0.5"), Some(0.5));
        assert_eq!(parse_f32(b"5e-1"), Some(0.5));
        assert_eq!(parse_f32(b"x"), None);
        assert_eq!(parse_f32(b"nan"), None);
        assert_eq!(parse_i64(b"-12"), Some(-12));
        assert_eq!(parse_i64(b"881250949"), Some(881250949));
    }
}
