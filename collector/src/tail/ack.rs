//! The contiguous acknowledgement watermark of each file.
//!
//! Lines are handed out in offset order, each as a byte range
//! `start..end`; Kafka acknowledges them in any order. The checkpoint of a
//! file is the end of its longest fully acknowledged prefix: the start of
//! the first unacknowledged range, or, with nothing in flight, the end of the
//! last range handed out. **It never passes an unacknowledged line.**
//!
//! An event joined from several lines (CRI partials, multiline) must not
//! let a restart begin in its middle: re-reading from there would emit its
//! tail as a new event with a new id. So an ack may say how far its event
//! reaches ([`AckTracker::ack_through`]), and the checkpoint only stops at
//! **clean cuts**: offsets that no acknowledged event spans.
//!
//! Lines dropped on purpose (excluded, malformed and counted) must be acked
//! by the caller right away, or they would hold the watermark back forever.
//!
//! Memory per file is one entry per range in flight (acknowledged ranges
//! behind an unacknowledged one included); the tailer stops reading a file
//! whose [`AckTracker::in_flight`] reaches its limit.

use std::collections::{HashMap, VecDeque};

use crate::checkpoint::FileKey;

/// Why a range could not be registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// [`AckTracker::open`] was not called for the file.
    #[error("file {0} is not tracked")]
    UnknownFile(FileKey),
    /// Ranges must be registered in offset order, without overlap.
    #[error("range {start}..{end} of file {file} is empty or starts before {last_end}")]
    OutOfOrder {
        /// The file.
        file: FileKey,
        /// Start of the refused range.
        start: u64,
        /// End of the refused range.
        end: u64,
        /// End of the last range registered.
        last_end: u64,
    },
}

/// Tracks, per file, which handed-out ranges are acknowledged.
#[derive(Debug, Default)]
pub struct AckTracker {
    files: HashMap<FileKey, FileAcks>,
}

#[derive(Debug)]
struct FileAcks {
    /// In offset order; the front is never acknowledged (acknowledged ranges
    /// at the front are popped at once).
    ranges: VecDeque<InFlight>,
    /// End of the last range registered, or the opening offset.
    last_end: u64,
    /// Furthest `reach` of the acknowledged ranges popped so far.
    reach: u64,
    /// The last offset behind which everything is acknowledged and which no
    /// acknowledged event spans.
    clean: u64,
}

#[derive(Debug, Clone, Copy)]
struct InFlight {
    start: u64,
    end: u64,
    /// End of the last line of the event this line belongs to, once acked.
    reach: u64,
    acked: bool,
}

impl AckTracker {
    /// Tracks nothing.
    pub fn new() -> AckTracker {
        AckTracker::default()
    }

    /// Starts tracking `file` at `offset` (its resume point), replacing any
    /// state it had.
    pub fn open(&mut self, file: FileKey, offset: u64) {
        self.files.insert(
            file,
            FileAcks {
                ranges: VecDeque::new(),
                last_end: offset,
                reach: offset,
                clean: offset,
            },
        );
    }

    /// Stops tracking `file`; returns its checkpoint offset at that point.
    /// Later acks for it are ignored.
    pub fn close(&mut self, file: &FileKey) -> Option<u64> {
        self.files.remove(file).map(|f| f.checkpoint())
    }

    /// Whether `file` is tracked.
    pub fn contains(&self, file: &FileKey) -> bool {
        self.files.contains_key(file)
    }

    /// Records that `start..end` of `file` was handed out. Ranges of a file
    /// must come in offset order; a gap is allowed (its bytes are no line).
    pub fn register(&mut self, file: &FileKey, start: u64, end: u64) -> Result<(), AckError> {
        let acks = self
            .files
            .get_mut(file)
            .ok_or(AckError::UnknownFile(*file))?;
        if start < acks.last_end || end <= start {
            return Err(AckError::OutOfOrder {
                file: *file,
                start,
                end,
                last_end: acks.last_end,
            });
        }
        acks.ranges.push_back(InFlight {
            start,
            end,
            reach: end,
            acked: false,
        });
        acks.last_end = end;
        Ok(())
    }

    /// Acknowledges the range of `file` that starts at `start`. Returns
    /// false if there is no such unacknowledged range (unknown file,
    /// duplicate ack, or a file closed meanwhile).
    pub fn ack(&mut self, file: &FileKey, start: u64) -> bool {
        self.ack_through(file, start, 0)
    }

