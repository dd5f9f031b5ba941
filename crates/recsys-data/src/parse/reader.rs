//! The read-ahead thread that feeds files which cannot be memory-mapped in chunks of whole lines.

use std::io::Read;

use super::CHUNK;

/// Reads `reader` in chunks of whole lines on a thread of its own, so reading overlaps parsing.
/// Buffers go back through `recycle` to be filled again.
pub(super) fn spawn_reader(
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
