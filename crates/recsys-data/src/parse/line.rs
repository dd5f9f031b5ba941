//! Parsing lines into rows: the fast numeric path, the general path, and string-id interning.

use std::collections::HashMap;

use super::fields::{bad_field, column_count, memchr, parse_f32, parse_i64, parse_id, unquote};
use super::sink::Sink;
use super::{Layout, LineError, Role};

#[derive(Default)]
pub(super) struct Interner {
    codes: HashMap<Vec<u8>, u32>,
    pub(super) names: Vec<String>,
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
pub(super) struct Interners {
    pub(super) users: Interner,
    pub(super) items: Interner,
}

/// Parses complete lines of `body` (the first at `line_no`), appending to `out`; returns the
/// number of lines consumed.
pub(super) fn parse_part(
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
                    // Past 18 digits the value is not kept (the line goes to the general
                    // path), so it stops growing rather than overflow.
                    if p - start < 18 {
                        v = v * 10 + (b[p] - b'0') as u64;
                    }
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
