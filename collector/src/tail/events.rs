//! What the tailer reports: one method per event, for counters and logs.
//!
//! The tailer calls these; an implementation turns them into metrics (the
//! binary's is [`crate::internal_events::MetricsTailEvents`]). [`NoopEvents`]
//! ignores them, [`CountingEvents`] counts them (for tests). Per-file lag is
//! not an event: read it from [`crate::tail::Tailer::file_status_now`].

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::checkpoint::FileKey;

/// Where reading of a newly found file starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFrom {
    /// At its saved checkpoint (same fingerprint, device and inode).
    Checkpoint,
    /// At the checkpoint of the same fingerprint saved under another
    /// device/inode (the file was copied or restored).
    MovedCheckpoint,
    /// At 0: the checkpoint is past the end of the file (it was truncated
    /// while the collector was down).
    CheckpointPastEnd,
    /// At 0: no checkpoint.
    Beginning,
    /// After its last complete line: no checkpoint, `read_from: end`.
    End,
}

/// Receives the tailer's events. Every method is required, so a metrics
/// implementation cannot miss one.
pub trait TailEvents {
    /// A file was found, identified and opened; reading starts at `offset`.
    fn file_added(&self, file: &FileKey, path: &Path, offset: u64, from: StartFrom);
    /// A file matched but is too young to identify (no whole first line and
    /// fewer than 4096 bytes); it is retried at the next scan.
    fn file_unidentified(&self, path: &Path);
    /// A file matched the globs but vanished before it could be opened.
    fn file_vanished(&self, path: &Path);
    /// A tailed file was found under a new name (kubelet rotation renames
    /// `N.log` to `N.log.<timestamp>`); it is read on through its open handle.
    fn file_rotated(&self, file: &FileKey, from: &Path, to: &Path);
    /// A tailed file is no longer found by the globs: deleted (`deleted`), or
    /// moved out of them. It is drained, then released.
    fn file_gone(&self, file: &FileKey, path: &Path, deleted: bool);
    /// A file shrank below the read offset or its head changed
    /// (copy-truncate): reading starts again at 0 under a new identity.
    fn file_truncated(&self, file: &FileKey, path: &Path, offset: u64, size: u64);
    /// A gone file was drained, its lines acknowledged, and it was closed.
    fn file_released(&self, file: &FileKey, path: &Path);
    /// A gone, drained file was closed after `deleted_file_grace_ms` with
    /// `in_flight` lines still unacknowledged.
    fn deleted_released_unacked(&self, file: &FileKey, path: &Path, in_flight: usize);
    /// A gone file was closed after `deleted_file_max_hold_ms` before it was
    /// drained: `unread_bytes` were never read.
    fn deleted_released_undrained(&self, file: &FileKey, path: &Path, unread_bytes: u64);
    /// `lines` lines of `bytes` bytes (newlines included) were handed out.
    fn lines_read(&self, file: &FileKey, path: &Path, lines: u64, bytes: u64);
    /// The line at `offset`, `line_bytes` long without its newline, was cut to
    /// `max_line_bytes`.
    fn line_truncated(&self, file: &FileKey, path: &Path, offset: u64, line_bytes: u64);
    /// The last line of a rotated or gone file had no newline and was handed
    /// out without one after `rotated_flush_ms`.
    fn unterminated_line_flushed(&self, file: &FileKey, path: &Path, offset: u64);
    /// Two tailed files share a fingerprint, so their event ids collide.
    fn fingerprint_collision(&self, file: &FileKey, path: &Path, other: &Path);
    /// An acknowledgement matched no line in flight (duplicate, or for a file
    /// released or truncated meanwhile).
    fn unknown_ack(&self, file: &FileKey, offset: u64);
    /// Checkpoints of files not seen for the retention were dropped.
    fn checkpoints_expired(&self, count: usize);
    /// Listing, opening, stating or reading failed.
    fn io_error(&self, path: &Path, error: &io::Error);
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopEvents;

impl TailEvents for NoopEvents {
    fn file_added(&self, _: &FileKey, _: &Path, _: u64, _: StartFrom) {}
    fn file_unidentified(&self, _: &Path) {}
    fn file_vanished(&self, _: &Path) {}
    fn file_rotated(&self, _: &FileKey, _: &Path, _: &Path) {}
    fn file_gone(&self, _: &FileKey, _: &Path, _: bool) {}
    fn file_truncated(&self, _: &FileKey, _: &Path, _: u64, _: u64) {}
    fn file_released(&self, _: &FileKey, _: &Path) {}
    fn deleted_released_unacked(&self, _: &FileKey, _: &Path, _: usize) {}
    fn deleted_released_undrained(&self, _: &FileKey, _: &Path, _: u64) {}
    fn lines_read(&self, _: &FileKey, _: &Path, _: u64, _: u64) {}
    fn line_truncated(&self, _: &FileKey, _: &Path, _: u64, _: u64) {}
    fn unterminated_line_flushed(&self, _: &FileKey, _: &Path, _: u64) {}
    fn fingerprint_collision(&self, _: &FileKey, _: &Path, _: &Path) {}
    fn unknown_ack(&self, _: &FileKey, _: u64) {}
    fn checkpoints_expired(&self, _: usize) {}
    fn io_error(&self, _: &Path, _: &io::Error) {}
}

/// A snapshot of [`CountingEvents`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    /// [`TailEvents::file_added`].
    pub files_added: u64,
    /// [`TailEvents::file_unidentified`].
    pub files_unidentified: u64,
    /// [`TailEvents::file_vanished`].
    pub files_vanished: u64,
    /// [`TailEvents::file_rotated`].
    pub rotations: u64,
    /// [`TailEvents::file_gone`].
    pub files_gone: u64,
    /// [`TailEvents::file_truncated`].
    pub truncate_resets: u64,
    /// [`TailEvents::file_released`].
    pub files_released: u64,
    /// [`TailEvents::deleted_released_unacked`].
    pub deleted_released_unacked: u64,
    /// [`TailEvents::deleted_released_undrained`].
    pub deleted_released_undrained: u64,
    /// Sum of `lines` of [`TailEvents::lines_read`].
    pub lines_read: u64,
    /// Sum of `bytes` of [`TailEvents::lines_read`].
    pub bytes_read: u64,
    /// [`TailEvents::line_truncated`].
    pub lines_truncated: u64,
    /// [`TailEvents::unterminated_line_flushed`].
    pub unterminated_lines_flushed: u64,
    /// [`TailEvents::fingerprint_collision`].
    pub fingerprint_collisions: u64,
    /// [`TailEvents::unknown_ack`].
    pub unknown_acks: u64,
    /// Sum of [`TailEvents::checkpoints_expired`].
    pub checkpoints_expired: u64,
    /// [`TailEvents::io_error`].
    pub io_errors: u64,
}

