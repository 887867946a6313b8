//! Helpers for the shipper's integration tests: realistic events, Kafka
//! topics and offsets, the search engine's view of the index, and the
//! shipper as a real child process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use kelp_record::{
    Container, ContainerName, Event, EventId, EventMeta, Flag, Host, KelpMeta, Kubernetes, Log,
    LogFile, Node, Owner, Pod, Stream,
};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{Value, json};
use tokio::time::Instant;

pub(crate) const PARTITIONS: i32 = 3;

const NAMESPACES: [&str; 5] = ["shop", "payments", "kube-system", "monitoring", "default"];
const LEVELS: [&str; 4] = ["info", "warn", "error", "debug"];

/// Event `i` of a test: namespaces, pods, streams and days vary with `i`;
/// the event id (file identity, byte offset) is unique per `i`.
pub(crate) fn event(i: usize) -> Event {
    let namespace = NAMESPACES[i % NAMESPACES.len()];
    let pod_index = (i / NAMESPACES.len()) % 4;
    let app = format!("{namespace}-api");
    let pod = format!("{app}-7d4b9c6f5-{pod_index:05}");
    let uid = format!("0f0e0d0c-0b0a-0908-0706-{:012x}", i % 20);
    let file_identity = 0x5eed_0000_0000_0000 + (i % 20) as u64;
    let day = 25 + i % 3;
    let second_of_day = (i * 37) % 86_400;
    let timestamp = format!(
        "2026-11-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
        (i * 7919) % 1_000_000_000
    );
    Event {
        timestamp,
        message: format!(
            "GET /api/v1/orders/{i} 200 {}ms user=u{} trace={:016x}",
            i % 300,
            i % 97,
            i * 2_654_435_761
        ),
        stream: if i.is_multiple_of(7) {
            Stream::Stderr
        } else {
            Stream::Stdout
        },
        log: Log {
            file: LogFile {
                path: format!("/var/log/pods/{namespace}_{pod}_{uid}/api/0.log"),
            },
            offset: (i as u64) * 512,
            flags: if i.is_multiple_of(11) {
                vec![Flag::Partial]
            } else {
                Vec::new()
            },
            level: Some(LEVELS[i % LEVELS.len()].to_owned()),
        },
        kubernetes: Kubernetes {
            namespace: namespace.to_owned(),
            pod: Pod {
                name: pod.clone(),
                uid,
            },
            container: ContainerName {
                name: "api".to_owned(),
                image: Some(format!("registry.example/{namespace}/api:1.{}.0", i % 5)),
            },
            node: Some(Node {
                name: format!("node-{}", i % 3),
            }),
            labels: BTreeMap::from([
                ("app".to_owned(), app.clone()),
                ("app.kubernetes.io/name".to_owned(), app.clone()),
            ]),
            annotations: BTreeMap::new(),
            owner: Some(Owner {
                kind: "ReplicaSet".to_owned(),
                name: format!("{app}-7d4b9c6f5"),
            }),
        },
        container: Container {
            id: Some(format!("containerd://{:016x}", file_identity)),
            runtime: "cri".to_owned(),
        },
        host: Host {
            name: format!("node-{}", i % 3),
        },
        event: EventMeta {
            id: EventId::new(file_identity, (i as u64) * 512),
            ingested: None,
        },
        kelp: KelpMeta::default(),
    }
}

/// Events `range` as Kafka records: key = pod name (a pod's lines stay in
/// order on one partition), payload = the record's JSON.
pub(crate) fn records(range: std::ops::Range<usize>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| {
            let e = event(i);
            (e.kubernetes.pod.name.clone(), e.to_json())
        })
        .collect()
}

/// The ids of events `range`, as the shipper writes them to `_id`.
pub(crate) fn ids(range: std::ops::Range<usize>) -> BTreeSet<String> {
    range.map(|i| event(i).event.id.to_string()).collect()
}

/// Creates a topic with [`PARTITIONS`] partitions.
pub(crate) async fn create_topic(bootstrap: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating admin client")?;
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, PARTITIONS, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .context("creating topic")?;
    for result in created {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name} failed: {code}"))?;
    }
    Ok(())
}

/// Produces records (acks=all, idempotent) and waits for every delivery.
pub(crate) async fn produce(
    bootstrap: &str,
    topic: &str,
    records: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .context("creating producer")?;
    for chunk in records.chunks(5_000) {
        let mut deliveries = Vec::with_capacity(chunk.len());
        for (key, payload) in chunk {
            let record = FutureRecord::to(topic).key(key).payload(payload);
            let delivery = producer
                .send_result(record)
                .map_err(|(error, _)| anyhow::anyhow!("enqueueing a record failed: {error}"))?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            delivery
                .await
                .context("producer dropped a delivery")?
                .map_err(|(error, _)| anyhow::anyhow!("producing a record failed: {error}"))?;
        }
    }
    Ok(())
}

