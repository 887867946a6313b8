use std::collections::BTreeMap;

use kelp_record::Event;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::source::{TopicId, TopicPartition};
use crate::testutil;

const LIMITS: BatchLimits = BatchLimits {
    max_bytes: 1 << 20,
    max_events: 1000,
};

fn pos(partition: i32, offset: i64) -> SourcePos {
    SourcePos::new(TopicPartition::new(TopicId(0), partition), offset)
}

fn ingested() -> Ingested {
    Ingested::from_unix_millis(1_795_810_650_000)
}

fn record(namespace: &str, file_offset: u64) -> Vec<u8> {
    let mut event = testutil::event();
    event.kubernetes.namespace = namespace.to_owned();
    event.event.id = EventId::new(0xabc, file_offset);
    event.to_json()
}

fn batch_of(n: usize) -> BulkBatch {
    let template = IndexTemplate::default();
    let mut batch = BulkBatch::new(LIMITS);
    for i in 0..n {
        let ns = format!("ns{i}");
        batch
            .push_record(
                pos(i as i32 % 2, i as i64),
                &record(&ns, i as u64),
                &template,
                &ingested(),
            )
            .unwrap();
    }
    batch
}

fn lines(body: &[u8]) -> Vec<Value> {
    assert_eq!(body.last(), Some(&b'\n'), "NDJSON must end with a newline");
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn ingested_formats_millis() {
    assert_eq!(ingested().as_str(), "2026-11-27T20:17:30.000Z");
}

#[test]
fn encodes_action_and_document() {
    let batch = batch_of(2);
    let body = std::str::from_utf8(batch.body()).unwrap();
    let first_line = body.lines().next().unwrap();
    assert_eq!(
        first_line,
        r#"{"index":{"_index":"kelp-logs-ns0-2026.11.27","_id":"0000000000000abc-0"}}"#
    );
    let parsed = lines(batch.body());
    assert_eq!(parsed.len(), 4);
    assert_eq!(
        parsed[2],
        json!({"index": {"_index": "kelp-logs-ns1-2026.11.27", "_id": "0000000000000abc-1"}})
    );
    let mut want = serde_json::to_value(testutil::event()).unwrap();
    want["kubernetes"]["namespace"] = json!("ns0");
    want["event"] = json!({"id": "0000000000000abc-0", "ingested": "2026-11-27T20:17:30.000Z"});
    assert_eq!(parsed[1], want);
}

#[test]
fn items_map_back_to_offsets_and_lines() {
    let batch = batch_of(3);
    assert_eq!(batch.len(), 3);
    assert!(!batch.is_empty());
    for (i, item) in batch.items().iter().enumerate() {
        assert_eq!(item.source, pos(i as i32 % 2, i as i64));
        assert_eq!(item.id, EventId::new(0xabc, i as u64));
        assert_eq!(
            batch.index_name(i),
            Some(format!("kelp-logs-ns{i}-2026.11.27").as_str())
        );
        let doc: Value = serde_json::from_slice(batch.document(i).unwrap()).unwrap();
        assert_eq!(doc["kubernetes"]["namespace"], json!(format!("ns{i}")));
        let decoded = Event::from_json(batch.document(i).unwrap()).unwrap();
        assert_eq!(
            decoded.event.ingested.as_deref(),
            Some("2026-11-27T20:17:30.000Z")
        );
    }
    assert_eq!(batch.document(3), None);
    assert_eq!(batch.index_name(3), None);
}

#[test]
fn bad_records_are_rejected_with_a_reason_and_leave_the_batch_alone() {
    let template = IndexTemplate::default();
    let mut newer = testutil::event();
    newer.kelp.schema = kelp_record::SCHEMA_VERSION + 1;
    let mut bad_time = testutil::event();
    bad_time.timestamp = "last tuesday".to_owned();
    let good = String::from_utf8(testutil::event().to_json()).unwrap();
    let table: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "invalid_json"),
        (b"{}".to_vec(), "invalid_json"),
        (b"[]".to_vec(), "invalid_json"),
        (b"".to_vec(), "invalid_json"),
        (b"{\"@timestamp\":".to_vec(), "invalid_json"),
        (format!("{good}{good}").into_bytes(), "invalid_json"),
        (format!("{good},").into_bytes(), "invalid_json"),
        (
            good.replace("\"message\":\"", "\"message\":\"\u{1}")
                .into_bytes(),
            "invalid_json",
        ),
        (
            good.replace("\"kelp\":{\"schema\":1}", "\"kelp\":{}")
                .into_bytes(),
            "invalid_json",
        ),
        (
            good.replace("\"event\":{", "\"event\":{\"x\":[},")
                .into_bytes(),
            "invalid_json",
        ),
        (vec![0xff, 0xfe], "invalid_utf8"),
        ([good.as_bytes(), &[0xff]].concat(), "invalid_utf8"),
        (
            good.replace("00c0ffee00c0ffee-1000", "not-an-id")
                .into_bytes(),
            "invalid_event_id",
        ),
        (
            good.replace("\"id\":\"00c0ffee00c0ffee-1000\"", "\"id\":7")
                .into_bytes(),
            "invalid_json",
        ),
        (
            good.replace(
                "\"event\":{\"id\":\"00c0ffee00c0ffee-1000\"}",
                "\"event\":\"x\"",
            )
            .into_bytes(),
            "invalid_json",
        ),
        (newer.to_json(), "unsupported_schema"),
        (bad_time.to_json(), "bad_timestamp"),
    ];
    let mut batch = batch_of(1);
    let before = batch.body().to_vec();
    for (bytes, reason) in table {
        match batch.push_record(pos(0, 9), &bytes, &template, &ingested()) {
            Err(PushError::Rejected(e)) => {
                assert_eq!(e.reason(), reason, "{e}");
                let text = e.to_string();
                assert!(
                    text.starts_with("decoding record failed: ")
                        || text.starts_with("encoding bulk item failed: "),
                    "{text}"
                );
            }
            other => panic!("expected a rejection for {reason}, got {other:?}"),
        }
        assert_eq!(batch.body(), before.as_slice());
        assert_eq!(batch.len(), 1);
    }
}