/// Counts every event; share it with [`Arc`] to read the counts while the
/// tailer owns it.
#[derive(Debug, Default)]
pub struct CountingEvents {
    files_added: AtomicU64,
    files_unidentified: AtomicU64,
    files_vanished: AtomicU64,
    rotations: AtomicU64,
    files_gone: AtomicU64,
    truncate_resets: AtomicU64,
    files_released: AtomicU64,
    deleted_released_unacked: AtomicU64,
    deleted_released_undrained: AtomicU64,
    lines_read: AtomicU64,
    bytes_read: AtomicU64,
    lines_truncated: AtomicU64,
    unterminated_lines_flushed: AtomicU64,
    fingerprint_collisions: AtomicU64,
    unknown_acks: AtomicU64,
    checkpoints_expired: AtomicU64,
    io_errors: AtomicU64,
}

fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

impl CountingEvents {
    /// All counters at zero.
    pub fn new() -> CountingEvents {
        CountingEvents::default()
    }

    /// The counts now.
    pub fn snapshot(&self) -> EventCounts {
        EventCounts {
            files_added: self.files_added.load(Ordering::Relaxed),
            files_unidentified: self.files_unidentified.load(Ordering::Relaxed),
            files_vanished: self.files_vanished.load(Ordering::Relaxed),
            rotations: self.rotations.load(Ordering::Relaxed),
            files_gone: self.files_gone.load(Ordering::Relaxed),
            truncate_resets: self.truncate_resets.load(Ordering::Relaxed),
            files_released: self.files_released.load(Ordering::Relaxed),
            deleted_released_unacked: self.deleted_released_unacked.load(Ordering::Relaxed),
            deleted_released_undrained: self.deleted_released_undrained.load(Ordering::Relaxed),
            lines_read: self.lines_read.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
            lines_truncated: self.lines_truncated.load(Ordering::Relaxed),
            unterminated_lines_flushed: self.unterminated_lines_flushed.load(Ordering::Relaxed),
            fingerprint_collisions: self.fingerprint_collisions.load(Ordering::Relaxed),
            unknown_acks: self.unknown_acks.load(Ordering::Relaxed),
            checkpoints_expired: self.checkpoints_expired.load(Ordering::Relaxed),
            io_errors: self.io_errors.load(Ordering::Relaxed),
        }
    }
}

