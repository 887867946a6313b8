//! Model-based test of the tailer on the real file system.
//!
//! A random sequence of writer, kubelet and collector operations runs against
//! files in a temp dir and against a model of what was written, handed out,
//! acknowledged and saved. Checked after every poll and at the end:
//!
//! - every line handed out is the next line of its file content ("epoch") in
//!   the model: in order, nothing skipped, exact offsets and bytes;
//! - after a restart the first line handed out of each file starts exactly at
//!   the checkpoint saved last (nothing acknowledged-and-saved again, nothing
//!   unacknowledged skipped), with the same offsets, hence the same ids;
//! - at the end every complete line was handed out at least once, except
//!   lines destroyed before they could be read: truncated away
//!   (copy-truncate), or in an unlinked file when the collector restarted.
//!
//! Kubelet rotation is modelled faithfully: rename `0.log` to
//! `0.log.<timestamp>`, create a new `0.log`, and at a later rotation gzip
//! and unlink the older rotated file, but only once the tailer had a chance
//! to open it (a scan since it became identifiable and since the last
//! restart), as the kubelet waits a full rotation period.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;

use proptest::prelude::*;

use super::Node;
use crate::checkpoint::{Checkpoints, FileKey};
use crate::fingerprint::{FINGERPRINT_BYTES, fingerprint};
use crate::tail::{CountingEvents, Line, TailConfig, Tailer};

const CONTAINERS: usize = 2;
const MAX_LINE: usize = 48;

#[derive(Debug, Clone)]
enum Op {
    /// Appends a line (completing a pending partial one) with `len` filler bytes.
    WriteLine { c: usize, len: usize },
    /// Appends bytes without a newline.
    WritePartial { c: usize, len: usize },
    /// Kubelet rotation of container `c`'s live file.
    Rotate { c: usize },
    /// Copy-truncate of container `c`'s live file.
    Truncate { c: usize },
    /// One poll with this byte budget.
    Poll { budget: usize },
    /// Acknowledges the in-flight lines whose bit in `mask` is set.
    AckSome { mask: u64 },
    /// Saves the checkpoints.
    Save,
    /// Drops the tailer (saving first if graceful) and starts a new one
    /// from the checkpoint file.
    Restart { graceful: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..CONTAINERS;
    prop_oneof![
        30 => (c.clone(), 0..30usize, prop::bool::weighted(0.15))
            .prop_map(|(c, len, long)| Op::WriteLine { c, len: if long { len + MAX_LINE } else { len } }),
        5 => (c.clone(), 1..12usize).prop_map(|(c, len)| Op::WritePartial { c, len }),
        10 => c.clone().prop_map(|c| Op::Rotate { c }),
        2 => c.prop_map(|c| Op::Truncate { c }),
        25 => (1..150usize).prop_map(|budget| Op::Poll { budget }),
        8 => any::<u64>().prop_map(|mask| Op::AckSome { mask }),
        4 => Just(Op::Save),
        4 => any::<bool>().prop_map(|graceful| Op::Restart { graceful }),
    ]
}

/// One content of one inode: a file from creation or truncation on.
#[derive(Debug)]
struct Epoch {
    ino: u64,
    content: Vec<u8>,
    /// Complete lines, `(start, end)` with `end` after the newline.
    lines: Vec<(u64, u64)>,
    /// A line was started and not finished.
    partial: bool,
    /// Every name it had.
    paths: Vec<PathBuf>,
    /// Its name now; `None` once unlinked.
    path: Option<PathBuf>,
    /// Truncated away (copy-truncate): no more lines from it.
    dead: bool,
    /// Unlinked, and the tailer restarted: nobody can read it any more.
    unreachable: bool,
    /// Per line: handed out at least once.
    handed_ever: Vec<bool>,
    /// Per line: allowed to never be handed out (destroyed before read).
    lost_ok: Vec<bool>,
    /// The identity the tailer gave it.
    key: Option<FileKey>,
    /// Current tailer: index of the first line it handed out (its resume point).
    base: usize,
    /// Current tailer: acked flag of each line handed out, from `base` on.
    handed: Vec<bool>,
    /// Lines before this index were covered by the last saved checkpoint.
    saved: usize,
    /// The current tailer scanned it while identifiable.
    chance: bool,
    /// Container it belongs to, and whether it is that container's live file.
    container: usize,
}

impl Epoch {
    fn new(container: usize, path: PathBuf, ino: u64) -> Epoch {
        Epoch {
            ino,
            content: Vec::new(),
            lines: Vec::new(),
            partial: false,
            paths: vec![path.clone()],
            path: Some(path),
            dead: false,
            unreachable: false,
            handed_ever: Vec::new(),
            lost_ok: Vec::new(),
            key: None,
            base: 0,
            handed: Vec::new(),
            saved: 0,
            chance: false,
            container,
        }
    }

