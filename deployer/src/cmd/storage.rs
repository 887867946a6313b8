//! `kelp storage rbd`: Ceph RBD storage through ceph-csi in one command.
//! Creates or verifies the pool and a restricted client on the Ceph side,
//! runs the preflight, then prints (or applies) the ceph-csi objects and
//! the stack file's `storage.rbd` block. See docs/STORAGE.md.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use kelp_deployer::ceph::cli::Identity;
use kelp_deployer::ceph::{self, CephKey, ClientOutcome, Cluster, PoolOutcome, kube as ceph_kube};
use kelp_deployer::manifests::{self, CephCsiInputs};
use kelp_deployer::stack::{FsType, Rbd, Stack};
use serde::Serialize;

/// `kelp storage ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum StorageCommand {
    /// Ceph RBD volumes through ceph-csi: pool, client, preflight, objects.
    ///
    /// With an admin keyring (--keyring) kelp creates what is missing: the
    /// pool (with `rbd pool init`) and the client with the caps ceph-csi
    /// needs (mon 'profile rbd', osd and mgr 'profile rbd pool=POOL'). With
    /// an existing client (--client-key-file, no --keyring) it only checks.
    /// Either way it runs the preflight (monitors reachable, pool with the
    /// rbd application, client caps, a test image created and removed with
    /// the client's own key), then prints the ceph-csi objects (the
    /// ceph-csi-config ConfigMap, the client Secret, the StorageClasses) or
    /// applies them with --apply, and the stack file's `storage.rbd` block.
    ///
    /// kelp runs the `ceph` and `rbd` tools (Debian/Ubuntu package
    /// ceph-common): they must be installed on this machine.
    Rbd(RbdArgs),
}

/// What to print on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Print {
    /// The ceph-csi objects as YAML (with the `storage.rbd` block in a
    /// comment on top); contains the client's key.
    Objects,
    /// Only the stack file's `storage` block, to paste into the stack file.
    Stack,
    /// Nothing (e.g. with --apply).
    Nothing,
}

/// Arguments of `kelp storage rbd`.
#[derive(Debug, Args)]
pub(crate) struct RbdArgs {
    /// The Ceph cluster's ceph.conf (its `mon host` is all kelp needs).
    #[arg(
        long,
        value_name = "FILE",
        env = "CEPH_CONF",
        default_value = "/etc/ceph/ceph.conf"
    )]
    ceph_conf: PathBuf,
    /// An admin keyring: kelp creates the pool and the client if missing.
    #[arg(long, value_name = "FILE", required_unless_present = "client_key_file")]
    keyring: Option<PathBuf>,
    /// The entity of --keyring.
    #[arg(long, value_name = "NAME", default_value = "client.admin")]
    admin_name: String,
    /// The Ceph client ceph-csi uses (`client.` may be left out).
    #[arg(
        long,
        visible_alias = "client-id",
        value_name = "NAME",
        default_value = "client.kelp"
    )]
    client: String,
    /// File with the key of an existing --client (`ceph auth get-key
    /// client.kelp`); without --keyring kelp then creates nothing.
    #[arg(long, value_name = "FILE")]
    client_key_file: Option<PathBuf>,
    /// The RBD pool. Default: the stack file's `storage.rbd.pool`, else
    /// `kubernetes`.
    #[arg(long, value_name = "POOL")]
    pool: Option<String>,
    /// The stack file: its `storage.rbd` (secret name and namespace, file
    /// systems, image features) and namespace shape the objects. Without
    /// it, the defaults.
    #[arg(long, value_name = "FILE", env = "KELP_STACK")]
    stack: Option<PathBuf>,
    /// Only verify: create neither pool nor client, even with --keyring.
    #[arg(long)]
    check: bool,
    /// What to print on stdout.
    #[arg(long, value_enum, default_value = "objects")]
    print: Print,
    /// Server-side apply the objects (field manager `kelp`) to the cluster
    /// of KUBECONFIG, then check the ceph-csi driver.
    #[arg(long)]
    apply: bool,
    /// With --apply: let the API server validate the objects, store nothing.
    #[arg(long, requires = "apply")]
    dry_run: bool,
    /// Check that the ceph-csi driver is installed and its pods Ready
    /// (always done with --apply unless --skip-driver-check).
    #[arg(long, conflicts_with = "skip_driver_check")]
    check_driver: bool,
    /// With --apply: do not check the ceph-csi driver.
    #[arg(long)]
    skip_driver_check: bool,
    /// How long to wait for Ceph's monitors, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    timeout_secs: u32,
}

/// Runs `kelp storage ...`.
pub(crate) async fn run(command: StorageCommand) -> anyhow::Result<()> {
    match command {
        StorageCommand::Rbd(args) => rbd(args).await,
    }
}

