//! Parsing one chunk on every core, each thread writing straight into the columns' spare capacity.

use super::fields::memchr;
use super::line::parse_part;
use super::sink::SliceSink;
use super::{Layout, LineError, RawColumns, count_lines, reserve_columns};

/// Parses a chunk of whole lines on every core, each thread writing its rows straight into the
/// columns' spare capacity.
pub(super) fn parse_parallel(
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
