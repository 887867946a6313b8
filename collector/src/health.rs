//! What `/healthz` and `/readyz` report, shared between the pipeline thread
//! (which writes it) and the server thread (which reads it) through atomics.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sink::SinkStatus;

/// The collector's liveness and readiness.
#[derive(Debug)]
pub struct Health {
    /// The clock of `heartbeat_ms`.
    epoch: Instant,
    /// When the pipeline loop last made a round, in ms since `epoch`.
    heartbeat_ms: AtomicU64,
    /// Longest silence of the pipeline loop that is still alive.
    liveness_timeout_ms: AtomicU64,
    checkpoints_loaded: AtomicBool,
    sink: OnceLock<SinkStatus>,
}

impl Health {
    /// Alive (the heartbeat counts as given now), not ready.
    pub fn new(liveness_timeout: Duration) -> Health {
        Health {
            epoch: Instant::now(),
            heartbeat_ms: AtomicU64::new(0),
            liveness_timeout_ms: AtomicU64::new(millis(liveness_timeout)),
            checkpoints_loaded: AtomicBool::new(false),
            sink: OnceLock::new(),
        }
    }

    /// The pipeline loop made a round. Called while it waits for receipts,
    /// too: a loop blocked on a full Kafka queue is alive, just
    /// backpressured, and must not be restarted for it.
    pub fn beat(&self) {
        self.heartbeat_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Changes the liveness bound (config reload).
    pub fn set_liveness_timeout(&self, timeout: Duration) {
        self.liveness_timeout_ms
            .store(millis(timeout), Ordering::Relaxed);
    }

    /// The checkpoints were read and the tailer built from them.
    pub fn set_checkpoints_loaded(&self) {
        self.checkpoints_loaded.store(true, Ordering::Relaxed);
    }

    /// The sink was created; readiness asks it from now on.
    pub fn set_sink(&self, status: SinkStatus) {
        // Set once per process: a second sink would be a bug, and the first
        // one's status is still meaningful.
        let _ = self.sink.set(status);
    }

    /// The sink's status, once the sink exists.
    pub fn sink(&self) -> Option<&SinkStatus> {
        self.sink.get()
    }

    /// `Ok` while the pipeline loop made a round within the liveness
    /// timeout; else how long it has been silent.
    pub fn live(&self) -> Result<(), String> {
        let silent_ms = self
            .now_ms()
            .saturating_sub(self.heartbeat_ms.load(Ordering::Relaxed));
        let timeout_ms = self.liveness_timeout_ms.load(Ordering::Relaxed);
        if silent_ms <= timeout_ms {
            Ok(())
        } else {
            Err(format!(
                "pipeline loop silent for {silent_ms} ms (metrics.liveness_timeout_ms is {timeout_ms})"
            ))
        }
    }

    /// `Ok` when the checkpoints are loaded and the sink can deliver; else
    /// what is missing.
    pub fn ready(&self) -> Result<(), String> {
        let mut missing = Vec::new();
        if !self.checkpoints_loaded.load(Ordering::Relaxed) {
            missing.push("checkpoints not loaded".to_owned());
        }
        match self.sink.get() {
            None => missing.push("sink not started".to_owned()),
            Some(status) => {
                if let Err(why) = status.check() {
                    missing.push(why);
                }
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    }

    fn now_ms(&self) -> u64 {
        millis(self.epoch.elapsed())
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_until_the_heartbeat_is_older_than_the_timeout() {
        let health = Health::new(Duration::from_millis(50));
        assert_eq!(health.live(), Ok(()));
        std::thread::sleep(Duration::from_millis(80));
        let error = health.live().unwrap_err();
        assert!(error.contains("pipeline loop silent"), "{error}");
        health.beat();
        assert_eq!(health.live(), Ok(()));
        health.set_liveness_timeout(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        assert!(health.live().is_err());
    }

    #[test]
    fn ready_once_checkpoints_are_loaded_and_the_sink_is_up() {
        let health = Health::new(Duration::from_secs(1));
        assert_eq!(
            health.ready(),
            Err("checkpoints not loaded, sink not started".to_owned())
        );
        health.set_checkpoints_loaded();
        let status = SinkStatus::kafka();
        health.set_sink(status.clone());
        let error = health.ready().unwrap_err();
        assert!(error.contains("no kafka broker"), "{error}");
        status.set_brokers_up(2);
        assert_eq!(health.ready(), Ok(()));
        assert_eq!(health.sink().and_then(SinkStatus::brokers_up), Some(2));
        let debug = Health::new(Duration::from_secs(1));
        debug.set_checkpoints_loaded();
        debug.set_sink(SinkStatus::always_ready());
        assert_eq!(debug.ready(), Ok(()));
    }
}
