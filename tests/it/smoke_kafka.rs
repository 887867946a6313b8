//! Proves the testbed's Kafka is real: create a topic, produce with the
//! collector's producer settings, consume everything back.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, ensure};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

const MESSAGES: usize = 200;
const PARTITIONS: i32 = 3;

async fn produce_and_consume(bootstrap: &str) -> anyhow::Result<()> {
    let topic = kelp_tests::unique("smoke");

    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating admin client")?;
    let created = admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await
        .context("creating topic")?;
    for result in created {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name} failed: {code}"))?;
    }

    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("compression.type", "lz4")
        .create()
        .context("creating producer")?;
    for i in 0..MESSAGES {
        let payload = format!("line {i}");
        let key = format!("k{}", i % 7);
        producer
            .send(
                FutureRecord::to(&topic).payload(&payload).key(&key),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(error, _)| anyhow::anyhow!("producing message {i} failed: {error}"))?;
    }

    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", kelp_tests::unique("smoke-group"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating consumer")?;
    consumer.subscribe(&[&topic]).context("subscribing")?;

    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while seen.len() < MESSAGES {
        let message = tokio::time::timeout_at(deadline, consumer.recv())
            .await
            .with_context(|| format!("timed out after {} of {MESSAGES} messages", seen.len()))?
            .context("consuming")?;
        let payload = message.payload_view::<str>().context("no payload")??;
        ensure!(
            seen.insert(payload.to_owned()),
            "duplicate message {payload}"
        );
    }
    let want: BTreeSet<String> = (0..MESSAGES).map(|i| format!("line {i}")).collect();
    ensure!(seen == want, "consumed set differs from produced set");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn kafka_kraft_produce_consume() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    produce_and_consume(&bootstrap).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka-zk"]
async fn kafka_zookeeper_produce_consume() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_ZK_BOOTSTRAP", "kafka-zk")?;
    produce_and_consume(&bootstrap).await
}
