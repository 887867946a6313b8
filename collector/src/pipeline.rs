//! The collector's main loop: tail → parse → reassemble → multiline → event
//! → sink, and receipts back into the checkpoints.
//!
//! One thread drives everything: the tailer is a pull-based state machine and
//! the sink reports deliveries through a channel, so no locks are needed and
//! backpressure is simply "don't poll the tailer".
//!
//! # How acknowledgements map to lines
//!
//! Every line the tailer hands out is acknowledged exactly once:
//! - a line dropped on purpose (malformed) at once;
//! - a line joined into an event as a continuation when the event is built;
//! - the first line of an event when the sink confirms the event, together
//!   with how far the event reaches, so the checkpoint never stops inside it
//!   (see `AckTracker::ack_through`).
//!
//! Lines of one stream of one file go through the reassembler and the
//! multiline joiner in order, and their events come out in order. So each
//! emitted event owns exactly the queued lines of its stream from its own
//! offset up to the next event's offset (or the stream's pending offset).
//!
//! # Pod metadata
//!
//! With a [`MetadataCache`] ([`Pipeline::with_metadata`]) each file looks up
//! its pod when it is opened and again whenever the cache's generation
//! moved (once per round, never per line): its event builder gets the
//! pod's labels, owner, node and image, and the annotations decide whether
//! the file is shipped and which multiline rule joins it. Lines of an
//! excluded file are still read, so its checkpoint moves on, and are
//! acknowledged at once and counted as dropped (`excluded`). A new file
//! whose pod is not known yet has its lines held back for at most
//! `unknown_pod_wait` (and [`MAX_HELD_BYTES`] over all files), then they go
//! out with path metadata only. An open file keeps its pod's metadata after
//! the pod is deleted, until the file is released.
//!
//! # Telemetry and reloads
//!
//! What happens is reported through [`crate::internal_events`] into the
//! pipeline's [`Metrics`]; every round beats the [`Health`] heartbeat that
//! `/healthz` reads. [`Pipeline::reconfigure`] applies reloaded settings
//! between two rounds: in-flight events, queued lines and pending partial
//! lines are kept; only multiline events pending under a rule that changes
//! are sent early, as they are.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use kelp_record::{Event, Flag, Stream};

use self::tokens::TokenMap;
use crate::checkpoint::FileKey;
use crate::health::Health;
use crate::internal_events::{
    AnnotationsInvalid, CheckpointSaveFailed, CheckpointsSaved, ContainerLabels, DeliveryFailed,
    EventAcked, EventTruncated, EventsSent, FileExclusionChanged, InFlight as InFlightGauge,
    LineDropped, LinesExcluded, MetadataMissing, Metrics, PodUnknown, TailState, UNDETECTED_FORMAT,
};
use crate::metadata::{Exclusion, FileMeta, MetadataCache};
use crate::parse::event::{Enrichment, EventBuilder, Source};
use crate::parse::multiline::{self, Multiline, RuleName};
use crate::parse::path::PathMeta;
use crate::parse::path::parse_path;
use crate::parse::reassemble::{Assembled, Reassembler};
use crate::parse::{Format, detect, parse_cut_line, parse_line};
use crate::sink::{DeliveryFailure, KeyChoice, Outgoing, Receipt, Refused, Sink};
use crate::tail::{FileState, Line, TailConfig, TailError, TailEvents, Tailer};

/// Settings of the pipeline that are not the tailer's or the sink's.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Node name for `host.name` and `kubernetes.node.name`.
    pub node_name: String,
    /// The fixed format, or `None` to detect it per file.
    pub format: Option<Format>,
    /// Largest event.
    pub max_event_bytes: usize,
    /// Multiline rule and limits.
    pub multiline: multiline::Config,
    /// Topic template (`{namespace}` is replaced).
    pub topic: String,
    /// Message key.
    pub key: KeyChoice,
    /// Most events in flight before reading pauses.
    pub max_in_flight_events: usize,
    /// First retry delay.
    pub retry_base: Duration,
    /// Longest retry delay.
    pub retry_cap: Duration,
    /// How often checkpoints are saved.
    pub checkpoint_interval: Duration,
    /// Where checkpoints are saved.
    pub checkpoint_path: std::path::PathBuf,
    /// Bound on waiting for acknowledgements at shutdown.
    pub shutdown_timeout: Duration,
}

/// Counters of what the pipeline did in this run, for its summary and tests;
/// the metrics ([`Metrics`]) count the same through the internal events.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Stats {
    /// Lines handed out by the tailer.
    pub lines_read: u64,
    /// Events offered to the sink (first attempts).
    pub events_sent: u64,
    /// Events the sink acknowledged.
    pub events_acked: u64,
    /// Lines dropped as malformed, by reason.
    pub malformed: HashMap<&'static str, u64>,
    /// Failed deliveries (each retried), by reason.
    pub delivery_failures: HashMap<&'static str, u64>,
    /// Checkpoint saves that failed (retried at the next interval).
    pub checkpoint_save_failures: u64,
    /// Lines dropped because an annotation excludes their pod or container.
    pub excluded_lines: u64,
    /// Events sent with path metadata only, their pod unknown to the API.
    pub metadata_missing: u64,
}

