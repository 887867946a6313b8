//! The one-pass scanner against a serde_json reference: the shipper's
//! previous decoder, kept here as the model of what must be accepted.

use std::borrow::Cow;
use std::ops::Range;

use proptest::prelude::*;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::*;
use crate::testutil;

mod reference {
    //! The serde decode of the same fields.
    use super::*;

    #[derive(Debug, Default, Deserialize)]
    struct Named<'a> {
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct PodView<'a> {
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        uid: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct ContainerNameView<'a> {
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        image: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct OwnerView<'a> {
        #[serde(default, borrow)]
        kind: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        name: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct KubernetesView<'a> {
        #[serde(default, borrow)]
        namespace: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        pod: Option<PodView<'a>>,
        #[serde(default, borrow)]
        container: Option<ContainerNameView<'a>>,
        #[serde(default, borrow)]
        node: Option<Named<'a>>,
        #[serde(default, borrow)]
        owner: Option<OwnerView<'a>>,
        // Decoded only when a template asks for a key.
        #[serde(default, borrow)]
        labels: Option<&'a RawValue>,
        #[serde(default, borrow)]
        annotations: Option<&'a RawValue>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct ContainerView<'a> {
        #[serde(default, borrow)]
        id: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        runtime: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Default, Deserialize)]
    struct LogView<'a> {
        #[serde(default, borrow)]
        level: Option<Cow<'a, str>>,
    }

    #[derive(Debug, Deserialize)]
    struct KelpView {
        schema: u32,
    }

    #[derive(Debug, Deserialize)]
    struct Fields<'a> {
        #[serde(rename = "@timestamp", borrow)]
        timestamp: Cow<'a, str>,
        #[serde(default, borrow)]
        stream: Option<Cow<'a, str>>,
        #[serde(default, borrow)]
        log: Option<LogView<'a>>,
        #[serde(default, borrow)]
        kubernetes: Option<KubernetesView<'a>>,
        #[serde(default, borrow)]
        container: Option<ContainerView<'a>>,
        #[serde(default, borrow)]
        host: Option<Named<'a>>,
        #[serde(borrow)]
        event: &'a RawValue,
        kelp: KelpView,
    }

    #[derive(Debug, Deserialize)]
    struct EventView<'a> {
        #[serde(borrow)]
        id: Cow<'a, str>,
        // Present-but-null must be seen too, to be replaced rather than duplicated.
        #[serde(default, borrow, deserialize_with = "present")]
        ingested: Option<&'a RawValue>,
    }

    fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
        <&RawValue>::deserialize(d).map(Some)
    }

    /// Where `inner`, a sub-slice handed out by the parser, lies in `outer`.
    fn span_in(outer: &str, inner: &str) -> Option<Range<usize>> {
        let start = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
        let range = start..start.checked_add(inner.len())?;
        // Same address and length: `inner` really is that part of `outer`.
        outer
            .get(range.clone())
            .is_some_and(|s| std::ptr::eq(s, inner))
            .then_some(range)
    }

    /// What the serde decode picked, in comparable form.
    pub(super) fn parse(text: &str) -> Result<Picked, String> {
        let text = text.trim_ascii();
        let fields: Fields<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let event_text = fields.event.get();
        let event: EventView<'_> = serde_json::from_str(event_text).map_err(|e| e.to_string())?;
        if !event_text.ends_with('}') {
            return Err("event is not an object".into());
        }
        let event_span = span_in(text, event_text).ok_or("no event span")?;
        let ingested = match event.ingested {
            Some(raw) => Some(span_in(text, raw.get()).ok_or("no ingested span")?),
            None => None,
        };
        let k = fields.kubernetes.as_ref();
        let s = |v: Option<&Cow<'_, str>>| v.map(|v| v.to_string());
        Ok(Picked {
            timestamp: fields.timestamp.to_string(),
            id: event.id.to_string(),
            schema: fields.kelp.schema,
            event: event_span,
            ingested,
            strings: vec![
                s(k.and_then(|k| k.namespace.as_ref())),
                s(k.and_then(|k| k.pod.as_ref()?.name.as_ref())),
                s(k.and_then(|k| k.pod.as_ref()?.uid.as_ref())),
                s(k.and_then(|k| k.container.as_ref()?.name.as_ref())),
                s(k.and_then(|k| k.container.as_ref()?.image.as_ref())),
                s(k.and_then(|k| k.node.as_ref()?.name.as_ref())),
                s(k.and_then(|k| k.owner.as_ref()?.kind.as_ref())),
                s(k.and_then(|k| k.owner.as_ref()?.name.as_ref())),
                s(fields.container.as_ref().and_then(|c| c.id.as_ref())),
                s(fields.container.as_ref().and_then(|c| c.runtime.as_ref())),
                s(fields.host.as_ref().and_then(|h| h.name.as_ref())),
                s(fields.stream.as_ref()),
                s(fields.log.as_ref().and_then(|l| l.level.as_ref())),
            ],
            labels: k.and_then(|k| k.labels).map(|r| r.get().to_owned()),
            annotations: k.and_then(|k| k.annotations).map(|r| r.get().to_owned()),
        })
    }
}

