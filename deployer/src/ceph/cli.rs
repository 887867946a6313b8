//! The `ceph` and `rbd` command-line tools as child processes: kelp talks
//! to Ceph only through them (they must be installed where kelp runs,
//! Debian's `ceph-common`), always with `--format json` where there is
//! output to read, and with Ceph's own timeouts so an unreachable cluster
//! fails instead of hanging.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::CephKey;

/// A failed `ceph`/`rbd` invocation.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The program is not installed.
    #[error(
        "running `{program}` failed: it is not installed on this machine \
         (Debian/Ubuntu: apt-get install ceph-common; RHEL: dnf install ceph-common)"
    )]
    Missing {
        /// `ceph` or `rbd`.
        program: &'static str,
    },
    /// The program could not be started.
    #[error("running `{program}` failed: {cause}")]
    Spawn {
        /// `ceph` or `rbd`.
        program: &'static str,
        /// Why.
        cause: std::io::Error,
    },
    /// It ran and exited non-zero.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line, without secrets.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr (Ceph's own reason), trimmed.
        stderr: String,
        /// The errno Ceph named (`ENOENT`), if any.
        errno: Option<String>,
    },
    /// The temporary keyring for a client key could not be written.
    #[error("writing a temporary keyring for {name} failed: {cause}")]
    Keyring {
        /// The client.
        name: String,
        /// Why.
        cause: std::io::Error,
    },
}

impl CliError {
    /// Whether Ceph said the thing does not exist (`ENOENT`).
    pub fn is_not_found(&self) -> bool {
        matches!(self, CliError::Failed { errno: Some(e), .. } if e == "ENOENT")
    }

    /// Whether Ceph refused for lack of caps (`EACCES`/`EPERM`).
    pub fn is_denied(&self) -> bool {
        matches!(self, CliError::Failed { errno: Some(e), stderr, .. }
            if e == "EACCES" || e == "EPERM")
            || matches!(self, CliError::Failed { stderr, .. }
            if stderr.contains("(13) Permission denied") || stderr.contains("(1) Operation not permitted"))
    }

    /// Whether the monitors refused the key (wrong key, or no such client).
    pub fn is_auth_failure(&self) -> bool {
        matches!(self, CliError::Failed { stderr, .. }
            if stderr.to_lowercase().contains("permission denied (error connecting to the cluster)")
                || stderr.contains("handle_auth_bad_method"))
    }

    /// Whether the cluster did not answer in time.
    pub fn is_timeout(&self) -> bool {
        matches!(self, CliError::Failed { stderr, .. }
            if stderr.contains("timed out") || stderr.contains("(110)"))
    }
}

/// Who the commands run as: a Ceph entity and its keyring file.
#[derive(Debug)]
pub struct Identity {
    /// `client.admin`, `client.kelp`.
    pub name: String,
    keyring: PathBuf,
    // Keeps a generated keyring alive (and deletes it on drop).
    _temp: Option<tempfile::NamedTempFile>,
}

impl Identity {
    /// An entity whose keyring file exists (the admin's).
    pub fn from_keyring(name: &str, keyring: &Path) -> Identity {
        Identity {
            name: name.to_owned(),
            keyring: keyring.to_owned(),
            _temp: None,
        }
    }

    /// A client known only by its key: kelp writes a keyring readable only
    /// by the current user, removed when this value is dropped.
    pub fn from_key(name: &str, key: &CephKey) -> Result<Identity, CliError> {
        let error = |cause| CliError::Keyring {
            name: name.to_owned(),
            cause,
        };
        let mut file = tempfile::Builder::new()
            .prefix("kelp-ceph-")
            .suffix(".keyring")
            .tempfile()
            .map_err(error)?;
        file.write_all(keyring_text(name, key).as_bytes())
            .and_then(|()| file.flush())
            .map_err(error)?;
        Ok(Identity {
            name: name.to_owned(),
            keyring: file.path().to_owned(),
            _temp: Some(file),
        })
    }
}

/// A keyring file with one entity.
pub fn keyring_text(name: &str, key: &CephKey) -> String {
    format!("[{name}]\n\tkey = {}\n", key.expose())
}

/// `ceph`/`rbd` against one cluster.
#[derive(Debug, Clone)]
pub struct Cli {
    /// The cluster's ceph.conf.
    pub conf: PathBuf,
    /// How long Ceph may look for a monitor, in seconds.
    pub timeout_secs: u32,
}

impl Cli {
    /// `ceph <args> --format json` as `who`; stdout on success.
    pub fn ceph(&self, who: &Identity, args: &[&str]) -> Result<String, CliError> {
        let timeout = self.timeout_secs.to_string();
        let mut all = vec!["--connect-timeout", &timeout];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--format", "json"]);
        self.run("ceph", who, &all)
    }

    /// `rbd <args>` as `who`; stdout on success.
    pub fn rbd(&self, who: &Identity, args: &[&str]) -> Result<String, CliError> {
        let mount = format!("--client_mount_timeout={}", self.timeout_secs);
        let op = format!("--rados_mon_op_timeout={}", self.timeout_secs);
        let mut all = vec![mount.as_str(), op.as_str()];
        all.extend_from_slice(args);
        self.run("rbd", who, &all)
    }

