//! The deployer's health gates and index template install against the
//! testbed's real ZooKeeper, Kafka (KRaft and ZooKeeper mode), OpenSearch,
//! Elasticsearch 7 and 8, and kube-apiserver.

use std::time::Duration;

use anyhow::{Context, ensure};
use kelp_deployer::health::forward::forward;
use kelp_deployer::health::kafka::KafkaCluster;
use kelp_deployer::health::search::SearchHealth;
use kelp_deployer::health::template::install_index_template;
use kelp_deployer::health::zookeeper::ZooKeeperQuorum;
use kelp_deployer::health::{self, ClusterColor, Gate, GateStatus};
use kelp_deployer::stack::Stack;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use serde_json::{Value, json};

/// Long enough for a slow CI machine; the gates answer within seconds.
const DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(200);

/// An address nothing listens on: bound, noted, closed.
fn closed_address() -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.to_string())
}

fn reason(status: &GateStatus) -> &str {
    let (GateStatus::Healthy(text) | GateStatus::NotYet(text)) = status;
    text
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka-zk"]
async fn zookeeper_standalone_is_a_quorum_and_a_closed_port_is_named() -> anyhow::Result<()> {
    let zookeeper = kelp_tests::service("KELP_ZOOKEEPER", "kafka-zk")?;
    let gate = ZooKeeperQuorum::new(vec![zookeeper.clone()]);
    let status = gate.check().await;
    ensure!(
        status == GateStatus::Healthy(format!("standalone on {zookeeper}")),
        "{status:?}"
    );

    let closed = closed_address()?;
    let gate = ZooKeeperQuorum::new(vec![closed.clone()]);
    let status = gate.check().await;
    ensure!(
        !status.is_healthy() && reason(&status).starts_with(&closed),
        "{status:?}"
    );
    // The real server and a dead one: not a quorum, and the dead one is named.
    let gate = ZooKeeperQuorum::new(vec![zookeeper, closed.clone()]);
    let error = health::wait(&gate, Duration::from_millis(500), POLL, |_| {})
        .await
        .err()
        .context("a dead ensemble member passed the gate")?;
    ensure!(error.last_reason.starts_with(&closed), "{error}");
    ensure!(
        error
            .to_string()
            .starts_with("waiting for zookeeper quorum timed out after 0 s: "),
        "{error}"
    );
    Ok(())
}

async fn kafka_gates(bootstrap: &str) -> anyhow::Result<()> {
    let status = KafkaCluster::new(bootstrap.to_owned(), 1).check().await;
    ensure!(
        status.is_healthy() && reason(&status).starts_with("1 broker registered"),
        "{bootstrap}: {status:?}"
    );
    let status = KafkaCluster::new(bootstrap.to_owned(), 3).check().await;
    ensure!(
        !status.is_healthy() && reason(&status).starts_with("1 of 3 brokers registered"),
        "{bootstrap}: {status:?}"
    );

    let topic = kelp_tests::unique("gates");
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating admin client")?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin
        .create_topics(
            &[NewTopic::new(&topic, 2, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .context("creating topic")?
    {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name} failed: {code}"))?;
    }
    let gate = KafkaCluster::new(bootstrap.to_owned(), 1).with_topics(vec![topic.clone()], 1);
    let healthy = health::wait(&gate, DEADLINE, POLL, |_| {}).await;
    let missing = kelp_tests::unique("gates-missing");
    let status = KafkaCluster::new(bootstrap.to_owned(), 1)
        .with_topics(vec![topic.clone(), missing.clone()], 1)
        .check()
        .await;
    let _ = admin.delete_topics(&[&topic], &options).await;

    let healthy = healthy?;
    ensure!(
        healthy.contains(&format!("{topic} (2 partitions)")),
        "{bootstrap}: {healthy}"
    );
    ensure!(
        !status.is_healthy() && reason(&status) == format!("topic {missing} does not exist"),
        "{bootstrap}: {status:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn kafka_kraft_brokers_and_topics() -> anyhow::Result<()> {
    kafka_gates(&kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka-zk"]
async fn kafka_zookeeper_mode_brokers_and_topics() -> anyhow::Result<()> {
    kafka_gates(&kelp_tests::service("KELP_KAFKA_ZK_BOOTSTRAP", "kafka-zk")?).await
}

async fn search_gates(url: &str) -> anyhow::Result<()> {
    let yellow = SearchHealth::new(url.to_owned(), None, ClusterColor::Yellow);
    let text = health::wait(&yellow, DEADLINE, POLL, |_| {}).await?;
    ensure!(text.contains("1 node"), "{url}: {text}");

    // A replica cannot be assigned on a single node: yellow, never green.
    let http = reqwest::Client::new();
    let index = kelp_tests::unique("gates-replica");
    let created = http
        .put(format!("{url}/{index}"))
        .json(&json!({"settings": {"number_of_shards": 1, "number_of_replicas": 1}}))
        .send()
        .await
        .context("creating the index")?;
    ensure!(
        created.status().is_success(),
        "{url}: creating {index}: {}",
        created.text().await?
    );
    let status = SearchHealth::new(url.to_owned(), None, ClusterColor::Green)
        .check()
        .await;
    let _ = http.delete(format!("{url}/{index}")).send().await;
    ensure!(
        !status.is_healthy()
            && reason(&status).contains("want green")
            && reason(&status).contains("unassigned shards"),
        "{url}: {status:?}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up opensearch"]
async fn opensearch_cluster_health() -> anyhow::Result<()> {
    search_gates(&kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch"]
async fn elasticsearch7_cluster_health() -> anyhow::Result<()> {
    search_gates(&kelp_tests::service(
        "KELP_ELASTICSEARCH_URL",
        "elasticsearch",
    )?)
    .await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch8"]
async fn elasticsearch8_cluster_health() -> anyhow::Result<()> {
    search_gates(&kelp_tests::service(
        "KELP_ELASTICSEARCH8_URL",
        "elasticsearch8",
    )?)
    .await
}

async fn template_install(url: &str) -> anyhow::Result<()> {
    // A name and pattern of its own: templates of one priority must not
    // overlap, and other tests install `kelp-logs`.
    let name = kelp_tests::unique("gates-tpl");
    let stack = Stack::from_yaml_str(&format!(
        "elasticsearch: {{replicas: 1}}\n\
         shipper: {{index_template: \"{name}-{{kubernetes.namespace}}\", template: {{name: {name}}}}}\n"
    ))?;
    let first = install_index_template(url, None, &stack).await;
    let second = install_index_template(url, None, &stack).await;
    let http = reqwest::Client::new();
    let installed: Value = http
        .get(format!("{url}/_index_template/{name}"))
        .send()
        .await?
        .json()
        .await?;
    let _ = http
        .delete(format!("{url}/_index_template/{name}"))
        .send()
        .await;

    let first = first?;
    ensure!(
        first.starts_with(&format!("index template {name} installed on ")),
        "{url}: {first}"
    );
    let second = second?;
    ensure!(
        second.starts_with(&format!("index template {name} up to date on ")),
        "{url}: {second}"
    );
    let template = &installed["index_templates"][0]["index_template"];
    ensure!(
        template["index_patterns"] == json!([format!("{name}-*")])
            && template["_meta"]["managed_by"] == "kelp-shipper"
            && template["template"]["settings"]["index"]["number_of_replicas"] == "0"
            && template["template"]["mappings"]["properties"]["@timestamp"]["type"] == "date_nanos",
        "{url}: {installed}"
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up opensearch"]
async fn opensearch_index_template_install_is_idempotent() -> anyhow::Result<()> {
    template_install(&kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch8"]
async fn elasticsearch8_index_template_install_is_idempotent() -> anyhow::Result<()> {
    template_install(&kelp_tests::service(
        "KELP_ELASTICSEARCH8_URL",
        "elasticsearch8",
    )?)
    .await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up elasticsearch"]
async fn elasticsearch7_index_template_install_is_idempotent() -> anyhow::Result<()> {
    template_install(&kelp_tests::service(
        "KELP_ELASTICSEARCH_URL",
        "elasticsearch",
    )?)
    .await
}

fn kubectl() -> std::process::Command {
    std::process::Command::new(
        std::env::var("KELP_KUBECTL").unwrap_or_else(|_| "kubectl".to_owned()),
    )
}

/// Deletes the test's namespace.
struct Namespace(String);

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl()
            .args(["delete", "namespace", &self.0, "--wait=false"])
            .output();
    }
}

/// kwok pods have no kubelet, so the forward itself is refused: the test
/// proves the pod lookup, the local listener, that a refused forward closes
/// the local connection, and that dropping the forward stops listening.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up k8s"]
async fn port_forward_to_a_kwok_pod() -> anyhow::Result<()> {
    use tokio::io::AsyncReadExt as _;
    kelp_tests::service("KUBECONFIG", "k8s")?;
    let namespace = kelp_tests::unique("kelp-gates");
    let run = |args: &[&str]| -> anyhow::Result<()> {
        let out = kubectl().args(args).output().context("running kubectl")?;
        ensure!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(())
    };
    run(&["create", "namespace", &namespace])?;
    let _cleanup = Namespace(namespace.clone());
    run(&[
        "-n",
        &namespace,
        "run",
        "zookeeper-0",
        "--image=busybox",
        "--restart=Never",
        "--",
        "sleep",
        "3600",
    ])?;
    let client = kube::Client::try_default().await?;

    let missing = forward(client.clone(), &namespace, "zookeeper-9", 2181)
        .await
        .err()
        .context("a forward to a missing pod started")?;
    ensure!(
        missing.to_string().starts_with(&format!(
            "looking up pod {namespace}/zookeeper-9 for a port-forward failed"
        )),
        "{missing}"
    );

    let forwarded = forward(client, &namespace, "zookeeper-0", 2181).await?;
    let address = forwarded.local_addr();
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut buffer = Vec::new();
    let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut buffer))
        .await
        .context("the refused forward left the local connection open")?;
    ensure!(buffer.is_empty(), "{read:?}: {buffer:?}");

    drop(forwarded);
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    anyhow::bail!("{address} still accepts after the forward was dropped")
}