/// Per partition: the group's committed offset (`-1` when none) and the
/// high watermark.
pub(crate) async fn offsets(
    bootstrap: &str,
    group: &str,
    topic: &str,
) -> anyhow::Result<Vec<(i64, i64)>> {
    let (bootstrap, group, topic) = (bootstrap.to_owned(), group.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        // A consumer that never subscribes does not join the group.
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create()
            .context("creating offsets consumer")?;
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition(&topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .context("reading committed offsets")?;
        let mut out = Vec::new();
        for p in 0..PARTITIONS {
            let committed = match committed.find_partition(&topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            };
            let (_, high) = consumer
                .fetch_watermarks(&topic, p, Duration::from_secs(10))
                .context("reading watermarks")?;
            out.push((committed, high));
        }
        Ok(out)
    })
    .await?
}

/// A record read back from a topic.
#[derive(Debug)]
pub(crate) struct ReadRecord {
    pub(crate) key: Option<String>,
    pub(crate) payload: Vec<u8>,
    pub(crate) headers: BTreeMap<String, String>,
}

/// Reads `topic` from the beginning until `want` records or the timeout.
pub(crate) async fn read_topic(
    bootstrap: &str,
    topic: &str,
    want: usize,
    timeout: Duration,
) -> anyhow::Result<Vec<ReadRecord>> {
    use rdkafka::message::{Headers, Message};
    let (bootstrap, topic) = (bootstrap.to_owned(), topic.to_owned());
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", kelp_tests::unique("it-reader"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .context("creating reader")?;
        consumer.subscribe(&[&topic]).context("subscribing")?;
        let deadline = std::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < want && std::time::Instant::now() < deadline {
            let Some(message) = consumer.poll(Duration::from_millis(200)) else {
                continue;
            };
            let Ok(message) = message else {
                continue;
            };
            let mut headers = BTreeMap::new();
            if let Some(hs) = message.headers() {
                for h in hs.iter() {
                    let value = h.value.map(|v| String::from_utf8_lossy(v).into_owned());
                    headers.insert(h.key.to_owned(), value.unwrap_or_default());
                }
            }
            out.push(ReadRecord {
                key: message
                    .key()
                    .map(|k| String::from_utf8_lossy(k).into_owned()),
                payload: message.payload().unwrap_or_default().to_vec(),
                headers,
            });
        }
        Ok(out)
    })
    .await?
}

/// The search engine, over plain HTTP.
#[derive(Debug, Clone)]
pub(crate) struct Engine {
    pub(crate) url: String,
    http: reqwest::Client,
}

