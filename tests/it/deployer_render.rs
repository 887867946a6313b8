//! `kelp render` against a real kube-apiserver: every rendered object must
//! pass server-side apply in dry-run mode, which runs the API server's
//! schema validation, defaulting and admission (Pod Security included)
//! without storing anything.

use kelp_tests::{TestNamespace, kubectl};
use std::io::Write as _;
use std::process::{Command, Stdio};

use anyhow::{Context, ensure};

/// Stacks that between them use every builder and option that changes the
/// objects' shape. `{class}` is the testbed's StorageClass.
const STACKS: [(&str, &str); 3] = [
    ("defaults", "storage: {storage_class: \"{class}\"}\n"),
    (
        "kraft-es7-rbd",
        "kafka: {mode: kraft}\n\
         elasticsearch: {version: \"7.17.29\", max_map_count_init: false, allow_mmap: false}\n\
         storage: {rbd: {cluster_id: 7d3c1f2e-0000-4000-8000-000000000000, pool: kubernetes, monitors: [\"10.0.0.1:6789\"]}}\n\
         collector: {tolerations: [{key: dedicated, operator: equal, value: logs, effect: NoSchedule}]}\n\
         common: {anti_affinity: preferred, labels: {team: platform}}\n",
    ),
    (
        "single-node",
        "storage: {storage_class: \"{class}\"}\n\
         zookeeper: {replicas: 1}\n\
         kafka: {replicas: 1, default_replication_factor: 1, min_insync_replicas: 1}\n\
         elasticsearch: {replicas: 1}\n",
    ),
];

#[test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
fn every_rendered_object_passes_server_side_apply_dry_run() -> anyhow::Result<()> {
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let class = std::env::var("KELP_K8S_STORAGE_CLASS").unwrap_or_else(|_| "kelp-test".to_owned());
    let kelp = kelp_tests::fresh_binary("kelp", &["deployer/src"])?;
    let dir = tempfile::tempdir()?;

    for (name, stack) in STACKS {
        let namespace = kelp_tests::unique("kelp-it");
        let created = kubectl()
            .args(["create", "namespace", &namespace])
            .output()
            .context("running kubectl failed")?;
        ensure!(
            created.status.success(),
            "creating namespace {namespace} failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let _cleanup = TestNamespace(namespace.clone());

        let path = dir.path().join(format!("{name}.yaml"));
        let text = format!(
            "namespace: {namespace}\n{}",
            stack.replace("{class}", &class)
        );
        std::fs::write(&path, text)?;
        let rendered = Command::new(&kelp)
            .arg("render")
            .arg("--stack")
            .arg(&path)
            .output()
            .context("running kelp render failed")?;
        ensure!(
            rendered.status.success(),
            "{name}: kelp render failed: {}",
            String::from_utf8_lossy(&rendered.stderr)
        );
        let yaml = String::from_utf8(rendered.stdout)?;
        let documents = yaml.matches("\n---\n").count() + usize::from(yaml.starts_with("---\n"));

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
            .spawn()
            .context("running kubectl apply failed")?;
        apply
            .stdin
            .take()
            .context("opening kubectl's stdin failed")?
            .write_all(yaml.as_bytes())?;
        let applied = apply.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&applied.stdout);
        ensure!(
            applied.status.success(),
            "{name}: the API server refused objects:\n{}\n{stdout}",
            String::from_utf8_lossy(&applied.stderr)
        );
        // One line per object, each accepted.
        let accepted = stdout
            .lines()
            .filter(|line| line.contains("(server dry run)"))
            .count();
        ensure!(
            accepted == documents,
            "{name}: {accepted} of {documents} objects accepted:\n{stdout}"
        );
    }
    Ok(())
}
