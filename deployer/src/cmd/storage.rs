//! `kelp storage rbd`: Ceph RBD storage through ceph-csi in one command.
//! Creates or verifies the pool and a restricted client on the Ceph side,
//! runs the preflight, then prints (or applies) the ceph-csi objects and
//! the stack file's `storage.rbd` block. See docs/STORAGE.md.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{ArgGroup, Args, Subcommand, ValueEnum};
use kelp_deployer::ceph::cli::Identity;
use kelp_deployer::ceph::{
    self, CephKey, ClientOutcome, Cluster, PoolOutcome, driver, install, kube as ceph_kube,
};
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
    ///
    /// --install-driver installs the ceph-csi RBD driver itself, from
    /// ceph-csi's release manifests pinned by sha256 (downloaded, never
    /// vendored), after showing what it installs and asking for consent
    /// (or --yes). Without --keyring and --client-key-file it installs only
    /// the driver and touches no Ceph cluster.
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
#[command(group(ArgGroup::new("changes").args(["apply", "install_driver"]).multiple(true)))]
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
    #[arg(
        long,
        value_name = "FILE",
        required_unless_present_any = ["client_key_file", "install_driver"]
    )]
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
    /// With --apply or --install-driver: let the API server validate the
    /// objects (and the driver's), store nothing; the namespace must exist.
    #[arg(long, requires = "changes")]
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
    /// The ceph-csi namespace: where the driver runs (--install-driver)
    /// and the ceph-csi objects go. Default: the stack's
    /// `storage.rbd.secret_namespace`, else `ceph-csi`.
    #[arg(long, value_name = "NAMESPACE")]
    csi_namespace: Option<String>,
    /// Install the ceph-csi RBD driver (kelp's pinned release) into the
    /// ceph-csi namespace: downloads its manifests, verifies each against
    /// its sha256 pin, shows what it installs (the privileged node plugin
    /// DaemonSet on every node, the images) and asks for consent; then
    /// applies them and waits until the driver's pods are Ready.
    #[arg(long)]
    install_driver: bool,
    /// With --install-driver: consent without a prompt (required when not
    /// at a terminal).
    #[arg(long, requires = "install_driver")]
    yes: bool,
    /// With --install-driver: download the files from URL/<path> instead of
    /// https://raw.githubusercontent.com/ceph/ceph-csi/<version> (a mirror
    /// for an air-gapped cluster; the pins still apply).
    #[arg(long, value_name = "URL", requires = "install_driver")]
    driver_base_url: Option<String>,
    /// With --install-driver: a YAML list of the files to install and
    /// their sha256 (`version: v3.x.y`, `files: [{path, sha256}]`) instead
    /// of kelp's pins, for another ceph-csi release you verified yourself.
    #[arg(long, value_name = "FILE", requires = "install_driver")]
    driver_manifests: Option<PathBuf>,
    /// With --install-driver: how long to wait for the driver's pods to be
    /// Ready, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    driver_timeout_secs: u64,
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
    let csi_namespace = args
        .csi_namespace
        .clone()
        .or_else(|| {
            stack
                .storage
                .rbd
                .as_ref()
                .map(|r| r.secret_namespace.clone())
        })
        .unwrap_or_else(|| DEFAULT_CSI_NAMESPACE.to_owned());
    // Consent comes before any change, on the Ceph side as well.
    let driver = if args.install_driver {
        Some(prepare_driver(&args, &csi_namespace).await?)
    } else {
        None
    };
    if args.keyring.is_none() && args.client_key_file.is_none() {
        // Only --install-driver gets here (clap): no Ceph cluster involved.
        let kube = ceph_kube::client().await?;
        if let Some(prepared) = &driver {
            install_driver(&args, &kube, &csi_namespace, prepared).await?;
        }
        return Ok(());
    }
    let pool = args
        .pool
        .clone()
        .or_else(|| stack.storage.rbd.as_ref().map(|r| r.pool.clone()))
        .unwrap_or_else(|| "kubernetes".to_owned());
    let client = ceph::entity_name(&args.client);
    let cluster = Cluster::new(&args.ceph_conf, args.timeout_secs);
    let (facts, key) = tokio::task::block_in_place(|| preflight(&args, &cluster, &pool, &client))?;

    let mut rbd = fill_rbd(
        stack.storage.rbd.take(),
        &pool,
        &facts.fsid,
        &facts.monitors,
    );
    rbd.secret_namespace = csi_namespace.clone();
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

    if args.apply || args.check_driver || driver.is_some() {
        let kube = ceph_kube::client().await?;
        if args.apply {
            ceph_kube::apply(&kube, &objects, args.dry_run).await?;
            tracing::info!(
                "applied {} objects{}",
                objects.len(),
                if args.dry_run { " (dry run)" } else { "" }
            );
        }
        if let Some(prepared) = &driver {
            install_driver(&args, &kube, &csi_namespace, prepared).await?;
        } else if !args.skip_driver_check {
            let summary = ceph_kube::check_driver(&kube).await?;
            tracing::info!("driver check: {summary}");
        }
    }
    Ok(())
}

