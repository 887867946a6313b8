//! kelp-collector against real Kafka: tricky inputs in batch mode, SIGKILLs
//! during kubelet-style rotation, a broker outage, and an event the broker
//! refuses as too large.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kelp_record::{Event, Flag};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

pub(crate) const POD_A: &str = "pods/shop_web-7d9f_0b1c2d3e-aaaa-bbbb-cccc-111122223333/app";
const POD_B: &str = "pods/pay_api-1_9f8e7d6c-aaaa-bbbb-cccc-444455556666/api";
const POD_C: &str = "pods/ops_agent-x_5a5a5a5a-aaaa-bbbb-cccc-777788889999/main";

pub(crate) fn write_config(
    dir: &Path,
    bootstrap: &str,
    topic: &str,
    extra: &str,
) -> anyhow::Result<PathBuf> {
    let path = dir.join("collector.yaml");
    fs::write(
        &path,
        format!(
            "node_name: node-it\n\
             tail:\n  include: [\"{root}/pods/*/*/*.log*\"]\n  poll_interval_ms: 20\n  glob_interval_ms: 200\n  rotated_flush_ms: 500\n\
             checkpoint:\n  path: {root}/state/checkpoints.json\n  interval_ms: 100\n\
             sink:\n  kind: kafka\n  bootstrap_servers: {bootstrap}\n  topic: {topic}\n  linger_ms: 5\n  message_max_bytes: 4194304\n\
             {extra}",
            root = dir.display()
        ),
    )?;
    Ok(path)
}

pub(crate) fn append(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::create_dir_all(path.parent().context("no parent")?)?;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}

pub(crate) fn collector(config: &Path, batch: bool) -> anyhow::Result<Child> {
    let mut command = Command::new(kelp_tests::binary("kelp-collector")?);
    command.arg("run").arg("--config").arg(config);
    if batch {
        command.arg("--batch");
    }
    Ok(command
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()?)
}

