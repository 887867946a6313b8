//! Docker json-file lines:
//! `{"log":"text\n","stream":"stdout","time":"2026-11-27T20:17:29.12Z"}`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_bytes::ByteBuf;

use super::{Malformed, MalformedReason, Stream, Timestamp};

/// One parsed docker line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerLine {
    /// The daemon's time for the line, normalised to UTC.
    pub timestamp: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: Stream,
    /// `log` did not end with `\n`: dockerd split a longer line into 16 KiB
    /// chunks and more follow on the same stream.
    pub partial: bool,
    /// `log` without its final `\n`, escapes decoded; may be invalid UTF-8.
    pub content: Vec<u8>,
}

/// The fields kelp reads; others, such as `attrs`, are ignored.
#[derive(Deserialize)]
struct Raw<'a> {
    // Read as bytes: no UTF-8 check here, so odd escapes reach the event
    // builder, which replaces what is not text and flags the event.
    #[serde(default)]
    log: Option<ByteBuf>,
    #[serde(default, borrow)]
    stream: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    time: Option<Cow<'a, str>>,
}

/// Parses one docker json-file line, with or without its final `\n`.
///
/// A `log` without a trailing `\n` is partial. dockerd writes one only for
/// 16 KiB splits and for a container's very last output, which the caller
/// flushes at the end of the file.
pub fn parse(line: &[u8]) -> Result<DockerLine, Malformed> {
    match line.trim_ascii_start().first() {
        None => return Err(MalformedReason::Empty.into()),
        // serde would read an array as the struct's fields in order.
        Some(b'{') => {}
        Some(_) => return Err(MalformedReason::Json.into()),
    }
    let raw: Raw<'_> = serde_json::from_slice(line).map_err(|_| MalformedReason::Json)?;
    let (Some(log), Some(stream), Some(time)) = (raw.log, raw.stream, raw.time) else {
        return Err(MalformedReason::MissingField.into());
    };
    let stream = match &*stream {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return Err(MalformedReason::Stream.into()),
    };
    let timestamp = Timestamp::parse(time.as_bytes()).ok_or(MalformedReason::Timestamp)?;
    let mut content = log.into_vec();
    let partial = content.pop_if(|last| *last == b'\n').is_none();
    Ok(DockerLine {
        timestamp,
        stream,
        partial,
        content,
    })
}

/// Parses a docker line the tailer cut at `tail.max_line_bytes`: `head` is
/// its start and `tail` its last bytes before the newline. The text is the
/// decodable prefix of `log` in `head`; the stream and time, which dockerd
/// writes after the text, come from `tail`. The caller flags the event
/// truncated. dockerd itself splits at 16 KiB, so only a small
/// `max_line_bytes` or another writer gets here.
///
/// # Errors
/// When `head` does not start like a docker line, or `tail` holds no
/// stream or no valid time.
pub fn parse_cut(head: &[u8], tail: &[u8]) -> Result<DockerLine, Malformed> {
    let escaped = head
        .trim_ascii_start()
        .strip_prefix(br#"{"log":""#)
        .ok_or(MalformedReason::Json)?;
    let usable = escaped.get(..decodable_prefix(escaped)).unwrap_or_default();
    let mut quoted = Vec::with_capacity(usable.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(usable);
    quoted.push(b'"');
    let text: ByteBuf = serde_json::from_slice(&quoted).map_err(|_| MalformedReason::Json)?;
    // The last occurrence: inside the text a quote would be escaped anyway.
    let stream = if memchr::memmem::rfind(tail, br#""stream":"stdout""#).is_some() {
        Stream::Stdout
    } else if memchr::memmem::rfind(tail, br#""stream":"stderr""#).is_some() {
        Stream::Stderr
    } else {
        return Err(MalformedReason::Stream.into());
    };
    let time = memchr::memmem::rfind(tail, br#""time":""#)
        .and_then(|at| tail.get(at + 8..))
        .and_then(|rest| rest.get(..memchr::memchr(b'"', rest)?))
        .ok_or(MalformedReason::MissingField)?;
    let timestamp = Timestamp::parse(time).ok_or(MalformedReason::Timestamp)?;
    let mut content = text.into_vec();
    content.pop_if(|last| *last == b'\n');
    Ok(DockerLine {
        timestamp,
        stream,
        partial: false,
        content,
    })
}

/// The length of the longest prefix of a JSON string's body (after its
/// opening quote) that decodes on its own: up to the closing quote, and
/// short of an escape or a surrogate pair that the cut split.
fn decodable_prefix(escaped: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&byte) = escaped.get(at) {
        match byte {
            b'"' => return at,
            b'\\' => match escaped.get(at + 1) {
                None => return at,
                Some(b'u') => {
                    let Some(code) = escaped.get(at + 2..at + 6).and_then(hex4) else {
                        return at;
                    };
                    if (0xD800..0xDC00).contains(&code) {
                        // A high surrogate decodes only with its low half.
                        let low = escaped
                            .get(at + 6..at + 12)
                            .filter(|next| next.starts_with(b"\\u"))
                            .and_then(|next| next.get(2..).and_then(hex4));
                        if !low.is_some_and(|low| (0xDC00..0xE000).contains(&low)) {
                            return at;
                        }
                        at += 12;
                    } else {
                        at += 6;
                    }
                }
                Some(_) => at += 2,
            },
            _ => at += 1,
        }
    }
    at
}

/// Four hex digits as a number.
fn hex4(digits: &[u8]) -> Option<u32> {
    std::str::from_utf8(digits)
        .ok()
        .filter(|text| text.len() == 4)
        .and_then(|text| u32::from_str_radix(text, 16).ok())
}

#[cfg(test)]
mod tests;