/// The picks of either decoder, owned.
#[derive(Debug, PartialEq, Eq)]
struct Picked {
    timestamp: String,
    id: String,
    schema: u32,
    event: Range<usize>,
    ingested: Option<Range<usize>>,
    /// The string fields in `STRING_FIELDS` order.
    strings: Vec<Option<String>>,
    labels: Option<String>,
    annotations: Option<String>,
}

const STRING_FIELDS: [Field; 13] = [
    Field::Namespace,
    Field::PodName,
    Field::PodUid,
    Field::ContainerName,
    Field::ContainerImage,
    Field::NodeName,
    Field::OwnerKind,
    Field::OwnerName,
    Field::ContainerId,
    Field::ContainerRuntime,
    Field::HostName,
    Field::Stream,
    Field::LogLevel,
];

/// The scanner's picks, before the event id and schema checks.
fn scan(text: &str) -> Result<Picked, SyntaxError> {
    let text = text.trim_ascii();
    let p = Scanner::new(text).record()?;
    let f = &p.fields;
    let strings = [
        &f.namespace,
        &f.pod_name,
        &f.pod_uid,
        &f.container_name,
        &f.container_image,
        &f.node_name,
        &f.owner_kind,
        &f.owner_name,
        &f.container_id,
        &f.container_runtime,
        &f.host_name,
        &f.stream,
        &f.log_level,
    ];
    Ok(Picked {
        timestamp: f.timestamp.to_string(),
        id: p.id.to_string(),
        schema: f.schema,
        event: p.event,
        ingested: p.ingested,
        strings: strings
            .iter()
            .map(|v| v.as_ref().map(|v| v.to_string()))
            .collect(),
        labels: f.labels.map(str::to_owned),
        annotations: f.annotations.map(str::to_owned),
    })
}

fn good() -> String {
    String::from_utf8(testutil::event().to_json()).unwrap()
}

#[test]
fn the_collectors_record_is_picked_like_serde_picks_it() {
    let text = good();
    let got = scan(&text).unwrap();
    assert_eq!(got, reference::parse(&text).unwrap());
    assert_eq!(got.timestamp, "2026-11-27T20:17:29.123456789Z");
    assert_eq!(got.strings[0].as_deref(), Some("shop"));
    assert_eq!(
        &text[got.event.clone()],
        r#"{"id":"00c0ffee00c0ffee-1000"}"#
    );
    let view = RecordView::parse(text.as_bytes()).unwrap();
    for field in STRING_FIELDS {
        assert!(view.field(&field).is_some(), "{field:?}");
    }
    assert_eq!(
        view.field(&Field::Label("app".into())).as_deref(),
        Some("checkout")
    );
}

