//! Typed internal events: one struct per thing that happens, each with an
//! `emit()` that logs it through `tracing` and moves its metric, as the
//! shipper does. Code says what happened (`EventsSent { count }.emit(m)`),
//! never which counter to bump, so the log line and the metric cannot drift.
//!
//! Unlike the shipper's process-wide registry, [`Metrics`] is passed in:
//! the library builds several pipelines in one test process, and each must
//! count alone. The binary makes one and shares it with the server.
//!
//! Every label is a bounded set: drop and delivery reasons are `&'static
//! str` from closed enums, and the lag series are per container of a pod on
//! this node, removed when the container's files are all released.
//!
//! # Lag per container, not per file
//!
//! `kelp_collector_file_lag_bytes{namespace,pod,container}` sums the unread
//! bytes (size now minus read offset) of a container's open files, the
//! live one and its rotations. A label per file (path or identity) would
//! grow without bound as the kubelet rotates files and pods come and go;
//! per container, the series are bounded by the pods scheduled on the node
//! (`maxPods`, 110 by default), and a container is what an operator acts
//! on. Node-wide totals are a `sum()` away. Files outside the kubelet's
//! layouts share one series with empty labels.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::checkpoint::FileKey;
use crate::parse::MalformedReason;
use crate::reload::Change;
use crate::tail::{StartFrom, TailEvents};

/// Drop reason of a line whose format could not be detected (format `auto`).
pub const UNDETECTED_FORMAT: &str = "undetected_format";
/// Drop reason: a file was truncated in place; lines written and truncated
/// away between two looks are lost (one per occurrence: the number is unknowable).
pub const FILE_TRUNCATED: &str = "file_truncated";
/// Drop reason: a deleted file was released after `deleted_file_grace_ms`
/// with lines unacknowledged (counts those lines). They are still sent if
/// the collector keeps running, but no checkpoint covers them any more: a
/// restart before their acknowledgement loses them.
pub const DELETED_UNACKED: &str = "deleted_unacked";
/// Drop reason: a deleted file was released after `deleted_file_max_hold_ms`
/// before it was read to the end (one per file; see `unread_bytes_released`).
pub const DELETED_UNDRAINED: &str = "deleted_undrained";

/// Drop reason: the line's pod or container is excluded by an annotation
/// (`kelp.io/exclude` and friends, see docs/COLLECTOR.md).
pub const EXCLUDED: &str = "excluded";

