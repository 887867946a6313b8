use std::collections::BTreeSet;

use serde_json::Value;

use super::*;

const EXAMPLE: &str = include_str!("../../config.example.yaml");

const MINIMAL_YAML: &str = "
kafka:
  bootstrap_servers: [localhost:9092]
  topics: [kelp-events]
elasticsearch:
  urls: [http://localhost:9200]
";

const MINIMAL_TOML: &str = r#"
[kafka]
bootstrap_servers = ["localhost:9092"]
topics = ["kelp-events"]

[elasticsearch]
urls = ["http://localhost:9200"]
"#;

fn minimal() -> Config {
    Config {
        kafka: KafkaConfig {
            bootstrap_servers: vec!["localhost:9092".into()],
            topics: vec!["kelp-events".into()],
            topic_regex: None,
            group_id: "kelp-shipper".into(),
            group_instance_id: None,
            session_timeout_ms: 45_000,
            commit_interval_ms: 1_000,
            properties: BTreeMap::new(),
        },
        elasticsearch: ElasticsearchConfig {
            urls: vec!["http://localhost:9200".into()],
            index_template: DEFAULT_TEMPLATE.into(),
            auth: Auth::None,
            tls: TlsConfig::default(),
            request_timeout_ms: 60_000,
        },
        bulk: BulkConfig::default(),
        dead_letter: DeadLetterConfig::default(),
        template: TemplateConfig::default(),
        metrics: MetricsConfig::default(),
    }
}

#[test]
fn minimal_configs_get_the_defaults() {
    assert_eq!(Config::from_yaml_str(MINIMAL_YAML).unwrap(), minimal());
    assert_eq!(Config::from_toml_str(MINIMAL_TOML).unwrap(), minimal());
    let defaults = minimal();
    assert_eq!(defaults.bulk.max_bytes, 5_242_880);
    assert_eq!(defaults.bulk.max_events, 5_000);
    assert_eq!(defaults.dead_letter.topic, "kelp-dead-letter");
    assert_eq!(defaults.metrics.listen_address.to_string(), "0.0.0.0:9102");
    assert_eq!(defaults.template.retention_days, 7);
}

#[test]
fn example_config_parses() {
    let config = Config::from_yaml_str(EXAMPLE).unwrap();
    let mut want = minimal();
    want.kafka.bootstrap_servers = vec![
        "kafka-0.kafka.kelp.svc:9092".into(),
        "kafka-1.kafka.kelp.svc:9092".into(),
    ];
    want.kafka.group_instance_id = Some("kelp-shipper-0".into());
    want.kafka.properties = BTreeMap::from([
        (
            "client.id".to_owned(),
            PropertyValue::String("kelp-shipper".into()),
        ),
        ("fetch.max.bytes".to_owned(), PropertyValue::Int(52_428_800)),
    ]);
    want.elasticsearch.urls = vec![
        "https://elasticsearch-0.elasticsearch.kelp.svc:9200".into(),
        "https://elasticsearch-1.elasticsearch.kelp.svc:9200".into(),
    ];
    want.elasticsearch.auth = Auth::Basic(BasicAuth {
        username: "kelp-shipper".into(),
        password_file: Some("/etc/kelp/elasticsearch/password".into()),
        password_env: None,
    });
    want.elasticsearch.tls = TlsConfig {
        ca_file: Some("/etc/kelp/elasticsearch/ca.crt".into()),
        cert_file: Some("/etc/kelp/elasticsearch/tls.crt".into()),
        key_file: Some("/etc/kelp/elasticsearch/tls.key".into()),
        insecure_skip_verify: false,
    };
    want.template.replicas = Some(1);
    // The example uses the collector's default topic.
    want.kafka.topics = vec!["kelp-logs".into()];
    assert_eq!(config, want);
    assert_eq!(
        config.kafka.property_strings(),
        BTreeMap::from([
            ("client.id".to_owned(), "kelp-shipper".to_owned()),
            ("fetch.max.bytes".to_owned(), "52428800".to_owned()),
        ])
    );
}

/// Leaf paths of a parsed YAML tree; `kafka.properties` is free-form.
fn leaf_paths(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value.as_object() {
        Some(map) if path != "kafka.properties" => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                leaf_paths(child, &child_path, out);
            }
        }
        _ => {
            out.insert(path.to_owned());
        }
    }
}

