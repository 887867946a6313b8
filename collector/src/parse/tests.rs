use proptest::prelude::*;

use super::*;

#[test]
fn detect_tells_the_formats_apart() {
    let table: &[(&[u8], Option<Format>)] = &[
        (
            b"2026-11-27T20:17:29.12Z stdout F hello\n",
            Some(Format::Cri),
        ),
        (
            b"2026-11-27T21:17:29.120000000+01:00 stderr P x",
            Some(Format::Cri),
        ),
        (
            br#"{"log":"x\n","stream":"stdout","time":"2026-11-27T20:17:29Z"}"#,
            Some(Format::Docker),
        ),
        // Detection looks at the shape only; parsing reports the details.
        (b"{garbage", Some(Format::Docker)),
        (b"", None),
        (b"hello world", None),
        (b"2026-11-27T20:17:29.12Z stdin F hello", None),
        (b" {\"log\":\"x\"}", None),
    ];
    for &(line, want) in table {
        assert_eq!(detect(line), want, "{}", String::from_utf8_lossy(line));
    }
}

#[test]
fn parse_line_gives_one_shape_for_both_formats() {
    let cri = parse_line(Format::Cri, b"2026-11-27T20:17:29.12Z stderr P half").unwrap();
    let docker = parse_line(
        Format::Docker,
        br#"{"log":"half","stream":"stderr","time":"2026-11-27T20:17:29.12Z"}"#,
    )
    .unwrap();
    assert_eq!(cri, docker);
    assert!(matches!(cri.content, Cow::Borrowed(b"half")));
    assert_eq!(
        parse_line(Format::Docker, b"2026-11-27T20:17:29.12Z stderr P half"),
        Err(Malformed::from(MalformedReason::Json))
    );
}

#[test]
fn names_read_back() {
    for format in [Format::Cri, Format::Docker] {
        assert_eq!(format.as_str().parse::<Format>(), Ok(format));
    }
    assert!("json".parse::<Format>().is_err());
    let labels: Vec<&str> = MalformedReason::ALL
        .iter()
        .map(|reason| reason.as_str())
        .collect();
    assert_eq!(
        labels,
        [
            "empty",
            "timestamp",
            "stream",
            "missing_field",
            "json",
            "unknown_format"
        ]
    );
    assert_eq!(
        Malformed::from(MalformedReason::Timestamp).to_string(),
        "parsing log line failed: bad timestamp"
    );
}

proptest! {
    #[test]
    fn detect_and_parse_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Some(format) = detect(&bytes) {
            let parsed = parse_line(format, &bytes);
            if format == Format::Cri {
                prop_assert!(parsed.is_ok());
            }
        }
    }
}