#[test]
fn accepts_and_rejects_like_serde() {
    let g = good();
    let table: Vec<(String, bool)> = vec![
        (g.clone(), true),
        (format!("  {g}\n"), true),
        (g.replace("\"shop\"", "\"sh\\u006fp\""), true),
        (g.replace("\"namespace\"", "\"n\\u0061mespace\""), true),
        (
            g.replace("\"namespace\":\"shop\"", "\"namespace\":null"),
            true,
        ),
        (
            g.replace("\"log\":{", "\"log\":{\"x\":[1,2.5e-3,-0,true,{}],"),
            true,
        ),
        (
            g.replace(
                "\"message\":\"",
                "\"message\":\"\\ud800 lone in a skipped string ",
            ),
            true,
        ),
        (
            g.replace("\"event\":{", "\"event\":{\"ingested\":null,"),
            true,
        ),
        (g.replace("\"shop\"", "\"\\ud83d\\ude00\""), true),
        (g.replace("\"shop\"", "\"\\ud83d\""), false),
        (g.replace("\"shop\"", "\"\\ude00\""), false),
        (g.replace("\"shop\"", "\"\\x\""), false),
        (g.replace("\"shop\"", "\"\\u12\""), false),
        (g.replace("\"message\":\"", "\"message\":\"\\x"), false),
        (g.replace("\"message\":\"", "\"message\":\"\\u12G4"), false),
        (g.replace("\"message\":\"", "\"m\\qessage\":\""), false),
        (
            g.replace(
                "\"message\":\"",
                "\"message\":\"\\\\\\\"\\/\\b\\f\\n\\r\\t\\u0000",
            ),
            true,
        ),
        (g.replace("\"shop\"", "\"a\u{1f}b\""), false),
        (g.replace("\"shop\"", "7"), false),
        (g.replace("\"shop\"", "\"shop\",\"namespace\":\"x\""), false),
        (
            g.replace("\"message\":", "\"message\":1,\"message\":"),
            true,
        ),
        (g.replace("\"schema\":1", "\"schema\":1.0"), false),
        (g.replace("\"schema\":1", "\"schema\":-1"), false),
        (g.replace("\"schema\":1", "\"schema\":-0"), false),
        (g.replace("\"schema\":1", "\"schema\":4294967296"), false),
        (g.replace("\"schema\":1", "\"schema\":4294967295"), true),
        (g.replace("\"schema\":1", "\"schema\":01"), false),
        (g.replace("\"offset\":4096", "\"offset\":1."), false),
        (g.replace("\"offset\":4096", "\"offset\":1e"), false),
        (g.replace("\"offset\":4096", "\"offset\":tru"), false),
        (g.replace("\"offset\":4096", "\"offset\":[1,]"), false),
        (g.replace("\"offset\":4096", "\"offset\":{\"a\":1,}"), false),
        (g.replace("\"offset\":4096", "\"offset\":{1:2}"), false),
        (
            g.replace("\"offset\":4096", "\"offset\":[[[[[[]]]]]]"),
            true,
        ),
        (g.replace("\"labels\":{", "\"labels\":{\"n\":[1],"), true),
        (g.replace("\"kelp\":{\"schema\":1}", "\"kelp\":null"), false),
        (
            g.replace(
                "\"event\":{\"id\":\"00c0ffee00c0ffee-1000\"}",
                "\"event\":{}",
            ),
            false,
        ),
        (g.replace("\"@timestamp\"", "\"@time\""), false),
        (format!("{g} x"), false),
        (format!("{g}{{}}"), false),
        (g[..g.len() - 1].to_owned(), false),
        ("".to_owned(), false),
        ("{".to_owned(), false),
        ("\"x\"".to_owned(), false),
        ("{\"a\"}".to_owned(), false),
    ];
    for (text, accepted) in table {
        let want = reference::parse(&text);
        let got = scan(&text);
        assert_eq!(want.is_ok(), accepted, "serde on {text}: {want:?}");
        assert_eq!(got.is_ok(), accepted, "scanner on {text}: {got:?}");
        if let (Ok(want), Ok(got)) = (want, got) {
            assert_eq!(got, want, "{text}");
        }
    }
}

#[test]
fn refuses_what_serde_would_build_from_an_array() {
    // serde builds a struct from a JSON array; a record that is not an
    // object must never reach the bulk body.
    let g = good();
    let table = [
        r#"["2026-11-27T20:17:29Z",null,null,null,null,null,{"id":"00c0ffee00c0ffee-1000"},{"schema":1}]"#.to_owned(),
        g.replace("\"log\":{", "\"log\":[{").replace("\"info\"}", "\"info\"}]"),
        g.replace("\"kelp\":{\"schema\":1}", "\"kelp\":[1]"),
    ];
    for text in &table {
        let err = scan(text).unwrap_err();
        assert!(err.what.starts_with("expected"), "{err}");
    }
    assert!(reference::parse(&table[2]).is_ok());
}

