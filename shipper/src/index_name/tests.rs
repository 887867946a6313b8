use super::*;
use crate::testutil;

fn render(template: &str, event: &Event) -> Result<String, RenderError> {
    IndexTemplate::parse(template).unwrap().render(event)
}

#[test]
fn default_template_parses_to_default() {
    assert_eq!(
        IndexTemplate::parse(DEFAULT_TEMPLATE).unwrap(),
        IndexTemplate::default()
    );
    assert_eq!(
        IndexTemplate::default().render(&testutil::event()).unwrap(),
        "kelp-logs-shop-2026.11.27"
    );
}

#[test]
fn renders_table() {
    let mut event = testutil::event();
    event
        .kubernetes
        .annotations
        .insert("team".to_owned(), "Payments Team/EU, \"core\"".to_owned());
    let table: &[(&str, &str)] = &[
        (DEFAULT_TEMPLATE, "kelp-logs-shop-2026.11.27"),
        ("logs-{@timestamp}", "logs-2026.11.27"),
        ("logs-{@timestamp:%Y-%m-%d-%H}", "logs-2026-11-27-20"),
        ("logs-{@timestamp:%Y.%m}", "logs-2026.11"),
        ("logs-{@timestamp:w%Y}", "logs-w2026"),
        ("static-index", "static-index"),
        ("logs-{kubernetes.labels.app}", "logs-checkout"),
        // Label keys keep their dots; values are lowercased.
        (
            "logs-{kubernetes.labels.app.kubernetes.io/name}",
            "logs-checkout",
        ),
        ("logs-{kubernetes.labels.missing}", "logs-_unknown"),
        ("logs-{kubernetes.labels.missing|none}", "logs-none"),
        (
            "logs-{kubernetes.annotations.team}",
            "logs-payments_team_eu___core_",
        ),
        (
            "logs-{kubernetes.container.image}",
            "logs-registry.example_shop_checkout_1.4.2",
        ),
        ("logs-{kubernetes.owner.kind}", "logs-replicaset"),
        ("logs-{kubernetes.owner.name}", "logs-checkout-7d4b9c6f5"),
        ("logs-{kubernetes.node.name}", "logs-node-1"),
        (
            "logs-{kubernetes.pod.name}",
            "logs-checkout-7d4b9c6f5-x2x9q",
        ),
        (
            "logs-{kubernetes.pod.uid}",
            "logs-0f0e0d0c-0b0a-0908-0706-050403020100",
        ),
        ("logs-{kubernetes.container.name}", "logs-checkout"),
        ("logs-{container.id}", "logs-containerd___4f1c"),
        ("logs-{container.runtime}", "logs-cri"),
        ("logs-{host.name}", "logs-node-1"),
        ("logs-{stream}", "logs-stdout"),
        ("logs-{log.level}", "logs-info"),
        ("{kubernetes.namespace}-{stream}", "shop-stdout"),
        // A leading fallback loses its `_`: names must not start with it.
        ("{kubernetes.labels.missing}-x", "unknown-x"),
    ];
    for (template, want) in table {
        assert_eq!(render(template, &event).unwrap(), *want, "{template}");
    }
}

#[test]
fn missing_and_empty_fields_use_the_fallback() {
    let mut event = testutil::event();
    event.kubernetes.namespace = String::new();
    event.kubernetes.node = None;
    event.log.level = None;
    assert_eq!(
        IndexTemplate::default().render(&event).unwrap(),
        "kelp-logs-_unknown-2026.11.27"
    );
    assert_eq!(
        render("n-{kubernetes.node.name}", &event).unwrap(),
        "n-_unknown"
    );
    assert_eq!(render("l-{log.level|na}", &event).unwrap(), "l-na");
}

#[test]
fn sanitizes_field_values() {
    let mut event = testutil::event();
    let table: &[(&str, &str)] = &[
        ("Prod", "kelp-logs-prod-2026.11.27"),
        ("a b", "kelp-logs-a_b-2026.11.27"),
        (
            "a\\b/c*d?e\"f<g>h|i,j#k:l",
            "kelp-logs-a_b_c_d_e_f_g_h_i_j_k_l-2026.11.27",
        ),
        ("ümlaut", "kelp-logs-_mlaut-2026.11.27"),
        ("日本", "kelp-logs-__-2026.11.27"),
        ("tab\tnew\nline", "kelp-logs-tab_new_line-2026.11.27"),
        ("..", "kelp-logs-..-2026.11.27"),
        ("a+b_c.d-e", "kelp-logs-a+b_c.d-e-2026.11.27"),
    ];
    for (namespace, want) in table {
        event.kubernetes.namespace = (*namespace).to_owned();
        assert_eq!(IndexTemplate::default().render(&event).unwrap(), *want);
    }
}