/// Every drop reason, so each series exists from the start at 0.
fn drop_reasons() -> impl Iterator<Item = &'static str> {
    MalformedReason::ALL
        .into_iter()
        .map(MalformedReason::as_str)
        .chain([
            UNDETECTED_FORMAT,
            FILE_TRUNCATED,
            DELETED_UNACKED,
            DELETED_UNDRAINED,
            EXCLUDED,
        ])
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabel {
    resource: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The pod container a log file belongs to: the lag gauge's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ContainerLabels {
    /// The pod's namespace (empty for paths outside the kubelet layouts).
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

impl ContainerLabels {
    /// The labels of a log file from its kubelet path; empty when the path
    /// is in neither layout, so such files share one series.
    pub fn of_path(path: &Path) -> ContainerLabels {
        match crate::parse::path::parse_path(&path.to_string_lossy()) {
            Some(meta) => ContainerLabels {
                namespace: meta.namespace,
                pod: meta.pod,
                container: meta.container,
            },
            None => ContainerLabels {
                namespace: String::new(),
                pod: String::new(),
                container: String::new(),
            },
        }
    }
}

/// The collector's metric families, registered under `kelp_collector_`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The clock of `checkpoint_saved_ms`.
    epoch: Instant,
    /// When checkpoints were last known durable, in ms since `epoch`.
    checkpoint_saved_ms: AtomicU64,
    /// The lag series now exported, so stale ones can be removed.
    lag_series: Mutex<HashSet<ContainerLabels>>,
    lines_read: Counter,
    bytes_read: Counter,
    events_sent: Counter,
    events_acked: Counter,
    dropped_lines: Family<ReasonLabel, Counter>,
    unread_bytes_released: Counter,
    truncated_events: Counter,
    rotations: Counter,
    files_vanished: Counter,
    files_tailed: Gauge,
    file_lag_bytes: Family<ContainerLabels, Gauge>,
    checkpoint_age_seconds: Gauge<f64, AtomicU64>,
    checkpoint_save_failures: Counter,
    checkpoints_expired: Counter,
    kafka_delivery_seconds: Histogram,
    kafka_delivery_errors: Family<ReasonLabel, Counter>,
    kafka_brokers_up: Gauge,
    in_flight_events: Gauge,
    io_errors: Counter,
    fingerprint_collisions: Counter,
    unknown_acks: Counter,
    config_reloads: Family<OutcomeLabel, Counter>,
    config_restart_required: Gauge,
    /// `dropped_lines{reason="excluded"}`, kept at hand: it moves per line.
    excluded_lines: Counter,
    metadata_missing: Counter,
    metadata_watch_errors: Family<ResourceLabel, Counter>,
    metadata_watch_restarts: Family<ResourceLabel, Counter>,
    metadata_pods_cached: Gauge,
    metadata_namespaces_cached: Gauge,
    metadata_synced: Family<ResourceLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// Every family registered, every bounded series at 0, and the
    /// checkpoints counted as saved now (they were just loaded).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kelp_collector");
        let m = Metrics {
            registry: Registry::default(),
            epoch: Instant::now(),
            checkpoint_saved_ms: AtomicU64::new(0),
            lag_series: Mutex::new(HashSet::new()),
            lines_read: Counter::default(),
            bytes_read: Counter::default(),
            events_sent: Counter::default(),
            events_acked: Counter::default(),
            dropped_lines: Family::default(),
            unread_bytes_released: Counter::default(),
            truncated_events: Counter::default(),
            rotations: Counter::default(),
            files_vanished: Counter::default(),
            files_tailed: Gauge::default(),
            file_lag_bytes: Family::default(),
            checkpoint_age_seconds: Gauge::default(),
            checkpoint_save_failures: Counter::default(),
            checkpoints_expired: Counter::default(),
            // 1 ms to about 65 s: a broker outage shows in the top buckets.
            kafka_delivery_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            kafka_delivery_errors: Family::default(),
            kafka_brokers_up: Gauge::default(),
            in_flight_events: Gauge::default(),
            io_errors: Counter::default(),
            fingerprint_collisions: Counter::default(),
            unknown_acks: Counter::default(),
            config_reloads: Family::default(),
            config_restart_required: Gauge::default(),
            excluded_lines: Counter::default(),
            metadata_missing: Counter::default(),
            metadata_watch_errors: Family::default(),
            metadata_watch_restarts: Family::default(),
            metadata_pods_cached: Gauge::default(),
            metadata_namespaces_cached: Gauge::default(),
            metadata_synced: Family::default(),
        };
        registry.register(
            "lines_read",
            "Lines handed out by the tailer.",
            m.lines_read.clone(),
        );
        registry.register(
            "bytes_read",
            "Bytes of the lines handed out by the tailer, newlines included.",
            m.bytes_read.clone(),
        );
        registry.register(
            "events_sent",
            "Events offered to the sink for the first time (re-sends not counted).",
            m.events_sent.clone(),
        );
        registry.register(
            "events_acked",
            "Events the sink acknowledged durably (Kafka: acks=all).",
            m.events_acked.clone(),
        );
        registry.register(
            "dropped_lines",
            "Lines dropped, by reason: malformed lines, lines lost by the tailer, and \
             lines of pods or containers excluded by annotation (excluded). \
             file_truncated and deleted_undrained count one per file, as the number of \
             lines lost is unknowable.",
            m.dropped_lines.clone(),
        );
        registry.register(
            "unread_bytes_released",
            "Bytes of deleted files released unread after tail.deleted_file_max_hold_ms.",
            m.unread_bytes_released.clone(),
        );
        registry.register(
            "truncated_events",
            "Events sent flagged truncated (line, event or broker size limit).",
            m.truncated_events.clone(),
        );
        registry.register(
            "rotations",
            "Tailed files found under a new name (kubelet rotation).",
            m.rotations.clone(),
        );
        registry.register(
            "files_vanished",
            "Paths listed by a scan and gone before they could be opened. Not counted as \
             dropped: mostly rotation races and dangling symlinks (counted at every scan).",
            m.files_vanished.clone(),
        );
        registry.register(
            "files_tailed",
            "Files open: live, rotated, and gone but not yet released.",
            m.files_tailed.clone(),
        );
        registry.register(
            "file_lag_bytes",
            "Bytes written to a container's log files and not yet read, summed over \
                 its files (live and rotated), per pod container on this node.",
            m.file_lag_bytes.clone(),
        );
        registry.register(
            "checkpoint_age_seconds",
            "Time since the checkpoints were last known saved (a save, or nothing to save).",
            m.checkpoint_age_seconds.clone(),
        );
        registry.register(
            "checkpoint_save_failures",
            "Checkpoint saves that failed (retried at the next interval).",
            m.checkpoint_save_failures.clone(),
        );
        registry.register(
            "checkpoints_expired",
            "Checkpoints of files not seen for tail.checkpoint_retention_ms, forgotten.",
            m.checkpoints_expired.clone(),
        );
        registry.register(
            "kafka_delivery_seconds",
            "Time from offering an event to the sink to its acknowledgement (last attempt).",
            m.kafka_delivery_seconds.clone(),
        );
        registry.register(
            "kafka_delivery_errors",
            "Failed deliveries, by reason; each is retried, never given up.",
            m.kafka_delivery_errors.clone(),
        );
        registry.register(
            "kafka_brokers_up",
            "Kafka brokers the producer has a connection to (librdkafka statistics).",
            m.kafka_brokers_up.clone(),
        );
        registry.register(
            "in_flight_events",
            "Events offered to the sink and not yet acknowledged, retries included.",
            m.in_flight_events.clone(),
        );
        registry.register(
            "io_errors",
            "Failed listings, opens, stats and reads of log files.",
            m.io_errors.clone(),
        );
        registry.register(
            "fingerprint_collisions",
            "Files found with the fingerprint of another tailed file (event ids collide).",
            m.fingerprint_collisions.clone(),
        );
        registry.register(
            "unknown_acks",
            "Acknowledgements for lines no longer tracked (file released or truncated).",
            m.unknown_acks.clone(),
        );
        registry.register(
            "config_reloads",
            "SIGHUP config reloads, by outcome: applied or failed (old config kept).",
            m.config_reloads.clone(),
        );
        registry.register(
            "config_restart_required",
            "1 when the config file changed fields that apply only after a restart.",
            m.config_restart_required.clone(),
        );
        registry.register(
            "metadata_missing",
            "Events sent with path metadata only: their pod was not known from the \
             Kubernetes API (yet) when their file was opened.",
            m.metadata_missing.clone(),
        );
        registry.register(
            "metadata_watch_errors",
            "Failed lists and watches of the Kubernetes API, by resource; retried with backoff.",
            m.metadata_watch_errors.clone(),
        );
        registry.register(
            "metadata_watch_restarts",
            "Full relists after the first, by resource (the watch lost its place).",
            m.metadata_watch_restarts.clone(),
        );
        registry.register(
            "metadata_pods_cached",
            "Pods of this node known from the API, deleted ones still retained included.",
            m.metadata_pods_cached.clone(),
        );
        registry.register(
            "metadata_namespaces_cached",
            "Namespaces known from the API.",
            m.metadata_namespaces_cached.clone(),
        );
        registry.register(
            "metadata_synced",
            "1 once the resource's first full list arrived, by resource.",
            m.metadata_synced.clone(),
        );
        // Each bounded series exists from the start, at 0.
        for reason in drop_reasons() {
            let _ = m.dropped_lines.get_or_create(&ReasonLabel { reason });
        }
        let excluded_lines = m
            .dropped_lines
            .get_or_create(&ReasonLabel { reason: EXCLUDED })
            .clone();
        for resource in ["pods", "namespaces"] {
            let label = ResourceLabel { resource };
            let _ = m.metadata_watch_errors.get_or_create(&label);
            let _ = m.metadata_watch_restarts.get_or_create(&label);
            let _ = m.metadata_synced.get_or_create(&label);
        }
        for outcome in ["applied", "failed"] {
            let _ = m.config_reloads.get_or_create(&OutcomeLabel { outcome });
        }
        Metrics {
            registry,
            excluded_lines,
            ..m
        }
    }

    /// The Prometheus text exposition (OpenMetrics) of every metric.
    pub fn encode(&self) -> String {
        let saved = self.checkpoint_saved_ms.load(Ordering::Relaxed);
        let age_ms = self.now_ms().saturating_sub(saved);
        self.checkpoint_age_seconds.set(age_ms as f64 / 1000.0);
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A counter's value, for tests.
    #[cfg(test)]
    pub(crate) fn dropped(&self, reason: &'static str) -> u64 {
        self.dropped_lines
            .get_or_create(&ReasonLabel { reason })
            .get()
    }
}

