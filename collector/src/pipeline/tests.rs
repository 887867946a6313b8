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

/// What [`ScriptedSink`] does with one offer.
enum Verdict {
    Deliver,
    /// Refuse it: the queue is full.
    Full,
    /// Refuse it for good at the offer.
    Reject(&'static str),
    /// Take it, then fail it in a receipt.
    Fail(&'static str),
}

/// A sink that hands payloads back like the Kafka sink and treats each
/// offer as its script says, given the offer's number (from 1) and token.
struct ScriptedSink {
    script: Box<dyn FnMut(u64, u64) -> Verdict + Send>,
    offers: u64,
    pending: Vec<Receipt>,
    delivered: Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl std::fmt::Debug for ScriptedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedSink")
            .field("offers", &self.offers)
            .finish_non_exhaustive()
    }
}

impl ScriptedSink {
    fn new(script: impl FnMut(u64, u64) -> Verdict + Send + 'static) -> Self {
        ScriptedSink {
            script: Box::new(script),
            offers: 0,
            pending: Vec::new(),
            delivered: Arc::default(),
        }
    }
}

fn failure(reason: &'static str, payload: &[u8]) -> DeliveryFailure {
    DeliveryFailure {
        reason,
        detail: "scripted".into(),
        payload: Some(payload.to_vec()),
    }
}

impl Sink for ScriptedSink {
    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused> {
        self.offers += 1;
        let result = match (self.script)(self.offers, out.token) {
            Verdict::Full => return Err(Refused::Full),
            Verdict::Reject(reason) => {
                return Err(Refused::Rejected(failure(reason, out.payload)));
            }
            Verdict::Fail(reason) => Err(failure(reason, out.payload)),
            Verdict::Deliver => {
                self.delivered.lock().unwrap().push(out.payload.to_vec());
                Ok(())
            }
        };
        self.pending.push(Receipt {
            token: out.token,
            result,
        });
        Ok(())
    }

    fn receipts(&mut self, into: &mut Vec<Receipt>, _wait: Duration) {
        into.append(&mut self.pending);
    }

    fn in_flight(&self) -> usize {
        self.pending.len()
    }

    fn hands_back_payloads(&self) -> bool {
        true
    }
}

#[test]
fn re_sends_use_the_payload_the_sink_hands_back() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    let mut text = String::new();
    for i in 0..200 {
        text.push_str(&format!("2026-11-27T10:00:00.{i:09}Z stdout F line {i}\n"));
    }
    append(&log, &text);
    let tailer = Tailer::new(
        tail_config(dir.path()),
        Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap(),
        NoopEvents,
    )
    .unwrap();
    // Every kind of failure, by a fixed pattern.
    let sink = ScriptedSink::new(|n, _| match n % 7 {
        3 => Verdict::Full,
        5 => Verdict::Reject("other"),
        _ if n % 4 == 1 => Verdict::Fail("other"),
        _ => Verdict::Deliver,
    });
    let delivered = Arc::clone(&sink.delivered);
    let mut pipeline = Pipeline::new(tailer, sink, settings(dir.path()));
    pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
    // The pattern hit every kind of failure, and each event still arrived once.
    assert!(
        pipeline.sink.offers > 260,
        "offers {}",
        pipeline.sink.offers
    );
    assert!(
        pipeline
            .stats()
            .delivery_failures
            .get("other")
            .copied()
            .unwrap_or(0)
            > 60
    );
    let messages: Vec<String> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|payload| Event::from_json(payload).unwrap().message)
        .collect();
    let mut expected: Vec<String> = (0..200).map(|i| format!("line {i}")).collect();
    let mut sorted = messages.clone();
    sorted.sort();
    expected.sort();
    assert_eq!(sorted, expected);
    let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
    let (_, checkpoint) = checkpoints.iter().next().unwrap();
    assert_eq!(checkpoint.offset, fs::metadata(&log).unwrap().len());
}

#[test]
fn a_docker_line_cut_at_max_line_bytes_is_a_truncated_event_not_a_drop() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    let long = "x".repeat(5000);
    append(
        &log,
        &format!(
            concat!(
                "{{\"log\":\"before\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T10:00:00.1Z\"}}\n",
                "{{\"log\":\"{}\\n\",\"stream\":\"stderr\",\"time\":\"2026-11-27T10:00:00.2Z\"}}\n",
                "{{\"log\":\"after\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-27T10:00:00.3Z\"}}\n",
            ),
            long
        ),
    );
    let tailer = Tailer::new(
        TailConfig {
            max_line_bytes: 1024,
            ..tail_config(dir.path())
        },
        Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap(),
        NoopEvents,
    )
    .unwrap();
    let out = dir.path().join("out.ndjson");
    let mut pipeline = Pipeline::new(tailer, FileSink::open(&out).unwrap(), settings(dir.path()));
    pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
    let events = events_in(&out);
    let seen: Vec<(&str, usize, bool)> = events
        .iter()
        .map(|e| {
            (
                e.timestamp.as_str(),
                e.message.len(),
                e.log.flags.contains(&Flag::Truncated),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("2026-11-27T10:00:00.100000000Z", 6, false),
            // The first 1024 bytes of the line, less `{"log":"`.
            ("2026-11-27T10:00:00.200000000Z", 1016, true),
            ("2026-11-27T10:00:00.300000000Z", 5, false),
        ]
    );
    assert_eq!(events[1].stream, kelp_record::Stream::Stderr);
    assert!(
        pipeline.stats().malformed.is_empty(),
        "{:?}",
        pipeline.stats().malformed
    );
}

