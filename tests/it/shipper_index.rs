//! The shipper end to end on the happy path: Kafka records become exactly
//! one document each, mapped as the template says, with offsets committed
//! to the end; and a replay from the start overwrites instead of adding.

use std::time::Duration;

use anyhow::{Context, ensure};

use crate::shipper_support::{
    Engine, Shipper, ShipperSetup, create_topic, event, ids, produce, records, wait_for,
    wait_for_commits_at_end, wait_for_count,
};

const EVENTS: usize = 2_000;

/// Ships [`EVENTS`] records into `engine_url` and checks every property of
/// the result; returns the setup and the running shipper for more checks.
async fn ship_all(name: &str, engine_url: &str) -> anyhow::Result<(ShipperSetup, Shipper)> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let setup = ShipperSetup::new(name, &bootstrap, engine_url);
    let engine = Engine::new(engine_url);
    create_topic(&bootstrap, &setup.topic).await?;
    produce(&bootstrap, &setup.topic, &records(0..EVENTS)).await?;

    let mut shipper = Shipper::start(&setup)?;
    let pattern = setup.pattern();
    wait_for_count(
        &engine,
        &pattern,
        EVENTS as u64,
        Duration::from_secs(120),
        &mut [&mut shipper],
    )
    .await?;

    // Every event is there, under its own id.
    let got = engine.ids(&pattern).await?;
    ensure!(
        got == ids(0..EVENTS),
        "the indexed ids differ from the events' ids"
    );

    // The index the event names, and the document is the record plus event.ingested.
    let first = event(0);
    let hit = engine
        .find(&pattern, &first.event.id.to_string())
        .await?
        .context("event 0 not found")?;
    ensure!(
        hit["_index"] == format!("{}-shop-2026.11.25", setup.prefix),
        "event 0 in the wrong index: {hit}"
    );
    let source = &hit["_source"];
    ensure!(source["message"] == first.message.as_str(), "{source}");
    ensure!(source["@timestamp"] == first.timestamp.as_str(), "{source}");
    ensure!(
        source["kubernetes"]["labels"]["app.kubernetes.io/name"] == "shop-api",
        "{source}"
    );
    ensure!(
        source["event"]["ingested"].is_string(),
        "no event.ingested: {source}"
    );

    // The template's mapping, not a dynamic one, in every index.
    let mappings = engine.mapping(&pattern).await?;
    let indices = mappings.as_object().context("mapping is not an object")?;
    ensure!(
        indices.len() == 15,
        "5 namespaces x 3 days, got {}",
        indices.len()
    );
    for (index, mapping) in indices {
        let props = &mapping["mappings"]["properties"];
        ensure!(
            props["@timestamp"]["type"] == "date_nanos",
            "{index}: @timestamp is {}",
            props["@timestamp"]
        );
        ensure!(
            props["kubernetes"]["properties"]["namespace"]["type"] == "keyword",
            "{index}: kubernetes.namespace is {}",
            props["kubernetes"]["properties"]["namespace"]
        );
        ensure!(
            props["log"]["properties"]["offset"]["type"] == "long",
            "{index}"
        );
    }

    wait_for_commits_at_end(&setup).await?;

    let (status, body) = shipper.get("/readyz").await?;
    ensure!(status == 200, "/readyz: {status} {body}");
    let (status, metrics) = shipper.get("/metrics").await?;
    ensure!(status == 200, "/metrics: {status}");
    let indexed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kelp_shipper_documents_indexed_total "))
        .context("no documents_indexed metric")?
        .trim()
        .parse()?;
    ensure!(
        indexed >= EVENTS as f64,
        "documents_indexed_total {indexed}"
    );
    // librdkafka's statistics (every second here) report the lag per partition.
    wait_for(
        "consumer lag 0 on every partition",
        Duration::from_secs(30),
        || async {
            let (_, metrics) = shipper.get("/metrics").await?;
            let lags: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("kelp_shipper_consumer_lag{"))
                .collect();
            Ok((lags.len() == 3 && lags.iter().all(|l| l.ends_with(" 0"))).then_some(()))
        },
    )
    .await?;
    Ok((setup, shipper))
}

async fn stop(mut shipper: Shipper) -> anyhow::Result<()> {
    let status = shipper.terminate(Duration::from_secs(30)).await?;
    ensure!(
        status.success(),
        "kelp-shipper exited with {status} after SIGTERM:\n{}",
        shipper.log_tail()
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_indexes_into_opensearch() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let (_, shipper) = ship_all("os", &url).await?;
    stop(shipper).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka elasticsearch"]
async fn shipper_indexes_into_elasticsearch7() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_ELASTICSEARCH_URL", "elasticsearch")?;
    let (_, shipper) = ship_all("es7", &url).await?;
    stop(shipper).await
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka elasticsearch8"]
async fn shipper_indexes_into_elasticsearch8() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_ELASTICSEARCH8_URL", "elasticsearch8")?;
    let (_, shipper) = ship_all("es8", &url).await?;
    stop(shipper).await
}

/// A new group reads the topic from the start into the same indices: the
/// documents are overwritten (newer `event.ingested`), never added.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_replay_overwrites() -> anyhow::Result<()> {
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let (mut setup, shipper) = ship_all("replay", &url).await?;
    stop(shipper).await?;
    let engine = Engine::new(&url);
    let pattern = setup.pattern();
    let id = event(7).event.id.to_string();
    let before = engine.find(&pattern, &id).await?.context("event 7")?;

    setup.group = format!("{}-replay", setup.group);
    let mut replay = Shipper::start(&setup)?;
    // The new group reaching the end means it sent every record again.
    wait_for_commits_at_end(&setup).await?;
    wait_for_count(
        &engine,
        &pattern,
        EVENTS as u64,
        Duration::from_secs(30),
        &mut [&mut replay],
    )
    .await?;
    ensure!(
        engine.ids(&pattern).await? == ids(0..EVENTS),
        "ids differ after the replay"
    );
    let after = engine.find(&pattern, &id).await?.context("event 7")?;
    ensure!(
        after["_source"]["event"]["ingested"] != before["_source"]["event"]["ingested"],
        "the replay did not overwrite: {before} vs {after}"
    );
    stop(replay).await
}