fn gauge_value(n: impl TryInto<i64>) -> i64 {
    n.try_into().unwrap_or(i64::MAX)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The tailer handed out lines.
#[derive(Debug)]
pub(crate) struct LinesRead<'a> {
    pub(crate) path: &'a Path,
    pub(crate) lines: u64,
    pub(crate) bytes: u64,
}

impl LinesRead<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::trace!(path = %self.path.display(), lines = self.lines, bytes = self.bytes, "lines read");
        m.lines_read.inc_by(self.lines);
        m.bytes_read.inc_by(self.bytes);
    }
}

/// Events were offered to the sink for the first time.
#[derive(Debug)]
pub(crate) struct EventsSent {
    pub(crate) count: u64,
}

impl EventsSent {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::trace!(count = self.count, "events sent");
        m.events_sent.inc_by(self.count);
    }
}

/// The sink acknowledged an event.
#[derive(Debug)]
pub(crate) struct EventAcked {
    /// From the last offer to the receipt.
    pub(crate) delivery: Duration,
}

impl EventAcked {
    pub(crate) fn emit(self, m: &Metrics) {
        m.events_acked.inc();
        m.kafka_delivery_seconds
            .observe(self.delivery.as_secs_f64());
    }
}

fn dropped(m: &Metrics, reason: &'static str, lines: u64) {
    m.dropped_lines
        .get_or_create(&ReasonLabel { reason })
        .inc_by(lines);
}

