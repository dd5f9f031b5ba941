//! Field-level helpers of the parser: byte search, unquoting, number parsing and error messages.

use super::LineError;

pub(super) fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

pub(super) fn unquote(field: &[u8]) -> &[u8] {
    if field.len() >= 2 && field[0] == b'"' && field[field.len() - 1] == b'"' {
        &field[1..field.len() - 1]
    } else {
        field
    }
}

pub(super) fn column_count(line: u64, text: &[u8], delim: &[u8], expected: usize) -> LineError {
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

pub(super) fn bad_field(line: u64, what: &str, field: &[u8]) -> LineError {
    let shown: String = String::from_utf8_lossy(field).chars().take(40).collect();
    // Words on line 1 are most often column names.
    let hint = if line == 1 && field.iter().any(u8::is_ascii_alphabetic) {
        " (if line 1 is a header, pass --header)"
    } else {
        ""
    };
    LineError {
        line,
        message: format!("{what} {shown:?} is not a valid number{hint}"),
    }
}

/// A non-negative integer id that fits in u32.
pub(super) fn parse_id(field: &[u8]) -> Option<u32> {
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

pub(super) fn parse_i64(field: &[u8]) -> Option<i64> {
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
pub(super) fn parse_f32(field: &[u8]) -> Option<f32> {
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
