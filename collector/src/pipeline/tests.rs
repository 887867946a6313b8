use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use kelp_record::{Event, Flag};

use super::*;
use crate::checkpoint::Checkpoints;
use crate::health::Health;
use crate::parse::multiline::{Config as MultilineConfig, Rule};
use crate::sink::FileSink;
use crate::tail::{NoopEvents, TailConfig};

fn settings(dir: &Path) -> Settings {
    Settings {
        node_name: "node-1".into(),
        format: None,
        max_event_bytes: 64 * 1024,
        multiline: MultilineConfig::new(Rule::Java),
        topic: "kelp-logs".into(),
        key: KeyChoice::File,
        max_in_flight_events: 1000,
        retry_base: Duration::from_millis(10),
        retry_cap: Duration::from_millis(100),
        checkpoint_interval: Duration::from_millis(100),
        checkpoint_path: dir.join("checkpoints.json"),
        shutdown_timeout: Duration::from_secs(5),
    }
}

fn run_batch(dir: &Path) -> Vec<Event> {
    let tail = TailConfig {
        include: vec![format!("{}/pods/*/*/*.log*", dir.display())],
        poll_interval_ms: 10,
        ..TailConfig::default()
    };
    let checkpoints = Checkpoints::load(&dir.join("checkpoints.json")).unwrap();
    let tailer = Tailer::new(tail, checkpoints, NoopEvents).unwrap();
    let out = dir.join("out.ndjson");
    let sink = FileSink::open(&out).unwrap();
    let mut pipeline = Pipeline::new(tailer, sink, settings(dir));
    pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
    let text = fs::read_to_string(&out).unwrap_or_default();
    text.lines()
        .map(|l| Event::from_json(l.as_bytes()).unwrap())
        .collect()
}

fn append(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut file = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

const POD: &str = "pods/shop_web-7d9f_0b1c2d3e-aaaa-bbbb-cccc-111122223333/app/0.log";

#[test]
fn joins_interleaved_partials_and_stack_traces_and_resumes_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    append(
        &log,
        concat!(
            "2026-11-27T10:00:00.000000001Z stdout F started\n",
            "2026-11-27T10:00:01.000000001Z stdout P first half \n",
            "2026-11-27T10:00:01.100000000Z stderr F java.lang.IllegalStateException: boom\n",
            "2026-11-27T10:00:01.200000000Z stdout F second half\n",
            "2026-11-27T10:00:01.300000000Z stderr F \tat com.shop.Cart.add(Cart.java:42)\n",
            "2026-11-27T10:00:01.400000000Z stderr F \tat com.shop.Api.post(Api.java:7)\n",
            "not a cri line\n",
            "2026-11-27T10:00:02.000000000Z stdout F done\n",
        ),
    );
    let first = run_batch(dir.path());
    let messages: Vec<&str> = first.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "started",
            "first half second half",
            "java.lang.IllegalStateException: boom\n\tat com.shop.Cart.add(Cart.java:42)\n\tat com.shop.Api.post(Api.java:7)",
            "done",
        ]
    );
    assert!(first[1].log.flags.contains(&Flag::Partial));
    assert!(first[2].log.flags.contains(&Flag::Multiline));
    assert_eq!(first[0].kubernetes.namespace, "shop");
    assert_eq!(first[0].kubernetes.pod.name, "web-7d9f");
    assert_eq!(first[0].host.name, "node-1");
    let ids: std::collections::BTreeSet<_> = first.iter().map(|e| e.event.id).collect();
    assert_eq!(ids.len(), first.len(), "ids are unique");

    // A second run resumes at the checkpoint: nothing is sent again.
    let second = run_batch(dir.path());
    assert_eq!(second.len(), first.len(), "no new events after resume");

    // New lines after the restart are sent once, with ids that differ from the old ones.
    append(
        &log,
        "2026-11-27T10:00:03.000000000Z stdout F after restart\n",
    );
    let third = run_batch(dir.path());
    assert_eq!(third.len(), first.len() + 1);
    assert_eq!(third.last().unwrap().message, "after restart");
    assert!(!ids.contains(&third.last().unwrap().event.id));
}

#[test]
fn batch_run_checkpoints_the_whole_file_once_delivered() {
    // Interleaved partial lines: the checkpoint may only land past "c" once
    // both events are delivered, and then exactly at the end of the file.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    append(
        &log,
        concat!(
            "2026-11-27T10:00:01.000000001Z stdout P a\n",
            "2026-11-27T10:00:01.100000000Z stderr F b\n",
            "2026-11-27T10:00:01.200000000Z stdout F c\n",
        ),
    );
    let events = run_batch(dir.path());
    assert_eq!(
        events
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["ac", "b"]
    );
    let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
    let (_, checkpoint) = checkpoints.iter().next().unwrap();
    assert_eq!(checkpoint.offset, fs::metadata(&log).unwrap().len());
}

