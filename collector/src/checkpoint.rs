//! File checkpoints: how far each log file has been shipped, kept durably on disk.
//!
//! A checkpoint says, for one file, the byte offset up to which **every** line
//! has been acknowledged by Kafka. It is the resume point after a restart: the
//! tailer starts reading there, so a line is handed out again only if it was
//! not acknowledged before the checkpoint was saved (at-least-once, and a
//! re-read line keeps its offset and so its event id).
//!
//! Invariants (also stated in ARCHITECTURE.md):
//! - **The checkpoint never passes an unacknowledged line.** The offset stored
//!   for a file is the end of its longest fully acknowledged prefix of lines
//!   ([`crate::tail::AckTracker`] computes it), never the read offset.
//! - **Files are identified by content, not path.** The key is
//!   [`FileKey`]: the fingerprint of the file's head (see
//!   [`crate::fingerprint`]) plus device and inode. On startup a file is
//!   looked up by its exact key first, then by fingerprint alone (the file was
//!   copied or restored to a new inode), so a rename (kubelet rotation) keeps
//!   the checkpoint, and an inode reused by a new file (new content, new
//!   fingerprint) does not inherit a stranger's offset.
//! - **A bad checkpoint file stops the collector.** A corrupt file or one of an
//!   unknown version is an error ([`CheckpointError`]), not an empty state:
//!   starting from zero would ship every log on the node again. The operator
//!   decides, with [`Checkpoints::reset`] (the `--reset-checkpoints` flag).
//! - **Saving is atomic and durable**: a temporary file in the same directory
//!   is written and `fsync`ed, renamed over the old file, and the directory is
//!   `fsync`ed, so a crash leaves either the old or the new state.
//!
//! The in-memory map ([`Checkpoints`]) is pure and unit-tested on its own;
//! only [`Checkpoints::load`], [`Checkpoints::reset`] and
//! [`Checkpoints::save`] touch the disk.
//!
//! # On-disk format
//!
//! JSON, tagged with a `version` so a later format can be told apart:
//!
//! ```json
//! {"version":"1","checkpoints":[{"fingerprint":"3f2a9c0d1e4b5a67","dev":2049,"ino":1234,
//!   "offset":4096,"path":"/var/log/pods/ns_pod_uid/app/0.log","updated_unix_ms":1795810649000}]}
//! ```
//!
//! `fingerprint` is 16 hex digits, as in the event id; `path` is diagnostic
//! only (the file last seen there).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use kelp_record::EventId;
use serde::{Deserialize, Serialize};

/// The identity of a log file: content fingerprint, then device and inode.
///
/// Ordered by fingerprint first, so all keys of one fingerprint are adjacent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileKey {
    /// [`crate::fingerprint::fingerprint`] of the file's head.
    pub fingerprint: u64,
    /// Device id of the file system holding the file (`st_dev`).
    pub dev: u64,
    /// Inode number (`st_ino`).
    pub ino: u64,
}

impl FileKey {
    /// The key of a file with this fingerprint, device and inode.
    pub fn new(fingerprint: u64, dev: u64, ino: u64) -> FileKey {
        FileKey {
            fingerprint,
            dev,
            ino,
        }
    }

    /// The id of the event starting at `offset` in this file. Only the
    /// fingerprint enters it: the same line keeps its id across renames.
    pub fn event_id(&self, offset: u64) -> EventId {
        EventId::new(self.fingerprint, offset)
    }
}

impl fmt::Display for FileKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:016x} (dev {}, ino {})",
            self.fingerprint, self.dev, self.ino
        )
    }
}

/// The saved state of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Every line before this byte offset has been acknowledged: resume here.
    pub offset: u64,
    /// Where the file was last seen (diagnostic only; identity is the key).
    pub path: PathBuf,
    /// When the file was last seen or its offset last moved, Unix milliseconds.
    /// Entries older than the retention are garbage-collected.
    pub updated_unix_ms: u64,
}

