//! The running pipeline: Kafka records in, bulk requests out, offsets stored
//! as the watermark moves.
//!
//! # Threads and locks
//!
//! One [`Shared`] holds the pipeline state behind a `std::sync::Mutex`:
//! topic table, watermarks, assignment generations, the open batch, the
//! queue of full batches and the buffer accounting. Three kinds of code take
//! the lock, each only for bookkeeping, never across an `.await` or a
//! network call:
//!
//! - the dispatcher task, which calls `StreamConsumer::recv` and appends
//!   each record to the open batch ([`dispatch`]);
//! - bulk tasks, one per batch in flight, which send the batch, retry and
//!   dead-letter, then mark offsets done and store the moved watermarks
//!   ([`Shared::run_job`]);
//! - the rebalance callback ([`ShipperContext`]), which librdkafka runs on
//!   the thread that polls the consumer, i.e. inside the dispatcher's
//!   `recv()`.
//!
//! On revoke the callback must wait for the revoked partitions' bulks. It
//! waits on a `Condvar` (which releases the lock) inside
//! `tokio::task::block_in_place`, which hands the worker's other tasks to
//! another thread. Bulk tasks never need the dispatcher or the consumer's
//! poll: they store offsets straight through librdkafka (thread-safe) and
//! signal the `Condvar`. So the wait always ends, by completion or by the
//! bound.
//!
//! # Generations
//!
//! Every assignment of a partition gets a new generation number. A batch
//! remembers the generations of its partitions when it is queued; before
//! each send or retry, items of partitions revoked since are dropped, so a
//! bulk of a partition that moved to another shipper stops retrying here.
//! Their offsets were never stored, so the new owner sends them again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{FutureExt as _, StreamExt as _};
use kelp_shipper::backoff::{Backoff, SplitMix64};
use kelp_shipper::bulk::{BatchBuffers, BatchLimits, BulkBatch, Ingested, PushError, RecordView};
use kelp_shipper::config::{BulkConfig, Slots};
use kelp_shipper::dead_letter::{DeadLetter, Stage};
use kelp_shipper::index_name::IndexTemplate;
use kelp_shipper::lag::{PartitionOffsets, partition_lag};
use kelp_shipper::response::{self, BulkOutcome, ErrorClass, ItemOutcome};
use kelp_shipper::source::{PartitionMap, SourcePos, TopicPartition, TopicTable};
use kelp_shipper::watermark::{TrackError, Watermarks};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::internal_events::{
    BufferState, BulkRequestCompleted, ConsumerLag, ConsumptionPaused, DeadLetterFailed,
    DeadLettered, DocumentsIndexed, DocumentsRetried, EventDelay, EventsReceived,
    PartitionsAssigned, PartitionsRevoked,
};
use crate::producer::DeadLetterProducer;
use crate::search::SearchClient;

/// Bodies above this capacity are not kept for reuse (bulk.rs presizes at
/// most 16 MiB).
const BODY_POOL_MAX_BYTES: usize = 16 << 20;

/// Most records taken from librdkafka's queue between two backpressure
/// checks: the buffer bounds may be overshot by this many.
const BURST_RECORDS: usize = 64;

/// The consumer type.
pub(crate) type ShipperConsumer = StreamConsumer<ShipperContext>;

/// What the pipeline needs from the configuration, resolved once.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) template: IndexTemplate,
    pub(crate) limits: BatchLimits,
    /// `bulk` config: the linger for the slots' state.
    pub(crate) bulk: BulkConfig,
    pub(crate) max_in_flight: usize,
    pub(crate) backoff: Backoff,
    pub(crate) drain_timeout: Duration,
    pub(crate) dead_letter_topic: String,
    /// Pause fetching above this many bytes of open, queued and in-flight
    /// bodies: room for every slot plus the batch being filled.
    pub(crate) max_buffered_bytes: usize,
    /// Pause fetching above this many records not yet done, so tiny records
    /// cannot pile up below the byte bound.
    pub(crate) max_buffered_events: usize,
}

/// What `/readyz` reports.
#[derive(Debug, Default)]
pub(crate) struct Readiness {
    /// The last request to the search engine got an answer below 500.
    pub(crate) engine: AtomicBool,
    /// The template and policy are installed (or installation is off).
    pub(crate) template: AtomicBool,
    /// The consumer subscribed.
    pub(crate) subscribed: AtomicBool,
}

impl Readiness {
    /// `Ok` when ready, else what is missing.
    pub(crate) fn check(&self) -> Result<(), String> {
        let missing: Vec<&str> = [
            (&self.engine, "search engine not reachable"),
            (&self.template, "index template not installed"),
            (&self.subscribed, "not subscribed"),
        ]
        .into_iter()
        .filter(|(flag, _)| !flag.load(Ordering::Relaxed))
        .map(|(_, what)| what)
        .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    }
}

