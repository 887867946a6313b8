//! Ceph RBD storage for the stack (`kelp storage rbd`): creates or verifies
//! the pool and a restricted client, checks that ceph-csi will be able to
//! use them (the preflight), and hands the facts the ceph-csi objects need
//! (fsid, monitors, client key) to [`crate::manifests::ceph_csi`].
//!
//! Pure parsers live in `json` (CLI output), `caps` (is a client allowed
//! enough) and `conf` (monitors of a ceph.conf); `cli` runs the `ceph` and
//! `rbd` tools; `kube` is the Kubernetes side (apply, driver check);
//! `driver` pins the ceph-csi release kelp installs and places its files
//! (pure), `install` downloads, verifies and applies them.

pub mod caps;
pub mod cli;
pub mod conf;
pub mod driver;
pub mod install;
pub mod json;
pub mod kube;

use std::fmt;
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use cli::{Cli, CliError, Identity};
use json::ParseError;

/// A Ceph secret key: shown as `<redacted>` in logs and debug output.
#[derive(Clone, PartialEq, Eq)]
pub struct CephKey(String);

impl CephKey {
    /// Wraps a key (base64, as `ceph auth get-key` prints it).
    pub fn new(key: String) -> CephKey {
        CephKey(key.trim().to_owned())
    }

    /// The key itself, for the Secret and the keyring file only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CephKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CephKey(<redacted>)")
    }
}

/// What went wrong, each with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum CephError {
    /// A file could not be read.
    #[error("reading {what} {path} failed: {cause}")]
    Read {
        /// What the file is (`ceph.conf`).
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// The ceph.conf is unusable.
    #[error("reading the monitors from {path} failed: {cause}")]
    Conf {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        cause: conf::ConfError,
    },
    /// No monitor accepted a TCP connection.
    #[error(
        "checking the monitors failed: none is reachable ({details}); check that the monitors \
         run and that this machine (and every Kubernetes node) may reach them on ports 3300 \
         and 6789, and that `mon host` in the ceph.conf is right"
    )]
    Unreachable {
        /// Each monitor and why.
        details: String,
    },
    /// A `ceph`/`rbd` command failed.
    #[error("{step} failed: {cause}{hint}")]
    Cli {
        /// The step, e.g. `reading the fsid`.
        step: String,
        /// The command's failure.
        cause: Box<CliError>,
        /// What to do (may be empty).
        hint: String,
    },
    /// A command printed something kelp cannot read.
    #[error("{step} failed: {cause}")]
    Parse {
        /// The step.
        step: String,
        /// What was wrong.
        cause: ParseError,
    },
    /// The pool does not exist and kelp may not create it.
    #[error(
        "checking pool {pool} failed: it does not exist; create it with `ceph osd pool create \
         {pool} && rbd pool init {pool}`, or run kelp storage rbd with --keyring (the admin's) \
         so kelp creates it"
    )]
    PoolMissing {
        /// The pool.
        pool: String,
    },
    /// The pool is not an RBD pool.
    #[error(
        "checking pool {pool} failed: the rbd application is not enabled on it (it has: \
         {applications}); run `rbd pool init {pool}`, or pick another pool with --pool"
    )]
    PoolNotRbd {
        /// The pool.
        pool: String,
        /// Its applications.
        applications: String,
    },
    /// The client's caps do not let ceph-csi work.
    #[error(
        "checking the caps of {client} failed: {problems}; fix with `ceph auth caps {client} {fix}`"
    )]
    Caps {
        /// The client.
        client: String,
        /// What is missing, one per service.
        problems: String,
        /// The caps to set.
        fix: String,
    },
    /// The client does not exist and kelp may not create it.
    #[error(
        "checking client {client} failed: it does not exist; create it with `ceph auth \
         get-or-create {client} {fix}` or run kelp storage rbd with --keyring (the admin's)"
    )]
    ClientMissing {
        /// The client.
        client: String,
        /// The caps it needs.
        fix: String,
    },
}

