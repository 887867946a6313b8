//! The tailer object: discovery, identity, reading, rotation and release.
//!
//! IO happens here; what to do is decided by [`super::policy`] and how bytes
//! become lines by [`super::reader`], both pure.

use std::collections::HashSet;
use std::collections::hash_map::{Entry, HashMap};
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kelp_record::EventId;

use super::ack::AckTracker;
use super::config::TailConfig;
use super::discover::{Discovery, PatternError, looks_rotated};
use super::events::{NoopEvents, StartFrom, TailEvents};
use super::policy::{self, GoneFile, Release, Start};
use super::reader::{self, Budget, Limits, RawLine, ReadPos};
use crate::checkpoint::{CheckpointError, Checkpoints, FileKey, Resume};
use crate::fingerprint::FINGERPRINT_BYTES;

/// Computes a file's identity from its head; [`crate::fingerprint::fingerprint`]
/// unless replaced with [`Tailer::with_fingerprinter`].
pub type Fingerprinter = fn(&[u8]) -> Option<u64>;

/// One complete line of a file, as handed out by [`Tailer::poll_lines`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// The file's identity; acknowledge with `(file, offset)`.
    pub file: FileKey,
    /// Where the file was when the line was read (diagnostic: a rotated
    /// file's lines carry the name it had then).
    pub path: Arc<Path>,
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Byte offset after the line's `\n` (for the unterminated last line of a
    /// rotated file: the end of the file). Always `> offset`.
    pub end: u64,
    /// The line's bytes without the `\n`, untouched (not necessarily UTF-8,
    /// `\r` kept), at most `max_line_bytes`.
    pub bytes: Bytes,
    /// The line was longer than `max_line_bytes` and was cut.
    pub truncated: bool,
    /// For a cut line, its last 256 bytes before the newline (empty
    /// otherwise), where docker json-file keeps the stream and the time.
    pub cut_tail: Bytes,
}

impl Line {
    /// The line's event id: the same every time this line is read.
    pub fn event_id(&self) -> EventId {
        self.file.event_id(self.offset)
    }
}

/// Why the tailer could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TailError {
    /// A setting is out of range.
    #[error("invalid tail configuration: {0}")]
    Config(String),
    /// A glob pattern does not parse.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// Where a tailed file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Found at the path it was opened under (or a rotated name it was found
    /// under at first).
    Live,
    /// Found under a new name since it was opened: rotated.
    Rotated,
    /// No longer found by the globs; drained, then released.
    Gone {
        /// Its last link is removed.
        deleted: bool,
    },
    /// Truncated and too young to identify again; not read until it is.
    Unidentified,
}

/// A snapshot of one tailed file, e.g. for lag gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStatus {
    /// Where the file was last seen.
    pub path: Arc<Path>,
    /// Its identity (none while unidentified).
    pub file: Option<FileKey>,
    /// Where it stands.
    pub state: FileState,
    /// Its size at the last poll that looked at it.
    pub size: u64,
    /// Start of the next line to hand out.
    pub read_offset: u64,
    /// End of the acknowledged prefix: what a save would store.
    pub checkpoint_offset: Option<u64>,
    /// `size - read_offset`: bytes not yet read.
    pub lag_bytes: u64,
    /// Lines handed out and not yet behind the acknowledged prefix.
    pub in_flight: usize,
}

#[derive(Debug)]
struct TailedFile {
    /// `None` after a truncation until the new content can be identified.
    key: Option<FileKey>,
    dev: u64,
    ino: u64,
    path: Arc<Path>,
    file: File,
    pos: ReadPos,
    /// Every byte before this was looked at: the end of the file when the
    /// last read reached it. Nothing new to read while the size equals it.
    examined: u64,
    /// Size at the last look.
    size: u64,
    /// When `size` last changed.
    last_change: Instant,
    /// Found under another name since opened.
    renamed: bool,
    gone: Option<Gone>,
}

