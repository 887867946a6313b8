use super::*;

/// ES 7.17: `_type` is still present; mapping errors are `mapper_parsing_exception`.
const ES7_MIXED: &str = r#"{"took":12,"errors":true,"items":[
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-0","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-1","_version":2,"result":"updated","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":1,"_primary_term":1,"status":200}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-2","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [log.offset] of type [long] in document with id '00c0ffee00c0ffee-2'. Preview of field's value: 'abc'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"abc\""}}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-3","status":429,"error":{"type":"es_rejected_execution_exception","reason":"rejected execution of org.elasticsearch.action.support.replication.TransportWriteAction$1/WrappedActionListener{org.elasticsearch.action.support.replication.ReplicationOperation$$Lambda$5497/0x0000000801901c40@3a1a5e7c} on EsThreadPoolExecutor[name = node-1/write, queue capacity = 10000, org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor@5a2c7c5f[Running, pool size = 2, active threads = 2, queued tasks = 10000, completed tasks = 123456]]"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-4","status":503,"error":{"type":"unavailable_shards_exception","reason":"[kelp-logs-shop-2026.11.27][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[kelp-logs-shop-2026.11.27][0]] containing [index {[kelp-logs-shop-2026.11.27][_doc][00c0ffee00c0ffee-4], source[n/a, actual length: [1kb], max length: 2kb]}]]"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-5","status":400,"error":{"type":"strict_dynamic_mapping_exception","reason":"mapping set to strict, dynamic introduction of [extra] within [_doc] is not allowed"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-6","status":429,"error":{"type":"cluster_block_exception","reason":"index [kelp-logs-shop-2026.11.27] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_type":"_doc","_id":"00c0ffee00c0ffee-7","status":403,"error":{"type":"security_exception","reason":"action [indices:data/write/bulk[s]] is unauthorized for user [kelp] on indices [kelp-logs-shop-2026.11.27], this action is granted by the index privileges [create_doc,create,index,write,all]"}}}
]}"#;

/// ES 8.x: no `_type`; mapping errors are `document_parsing_exception` with a
/// `[line:col]` prefix.
const ES8_MIXED: &str = r#"{"errors":true,"took":5,"ingest_took":0,"items":[
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-0","_version":1,"result":"created","forced_refresh":false,"_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-1","status":400,"error":{"type":"document_parsing_exception","reason":"[1:412] failed to parse field [log.offset] of type [long] in document with id '00c0ffee00c0ffee-1'. Preview of field's value: 'abc'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"abc\""}}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-2","status":429,"error":{"type":"circuit_breaking_exception","reason":"[parent] Data too large, data for [indices:data/write/bulk[s]] would be [1031781784/983.9mb], which is larger than the limit of [1020054732/972.7mb]","bytes_wanted":1031781784,"bytes_limit":1020054732,"durability":"TRANSIENT"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-3","status":400,"error":{"type":"illegal_argument_exception","reason":"Limit of total fields [1000] has been exceeded while adding new fields [1]"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-4","status":404,"error":{"type":"index_not_found_exception","reason":"no such index [kelp-logs-shop-2026.11.27] and [action.auto_create_index] ([-kelp-*]) doesn't match","index_uuid":"_na_","index":"kelp-logs-shop-2026.11.27"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-5","_version":3,"result":"updated","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":9,"_primary_term":1,"status":200,"failure_store":"not_enabled"}}
]}"#;

