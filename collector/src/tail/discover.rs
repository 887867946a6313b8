//! Finding the files to tail: include globs minus exclude globs.

use std::io;
use std::path::{Path, PathBuf};

use glob::{MatchOptions, Pattern};

/// Why a glob pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {which} glob pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// `include` or `exclude`.
    pub which: &'static str,
    /// The pattern as configured.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Compiled include and exclude patterns.
#[derive(Debug)]
pub(crate) struct Discovery {
    include: Vec<String>,
    exclude: Vec<Exclude>,
}

#[derive(Debug)]
struct Exclude {
    pattern: Pattern,
    /// No `/` in the pattern: match the file name only.
    name_only: bool,
}

/// Include patterns walk directory by directory: `*` stops at `/`.
const INCLUDE_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

/// Exclude patterns with a `/` match whole paths, where `*` may cross `/`.
const EXCLUDE_OPTIONS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: false,
    require_literal_leading_dot: false,
};

impl Discovery {
    /// Compiles the patterns, refusing invalid ones.
    pub(crate) fn new(include: &[String], exclude: &[String]) -> Result<Discovery, PatternError> {
        for pattern in include {
            Pattern::new(pattern).map_err(|e| PatternError {
                which: "include",
                pattern: pattern.clone(),
                reason: e.to_string(),
            })?;
        }
        let exclude = exclude
            .iter()
            .map(|p| {
                Ok(Exclude {
                    pattern: Pattern::new(p).map_err(|e| PatternError {
                        which: "exclude",
                        pattern: p.clone(),
                        reason: e.to_string(),
                    })?,
                    name_only: !p.contains('/'),
                })
            })
            .collect::<Result<_, PatternError>>()?;
        Ok(Discovery {
            include: include.to_vec(),
            exclude,
        })
    }

    /// Whether an exclude pattern matches `path`.
    pub(crate) fn is_excluded(&self, path: &Path) -> bool {
        self.exclude.iter().any(|ex| {
            if ex.name_only {
                path.file_name().is_some_and(|name| {
                    ex.pattern
                        .matches_path_with(Path::new(name), EXCLUDE_OPTIONS)
                })
            } else {
                ex.pattern.matches_path_with(path, EXCLUDE_OPTIONS)
            }
        })
    }

    /// Every path matching an include and no exclude pattern, in pattern
    /// order, each pattern's matches sorted. Unreadable directories are
    /// reported to `on_error` and skipped.
    pub(crate) fn list(&self, mut on_error: impl FnMut(&Path, &io::Error)) -> Vec<PathBuf> {
        let mut paths = Vec::new();
        for pattern in &self.include {
            let Ok(matches) = glob::glob_with(pattern, INCLUDE_OPTIONS) else {
                // Validated in `new`.
                continue;
            };
            for entry in matches {
                match entry {
                    Ok(path) if !self.is_excluded(&path) => paths.push(path),
                    Ok(_) => {}
                    Err(e) => on_error(e.path(), e.error()),
                }
            }
        }
        paths
    }
}

/// Whether the name looks like a rotated file (`0.log.20261127-201729`,
/// docker's `<id>-json.log.1`): its writer has moved on, so it is drained
/// before live files and its unterminated last line may be flushed.
pub(crate) fn looks_rotated(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|name| name.contains(".log."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exclude_table() {
        let d = Discovery::new(
            &strings(&["/var/log/pods/*/*/*.log*"]),
            &strings(&["*.gz", "*.tmp", "/var/log/pods/kube-system_*"]),
        )
        .unwrap();
        let cases = [
            ("/var/log/pods/ns_p_u/c/0.log", false),
            ("/var/log/pods/ns_p_u/c/0.log.20261127-201729", false),
            ("/var/log/pods/ns_p_u/c/0.log.20261127-201729.gz", true),
            ("/var/log/pods/ns_p_u/c/0.log.20261127-201729.tmp", true),
            ("/var/log/pods/kube-system_x_u/c/0.log", true),
            ("/var/log/pods/ns_p_u/gz/0.log", false),
        ];
        for (path, excluded) in cases {
            assert_eq!(d.is_excluded(Path::new(path)), excluded, "{path}");
        }
    }

    #[test]
    fn looks_rotated_table() {
        let cases = [
            ("/p/0.log", false),
            ("/p/0.log.20261127-201729", true),
            ("/p/abc-json.log.1", true),
            ("/p/catalog.txt", false),
        ];
        for (path, rotated) in cases {
            assert_eq!(looks_rotated(Path::new(path)), rotated, "{path}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        let err = Discovery::new(&strings(&["/a/[*.log"]), &[]).unwrap_err();
        assert_eq!(err.which, "include");
        let err = Discovery::new(&strings(&["/a/*.log"]), &strings(&["[z"])).unwrap_err();
        assert_eq!(err.which, "exclude");
    }

    #[test]
    fn list_finds_live_and_rotated_but_not_compressed() {
        let dir = tempfile::tempdir().unwrap();
        let ctr = dir.path().join("pods/ns_pod_uid/app");
        std::fs::create_dir_all(&ctr).unwrap();
        for name in [
            "0.log",
            "0.log.20261127-201729",
            "0.log.20261127-191729.gz",
            "x.tmp",
        ] {
            std::fs::write(ctr.join(name), b"x\n").unwrap();
        }
        let include = format!("{}/pods/*/*/*.log*", dir.path().display());
        let d = Discovery::new(&[include], &strings(&["*.gz", "*.tmp"])).unwrap();
        let found = d.list(|p, e| panic!("{}: {e}", p.display()));
        assert_eq!(
            found,
            vec![ctr.join("0.log"), ctr.join("0.log.20261127-201729")]
        );
    }
}
