//! A log file's content identity, for event ids and checkpoints.

use memchr::memchr;
use xxhash_rust::xxh3::xxh3_64;

/// How many bytes identify a file whose first line is longer.
pub const FINGERPRINT_BYTES: usize = 4096;

/// The identity of a log file: xxh3-64 of its first line up to the first
/// `\n` (the `\n` excluded), or of its first [`FINGERPRINT_BYTES`] bytes if
/// no `\n` comes within them.
///
/// `head` is the start of the file, at least [`FINGERPRINT_BYTES`] long if
/// the file is. Returns `None` while the file has neither a whole first line
/// nor that many bytes: it is too young to identify; read it again later.
///
/// The identity depends only on content, so it survives renames such as the
/// kubelet's rotation of `0.log` to `0.log.<timestamp>`. Every CRI and
/// docker line starts with a nanosecond timestamp and names its stream, so
/// two files sharing a first line, and so an identity, is practically
/// impossible. The checkpoint pairs it with the device and inode besides.
pub fn fingerprint(head: &[u8]) -> Option<u64> {
    let window = &head[..head.len().min(FINGERPRINT_BYTES)];
    match memchr(b'\n', window) {
        Some(end) => Some(xxh3_64(&window[..end])),
        None if window.len() == FINGERPRINT_BYTES => Some(xxh3_64(window)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_needs_a_line_or_a_full_window() {
        let long = vec![b'x'; FINGERPRINT_BYTES + 10];
        let exact = vec![b'x'; FINGERPRINT_BYTES];
        let table: &[(&[u8], Option<u64>)] = &[
            (b"", None),
            (b"2026-11-27T20:17:29.1Z stdout F partial first line", None),
            (b"first\n", Some(xxh3_64(b"first"))),
            (b"first\nsecond\n", Some(xxh3_64(b"first"))),
            (b"\n", Some(xxh3_64(b""))),
            (&exact, Some(xxh3_64(&exact))),
            (&long, Some(xxh3_64(&exact))),
        ];
        for &(head, want) in table {
            assert_eq!(fingerprint(head), want, "head of {} bytes", head.len());
        }
    }

    #[test]
    fn fingerprint_ignores_what_follows_the_first_line() {
        // A growing or renamed file keeps its identity.
        let line = b"2026-11-27T20:17:29.120Z stdout F hello\n";
        let mut grown = line.to_vec();
        grown.extend_from_slice(b"2026-11-27T20:17:30Z stdout F more\n");
        assert_eq!(fingerprint(line), fingerprint(&grown));
        assert_ne!(
            fingerprint(line),
            fingerprint(b"2026-11-27T20:17:29.121Z stdout F hello\n")
        );
    }

    #[test]
    fn a_newline_after_the_window_is_not_looked_for() {
        let mut head = vec![b'y'; FINGERPRINT_BYTES];
        head.push(b'\n');
        assert_eq!(
            fingerprint(&head),
            Some(xxh3_64(&head[..FINGERPRINT_BYTES]))
        );
    }
}
