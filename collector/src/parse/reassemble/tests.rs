use proptest::prelude::*;

use super::*;

/// A piece: offset, stream, partial, content, second of the minute.
type Piece<'a> = (u64, Stream, bool, &'a str, u32);
/// An event: offset, stream, content, flags, second of the minute.
type Out<'a> = (u64, Stream, &'a str, &'a [Flag], u32);

const OUT: Stream = Stream::Stdout;
const ERR: Stream = Stream::Stderr;

fn timestamp(second: u32) -> Timestamp {
    Timestamp::parse(format!("2026-11-27T20:17:{second:02}Z").as_bytes()).unwrap()
}

fn line(stream: Stream, partial: bool, content: &str, second: u32) -> ParsedLine<'_> {
    ParsedLine {
        timestamp: timestamp(second),
        stream,
        partial,
        content: Cow::Borrowed(content.as_bytes()),
    }
}

#[track_caller]
fn check(max: usize, pieces: &[Piece<'_>], want: &[Out<'_>]) {
    let mut reassembler = Reassembler::new(max);
    let mut got = Vec::new();
    for &(offset, stream, partial, content, second) in pieces {
        got.extend(reassembler.push(offset, line(stream, partial, content, second)));
    }
    reassembler.flush(&mut got);
    let want: Vec<Assembled> = want
        .iter()
        .map(|&(offset, stream, content, flags, second)| Assembled {
            offset,
            timestamp: timestamp(second),
            stream,
            content: content.as_bytes().to_vec(),
            flags: flags.to_vec(),
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn reassembler_joins_split_lines_per_stream() {
    use Flag::{Partial, Truncated};
    #[rustfmt::skip]
    let table: &[(usize, &[Piece<'_>], &[Out<'_>])] = &[
        // Whole lines pass through.
        (100, &[(0, OUT, false, "a", 1), (10, ERR, false, "b", 2)],
              &[(0, OUT, "a", &[], 1), (10, ERR, "b", &[], 2)]),
        // P, P, F: one event with the first piece's offset and time.
        (100, &[(0, OUT, true, "one ", 1), (20, OUT, true, "two ", 2), (40, OUT, false, "three", 3)],
              &[(0, OUT, "one two three", &[Partial], 1)]),
        // The other stream goes on in between.
        (100, &[(0, OUT, true, "x", 1), (20, ERR, false, "err", 2), (40, OUT, false, "y", 3)],
              &[(20, ERR, "err", &[], 2), (0, OUT, "xy", &[Partial], 1)]),
        (100, &[(0, OUT, true, "o1", 1), (10, ERR, true, "e1", 1), (20, ERR, false, "e2", 2), (30, OUT, false, "o2", 2)],
              &[(10, ERR, "e1e2", &[Partial], 1), (0, OUT, "o1o2", &[Partial], 1)]),
        // An empty final piece ends the run.
        (100, &[(0, OUT, true, "abc", 1), (10, OUT, false, "", 2)],
              &[(0, OUT, "abc", &[Partial], 1)]),
        // Over the limit: cut, flagged, and the next line is untouched.
        (10, &[(0, OUT, true, "aaaaaa", 1), (10, OUT, true, "bbbbbb", 2), (20, OUT, true, "cccccc", 3),
               (30, OUT, false, "dddddd", 4), (40, OUT, false, "ok", 5)],
             &[(0, OUT, "aaaaaabbbb", &[Partial, Truncated], 1), (40, OUT, "ok", &[], 5)]),
        (10, &[(0, OUT, false, "0123456789AB", 1), (20, OUT, false, "0123456789", 2)],
             &[(0, OUT, "0123456789", &[Truncated], 1), (20, OUT, "0123456789", &[], 2)]),
        // A cut never splits a character.
        (5, &[(0, OUT, true, "abcd", 1), (10, OUT, false, "éé", 2)],
            &[(0, OUT, "abcd", &[Partial, Truncated], 1)]),
        (0, &[(0, OUT, false, "x", 1), (10, OUT, false, "", 2)],
            &[(0, OUT, "", &[Truncated], 1), (10, OUT, "", &[], 2)]),
        // A run cut off by the end of the file is flushed, in file order.
        (100, &[(0, ERR, true, "late", 1), (10, OUT, false, "a", 2), (20, OUT, true, "b", 3)],
              &[(10, OUT, "a", &[], 2), (0, ERR, "late", &[Partial], 1), (20, OUT, "b", &[Partial], 3)]),
    ];
    for &(max, pieces, want) in table {
        check(max, pieces, want);
    }
}

#[test]
fn owned_docker_content_moves_without_copy() {
    let mut reassembler = Reassembler::new(8);
    let content = b"docker line".to_vec();
    let line = ParsedLine {
        timestamp: timestamp(1),
        stream: OUT,
        partial: false,
        content: Cow::Owned(content),
    };
    let event = reassembler.push(7, line).unwrap();
    assert_eq!(
        (event.content.as_slice(), event.flags.as_slice()),
        (&b"docker l"[..], &[Flag::Truncated][..])
    );
}

#[test]
fn pending_offset_holds_back_the_checkpoint() {
    let mut reassembler = Reassembler::new(100);
    assert_eq!(reassembler.pending_offset(), None);
    reassembler.push(5, line(ERR, true, "a", 1));
    reassembler.push(9, line(OUT, true, "b", 1));
    assert_eq!(reassembler.pending_offset(), Some(5));
    assert_eq!(reassembler.pending_offset_of(OUT), Some(9));
    reassembler.push(12, line(ERR, false, "c", 1));
    assert_eq!(reassembler.pending_offset(), Some(9));
    assert_eq!(reassembler.pending_offset_of(ERR), None);
    let mut out = Vec::new();
    reassembler.flush(&mut out);
    assert_eq!(reassembler.pending_offset(), None);
    assert_eq!(out.len(), 1);
}

proptest! {
    #[test]
    fn reassembler_stays_within_its_limit(
        max in 0usize..64,
        pieces in proptest::collection::vec(
            (any::<bool>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..40)),
            0..40,
        ),
    ) {
        let mut reassembler = Reassembler::new(max);
        let mut out = Vec::new();
        let mut offset = 0u64;
        let mut want_events = 0;
        let mut open = [false, false];
        for (stderr, partial, content) in &pieces {
            let stream = if *stderr { ERR } else { OUT };
            let parsed = ParsedLine {
                timestamp: timestamp(0),
                stream,
                partial: *partial,
                content: Cow::Borrowed(content),
            };
            out.extend(reassembler.push(offset, parsed));
            offset += content.len() as u64 + 1;
            open[stream_index(stream)] = *partial;
            if !*partial {
                want_events += 1;
            }
        }
        reassembler.flush(&mut out);
        want_events += open.iter().filter(|&&open| open).count();
        prop_assert_eq!(out.len(), want_events);
        for event in &out {
            prop_assert!(event.content.len() <= max, "{} > {}", event.content.len(), max);
            prop_assert!(event.content.capacity() <= max, "capacity {} > {}", event.content.capacity(), max);
        }
    }

    #[test]
    fn reassembler_keeps_every_byte_under_the_limit(
        pieces in proptest::collection::vec(("[a-z]{0,8}", any::<bool>()), 1..20),
    ) {
        let mut reassembler = Reassembler::new(usize::MAX);
        let mut out = Vec::new();
        for (offset, (content, partial)) in pieces.iter().enumerate() {
            out.extend(reassembler.push(offset as u64, line(OUT, *partial, content, 0)));
        }
        reassembler.flush(&mut out);
        let joined: String = pieces.iter().map(|(content, _)| content.as_str()).collect();
        let got: Vec<u8> = out.into_iter().flat_map(|event| event.content).collect();
        prop_assert_eq!(got, joined.into_bytes());
    }
}
