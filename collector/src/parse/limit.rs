//! Byte limits on event content: bounded appends that cut cleanly.

/// Appends as much of `bytes` to `buf` as fits within `max` bytes in total.
///
/// Returns `true` when something was cut. A cut never leaves half a UTF-8
/// character at the end, so valid text stays valid. After a cut the caller
/// must stop appending, or later bytes would follow the gap.
///
/// Capacity grows geometrically but never past `max`, so a pending event
/// holds at most `max` bytes however its pieces arrive.
pub(crate) fn append_bounded(buf: &mut Vec<u8>, bytes: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(buf.len());
    let take = bytes.len().min(room);
    if take > 0 {
        let need = buf.len() + take;
        if need > buf.capacity() {
            let target = need.max(buf.capacity().saturating_mul(2)).min(max);
            buf.reserve_exact(target - buf.len());
        }
        buf.extend_from_slice(&bytes[..take]);
    }
    let cut = take < bytes.len();
    if cut {
        trim_split_char(buf);
    }
    cut
}

/// Cuts an owned buffer down to `max` bytes; returns `true` if it was longer.
pub(crate) fn truncate_bounded(buf: &mut Vec<u8>, max: usize) -> bool {
    if buf.len() <= max {
        return false;
    }
    buf.truncate(max);
    trim_split_char(buf);
    true
}

/// Drops a trailing UTF-8 sequence that a cut left incomplete.
fn trim_split_char(buf: &mut Vec<u8>) {
    let len = buf.len();
    for back in 1..=len.min(3) {
        let byte = buf[len - back];
        if byte & 0xC0 == 0x80 {
            // A continuation byte: look further back for the lead byte.
            continue;
        }
        let width = match byte {
            0xF0..=0xF4 => 4,
            0xE0..=0xEF => 3,
            0xC2..=0xDF => 2,
            // ASCII, or a byte that never starts a sequence: nothing to trim.
            _ => 1,
        };
        if width > back {
            buf.truncate(len - back);
        }
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_bounded_cuts_at_the_limit() {
        // Start, appended bytes, limit, result, whether cut.
        type Case<'a> = (&'a [u8], &'a [u8], usize, &'a [u8], bool);
        let table: &[Case<'_>] = &[
            (b"", b"abc", 10, b"abc", false),
            (b"ab", b"cd", 4, b"abcd", false),
            (b"ab", b"cde", 4, b"abcd", true),
            (b"abcd", b"e", 4, b"abcd", true),
            (b"", b"", 0, b"", false),
            (b"", b"x", 0, b"", true),
            // "é" is two bytes: a cut inside it drops the lead byte too.
            (b"ab", "cé".as_bytes(), 4, b"abc", true),
            // "€" is three bytes.
            (b"", "a€".as_bytes(), 3, b"a", true),
            (b"", "a€".as_bytes(), 4, "a€".as_bytes(), false),
            // Four-byte character cut after three bytes.
            (b"", "😀".as_bytes(), 3, b"", true),
            // Invalid bytes are not UTF-8 sequences: kept as they are.
            (b"", b"\xff\xfe\xfd", 2, b"\xff\xfe", true),
        ];
        for &(start, bytes, max, want, want_cut) in table {
            let mut buf = start.to_vec();
            let cut = append_bounded(&mut buf, bytes, max);
            assert_eq!(
                (buf.as_slice(), cut),
                (want, want_cut),
                "{start:?} + {bytes:?} max {max}"
            );
            assert!(
                buf.capacity() <= max.max(start.len()),
                "capacity {} over {max}",
                buf.capacity()
            );
        }
    }

    #[test]
    fn truncate_bounded_keeps_whole_characters() {
        let table: &[(&str, usize, &str, bool)] = &[
            ("hello", 10, "hello", false),
            ("hello", 5, "hello", false),
            ("hello", 3, "hel", true),
            ("héllo", 2, "h", true),
            ("héllo", 3, "hé", true),
        ];
        for &(text, max, want, want_cut) in table {
            let mut buf = text.as_bytes().to_vec();
            let cut = truncate_bounded(&mut buf, max);
            assert_eq!(
                (buf.as_slice(), cut),
                (want.as_bytes(), want_cut),
                "{text:?} max {max}"
            );
        }
    }
}
