use proptest::prelude::*;

use super::*;

type Want<'a> = Result<(&'a str, Stream, bool, &'a [u8]), MalformedReason>;

#[track_caller]
fn check(input: &[u8], want: Want<'_>) {
    let got = parse(input)
        .map(|line| {
            (
                line.timestamp.to_string(),
                line.stream,
                line.partial,
                line.content,
            )
        })
        .map_err(|error| error.reason);
    let want = want.map(|(ts, stream, partial, content)| (ts.to_owned(), stream, partial, content));
    assert_eq!(got, want, "{}", String::from_utf8_lossy(input));
}

#[test]
fn parse_reads_containerd_and_crio_lines() {
    const TS: &str = "2026-11-27T20:17:29.120000000Z";
    let table: &[(&[u8], Want<'_>)] = &[
        (
            b"2026-11-27T20:17:29.12Z stdout F hello world\n",
            Ok((TS, Stream::Stdout, false, b"hello world")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F hello world",
            Ok((TS, Stream::Stdout, false, b"hello world")),
        ),
        (
            b"2026-11-27T21:17:29.120000000+01:00 stderr P first half\n",
            Ok((TS, Stream::Stderr, true, b"first half")),
        ),
        // Empty content, with and without the space after the tags.
        (
            b"2026-11-27T20:17:29.12Z stdout F \n",
            Ok((TS, Stream::Stdout, false, b"")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F\n",
            Ok((TS, Stream::Stdout, false, b"")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout P",
            Ok((TS, Stream::Stdout, true, b"")),
        ),
        // Content is kept as written: leading spaces, `\r`, invalid UTF-8, inner `\n`.
        (
            b"2026-11-27T20:17:29.12Z stdout F   indented\n",
            Ok((TS, Stream::Stdout, false, b"  indented")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F crlf\r\n",
            Ok((TS, Stream::Stdout, false, b"crlf\r")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F \xff\xfe bytes\n",
            Ok((TS, Stream::Stdout, false, b"\xff\xfe bytes")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F a\n\n",
            Ok((TS, Stream::Stdout, false, b"a\n")),
        ),
        // Tag lists: `P` anywhere is partial, unknown tags are ignored.
        (
            b"2026-11-27T20:17:29.12Z stdout F:x-new x\n",
            Ok((TS, Stream::Stdout, false, b"x")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout x-new:P x\n",
            Ok((TS, Stream::Stdout, true, b"x")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout F:P x\n",
            Ok((TS, Stream::Stdout, true, b"x")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout PF x\n",
            Ok((TS, Stream::Stdout, false, b"x")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout p x\n",
            Ok((TS, Stream::Stdout, false, b"x")),
        ),
        // An empty tag list is a full line, as the kubelet reads it.
        (
            b"2026-11-27T20:17:29.12Z stdout  x\n",
            Ok((TS, Stream::Stdout, false, b"x")),
        ),
        (
            b"2026-11-27T20:17:29.12Z stdout \n",
            Ok((TS, Stream::Stdout, false, b"")),
        ),
    ];
    for &(input, want) in table {
        check(input, want);
    }
}

#[test]
fn parse_names_what_is_wrong() {
    let table: &[(&[u8], MalformedReason)] = &[
        (b"", MalformedReason::Empty),
        (b"\n", MalformedReason::Empty),
        (b"hello", MalformedReason::Timestamp),
        (b"hello world\n", MalformedReason::Timestamp),
        (
            b"2026-11-27 20:17:29Z stdout F x\n",
            MalformedReason::Timestamp,
        ),
        (
            b" 2026-11-27T20:17:29Z stdout F x\n",
            MalformedReason::Timestamp,
        ),
        (b"2026-11-27T20:17:29Z\n", MalformedReason::MissingField),
        (
            b"2026-11-27T20:17:29Z stdout\n",
            MalformedReason::MissingField,
        ),
        (b"2026-11-27T20:17:29Z stdin F x\n", MalformedReason::Stream),
        (
            b"2026-11-27T20:17:29Z STDOUT F x\n",
            MalformedReason::Stream,
        ),
        (
            b"2026-11-27T20:17:29Z  stdout F x\n",
            MalformedReason::Stream,
        ),
        (b"2026-11-27T20:17:29Z \n", MalformedReason::Stream),
        (
            br#"{"log":"x\n","stream":"stdout","time":"2026-11-27T20:17:29Z"}"#,
            MalformedReason::Timestamp,
        ),
    ];
    for &(input, reason) in table {
        check(input, Err(reason));
    }
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_near_valid_lines(
        tail in proptest::collection::vec(any::<u8>(), 0..60),
        cut in 0usize..40,
    ) {
        let mut line = b"2026-11-27T20:17:29.12Z stdout F "[..33 - cut.min(33)].to_vec();
        line.extend_from_slice(&tail);
        let _ = parse(&line);
    }

    #[test]
    fn written_lines_read_back(
        content in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..100),
        partial: bool,
        stderr: bool,
    ) {
        let stream = if stderr { "stderr" } else { "stdout" };
        let tag = if partial { "P" } else { "F" };
        let mut line = format!("2026-11-27T20:17:29.000000001+02:00 {stream} {tag} ").into_bytes();
        line.extend_from_slice(&content);
        line.push(b'\n');
        let parsed = parse(&line).unwrap();
        prop_assert_eq!(parsed.timestamp.as_str(), "2026-11-27T18:17:29.000000001Z");
        prop_assert_eq!(parsed.stream.as_str(), stream);
        prop_assert_eq!(parsed.partial, partial);
        prop_assert_eq!(parsed.content, content.as_slice());
    }
}
