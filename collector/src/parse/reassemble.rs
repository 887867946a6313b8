//! Joins the pieces of lines that the runtime split (CRI `P` tags, docker
//! 16 KiB chunks) back into whole events, per stream of one file.

use std::borrow::Cow;

use kelp_record::Flag;

use super::limit::{append_bounded, truncate_bounded};
use super::{ParsedLine, Stream, Timestamp};

/// A whole line: one full line, or the joined pieces of a split one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assembled {
    /// Byte offset of the first piece in its file.
    pub offset: u64,
    /// Time of the first piece.
    pub timestamp: Timestamp,
    /// The stream all pieces came from.
    pub stream: Stream,
    /// The joined content, at most the configured maximum event size.
    pub content: Vec<u8>,
    /// [`Flag::Partial`] when joined from split pieces, [`Flag::Truncated`]
    /// when content was dropped; later stages add theirs.
    pub flags: Vec<Flag>,
}

/// Reassembles split lines for the two streams of one file.
///
/// Pieces of a split line are joined per stream, in order, until the piece
/// not marked partial. Content past `max_event_bytes` is dropped and the
/// event flagged [`Flag::Truncated`]; at most `max_event_bytes` are held per
/// stream, and the lines after a truncated one are unaffected.
#[derive(Debug)]
pub struct Reassembler {
    max_event_bytes: usize,
    pending: [Option<Pending>; 2],
}

#[derive(Debug)]
struct Pending {
    offset: u64,
    timestamp: Timestamp,
    content: Vec<u8>,
    truncated: bool,
}

impl Reassembler {
    /// A reassembler keeping at most `max_event_bytes` of content per event.
    pub fn new(max_event_bytes: usize) -> Reassembler {
        Reassembler {
            max_event_bytes,
            pending: [None, None],
        }
    }

    /// Takes the line starting at byte `offset` of the file; returns the
    /// event it completes, if any.
    pub fn push(&mut self, offset: u64, line: ParsedLine<'_>) -> Option<Assembled> {
        let max = self.max_event_bytes;
        let slot = &mut self.pending[stream_index(line.stream)];
        match slot {
            None if !line.partial => {
                // The common case, a whole line: owned content moves, borrowed is copied once.
                let (content, truncated) = match line.content {
                    Cow::Owned(mut content) => {
                        let truncated = truncate_bounded(&mut content, max);
                        (content, truncated)
                    }
                    Cow::Borrowed(bytes) => {
                        let mut content = Vec::new();
                        let truncated = append_bounded(&mut content, bytes, max);
                        (content, truncated)
                    }
                };
                Some(Assembled {
                    offset,
                    timestamp: line.timestamp,
                    stream: line.stream,
                    content,
                    flags: if truncated {
                        vec![Flag::Truncated]
                    } else {
                        Vec::new()
                    },
                })
            }
            None => {
                let mut content = Vec::new();
                let truncated = append_bounded(&mut content, &line.content, max);
                *slot = Some(Pending {
                    offset,
                    timestamp: line.timestamp,
                    content,
                    truncated,
                });
                None
            }
            Some(pending) => {
                if !pending.truncated {
                    pending.truncated = append_bounded(&mut pending.content, &line.content, max);
                }
                if line.partial {
                    return None;
                }
                slot.take().map(|pending| pending.finish(line.stream))
            }
        }
    }

    /// Emits every unfinished split line, e.g. at the end of a file whose
    /// writer stopped mid-line, in file order.
    pub fn flush(&mut self, out: &mut Vec<Assembled>) {
        let start = out.len();
        for (index, slot) in self.pending.iter_mut().enumerate() {
            if let Some(pending) = slot.take() {
                out.push(pending.finish(STREAMS[index]));
            }
        }
        out[start..].sort_by_key(|event| event.offset);
    }

    /// Offset of the first piece of `stream`'s unfinished line, if any.
    pub fn pending_offset_of(&self, stream: Stream) -> Option<u64> {
        self.pending[stream_index(stream)]
            .as_ref()
            .map(|pending| pending.offset)
    }

    /// Offset of the earliest piece not yet emitted: a checkpoint must not
    /// move past it.
    pub fn pending_offset(&self) -> Option<u64> {
        self.pending
            .iter()
            .flatten()
            .map(|pending| pending.offset)
            .min()
    }
}

impl Pending {
    fn finish(self, stream: Stream) -> Assembled {
        let mut flags = vec![Flag::Partial];
        if self.truncated {
            flags.push(Flag::Truncated);
        }
        Assembled {
            offset: self.offset,
            timestamp: self.timestamp,
            stream,
            content: self.content,
            flags,
        }
    }
}

/// Both streams, in slot order.
const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

/// The slot of a stream in per-stream arrays.
pub(crate) fn stream_index(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

#[cfg(test)]
mod tests;
