use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::checkpoint::CheckpointError;

const LIVE: &str = "/var/log/pods/shop_web-1_0b1c2d3e-aaaa/app/0.log";

fn key() -> FileKey {
    FileKey::new(7, 1, 2)
}

/// The sample lines (`name{labels} value`) of an exposition.
fn samples(text: &str) -> BTreeSet<&str> {
    text.lines().filter(|line| !line.starts_with('#')).collect()
}

#[track_caller]
fn assert_sample(text: &str, line: &str) {
    assert!(
        samples(text).contains(line),
        "{line:?} missing from:\n{text}"
    );
}

#[test]
fn exposition_has_every_metric_with_bounded_labels() {
    let metrics = Arc::new(Metrics::new());
    let m = &*metrics;
    let tail = MetricsTailEvents::new(Arc::clone(&metrics));
    let path = Path::new(LIVE);

    tail.lines_read(&key(), path, 3, 42);
    EventsSent { count: 2 }.emit(m);
    EventAcked {
        delivery: Duration::from_millis(3),
    }
    .emit(m);
    LineDropped {
        reason: MalformedReason::Timestamp.as_str(),
        path,
        offset: 10,
    }
    .emit(m);
    tail.deleted_released_unacked(&key(), path, 4);
    tail.deleted_released_undrained(&key(), path, 1000);
    tail.file_truncated(&key(), path, 50, 0);
    tail.file_vanished(path);
    tail.file_rotated(&key(), path, Path::new("/var/log/pods/x/app/0.log.1"));
    tail.io_error(path, &io::Error::other("boom"));
    EventTruncated {
        path: LIVE,
        offset: 0,
        cause: "limit",
    }
    .emit(m);
    let error = CheckpointError::Write {
        path: "/x".into(),
        source: io::Error::other("disk full"),
    };
    CheckpointSaveFailed {
        error: &error,
        last: false,
    }
    .emit(m);
    DeliveryFailed {
        reason: "timed_out",
        detail: "Local: Message timed out",
        attempts: 1,
        retry_in: Duration::from_millis(100),
    }
    .emit(m);
    InFlight { events: 5 }.emit(m);
    KafkaBrokersUp { brokers: 3 }.emit(m);
    TailState {
        files: 2,
        in_flight_events: 5,
        lag: HashMap::from([(ContainerLabels::of_path(path), 30)]),
    }
    .emit(m);
    ConfigReloaded {
        path: Path::new("/etc/kelp/collector.yaml"),
        applied: &[Change {
            field: "parse.multiline.rule".into(),
            old: "java".into(),
            new: "none".into(),
        }],
        needs_restart: &["sink.topic".to_owned()],
    }
    .emit(m);
    MetadataWatchFailed {
        resource: "pods",
        error: &io::Error::other("connection refused"),
    }
    .emit(m);
    MetadataWatchRestarted {
        resource: "namespaces",
    }
    .emit(m);
    MetadataSynced {
        resource: "pods",
        objects: 7,
    }
    .emit(m);
    MetadataCached {
        pods: 8,
        namespaces: 4,
    }
    .emit(m);
    MetadataMissing { events: 3 }.emit(m);
    LinesExcluded { lines: 2 }.emit(m);
    LinesExcluded { lines: 1 }.emit(m);

    let text = m.encode();
    for line in [
        "kelp_collector_metadata_watch_errors_total{resource=\"pods\"} 1",
        "kelp_collector_metadata_watch_errors_total{resource=\"namespaces\"} 0",
        "kelp_collector_metadata_watch_restarts_total{resource=\"namespaces\"} 1",
        "kelp_collector_metadata_synced{resource=\"pods\"} 1",
        "kelp_collector_metadata_synced{resource=\"namespaces\"} 0",
        "kelp_collector_metadata_pods_cached 8",
        "kelp_collector_metadata_namespaces_cached 4",
        "kelp_collector_metadata_missing_total 3",
        "kelp_collector_dropped_lines_total{reason=\"excluded\"} 3",
        "kelp_collector_lines_read_total 3",
        "kelp_collector_bytes_read_total 42",
        "kelp_collector_events_sent_total 2",
        "kelp_collector_events_acked_total 1",
        "kelp_collector_dropped_lines_total{reason=\"timestamp\"} 1",
        "kelp_collector_dropped_lines_total{reason=\"deleted_unacked\"} 4",
        "kelp_collector_dropped_lines_total{reason=\"deleted_undrained\"} 1",
        "kelp_collector_dropped_lines_total{reason=\"file_truncated\"} 1",
        "kelp_collector_files_vanished_total 1",
        // Every reason exists from the start.
        "kelp_collector_dropped_lines_total{reason=\"undetected_format\"} 0",
        "kelp_collector_dropped_lines_total{reason=\"json\"} 0",
        "kelp_collector_unread_bytes_released_total 1000",
        "kelp_collector_truncated_events_total 1",
        "kelp_collector_rotations_total 1",
        "kelp_collector_io_errors_total 1",
        "kelp_collector_files_tailed 2",
        "kelp_collector_file_lag_bytes{namespace=\"shop\",pod=\"web-1\",container=\"app\"} 30",
        "kelp_collector_checkpoint_save_failures_total 1",
        "kelp_collector_kafka_delivery_seconds_count 1",
        "kelp_collector_kafka_delivery_seconds_bucket{le=\"0.004\"} 1",
        "kelp_collector_kafka_delivery_seconds_bucket{le=\"0.002\"} 0",
        "kelp_collector_kafka_delivery_errors_total{reason=\"timed_out\"} 1",
        "kelp_collector_in_flight_events 5",
        "kelp_collector_kafka_brokers_up 3",
        "kelp_collector_config_reloads_total{outcome=\"applied\"} 1",
        "kelp_collector_config_reloads_total{outcome=\"failed\"} 0",
        "kelp_collector_config_restart_required 1",
    ] {
        assert_sample(&text, line);
    }
    assert!(
        text.contains("kelp_collector_checkpoint_age_seconds "),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    // Labels come from bounded sets only: no path, offset or file id.
    let allowed = [
        "reason",
        "outcome",
        "namespace",
        "pod",
        "container",
        "le",
        "resource",
    ];
    for sample in samples(&text) {
        let Some((_, labels)) = sample.split_once('{') else {
            continue;
        };
        let labels = labels.split_once('}').map_or("", |(inside, _)| inside);
        for pair in labels.split(',') {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            assert!(allowed.contains(&name), "label {name} in {sample}");
        }
    }
}

#[test]
fn lag_series_of_released_containers_disappear() {
    let m = Metrics::new();
    let web = ContainerLabels::of_path(Path::new(LIVE));
    let api = ContainerLabels::of_path(Path::new("/var/log/pods/pay_api-1_9f8e/api/0.log"));
    let state = |lag: &[(&ContainerLabels, u64)]| TailState {
        files: lag.len(),
        in_flight_events: 0,
        lag: lag.iter().map(|(l, n)| ((*l).clone(), *n)).collect(),
    };
    state(&[(&web, 10), (&api, 20)]).emit(&m);
    let text = m.encode();
    assert_sample(
        &text,
        "kelp_collector_file_lag_bytes{namespace=\"pay\",pod=\"api-1\",container=\"api\"} 20",
    );
    state(&[(&web, 0)]).emit(&m);
    let text = m.encode();
    assert_sample(
        &text,
        "kelp_collector_file_lag_bytes{namespace=\"shop\",pod=\"web-1\",container=\"app\"} 0",
    );
    assert!(!text.contains("pod=\"api-1\""), "{text}");
    // Paths outside the kubelet layouts share one series with empty labels.
    let other = ContainerLabels::of_path(Path::new("/tmp/app.log"));
    assert_eq!(
        (
            other.namespace.as_str(),
            other.pod.as_str(),
            other.container.as_str()
        ),
        ("", "", "")
    );
}

#[test]
fn checkpoint_age_grows_until_the_next_save() {
    let m = Metrics::new();
    let age = |text: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix("kelp_collector_checkpoint_age_seconds "))
            .and_then(|value| value.parse().ok())
            .unwrap()
    };
    std::thread::sleep(Duration::from_millis(30));
    let before = age(&m.encode());
    assert!(before >= 0.03, "{before}");
    CheckpointsSaved { written: true }.emit(&m);
    let after = age(&m.encode());
    assert!(after < before, "{after} after a save, {before} before");
}

#[test]
fn config_reload_failures_are_counted_and_clear_nothing() {
    let m = Metrics::new();
    let error = crate::config::ConfigError::Invalid("parse.multiline: cobol".into());
    ConfigReloadFailed {
        path: Path::new("/etc/kelp/collector.yaml"),
        error: &error,
    }
    .emit(&m);
    let text = m.encode();
    assert_sample(
        &text,
        "kelp_collector_config_reloads_total{outcome=\"failed\"} 1",
    );
    assert_sample(&text, "kelp_collector_config_restart_required 0");
    assert_eq!(m.dropped(MalformedReason::Json.as_str()), 0);
}
