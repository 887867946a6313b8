//! Tailer tests on the real file system, in temporary directories.

mod model;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::checkpoint::{CheckpointError, Checkpoints, FileKey};

/// A kubelet-like directory tree in a temp dir.
struct Node {
    dir: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// The directory of container `c`'s logs, created.
    fn container(&self, c: usize) -> PathBuf {
        let dir = self.dir.path().join(format!("pods/ns_pod-{c}_uid-{c}/app"));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn live(&self, c: usize) -> PathBuf {
        self.container(c).join("0.log")
    }

    fn checkpoint_path(&self) -> PathBuf {
        self.dir.path().join("checkpoints.json")
    }

    fn config(&self) -> TailConfig {
        TailConfig {
            include: vec![format!("{}/pods/*/*/*.log*", self.dir.path().display())],
            glob_interval_ms: 0,
            ..TailConfig::default()
        }
    }

    fn tailer(&self, config: TailConfig) -> (Tailer<Arc<CountingEvents>>, Arc<CountingEvents>) {
        let events = Arc::new(CountingEvents::new());
        let checkpoints = Checkpoints::load(&self.checkpoint_path()).unwrap();
        (
            Tailer::new(config, checkpoints, events.clone()).unwrap(),
            events,
        )
    }
}

fn append(path: &Path, bytes: &[u8]) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// Polls until two polls in a row read nothing.
fn drain<E: TailEvents>(t: &mut Tailer<E>, budget: usize) -> Vec<Line> {
    let mut all = Vec::new();
    let mut empty = 0;
    for _ in 0..10_000 {
        let lines = t.poll_lines(budget);
        if lines.is_empty() && t.last_poll_bytes() == 0 {
            empty += 1;
            if empty == 2 {
                break;
            }
        } else {
            empty = 0;
        }
        all.extend(lines);
    }
    all
}

fn ack_all<E: TailEvents>(t: &mut Tailer<E>, lines: &[Line]) {
    for l in lines {
        assert!(t.ack(&l.file, l.offset), "ack {}", l.offset);
    }
}

fn texts(lines: &[Line]) -> Vec<Vec<u8>> {
    lines.iter().map(|l| l.bytes.to_vec()).collect()
}

/// `n` numbered lines, each with its newline.
fn numbered(prefix: &str, n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{prefix} line {i:04}\n").into_bytes())
        .collect()
}

/// Checks offsets are exact: each line's bytes are at its offset in `content`
/// and lines follow each other.
fn assert_exact(lines: &[Line], content: &[u8]) {
    let mut at = 0;
    for l in lines {
        assert_eq!(l.offset, at, "line at {} follows {}", l.offset, at);
        let body = &content[l.offset as usize..l.end as usize - 1];
        assert_eq!(content[l.end as usize - 1], b'\n');
        assert!(body.starts_with(&l.bytes));
        at = l.end;
    }
    assert_eq!(at, content.len() as u64);
}

#[test]
fn tail_three_mib_line_between_two_normal_lines() {
    let node = Node::new();
    let path = node.live(0);
    let mut content = b"2026-11-27T20:17:29.1Z stdout F before\n".to_vec();
    let long_start = content.len() as u64;
    content.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    content.push(b'\n');
    let after_start = content.len() as u64;
    content.extend_from_slice(b"2026-11-27T20:17:29.3Z stdout F after\n");
    fs::write(&path, &content).unwrap();

    let config = node.config();
    let max_line = config.max_line_bytes;
    let (mut t, events) = node.tailer(config);
    let started = Instant::now();
    let lines = drain(&mut t, 64 * 1024 * 1024);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(lines.len(), 3);
    assert_eq!(
        &lines[0].bytes[..],
        b"2026-11-27T20:17:29.1Z stdout F before"
    );
    assert_eq!(
        (lines[0].offset, lines[0].end, lines[0].truncated),
        (0, long_start, false)
    );
    assert_eq!(lines[1].offset, long_start);
    assert_eq!(lines[1].end, after_start);
    assert!(lines[1].truncated);
    assert_eq!(lines[1].bytes.len(), max_line);
    assert!(lines[1].bytes.iter().all(|&b| b == b'x'));
    assert_eq!(
        &lines[2].bytes[..],
        b"2026-11-27T20:17:29.3Z stdout F after"
    );
    assert_eq!(
        (lines[2].offset, lines[2].end),
        (after_start, content.len() as u64)
    );
    assert_eq!(events.snapshot().lines_truncated, 1);
    assert_eq!(events.snapshot().bytes_read, content.len() as u64);
}

#[test]
fn tail_invalid_utf8_passes_through_untouched() {
    let node = Node::new();
    let path = node.live(0);
    let content = b"first \xff\xfe line\r\n\xc3\x28 second \x80\n\x00\x01\n".to_vec();
    fs::write(&path, &content).unwrap();
    let (mut t, _) = node.tailer(node.config());
    let lines = drain(&mut t, 1 << 20);
    assert_eq!(
        texts(&lines),
        vec![
            b"first \xff\xfe line\r".to_vec(),
            b"\xc3\x28 second \x80".to_vec(),
            b"\x00\x01".to_vec()
        ]
    );
    assert_exact(&lines, &content);
}

#[test]
fn tail_reconfigured_globs_drain_the_dropped_files_and_pick_up_new_ones() {
    let node = Node::new();
    let a = node.live(0);
    let b = node.live(1);
    fs::write(&a, numbered("a", 3)).unwrap();
    fs::write(&b, numbered("b", 3)).unwrap();
    let only_a = TailConfig {
        include: vec![a.display().to_string()],
        ..node.config()
    };
    let (mut t, events) = node.tailer(only_a);
    let first = drain(&mut t, 1 << 20);
    assert_exact(&first, &numbered("a", 3));

    // Narrow to b: a is no longer matched, so it is drained and released
    // once acknowledged; b is found at the next poll.
    append(&a, &numbered("a-more", 2));
    let only_b = TailConfig {
        include: vec![b.display().to_string()],
        max_line_bytes: 7,
        ..node.config()
    };
    let applied = t.reconfigure(&only_b).unwrap();
    assert_eq!(applied.include, only_b.include);
    assert_eq!(
        applied.max_line_bytes,
        TailConfig::default().max_line_bytes,
        "max_line_bytes keeps its running value"
    );
    let second = drain(&mut t, 1 << 20);
    let (from_a, from_b): (Vec<Line>, Vec<Line>) =
        second.into_iter().partition(|l| l.bytes.starts_with(b"a"));
    assert_eq!(texts(&from_a), texts_of(&numbered("a-more", 2)));
    assert_eq!(texts(&from_b), texts_of(&numbered("b", 3)));
    assert_eq!(events.snapshot().files_gone, 1);
    ack_all(&mut t, &first);
    ack_all(&mut t, &from_a);
    assert!(t.poll_lines(1 << 20).is_empty());
    assert_eq!(events.snapshot().files_released, 1);
    assert_eq!(t.file_status().len(), 1);

    // An invalid change leaves everything as it was.
    let bad = TailConfig {
        include: vec!["/var/log/[".to_owned()],
        ..node.config()
    };
    assert!(t.reconfigure(&bad).is_err());
    assert_eq!(t.config().include, only_b.include);
}

#[test]
fn tail_file_status_now_sees_growth_without_a_poll() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, numbered("x", 2)).unwrap();
    let (mut t, _) = node.tailer(node.config());
    drain(&mut t, 1 << 20);
    append(&live, b"12345\n");
    assert_eq!(t.file_status()[0].lag_bytes, 0, "as of the last poll");
    let now = &t.file_status_now()[0];
    assert_eq!(now.lag_bytes, 6);
    assert_eq!(now.size, fs::metadata(&live).unwrap().len());
}