#[test]
fn a_batch_refused_as_too_large_cuts_only_its_large_events() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join(POD);
    let big = "b".repeat(60_000);
    append(
        &log,
        &format!(
            "2026-11-27T10:00:00.1Z stdout F small one\n\
             2026-11-27T10:00:00.2Z stdout F {big}{big}\n\
             2026-11-27T10:00:00.3Z stdout F small two\n"
        ),
    );
    let tailer = Tailer::new(
        tail_config(dir.path()),
        Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap(),
        NoopEvents,
    )
    .unwrap();
    // Each event's first offer fails as the broker fails a batch over the
    // topic's `max.message.bytes`: all of its events, small ones too.
    let mut seen = std::collections::HashSet::new();
    let sink = ScriptedSink::new(move |_, token| {
        if seen.insert(token) {
            Verdict::Fail("message_too_large")
        } else {
            Verdict::Deliver
        }
    });
    let delivered = Arc::clone(&sink.delivered);
    let mut settings = settings(dir.path());
    settings.max_event_bytes = 1024 * 1024;
    let mut pipeline = Pipeline::new(tailer, sink, settings);
    pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
    let mut seen: Vec<(usize, bool)> = delivered
        .lock()
        .unwrap()
        .iter()
        .map(|payload| {
            let event = Event::from_json(payload).unwrap();
            (
                event.message.len(),
                event.log.flags.contains(&Flag::Truncated),
            )
        })
        .collect();
    seen.sort_unstable();
    // Small events whole; the 120,000-byte one halved once and flagged.
    assert_eq!(seen, [(9, false), (9, false), (60_000, true)]);
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

mod metadata {
    use std::collections::BTreeMap;

    use super::*;
    use crate::metadata::{Inclusion, MetadataCache, NamespaceMeta, PodMeta};

    const WEB_UID: &str = "0b1c2d3e-aaaa-bbbb-cccc-111122223333";
    const QUIET: &str = "pods/shop_quiet_9f8e7d6c-aaaa-bbbb-cccc-444455556666/main/0.log";
    const STRANGER: &str = "pods/shop_stranger_5a5a5a5a-aaaa-bbbb-cccc-777788889999/app/0.log";
    const TRACE: &str = concat!(
        "2026-11-27T10:00:01.000000000Z stderr F Traceback (most recent call last):\n",
        "2026-11-27T10:00:01.100000000Z stderr F   File \"app.py\", line 1, in <module>\n",
        "2026-11-27T10:00:01.200000000Z stderr F ValueError: boom\n",
    );

    fn pod(uid: &str, name: &str, annotations: &[(&str, &str)]) -> PodMeta {
        PodMeta {
            uid: uid.into(),
            namespace: "shop".into(),
            name: name.into(),
            labels: BTreeMap::from([("app".to_owned(), name.to_owned())]),
            annotations: annotations
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            owner: None,
            node: Some("node-1".into()),
            images: vec![("app".into(), format!("example.com/{name}:1"))],
        }
    }

    fn cache() -> Arc<MetadataCache> {
        Arc::new(MetadataCache::new(Inclusion {
            labels: true,
            annotations: Vec::new(),
        }))
    }

    fn pipeline(
        dir: &Path,
        cache: &Arc<MetadataCache>,
        wait: Duration,
        rule: Rule,
    ) -> Pipeline<FileSink, NoopEvents> {
        let checkpoints = Checkpoints::load(&dir.join("checkpoints.json")).unwrap();
        let tailer = Tailer::new(tail_config(dir), checkpoints, NoopEvents).unwrap();
        let sink = FileSink::open(&dir.join("out.ndjson")).unwrap();
        let mut settings = settings(dir);
        settings.multiline = MultilineConfig::new(rule);
        Pipeline::new(tailer, sink, settings).with_metadata(Arc::clone(cache), wait)
    }