    /// Acknowledges the range of `file` that starts at `start`, as part of an
    /// event whose last line ends at `reach`: the checkpoint will not stop
    /// inside `start..reach`. Returns false like [`AckTracker::ack`].
    pub fn ack_through(&mut self, file: &FileKey, start: u64, reach: u64) -> bool {
        let Some(acks) = self.files.get_mut(file) else {
            return false;
        };
        // Kafka acknowledges mostly in order: the front first, then a search.
        let index = if acks.ranges.front().is_some_and(|r| r.start == start) {
            0
        } else {
            let Ok(index) = acks.ranges.binary_search_by_key(&start, |r| r.start) else {
                return false;
            };
            index
        };
        let Some(range) = acks.ranges.get_mut(index) else {
            return false;
        };
        if range.acked {
            return false;
        }
        range.acked = true;
        range.reach = range.reach.max(reach);
        while let Some(done) = acks.ranges.front().copied().filter(|r| r.acked) {
            acks.ranges.pop_front();
            acks.reach = acks.reach.max(done.reach);
            if acks.reach <= done.end {
                acks.clean = done.end;
            }
        }
        true
    }

    /// The end of the longest fully acknowledged prefix of `file`: every line
    /// before it is acknowledged, and the line starting there (if any) is not.
    pub fn checkpoint_offset(&self, file: &FileKey) -> Option<u64> {
        self.files.get(file).map(FileAcks::checkpoint)
    }

    /// Ranges of `file` handed out but not yet behind the watermark.
    pub fn in_flight(&self, file: &FileKey) -> usize {
        self.files.get(file).map_or(0, |f| f.ranges.len())
    }

    /// Whether everything handed out of `file` is acknowledged (true for an
    /// untracked file).
    pub fn is_fully_acked(&self, file: &FileKey) -> bool {
        self.in_flight(file) == 0
    }

    /// The tracked files and their checkpoint offsets.
    pub fn checkpoints(&self) -> impl Iterator<Item = (&FileKey, u64)> {
        self.files.iter().map(|(k, f)| (k, f.checkpoint()))
    }
}