#[test]
fn whole_name_rules() {
    let mut event = testutil::event();
    let template = IndexTemplate::parse("{kubernetes.namespace}").unwrap();
    let table: &[(&str, &str)] = &[
        ("-x", "x"),
        ("_x", "x"),
        ("+x", "x"),
        (".x", "x"),
        ("..", UNROUTABLE_INDEX),
        ("---", UNROUTABLE_INDEX),
        ("ok", "ok"),
    ];
    for (namespace, want) in table {
        event.kubernetes.namespace = (*namespace).to_owned();
        assert_eq!(template.render(&event).unwrap(), *want, "{namespace:?}");
    }
    event.kubernetes.namespace = "n".repeat(400);
    let name = IndexTemplate::default().render(&event).unwrap();
    assert_eq!(name.len(), MAX_INDEX_NAME_BYTES);
    assert!(name.starts_with("kelp-logs-nnn"));
    // Multi-byte input still yields at most 255 bytes of ASCII.
    event.kubernetes.namespace = "é".repeat(400);
    let name = IndexTemplate::default().render(&event).unwrap();
    assert_eq!(name.len(), MAX_INDEX_NAME_BYTES);
    assert!(name.is_ascii());
}

#[test]
fn same_event_same_name() {
    let event = testutil::event();
    let template = IndexTemplate::default();
    let mut buf = String::from("leftover");
    template.render_into(&event, &mut buf).unwrap();
    assert_eq!(buf, template.render(&event).unwrap());
    template.render_into(&event, &mut buf).unwrap();
    assert_eq!(buf, "kelp-logs-shop-2026.11.27");
}

#[test]
fn timestamp_is_utc_of_the_event() {
    let mut event = testutil::event();
    let table: &[(&str, &str)] = &[
        (
            "2026-11-27T23:59:59.999999999Z",
            "kelp-logs-shop-2026.11.27",
        ),
        ("2026-11-28T00:00:00Z", "kelp-logs-shop-2026.11.28"),
        ("2026-11-28T00:30:00+01:00", "kelp-logs-shop-2026.11.27"),
    ];
    for (ts, want) in table {
        event.timestamp = (*ts).to_owned();
        assert_eq!(IndexTemplate::default().render(&event).unwrap(), *want);
    }
}

#[test]
fn bad_timestamp_is_an_error_only_when_used() {
    let mut event = testutil::event();
    event.timestamp = "yesterday".to_owned();
    let err = IndexTemplate::default().render(&event).unwrap_err();
    assert_eq!(err, RenderError::BadTimestamp("yesterday".to_owned()));
    assert_eq!(err.reason(), "bad_timestamp");
    assert_eq!(
        err.to_string(),
        "rendering index name failed: @timestamp \"yesterday\" is not an RFC 3339 time"
    );
    assert_eq!(
        render("logs-{kubernetes.namespace}", &event).unwrap(),
        "logs-shop"
    );
    event.timestamp = "x".repeat(1000);
    match IndexTemplate::default().render(&event).unwrap_err() {
        RenderError::BadTimestamp(text) => assert_eq!(text.len(), 64),
    }
}

#[test]
fn parse_errors() {
    use TemplateError as E;
    let table: &[(&str, TemplateError)] = &[
        ("", E::Empty),
        ("logs-{kubernetes.namespace", E::UnclosedBrace { at: 5 }),
        ("logs-{a{b}", E::UnclosedBrace { at: 7 }),
        ("logs-}", E::UnopenedBrace { at: 5 }),
        ("logs-{}", E::EmptyPlaceholder { at: 5 }),
        ("logs-{|x}", E::EmptyPlaceholder { at: 5 }),
        ("logs-{host.name|}", E::EmptyPlaceholder { at: 5 }),
        ("logs-{@timestamp:}", E::EmptyPlaceholder { at: 5 }),
        (
            "logs-{kubernetes.nmespace}",
            E::UnknownField {
                path: "kubernetes.nmespace".into(),
            },
        ),
        (
            "logs-{message}",
            E::UnknownField {
                path: "message".into(),
            },
        ),
        (
            "logs-{kubernetes.labels.}",
            E::UnknownField {
                path: "kubernetes.labels.".into(),
            },
        ),
        (
            "logs-{@timestampz}",
            E::UnknownField {
                path: "@timestampz".into(),
            },
        ),
        (
            "logs-{@timestamp:%Y.%M}",
            E::UnsupportedDirective {
                format: "%Y.%M".into(),
                directive: "%M".into(),
            },
        ),
        (
            "logs-{@timestamp:%Y%}",
            E::UnsupportedDirective {
                format: "%Y%".into(),
                directive: "%".into(),
            },
        ),
        (
            "logs-{@timestamp:%Y/%m}",
            E::InvalidCharacter { ch: '/', at: 19 },
        ),
        ("Logs-{host.name}", E::InvalidCharacter { ch: 'L', at: 0 }),
        ("logs {host.name}", E::InvalidCharacter { ch: ' ', at: 4 }),
        (
            "logs-{host.name|N/A}",
            E::InvalidCharacter { ch: 'N', at: 16 },
        ),
        ("logs:{host.name}", E::InvalidCharacter { ch: ':', at: 4 }),
        ("-logs-{host.name}", E::InvalidStart { ch: '-' }),
        ("_logs", E::InvalidStart { ch: '_' }),
        (".logs", E::InvalidStart { ch: '.' }),
    ];
    for (template, want) in table {
        assert_eq!(
            IndexTemplate::parse(template).unwrap_err(),
            *want,
            "{template}"
        );
    }
    let long = "a".repeat(256);
    assert_eq!(
        IndexTemplate::parse(&long).unwrap_err(),
        E::TooLong { len: 256 }
    );
}

