//! The Kafka sink: librdkafka's idempotent producer with `acks=all`.
//!
//! The pipeline's own thread polls librdkafka for delivery reports (there is
//! no polling thread): a report is a plain push into a list, and librdkafka's
//! messages are freed on the thread that allocated them, which keeps the
//! allocator's arenas uncontended. A failed report hands the payload back,
//! so the pipeline keeps no copy of an event while Kafka has it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use serde::{Deserialize, Serialize};

use super::{DeliveryFailure, Outgoing, Receipt, Refused, Sink, SinkStatus};

/// Settings of the Kafka producer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// Comma-separated `host:port` list of brokers to bootstrap from.
    pub bootstrap_servers: String,
    /// Topic for the events. `{namespace}` is replaced by the pod's
    /// namespace, e.g. `logs-{namespace}`. Default `kelp-logs`. With
    /// auto-create off (the deployer's default) every topic must exist.
    #[serde(default = "default_topic")]
    pub topic: String,
    /// Message key, which picks the partition: `file` (default: the file
    /// identity, so each file's events stay in order), `pod` (the pod UID) or
    /// `none` (spread evenly, no order).
    #[serde(default)]
    pub key: KeyChoice,
    /// Compression codec: `lz4` (default: cheapest CPU per byte saved on log text) or `zstd`.
    #[serde(default = "default_compression")]
    pub compression: Compression,
    /// Bytes the producer may hold in its queue before the collector stops
    /// reading; default 16 MiB, which bounds the collector's memory.
    #[serde(default = "default_queue_max_bytes")]
    pub queue_max_bytes: u64,
    /// How long the producer waits to fill a batch; default 20 ms (librdkafka's
    /// 5 ms default costs more CPU per event at high rates).
    #[serde(default = "default_linger_ms")]
    pub linger_ms: u64,
    /// Largest record the brokers accept; default 1 MiB (Kafka's `message.max.bytes`).
    #[serde(default = "default_message_max_bytes")]
    pub message_max_bytes: u64,
    /// Extra librdkafka properties (e.g. `security.protocol`, `sasl.*`).
    /// `acks`, `enable.idempotence` and `message.timeout.ms` cannot be
    /// overridden: they carry the delivery guarantee.
    /// `statistics.interval.ms` (default 5000) may be changed but not set
    /// to 0: `/readyz` counts broker connections from the statistics.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

/// What the Kafka message key is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyChoice {
    /// The file identity (16 hex digits).
    #[default]
    File,
    /// The pod UID.
    Pod,
    /// No key.
    None,
}

/// A Kafka compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// LZ4: fast, moderate ratio.
    Lz4,
    /// Zstandard: better ratio, more CPU.
    Zstd,
}

fn default_topic() -> String {
    "kelp-logs".to_owned()
}
fn default_compression() -> Compression {
    Compression::Lz4
}
fn default_queue_max_bytes() -> u64 {
    16 * 1024 * 1024
}
fn default_linger_ms() -> u64 {
    20
}
fn default_message_max_bytes() -> u64 {
    1024 * 1024
}

/// Properties that carry the delivery guarantee and so cannot be overridden.
const GUARANTEED: [(&str, &str); 4] = [
    ("acks", "all"),
    ("enable.idempotence", "true"),
    // Never give up on an event: while Kafka is down the queue fills, the
    // collector stops reading, and the files are the buffer.
    ("message.timeout.ms", "0"),
    ("max.in.flight.requests.per.connection", "5"),
];

/// How often librdkafka reports statistics, which `/readyz` reads broker
/// connections from; as the shipper's, for its lag.
const STATISTICS_INTERVAL_MS: &str = "5000";

/// Why the Kafka sink could not start.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// A property that carries the delivery guarantee was set in `properties`.
    #[error("creating kafka producer failed: property {0:?} cannot be overridden")]
    Guarded(String),
    /// `statistics.interval.ms` was set to 0, which would leave `/readyz` blind.
    #[error(
        "creating kafka producer failed: statistics.interval.ms must be positive (it feeds /readyz)"
    )]
    StatisticsOff,
    /// librdkafka refused the configuration.
    #[error("creating kafka producer failed: {0}")]
    Create(#[from] KafkaError),
}