#[test]
fn an_existing_ingested_is_replaced() {
    let mut event = testutil::event();
    event.event.ingested = Some("2001-01-01T00:00:00.000Z".to_owned());
    let mut batch = BulkBatch::new(LIMITS);
    batch
        .push_record(
            pos(0, 0),
            &event.to_json(),
            &IndexTemplate::default(),
            &ingested(),
        )
        .unwrap();
    let doc: Value = serde_json::from_slice(batch.document(0).unwrap()).unwrap();
    assert_eq!(doc["event"]["ingested"], json!("2026-11-27T20:17:30.000Z"));
}

#[test]
fn pretty_printed_records_become_one_line() {
    let pretty = serde_json::to_vec_pretty(&testutil::event()).unwrap();
    assert!(pretty.contains(&b'\n'));
    let mut batch = BulkBatch::new(LIMITS);
    batch
        .push_record(pos(0, 0), &pretty, &IndexTemplate::default(), &ingested())
        .unwrap();
    assert_eq!(lines(batch.body()).len(), 2);
}

#[test]
fn limits() {
    let template = IndexTemplate::default();
    let one = record("a", 0);
    let mut by_count = BulkBatch::new(BatchLimits {
        max_bytes: 1 << 20,
        max_events: 2,
    });
    by_count
        .push_record(pos(0, 0), &one, &template, &ingested())
        .unwrap();
    assert!(!by_count.is_full());
    by_count
        .push_record(pos(0, 1), &one, &template, &ingested())
        .unwrap();
    assert!(by_count.is_full());
    assert!(matches!(
        by_count.push_record(pos(0, 2), &one, &template, &ingested()),
        Err(PushError::Full)
    ));
    assert_eq!(by_count.len(), 2);

    // The first event always fits, even when it alone is over the byte limit.
    let mut by_bytes = BulkBatch::new(BatchLimits {
        max_bytes: 100,
        max_events: 10,
    });
    by_bytes
        .push_record(pos(0, 0), &one, &template, &ingested())
        .unwrap();
    assert!(by_bytes.body().len() > 100);
    assert!(by_bytes.is_full());
    let before = by_bytes.body().to_vec();
    assert!(matches!(
        by_bytes.push_record(pos(0, 1), &one, &template, &ingested()),
        Err(PushError::Full)
    ));
    assert_eq!(by_bytes.body(), before.as_slice());
    assert_eq!(by_bytes.len(), 1);
    assert_eq!(by_bytes.limits().max_bytes, 100);
}