/// The example shows every field: those set, plus the alternatives it shows
/// in comments because they exclude a field that is set.
#[test]
fn example_config_shows_every_field() {
    let tree: Value = serde_saphyr::from_str(EXAMPLE).unwrap();
    let mut set = BTreeSet::new();
    leaf_paths(&tree, "", &mut set);
    let every_field = [
        "kafka.bootstrap_servers",
        "kafka.topics",
        "kafka.group_id",
        "kafka.group_instance_id",
        "kafka.session_timeout_ms",
        "kafka.commit_interval_ms",
        "kafka.properties",
        "elasticsearch.urls",
        "elasticsearch.index_template",
        "elasticsearch.auth.basic.username",
        "elasticsearch.auth.basic.password_file",
        "elasticsearch.tls.ca_file",
        "elasticsearch.tls.cert_file",
        "elasticsearch.tls.key_file",
        "elasticsearch.tls.insecure_skip_verify",
        "elasticsearch.request_timeout_ms",
        "bulk.max_bytes",
        "bulk.max_events",
        "bulk.linger_ms",
        "bulk.idle_linger_ms",
        "bulk.max_in_flight",
        "bulk.gzip",
        "bulk.retry_base_ms",
        "bulk.retry_cap_ms",
        "bulk.revoke_drain_timeout_ms",
        "dead_letter.topic",
        "template.install",
        "template.name",
        "template.shards",
        "template.replicas",
        "template.refresh_interval_ms",
        "template.codec",
        "template.retention_days",
        "metrics.listen_address",
    ];
    let want: BTreeSet<String> = every_field.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(set, want);
    for alternative in [
        "# topic_regex:",
        "# password_env:",
        "#   api_key:",
        "#     key_file:",
        "# key_env:",
        "# auth: none",
    ] {
        assert!(EXAMPLE.contains(alternative), "{alternative}");
    }
}

#[test]
fn auth_alternatives() {
    let with_auth = |auth: &str| format!("{MINIMAL_YAML}  auth:\n{auth}");
    let table: Vec<(String, Auth, Option<SecretSource>)> = vec![
        (with_auth("    none\n"), Auth::None, None),
        (
            with_auth("    api_key:\n      key_env: KELP_ES_API_KEY\n"),
            Auth::ApiKey(ApiKeyAuth {
                key_file: None,
                key_env: Some("KELP_ES_API_KEY".into()),
            }),
            Some(SecretSource::Env("KELP_ES_API_KEY".into())),
        ),
        (
            with_auth("    api_key:\n      key_file: /k\n"),
            Auth::ApiKey(ApiKeyAuth {
                key_file: Some("/k".into()),
                key_env: None,
            }),
            Some(SecretSource::File("/k".into())),
        ),
        (
            with_auth("    basic:\n      username: u\n      password_env: P\n"),
            Auth::Basic(BasicAuth {
                username: "u".into(),
                password_file: None,
                password_env: Some("P".into()),
            }),
            Some(SecretSource::Env("P".into())),
        ),
    ];
    for (yaml, auth, source) in table {
        let config = Config::from_yaml_str(&yaml).unwrap();
        assert_eq!(config.elasticsearch.auth, auth);
        assert_eq!(config.elasticsearch.auth.source().unwrap(), source);
    }
    let toml = format!(
        "{MINIMAL_TOML}\n[elasticsearch.auth.basic]\nusername = \"u\"\npassword_file = \"/p\"\n"
    );
    assert_eq!(
        Config::from_toml_str(&toml)
            .unwrap()
            .elasticsearch
            .auth
            .source()
            .unwrap(),
        Some(SecretSource::File("/p".into()))
    );
}