fn tail_config(dir: &Path) -> TailConfig {
    TailConfig {
        include: vec![format!("{}/pods/*/*/*.log*", dir.display())],
        poll_interval_ms: 10,
        ..TailConfig::default()
    }
}

fn events_in(out: &Path) -> Vec<Event> {
    fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(|l| Event::from_json(l.as_bytes()).unwrap())
        .collect()
}

#[test]
fn metrics_count_what_the_pipeline_did() {
    let dir = tempfile::tempdir().unwrap();
    append(
        &dir.path().join(POD),
        concat!(
            "2026-11-27T10:00:00.000000001Z stdout F one\n",
            "not a cri line\n",
            "2026-11-27T10:00:01.000000000Z stdout F two\n",
        ),
    );
    let metrics = Arc::new(Metrics::new());
    let events = crate::internal_events::MetricsTailEvents::new(Arc::clone(&metrics));
    let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
    let tailer = Tailer::new(tail_config(dir.path()), checkpoints, events).unwrap();
    let sink = FileSink::open(&dir.path().join("out.ndjson")).unwrap();
    let health = Arc::new(Health::new(Duration::from_secs(30)));
    let mut pipeline = Pipeline::new(tailer, sink, settings(dir.path()))
        .with_metrics(Arc::clone(&metrics))
        .with_health(Arc::clone(&health));
    pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
    assert_eq!(pipeline.stats().events_acked, 2);

    let text = metrics.encode();
    for line in [
        "kelp_collector_lines_read_total 3",
        "kelp_collector_events_sent_total 2",
        "kelp_collector_events_acked_total 2",
        "kelp_collector_dropped_lines_total{reason=\"timestamp\"} 1",
        "kelp_collector_kafka_delivery_seconds_count 2",
        "kelp_collector_in_flight_events 0",
        "kelp_collector_files_tailed 1",
        "kelp_collector_file_lag_bytes{namespace=\"shop\",pod=\"web-7d9f\",container=\"app\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} missing:\n{text}");
    }
    assert_eq!(health.live(), Ok(()));
}

#[test]
fn reload_applies_a_new_multiline_rule_to_new_events_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    append(
        &log,
        concat!(
            "2026-11-27T10:00:00.000000000Z stderr F java.lang.IllegalStateException: boom\n",
            "2026-11-27T10:00:00.100000000Z stderr F \tat a.B.c(B.java:1)\n",
        ),
    );
    let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
    let tailer = Tailer::new(tail_config(dir.path()), checkpoints, NoopEvents).unwrap();
    let out = dir.path().join("out.ndjson");
    let sink = FileSink::open(&out).unwrap();
    let mut pipeline = Pipeline::new(tailer, sink, settings(dir.path()));
    // The reload comes after the first round has read the trace's start.
    let reload = AtomicBool::new(true);
    let mut reloads = 0;
    pipeline
        .run_with(Mode::Batch, &AtomicBool::new(false), &reload, |pipeline| {
            reloads += 1;
            append(
                &log,
                concat!(
                    "2026-11-27T10:00:00.200000000Z stderr F \tat a.B.d(B.java:2)\n",
                    "2026-11-27T10:00:00.300000000Z stderr F \tat a.B.e(B.java:3)\n",
                ),
            );
            let mut new = pipeline.settings().clone();
            new.multiline = MultilineConfig::new(Rule::None);
            new.max_in_flight_events = 7;
            let mut tail = tail_config(dir.path());
            tail.poll_interval_ms = 5;
            pipeline.reconfigure(new, &tail).unwrap();
        })
        .unwrap();
    assert_eq!(reloads, 1);
    assert_eq!(pipeline.settings().max_in_flight_events, 7);
    assert_eq!(pipeline.tailer().config().poll_interval_ms, 5);
    let messages: Vec<String> = events_in(&out).into_iter().map(|e| e.message).collect();
    assert_eq!(
        messages,
        [
            "java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)",
            "\tat a.B.d(B.java:2)",
            "\tat a.B.e(B.java:3)",
        ]
    );
    let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
    let (_, checkpoint) = checkpoints.iter().next().unwrap();
    assert_eq!(checkpoint.offset, fs::metadata(&log).unwrap().len());
}
