//! Typed internal events: one struct per thing that happens, each with an
//! `emit()` that logs it through `tracing` and moves its metric. Code that
//! ships events says what happened (`DocumentsIndexed { count }.emit()`),
//! never which counter to bump, so the log line and the metric cannot drift.
//!
//! Every label is a bounded set: reasons are the pure core's `reason()` /
//! `label()` strings, outcomes are enums, and the per-partition lag series
//! exist only for assigned partitions.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The process's metrics; registered once, read by `/metrics`.
pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// All metric families.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    events_received: Counter,
    received_bytes: Counter,
    documents_indexed: Counter,
    document_conflicts: Counter,
    retried: Family<ReasonLabel, Counter>,
    dead_lettered: Family<ReasonLabel, Counter>,
    dead_letter_errors: Counter,
    bulk_requests: Family<OutcomeLabel, Counter>,
    bulk_duration: Histogram,
    event_delay: Histogram,
    bulks_in_flight: Gauge,
    buffered_bytes: Gauge,
    consumer_lag: Family<PartitionLabels, Gauge>,
    rebalances: Family<OutcomeLabel, Counter>,
    revoke_drain_timeouts: Counter,
    paused: Gauge,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("kelp_shipper");
        let m = Metrics {
            registry: Registry::default(),
            events_received: Counter::default(),
            received_bytes: Counter::default(),
            documents_indexed: Counter::default(),
            document_conflicts: Counter::default(),
            retried: Family::default(),
            dead_lettered: Family::default(),
            dead_letter_errors: Counter::default(),
            bulk_requests: Family::default(),
            // 5 ms to about 80 s.
            bulk_duration: Histogram::new(exponential_buckets(0.005, 2.0, 15)),
            // 10 ms to about 3 days: a replay of old events is delayed by days.
            event_delay: Histogram::new(exponential_buckets(0.01, 4.0, 14)),
            bulks_in_flight: Gauge::default(),
            buffered_bytes: Gauge::default(),
            consumer_lag: Family::default(),
            rebalances: Family::default(),
            revoke_drain_timeouts: Counter::default(),
            paused: Gauge::default(),
        };
        registry.register(
            "events_received",
            "Kafka records received.",
            m.events_received.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes of Kafka record payloads received.",
            m.received_bytes.clone(),
        );
        registry.register(
            "documents_indexed",
            "Documents the search engine stored (bulk item 2xx).",
            m.documents_indexed.clone(),
        );
        registry.register(
            "document_conflicts",
            "Bulk items answered 409: the document was already there; counted as done.",
            m.document_conflicts.clone(),
        );
        registry.register(
            "documents_retried",
            "Documents sent again after a backoff, by reason.",
            m.retried.clone(),
        );
        registry.register(
            "documents_dead_lettered",
            "Records written to the dead-letter topic, by reason.",
            m.dead_lettered.clone(),
        );
        registry.register(
            "dead_letter_errors",
            "Failed writes to the dead-letter topic (retried).",
            m.dead_letter_errors.clone(),
        );
        registry.register(
            "bulk_requests",
            "Bulk requests sent, by outcome.",
            m.bulk_requests.clone(),
        );
        registry.register(
            "bulk_request_duration_seconds",
            "Time from sending a bulk request to reading its response.",
            m.bulk_duration.clone(),
        );
        registry.register(
            "event_delay_seconds",
            "Acknowledged by the search engine minus @timestamp: how old an event is when it is indexed (searchable after the next refresh).",
            m.event_delay.clone(),
        );
        registry.register(
            "bulks_in_flight",
            "Bulk requests being sent or waiting to be retried.",
            m.bulks_in_flight.clone(),
        );
        registry.register(
            "buffered_bytes",
            "Bytes of bulk bodies held in memory: open, queued and in flight.",
            m.buffered_bytes.clone(),
        );
        registry.register(
            "consumer_lag",
            "Records between where the group would resume (its committed offset, else the position, else the low watermark) and the high watermark, per assigned partition, from librdkafka statistics.",
            m.consumer_lag.clone(),
        );
        registry.register(
            "rebalances",
            "Partition assignments and revocations.",
            m.rebalances.clone(),
        );
        registry.register(
            "revoke_drain_timeouts",
            "Revocations whose in-flight bulks did not finish within bulk.revoke_drain_timeout_ms.",
            m.revoke_drain_timeouts.clone(),
        );
        registry.register(
            "consumption_paused",
            "1 while fetching is paused because too much is buffered.",
            m.paused.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub(crate) fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Records arrived from Kafka.
#[derive(Debug)]
pub(crate) struct EventsReceived {
    pub(crate) count: u64,
    pub(crate) bytes: u64,
}

impl EventsReceived {
    pub(crate) fn emit(self) {
        tracing::trace!(count = self.count, bytes = self.bytes, "events received");
        METRICS.events_received.inc_by(self.count);
        METRICS.received_bytes.inc_by(self.bytes);
    }
}

/// The search engine stored documents (or already had them: 409).
#[derive(Debug)]
pub(crate) struct DocumentsIndexed {
    pub(crate) indexed: u64,
    pub(crate) conflicts: u64,
}

impl DocumentsIndexed {
    pub(crate) fn emit(self) {
        tracing::debug!(
            indexed = self.indexed,
            conflicts = self.conflicts,
            "documents indexed"
        );
        METRICS.documents_indexed.inc_by(self.indexed);
        METRICS.document_conflicts.inc_by(self.conflicts);
    }
}

/// Documents will be sent again after a backoff.
#[derive(Debug)]
pub(crate) struct DocumentsRetried<'a> {
    pub(crate) count: u64,
    /// A bounded label, e.g. `rejected`, `status_503`-class, `connection`.
    pub(crate) reason: &'static str,
    /// The detail, for the log only.
    pub(crate) detail: &'a str,
    pub(crate) attempt: u32,
    pub(crate) delay: Duration,
}