#[test]
fn deep_nesting_in_skipped_values_is_checked_without_recursion() {
    let g = good();
    for depth in [63usize, 64, 65, 200, 100_000] {
        let value = format!("{}{}", "[{\"a\":".repeat(depth), "}]".repeat(depth));
        let text = g.replace(
            "\"offset\":4096",
            &format!("\"offset\":{}", value.replacen("[{\"a\":", "[", 0)),
        );
        // Innermost `{"a":}` lacks a value: rejected at any depth.
        assert!(scan(&text).is_err(), "depth {depth}");
        let fixed = text.replace("\"a\":}", "\"a\":0}");
        assert_eq!(
            scan(&fixed).is_ok(),
            reference::parse(&fixed).is_ok(),
            "depth {depth}"
        );
        assert!(scan(&fixed).is_ok(), "depth {depth}");
        let unbalanced = fixed.replacen("}]", "]]", 1);
        assert!(scan(&unbalanced).is_err(), "depth {depth}");
    }
}

#[test]
fn escaped_strings_are_decoded_and_plain_ones_borrowed() {
    let text = good().replace("\"shop\"", "\"s\\\"h\\\\o\\/p\\n\\u00e9\\ud83d\\ude00\"");
    let view = RecordView::parse(text.as_bytes()).unwrap();
    assert_eq!(
        view.field(&Field::Namespace).as_deref(),
        Some("s\"h\\o/p\n\u{e9}\u{1f600}")
    );
    assert!(matches!(view.fields.namespace, Some(Cow::Owned(_))));
    assert!(matches!(view.fields.pod_name, Some(Cow::Borrowed(_))));
}

#[test]
fn the_stop_mask_finds_each_byte_at_every_position() {
    assert_eq!(stop_mask(&[b'a'; 64]), 0);
    for at in 0..64 {
        for (byte, stop) in [
            (b'"', true),
            (b'\\', true),
            (0x00, true),
            (b'\n', true),
            (0x1f, true),
            (b' ', false),
            (b'!', false),
            (b'#', false),
            (b'[', false),
            (b']', false),
            (0x7f, false),
            (0x80, false),
            (0xa2, false),
            (0xdc, false),
            (0xff, false),
        ] {
            // Neighbours that are stops must not hide or fake this one.
            for fill in [b'a', b'"', 0x00, 0xff] {
                let mut block = [fill; 64];
                block[at] = byte;
                let others = stop_mask(&[fill; 64]) & !(1 << at);
                let expected = others | (u64::from(stop) << at);
                assert_eq!(
                    stop_mask(&block),
                    expected,
                    "{byte:#x} at {at} among {fill:#x}"
                );
            }
        }
    }
}

#[test]
fn strings_end_at_their_quote_in_any_block() {
    // A key whose closing quote falls on each position around the block
    // boundaries, and one that runs off the end.
    for len in 0..140 {
        let key = "k".repeat(len);
        let text = format!(
            r#"{{"{key}":1,"@timestamp":"t","event":{{"id":"0000000000000001-0"}},"kelp":{{"schema":1}}}}"#
        );
        assert!(scan(&text).is_ok(), "key of {len} bytes");
        let cut = &text[..len + 2];
        assert!(scan(cut).is_err(), "cut after a key of {len} bytes");
    }
}

/// A JSON value of any shape, small.
fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z@.]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value for a known string field: mostly a string, sometimes not.
fn arb_string_field() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        6 => ".{0,40}".prop_map(|s| Some(Value::String(s))),
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => arb_json().prop_map(Some),
    ]
}

/// An object with some of `keys` (string fields) and some unknown keys;
/// sometimes null or not an object at all.
fn arb_known_object(keys: &'static [&'static str]) -> impl Strategy<Value = Option<Value>> {
    let fields = prop::collection::vec(arb_string_field(), keys.len());
    let extra = prop::collection::btree_map("[a-z]{1,6}", arb_json(), 0..3);
    let object = (fields, extra).prop_map(move |(fields, extra)| {
        let mut map: serde_json::Map<String, Value> = extra.into_iter().collect();
        for (key, value) in keys.iter().zip(fields) {
            if let Some(value) = value {
                map.insert((*key).to_owned(), value);
            }
        }
        Some(Value::Object(map))
    });
    prop_oneof![
        8 => object,
        1 => Just(None),
        1 => Just(Some(Value::Null)),
        1 => arb_json().prop_filter("not an array", |v| !v.is_array()).prop_map(Some),
    ]
}

