use proptest::prelude::*;

use super::*;
use crate::source::TopicId;

fn tracker(offsets: &[i64]) -> PartitionTracker {
    let mut t = PartitionTracker::new();
    for &o in offsets {
        t.track(o).unwrap();
    }
    t
}

#[test]
fn in_order_completion() {
    let mut t = tracker(&[0, 1, 2]);
    assert_eq!(t.commit_offset(), None);
    assert_eq!(t.pending(), 3);
    assert_eq!(t.complete(0), Completion::Advanced);
    assert_eq!(t.commit_offset(), Some(1));
    assert_eq!(t.complete(1), Completion::Advanced);
    assert_eq!(t.complete(2), Completion::Advanced);
    assert_eq!(t.commit_offset(), Some(3));
    assert!(t.is_idle());
    assert_eq!(t.runs(), 0);
}

/// Completing an offset: what it returns and the commit offset after it.
type Step = (i64, Completion, Option<i64>);

#[test]
fn out_of_order_completion_waits_for_the_oldest() {
    let table: &[(&[i64], &[Step])] = &[
        (
            &[5, 6, 7, 8],
            &[
                (7, Completion::Pending, None),
                (6, Completion::Pending, None),
                (5, Completion::Advanced, Some(8)),
                (8, Completion::Advanced, Some(9)),
            ],
        ),
        (
            &[100, 101, 102],
            &[
                (102, Completion::Pending, None),
                (100, Completion::Advanced, Some(101)),
                (102, Completion::Duplicate, Some(101)),
                (101, Completion::Advanced, Some(103)),
                (101, Completion::Duplicate, Some(103)),
                (100, Completion::Duplicate, Some(103)),
            ],
        ),
        // Gaps (compaction, transaction markers) are not waited for.
        (
            &[10, 12, 15],
            &[
                (12, Completion::Pending, None),
                (11, Completion::Unknown, None),
                (10, Completion::Advanced, Some(13)),
                (15, Completion::Advanced, Some(16)),
                (13, Completion::Duplicate, Some(16)),
                (16, Completion::Unknown, Some(16)),
                (9, Completion::Unknown, Some(16)),
            ],
        ),
    ];
    for (handed, steps) in table {
        let mut t = tracker(handed);
        for (offset, want, commit) in *steps {
            assert_eq!(t.complete(*offset), *want, "{handed:?} complete {offset}");
            assert_eq!(t.commit_offset(), *commit, "{handed:?} after {offset}");
        }
    }
}

#[test]
fn reassignment_at_a_later_offset_starts_fresh() {
    let tp = TopicPartition::new(TopicId(0), 3);
    let mut w = Watermarks::new();
    w.assign(tp);
    w.track(SourcePos::new(tp, 0)).unwrap();
    w.track(SourcePos::new(tp, 1)).unwrap();
    assert_eq!(w.complete(SourcePos::new(tp, 0)), Completion::Advanced);
    assert_eq!(w.revoke(tp), Some(1));
    assert!(!w.is_assigned(tp));
    // A late completion of the revoked partition is dropped.
    assert_eq!(w.complete(SourcePos::new(tp, 1)), Completion::Unassigned);
    assert_eq!(w.track(SourcePos::new(tp, 2)), Err(TrackError::Unassigned));
    // Back, starting at 500: nothing waits on 1..499.
    w.assign(tp);
    assert_eq!(w.partition(tp).unwrap().commit_offset(), None);
    w.track(SourcePos::new(tp, 500)).unwrap();
    assert_eq!(w.complete(SourcePos::new(tp, 500)), Completion::Advanced);
    assert_eq!(w.commit_offsets(), vec![(tp, 501)]);
    assert_eq!(w.revoke(TopicPartition::new(TopicId(9), 9)), None);
}

#[test]
fn repeated_assign_keeps_state() {
    let tp = TopicPartition::new(TopicId(1), 0);
    let mut w = Watermarks::new();
    w.assign(tp);
    w.track(SourcePos::new(tp, 7)).unwrap();
    w.assign(tp);
    assert_eq!(w.pending(), 1);
}

#[test]
fn track_rejects_bad_offsets() {
    let mut t = tracker(&[5]);
    assert_eq!(
        t.track(5),
        Err(TrackError::OutOfOrder { offset: 5, last: 5 })
    );
    assert_eq!(
        t.track(4),
        Err(TrackError::OutOfOrder { offset: 4, last: 5 })
    );
    assert_eq!(t.track(-1), Err(TrackError::Negative(-1)));
    assert_eq!(t.track(-1).unwrap_err().reason(), "negative");
    assert_eq!(
        t.track(3).unwrap_err().to_string(),
        "tracking offset failed: 3 is not after the last tracked offset 5"
    );
    assert_eq!(TrackError::Unassigned.reason(), "unassigned");
    assert_eq!(t.pending(), 1);
}

