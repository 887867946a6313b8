//! Config reload on SIGHUP: which changed fields apply to the running
//! collector, and which wait for a restart.
//!
//! Applied at runtime: `parse.multiline.*` (to events that start after the
//! reload), `delivery.*`, `checkpoint.interval_ms`, `log.filter`,
//! `metrics.liveness_timeout_ms`, and every `tail.*` field but
//! `max_line_bytes`, `read_chunk_bytes` and `read_from` (see
//! [`crate::tail::TailConfig::reloaded`]). Everything else (`sink.*`,
//! `node_name`, `parse.format`, `parse.max_event_bytes`,
//! `checkpoint.path`, `metrics.listen`, `metrics.enabled`, `kubernetes.*`)
//! keeps its running value: the producer, the event builders, the server
//! and the Kubernetes watch are built once.
//!
//! The running config is the file's minus the fields awaiting a restart,
//! so each reload names those fields again until the restart happens.

use serde_json::Value;

use crate::config::{CheckpointConfig, Config, ConfigError, MetricsConfig, ParseConfig};

/// A field applied at runtime, with its old and new values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The field's path, e.g. `parse.multiline.rule`.
    pub field: String,
    /// The running value.
    pub old: String,
    /// The value from the file.
    pub new: String,
}

/// What a reload does; see the module docs.
#[derive(Debug, Clone)]
pub struct ReloadPlan {
    /// The config to run with from now on.
    pub effective: Config,
    /// The runtime fields that change.
    pub applied: Vec<Change>,
    /// Fields whose value in the file differs from the running one and that
    /// apply only after a restart. Names only: values may be secrets.
    pub needs_restart: Vec<String>,
}

impl ReloadPlan {
    /// Plans the move from the `running` config to a validated `file` config.
    ///
    /// # Errors
    /// When the running config combined with the file's runtime fields is
    /// invalid, or the configs cannot be compared.
    pub fn new(running: &Config, file: &Config) -> Result<ReloadPlan, ConfigError> {
        let effective = with_runtime_fields(running, file);
        effective.validate()?;
        let before = to_value(running)?;
        let after = to_value(&effective)?;
        let wanted = to_value(file)?;
        let mut applied = Vec::new();
        diff("", &before, &after, &mut |field, old, new| {
            applied.push(Change {
                field,
                old: render(old),
                new: render(new),
            });
        });
        let mut needs_restart = Vec::new();
        diff("", &after, &wanted, &mut |field, _, _| {
            needs_restart.push(field)
        });
        Ok(ReloadPlan {
            effective,
            applied,
            needs_restart,
        })
    }
}

/// `running` with every field that can change at runtime taken from `file`.
fn with_runtime_fields(running: &Config, file: &Config) -> Config {
    Config {
        tail: running.tail.reloaded(&file.tail),
        parse: ParseConfig {
            multiline: file.parse.multiline.clone(),
            ..running.parse.clone()
        },
        checkpoint: CheckpointConfig {
            interval_ms: file.checkpoint.interval_ms,
            ..running.checkpoint.clone()
        },
        delivery: file.delivery.clone(),
        metrics: MetricsConfig {
            liveness_timeout_ms: file.metrics.liveness_timeout_ms,
            ..running.metrics.clone()
        },
        log: file.log.clone(),
        ..running.clone()
    }
}

fn to_value(config: &Config) -> Result<Value, ConfigError> {
    serde_json::to_value(config)
        .map_err(|error| ConfigError::Invalid(format!("comparing configs failed: {error}")))
}