/// A malformed line was dropped (acknowledged at once, so the checkpoint moves on).
#[derive(Debug)]
pub(crate) struct LineDropped<'a> {
    /// [`MalformedReason::as_str`] or [`UNDETECTED_FORMAT`].
    pub(crate) reason: &'static str,
    pub(crate) path: &'a Path,
    pub(crate) offset: u64,
}

impl LineDropped<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::warn!(
            reason = self.reason,
            path = %self.path.display(),
            offset = self.offset,
            "dropping malformed line"
        );
        dropped(m, self.reason, 1);
    }
}

/// A tailed file was truncated in place (or while the collector was down):
/// it is read again from 0, and lines truncated away unread are lost.
#[derive(Debug)]
pub(crate) struct FileTruncated<'a> {
    pub(crate) file: &'a FileKey,
    pub(crate) path: &'a Path,
    pub(crate) offset: u64,
    pub(crate) size: u64,
}

impl FileTruncated<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::warn!(
            file = %self.file,
            path = %self.path.display(),
            offset = self.offset,
            size = self.size,
            "file truncated; reading it again from 0, lines truncated away unread are lost"
        );
        dropped(m, FILE_TRUNCATED, 1);
    }
}

/// A deleted file was released after `deleted_file_grace_ms` with lines
/// not yet acknowledged.
#[derive(Debug)]
pub(crate) struct DeletedReleasedUnacked<'a> {
    pub(crate) file: &'a FileKey,
    pub(crate) path: &'a Path,
    pub(crate) in_flight: usize,
}

