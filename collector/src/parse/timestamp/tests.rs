use proptest::prelude::*;

use super::*;

#[test]
fn parse_normalises_to_utc_nanoseconds() {
    let table: &[(&str, &str)] = &[
        // containerd: UTC, trailing zeros trimmed.
        ("2026-11-27T20:17:29Z", "2026-11-27T20:17:29.000000000Z"),
        ("2026-11-27T20:17:29.1Z", "2026-11-27T20:17:29.100000000Z"),
        ("2026-11-27T20:17:29.12Z", "2026-11-27T20:17:29.120000000Z"),
        (
            "2026-11-27T20:17:29.123456789Z",
            "2026-11-27T20:17:29.123456789Z",
        ),
        // Past nine digits, the rest is dropped, as Go does.
        (
            "2026-11-27T20:17:29.1234567891Z",
            "2026-11-27T20:17:29.123456789Z",
        ),
        ("2026-11-27t20:17:29.5z", "2026-11-27T20:17:29.500000000Z"),
        // CRI-O: nine digits and the node's offset.
        (
            "2026-11-27T21:17:29.120000000+01:00",
            "2026-11-27T20:17:29.120000000Z",
        ),
        (
            "2026-11-27T14:47:29.000000001-05:30",
            "2026-11-27T20:17:29.000000001Z",
        ),
        (
            "2026-11-27T20:17:29.999999999+00:00",
            "2026-11-27T20:17:29.999999999Z",
        ),
        (
            "2026-11-27T20:17:29.999999999-00:00",
            "2026-11-27T20:17:29.999999999Z",
        ),
        // Offsets that cross a day, a year and a leap day.
        (
            "2026-12-31T23:30:00.5-01:00",
            "2027-01-01T00:30:00.500000000Z",
        ),
        (
            "2024-03-01T00:30:00+01:00",
            "2024-02-29T23:30:00.000000000Z",
        ),
        (
            "2026-01-01T00:59:59.25+01:00",
            "2025-12-31T23:59:59.250000000Z",
        ),
        ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00.000000000Z"),
        ("0000-01-01T00:00:00Z", "0000-01-01T00:00:00.000000000Z"),
        (
            "9999-12-31T23:59:59.999999999Z",
            "9999-12-31T23:59:59.999999999Z",
        ),
    ];
    for &(input, want) in table {
        let got = Timestamp::parse(input.as_bytes()).map(|ts| ts.to_string());
        assert_eq!(got.as_deref(), Some(want), "{input}");
    }
}

#[test]
fn parse_refuses_what_is_not_an_rfc3339_instant() {
    let table: &[&str] = &[
        "",
        "Z",
        "2026-11-27",
        "2026-11-27T20:17:29",
        "2026-11-27T20:17:29.Z",
        "2026-11-27T20:17:29.1",
        "2026-11-27 20:17:29Z",
        "2026/11/27T20:17:29Z",
        "2026-11-27T20:17:29.1Zx",
        "2026-11-27T20:17:29.1 Z",
        "2026-11-27T20:17:29+0100",
        "2026-11-27T20:17:29+01",
        "2026-11-27T20:17:29+24:00",
        "2026-11-27T20:17:29+01:60",
        "2026-13-01T00:00:00Z",
        "2026-00-01T00:00:00Z",
        "2026-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-11-00T00:00:00Z",
        "2026-11-27T24:00:00Z",
        "2026-11-27T20:60:00Z",
        // Leap seconds: Go never writes them; refusing keeps one behaviour.
        "2026-12-31T23:59:60Z",
        "2026-11-2xT20:17:29Z",
        "+2026-11-27T20:17:29Z",
        "２０２６-11-27T20:17:29Z",
        // Shifted out of the four-digit years.
        "0000-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
    ];
    for &input in table {
        assert_eq!(Timestamp::parse(input.as_bytes()), None, "{input}");
    }
}

#[test]
fn text_order_is_time_order() {
    let ordered = [
        "2025-12-31T23:59:59.999999999Z",
        "2026-01-01T01:00:00.000000001+01:00",
        "2026-01-01T00:00:00.1Z",
        "2026-01-01T00:00:00.12Z",
        "2026-01-01T01:00:00.2+01:00",
    ];
    let parsed: Vec<Timestamp> = ordered
        .iter()
        .map(|text| Timestamp::parse(text.as_bytes()).unwrap())
        .collect();
    assert!(
        parsed.windows(2).all(|pair| pair[0] < pair[1]),
        "{parsed:?}"
    );
}

proptest! {
    #[test]
    fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = Timestamp::parse(&bytes);
    }

    #[test]
    fn normal_form_parses_to_itself(
        secs in 0i64..253_402_300_799,
        nanos in 0u32..1_000_000_000,
        offset_minutes in -1439i32..1439,
        digits in 0usize..10,
    ) {
        let utc = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
            .replace_nanosecond(nanos).unwrap();
        let offset = time::UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let local = utc.checked_to_offset(offset);
        prop_assume!(local.is_some_and(|local| (0..=9999).contains(&local.year())));
        let local = local.unwrap();
        let fraction = format!("{nanos:09}");
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}{:+03}:{:02}",
            local.year(), u8::from(local.month()), local.day(),
            local.hour(), local.minute(), local.second(),
            if digits == 0 { "" } else { "." },
            &fraction[..digits],
            offset_minutes / 60, (offset_minutes % 60).abs(),
        );
        // A negative offset under one hour needs its sign written out.
        let text = if offset_minutes < 0 && offset_minutes > -60 {
            text.replacen("+00:", "-00:", 1)
        } else {
            text
        };
        let parsed = Timestamp::parse(text.as_bytes()).unwrap();
        let want_nanos = nanos / 10u32.pow(9 - digits as u32) * 10u32.pow(9 - digits as u32);
        let want = utc.replace_nanosecond(want_nanos).unwrap();
        let want = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
            want.year(), u8::from(want.month()), want.day(),
            want.hour(), want.minute(), want.second(), want.nanosecond(),
        );
        prop_assert_eq!(parsed.as_str(), want.as_str(), "{}", text);
        prop_assert_eq!(Timestamp::parse(parsed.as_str().as_bytes()), Some(parsed));
    }
}