#[test]
fn unknown_fields_are_rejected_by_name() {
    let yaml_cases = [
        (format!("{MINIMAL_YAML}bogus_section: 1\n"), "bogus_section"),
        (format!("{MINIMAL_YAML}bulk:\n  max_byte: 10\n"), "max_byte"),
        (
            MINIMAL_YAML.replace("  topics:", "  topic: x\n  topics:"),
            "topic",
        ),
        (
            format!("{MINIMAL_YAML}  tls:\n    ca_path: /x\n"),
            "ca_path",
        ),
        (
            format!(
                "{MINIMAL_YAML}  auth:\n    basic:\n      username: u\n      password: hunter2\n"
            ),
            "password",
        ),
        (
            format!("{MINIMAL_YAML}  auth:\n    kerberos: {{}}\n"),
            "kerberos",
        ),
        (format!("{MINIMAL_YAML}template:\n  codec: zstd\n"), "zstd"),
    ];
    for (yaml, field) in yaml_cases {
        let err = Config::from_yaml_str(&yaml).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Yaml(_)), "{text}");
        assert!(text.starts_with("reading yaml config failed: "), "{text}");
        assert!(text.contains(&format!("`{field}`")), "{field}: {text}");
    }
    let toml_cases = [
        (
            format!("{MINIMAL_TOML}\n[bulk]\nmax_byte = 10\n"),
            "max_byte",
        ),
        (format!("bogus = 1\n{MINIMAL_TOML}"), "bogus"),
    ];
    for (toml, field) in toml_cases {
        let err = Config::from_toml_str(&toml).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, ConfigError::Toml(_)), "{text}");
        assert!(text.starts_with("reading toml config failed: "), "{text}");
        assert!(text.contains(&format!("`{field}`")), "{field}: {text}");
    }
}

#[test]
fn missing_required_fields_are_named() {
    let err = Config::from_yaml_str("kafka:\n  topics: [x]\nelasticsearch:\n  urls: [http://h]\n")
        .unwrap_err();
    assert!(err.to_string().contains("bootstrap_servers"), "{err}");
}