    fn run(
        &self,
        program: &'static str,
        who: &Identity,
        args: &[&str],
    ) -> Result<String, CliError> {
        let conf = self.conf.to_string_lossy();
        let keyring = who.keyring.to_string_lossy();
        let mut argv = vec!["-c", &conf, "-n", &who.name, "-k", &keyring];
        argv.extend_from_slice(args);
        tracing::debug!(%program, args = ?argv, "running");
        let output = Command::new(program)
            .args(&argv)
            // The ceph CLI is Python: a virtualenv's settings must not leak in.
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH")
            .output()
            .map_err(|cause| match cause.kind() {
                std::io::ErrorKind::NotFound => CliError::Missing { program },
                _ => CliError::Spawn { program, cause },
            })?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let stderr = clean_stderr(&String::from_utf8_lossy(&output.stderr));
        Err(CliError::Failed {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            errno: errno(&stderr),
            stderr,
        })
    }
}

/// Ceph's stderr without the lines that are noise for a user (the keyring
/// search before `-k` applies, blank lines), joined on one line.
pub fn clean_stderr(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.contains("unable to find a keyring on")
                && !line.contains("no keyring found at")
        })
        .collect();
    let text = lines.join(" / ");
    if text.is_empty() {
        "no output on stderr".to_owned()
    } else {
        text
    }
}

/// `Error ENOENT: ...` -> `ENOENT`.
pub fn errno(stderr: &str) -> Option<String> {
    stderr.split(" / ").find_map(|line| {
        let rest = line.strip_prefix("Error ")?;
        let code = rest.split(':').next()?;
        (code.starts_with('E') && code.chars().all(|c| c.is_ascii_uppercase()))
            .then(|| code.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_cleaned_and_errno_found() {
        let cases = [
            (
                "2026-11-27T23:20:42.031+0000 7f35 -1 auth: unable to find a keyring on /etc/ceph/ceph.client.kelp.keyring: (2) No such file or directory\n\nError ENOENT: unrecognized pool 'nope'\n",
                "Error ENOENT: unrecognized pool 'nope'",
                Some("ENOENT"),
            ),
            (
                "Error EACCES: access denied\n",
                "Error EACCES: access denied",
                Some("EACCES"),
            ),
            (
                "rbd: couldn't connect to the cluster!\nrbd: listing images failed: (110) Connection timed out\n",
                "rbd: couldn't connect to the cluster! / rbd: listing images failed: (110) Connection timed out",
                None,
            ),
            ("", "no output on stderr", None),
            ("Error opening: x\n", "Error opening: x", None),
        ];
        for (stderr, want, want_errno) in cases {
            let got = clean_stderr(stderr);
            assert_eq!(got, want);
            assert_eq!(errno(&got).as_deref(), want_errno, "{stderr}");
        }
    }

    #[test]
    fn failures_are_classified() {
        let failed = |stderr: &str| CliError::Failed {
            command: "ceph x".to_owned(),
            status: "exit status: 1".to_owned(),
            errno: errno(stderr),
            stderr: stderr.to_owned(),
        };
        // (stderr, not found, denied, auth failure, timeout)
        let cases = [
            (
                "Error ENOENT: unrecognized pool 'nope'",
                true,
                false,
                false,
                false,
            ),
            ("Error EACCES: access denied", false, true, false, false),
            (
                "rbd: create error: (1) Operation not permitted",
                false,
                true,
                false,
                false,
            ),
            (
                "monclient(hunting): handle_auth_bad_method server allowed_methods [2] but i only support [2] / [errno 13] RADOS permission denied (error connecting to the cluster)",
                false,
                false,
                true,
                false,
            ),
            (
                "rbd: listing images failed: (110) Connection timed out",
                false,
                false,
                false,
                true,
            ),
            ("timed out", false, false, false, true),
        ];
        for (stderr, not_found, denied, auth, timeout) in cases {
            let error = failed(stderr);
            assert_eq!(error.is_not_found(), not_found, "{stderr}");
            assert_eq!(error.is_denied(), denied, "{stderr}");
            assert_eq!(error.is_auth_failure(), auth, "{stderr}");
            assert_eq!(error.is_timeout(), timeout, "{stderr}");
        }
    }

    #[test]
    fn a_client_key_becomes_a_keyring() {
        let key = CephKey::new("AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ==".to_owned());
        assert_eq!(
            keyring_text("client.kelp", &key),
            "[client.kelp]\n\tkey = AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ==\n"
        );
        let identity = Identity::from_key("client.kelp", &key).unwrap();
        let text = std::fs::read_to_string(&identity.keyring).unwrap();
        assert!(text.contains("AQA9"), "{text}");
        let path = identity.keyring.clone();
        drop(identity);
        assert!(
            !path.exists(),
            "the temporary keyring outlived its identity"
        );
    }
}