/// The batch being filled.
#[derive(Debug)]
struct OpenBatch {
    batch: BulkBatch,
    started: Instant,
}

/// A full batch, queued or in flight.
#[derive(Debug)]
struct Job {
    batch: BulkBatch,
    /// The generation of each of the batch's partitions when it was queued.
    generations: Vec<(TopicPartition, u64)>,
}

#[derive(Debug)]
struct State {
    topics: TopicTable,
    watermarks: Watermarks,
    /// Assigned partitions and their generation.
    generations: PartitionMap<u64>,
    next_generation: u64,
    open: Option<OpenBatch>,
    ready: VecDeque<Job>,
    /// Bulk tasks running.
    in_flight: usize,
    /// Bytes of queued and in-flight bodies and of dead-letter payloads.
    queued_bytes: usize,
    paused: bool,
    /// Shutting down: no new batches are started by rebalances.
    closing: bool,
    /// The last `event.ingested` formatted, with its millisecond.
    ingested: (i64, Ingested),
    /// Buffers of sent batches for the next ones.
    spare: Vec<BatchBuffers>,
}

impl State {
    fn buffered_bytes(&self) -> usize {
        self.queued_bytes + self.open.as_ref().map_or(0, |o| o.batch.body().len())
    }

    fn topic_partition(&mut self, topic: &str, partition: i32) -> TopicPartition {
        TopicPartition::new(self.topics.intern(topic), partition)
    }

    /// The final offsets of `commits` as a librdkafka list.
    fn offsets_tpl(&self, commits: &[(TopicPartition, i64)]) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::with_capacity(commits.len());
        for (tp, offset) in commits {
            if let Some(topic) = self.topics.name(tp.topic) {
                // Adding to a fresh list only fails for invalid offsets.
                let _ = tpl.add_partition_offset(topic, tp.partition, Offset::Offset(*offset));
            }
        }
        tpl
    }
}

