//! Consumer lag per partition from librdkafka's statistics.
//!
//! librdkafka's own `consumer_lag` is the high watermark minus the group's
//! committed offset, and -1 until the group has committed one: a new group
//! reading a topic with a long backlog would show no lag at all until its
//! first commit. [`partition_lag`] falls back to the consumer's position, and
//! before the first fetch to the low watermark, which is where a group without
//! a committed offset starts (`auto.offset.reset: earliest`).

/// Offsets of one partition as librdkafka's statistics report them; any of
/// them is negative when unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// Offset of the next record the broker will write (`hi_offset`).
    pub high_watermark: i64,
    /// Oldest offset the broker still has (`lo_offset`).
    pub low_watermark: i64,
    /// The group's committed offset (`committed_offset`).
    pub committed: i64,
    /// Offset of the next record handed to the application (`app_offset`).
    pub position: i64,
}

/// Records between where the group would resume and the high watermark, or
/// `None` while the high watermark is unknown (no fetch response yet).
pub fn partition_lag(o: PartitionOffsets) -> Option<i64> {
    if o.high_watermark < 0 {
        return None;
    }
    let from = if o.committed >= 0 {
        o.committed
    } else if o.position >= 0 {
        o.position
    } else if o.low_watermark >= 0 {
        o.low_watermark
    } else {
        return None;
    };
    Some((o.high_watermark - from).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_table() {
        let o = |high_watermark, low_watermark, committed, position| PartitionOffsets {
            high_watermark,
            low_watermark,
            committed,
            position,
        };
        // (offsets, lag, why)
        let cases = [
            (
                o(100, 0, 40, 90),
                Some(60),
                "committed wins: a restart resumes there",
            ),
            (
                o(100, 0, -1001, 90),
                Some(10),
                "no commit yet: from the position",
            ),
            (
                o(100, 20, -1001, -1001),
                Some(80),
                "nothing fetched: from the low watermark",
            ),
            (o(-1001, 0, 40, 90), None, "high watermark unknown"),
            (o(100, -1, -1, -1), None, "nothing known"),
            (
                o(100, 0, 120, 120),
                Some(0),
                "truncated topic: never negative",
            ),
            (o(0, 0, -1001, -1001), Some(0), "empty partition"),
        ];
        for (offsets, want, why) in cases {
            assert_eq!(partition_lag(offsets), want, "{why}: {offsets:?}");
        }
    }
}