impl DocumentsRetried<'_> {
    pub(crate) fn emit(self) {
        // The first retries are routine (a 429 burst); persistent ones are
        // what an operator should see.
        if self.attempt >= 3 {
            tracing::warn!(
                count = self.count,
                reason = self.reason,
                attempt = self.attempt,
                delay_ms = self.delay.as_millis() as u64,
                detail = self.detail,
                "retrying documents"
            );
        } else {
            tracing::debug!(
                count = self.count,
                reason = self.reason,
                attempt = self.attempt,
                delay_ms = self.delay.as_millis() as u64,
                detail = self.detail,
                "retrying documents"
            );
        }
        METRICS
            .retried
            .get_or_create(&ReasonLabel {
                reason: self.reason,
            })
            .inc_by(self.count);
    }
}

/// A record is in the dead-letter topic (its offset may now move past it).
#[derive(Debug)]
pub(crate) struct DeadLettered<'a> {
    pub(crate) reason: &'static str,
    pub(crate) detail: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
}

impl DeadLettered<'_> {
    pub(crate) fn emit(self) {
        tracing::warn!(
            reason = self.reason,
            detail = self.detail,
            topic = self.topic,
            partition = self.partition,
            offset = self.offset,
            "record written to the dead-letter topic"
        );
        METRICS
            .dead_lettered
            .get_or_create(&ReasonLabel {
                reason: self.reason,
            })
            .inc();
    }
}

/// Writing to the dead-letter topic failed; it is retried.
#[derive(Debug)]
pub(crate) struct DeadLetterFailed<'a> {
    pub(crate) error: &'a str,
    pub(crate) attempt: u32,
}

impl DeadLetterFailed<'_> {
    pub(crate) fn emit(self) {
        tracing::warn!(
            error = self.error,
            attempt = self.attempt,
            "writing to the dead-letter topic failed, retrying"
        );
        METRICS.dead_letter_errors.inc();
    }
}

/// A bulk request got an answer (or none).
#[derive(Debug)]
pub(crate) struct BulkRequestCompleted {
    /// `items`, `split`, `retry`, `dead_letter`, `fatal` or `invalid_response`.
    pub(crate) outcome: &'static str,
    pub(crate) events: usize,
    pub(crate) duration: Duration,
}

impl BulkRequestCompleted {
    pub(crate) fn emit(self) {
        tracing::debug!(
            outcome = self.outcome,
            events = self.events,
            duration_ms = self.duration.as_millis() as u64,
            "bulk request completed"
        );
        METRICS
            .bulk_requests
            .get_or_create(&OutcomeLabel {
                outcome: self.outcome,
            })
            .inc();
        METRICS.bulk_duration.observe(self.duration.as_secs_f64());
    }
}

/// How old an event was when the search engine acknowledged it: the bulk
/// response's time minus `@timestamp`.
#[derive(Debug)]
pub(crate) struct EventDelay {
    pub(crate) millis: i64,
}

impl EventDelay {
    pub(crate) fn emit(self) {
        // Clocks disagree: a negative delay is recorded as zero.
        METRICS
            .event_delay
            .observe(self.millis.max(0) as f64 / 1000.0);
    }
}

/// The number of bulks in flight and the bytes buffered changed.
#[derive(Debug)]
pub(crate) struct BufferState {
    pub(crate) bulks_in_flight: usize,
    pub(crate) buffered_bytes: usize,
}