/// How `run` ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Follow files until stopped.
    Follow,
    /// Read everything present, deliver it, checkpoint, return.
    Batch,
}

/// Why the pipeline stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The final checkpoint could not be written.
    #[error("saving checkpoints failed: {0}")]
    Checkpoint(#[from] crate::checkpoint::CheckpointError),
}

/// One line waiting for its event.
#[derive(Debug, Clone, Copy)]
struct Queued {
    start: u64,
    end: u64,
    truncated: bool,
}

/// Parsing state of one file.
#[derive(Debug)]
struct FilePipe {
    format: Option<Format>,
    builder: Option<EventBuilder>,
    path: String,
    /// The file's topic and message key, rendered once: they depend only on the path.
    topic: Arc<str>,
    key: Arc<[u8]>,
    reassembler: Reassembler,
    multiline: Multiline,
    /// Lines per stream not yet owned by an emitted event.
    queued: [VecDeque<Queued>; 2],
    /// What the path says; read once.
    path_meta: Option<PathMeta>,
    /// The pod and namespace last looked up.
    meta: FileMeta,
    /// The API's metadata for the events, when the pod is known.
    enrichment: Option<Enrichment>,
    /// Metadata is on and the pod unknown: events go out with path metadata.
    missing: bool,
    /// Set while an annotation excludes the file.
    excluded: Option<Exclusion>,
    /// The multiline rule an annotation chose.
    rule: Option<RuleName>,
    /// Lines held back until the pod is known or the wait ends.
    hold: Option<Hold>,
}

/// Lines of a new file held back while its pod is unknown.
#[derive(Debug)]
struct Hold {
    since_ms: u64,
    until_ms: u64,
    lines: Vec<Line>,
    bytes: usize,
}

/// Most bytes of lines held back over all files waiting for their pod; the
/// file whose line goes past it is released at once. Bounds memory when
/// many files of unknown pods appear together.
pub const MAX_HELD_BYTES: usize = 8 * 1024 * 1024;

/// The metadata cache and the pipeline's use of it.
#[derive(Debug)]
struct MetadataState {
    cache: Arc<MetadataCache>,
    unknown_pod_wait_ms: u64,
    /// The generation every file was last refreshed at.
    generation: u64,
    held_bytes: usize,
    holding: usize,
}

/// The multiline settings of a file: the configured ones, with the rule an
/// annotation chose.
fn multiline_config(base: &multiline::Config, rule: Option<RuleName>) -> multiline::Config {
    let mut config = base.clone();
    if let Some(rule) = rule {
        config.rule = multiline::Rule::from(rule);
    }
    config
}

impl FilePipe {
    /// Emits every open event: unfinished split lines (through the multiline
    /// joiner, so they keep its order) and the pending multiline events.
    fn flush(&mut self, now_ms: u64, events: &mut Vec<Assembled>) {
        let mut partials = Vec::new();
        self.reassembler.flush(&mut partials);
        for assembled in partials {
            self.multiline.push(now_ms, assembled, events);
        }
        self.multiline.flush(events);
    }
}

/// An event sent and not yet acknowledged.
#[derive(Debug)]
struct InFlight {
    file: FileKey,
    first: u64,
    reach: u64,
    topic: Arc<str>,
    key: Arc<[u8]>,
    /// The encoded record while the pipeline must keep it: waiting for room
    /// in the sink, due for a re-send, or always with a sink that does not
    /// hand payloads back. `None` while the sink holds the only copy.
    payload: Option<Vec<u8>>,
    attempts: u32,
    /// When it was last offered to the sink.
    offered: Instant,
}

/// The collector pipeline; see the module docs.
#[derive(Debug)]
pub struct Pipeline<S: Sink, E: TailEvents> {
    tailer: Tailer<E>,
    sink: S,
    settings: Settings,
    files: HashMap<FileKey, FilePipe>,
    in_flight: TokenMap<InFlight>,
    retries: VecDeque<(Instant, u64)>,
    next_token: u64,
    started: Instant,
    stats: Stats,
    scratch: Vec<Assembled>,
    emit_scratch: EmitScratch,
    /// The clock, read once per round: it only orders retries and times
    /// deliveries, so a read per event is not worth its cost.
    now: Instant,
    receipts: Vec<Receipt>,
    /// Events the sink refused with a full queue, in send order.
    unsent: VecDeque<u64>,
    last_finished_check: Instant,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    last_gauges: Option<Instant>,
    metadata: Option<MetadataState>,
}

/// Buffers [`Pipeline::emit`] reuses: it runs once per line, so fresh
/// vectors would be several allocations per event.
#[derive(Debug, Default)]
struct EmitScratch {
    next_of_stream: Vec<Option<u64>>,
    continuation_acks: Vec<u64>,
    outgoing: Vec<(InFlight, Range<usize>)>,
    /// The encoded records of one call, back to back.
    encoded: Vec<u8>,
}