/// How a file found on disk matched a saved checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Same fingerprint, device and inode.
    Exact {
        /// The saved offset.
        offset: u64,
    },
    /// Same fingerprint, different device or inode: the file was copied or
    /// restored. The entry should be moved to the new key with
    /// [`Checkpoints::adopt`].
    Fingerprint {
        /// The saved offset.
        offset: u64,
        /// The key the entry was saved under.
        previous: FileKey,
    },
}

impl Resume {
    /// The offset to resume at.
    pub fn offset(&self) -> u64 {
        match *self {
            Resume::Exact { offset } | Resume::Fingerprint { offset, .. } => offset,
        }
    }
}

/// Why the checkpoint file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The file exists but could not be read.
    #[error("reading checkpoint file {path} failed: {source}")]
    Read {
        /// The checkpoint file.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
    /// The file is not a checkpoint file of a known layout.
    #[error(
        "checkpoint file {path} is corrupt ({reason}); refusing to start, because starting \
         without checkpoints would ship every log file again: repair or remove the file, \
         or start once with --reset-checkpoints"
    )]
    Corrupt {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The file was written by a newer (or unknown) collector version.
    #[error(
        "checkpoint file {path} has version {found}, but this build reads only version \
         {supported}; refusing to start: run a collector that knows version {found}, \
         or start once with --reset-checkpoints"
    )]
    UnsupportedVersion {
        /// The checkpoint file.
        path: PathBuf,
        /// The `version` found in it, as JSON.
        found: String,
        /// The versions this build reads.
        supported: &'static str,
    },
    /// Writing, syncing or renaming failed; the previous file is intact.
    #[error("writing checkpoint file {path} failed: {source}")]
    Write {
        /// The file being written.
        path: PathBuf,
        /// The IO error.
        source: io::Error,
    },
}

/// The checkpoints of all known files: the pure, in-memory part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoints {
    entries: BTreeMap<FileKey, Checkpoint>,
}

impl Checkpoints {
    /// No checkpoints: every file is new.
    pub fn new() -> Checkpoints {
        Checkpoints::default()
    }

    /// Number of files with a checkpoint.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no file has a checkpoint.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The checkpoint saved under exactly this key.
    pub fn get(&self, key: &FileKey) -> Option<&Checkpoint> {
        self.entries.get(key)
    }

    /// All checkpoints, ordered by key.
    pub fn iter(&self) -> impl Iterator<Item = (&FileKey, &Checkpoint)> {
        self.entries.iter()
    }

    /// Records that every line of `key` before `offset` is acknowledged (or,
    /// with an unchanged offset, that the file is still there).
    pub fn update(&mut self, key: FileKey, offset: u64, path: &Path, now_unix_ms: u64) {
        match self.entries.get_mut(&key) {
            Some(entry) => {
                entry.offset = offset;
                if entry.path != path {
                    entry.path = path.to_path_buf();
                }
                entry.updated_unix_ms = now_unix_ms;
            }
            None => {
                self.entries.insert(
                    key,
                    Checkpoint {
                        offset,
                        path: path.to_path_buf(),
                        updated_unix_ms: now_unix_ms,
                    },
                );
            }
        }
    }

    /// Forgets a file, e.g. one whose content was truncated away.
    pub fn remove(&mut self, key: &FileKey) -> Option<Checkpoint> {
        self.entries.remove(key)
    }

    /// Where to resume a file found on disk under `key`.
    ///
    /// The exact key wins. Otherwise an entry with the same fingerprint but
    /// another device/inode is used (the file moved to a new inode), unless
    /// `in_use` says that entry's key belongs to a file that is present now;
    /// among several, the most recently updated wins.
    pub fn find_resume(&self, key: &FileKey, in_use: impl Fn(&FileKey) -> bool) -> Option<Resume> {
        if let Some(entry) = self.entries.get(key) {
            return Some(Resume::Exact {
                offset: entry.offset,
            });
        }
        let lo = FileKey::new(key.fingerprint, 0, 0);
        let hi = FileKey::new(key.fingerprint, u64::MAX, u64::MAX);
        self.entries
            .range(lo..=hi)
            .filter(|(candidate, _)| !in_use(candidate))
            // Latest update wins; on a tie the smaller key, for determinism.
            .max_by(|(ka, a), (kb, b)| a.updated_unix_ms.cmp(&b.updated_unix_ms).then(kb.cmp(ka)))
            .map(|(previous, entry)| Resume::Fingerprint {
                offset: entry.offset,
                previous: *previous,
            })
    }