impl CephError {
    fn cli(step: impl Into<String>, cause: CliError) -> CephError {
        let hint = if cause.is_auth_failure() {
            "; the monitors refused the key: check that the client exists (`ceph auth ls`) and \
             that the key file holds what `ceph auth get-key <client>` prints"
                .to_owned()
        } else if cause.is_timeout() {
            "; the monitors did not answer: check that they run and are reachable".to_owned()
        } else if cause.is_denied() {
            "; the client lacks the caps for this: see `ceph auth get <client>`".to_owned()
        } else {
            String::new()
        };
        CephError::Cli {
            step: step.into(),
            cause: Box::new(cause),
            hint,
        }
    }

    fn parse(step: impl Into<String>, cause: ParseError) -> CephError {
        CephError::Parse {
            step: step.into(),
            cause,
        }
    }
}

/// `client.kelp` from `kelp` or `client.kelp`.
pub fn entity_name(client: &str) -> String {
    if client.starts_with("client.") {
        client.to_owned()
    } else {
        format!("client.{client}")
    }
}

/// `kelp` from `client.kelp`: ceph-csi's `userID`.
pub fn user_id(client: &str) -> &str {
    client.strip_prefix("client.").unwrap_or(client)
}

/// One Ceph cluster as kelp reaches it.
#[derive(Debug)]
pub struct Cluster {
    cli: Cli,
    conf_path: PathBuf,
}

/// What ceph-csi needs to know about the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterFacts {
    /// `ceph fsid`: ceph-csi's `clusterID`.
    pub fsid: String,
    /// Monitors' v1 addresses, `ip:port`.
    pub monitors: Vec<String>,
}

/// What happened to the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolOutcome {
    /// It was there, an RBD pool.
    Verified,
    /// It was there; kelp ran `rbd pool init`.
    Initialized,
    /// kelp created and initialised it.
    Created,
}

/// What happened to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientOutcome {
    /// It was there with sufficient caps.
    Verified,
    /// kelp created it.
    Created,
}

impl Cluster {
    /// A cluster from its ceph.conf; Ceph commands give up looking for a
    /// monitor after `timeout_secs`.
    pub fn new(conf_path: &Path, timeout_secs: u32) -> Cluster {
        Cluster {
            cli: Cli {
                conf: conf_path.to_owned(),
                timeout_secs,
            },
            conf_path: conf_path.to_owned(),
        }
    }

    /// The monitors of the ceph.conf, each tried over TCP (`timeout` per
    /// address). Ok with the reachable ones when at least one is; the
    /// others are logged.
    pub fn check_monitors(&self, timeout: Duration) -> Result<Vec<String>, CephError> {
        let text = std::fs::read_to_string(&self.conf_path).map_err(|cause| CephError::Read {
            what: "ceph.conf",
            path: self.conf_path.clone(),
            cause,
        })?;
        let monitors = conf::monitors(&text).map_err(|cause| CephError::Conf {
            path: self.conf_path.clone(),
            cause,
        })?;
        let mut reachable = Vec::new();
        let mut failures = Vec::new();
        for monitor in monitors {
            let mut why = Vec::new();
            for address in &monitor.addresses {
                match connect(address, timeout) {
                    Ok(()) => {
                        reachable.push(address.clone());
                        why.clear();
                        break;
                    }
                    Err(reason) => why.push(format!("{address}: {reason}")),
                }
            }
            if !why.is_empty() {
                tracing::warn!(monitor = %monitor.spec, "monitor unreachable: {}", why.join(", "));
                failures.push(why.join(", "));
            }
        }
        if reachable.is_empty() {
            return Err(CephError::Unreachable {
                details: failures.join("; "),
            });
        }
        Ok(reachable)
    }

