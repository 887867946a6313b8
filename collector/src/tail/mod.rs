//! The file tailer: finds the kubelet's container log files, reads them line
//! by line, follows rotation, and tracks which lines Kafka acknowledged so
//! the checkpoint ([`crate::checkpoint`]) only moves past delivered lines.
//!
//! # Invariants
//!
//! These hold for every file the globs match (also stated in ARCHITECTURE.md):
//!
//! - **The checkpoint never passes an unacknowledged line.** Each line handed
//!   out is registered in the [`AckTracker`] as a byte range; the checkpoint
//!   is the end of the longest fully acknowledged prefix, never the read
//!   offset. Lines dropped on purpose downstream must be acknowledged by the
//!   caller at once.
//! - **Every complete line is handed out at least once, in file order, with
//!   exact byte offsets.** After a restart reading resumes at the saved
//!   checkpoint, so a line is handed out again only if it was not
//!   acknowledged (or was acknowledged behind an unacknowledged one) before
//!   the save — and then with the same offsets, so the same event id
//!   ([`Line::event_id`]).
//! - **A rotated file is drained before release.** Files are identified by a
//!   fingerprint of their head plus device and inode, not by path. When the
//!   kubelet renames `N.log` to `N.log.<timestamp>` (and later gzips and
//!   unlinks it), the open handle is kept and read to the end; a file no
//!   longer found is closed only once drained and acknowledged, or, drained
//!   but unacknowledged, after `deleted_file_grace_ms` (counted). Closing an
//!   undrained file needs the opt-in `deleted_file_max_hold_ms` (counted).
//!   Rotated and gone files are read before live ones. A rotated file left
//!   unread across a restart matches the globs (`*.log*`) and is found again
//!   by its fingerprint.
//! - **Bounded memory, pull-driven.** Nothing is read unless the caller
//!   polls, so when Kafka is down the files are the buffer. A poll reads at
//!   most about its byte budget; one read buffer of at most `max_line_bytes
//!   + read_chunk_bytes` exists at a time, and nothing is buffered per file
//!   between polls (an incomplete last line is read again once the file grows). A line
//!   longer than `max_line_bytes` is cut to that many bytes (`truncated`),
//!   the rest skipped chunk by chunk in linear time, offsets exact. In-flight
//!   bookkeeping is bounded by `max_in_flight_lines_per_file`.
//! - **Bytes, not text.** Only `\n` ends a line; invalid UTF-8 and `\r` pass
//!   through untouched. An incomplete last line is not handed out until its
//!   `\n` arrives, except in a rotated or gone file unchanged for
//!   `rotated_flush_ms` (its writer has moved on).
//! - **Copy-truncation** (size below the read offset at a poll, or a changed
//!   head at a scan) restarts the file at 0 under its new identity, counted.
//!   Lines written and truncated away between two looks are lost; that is
//!   inherent to copy-truncate, which the kubelet does not use.
//!
//! # Driving it
//!
//! The tailer is synchronous, driven from one dedicated thread (e.g.
//! `std::thread::spawn` or `tokio::task::spawn_blocking`). File reads block
//! anyway (`tokio::fs` would send each to the blocking pool), a
//! single-threaded state machine needs no locks, and a pull API gives
//! backpressure for free. It polls instead of using inotify, which misses
//! events on some file systems and adds little when the kubelet rotates by
//! rename. A driver loop:
//!
//! ```text
//! loop {
//!     while let Ok((file, offset)) = acks_rx.try_recv() {  // from Kafka delivery reports
//!         tailer.ack(&file, offset);
//!     }
//!     let lines = tailer.poll_lines(budget);               // budget: free space downstream
//!     if tailer.last_poll_bytes() == 0 { std::thread::sleep(tailer.poll_interval()) }
//!     for line in lines { lines_tx.blocking_send(line)? }   // bounded channel
//!     if last_save.elapsed() >= 1s { tailer.save_checkpoints(&path)?; }
//! }
//! // On shutdown: drain acks once more, then save_checkpoints.
//! ```
//!
//! Every line handed out must be acknowledged once, or its file's checkpoint
//! stops there. For an event assembled from several lines (CRI partials,
//! multiline), acknowledge its continuation lines as soon as they are
//! absorbed into the event, and its first line (the event's offset and id)
//! when Kafka confirms the event: the unacknowledged first line holds the
//! watermark back over the whole event, so a restart reads it again from its
//! start. A line dropped on purpose is acknowledged at once.

mod ack;
mod config;
mod discover;
mod events;
mod policy;
mod reader;
mod tailer;
#[cfg(test)]
mod tests;

pub use ack::{AckError, AckTracker};
pub use config::{ReadFrom, TailConfig};
pub use discover::PatternError;
pub use events::{CountingEvents, EventCounts, NoopEvents, StartFrom, TailEvents};
pub use tailer::{FileState, FileStatus, Fingerprinter, Line, TailError, Tailer};