impl DeletedReleasedUnacked<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::warn!(
            file = %self.file,
            path = %self.path.display(),
            in_flight = self.in_flight,
            "deleted file released with lines unacknowledged; a restart before they are delivered loses them"
        );
        dropped(m, DELETED_UNACKED, self.in_flight as u64);
    }
}

/// A deleted file was released after `deleted_file_max_hold_ms` before it
/// was read to the end.
#[derive(Debug)]
pub(crate) struct DeletedReleasedUndrained<'a> {
    pub(crate) file: &'a FileKey,
    pub(crate) path: &'a Path,
    pub(crate) unread_bytes: u64,
}

impl DeletedReleasedUndrained<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::error!(
            file = %self.file,
            path = %self.path.display(),
            unread_bytes = self.unread_bytes,
            "deleted file released before it was read to the end; its unread lines are lost"
        );
        dropped(m, DELETED_UNDRAINED, 1);
        m.unread_bytes_released.inc_by(self.unread_bytes);
    }
}

/// An event was sent flagged truncated.
#[derive(Debug)]
pub(crate) struct EventTruncated<'a> {
    pub(crate) path: &'a str,
    pub(crate) offset: u64,
    /// `limit` (line, event or line-count limit) or `broker` (the broker
    /// refused the record as too large and its message was halved).
    pub(crate) cause: &'static str,
}

impl EventTruncated<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::debug!(
            path = self.path,
            offset = self.offset,
            cause = self.cause,
            "event truncated"
        );
        m.truncated_events.inc();
    }
}

/// A delivery failed; the event is re-sent after `retry_in`.
#[derive(Debug)]
pub(crate) struct DeliveryFailed<'a> {
    pub(crate) reason: &'static str,
    pub(crate) detail: &'a str,
    pub(crate) attempts: u32,
    pub(crate) retry_in: Duration,
}

impl DeliveryFailed<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::warn!(
            reason = self.reason,
            detail = self.detail,
            attempts = self.attempts,
            retry_in_ms = millis(self.retry_in),
            "delivery failed; will retry"
        );
        m.kafka_delivery_errors
            .get_or_create(&ReasonLabel {
                reason: self.reason,
            })
            .inc();
    }
}

/// The checkpoints are durable: saved now, or unchanged since the last save.
#[derive(Debug)]
pub(crate) struct CheckpointsSaved {
    pub(crate) written: bool,
}

impl CheckpointsSaved {
    pub(crate) fn emit(self, m: &Metrics) {
        if self.written {
            tracing::trace!("checkpoints saved");
        }
        m.checkpoint_saved_ms.store(m.now_ms(), Ordering::Relaxed);
    }
}

/// Saving the checkpoints failed.
#[derive(Debug)]
pub(crate) struct CheckpointSaveFailed<'a> {
    pub(crate) error: &'a crate::checkpoint::CheckpointError,
    /// The save at shutdown: not retried.
    pub(crate) last: bool,
}

impl CheckpointSaveFailed<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        if self.last {
            tracing::error!(error = %self.error, "saving checkpoints failed at shutdown");
        } else {
            tracing::error!(error = %self.error, "saving checkpoints failed; retrying at the next interval");
        }
        m.checkpoint_save_failures.inc();
    }
}

