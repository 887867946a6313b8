//! `kelp storage rbd` against the testbed's real single-node Ceph (cephx)
//! and its real kube-apiserver: pool, client and test image creation, the
//! preflight's success and each of its failures, and the ceph-csi objects
//! carrying the cluster's real fsid and monitors, accepted by the API
//! server in a server-side dry run.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use anyhow::{Context, ensure};

const NEEDS: &str = "ceph";

/// The testbed's Ceph, as its `testbed env` describes it.
struct Ceph {
    conf: String,
    keyring: String,
    fsid: String,
    mon: String,
}

impl Ceph {
    fn from_env() -> anyhow::Result<Ceph> {
        Ok(Ceph {
            conf: kelp_tests::service("KELP_CEPH_CONF", NEEDS)?,
            keyring: kelp_tests::service("KELP_CEPH_KEYRING", NEEDS)?,
            fsid: kelp_tests::service("KELP_CEPH_FSID", NEEDS)?,
            mon: kelp_tests::service("KELP_CEPH_MON", NEEDS)?,
        })
    }

    /// `ceph ...` as the admin; stdout, or the failure.
    fn admin(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new("ceph")
            .args([
                "-c",
                &self.conf,
                "-k",
                &self.keyring,
                "--connect-timeout",
                "20",
            ])
            .args(args)
            .output()
            .context("running ceph failed")?;
        ensure!(
            out.status.success(),
            "ceph {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    }

    fn rbd_ls(&self, pool: &str) -> anyhow::Result<String> {
        let out = Command::new("rbd")
            .args(["-c", &self.conf, "-k", &self.keyring, "ls", pool])
            .output()
            .context("running rbd failed")?;
        ensure!(out.status.success(), "rbd ls {pool} failed: {out:?}");
        Ok(String::from_utf8(out.stdout)?)
    }
}

/// Removes the test's pools and clients, whatever the outcome.
struct Cleanup<'a> {
    ceph: &'a Ceph,
    pools: Vec<String>,
    clients: Vec<String>,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        for pool in &self.pools {
            let _ = self.ceph.admin(&[
                "osd",
                "pool",
                "rm",
                pool,
                pool,
                "--yes-i-really-really-mean-it",
            ]);
        }
        for client in &self.clients {
            let _ = self.ceph.admin(&["auth", "rm", client]);
        }
    }
}

/// Ceph names unique to this test run (pools and clients allow `-`).
fn unique(prefix: &str) -> String {
    kelp_tests::unique(prefix)
}

fn kelp() -> anyhow::Result<PathBuf> {
    kelp_tests::fresh_binary("kelp", &["deployer/src"])
}

/// One `kelp storage rbd` run against the testbed's Ceph: as the admin
/// (`--keyring`) or with a client's own key file.
struct Run<'a> {
    ceph: &'a Ceph,
    args: Vec<String>,
}

impl<'a> Run<'a> {
    fn admin(ceph: &'a Ceph) -> Self {
        Run {
            ceph,
            args: vec!["--keyring".to_owned(), ceph.keyring.clone()],
        }
    }

    fn with_key(ceph: &'a Ceph, key_file: &Path) -> Self {
        Run {
            ceph,
            args: vec![
                "--client-key-file".to_owned(),
                key_file.display().to_string(),
            ],
        }
    }

    fn arg(mut self, flag: &str, value: &str) -> Self {
        self.args.extend([flag.to_owned(), value.to_owned()]);
        self
    }

    fn flag(mut self, flag: &str) -> Self {
        self.args.push(flag.to_owned());
        self
    }