impl KafkaSinkConfig {
    /// The librdkafka configuration for this sink.
    ///
    /// # Errors
    /// When `properties` tries to override a guaranteed property.
    pub fn client_config(&self) -> Result<ClientConfig, KafkaSinkError> {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set(
                "compression.type",
                match self.compression {
                    Compression::Lz4 => "lz4",
                    Compression::Zstd => "zstd",
                },
            )
            .set(
                "queue.buffering.max.kbytes",
                (self.queue_max_bytes / 1024).max(1).to_string(),
            )
            .set("queue.buffering.max.messages", "1000000")
            .set("linger.ms", self.linger_ms.to_string())
            .set("message.max.bytes", self.message_max_bytes.to_string())
            .set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        for (key, value) in &self.properties {
            if GUARANTEED.iter().any(|(guarded, _)| guarded == key) {
                return Err(KafkaSinkError::Guarded(key.clone()));
            }
            if key == "statistics.interval.ms" && value.trim() == "0" {
                return Err(KafkaSinkError::StatisticsOff);
            }
            config.set(key, value);
        }
        for (key, value) in GUARANTEED {
            config.set(key, value);
        }
        Ok(config)
    }
}

/// Collects delivery reports while the pipeline polls, and routes broker
/// connection states to `/readyz`.
struct Reports {
    /// Filled during `poll` on the pipeline's thread; the lock is never contended.
    done: Mutex<Vec<Receipt>>,
    in_flight: Arc<AtomicUsize>,
    status: SinkStatus,
}

/// The part of librdkafka's statistics JSON that readiness needs.
#[derive(Debug, Deserialize)]
struct Statistics {
    #[serde(default)]
    brokers: HashMap<String, BrokerStatistics>,
}

#[derive(Debug, Deserialize)]
struct BrokerStatistics {
    state: String,
    /// `configured` (bootstrap), `learned`, `internal` or `logical`.
    source: String,
}

/// Broker connections up in a statistics report; the internal and logical
/// pseudo-brokers are not connections.
fn brokers_up(statistics: &[u8]) -> Option<usize> {
    let statistics: Statistics = serde_json::from_slice(statistics).ok()?;
    Some(
        statistics
            .brokers
            .values()
            .filter(|b| b.state == "UP" && (b.source == "learned" || b.source == "configured"))
            .count(),
    )
}

impl ClientContext for Reports {
    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            // Not ready at once; the next statistics say when one is back.
            self.status.set_brokers_up(0);
        }
        // Broker-down and similar errors are transient: librdkafka retries
        // forever (message.timeout.ms=0), so this is a warning, not data loss.
        tracing::warn!(%error, reason, "kafka client error");
    }

    fn stats_raw(&self, statistics: &[u8]) {
        match brokers_up(statistics) {
            Some(up) => self.status.set_brokers_up(up),
            None => tracing::debug!("parsing librdkafka statistics failed"),
        }
    }
}

impl ProducerContext for Reports {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, token: usize) {
        let result = match result {
            Ok(_) => Ok(()),
            Err((error, message)) => Err(DeliveryFailure {
                payload: Some(message.payload().unwrap_or_default().to_vec()),
                ..failure(error)
            }),
        };
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Receipt {
                token: token as u64,
                result,
            });
    }
}

fn failure(error: &KafkaError) -> DeliveryFailure {
    let reason = match error.rdkafka_error_code() {
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => "message_too_large",
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => "topic_authorization",
        Some(RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic) => {
            "unknown_topic"
        }
        Some(RDKafkaErrorCode::MessageTimedOut) => "timed_out",
        _ => "other",
    };
    DeliveryFailure {
        reason,
        detail: error.to_string(),
        payload: None,
    }
}

/// The nap between two looks for reports while events are in flight:
/// reports are picked up within this much.
const POLL_NAP: Duration = Duration::from_millis(2);

/// Polls of librdkafka's queue without waiting in one collection; each
/// delivers one queued event (a batch of reports).
const MAX_READY_POLLS: usize = 64;

/// Produces events to Kafka; see the module docs.
pub struct KafkaSink {
    producer: BaseProducer<Reports>,
    in_flight: Arc<AtomicUsize>,
    status: SinkStatus,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// Creates the producer. It connects lazily: a down broker is not an error here.
    ///
    /// # Errors
    /// When the configuration is invalid.
    pub fn new(config: &KafkaSinkConfig) -> Result<KafkaSink, KafkaSinkError> {
        let in_flight = Arc::new(AtomicUsize::new(0));
        let status = SinkStatus::kafka();
        let producer = config.client_config()?.create_with_context(Reports {
            done: Mutex::new(Vec::new()),
            in_flight: Arc::clone(&in_flight),
            status: status.clone(),
        })?;
        Ok(KafkaSink {
            producer,
            in_flight,
            status,
        })
    }
}