#[test]
fn error_messages_name_the_step() {
    let err = IndexTemplate::parse("logs-{kubernetes.nmespace}").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("parsing index template failed: `kubernetes.nmespace`")
    );
    let err: Result<IndexTemplate, _> = "logs-{".parse();
    assert!(err.unwrap_err().to_string().contains("never closed"));
}

#[test]
fn patterns_and_prefixes() {
    let table: &[(&str, &str, Option<&str>)] = &[
        (DEFAULT_TEMPLATE, "kelp-logs-", Some("kelp-logs-*")),
        ("static", "static", Some("static")),
        ("{host.name}-logs", "", None),
    ];
    for (template, prefix, pattern) in table {
        let t = IndexTemplate::parse(template).unwrap();
        assert_eq!(t.literal_prefix(), *prefix);
        assert_eq!(t.index_pattern().as_deref(), *pattern);
        assert_eq!(t.as_str(), *template);
        assert_eq!(t.to_string(), *template);
    }
    assert!(IndexTemplate::default().uses_timestamp());
    assert!(
        !IndexTemplate::parse("x-{host.name}")
            .unwrap()
            .uses_timestamp()
    );
}

#[test]
fn field_paths_round_trip() {
    let paths = [
        "kubernetes.namespace",
        "kubernetes.pod.name",
        "kubernetes.pod.uid",
        "kubernetes.container.name",
        "kubernetes.container.image",
        "kubernetes.node.name",
        "kubernetes.owner.kind",
        "kubernetes.owner.name",
        "kubernetes.labels.app.kubernetes.io/name",
        "kubernetes.annotations.a",
        "container.id",
        "container.runtime",
        "host.name",
        "stream",
        "log.level",
    ];
    for path in paths {
        assert_eq!(Field::from_path(path).unwrap().path(), path);
    }
}

#[test]
fn padded_numbers_match_format() {
    for value in [
        0i64, 7, 10, 99, 100, 999, 1000, 2026, 9999, 10_000, 123_456, -5,
    ] {
        for width in [2u32, 4] {
            let mut out = String::from("x");
            push_padded(&mut out, value, width);
            assert_eq!(
                out,
                format!("x{value:0w$}", w = width as usize),
                "{value} {width}"
            );
        }
    }
}

#[test]
fn cached_names_equal_fresh_renders_through_any_sequence() {
    let templates = [
        DEFAULT_TEMPLATE,
        "logs-{kubernetes.pod.name}-{log.level|none}-{@timestamp:%Y%m%d%H}",
        "static-{kubernetes.namespace}",
        "logs-{@timestamp:%Y.%m}",
    ];
    // Each step changes one thing the name may depend on, or nothing.
    type Step = fn(&mut Event);
    let steps: &[(&str, Step)] = &[
        ("same", |_| {}),
        ("next minute", |e| {
            e.timestamp = "2026-11-27T20:18:29Z".into()
        }),
        ("next hour", |e| e.timestamp = "2026-11-27T21:00:00Z".into()),
        ("same hour, offset", |e| {
            e.timestamp = "2026-11-27T22:30:00+01:00".into()
        }),
        ("other namespace", |e| {
            e.kubernetes.namespace = "payments".into()
        }),
        ("empty namespace", |e| {
            e.kubernetes.namespace = String::new()
        }),
        ("back", |e| e.kubernetes.namespace = "shop".into()),
        ("no level", |e| e.log.level = None),
        ("level", |e| e.log.level = Some("warn".into())),
        ("other pod", |e| e.kubernetes.pod.name = "web-1".into()),
        ("bad time", |e| e.timestamp = "yesterday".into()),
        ("good time", |e| e.timestamp = "2026-11-28T00:00:00Z".into()),
        ("next year", |e| e.timestamp = "2027-01-01T00:00:00Z".into()),
    ];
    for template in templates {
        let template = IndexTemplate::parse(template).unwrap();
        let mut cache = NameCache::default();
        let mut event = testutil::event();
        for (what, step) in steps {
            step(&mut event);
            let fresh = template.render(&event);
            let cached = template
                .render_cached(&event, &mut cache)
                .map(str::to_owned);
            assert_eq!(cached, fresh, "{what} with {template:?}");
        }
    }
}