/// How often the gauges computed from the tailer's files are refreshed.
const GAUGE_INTERVAL: Duration = Duration::from_secs(1);

fn stream_slot(stream: Stream) -> usize {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
    }
}

impl<S: Sink, E: TailEvents> Pipeline<S, E> {
    /// A pipeline over a tailer (with its checkpoints loaded) and a sink.
    pub fn new(tailer: Tailer<E>, sink: S, settings: Settings) -> Self {
        Pipeline {
            tailer,
            sink,
            settings,
            files: HashMap::new(),
            in_flight: TokenMap::default(),
            retries: VecDeque::new(),
            next_token: 0,
            started: Instant::now(),
            stats: Stats::default(),
            scratch: Vec::new(),
            emit_scratch: EmitScratch::default(),
            now: Instant::now(),
            receipts: Vec::new(),
            unsent: VecDeque::new(),
            last_finished_check: Instant::now(),
            metrics: Arc::new(Metrics::new()),
            health: Arc::new(Health::new(Duration::from_secs(30))),
            last_gauges: None,
            metadata: None,
        }
    }

    /// Enriches events from `cache` and honours the annotations it holds;
    /// files of unknown pods wait up to `unknown_pod_wait` for them.
    pub fn with_metadata(mut self, cache: Arc<MetadataCache>, unknown_pod_wait: Duration) -> Self {
        self.metadata = Some(MetadataState {
            cache,
            unknown_pod_wait_ms: u64::try_from(unknown_pod_wait.as_millis()).unwrap_or(u64::MAX),
            generation: u64::MAX,
            held_bytes: 0,
            holding: 0,
        });
        self
    }

    /// Reports into `metrics` (by default a registry of its own); share it
    /// with the tailer's events and the server.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Beats `health`'s heartbeat every round (by default one of its own).
    pub fn with_health(mut self, health: Arc<Health>) -> Self {
        self.health = health;
        self
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Applies reloaded settings and tail settings between two rounds. Lines
    /// read, events in flight and retries are kept. New events use the new
    /// settings; a file's multiline events pending under a rule that changes
    /// are sent now, as they are, so each event is joined by one rule.
    /// `node_name`, `format`, `max_event_bytes`, `topic`, `key` and
    /// `checkpoint_path` apply to files opened afterwards at most; the
    /// binary keeps them unchanged until a restart.
    ///
    /// # Errors
    /// When the tail settings are invalid; then nothing changed.
    pub fn reconfigure(&mut self, settings: Settings, tail: &TailConfig) -> Result<(), TailError> {
        self.tailer.reconfigure(tail)?;
        self.settings = settings;
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let mut events = Vec::new();
            if let Some(pipe) = self.files.get_mut(&key) {
                pipe.multiline.reconfigure(
                    multiline_config(&self.settings.multiline, pipe.rule),
                    &mut events,
                );
            }
            self.emit(key, events);
        }
        Ok(())
    }

    /// What the pipeline did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The tailer, e.g. for per-file lag.
    pub fn tailer(&self) -> &Tailer<E> {
        &self.tailer
    }

    /// Runs until `stop` is set (or, in batch mode, until everything present
    /// is delivered), then waits a bounded time for acknowledgements and
    /// saves the checkpoints.
    ///
    /// # Errors
    /// When the final checkpoint cannot be written.
    pub fn run(&mut self, mode: Mode, stop: &AtomicBool) -> Result<(), PipelineError> {
        self.run_with(mode, stop, &AtomicBool::new(false), |_| {})
    }