/// Reads `topic` from the beginning until `done` says so or `timeout`
/// passes. `done` is asked after each quiet second and every 2000 events, so
/// a large topic costs linear time.
async fn consume_until(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
    mut done: impl FnMut(&[Event]) -> bool,
) -> anyhow::Result<Vec<Event>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", kelp_tests::unique("it-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut events = Vec::new();
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            Ok(message) => {
                let message = message?;
                let payload = message.payload().context("message without payload")?;
                events.push(Event::from_json(payload)?);
                if events.len() % 2000 == 0 && done(&events) {
                    break;
                }
            }
            Err(_quiet) => {
                if done(&events) {
                    break;
                }
            }
        }
    }
    Ok(events)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn collector_batch_ships_tricky_logs_to_kafka() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let dir = tempfile::tempdir()?;
    let topic = kelp_tests::unique("collector-batch");

    let a = dir.path().join(POD_A).join("0.log");
    let mut cri = Vec::new();
    cri.extend_from_slice(b"2026-11-27T10:00:00.5Z stdout F containerd short fraction\n");
    cri.extend_from_slice(b"2026-11-27T10:00:01.000000001Z stdout P joined \n");
    cri.extend_from_slice(b"2026-11-27T10:00:01.100000000Z stderr F Exception in thread \"main\" java.lang.IllegalStateException: boom\n");
    cri.extend_from_slice(b"2026-11-27T10:00:01.200000000Z stdout F partial line\n");
    cri.extend_from_slice(
        b"2026-11-27T10:00:01.300000000Z stderr F \tat com.shop.Cart.add(Cart.java:42)\n",
    );
    cri.extend_from_slice(
        b"2026-11-27T10:00:01.400000000Z stderr F Caused by: java.io.IOException: disk\n",
    );
    cri.extend_from_slice(b"2026-11-27T10:00:01.500000000Z stderr F \t... 12 more\n");
    cri.extend_from_slice(b"this line is not CRI\n");
    cri.extend_from_slice(b"2026-11-27T10:00:02.000000000Z stdout F bad utf8 \xff\xfe end\n");
    // A 3 MiB line, then a normal line that must be unaffected.
    cri.extend_from_slice(b"2026-11-27T10:00:03.000000000Z stdout F ");
    cri.extend(std::iter::repeat_n(b'x', 3 * 1024 * 1024));
    cri.extend_from_slice(b"\n2026-11-27T10:00:04.000000000Z stdout F after the long line\n");
    append(&a, &cri)?;

    // CRI-O writes offsets; docker splits long lines into 16 KiB chunks.
    let b = dir.path().join(POD_B).join("0.log");
    append(
        &b,
        b"2026-11-27T12:00:00.123456789+02:00 stdout F crio with offset\n",
    )?;
    let c = dir.path().join(POD_C).join("0.log");
    append(
        &c,
        b"{\"log\":\"docker chunk one \",\"stream\":\"stdout\",\"time\":\"2026-11-27T10:00:00.1Z\"}\n\
          {\"log\":\"and two\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T10:00:00.2Z\"}\n",
    )?;

    let config = write_config(dir.path(), &bootstrap, &topic, "")?;
    let status = collector(&config, true)?.wait()?;
    ensure!(status.success(), "collector --batch failed: {status}");

    let events = consume_until(&bootstrap, &topic, Duration::from_secs(60), |e| {
        e.len() >= 8
    })
    .await?;
    let by_message: BTreeMap<String, &Event> = events
        .iter()
        .map(|e| (e.message.chars().take(40).collect(), e))
        .collect();
    let expect = [
        "containerd short fraction",
        "joined partial line",
        "Exception in thread \"main\" java.lang.Ill",
        "bad utf8 \u{fffd}\u{fffd} end",
        "after the long line",
        "crio with offset",
        "docker chunk one and two",
    ];
    for message in expect {
        ensure!(
            by_message.contains_key(message),
            "missing {message:?} in {:?}",
            by_message.keys().collect::<Vec<_>>()
        );
    }
    let first = by_message["containerd short fraction"];
    ensure!(
        first.timestamp == "2026-11-27T10:00:00.500000000Z",
        "{}",
        first.timestamp
    );
    ensure!(first.kubernetes.namespace == "shop" && first.kubernetes.pod.name == "web-7d9f");
    ensure!(first.kubernetes.container.name == "app");
    let crio = by_message["crio with offset"];
    ensure!(
        crio.timestamp == "2026-11-27T10:00:00.123456789Z",
        "{}",
        crio.timestamp
    );
    let trace = by_message["Exception in thread \"main\" java.lang.Ill"];
    ensure!(
        trace.message.contains("Caused by: java.io.IOException")
            && trace.message.ends_with("... 12 more")
    );
    ensure!(trace.stream == kelp_record::Stream::Stderr);
    ensure!(
        by_message["bad utf8 \u{fffd}\u{fffd} end"]
            .log
            .flags
            .contains(&Flag::InvalidUtf8)
    );
    let long = events
        .iter()
        .find(|e| e.message.starts_with("xxxx"))
        .context("the 3 MiB line is missing")?;
    ensure!(
        long.log.flags.contains(&Flag::Truncated),
        "long line not flagged"
    );
    ensure!(
        long.message.len() <= 256 * 1024,
        "long line not cut: {}",
        long.message.len()
    );
    let ids: BTreeSet<_> = events.iter().map(|e| e.event.id).collect();
    ensure!(ids.len() == events.len(), "duplicate ids in a clean run");
    ensure!(events.len() == 8, "expected 8 events, got {}", events.len());

    // A second batch run resumes at the checkpoint and sends nothing.
    let status = collector(&config, true)?.wait()?;
    ensure!(status.success());
    let again = consume_until(&bootstrap, &topic, Duration::from_secs(5), |_| false).await?;
    ensure!(
        again.len() == 8,
        "re-run sent {} more events",
        again.len().saturating_sub(8)
    );
    Ok(())
}