/// A value for a log line: strings without JSON quotes.
fn render(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Reports each leaf that differs between `a` and `b` with its dotted path.
/// Maps are compared key by key; anything else (lists included) as a whole.
fn diff(path: &str, a: &Value, b: &Value, found: &mut dyn FnMut(String, &Value, &Value)) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                let (left, right) = (
                    x.get(key).unwrap_or(&Value::Null),
                    y.get(key).unwrap_or(&Value::Null),
                );
                diff(&child, left, right, found);
            }
        }
        (a, b) if a != b => found(path.to_owned(), a, b),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::config::{FormatChoice, SinkConfig};
    use crate::sink::{Compression, KeyChoice};
    use crate::tail::ReadFrom;

    fn example() -> Config {
        Config::from_yaml_str(include_str!("../config.example.yaml")).unwrap()
    }

    /// Every leaf path of a config.
    fn leaves(path: &str, value: &Value, out: &mut BTreeSet<String>) {
        match value {
            Value::Object(map) if !map.is_empty() => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    leaves(&child_path, child, out);
                }
            }
            _ => {
                out.insert(path.to_owned());
            }
        }
    }

    /// Changes every field of the example config.
    fn everything_changed() -> Config {
        let mut c = example();
        c.node_name = Some("node-2".into());
        let t = &mut c.tail;
        t.include = vec!["/var/log/other/*.log".into()];
        t.exclude = vec!["*.old".into()];
        t.glob_interval_ms += 1;
        t.poll_interval_ms += 1;
        t.read_from = ReadFrom::End;
        t.max_line_bytes += 1;
        t.read_chunk_bytes += 1;
        t.max_read_bytes_per_file += 1;
        t.max_in_flight_lines_per_file += 1;
        t.deleted_file_grace_ms += 1;
        t.deleted_file_max_hold_ms = Some(1);
        t.rotated_flush_ms += 1;
        t.checkpoint_retention_ms += 1;
        c.parse.format = FormatChoice::Cri;
        c.parse.max_event_bytes += 1;
        let m = &mut c.parse.multiline;
        m.rule = "custom".into();
        m.start = Some("^a".into());
        m.continue_pattern = Some("^b".into());
        m.flush_timeout_ms += 1;
        m.max_lines += 1;
        c.checkpoint.path = "/elsewhere.json".into();
        c.checkpoint.interval_ms += 1;
        let SinkConfig::Kafka(k) = &mut c.sink else {
            panic!("the example uses kafka");
        };
        k.bootstrap_servers = "other:9092".into();
        k.topic = "other".into();
        k.key = KeyChoice::Pod;
        k.compression = Compression::Zstd;
        k.queue_max_bytes += 1;
        k.linger_ms += 1;
        k.message_max_bytes += 1;
        k.properties.insert("sasl.password".into(), "secret".into());
        let d = &mut c.delivery;
        d.max_in_flight_events += 1;
        d.retry_base_ms += 1;
        d.retry_cap_ms += 1;
        d.shutdown_timeout_ms += 1;
        c.metrics.enabled = false;
        c.metrics.listen = "127.0.0.1:1".parse().unwrap();
        c.metrics.liveness_timeout_ms += 1;
        c.log.filter = "debug".into();
        let k = &mut c.kubernetes;
        k.enabled = true;
        k.kubeconfig = Some("/etc/kube.yaml".into());
        k.include_labels = false;
        k.include_annotations = vec!["example.com/*".into()];
        k.initial_sync_timeout_ms += 1;
        k.unknown_pod_wait_ms += 1;
        k.deleted_pod_retention_ms += 1;
        c.validate().unwrap();
        c
    }

    #[test]
    fn every_field_is_either_applied_or_named_as_needing_a_restart() {
        let running = example();
        let file = everything_changed();
        let plan = ReloadPlan::new(&running, &file).unwrap();
        let applied: BTreeSet<String> = plan.applied.iter().map(|c| c.field.clone()).collect();
        let restart: BTreeSet<String> = plan.needs_restart.iter().cloned().collect();
        let want_applied: BTreeSet<String> = [
            "tail.include",
            "tail.exclude",
            "tail.glob_interval_ms",
            "tail.poll_interval_ms",
            "tail.max_read_bytes_per_file",
            "tail.max_in_flight_lines_per_file",
            "tail.deleted_file_grace_ms",
            "tail.deleted_file_max_hold_ms",
            "tail.rotated_flush_ms",
            "tail.checkpoint_retention_ms",
            "parse.multiline.rule",
            "parse.multiline.start",
            "parse.multiline.continue_pattern",
            "parse.multiline.flush_timeout_ms",
            "parse.multiline.max_lines",
            "checkpoint.interval_ms",
            "delivery.max_in_flight_events",
            "delivery.retry_base_ms",
            "delivery.retry_cap_ms",
            "delivery.shutdown_timeout_ms",
            "metrics.liveness_timeout_ms",
            "log.filter",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(applied, want_applied);
        let want_restart: BTreeSet<String> = [
            "node_name",
            "tail.read_from",
            "tail.max_line_bytes",
            "tail.read_chunk_bytes",
            "parse.format",
            "parse.max_event_bytes",
            "checkpoint.path",
            "sink.bootstrap_servers",
            "sink.topic",
            "sink.key",
            "sink.compression",
            "sink.queue_max_bytes",
            "sink.linger_ms",
            "sink.message_max_bytes",
            "sink.properties.sasl.password",
            "metrics.enabled",
            "metrics.listen",
            "kubernetes.enabled",
            "kubernetes.kubeconfig",
            "kubernetes.include_labels",
            "kubernetes.include_annotations",
            "kubernetes.initial_sync_timeout_ms",
            "kubernetes.unknown_pod_wait_ms",
            "kubernetes.deleted_pod_retention_ms",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        assert_eq!(restart, want_restart);

        // A field added to the config must be classified here too.
        let mut all = BTreeSet::new();
        leaves("", &to_value(&file).unwrap(), &mut all);
        all.remove("sink.kind");
        let classified: BTreeSet<String> = applied.union(&restart).cloned().collect();
        assert_eq!(classified, all);

        // The running config keeps the restart-only values.
        assert_eq!(plan.effective.sink, running.sink);
        assert_eq!(
            plan.effective.tail.max_line_bytes,
            running.tail.max_line_bytes
        );
        assert_eq!(plan.effective.parse.multiline, file.parse.multiline);
        // Secrets are never rendered: restart fields are names only.
        assert!(!format!("{plan:?}").contains("secret"));

        // Applying the plan again changes nothing, but still names the
        // fields that wait for a restart.
        let again = ReloadPlan::new(&plan.effective, &file).unwrap();
        assert!(again.applied.is_empty());
        assert_eq!(again.needs_restart.len(), want_restart.len());
    }

    #[test]
    fn an_unchanged_file_plans_nothing_and_values_render_plainly() {
        let running = example();
        let plan = ReloadPlan::new(&running, &running.clone()).unwrap();
        assert!(plan.applied.is_empty() && plan.needs_restart.is_empty());

        let mut file = running.clone();
        file.parse.multiline.rule = "none".into();
        let plan = ReloadPlan::new(&running, &file).unwrap();
        assert_eq!(
            plan.applied,
            [Change {
                field: "parse.multiline.rule".into(),
                old: "java".into(),
                new: "none".into(),
            }]
        );
    }
}
