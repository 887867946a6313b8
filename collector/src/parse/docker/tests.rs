use proptest::prelude::*;

use super::*;

type Want<'a> = Result<(&'a str, Stream, bool, &'a [u8]), MalformedReason>;

#[test]
fn parse_reads_json_file_lines() {
    const TS: &str = "2016-10-20T18:39:20.576064430Z";
    let table: &[(&str, Want<'_>)] = &[
        (
            r#"{"log":"content 1\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#,
            Ok((TS, Stream::Stdout, false, b"content 1")),
        ),
        (
            "{\"log\":\"content 1\\n\",\"stream\":\"stdout\",\"time\":\"2016-10-20T18:39:20.57606443Z\"}\n",
            Ok((TS, Stream::Stdout, false, b"content 1")),
        ),
        // No trailing `\n`: a 16 KiB chunk of a longer line.
        (
            r#"{"log":"chunk","stream":"stderr","time":"2016-10-20T18:39:20.57606443Z"}"#,
            Ok((TS, Stream::Stderr, true, b"chunk")),
        ),
        (
            r#"{"log":"\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#,
            Ok((TS, Stream::Stdout, false, b"")),
        ),
        // Escapes are decoded; only the last `\n` goes.
        (
            r#"{"log":"tab\there \"q\" \u00e9 \\ a\n\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#,
            Ok((
                TS,
                Stream::Stdout,
                false,
                "tab\there \"q\" é \\ a\n".as_bytes(),
            )),
        ),
        (
            r#"{"log":"\ufffd replaced\n","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#,
            Ok((TS, Stream::Stdout, false, "\u{fffd} replaced".as_bytes())),
        ),
        // Field order, extra fields and whitespace do not matter.
        (
            r#" { "time" : "2016-10-20T19:39:20.57606443+01:00", "attrs": {"tag": "x"}, "stream": "stdout", "log": "x\n" } "#,
            Ok((TS, Stream::Stdout, false, b"x")),
        ),
    ];
    for &(input, want) in table {
        let got = parse(input.as_bytes())
            .map(|line| {
                (
                    line.timestamp.to_string(),
                    line.stream,
                    line.partial,
                    line.content,
                )
            })
            .map_err(|error| error.reason);
        let want = want.map(|(ts, stream, partial, content)| {
            (ts.to_owned(), stream, partial, content.to_vec())
        });
        assert_eq!(got, want, "{input}");
    }
}

#[test]
fn parse_names_what_is_wrong() {
    let table: &[(&str, MalformedReason)] = &[
        ("", MalformedReason::Empty),
        ("\n", MalformedReason::Empty),
        ("{", MalformedReason::Json),
        ("[]", MalformedReason::Json),
        ("not json", MalformedReason::Json),
        (
            r#"{"log":1,"stream":"stdout","time":"2016-10-20T18:39:20Z"}"#,
            MalformedReason::Json,
        ),
        (
            r#"{"log":"a\n","stream":"stdout","time":"2016-10-20T18:39:20Z"} trailing"#,
            MalformedReason::Json,
        ),
        (
            r#"{"stream":"stdout","time":"2016-10-20T18:39:20Z"}"#,
            MalformedReason::MissingField,
        ),
        (
            r#"{"log":"a\n","time":"2016-10-20T18:39:20Z"}"#,
            MalformedReason::MissingField,
        ),
        (
            r#"{"log":"a\n","stream":"stdout"}"#,
            MalformedReason::MissingField,
        ),
        (
            r#"{"log":null,"stream":"stdout","time":"2016-10-20T18:39:20Z"}"#,
            MalformedReason::MissingField,
        ),
        (
            r#"{"log":"a\n","stream":"stdin","time":"2016-10-20T18:39:20Z"}"#,
            MalformedReason::Stream,
        ),
        (
            r#"{"log":"a\n","stream":"stdout","time":"yesterday"}"#,
            MalformedReason::Timestamp,
        ),
    ];
    for &(input, reason) in table {
        assert_eq!(
            parse(input.as_bytes()).map_err(|error| error.reason),
            Err(reason),
            "{input}"
        );
    }
}

#[test]
fn odd_escapes_and_raw_bytes_do_not_fail_the_line() {
    // A lone surrogate escape is not text; it reaches the event builder as
    // bytes, which replaces it. Raw invalid UTF-8 is kept the same way.
    let lone = br#"{"log":"a\ud800b\n","stream":"stdout","time":"2016-10-20T18:39:20Z"}"#;
    let raw = b"{\"log\":\"a\xffb\\n\",\"stream\":\"stdout\",\"time\":\"2016-10-20T18:39:20Z\"}";
    for input in [&lone[..], &raw[..]] {
        let line = parse(input).unwrap();
        assert!(
            line.content.starts_with(b"a") && line.content.ends_with(b"b"),
            "{line:?}"
        );
        assert!(std::str::from_utf8(&line.content).is_err(), "{line:?}");
    }
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn parse_never_panics_on_json_like_input(
        log in ".{0,40}",
        stream in "(stdout|stderr|[a-z]{0,6})",
        time in "[0-9TZ:.+-]{0,35}",
    ) {
        let line = serde_json::json!({"log": log, "stream": stream, "time": time}).to_string();
        if let Ok(parsed) = parse(line.as_bytes()) {
            let want = log.strip_suffix('\n').unwrap_or(&log);
            prop_assert_eq!(parsed.content, want.as_bytes());
            prop_assert_eq!(parsed.partial, !log.ends_with('\n'));
        }
    }
}

/// Cuts a docker line as the tailer does: the first `max` bytes, and the
/// last `CUT_TAIL` bytes.
fn cut(line: &str, max: usize) -> (&[u8], &[u8]) {
    const CUT_TAIL: usize = 256;
    let bytes = line.as_bytes();
    (
        &bytes[..max.min(bytes.len())],
        &bytes[bytes.len().saturating_sub(CUT_TAIL)..],
    )
}

#[test]
fn parse_cut_keeps_the_decodable_text_and_reads_stream_and_time_from_the_end() {
    const TS: &str = "2016-10-20T18:39:20.576064430Z";
    const END: &str = r#"\n","stream":"stderr","time":"2016-10-20T18:39:20.57606443Z"}"#;
    let long = format!(r#"{{"log":"{}{END}"#, "x".repeat(600));
    let escape = format!(r#"{{"log":"ab\u00e9{}{END}"#, "y".repeat(600));
    let pair = format!(r#"{{"log":"a\ud83d\ude00{}{END}"#, "z".repeat(600));
    let raw_utf8 = format!(r#"{{"log":"é{}{END}"#, "w".repeat(600));
    // (line, cut at, expected text or error)
    type Case<'a> = (&'a str, usize, Result<&'a [u8], MalformedReason>);
    let table: Vec<Case<'_>> = vec![
        (&long, 20, Ok(b"xxxxxxxxxxxx")),
        // Cut inside `\u00e9`, right after it, and inside a surrogate pair.
        (&escape, 14, Ok(b"ab")),
        (&escape, 15, Ok(b"ab")),
        (&escape, 16, Ok("ab\u{e9}".as_bytes())),
        (&pair, 12, Ok(b"a")),
        (&pair, 19, Ok(b"a")),
        (&pair, 21, Ok("a\u{1f600}".as_bytes())),
        // Cut inside a backslash escape.
        (
            r#"{"log":"a\"b\\c","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#,
            10,
            Ok(b"a"),
        ),
        // Cut inside a raw two-byte character: the half is kept as bytes,
        // and the event builder replaces it with U+FFFD.
        (&raw_utf8, 9, Ok(b"\xc3")),
        // Not the start of a docker line.
        (
            r#"{"time":"2016-10-20T18:39:20.57606443Z","log":"x"}"#,
            20,
            Err(MalformedReason::Json),
        ),
        // The end has no stream, or no time.
        (
            r#"{"log":"xxxxxxxxxxxxxxxxxxxxx","time":"2016-10-20T18:39:20.57606443Z"}"#,
            12,
            Err(MalformedReason::Stream),
        ),
        (
            r#"{"log":"xxxxxxxxxxxxxxxxxxxxx","stream":"stdout"}"#,
            12,
            Err(MalformedReason::MissingField),
        ),
        (
            r#"{"log":"xxxxxxxxxxxxxxxxxxxxx","stream":"stdout","time":"yesterday"}"#,
            12,
            Err(MalformedReason::Timestamp),
        ),
    ];
    for (i, (line, at, want)) in table.into_iter().enumerate() {
        let (head, tail) = cut(line, at);
        match (parse_cut(head, tail), want) {
            (Ok(got), Ok(text)) => {
                assert_eq!(got.content, text, "case {i}");
                assert_eq!(got.timestamp.as_str(), TS, "case {i}");
                assert!(!got.partial, "case {i}");
            }
            (Err(got), Err(reason)) => assert_eq!(got.reason, reason, "case {i}"),
            (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
        }
    }
    // The stream comes from the end, whichever it is.
    let (head, tail) = cut(&long, 20);
    assert_eq!(parse_cut(head, tail).unwrap().stream, Stream::Stderr);
}

proptest! {
    /// Wherever a real docker line is cut, the text kept is a prefix of the
    /// line's text, and the stream and time are the line's.
    #[test]
    fn parse_cut_keeps_a_prefix_of_the_text(text in "[a-z\"\\\\\t\u{e9}\u{1f600}\u{7}]{0,80}", at in 0usize..200) {
        let mut line = Vec::new();
        line.extend_from_slice(br#"{"log":"#);
        serde_json::to_writer(&mut line, &format!("{text}\n")).unwrap();
        line.extend_from_slice(br#","stream":"stdout","time":"2016-10-20T18:39:20.57606443Z"}"#);
        let line = String::from_utf8(line).unwrap();
        let (head, tail) = cut(&line, at);
        if let Ok(got) = parse_cut(head, tail) {
            prop_assert!(text.as_bytes().starts_with(&got.content), "{:?} is not a prefix of {text:?}", got.content);
            prop_assert_eq!(got.stream, Stream::Stdout);
        } else {
            // Only a cut inside `{"log":"` fails.
            prop_assert!(at < 8, "cut at {} failed", at);
        }
    }
}