fn texts_of(content: &[u8]) -> Vec<Vec<u8>> {
    content
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

#[test]
fn tail_rename_rotation_with_unread_data_loses_nothing() {
    let node = Node::new();
    let live = node.live(0);
    let old = numbered("old", 200);
    fs::write(&live, &old).unwrap();
    let config = TailConfig {
        max_read_bytes_per_file: 100,
        read_chunk_bytes: 64,
        ..node.config()
    };
    let (mut t, events) = node.tailer(config);
    let mut got = t.poll_lines(100);
    assert!(
        !got.is_empty() && got.len() < 200,
        "read only part: {}",
        got.len()
    );

    // The kubelet rotates: rename, new live file, then (next rotation) gzip
    // and unlink the renamed one while it is still partly unread.
    let rotated = node.container(0).join("0.log.20261127-201729");
    fs::rename(&live, &rotated).unwrap();
    let new = numbered("new", 50);
    fs::write(&live, &new).unwrap();
    got.extend(t.poll_lines(100));
    fs::write(rotated.with_extension("gz"), b"compressed").unwrap();
    fs::remove_file(&rotated).unwrap();
    got.extend(drain(&mut t, 100));

    let (old_lines, new_lines): (Vec<Line>, Vec<Line>) =
        got.into_iter().partition(|l| l.bytes.starts_with(b"old"));
    assert_exact(&old_lines, &old);
    assert_exact(&new_lines, &new);
    assert_ne!(old_lines[0].file, new_lines[0].file);
    let counts = events.snapshot();
    assert_eq!(counts.rotations, 1);
    assert_eq!(counts.files_gone, 1);
    assert_eq!(
        counts.files_released, 0,
        "not released before its lines are acked"
    );
    // Once acknowledged, the deleted file is released.
    ack_all(&mut t, &old_lines);
    assert!(t.poll_lines(100).is_empty());
    assert_eq!(events.snapshot().files_released, 1);
    assert_eq!(t.file_status().len(), 1);
}

#[test]
fn tail_restart_resumes_at_checkpoint() {
    let node = Node::new();
    let live = node.live(0);
    let content = numbered("x", 10);
    fs::write(&live, &content).unwrap();
    let (mut t, _) = node.tailer(node.config());
    let first = drain(&mut t, 1 << 20);
    assert_eq!(first.len(), 10);
    // Acks 0..4 and 6 (out of order); 4 and 5 are not acknowledged.
    for i in [3, 0, 2, 1, 6] {
        assert!(t.ack(&first[i].file, first[i].offset));
    }
    assert_eq!(t.checkpoint_offset(&first[0].file), Some(first[4].offset));
    t.save_checkpoints(&node.checkpoint_path()).unwrap();
    drop(t);

    let (mut t, events) = node.tailer(node.config());
    let again = drain(&mut t, 1 << 20);
    // Resumes at the first unacknowledged line, same offsets and ids.
    assert_eq!(again, first[4..].to_vec());
    assert_eq!(again[0].event_id(), first[4].event_id());
    assert_eq!(events.snapshot().files_added, 1);

    // Everything acked and saved: a restart hands out nothing more.
    ack_all(&mut t, &again);
    t.save_checkpoints(&node.checkpoint_path()).unwrap();
    drop(t);
    let (mut t, _) = node.tailer(node.config());
    assert!(drain(&mut t, 1 << 20).is_empty());
    append(&live, b"more\n");
    let more = drain(&mut t, 1 << 20);
    assert_eq!(texts(&more), vec![b"more".to_vec()]);
    assert_eq!(more[0].offset, content.len() as u64);
}

#[test]
fn tail_corrupt_checkpoint_file_is_a_clear_error() {
    let node = Node::new();
    fs::write(node.checkpoint_path(), b"\x00garbage").unwrap();
    let err = Checkpoints::load(&node.checkpoint_path()).unwrap_err();
    assert!(matches!(err, CheckpointError::Corrupt { .. }));
    assert!(err.to_string().contains("refusing to start"), "{err}");
}

#[test]
fn tail_deleted_file_is_released_after_grace_when_unacked() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, numbered("x", 3)).unwrap();
    let config = TailConfig {
        deleted_file_grace_ms: 60_000,
        ..node.config()
    };
    let (mut t, events) = node.tailer(config);
    let lines = drain(&mut t, 1 << 20);
    assert_eq!(lines.len(), 3);
    fs::remove_file(&live).unwrap();
    let now = Instant::now();
    assert!(t.poll_lines_at(1 << 20, now).is_empty());
    assert_eq!(t.file_status()[0].state, FileState::Gone { deleted: true });
    assert!(
        t.poll_lines_at(1 << 20, now + Duration::from_secs(59))
            .is_empty()
    );
    assert_eq!(t.file_status().len(), 1);
    assert!(
        t.poll_lines_at(1 << 20, now + Duration::from_secs(61))
            .is_empty()
    );
    assert!(t.file_status().is_empty());
    let counts = events.snapshot();
    assert_eq!(counts.deleted_released_unacked, 1);
    assert_eq!(counts.files_released, 0);
    // Late acks are ignored and counted.
    assert!(!t.ack(&lines[0].file, lines[0].offset));
    assert_eq!(events.snapshot().unknown_acks, 1);
}

