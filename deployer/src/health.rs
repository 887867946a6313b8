//! Application-level health gates: `kelp apply` moves to the next step of
//! the rollout only when the application itself says it is healthy, not
//! when its pods are merely Ready (a ZooKeeper pod can be Ready without a
//! quorum, a Kafka pod without having joined the cluster).
//!
//! A [`Gate`] checks once and says whether the application is healthy yet;
//! the caller (the rollout) polls it under a deadline. Gates take plain
//! network addresses, so the same code runs against the testbed's real
//! ZooKeeper, Kafka and search engines and, through a port-forward, against
//! the pods of a real cluster.

use std::future::Future;
use std::pin::Pin;

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GateStatus {
    /// Healthy; the text says what was seen, e.g. `leader on zookeeper-1`.
    Healthy(String),
    /// Not healthy yet; the text says why, for progress lines and for the
    /// report when the deadline passes.
    NotYet(String),
}

impl GateStatus {
    /// Whether the gate is open.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Healthy(_))
    }
}

/// The future a [`Gate`] check returns; boxed so gates can be trait objects.
pub type GateFuture<'a> = Pin<Box<dyn Future<Output = GateStatus> + Send + 'a>>;

/// One application-level health check, polled by the rollout.
///
/// A check never fails with an error: an unreachable service is simply not
/// healthy yet, and the reason is in [`GateStatus::NotYet`]. Each check is
/// bounded in time by the implementation.
pub trait Gate: Send + Sync {
    /// Short name for progress lines, e.g. `zookeeper quorum`.
    fn name(&self) -> &str;
    /// Checks once.
    fn check(&self) -> GateFuture<'_>;
}
