//! The pure core of reading container logs: line formats, partial-line
//! reassembly, multiline rules, path metadata and the event record.
//!
//! The pipeline for one file is
//! [`parse_line`] → [`reassemble::Reassembler`] → [`multiline::Multiline`] →
//! [`event::EventBuilder`], with [`path::parse_path`] run once per file.
//!
//! Architecture Invariant: nothing here does IO or reads a clock. Time is a
//! parameter, bad input is a value ([`Malformed`]), and no input panics.

pub mod cri;
pub mod docker;
pub mod event;
mod limit;
pub mod multiline;
pub mod path;
pub mod reassemble;
mod timestamp;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

pub use kelp_record::Stream;

pub use self::timestamp::Timestamp;

/// Default bound on one event's content, in bytes.
///
/// Kafka brokers refuse messages over `message.max.bytes` (1 MB by default);
/// 256 KiB leaves room for the record's other fields and for JSON escaping of
/// ordinary text.
pub const DEFAULT_MAX_EVENT_BYTES: usize = 256 * 1024;

/// A container log file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// CRI text lines, written by containerd and CRI-O.
    Cri,
    /// Docker's json-file lines.
    Docker,
}

impl Format {
    /// The name used in `container.runtime` and on the command line: `cri` or `docker`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cri => "cri",
            Format::Docker => "docker",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a format name was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parsing log format {0:?} failed: expected cri or docker")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "cri" => Ok(Format::Cri),
            "docker" => Ok(Format::Docker),
            _ => Err(UnknownFormat(s.to_owned())),
        }
    }
}

/// Guesses a line's format: a JSON object is docker's, a line that parses as
/// CRI is CRI, anything else is unknown.
pub fn detect(line: &[u8]) -> Option<Format> {
    match line.first() {
        Some(b'{') => Some(Format::Docker),
        _ => cri::parse(line).ok().map(|_| Format::Cri),
    }
}

/// One line of either format, in the shape the rest of the pipeline takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedLine<'a> {
    /// The runtime's time for the line.
    pub timestamp: Timestamp,
    /// The output stream that wrote the line.
    pub stream: Stream,
    /// The runtime split a longer line here; more pieces follow on the same stream.
    pub partial: bool,
    /// The line's bytes without the line terminator; may be invalid UTF-8.
    pub content: Cow<'a, [u8]>,
}

impl<'a> From<cri::CriLine<'a>> for ParsedLine<'a> {
    fn from(line: cri::CriLine<'a>) -> ParsedLine<'a> {
        ParsedLine {
            timestamp: line.timestamp,
            stream: line.stream,
            partial: line.partial,
            content: Cow::Borrowed(line.content),
        }
    }
}

impl From<docker::DockerLine> for ParsedLine<'static> {
    fn from(line: docker::DockerLine) -> ParsedLine<'static> {
        ParsedLine {
            timestamp: line.timestamp,
            stream: line.stream,
            partial: line.partial,
            content: Cow::Owned(line.content),
        }
    }
}

/// Parses one line (with or without its final `\n`) in the given format.
pub fn parse_line(format: Format, line: &[u8]) -> Result<ParsedLine<'_>, Malformed> {
    match format {
        Format::Cri => cri::parse(line).map(ParsedLine::from),
        Format::Docker => docker::parse(line).map(ParsedLine::from),
    }
}

/// Parses a line the tailer cut at `tail.max_line_bytes`, given its start
/// (`line`) and its last bytes (`tail`). A CRI line's prefix holds all its
/// fields; a docker line's stream and time come from its end
/// ([`docker::parse_cut`]).
///
/// # Errors
/// As [`parse_line`], when neither end yields the line's fields.
pub fn parse_cut_line<'a>(
    format: Format,
    line: &'a [u8],
    tail: &[u8],
) -> Result<ParsedLine<'a>, Malformed> {
    match format {
        Format::Cri => parse_line(format, line),
        Format::Docker => docker::parse(line)
            .or_else(|_| docker::parse_cut(line, tail))
            .map(ParsedLine::from),
    }
}

/// A line that could not be parsed. Callers count it and go on with the next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("parsing log line failed: {reason}")]
pub struct Malformed {
    /// What was wrong with the line.
    pub reason: MalformedReason,
}

impl From<MalformedReason> for Malformed {
    fn from(reason: MalformedReason) -> Malformed {
        Malformed { reason }
    }
}

/// Why a line is malformed: a small closed set, fit for a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MalformedReason {
    /// The line is empty.
    Empty,
    /// The timestamp is missing or not RFC 3339.
    Timestamp,
    /// The stream is neither `stdout` nor `stderr`.
    Stream,
    /// A field the format requires is absent.
    MissingField,
    /// A docker line is not a JSON object of the expected shape.
    Json,
    /// The line matches no known format.
    UnknownFormat,
}

impl MalformedReason {
    /// Every reason, in label order.
    pub const ALL: [MalformedReason; 6] = [
        MalformedReason::Empty,
        MalformedReason::Timestamp,
        MalformedReason::Stream,
        MalformedReason::MissingField,
        MalformedReason::Json,
        MalformedReason::UnknownFormat,
    ];

    /// A short snake_case label, e.g. for a metric.
    pub fn as_str(self) -> &'static str {
        match self {
            MalformedReason::Empty => "empty",
            MalformedReason::Timestamp => "timestamp",
            MalformedReason::Stream => "stream",
            MalformedReason::MissingField => "missing_field",
            MalformedReason::Json => "json",
            MalformedReason::UnknownFormat => "unknown_format",
        }
    }
}

impl fmt::Display for MalformedReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MalformedReason::Empty => "empty line",
            MalformedReason::Timestamp => "bad timestamp",
            MalformedReason::Stream => "stream is not stdout or stderr",
            MalformedReason::MissingField => "missing field",
            MalformedReason::Json => "not a docker json-file object",
            MalformedReason::UnknownFormat => "unknown log format",
        })
    }
}

#[cfg(test)]
mod tests;