#[test]
fn tail_undrained_deleted_file_is_kept_unless_max_hold() {
    for max_hold in [None, Some(1_000)] {
        let node = Node::new();
        let live = node.live(0);
        fs::write(&live, numbered("x", 100)).unwrap();
        let config = TailConfig {
            max_in_flight_lines_per_file: 5,
            deleted_file_grace_ms: 0,
            deleted_file_max_hold_ms: max_hold,
            ..node.config()
        };
        let (mut t, events) = node.tailer(config);
        let now = Instant::now();
        assert_eq!(t.poll_lines_at(1 << 20, now).len(), 5);
        fs::remove_file(&live).unwrap();
        assert!(t.poll_lines_at(1 << 20, now).is_empty(), "in-flight limit");
        t.poll_lines_at(1 << 20, now + Duration::from_secs(3600));
        let counts = events.snapshot();
        match max_hold {
            None => {
                assert_eq!(
                    t.file_status().len(),
                    1,
                    "kept: a rotated file is drained first"
                );
                assert_eq!(counts.deleted_released_undrained, 0);
            }
            Some(_) => {
                assert!(t.file_status().is_empty());
                assert_eq!(counts.deleted_released_undrained, 1);
            }
        }
    }
}

#[test]
fn tail_copy_truncate_restarts_at_zero_counted() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, numbered("before", 5)).unwrap();
    let (mut t, events) = node.tailer(node.config());
    let before = drain(&mut t, 1 << 20);
    assert_eq!(before.len(), 5);
    // Truncated in place, then shorter new content.
    OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&live, b"after 1\n");
    let after = drain(&mut t, 1 << 20);
    assert_eq!(texts(&after), vec![b"after 1".to_vec()]);
    assert_eq!(after[0].offset, 0);
    assert_ne!(after[0].file, before[0].file);
    assert_eq!(events.snapshot().truncate_resets, 1);

    // Truncated and rewritten past the old offset before the next look: the
    // changed head gives it away at the scan.
    let big = numbered("third", 40);
    OpenOptions::new()
        .write(true)
        .open(&live)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&live, &big);
    let third = drain(&mut t, 1 << 20);
    assert_exact(&third, &big);
    assert_eq!(events.snapshot().truncate_resets, 2);
}