#[test]
fn validation_table() {
    let base = minimal();
    type Edit = fn(&mut Config);
    let table: &[(Edit, &str)] = &[
        (
            |c| c.kafka.bootstrap_servers.clear(),
            "kafka.bootstrap_servers",
        ),
        (
            |c| c.kafka.bootstrap_servers = vec![" ".into()],
            "kafka.bootstrap_servers",
        ),
        (|c| c.kafka.topics.clear(), "kafka.topics"),
        (
            |c| c.kafka.topic_regex = Some("^x".into()),
            "kafka.topic_regex",
        ),
        (
            |c| {
                c.kafka.topics.clear();
                c.kafka.topic_regex = Some("kelp-.*".into());
            },
            "kafka.topic_regex",
        ),
        (|c| c.kafka.topics = vec!["^x".into()], "kafka.topics"),
        (|c| c.kafka.topics = vec!["".into()], "kafka.topics"),
        (|c| c.kafka.group_id = " ".into(), "kafka.group_id"),
        (
            |c| c.kafka.group_instance_id = Some("".into()),
            "kafka.group_instance_id",
        ),
        (
            |c| c.kafka.session_timeout_ms = 0,
            "kafka.session_timeout_ms",
        ),
        (
            |c| c.kafka.commit_interval_ms = 0,
            "kafka.commit_interval_ms",
        ),
        (
            |c| {
                c.kafka
                    .properties
                    .insert("enable.auto.offset.store".into(), PropertyValue::Bool(true));
            },
            "kafka.properties",
        ),
        (
            |c| {
                c.kafka
                    .properties
                    .insert("group.id".into(), PropertyValue::String("x".into()));
            },
            "kafka.properties",
        ),
        (|c| c.elasticsearch.urls.clear(), "elasticsearch.urls"),
        (
            |c| c.elasticsearch.urls = vec!["localhost:9200".into()],
            "elasticsearch.urls",
        ),
        (
            |c| c.elasticsearch.urls = vec!["https://".into()],
            "elasticsearch.urls",
        ),
        (
            |c| c.elasticsearch.urls = vec!["ftp://h".into()],
            "elasticsearch.urls",
        ),
        (
            |c| c.elasticsearch.index_template = "Logs".into(),
            "elasticsearch.index_template",
        ),
        (
            |c| c.elasticsearch.index_template = "{kubernetes.namespace}-logs".into(),
            "elasticsearch.index_template",
        ),
        (
            |c| {
                c.elasticsearch.auth = Auth::Basic(BasicAuth {
                    username: "u".into(),
                    password_file: Some("/p".into()),
                    password_env: Some("P".into()),
                });
            },
            "elasticsearch.auth.basic",
        ),
        (
            |c| {
                c.elasticsearch.auth = Auth::Basic(BasicAuth {
                    username: "u".into(),
                    password_file: None,
                    password_env: None,
                });
            },
            "elasticsearch.auth.basic",
        ),
        (
            |c| {
                c.elasticsearch.auth = Auth::Basic(BasicAuth {
                    username: "".into(),
                    password_file: Some("/p".into()),
                    password_env: None,
                });
            },
            "elasticsearch.auth.basic.username",
        ),
        (
            |c| {
                c.elasticsearch.auth = Auth::ApiKey(ApiKeyAuth {
                    key_file: None,
                    key_env: Some("".into()),
                });
            },
            "elasticsearch.auth.api_key",
        ),
        (
            |c| c.elasticsearch.tls.cert_file = Some("/c".into()),
            "elasticsearch.tls",
        ),
        (
            |c| c.elasticsearch.request_timeout_ms = 0,
            "elasticsearch.request_timeout_ms",
        ),
        (|c| c.bulk.max_bytes = 100, "bulk.max_bytes"),
        (|c| c.bulk.max_events = 0, "bulk.max_events"),
        (|c| c.bulk.max_in_flight = 0, "bulk.max_in_flight"),
        (|c| c.bulk.idle_linger_ms = 2_000, "bulk.idle_linger_ms"),
        (|c| c.bulk.retry_base_ms = 0, "bulk.retry_base_ms"),
        (|c| c.bulk.retry_cap_ms = 10, "bulk.retry_base_ms"),
        (
            |c| c.bulk.revoke_drain_timeout_ms = 45_000,
            "bulk.revoke_drain_timeout_ms",
        ),
        (|c| c.dead_letter.topic = "".into(), "dead_letter.topic"),
        (
            |c| c.dead_letter.topic = "kelp-events".into(),
            "dead_letter.topic",
        ),
        (|c| c.template.name = "Kelp".into(), "template.name"),
        (|c| c.template.name = "_kelp".into(), "template.name"),
        (|c| c.template.shards = 0, "template.shards"),
        (
            |c| c.template.refresh_interval_ms = 0,
            "template.refresh_interval_ms",
        ),
    ];
    for (edit, field) in table {
        let mut config = base.clone();
        edit(&mut config);
        match config.validate() {
            Err(ConfigError::Invalid { field: got, reason }) => {
                assert_eq!(got, *field, "{reason}");
            }
            other => panic!("{field}: expected invalid, got {other:?}"),
        }
    }
    // Without template installation a template may start with a field.
    let mut config = base;
    config.template.install = false;
    config.elasticsearch.index_template = "{kubernetes.namespace}-logs".into();
    config.validate().unwrap();
}

#[test]
fn invalid_messages_name_field_and_step() {
    let mut config = minimal();
    config.bulk.revoke_drain_timeout_ms = 50_000;
    assert_eq!(
        config.validate().unwrap_err().to_string(),
        "validating config failed: bulk.revoke_drain_timeout_ms: 50000 must be below kafka.session_timeout_ms (45000), or the group evicts the shipper while it drains"
    );
}