    /// [`Pipeline::run`], calling `on_reload` between two rounds whenever
    /// `reload` was set (SIGHUP); it may call [`Pipeline::reconfigure`].
    ///
    /// # Errors
    /// When the final checkpoint cannot be written.
    pub fn run_with(
        &mut self,
        mode: Mode,
        stop: &AtomicBool,
        reload: &AtomicBool,
        mut on_reload: impl FnMut(&mut Self),
    ) -> Result<(), PipelineError> {
        let mut last_save = Instant::now();
        let mut idle_polls = 0u32;
        loop {
            let busy = self.step();
            if last_save.elapsed() >= self.settings.checkpoint_interval {
                self.save_checkpoints();
                last_save = Instant::now();
            }
            self.refresh_gauges_if_due();
            if reload.swap(false, Ordering::Relaxed) {
                on_reload(self);
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
            if mode == Mode::Batch {
                idle_polls = if busy { 0 } else { idle_polls + 1 };
                // Two empty polls with a rescan between them: nothing more to read.
                if idle_polls == 1 {
                    self.tailer.rescan();
                }
                if idle_polls >= 2 {
                    self.flush_all();
                    if self.in_flight.is_empty() {
                        break;
                    }
                }
            }
        }
        self.drain(self.settings.shutdown_timeout);
        self.refresh_gauges();
        match self.tailer.save_checkpoints(&self.settings.checkpoint_path) {
            Ok(written) => {
                CheckpointsSaved { written }.emit(&self.metrics);
                Ok(())
            }
            Err(error) => {
                CheckpointSaveFailed {
                    error: &error,
                    last: true,
                }
                .emit(&self.metrics);
                Err(PipelineError::from(error))
            }
        }
    }

    fn refresh_gauges_if_due(&mut self) {
        if self
            .last_gauges
            .is_none_or(|at| at.elapsed() >= GAUGE_INTERVAL)
        {
            self.refresh_gauges();
        }
    }

    /// Files tailed, events in flight, and unread bytes per container.
    fn refresh_gauges(&mut self) {
        self.last_gauges = Some(Instant::now());
        let files = self.tailer.file_status_now();
        let mut lag: HashMap<ContainerLabels, u64> = HashMap::new();
        for file in &files {
            *lag.entry(ContainerLabels::of_path(&file.path)).or_default() += file.lag_bytes;
        }
        TailState {
            files: files.len(),
            in_flight_events: self.in_flight.len(),
            lag,
        }
        .emit(&self.metrics);
    }

    /// One round: receipts, retries, reading, timers. Returns whether it read
    /// lines or was held back by the sink.
    fn step(&mut self) -> bool {
        self.now = Instant::now();
        let now_ms = self.now_ms();
        self.offer_unsent();
        let room =
            self.unsent.is_empty() && self.in_flight.len() < self.settings.max_in_flight_events;
        let lines = if room {
            self.tailer.poll_lines(4 * 1024 * 1024)
        } else {
            Vec::new()
        };
        let busy = !lines.is_empty();
        self.refresh_metadata(now_ms);
        for line in lines {
            self.take_line(line, now_ms);
        }
        self.flush_expired(now_ms);
        if self.last_finished_check.elapsed() >= Duration::from_millis(500) {
            self.last_finished_check = Instant::now();
            self.flush_finished_files();
        }
        self.resend_due();
        // Idle rounds wait on receipts, which doubles as the poll interval.
        let wait = if busy || !room {
            if room {
                Duration::ZERO
            } else {
                Duration::from_millis(10)
            }
        } else {
            self.tailer.poll_interval()
        };
        self.collect_receipts(wait);
        // Held back by the sink counts as busy: batch mode must not take it for the end.
        busy || !room
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn save_checkpoints(&mut self) {
        match self.tailer.save_checkpoints(&self.settings.checkpoint_path) {
            Ok(written) => CheckpointsSaved { written }.emit(&self.metrics),
            Err(error) => {
                self.stats.checkpoint_save_failures += 1;
                CheckpointSaveFailed {
                    error: &error,
                    last: false,
                }
                .emit(&self.metrics);
            }
        }
    }

    fn take_line(&mut self, line: Line, now_ms: u64) {
        self.stats.lines_read += 1;
        if !self.files.contains_key(&line.file) {
            self.open_file(&line, now_ms);
        }
        self.process_line(line, now_ms, true);
    }

    /// The parsing state of a file seen for the first time: its topic and
    /// key, and with metadata on, its pod's metadata or a hold until it is known.
    fn open_file(&mut self, line: &Line, now_ms: u64) {
        let path = line.path.to_string_lossy().into_owned();
        let path_meta = parse_path(&path);
        let (namespace, pod_uid) = path_meta.as_ref().map_or(("", ""), |m| {
            (
                m.namespace.as_str(),
                m.pod_uid.as_deref().unwrap_or_default(),
            )
        });
        let topic = Arc::from(self.settings.topic.replace("{namespace}", namespace));
        let key: Arc<[u8]> = match self.settings.key {
            KeyChoice::File => format!("{:016x}", line.file.fingerprint)
                .into_bytes()
                .into(),
            KeyChoice::Pod => pod_uid.as_bytes().into(),
            KeyChoice::None => Arc::from(&[][..]),
        };
        let mut pipe = FilePipe {
            format: self.settings.format,
            builder: None,
            path,
            topic,
            key,
            reassembler: Reassembler::new(self.settings.max_event_bytes),
            multiline: Multiline::new(self.settings.multiline.clone()),
            queued: [VecDeque::new(), VecDeque::new()],
            path_meta,
            meta: FileMeta::default(),
            enrichment: None,
            missing: false,
            excluded: None,
            rule: None,
            hold: None,
        };
        if let Some(state) = &mut self.metadata {
            pipe.meta.refresh(&state.cache, pipe.path_meta.as_ref());
            let mut events = Vec::new();
            apply_metadata(
                &mut pipe,
                &state.cache,
                &self.settings.multiline,
                now_ms,
                &self.metrics,
                &mut events,
            );
            if pipe.missing && pipe.path_meta.is_some() {
                if state.unknown_pod_wait_ms > 0 {
                    pipe.hold = Some(Hold {
                        since_ms: now_ms,
                        until_ms: now_ms.saturating_add(state.unknown_pod_wait_ms),
                        lines: Vec::new(),
                        bytes: 0,
                    });
                    state.holding += 1;
                } else {
                    PodUnknown {
                        path: &pipe.path,
                        waited_ms: 0,
                    }
                    .emit(&self.metrics);
                }
            }
        }
        self.files.insert(line.file, pipe);
    }

    /// Looks every file's pod up again when the cache changed, and releases
    /// the held lines of files whose pod arrived or whose wait ended.
    fn refresh_metadata(&mut self, now_ms: u64) {
        let Some(state) = &mut self.metadata else {
            return;
        };
        let generation = state.cache.generation();
        let changed = generation != state.generation;
        if !changed && state.holding == 0 {
            return;
        }
        state.generation = generation;
        let mut release = Vec::new();
        let mut emits = Vec::new();
        for (key, pipe) in &mut self.files {
            if changed && pipe.meta.refresh(&state.cache, pipe.path_meta.as_ref()) {
                let mut events = Vec::new();
                apply_metadata(
                    pipe,
                    &state.cache,
                    &self.settings.multiline,
                    now_ms,
                    &self.metrics,
                    &mut events,
                );
                if !events.is_empty() {
                    emits.push((*key, events));
                }
            }
            if let Some(hold) = &pipe.hold
                && (!pipe.missing || hold.until_ms <= now_ms)
            {
                release.push(*key);
            }
        }
        for (key, events) in emits {
            self.emit(key, events);
        }
        for key in release {
            self.release(key, now_ms);
        }
    }

    /// Ends a file's hold: its lines go through the pipeline, with the
    /// pod's metadata if it arrived, else with the path's.
    fn release(&mut self, key: FileKey, now_ms: u64) {
        let Some(pipe) = self.files.get_mut(&key) else {
            return;
        };
        let Some(hold) = pipe.hold.take() else {
            return;
        };
        if let Some(state) = &mut self.metadata {
            state.held_bytes = state.held_bytes.saturating_sub(hold.bytes);
            state.holding = state.holding.saturating_sub(1);
        }
        if pipe.missing {
            PodUnknown {
                path: &pipe.path,
                waited_ms: now_ms.saturating_sub(hold.since_ms),
            }
            .emit(&self.metrics);
        }
        for line in hold.lines {
            self.process_line(line, now_ms, false);
        }
    }

    fn release_all(&mut self, now_ms: u64) {
        let held: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, pipe)| pipe.hold.is_some())
            .map(|(key, _)| *key)
            .collect();
        for key in held {
            self.release(key, now_ms);
        }
    }

