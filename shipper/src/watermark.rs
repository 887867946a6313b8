//! Per-partition commit watermarks: which Kafka offset may be committed.
//!
//! Records are handed out in offset order per partition, and each becomes
//! done (indexed, or durably dead-lettered) in any order. The offset to commit
//! is one past the highest offset such that every offset handed out up to it
//! is done: Kafka's convention is to commit the next offset to read.
//!
//! Only offsets that were handed to the tracker are waited for. Offsets never
//! seen (compacted away, transaction markers) are skipped: if 10 and 12 are
//! done and 11 never arrived, the watermark is 13.
//!
//! Memory is bounded by the offsets in flight, not by the partition's length:
//! the tracker keeps runs of handed-out offsets, each all-done or all-pending,
//! never two done runs side by side, and drops the done prefix as it advances.
//! So there are at most `2 * pending + 1` runs. Batch-wise completion keeps a
//! handful; the worst case (alternate offsets done) is about one run per
//! pending offset, and the caller bounds the in-flight count.
//!
//! A completion that arrives for a partition that was revoked is dropped
//! ([`Completion::Unassigned`]). One that arrives after the partition came back
//! is harmless: an offset of a partition always holds the same record, and a
//! completion means that record is in the index (or dead-lettered).

use std::collections::VecDeque;

use crate::source::{PartitionMap, SourcePos, TopicPartition};

/// Why an offset cannot be tracked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TrackError {
    /// Offsets must be handed out in increasing order.
    #[error("tracking offset failed: {offset} is not after the last tracked offset {last}")]
    OutOfOrder {
        /// The rejected offset.
        offset: i64,
        /// The last offset tracked.
        last: i64,
    },
    /// Kafka offsets are never negative.
    #[error("tracking offset failed: {0} is negative")]
    Negative(i64),
    /// The partition is not assigned.
    #[error("tracking offset failed: the partition is not assigned")]
    Unassigned,
}

impl TrackError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            TrackError::OutOfOrder { .. } => "out_of_order",
            TrackError::Negative(_) => "negative",
            TrackError::Unassigned => "unassigned",
        }
    }
}

/// What a completion did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completion {
    /// Recorded, and the watermark moved.
    Advanced,
    /// Recorded; an earlier offset is still pending.
    Pending,
    /// Already done, or below the watermark: nothing changed.
    Duplicate,
    /// The offset was never handed out (or predates the assignment): ignored.
    Unknown,
    /// The partition is not assigned (revoked): ignored.
    Unassigned,
}

/// Handed-out offsets `first..=last` in one state. A pending run holds
/// consecutive offsets; a done run may span gaps of offsets never handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    first: i64,
    last: i64,
    done: bool,
}

/// The watermark of one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionTracker {
    /// Ordered, non-overlapping; the first run is pending (done runs at the
    /// front are popped immediately).
    runs: VecDeque<Run>,
    /// First offset handed out.
    first_tracked: Option<i64>,
    /// Last offset handed out.
    last_tracked: Option<i64>,
    /// The offset to commit: all handed-out offsets below it are done.
    commit: Option<i64>,
    /// The commit returned by the last [`PartitionTracker::take_commit`].
    taken: Option<i64>,
    /// Offsets handed out and not yet done.
    pending: usize,
}

impl PartitionTracker {
    /// A tracker for a newly assigned partition, at any starting offset.
    pub fn new() -> PartitionTracker {
        PartitionTracker::default()
    }

    /// Hands out `offset`: the watermark will wait for it.
    pub fn track(&mut self, offset: i64) -> Result<(), TrackError> {
        if offset < 0 {
            return Err(TrackError::Negative(offset));
        }
        if let Some(last) = self.last_tracked
            && offset <= last
        {
            return Err(TrackError::OutOfOrder { offset, last });
        }
        match self.runs.back_mut() {
            Some(run) if !run.done && run.last + 1 == offset => run.last = offset,
            _ => self.runs.push_back(Run {
                first: offset,
                last: offset,
                done: false,
            }),
        }
        self.first_tracked.get_or_insert(offset);
        self.last_tracked = Some(offset);
        self.pending += 1;
        Ok(())
    }

    /// Marks `offset` done.
    pub fn complete(&mut self, offset: i64) -> Completion {
        // The run with the greatest `first` <= offset.
        let i = self.runs.partition_point(|r| r.first <= offset);
        let Some(i) = i.checked_sub(1) else {
            return self.unknown_or_duplicate(offset);
        };
        let Some(run) = self.runs.get(i).copied() else {
            return Completion::Unknown;
        };
        if offset > run.last {
            return Completion::Unknown;
        }
        if run.done {
            return Completion::Duplicate;
        }
        self.mark_done(i, run, offset);
        self.pending -= 1;
        if self.pop_done_prefix() {
            Completion::Advanced
        } else {
            Completion::Pending
        }
    }

    /// Offsets below every run were popped (done) or never handed out; the
    /// tracker does not remember which, and either way there is nothing to do.
    fn unknown_or_duplicate(&self, offset: i64) -> Completion {
        match (self.first_tracked, self.commit) {
            (Some(first), Some(commit)) if first <= offset && offset < commit => {
                Completion::Duplicate
            }
            _ => Completion::Unknown,
        }
    }