impl Engine {
    pub(crate) fn new(url: &str) -> Engine {
        Engine {
            url: url.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let text = response.text().await?;
        ensure!(status.is_success(), "{method} {path}: {status}: {text}");
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: not json: {text}"))
    }

    /// Refreshes the indices of `pattern` and counts their documents.
    pub(crate) async fn count(&self, pattern: &str) -> anyhow::Result<u64> {
        self.request(reqwest::Method::POST, &format!("/{pattern}/_refresh"), None)
            .await?;
        let v = self
            .request(reqwest::Method::GET, &format!("/{pattern}/_count"), None)
            .await?;
        v["count"].as_u64().context("no count")
    }

    /// Every `_id` in `pattern`.
    pub(crate) async fn ids(&self, pattern: &str) -> anyhow::Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        self.each_hit(pattern, json!(false), |hit| {
            out.insert(hit["_id"].as_str().context("no _id")?.to_owned());
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// The `message` of every document in `pattern`.
    pub(crate) async fn messages(&self, pattern: &str) -> anyhow::Result<Vec<String>> {
        let mut out = Vec::new();
        self.each_hit(pattern, json!(["message"]), |hit| {
            out.push(
                hit["_source"]["message"]
                    .as_str()
                    .context("no message")?
                    .to_owned(),
            );
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Calls `each` for every document in `pattern` with the given
    /// `_source` filter, paging with `search_after` on `event.id`.
    async fn each_hit(
        &self,
        pattern: &str,
        source: Value,
        mut each: impl FnMut(&Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let mut after: Option<Value> = None;
        loop {
            let mut body = json!({
                "size": 5000,
                "_source": source,
                "query": {"match_all": {}},
                "sort": [{"event.id": "asc"}],
            });
            if let Some(after) = &after {
                body["search_after"] = after.clone();
            }
            let v = self
                .request(
                    reqwest::Method::POST,
                    &format!("/{pattern}/_search"),
                    Some(body),
                )
                .await?;
            let hits = v["hits"]["hits"].as_array().context("no hits")?;
            if hits.is_empty() {
                return Ok(());
            }
            for hit in hits {
                each(hit)?;
            }
            after = hits.last().map(|h| h["sort"].clone());
        }
    }

    /// The mapping of every index of `pattern`.
    pub(crate) async fn mapping(&self, pattern: &str) -> anyhow::Result<Value> {
        self.request(reqwest::Method::GET, &format!("/{pattern}/_mapping"), None)
            .await
    }

    /// One document by a term query on `event.id`.
    pub(crate) async fn find(&self, pattern: &str, id: &str) -> anyhow::Result<Option<Value>> {
        let v = self
            .request(
                reqwest::Method::POST,
                &format!("/{pattern}/_search"),
                Some(json!({"query": {"term": {"event.id": id}}})),
            )
            .await?;
        Ok(v["hits"]["hits"]
            .as_array()
            .and_then(|h| h.first())
            .cloned())
    }
}

/// What varies between the tests' shipper configurations.
#[derive(Debug, Clone)]
pub(crate) struct ShipperSetup {
    pub(crate) bootstrap: String,
    pub(crate) topic: String,
    pub(crate) group: String,
    pub(crate) engine_url: String,
    /// Index names start with this, e.g. `kelp-it-happy-123-456`.
    pub(crate) prefix: String,
    pub(crate) dead_letter_topic: String,
    pub(crate) max_events: usize,
    pub(crate) max_in_flight: usize,
    pub(crate) instance_id: Option<String>,
    /// More lines of the `elasticsearch:` section (`auth:`, `tls:`), indented.
    pub(crate) elasticsearch_extra: String,
}

impl ShipperSetup {
    pub(crate) fn new(name: &str, bootstrap: &str, engine_url: &str) -> ShipperSetup {
        let prefix = kelp_tests::unique(&format!("kelp-it-{name}"));
        ShipperSetup {
            bootstrap: bootstrap.to_owned(),
            topic: format!("{prefix}-events"),
            group: format!("{prefix}-group"),
            engine_url: engine_url.to_owned(),
            dead_letter_topic: format!("{prefix}-dead-letter"),
            prefix,
            max_events: 500,
            max_in_flight: 2,
            instance_id: None,
            elasticsearch_extra: String::new(),
        }
    }

    /// The index pattern of everything this setup writes.
    pub(crate) fn pattern(&self) -> String {
        format!("{}-*", self.prefix)
    }

    fn yaml(&self, metrics_port: u16) -> String {
        let instance = self
            .instance_id
            .as_ref()
            .map(|id| format!("  group_instance_id: {id}\n"))
            .unwrap_or_default();
        format!(
            "kafka:
  bootstrap_servers: [\"{bootstrap}\"]
  topics: [\"{topic}\"]
  group_id: \"{group}\"
{instance}  session_timeout_ms: 10000
  commit_interval_ms: 500
  properties:
    topic.metadata.refresh.interval.ms: 2000
    statistics.interval.ms: 1000
elasticsearch:
  urls: [\"{url}\"]
  index_template: \"{prefix}-{{kubernetes.namespace}}-{{@timestamp:%Y.%m.%d}}\"
  request_timeout_ms: 10000
{elasticsearch_extra}bulk:
  max_events: {max_events}
  max_in_flight: {max_in_flight}
  linger_ms: 200
  gzip: true
  retry_base_ms: 100
  retry_cap_ms: 2000
  revoke_drain_timeout_ms: 5000
dead_letter:
  topic: \"{dlq}\"
template:
  name: \"{prefix}\"
  replicas: 0
  retention_days: 3
metrics:
  listen_address: \"127.0.0.1:{metrics_port}\"
",
            bootstrap = self.bootstrap,
            topic = self.topic,
            group = self.group,
            url = self.engine_url,
            prefix = self.prefix,
            max_events = self.max_events,
            max_in_flight = self.max_in_flight,
            dlq = self.dead_letter_topic,
            elasticsearch_extra = self.elasticsearch_extra,
        )
    }
}

/// A running `kelp-shipper run` process; killed when dropped.
#[derive(Debug)]
pub(crate) struct Shipper {
    child: Child,
    pub(crate) log: PathBuf,
    pub(crate) metrics_port: u16,
    _dir: tempfile::TempDir,
}

impl Shipper {
    /// Starts the built binary with a config from `setup`; its log goes to a file.
    pub(crate) fn start(setup: &ShipperSetup) -> anyhow::Result<Shipper> {
        let binary = kelp_tests::fresh_binary("kelp-shipper", &["shipper/src", "record/src"])?;
        let dir = tempfile::tempdir()?;
        let metrics_port = kelp_tests::free_port()?;
        let config = dir.path().join("shipper.yaml");
        std::fs::write(&config, setup.yaml(metrics_port))?;
        let log = dir.path().join("shipper.log");
        let file = std::fs::File::create(&log)?;
        let child = Command::new(binary)
            .args(["--log", "info,librdkafka=warn", "run", "--config"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .context("starting kelp-shipper")?;
        Ok(Shipper {
            child,
            log,
            metrics_port,
            _dir: dir,
        })
    }

    /// The log so far.
    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines of the log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let text = self.log_text();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// Whether the process still runs.
    pub(crate) fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: no drain, no commit.
    pub(crate) fn kill(&mut self) -> anyhow::Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then waits for the exit.
    pub(crate) async fn terminate(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        ensure!(status.success(), "kill -TERM failed: {status}");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!(
                    "kelp-shipper did not exit within {timeout:?} of SIGTERM:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// GET on the metrics endpoint: status and body.
    pub(crate) async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let response = reqwest::get(format!("http://127.0.0.1:{}{path}", self.metrics_port))
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        Ok((status, response.text().await?))
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` every 500 ms until it returns `Some`, or fails after `timeout`.
pub(crate) async fn wait_for<T, F, Fut>(
    what: &str,
    timeout: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match check().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what} (last error: {last_error:?})");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the index holds `want` documents, failing early if the
/// shipper dies, and checks that it never holds more.
pub(crate) async fn wait_for_count(
    engine: &Engine,
    pattern: &str,
    want: u64,
    timeout: Duration,
    shippers: &mut [&mut Shipper],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last = 0;
    loop {
        if let Ok(count) = engine.count(pattern).await {
            ensure!(
                count <= want,
                "{count} documents, more than the {want} sent"
            );
            if count == want {
                return Ok(());
            }
            last = count;
        }
        for shipper in shippers.iter_mut() {
            ensure!(
                shipper.is_running(),
                "kelp-shipper exited early:\n{}",
                shipper.log_tail()
            );
        }
        if Instant::now() >= deadline {
            let logs: Vec<String> = shippers.iter().map(|s| s.log_tail()).collect();
            bail!(
                "timed out with {last} of {want} documents:\n{}",
                logs.join("\n---\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the group's committed offsets reach every partition's end.
pub(crate) async fn wait_for_commits_at_end(setup: &ShipperSetup) -> anyhow::Result<()> {
    wait_for(
        "offsets committed to the end",
        Duration::from_secs(60),
        || async {
            let offsets = offsets(&setup.bootstrap, &setup.group, &setup.topic).await?;
            Ok(offsets.iter().all(|(c, h)| c == h).then_some(()))
        },
    )
    .await
}

/// A testbed of this test's own (its own state dir, ports and data), for
/// faults that must not disturb the other tests; brought down when dropped.
#[derive(Debug)]
pub(crate) struct PrivateTestbed {
    dir: tempfile::TempDir,
}

impl PrivateTestbed {
    pub(crate) fn up(services: &[&str]) -> anyhow::Result<PrivateTestbed> {
        let dir = tempfile::Builder::new()
            .prefix("kelp-tb-private-")
            .tempdir()?;
        let testbed = PrivateTestbed { dir };
        testbed.run("up", services)?;
        Ok(testbed)
    }

    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("testbed")
            .join("testbed")
    }

    pub(crate) fn run(&self, verb: &str, services: &[&str]) -> anyhow::Result<String> {
        let output = Command::new(Self::script())
            .arg(verb)
            .args(services)
            .env("KELP_TESTBED_DIR", self.dir.path())
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running testbed {verb}"))?;
        ensure!(
            output.status.success(),
            "testbed {verb} {services:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// A variable from `testbed env`, e.g. `KELP_OPENSEARCH_URL`.
    pub(crate) fn env(&self, var: &str) -> anyhow::Result<String> {
        let text = self.run("env", &[])?;
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("export {var}=")))
            .map(|v| v.trim_matches(['"', '\'']).to_owned())
            .with_context(|| format!("{var} not in testbed env: {text}"))
    }
}

impl Drop for PrivateTestbed {
    fn drop(&mut self) {
        let _ = self.run("down", &[]);
    }
}
