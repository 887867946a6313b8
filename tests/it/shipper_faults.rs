//! The shipper under faults: killed mid-stream, the search engine gone for
//! a minute, records the search engine or the decoder refuses, and a second
//! shipper joining the group mid-stream. Each ends with exactly one document
//! per valid record and the offsets committed to the end.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, ensure};
use serde_json::Value;

use crate::shipper_support::{
    Engine, PrivateTestbed, Shipper, ShipperSetup, create_topic, event, ids, offsets, produce,
    read_topic, records, wait_for, wait_for_commits_at_end, wait_for_count,
};

async fn stop(shipper: &mut Shipper) -> anyhow::Result<()> {
    let status = shipper.terminate(Duration::from_secs(30)).await?;
    ensure!(
        status.success(),
        "kelp-shipper exited with {status} after SIGTERM:\n{}",
        shipper.log_tail()
    );
    Ok(())
}

/// A small pseudo-random number in `0..bound` from the clock.
fn random_below(bound: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    u64::from(nanos.wrapping_mul(2_654_435_761)) % bound.max(1)
}

/// SIGKILL four times at random moments while 20 000 records are shipped,
/// with static membership so each restart takes over the same partitions:
/// at the end exactly 20 000 documents.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_survives_sigkill() -> anyhow::Result<()> {
    const EVENTS: usize = 20_000;
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let engine = Engine::new(&url);
    let mut setup = ShipperSetup::new("kill", &bootstrap, &url);
    setup.max_events = 200;
    setup.max_in_flight = 1;
    setup.instance_id = Some("kelp-shipper-0".to_owned());
    create_topic(&bootstrap, &setup.topic).await?;
    produce(&bootstrap, &setup.topic, &records(0..EVENTS)).await?;
    let pattern = setup.pattern();

    let mut counts = Vec::new();
    for _ in 0..4 {
        let mut shipper = Shipper::start(&setup)?;
        tokio::time::sleep(Duration::from_millis(1_000 + random_below(2_000))).await;
        ensure!(
            shipper.is_running(),
            "kelp-shipper exited early:\n{}",
            shipper.log_tail()
        );
        shipper.kill()?;
        counts.push(engine.count(&pattern).await.unwrap_or(0));
    }
    ensure!(
        counts.last().copied().unwrap_or(0) < EVENTS as u64,
        "everything was shipped before the last kill ({counts:?}): the kills proved nothing"
    );
    let mut shipper = Shipper::start(&setup)?;
    wait_for_count(
        &engine,
        &pattern,
        EVENTS as u64,
        Duration::from_secs(180),
        &mut [&mut shipper],
    )
    .await
    .with_context(|| format!("counts after each kill: {counts:?}"))?;
    ensure!(engine.ids(&pattern).await? == ids(0..EVENTS), "ids differ");
    wait_for_commits_at_end(&setup).await?;
    stop(&mut shipper).await
}