impl FileAcks {
    fn checkpoint(&self) -> u64 {
        let next = self
            .ranges
            .front()
            .map_or(self.last_end, |first| first.start);
        if self.reach <= next { next } else { self.clean }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const F: FileKey = FileKey {
        fingerprint: 1,
        dev: 1,
        ino: 1,
    };

    #[test]
    fn watermark_table() {
        // Ranges 0..10, 10..25, 25..26, 26..40; (acks in order, expected checkpoint after each).
        let ranges = [(0, 10), (10, 25), (25, 26), (26, 40)];
        let cases: &[(&[u64], &[u64])] = &[
            (&[], &[]),
            (&[0, 10, 25, 26], &[10, 25, 26, 40]),
            (&[26, 25, 10, 0], &[0, 0, 0, 40]),
            (&[10, 0, 26, 25], &[0, 25, 25, 40]),
            (&[25, 0, 10], &[0, 10, 26]),
        ];
        for (acks, want) in cases {
            let mut t = AckTracker::new();
            t.open(F, 0);
            for &(s, e) in &ranges {
                t.register(&F, s, e).unwrap();
            }
            assert_eq!(t.checkpoint_offset(&F), Some(0));
            let got: Vec<u64> = acks
                .iter()
                .map(|&s| {
                    assert!(t.ack(&F, s));
                    t.checkpoint_offset(&F).unwrap()
                })
                .collect();
            assert_eq!(&got, want, "acks {acks:?}");
        }
    }

    #[test]
    fn open_offset_is_the_checkpoint_until_lines_are_acked() {
        let mut t = AckTracker::new();
        assert_eq!(t.checkpoint_offset(&F), None);
        t.open(F, 500);
        assert_eq!(t.checkpoint_offset(&F), Some(500));
        t.register(&F, 500, 510).unwrap();
        assert_eq!(t.checkpoint_offset(&F), Some(500));
        assert_eq!(t.in_flight(&F), 1);
        assert!(t.ack(&F, 500));
        assert_eq!(t.checkpoint_offset(&F), Some(510));
        assert!(t.is_fully_acked(&F));
        assert_eq!(t.close(&F), Some(510));
        assert!(!t.contains(&F));
    }

    #[test]
    fn bad_registers_and_acks_are_refused() {
        let mut t = AckTracker::new();
        assert_eq!(t.register(&F, 0, 1), Err(AckError::UnknownFile(F)));
        t.open(F, 10);
        assert!(matches!(
            t.register(&F, 5, 12),
            Err(AckError::OutOfOrder { .. })
        ));
        assert!(matches!(
            t.register(&F, 10, 10),
            Err(AckError::OutOfOrder { .. })
        ));
        t.register(&F, 10, 20).unwrap();
        assert!(matches!(
            t.register(&F, 15, 30),
            Err(AckError::OutOfOrder { .. })
        ));
        // A gap is allowed: its bytes are no line.
        t.register(&F, 25, 30).unwrap();
        assert!(!t.ack(&F, 11), "no range starts at 11");
        assert!(t.ack(&F, 25));
        assert!(!t.ack(&F, 25), "duplicate ack");
        assert_eq!(t.checkpoint_offset(&F), Some(10));
        assert!(t.ack(&F, 10));
        assert_eq!(t.checkpoint_offset(&F), Some(30));
        assert!(!t.ack(&F, 10), "ack behind the watermark");
        let other = FileKey::new(2, 1, 1);
        assert!(!t.ack(&other, 0));
    }

    #[test]
    fn checkpoint_stops_only_at_clean_cuts() {
        // Lines 0..10 (stdout P), 10..20 (stderr), 20..30 (stdout F), 30..40.
        // Event A = 0..10 + 20..30 reaches 30; event B = 10..20.
        let mut t = AckTracker::new();
        t.open(F, 0);
        for (s, e) in [(0, 10), (10, 20), (20, 30), (30, 40)] {
            t.register(&F, s, e).unwrap();
        }
        // A's continuation is acked when absorbed, its first line on delivery.
        assert!(t.ack(&F, 20));
        assert!(t.ack_through(&F, 0, 30));
        // B is not delivered: stopping at 10 would restart inside A.
        assert_eq!(t.checkpoint_offset(&F), Some(0));
        assert!(t.ack(&F, 10));
        assert_eq!(t.checkpoint_offset(&F), Some(30));
        assert!(t.ack(&F, 30));
        assert_eq!(t.checkpoint_offset(&F), Some(40));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// For any ack order the checkpoint never covers an unacked range,
        /// always is the end of the acked prefix, and reaches the last end once
        /// all are acked.
        #[test]
        fn ack_tracker_checkpoint_never_passes_an_unacked_range(
            base in 0u64..1_000,
            lens in prop::collection::vec(1u64..50, 1..60),
            gaps in prop::collection::vec(prop::bool::weighted(0.1), 60),
            order in any::<u64>(),
        ) {
            let mut ranges = Vec::new();
            let mut at = base;
            for (i, len) in lens.iter().enumerate() {
                if gaps[i] { at += 3; }
                ranges.push((at, at + len));
                at += len;
            }
            let mut t = AckTracker::new();
            t.open(F, base);
            for &(s, e) in &ranges {
                t.register(&F, s, e).unwrap();
            }
            // A deterministic shuffle from the drawn seed.
            let mut idx: Vec<usize> = (0..ranges.len()).collect();
            let mut seed = order | 1;
            for i in (1..idx.len()).rev() {
                seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
                idx.swap(i, (seed % (i as u64 + 1)) as usize);
            }
            let mut acked = vec![false; ranges.len()];
            for &i in &idx {
                prop_assert!(t.ack(&F, ranges[i].0));
                acked[i] = true;
                let cp = t.checkpoint_offset(&F).unwrap();
                // Never covers an unacked range.
                for (j, &(s, e)) in ranges.iter().enumerate() {
                    if !acked[j] {
                        prop_assert!(cp <= s, "checkpoint {} passes unacked {}..{}", cp, s, e);
                    }
                }
                // Exactly the end of the acked prefix.
                let prefix = acked.iter().take_while(|a| **a).count();
                let want = if prefix == ranges.len() {
                    ranges[prefix - 1].1
                } else {
                    ranges[prefix].0
                };
                prop_assert_eq!(cp, want);
                prop_assert_eq!(t.in_flight(&F), ranges.len() - prefix);
            }
            prop_assert_eq!(t.checkpoint_offset(&F), Some(at));
            prop_assert!(t.is_fully_acked(&F));
        }
    }
}