/// OpenSearch 2.19: like ES 7 without `_type`; indexing-pressure rejections.
const OS2_MIXED: &str = r#"{"took":8,"errors":true,"items":[
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-0","_version":1,"result":"created","_shards":{"total":2,"successful":1,"failed":0},"_seq_no":0,"_primary_term":1,"status":201}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-1","status":400,"error":{"type":"mapper_parsing_exception","reason":"failed to parse field [@timestamp] of type [date_nanos] in document with id '00c0ffee00c0ffee-1'. Preview of field's value: 'yesterday'","caused_by":{"type":"illegal_argument_exception","reason":"failed to parse date field [yesterday] with format [strict_date_optional_time_nanos||epoch_millis]","caused_by":{"type":"date_time_parse_exception","reason":"Failed to parse with all enclosed parsers"}}}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-2","status":429,"error":{"type":"rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=104857600, replica_bytes=0, all_bytes=104857600, coordinating_operation_bytes=4210, max_coordinating_and_primary_bytes=107374182]"}}},
{"create":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-3","status":409,"error":{"type":"version_conflict_engine_exception","reason":"[00c0ffee00c0ffee-3]: version conflict, document already exists (current version [1])","index":"kelp-logs-shop-2026.11.27","shard":"0","index_uuid":"YBR0CmLITkuH8Q1q1qDpxg"}}},
{"index":{"_index":"kelp-logs-shop-2026.11.27","_id":"00c0ffee00c0ffee-4","status":500,"error":{"type":"exception","reason":"java.lang.NullPointerException"}}}
]}"#;

fn retry(status: u16, reason: &str) -> ItemOutcome {
    ItemOutcome::Retry {
        status,
        reason: reason.to_owned(),
    }
}

fn dead(status: u16, error_type: &str, reason: &str) -> ItemOutcome {
    ItemOutcome::DeadLetter {
        status,
        error_type: error_type.to_owned(),
        reason: reason.to_owned(),
    }
}

fn items(body: &str, sent: usize) -> Vec<ItemOutcome> {
    match classify(200, body.as_bytes(), sent).unwrap() {
        BulkOutcome::Items(items) => items,
        other => panic!("expected items, got {other:?}"),
    }
}

#[test]
fn es7_items() {
    let got = items(ES7_MIXED, 8);
    let want = vec![
        ItemOutcome::Indexed,
        ItemOutcome::Indexed,
        dead(
            400,
            "mapper_parsing_exception",
            "failed to parse field [log.offset] of type [long] in document with id '00c0ffee00c0ffee-2'. Preview of field's value: 'abc' (caused by illegal_argument_exception: For input string: \"abc\")",
        ),
        retry(
            429,
            "es_rejected_execution_exception: rejected execution of org.elasticsearch.action.support.replication.TransportWriteAction$1/WrappedActionListener{org.elasticsearch.action.support.replication.ReplicationOperation$$Lambda$5497/0x0000000801901c40@3a1a5e7c} on EsThreadPoolExecutor[name = node-1/write, queue capacity = 10000, org.elasticsearch.common.util.concurrent.EsThreadPoolExecutor@5a2c7c5f[Running, pool size = 2, active threads = 2, queued tasks = 10000, completed tasks = 123456]]",
        ),
        retry(
            503,
            "unavailable_shards_exception: [kelp-logs-shop-2026.11.27][0] primary shard is not active Timeout: [1m], request: [BulkShardRequest [[kelp-logs-shop-2026.11.27][0]] containing [index {[kelp-logs-shop-2026.11.27][_doc][00c0ffee00c0ffee-4], source[n/a, actual length: [1kb], max length: 2kb]}]]",
        ),
        dead(
            400,
            "strict_dynamic_mapping_exception",
            "mapping set to strict, dynamic introduction of [extra] within [_doc] is not allowed",
        ),
        retry(
            429,
            "cluster_block_exception: index [kelp-logs-shop-2026.11.27] blocked by: [TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block];",
        ),
        retry(
            403,
            "security_exception: action [indices:data/write/bulk[s]] is unauthorized for user [kelp] on indices [kelp-logs-shop-2026.11.27], this action is granted by the index privileges [create_doc,create,index,write,all]",
        ),
    ];
    assert_eq!(got, want);
    let classes: Vec<_> = got
        .iter()
        .map(|o| o.error_class().map(ErrorClass::label))
        .collect();
    assert_eq!(
        classes,
        vec![
            None,
            None,
            Some("mapper_parsing"),
            Some("rejected"),
            Some("unavailable_shards"),
            Some("strict_dynamic_mapping"),
            Some("cluster_block"),
            Some("security"),
        ]
    );
}