prop_compose! {
    fn arb_record()(
        timestamp in arb_string_field(),
        stream in arb_string_field(),
        log in arb_known_object(&["level"]),
        pod in arb_known_object(&["name", "uid"]),
        container in arb_known_object(&["name", "image"]),
        owner in arb_known_object(&["kind", "name"]),
        k8s in arb_known_object(&["namespace"]),
        labels in prop::option::of(arb_json()),
        top_container in arb_known_object(&["id", "runtime"]),
        host in arb_known_object(&["name"]),
        id in prop_oneof![4 => Just(Some(json!("00c0ffee00c0ffee-1000"))), 1 => arb_string_field()],
        ingested in prop::option::of(arb_json()),
        event_extra in prop::collection::btree_map("[a-z]{1,6}", arb_json(), 0..2),
        schema in prop_oneof![4 => Just(Some(json!(1))), 1 => prop::option::of(arb_json())],
        extra in prop::collection::btree_map("[a-z]{1,6}", arb_json(), 0..3),
    ) -> Value {
        let mut record: serde_json::Map<String, Value> = extra.into_iter().collect();
        let put = |map: &mut serde_json::Map<String, Value>, key: &str, value: Option<Value>| {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        };
        put(&mut record, "@timestamp", timestamp);
        put(&mut record, "stream", stream);
        put(&mut record, "log", log);
        let mut k = match k8s {
            Some(Value::Object(map)) => map,
            other => {
                put(&mut record, "kubernetes", other);
                serde_json::Map::new()
            }
        };
        put(&mut k, "pod", pod);
        put(&mut k, "container", container);
        put(&mut k, "owner", owner);
        put(&mut k, "labels", labels);
        record.entry("kubernetes").or_insert(Value::Object(k));
        put(&mut record, "container", top_container);
        put(&mut record, "host", host);
        let mut event: serde_json::Map<String, Value> = event_extra.into_iter().collect();
        put(&mut event, "id", id);
        put(&mut event, "ingested", ingested);
        record.insert("event".to_owned(), Value::Object(event));
        let mut kelp = serde_json::Map::new();
        put(&mut kelp, "schema", schema);
        record.insert("kelp".to_owned(), Value::Object(kelp));
        Value::Object(record)
    }
}

/// Text forms of a record: compact, pretty, with every string escaped as
/// `\uXXXX` where serde would not, or damaged.
fn arb_text() -> impl Strategy<Value = String> {
    (
        arb_record(),
        0..4u8,
        any::<prop::sample::Index>(),
        any::<u8>(),
    )
        .prop_map(|(record, form, at, byte)| {
            let compact = serde_json::to_string(&record).unwrap();
            match form {
                0 => compact,
                1 => serde_json::to_string_pretty(&record).unwrap(),
                2 => compact.replace('a', "\\u0061").replace('e', "\\u0065"),
                _ => {
                    // One byte replaced: mostly invalid, sometimes not.
                    let mut bytes = compact.into_bytes();
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                    String::from_utf8(bytes).unwrap_or_default()
                }
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// The scanner accepts exactly what serde accepts and picks the same.
    #[test]
    fn scanner_agrees_with_serde(text in arb_text()) {
        let want = reference::parse(&text);
        let got = scan(&text);
        prop_assert_eq!(got.is_ok(), want.is_ok(), "{}: scanner {:?}, serde {:?}", text, got, want);
        if let (Ok(got), Ok(want)) = (got, want) {
            prop_assert_eq!(got, want);
        }
    }

    /// Any bytes: never a panic, and never accepted when serde_json says
    /// they are not JSON.
    #[test]
    fn arbitrary_bytes_are_never_accepted_when_not_json(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(view) = RecordView::parse(&bytes) {
            prop_assert!(serde_json::from_slice::<Value>(&bytes).is_ok(), "{:?}", view);
        }
    }
}