#[test]
fn tail_file_vanished_before_open_is_skipped_and_counted() {
    let node = Node::new();
    let dir = node.container(0);
    // A dangling symlink: listed by the glob, gone when opened.
    std::os::unix::fs::symlink(dir.join("missing"), dir.join("0.log")).unwrap();
    fs::write(dir.join("1.log"), b"ok\n").unwrap();
    let (mut t, events) = node.tailer(node.config());
    let lines = drain(&mut t, 1 << 20);
    assert_eq!(texts(&lines), vec![b"ok".to_vec()]);
    assert!(events.snapshot().files_vanished >= 1);
}

#[test]
fn tail_young_file_is_identified_once_its_first_line_completes() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, b"2026-11-27T20:17:29.1Z stdout F no newline yet").unwrap();
    let (mut t, events) = node.tailer(node.config());
    assert!(drain(&mut t, 1 << 20).is_empty());
    assert!(events.snapshot().files_unidentified >= 1);
    assert_eq!(events.snapshot().files_added, 0);
    append(&live, b"\nsecond");
    let lines = drain(&mut t, 1 << 20);
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].offset, 0);
    // The incomplete second line waits for its newline.
    append(&live, b" line\n");
    assert_eq!(
        texts(&drain(&mut t, 1 << 20)),
        vec![b"second line".to_vec()]
    );
}

#[test]
fn tail_unterminated_last_line_of_rotated_file_is_flushed_after_idle() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, b"a\nunterminated").unwrap();
    let (mut t, events) = node.tailer(node.config());
    let now = Instant::now();
    assert_eq!(t.poll_lines_at(1 << 20, now).len(), 1);
    let rotated = node.container(0).join("0.log.20261127-201729");
    fs::rename(&live, &rotated).unwrap();
    assert!(
        t.poll_lines_at(1 << 20, now + Duration::from_secs(1))
            .is_empty()
    );
    let lines = t.poll_lines_at(1 << 20, now + Duration::from_secs(6));
    assert_eq!(texts(&lines), vec![b"unterminated".to_vec()]);
    assert_eq!((lines[0].offset, lines[0].end), (2, 14));
    assert_eq!(events.snapshot().unterminated_lines_flushed, 1);
}

#[test]
fn tail_read_from_end_applies_to_the_first_scan_only() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, b"old 1\nold 2\npart").unwrap();
    let config = TailConfig {
        read_from: ReadFrom::End,
        ..node.config()
    };
    let (mut t, events) = node.tailer(config);
    assert!(drain(&mut t, 1 << 20).is_empty());
    append(&live, b"ial\n");
    let lines = drain(&mut t, 1 << 20);
    assert_eq!(texts(&lines), vec![b"partial".to_vec()]);
    assert_eq!(lines[0].offset, 12);
    // A file appearing later (the next container) is read from its start.
    fs::write(node.live(1), b"new 1\n").unwrap();
    assert_eq!(texts(&drain(&mut t, 1 << 20)), vec![b"new 1".to_vec()]);
    assert_eq!(events.snapshot().files_added, 2);
}