#[test]
fn es8_items() {
    let got = items(ES8_MIXED, 6);
    let labels: Vec<_> = got.iter().map(ItemOutcome::label).collect();
    assert_eq!(
        labels,
        vec![
            "indexed",
            "dead_letter",
            "retry",
            "dead_letter",
            "retry",
            "indexed"
        ]
    );
    assert_eq!(
        got[1],
        dead(
            400,
            "document_parsing_exception",
            "[1:412] failed to parse field [log.offset] of type [long] in document with id '00c0ffee00c0ffee-1'. Preview of field's value: 'abc' (caused by illegal_argument_exception: For input string: \"abc\")",
        )
    );
    assert_eq!(got[2].error_class(), Some(ErrorClass::CircuitBreaking));
    assert_eq!(got[3].error_class(), Some(ErrorClass::IllegalArgument));
    // Auto-create switched off is configuration: retried, not dead-lettered.
    assert!(matches!(got[4], ItemOutcome::Retry { status: 404, .. }));
    assert_eq!(got[4].error_class(), Some(ErrorClass::IndexNotFound));
}

#[test]
fn opensearch2_items() {
    let got = items(OS2_MIXED, 5);
    assert_eq!(got[0], ItemOutcome::Indexed);
    assert_eq!(
        got[1],
        dead(
            400,
            "mapper_parsing_exception",
            "failed to parse field [@timestamp] of type [date_nanos] in document with id '00c0ffee00c0ffee-1'. Preview of field's value: 'yesterday' (caused by illegal_argument_exception: failed to parse date field [yesterday] with format [strict_date_optional_time_nanos||epoch_millis]) (caused by date_time_parse_exception: Failed to parse with all enclosed parsers)",
        )
    );
    assert_eq!(got[2].error_class(), Some(ErrorClass::Rejected));
    assert_eq!(got[3], ItemOutcome::Conflict409);
    assert!(got[3].is_success());
    assert_eq!(
        got[4],
        retry(500, "exception: java.lang.NullPointerException")
    );
    assert!(!got[4].is_success());
}