    /// Splits run `i` so that `offset` is done, merging it with contiguous
    /// done neighbours.
    fn mark_done(&mut self, i: usize, run: Run, offset: i64) {
        let mut done = Run {
            first: offset,
            last: offset,
            done: true,
        };
        let mut at = i;
        self.runs.remove(i);
        if run.first < offset {
            self.runs.insert(
                at,
                Run {
                    first: run.first,
                    last: offset - 1,
                    done: false,
                },
            );
            at += 1;
        }
        if offset < run.last {
            self.runs.insert(
                at,
                Run {
                    first: offset + 1,
                    last: run.last,
                    done: false,
                },
            );
        }
        // `at` is where the done piece goes. Neighbouring runs are separated
        // only by offsets never handed out, which nothing waits for, so done
        // neighbours merge even across such a gap.
        if let Some(next) = self.runs.get(at).copied()
            && next.done
        {
            done.last = next.last;
            self.runs.remove(at);
        }
        if let Some(prev_at) = at.checked_sub(1)
            && let Some(prev) = self.runs.get_mut(prev_at)
            && prev.done
        {
            prev.last = done.last;
            return;
        }
        self.runs.insert(at, done);
    }

    /// Drops done runs from the front; returns whether the commit moved.
    fn pop_done_prefix(&mut self) -> bool {
        let mut moved = false;
        while let Some(front) = self.runs.front().copied() {
            if !front.done {
                break;
            }
            self.runs.pop_front();
            self.commit = Some(front.last + 1);
            moved = true;
        }
        moved
    }

    /// The offset to commit: one past the highest offset such that every
    /// handed-out offset up to it is done. `None` until the first offset
    /// handed out is done.
    pub fn commit_offset(&self) -> Option<i64> {
        self.commit
    }

    /// Like [`PartitionTracker::commit_offset`], but only when it moved since
    /// the last call: for storing offsets without repeating the same call.
    pub fn take_commit(&mut self) -> Option<i64> {
        if self.commit == self.taken {
            return None;
        }
        self.taken = self.commit;
        self.commit
    }

    /// Offsets handed out and not done yet.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Runs kept in memory: a measure of fragmentation, for metrics and tests.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Whether every offset handed out is done.
    pub fn is_idle(&self) -> bool {
        self.pending == 0
    }
}

/// Watermarks of every assigned partition.
#[derive(Debug, Clone, Default)]
pub struct Watermarks {
    partitions: PartitionMap<PartitionTracker>,
}

impl Watermarks {
    /// No partitions assigned.
    pub fn new() -> Watermarks {
        Watermarks::default()
    }

    /// Starts tracking a newly assigned partition. Assigning a partition that
    /// is already assigned keeps its state (cooperative rebalances can repeat).
    pub fn assign(&mut self, tp: TopicPartition) {
        self.partitions.entry(tp).or_default();
    }

    /// Forgets a revoked partition; returns its final commit offset, if any
    /// offset of it was done, for a last offset store before the revoke ends.
    pub fn revoke(&mut self, tp: TopicPartition) -> Option<i64> {
        self.partitions.remove(&tp)?.commit_offset()
    }

    /// Whether the partition is assigned.
    pub fn is_assigned(&self, tp: TopicPartition) -> bool {
        self.partitions.contains_key(&tp)
    }

    /// Hands out a record's offset.
    pub fn track(&mut self, pos: SourcePos) -> Result<(), TrackError> {
        self.partitions
            .get_mut(&pos.tp)
            .ok_or(TrackError::Unassigned)?
            .track(pos.offset)
    }

    /// Marks a record done.
    pub fn complete(&mut self, pos: SourcePos) -> Completion {
        match self.partitions.get_mut(&pos.tp) {
            Some(tracker) => tracker.complete(pos.offset),
            None => Completion::Unassigned,
        }
    }

    /// The tracker of one partition.
    pub fn partition(&self, tp: TopicPartition) -> Option<&PartitionTracker> {
        self.partitions.get(&tp)
    }

    /// Every partition's commit offset, sorted by partition.
    pub fn commit_offsets(&self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<_> = self
            .partitions
            .iter()
            .filter_map(|(tp, t)| t.commit_offset().map(|c| (*tp, c)))
            .collect();
        out.sort_unstable();
        out
    }

    /// The commit offsets that moved since the last call, sorted by partition.
    pub fn take_commits(&mut self) -> Vec<(TopicPartition, i64)> {
        let mut out: Vec<_> = self
            .partitions
            .iter_mut()
            .filter_map(|(tp, t)| t.take_commit().map(|c| (*tp, c)))
            .collect();
        out.sort_unstable();
        out
    }

    /// Offsets in flight across all partitions, for backpressure.
    pub fn pending(&self) -> usize {
        self.partitions
            .values()
            .map(PartitionTracker::pending)
            .sum()
    }
}

#[cfg(test)]
mod tests;
