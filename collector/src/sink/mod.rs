//! Where events go: Kafka in production, stdout or an NDJSON file for debugging.
//!
//! A sink never decides that an event is delivered on its own: it hands back a
//! [`Receipt`] per offered event, and only a successful receipt lets the
//! checkpoint move over the event's lines.
//!
//! Architecture Invariant: sinks know nothing about files, offsets or
//! checkpoints. They see opaque tokens.

mod debug;
mod kafka;

pub use self::debug::{FileSink, StdoutSink};
pub use self::kafka::{Compression, KafkaSink, KafkaSinkConfig, KafkaSinkError, KeyChoice};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// One encoded event offered to a sink.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The caller's handle for this event; it comes back in the receipt.
    pub token: u64,
    /// Destination topic (ignored by the debug sinks).
    pub topic: &'a str,
    /// Message key (ignored by the debug sinks).
    pub key: &'a [u8],
    /// The encoded record.
    pub payload: &'a [u8],
}

/// The outcome of one offered event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// The token given in [`Outgoing::token`].
    pub token: u64,
    /// `Ok` once the destination has acknowledged the event durably.
    pub result: Result<(), DeliveryFailure>,
}

/// Why a sink could not deliver an event. The caller keeps the event and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// A bounded reason, usable as a metric label.
    pub reason: &'static str,
    /// The sink's own error text, for logs.
    pub detail: String,
    /// The event as it was offered, handed back by sinks that do not ask
    /// the caller to keep a copy (see [`Sink::hands_back_payloads`]).
    pub payload: Option<Vec<u8>>,
}

/// Why a sink did not take an event right now.
#[derive(Debug)]
pub enum Refused {
    /// The sink's queue is full: collect receipts, then offer again.
    Full,
    /// The event can never be accepted as it is (e.g. larger than the broker allows).
    Rejected(DeliveryFailure),
}

/// A destination for encoded events with asynchronous acknowledgements.
pub trait Sink: Send {
    /// Queues one event. On success a [`Receipt`] for `out.token` comes later.
    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused>;

    /// Moves receipts that have arrived into `into`, waiting up to `wait` for the first one.
    fn receipts(&mut self, into: &mut Vec<Receipt>, wait: Duration);

    /// Events offered whose receipts have not been collected yet.
    fn in_flight(&self) -> usize;

    /// Whether every failure this sink reports (a failed receipt or
    /// [`Refused::Rejected`]) carries the offered payload back. Then the
    /// caller keeps no copy of an event while it is in flight, which saves
    /// an allocation per event; otherwise it keeps one for the re-send.
    fn hands_back_payloads(&self) -> bool {
        false
    }

    /// Whether the sink can deliver, readable from another thread (`/readyz`).
    fn status(&self) -> SinkStatus {
        SinkStatus::always_ready()
    }
}

/// A sink's reachability, shared with the thread serving `/readyz`.
#[derive(Debug, Clone)]
pub struct SinkStatus {
    /// Kafka brokers with a connection up; `None` for sinks without a
    /// remote end (always ready).
    brokers_up: Option<Arc<AtomicUsize>>,
}

impl SinkStatus {
    /// A local sink: always ready.
    pub fn always_ready() -> SinkStatus {
        SinkStatus { brokers_up: None }
    }

    /// A Kafka sink with no broker connection yet.
    pub fn kafka() -> SinkStatus {
        SinkStatus {
            brokers_up: Some(Arc::new(AtomicUsize::new(0))),
        }
    }

    /// Records how many brokers the producer is connected to (no-op for local sinks).
    pub fn set_brokers_up(&self, count: usize) {
        if let Some(up) = &self.brokers_up {
            up.store(count, Ordering::Relaxed);
        }
    }

    /// Kafka brokers with a connection up; `None` for local sinks.
    pub fn brokers_up(&self) -> Option<usize> {
        self.brokers_up
            .as_ref()
            .map(|up| up.load(Ordering::Relaxed))
    }

    /// `Ok` when the sink can deliver, else why not.
    pub fn check(&self) -> Result<(), String> {
        match self.brokers_up() {
            Some(0) => Err("no kafka broker connection up".to_owned()),
            _ => Ok(()),
        }
    }
}