/// The periodic state of the tailer and the sink.
#[derive(Debug)]
pub(crate) struct TailState {
    pub(crate) files: usize,
    pub(crate) in_flight_events: usize,
    /// Unread bytes per container: the sum over its open files.
    pub(crate) lag: HashMap<ContainerLabels, u64>,
}

impl TailState {
    pub(crate) fn emit(self, m: &Metrics) {
        m.files_tailed.set(gauge_value(self.files));
        m.in_flight_events.set(gauge_value(self.in_flight_events));
        let mut series = m.lag_series.lock().unwrap_or_else(PoisonError::into_inner);
        for gone in series
            .iter()
            .filter(|labels| !self.lag.contains_key(*labels))
        {
            m.file_lag_bytes.remove(gone);
        }
        series.clear();
        for (labels, lag) in self.lag {
            m.file_lag_bytes
                .get_or_create(&labels)
                .set(gauge_value(lag));
            series.insert(labels);
        }
    }
}

/// The number of events in flight changed.
#[derive(Debug)]
pub(crate) struct InFlight {
    pub(crate) events: usize,
}

impl InFlight {
    pub(crate) fn emit(self, m: &Metrics) {
        m.in_flight_events.set(gauge_value(self.events));
    }
}

/// librdkafka's statistics counted the brokers with a connection up.
#[derive(Debug)]
pub(crate) struct KafkaBrokersUp {
    pub(crate) brokers: usize,
}

impl KafkaBrokersUp {
    pub(crate) fn emit(self, m: &Metrics) {
        m.kafka_brokers_up.set(gauge_value(self.brokers));
    }
}

/// SIGHUP: the config file was read again and its runtime fields applied.
#[derive(Debug)]
pub(crate) struct ConfigReloaded<'a> {
    pub(crate) path: &'a Path,
    pub(crate) applied: &'a [Change],
    pub(crate) needs_restart: &'a [String],
}

impl ConfigReloaded<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        if self.applied.is_empty() {
            tracing::info!(path = %self.path.display(), "config reloaded: no runtime field changed");
        }
        for change in self.applied {
            tracing::info!(
                path = %self.path.display(),
                field = change.field,
                old = change.old,
                new = change.new,
                "config reloaded: field applied"
            );
        }
        if !self.needs_restart.is_empty() {
            tracing::warn!(
                path = %self.path.display(),
                fields = ?self.needs_restart,
                "config reloaded: these fields keep their running values until a restart"
            );
        }
        m.config_reloads
            .get_or_create(&OutcomeLabel { outcome: "applied" })
            .inc();
        m.config_restart_required
            .set(i64::from(!self.needs_restart.is_empty()));
    }
}

/// SIGHUP: the config file is unreadable or invalid; the running one is kept.
#[derive(Debug)]
pub(crate) struct ConfigReloadFailed<'a> {
    pub(crate) path: &'a Path,
    pub(crate) error: &'a dyn std::error::Error,
}

impl ConfigReloadFailed<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::error!(
            path = %self.path.display(),
            error = %self.error,
            "reloading config failed; keeping the running config"
        );
        m.config_reloads
            .get_or_create(&OutcomeLabel { outcome: "failed" })
            .inc();
    }
}

/// A list or watch of the Kubernetes API failed; it is retried with backoff.
#[derive(Debug)]
pub(crate) struct MetadataWatchFailed<'a> {
    pub(crate) resource: &'static str,
    pub(crate) error: &'a dyn std::error::Error,
}

impl MetadataWatchFailed<'_> {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::warn!(
            resource = self.resource,
            error = %self.error,
            "watching the kubernetes api failed; retrying with backoff"
        );
        m.metadata_watch_errors
            .get_or_create(&ResourceLabel {
                resource: self.resource,
            })
            .inc();
    }
}

/// A watch lost its place and lists everything again.
#[derive(Debug)]
pub(crate) struct MetadataWatchRestarted {
    pub(crate) resource: &'static str,
}