    /// The fsid and the monitors' v1 addresses, as `who` sees them.
    pub fn facts(&self, who: &Identity) -> Result<ClusterFacts, CephError> {
        let step = "reading the fsid (ceph fsid)";
        let out = self
            .cli
            .ceph(who, &["fsid"])
            .map_err(|e| CephError::cli(step, e))?;
        let fsid = json::fsid(&out).map_err(|e| CephError::parse(step, e))?;
        let step = "reading the monitors (ceph mon dump)";
        let out = self
            .cli
            .ceph(who, &["mon", "dump"])
            .map_err(|e| CephError::cli(step, e))?;
        let monitors = json::monitors(&out).map_err(|e| CephError::parse(step, e))?;
        Ok(ClusterFacts { fsid, monitors })
    }

    /// The pool's applications; `None` when the pool does not exist.
    pub fn pool_applications(
        &self,
        who: &Identity,
        pool: &str,
    ) -> Result<Option<Vec<String>>, CephError> {
        let step = format!("checking pool {pool} (ceph osd pool application get)");
        match self
            .cli
            .ceph(who, &["osd", "pool", "application", "get", pool])
        {
            Ok(out) => json::applications(&out)
                .map(Some)
                .map_err(|e| CephError::parse(step, e)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(CephError::cli(step, error)),
        }
    }

    /// Creates the pool if it is missing (`create`), runs `rbd pool init`
    /// when the rbd application is not enabled (`create`), else verifies.
    pub fn ensure_pool(
        &self,
        admin: &Identity,
        pool: &str,
        create: bool,
    ) -> Result<PoolOutcome, CephError> {
        match self.pool_applications(admin, pool)? {
            Some(apps) if apps.iter().any(|a| a == "rbd") => Ok(PoolOutcome::Verified),
            Some(apps) if create && apps.is_empty() => {
                self.pool_init(admin, pool)?;
                Ok(PoolOutcome::Initialized)
            }
            Some(apps) => Err(CephError::PoolNotRbd {
                pool: pool.to_owned(),
                applications: if apps.is_empty() {
                    "none".to_owned()
                } else {
                    apps.join(", ")
                },
            }),
            None if create => {
                let step = format!("creating pool {pool} (ceph osd pool create)");
                self.cli
                    .ceph(admin, &["osd", "pool", "create", pool])
                    .map_err(|e| CephError::cli(step, e))?;
                self.pool_init(admin, pool)?;
                Ok(PoolOutcome::Created)
            }
            None => Err(CephError::PoolMissing {
                pool: pool.to_owned(),
            }),
        }
    }

    fn pool_init(&self, admin: &Identity, pool: &str) -> Result<(), CephError> {
        let step = format!("initialising pool {pool} for rbd (rbd pool init)");
        self.cli
            .rbd(admin, &["pool", "init", pool])
            .map(drop)
            .map_err(|e| CephError::cli(step, e))
    }

    /// The client with its key and caps; `None` when it does not exist.
    pub fn client(
        &self,
        admin: &Identity,
        client: &str,
    ) -> Result<Option<json::AuthEntity>, CephError> {
        let step = format!("reading client {client} (ceph auth get)");
        match self.cli.ceph(admin, &["auth", "get", client]) {
            Ok(out) => json::auth_entity(&out)
                .map(Some)
                .map_err(|e| CephError::parse(step, e)),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(CephError::cli(step, error)),
        }
    }

    /// Creates the client with ceph-csi's caps on `pool` if it is missing
    /// (`create`); an existing client's caps are checked, never changed.
    pub fn ensure_client(
        &self,
        admin: &Identity,
        client: &str,
        pool: &str,
        create: bool,
    ) -> Result<(json::AuthEntity, ClientOutcome), CephError> {
        if let Some(entity) = self.client(admin, client)? {
            verify_caps(&entity, pool)?;
            return Ok((entity, ClientOutcome::Verified));
        }
        if !create {
            return Err(CephError::ClientMissing {
                client: client.to_owned(),
                fix: caps::required_args(pool),
            });
        }
        let step = format!("creating client {client} (ceph auth get-or-create)");
        let mut args = vec![
            "auth".to_owned(),
            "get-or-create".to_owned(),
            client.to_owned(),
        ];
        for service in caps::Service::ALL {
            args.push(service.as_str().to_owned());
            args.push(caps::required(service, pool));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self
            .cli
            .ceph(admin, &args)
            .map_err(|e| CephError::cli(&step, e))?;
        let entity = json::auth_entity(&out).map_err(|e| CephError::parse(step, e))?;
        Ok((entity, ClientOutcome::Created))
    }

    /// Creates and removes a small image in `pool` as `who`: proves the
    /// client can do what ceph-csi does when it provisions a volume.
    pub fn test_image(&self, who: &Identity, pool: &str, name: &str) -> Result<(), CephError> {
        let image = format!("{pool}/{name}");
        let step = format!("creating test image {image} as {} (rbd create)", who.name);
        self.cli
            .rbd(who, &["create", "--size", "4", "--image-feature", "layering", &image])
            .map_err(|cause| {
                if cause.is_denied() {
                    CephError::Cli {
                        step,
                        cause: Box::new(cause),
                        hint: format!(
                            "; {} may not write images in {pool}: it needs {} (`ceph auth caps {} ...`)",
                            who.name,
                            caps::required_args(pool),
                            who.name
                        ),
                    }
                } else {
                    CephError::cli(step, cause)
                }
            })?;
        let step = format!("removing test image {image} as {} (rbd rm)", who.name);
        self.cli
            .rbd(who, &["rm", "--no-progress", &image])
            .map(drop)
            .map_err(|e| CephError::cli(step, e))
    }
}

/// Fails with the missing caps and the command that fixes them.
pub fn verify_caps(entity: &json::AuthEntity, pool: &str) -> Result<(), CephError> {
    let problems = caps::check(&entity.caps, pool);
    if problems.is_empty() {
        return Ok(());
    }
    Err(CephError::Caps {
        client: entity.entity.clone(),
        problems: problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        fix: caps::required_args(pool),
    })
}

fn connect(address: &str, timeout: Duration) -> Result<(), String> {
    let addrs: Vec<_> = address
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve: {e}"))?
        .collect();
    let mut last = "no address".to_owned();
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn names() {
        assert_eq!(entity_name("kelp"), "client.kelp");
        assert_eq!(entity_name("client.kelp"), "client.kelp");
        assert_eq!(user_id("client.kelp"), "kelp");
        assert_eq!(user_id("kelp"), "kelp");
    }

    #[test]
    fn keys_are_redacted() {
        let key = CephKey::new(" AQA9secret== \n".to_owned());
        assert_eq!(key.expose(), "AQA9secret==");
        assert!(!format!("{key:?}").contains("AQA9"));
    }

    #[test]
    fn caps_errors_carry_the_fix() {
        let entity = json::AuthEntity {
            entity: "client.weak".to_owned(),
            key: CephKey::new("k".to_owned()),
            caps: BTreeMap::from([("mon".to_owned(), "allow r".to_owned())]),
        };
        let error = verify_caps(&entity, "kubernetes").unwrap_err().to_string();
        assert!(
            error.contains("mon caps 'allow r' do not grant 'profile rbd'"),
            "{error}"
        );
        assert!(
            error.contains(
                "ceph auth caps client.weak mon 'profile rbd' osd 'profile rbd pool=kubernetes'"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_unreachable_monitor_is_reported() {
        // A port nobody listens on: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("ceph.conf");
        std::fs::write(&conf, format!("[global]\nmon host = 127.0.0.1:{port}\n")).unwrap();
        let error = Cluster::new(&conf, 1)
            .check_monitors(Duration::from_secs(1))
            .unwrap_err()
            .to_string();
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
        assert!(error.contains("none is reachable"), "{error}");
    }
}
