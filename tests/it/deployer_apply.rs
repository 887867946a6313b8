//! `kelp apply`, `plan`, `status` and `destroy` against the testbed's real
//! kube-apiserver with kwok nodes (which make pods Ready and complete Job
//! pods, but run nothing). The health gates are pointed with
//! `--health-endpoint` at the testbed's real ZooKeeper, Kafka (ZooKeeper
//! mode) and Elasticsearch 8, and at a small fake Kibana in this file that
//! answers `/api/status` and the saved-objects import like Kibana does.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context as _, ensure};
use serde_json::{Value, json};

use kelp_tests::kubectl;

/// Deletes the test's namespace and cluster-wide objects if the test
/// stops before its own `destroy --purge-data`.
struct Cleanup(kelp_tests::TestNamespace);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for kind in ["clusterrole", "clusterrolebinding"] {
            let _ = kubectl()
                .args([
                    "delete",
                    kind,
                    &format!("kelp-collector-{}", self.0.0),
                    "--ignore-not-found",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A Kibana stand-in: `GET /api/status` says available (8.x format),
/// `POST /api/saved_objects/_import` answers success for every object of
/// the uploaded NDJSON and counts the imports, `POST
/// /api/data_views/default` acknowledges.
struct FakeKibana {
    address: String,
    imports: Arc<AtomicUsize>,
}

impl FakeKibana {
    fn start() -> anyhow::Result<FakeKibana> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?.to_string();
        let imports = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&imports);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    let _ = serve(stream, &counter);
                });
            }
        });
        Ok(FakeKibana { address, imports })
    }
}

/// Answers one request and closes the connection.
fn serve(stream: TcpStream, imports: &AtomicUsize) -> anyhow::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let path = request_line.split(' ').nth(1).unwrap_or("");
    let (status, answer) = if request_line.starts_with("GET ") && path.starts_with("/api/status") {
        (
            200,
            json!({"version": {"number": "8.19.21"},
                   "status": {"overall": {"level": "available", "summary": "All services are available"}}}),
        )
    } else if request_line.starts_with("POST ") && path.starts_with("/api/saved_objects/_import") {
        imports.fetch_add(1, Ordering::SeqCst);
        // The NDJSON is inside the multipart body: one object per line.
        let results: Vec<Value> = String::from_utf8_lossy(&body)
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|o| o["type"].is_string() && o["id"].is_string())
            .map(|o| json!({"type": o["type"], "id": o["id"], "meta": {}}))
            .collect();
        (
            200,
            json!({"success": true, "successCount": results.len(), "successResults": results}),
        )
    } else if request_line.starts_with("POST ") && path.starts_with("/api/data_views/default") {
        (200, json!({"acknowledged": true}))
    } else {
        (404, json!({"statusCode": 404, "error": "Not Found"}))
    };
    let text = answer.to_string();
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    )?;
    stream.flush()?;
    Ok(())
}