#[test]
fn derived_settings() {
    let mut config = minimal();
    config.template.refresh_interval_ms = 1_500;
    config.template.retention_days = 0;
    let s = config.template_settings().unwrap();
    assert_eq!(s.index_patterns, vec!["kelp-logs-*".to_owned()]);
    assert_eq!(s.refresh_interval, "1500ms");
    assert_eq!(s.retention_days, None);
    assert_eq!(s.codec, Codec::BestCompression);
    config.template.refresh_interval_ms = 30_000;
    config.template.retention_days = 14;
    let s = config.template_settings().unwrap();
    assert_eq!(s.refresh_interval, "30s");
    assert_eq!(s.retention_days, Some(14));
    assert_eq!(config.bulk.limits().max_events, 5_000);
    assert_eq!(
        config.bulk.backoff().unwrap(),
        Backoff::from_millis(100, 30_000).unwrap()
    );
    assert_eq!(config.index_template().unwrap(), IndexTemplate::default());
}

#[test]
fn property_values_become_strings() {
    let yaml = MINIMAL_YAML.replace(
        "  topics: [kelp-events]\n",
        "  topics: [kelp-events]\n  properties:\n    a: true\n    b: 7\n    c: 0.5\n    d: text\n    e: \"7\"\n",
    );
    let config = Config::from_yaml_str(&yaml).unwrap();
    let strings: Vec<(String, String)> = config.kafka.property_strings().into_iter().collect();
    assert_eq!(
        strings,
        vec![
            ("a".into(), "true".into()),
            ("b".into(), "7".into()),
            ("c".into(), "0.5".into()),
            ("d".into(), "text".into()),
            ("e".into(), "7".into()),
        ]
    );
}

#[test]
fn secrets_load_and_never_print() {
    let no_file = |_: &Path| -> std::io::Result<String> { panic!("no file expected") };
    let no_env = |_: &str| -> Option<String> { panic!("no env expected") };

    let s = SecretSource::File("/run/secrets/pw".into())
        .load(
            |p| {
                assert_eq!(p, Path::new("/run/secrets/pw"));
                Ok("hunter2\n".to_owned())
            },
            no_env,
        )
        .unwrap();
    assert_eq!(s.expose(), "hunter2");
    assert_eq!(format!("{s}"), "***");
    assert_eq!(format!("{s:?}"), "***");
    assert_eq!(format!("{:?}", Some(s.clone())), "Some(***)");

    let s = SecretSource::Env("PW".into())
        .load(no_file, |k| {
            (k == "PW").then(|| "  key with spaces  \t".to_owned())
        })
        .unwrap();
    assert_eq!(s.expose(), "  key with spaces");

    let err = SecretSource::Env("PW".into())
        .load(no_file, |_| None)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "loading secret failed: environment variable PW is not set"
    );
    let err = SecretSource::File("/x".into())
        .load(
            |_| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file",
                ))
            },
            no_env,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "loading secret failed: reading /x: no such file"
    );
    let err = SecretSource::File("/x".into())
        .load(|_| Ok("\n".to_owned()), no_env)
        .unwrap_err();
    assert_eq!(err.to_string(), "loading secret failed: /x is empty");
}

#[test]
fn file_format_by_extension() {
    let yaml = Config::from_file_text(Path::new("/etc/kelp/shipper.yaml"), MINIMAL_YAML).unwrap();
    assert_eq!(yaml, minimal());
    let yml = Config::from_file_text(Path::new("shipper.YML"), MINIMAL_YAML).unwrap();
    assert_eq!(yml, minimal());
    let toml = Config::from_file_text(Path::new("shipper.toml"), MINIMAL_TOML).unwrap();
    assert_eq!(toml, minimal());
    let err = Config::from_file_text(Path::new("shipper.json"), "{}").unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading config failed: shipper.json must end in .yaml, .yml or .toml to tell its format"
    );
    // The extension decides, not the content.
    assert!(matches!(
        Config::from_file_text(Path::new("shipper.toml"), MINIMAL_YAML),
        Err(ConfigError::Toml(_))
    ));
}