/// The pipeline, shared by the dispatcher, the bulk tasks and the consumer context.
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled when offsets complete or a bulk task ends: revoke drains wait on it.
    changed: Condvar,
    /// Wakes the dispatcher and the shutdown drain when something finished.
    wake: Notify,
    settings: Settings,
    client: Arc<SearchClient>,
    producer: Arc<DeadLetterProducer>,
    runtime: tokio::runtime::Handle,
    consumer: OnceLock<Weak<ShipperConsumer>>,
    readiness: Arc<Readiness>,
    rng: Mutex<SplitMix64>,
    /// Set by a fatal bulk answer; the process stops.
    fatal: OnceLock<String>,
    /// Cancelled on a fatal error.
    stop: CancellationToken,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("settings", &self.settings)
            .field("fatal", &self.fatal)
            .finish_non_exhaustive()
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Shared {
    pub(crate) fn new(
        settings: Settings,
        client: Arc<SearchClient>,
        producer: Arc<DeadLetterProducer>,
        readiness: Arc<Readiness>,
        stop: CancellationToken,
    ) -> Arc<Shared> {
        // Jitter must differ between shippers: seed from the clock and the pid.
        let seed = (now_millis() as u64) ^ (u64::from(std::process::id()) << 32);
        Arc::new(Shared {
            state: Mutex::new(State {
                topics: TopicTable::new(),
                watermarks: Watermarks::new(),
                generations: PartitionMap::default(),
                next_generation: 0,
                open: None,
                ready: VecDeque::new(),
                in_flight: 0,
                queued_bytes: 0,
                paused: false,
                closing: false,
                ingested: (0, Ingested::from_unix_millis(0)),
                spare: Vec::new(),
            }),
            changed: Condvar::new(),
            wake: Notify::new(),
            settings,
            client,
            producer,
            runtime: tokio::runtime::Handle::current(),
            consumer: OnceLock::new(),
            readiness,
            rng: Mutex::new(SplitMix64::new(seed)),
            fatal: OnceLock::new(),
            stop,
        })
    }

    /// Connects the consumer, once it exists (it owns the context that owns us).
    pub(crate) fn set_consumer(&self, consumer: &Arc<ShipperConsumer>) {
        let _ = self.consumer.set(Arc::downgrade(consumer));
    }

    /// The fatal error, if one stopped the pipeline.
    pub(crate) fn fatal(&self) -> Option<&str> {
        self.fatal.get().map(String::as_str)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug; the state is still the
        // best information there is, so keep going with it.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn delay(&self, attempt: u32) -> Duration {
        let random = self
            .rng
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .next_u64();
        self.settings.backoff.delay(attempt, random)
    }

    /// Appends one record to the open batch, or sends it to the dead-letter
    /// topic when it cannot be decoded. `now_millis` is the wall clock, read
    /// once per burst of records.
    fn accept(self: &Arc<Self>, message: &BorrowedMessage<'_>, now_millis: i64) {
        let payload = message.payload().unwrap_or_default();
        let mut st = self.lock();
        let tp = st.topic_partition(message.topic(), message.partition());
        let pos = SourcePos::new(tp, message.offset());
        match st.watermarks.track(pos) {
            Ok(()) => {}
            Err(e @ (TrackError::Unassigned | TrackError::OutOfOrder { .. })) => {
                // A record of a partition revoked meanwhile, or one already
                // handed out: its owner, or the earlier copy, covers it.
                tracing::debug!(error = %e, topic = message.topic(), offset = message.offset(), "record skipped");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, topic = message.topic(), "record skipped");
                return;
            }
        }
        let view = match RecordView::parse(payload) {
            Ok(view) => view,
            Err(error) => {
                let detail = error.to_string();
                self.dead_letter_record(&mut st, pos, payload, error.reason(), &detail);
                return;
            }
        };
        loop {
            // event.ingested is when the event entered a body; the text is
            // formatted again only when the millisecond changes.
            let millis = now_millis;
            if st.ingested.0 != millis {
                st.ingested = (millis, Ingested::from_unix_millis(millis));
            }
            let st: &mut State = &mut st;
            let spare = &mut st.spare;
            let open = st.open.get_or_insert_with(|| OpenBatch {
                batch: BulkBatch::with_buffers(
                    self.settings.limits,
                    spare.pop().unwrap_or_default(),
                ),
                started: Instant::now(),
            });
            match open
                .batch
                .push_view(pos, &view, &self.settings.template, &st.ingested.1)
            {
                Ok(()) => {
                    if open.batch.is_full() {
                        self.flush(st);
                    }
                    return;
                }
                // Send the full batch and try again in a fresh one.
                Err(PushError::Full) if !open.batch.is_empty() => self.flush(st),
                // An empty batch takes any single record; should that ever
                // change, the record must not wait forever in the watermark.
                Err(PushError::Full) => {
                    self.dead_letter_record(
                        st,
                        pos,
                        payload,
                        "batch_full",
                        "encoding bulk item failed: the record does not fit an empty batch",
                    );
                    return;
                }
                Err(PushError::Rejected(error)) => {
                    let detail = error.to_string();
                    self.dead_letter_record(st, pos, payload, error.reason(), &detail);
                    return;
                }
            }
        }
    }

    /// Queues the open batch and starts bulks for free slots.
    fn flush(self: &Arc<Self>, st: &mut State) {
        if let Some(open) = st.open.take()
            && !open.batch.is_empty()
        {
            let mut generations: Vec<(TopicPartition, u64)> = Vec::new();
            for item in open.batch.items() {
                let tp = item.source.tp;
                if !generations.iter().any(|(t, _)| *t == tp)
                    && let Some(generation) = st.generations.get(&tp)
                {
                    generations.push((tp, *generation));
                }
            }
            st.queued_bytes += open.batch.body().len();
            st.ready.push_back(Job {
                batch: open.batch,
                generations,
            });
        }
        self.pump(st);
    }

    /// How long the open batch may wait now: briefly while a bulk slot is
    /// free, `linger` while every slot is busy.
    fn linger(&self, st: &State) -> Duration {
        self.settings.bulk.linger(Slots {
            in_flight: st.in_flight,
            queued: st.ready.len(),
        })
    }

    /// Flushes the open batch when it has waited its linger or longer.
    fn flush_if_lingered(self: &Arc<Self>) {
        let mut st = self.lock();
        let linger = self.linger(&st);
        if st
            .open
            .as_ref()
            .is_some_and(|o| o.started.elapsed() >= linger)
        {
            self.flush(&mut st);
        }
    }

    /// When the open batch must be sent, as the slots are now; a bulk that
    /// finishes wakes the dispatcher, which asks again.
    fn linger_deadline(&self) -> Option<tokio::time::Instant> {
        let st = self.lock();
        let linger = self.linger(&st);
        st.open
            .as_ref()
            .map(|o| tokio::time::Instant::from_std(o.started + linger))
    }

    /// Starts a bulk task per free slot.
    fn pump(self: &Arc<Self>, st: &mut State) {
        while st.in_flight < self.settings.max_in_flight && self.fatal.get().is_none() {
            let Some(job) = st.ready.pop_front() else {
                break;
            };
            st.in_flight += 1;
            let shared = Arc::clone(self);
            self.runtime.spawn(async move { shared.run_job(job).await });
        }
        BufferState {
            bulks_in_flight: st.in_flight,
            buffered_bytes: st.buffered_bytes(),
        }
        .emit();
    }

    /// Pauses fetching when too much is buffered, resumes below half of it.
    fn backpressure(&self, consumer: &ShipperConsumer) {
        let mut st = self.lock();
        let bytes = st.buffered_bytes();
        let events = st.watermarks.pending();
        let over =
            bytes > self.settings.max_buffered_bytes || events > self.settings.max_buffered_events;
        let under = bytes <= self.settings.max_buffered_bytes / 2
            && events <= self.settings.max_buffered_events / 2;
        let change = if over && !st.paused {
            Some(true)
        } else if under && st.paused {
            Some(false)
        } else {
            None
        };
        let Some(pause) = change else {
            return;
        };
        let assignment = match consumer.assignment() {
            Ok(tpl) => tpl,
            Err(error) => {
                tracing::warn!(%error, "reading the assignment failed");
                return;
            }
        };
        let result = if pause {
            consumer.pause(&assignment)
        } else {
            consumer.resume(&assignment)
        };
        match result {
            Ok(()) => {
                st.paused = pause;
                ConsumptionPaused {
                    paused: pause,
                    buffered_bytes: bytes,
                }
                .emit();
            }
            Err(error) => tracing::warn!(%error, pause, "pausing or resuming partitions failed"),
        }
    }

    /// Marks records done and stores the offsets that moved.
    fn complete(&self, done: &[SourcePos]) {
        if done.is_empty() {
            return;
        }
        let mut st = self.lock();
        for pos in done {
            st.watermarks.complete(*pos);
        }
        let commits = st.watermarks.take_commits();
        if !commits.is_empty()
            && let Some(consumer) = self.consumer.get().and_then(Weak::upgrade)
        {
            // Stored under the lock, so a revoke cannot interleave and a
            // stale offset cannot overwrite a newer one.
            let tpl = st.offsets_tpl(&commits);
            if let Err(error) = consumer.store_offsets(&tpl) {
                // ERR__STATE: the partition was revoked meanwhile.
                tracing::debug!(%error, "storing offsets failed");
            }
        }
        drop(st);
        self.changed.notify_all();
    }

    /// Items whose partition is still assigned in the same generation.
    fn current_items(&self, batch: BulkBatch, generations: &[(TopicPartition, u64)]) -> BulkBatch {
        let st = self.lock();
        let current = |tp: TopicPartition| {
            generations
                .iter()
                .find(|(t, _)| *t == tp)
                .is_some_and(|(_, g)| st.generations.get(&tp) == Some(g))
        };
        if batch.items().iter().all(|item| current(item.source.tp)) {
            return batch;
        }
        let kept = batch.select(|_, item| current(item.source.tp));
        tracing::debug!(
            dropped = batch.len() - kept.len(),
            "dropping items of revoked partitions"
        );
        kept
    }

    fn fail(&self, reason: String) {
        tracing::error!(
            reason = %reason,
            "the search engine refuses the shipper's requests: stopping; offsets stay where they are"
        );
        let _ = self.fatal.set(reason);
        self.stop.cancel();
    }

    /// Sends one batch until every item is indexed, dead-lettered, or
    /// dropped because its partition moved away.
    async fn run_job(self: Arc<Self>, job: Job) {
        let bytes = job.batch.body().len();
        let mut work = vec![(job.batch, 0u32)];
        while let Some((batch, attempt)) = work.pop() {
            let mut batch = self.current_items(batch, &job.generations);
            if batch.is_empty() || self.fatal.get().is_some() {
                continue;
            }
            let started = Instant::now();
            let sent = batch.len();
            let (outcome, label) = match self.client.bulk(batch.seal()).await {
                Ok(answer) => {
                    self.readiness
                        .engine
                        .store(answer.status < 500, Ordering::Relaxed);
                    match response::classify(answer.status, &answer.body, sent) {
                        Ok(outcome) => {
                            let label = outcome.label();
                            (outcome, label)
                        }
                        Err(error) => (
                            BulkOutcome::RetryAll {
                                status: Some(answer.status),
                                reason: error.to_string(),
                            },
                            "invalid_response",
                        ),
                    }
                }
                Err(error) => {
                    self.readiness.engine.store(false, Ordering::Relaxed);
                    (
                        response::transport_error(error.to_string()),
                        "connection_error",
                    )
                }
            };
            BulkRequestCompleted {
                outcome: label,
                events: sent,
                duration: started.elapsed(),
            }
            .emit();
            match outcome {
                BulkOutcome::Items(items) => {
                    let retry = self.settle_items(&batch, &items).await;
                    if !retry.is_empty() {
                        let delay = self.delay(attempt);
                        let (reason, detail) = retry_reason(&items);
                        DocumentsRetried {
                            count: retry.len() as u64,
                            reason,
                            detail: &detail,
                            attempt,
                            delay,
                        }
                        .emit();
                        tokio::time::sleep(delay).await;
                        let mut again = vec![false; batch.len()];
                        for i in retry {
                            again[i] = true;
                        }
                        let again = batch.select(|i, _| again[i]);
                        work.push((again, attempt.saturating_add(1)));
                    }
                    self.recycle(batch);
                }
                BulkOutcome::Split { status } => match batch.split() {
                    Ok((first, second)) => {
                        tracing::info!(
                            status,
                            events = sent,
                            "bulk refused as a whole: splitting it"
                        );
                        work.push((second, attempt));
                        work.push((first, attempt));
                    }
                    // `classify` dead-letters single events instead; retry to be safe.
                    Err(single) => work.push((single, attempt.saturating_add(1))),
                },
                BulkOutcome::RetryAll { status, reason } => {
                    let delay = self.delay(attempt);
                    DocumentsRetried {
                        count: sent as u64,
                        reason: request_retry_label(status, label),
                        detail: &reason,
                        attempt,
                        delay,
                    }
                    .emit();
                    tokio::time::sleep(delay).await;
                    work.push((batch, attempt.saturating_add(1)));
                }
                BulkOutcome::DeadLetterAll {
                    status,
                    error_type,
                    reason,
                } => {
                    let label = if status == 413 {
                        "request_entity_too_large"
                    } else {
                        ErrorClass::from_type(&error_type).label()
                    };
                    let mut done = Vec::with_capacity(sent);
                    for (i, item) in batch.items().iter().enumerate() {
                        let document = batch.document(i).unwrap_or_default();
                        let index = batch.index_name(i);
                        if self
                            .dead_letter(
                                document,
                                item.source,
                                Some(status),
                                label,
                                &error_type,
                                &reason,
                                index,
                            )
                            .await
                        {
                            done.push(item.source);
                        }
                    }
                    self.complete(&done);
                    self.recycle(batch);
                }
                BulkOutcome::Fatal {
                    kind,
                    status,
                    reason,
                } => {
                    self.fail(format!(
                        "bulk request answered {status} ({kind:?}): {reason}"
                    ));
                }
            }
        }
        let mut st = self.lock();
        st.in_flight -= 1;
        st.queued_bytes = st.queued_bytes.saturating_sub(bytes);
        self.pump(&mut st);
        drop(st);
        self.changed.notify_all();
        self.wake.notify_one();
    }

    /// Keeps a sent batch's buffers for a later batch.
    fn recycle(&self, batch: BulkBatch) {
        let Some(buffers) = batch.into_buffers() else {
            return;
        };
        // Only full-size buffers, and no more than the batches that can
        // exist at once: a split batch's small body is not worth keeping.
        let presized = self.settings.limits.max_bytes.min(BODY_POOL_MAX_BYTES);
        if buffers.capacity_bytes() < presized || buffers.capacity_bytes() > 2 * presized {
            return;
        }
        let mut st = self.lock();
        if st.spare.len() <= self.settings.max_in_flight {
            st.spare.push(buffers);
        }
    }

    /// Completes indexed items, dead-letters rejected ones; returns the
    /// indexes of the items to retry.
    async fn settle_items(&self, batch: &BulkBatch, items: &[ItemOutcome]) -> Vec<usize> {
        let mut done = Vec::with_capacity(items.len());
        let mut retry = Vec::new();
        let (mut indexed, mut conflicts) = (0u64, 0u64);
        let acked_millis = now_millis();
        for (i, (item, outcome)) in batch.items().iter().zip(items).enumerate() {
            match outcome {
                ItemOutcome::Indexed => {
                    indexed += 1;
                    done.push(item.source);
                    if let Some(ts) = item.timestamp_unix_millis {
                        EventDelay {
                            millis: acked_millis - ts,
                        }
                        .emit();
                    }
                }
                ItemOutcome::Conflict409 => {
                    conflicts += 1;
                    done.push(item.source);
                }
                ItemOutcome::Retry { .. } => retry.push(i),
                ItemOutcome::DeadLetter { .. } => {}
            }
        }
        DocumentsIndexed { indexed, conflicts }.emit();
        // Indexed offsets move now; rejected ones once the dead-letter topic has them.
        self.complete(&done);
        let mut dead = Vec::new();
        for (i, (item, outcome)) in batch.items().iter().zip(items).enumerate() {
            if let ItemOutcome::DeadLetter {
                status,
                error_type,
                reason,
            } = outcome
            {
                let label = ErrorClass::from_type(error_type).label();
                let document = batch.document(i).unwrap_or_default();
                if self
                    .dead_letter(
                        document,
                        item.source,
                        Some(*status),
                        label,
                        error_type,
                        reason,
                        batch.index_name(i),
                    )
                    .await
                {
                    dead.push(item.source);
                }
            }
        }
        self.complete(&dead);
        retry
    }

    /// Queues a record that cannot be decoded for the dead-letter topic; its
    /// offset completes once Kafka has it.
    fn dead_letter_record(
        self: &Arc<Self>,
        st: &mut State,
        pos: SourcePos,
        payload: &[u8],
        reason: &'static str,
        detail: &str,
    ) {
        let payload = payload.to_vec();
        let detail = detail.to_owned();
        let bytes = payload.len();
        st.queued_bytes += bytes;
        let shared = Arc::clone(self);
        self.runtime.spawn(async move {
            if shared
                .dead_letter(&payload, pos, None, reason, reason, &detail, None)
                .await
            {
                shared.complete(&[pos]);
            }
            let mut st = shared.lock();
            st.queued_bytes = st.queued_bytes.saturating_sub(bytes);
            drop(st);
            shared.wake.notify_one();
        });
    }

    /// Writes one record to the dead-letter topic, retrying with backoff
    /// until Kafka acknowledges it. `false` only when shutting down first.
    #[allow(clippy::too_many_arguments)]
    async fn dead_letter(
        &self,
        payload: &[u8],
        pos: SourcePos,
        status: Option<u16>,
        label: &'static str,
        error_type: &str,
        reason: &str,
        index: Option<&str>,
    ) -> bool {
        let topic = self
            .lock()
            .topics
            .name(pos.tp.topic)
            .unwrap_or_default()
            .to_owned();
        let letter = DeadLetter {
            stage: if status.is_some() {
                Stage::Index
            } else {
                Stage::Decode
            },
            status,
            error_type,
            reason,
            topic: &topic,
            partition: pos.tp.partition,
            offset: pos.offset,
            index,
        };
        let key = letter.key();
        let headers = letter.headers();
        let mut attempt = 0u32;
        loop {
            let mut owned = OwnedHeaders::new_with_capacity(headers.len());
            for (name, value) in &headers {
                owned = owned.insert(Header {
                    key: name,
                    value: Some(value.as_bytes()),
                });
            }
            let sent = self
                .producer
                .send(&self.settings.dead_letter_topic, &key, payload, owned)
                .await;
            match sent {
                Ok(_) => {
                    DeadLettered {
                        reason: label,
                        detail: reason,
                        topic: &topic,
                        partition: pos.tp.partition,
                        offset: pos.offset,
                    }
                    .emit();
                    return true;
                }
                Err(error) => {
                    DeadLetterFailed {
                        error: &error.to_string(),
                        attempt,
                    }
                    .emit();
                    let delay = self.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.stop.cancelled() => return false,
                    }
                }
            }
        }
    }

    /// Assign: start tracking the new partitions.
    fn on_assign(&self, tpl: &TopicPartitionList) {
        let mut st = self.lock();
        let mut names = Vec::new();
        for element in tpl.elements() {
            let tp = st.topic_partition(element.topic(), element.partition());
            st.watermarks.assign(tp);
            st.next_generation += 1;
            let generation = st.next_generation;
            st.generations.insert(tp, generation);
            names.push((element.topic().to_owned(), element.partition()));
        }
        drop(st);
        PartitionsAssigned { partitions: &names }.emit();
    }

    /// Revoke: send what is batched, wait (bounded) for the revoked
    /// partitions' records to finish, store and commit their final offsets.
    fn on_revoke(
        self: &Arc<Self>,
        consumer: &BaseConsumer<ShipperContext>,
        tpl: &TopicPartitionList,
    ) {
        let started = Instant::now();
        let lost = consumer.assignment_lost();
        let mut st = self.lock();
        let mut revoked = Vec::new();
        let mut names = Vec::new();
        for element in tpl.elements() {
            revoked.push(st.topic_partition(element.topic(), element.partition()));
            names.push((element.topic().to_owned(), element.partition()));
        }
        let closing = st.closing;
        let mut drained = true;
        if !lost && !closing {
            // The open batch may hold records of revoked partitions.
            self.flush(&mut st);
            let deadline = started + self.settings.drain_timeout;
            let (guard, ok) = tokio::task::block_in_place(|| {
                let mut st = st;
                loop {
                    let idle = revoked
                        .iter()
                        .all(|tp| st.watermarks.partition(*tp).is_none_or(|t| t.is_idle()));
                    if idle {
                        return (st, true);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return (st, false);
                    }
                    st = self
                        .changed
                        .wait_timeout(st, deadline - now)
                        .map(|(guard, _)| guard)
                        .unwrap_or_else(|poisoned| poisoned.into_inner().0);
                }
            });
            st = guard;
            drained = ok;
        }
        // Only the contiguous done prefix: never past an unfinished record.
        let mut finals = Vec::new();
        for tp in &revoked {
            st.generations.remove(tp);
            if let Some(offset) = st.watermarks.revoke(*tp) {
                finals.push((*tp, offset));
            }
        }
        let offsets = st.offsets_tpl(&finals);
        let final_offsets: Vec<(String, i32, i64)> = finals
            .iter()
            .filter_map(|(tp, o)| Some((st.topics.name(tp.topic)?.to_owned(), tp.partition, *o)))
            .collect();
        if !lost
            && offsets.count() > 0
            && let Err(error) = consumer.store_offsets(&offsets)
        {
            tracing::warn!(%error, "storing final offsets of revoked partitions failed");
        }
        drop(st);
        // On shutdown the final commit already ran, and closing commits again.
        if !lost && !closing && offsets.count() > 0 {
            // Synchronously, before the partitions go: the next owner starts here.
            if let Err(error) = consumer.commit(&offsets, CommitMode::Sync) {
                tracing::warn!(%error, "committing final offsets of revoked partitions failed");
            }
        }
        PartitionsRevoked {
            partitions: &names,
            drained,
            lost,
            waited: started.elapsed(),
            final_offsets: &final_offsets,
        }
        .emit();
    }

    /// After an assignment: new partitions are not paused, so pause them if
    /// fetching is paused.
    fn after_assign(&self, consumer: &BaseConsumer<ShipperContext>, tpl: &TopicPartitionList) {
        let paused = self.lock().paused;
        if paused && let Err(error) = consumer.pause(tpl) {
            tracing::warn!(%error, "pausing newly assigned partitions failed");
        }
    }

    /// Shutdown: send what is batched, then wait (bounded) for every bulk
    /// and dead-letter write to finish. Returns whether everything finished.
    pub(crate) async fn drain(self: &Arc<Self>) -> bool {
        {
            let mut st = self.lock();
            st.closing = true;
            self.flush(&mut st);
        }
        let deadline = tokio::time::Instant::now() + self.settings.drain_timeout;
        loop {
            let done = {
                let st = self.lock();
                st.watermarks.pending() == 0 && st.in_flight == 0 && st.ready.is_empty()
            };
            if done || self.fatal.get().is_some() {
                return done;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            // Woken by finished tasks; the timer covers a wake-up lost to a race.
            let _ = tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(200)),
                self.wake.notified(),
            )
            .await;
        }
    }
}