#[test]
fn tail_in_flight_limit_stops_reading_until_acks() {
    let node = Node::new();
    fs::write(node.live(0), numbered("x", 10)).unwrap();
    let config = TailConfig {
        max_in_flight_lines_per_file: 3,
        ..node.config()
    };
    let (mut t, _) = node.tailer(config);
    let first = t.poll_lines(1 << 20);
    assert_eq!(first.len(), 3);
    assert!(t.poll_lines(1 << 20).is_empty(), "backpressure");
    assert_eq!(t.file_status()[0].lag_bytes, 12 * 7);
    assert!(t.ack(&first[1].file, first[1].offset));
    assert!(
        t.poll_lines(1 << 20).is_empty(),
        "watermark still behind line 0"
    );
    assert!(t.ack(&first[0].file, first[0].offset));
    assert_eq!(t.poll_lines(1 << 20).len(), 2);
}

#[test]
fn tail_budget_is_shared_fairly_between_files() {
    let node = Node::new();
    for c in 0..3 {
        fs::write(node.live(c), numbered(&format!("c{c}"), 100)).unwrap();
    }
    let config = TailConfig {
        read_chunk_bytes: 32,
        ..node.config()
    };
    let (mut t, _) = node.tailer(config);
    let mut per_file = std::collections::HashMap::<FileKey, usize>::new();
    for _ in 0..6 {
        for l in t.poll_lines(200) {
            *per_file.entry(l.file).or_default() += 1;
        }
    }
    assert_eq!(per_file.len(), 3, "every file got a turn: {per_file:?}");
}

#[test]
fn tail_checkpoint_moves_with_a_file_copied_to_a_new_inode() {
    let node = Node::new();
    let live = node.live(0);
    let content = numbered("x", 4);
    fs::write(&live, &content).unwrap();
    let (mut t, _) = node.tailer(node.config());
    let lines = drain(&mut t, 1 << 20);
    ack_all(&mut t, &lines[..2]);
    t.save_checkpoints(&node.checkpoint_path()).unwrap();
    drop(t);
    // Restored from a backup: same content, new inode.
    let copy = node.container(0).join("copy");
    fs::copy(&live, &copy).unwrap();
    fs::remove_file(&live).unwrap();
    fs::rename(&copy, &live).unwrap();
    let (mut t, _) = node.tailer(node.config());
    let again = drain(&mut t, 1 << 20);
    assert_eq!(texts(&again), texts(&lines[2..]));
    assert_eq!(again[0].offset, lines[2].offset);
    assert_ne!(again[0].file.ino, lines[2].file.ino);
    assert_eq!(t.checkpoints().len(), 1, "the entry moved to the new key");
}

#[test]
fn tail_checkpoint_past_end_starts_at_zero() {
    let node = Node::new();
    let live = node.live(0);
    fs::write(&live, b"same first line\n").unwrap();
    let ino = std::os::unix::fs::MetadataExt::ino(&fs::metadata(&live).unwrap());
    let dev = std::os::unix::fs::MetadataExt::dev(&fs::metadata(&live).unwrap());
    let fp = crate::fingerprint::fingerprint(b"same first line\n").unwrap();
    let mut saved = Checkpoints::new();
    saved.update(FileKey::new(fp, dev, ino), 10_000, &live, 1);
    saved.save(&node.checkpoint_path()).unwrap();
    let (mut t, events) = node.tailer(node.config());
    assert_eq!(drain(&mut t, 1 << 20).len(), 1);
    assert_eq!(events.snapshot().truncate_resets, 1);
}

#[test]
fn tail_save_checkpoints_writes_only_changes() {
    let node = Node::new();
    fs::write(node.live(0), numbered("x", 3)).unwrap();
    let (mut t, _) = node.tailer(node.config());
    let path = node.checkpoint_path();
    assert!(!t.save_checkpoints(&path).unwrap(), "nothing known yet");
    let lines = drain(&mut t, 1 << 20);
    assert!(t.save_checkpoints(&path).unwrap(), "new file at offset 0");
    assert!(!t.save_checkpoints(&path).unwrap(), "unchanged");
    assert!(t.ack(&lines[0].file, lines[0].offset));
    assert!(t.save_checkpoints(&path).unwrap(), "offset moved");
    let saved = Checkpoints::load(&path).unwrap();
    assert_eq!(
        saved.get(&lines[0].file).map(|c| c.offset),
        Some(lines[0].end)
    );
}