    /// Moves the entry saved under `previous` to `key` (after a
    /// [`Resume::Fingerprint`] match). Does nothing if there is none.
    pub fn adopt(&mut self, previous: &FileKey, key: FileKey) {
        if let Some(entry) = self.entries.remove(previous) {
            self.entries.insert(key, entry);
        }
    }

    /// Removes the entries not updated within `retention_ms` before
    /// `now_unix_ms`; returns how many were removed.
    ///
    /// Call it only after the files present on disk have been looked at (and
    /// so updated): right after a long outage every entry is old.
    pub fn gc(&mut self, now_unix_ms: u64, retention_ms: u64) -> usize {
        let cutoff = now_unix_ms.saturating_sub(retention_ms);
        let before = self.entries.len();
        self.entries
            .retain(|_, entry| entry.updated_unix_ms >= cutoff);
        before - self.entries.len()
    }

    /// The on-disk form, current version.
    pub fn to_json(&self) -> Vec<u8> {
        let state = StateFile::V1(StateV1 {
            checkpoints: self
                .entries
                .iter()
                .map(|(key, entry)| EntryV1 {
                    fingerprint: format!("{:016x}", key.fingerprint),
                    dev: key.dev,
                    ino: key.ino,
                    offset: entry.offset,
                    path: entry.path.to_string_lossy().into_owned(),
                    updated_unix_ms: entry.updated_unix_ms,
                })
                .collect(),
        });
        // Plain structs of strings and integers: serializing cannot fail.
        let mut bytes = serde_json::to_vec(&state).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Parses the on-disk form, refusing unknown versions and bad content.
    pub fn from_json(bytes: &[u8]) -> Result<Checkpoints, FormatError> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| FormatError::Corrupt(e.to_string()))?;
        let Some(object) = value.as_object() else {
            return Err(FormatError::Corrupt("not a JSON object".to_owned()));
        };
        match object.get("version") {
            None => return Err(FormatError::Corrupt("no \"version\" field".to_owned())),
            Some(serde_json::Value::String(v)) if SUPPORTED_VERSIONS.contains(&v.as_str()) => {}
            Some(other) => return Err(FormatError::UnsupportedVersion(other.to_string())),
        }
        let state: StateFile =
            serde_json::from_value(value).map_err(|e| FormatError::Corrupt(e.to_string()))?;
        let StateFile::V1(v1) = state;
        let mut checkpoints = Checkpoints::new();
        for (index, entry) in v1.checkpoints.into_iter().enumerate() {
            let fingerprint = parse_fingerprint(&entry.fingerprint).ok_or_else(|| {
                FormatError::Corrupt(format!(
                    "checkpoint {index}: fingerprint {:?} is not 16 hex digits",
                    entry.fingerprint
                ))
            })?;
            let key = FileKey::new(fingerprint, entry.dev, entry.ino);
            let new = Checkpoint {
                offset: entry.offset,
                path: PathBuf::from(entry.path),
                updated_unix_ms: entry.updated_unix_ms,
            };
            // A key twice cannot come from `to_json`; keep the newer entry.
            let newer = checkpoints
                .entries
                .get(&key)
                .is_none_or(|old| old.updated_unix_ms <= new.updated_unix_ms);
            if newer {
                checkpoints.entries.insert(key, new);
            }
        }
        Ok(checkpoints)
    }

    /// Reads the checkpoint file at `path`.
    ///
    /// A missing file is the first start: no checkpoints. A file that cannot
    /// be read, is corrupt or has an unknown version is an error; the caller
    /// should refuse to start (see the module docs) unless the operator asked
    /// for [`Checkpoints::reset`].
    pub fn load(path: &Path) -> Result<Checkpoints, CheckpointError> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Checkpoints::new()),
            Err(source) => {
                return Err(CheckpointError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Checkpoints::from_json(&bytes).map_err(|e| match e {
            FormatError::Corrupt(reason) => CheckpointError::Corrupt {
                path: path.to_path_buf(),
                reason,
            },
            FormatError::UnsupportedVersion(found) => CheckpointError::UnsupportedVersion {
                path: path.to_path_buf(),
                found,
                supported: SUPPORTED_VERSIONS_TEXT,
            },
        })
    }

    /// Starts without checkpoints on purpose (`--reset-checkpoints`): an
    /// existing file at `path` is renamed to `<name>.reset-<unix ms>` beside
    /// it, kept for inspection, whatever its content. Files are then read
    /// according to the tailer's `read_from`.
    pub fn reset(path: &Path, now_unix_ms: u64) -> Result<Checkpoints, CheckpointError> {
        let write_err = |source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        };
        match fs::symlink_metadata(path) {
            Ok(_) => {
                let (dir, name) = split_path(path).map_err(write_err)?;
                let aside = dir.join(format!("{name}.reset-{now_unix_ms}"));
                fs::rename(path, &aside).map_err(write_err)?;
                sync_dir(dir).map_err(write_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(write_err(e)),
        }
        Ok(Checkpoints::new())
    }

    /// Writes all checkpoints to `path` atomically and durably: a temporary
    /// file `.<name>.tmp` in the same directory is written and synced, renamed
    /// over `path`, and the directory is synced. The directory must exist.
    pub fn save(&self, path: &Path) -> Result<(), CheckpointError> {
        let write_err = |source| CheckpointError::Write {
            path: path.to_path_buf(),
            source,
        };
        let (dir, name) = split_path(path).map_err(write_err)?;
        let tmp = dir.join(format!(".{name}.tmp"));
        let bytes = self.to_json();
        let result = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp, path)?;
            sync_dir(dir)
        })();
        if result.is_err() {
            // Best effort: the old checkpoint file is untouched either way.
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(write_err)
    }
}

