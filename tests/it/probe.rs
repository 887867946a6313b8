//! `kelp probe` on the testbed: a real kube-apiserver with kwok nodes (the
//! pods "run" but nothing executes), real Kafka, real OpenSearch, and the
//! real kelp-collector and kelp-shipper. The test plays the kubelet: it
//! watches for the probe pod and writes its line to the CRI log file the
//! collector tails, as the container runtime would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use tokio::time::Instant;

use crate::collector_kafka::{collector, write_config};
use crate::shipper_support::{Shipper, ShipperSetup, create_topic};

fn kubectl() -> Command {
    Command::new(std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()))
}

/// The test's namespace, deleted when dropped.
struct Namespace(String);

impl Namespace {
    /// Creates it, with Pod Security `restricted`, and waits for its
    /// default ServiceAccount, without which the API server refuses pods.
    async fn create() -> anyhow::Result<Namespace> {
        let name = kelp_tests::unique("kelp-probe-it");
        let created = kubectl().args(["create", "namespace", &name]).output()?;
        ensure!(
            created.status.success(),
            "creating namespace {name} failed: {}",
            String::from_utf8_lossy(&created.stderr)
        );
        let namespace = Namespace(name);
        // The strictest Pod Security level: the probe pod must pass it.
        let labelled = kubectl()
            .args([
                "label",
                "namespace",
                &namespace.0,
                "pod-security.kubernetes.io/enforce=restricted",
            ])
            .output()?;
        ensure!(
            labelled.status.success(),
            "labelling namespace {} failed: {}",
            namespace.0,
            String::from_utf8_lossy(&labelled.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sa = kubectl()
                .args(["get", "serviceaccount", "default", "-n", &namespace.0])
                .output()?;
            if sa.status.success() {
                return Ok(namespace);
            }
            ensure!(
                Instant::now() < deadline,
                "no default service account in {}",
                namespace.0
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl()
            .args(["delete", "namespace", &self.0, "--wait=false"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// One probe scenario: namespace, topics, index prefix, a log root for the
/// collector, and the stack file that points `kelp probe` at them.
struct Scenario {
    namespace: Namespace,
    setup: ShipperSetup,
    dir: tempfile::TempDir,
    stack: PathBuf,
}

impl Scenario {
    async fn new(name: &str) -> anyhow::Result<Scenario> {
        Scenario::with_engine(name, "KELP_OPENSEARCH_URL", "opensearch").await
    }

    /// Like [`Scenario::new`] with the search engine of `var`.
    async fn with_engine(name: &str, var: &str, service: &str) -> anyhow::Result<Scenario> {
        let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
        let url = kelp_tests::service(var, service)?;
        kelp_tests::service("KUBECONFIG", "k8s")?;
        let namespace = Namespace::create().await?;
        let setup = ShipperSetup::new(name, &bootstrap, &url);
        create_topic(&bootstrap, &setup.topic).await?;
        create_topic(&bootstrap, &setup.dead_letter_topic).await?;
        let dir = tempfile::tempdir()?;
        let stack = dir.path().join("stack.yaml");
        std::fs::write(
            &stack,
            format!(
                "namespace: {ns}\n\
                 kafka:\n  topics:\n    \
                 logs: {{name: {logs}, partitions: 3, retention_hours: 1}}\n    \
                 dead_letter: {{name: {dlq}, partitions: 3, retention_hours: 1}}\n\
                 shipper:\n  index_template: \"{prefix}-{{kubernetes.namespace}}-{{@timestamp:%Y.%m.%d}}\"\n",
                ns = namespace.0,
                logs = setup.topic,
                dlq = setup.dead_letter_topic,
                prefix = setup.prefix,
            ),
        )?;
        Ok(Scenario {
            namespace,
            setup,
            dir,
            stack,
        })
    }

    /// A real collector tailing `<dir>/pods/*/*/*.log*` into the log topic.
    fn start_collector(&self) -> anyhow::Result<ChildGuard> {
        let metrics = format!(
            "metrics:\n  listen: 127.0.0.1:{}\n",
            kelp_tests::free_port()?
        );
        let config = write_config(
            self.dir.path(),
            &self.setup.bootstrap,
            &self.setup.topic,
            &metrics,
        )?;
        Ok(ChildGuard(collector(&config, false)?))
    }

    /// `kelp probe` with this scenario's stack, Kafka and search engine.
    fn start_probe(&self, timeout_secs: u64, extra: &[&str]) -> anyhow::Result<(Child, PathBuf)> {
        let kelp = kelp_tests::fresh_binary("kelp", &["deployer/src"])?;
        let stderr_path = self.dir.path().join("probe.stderr");
        let child = Command::new(kelp)
            .arg("probe")
            .arg("--stack")
            .arg(&self.stack)
            .args([
                "--search-url",
                &self.setup.engine_url,
                "--kafka-bootstrap",
                &self.setup.bootstrap,
                "--shipper-group",
                &self.setup.group,
                "--timeout-secs",
                &timeout_secs.to_string(),
                "--scan-timeout-secs",
                "30",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path)?)
            .spawn()
            .context("starting kelp probe")?;
        Ok((child, stderr_path))
    }
}

/// Kills the child when dropped.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The probe pod as the kubelet would see it.
#[derive(Debug)]
struct ProbePod {
    name: String,
    uid: String,
    container: String,
    line: String,
}

/// Waits for the probe pod in `namespace` and reads what its container
/// would print from its command.
async fn probe_pod(namespace: &str) -> anyhow::Result<ProbePod> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let listed = kubectl()
            .args([
                "get",
                "pods",
                "-n",
                namespace,
                "-l",
                "app.kubernetes.io/name=kelp-probe",
                "-o",
                "json",
            ])
            .output()?;
        ensure!(
            listed.status.success(),
            "listing pods failed: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        let list: Value = serde_json::from_slice(&listed.stdout)?;
        if let Some(pod) = list["items"].as_array().and_then(|items| items.first()) {
            let text = |pointer: &str| {
                pod.pointer(pointer)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .with_context(|| format!("the probe pod has no {pointer}: {pod}"))
            };
            let container = &pod["spec"]["containers"][0];
            let words: Vec<&str> = container["command"]
                .as_array()
                .into_iter()
                .chain(container["args"].as_array())
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            ensure!(
                words.first() == Some(&"echo") && words.len() == 2,
                "the probe container does not echo one line: {words:?}"
            );
            return Ok(ProbePod {
                name: text("/metadata/name")?,
                uid: text("/metadata/uid")?,
                container: text("/spec/containers/0/name")?,
                line: words[1].to_owned(),
            });
        }
        ensure!(
            Instant::now() < deadline,
            "no probe pod appeared in {namespace}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Writes the pod's line where the kubelet keeps its log, in CRI format.
fn write_log(root: &Path, namespace: &str, pod: &ProbePod) -> anyhow::Result<()> {
    let now = Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%S.%NZ"])
        .output()?;
    let now = String::from_utf8(now.stdout)?.trim().to_owned();
    let path = root
        .join("pods")
        .join(format!("{namespace}_{}_{}", pod.name, pod.uid))
        .join(&pod.container)
        .join("0.log");
    crate::collector_kafka::append(&path, format!("{now} stdout F {}\n", pod.line).as_bytes())
}

/// What `kelp probe` printed and how it exited.
struct ProbeResult {
    success: bool,
    stdout: String,
    stderr: String,
}

async fn finish(mut child: Child, stderr: &Path, limit: Duration) -> anyhow::Result<ProbeResult> {
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            bail!(
                "kelp probe did not finish within {limit:?}:\n{}",
                std::fs::read_to_string(stderr).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut stdout = String::new();
    if let Some(mut out) = child.stdout.take() {
        std::io::Read::read_to_string(&mut out, &mut stdout)?;
    }
    // Shown with --nocapture: the report as a user sees it.
    println!("kelp probe exited with {status}:\n{stdout}");
    Ok(ProbeResult {
        success: status.success(),
        stdout,
        stderr: std::fs::read_to_string(stderr).unwrap_or_default(),
    })
}

/// Whether a pod exists and whether it is being deleted.
#[derive(Debug, PartialEq, Eq)]
enum Presence {
    Gone,
    Deleting,
    Present,
}

fn presence(namespace: &str, pod: &str) -> anyhow::Result<Presence> {
    let got = kubectl()
        .args(["get", "pod", pod, "-n", namespace, "-o", "json"])
        .output()?;
    if !got.status.success() {
        let stderr = String::from_utf8_lossy(&got.stderr);
        ensure!(stderr.contains("NotFound"), "kubectl get pod: {stderr}");
        return Ok(Presence::Gone);
    }
    let pod: Value = serde_json::from_slice(&got.stdout)?;
    Ok(if pod["metadata"]["deletionTimestamp"].is_string() {
        Presence::Deleting
    } else {
        Presence::Present
    })
}

/// The probe pod is gone or going once `kelp probe` exits.
fn assert_pod_deleted(namespace: &str, pod: &str) -> anyhow::Result<()> {
    let presence = presence(namespace, pod)?;
    ensure!(
        presence != Presence::Present,
        "the probe pod {namespace}/{pod} was not deleted"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch k8s"]
async fn probe_reports_the_write_to_searchable_time() -> anyhow::Result<()> {
    found(Scenario::new("probe-found").await?).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka elasticsearch8 k8s"]
async fn probe_reports_the_write_to_searchable_time_on_elasticsearch_8() -> anyhow::Result<()> {
    let scenario = Scenario::with_engine(
        "probe-found-es8",
        "KELP_ELASTICSEARCH8_URL",
        "elasticsearch8",
    )
    .await?;
    found(scenario).await
}

/// With a collector and a shipper, the probe finds its token.
async fn found(scenario: Scenario) -> anyhow::Result<()> {
    let _collector = scenario.start_collector()?;
    let _shipper = Shipper::start(&scenario.setup)?;
    let (child, stderr) = scenario.start_probe(120, &[])?;
    let pod = probe_pod(&scenario.namespace.0).await?;
    ensure!(pod.line.contains(&pod.name), "the token is the pod name");
    write_log(scenario.dir.path(), &scenario.namespace.0, &pod)?;

    let result = finish(child, &stderr, Duration::from_secs(180)).await?;
    ensure!(
        result.success && result.stdout.starts_with("verdict: found\n"),
        "kelp probe did not find its token:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    for needle in [
        "after the probe container started".to_owned(),
        "after the line's @timestamp".to_owned(),
        format!("token: {}", pod.name),
        format!("index: {}-{}-", scenario.setup.prefix, scenario.namespace.0),
        format!("kubernetes.pod.name: {}", pod.name),
        "event.ingested: 20".to_owned(),
    ] {
        ensure!(
            result.stdout.contains(&needle),
            "{needle:?} not in the report:\n{}",
            result.stdout
        );
    }
    assert_pod_deleted(&scenario.namespace.0, &pod.name)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch k8s"]
async fn probe_without_a_shipper_says_in_kafka_not_indexed() -> anyhow::Result<()> {
    let scenario = Scenario::new("probe-unshipped").await?;
    // The deadline leaves the collector time to ship on a loaded machine;
    // without a shipper the token can never be found, so it is always waited out.
    let _collector = scenario.start_collector()?;
    let (child, stderr) = scenario.start_probe(40, &[])?;
    let pod = probe_pod(&scenario.namespace.0).await?;
    write_log(scenario.dir.path(), &scenario.namespace.0, &pod)?;

    let result = finish(child, &stderr, Duration::from_secs(120)).await?;
    ensure!(
        !result.success && result.stdout.starts_with("verdict: not-indexed\n"),
        "want not-indexed:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    let group = format!(
        "consumer group {} has no committed offset",
        scenario.setup.group
    );
    for needle in [format!("in Kafka ({}", scenario.setup.topic), group] {
        ensure!(
            result.stdout.contains(&needle),
            "{needle:?} not in the report:\n{}",
            result.stdout
        );
    }
    assert_pod_deleted(&scenario.namespace.0, &pod.name)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch k8s"]
async fn probe_whose_line_was_never_written_says_not_in_kafka_and_keeps_the_pod()
-> anyhow::Result<()> {
    let scenario = Scenario::new("probe-unwritten").await?;
    let (child, stderr) = scenario.start_probe(10, &["--keep-pod"])?;
    let pod = probe_pod(&scenario.namespace.0).await?;

    let result = finish(child, &stderr, Duration::from_secs(120)).await?;
    ensure!(
        !result.success && result.stdout.starts_with("verdict: not-in-kafka\n"),
        "want not-in-kafka:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    let scanned = format!("records of {} since the pod started", scenario.setup.topic);
    ensure!(
        result.stdout.contains(&scanned) && result.stdout.contains("kwok-node-"),
        "the report names neither the topic nor the node:\n{}",
        result.stdout
    );
    // --keep-pod: still there, and the report says so.
    ensure!(
        presence(&scenario.namespace.0, &pod.name)? == Presence::Present
            && result.stdout.contains("left in place"),
        "--keep-pod did not keep the pod:\n{}",
        result.stdout
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch k8s"]
async fn probe_finds_a_dead_lettered_token_and_its_reason() -> anyhow::Result<()> {
    let scenario = Scenario::new("probe-dead").await?;
    let _collector = scenario.start_collector()?;
    let (child, stderr) = scenario.start_probe(40, &[])?;
    let pod = probe_pod(&scenario.namespace.0).await?;
    write_log(scenario.dir.path(), &scenario.namespace.0, &pod)?;
    // What a shipper writes when the search engine rejects the document
    // (shipper/src/dead_letter.rs): the document as payload, why in headers.
    let reason = "failed to parse field [message]: rejected by the probe test";
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &scenario.setup.bootstrap)
        .create()?;
    let headers = [
        ("kelp.dead_letter.stage", "index"),
        ("kelp.dead_letter.status", "400"),
        ("kelp.dead_letter.error_type", "mapper_parsing_exception"),
        ("kelp.dead_letter.reason", reason),
        (
            "kelp.dead_letter.source_topic",
            scenario.setup.topic.as_str(),
        ),
    ]
    .into_iter()
    .fold(OwnedHeaders::new(), |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(value),
        })
    });
    let payload = serde_json::json!({"message": pod.line}).to_string();
    producer
        .send(
            FutureRecord::to(&scenario.setup.dead_letter_topic)
                .key("unknown/0/0")
                .payload(&payload)
                .headers(headers),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(error, _)| anyhow::anyhow!("producing the dead letter failed: {error}"))?;

    let result = finish(child, &stderr, Duration::from_secs(120)).await?;
    ensure!(
        !result.success && result.stdout.starts_with("verdict: dead-lettered\n"),
        "want dead-lettered:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    for needle in ["status 400", "mapper_parsing_exception", reason] {
        ensure!(
            result.stdout.contains(needle),
            "{needle:?} not in the report:\n{}",
            result.stdout
        );
    }
    assert_pod_deleted(&scenario.namespace.0, &pod.name)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch k8s"]
async fn probe_pinned_to_a_missing_node_says_the_pod_never_wrote() -> anyhow::Result<()> {
    let scenario = Scenario::new("probe-unscheduled").await?;
    // Bound to a node that does not exist, the pod stays Pending with no
    // container status (the pod garbage collector waits 40 s to remove it).
    let (child, stderr) = scenario.start_probe(5, &["--node", "kelp-no-such-node"])?;
    let pod = probe_pod(&scenario.namespace.0).await?;

    let result = finish(child, &stderr, Duration::from_secs(120)).await?;
    ensure!(
        !result.success && result.stdout.starts_with("verdict: pod-did-not-write\n"),
        "want pod-did-not-write:\n{}\n{}",
        result.stdout,
        result.stderr
    );
    ensure!(
        result.stdout.contains("phase Pending on kelp-no-such-node"),
        "the report does not say where the pod is stuck:\n{}",
        result.stdout
    );
    assert_pod_deleted(&scenario.namespace.0, &pod.name)
}