    #[test]
    fn files_are_enriched_excluded_and_joined_by_their_pods_annotations() {
        let dir = tempfile::tempdir().unwrap();
        append(&dir.path().join(POD), TRACE);
        append(&dir.path().join(STRANGER), TRACE);
        append(
            &dir.path().join(QUIET),
            concat!(
                "2026-11-27T10:00:00.000000000Z stdout F secret 1\n",
                "2026-11-27T10:00:00.100000000Z stdout F secret 2\n",
            ),
        );
        let cache = cache();
        cache.update(|store| {
            store.apply_pod(pod(WEB_UID, "web-7d9f", &[("kelp.io/multiline", "python")]));
            store.apply_pod(pod("9f8e7d6c-aaaa-bbbb-cccc-444455556666", "quiet", &[]));
            store.apply_namespace(NamespaceMeta {
                name: "shop".into(),
                annotations: BTreeMap::from([(
                    "kelp.io/exclude-containers".to_owned(),
                    "main".to_owned(),
                )]),
            });
            ((), true)
        });
        // No wait: the stranger's pod is unknown and goes out at once.
        let metrics = Arc::new(Metrics::new());
        let mut pipeline = pipeline(dir.path(), &cache, Duration::ZERO, Rule::Java)
            .with_metrics(Arc::clone(&metrics));
        pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
        let events = events_in(&dir.path().join("out.ndjson"));

        let web: Vec<&Event> = events
            .iter()
            .filter(|e| e.kubernetes.pod.name == "web-7d9f")
            .collect();
        // The annotation's python rule joins the traceback; java would not.
        assert_eq!(web.len(), 1, "{events:#?}");
        assert!(
            web[0].message.ends_with("ValueError: boom"),
            "{:?}",
            web[0].message
        );
        let k = &web[0].kubernetes;
        assert_eq!(k.labels.get("app").map(String::as_str), Some("web-7d9f"));
        assert_eq!(k.node.as_ref().map(|n| n.name.as_str()), Some("node-1"));
        assert_eq!(k.container.image.as_deref(), Some("example.com/web-7d9f:1"));

        // The stranger keeps path metadata and the configured java rule.
        let stranger: Vec<&Event> = events
            .iter()
            .filter(|e| e.kubernetes.pod.name == "stranger")
            .collect();
        assert_eq!(stranger.len(), 3, "{events:#?}");
        assert!(
            stranger
                .iter()
                .all(|e| e.kubernetes.labels.is_empty() && e.kubernetes.node.is_none())
        );
        assert_eq!(pipeline.stats().metadata_missing, 3);

        // The namespace excludes quiet's container: dropped, counted, and
        // its checkpoint still moves to the end.
        assert!(!events.iter().any(|e| e.message.contains("secret")));
        assert_eq!(pipeline.stats().excluded_lines, 2);
        assert_eq!(metrics.dropped(crate::internal_events::EXCLUDED), 2);
        let checkpoints = Checkpoints::load(&dir.path().join("checkpoints.json")).unwrap();
        let quiet_len = fs::metadata(dir.path().join(QUIET)).unwrap().len();
        assert!(
            checkpoints
                .iter()
                .any(|(_, c)| c.offset == quiet_len && c.offset > 0),
            "the excluded file is checkpointed at its end"
        );
    }

    /// Rounds until the tailer has handed out `lines` lines.
    fn step_until_read(pipeline: &mut Pipeline<FileSink, NoopEvents>, lines: u64) {
        for _ in 0..1000 {
            if pipeline.stats().lines_read >= lines {
                return;
            }
            pipeline.step();
        }
        panic!("read {} lines, not {lines}", pipeline.stats().lines_read);
    }

    #[test]
    fn an_unknown_pods_lines_wait_for_the_watch_and_later_exclusions_stop_shipping() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(POD);
        append(&log, "2026-11-27T10:00:00.000000000Z stdout F early\n");
        let cache = cache();
        // A wait far longer than the test: only the pod's arrival releases.
        let mut pipeline = pipeline(dir.path(), &cache, Duration::from_secs(3600), Rule::None);
        step_until_read(&mut pipeline, 1);
        pipeline.step();
        assert_eq!(
            pipeline.stats().events_sent,
            0,
            "held while the pod is unknown"
        );

        cache.update(|store| ((), store.apply_pod(pod(WEB_UID, "web-7d9f", &[]))));
        pipeline.step();
        assert_eq!(pipeline.stats().events_sent, 1);
        assert_eq!(pipeline.stats().metadata_missing, 0);

        // The pod is annotated later: new lines are dropped, not shipped.
        cache.update(|store| {
            (
                (),
                store.apply_pod(pod(WEB_UID, "web-7d9f", &[("kelp.io/exclude", "true")])),
            )
        });
        append(&log, "2026-11-27T10:00:01.000000000Z stdout F late\n");
        step_until_read(&mut pipeline, 2);
        pipeline.run(Mode::Batch, &AtomicBool::new(false)).unwrap();
        let events = events_in(&dir.path().join("out.ndjson"));
        let messages: Vec<&str> = events.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(messages, ["early"]);
        assert_eq!(
            events[0].kubernetes.labels.get("app").map(String::as_str),
            Some("web-7d9f")
        );
        assert_eq!(pipeline.stats().excluded_lines, 1);
    }
}
