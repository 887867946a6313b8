//! The dead-letter producer: a librdkafka producer that the shipper polls
//! itself, and only while a write waits for its delivery report.
//!
//! rdkafka's `FutureProducer` runs a thread that polls the producer every
//! 100 ms forever; each poll ends in a busy loop of zero-timeout polls for
//! its last millisecond, which cost about 8 ms of CPU per second with
//! nothing to send. Dead letters are rare, so here a blocking task polls
//! only from the first outstanding write until the last one is reported.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use tokio::sync::oneshot;

/// How long one poll may block: a shorter one only wakes more often.
const POLL_MS: u64 = 100;

/// Between writes, librdkafka's logs and errors wait in the producer's
/// queue; they are read this often.
const IDLE_POLL_MS: u64 = 1000;

/// Most queued events one idle poll reads: each zero-timeout poll reads one.
const IDLE_POLL_EVENTS: usize = 64;

/// Delivery reports go back to the waiting write.
struct Context {
    /// Writes handed to librdkafka whose report has not been seen.
    outstanding: Arc<AtomicUsize>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::pipeline::log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(target: "librdkafka", %error, reason, "kafka producer error");
    }
}

impl ProducerContext for Context {
    type DeliveryOpaque = Box<oneshot::Sender<KafkaResult<()>>>;

    fn delivery(&self, result: &DeliveryResult<'_>, reply: Self::DeliveryOpaque) {
        self.outstanding.fetch_sub(1, Ordering::SeqCst);
        let result = match result {
            Ok(_) => Ok(()),
            Err((error, _)) => Err(error.clone()),
        };
        // The writer may have stopped waiting (shutdown): nothing to tell.
        let _ = reply.send(result);
    }
}

/// The producer of the dead-letter topic.
pub(crate) struct DeadLetterProducer {
    producer: Arc<BaseProducer<Context>>,
    outstanding: Arc<AtomicUsize>,
    /// A poll task is running.
    polling: Arc<AtomicBool>,
}

impl std::fmt::Debug for DeadLetterProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetterProducer")
            .field("outstanding", &self.outstanding.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl DeadLetterProducer {
    /// Creates the producer from librdkafka properties; inside the runtime.
    pub(crate) fn new(config: &ClientConfig) -> KafkaResult<DeadLetterProducer> {
        let outstanding = Arc::new(AtomicUsize::new(0));
        let producer: BaseProducer<Context> = config.create_with_context(Context {
            outstanding: Arc::clone(&outstanding),
        })?;
        let producer = Arc::new(producer);
        let idle = Arc::downgrade(&producer);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(IDLE_POLL_MS));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(producer) = idle.upgrade() else {
                    return;
                };
                for _ in 0..IDLE_POLL_EVENTS {
                    producer.poll(Duration::ZERO);
                }
            }
        });
        Ok(DeadLetterProducer {
            producer,
            outstanding,
            polling: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Writes one record and waits until Kafka acknowledged it or
    /// librdkafka gave up on it (`message.timeout.ms`).
    pub(crate) async fn send(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: OwnedHeaders,
    ) -> KafkaResult<()> {
        let (reply, delivered) = oneshot::channel();
        let record = BaseRecord::with_opaque_to(topic, Box::new(reply))
            .payload(payload)
            .key(key)
            .headers(headers);
        // Counted before the send, so the report can never count below zero.
        self.outstanding.fetch_add(1, Ordering::SeqCst);
        if let Err((error, _)) = self.producer.send(record) {
            self.outstanding.fetch_sub(1, Ordering::SeqCst);
            return Err(error);
        }
        self.ensure_polling();
        match delivered.await {
            Ok(result) => result,
            // librdkafka dropped the report without calling back: treat it as
            // a failure, so the caller retries.
            Err(_) => Err(KafkaError::Canceled),
        }
    }

    /// Starts the poll task unless one runs.
    fn ensure_polling(&self) {
        if self.polling.swap(true, Ordering::SeqCst) {
            return;
        }
        let producer = Arc::clone(&self.producer);
        let outstanding = Arc::clone(&self.outstanding);
        let polling = Arc::clone(&self.polling);
        tokio::task::spawn_blocking(move || {
            loop {
                producer.poll(Duration::from_millis(POLL_MS));
                if outstanding.load(Ordering::SeqCst) > 0 {
                    continue;
                }
                polling.store(false, Ordering::SeqCst);
                // A write counted after the check above saw `polling` still
                // set and started no task: take it over.
                if outstanding.load(Ordering::SeqCst) == 0 || polling.swap(true, Ordering::SeqCst) {
                    return;
                }
            }
        });
    }

    /// Waits (bounded) for every write handed to librdkafka.
    pub(crate) fn flush(&self, timeout: Duration) -> KafkaResult<()> {
        self.producer.flush(timeout)
    }
}