impl BufferState {
    pub(crate) fn emit(self) {
        METRICS
            .bulks_in_flight
            .set(i64::try_from(self.bulks_in_flight).unwrap_or(i64::MAX));
        METRICS
            .buffered_bytes
            .set(i64::try_from(self.buffered_bytes).unwrap_or(i64::MAX));
    }
}

/// Fetching was paused or resumed for backpressure.
#[derive(Debug)]
pub(crate) struct ConsumptionPaused {
    pub(crate) paused: bool,
    pub(crate) buffered_bytes: usize,
}

impl ConsumptionPaused {
    pub(crate) fn emit(self) {
        if self.paused {
            tracing::info!(
                buffered_bytes = self.buffered_bytes,
                "pausing consumption: too much is buffered"
            );
        } else {
            tracing::info!(buffered_bytes = self.buffered_bytes, "resuming consumption");
        }
        METRICS.paused.set(i64::from(self.paused));
    }
}

/// Partitions were assigned to this shipper.
#[derive(Debug)]
pub(crate) struct PartitionsAssigned<'a> {
    pub(crate) partitions: &'a [(String, i32)],
}

impl PartitionsAssigned<'_> {
    pub(crate) fn emit(self) {
        tracing::info!(partitions = ?self.partitions, "partitions assigned");
        METRICS
            .rebalances
            .get_or_create(&OutcomeLabel { outcome: "assign" })
            .inc();
    }
}

/// Partitions were taken away; their bulks drained (or the bound expired).
#[derive(Debug)]
pub(crate) struct PartitionsRevoked<'a> {
    pub(crate) partitions: &'a [(String, i32)],
    pub(crate) drained: bool,
    pub(crate) lost: bool,
    pub(crate) waited: Duration,
    pub(crate) final_offsets: &'a [(String, i32, i64)],
}

impl PartitionsRevoked<'_> {
    pub(crate) fn emit(self) {
        let outcome = if self.lost { "lost" } else { "revoke" };
        if self.drained {
            tracing::info!(
                partitions = ?self.partitions,
                lost = self.lost,
                waited_ms = self.waited.as_millis() as u64,
                final_offsets = ?self.final_offsets,
                "partitions revoked"
            );
        } else {
            tracing::warn!(
                partitions = ?self.partitions,
                waited_ms = self.waited.as_millis() as u64,
                final_offsets = ?self.final_offsets,
                "partitions revoked before their bulks finished: the new owner re-sends them"
            );
            METRICS.revoke_drain_timeouts.inc();
        }
        METRICS
            .rebalances
            .get_or_create(&OutcomeLabel { outcome })
            .inc();
        for (topic, partition) in self.partitions {
            METRICS.consumer_lag.remove(&PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            });
        }
    }
}

/// librdkafka's statistics gave a partition's lag.
#[derive(Debug)]
pub(crate) struct ConsumerLag<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) lag: i64,
}

impl ConsumerLag<'_> {
    pub(crate) fn emit(self) {
        METRICS
            .consumer_lag
            .get_or_create(&PartitionLabels {
                topic: self.topic.to_owned(),
                partition: self.partition,
            })
            .set(self.lag);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_names_every_family_with_bounded_labels() {
        DocumentsIndexed {
            indexed: 3,
            conflicts: 1,
        }
        .emit();
        DocumentsRetried {
            count: 2,
            reason: "rejected",
            detail: "es_rejected_execution_exception: queue full",
            attempt: 0,
            delay: Duration::from_millis(50),
        }
        .emit();
        DeadLettered {
            reason: "mapper_parsing",
            detail: "failed to parse",
            topic: "t",
            partition: 0,
            offset: 7,
        }
        .emit();
        ConsumerLag {
            topic: "t",
            partition: 1,
            lag: 42,
        }
        .emit();
        let text = METRICS.encode();
        for needle in [
            "kelp_shipper_documents_indexed_total",
            "kelp_shipper_document_conflicts_total",
            "kelp_shipper_documents_retried_total{reason=\"rejected\"}",
            "kelp_shipper_documents_dead_lettered_total{reason=\"mapper_parsing\"}",
            "kelp_shipper_bulk_request_duration_seconds_bucket",
            "kelp_shipper_event_delay_seconds_bucket",
            "kelp_shipper_bulks_in_flight",
            "kelp_shipper_consumer_lag{topic=\"t\",partition=\"1\"} 42",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        PartitionsRevoked {
            partitions: &[("t".to_owned(), 1)],
            drained: true,
            lost: false,
            waited: Duration::ZERO,
            final_offsets: &[],
        }
        .emit();
        assert!(!METRICS.encode().contains("partition=\"1\"} 42"));
    }
}