/// Writes `lines` sequence-numbered lines to each of three pods' files,
/// rotating them the kubelet's way every `rotate_every` lines: rename
/// `0.log` to `0.log.<n>`, start a new `0.log`, and delete the rotation
/// two before that (as the kubelet gzips and unlinks it).
pub(crate) fn write_with_rotation(
    root: &Path,
    lines: u64,
    rotate_every: u64,
    pause: Duration,
) -> anyhow::Result<()> {
    let pods = [POD_A, POD_B, POD_C];
    let mut rotations = [0u32; 3];
    for seq in 0..lines {
        for (index, pod) in pods.iter().enumerate() {
            let dir = root.join(pod);
            let live = dir.join("0.log");
            let line = format!(
                "2026-11-27T10:00:00.{seq:09}Z stdout F pod={index} seq={seq} {}\n",
                "p".repeat(60)
            );
            append(&live, line.as_bytes())?;
            if seq > 0 && seq % rotate_every == 0 {
                rotations[index] += 1;
                let n = rotations[index];
                fs::rename(&live, dir.join(format!("0.log.{n:08}")))?;
                // Like the kubelet's default of several files, keep one older rotation.
                if n >= 3 {
                    let old = dir.join(format!("0.log.{:08}", n - 2));
                    let gz = dir.join(format!("0.log.{:08}.gz", n - 2));
                    fs::copy(&old, &gz)?;
                    fs::remove_file(&old)?;
                }
            }
        }
        if seq % 10 == 0 {
            std::thread::sleep(pause);
        }
    }
    Ok(())
}

fn seqs(events: &[Event]) -> BTreeMap<(String, u64), BTreeSet<kelp_record::EventId>> {
    let mut seen: BTreeMap<(String, u64), BTreeSet<kelp_record::EventId>> = BTreeMap::new();
    for event in events {
        let mut parts = event.message.split_whitespace();
        let (Some(pod), Some(seq)) = (parts.next(), parts.next()) else {
            continue;
        };
        if let Some(seq) = seq.strip_prefix("seq=").and_then(|s| s.parse().ok()) {
            seen.entry((pod.to_owned(), seq))
                .or_default()
                .insert(event.event.id);
        }
    }
    seen
}

pub(crate) fn kill(child: &mut Child) -> anyhow::Result<()> {
    child.kill()?; // SIGKILL
    child.wait()?;
    Ok(())
}

pub(crate) fn terminate(child: &mut Child) -> anyhow::Result<()> {
    let pid = i32::try_from(child.id())?;
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    ensure!(status.success());
    let status = child.wait()?;
    ensure!(
        status.success(),
        "collector exited with {status} after SIGTERM"
    );
    Ok(())
}