    fn fingerprint(&self) -> Option<u64> {
        fingerprint(&self.content[..self.content.len().min(FINGERPRINT_BYTES)])
    }

    fn next(&self) -> usize {
        self.base + self.handed.len()
    }

    /// The acked prefix of the current tailer, as a line index.
    fn watermark(&self) -> usize {
        self.base + self.handed.iter().take_while(|a| **a).count()
    }

    fn readable(&self) -> bool {
        !self.dead && !self.unreachable
    }
}

struct Model {
    node: Node,
    config: TailConfig,
    tailer: Tailer<Arc<CountingEvents>>,
    epochs: Vec<Epoch>,
    /// Index in `epochs` of each container's live file.
    live: Vec<usize>,
    seq: u64,
    rotations: u64,
}

fn filler(len: usize, seed: u64) -> Vec<u8> {
    // Bytes, not text: invalid UTF-8 and \r included, never \n.
    const ALPHABET: &[u8] = b"ab \xff\xc3\r(z\x00";
    (0..len)
        .map(|i| ALPHABET[(i + seed as usize) % ALPHABET.len()])
        .collect()
}

impl Model {
    fn new() -> Model {
        let node = Node::new();
        let config = TailConfig {
            max_line_bytes: MAX_LINE,
            read_chunk_bytes: 16,
            max_read_bytes_per_file: 40,
            max_in_flight_lines_per_file: 4,
            deleted_file_grace_ms: 3_600_000,
            ..node.config()
        };
        let (tailer, _) = node.tailer(config.clone());
        let mut model = Model {
            node,
            config,
            tailer,
            epochs: Vec::new(),
            live: Vec::new(),
            seq: 0,
            rotations: 0,
        };
        for c in 0..CONTAINERS {
            let i = model.create_live(c);
            model.live.push(i);
        }
        model
    }

    fn create_live(&mut self, c: usize) -> usize {
        let path = self.node.live(c);
        fs::write(&path, b"").unwrap();
        let ino = fs::metadata(&path).unwrap().ino();
        self.epochs.push(Epoch::new(c, path, ino));
        self.epochs.len() - 1
    }

    fn append(&mut self, c: usize, bytes: &[u8]) {
        let e = &mut self.epochs[self.live[c]];
        let path = e.path.clone().unwrap();
        OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        let mut line_start = e.lines.last().map_or(0, |&(_, end)| end);
        e.content.extend_from_slice(bytes);
        let mut at = e.content.len() - bytes.len();
        for &b in bytes {
            at += 1;
            if b == b'\n' {
                e.lines.push((line_start, at as u64));
                e.handed_ever.push(false);
                e.lost_ok.push(false);
                line_start = at as u64;
            }
        }
        e.partial = e.content.last().is_some_and(|&b| b != b'\n');
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match *op {
            Op::WriteLine { c, len } => {
                let mut bytes = self.line_prefix(c);
                bytes.extend(filler(len, self.seq));
                bytes.push(b'\n');
                self.append(c, &bytes);
            }
            Op::WritePartial { c, len } => {
                let mut bytes = self.line_prefix(c);
                bytes.extend(filler(len, self.seq));
                self.append(c, &bytes);
            }
            Op::Rotate { c } => self.rotate(c),
            Op::Truncate { c } => self.truncate(c),
            Op::Poll { budget } => self.poll(budget)?,
            Op::AckSome { mask } => self.ack_some(mask)?,
            Op::Save => self.save(),
            Op::Restart { graceful } => self.restart(graceful),
        }
        Ok(())
    }

