//! CRI log lines, as containerd and CRI-O write them:
//! `<timestamp> <stream> <tags> <content>\n`.

use memchr::memchr;

use super::{Malformed, MalformedReason, Stream, Timestamp};

/// One parsed CRI line, borrowing its content from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CriLine<'a> {
    /// The runtime's time for the line, normalised to UTC.
    pub timestamp: Timestamp,
    /// `stdout` or `stderr`.
    pub stream: Stream,
    /// Tagged `P`: the runtime split a longer line here and more pieces follow.
    pub partial: bool,
    /// The bytes the container wrote; may be empty or invalid UTF-8.
    pub content: &'a [u8],
}

/// Parses one CRI line, with or without its final `\n`.
///
/// Only that one `\n` is stripped. A `\r` before it stays in the content:
/// containerd already drops the `\r` of a container's `\r\n`, CRI-O keeps it,
/// and either way the bytes are what the runtime recorded.
///
/// Tags are a `:`-separated list; a `P` anywhere in it marks a partial line
/// and unknown tags are ignored, so future tags do not break parsing. A line
/// may end right after its tags (`... stdout F`): its content is empty.
pub fn parse(line: &[u8]) -> Result<CriLine<'_>, Malformed> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    if line.is_empty() {
        return Err(MalformedReason::Empty.into());
    }
    let (timestamp, rest) = split_field(line);
    let timestamp = Timestamp::parse(timestamp).ok_or(MalformedReason::Timestamp)?;
    let rest = rest.ok_or(MalformedReason::MissingField)?;
    let (stream, rest) = split_field(rest);
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return Err(MalformedReason::Stream.into()),
    };
    let rest = rest.ok_or(MalformedReason::MissingField)?;
    let (tags, content) = split_field(rest);
    Ok(CriLine {
        timestamp,
        stream,
        partial: is_partial(tags),
        content: content.unwrap_or_default(),
    })
}

/// Splits at the first space: the field before it, and the bytes after it if
/// there was a space at all.
fn split_field(bytes: &[u8]) -> (&[u8], Option<&[u8]>) {
    match memchr(b' ', bytes) {
        Some(at) => (&bytes[..at], Some(&bytes[at + 1..])),
        None => (bytes, None),
    }
}

fn is_partial(tags: &[u8]) -> bool {
    match tags {
        b"F" => false,
        b"P" => true,
        _ => tags.split(|&b| b == b':').any(|tag| tag == b"P"),
    }
}

#[cfg(test)]
mod tests;