impl MetadataWatchRestarted {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::info!(resource = self.resource, "kubernetes watch relisting");
        m.metadata_watch_restarts
            .get_or_create(&ResourceLabel {
                resource: self.resource,
            })
            .inc();
    }
}

/// A full list of a resource arrived.
#[derive(Debug)]
pub(crate) struct MetadataSynced {
    pub(crate) resource: &'static str,
    pub(crate) objects: usize,
}

impl MetadataSynced {
    pub(crate) fn emit(self, m: &Metrics) {
        tracing::info!(
            resource = self.resource,
            objects = self.objects,
            "kubernetes metadata listed"
        );
        m.metadata_synced
            .get_or_create(&ResourceLabel {
                resource: self.resource,
            })
            .set(1);
        let gauge = match self.resource {
            "pods" => &m.metadata_pods_cached,
            _ => &m.metadata_namespaces_cached,
        };
        gauge.set(gauge_value(self.objects));
    }
}

/// The periodic size of the metadata cache.
#[derive(Debug)]
pub(crate) struct MetadataCached {
    pub(crate) pods: usize,
    pub(crate) namespaces: usize,
}

impl MetadataCached {
    pub(crate) fn emit(self, m: &Metrics) {
        m.metadata_pods_cached.set(gauge_value(self.pods));
        m.metadata_namespaces_cached
            .set(gauge_value(self.namespaces));
    }
}

/// Events of a file whose pod is not known went out with path metadata only.
#[derive(Debug)]
pub(crate) struct MetadataMissing {
    pub(crate) events: u64,
}

impl MetadataMissing {
    pub(crate) fn emit(self, m: &Metrics) {
        m.metadata_missing.inc_by(self.events);
    }
}

/// A file's pod was still unknown when it was opened (or its wait ended).
#[derive(Debug)]
pub(crate) struct PodUnknown<'a> {
    pub(crate) path: &'a str,
    pub(crate) waited_ms: u64,
}

impl PodUnknown<'_> {
    pub(crate) fn emit(self, _m: &Metrics) {
        tracing::info!(
            path = self.path,
            waited_ms = self.waited_ms,
            "pod not known from the kubernetes api; shipping with path metadata"
        );
    }
}

/// A file became excluded, or shipped again, by annotation.
#[derive(Debug)]
pub(crate) struct FileExclusionChanged<'a> {
    pub(crate) path: &'a str,
    /// The annotation that excludes it, or `None` when it ships again.
    pub(crate) annotation: Option<&'static str>,
}

impl FileExclusionChanged<'_> {
    pub(crate) fn emit(self, _m: &Metrics) {
        match self.annotation {
            Some(annotation) => {
                tracing::info!(
                    path = self.path,
                    annotation,
                    "file excluded by annotation; its lines are dropped"
                );
            }
            None => tracing::info!(
                path = self.path,
                "file no longer excluded; shipping its new lines"
            ),
        }
    }
}

/// Annotations with values that are not understood; ignored.
#[derive(Debug)]
pub(crate) struct AnnotationsInvalid<'a> {
    pub(crate) path: &'a str,
    pub(crate) invalid: &'a [String],
}

impl AnnotationsInvalid<'_> {
    pub(crate) fn emit(self, _m: &Metrics) {
        tracing::warn!(
            path = self.path,
            annotations = ?self.invalid,
            "ignoring annotations with values not understood"
        );
    }
}

/// Lines of an excluded file were dropped (acknowledged at once).
#[derive(Debug)]
pub(crate) struct LinesExcluded {
    pub(crate) lines: u64,
}

impl LinesExcluded {
    pub(crate) fn emit(self, m: &Metrics) {
        m.excluded_lines.inc_by(self.lines);
    }
}

/// [`TailEvents`] as logs and metrics: the tailer's events in production.
#[derive(Debug, Clone)]
pub struct MetricsTailEvents {
    metrics: Arc<Metrics>,
}