/// Why bytes are not a checkpoint file (without the file's path; see
/// [`CheckpointError`] for the error with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// Not JSON, or not the layout of its version.
    #[error("corrupt checkpoint file: {0}")]
    Corrupt(String),
    /// A `version` this build does not know.
    #[error("unsupported checkpoint file version {0}")]
    UnsupportedVersion(String),
}

/// The `version` values this build reads.
const SUPPORTED_VERSIONS: &[&str] = &["1"];
const SUPPORTED_VERSIONS_TEXT: &str = "\"1\"";

/// The versioned file layout. Add a variant for a new layout and migrate on
/// load; never change an existing variant.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "version")]
enum StateFile {
    #[serde(rename = "1")]
    V1(StateV1),
}

#[derive(Debug, Serialize, Deserialize)]
struct StateV1 {
    checkpoints: Vec<EntryV1>,
}

#[derive(Debug, Serialize, Deserialize)]
struct EntryV1 {
    /// 16 lowercase hex digits.
    fingerprint: String,
    dev: u64,
    ino: u64,
    offset: u64,
    path: String,
    updated_unix_ms: u64,
}

fn parse_fingerprint(text: &str) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// The directory and file name of `path`.
fn split_path(path: &Path) -> io::Result<(&Path, String)> {
    let name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "checkpoint path has no file name",
        )
    })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    Ok((dir, name.to_string_lossy().into_owned()))
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fp: u64, ino: u64) -> FileKey {
        FileKey::new(fp, 1, ino)
    }

    fn with(entries: &[(FileKey, u64, u64)]) -> Checkpoints {
        let mut c = Checkpoints::new();
        for &(k, offset, updated) in entries {
            c.update(k, offset, Path::new("/p"), updated);
        }
        c
    }

    #[test]
    fn find_resume_table() {
        let a = key(0xa, 10);
        let a_moved = key(0xa, 11);
        let a_other = key(0xa, 12);
        let b = key(0xb, 10);
        let none = |_: &FileKey| false;
        // (entries, lookup, in_use, expected)
        type InUse = fn(&FileKey) -> bool;
        type Entries = Vec<(FileKey, u64, u64)>;
        let cases: Vec<(Entries, FileKey, InUse, Option<Resume>)> = vec![
            (vec![], a, none, None),
            (
                vec![(a, 100, 1)],
                a,
                none,
                Some(Resume::Exact { offset: 100 }),
            ),
            // Exact key wins over a newer fingerprint match.
            (
                vec![(a, 100, 1), (a_other, 200, 9)],
                a,
                none,
                Some(Resume::Exact { offset: 100 }),
            ),
            // Inode changed (copied/restored): fingerprint match.
            (
                vec![(a, 100, 1)],
                a_moved,
                none,
                Some(Resume::Fingerprint {
                    offset: 100,
                    previous: a,
                }),
            ),
            // Among fingerprint matches the most recently updated wins.
            (
                vec![(a, 100, 1), (a_other, 200, 5)],
                a_moved,
                none,
                Some(Resume::Fingerprint {
                    offset: 200,
                    previous: a_other,
                }),
            ),
            // A match whose file is present (in use) is not taken.
            (
                vec![(a, 100, 1), (a_other, 200, 5)],
                a_moved,
                |k| k.ino == 12,
                Some(Resume::Fingerprint {
                    offset: 100,
                    previous: a,
                }),
            ),
            (vec![(a, 100, 1)], a_moved, |_| true, None),
            // Inode reuse: same inode, other content: no match.
            (vec![(a, 100, 1)], b, none, None),
        ];
        for (i, (entries, lookup, in_use, want)) in cases.into_iter().enumerate() {
            let c = with(&entries);
            assert_eq!(c.find_resume(&lookup, in_use), want, "case {i}");
        }
    }

    #[test]
    fn adopt_moves_the_entry() {
        let mut c = with(&[(key(1, 1), 50, 7)]);
        c.adopt(&key(1, 1), key(1, 2));
        assert!(c.get(&key(1, 1)).is_none());
        assert_eq!(c.get(&key(1, 2)).map(|e| e.offset), Some(50));
        c.adopt(&key(9, 9), key(9, 8));
        assert_eq!(c.len(), 1);
    }

    #[test]
    fn gc_table() {
        // (updated, now, retention, kept)
        let cases = [
            (1_000, 1_000, 0, true),
            (999, 1_000, 0, false),
            (500, 1_000, 500, true),
            (499, 1_000, 500, false),
            (0, 10, 1_000, true),
        ];
        for (i, (updated, now, retention, kept)) in cases.into_iter().enumerate() {
            let mut c = with(&[(key(1, 1), 5, updated)]);
            let removed = c.gc(now, retention);
            assert_eq!(
                (c.len() == 1, removed),
                (kept, usize::from(!kept)),
                "case {i}"
            );
        }
    }

    #[test]
    fn update_overwrites_offset_path_and_time() {
        let mut c = Checkpoints::new();
        c.update(key(1, 1), 10, Path::new("/a/0.log"), 1);
        c.update(key(1, 1), 20, Path::new("/a/0.log.20261127-201729"), 2);
        let e = c.get(&key(1, 1)).cloned();
        assert_eq!(
            e,
            Some(Checkpoint {
                offset: 20,
                path: PathBuf::from("/a/0.log.20261127-201729"),
                updated_unix_ms: 2
            })
        );
    }

    #[test]
    fn json_round_trip_keeps_everything() {
        let mut c = Checkpoints::new();
        c.update(
            FileKey::new(u64::MAX, u64::MAX, 3),
            1 << 60,
            Path::new("/x/0.log"),
            42,
        );
        c.update(
            FileKey::new(0x00c0ffee, 2049, 77),
            0,
            Path::new("/y/1.log"),
            43,
        );
        let json = c.to_json();
        let text = String::from_utf8(json.clone()).unwrap();
        assert!(text.starts_with("{\"version\":\"1\""), "{text}");
        assert!(
            text.contains("\"fingerprint\":\"0000000000c0ffee\""),
            "{text}"
        );
        assert_eq!(Checkpoints::from_json(&json).unwrap(), c);
    }

    #[test]
    fn from_json_rejects_bad_files_with_reasons() {
        let cases: &[(&str, &str)] = &[
            ("", "corrupt"),
            ("{\"version\":\"1\",\"checkpoints\":[", "corrupt"),
            ("[]", "corrupt"),
            ("{\"checkpoints\":[]}", "corrupt"),
            ("{\"version\":\"2\",\"checkpoints\":[]}", "unsupported"),
            ("{\"version\":1,\"checkpoints\":[]}", "unsupported"),
            ("{\"version\":\"1\"}", "corrupt"),
            (
                "{\"version\":\"1\",\"checkpoints\":[{\"fingerprint\":\"xyz\",\"dev\":1,\"ino\":1,\
                 \"offset\":1,\"path\":\"/p\",\"updated_unix_ms\":1}]}",
                "corrupt",
            ),
            (
                "{\"version\":\"1\",\"checkpoints\":[{\"fingerprint\":\"0000000000000001\",\
                 \"dev\":1,\"ino\":1,\"offset\":-1,\"path\":\"/p\",\"updated_unix_ms\":1}]}",
                "corrupt",
            ),
        ];
        for (input, want) in cases {
            let got = Checkpoints::from_json(input.as_bytes());
            let kind = match &got {
                Err(FormatError::Corrupt(_)) => "corrupt",
                Err(FormatError::UnsupportedVersion(_)) => "unsupported",
                Ok(_) => "ok",
            };
            assert_eq!(kind, *want, "{input:?} gave {got:?}");
        }
        assert_eq!(
            Checkpoints::from_json(b"{\"version\":\"1\",\"checkpoints\":[]}"),
            Ok(Checkpoints::new())
        );
    }

    #[test]
    fn checkpoint_file_save_load_and_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        assert_eq!(Checkpoints::load(&path).unwrap(), Checkpoints::new());
        let c = with(&[(key(1, 1), 10, 1), (key(2, 2), 20, 2)]);
        c.save(&path).unwrap();
        assert_eq!(Checkpoints::load(&path).unwrap(), c);
        // Overwrite; no temporary file is left behind.
        let c2 = with(&[(key(3, 3), 30, 3)]);
        c2.save(&path).unwrap();
        assert_eq!(Checkpoints::load(&path).unwrap(), c2);
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["checkpoints.json".to_owned()]);
    }

    #[test]
    fn corrupt_checkpoint_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoints.json");
        fs::write(&path, b"{\"version\":\"1\",\"checkpoints\":[{\"fing").unwrap();
        let err = Checkpoints::load(&path).unwrap_err();
        assert!(matches!(err, CheckpointError::Corrupt { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("checkpoints.json"), "{text}");
        assert!(text.contains("is corrupt"), "{text}");
        assert!(text.contains("--reset-checkpoints"), "{text}");

        fs::write(&path, b"{\"version\":\"7\"}").unwrap();
        let err = Checkpoints::load(&path).unwrap_err();
        assert!(
            matches!(err, CheckpointError::UnsupportedVersion { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("version \"7\""), "{err}");

        // Reset moves the bad file aside and starts empty; then load works.
        let reset = Checkpoints::reset(&path, 1234).unwrap();
        assert!(reset.is_empty());
        assert!(!path.exists());
        assert!(dir.path().join("checkpoints.json.reset-1234").exists());
        assert_eq!(Checkpoints::load(&path).unwrap(), Checkpoints::new());
        // Reset without a file is fine too.
        assert!(Checkpoints::reset(&path, 1235).unwrap().is_empty());
    }

    #[test]
    fn save_into_missing_directory_fails_without_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("checkpoints.json");
        let err = with(&[(key(1, 1), 1, 1)]).save(&path).unwrap_err();
        assert!(matches!(err, CheckpointError::Write { .. }), "{err:?}");
    }

    #[test]
    fn file_key_event_id_uses_only_the_fingerprint() {
        let a = FileKey::new(0x3f2a9c0d1e4b5a67, 1, 2);
        let b = FileKey::new(0x3f2a9c0d1e4b5a67, 3, 4);
        assert_eq!(a.event_id(500), b.event_id(500));
        assert_eq!(a.event_id(500).to_string(), "3f2a9c0d1e4b5a67-1f4");
    }
}
