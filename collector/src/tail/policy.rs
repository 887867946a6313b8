//! The tailer's decisions, as pure functions of what it observed.

use std::time::Duration;

use super::config::ReadFrom;
use super::events::StartFrom;
use crate::checkpoint::Resume;

/// Where to start reading a newly found file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// At this offset.
    At(u64, StartFrom),
    /// After the last complete line (needs the file's tail to find it).
    LastLineBoundary,
}

/// Decides where a newly found file of `size` bytes starts. `read_from`
/// applies only to files found by the first scan.
pub(crate) fn start(
    resume: Option<Resume>,
    size: u64,
    first_scan: bool,
    read_from: ReadFrom,
) -> Start {
    match resume {
        Some(r) if r.offset() > size => Start::At(0, StartFrom::CheckpointPastEnd),
        Some(Resume::Exact { offset }) => Start::At(offset, StartFrom::Checkpoint),
        Some(Resume::Fingerprint { offset, .. }) => Start::At(offset, StartFrom::MovedCheckpoint),
        None if first_scan && read_from == ReadFrom::End => Start::LastLineBoundary,
        None => Start::At(0, StartFrom::Beginning),
    }
}

/// What to do with a file that is no longer found by the globs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Release {
    /// Keep it open: still lines to read or acks to wait for.
    Keep,
    /// Drained and fully acknowledged: close it.
    Done,
    /// Drained, but acks did not come within the grace period: close it.
    Unacked,
    /// Not drained within the maximum hold: close it, losing the rest.
    Undrained,
}

/// What the release decision looks at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GoneFile {
    /// How long ago the file was found gone.
    pub(crate) gone_for: Duration,
    /// `Some(d)`: every byte was read and handed out, for `d` now (since
    /// it was both gone and drained); `None`: not drained.
    pub(crate) drained_for: Option<Duration>,
    /// Lines handed out and not yet behind the ack watermark.
    pub(crate) in_flight: usize,
}

/// Decides whether a gone file can be closed. A file is drained before it is
/// released, unless `max_hold` (off by default) says otherwise.
/// The grace for acknowledgements runs from the moment the gone file was
/// drained, so lines read just before release get their full grace.
pub(crate) fn release(f: GoneFile, grace: Duration, max_hold: Option<Duration>) -> Release {
    match f.drained_for {
        Some(_) if f.in_flight == 0 => Release::Done,
        Some(waited) if waited >= grace => Release::Unacked,
        Some(_) => Release::Keep,
        None if max_hold.is_some_and(|hold| f.gone_for >= hold) => Release::Undrained,
        None => Release::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::FileKey;

    #[test]
    fn start_table() {
        let exact = |offset| Some(Resume::Exact { offset });
        let moved = |offset| {
            Some(Resume::Fingerprint {
                offset,
                previous: FileKey::new(1, 1, 1),
            })
        };
        use ReadFrom::*;
        let cases = [
            // (resume, size, first scan, read_from, expected)
            (
                None,
                100,
                true,
                Beginning,
                Start::At(0, StartFrom::Beginning),
            ),
            (None, 100, true, End, Start::LastLineBoundary),
            // Files appearing later are read whole, whatever read_from says.
            (None, 100, false, End, Start::At(0, StartFrom::Beginning)),
            (
                exact(40),
                100,
                true,
                End,
                Start::At(40, StartFrom::Checkpoint),
            ),
            (
                exact(100),
                100,
                false,
                Beginning,
                Start::At(100, StartFrom::Checkpoint),
            ),
            (
                exact(101),
                100,
                false,
                Beginning,
                Start::At(0, StartFrom::CheckpointPastEnd),
            ),
            (
                moved(7),
                100,
                false,
                Beginning,
                Start::At(7, StartFrom::MovedCheckpoint),
            ),
            (
                moved(700),
                100,
                false,
                Beginning,
                Start::At(0, StartFrom::CheckpointPastEnd),
            ),
        ];
        for (i, (resume, size, first, read_from, want)) in cases.into_iter().enumerate() {
            assert_eq!(start(resume, size, first, read_from), want, "case {i}");
        }
    }

    #[test]
    fn release_table() {
        let s = Duration::from_secs;
        let grace = s(60);
        let cases = [
            // (gone for, drained for, in flight, max hold, expected)
            (s(0), Some(s(0)), 0, None, Release::Done),
            (s(0), Some(s(0)), 3, None, Release::Keep),
            (s(500), Some(s(59)), 3, None, Release::Keep),
            (s(60), Some(s(60)), 3, None, Release::Unacked),
            (s(0), None, 0, None, Release::Keep),
            (s(100_000), None, 0, None, Release::Keep),
            (s(99), None, 5, Some(s(100)), Release::Keep),
            (s(100), None, 5, Some(s(100)), Release::Undrained),
            (s(100), Some(s(1)), 0, Some(s(100)), Release::Done),
            (s(100), Some(s(1)), 2, Some(s(100)), Release::Keep),
        ];
        for (i, (gone_for, drained_for, in_flight, max_hold, want)) in cases.into_iter().enumerate()
        {
            let f = GoneFile {
                gone_for,
                drained_for,
                in_flight,
            };
            assert_eq!(release(f, grace, max_hold), want, "case {i}");
        }
    }
}
