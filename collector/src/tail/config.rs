//! The tailer's settings.

use serde::{Deserialize, Serialize};

/// Where to start a file that has no checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadFrom {
    /// From its first byte: a container's first lines matter.
    #[default]
    Beginning,
    /// From the start of the line after its last complete line. Applies only
    /// to files found by the tailer's first scan; files appearing later (new
    /// containers, the new `N.log` after a rotation) are always read from
    /// the beginning, or lines would be lost.
    End,
}

/// Settings of the [`crate::tail::Tailer`]. Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailConfig {
    /// Glob patterns of the files to tail. Both the live `N.log` and the
    /// kubelet's rotated `N.log.<timestamp>` must match, so an unread rotated
    /// file is still drained after a restart.
    pub include: Vec<String>,
    /// Glob patterns of files to skip. A pattern without `/` is matched
    /// against the file name, one with `/` against the whole path (there `*`
    /// also matches `/`).
    pub exclude: Vec<String>,
    /// How often the globs are expanded again to find new, renamed and
    /// deleted files, in milliseconds. Each scan also re-reads the head of
    /// every tailed file to detect copy-truncation.
    pub glob_interval_ms: u64,
    /// How long the driver sleeps when a poll found nothing, in milliseconds
    /// (the tailer polls; it does not use inotify, which misses events on
    /// some file systems).
    pub poll_interval_ms: u64,
    /// Where to start files without a checkpoint.
    pub read_from: ReadFrom,
    /// Longest line handed out whole; longer lines are cut to this many bytes
    /// and flagged `truncated`, the rest skipped up to the next newline.
    pub max_line_bytes: usize,
    /// Size of one read from a file.
    pub read_chunk_bytes: usize,
    /// Most bytes read from one file in one poll, so one busy file cannot
    /// starve the others. A poll may exceed it to finish a line already
    /// started (by at most `max_line_bytes + read_chunk_bytes`).
    pub max_read_bytes_per_file: usize,
    /// Most lines of one file handed out and not yet acknowledged; at the
    /// limit the file is not read until acks arrive. Bounds the ack
    /// bookkeeping per file and, with one busy file, the collector's memory.
    /// Default 16384: on the benchmark corpus it cost no throughput against
    /// 65536 and halved peak RSS (117-128 to 57-59 MiB, docs/PERFORMANCE.md).
    pub max_in_flight_lines_per_file: usize,
    /// How long a deleted (or no longer matched) file is kept open, once all
    /// its lines were read, waiting for their acknowledgement, in
    /// milliseconds. Released afterwards with a counted event.
    pub deleted_file_grace_ms: u64,
    /// If set, a deleted file that is still not drained after this many
    /// milliseconds is released anyway (unread lines lost, counted), so a
    /// stalled pipeline cannot pin deleted files on a full disk forever. Not
    /// set by default: a rotated file is drained before release.
    pub deleted_file_max_hold_ms: Option<u64>,
    /// How long a rotated or deleted file must be unchanged before its last
    /// line, if it has no newline, is handed out as it is, in milliseconds.
    /// The live file's unterminated line always waits for its newline.
    pub rotated_flush_ms: u64,
    /// Checkpoints of files not seen for this long are forgotten, in
    /// milliseconds.
    pub checkpoint_retention_ms: u64,
}

impl Default for TailConfig {
    fn default() -> TailConfig {
        TailConfig {
            include: vec!["/var/log/pods/*/*/*.log*".to_owned()],
            exclude: vec!["*.gz".to_owned(), "*.tmp".to_owned()],
            glob_interval_ms: 1_000,
            poll_interval_ms: 250,
            read_from: ReadFrom::Beginning,
            max_line_bytes: 256 * 1024,
            read_chunk_bytes: 64 * 1024,
            max_read_bytes_per_file: 1024 * 1024,
            max_in_flight_lines_per_file: 16 * 1024,
            deleted_file_grace_ms: 5 * 60 * 1_000,
            deleted_file_max_hold_ms: None,
            rotated_flush_ms: 5_000,
            checkpoint_retention_ms: 7 * 24 * 60 * 60 * 1_000,
        }
    }
}

impl TailConfig {
    /// Checks the values that would make the tailer misbehave.
    pub fn validate(&self) -> Result<(), String> {
        if self.include.is_empty() {
            return Err("tail.include is empty: no file would be read".to_owned());
        }
        let positive = [
            ("max_line_bytes", self.max_line_bytes),
            ("read_chunk_bytes", self.read_chunk_bytes),
            ("max_read_bytes_per_file", self.max_read_bytes_per_file),
            (
                "max_in_flight_lines_per_file",
                self.max_in_flight_lines_per_file,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("tail.{name} must be at least 1"));
            }
        }
        super::discover::Discovery::new(&self.include, &self.exclude)
            .map_err(|error| error.to_string())?;
        Ok(())
    }

    /// The settings a running tailer takes from a reloaded config `file`:
    /// all of them except three that keep their running values until a
    /// restart. `max_line_bytes` and `read_chunk_bytes` shape the line being
    /// read (a long line may be half skipped), and `read_from` applies only
    /// to the first scan.
    pub fn reloaded(&self, file: &TailConfig) -> TailConfig {
        TailConfig {
            max_line_bytes: self.max_line_bytes,
            read_chunk_bytes: self.read_chunk_bytes,
            read_from: self.read_from,
            ..file.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let c = TailConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.include, vec!["/var/log/pods/*/*/*.log*"]);
        assert_eq!(c.poll_interval_ms, 250);
        assert_eq!(c.read_from, ReadFrom::Beginning);
    }

    #[test]
    fn validate_table() {
        type Change = fn(&mut TailConfig);
        let cases: Vec<(Change, bool)> = vec![
            (|_| {}, true),
            (|c| c.include.clear(), false),
            (|c| c.max_line_bytes = 0, false),
            (|c| c.read_chunk_bytes = 0, false),
            (|c| c.max_read_bytes_per_file = 0, false),
            (|c| c.max_in_flight_lines_per_file = 0, false),
            (|c| c.exclude.clear(), true),
            (|c| c.include = vec!["/var/log/[".to_owned()], false),
        ];
        for (i, (change, ok)) in cases.into_iter().enumerate() {
            let mut c = TailConfig::default();
            change(&mut c);
            assert_eq!(c.validate().is_ok(), ok, "case {i}");
        }
    }

    #[test]
    fn reloaded_keeps_the_fields_that_shape_reading() {
        let running = TailConfig::default();
        let file = TailConfig {
            include: vec!["/other/*.log".to_owned()],
            poll_interval_ms: 10,
            max_line_bytes: 1,
            read_chunk_bytes: 1,
            read_from: ReadFrom::End,
            ..TailConfig::default()
        };
        let applied = running.reloaded(&file);
        assert_eq!(applied.include, file.include);
        assert_eq!(applied.poll_interval_ms, 10);
        assert_eq!(applied.max_line_bytes, running.max_line_bytes);
        assert_eq!(applied.read_chunk_bytes, running.read_chunk_bytes);
        assert_eq!(applied.read_from, ReadFrom::Beginning);
    }

    #[test]
    fn config_deserializes_with_defaults_and_rejects_unknown_fields() {
        let c: TailConfig =
            serde_json::from_str(r#"{"read_from":"end","max_line_bytes":100}"#).unwrap();
        assert_eq!(c.read_from, ReadFrom::End);
        assert_eq!(c.max_line_bytes, 100);
        assert_eq!(c.glob_interval_ms, TailConfig::default().glob_interval_ms);
        assert!(serde_json::from_str::<TailConfig>(r#"{"nope":1}"#).is_err());
    }
}
