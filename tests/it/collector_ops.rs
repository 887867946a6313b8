//! kelp-collector's operations surface against real Kafka: `/metrics`,
//! `/healthz` and `/readyz`, and config reloads on SIGHUP (applied, and
//! refused when the file is invalid).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use kelp_record::Event;
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};

const POD: &str = "pods/shop_web-7d9f_0b1c2d3e-aaaa-bbbb-cccc-111122223333/app/0.log";

/// The collector's config with the parts this test changes.
struct Setup<'a> {
    root: &'a Path,
    bootstrap: &'a str,
    topic: &'a str,
    port: u16,
    rule: &'a str,
    linger_ms: u64,
}

impl Setup<'_> {
    fn write(&self) -> anyhow::Result<PathBuf> {
        let path = self.root.join("collector.yaml");
        fs::write(
            &path,
            format!(
                "node_name: node-it\n\
                 tail:\n  include: [\"{root}/pods/*/*/*.log*\"]\n  poll_interval_ms: 20\n  glob_interval_ms: 200\n\
                 parse:\n  multiline:\n    rule: {rule}\n    flush_timeout_ms: 500\n\
                 checkpoint:\n  path: {root}/state/checkpoints.json\n  interval_ms: 100\n\
                 sink:\n  kind: kafka\n  bootstrap_servers: {bootstrap}\n  topic: {topic}\n  linger_ms: {linger}\n\
                 metrics:\n  listen: 127.0.0.1:{port}\n  liveness_timeout_ms: 5000\n\
                 log:\n  filter: info\n",
                root = self.root.display(),
                rule = self.rule,
                bootstrap = self.bootstrap,
                topic = self.topic,
                linger = self.linger_ms,
                port = self.port,
            ),
        )?;
        Ok(path)
    }
}

/// The collector process; killed if the test fails before stopping it.
struct Collector {
    child: Child,
    log: PathBuf,
}