    /// The output (success or not) and its stderr.
    fn run(self) -> anyhow::Result<(Output, String)> {
        let out = Command::new(kelp()?)
            .args([
                "storage",
                "rbd",
                "--ceph-conf",
                &self.ceph.conf,
                "--timeout-secs",
                "5",
            ])
            .args(&self.args)
            .env_remove("KELP_STACK")
            .output()
            .context("running kelp storage rbd failed")?;
        let log = stderr(&out);
        Ok((out, log))
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write_key(dir: &Path, ceph: &Ceph, client: &str) -> anyhow::Result<PathBuf> {
    let key = ceph.admin(&["auth", "get-key", client])?;
    let path = dir.join(format!("{client}.key"));
    std::fs::write(&path, key)?;
    Ok(path)
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up ceph"]
fn rbd_creates_pool_and_client_and_passes_the_preflight() -> anyhow::Result<()> {
    let ceph = Ceph::from_env()?;
    let pool = unique("kelp-it-pool");
    let client = format!("client.{}", unique("kelp-it"));
    let _cleanup = Cleanup {
        ceph: &ceph,
        pools: vec![pool.clone()],
        clients: vec![client.clone()],
    };

    // First run: creates both.
    let (out, log) = Run::admin(&ceph)
        .arg("--pool", &pool)
        .arg("--client", &client)
        .run()?;
    ensure!(out.status.success(), "kelp storage rbd failed:\n{log}");
    ensure!(
        log.contains(&format!("pool {pool}: created and initialised")),
        "{log}"
    );
    ensure!(log.contains(&format!("client {client}: created")), "{log}");
    ensure!(log.contains("preflight ok: test image"), "{log}");

    // Ceph agrees: an rbd pool, a client with exactly ceph-csi's caps, and
    // no test image left behind.
    let apps: serde_json::Value = serde_json::from_str(&ceph.admin(&[
        "osd",
        "pool",
        "application",
        "get",
        &pool,
        "-f",
        "json",
    ])?)?;
    ensure!(apps.get("rbd").is_some(), "applications of {pool}: {apps}");
    let auth: serde_json::Value =
        serde_json::from_str(&ceph.admin(&["auth", "get", &client, "-f", "json"])?)?;
    let caps = &auth[0]["caps"];
    ensure!(caps["mon"] == "profile rbd", "{auth}");
    ensure!(
        caps["osd"] == format!("profile rbd pool={pool}").as_str(),
        "{auth}"
    );
    ensure!(
        caps["mgr"] == format!("profile rbd pool={pool}").as_str(),
        "{auth}"
    );
    let images = ceph.rbd_ls(&pool)?;
    ensure!(images.trim().is_empty(), "left in {pool}: {images}");

    // The objects carry the real fsid, monitors and key.
    let yaml = String::from_utf8(out.stdout)?;
    let key = ceph.admin(&["auth", "get-key", &client])?;
    ensure!(
        yaml.contains(&format!("clusterID: {}", ceph.fsid)),
        "no StorageClass with clusterID {}:\n{yaml}",
        ceph.fsid
    );
    ensure!(
        yaml.contains(&format!(
            "{{\\\"clusterID\\\":\\\"{}\\\",\\\"monitors\\\":[\\\"{}\\\"]}}",
            ceph.fsid, ceph.mon
        )),
        "ceph-csi-config does not name {} at {}:\n{yaml}",
        ceph.fsid,
        ceph.mon
    );
    ensure!(yaml.contains(&format!("userKey: {}", key.trim())), "{yaml}");
    ensure!(
        yaml.contains(&format!("userID: {}", client.trim_start_matches("client."))),
        "{yaml}"
    );

    // Second run: verifies, creates nothing.
    let (out, log) = Run::admin(&ceph)
        .arg("--pool", &pool)
        .arg("--client", &client)
        .arg("--print", "nothing")
        .run()?;
    ensure!(out.status.success(), "second run failed:\n{log}");
    ensure!(
        log.contains(&format!("preflight ok: pool {pool} exists")),
        "{log}"
    );
    ensure!(
        log.contains(&format!(
            "preflight ok: client {client} has sufficient caps"
        )),
        "{log}"
    );

    // With the client's own key and no admin: checks pass, and the stack
    // block is what a stack file takes.
    let dir = tempfile::tempdir()?;
    let key_file = write_key(dir.path(), &ceph, &client)?;
    let (out, log) = Run::with_key(&ceph, &key_file)
        .arg("--pool", &pool)
        .arg("--client", &client)
        .arg("--print", "stack")
        .run()?;
    ensure!(out.status.success(), "client-only run failed:\n{log}");
    let block = String::from_utf8(out.stdout)?;
    ensure!(block.starts_with("storage:\n  rbd:\n"), "{block}");
    ensure!(
        block.contains(&format!("cluster_id: {}", ceph.fsid)),
        "{block}"
    );
    ensure!(block.contains(&format!("- {}", ceph.mon)), "{block}");
    ensure!(block.contains(&format!("pool: {pool}")), "{block}");
    Ok(())
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up ceph"]
fn rbd_preflight_fails_on_a_missing_pool() -> anyhow::Result<()> {
    let ceph = Ceph::from_env()?;
    let pool = unique("kelp-it-missing");
    // --check: verify only, so the admin keyring does not create the pool
    let (out, log) = Run::admin(&ceph)
        .flag("--check")
        .arg("--pool", &pool)
        .arg("--print", "nothing")
        .run()?;
    ensure!(
        !out.status.success(),
        "--check passed on a missing pool:\n{log}"
    );
    ensure!(
        log.contains(&format!("checking pool {pool} failed: it does not exist"))
            && log.contains(&format!("ceph osd pool create {pool}")),
        "{log}"
    );
    let pools = ceph.admin(&["osd", "pool", "ls"])?;
    ensure!(!pools.lines().any(|p| p == pool), "--check created {pool}");
    Ok(())
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up ceph"]
fn rbd_preflight_fails_on_insufficient_caps() -> anyhow::Result<()> {
    let ceph = Ceph::from_env()?;
    let pool = unique("kelp-it-caps");
    let weak = format!("client.{}", unique("kelp-it-weak"));
    let _cleanup = Cleanup {
        ceph: &ceph,
        pools: vec![pool.clone()],
        clients: vec![weak.clone()],
    };
    ceph.admin(&["osd", "pool", "create", &pool])?;
    ceph.admin(&["osd", "pool", "application", "enable", &pool, "rbd"])?;
    ceph.admin(&["auth", "get-or-create", &weak, "mon", "allow r"])?;

    // With the admin keyring: the caps are read and judged.
    let (out, log) = Run::admin(&ceph)
        .arg("--pool", &pool)
        .arg("--client", &weak)
        .arg("--print", "nothing")
        .run()?;
    ensure!(
        !out.status.success(),
        "a mon 'allow r' client passed:\n{log}"
    );
    ensure!(
        log.contains("mon caps 'allow r' do not grant 'profile rbd'"),
        "{log}"
    );
    ensure!(
        log.contains(&format!("ceph auth caps {weak} mon 'profile rbd'")),
        "{log}"
    );
    // The existing client's caps are reported, not changed.
    let auth = ceph.admin(&["auth", "get", &weak, "-f", "json"])?;
    ensure!(
        auth.contains("\"mon\":\"allow r\"") && !auth.contains("osd"),
        "{auth}"
    );

    // With only its own key: the test image fails, saying why.
    let dir = tempfile::tempdir()?;
    let key_file = write_key(dir.path(), &ceph, &weak)?;
    let (out, log) = Run::with_key(&ceph, &key_file)
        .arg("--pool", &pool)
        .arg("--client", &weak)
        .arg("--print", "nothing")
        .run()?;
    ensure!(
        !out.status.success(),
        "a mon 'allow r' client passed alone:\n{log}"
    );
    ensure!(
        log.contains(&format!("{weak} may not write images in {pool}")),
        "{log}"
    );
    Ok(())
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up ceph"]
fn rbd_preflight_fails_on_an_unreachable_monitor() -> anyhow::Result<()> {
    let ceph = Ceph::from_env()?;
    // The testbed's ceph.conf with its monitor moved to a port nobody
    // listens on (bound, then closed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let conf = std::fs::read_to_string(&ceph.conf)?;
    let moved: String = conf
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("mon host") {
                format!("mon host = 127.0.0.1:{port}")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    ensure!(moved != conf, "no `mon host` line in {}", ceph.conf);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ceph.conf");
    std::fs::write(&path, moved)?;
    let out = Command::new(kelp()?)
        .args([
            "storage",
            "rbd",
            "--timeout-secs",
            "2",
            "--print",
            "nothing",
        ])
        .arg("--ceph-conf")
        .arg(&path)
        .args(["--keyring", &ceph.keyring])
        .output()?;
    let log = stderr(&out);
    ensure!(
        !out.status.success(),
        "an unreachable monitor passed:\n{log}"
    );
    ensure!(
        log.contains("checking the monitors failed: none is reachable")
            && log.contains(&format!("127.0.0.1:{port}")),
        "{log}"
    );
    Ok(())
}

fn kubectl() -> Command {
    Command::new(std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()))
}

/// Deletes the test's namespace.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl()
            .args(["delete", "namespace", &self.0, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up ceph k8s"]
fn rbd_objects_pass_server_side_dry_run() -> anyhow::Result<()> {
    let ceph = Ceph::from_env()?;
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let pool = unique("kelp-it-k8s");
    let client = format!("client.{}", unique("kelp-it-k8s"));
    let _cleanup = Cleanup {
        ceph: &ceph,
        pools: vec![pool.clone()],
        clients: vec![client.clone()],
    };
    // A dry run cannot create the namespace, so it is created for real.
    let namespace = kelp_tests::unique("kelp-it-csi");
    let created = kubectl()
        .args(["create", "namespace", &namespace])
        .output()?;
    ensure!(
        created.status.success(),
        "creating namespace {namespace} failed: {created:?}"
    );
    let _ns = Namespace(namespace.clone());
    let dir = tempfile::tempdir()?;
    let stack = dir.path().join("stack.yaml");
    std::fs::write(
        &stack,
        format!(
            "namespace: {namespace}\nstorage:\n  rbd:\n    cluster_id: to-be-filled\n    pool: {pool}\n    \
             secret_namespace: {namespace}\n    secret_name: {namespace}-rbd\n    fstype: xfs\n"
        ),
    )?;
    let stack = stack.to_str().context("non-UTF-8 temp path")?;

    // kelp's own server-side apply, dry run.
    let (out, log) = Run::admin(&ceph)
        .arg("--client", &client)
        .arg("--stack", stack)
        .arg("--print", "objects")
        .flag("--apply")
        .flag("--dry-run")
        .flag("--skip-driver-check")
        .run()?;
    ensure!(
        out.status.success(),
        "kelp storage rbd --apply --dry-run failed:\n{log}"
    );
    ensure!(log.contains("applied 4 objects (dry run)"), "{log}");
    let yaml = String::from_utf8(out.stdout)?;
    ensure!(
        yaml.contains(&format!("clusterID: {}", ceph.fsid)),
        "{yaml}"
    );
    ensure!(
        yaml.contains(&format!("name: {namespace}-rbd-xfs")),
        "{yaml}"
    );

    // The printed YAML, through kubectl.
    let mut apply = kubectl()
        .args([
            "apply",
            "--server-side",
            "--dry-run=server",
            "--field-manager=kelp",
            "-f",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    apply
        .stdin
        .take()
        .context("opening kubectl's stdin failed")?
        .write_all(yaml.as_bytes())?;
    let applied = apply.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&applied.stdout);
    ensure!(
        applied.status.success(),
        "the API server refused objects:\n{}\n{stdout}",
        String::from_utf8_lossy(&applied.stderr)
    );
    let accepted = stdout
        .lines()
        .filter(|l| l.contains("(server dry run)"))
        .count();
    ensure!(accepted == 4, "{accepted} of 4 objects accepted:\n{stdout}");

    // Nothing was stored, and the testbed has no ceph-csi: the driver check
    // says so and what to do.
    let secret = kubectl()
        .args([
            "-n",
            &namespace,
            "get",
            "secret",
            &format!("{namespace}-rbd"),
        ])
        .output()?;
    ensure!(!secret.status.success(), "the dry run stored the Secret");
    let (out, log) = Run::admin(&ceph)
        .arg("--client", &client)
        .arg("--stack", stack)
        .arg("--print", "nothing")
        .flag("--check-driver")
        .run()?;
    ensure!(
        !out.status.success(),
        "the driver check passed without ceph-csi:\n{log}"
    );
    ensure!(
        log.contains("the CSIDriver rbd.csi.ceph.com does not exist: ceph-csi is not installed"),
        "{log}"
    );
    Ok(())
}