#[test]
fn consumer_properties_keep_the_guarantee() {
    let mut config = minimal();
    config.kafka.group_instance_id = Some("kelp-shipper-0".into());
    config.kafka.bootstrap_servers = vec!["a:9092".into(), "b:9092".into()];
    config.kafka.properties.insert(
        "auto.offset.reset".into(),
        PropertyValue::String("latest".into()),
    );
    config
        .kafka
        .properties
        .insert("fetch.max.bytes".into(), PropertyValue::Int(1_048_576));
    let props = config.kafka.consumer_properties();
    let get = |k: &str| props.get(k).map(String::as_str);
    assert_eq!(get("bootstrap.servers"), Some("a:9092,b:9092"));
    assert_eq!(get("group.id"), Some("kelp-shipper"));
    assert_eq!(get("group.instance.id"), Some("kelp-shipper-0"));
    assert_eq!(get("enable.auto.commit"), Some("true"));
    assert_eq!(get("enable.auto.offset.store"), Some("false"));
    assert_eq!(get("auto.commit.interval.ms"), Some("1000"));
    assert_eq!(get("session.timeout.ms"), Some("45000"));
    assert_eq!(
        get("partition.assignment.strategy"),
        Some("cooperative-sticky")
    );
    // Defaults the file may change.
    assert_eq!(get("auto.offset.reset"), Some("latest"));
    assert_eq!(get("fetch.max.bytes"), Some("1048576"));
    // A small prefetch by default, so pausing discards little.
    assert_eq!(get("queued.min.messages"), Some("1000"));
    assert_eq!(get("fetch.queue.backoff.ms"), Some("20"));
    // Without static membership there is no instance id at all.
    assert_eq!(
        minimal()
            .kafka
            .consumer_properties()
            .get("group.instance.id"),
        None
    );
    assert_eq!(
        minimal()
            .kafka
            .consumer_properties()
            .get("auto.offset.reset")
            .map(String::as_str),
        Some("earliest")
    );
}

#[test]
fn producer_properties_are_idempotent_and_skip_consumer_settings() {
    let mut config = minimal();
    config.kafka.properties.insert(
        "security.protocol".into(),
        PropertyValue::String("SSL".into()),
    );
    config.kafka.properties.insert(
        "auto.offset.reset".into(),
        PropertyValue::String("latest".into()),
    );
    let props = config.kafka.producer_properties();
    let get = |k: &str| props.get(k).map(String::as_str);
    assert_eq!(get("bootstrap.servers"), Some("localhost:9092"));
    assert_eq!(get("enable.idempotence"), Some("true"));
    assert_eq!(get("acks"), Some("all"));
    assert_eq!(get("security.protocol"), Some("SSL"));
    assert_eq!(get("group.id"), None);
    assert_eq!(get("auto.offset.reset"), None);
}

#[test]
fn redaction_hides_secret_properties_only() {
    let mut config = minimal();
    for (key, value) in [
        ("sasl.password", "hunter2"),
        ("ssl.key.password", "hunter3"),
        ("ssl.key.pem", "-----BEGIN"),
        ("security.protocol", "SASL_SSL"),
    ] {
        config
            .kafka
            .properties
            .insert(key.into(), PropertyValue::String(value.into()));
    }
    let redacted = config.redacted();
    let text = serde_json::to_string(&redacted).unwrap();
    for secret in ["hunter2", "hunter3", "-----BEGIN"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.contains("SASL_SSL"), "{text}");
    assert_eq!(
        redacted.kafka.properties["sasl.password"],
        PropertyValue::String("***".into())
    );
    // Everything else is unchanged, and the effective config round-trips.
    let back: Config = serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(back, config);
}

#[test]
fn a_batch_waits_briefly_while_a_slot_is_free_and_long_while_all_are_busy() {
    let bulk = BulkConfig {
        linger_ms: 1_000,
        idle_linger_ms: 50,
        max_in_flight: 4,
        ..BulkConfig::default()
    };
    let ms = |in_flight, queued| bulk.linger(Slots { in_flight, queued }).as_millis();
    // (in flight, queued, linger ms, why)
    let table = [
        (0, 0, 50, "idle engine: send what there is"),
        (3, 0, 50, "a slot is free"),
        (4, 0, 1_000, "every slot busy: let the batch grow"),
        (3, 1, 1_000, "a full batch already waits for the free slot"),
        (5, 2, 1_000, "over the limit while draining"),
    ];
    for (in_flight, queued, want, why) in table {
        assert_eq!(ms(in_flight, queued), want, "{why}");
    }
}