impl TailEvents for CountingEvents {
    fn file_added(&self, _: &FileKey, _: &Path, _: u64, _: StartFrom) {
        bump(&self.files_added, 1);
    }
    fn file_unidentified(&self, _: &Path) {
        bump(&self.files_unidentified, 1);
    }
    fn file_vanished(&self, _: &Path) {
        bump(&self.files_vanished, 1);
    }
    fn file_rotated(&self, _: &FileKey, _: &Path, _: &Path) {
        bump(&self.rotations, 1);
    }
    fn file_gone(&self, _: &FileKey, _: &Path, _: bool) {
        bump(&self.files_gone, 1);
    }
    fn file_truncated(&self, _: &FileKey, _: &Path, _: u64, _: u64) {
        bump(&self.truncate_resets, 1);
    }
    fn file_released(&self, _: &FileKey, _: &Path) {
        bump(&self.files_released, 1);
    }
    fn deleted_released_unacked(&self, _: &FileKey, _: &Path, _: usize) {
        bump(&self.deleted_released_unacked, 1);
    }
    fn deleted_released_undrained(&self, _: &FileKey, _: &Path, _: u64) {
        bump(&self.deleted_released_undrained, 1);
    }
    fn lines_read(&self, _: &FileKey, _: &Path, lines: u64, bytes: u64) {
        bump(&self.lines_read, lines);
        bump(&self.bytes_read, bytes);
    }
    fn line_truncated(&self, _: &FileKey, _: &Path, _: u64, _: u64) {
        bump(&self.lines_truncated, 1);
    }
    fn unterminated_line_flushed(&self, _: &FileKey, _: &Path, _: u64) {
        bump(&self.unterminated_lines_flushed, 1);
    }
    fn fingerprint_collision(&self, _: &FileKey, _: &Path, _: &Path) {
        bump(&self.fingerprint_collisions, 1);
    }
    fn unknown_ack(&self, _: &FileKey, _: u64) {
        bump(&self.unknown_acks, 1);
    }
    fn checkpoints_expired(&self, count: usize) {
        bump(&self.checkpoints_expired, count as u64);
    }
    fn io_error(&self, _: &Path, _: &io::Error) {
        bump(&self.io_errors, 1);
    }
}

/// Lets a test keep a handle on the events the tailer owns.
impl<T: TailEvents + ?Sized> TailEvents for Arc<T> {
    fn file_added(&self, file: &FileKey, path: &Path, offset: u64, from: StartFrom) {
        (**self).file_added(file, path, offset, from);
    }
    fn file_unidentified(&self, path: &Path) {
        (**self).file_unidentified(path);
    }
    fn file_vanished(&self, path: &Path) {
        (**self).file_vanished(path);
    }
    fn file_rotated(&self, file: &FileKey, from: &Path, to: &Path) {
        (**self).file_rotated(file, from, to);
    }
    fn file_gone(&self, file: &FileKey, path: &Path, deleted: bool) {
        (**self).file_gone(file, path, deleted);
    }
    fn file_truncated(&self, file: &FileKey, path: &Path, offset: u64, size: u64) {
        (**self).file_truncated(file, path, offset, size);
    }
    fn file_released(&self, file: &FileKey, path: &Path) {
        (**self).file_released(file, path);
    }
    fn deleted_released_unacked(&self, file: &FileKey, path: &Path, in_flight: usize) {
        (**self).deleted_released_unacked(file, path, in_flight);
    }
    fn deleted_released_undrained(&self, file: &FileKey, path: &Path, unread_bytes: u64) {
        (**self).deleted_released_undrained(file, path, unread_bytes);
    }
    fn lines_read(&self, file: &FileKey, path: &Path, lines: u64, bytes: u64) {
        (**self).lines_read(file, path, lines, bytes);
    }
    fn line_truncated(&self, file: &FileKey, path: &Path, offset: u64, line_bytes: u64) {
        (**self).line_truncated(file, path, offset, line_bytes);
    }
    fn unterminated_line_flushed(&self, file: &FileKey, path: &Path, offset: u64) {
        (**self).unterminated_line_flushed(file, path, offset);
    }
    fn fingerprint_collision(&self, file: &FileKey, path: &Path, other: &Path) {
        (**self).fingerprint_collision(file, path, other);
    }
    fn unknown_ack(&self, file: &FileKey, offset: u64) {
        (**self).unknown_ack(file, offset);
    }
    fn checkpoints_expired(&self, count: usize) {
        (**self).checkpoints_expired(count);
    }
    fn io_error(&self, path: &Path, error: &io::Error) {
        (**self).io_error(path, error);
    }
}