impl MetricsTailEvents {
    /// Reports into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> MetricsTailEvents {
        MetricsTailEvents { metrics }
    }
}

fn start_from(from: StartFrom) -> &'static str {
    match from {
        StartFrom::Checkpoint => "checkpoint",
        StartFrom::MovedCheckpoint => "moved_checkpoint",
        StartFrom::CheckpointPastEnd => "checkpoint_past_end",
        StartFrom::Beginning => "beginning",
        StartFrom::End => "end",
    }
}

impl TailEvents for MetricsTailEvents {
    fn file_added(&self, file: &FileKey, path: &Path, offset: u64, from: StartFrom) {
        tracing::info!(%file, path = %path.display(), offset, from = start_from(from), "tailing file");
    }

    fn file_unidentified(&self, path: &Path) {
        tracing::debug!(path = %path.display(), "file too young to identify; retrying at the next scan");
    }

    fn file_vanished(&self, path: &Path) {
        // Not a drop: a rotation race finds the file again under its new
        // name, and a dangling symlink is reported at every scan.
        tracing::debug!(path = %path.display(), "file gone before it could be opened");
        self.metrics.files_vanished.inc();
    }

    fn file_rotated(&self, file: &FileKey, from: &Path, to: &Path) {
        tracing::info!(%file, from = %from.display(), to = %to.display(), "file rotated");
        self.metrics.rotations.inc();
    }

    fn file_gone(&self, file: &FileKey, path: &Path, deleted: bool) {
        tracing::info!(%file, path = %path.display(), deleted, "file gone; draining it before release");
    }

    fn file_truncated(&self, file: &FileKey, path: &Path, offset: u64, size: u64) {
        FileTruncated {
            file,
            path,
            offset,
            size,
        }
        .emit(&self.metrics);
    }

    fn file_released(&self, file: &FileKey, path: &Path) {
        tracing::info!(%file, path = %path.display(), "file drained and released");
    }

    fn deleted_released_unacked(&self, file: &FileKey, path: &Path, in_flight: usize) {
        DeletedReleasedUnacked {
            file,
            path,
            in_flight,
        }
        .emit(&self.metrics);
    }

    fn deleted_released_undrained(&self, file: &FileKey, path: &Path, unread_bytes: u64) {
        DeletedReleasedUndrained {
            file,
            path,
            unread_bytes,
        }
        .emit(&self.metrics);
    }

    fn lines_read(&self, _file: &FileKey, path: &Path, lines: u64, bytes: u64) {
        LinesRead { path, lines, bytes }.emit(&self.metrics);
    }

    fn line_truncated(&self, file: &FileKey, path: &Path, offset: u64, line_bytes: u64) {
        // Counted once per event as truncated_events, where the flag lands.
        tracing::debug!(%file, path = %path.display(), offset, line_bytes, "line cut to tail.max_line_bytes");
    }

    fn unterminated_line_flushed(&self, file: &FileKey, path: &Path, offset: u64) {
        tracing::debug!(%file, path = %path.display(), offset, "last line without newline handed out");
    }

    fn fingerprint_collision(&self, file: &FileKey, path: &Path, other: &Path) {
        tracing::warn!(%file, path = %path.display(), other = %other.display(), "two files share a fingerprint; their event ids collide");
        self.metrics.fingerprint_collisions.inc();
    }

    fn unknown_ack(&self, file: &FileKey, offset: u64) {
        tracing::debug!(%file, offset, "acknowledgement for a line no longer tracked");
        self.metrics.unknown_acks.inc();
    }

    fn checkpoints_expired(&self, count: usize) {
        tracing::info!(
            count,
            "checkpoints of files not seen for the retention forgotten"
        );
        self.metrics.checkpoints_expired.inc_by(count as u64);
    }

    fn io_error(&self, path: &Path, error: &io::Error) {
        tracing::warn!(path = %path.display(), %error, "reading log files failed");
        self.metrics.io_errors.inc();
    }
}

#[cfg(test)]
mod tests;