    /// Parses one line of an open file into its pipe; with `may_hold`, a
    /// line of a file on hold joins the held ones instead.
    fn process_line(&mut self, line: Line, now_ms: u64, may_hold: bool) {
        let key = line.file;
        let Some(pipe) = self.files.get_mut(&key) else {
            return;
        };
        if may_hold && let (Some(hold), Some(state)) = (&mut pipe.hold, &mut self.metadata) {
            hold.bytes += line.bytes.len();
            state.held_bytes += line.bytes.len();
            hold.lines.push(line);
            if state.held_bytes > MAX_HELD_BYTES {
                self.release(key, now_ms);
            }
            return;
        }
        if pipe.excluded.is_some() {
            self.stats.excluded_lines += 1;
            LinesExcluded { lines: 1 }.emit(&self.metrics);
            self.tailer.ack(&line.file, line.offset);
            return;
        }
        let format = match pipe.format {
            Some(format) => format,
            None => match detect(&line.bytes) {
                Some(format) => {
                    pipe.format = Some(format);
                    format
                }
                None => {
                    self.malformed(&line, UNDETECTED_FORMAT);
                    return;
                }
            },
        };
        let parsed = if line.truncated {
            parse_cut_line(format, &line.bytes, &line.cut_tail)
        } else {
            parse_line(format, &line.bytes)
        };
        let parsed = match parsed {
            Ok(parsed) => parsed,
            Err(malformed) => {
                self.malformed(&line, malformed.reason.as_str());
                return;
            }
        };
        let slot = stream_slot(parsed.stream);
        pipe.queued[slot].push_back(Queued {
            start: line.offset,
            end: line.end,
            truncated: line.truncated,
        });
        self.scratch.clear();
        if let Some(assembled) = pipe.reassembler.push(line.offset, parsed) {
            pipe.multiline.push(now_ms, assembled, &mut self.scratch);
        }
        let events = std::mem::take(&mut self.scratch);
        self.emit(line.file, events);
    }

    fn malformed(&mut self, line: &Line, reason: &'static str) {
        *self.stats.malformed.entry(reason).or_default() += 1;
        LineDropped {
            reason,
            path: &line.path,
            offset: line.offset,
        }
        .emit(&self.metrics);
        self.tailer.ack(&line.file, line.offset);
    }

    fn flush_expired(&mut self, now_ms: u64) {
        let due: Vec<FileKey> = self
            .files
            .iter()
            .filter(|(_, pipe)| {
                pipe.multiline
                    .next_deadline_ms()
                    .is_some_and(|d| d <= now_ms)
            })
            .map(|(key, _)| *key)
            .collect();
        for key in due {
            let mut events = Vec::new();
            if let Some(pipe) = self.files.get_mut(&key) {
                pipe.multiline.flush_expired(now_ms, &mut events);
            }
            self.emit(key, events);
        }
    }