/// Runs `kelp` with arguments; returns its output.
fn kelp(binary: &Path, args: &[&str]) -> anyhow::Result<Output> {
    let output = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running kelp failed")?;
    println!(
        "kelp {}: {}\n--- stdout\n{}--- stderr (tail)\n{}",
        args.first().copied().unwrap_or(""),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        tail(&String::from_utf8_lossy(&output.stderr), 15)
    );
    Ok(output)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n") + "\n"
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Every object kelp applies in the namespace (and its cluster-wide ones),
/// as `kind/name` to (resourceVersion, generation, kelp's managedFields
/// entry).
fn snapshot(namespace: &str) -> anyhow::Result<Vec<(String, String, Value, Value)>> {
    let kinds = "statefulsets,deployments,daemonsets,jobs,services,configmaps,serviceaccounts,poddisruptionbudgets";
    let mut items = Vec::new();
    for args in [
        vec!["-n", namespace, "get", kinds],
        vec![
            "get",
            "clusterroles,clusterrolebindings",
            "-l",
            &format!("app.kubernetes.io/instance={namespace}"),
        ],
    ] {
        let output = kubectl()
            .args(&args)
            .args(["-o", "json", "--show-managed-fields"])
            .output()?;
        ensure!(
            output.status.success(),
            "kubectl get failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let list: Value = serde_json::from_slice(&output.stdout)?;
        for item in list["items"].as_array().into_iter().flatten() {
            let kelp_entry = item["metadata"]["managedFields"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["manager"] == "kelp")
                .cloned()
                .unwrap_or(Value::Null);
            items.push((
                format!(
                    "{}/{}",
                    item["kind"].as_str().unwrap_or(""),
                    item["metadata"]["name"].as_str().unwrap_or("")
                ),
                item["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned(),
                item["metadata"]["generation"].clone(),
                kelp_entry,
            ));
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(items)
}

fn count_pvcs(namespace: &str) -> anyhow::Result<usize> {
    let output = kubectl()
        .args(["-n", namespace, "get", "pvc", "-o", "json"])
        .output()?;
    ensure!(output.status.success(), "kubectl get pvc failed");
    let list: Value = serde_json::from_slice(&output.stdout)?;
    Ok(list["items"].as_array().map_or(0, Vec::len))
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up k8s kafka-zk elasticsearch8"]
fn apply_converges_is_idempotent_rolls_only_changes_and_destroy_keeps_data() -> anyhow::Result<()> {
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let zookeeper = kelp_tests::service("KELP_ZOOKEEPER", "kafka-zk")?;
    let kafka = kelp_tests::service("KELP_KAFKA_ZK_BOOTSTRAP", "kafka-zk")?;
    let elasticsearch = kelp_tests::service("KELP_ELASTICSEARCH8_URL", "elasticsearch8")?;
    let class = std::env::var("KELP_K8S_STORAGE_CLASS").unwrap_or_else(|_| "kelp-test".to_owned());
    let binary = kelp_tests::fresh_binary("kelp", &["deployer/src"])?;

    // Namespaces must be DNS labels: at most 63 characters.
    let namespace: String = kelp_tests::unique("kelp-apply").chars().take(50).collect();
    let _cleanup = Cleanup(kelp_tests::TestNamespace(namespace.clone()));
    let logs_topic = format!("{namespace}-logs");
    let dead_letter_topic = format!("{namespace}-dlq");
    // kwok runs no containers, so the topic Job only "succeeds": create the
    // topics it would have created, where the Kafka gate looks for them.
    let runtime = tokio::runtime::Runtime::new()?;
    for topic in [&logs_topic, &dead_letter_topic] {
        runtime.block_on(crate::shipper_support::create_topic(&kafka, topic))?;
    }
    let kibana = FakeKibana::start()?;

    let dir = tempfile::tempdir()?;
    let stack_path = dir.path().join("stack.yaml");
    let stack = |max_events: u32, kafka_gib: u32| {
        format!(
            "namespace: {namespace}\n\
             storage: {{storage_class: \"{class}\"}}\n\
             zookeeper: {{replicas: 1}}\n\
             kafka:\n  replicas: 1\n  volume_size_gib: {kafka_gib}\n  default_replication_factor: 1\n  min_insync_replicas: 1\n  \
             topics:\n    logs: {{name: {logs_topic}, partitions: 3, retention_hours: 1}}\n    \
             dead_letter: {{name: {dead_letter_topic}, partitions: 3, retention_hours: 1}}\n\
             elasticsearch: {{replicas: 1, security: false}}\n\
             shipper: {{bulk: {{max_events: {max_events}}}}}\n"
        )
    };
    std::fs::write(&stack_path, stack(2000, 100))?;
    let stack_arg = stack_path.to_str().context("temp path is not utf-8")?;
    let endpoints = [
        format!("zookeeper={zookeeper}"),
        format!("kafka={kafka}"),
        format!("elasticsearch={elasticsearch}"),
        format!("kibana=http://{}", kibana.address),
    ];
    let mut gated: Vec<&str> = vec!["--stack", stack_arg];
    for endpoint in &endpoints {
        gated.extend(["--health-endpoint", endpoint.as_str()]);
    }
    let with = |command: &str, extra: &[&str]| -> Vec<String> {
        std::iter::once(command)
            .chain(gated.iter().copied())
            .chain(extra.iter().copied())
            .map(str::to_owned)
            .collect()
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        kelp(&binary, &args)
    };

    // 1. A plan of the empty namespace creates everything.
    let plan = run(vec!["plan".into(), "--stack".into(), stack_arg.into()])?;
    ensure!(plan.status.success(), "kelp plan failed");
    ensure!(
        stdout(&plan).contains("create  StatefulSet/kafka")
            && stdout(&plan).contains("0 to change"),
        "the first plan creates every object"
    );

    // 2. The full stack converges: every step's rollout and gate pass.
    let first = run(with("apply", &["--timeout-secs", "180"]))?;
    ensure!(first.status.success(), "the first kelp apply failed");
    let text = stdout(&first);
    for line in [
        "Created: StatefulSet/zookeeper",
        "Created: StatefulSet/kafka",
        "Created: StatefulSet/elasticsearch",
        "Created: Deployment/kibana",
        "Created: DaemonSet/kelp-collector",
        "zookeeper: 3 objects (3 created, 0 changed, 0 unchanged); healthy: ",
        "kafka topics: 1 objects (1 created, 0 changed, 0 unchanged); healthy: ",
        "elasticsearch: 4 objects (4 created, 0 changed, 0 unchanged); healthy: ",
        "kibana: 3 objects (3 created, 0 changed, 0 unchanged); healthy: ",
        "dashboards: imported",
        "applied: ",
    ] {
        ensure!(
            text.contains(line),
            "the first apply's report lacks {line:?}"
        );
    }
    ensure!(
        kibana.imports.load(Ordering::SeqCst) == 1,
        "the dashboards were imported once"
    );
    ensure!(
        count_pvcs(&namespace)? == 3,
        "one claim each for zookeeper, kafka, elasticsearch"
    );

    // 3. Status is healthy.
    let status = run(with("status", &[]))?;
    ensure!(
        status.status.success(),
        "kelp status failed on a converged stack"
    );
    ensure!(stdout(&status).contains("the stack is healthy"));

    // 4. A second apply changes nothing.
    let before = snapshot(&namespace)?;
    ensure!(before.len() >= 30, "{} objects seen", before.len());
    let second = run(with("apply", &["--timeout-secs", "60"]))?;
    ensure!(second.status.success(), "the second kelp apply failed");
    ensure!(
        stdout(&second).contains("nothing to do"),
        "the second apply reports nothing to do"
    );
    let after = snapshot(&namespace)?;
    ensure!(before.len() == after.len(), "the same objects");
    for (b, a) in before.iter().zip(&after) {
        ensure!(b.0 == a.0, "the same objects: {} / {}", b.0, a.0);
        // kelp's own write would move its managedFields entry and the
        // generation; a controller's status update may move only the
        // resourceVersion of a workload, never of the others.
        ensure!(b.2 == a.2 && b.3 == a.3, "the second apply wrote {}", b.0);
        let workload = [
            "StatefulSet/",
            "Deployment/",
            "DaemonSet/",
            "Job/",
            "PodDisruptionBudget/",
        ]
        .iter()
        .any(|k| b.0.starts_with(k));
        ensure!(
            workload || b.1 == a.1,
            "{} changed resourceVersion {} -> {}",
            b.0,
            b.1,
            a.1
        );
    }
    ensure!(
        kibana.imports.load(Ordering::SeqCst) == 1,
        "an unchanged apply does not import the dashboards again"
    );

    // 5. A config change plans and rolls only the shipper.
    std::fs::write(&stack_path, stack(1000, 100))?;
    let plan = run(vec!["plan".into(), "--stack".into(), stack_arg.into()])?;
    ensure!(plan.status.success(), "kelp plan failed");
    let plan_text = stdout(&plan);
    ensure!(
        plan_text.contains("change  ConfigMap/kelp-shipper-config")
            && plan_text.contains("change  Deployment/kelp-shipper")
            && plan_text.contains("/spec/template/metadata/annotations/kelp.io~1config-hash")
            && plan_text.contains("plan: 0 to create, 2 to change"),
        "the plan shows exactly the shipper's config and deployment"
    );
    let before = snapshot(&namespace)?;
    let third = run(with("apply", &["--timeout-secs", "60"]))?;
    ensure!(third.status.success(), "the third kelp apply failed");
    let changed: Vec<String> = stdout(&third)
        .lines()
        .filter(|l| {
            l.trim_start().starts_with("Changed:") || l.trim_start().starts_with("Created:")
        })
        .map(|l| l.trim().to_owned())
        .collect();
    ensure!(
        changed
            == [
                "Changed: ConfigMap/kelp-shipper-config",
                "Changed: Deployment/kelp-shipper"
            ],
        "only the shipper changed: {changed:?}"
    );
    let after = snapshot(&namespace)?;
    for (b, a) in before.iter().zip(&after) {
        let rolled = b.2 != a.2;
        ensure!(
            rolled == (b.0 == "Deployment/kelp-shipper"),
            "{} generation {} -> {}",
            b.0,
            b.2,
            a.2
        );
    }

    // 5b. A bigger Kafka volume grows the claim in place and re-creates the
    // StatefulSet around the running pod (its claim template is immutable).
    let uid = |kind: &str, name: &str| -> anyhow::Result<String> {
        let out = kubectl()
            .args([
                "-n",
                &namespace,
                "get",
                kind,
                name,
                "-o",
                "jsonpath={.metadata.uid}",
            ])
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let (sts_before, pod_before) = (uid("statefulset", "kafka")?, uid("pod", "kafka-0")?);
    std::fs::write(&stack_path, stack(1000, 120))?;
    let grown = run(with("apply", &["--timeout-secs", "120"]))?;
    ensure!(grown.status.success(), "the growing kelp apply failed");
    ensure!(
        stdout(&grown).contains("Changed: StatefulSet/kafka"),
        "the StatefulSet is re-applied"
    );
    let size = kubectl()
        .args([
            "-n",
            &namespace,
            "get",
            "pvc",
            "data-kafka-0",
            "-o",
            "jsonpath={.spec.resources.requests.storage}",
        ])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&size.stdout).trim() == "120Gi",
        "the claim asks for 120Gi: {}",
        String::from_utf8_lossy(&size.stdout)
    );
    ensure!(
        uid("statefulset", "kafka")? != sts_before,
        "the StatefulSet was re-created"
    );
    ensure!(
        uid("pod", "kafka-0")? == pod_before,
        "the broker pod kept running"
    );

    // 6. Destroy keeps the claims; status then fails.
    let destroy = run(vec!["destroy".into(), "--stack".into(), stack_arg.into()])?;
    ensure!(destroy.status.success(), "kelp destroy failed");
    ensure!(stdout(&destroy).contains("kept: PersistentVolumeClaim/data-kafka-0"));
    ensure!(count_pvcs(&namespace)? == 3, "destroy keeps the claims");
    ensure!(
        snapshot(&namespace)?.iter().all(|o| [
            "ConfigMap/kelp-dashboards-import",
            "ConfigMap/kube-root-ca.crt",
            "ServiceAccount/default"
        ]
        .contains(&o.0.as_str())),
        "destroy deletes every applied object"
    );
    let status = run(with("status", &[]))?;
    ensure!(
        !status.status.success(),
        "kelp status fails on a destroyed stack"
    );

    // 7. --purge-data refuses without confirmation, then deletes the claims.
    let refused = run(vec![
        "destroy".into(),
        "--stack".into(),
        stack_arg.into(),
        "--purge-data".into(),
    ])?;
    ensure!(
        !refused.status.success(),
        "--purge-data without --yes is refused off a terminal"
    );
    ensure!(
        count_pvcs(&namespace)? == 3,
        "a refused purge deletes nothing"
    );
    let purge = run(vec![
        "destroy".into(),
        "--stack".into(),
        stack_arg.into(),
        "--purge-data".into(),
        "--yes".into(),
    ])?;
    ensure!(
        purge.status.success(),
        "kelp destroy --purge-data --yes failed"
    );
    let namespace_left = kubectl()
        .args([
            "get",
            "namespace",
            &namespace,
            "--ignore-not-found",
            "-o",
            "name",
        ])
        .output()?;
    ensure!(
        String::from_utf8_lossy(&namespace_left.stdout)
            .trim()
            .is_empty(),
        "the purge deletes the namespace with its claims"
    );
    Ok(())
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up k8s kafka-zk"]
fn a_stuck_rollout_times_out_showing_the_pods_state_and_events() -> anyhow::Result<()> {
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let zookeeper = kelp_tests::service("KELP_ZOOKEEPER", "kafka-zk")?;
    let class = std::env::var("KELP_K8S_STORAGE_CLASS").unwrap_or_else(|_| "kelp-test".to_owned());
    let binary = kelp_tests::fresh_binary("kelp", &["deployer/src"])?;
    let namespace: String = kelp_tests::unique("kelp-stuck").chars().take(50).collect();
    let _cleanup = Cleanup(kelp_tests::TestNamespace(namespace.clone()));
    let dir = tempfile::tempdir()?;
    let stack_path = dir.path().join("stack.yaml");
    // More memory than any kwok node has (256 GiB): the pod never schedules.
    std::fs::write(
        &stack_path,
        format!(
            "namespace: {namespace}\nstorage: {{storage_class: \"{class}\"}}\n\
             zookeeper: {{replicas: 1, resources: {{cpu_request_millis: 100, memory_mib: 400000}}}}\n"
        ),
    )?;
    let stack_arg = stack_path.to_str().context("temp path is not utf-8")?;
    let endpoint = format!("zookeeper={zookeeper}");
    let output = kelp(
        &binary,
        &[
            "apply",
            "--stack",
            stack_arg,
            "--timeout-secs",
            "10",
            "--health-endpoint",
            &endpoint,
        ],
    )?;
    ensure!(!output.status.success(), "a stuck apply fails");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for wanted in [
        "zookeeper: waiting for the rollout of StatefulSet/zookeeper timed out after 10 s",
        "pod zookeeper-0 (Pending, no node, not ready)",
        "Insufficient memory",
        "event: Warning FailedScheduling",
    ] {
        ensure!(
            stderr.contains(wanted),
            "the error lacks {wanted:?}:\n{stderr}"
        );
    }
    let destroy = kelp(
        &binary,
        &["destroy", "--stack", stack_arg, "--purge-data", "--yes"],
    )?;
    ensure!(
        destroy.status.success(),
        "kelp destroy --purge-data --yes failed"
    );
    Ok(())
}