/// The search engine stops for `KELP_OUTAGE_SECS` (default 60) while records
/// arrive: the shipper keeps running, `/readyz` says it is not ready, and
/// no offset moves past what was indexed before the stop. Once the engine is
/// back, everything is indexed exactly once.
///
/// It runs its own OpenSearch (a private testbed state dir), so stopping it
/// cannot disturb the tests that share the testbed.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka (starts its own opensearch)"]
async fn shipper_survives_search_engine_outage() -> anyhow::Result<()> {
    const EVENTS: usize = 10_000;
    let outage = Duration::from_secs(
        std::env::var("KELP_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let testbed = PrivateTestbed::up(&["opensearch"])?;
    let url = testbed.env("KELP_OPENSEARCH_URL")?;
    let engine = Engine::new(&url);
    let setup = ShipperSetup::new("outage", &bootstrap, &url);
    let pattern = setup.pattern();
    create_topic(&bootstrap, &setup.topic).await?;

    // Phase 1: half of the records, fully indexed and committed.
    let half = EVENTS / 2;
    produce(&bootstrap, &setup.topic, &records(0..half)).await?;
    let mut shipper = Shipper::start(&setup)?;
    wait_for_count(
        &engine,
        &pattern,
        half as u64,
        Duration::from_secs(120),
        &mut [&mut shipper],
    )
    .await?;
    wait_for_commits_at_end(&setup).await?;
    let indexed_before: Vec<i64> = offsets(&bootstrap, &setup.group, &setup.topic)
        .await?
        .iter()
        .map(|(committed, _)| *committed)
        .collect();

    // Phase 2: the engine goes away, the other half arrives.
    testbed.run("stop", &["opensearch"])?;
    produce(&bootstrap, &setup.topic, &records(half..EVENTS)).await?;
    let until = tokio::time::Instant::now() + outage;
    let mut saw_not_ready = false;
    while tokio::time::Instant::now() < until {
        ensure!(
            shipper.is_running(),
            "kelp-shipper exited during the outage:\n{}",
            shipper.log_tail()
        );
        let now = offsets(&bootstrap, &setup.group, &setup.topic).await?;
        for (p, ((committed, _), before)) in now.iter().zip(&indexed_before).enumerate() {
            // Nothing can be indexed while the engine is down, so nothing
            // past what was indexed before may be committed.
            ensure!(
                committed == before,
                "partition {p}: committed {committed} during the outage, but only {before} were indexed"
            );
        }
        if let Ok((503, _)) = shipper.get("/readyz").await {
            saw_not_ready = true;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    ensure!(
        saw_not_ready,
        "/readyz never said not ready during the outage"
    );
    let (_, lag_metrics) = shipper.get("/metrics").await?;
    ensure!(
        lag_metrics.contains("kelp_shipper_documents_retried_total{reason=\"connection\"}"),
        "no connection retries counted"
    );

    // Phase 3: the engine is back.
    testbed.run("start", &["opensearch"])?;
    wait_for_count(
        &engine,
        &pattern,
        EVENTS as u64,
        Duration::from_secs(180),
        &mut [&mut shipper],
    )
    .await?;
    ensure!(engine.ids(&pattern).await? == ids(0..EVENTS), "ids differ");
    wait_for_commits_at_end(&setup).await?;
    wait_for(
        "/readyz to say ready again",
        Duration::from_secs(30),
        || async { Ok(matches!(shipper.get("/readyz").await, Ok((200, _))).then_some(())) },
    )
    .await?;
    stop(&mut shipper).await
}

/// A record whose field conflicts with the mapping, one that is not JSON and
/// one of a newer schema go to the dead-letter topic with their reasons;
/// everything else is indexed and the offsets move past all three.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_dead_letters_poison_records() -> anyhow::Result<()> {
    const EVENTS: usize = 2_000;
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let engine = Engine::new(&url);
    let setup = ShipperSetup::new("poison", &bootstrap, &url);
    create_topic(&bootstrap, &setup.topic).await?;

    // log.offset is mapped `long`: a word there is a mapping conflict.
    let poison_event = event(EVENTS + 1);
    let poison_id = poison_event.event.id.to_string();
    let mut poison: Value = serde_json::from_slice(&poison_event.to_json())?;
    poison["log"]["offset"] = Value::from("not-a-number");
    let mut newer: Value = serde_json::from_slice(&event(EVENTS + 2).to_json())?;
    newer["kelp"]["schema"] = Value::from(99);
    let not_json = b"{\"@timestamp\": \"2026-11-27T20:17:29Z\", oops".to_vec();
    let bad = vec![
        ("poison".to_owned(), serde_json::to_vec(&poison)?),
        ("poison".to_owned(), not_json.clone()),
        ("poison".to_owned(), serde_json::to_vec(&newer)?),
    ];
    produce(&bootstrap, &setup.topic, &records(0..EVENTS / 2)).await?;
    produce(&bootstrap, &setup.topic, &bad).await?;
    produce(&bootstrap, &setup.topic, &records(EVENTS / 2..EVENTS)).await?;

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
    wait_for_commits_at_end(&setup).await?;
    ensure!(engine.ids(&pattern).await? == ids(0..EVENTS), "ids differ");

    // Exactly the three bad records, once each (a fourth never comes).
    let letters = read_topic(
        &bootstrap,
        &setup.dead_letter_topic,
        4,
        Duration::from_secs(15),
    )
    .await?;
    ensure!(letters.len() == 3, "dead letters: {letters:?}");
    let by_type = |t: &str| {
        letters
            .iter()
            .find(|l| {
                l.headers
                    .get("kelp.dead_letter.error_type")
                    .map(String::as_str)
                    == Some(t)
            })
            .with_context(|| format!("no dead letter of type {t}: {letters:?}"))
    };
    let mapping = by_type("mapper_parsing_exception")?;
    ensure!(
        mapping.headers["kelp.dead_letter.stage"] == "index",
        "{mapping:?}"
    );
    ensure!(
        mapping.headers["kelp.dead_letter.status"] == "400",
        "{mapping:?}"
    );
    ensure!(
        mapping.headers["kelp.dead_letter.reason"].contains("log.offset"),
        "{mapping:?}"
    );
    ensure!(
        mapping.headers["kelp.dead_letter.source_topic"] == setup.topic,
        "{mapping:?}"
    );
    ensure!(
        mapping.headers["kelp.dead_letter.index"].starts_with(&setup.prefix),
        "{mapping:?}"
    );
    let document: Value = serde_json::from_slice(&mapping.payload)?;
    ensure!(document["event"]["id"] == poison_id.as_str(), "{document}");
    ensure!(document["log"]["offset"] == "not-a-number", "{document}");
    let partition = &mapping.headers["kelp.dead_letter.source_partition"];
    let offset = &mapping.headers["kelp.dead_letter.source_offset"];
    ensure!(
        mapping.key.as_deref() == Some(&format!("{}/{partition}/{offset}", setup.topic)),
        "{mapping:?}"
    );

    let decode = by_type("invalid_json")?;
    ensure!(
        decode.headers["kelp.dead_letter.stage"] == "decode",
        "{decode:?}"
    );
    ensure!(
        !decode.headers.contains_key("kelp.dead_letter.status"),
        "{decode:?}"
    );
    ensure!(decode.payload == not_json, "the original bytes: {decode:?}");
    let schema = by_type("unsupported_schema")?;
    ensure!(
        schema.headers["kelp.dead_letter.reason"].contains("99"),
        "{schema:?}"
    );

    let (_, metrics) = shipper.get("/metrics").await?;
    for reason in ["mapper_parsing", "invalid_json", "unsupported_schema"] {
        ensure!(
            metrics.contains(&format!(
                "kelp_shipper_documents_dead_lettered_total{{reason=\"{reason}\"}} 1"
            )),
            "no dead-letter count for {reason}"
        );
    }
    stop(&mut shipper).await
}

/// A second shipper joins the group mid-stream: cooperative rebalancing
/// moves a partition to it, the first drains and hands over, and the two
/// together index every record exactly once.
#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka opensearch"]
async fn shipper_rebalances_between_two_instances() -> anyhow::Result<()> {
    const EVENTS: usize = 20_000;
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let url = kelp_tests::service("KELP_OPENSEARCH_URL", "opensearch")?;
    let engine = Engine::new(&url);
    let mut setup = ShipperSetup::new("rebalance", &bootstrap, &url);
    setup.max_events = 100;
    setup.max_in_flight = 1;
    let pattern = setup.pattern();
    create_topic(&bootstrap, &setup.topic).await?;
    produce(&bootstrap, &setup.topic, &records(0..EVENTS / 2)).await?;

    let mut first = Shipper::start(&setup)?;
    wait_for(
        "the first shipper to index some",
        Duration::from_secs(60),
        || async { Ok((engine.count(&pattern).await? >= 1_000).then_some(())) },
    )
    .await?;
    let mut second = Shipper::start(&setup)?;
    wait_for(
        "the second shipper to get partitions",
        Duration::from_secs(60),
        || {
            let text = second.log_text();
            let topic = setup.topic.clone();
            async move {
                Ok(text
                    .lines()
                    .any(|l| l.contains("partitions assigned") && l.contains(&topic))
                    .then_some(()))
            }
        },
    )
    .await?;
    let mid = engine.count(&pattern).await?;
    produce(&bootstrap, &setup.topic, &records(EVENTS / 2..EVENTS)).await?;
    wait_for_count(
        &engine,
        &pattern,
        EVENTS as u64,
        Duration::from_secs(180),
        &mut [&mut first, &mut second],
    )
    .await?;
    ensure!(engine.ids(&pattern).await? == ids(0..EVENTS), "ids differ");
    ensure!(
        first.log_text().contains("partitions revoked"),
        "the first shipper never gave up a partition:\n{}",
        first.log_tail()
    );
    ensure!(
        mid < EVENTS as u64,
        "all records were indexed before the second shipper joined"
    );
    wait_for_commits_at_end(&setup).await?;
    stop(&mut second).await?;
    stop(&mut first).await
}
