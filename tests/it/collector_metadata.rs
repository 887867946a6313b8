//! kelp-collector's pod metadata against the testbed's real kube-apiserver:
//! labels, owner workload, node and image from a node-scoped watch; pods
//! and containers excluded by pod and namespace annotations; a multiline
//! rule chosen by annotation; and a deleted pod's last lines still labelled.

use kelp_tests::{TestNamespace, kubectl};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kelp_record::{Event, Flag};
use serde_json::{Value, json};

/// Runs kubectl with `args` (and `stdin`), returning its stdout.
fn kubectl_run(args: &[&str], stdin: Option<&Value>) -> anyhow::Result<String> {
    let mut child = kubectl()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running kubectl failed")?;
    {
        let mut input = child
            .stdin
            .take()
            .context("opening kubectl's stdin failed")?;
        if let Some(value) = stdin {
            input.write_all(&serde_json::to_vec(value)?)?;
        }
    }
    let output = child.wait_with_output()?;
    ensure!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8(output.stdout)?)
}

/// The collector process; killed if the test fails before stopping it.
struct Collector {
    child: Child,
    log: PathBuf,
}

impl Collector {
    fn start(config: &Path, log: PathBuf) -> anyhow::Result<Collector> {
        let child = Command::new(kelp_tests::fresh_binary(
            "kelp-collector",
            &["collector/src", "record/src"],
        )?)
        .arg("run")
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "info,kube=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(&log)?))
        .spawn()?;
        Ok(Collector { child, log })
    }

    fn stop(&mut self) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        let status = self.child.wait()?;
        ensure!(
            status.success(),
            "collector exited with {status}:\n{}",
            self.log_text()
        );
        Ok(())
    }

    fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn append(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::create_dir_all(path.parent().context("no parent")?)?;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn read_events(path: &Path) -> anyhow::Result<Vec<Event>> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .map(|line| Ok(Event::from_json(line.as_bytes())?))
        .collect()
}

/// Reads the file sink until `done` holds, for at most 60 s.
fn wait_for_events(
    path: &Path,
    collector: &Collector,
    done: impl Fn(&[Event]) -> bool,
) -> anyhow::Result<Vec<Event>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let events = read_events(path)?;
        if done(&events) {
            return Ok(events);
        }
        ensure!(
            Instant::now() < deadline,
            "events not there after 60 s; got {} events:\n{:#?}\ncollector log:\n{}",
            events.len(),
            events.iter().map(|e| &e.message).collect::<Vec<_>>(),
            collector.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn with_message<'a>(events: &'a [Event], needle: &str) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|event| event.message.contains(needle))
        .collect()
}

fn pod_object(
    namespace: &str,
    name: &str,
    node: &str,
    labels: Value,
    annotations: Value,
    containers: &[(&str, &str)],
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations},
        "spec": {
            "nodeName": node,
            "containers": containers
                .iter()
                .map(|(name, image)| json!({"name": name, "image": image}))
                .collect::<Vec<_>>(),
        },
    })
}