async fn rbd(args: RbdArgs) -> anyhow::Result<()> {
    let mut stack = match &args.stack {
        Some(path) => Stack::load(path)?,
        None => Stack::default(),
    };
    let pool = args
        .pool
        .clone()
        .or_else(|| stack.storage.rbd.as_ref().map(|r| r.pool.clone()))
        .unwrap_or_else(|| "kubernetes".to_owned());
    let client = ceph::entity_name(&args.client);
    let cluster = Cluster::new(&args.ceph_conf, args.timeout_secs);
    let (facts, key) = tokio::task::block_in_place(|| preflight(&args, &cluster, &pool, &client))?;

    let rbd = fill_rbd(
        stack.storage.rbd.take(),
        &pool,
        &facts.fsid,
        &facts.monitors,
    );
    stack.storage.storage_class = None;
    stack.storage.rbd = Some(rbd.clone());
    stack
        .validate()
        .context("checking the stack's storage.rbd block failed")?;
    let objects = manifests::ceph_csi(
        &stack,
        &CephCsiInputs {
            fsid: facts.fsid.clone(),
            monitors: facts.monitors.clone(),
            user_id: ceph::user_id(&client).to_owned(),
            user_key: key,
        },
    );
    let block = stack_block(&rbd)?;
    match args.print {
        Print::Objects => {
            let yaml = manifests::ceph_csi_yaml(&objects)
                .context("rendering the ceph-csi objects failed")?;
            let mut out = format!(
                "# Rendered by kelp storage rbd: Ceph cluster {}, pool {pool}, client {client}.\n\
                 # Contains the client's key (Secret {}/{}): keep it out of version control.\n\
                 # Apply with: kubectl apply --server-side -f <this file>\n\
                 # The stack file's block for these objects:\n",
                facts.fsid, rbd.secret_namespace, rbd.secret_name
            );
            for line in block.lines() {
                let _ = writeln!(out, "#   {line}");
            }
            super::write_stdout(&(out + &yaml))?;
        }
        Print::Stack => super::write_stdout(&block)?,
        Print::Nothing => {}
    }

    if args.apply || args.check_driver {
        let kube = ceph_kube::client().await?;
        if args.apply {
            ceph_kube::apply(&kube, &objects, args.dry_run).await?;
            tracing::info!(
                "applied {} objects{}",
                objects.len(),
                if args.dry_run { " (dry run)" } else { "" }
            );
        }
        if !args.skip_driver_check {
            let summary = ceph_kube::check_driver(&kube).await?;
            tracing::info!("driver check: {summary}");
        }
    }
    Ok(())
}

/// The Ceph side: monitors, pool, client, test image. Returns the cluster
/// facts and the client's key; the first failure ends it with its fix.
fn preflight(
    args: &RbdArgs,
    cluster: &Cluster,
    pool: &str,
    client: &str,
) -> anyhow::Result<(ceph::ClusterFacts, CephKey)> {
    let reachable = cluster.check_monitors(Duration::from_secs(u64::from(
        args.timeout_secs.clamp(1, 10),
    )))?;
    tracing::info!("preflight ok: monitors reachable: {}", reachable.join(", "));

    let (identity, key) = match &args.keyring {
        Some(keyring) => {
            let admin = Identity::from_keyring(&args.admin_name, keyring);
            let create = !args.check;
            match cluster.ensure_pool(&admin, pool, create)? {
                PoolOutcome::Verified => {
                    tracing::info!("preflight ok: pool {pool} exists with the rbd application")
                }
                PoolOutcome::Initialized => {
                    tracing::info!("pool {pool}: enabled the rbd application (rbd pool init)")
                }
                PoolOutcome::Created => {
                    tracing::info!("pool {pool}: created and initialised (rbd pool init)")
                }
            }
            let (entity, outcome) = cluster.ensure_client(&admin, client, pool, create)?;
            match outcome {
                ClientOutcome::Verified => {
                    tracing::info!("preflight ok: client {client} has sufficient caps")
                }
                ClientOutcome::Created => tracing::info!(
                    "client {client}: created with {}",
                    ceph::caps::required_args(pool)
                ),
            }
            if let Some(file) = &args.client_key_file {
                let given = read_key(file)?;
                anyhow::ensure!(
                    given == entity.key,
                    "checking --client-key-file {} failed: it is not the key of {client}; \
                     `ceph auth get-key {client}` prints the right one",
                    file.display()
                );
            }
            (Identity::from_key(client, &entity.key)?, entity.key)
        }
        None => {
            let file = args
                .client_key_file
                .as_ref()
                .context("reading the client key failed: give --keyring or --client-key-file")?;
            let key = read_key(file)?;
            let identity = Identity::from_key(client, &key)?;
            match cluster.pool_applications(&identity, pool)? {
                Some(apps) if apps.iter().any(|a| a == "rbd") => {
                    tracing::info!("preflight ok: pool {pool} exists with the rbd application");
                }
                Some(apps) => {
                    return Err(ceph::CephError::PoolNotRbd {
                        pool: pool.to_owned(),
                        applications: if apps.is_empty() {
                            "none".to_owned()
                        } else {
                            apps.join(", ")
                        },
                    }
                    .into());
                }
                None => {
                    return Err(ceph::CephError::PoolMissing {
                        pool: pool.to_owned(),
                    }
                    .into());
                }
            }
            // A client cannot read its own caps with `profile rbd`; the test
            // image below exercises the osd caps instead.
            match cluster.client(&identity, client) {
                Ok(Some(entity)) => {
                    ceph::verify_caps(&entity, pool)?;
                    tracing::info!("preflight ok: client {client} has sufficient caps");
                }
                _ => tracing::warn!(
                    "the caps of {client} were not read (that needs the admin keyring, --keyring); \
                     only the test image checks them"
                ),
            }
            (identity, key)
        }
    };
    let facts = cluster.facts(&identity)?;
    tracing::info!(
        "cluster {}: monitors {} (read as {client})",
        facts.fsid,
        facts.monitors.join(", ")
    );
    let image = format!("kelp-preflight-{}", unique_suffix());
    cluster.test_image(&identity, pool, &image)?;
    tracing::info!("preflight ok: test image {pool}/{image} created and removed as {client}");
    Ok((facts, key))
}