    /// Sends the open events of files the kubelet rotated away and that are
    /// read to the end: their writer has moved on, so nothing can join them.
    /// Waiting for the flush timeout instead would let a collector that
    /// restarts often never send a rotated file's last event before the
    /// kubelet deletes the file.
    fn flush_finished_files(&mut self) {
        let finished: Vec<FileKey> = self
            .tailer
            .file_status()
            .into_iter()
            .filter(|status| {
                let rotated = match status.state {
                    FileState::Rotated | FileState::Gone { .. } => true,
                    FileState::Live => status
                        .path
                        .file_name()
                        .is_some_and(|name| name.to_string_lossy().contains(".log.")),
                    FileState::Unidentified => false,
                };
                rotated && status.lag_bytes == 0
            })
            .filter_map(|status| status.file)
            .collect();
        for key in finished {
            let mut events = Vec::new();
            if let Some(pipe) = self.files.get_mut(&key) {
                if pipe.reassembler.pending_offset().is_none()
                    && pipe.multiline.pending_offset().is_none()
                {
                    continue;
                }
                let now_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
                pipe.flush(now_ms, &mut events);
            }
            self.emit(key, events);
        }
        // Forget the parsing state of files the tailer released.
        let tailer = &self.tailer;
        self.files.retain(|key, _| tailer.acks().contains(key));
        if let Some(state) = &mut self.metadata {
            let held = self.files.values().filter_map(|pipe| pipe.hold.as_ref());
            (state.holding, state.held_bytes) = held.fold((0, 0), |(files, bytes), hold| {
                (files + 1, bytes + hold.bytes)
            });
        }
    }

    /// Flushes every partial and multiline event: the end of a batch run.
    fn flush_all(&mut self) {
        let now_ms = self.now_ms();
        self.release_all(now_ms);
        let keys: Vec<FileKey> = self.files.keys().copied().collect();
        for key in keys {
            let mut events = Vec::new();
            if let Some(pipe) = self.files.get_mut(&key) {
                pipe.flush(now_ms, &mut events);
            }
            self.emit(key, events);
        }
    }

    /// Builds, acknowledges the continuation lines of, and sends each event.
    fn emit(&mut self, key: FileKey, mut events: Vec<Assembled>) {
        if events.is_empty() {
            return;
        }
        events.sort_by_key(|event| event.offset);
        let Some(pipe) = self.files.get_mut(&key) else {
            return;
        };
        let missing = pipe.missing;
        let mut scratch = std::mem::take(&mut self.emit_scratch);
        // Each event's next event of the same stream, found before the
        // events are consumed (moved, not cloned: they hold the messages).
        scratch.next_of_stream.clear();
        scratch.next_of_stream.resize(events.len(), None);
        let mut seen: [Option<u64>; 2] = [None, None];
        for (index, event) in events.iter().enumerate().rev() {
            let slot = stream_slot(event.stream);
            scratch.next_of_stream[index] = seen[slot];
            seen[slot] = Some(event.offset);
        }
        for (index, mut assembled) in events.drain(..).enumerate() {
            let next_same = scratch.next_of_stream.get(index).copied().flatten();
            let slot = stream_slot(assembled.stream);
            // This event owns its stream's lines up to the next event of the
            // same stream, or up to what is still pending.
            let pending = [
                pipe.reassembler.pending_offset_of(assembled.stream),
                pipe.multiline.pending_offset_of(assembled.stream),
            ]
            .into_iter()
            .flatten()
            .min();
            let bound = next_same.or(pending).unwrap_or(u64::MAX);
            let queue = &mut pipe.queued[slot];
            // Lines before the event's first line cannot exist; drop stale ones defensively.
            while queue.front().is_some_and(|q| q.start < assembled.offset) {
                if let Some(stale) = queue.pop_front() {
                    scratch.continuation_acks.push(stale.start);
                }
            }
            let mut reach = assembled.offset;
            let mut first = true;
            while let Some(line) = queue.front().copied().filter(|q| q.start < bound) {
                queue.pop_front();
                reach = line.end;
                if line.truncated && !assembled.flags.contains(&Flag::Truncated) {
                    assembled.flags.push(Flag::Truncated);
                }
                if !first {
                    scratch.continuation_acks.push(line.start);
                }
                first = false;
            }
            let builder = pipe.builder.get_or_insert_with(|| {
                let mut builder = EventBuilder::new(&Source {
                    path: pipe.path.clone(),
                    meta: pipe.path_meta.clone(),
                    file_identity: key.fingerprint,
                    host: self.settings.node_name.clone(),
                    format: pipe.format.unwrap_or(Format::Cri),
                });
                builder.set_enrichment(pipe.enrichment.as_ref());
                builder
            });
            let offset = assembled.offset;
            if assembled.flags.contains(&Flag::Truncated) {
                EventTruncated {
                    path: &pipe.path,
                    offset,
                    cause: "limit",
                }
                .emit(&self.metrics);
            }
            let event: &Event = builder.build(assembled);
            let encoded_from = scratch.encoded.len();
            event.append_json(&mut scratch.encoded);
            scratch.outgoing.push((
                InFlight {
                    file: key,
                    first: offset,
                    reach: reach.max(offset + 1),
                    topic: Arc::clone(&pipe.topic),
                    key: Arc::clone(&pipe.key),
                    payload: None,
                    attempts: 0,
                    offered: self.now,
                },
                encoded_from..scratch.encoded.len(),
            ));
        }
        // Keep the allocation for the next line's events.
        if events.capacity() > self.scratch.capacity() {
            self.scratch = events;
        }
        for start in scratch.continuation_acks.drain(..) {
            self.tailer.ack(&key, start);
        }
        let count = scratch.outgoing.len() as u64;
        EventsSent { count }.emit(&self.metrics);
        if missing {
            self.stats.metadata_missing += count;
            MetadataMissing { events: count }.emit(&self.metrics);
        }
        let keep_payloads = !self.sink.hands_back_payloads();
        for (mut event, range) in scratch.outgoing.drain(..) {
            let token = self.next_token;
            self.next_token += 1;
            let encoded = scratch.encoded.get(range).unwrap_or_default();
            if keep_payloads {
                event.payload = Some(encoded.to_vec());
            }
            self.in_flight.insert(token, event);
            self.stats.events_sent += 1;
            self.send(token, Some(encoded));
        }
        scratch.encoded.clear();
        self.emit_scratch = scratch;
    }