#[derive(Debug, Clone, Copy)]
struct Gone {
    since: Instant,
    deleted: bool,
    /// When it was first seen drained while gone.
    drained_since: Option<Instant>,
}

impl TailedFile {
    /// The writer has moved on to another file (rotation, deletion), so the
    /// file drains first and an unterminated last line may be flushed.
    fn writer_moved_on(&self) -> bool {
        self.renamed || self.gone.is_some() || looks_rotated(&self.path)
    }

    fn state(&self) -> FileState {
        match (self.key, self.gone, self.renamed) {
            (None, _, _) => FileState::Unidentified,
            (Some(_), Some(g), _) => FileState::Gone { deleted: g.deleted },
            (Some(_), None, true) => FileState::Rotated,
            (Some(_), None, false) => FileState::Live,
        }
    }
}

/// A file found by a scan, opened and identified, not yet tailed.
struct Candidate {
    key: FileKey,
    path: PathBuf,
    file: File,
    size: u64,
}

/// Tails the files matched by the configured globs. See the module docs of
/// [`crate::tail`] for its guarantees and how to drive it.
#[derive(Debug)]
pub struct Tailer<E: TailEvents = NoopEvents> {
    config: TailConfig,
    discovery: Discovery,
    fingerprinter: Fingerprinter,
    checkpoints: Checkpoints,
    acks: AckTracker,
    files: Vec<TailedFile>,
    events: E,
    last_scan: Option<Instant>,
    scans: u64,
    cursor: usize,
    last_poll_bytes: u64,
    /// The checkpoints changed since the last save.
    dirty: bool,
}