fn read_key(path: &std::path::Path) -> anyhow::Result<CephKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the client key file {} failed", path.display()))?;
    // Either a bare key (`ceph auth get-key`) or a keyring file.
    let key = text
        .lines()
        .find_map(|line| {
            line.trim()
                .strip_prefix("key")
                .map(|rest| rest.trim_start_matches([' ', '\t', '=']))
        })
        .unwrap_or(text.trim());
    anyhow::ensure!(
        !key.is_empty() && !key.contains(char::is_whitespace),
        "reading the client key file {} failed: it holds no key (write the output of \
         `ceph auth get-key <client>` into it)",
        path.display()
    );
    Ok(CephKey::new(key.to_owned()))
}

fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}-{nanos}", std::process::id())
}

/// The stack's `storage.rbd` with the cluster's facts filled in; the other
/// fields keep the stack's values (or their defaults).
fn fill_rbd(existing: Option<Rbd>, pool: &str, fsid: &str, monitors: &[String]) -> Rbd {
    let mut rbd = existing.unwrap_or_else(|| Rbd {
        cluster_id: String::new(),
        pool: String::new(),
        monitors: Vec::new(),
        secret_name: "csi-rbd-secret".to_owned(),
        secret_namespace: "ceph-csi".to_owned(),
        fstype: FsType::Ext4,
        kafka_fstype: FsType::Xfs,
        image_features: "layering".to_owned(),
    });
    rbd.cluster_id = fsid.to_owned();
    rbd.pool = pool.to_owned();
    rbd.monitors = monitors.to_vec();
    rbd
}

/// `storage:\n  rbd: ...` for the stack file.
fn stack_block(rbd: &Rbd) -> anyhow::Result<String> {
    #[derive(Serialize)]
    struct Block<'a> {
        storage: Inner<'a>,
    }
    #[derive(Serialize)]
    struct Inner<'a> {
        rbd: &'a Rbd,
    }
    serde_saphyr::to_string(&Block {
        storage: Inner { rbd },
    })
    .context("rendering the storage.rbd block failed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stack_block_round_trips_through_the_stack_file() {
        let rbd = fill_rbd(
            None,
            "kubernetes",
            "feaefd74-8eac-4829-b3dc-3c93463b404e",
            &["10.0.0.1:6789".to_owned()],
        );
        let block = stack_block(&rbd).unwrap();
        let stack = Stack::from_yaml_str(&block).unwrap();
        assert_eq!(stack.storage.rbd.as_ref(), Some(&rbd), "{block}");
        assert_eq!(rbd.kafka_fstype, FsType::Xfs);
    }

    #[test]
    fn filling_keeps_the_stack_choices() {
        let mut mine = fill_rbd(None, "old", "x", &[]);
        mine.secret_name = "my-secret".to_owned();
        mine.fstype = FsType::Xfs;
        let filled = fill_rbd(Some(mine), "new", "fsid", &["m:6789".to_owned()]);
        assert_eq!(filled.secret_name, "my-secret");
        assert_eq!(filled.fstype, FsType::Xfs);
        assert_eq!(filled.pool, "new");
        assert_eq!(filled.cluster_id, "fsid");
        assert_eq!(filled.monitors, ["m:6789"]);
    }

    #[test]
    fn keys_are_read_bare_or_from_a_keyring() {
        let dir = tempfile::tempdir().unwrap();
        let cases = [
            (
                "AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ==\n",
                Some("AQA9EAprtisMBhAA1pLhlCcRdtaAHzoTlalOeQ=="),
            ),
            (
                "[client.kelp]\n\tkey = AQA9abc==\n\tcaps mon = \"profile rbd\"\n",
                Some("AQA9abc=="),
            ),
            ("", None),
            ("two words\n", None),
        ];
        for (i, (text, want)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("k{i}"));
            std::fs::write(&path, text).unwrap();
            let got = read_key(&path).ok();
            assert_eq!(got.as_ref().map(CephKey::expose), want, "{text:?}");
        }
    }
}