impl Collector {
    fn start(config: &Path, log: PathBuf) -> anyhow::Result<Collector> {
        let child = Command::new(kelp_tests::binary("kelp-collector")?)
            .arg("run")
            .arg("--config")
            .arg(config)
            // log.filter from the config applies only without RUST_LOG.
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::from(fs::File::create(&log)?))
            .spawn()?;
        Ok(Collector { child, log })
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()?;
        ensure!(status.success(), "kill -{name} failed: {status}");
        Ok(())
    }

    fn running(&mut self) -> anyhow::Result<bool> {
        Ok(self.child.try_wait()?.is_none())
    }

    fn log_text(&self) -> anyhow::Result<String> {
        Ok(fs::read_to_string(&self.log)?)
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

fn append(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    fs::create_dir_all(path.parent().context("no parent")?)?;
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(bytes)?;
    Ok(())
}

async fn get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let response = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// The value of one sample (`name{labels}`) in an exposition.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// Scrapes `/metrics` until `name` reaches `want`.
async fn wait_for_sample(port: u16, name: &str, want: f64) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = match get(port, "/metrics").await {
            Ok((200, text)) => text,
            _ => String::new(),
        };
        if sample(&text, name) == Some(want) {
            return Ok(text);
        }
        ensure!(
            Instant::now() < deadline,
            "{name} is {:?}, not {want}, after 60 s:\n{text}",
            sample(&text, name)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads `topic` from the beginning until `want` events arrived.
async fn consume(bootstrap: &str, topic: &str, want: usize) -> anyhow::Result<Vec<Event>> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", kelp_tests::unique("it-ops-reader"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    consumer.subscribe(&[topic])?;
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while events.len() < want && Instant::now() < deadline {
        if let Ok(message) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await {
            let message = message?;
            let payload = message.payload().context("message without payload")?;
            events.push(Event::from_json(payload)?);
        }
    }
    Ok(events)
}

#[tokio::test]
#[ignore = "needs the testbed: testbed/testbed up kafka"]
async fn collector_ops_metrics_health_and_sighup_reload() -> anyhow::Result<()> {
    let bootstrap = kelp_tests::service("KELP_KAFKA_BOOTSTRAP", "kafka")?;
    let dir = tempfile::tempdir()?;
    let topic = kelp_tests::unique("collector-ops");
    let port = kelp_tests::free_port()?;
    let mut setup = Setup {
        root: dir.path(),
        bootstrap: &bootstrap,
        topic: &topic,
        port,
        rule: "java",
        linger_ms: 5,
    };
    let config = setup.write()?;
    let log = dir.path().join(POD);
    append(
        &log,
        b"2026-11-27T10:00:00.000000000Z stdout F hello\n\
          this line is not CRI\n\
          2026-11-27T10:00:01.000000000Z stderr F java.lang.IllegalStateException: before\n\
          2026-11-27T10:00:01.100000000Z stderr F \tat a.B.c(B.java:1)\n",
    )?;
    let mut collector = Collector::start(&config, dir.path().join("collector.stderr"))?;

    // Two events (the trace joined by the java rule), one malformed line.
    let text = wait_for_sample(port, "kelp_collector_events_acked_total", 2.0).await?;
    for (name, want) in [
        ("kelp_collector_lines_read_total", 4.0),
        ("kelp_collector_events_sent_total", 2.0),
        (
            "kelp_collector_dropped_lines_total{reason=\"timestamp\"}",
            1.0,
        ),
        (
            "kelp_collector_dropped_lines_total{reason=\"undetected_format\"}",
            0.0,
        ),
        ("kelp_collector_files_tailed", 1.0),
        (
            "kelp_collector_config_reloads_total{outcome=\"applied\"}",
            0.0,
        ),
    ] {
        ensure!(
            sample(&text, name) == Some(want),
            "{name} is {:?}, not {want}:\n{text}",
            sample(&text, name)
        );
    }
    ensure!(
        sample(&text, "kelp_collector_kafka_delivery_seconds_count") == Some(2.0),
        "{text}"
    );
    ensure!(get(port, "/healthz").await? == (200, "ok\n".to_owned()));
    // Broker connections come from librdkafka's statistics, every 5 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = get(port, "/readyz").await?;
        if status == 200 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "/readyz still {status} after 30 s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = get(port, "/metrics").await?.1;
    ensure!(
        sample(&text, "kelp_collector_kafka_brokers_up").is_some_and(|up| up >= 1.0),
        "{text}"
    );

    // SIGHUP with another multiline rule (applied) and another linger
    // (a sink setting: needs a restart).
    setup.rule = "none";
    setup.linger_ms = 6;
    setup.write()?;
    collector.signal("HUP")?;
    let text = wait_for_sample(
        port,
        "kelp_collector_config_reloads_total{outcome=\"applied\"}",
        1.0,
    )
    .await?;
    ensure!(
        sample(&text, "kelp_collector_config_restart_required") == Some(1.0),
        "{text}"
    );
    let stderr = collector.log_text()?;
    ensure!(
        stderr.contains("config reloaded: field applied")
            && stderr.contains("parse.multiline.rule"),
        "no reload log:\n{stderr}"
    );
    ensure!(
        stderr.contains("until a restart") && stderr.contains("sink.linger_ms"),
        "no restart log:\n{stderr}"
    );

    // The new rule applies to new events: the trace is not joined any more.
    append(
        &log,
        b"2026-11-27T10:00:02.000000000Z stderr F java.lang.IllegalStateException: after\n\
          2026-11-27T10:00:02.100000000Z stderr F \tat a.B.c(B.java:2)\n",
    )?;
    wait_for_sample(port, "kelp_collector_events_acked_total", 4.0).await?;

    // SIGHUP with an invalid file: logged, counted, the running config kept.
    setup.rule = "cobol";
    setup.write()?;
    collector.signal("HUP")?;
    wait_for_sample(
        port,
        "kelp_collector_config_reloads_total{outcome=\"failed\"}",
        1.0,
    )
    .await?;
    ensure!(collector.running()?, "collector exited after a bad reload");
    let stderr = collector.log_text()?;
    ensure!(
        stderr.contains("reloading config failed; keeping the running config")
            && stderr.contains("cobol"),
        "no failed-reload log:\n{stderr}"
    );
    append(
        &log,
        b"2026-11-27T10:00:03.000000000Z stdout F still running\n",
    )?;
    let text = wait_for_sample(port, "kelp_collector_events_acked_total", 5.0).await?;
    ensure!(
        sample(&text, "kelp_collector_lines_read_total") == Some(7.0),
        "{text}"
    );
    ensure!(get(port, "/healthz").await?.0 == 200);
    ensure!(get(port, "/readyz").await?.0 == 200);

    let events = consume(&bootstrap, &topic, 5).await?;
    let mut messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
    messages.sort_unstable();
    ensure!(
        messages
            == [
                "\tat a.B.c(B.java:2)",
                "hello",
                "java.lang.IllegalStateException: after",
                "java.lang.IllegalStateException: before\n\tat a.B.c(B.java:1)",
                "still running",
            ],
        "{messages:?}"
    );

    collector.signal("TERM")?;
    let status = collector.child.wait()?;
    ensure!(
        status.success(),
        "collector exited with {status} after SIGTERM"
    );
    Ok(())
}
