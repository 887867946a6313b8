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

#[cfg(test)]
mod tests;
