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
