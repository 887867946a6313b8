use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use crate::*;

fn sample() -> Event {
    Event {
        timestamp: "2026-11-27T20:17:29.123456789Z".into(),
        message: "hello".into(),
        stream: Stream::Stderr,
        log: Log {
            file: LogFile {
                path: "/var/log/pods/ns_pod_uid/app/0.log".into(),
            },
            offset: 500,
            flags: vec![Flag::Truncated],
            level: None,
        },
        kubernetes: Kubernetes {
            namespace: "ns".into(),
            pod: Pod {
                name: "pod".into(),
                uid: "uid".into(),
            },
            container: ContainerName {
                name: "app".into(),
                image: None,
            },
            node: Some(Node {
                name: "node-1".into(),
            }),
            labels: BTreeMap::from([("app".to_owned(), "web".to_owned())]),
            annotations: BTreeMap::new(),
            owner: None,
        },
        container: Container {
            id: Some("abc".into()),
            runtime: "cri".into(),
        },
        host: Host {
            name: "node-1".into(),
        },
        event: EventMeta {
            id: EventId::new(0xc0ffee, 500),
            ingested: None,
        },
        kelp: KelpMeta::default(),
    }
}

#[test]
fn encodes_ecs_field_names() {
    let value: serde_json::Value = serde_json::from_slice(&sample().to_json()).unwrap();
    assert_eq!(
        value,
        json!({
            "@timestamp": "2026-11-27T20:17:29.123456789Z",
            "message": "hello",
            "stream": "stderr",
            "log": {"file": {"path": "/var/log/pods/ns_pod_uid/app/0.log"}, "offset": 500, "flags": ["truncated"]},
            "kubernetes": {
                "namespace": "ns",
                "pod": {"name": "pod", "uid": "uid"},
                "container": {"name": "app"},
                "node": {"name": "node-1"},
                "labels": {"app": "web"}
            },
            "container": {"id": "abc", "runtime": "cri"},
            "host": {"name": "node-1"},
            "event": {"id": "0000000000c0ffee-1f4"},
            "kelp": {"schema": 1}
        })
    );
}

#[test]
fn round_trips() {
    let event = sample();
    assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
    let mut buf = b"stale".to_vec();
    event.write_json(&mut buf);
    assert_eq!(buf, event.to_json());
}

#[test]
fn refuses_newer_schema() {
    let mut event = sample();
    event.kelp.schema = SCHEMA_VERSION + 1;
    let error = Event::from_json(&event.to_json()).unwrap_err();
    assert!(
        matches!(error, DecodeError::UnsupportedSchema { found, .. } if found == SCHEMA_VERSION + 1)
    );
}

#[test]
fn rejects_garbage_with_an_error() {
    for input in [&b""[..], b"{", b"null", b"{\"message\": 1}", b"\xff\xfe"] {
        assert!(Event::from_json(input).is_err(), "{input:?}");
    }
}

#[test]
fn event_id_text_form() {
    let table = [
        ("0000000000000000-0", Some(EventId::new(0, 0))),
        (
            "ffffffffffffffff-ffffffffffffffff",
            Some(EventId::new(u64::MAX, u64::MAX)),
        ),
        ("0000000000c0ffee-1f4", Some(EventId::new(0xc0ffee, 500))),
        ("c0ffee-1f4", None),
        ("0000000000c0ffee-", None),
        ("0000000000c0ffee", None),
        ("000000000000000g-1", None),
        ("0000000000000000-10000000000000000", None),
        ("", None),
    ];
    for (text, want) in table {
        assert_eq!(text.parse::<EventId>().ok(), want, "{text}");
        if let Some(id) = want {
            assert_eq!(id.to_string(), text);
        }
    }
}

proptest! {
    #[test]
    fn event_id_round_trips(file: u64, offset: u64) {
        let id = EventId::new(file, offset);
        prop_assert_eq!(id.to_string().parse::<EventId>().unwrap(), id);
    }

    #[test]
    fn decoding_never_panics(bytes: Vec<u8>) {
        let _ = Event::from_json(&bytes);
    }

    #[test]
    fn messages_round_trip(message: String) {
        let mut event = sample();
        event.message = message;
        prop_assert_eq!(Event::from_json(&event.to_json()).unwrap(), event);
    }
}

#[test]
fn the_length_hint_covers_typical_records_so_one_allocation_suffices() {
    let mut big = sample();
    // A Java stack trace: a tab and a newline to escape every ~40 bytes.
    big.message = "\tat com.example.shop.Checkout.pay(Checkout.java:42)\n".repeat(100);
    big.kubernetes
        .labels
        .insert("app.kubernetes.io/name".to_owned(), "checkout".repeat(8));
    let mut bare = sample();
    bare.message.clear();
    for event in [sample(), big, bare] {
        let json = event.to_json();
        assert!(
            json.len() <= event.json_len_hint(),
            "{} > hint {}",
            json.len(),
            event.json_len_hint()
        );
        // Not wildly over: the buffer waits in memory until Kafka acks.
        assert!(
            event.json_len_hint() < json.len() * 2 + 320,
            "{}",
            json.len()
        );
    }
}

/// Any event: every string any text (controls, quotes, non-ASCII), every
/// optional field present or not, any flags, labels and annotations.
fn any_event() -> impl Strategy<Value = Event> {
    let text = || any::<String>();
    let opt = || proptest::option::of(any::<String>());
    let map = || proptest::collection::btree_map(any::<String>(), any::<String>(), 0..4);
    let flag = prop_oneof![
        Just(Flag::Truncated),
        Just(Flag::Partial),
        Just(Flag::Multiline),
        Just(Flag::InvalidUtf8),
    ];
    (
        (text(), text(), any::<bool>(), text(), any::<u64>()),
        (
            proptest::collection::vec(flag, 0..3),
            opt(),
            text(),
            text(),
            text(),
        ),
        (text(), opt(), opt(), map(), map()),
        (
            opt().prop_map(|o| o.map(|n| ("ReplicaSet".to_owned(), n))),
            opt(),
            text(),
            text(),
        ),
        (any::<u64>(), any::<u64>(), opt(), any::<u32>()),
    )
        .prop_map(
            |(
                (timestamp, message, stderr, path, offset),
                (flags, level, namespace, pod, uid),
                (container, image, node, labels, annotations),
                (owner, id, runtime, host),
                (file, id_offset, ingested, schema),
            )| Event {
                timestamp,
                message,
                stream: if stderr {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                log: Log {
                    file: LogFile { path },
                    offset,
                    flags,
                    level,
                },
                kubernetes: Kubernetes {
                    namespace,
                    pod: Pod { name: pod, uid },
                    container: ContainerName {
                        name: container,
                        image,
                    },
                    node: node.map(|name| Node { name }),
                    labels,
                    annotations,
                    owner: owner.map(|(kind, name)| Owner { kind, name }),
                },
                container: Container { id, runtime },
                host: Host { name: host },
                event: EventMeta {
                    id: EventId::new(file, id_offset),
                    ingested,
                },
                kelp: KelpMeta { schema },
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The hand-written encoder writes exactly serde_json's bytes.
    #[test]
    fn the_encoder_writes_what_serde_json_writes(event in any_event()) {
        let ours = event.to_json();
        let theirs = serde_json::to_vec(&event).unwrap();
        prop_assert_eq!(String::from_utf8(ours).unwrap(), String::from_utf8(theirs).unwrap());
        let mut reused = b"left over".to_vec();
        event.write_json(&mut reused);
        prop_assert_eq!(reused, serde_json::to_vec(&event).unwrap());
    }
}
