//! Just enough calendar arithmetic for index names and `event.ingested`,
//! without a date crate: RFC 3339 in, UTC civil fields out, and back.
//!
//! The civil/day conversions are Howard Hinnant's `days_from_civil` and
//! `civil_from_days` (proleptic Gregorian calendar).

/// A UTC date and hour: all that index names use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UtcHour {
    /// Four-digit year, 0..=9999.
    pub(crate) year: i64,
    /// 1..=12.
    pub(crate) month: i64,
    /// 1..=31.
    pub(crate) day: i64,
    /// 0..=23.
    pub(crate) hour: i64,
}

const MINUTES_PER_DAY: i64 = 24 * 60;

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses `len` ASCII digits at `at`.
fn digits(bytes: &[u8], at: usize, len: usize) -> Option<i64> {
    let field = bytes.get(at..at + len)?;
    field.iter().try_fold(0i64, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0'))
    })
}

/// An RFC 3339 time, reduced to what the shipper needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Instant3339 {
    /// UTC minutes since 1970-01-01T00:00Z.
    minutes: i64,
    /// Seconds within the minute, 0..=60 (a leap second is kept as 60).
    second: i64,
    /// Milliseconds of the fraction, truncated.
    millis: i64,
}

/// Reads `2026-11-27T20:17:29.123456789Z`, or with a `±hh:mm` offset.
fn parse_rfc3339(text: &str) -> Option<Instant3339> {
    let b = text.as_bytes();
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    let separators_ok = b.get(4) == Some(&b'-')
        && b.get(7) == Some(&b'-')
        && matches!(b.get(10), Some(b'T' | b't' | b' '))
        && b.get(13) == Some(&b':')
        && b.get(16) == Some(&b':');
    let ranges_ok = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 60;
    if !separators_ok || !ranges_ok {
        return None;
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let start = at;
        while let Some(d) = b.get(at).filter(|d| d.is_ascii_digit()) {
            if at - start < 3 {
                millis = millis * 10 + i64::from(d - b'0');
            }
            at += 1;
        }
        if at == start {
            return None;
        }
        // `.5` is 500 ms.
        for _ in (at - start)..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(at..)? {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = digits(&[*h1, *h2], 0, 2)?;
            let om = digits(&[*m1, *m2], 0, 2)?;
            if oh > 23 || om > 59 {
                return None;
            }
            let total = oh * 60 + om;
            if *sign == b'-' { -total } else { total }
        }
        _ => return None,
    };
    // Local time minus its offset is UTC.
    let minutes =
        days_from_civil(year, month, day) * MINUTES_PER_DAY + hour * 60 + minute - offset_minutes;
    Some(Instant3339 {
        minutes,
        second,
        millis,
    })
}

/// The UTC date and hour of a time in milliseconds since the Unix epoch;
/// `None` when the year leaves 0..=9999.
pub(crate) fn utc_hour_of_unix_millis(unix_millis: i64) -> Option<UtcHour> {
    utc_hour_of_minutes(unix_millis.div_euclid(60_000))
}

fn utc_hour_of_minutes(minutes: i64) -> Option<UtcHour> {
    let (year, month, day) = civil_from_days(minutes.div_euclid(MINUTES_PER_DAY));
    let hour = minutes.rem_euclid(MINUTES_PER_DAY) / 60;
    (0..=9999).contains(&year).then_some(UtcHour {
        year,
        month,
        day,
        hour,
    })
}

/// Reads an RFC 3339 timestamp as milliseconds since the Unix epoch
/// (fraction truncated to milliseconds). `None` when it is not RFC 3339.
pub(crate) fn parse_rfc3339_unix_millis(text: &str) -> Option<i64> {
    let t = parse_rfc3339(text)?;
    Some((t.minutes * 60 + t.second) * 1000 + t.millis)
}

/// Formats milliseconds since the Unix epoch as RFC 3339 UTC with
/// millisecond precision, e.g. `2026-11-27T20:17:30.123Z`.
pub(crate) fn format_rfc3339_millis(unix_millis: i64) -> String {
    let days = unix_millis.div_euclid(86_400_000);
    let in_day = unix_millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let hour = in_day / 3_600_000;
    let minute = in_day / 60_000 % 60;
    let second = in_day / 1000 % 60;
    let millis = in_day % 1000;
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hour(year: i64, month: i64, day: i64, hour: i64) -> Option<UtcHour> {
        Some(UtcHour {
            year,
            month,
            day,
            hour,
        })
    }

    #[test]
    fn parses_rfc3339() {
        let table: &[(&str, Option<UtcHour>)] = &[
            ("2026-11-27T20:17:29.123456789Z", hour(2026, 11, 27, 20)),
            ("2026-11-27T20:17:29Z", hour(2026, 11, 27, 20)),
            ("2026-11-27t20:17:29z", hour(2026, 11, 27, 20)),
            ("2026-11-27 20:17:29Z", hour(2026, 11, 27, 20)),
            // Offsets move the UTC date across midnight, month and year.
            ("2026-11-27T23:30:00+00:00", hour(2026, 11, 27, 23)),
            ("2026-11-27T23:30:00-01:00", hour(2026, 11, 28, 0)),
            ("2026-12-31T23:30:00.5-02:00", hour(2027, 1, 1, 1)),
            ("2026-01-01T00:10:00+05:30", hour(2025, 12, 31, 18)),
            ("2024-02-29T12:00:00Z", hour(2024, 2, 29, 12)),
            ("2023-02-29T12:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-00-01T00:00:00Z", None),
            ("2026-04-31T00:00:00Z", None),
            ("2026-11-27T24:00:00Z", None),
            ("2026-11-27T20:17:29", None),
            ("2026-11-27T20:17:29.Z", None),
            ("2026-11-27T20:17:29+0100", None),
            ("2026-11-27T20:17:29Zjunk", None),
            ("2026/11/27T20:17:29Z", None),
            ("not a time", None),
            ("", None),
            ("0000-01-01T00:00:00+01:00", None),
            ("9999-12-31T23:00:00-01:00", None),
            ("1969-12-31T23:59:59Z", hour(1969, 12, 31, 23)),
            ("２０２６-11-27T20:17:29Z", None),
        ];
        for (text, want) in table {
            assert_eq!(
                parse_rfc3339_unix_millis(text).and_then(utc_hour_of_unix_millis),
                *want,
                "{text}"
            );
        }
    }

    #[test]
    fn formats_millis() {
        let table: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_810_649_123, "2026-11-27T20:17:29.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (-1, "1969-12-31T23:59:59.999Z"),
        ];
        for (millis, want) in table {
            assert_eq!(format_rfc3339_millis(*millis), *want);
        }
    }

    #[test]
    fn parses_unix_millis() {
        let table: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-11-27T20:17:29.123456789Z", Some(1_795_810_649_123)),
            ("2026-11-27T20:17:29.1Z", Some(1_795_810_649_100)),
            ("2026-11-27T21:17:29.12+01:00", Some(1_795_810_649_120)),
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            ("2026-11-27T20:17:29", None),
            ("2026-11-27T20:17:29.Z", None),
        ];
        for (text, want) in table {
            assert_eq!(parse_rfc3339_unix_millis(text), *want, "{text}");
        }
    }

    #[test]
    fn day_conversions_round_trip() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!((1..=days_in_month(y, m)).contains(&d));
        }
    }
}