/// The uid of a pod, and of the first pod with a label for `-l`.
fn uid_of(namespace: &str, what: &[&str]) -> anyhow::Result<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut args = vec!["get", "pods", "-n", namespace, "-o", "json"];
        args.extend_from_slice(what);
        let list: Value = serde_json::from_str(&kubectl_run(&args, None)?)?;
        let item = match list.get("items") {
            Some(items) => items.get(0).cloned(),
            None => Some(list),
        };
        if let Some(pod) = item {
            let name = pod["metadata"]["name"].as_str().context("pod name")?;
            let uid = pod["metadata"]["uid"].as_str().context("pod uid")?;
            return Ok((name.to_owned(), uid.to_owned()));
        }
        ensure!(
            Instant::now() < deadline,
            "no pod {what:?} in {namespace} after 60 s"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn cri(line: &str, stream: &str) -> String {
    format!("2026-11-27T10:00:00.000000000Z {stream} F {line}\n")
}

const TRACE: [&str; 3] = [
    "java.lang.IllegalStateException: boom",
    "\tat com.shop.Cart.add(Cart.java:42)",
    "\tat com.shop.Api.post(Api.java:7)",
];

fn trace(tag: &str) -> String {
    TRACE
        .iter()
        .map(|line| cri(&format!("{line} {tag}"), "stderr"))
        .collect()
}

#[test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
fn collector_metadata_enriches_excludes_and_outlives_deleted_pods() -> anyhow::Result<()> {
    let kubeconfig = kelp_tests::service("KUBECONFIG", "k8s")?;
    let node = kubectl_run(
        &["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"],
        None,
    )?;
    ensure!(!node.is_empty(), "the testbed has no node");
    let ns = kelp_tests::unique("kelp-meta");
    kubectl_run(
        &["apply", "-f", "-"],
        Some(&json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": ns, "annotations": {"kelp.io/exclude-containers": "sidecar"}},
        })),
    )?;
    let _namespace = TestNamespace(ns.clone());

    // A Deployment's pod (owner ReplicaSet web-<hash>), an excluded pod, and
    // a bare pod that chooses java multiline and has an excluded sidecar.
    kubectl_run(
        &["apply", "-f", "-"],
        Some(&json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": ns},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "tier": "front"}},
                    "spec": {
                        "nodeName": node,
                        "containers": [{"name": "app", "image": "example.com/web:1.2.3"}],
                    },
                },
            },
        })),
    )?;
    for pod in [
        pod_object(
            &ns,
            "quiet",
            &node,
            json!({"app": "quiet"}),
            json!({"kelp.io/exclude": "true"}),
            &[("main", "example.com/quiet:1")],
        ),
        pod_object(
            &ns,
            "billing",
            &node,
            json!({"app": "billing"}),
            json!({"kelp.io/multiline": "java", "team": "payments", "other": "not shipped"}),
            &[
                ("app", "example.com/billing:7"),
                ("sidecar", "example.com/proxy:2"),
            ],
        ),
    ] {
        kubectl_run(&["apply", "-f", "-"], Some(&pod))?;
    }
    let (web, web_uid) = uid_of(&ns, &["-l", "app=web"])?;
    let (_, quiet_uid) = uid_of(&ns, &["quiet"])?;
    let (_, billing_uid) = uid_of(&ns, &["billing"])?;

    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let file = |pod: &str, uid: &str, container: &str, n: u32| {
        root.join(format!("pods/{ns}_{pod}_{uid}/{container}/{n}.log"))
    };
    let web_log = file(&web, &web_uid, "app", 0);
    let billing_log = file("billing", &billing_uid, "app", 0);
    append(
        &web_log,
        &format!("{}{}", cri("web ready", "stdout"), trace("web")),
    )?;
    append(
        &file("quiet", &quiet_uid, "main", 0),
        &format!("{}{}", cri("quiet 1", "stdout"), cri("quiet 2", "stdout")),
    )?;
    append(
        &billing_log,
        &format!("{}{}", cri("billing ready", "stdout"), trace("billing")),
    )?;
    append(
        &file("billing", &billing_uid, "sidecar", 0),
        &format!(
            "{}{}",
            cri("sidecar 1", "stdout"),
            cri("sidecar 2", "stdout")
        ),
    )?;

    // The configured rule is none: only the annotation joins billing's trace.
    let port = kelp_tests::free_port()?;
    let out = root.join("out.ndjson");
    let config = root.join("collector.yaml");
    fs::write(
        &config,
        format!(
            "node_name: {node}\n\
             tail:\n  include: [\"{root}/pods/*/*/*.log*\"]\n  poll_interval_ms: 20\n  glob_interval_ms: 100\n\
             parse:\n  multiline:\n    rule: none\n    flush_timeout_ms: 300\n\
             checkpoint:\n  path: {root}/state/checkpoints.json\n  interval_ms: 100\n\
             sink:\n  kind: file\n  path: {out}\n\
             metrics:\n  listen: 127.0.0.1:{port}\n\
             kubernetes:\n  enabled: true\n  kubeconfig: {kubeconfig}\n  include_annotations: [team]\n",
            root = root.display(),
            out = out.display(),
        ),
    )?;
    let mut collector = Collector::start(&config, root.join("collector.stderr"))?;

    let events = wait_for_events(&out, &collector, |events| {
        !with_message(events, "billing ready").is_empty()
            && !with_message(events, "Api.java:7) billing").is_empty()
            && with_message(events, "Api.java:7) web").len() == 1
            && !with_message(events, "web ready").is_empty()
    })?;

    let web_ready = with_message(&events, "web ready")[0];
    let k = &web_ready.kubernetes;
    assert_eq!(k.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(k.labels.get("tier").map(String::as_str), Some("front"));
    let owner = k.owner.as_ref().context("web has an owner")?;
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(
        k.node.as_ref().map(|n| n.name.as_str()),
        Some(node.as_str())
    );
    assert_eq!(k.container.image.as_deref(), Some("example.com/web:1.2.3"));
    assert!(k.annotations.is_empty(), "{:?}", k.annotations);
    // Rule none: each trace line of web is its own event.
    assert_eq!(with_message(&events, " web").len(), 3, "{events:#?}");

    // The annotation's java rule joined billing's trace into one event.
    let joined = with_message(&events, "boom billing");
    assert_eq!(joined.len(), 1, "{events:#?}");
    assert!(
        joined[0].message.contains("Api.java:7) billing"),
        "{:?}",
        joined[0].message
    );
    assert!(joined[0].log.flags.contains(&Flag::Multiline));
    let billing = &joined[0].kubernetes;
    assert_eq!(
        billing.labels.get("app").map(String::as_str),
        Some("billing")
    );
    assert_eq!(billing.owner, None);
    assert_eq!(
        billing.container.image.as_deref(),
        Some("example.com/billing:7")
    );
    // Only the allowed annotation is shipped.
    assert_eq!(
        billing.annotations.iter().collect::<Vec<_>>(),
        [(&"team".to_owned(), &"payments".to_owned())]
    );

    // The excluded pod's and the namespace-excluded sidecar's lines are counted, not shipped.
    let metrics = wait_for_metric(
        port,
        "kelp_collector_dropped_lines_total{reason=\"excluded\"}",
        4.0,
    )?;
    assert!(with_message(&events, "quiet").is_empty(), "{events:#?}");
    assert!(with_message(&events, "sidecar").is_empty(), "{events:#?}");
    assert_eq!(
        sample(&metrics, "kelp_collector_metadata_missing_total"),
        Some(0.0),
        "{metrics}"
    );

    // Delete billing; its file's later lines, and a file found only after
    // the deletion (a restarted container's 1.log), still carry its labels.
    kubectl_run(
        &[
            "delete",
            "pod",
            "billing",
            "-n",
            &ns,
            "--grace-period=0",
            "--force",
        ],
        None,
    )?;
    let gone = Instant::now() + Duration::from_secs(60);
    while kubectl_run(&["get", "pods", "-n", &ns, "-o", "name"], None)?.contains("pod/billing") {
        ensure!(Instant::now() < gone, "billing not deleted after 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The watch sees the deletion moments after the API server does.
    std::thread::sleep(Duration::from_secs(1));
    append(&billing_log, &cri("billing last words", "stdout"))?;
    append(
        &file("billing", &billing_uid, "app", 1),
        &cri("billing after restart", "stdout"),
    )?;
    let events = wait_for_events(&out, &collector, |events| {
        !with_message(events, "billing last words").is_empty()
            && !with_message(events, "billing after restart").is_empty()
    })?;
    for needle in ["billing last words", "billing after restart"] {
        let event = with_message(&events, needle)[0];
        assert_eq!(
            event.kubernetes.labels.get("app").map(String::as_str),
            Some("billing"),
            "{needle}: {event:?}"
        );
        assert_eq!(
            event.kubernetes.container.image.as_deref(),
            Some("example.com/billing:7")
        );
    }

    // A short-lived pod: created, two lines written, deleted at once.
    kubectl_run(
        &["apply", "-f", "-"],
        Some(&pod_object(
            &ns,
            "blink",
            &node,
            json!({"app": "blink"}),
            json!({}),
            &[("app", "example.com/blink:1")],
        )),
    )?;
    let (_, blink_uid) = uid_of(&ns, &["blink"])?;
    append(
        &file("blink", &blink_uid, "app", 0),
        &format!("{}{}", cri("blink 1", "stdout"), cri("blink 2", "stdout")),
    )?;
    kubectl_run(
        &[
            "delete",
            "pod",
            "blink",
            "-n",
            &ns,
            "--grace-period=0",
            "--force",
        ],
        None,
    )?;
    let events = wait_for_events(&out, &collector, |events| {
        with_message(events, "blink ").len() == 2
    })?;
    for event in with_message(&events, "blink ") {
        assert_eq!(
            event.kubernetes.labels.get("app").map(String::as_str),
            Some("blink"),
            "{event:?}"
        );
    }

    let metrics = get_metrics(port).unwrap_or_default();
    for (name, want) in [
        ("kelp_collector_metadata_synced{resource=\"pods\"}", 1.0),
        (
            "kelp_collector_metadata_synced{resource=\"namespaces\"}",
            1.0,
        ),
        ("kelp_collector_metadata_missing_total", 0.0),
        (
            "kelp_collector_dropped_lines_total{reason=\"excluded\"}",
            4.0,
        ),
    ] {
        assert_eq!(sample(&metrics, name), Some(want), "{name}:\n{metrics}");
    }
    collector.stop()?;
    Ok(())
}

fn get_metrics(port: u16) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stream, &mut text).ok()?;
    Some(text)
}

/// The value of one sample (`name{labels}`) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `/metrics` until `name` reaches `want`.
fn wait_for_metric(port: u16, name: &str, want: f64) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = get_metrics(port).unwrap_or_default();
        if sample(&text, name) == Some(want) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "{name} is {:?}, not {want}, after 60 s:\n{text}",
            sample(&text, name)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