/// Checks that every written sequence number arrived, and that every
/// duplicate carries the same event id (so the shipper overwrites it).
fn check_complete(events: &[Event], lines: u64) -> anyhow::Result<(usize, usize)> {
    let seen = seqs(events);
    let mut missing = Vec::new();
    for pod in 0..3 {
        for seq in 0..lines {
            if !seen.contains_key(&(format!("pod={pod}"), seq)) {
                missing.push((pod, seq));
            }
        }
    }
    ensure!(
        missing.is_empty(),
        "{} lines lost, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let split_ids = seen.values().filter(|ids| ids.len() > 1).count();
    ensure!(
        split_ids == 0,
        "{split_ids} lines were sent under more than one event id"
    );
    let duplicates = events.len() - seen.len();
    Ok((seen.len(), duplicates))
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn collector_loses_nothing_across_sigkills_and_rotation() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let dir = tempfile::tempdir()?;
    let topic = kelp_tests::unique("collector-kill");
    let config = write_config(dir.path(), &bootstrap, &topic, "")?;
    let lines = 6_000;

    let root = dir.path().to_owned();
    let writer = std::thread::spawn(move || {
        write_with_rotation(&root, lines, 1_000, Duration::from_millis(15))
    });
    let mut child = collector(&config, false)?;
    let mut kills = 0;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    while !writer.is_finished() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_millis(150 + seed % 700));
        kill(&mut child)?;
        kills += 1;
        child = collector(&config, false)?;
    }
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;

    let want = usize::try_from(lines * 3)?;
    let events = consume_until(&bootstrap, &topic, Duration::from_secs(120), |e| {
        seqs(e).len() >= want
    })
    .await?;
    terminate(&mut child)?;
    let (distinct, duplicates) = check_complete(&events, lines)?;
    println!(
        "collector sigkill: written {want}, distinct {distinct}, duplicates {duplicates} (same ids), kills {kills}"
    );
    ensure!(kills >= 3, "only {kills} kills happened");
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka-zk (stops and starts its broker)"]
async fn fault_collector_waits_out_a_kafka_outage() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_ZK_BOOTSTRAP", "kafka-zk")?;
    let outage = Duration::from_secs(
        std::env::var("KELP_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60),
    );
    let dir = tempfile::tempdir()?;
    let topic = kelp_tests::unique("collector-outage");
    // A small producer queue fills during the outage: reading must pause, not drop.
    let config = write_config(dir.path(), &bootstrap, &topic, "  queue_max_bytes: 65536\n")?;
    let lines = 3_000;

    let mut child = collector(&config, false)?;
    let root = dir.path().to_owned();
    let writer = std::thread::spawn(move || {
        write_with_rotation(&root, lines, 1_000, Duration::from_millis(40))
    });
    std::thread::sleep(Duration::from_secs(1));
    kelp_tests::testbed("stop", "kafka-zk")?;
    let down_at = Instant::now();
    while down_at.elapsed() < outage {
        std::thread::sleep(Duration::from_millis(200));
        ensure!(
            child.try_wait()?.is_none(),
            "collector exited during the outage"
        );
    }
    kelp_tests::testbed("start", "kafka-zk")?;
    writer
        .join()
        .map_err(|_| anyhow::anyhow!("writer panicked"))??;

    let want = usize::try_from(lines * 3)?;
    let events = consume_until(&bootstrap, &topic, Duration::from_secs(180), |e| {
        seqs(e).len() >= want
    })
    .await?;
    terminate(&mut child)?;
    let (distinct, duplicates) = check_complete(&events, lines)?;
    println!(
        "collector outage {}s: written {want}, distinct {distinct}, duplicates {duplicates}",
        outage.as_secs()
    );
    Ok(())
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn collector_cuts_an_event_the_broker_refuses_and_nothing_else() -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;

    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let topic = kelp_tests::unique("collector-too-large");
    // The topic takes at most 100,000 bytes per batch, far below the
    // collector's message_max_bytes: the broker refuses, not librdkafka.
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()?;
    let created = admin
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))
                .set("max.message.bytes", "100000")],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))),
        )
        .await?;
    for result in created {
        result.map_err(|(name, code)| anyhow::anyhow!("creating topic {name} failed: {code}"))?;
    }

    let dir = tempfile::tempdir()?;
    // Small batches, so only the big event's own batch is too large.
    let config = write_config(
        dir.path(),
        &bootstrap,
        &topic,
        "  properties:\n    batch.size: \"32768\"\n",
    )?;
    // 200,000 letters that LZ4 cannot shrink much, between small lines.
    let mut seed = 7u64;
    let big: String = (0..200_000)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            char::from(b'a' + ((seed >> 33) % 26) as u8)
        })
        .collect();
    let mut text = String::new();
    for i in 0..50 {
        text.push_str(&format!(
            "2026-11-28T03:00:00.{i:09}Z stdout F before {i}\n"
        ));
    }
    text.push_str(&format!("2026-11-28T03:00:01.000000000Z stdout F {big}\n"));
    for i in 0..50 {
        text.push_str(&format!("2026-11-28T03:00:02.{i:09}Z stdout F after {i}\n"));
    }
    append(&dir.path().join(POD_A).join("0.log"), text.as_bytes())?;

    let mut child = collector(&config, true)?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > Duration::from_secs(120) {
            kill(&mut child)?;
            anyhow::bail!(
                "collector --batch still running after 120 s: an event was never delivered"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(status.success(), "collector --batch failed: {status}");
    let events = consume_until(&bootstrap, &topic, Duration::from_secs(60), |e| {
        e.len() >= 101
    })
    .await?;
    ensure!(
        events.len() == 101,
        "{} events in Kafka, want 101",
        events.len()
    );
    let (cut, whole): (Vec<&Event>, Vec<&Event>) = events
        .iter()
        .partition(|e| e.log.flags.contains(&Flag::Truncated));
    ensure!(cut.len() == 1, "{} events flagged truncated", cut.len());
    let message = &cut[0].message;
    // Halved until it fit: 200,000 → 100,000 (still over) → 50,000.
    ensure!(
        message.len() == 50_000 && big.starts_with(message.as_str()),
        "the refused event became {} bytes",
        message.len()
    );
    ensure!(
        whole
            .iter()
            .all(|e| e.message.starts_with("before ") || e.message.starts_with("after ")),
        "a small event was changed"
    );
    Ok(())
}
