//! The end-to-end fault suite: container log files → kelp-collector → Kafka →
//! kelp-shipper → OpenSearch, while the collector and the shipper are
//! SIGKILLed, the Kafka broker is restarted and the search engine is stopped
//! for a minute. At the end every line must be indexed exactly once.
//!
//! Each run has its own private testbed (Kafka in one mode, OpenSearch), so
//! its faults disturb no other test. `KELP_E2E_LINES` (lines per pod,
//! default 6000) and `KELP_OUTAGE_SECS` (default 60) size it.

use std::collections::BTreeMap;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use crate::collector_kafka::{collector, kill, terminate, write_config, write_with_rotation};
use crate::shipper_support::{Engine, PrivateTestbed, Shipper, ShipperSetup};

/// The bar: at least this many faults per run.
const MIN_FAULTS: u32 = 20;

fn env_or(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[derive(Debug, Default)]
struct Faults {
    collector_kills: u32,
    shipper_kills: u32,
    broker_restarts: u32,
    engine_outages: u32,
}

impl Faults {
    fn total(&self) -> u32 {
        self.collector_kills + self.shipper_kills + self.broker_restarts + self.engine_outages
    }
}

/// Parses `pod=<p> seq=<n>` from a message.
fn line_key(message: &str) -> Option<(u32, u64)> {
    let mut words = message.split_whitespace();
    let pod = words.next()?.strip_prefix("pod=")?.parse().ok()?;
    let seq = words.next()?.strip_prefix("seq=")?.parse().ok()?;
    Some((pod, seq))
}

async fn run_suite(kafka_service: &str, bootstrap_var: &str) -> anyhow::Result<()> {
    let lines = env_or("KELP_E2E_LINES", 6_000);
    let outage = Duration::from_secs(env_or("KELP_OUTAGE_SECS", 60));
    let testbed = PrivateTestbed::up(&[kafka_service, "opensearch"])?;
    let bootstrap = testbed.env(bootstrap_var)?;
    let engine_url = testbed.env("KELP_OPENSEARCH_URL")?;

    let mut setup = ShipperSetup::new("e2e", &bootstrap, &engine_url);
    // Static membership: a restarted shipper takes its partitions back at once.
    setup.instance_id = Some(format!("{}-0", setup.prefix));
    let dir = tempfile::tempdir()?;
    let config = write_config(dir.path(), &bootstrap, &setup.topic, "")?;

    let mut collector_child: Child = collector(&config, false)?;
    let mut shipper = Shipper::start(&setup)?;
    let root = dir.path().to_owned();
    // About 100 lines a second per pod, so the run outlasts the outage.
    let writer = std::thread::spawn(move || {
        write_with_rotation(&root, lines, 2_000, Duration::from_millis(100))
    });

    let started = Instant::now();
    let mut faults = Faults::default();
    let mut outage_since: Option<Instant> = None;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut turn = 0u32;
    while !writer.is_finished() || outage_since.is_some() || faults.total() < MIN_FAULTS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(500 + seed % 1_500));
        match (outage_since, faults.engine_outages) {
            (None, 0) if started.elapsed() > Duration::from_secs(8) => {
                testbed.run("stop", &["opensearch"])?;
                outage_since = Some(Instant::now());
                faults.engine_outages += 1;
            }
            (Some(since), _) if since.elapsed() >= outage => {
                testbed.run("start", &["opensearch"])?;
                outage_since = None;
            }
            _ => {}
        }
        // Kills are cheap and broker restarts take seconds: two kills of each
        // process per broker restart.
        match turn % 5 {
            0 | 2 => {
                kill(&mut collector_child)?;
                collector_child = collector(&config, false)?;
                faults.collector_kills += 1;
            }
            1 | 3 => {
                shipper.kill()?;
                shipper = Shipper::start(&setup)?;
                faults.shipper_kills += 1;
            }
            _ => {
                testbed.run("stop", &[kafka_service])?;
                std::thread::sleep(Duration::from_secs(2));
                testbed.run("start", &[kafka_service])?;
                faults.broker_restarts += 1;
            }
        }
        turn += 1;
    }
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;

    let written = lines * 3;
    let engine = Engine::new(&engine_url);
    let pattern = setup.pattern();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut count = 0;
    while Instant::now() < deadline {
        count = engine.count(&pattern).await.unwrap_or(count);
        if count >= written {
            break;
        }
        ensure!(
            shipper.is_running(),
            "kelp-shipper exited:\n{}",
            shipper.log_tail()
        );
        ensure!(
            collector_child.try_wait()?.is_none(),
            "kelp-collector exited"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // A little longer, so late duplicates would show up in the count.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let messages = engine.messages(&pattern).await?;
    let mut seen: BTreeMap<(u32, u64), u32> = BTreeMap::new();
    for message in &messages {
        let key = line_key(message).with_context(|| format!("unexpected document {message:?}"))?;
        *seen.entry(key).or_default() += 1;
    }
    let indexed = u64::try_from(messages.len())?;
    let distinct = u64::try_from(seen.len())?;
    let lost = written.saturating_sub(distinct);
    let duplicated = indexed - distinct;
    println!(
        "e2e {kafka_service}: lines written {written}, indexed {indexed}, lost {lost}, \
         duplicated {duplicated}; faults {} (collector SIGKILL {}, shipper SIGKILL {}, \
         broker restart {}, search engine stopped {}s x{})",
        faults.total(),
        faults.collector_kills,
        faults.shipper_kills,
        faults.broker_restarts,
        outage.as_secs(),
        faults.engine_outages
    );
    terminate(&mut collector_child)?;
    let status = shipper.terminate(Duration::from_secs(30)).await?;
    ensure!(status.success(), "kelp-shipper exited with {status}");
    ensure!(lost == 0, "{lost} lines lost");
    ensure!(duplicated == 0, "{duplicated} lines duplicated");
    ensure!(
        faults.total() >= MIN_FAULTS,
        "only {} faults injected",
        faults.total()
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs Java and Maven for a private testbed (kafka, opensearch); stops and starts them"]
async fn fault_e2e_kraft() -> anyhow::Result<()> {
    run_suite("kafka", "KELP_KAFKA_BOOTSTRAP").await
}

#[tokio::test]
#[ignore = "needs Java and Maven for a private testbed (kafka-zk, opensearch); stops and starts them"]
async fn fault_e2e_zookeeper() -> anyhow::Result<()> {
    run_suite("kafka-zk", "KELP_KAFKA_ZK_BOOTSTRAP").await
}