/// Longest time between two refreshes of an unchanged entry's
/// `updated_unix_ms` (see [`Tailer::save_checkpoints`]).
const TOUCH_INTERVAL_MS: u64 = 60 * 60 * 1_000;

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl<E: TailEvents> Tailer<E> {
    /// A tailer resuming from `checkpoints` (see [`Checkpoints::load`]),
    /// reporting to `events`. Nothing is read before the first poll.
    pub fn new(
        config: TailConfig,
        checkpoints: Checkpoints,
        events: E,
    ) -> Result<Tailer<E>, TailError> {
        config.validate().map_err(TailError::Config)?;
        let discovery = Discovery::new(&config.include, &config.exclude)?;
        Ok(Tailer {
            config,
            discovery,
            fingerprinter: crate::fingerprint::fingerprint,
            checkpoints,
            acks: AckTracker::new(),
            files: Vec::new(),
            events,
            last_scan: None,
            scans: 0,
            cursor: 0,
            last_poll_bytes: 0,
            dirty: false,
        })
    }

    /// Replaces the identity function (tests).
    pub fn with_fingerprinter(mut self, fingerprinter: Fingerprinter) -> Tailer<E> {
        self.fingerprinter = fingerprinter;
        self
    }

    /// The settings.
    pub fn config(&self) -> &TailConfig {
        &self.config
    }

    /// Applies reloaded settings (see [`TailConfig::reloaded`] for the three
    /// that keep their values). Nothing tailed is lost: with new globs the
    /// next poll scans again, and a file no longer matched is drained and
    /// released as if it had been moved away, while a newly matched one
    /// starts at its checkpoint or its beginning (`read_from: end` applies
    /// to the first scan only). Returns the settings now in force.
    ///
    /// # Errors
    /// When the settings are invalid; then nothing changed.
    pub fn reconfigure(&mut self, file: &TailConfig) -> Result<&TailConfig, TailError> {
        let config = self.config.reloaded(file);
        config.validate().map_err(TailError::Config)?;
        if config.include != self.config.include || config.exclude != self.config.exclude {
            self.discovery = Discovery::new(&config.include, &config.exclude)?;
            self.rescan();
        }
        self.config = config;
        Ok(&self.config)
    }

    /// The event receiver.
    pub fn events(&self) -> &E {
        &self.events
    }

    /// How long a driver should sleep after a poll that returned nothing.
    pub fn poll_interval(&self) -> Duration {
        ms(self.config.poll_interval_ms)
    }

    /// Makes the next poll scan the globs, whatever `glob_interval_ms` says.
    pub fn rescan(&mut self) {
        self.last_scan = None;
    }

    /// Reads up to about `budget_bytes` of complete lines (see
    /// [`Tailer::poll_lines_at`]).
    pub fn poll_lines(&mut self, budget_bytes: usize) -> Vec<Line> {
        self.poll_lines_at(budget_bytes, Instant::now())
    }

    /// Scans the globs if `glob_interval_ms` passed, reads complete lines
    /// from the files (rotated and gone files first, then the live ones
    /// round-robin), and releases gone files that are done. Each line is
    /// registered as in flight until [`Tailer::ack`].
    ///
    /// The budget counts bytes read; reading stops between lines once it is
    /// spent, so a poll may exceed it by one line (at most `max_line_bytes +
    /// read_chunk_bytes`). Per file, at most `max_read_bytes_per_file` are
    /// read; a file with `max_in_flight_lines_per_file` lines in flight is
    /// skipped. `now` is the clock for the scan interval and the grace
    /// periods (a parameter for tests).
    pub fn poll_lines_at(&mut self, budget_bytes: usize, now: Instant) -> Vec<Line> {
        let scan_due = self
            .last_scan
            .is_none_or(|at| now.saturating_duration_since(at) >= ms(self.config.glob_interval_ms));
        if scan_due {
            self.scan(now);
        }
        let mut out = Vec::new();
        self.last_poll_bytes = 0;
        let mut remaining = budget_bytes as u64;
        for i in self.poll_order() {
            if remaining == 0 {
                break;
            }
            self.poll_file(i, now, &mut remaining, &mut out);
        }
        self.release_files(now);
        out
    }

    /// Bytes the last poll read. A driver sleeps `poll_interval` only when
    /// this is 0: a poll can make progress without handing out a line (while
    /// skipping the rest of a very long line).
    pub fn last_poll_bytes(&self) -> u64 {
        self.last_poll_bytes
    }

    /// Acknowledges the line of `file` starting at `offset`. Returns false
    /// (and reports [`TailEvents::unknown_ack`]) if no such line is in flight.
    pub fn ack(&mut self, file: &FileKey, offset: u64) -> bool {
        self.ack_through(file, offset, 0)
    }

    /// Acknowledges the line at `offset` as part of an event whose last line
    /// ends at `reach`; see [`AckTracker::ack_through`].
    pub fn ack_through(&mut self, file: &FileKey, offset: u64, reach: u64) -> bool {
        let known = self.acks.ack_through(file, offset, reach);
        if !known {
            self.events.unknown_ack(file, offset);
        }
        known
    }

    /// The acknowledged prefix of a tailed file.
    pub fn checkpoint_offset(&self, file: &FileKey) -> Option<u64> {
        self.acks.checkpoint_offset(file)
    }

    /// The in-flight bookkeeping.
    pub fn acks(&self) -> &AckTracker {
        &self.acks
    }

    /// The checkpoints, brought up to date with the acknowledgements.
    pub fn checkpoints(&mut self) -> &Checkpoints {
        self.sync_checkpoints(unix_ms_now());
        &self.checkpoints
    }

    /// Brings the checkpoints up to date, forgets those of files not seen for
    /// `checkpoint_retention_ms` (only once a scan has looked at the disk),
    /// and saves them durably to `path` if anything changed since the last
    /// save. Returns whether the file was written.
    ///
    /// A file's entry is rewritten when its offset or path moves; its
    /// `updated_unix_ms` alone is refreshed at most every
    /// `min(1 h, retention / 4)`, so an idle node does not rewrite (and
    /// `fsync`) the file every time.
    pub fn save_checkpoints(&mut self, path: &Path) -> Result<bool, CheckpointError> {
        let now_ms = unix_ms_now();
        self.sync_checkpoints(now_ms);
        if self.scans > 0 {
            let expired = self
                .checkpoints
                .gc(now_ms, self.config.checkpoint_retention_ms);
            if expired > 0 {
                self.dirty = true;
                self.events.checkpoints_expired(expired);
            }
        }
        if !self.dirty {
            return Ok(false);
        }
        self.checkpoints.save(path)?;
        self.dirty = false;
        Ok(true)
    }

    /// A snapshot of every tailed file.
    pub fn file_status(&self) -> Vec<FileStatus> {
        self.files
            .iter()
            .map(|f| self.status_of(f, f.size))
            .collect()
    }

    /// [`Tailer::file_status`] with each size read now (one `fstat` per
    /// file) rather than at the last poll: while the driver does not poll
    /// (backpressure), the lag keeps growing with the files.
    pub fn file_status_now(&self) -> Vec<FileStatus> {
        self.files
            .iter()
            .map(|f| {
                let size = f.file.metadata().map_or(f.size, |m| m.len());
                self.status_of(f, size)
            })
            .collect()
    }

    fn status_of(&self, f: &TailedFile, size: u64) -> FileStatus {
        FileStatus {
            path: f.path.clone(),
            file: f.key,
            state: f.state(),
            size,
            read_offset: f.pos.offset,
            checkpoint_offset: f.key.and_then(|k| self.acks.checkpoint_offset(&k)),
            lag_bytes: size.saturating_sub(f.pos.offset),
            in_flight: f.key.map_or(0, |k| self.acks.in_flight(&k)),
        }
    }

    fn sync_checkpoints(&mut self, now_ms: u64) {
        let refresh_ms = (self.config.checkpoint_retention_ms / 4).min(TOUCH_INTERVAL_MS);
        for f in &self.files {
            let Some(key) = f.key else { continue };
            let Some(offset) = self.acks.checkpoint_offset(&key) else {
                continue;
            };
            let stale = self.checkpoints.get(&key).is_none_or(|entry| {
                entry.offset != offset
                    || *entry.path != *f.path
                    || now_ms.saturating_sub(entry.updated_unix_ms) >= refresh_ms
            });
            if stale {
                self.checkpoints.update(key, offset, &f.path, now_ms);
                self.dirty = true;
            }
        }
    }

    /// Expands the globs: notes renamed and gone files, checks identities
    /// (copy-truncation), and opens new files.
    fn scan(&mut self, now: Instant) {
        let first_scan = self.scans == 0;
        self.scans += 1;
        self.last_scan = Some(now);

        let events = &self.events;
        let paths = self.discovery.list(|path, e| events.io_error(path, e));
        let mut found: HashMap<(u64, u64), PathBuf> = HashMap::new();
        let mut order = Vec::new();
        for path in paths {
            match fs::metadata(&path) {
                Ok(meta) if meta.is_file() => {
                    let id = (meta.dev(), meta.ino());
                    if let Entry::Vacant(slot) = found.entry(id) {
                        slot.insert(path);
                        order.push(id);
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    // A tailed file deleted since the listing is still held
                    // open and drained: only an untailed one may lose lines.
                    if !self.files.iter().any(|f| *f.path == *path) {
                        self.events.file_vanished(&path);
                    }
                }
                Err(e) => self.events.io_error(&path, &e),
            }
        }

        for f in &mut self.files {
            match found.remove(&(f.dev, f.ino)) {
                Some(path) => {
                    if *f.path != *path {
                        if let Some(key) = &f.key {
                            self.events.file_rotated(key, &f.path, &path);
                        }
                        f.path = Arc::from(path);
                        f.renamed = true;
                    }
                    f.gone = None;
                }
                None if f.gone.is_none() => {
                    let deleted = f.file.metadata().map_or(true, |m| m.nlink() == 0);
                    if let Some(key) = &f.key {
                        self.events.file_gone(key, &f.path, deleted);
                    }
                    f.gone = Some(Gone {
                        since: now,
                        deleted,
                        drained_since: None,
                    });
                }
                None => {}
            }
        }

        for i in 0..self.files.len() {
            self.check_identity(i, now);
        }

        let mut candidates = Vec::new();
        for id in order {
            if let Some(path) = found.remove(&id)
                && let Some(candidate) = self.open_candidate(path)
            {
                candidates.push(candidate);
            }
        }
        // Exact checkpoint matches first, so that a fingerprint-only match
        // cannot take the entry of a file that is here too.
        candidates.sort_by_key(|c| self.checkpoints.get(&c.key).is_none());
        let present: HashSet<FileKey> = self
            .files
            .iter()
            .filter_map(|f| f.key)
            .chain(candidates.iter().map(|c| c.key))
            .collect();
        for candidate in candidates {
            self.add_file(candidate, first_scan, &present, now);
        }
    }

    /// Opens and identifies a newly matched path.
    fn open_candidate(&self, path: PathBuf) -> Option<Candidate> {
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.events.file_vanished(&path);
                return None;
            }
            Err(e) => {
                self.events.io_error(&path, &e);
                return None;
            }
        };
        let meta = match file.metadata() {
            Ok(meta) => meta,
            Err(e) => {
                self.events.io_error(&path, &e);
                return None;
            }
        };
        let (dev, ino) = (meta.dev(), meta.ino());
        if self.files.iter().any(|f| f.dev == dev && f.ino == ino) {
            // Renamed between the listing and the open: already tailed.
            return None;
        }
        let head = match reader::read_head(&file, 0, FINGERPRINT_BYTES) {
            Ok(head) => head,
            Err(e) => {
                self.events.io_error(&path, &e);
                return None;
            }
        };
        let Some(fingerprint) = (self.fingerprinter)(&head) else {
            self.events.file_unidentified(&path);
            return None;
        };
        Some(Candidate {
            key: FileKey::new(fingerprint, dev, ino),
            path,
            file,
            size: meta.len(),
        })
    }

    /// Starts tailing a candidate at its checkpoint or per `read_from`.
    fn add_file(
        &mut self,
        c: Candidate,
        first_scan: bool,
        present: &HashSet<FileKey>,
        now: Instant,
    ) {
        let resume = self
            .checkpoints
            .find_resume(&c.key, |k| present.contains(k));
        let (offset, from) = match policy::start(resume, c.size, first_scan, self.config.read_from)
        {
            Start::At(offset, from) => (offset, from),
            Start::LastLineBoundary => {
                match reader::last_line_start(&c.file, c.size, self.config.read_chunk_bytes) {
                    Ok(offset) => (offset, StartFrom::End),
                    Err(e) => {
                        self.events.io_error(&c.path, &e);
                        return;
                    }
                }
            }
        };
        match (resume, from) {
            (Some(Resume::Fingerprint { previous, .. }), StartFrom::MovedCheckpoint) => {
                self.checkpoints.adopt(&previous, c.key);
                self.dirty = true;
            }
            (Some(r), StartFrom::CheckpointPastEnd) => {
                self.events
                    .file_truncated(&c.key, &c.path, r.offset(), c.size);
            }
            _ => {}
        }
        if let Some(other) = self
            .files
            .iter()
            .find(|f| f.key.is_some_and(|k| k.fingerprint == c.key.fingerprint))
        {
            self.events
                .fingerprint_collision(&c.key, &c.path, &other.path);
        }
        self.acks.open(c.key, offset);
        self.events.file_added(&c.key, &c.path, offset, from);
        self.files.push(TailedFile {
            key: Some(c.key),
            dev: c.key.dev,
            ino: c.key.ino,
            path: Arc::from(c.path),
            file: c.file,
            pos: ReadPos::at(offset),
            examined: offset,
            size: c.size,
            last_change: now,
            renamed: false,
            gone: None,
        });
    }

    /// Reads the head again: a changed fingerprint means the content was
    /// replaced in place (copy-truncate); an unidentified file may now be
    /// identifiable.
    fn check_identity(&mut self, i: usize, now: Instant) {
        let Some(f) = self.files.get(i) else { return };
        let head = match reader::read_head(&f.file, 0, FINGERPRINT_BYTES) {
            Ok(head) => head,
            Err(e) => {
                self.events.io_error(&f.path, &e);
                return;
            }
        };
        let fingerprint = (self.fingerprinter)(&head);
        match f.key {
            Some(key) if Some(key.fingerprint) != fingerprint => {
                let size = f.file.metadata().map_or(0, |m| m.len());
                self.truncated(i, size, now);
            }
            Some(_) => {}
            None => {
                if let Some(fingerprint) = fingerprint {
                    self.identify(i, fingerprint);
                }
            }
        }
    }

    /// The content of file `i` was truncated: forget its old identity and
    /// read it again from 0.
    fn truncated(&mut self, i: usize, size: u64, now: Instant) {
        let Some(f) = self.files.get_mut(i) else {
            return;
        };
        if let Some(old) = f.key.take() {
            self.events
                .file_truncated(&old, &f.path, f.pos.offset, size);
            // Late acks of the old content are ignored from now on.
            self.acks.close(&old);
            self.checkpoints.remove(&old);
            self.dirty = true;
        }
        f.pos = ReadPos::at(0);
        f.examined = 0;
        f.size = size;
        f.last_change = now;
        let head = reader::read_head(&f.file, 0, FINGERPRINT_BYTES);
        match head.map(|head| (self.fingerprinter)(&head)) {
            Ok(Some(fingerprint)) => self.identify(i, fingerprint),
            Ok(None) => {}
            Err(e) => self.events.io_error(&f.path, &e),
        }
    }

    /// Gives unidentified file `i` its identity; it is read from 0.
    fn identify(&mut self, i: usize, fingerprint: u64) {
        let Some(f) = self.files.get_mut(i) else {
            return;
        };
        let key = FileKey::new(fingerprint, f.dev, f.ino);
        f.key = Some(key);
        f.pos = ReadPos::at(0);
        f.examined = 0;
        self.acks.open(key, 0);
        self.events
            .file_added(&key, &f.path, 0, StartFrom::Beginning);
    }

    /// Rotated and gone files first (in discovery order, oldest first, as
    /// `files` keeps it), then live files round-robin from a moving start.
    fn poll_order(&mut self) -> Vec<usize> {
        let (mut order, mut live): (Vec<usize>, Vec<usize>) =
            (0..self.files.len()).partition(|&i| self.files[i].writer_moved_on());
        if !live.is_empty() {
            let start = self.cursor % live.len();
            live.rotate_left(start);
        }
        self.cursor = self.cursor.wrapping_add(1);
        order.extend(live);
        order
    }

    /// Reads what file `i` has, within the budgets, into `out`.
    fn poll_file(&mut self, i: usize, now: Instant, remaining: &mut u64, out: &mut Vec<Line>) {
        let limits = Limits {
            max_line: self.config.max_line_bytes,
            chunk: self.config.read_chunk_bytes,
        };
        let Some(f) = self.files.get_mut(i) else {
            return;
        };
        let Some(key) = f.key else { return };
        let in_flight = self.acks.in_flight(&key);
        if in_flight >= self.config.max_in_flight_lines_per_file {
            return;
        }
        let size = match f.file.metadata() {
            Ok(meta) => meta.len(),
            Err(e) => {
                self.events.io_error(&f.path, &e);
                return;
            }
        };
        if size < f.pos.horizon() {
            self.truncated(i, size, now);
            return;
        }
        if size != f.size {
            f.size = size;
            f.last_change = now;
        }
        // An unterminated tail that got shorter: look at it again.
        f.examined = f.examined.min(size);

        let mut raw = Vec::new();
        let mut at_eof = size <= f.examined.max(f.pos.horizon());
        if !at_eof {
            let budget = Budget {
                bytes: (*remaining).min(self.config.max_read_bytes_per_file as u64),
                lines: self.config.max_in_flight_lines_per_file - in_flight,
            };
            match reader::read_lines(&f.file, &mut f.pos, limits, budget, &mut raw) {
                Ok(outcome) => {
                    *remaining = remaining.saturating_sub(outcome.consumed);
                    self.last_poll_bytes += outcome.consumed;
                    if let Some(end) = outcome.eof_at {
                        f.examined = end;
                        at_eof = true;
                    }
                }
                Err(e) => self.events.io_error(&f.path, &e),
            }
        }
        let flush_due = at_eof
            && f.pos.offset < size
            && f.writer_moved_on()
            && now.saturating_duration_since(f.last_change) >= ms(self.config.rotated_flush_ms);
        if flush_due {
            match reader::flush_unterminated(&f.file, &mut f.pos, size, limits.max_line) {
                Ok(Some(line)) => {
                    self.events
                        .unterminated_line_flushed(&key, &f.path, line.offset);
                    raw.push(line);
                }
                Ok(None) => {}
                Err(e) => self.events.io_error(&f.path, &e),
            }
        }

        let mut bytes = 0;
        let mut lines = 0;
        for RawLine {
            offset,
            end,
            bytes: line,
            truncated,
            cut_tail,
        } in raw
        {
            if let Err(e) = self.acks.register(&key, offset, end) {
                // Cannot happen: the reader hands out ranges in order from the
                // offset the tracker was opened at. Refuse rather than let the
                // checkpoint pass a line it does not know.
                tracing::error!(file = %key, path = %f.path.display(), error = %e, "line not handed out");
                debug_assert!(false, "ack register failed: {e}");
                break;
            }
            if truncated {
                self.events
                    .line_truncated(&key, &f.path, offset, end - offset - 1);
            }
            lines += 1;
            bytes += end - offset;
            out.push(Line {
                file: key,
                path: f.path.clone(),
                offset,
                end,
                bytes: line,
                truncated,
                cut_tail,
            });
        }
        if lines > 0 {
            self.events.lines_read(&key, &f.path, lines, bytes);
        }
    }

    /// Closes gone files that are drained and acknowledged, or past their
    /// grace period.
    fn release_files(&mut self, now: Instant) {
        let grace = ms(self.config.deleted_file_grace_ms);
        let max_hold = self.config.deleted_file_max_hold_ms.map(ms);
        let mut i = 0;
        while let Some(f) = self.files.get_mut(i) {
            let Some(gone) = &mut f.gone else {
                i += 1;
                continue;
            };
            let size = f.file.metadata().map_or(f.size, |m| m.len());
            let drained = f.pos.skip_scanned.is_none() && f.pos.offset >= size;
            gone.drained_since = match (drained, gone.drained_since) {
                (false, _) => None,
                (true, None) => Some(now),
                (true, since) => since,
            };
            let in_flight = f.key.map_or(0, |k| self.acks.in_flight(&k));
            let decision = match f.key {
                // Truncated and never identified again: nothing to wait for.
                None => Release::Done,
                Some(_) => policy::release(
                    GoneFile {
                        gone_for: now.saturating_duration_since(gone.since),
                        drained_for: gone
                            .drained_since
                            .map(|at| now.saturating_duration_since(at)),
                        in_flight,
                    },
                    grace,
                    max_hold,
                ),
            };
            if decision == Release::Keep {
                i += 1;
                continue;
            }
            let f = self.files.remove(i);
            let Some(key) = f.key else { continue };
            match decision {
                Release::Done | Release::Keep => self.events.file_released(&key, &f.path),
                Release::Unacked => {
                    self.events
                        .deleted_released_unacked(&key, &f.path, in_flight);
                }
                Release::Undrained => self.events.deleted_released_undrained(
                    &key,
                    &f.path,
                    size.saturating_sub(f.pos.offset),
                ),
            }
            if let Some(offset) = self.acks.close(&key) {
                self.checkpoints.update(key, offset, &f.path, unix_ms_now());
                self.dirty = true;
            }
        }
    }
}