#[test]
fn item_status_table() {
    let table: &[(u16, &str)] = &[
        (200, "indexed"),
        (201, "indexed"),
        (409, "conflict"),
        (400, "dead_letter"),
        (401, "retry"),
        (403, "retry"),
        (404, "retry"),
        (405, "dead_letter"),
        (408, "retry"),
        (413, "dead_letter"),
        (422, "dead_letter"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (100, "retry"),
        (302, "retry"),
        (600, "retry"),
    ];
    for (status, want) in table {
        let body = format!(r#"{{"items":[{{"index":{{"status":{status}}}}}]}}"#);
        let got = items(&body, 1);
        assert_eq!(got[0].label(), *want, "status {status}");
        if let ItemOutcome::DeadLetter {
            error_type, reason, ..
        } = &got[0]
        {
            assert_eq!(error_type, "unknown");
            assert_eq!(reason, &format!("status {status}"));
        }
        if let ItemOutcome::Retry { reason, .. } = &got[0] {
            assert_eq!(reason, &format!("status {status}"));
            assert_eq!(got[0].error_class(), Some(ErrorClass::Other));
        }
    }
}

#[test]
fn errors_flag_is_not_trusted() {
    let body = r#"{"took":1,"errors":false,"items":[{"index":{"status":400,"error":{"type":"mapper_parsing_exception","reason":"x"}}}]}"#;
    assert_eq!(items(body, 1)[0].label(), "dead_letter");
}

#[test]
fn filter_path_shape_parses() {
    // `filter_path=errors,items.*.status,items.*.error`
    let body = r#"{"errors":true,"items":[{"index":{"status":201}},{"index":{"status":429,"error":{"type":"es_rejected_execution_exception","reason":"busy"}}}]}"#;
    assert_eq!(
        items(body, 2),
        vec![
            ItemOutcome::Indexed,
            retry(429, "es_rejected_execution_exception: busy")
        ]
    );
}

#[test]
fn missing_error_fields_are_tolerated() {
    let body = r#"{"items":[{"index":{"status":400,"error":{"reason":null}}},{"index":{"status":400,"error":{"type":"x"}}}]}"#;
    assert_eq!(
        items(body, 2),
        vec![dead(400, "unknown", ""), dead(400, "x", "")]
    );
}

#[test]
fn deep_cause_chains_are_cut() {
    let mut error = r#"{"type":"t9","reason":"r9"}"#.to_owned();
    for i in (0..9).rev() {
        error = format!(r#"{{"type":"t{i}","reason":"r{i}","caused_by":{error}}}"#);
    }
    let body = format!(r#"{{"items":[{{"index":{{"status":400,"error":{error}}}}}]}}"#);
    match &items(&body, 1)[0] {
        ItemOutcome::DeadLetter { reason, .. } => {
            assert_eq!(
                reason,
                "r0 (caused by t1: r1) (caused by t2: r2) (caused by t3: r3) (caused by t4: r4)"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn item_count_must_match() {
    for (sent, body) in [
        (7, ES7_MIXED),
        (9, ES7_MIXED),
        (1, r#"{"took":1,"errors":false,"items":[]}"#),
        (1, r#"{"took":1,"errors":false}"#),
        (
            0,
            r#"{"took":1,"errors":false,"items":[{"index":{"status":201}}]}"#,
        ),
    ] {
        let err = classify(200, body.as_bytes(), sent).unwrap_err();
        assert!(matches!(err, ResponseError::ItemCount { .. }), "{err}");
        assert_eq!(err.reason(), "item_count_mismatch");
    }
    let err = classify(200, ES7_MIXED.as_bytes(), 9).unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading bulk response failed: 8 items for 9 events sent"
    );
    assert!(matches!(
        classify(200, br#"{"items":[]}"#, 0).unwrap(),
        BulkOutcome::Items(v) if v.is_empty()
    ));
}

#[test]
fn malformed_success_bodies_are_errors() {
    let table: &[(&[u8], &str)] = &[
        (b"", "invalid_json"),
        (b"<html>ok</html>", "invalid_json"),
        (
            br#"{"items":[{"index":{"result":"created"}}]}"#,
            "invalid_json",
        ),
        (br#"{"items":[{"index":{"status":"201"}}]}"#, "invalid_json"),
        (
            br#"{"items":[{"unknown_op":{"status":201}}]}"#,
            "missing_action",
        ),
        (br#"{"items":[{}]}"#, "missing_action"),
    ];
    for (body, reason) in table {
        let err = classify(200, body, 1).unwrap_err();
        assert_eq!(err.reason(), *reason, "{err}");
        assert!(
            err.to_string()
                .starts_with("reading bulk response failed: ")
        );
    }
}

const ES_401: &str = r#"{"error":{"root_cause":[{"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\"security\" charset=\"UTF-8\"","ApiKey"]}}],"type":"security_exception","reason":"missing authentication credentials for REST request [/_bulk]","header":{"WWW-Authenticate":["Basic realm=\"security\" charset=\"UTF-8\"","ApiKey"]}},"status":401}"#;
const ES_403: &str = r#"{"error":{"root_cause":[{"type":"security_exception","reason":"action [indices:data/write/bulk] is unauthorized for user [kelp] with effective roles [viewer], this action is granted by the cluster privileges [all]"}],"type":"security_exception","reason":"action [indices:data/write/bulk] is unauthorized for user [kelp] with effective roles [viewer], this action is granted by the cluster privileges [all]"},"status":403}"#;
const ES_400_NEWLINE: &str = r#"{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\\n]"}],"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\\n]"},"status":400}"#;
const ES_400_NO_HANDLER: &str =
    r#"{"error":"no handler found for uri [/kelp/_bulk] and method [POST]"}"#;
const ES_429: &str = r#"{"error":{"root_cause":[{"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=107374182, replica_bytes=0, all_bytes=107374182, coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=107374182]"}],"type":"es_rejected_execution_exception","reason":"rejected execution of coordinating operation [coordinating_and_primary_bytes=107374182, replica_bytes=0, all_bytes=107374182, coordinating_operation_bytes=5242880, max_coordinating_and_primary_bytes=107374182]"},"status":429}"#;
const ES_503: &str = r#"{"error":{"root_cause":[{"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master];"}],"type":"cluster_block_exception","reason":"blocked by: [SERVICE_UNAVAILABLE/2/no master];"},"status":503}"#;
const ES_405: &str = r#"{"error":"Incorrect HTTP method for uri [/_bulk] and method [PUT], allowed: [POST]","status":405}"#;

#[test]
fn whole_request_statuses() {
    let table: &[(u16, &str, usize, &str)] = &[
        (413, "", 10, "split"),
        (413, "", 1, "dead_letter"),
        (400, ES_400_NEWLINE, 10, "split"),
        (400, ES_400_NEWLINE, 1, "dead_letter"),
        (400, ES_400_NO_HANDLER, 10, "fatal"),
        (400, ES_400_NO_HANDLER, 1, "fatal"),
        (400, "<html>Bad Request</html>", 1, "fatal"),
        (401, ES_401, 10, "fatal"),
        (401, "Unauthorized", 10, "fatal"),
        (403, ES_403, 10, "fatal"),
        (404, "", 10, "fatal"),
        (405, ES_405, 10, "fatal"),
        (408, "", 10, "retry"),
        (429, ES_429, 10, "retry"),
        (500, "", 10, "retry"),
        (
            502,
            "<html><head><title>502 Bad Gateway</title></head></html>",
            10,
            "retry",
        ),
        (503, ES_503, 10, "retry"),
        (504, "", 10, "retry"),
        (302, "", 10, "retry"),
    ];
    for (status, body, sent, want) in table {
        let got = classify(*status, body.as_bytes(), *sent).unwrap();
        assert_eq!(got.label(), *want, "{status} {body}");
    }
}

#[test]
fn whole_request_details() {
    assert_eq!(
        classify(401, ES_401.as_bytes(), 3).unwrap(),
        BulkOutcome::Fatal {
            kind: FatalKind::Auth,
            status: 401,
            reason: "status 401 (security_exception): missing authentication credentials for REST request [/_bulk]".to_owned(),
        }
    );
    // OpenSearch's security plugin answers in plain text.
    assert_eq!(
        classify(401, b"Unauthorized", 3).unwrap(),
        BulkOutcome::Fatal {
            kind: FatalKind::Auth,
            status: 401,
            reason: "status 401 (unknown): Unauthorized".to_owned(),
        }
    );
    assert_eq!(
        classify(400, ES_400_NO_HANDLER.as_bytes(), 3).unwrap(),
        BulkOutcome::Fatal {
            kind: FatalKind::Rejected,
            status: 400,
            reason:
                "status 400 (unknown): no handler found for uri [/kelp/_bulk] and method [POST]"
                    .to_owned(),
        }
    );
    assert_eq!(
        classify(400, ES_400_NEWLINE.as_bytes(), 1).unwrap(),
        BulkOutcome::DeadLetterAll {
            status: 400,
            error_type: "illegal_argument_exception".to_owned(),
            reason: "The bulk request must be terminated by a newline [\\n]".to_owned(),
        }
    );
    assert_eq!(
        classify(413, b"", 1).unwrap(),
        BulkOutcome::DeadLetterAll {
            status: 413,
            error_type: "request_entity_too_large".to_owned(),
            reason: "status 413 (unknown)".to_owned(),
        }
    );
    assert_eq!(
        classify(503, ES_503.as_bytes(), 2).unwrap(),
        BulkOutcome::RetryAll {
            status: Some(503),
            reason: "status 503 (cluster_block_exception): blocked by: [SERVICE_UNAVAILABLE/2/no master];".to_owned(),
        }
    );
    let long = "x".repeat(5000);
    match classify(502, long.as_bytes(), 2).unwrap() {
        BulkOutcome::RetryAll { reason, .. } => assert!(reason.len() < 600),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        transport_error("connection refused"),
        BulkOutcome::RetryAll {
            status: None,
            reason: "connection refused".to_owned(),
        }
    );
}

#[test]
fn error_classes() {
    let table = [
        ("mapper_parsing_exception", "mapper_parsing"),
        ("document_parsing_exception", "document_parsing"),
        ("illegal_argument_exception", "illegal_argument"),
        ("strict_dynamic_mapping_exception", "strict_dynamic_mapping"),
        ("version_conflict_engine_exception", "version_conflict"),
        ("es_rejected_execution_exception", "rejected"),
        ("rejected_execution_exception", "rejected"),
        ("circuit_breaking_exception", "circuit_breaking"),
        ("unavailable_shards_exception", "unavailable_shards"),
        ("index_not_found_exception", "index_not_found"),
        ("cluster_block_exception", "cluster_block"),
        ("security_exception", "security"),
        ("something_new_exception", "other"),
    ];
    for (error_type, label) in table {
        assert_eq!(ErrorClass::from_type(error_type).label(), label);
    }
}

#[test]
fn bare_successes_are_counted_like_the_full_parse_reads_them() {
    let counted: &[(&str, usize)] = &[
        (r#"{"errors":false,"items":[{"index":{"status":201}}]}"#, 1),
        (
            r#"{"errors":false,"items":[{"index":{"status":201}},{"index":{"status":200}}]}"#,
            2,
        ),
        (
            "{\"errors\":false,\"items\":[{\"index\":{\"status\":201}}]}\n",
            1,
        ),
    ];
    for (body, n) in counted {
        assert_eq!(count_bare_successes(body.as_bytes()), Some(*n), "{body}");
        // The full parse reads the same, and decides alone on a count
        // that does not match.
        let every = parse_every_item(body.as_bytes(), *n).unwrap();
        assert_eq!(every, vec![ItemOutcome::Indexed; *n], "{body}");
        assert_eq!(items(body, *n), every, "{body}");
        assert!(matches!(
            parse_items(body.as_bytes(), n + 1),
            Err(ResponseError::ItemCount { .. })
        ));
    }
    // Anything else goes to the full parse.
    let not_counted = [
        r#"{"errors":false,"items":[]}"#,
        r#"{"errors":true,"items":[{"index":{"status":201}}]}"#,
        r#"{"errors":false,"items":[{"index":{"status":202}}]}"#,
        r#"{"errors":false,"items":[{"index":{"status":2010}}]}"#,
        r#"{"errors":false,"items":[{"create":{"status":201}}]}"#,
        r#"{"errors":false,"items":[{"index":{"status":201,"error":{}}}]}"#,
        r#"{"errors":false,"items":[{"index":{"status":201}}"#,
        r#"{"errors":false,"items":[{"index":{"status":201}}]}x"#,
        r#"{"errors":false,"items":[{"index":{"status":201}},]}"#,
        r#"{"took":3,"errors":false,"items":[{"index":{"status":201}}]}"#,
    ];
    for body in not_counted {
        assert_eq!(count_bare_successes(body.as_bytes()), None, "{body}");
    }
}