/// The label and a sample reason for item-level retries.
fn retry_reason(items: &[ItemOutcome]) -> (&'static str, String) {
    items
        .iter()
        .find_map(|o| match o {
            ItemOutcome::Retry { reason, .. } => Some((
                o.error_class().map_or("other", ErrorClass::label),
                reason.clone(),
            )),
            _ => None,
        })
        .unwrap_or(("other", String::new()))
}

/// A bounded label for a whole-request retry.
fn request_retry_label(status: Option<u16>, outcome: &'static str) -> &'static str {
    match (status, outcome) {
        (_, "invalid_response") => "invalid_response",
        (None, _) => "connection",
        (Some(429), _) => "status_429",
        (Some(500..=599), _) => "status_5xx",
        (Some(_), _) => "status_other",
    }
}

/// The dispatcher: receives records, fills batches, keeps the consumer
/// polled (rebalances run inside `recv`) and applies backpressure by pausing
/// partitions. Returns when `cancel` fires or on a fatal Kafka error.
pub(crate) async fn dispatch(
    shared: Arc<Shared>,
    consumer: Arc<ShipperConsumer>,
    cancel: CancellationToken,
) -> Result<(), KafkaError> {
    // One stream for the whole run: `recv` registers and removes a waker
    // slot for every record.
    let mut messages = consumer.stream();
    loop {
        let linger = shared.linger_deadline();
        tokio::select! {
            biased;
            () = cancel.cancelled() => return Ok(()),
            received = messages.next() => {
                let now = now_millis();
                // Records come in bursts: take what librdkafka already holds
                // without a select, a linger check and a backpressure check
                // per record. Rebalances still run inside these polls. Only
                // a record about to be accepted is taken from the stream.
                let mut next = Some(received);
                let mut taken = 0;
                let (mut records, mut bytes) = (0u64, 0usize);
                // `None` inside: a Kafka stream never ends.
                while let Some(Some(received)) = next.take() {
                    match received {
                        Ok(message) => {
                            records += 1;
                            bytes += message.payload_len();
                            shared.accept(&message, now);
                        }
                        Err(KafkaError::MessageConsumptionFatal(code)) => {
                            return Err(KafkaError::MessageConsumptionFatal(code));
                        }
                        Err(error) => tracing::warn!(%error, "consuming failed, carrying on"),
                    }
                    taken += 1;
                    if taken < BURST_RECORDS {
                        next = messages.next().now_or_never();
                    }
                }
                // Counted per burst: two atomic additions per record showed.
                EventsReceived {
                    count: records,
                    bytes: bytes as u64,
                }
                .emit();
            },
            () = sleep_until(linger) => shared.flush_if_lingered(),
            () = shared.wake.notified() => {}
        }
        shared.backpressure(&consumer);
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The consumer's context: rebalances, statistics and librdkafka's logs.
#[derive(Debug)]
pub(crate) struct ShipperContext {
    shared: Arc<Shared>,
}

impl ShipperContext {
    pub(crate) fn new(shared: Arc<Shared>) -> ShipperContext {
        ShipperContext { shared }
    }
}

/// librdkafka's log lines as `tracing` events of target `librdkafka`, at
/// the matching level; the consumer's and the dead-letter producer's.
pub(crate) fn log_librdkafka(level: RDKafkaLogLevel, fac: &str, log_message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(target: "librdkafka", fac, "{log_message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(target: "librdkafka", fac, "{log_message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(target: "librdkafka", fac, "{log_message}");
        }
        RDKafkaLogLevel::Debug => tracing::debug!(target: "librdkafka", fac, "{log_message}"),
    }
}

impl ClientContext for ShipperContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_librdkafka(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Broker connection errors are transient: librdkafka reconnects.
        tracing::warn!(target: "librdkafka", %error, reason, "kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        for (topic, t) in &statistics.topics {
            for p in t.partitions.values() {
                if p.partition < 0 || !p.desired {
                    continue;
                }
                let offsets = PartitionOffsets {
                    high_watermark: p.hi_offset,
                    low_watermark: p.lo_offset,
                    committed: p.committed_offset,
                    position: p.app_offset,
                };
                if let Some(lag) = partition_lag(offsets) {
                    ConsumerLag {
                        topic,
                        partition: p.partition,
                        lag,
                    }
                    .emit();
                }
            }
        }
    }
}

impl ConsumerContext for ShipperContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => self.shared.on_assign(tpl),
            Rebalance::Revoke(tpl) => self.shared.on_revoke(consumer, tpl),
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance failed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.shared.after_assign(consumer, tpl);
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        match result {
            Ok(()) => tracing::debug!(count = offsets.count(), "offsets committed"),
            // Nothing stored since the last commit.
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => {}
            Err(error) => tracing::warn!(%error, "committing offsets failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_is_missing() {
        let r = Readiness::default();
        assert_eq!(
            r.check(),
            Err("search engine not reachable, index template not installed, not subscribed".into())
        );
        r.engine.store(true, Ordering::Relaxed);
        r.template.store(true, Ordering::Relaxed);
        assert_eq!(r.check(), Err("not subscribed".into()));
        r.subscribed.store(true, Ordering::Relaxed);
        assert_eq!(r.check(), Ok(()));
    }

    #[test]
    fn retry_labels_are_bounded() {
        let table: &[(Option<u16>, &str, &str)] = &[
            (None, "retry", "connection"),
            (Some(429), "retry", "status_429"),
            (Some(503), "retry", "status_5xx"),
            (Some(302), "retry", "status_other"),
            (Some(200), "invalid_response", "invalid_response"),
        ];
        for (status, outcome, want) in table {
            assert_eq!(request_retry_label(*status, outcome), *want);
        }
        let items = vec![
            ItemOutcome::Indexed,
            ItemOutcome::Retry {
                status: 429,
                reason: "es_rejected_execution_exception: rejected execution".into(),
            },
        ];
        let (label, detail) = retry_reason(&items);
        assert_eq!(label, "rejected");
        assert!(detail.starts_with("es_rejected_execution_exception"));
    }
}
