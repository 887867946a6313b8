//! Runtime timestamps, normalised to one UTC text form.

use std::fmt;

use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

/// Length of the normalised form `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
const LEN: usize = 30;

/// A log line's time: UTC RFC 3339 with exactly nine fraction digits and
/// `Z`, e.g. `2026-11-27T20:17:29.120000000Z`.
///
/// The text has a fixed width, so comparing two timestamps as text compares
/// the instants. It is `Copy` and never allocates.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp([u8; LEN]);

impl Timestamp {
    /// Parses an RFC 3339 timestamp as container runtimes write it.
    ///
    /// containerd writes UTC with `Z` and 0 to 9 fraction digits (trailing
    /// zeros trimmed); CRI-O writes 9 digits and a `+hh:mm`/`-hh:mm` offset.
    /// Fraction digits past the ninth are dropped, as Go's parser does.
    /// Returns `None` for anything else, for impossible dates and times
    /// (leap seconds included) and for instants outside years 0000-9999 UTC.
    pub fn parse(text: &[u8]) -> Option<Timestamp> {
        let (fields, rest) = Fields::parse(text)?;
        let (fraction, rest) = parse_fraction(rest)?;
        let offset_seconds = parse_offset(rest)?;
        let date =
            Date::from_calendar_date(fields.year, Month::try_from(fields.month).ok()?, fields.day)
                .ok()?;
        let time = Time::from_hms(fields.hour, fields.minute, fields.second).ok()?;
        if offset_seconds == 0 {
            // Fast path: the text is already UTC; `time` only validated the
            // fields, and the bytes are copied as they are.
            let mut out = *b"0000-00-00T00:00:00.000000000Z";
            out[..19].copy_from_slice(&text[..19]);
            out[10] = b'T';
            out[20..29].copy_from_slice(&fraction);
            return Some(Timestamp(out));
        }
        // Shifting by whole minutes leaves the fraction unchanged.
        let offset = UtcOffset::from_whole_seconds(offset_seconds).ok()?;
        let utc = PrimitiveDateTime::new(date, time)
            .assume_offset(offset)
            .checked_to_offset(UtcOffset::UTC)?;
        let fields = Fields {
            year: utc.year(),
            month: u8::from(utc.month()),
            day: utc.day(),
            hour: utc.hour(),
            minute: utc.minute(),
            second: utc.second(),
        };
        if !(0..=9999).contains(&fields.year) {
            return None;
        }
        Some(Timestamp::from_parts(&fields, &fraction))
    }

    /// The normalised text, e.g. `2026-11-27T20:17:29.120000000Z`.
    pub fn as_str(&self) -> &str {
        // The bytes are ASCII digits and separators by construction.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn from_parts(fields: &Fields, fraction: &[u8; 9]) -> Timestamp {
        let mut out = *b"0000-00-00T00:00:00.000000000Z";
        // `year` is within 0..=9999 here: four digits parsed, or checked after a shift.
        let year = u32::try_from(fields.year).unwrap_or_default();
        write_digits(&mut out[0..4], year);
        write_digits(&mut out[5..7], u32::from(fields.month));
        write_digits(&mut out[8..10], u32::from(fields.day));
        write_digits(&mut out[11..13], u32::from(fields.hour));
        write_digits(&mut out[14..16], u32::from(fields.minute));
        write_digits(&mut out[17..19], u32::from(fields.second));
        out[20..29].copy_from_slice(fraction);
        Timestamp(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({})", self.as_str())
    }
}

/// Calendar date and time of day as written, before validation.
struct Fields {
    year: i32,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Fields {
    /// Reads `YYYY-MM-DDTHH:MM:SS` and returns the bytes after it.
    fn parse(text: &[u8]) -> Option<(Fields, &[u8])> {
        let (head, rest) = text.split_first_chunk::<19>()?;
        let separators_ok = head[4] == b'-'
            && head[7] == b'-'
            && matches!(head[10], b'T' | b't')
            && head[13] == b':'
            && head[16] == b':';
        if !separators_ok {
            return None;
        }
        let fields = Fields {
            year: i32::try_from(digits(&head[0..4])?).ok()?,
            month: u8::try_from(digits(&head[5..7])?).ok()?,
            day: u8::try_from(digits(&head[8..10])?).ok()?,
            hour: u8::try_from(digits(&head[11..13])?).ok()?,
            minute: u8::try_from(digits(&head[14..16])?).ok()?,
            second: u8::try_from(digits(&head[17..19])?).ok()?,
        };
        Some((fields, rest))
    }
}

/// Reads an optional `.digits` fraction, padded or cut to nine digits.
fn parse_fraction(rest: &[u8]) -> Option<([u8; 9], &[u8])> {
    let mut fraction = [b'0'; 9];
    let Some((b'.', tail)) = rest.split_first() else {
        return Some((fraction, rest));
    };
    let count = tail.iter().take_while(|b| b.is_ascii_digit()).count();
    if count == 0 {
        // RFC 3339 requires at least one digit after the dot.
        return None;
    }
    let keep = count.min(9);
    fraction[..keep].copy_from_slice(&tail[..keep]);
    Some((fraction, &tail[count..]))
}

/// Reads `Z` or `±hh:mm` ending the text; returns the offset in seconds.
fn parse_offset(rest: &[u8]) -> Option<i32> {
    match rest {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let hours = i32::try_from(digits(&[*h1, *h2])?).ok()?;
            let minutes = i32::try_from(digits(&[*m1, *m2])?).ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = hours * 3600 + minutes * 60;
            Some(if *sign == b'-' { -seconds } else { seconds })
        }
        _ => None,
    }
}

/// The value of a short run of ASCII digits, or `None` if any byte is not one.
fn digits(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| {
        b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
    })
}

/// Writes `value` as zero-padded decimal filling `out`.
fn write_digits(out: &mut [u8], mut value: u32) {
    for slot in out.iter_mut().rev() {
        // `value % 10` is below 10, so the cast cannot truncate.
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

#[cfg(test)]
mod tests;