impl KafkaSink {
    /// Moves the reports collected so far into `into`; returns how many it holds.
    fn take_done(&self, into: &mut Vec<Receipt>) -> usize {
        into.append(
            &mut self
                .producer
                .context()
                .done
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        into.len()
    }
}

impl Sink for KafkaSink {
    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused> {
        let Ok(token) = usize::try_from(out.token) else {
            return Err(Refused::Rejected(DeliveryFailure {
                reason: "other",
                detail: "token does not fit usize".into(),
                payload: Some(out.payload.to_vec()),
            }));
        };
        let record = BaseRecord::with_opaque_to(out.topic, token)
            .key(out.key)
            .payload(out.payload);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        match self.producer.send(record) {
            Ok(()) => Ok(()),
            Err((error, _)) => {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                match error.rdkafka_error_code() {
                    Some(RDKafkaErrorCode::QueueFull) => Err(Refused::Full),
                    _ => Err(Refused::Rejected(DeliveryFailure {
                        payload: Some(out.payload.to_vec()),
                        ..failure(&error)
                    })),
                }
            }
        }
    }

    fn receipts(&mut self, into: &mut Vec<Receipt>, wait: Duration) {
        let deadline = Instant::now() + wait;
        loop {
            for _ in 0..MAX_READY_POLLS {
                let before = self.take_done(into);
                self.producer.poll(Duration::ZERO);
                if self.take_done(into) == before {
                    break;
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !into.is_empty() || left.is_zero() {
                return;
            }
            // Not rdkafka's timed poll: it cuts the time left to whole
            // milliseconds and spins through the last one (3% of a core
            // when idle). With nothing in flight no report can come, and
            // statistics can wait for the next round.
            let nap = if self.in_flight() == 0 {
                left
            } else {
                left.min(POLL_NAP)
            };
            std::thread::sleep(nap);
        }
    }

    fn hands_back_payloads(&self) -> bool {
        true
    }

    fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn status(&self) -> SinkStatus {
        self.status.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(properties: &[(&str, &str)]) -> KafkaSinkConfig {
        KafkaSinkConfig {
            bootstrap_servers: "127.0.0.1:9".into(),
            topic: default_topic(),
            key: KeyChoice::File,
            compression: Compression::Lz4,
            queue_max_bytes: default_queue_max_bytes(),
            linger_ms: default_linger_ms(),
            message_max_bytes: default_message_max_bytes(),
            properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn guarantee_properties_cannot_be_overridden() {
        for key in ["acks", "enable.idempotence", "message.timeout.ms"] {
            let error = config(&[(key, "1")]).client_config().unwrap_err();
            assert!(
                matches!(error, KafkaSinkError::Guarded(ref k) if k == key),
                "{key}"
            );
        }
        let ok = config(&[("client.id", "node-1")]).client_config().unwrap();
        assert_eq!(ok.get("acks"), Some("all"));
        assert_eq!(ok.get("enable.idempotence"), Some("true"));
        assert_eq!(ok.get("message.timeout.ms"), Some("0"));
        assert_eq!(ok.get("client.id"), Some("node-1"));
        assert_eq!(ok.get("queue.buffering.max.kbytes"), Some("16384"));
        assert_eq!(ok.get("statistics.interval.ms"), Some("5000"));
        let tuned = config(&[("statistics.interval.ms", "1000")])
            .client_config()
            .unwrap();
        assert_eq!(tuned.get("statistics.interval.ms"), Some("1000"));
        assert!(matches!(
            config(&[("statistics.interval.ms", "0")]).client_config(),
            Err(KafkaSinkError::StatisticsOff)
        ));
    }

    #[test]
    fn brokers_up_counts_real_connections_only() {
        let statistics = br#"{"name":"rdkafka#producer-1","brokers":{
            "127.0.0.1:9092/bootstrap":{"state":"UP","source":"configured","nodeid":-1},
            "127.0.0.1:9092/1":{"state":"UP","source":"learned","nodeid":1},
            "127.0.0.1:9093/2":{"state":"CONNECT","source":"learned","nodeid":2},
            ":0/internal":{"state":"UP","source":"internal","nodeid":-1},
            "GroupCoordinator":{"state":"UP","source":"logical","nodeid":-1}}}"#;
        assert_eq!(brokers_up(statistics), Some(2));
        assert_eq!(brokers_up(br#"{"brokers":{}}"#), Some(0));
        assert_eq!(brokers_up(b"not json"), None);
    }
}