    /// A unique start for a new line (none if a partial one is pending), so
    /// every file's first line, and so its fingerprint, is unique.
    fn line_prefix(&mut self, c: usize) -> Vec<u8> {
        if self.epochs[self.live[c]].partial {
            return Vec::new();
        }
        self.seq += 1;
        format!("{c}:{:05}:", self.seq).into_bytes()
    }

    fn rotate(&mut self, c: usize) {
        let live = self.live[c];
        if self.epochs[live].content.is_empty() {
            return; // the kubelet rotates only big files
        }
        if self.epochs[live].partial {
            // A runtime writes whole lines; finish the pending one.
            self.append(c, b"\n");
        }
        // Gzip and unlink the older rotated files the tailer could open.
        for e in &mut self.epochs {
            let old = e.container == c && e.path.is_some() && !e.dead;
            let rotated = e.paths.len() > 1;
            if old && rotated && e.chance {
                let path = e.path.take().unwrap();
                let mut gz = path.clone().into_os_string();
                gz.push(".gz");
                fs::write(&gz, b"gzip").unwrap();
                fs::remove_file(&path).unwrap();
            }
        }
        self.rotations += 1;
        let e = &mut self.epochs[live];
        let from = e.path.clone().unwrap();
        let to = from.with_file_name(format!("0.log.20261127-{:06}", self.rotations));
        fs::rename(&from, &to).unwrap();
        e.path = Some(to.clone());
        e.paths.push(to);
        self.live[c] = self.create_live(c);
    }

    fn truncate(&mut self, c: usize) {
        let live = self.live[c];
        let e = &mut self.epochs[live];
        let path = e.path.clone().unwrap();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(0)
            .unwrap();
        e.dead = true;
        for (lost, handed) in e.lost_ok.iter_mut().zip(&e.handed_ever) {
            *lost |= !handed;
        }
        let ino = e.ino;
        self.epochs.push(Epoch::new(c, path, ino));
        self.live[c] = self.epochs.len() - 1;
    }

    fn poll(&mut self, budget: usize) -> Result<(), TestCaseError> {
        // The poll starts with a scan (glob_interval_ms = 0).
        for e in &mut self.epochs {
            if e.path.is_some() && !e.dead && e.fingerprint().is_some() {
                e.chance = true;
            }
        }
        let lines = self.tailer.poll_lines(budget);
        for line in &lines {
            self.check_line(line)?;
        }
        Ok(())
    }

    fn check_line(&mut self, line: &Line) -> Result<(), TestCaseError> {
        let found = self.epochs.iter().position(|e| {
            !e.dead && e.ino == line.file.ino && e.fingerprint() == Some(line.file.fingerprint)
        });
        let Some(i) = found else {
            return Err(TestCaseError::fail(format!(
                "line from an unknown file: {line:?}"
            )));
        };
        let e = &mut self.epochs[i];
        prop_assert!(!e.unreachable, "line from an unreachable file");
        let next = e.next();
        prop_assert!(
            next < e.lines.len(),
            "line past the last complete one: {:?}",
            line
        );
        let (start, end) = e.lines[next];
        prop_assert_eq!(
            (line.offset, line.end),
            (start, end),
            "wrong offsets (expected line {})",
            next
        );
        let len = (end - start - 1) as usize;
        let want = &e.content[start as usize..start as usize + len.min(MAX_LINE)];
        prop_assert_eq!(&line.bytes[..], want);
        prop_assert_eq!(line.truncated, len > MAX_LINE);
        prop_assert!(
            e.paths.iter().any(|p| **p == *line.path),
            "path {:?}",
            line.path
        );
        if let Some(key) = e.key {
            prop_assert_eq!(key, line.file);
        }
        e.key = Some(line.file);
        e.handed.push(false);
        e.handed_ever[next] = true;
        Ok(())
    }

