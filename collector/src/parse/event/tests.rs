use kelp_record::{Flag, SCHEMA_VERSION};

use super::*;
use crate::parse::Timestamp;
use crate::parse::path::parse_path;

const ID: &str = "3f4e5d6c7b8a99887766554433221100ffeeddccbbaa00112233445566778899";

fn source(path: &str) -> Source {
    Source {
        path: path.to_owned(),
        meta: parse_path(path),
        file_identity: 0xc0ffee,
        host: "node-1".to_owned(),
        format: Format::Cri,
    }
}

fn assembled(offset: u64, content: &[u8], flags: &[Flag]) -> Assembled {
    Assembled {
        offset,
        timestamp: Timestamp::parse(b"2026-11-27T20:17:29.12Z").unwrap(),
        stream: Stream::Stderr,
        content: content.to_vec(),
        flags: flags.to_vec(),
    }
}

#[test]
fn build_fills_the_record_from_the_event_and_its_file() {
    let path = "/var/log/pods/shop_web-1_0b1c2d3e-1111/nginx/2.log";
    let event = build_event(&source(path), assembled(500, b"ERROR boom", &[]));
    let want = Event {
        timestamp: "2026-11-27T20:17:29.120000000Z".to_owned(),
        message: "ERROR boom".to_owned(),
        stream: Stream::Stderr,
        log: Log {
            file: LogFile {
                path: path.to_owned(),
            },
            offset: 500,
            flags: Vec::new(),
            level: Some("error".to_owned()),
        },
        kubernetes: Kubernetes {
            namespace: "shop".to_owned(),
            pod: Pod {
                name: "web-1".to_owned(),
                uid: "0b1c2d3e-1111".to_owned(),
            },
            container: ContainerName {
                name: "nginx".to_owned(),
                image: None,
            },
            ..Kubernetes::default()
        },
        container: Container {
            id: None,
            runtime: "cri".to_owned(),
        },
        host: Host {
            name: "node-1".to_owned(),
        },
        event: EventMeta {
            id: EventId::new(0xc0ffee, 500),
            ingested: None,
        },
        kelp: KelpMeta {
            schema: SCHEMA_VERSION,
        },
    };
    assert_eq!(event, want);
    // The record survives its own encoding.
    assert_eq!(Event::from_json(&event.to_json()).unwrap(), want);
    assert!(
        String::from_utf8(event.to_json())
            .unwrap()
            .contains(r#""id":"0000000000c0ffee-1f4""#)
    );
}

#[test]
fn build_replaces_invalid_utf8_and_orders_flags() {
    let path = format!("/var/log/containers/web_shop_nginx-{ID}.log");
    // Content and flags in, message and flags out.
    type Case<'a> = (&'a [u8], &'a [Flag], &'a str, &'a [Flag]);
    let table: &[Case<'_>] = &[
        (b"ok", &[], "ok", &[]),
        (b"a\xffb", &[], "a\u{fffd}b", &[Flag::InvalidUtf8]),
        (b"\xe2\x82", &[], "\u{fffd}", &[Flag::InvalidUtf8]),
        (
            b"x",
            &[
                Flag::Multiline,
                Flag::Partial,
                Flag::Truncated,
                Flag::Partial,
            ],
            "x",
            &[Flag::Truncated, Flag::Partial, Flag::Multiline],
        ),
        (
            b"\xc3",
            &[Flag::Multiline, Flag::Truncated],
            "\u{fffd}",
            &[Flag::Truncated, Flag::Multiline, Flag::InvalidUtf8],
        ),
    ];
    let mut builder = EventBuilder::new(&source(&path));
    for &(content, flags, message, want_flags) in table {
        let event = builder.build(assembled(7, content, flags));
        assert_eq!(
            (event.message.as_str(), event.log.flags.as_slice()),
            (message, want_flags)
        );
        assert_eq!(event.container.id.as_deref(), Some(ID));
        assert_eq!(event.kubernetes.pod.uid, "");
        assert_eq!(event.kubernetes.namespace, "shop");
    }
}

#[test]
fn a_reused_builder_leaves_nothing_behind() {
    let mut builder = EventBuilder::new(&source("/tmp/app.log"));
    let first = builder
        .build(assembled(1, b"WARN slow", &[Flag::Partial]))
        .clone();
    assert_eq!(first.log.level.as_deref(), Some("warn"));
    let second = builder.build(assembled(99, b"plain", &[])).clone();
    assert_eq!(second.log.level, None);
    assert_eq!(second.log.flags, []);
    assert_eq!(second.event.id, EventId::new(0xc0ffee, 99));
    assert_eq!(second.message, "plain");
    let third = builder.build(assembled(120, b"[ERROR] x", &[])).clone();
    assert_eq!(third.log.level.as_deref(), Some("error"));
    // A path in no kubelet layout leaves the Kubernetes fields empty.
    assert_eq!(third.kubernetes, Kubernetes::default());
    assert_eq!(
        third,
        build_event(&source("/tmp/app.log"), assembled(120, b"[ERROR] x", &[]))
    );
}

#[test]
fn detect_level_looks_only_where_levels_are() {
    let table: &[(&str, Option<&str>)] = &[
        // Leading words of common text formats.
        (
            "2026-11-27T20:17:31.402Z ERROR 1 --- [main] o.s.b.SpringApplication : failed",
            Some("error"),
        ),
        (
            "2026-11-27T20:17:29.120Z  INFO 1 --- [main] c.e.Demo : Starting",
            Some("info"),
        ),
        ("20:17:29.120 [main] WARN  c.e.Demo - slow", Some("warn")),
        ("[DEBUG] cache miss", Some("debug")),
        ("TRACE enter", Some("trace")),
        (
            "2026-11-27 20:17:29,120 CRITICAL app: disk gone",
            Some("fatal"),
        ),
        ("SEVERE: listener failed", Some("error")),
        ("ERROR:root:job failed", Some("error")),
        ("WARNING:urllib3:retrying", Some("warn")),
        (
            "time=\"2026-11-27T20:17:29Z\" level=warning msg=\"slow\"",
            Some("warn"),
        ),
        ("ts=2026-11-27 level=ERROR msg=x", Some("error")),
        (
            "E1127 20:17:29.120000       1 reflector.go:147] failed to list",
            Some("error"),
        ),
        (
            "I1127 20:17:29.120000       1 main.go:12] started",
            Some("info"),
        ),
        (
            "W1127 20:17:29.120000       1 main.go:12] slow",
            Some("warn"),
        ),
        // JSON logs.
        (r#"{"level":"error","msg":"boom"}"#, Some("error")),
        (r#"{"ts":1, "level" : "Warn", "msg":"x"}"#, Some("warn")),
        (r#"{"severity":"INFO","message":"x"}"#, Some("info")),
        (r#"{"lvl":"dbg","msg":"x"}"#, None),
        (r#"{"level":30,"msg":"pino"}"#, None),
        (r#"{"msg":"level is fine","x":"ERROR"}"#, None),
        // Words that are not levels, or are too far in, or lower case prose.
        ("connection error while reading", None),
        ("error: lower case prose", None),
        ("one two three four five six seven ERROR", None),
        ("GET /healthz 200", None),
        ("", None),
        ("INFORMATION only", None),
        ("X1127 20:17:29", None),
        // Only the first line counts.
        ("all good\nERROR later", None),
    ];
    for &(message, want) in table {
        assert_eq!(detect_level(message), want, "{message:?}");
    }
}