#[test]
fn split_halves_in_order() {
    for n in [2usize, 3, 7, 10] {
        let batch = batch_of(n);
        let (a, b) = batch.clone().split().unwrap();
        assert_eq!(a.len(), n / 2);
        assert_eq!(b.len(), n - n / 2);
        let mut joined = a.body().to_vec();
        joined.extend_from_slice(b.body());
        assert_eq!(joined, batch.body());
        let sources: Vec<_> = a
            .items()
            .iter()
            .chain(b.items())
            .map(|i| i.source)
            .collect();
        let want: Vec<_> = batch.items().iter().map(|i| i.source).collect();
        assert_eq!(sources, want);
        for half in [&a, &b] {
            for i in 0..half.len() {
                Event::from_json(half.document(i).unwrap()).unwrap();
                assert!(half.index_name(i).unwrap().starts_with("kelp-logs-ns"));
            }
            assert_eq!(lines(half.body()).len(), 2 * half.len());
        }
    }
    let one = batch_of(1);
    let back = one.split().unwrap_err();
    assert_eq!(back.len(), 1);
    assert!(BulkBatch::new(LIMITS).split().is_err());
}

#[test]
fn select_keeps_chosen_items() {
    let batch = batch_of(5);
    let odd = batch.select(|i, _| i % 2 == 1);
    assert_eq!(odd.len(), 2);
    assert_eq!(
        odd.items()
            .iter()
            .map(|i| i.source.offset)
            .collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(odd.index_name(1), Some("kelp-logs-ns3-2026.11.27"));
    assert_eq!(lines(odd.body()).len(), 4);
    let none = batch.select(|_, _| false);
    assert!(none.is_empty());
    assert!(none.body().is_empty());
    let by_item = batch.select(|_, item| item.source.tp.partition == 0);
    assert_eq!(by_item.len(), 3);
}

fn push_one(record: &[u8], template: &str) -> BulkBatch {
    let mut batch = BulkBatch::new(LIMITS);
    batch
        .push_record(
            pos(0, 0),
            record,
            &IndexTemplate::parse(template).unwrap(),
            &ingested(),
        )
        .unwrap();
    batch
}

fn doc_text(batch: &BulkBatch) -> &str {
    std::str::from_utf8(batch.document(0).unwrap()).unwrap()
}

#[test]
fn unknown_fields_pass_through() {
    let good = String::from_utf8(testutil::event().to_json()).unwrap();
    let record = good
        .replace("\"kelp\":{", "\"extra\":{\"a\":[1,2]},\"kelp\":{")
        .replace("\"event\":{", "\"event\":{\"kind\":\"event\",");
    let batch = push_one(record.as_bytes(), DEFAULT_TEMPLATE_FOR_TESTS);
    let doc: Value = serde_json::from_str(doc_text(&batch)).unwrap();
    assert_eq!(doc["extra"], json!({"a": [1, 2]}));
    assert_eq!(
        doc["event"],
        json!({"kind": "event", "id": "00c0ffee00c0ffee-1000", "ingested": "2026-11-27T20:17:30.000Z"})
    );
}

const DEFAULT_TEMPLATE_FOR_TESTS: &str = crate::index_name::DEFAULT_TEMPLATE;

#[test]
fn an_existing_or_null_ingested_is_replaced_not_duplicated() {
    let good = String::from_utf8(testutil::event().to_json()).unwrap();
    for ingested_value in ["null", "\"2001-01-01T00:00:00Z\"", "{\"nested\":[1]}"] {
        let record = good.replace(
            "\"event\":{\"id\":\"00c0ffee00c0ffee-1000\"}",
            &format!(
                "\"event\":{{\"ingested\":{ingested_value},\"id\":\"00c0ffee00c0ffee-1000\"}}"
            ),
        );
        let batch = push_one(record.as_bytes(), DEFAULT_TEMPLATE_FOR_TESTS);
        let text = doc_text(&batch);
        assert_eq!(text.matches("\"ingested\"").count(), 1, "{text}");
        let doc: Value = serde_json::from_str(text).unwrap();
        assert_eq!(doc["event"]["ingested"], json!("2026-11-27T20:17:30.000Z"));
    }
}

#[test]
fn whitespace_and_escapes() {
    let good = String::from_utf8(testutil::event().to_json()).unwrap();
    let pretty = serde_json::to_string_pretty(&testutil::event()).unwrap();
    let spaced = format!(" \r\n\t{}\r\n\n", pretty.replace(": ", " :\t"));
    let batch = push_one(spaced.as_bytes(), DEFAULT_TEMPLATE_FOR_TESTS);
    let text = doc_text(&batch);
    assert!(!text.contains('\n'));
    assert!(text.starts_with('{') && text.ends_with('}'), "{text}");
    assert_eq!(batch.index_name(0), Some("kelp-logs-shop-2026.11.27"));
    assert_eq!(lines(batch.body()).len(), 2);
    // Escapes in a routed field decode before sanitizing.
    let escaped = good.replace("\"namespace\":\"shop\"", "\"namespace\":\"sh\\u006fP\"");
    let batch = push_one(escaped.as_bytes(), DEFAULT_TEMPLATE_FOR_TESTS);
    assert_eq!(batch.index_name(0), Some("kelp-logs-shop-2026.11.27"));
}

#[test]
fn routing_fields_from_the_view() {
    let record = testutil::event().to_json();
    let table: &[(&str, &str)] = &[
        ("logs-{kubernetes.labels.app}", "logs-checkout"),
        (
            "logs-{kubernetes.labels.app.kubernetes.io/name}",
            "logs-checkout",
        ),
        ("logs-{kubernetes.labels.nope}", "logs-_unknown"),
        ("logs-{kubernetes.annotations.nope}", "logs-_unknown"),
        (
            "logs-{kubernetes.pod.name}",
            "logs-checkout-7d4b9c6f5-x2x9q",
        ),
        (
            "logs-{kubernetes.pod.uid}",
            "logs-0f0e0d0c-0b0a-0908-0706-050403020100",
        ),
        ("logs-{kubernetes.container.name}", "logs-checkout"),
        (
            "logs-{kubernetes.container.image}",
            "logs-registry.example_shop_checkout_1.4.2",
        ),
        ("logs-{kubernetes.node.name}", "logs-node-1"),
        ("logs-{kubernetes.owner.kind}", "logs-replicaset"),
        ("logs-{kubernetes.owner.name}", "logs-checkout-7d4b9c6f5"),
        ("logs-{container.id}", "logs-containerd___4f1c"),
        ("logs-{container.runtime}", "logs-cri"),
        ("logs-{host.name}", "logs-node-1"),
        ("logs-{stream}", "logs-stdout"),
        ("logs-{log.level}", "logs-info"),
    ];
    for (template, want) in table {
        assert_eq!(
            push_one(&record, template).index_name(0),
            Some(*want),
            "{template}"
        );
    }
    // A record without the optional sections still routes, to the fallback.
    let bare = r#"{"@timestamp":"2026-11-27T20:17:29Z","event":{"id":"0000000000000001-0"},"kelp":{"schema":1}}"#;
    assert_eq!(
        push_one(bare.as_bytes(), DEFAULT_TEMPLATE_FOR_TESTS).index_name(0),
        Some("kelp-logs-_unknown-2026.11.27")
    );
    // Label maps with non-string values are unusable for routing, not fatal.
    let odd = bare.replace(
        "\"kelp\"",
        "\"kubernetes\":{\"labels\":{\"app\":1}},\"kelp\"",
    );
    assert_eq!(
        push_one(odd.as_bytes(), "logs-{kubernetes.labels.app}").index_name(0),
        Some("logs-_unknown")
    );
}

#[test]
fn view_accessors() {
    let record = testutil::event().to_json();
    let view = RecordView::parse(&record).unwrap();
    assert_eq!(view.id(), EventId::new(0x00c0_ffee_00c0_ffee, 4096));
    assert_eq!(view.schema(), 1);
}

fn text() -> impl Strategy<Value = String> {
    // Any characters, including quotes, backslashes, controls and non-ASCII.
    prop::string::string_regex("(.|\n|\t|\"|\\\\|\u{1}|é|日){0,12}").unwrap()
}

prop_compose! {
    fn arb_event()(
        namespace in text(),
        message in text(),
        pod in text(),
        label_key in text(),
        label_value in text(),
        level in prop::option::of(text()),
        file in any::<u64>(),
        offset in any::<u64>(),
        secs in 0u32..86_400,
    ) -> Event {
        let mut e = testutil::event();
        e.timestamp = format!("2026-11-27T{:02}:{:02}:{:02}.5Z", secs / 3600, secs / 60 % 60, secs % 60);
        e.kubernetes.namespace = namespace;
        e.message = message;
        e.kubernetes.pod.name = pod;
        e.kubernetes.labels = BTreeMap::from([(label_key, label_value)]);
        e.log.level = level;
        e.event.id = EventId::new(file, offset);
        e
    }
}

proptest! {
    /// The hand-written id text is the id's `Display`.
    #[test]
    fn event_id_text_matches_display(file in any::<u64>(), offset in prop_oneof![any::<u64>(), 0..300u64]) {
        let id = EventId::new(file, offset);
        let mut out = b"x".to_vec();
        push_event_id(&mut out, id);
        prop_assert_eq!(String::from_utf8(out).unwrap(), format!("x{id}"));
    }

    /// The canonical fast path reads exactly the texts `Display` writes,
    /// and reads them as `from_str` does.
    #[test]
    fn canonical_event_ids_are_the_display_texts(
        file in any::<u64>(),
        offset in prop_oneof![any::<u64>(), 0..300u64],
        noise in "[0-9a-fA-F+-]{0,40}",
    ) {
        let id = EventId::new(file, offset);
        prop_assert_eq!(parse_canonical_event_id(&id.to_string()), Some(id));
        if let Some(parsed) = parse_canonical_event_id(&noise) {
            prop_assert_eq!(parsed.to_string(), noise.clone());
            prop_assert_eq!(noise.parse::<EventId>().ok(), Some(parsed));
        }
    }

    /// The spliced document equals the fully decoded record with
    /// `event.ingested` set, and the view routes like the record.
    #[test]
    fn view_matches_full_decode(event in arb_event()) {
        let templates = [
            crate::index_name::DEFAULT_TEMPLATE,
            "logs-{kubernetes.pod.name}-{log.level|none}-{@timestamp:%Y%m%d%H}",
        ];
        for key in event.kubernetes.labels.keys() {
            let t = format!("logs-{{kubernetes.labels.{key}}}");
            if let Ok(template) = IndexTemplate::parse(&t) {
                let batch = push_one(&event.to_json(), &t);
                prop_assert_eq!(batch.index_name(0).unwrap(), template.render(&event).unwrap());
            }
        }
        for t in templates {
            let batch = push_one(&event.to_json(), t);
            let mut want = event.clone();
            want.event.ingested = Some("2026-11-27T20:17:30.000Z".to_owned());
            let got = Event::from_json(batch.document(0).unwrap()).unwrap();
            prop_assert_eq!(got, want);
            let template = IndexTemplate::parse(t).unwrap();
            prop_assert_eq!(batch.index_name(0).unwrap(), template.render(&event).unwrap());
            prop_assert_eq!(batch.items()[0].id, event.event.id);
            prop_assert_eq!(lines(batch.body()).len(), 2);
        }
    }
}

#[test]
fn a_sealed_batch_shares_its_body_and_takes_no_more_events() {
    let mut batch = batch_of(3);
    let before = batch.body().to_vec();
    let sealed = batch.seal();
    assert_eq!(&sealed[..], before.as_slice());
    assert_eq!(
        batch.body(),
        before.as_slice(),
        "items still resolve after sealing"
    );
    assert_eq!(batch.document(1), batch_of(3).document(1));
    // Every send of the batch shares the same bytes.
    assert_eq!(batch.seal().as_ptr(), sealed.as_ptr());
    let template = IndexTemplate::parse("logs-{kubernetes.namespace}").unwrap();
    assert!(matches!(
        batch.push_record(pos(0, 99), &record("shop", 99), &template, &ingested()),
        Err(PushError::Full)
    ));
    assert!(batch.is_full());
    // A narrowed copy (a retry of some items) is a fresh, unsealed body.
    let retry = batch.select(|i, _| i == 2);
    assert_eq!(lines(retry.body()).len(), 2);
}

#[test]
fn buffers_come_back_once_the_body_is_no_longer_shared() {
    let template = IndexTemplate::default();
    let mut batch = batch_of(3);
    let body = batch.seal();
    let ptr = body.as_ptr();
    let shared = batch.clone();
    drop(batch);
    // Another holder of the sent body: no reuse.
    assert!(shared.clone().into_buffers().is_none());
    drop(body);
    let buffers = shared.into_buffers().unwrap();
    assert!(buffers.capacity_bytes() >= 3);
    let mut next = BulkBatch::with_buffers(LIMITS, buffers);
    assert!(next.is_empty());
    assert!(next.body().is_empty());
    next.push_record(pos(0, 7), &record("ns", 7), &template, &ingested())
        .unwrap();
    // The same allocation, written from its start.
    assert_eq!(next.body().as_ptr(), ptr);
    assert_eq!(next.len(), 1);
    assert_eq!(lines(next.body()).len(), 2);
    // An unsent batch gives its buffers back too.
    assert!(next.into_buffers().is_some());
}

#[test]
fn only_canonical_event_id_texts_take_the_fast_path() {
    let table: &[(&str, Option<EventId>)] = &[
        (
            "00c0ffee00c0ffee-0",
            Some(EventId::new(0x00c0_ffee_00c0_ffee, 0)),
        ),
        (
            "00c0ffee00c0ffee-1f4",
            Some(EventId::new(0x00c0_ffee_00c0_ffee, 0x1f4)),
        ),
        (
            "ffffffffffffffff-ffffffffffffffff",
            Some(EventId::new(u64::MAX, u64::MAX)),
        ),
        // Read by `from_str`, but not canonical: formatted again.
        ("00C0FFEE00C0FFEE-1f4", None),
        ("00c0ffee00c0ffee-01f4", None),
        ("00c0ffee00c0ffee-00", None),
        ("+0c0ffee00c0ffee-1f4", None),
        ("00c0ffee00c0ffee-+1f4", None),
        // Not ids at all.
        ("00c0ffee00c0ffee-", None),
        ("00c0ffee00c0ffe-1f4", None),
        ("00c0ffee00c0ffee-1ffffffffffffffff", None),
        ("00c0ffee00c0ffee_1f4", None),
        ("", None),
    ];
    for (text, id) in table {
        assert_eq!(parse_canonical_event_id(text), *id, "{text}");
    }
    // A non-canonical id in a record is still read, and written canonical.
    let record = String::from_utf8(testutil::event().to_json())
        .unwrap()
        .replace("00c0ffee00c0ffee-1000", "00C0FFEE00C0FFEE-01f4");
    let view = RecordView::parse(record.as_bytes()).unwrap();
    assert_eq!(view.canonical_id_text(), None);
    assert_eq!(view.id(), EventId::new(0x00c0_ffee_00c0_ffee, 0x1f4));
    let mut batch = BulkBatch::new(BatchLimits {
        max_bytes: 1 << 20,
        max_events: 10,
    });
    let tp = TopicPartition::new(TopicId(0), 0);
    batch
        .push_record(
            SourcePos::new(tp, 0),
            record.as_bytes(),
            &IndexTemplate::default(),
            &Ingested::from_unix_millis(0),
        )
        .unwrap();
    let body = String::from_utf8(batch.body().to_vec()).unwrap();
    assert!(body.contains(r#""_id":"00c0ffee00c0ffee-1f4""#), "{body}");
}