    fn ack_some(&mut self, mask: u64) -> Result<(), TestCaseError> {
        let mut bit = 0;
        for e in &mut self.epochs {
            if !e.readable() {
                continue;
            }
            for j in 0..e.handed.len() {
                if e.handed[j] {
                    continue;
                }
                let pick = mask >> (bit % 64) & 1 == 1;
                bit += 1;
                if pick {
                    let key = e.key.unwrap();
                    let offset = e.lines[e.base + j].0;
                    prop_assert!(
                        self.tailer.ack(&key, offset),
                        "ack of an in-flight line refused"
                    );
                    e.handed[j] = true;
                }
            }
        }
        Ok(())
    }

    fn ack_all(&mut self) -> Result<(), TestCaseError> {
        self.ack_some(u64::MAX)
    }

    fn save(&mut self) {
        self.tailer
            .save_checkpoints(&self.node.checkpoint_path())
            .unwrap();
        for e in &mut self.epochs {
            if e.readable() {
                e.saved = e.watermark();
            }
        }
    }

    fn restart(&mut self, graceful: bool) {
        if graceful {
            self.save();
        }
        let checkpoints = Checkpoints::load(&self.node.checkpoint_path()).unwrap();
        self.tailer = Tailer::new(
            self.config.clone(),
            checkpoints,
            Arc::new(CountingEvents::new()),
        )
        .unwrap();
        for e in &mut self.epochs {
            if e.path.is_none() && !e.unreachable {
                // Unlinked: its lines die with the old tailer's handle.
                e.unreachable = true;
                for (lost, handed) in e.lost_ok.iter_mut().zip(&e.handed_ever) {
                    *lost |= !handed;
                }
            }
            e.base = e.saved;
            e.handed.clear();
            e.chance = false;
        }
    }

    /// Polls and acks until nothing moves, then checks every line was seen.
    fn finish(&mut self) -> Result<(), TestCaseError> {
        let mut quiet = 0;
        for _ in 0..2_000 {
            for e in &mut self.epochs {
                if e.path.is_some() && !e.dead && e.fingerprint().is_some() {
                    e.chance = true;
                }
            }
            let lines = self.tailer.poll_lines(1 << 20);
            for line in &lines {
                self.check_line(line)?;
            }
            self.ack_all()?;
            if lines.is_empty() {
                quiet += 1;
                if quiet == 3 {
                    break;
                }
            } else {
                quiet = 0;
            }
        }
        for (i, e) in self.epochs.iter().enumerate() {
            for (j, (&handed, &lost)) in e.handed_ever.iter().zip(&e.lost_ok).enumerate() {
                prop_assert!(
                    handed || lost,
                    "epoch {} ({:?}) line {} never handed out",
                    i,
                    e.paths,
                    j
                );
            }
            if e.readable() {
                prop_assert_eq!(e.next(), e.lines.len(), "epoch {} not read to the end", i);
            }
        }
        // Everything acked: no file holds lines in flight.
        for status in self.tailer.file_status() {
            prop_assert_eq!(status.in_flight, 0);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn tail_model_based_at_least_once_exact_offsets(ops in prop::collection::vec(op(), 1..100)) {
        let mut model = Model::new();
        for op in &ops {
            model.apply(op)?;
        }
        model.finish()?;
    }
}