#[test]
fn take_commit_reports_only_movement() {
    let mut t = tracker(&[0, 1, 2]);
    assert_eq!(t.take_commit(), None);
    t.complete(1);
    assert_eq!(t.take_commit(), None);
    t.complete(0);
    assert_eq!(t.take_commit(), Some(2));
    assert_eq!(t.take_commit(), None);
    t.complete(2);
    assert_eq!(t.take_commit(), Some(3));

    let a = TopicPartition::new(TopicId(0), 0);
    let b = TopicPartition::new(TopicId(0), 1);
    let mut w = Watermarks::new();
    w.assign(b);
    w.assign(a);
    for tp in [a, b] {
        w.track(SourcePos::new(tp, 10)).unwrap();
        w.complete(SourcePos::new(tp, 10));
    }
    assert_eq!(w.take_commits(), vec![(a, 11), (b, 11)]);
    assert_eq!(w.take_commits(), vec![]);
    assert_eq!(w.commit_offsets(), vec![(a, 11), (b, 11)]);
}

#[test]
fn memory_stays_small_for_batched_completion() {
    // 4 batches of 1000 in flight, completed batch by batch out of order.
    let mut t = PartitionTracker::new();
    for o in 0..4000 {
        t.track(o).unwrap();
    }
    assert_eq!(t.runs(), 1);
    for o in 2000..3000 {
        t.complete(o);
    }
    assert_eq!(t.runs(), 3);
    for o in 1000..2000 {
        t.complete(o);
    }
    assert_eq!(t.runs(), 3);
    for o in 0..1000 {
        t.complete(o);
    }
    assert_eq!(t.runs(), 1);
    assert_eq!(t.commit_offset(), Some(3000));
    assert_eq!(t.pending(), 1000);
}

/// Handed-out offsets (increasing, with gaps) and an order to complete them in.
fn scenario() -> impl Strategy<Value = (Vec<i64>, Vec<usize>)> {
    (0i64..1_000, prop::collection::vec(1i64..4, 1..120)).prop_flat_map(|(start, steps)| {
        let mut offsets = Vec::with_capacity(steps.len());
        let mut next = start;
        for step in steps {
            offsets.push(next);
            next += step;
        }
        let order: Vec<usize> = (0..offsets.len()).collect();
        (Just(offsets), Just(order).prop_shuffle())
    })
}

proptest! {
    #[test]
    fn watermark_never_passes_an_incomplete_offset((offsets, order) in scenario()) {
        let mut t = PartitionTracker::new();
        for &o in &offsets {
            t.track(o).unwrap();
        }
        let mut done = vec![false; offsets.len()];
        for (step, &i) in order.iter().enumerate() {
            t.complete(offsets[i]);
            done[i] = true;
            let commit = t.commit_offset();
            // Model: the longest all-done prefix of the handed-out offsets.
            let prefix = done.iter().take_while(|d| **d).count();
            let want = prefix.checked_sub(1).map(|k| offsets[k] + 1);
            prop_assert_eq!(commit, want);
            if let Some(c) = commit {
                for (k, &o) in offsets.iter().enumerate() {
                    if o < c {
                        prop_assert!(done[k], "commit {} passes pending {}", c, o);
                    }
                }
            }
            prop_assert_eq!(t.pending(), offsets.len() - step - 1);
            prop_assert!(t.runs() <= t.pending() * 2 + 1);
        }
        prop_assert_eq!(t.commit_offset(), offsets.last().map(|o| o + 1));
        prop_assert_eq!(t.runs(), 0);
        prop_assert!(t.is_idle());
    }

    #[test]
    fn completions_interleaved_with_tracking((offsets, order) in scenario()) {
        // Track in order, but complete whatever was tracked so far in a
        // shuffled order, interleaved with further tracking.
        let mut t = PartitionTracker::new();
        let mut done = vec![false; offsets.len()];
        let mut tracked = 0;
        for &i in &order {
            while tracked <= i {
                t.track(offsets[tracked]).unwrap();
                tracked += 1;
            }
            t.complete(offsets[i]);
            done[i] = true;
            if let Some(c) = t.commit_offset() {
                for (k, &o) in offsets.iter().take(tracked).enumerate() {
                    if o < c {
                        prop_assert!(done[k]);
                    }
                }
            }
        }
        prop_assert_eq!(t.commit_offset(), offsets.last().map(|o| o + 1));
    }
}
