//! The record's JSON encoding, written by hand for the collector's hot path.
//!
//! serde's derived `Serialize` through serde_json was a quarter of the
//! collector's CPU into Kafka, a third of it escaping strings one byte at a
//! time. This encoder writes the same bytes (a property test compares it with
//! `serde_json::to_vec` on arbitrary events) but scans strings eight bytes at
//! a time for the three things JSON must escape: `"`, `\` and control
//! characters. Log lines rarely contain any, so most strings are one copy.
//!
//! Field order and the skipped empty fields follow the struct definitions
//! and their `skip_serializing_if` attributes in `lib.rs`; a field added
//! there must be added here too (the property test fails until it is).

use std::collections::BTreeMap;
use std::io::Write as _;

use crate::{Event, Flag};

/// Appends the compact JSON of `event` to `out`.
pub(crate) fn write_event(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"@timestamp\":");
    write_str(out, &event.timestamp);
    out.extend_from_slice(b",\"message\":");
    write_str(out, &event.message);
    out.extend_from_slice(b",\"stream\":");
    write_str(out, event.stream.as_str());

    let log = &event.log;
    out.extend_from_slice(b",\"log\":{\"file\":{\"path\":");
    write_str(out, &log.file.path);
    out.extend_from_slice(b"},\"offset\":");
    write_u64(out, log.offset);
    if !log.flags.is_empty() {
        out.extend_from_slice(b",\"flags\":[");
        for (i, flag) in log.flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_str(out, flag_name(*flag));
        }
        out.push(b']');
    }
    if let Some(level) = &log.level {
        out.extend_from_slice(b",\"level\":");
        write_str(out, level);
    }

    let k = &event.kubernetes;
    out.extend_from_slice(b"},\"kubernetes\":{\"namespace\":");
    write_str(out, &k.namespace);
    out.extend_from_slice(b",\"pod\":{\"name\":");
    write_str(out, &k.pod.name);
    out.extend_from_slice(b",\"uid\":");
    write_str(out, &k.pod.uid);
    out.extend_from_slice(b"},\"container\":{\"name\":");
    write_str(out, &k.container.name);
    if let Some(image) = &k.container.image {
        out.extend_from_slice(b",\"image\":");
        write_str(out, image);
    }
    out.push(b'}');
    if let Some(node) = &k.node {
        out.extend_from_slice(b",\"node\":{\"name\":");
        write_str(out, &node.name);
        out.push(b'}');
    }
    if !k.labels.is_empty() {
        out.extend_from_slice(b",\"labels\":");
        write_map(out, &k.labels);
    }
    if !k.annotations.is_empty() {
        out.extend_from_slice(b",\"annotations\":");
        write_map(out, &k.annotations);
    }
    if let Some(owner) = &k.owner {
        out.extend_from_slice(b",\"owner\":{\"kind\":");
        write_str(out, &owner.kind);
        out.extend_from_slice(b",\"name\":");
        write_str(out, &owner.name);
        out.push(b'}');
    }

    out.extend_from_slice(b"},\"container\":{");
    if let Some(id) = &event.container.id {
        out.extend_from_slice(b"\"id\":");
        write_str(out, id);
        out.push(b',');
    }
    out.extend_from_slice(b"\"runtime\":");
    write_str(out, &event.container.runtime);
    out.extend_from_slice(b"},\"host\":{\"name\":");
    write_str(out, &event.host.name);
    // The id's text form is hex digits and `-`: nothing to escape.
    out.extend_from_slice(b"},\"event\":{\"id\":\"");
    let _ = write!(out, "{}", event.event.id);
    out.push(b'"');
    if let Some(ingested) = &event.event.ingested {
        out.extend_from_slice(b",\"ingested\":");
        write_str(out, ingested);
    }
    out.extend_from_slice(b"},\"kelp\":{\"schema\":");
    write_u64(out, u64::from(event.kelp.schema));
    out.extend_from_slice(b"}}");
}

fn flag_name(flag: Flag) -> &'static str {
    match flag {
        Flag::Truncated => "truncated",
        Flag::Partial => "partial",
        Flag::Multiline => "multiline",
        Flag::InvalidUtf8 => "invalid_utf8",
    }
}

fn write_map(out: &mut Vec<u8>, map: &BTreeMap<String, String>) {
    out.push(b'{');
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_str(out, value);
    }
    out.push(b'}');
}

fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes is `"`, `\` or below 0x20. Exact: the
/// borrow tricks give false positives only above a byte that does match.
fn needs_escape(word: u64) -> bool {
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = word ^ (ONES * u64::from(b'"'));
    let quote = quote.wrapping_sub(ONES) & !quote & HIGHS;
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let backslash = backslash.wrapping_sub(ONES) & !backslash & HIGHS;
    (control | quote | backslash) != 0
}

/// A JSON string, escaped exactly as serde_json does: the short forms for
/// `\b \t \n \f \r " \`, `\u00xx` (lowercase hex) for other control
/// characters, everything else (DEL and non-ASCII included) as is.
fn write_str(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    let mut run_start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0a => b'n',
            0x0c => b'f',
            0x0d => b'r',
            0x00..=0x1f => b'u',
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run_start..i]);
        out.push(b'\\');
        out.push(short);
        if short == b'u' {
            out.extend_from_slice(&[
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
        }
        i += 1;
        run_start = i;
    }
    out.extend_from_slice(&bytes[run_start..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_serde_json() {
        let table = [
            "",
            "plain ascii line of more than eight bytes",
            "quote \" and backslash \\ and tab \t",
            "\u{0}\u{1}\u{1f}\u{7f} controls and DEL",
            "newline at the end of a long enough line\n",
            "ünïcödé ✓ 日本語 \u{fffd} emoji 🦀",
            "\"\"\"\"\"\"\"\"\"",
            "\r\n\r\n\r\n\r\n",
            "12345678\"",
        ];
        for s in table {
            let mut ours = Vec::new();
            write_str(&mut ours, s);
            let theirs = serde_json::to_vec(s).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&ours),
                String::from_utf8_lossy(&theirs),
                "{s:?}"
            );
        }
    }

    #[test]
    fn numbers_are_decimal() {
        for n in [0, 7, 10, 99, 1234567890, u64::MAX] {
            let mut ours = Vec::new();
            write_u64(&mut ours, n);
            assert_eq!(ours, n.to_string().into_bytes());
        }
    }

    #[test]
    fn the_escape_scan_finds_each_byte_in_every_lane() {
        for lane in 0..8 {
            for b in 0u8..=255 {
                let mut word = [b'a'; 8];
                word[lane] = b;
                let want = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    needs_escape(u64::from_le_bytes(word)),
                    want,
                    "byte {b:#x} in lane {lane}"
                );
            }
        }
    }
}