    /// Offers an in-flight event to the sink, waiting for room if the sink
    /// is full. `fresh` is its just-encoded record, which it does not keep
    /// yet; without it the event's kept payload is offered.
    fn send(&mut self, token: u64, fresh: Option<&[u8]>) {
        // Keep the order: behind a full queue, everything waits its turn.
        if !self.unsent.is_empty() {
            self.keep_payload(token, fresh);
            self.unsent.push_back(token);
            return;
        }
        if !self.offer(token, fresh) {
            self.unsent.push_back(token);
        }
    }

    /// Makes an event keep a copy of `fresh` if it holds no payload.
    fn keep_payload(&mut self, token: u64, fresh: Option<&[u8]>) {
        if let (Some(bytes), Some(event)) = (fresh, self.in_flight.get_mut(&token))
            && event.payload.is_none()
        {
            event.payload = Some(bytes.to_vec());
        }
    }

    /// Offers one event (see [`Pipeline::send`] for `fresh`); returns false
    /// when the sink's queue is full, and the event then keeps its payload.
    fn offer(&mut self, token: u64, fresh: Option<&[u8]>) -> bool {
        let Some(event) = self.in_flight.get_mut(&token) else {
            return true;
        };
        let Some(payload) = fresh.or(event.payload.as_deref()) else {
            // Every path that gives the sink's copy up keeps one first.
            tracing::error!(token, "an in-flight event has no payload to offer");
            return true;
        };
        let offered = self.sink.offer(Outgoing {
            token,
            topic: &event.topic,
            key: &event.key,
            payload,
        });
        match offered {
            Ok(()) => {
                event.offered = self.now;
                if self.sink.hands_back_payloads() {
                    // The sink hands it back if it fails.
                    event.payload = None;
                }
                true
            }
            Err(Refused::Full) => {
                self.keep_payload(token, fresh);
                false
            }
            Err(Refused::Rejected(failure)) => {
                self.keep_payload(token, fresh);
                self.failed(token, failure);
                true
            }
        }
    }

    /// Offers the events that found the sink's queue full, in order, until
    /// it is full again. The main loop stays in charge meanwhile, so signals
    /// and checkpoint saves are handled while Kafka is down.
    fn offer_unsent(&mut self) {
        while let Some(token) = self.unsent.front().copied() {
            if !self.offer(token, None) {
                return;
            }
            self.unsent.pop_front();
        }
    }

    /// Collects receipts, waiting up to `wait` for the first. Every wait of
    /// the pipeline goes through here, so here is the heartbeat.
    fn collect_receipts(&mut self, wait: Duration) {
        self.health.beat();
        let mut receipts = std::mem::take(&mut self.receipts);
        self.sink.receipts(&mut receipts, wait);
        let changed = !receipts.is_empty();
        if changed || !wait.is_zero() {
            self.now = Instant::now();
        }
        for receipt in receipts.drain(..) {
            match receipt.result {
                Ok(()) => {
                    if let Some(event) = self.in_flight.remove(&receipt.token) {
                        self.stats.events_acked += 1;
                        EventAcked {
                            delivery: self.now.saturating_duration_since(event.offered),
                        }
                        .emit(&self.metrics);
                        self.tailer
                            .ack_through(&event.file, event.first, event.reach);
                    }
                }
                Err(failure) => self.failed(receipt.token, failure),
            }
        }
        self.receipts = receipts;
        if changed {
            InFlightGauge {
                events: self.in_flight.len(),
            }
            .emit(&self.metrics);
        }
    }