/// The namespace ceph-csi runs in when neither --csi-namespace nor the
/// stack file says (the stack's own default for `storage.rbd`).
const DEFAULT_CSI_NAMESPACE: &str = "ceph-csi";

/// Bounds each download of a driver file.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Downloads and verifies the driver files, shows what they install and
/// gets consent. Changes nothing.
async fn prepare_driver(args: &RbdArgs, namespace: &str) -> anyhow::Result<install::Prepared> {
    let (set, kelp_pins) = match &args.driver_manifests {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("reading the driver manifest list {} failed", path.display())
            })?;
            (driver::ManifestSet::from_yaml(&text)?, false)
        }
        None => (driver::ManifestSet::pinned(), true),
    };
    let base_url = args
        .driver_base_url
        .clone()
        .unwrap_or_else(|| set.default_base_url());
    let prepared = install::prepare(&set, &base_url, namespace, DOWNLOAD_TIMEOUT).await?;
    let plan = driver::Plan {
        version: &set.version,
        base_url: &base_url,
        kelp_pins,
        files: set.files.iter().map(|f| f.path.as_str()).collect(),
        namespace,
        summary: &prepared.summary,
    };
    // A dry run changes nothing, so it needs no consent.
    let yes = args.yes || args.dry_run;
    tokio::task::block_in_place(|| consent(&plan.to_string(), yes))?;
    Ok(prepared)
}

/// Shows the plan on stderr; Ok with --yes or when `yes` is typed at a
/// terminal.
fn consent(plan: &str, yes: bool) -> anyhow::Result<()> {
    let mut stderr = std::io::stderr().lock();
    write!(stderr, "{plan}").context("writing the install plan failed")?;
    if yes {
        return Ok(());
    }
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "installing the ceph-csi driver failed: it needs your consent; rerun with --yes when not \
         at a terminal (nothing was changed)"
    );
    write!(stderr, "Type yes to install: ")
        .and_then(|()| stderr.flush())
        .context("writing the prompt failed")?;
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .context("reading the answer failed")?;
    anyhow::ensure!(
        answer.trim() == "yes",
        "installing the ceph-csi driver failed: not confirmed (type yes); nothing was changed"
    );
    Ok(())
}

/// Applies the verified driver files, then waits for the driver check.
async fn install_driver(
    args: &RbdArgs,
    kube: &kube::Client,
    namespace: &str,
    prepared: &install::Prepared,
) -> anyhow::Result<()> {
    install::install(kube, namespace, prepared, args.dry_run).await?;
    if args.dry_run {
        tracing::info!(
            "the API server accepted the {} driver objects (dry run: nothing stored)",
            prepared.docs.len()
        );
        return Ok(());
    }
    tracing::info!(
        "installed the ceph-csi driver: {} objects in namespace {namespace}",
        prepared.docs.len()
    );
    if args.skip_driver_check {
        return Ok(());
    }
    let summary = install::wait_ready(
        kube,
        &prepared.csi_driver,
        namespace,
        Duration::from_secs(args.driver_timeout_secs),
        Duration::from_secs(2),
    )
    .await?;
    tracing::info!("driver check: {summary}");
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
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        command: StorageCommand,
    }

    #[test]
    fn install_driver_flags_combine() {
        let ok: &[&[&str]] = &[
            // Only the driver: no Ceph access needed.
            &["--install-driver"],
            &["--install-driver", "--yes", "--csi-namespace", "csi"],
            &["--install-driver", "--dry-run"],
            &[
                "--install-driver",
                "--driver-base-url",
                "https://m.example/ceph-csi/v3.12.2",
                "--driver-manifests",
                "/list.yaml",
                "--driver-timeout-secs",
                "60",
            ],
            &["--keyring", "/k", "--apply", "--install-driver", "--yes"],
            &["--keyring", "/k", "--apply", "--dry-run"],
        ];
        let bad: &[&[&str]] = &[
            // Neither Ceph access nor the driver-only mode.
            &[],
            &["--yes"],
            &["--keyring", "/k", "--yes"],
            &["--keyring", "/k", "--driver-base-url", "https://m.example"],
            &["--keyring", "/k", "--driver-manifests", "/list.yaml"],
            &["--keyring", "/k", "--dry-run"],
        ];
        for (args, want_ok) in ok
            .iter()
            .map(|a| (a, true))
            .chain(bad.iter().map(|a| (a, false)))
        {
            let argv = ["storage", "rbd"].iter().chain(args.iter());
            let parsed = Wrapper::try_parse_from(argv);
            assert_eq!(parsed.is_ok(), want_ok, "{args:?}: {parsed:?}");
        }
    }

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