    /// Schedules a re-send: no event is ever given up.
    fn failed(&mut self, token: u64, failure: DeliveryFailure) {
        let DeliveryFailure {
            reason,
            detail,
            payload,
        } = failure;
        let detail = detail.as_str();
        *self.stats.delivery_failures.entry(reason).or_default() += 1;
        let Some(event) = self.in_flight.get_mut(&token) else {
            return;
        };
        if event.payload.is_none() {
            event.payload = payload;
        }
        event.attempts = event.attempts.saturating_add(1);
        // The broker refuses a whole batch when it is over the topic's
        // `max.message.bytes`, small neighbours included: only a large event
        // can be the cause, so only a large one is cut. Small ones go again
        // as they are (and wait, if the topic's limit is set absurdly low).
        let large = event
            .payload
            .as_ref()
            .is_some_and(|payload| payload.len() > SHRINK_MIN_PAYLOAD_BYTES);
        if reason == "message_too_large" && large && shrink(event) {
            EventTruncated {
                path: self.files.get(&event.file).map_or("", |pipe| &pipe.path),
                offset: event.first,
                cause: "broker",
            }
            .emit(&self.metrics);
        }
        let exponent = event.attempts.min(16);
        let delay = self
            .settings
            .retry_base
            .saturating_mul(1u32 << exponent.saturating_sub(1))
            .min(self.settings.retry_cap);
        DeliveryFailed {
            reason,
            detail,
            attempts: event.attempts,
            retry_in: delay,
        }
        .emit(&self.metrics);
        self.retries.push_back((self.now + delay, token));
    }

    fn resend_due(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        self.retries.retain(|(at, token)| {
            if *at <= now {
                due.push(*token);
                false
            } else {
                true
            }
        });
        for token in due {
            self.send(token, None);
        }
    }

    /// Waits up to `timeout` for outstanding acknowledgements.
    fn drain(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.in_flight.is_empty() && Instant::now() < deadline {
            self.offer_unsent();
            self.resend_due();
            self.collect_receipts(Duration::from_millis(50));
        }
        if !self.in_flight.is_empty() {
            tracing::warn!(
                unacknowledged = self.in_flight.len(),
                "stopping with events unacknowledged; they are read again after the restart"
            );
        }
    }
}

/// Brings a file's enrichment, exclusion and multiline rule in line with
/// its looked-up pod and namespace. Events that must go out first (pending
/// ones of a file becoming excluded, or joined under a rule that changes)
/// are appended to `events`.
fn apply_metadata(
    pipe: &mut FilePipe,
    cache: &MetadataCache,
    base: &multiline::Config,
    now_ms: u64,
    metrics: &Metrics,
    events: &mut Vec<Assembled>,
) {
    let container = pipe
        .path_meta
        .as_ref()
        .map_or("", |meta| meta.container.as_str());
    let enrichment = pipe.meta.enrichment(container, cache.inclusion());
    if enrichment != pipe.enrichment {
        if let Some(builder) = &mut pipe.builder {
            builder.set_enrichment(enrichment.as_ref());
        }
        pipe.enrichment = enrichment;
    }
    pipe.missing = !pipe.meta.pod_known();
    let decision = pipe.meta.decision(container);
    if !decision.invalid.is_empty() {
        AnnotationsInvalid {
            path: &pipe.path,
            invalid: &decision.invalid,
        }
        .emit(metrics);
    }
    if decision.excluded != pipe.excluded {
        FileExclusionChanged {
            path: &pipe.path,
            annotation: decision.excluded.map(Exclusion::as_str),
        }
        .emit(metrics);
        if decision.excluded.is_some() {
            // Lines read before the exclusion still go out.
            pipe.flush(now_ms, events);
        }
        pipe.excluded = decision.excluded;
    }
    if decision.multiline != pipe.rule {
        pipe.rule = decision.multiline;
        pipe.multiline
            .reconfigure(multiline_config(base, pipe.rule), events);
    }
}

/// Events at most this large are never cut when the broker refuses their
/// batch as too large; see [`Pipeline::failed`].
const SHRINK_MIN_PAYLOAD_BYTES: usize = 64 * 1024;

/// Halves an event's message that the broker refused as too large; the
/// event is flagged truncated rather than dropped. Returns whether the flag
/// is new.
fn shrink(event: &mut InFlight) -> bool {
    let Some(Ok(mut record)) = event.payload.as_deref().map(Event::from_json) else {
        return false;
    };
    let mut cut = record.message.len() / 2;
    while !record.message.is_char_boundary(cut) {
        cut -= 1;
    }
    record.message.truncate(cut);
    let newly = !record.log.flags.contains(&Flag::Truncated);
    if newly {
        record.log.flags.push(Flag::Truncated);
        record.log.flags.sort_unstable();
    }
    event.payload = Some(record.to_json());
    newly
}

mod tokens;

#[cfg(test)]
mod tests;
