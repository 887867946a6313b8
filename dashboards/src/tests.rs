//! Validation of the saved objects without a Kibana: the JSON parses, the
//! references resolve, the Lens states are self-consistent and every field a
//! panel uses exists, with a usable type, in the mapping the shipper installs.

use std::collections::{BTreeMap, BTreeSet};

use kelp_shipper::backend::LabelsMapping;
use serde_json::Value;

use super::*;

/// Attributes that hold JSON encoded as a string.
const EMBEDDED_JSON: &[&str] = &[
    "searchSourceJSON",
    "visState",
    "uiStateJSON",
    "panelsJSON",
    "optionsJSON",
    "fieldFormatMap",
    "runtimeFieldMap",
    "fields",
];

/// The last migration each type has in Kibana 7.17 is at or above these.
/// Kibana refuses an object whose `migrationVersion` is above the type's last
/// migration ("belongs to a more recent version of Kibana"), and reruns the
/// migrations above it, so these are the 7.17-shaped objects' versions.
const MIGRATION_VERSIONS: &[(&str, &str)] = &[
    ("index-pattern", "7.11.0"),
    ("search", "7.9.3"),
    ("visualization", "7.14.0"),
    ("lens", "7.16.0"),
    ("dashboard", "7.14.0"),
];

/// Lens operations that need an aggregatable (not `text`) field.
const LENS_FIELD_OPERATIONS: &[&str] = &[
    "terms",
    "date_histogram",
    "average",
    "max",
    "min",
    "sum",
    "median",
    "last_value",
    "unique_count",
];

fn all() -> Vec<Value> {
    objects().unwrap()
}

fn key(o: &Value) -> (String, String) {
    (
        o["type"].as_str().unwrap().to_owned(),
        o["id"].as_str().unwrap().to_owned(),
    )
}

fn of_type<'a>(objects: &'a [Value], kind: &str) -> Vec<&'a Value> {
    objects.iter().filter(|o| o["type"] == kind).collect()
}

fn embedded(o: &Value, pointer: &str) -> Value {
    let text = o
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{:?}: {pointer} is not a string", key(o)));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{:?}: {pointer}: {e}", key(o)))
}

fn reference_names(o: &Value) -> Vec<String> {
    o["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Field name to mapping type, dotted, from the shipper's mapping.
fn mapped_fields(labels: LabelsMapping) -> BTreeMap<String, String> {
    fn walk(prefix: &str, properties: &Value, out: &mut BTreeMap<String, String>) {
        for (name, spec) in properties.as_object().unwrap() {
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            match spec.get("properties") {
                Some(children) => walk(&path, children, out),
                None => {
                    let kind = spec["type"].as_str().unwrap_or("object").to_owned();
                    out.insert(path, kind);
                }
            }
        }
    }
    let mapping = kelp_shipper::template::mappings(labels);
    let mut out = BTreeMap::new();
    walk("", &mapping["properties"], &mut out);
    out
}

/// Runtime fields of the data view: name to type.
fn runtime_fields(objects: &[Value]) -> BTreeMap<String, String> {
    let view = of_type(objects, "index-pattern")[0];
    let map = embedded(view, "/attributes/runtimeFieldMap");
    map.as_object()
        .unwrap()
        .iter()
        .map(|(name, spec)| (name.clone(), spec["type"].as_str().unwrap().to_owned()))
        .collect()
}

/// Field names a KQL query compares, e.g. `log.level` in `log.level : "error"`.
fn kql_fields(query: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c == b'"' {
            // Skip quoted values: a colon inside them is not a field.
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_ascii_alphabetic() || c == b'@' || c == b'_' {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'.' | b'_' | b'@'))
            {
                i += 1;
            }
            let word = &query[start..i];
            let rest = query[i..].trim_start();
            if rest.starts_with(':') {
                out.push(word.to_owned());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Fields used by `doc['...']` in a Painless script.
fn script_fields(source: &str) -> Vec<String> {
    source
        .split("doc['")
        .skip(1)
        .map(|rest| rest.split('\'').next().unwrap().to_owned())
        .collect()
}

/// How a panel uses a field, which decides the types it may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Use {
    /// Shown in a Discover table or matched by a query: any type.
    Read,
    /// Bucketed, sorted or picked by an aggregation: not `text`.
    Aggregate,
    /// A date histogram or a time field: a date type.
    Time,
    /// A numeric metric (average, max): a numeric type.
    Number,
}

/// Every (field, use, where) in the objects.
fn field_uses(objects: &[Value]) -> Vec<(String, Use, String)> {
    let mut uses = Vec::new();
    for o in objects {
        let at = |what: &str| format!("{}/{} {what}", key(o).0, key(o).1);
        match o["type"].as_str().unwrap() {
            "index-pattern" => {
                let time = o["attributes"]["timeFieldName"].as_str().unwrap();
                uses.push((time.to_owned(), Use::Time, at("timeFieldName")));
                let map = embedded(o, "/attributes/runtimeFieldMap");
                for (name, spec) in map.as_object().unwrap() {
                    let source = spec["script"]["source"].as_str().unwrap();
                    let fields = script_fields(source);
                    assert!(!fields.is_empty(), "runtime field {name} reads no field");
                    for field in fields {
                        uses.push((field, Use::Aggregate, at(&format!("runtime field {name}"))));
                    }
                }
            }
            "search" => {
                for column in o["attributes"]["columns"].as_array().unwrap() {
                    let column = column.as_str().unwrap().to_owned();
                    uses.push((column, Use::Read, at("columns")));
                }
                for sort in o["attributes"]["sort"].as_array().unwrap() {
                    let field = sort[0].as_str().unwrap().to_owned();
                    uses.push((field, Use::Aggregate, at("sort")));
                }
                let source = embedded(o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
                for field in kql_fields(source["query"]["query"].as_str().unwrap()) {
                    uses.push((field, Use::Read, at("query")));
                }
            }
            "visualization" => {
                let vis = embedded(o, "/attributes/visState");
                for control in vis["params"]["controls"].as_array().unwrap() {
                    let field = control["fieldName"].as_str().unwrap().to_owned();
                    uses.push((field, Use::Aggregate, at("control")));
                }
            }
            "lens" => {
                let state = &o["attributes"]["state"];
                for field in kql_fields(state["query"]["query"].as_str().unwrap()) {
                    uses.push((field, Use::Read, at("query")));
                }
                for layer in lens_layers(o).values() {
                    for (id, column) in layer["columns"].as_object().unwrap() {
                        let op = column["operationType"].as_str().unwrap();
                        let what = at(&format!("column {id} ({op})"));
                        if let Some(field) = column["sourceField"].as_str() {
                            let usage = match op {
                                // Lens' pseudo-field for document counts.
                                "count" if field == "Records" => continue,
                                "count" => Use::Read,
                                "date_histogram" => Use::Time,
                                "average" | "sum" | "median" | "min" | "max" => Use::Number,
                                _ if LENS_FIELD_OPERATIONS.contains(&op) => Use::Aggregate,
                                other => panic!("{what}: unknown operation {other}"),
                            };
                            uses.push((field.to_owned(), usage, what.clone()));
                        }
                        if let Some(sort) = column["params"]["sortField"].as_str() {
                            uses.push((sort.to_owned(), Use::Time, what.clone()));
                        }
                        for filter in column["params"]["filters"].as_array().into_iter().flatten() {
                            for field in kql_fields(filter["input"]["query"].as_str().unwrap()) {
                                uses.push((field, Use::Read, what.clone()));
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    uses
}

fn lens_layers(o: &Value) -> serde_json::Map<String, Value> {
    o["attributes"]["state"]["datasourceStates"]["indexpattern"]["layers"]
        .as_object()
        .unwrap()
        .clone()
}

fn type_allows(kind: &str, usage: Use) -> bool {
    const NUMBERS: &[&str] = &["long", "integer", "short", "byte", "double", "float"];
    match usage {
        Use::Read => true,
        Use::Aggregate => kind != "text" && kind != "object",
        Use::Time => kind == "date" || kind == "date_nanos",
        Use::Number => NUMBERS.contains(&kind),
    }
}

#[test]
fn every_line_is_one_json_object() {
    assert!(NDJSON.ends_with('\n'), "the file ends with a newline");
    let lines: Vec<&str> = NDJSON.lines().collect();
    assert!(lines.iter().all(|l| !l.trim().is_empty()), "no blank lines");
    for (n, line) in lines.iter().enumerate() {
        let value: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", n + 1));
        assert!(value.is_object(), "line {} is not an object", n + 1);
        for field in ["type", "id", "attributes", "references", "migrationVersion"] {
            assert!(value.get(field).is_some(), "line {} has no {field}", n + 1);
        }
    }
    assert_eq!(object_count(), lines.len());
    assert_eq!(all().len(), lines.len());
}

#[test]
fn embedded_json_strings_parse() {
    fn walk(o: &Value, value: &Value, path: &str, found: &mut BTreeSet<String>) {
        if let Some(map) = value.as_object() {
            for (name, child) in map {
                let child_path = format!("{path}/{name}");
                if EMBEDDED_JSON.contains(&name.as_str()) || name.ends_with("JSON") {
                    embedded(o, &child_path);
                    found.insert(name.clone());
                } else {
                    walk(o, child, &child_path, found);
                }
            }
        }
    }
    for o in all() {
        let mut found = BTreeSet::new();
        walk(&o, &o["attributes"], "/attributes", &mut found);
        let expected: &[&str] = match o["type"].as_str().unwrap() {
            "index-pattern" => &["fieldFormatMap", "fields", "runtimeFieldMap"],
            "search" => &["searchSourceJSON"],
            "visualization" => &["searchSourceJSON", "uiStateJSON", "visState"],
            "lens" => &[],
            "dashboard" => &["optionsJSON", "panelsJSON", "searchSourceJSON"],
            other => panic!("unexpected type {other}"),
        };
        let expected: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(found, expected, "{:?}", key(&o));
    }
}

#[test]
fn ids_are_stable() {
    // Kibana finds an object again by its id: changing one leaves the old
    // object behind on every Kibana that imported it before.
    let ids: Vec<(String, String)> = all().iter().map(key).collect();
    let pinned = [
        ("index-pattern", "kelp-logs"),
        ("search", "kelp-container-logs"),
        ("search", "kelp-container-errors"),
        ("visualization", "kelp-container-filters"),
        ("lens", "kelp-log-volume-by-namespace"),
        ("lens", "kelp-top-pods-by-volume"),
        ("lens", "kelp-error-rate"),
        ("lens", "kelp-latest-errors"),
        ("lens", "kelp-ingest-delay"),
        ("dashboard", "kelp-kubernetes-container-logs"),
    ];
    let pinned: Vec<(String, String)> = pinned
        .iter()
        .map(|(t, i)| ((*t).to_owned(), (*i).to_owned()))
        .collect();
    assert_eq!(ids, pinned);
    assert!(ids.contains(&("index-pattern".to_owned(), DATA_VIEW_ID.to_owned())));
    assert!(ids.contains(&("dashboard".to_owned(), DASHBOARD_ID.to_owned())));
}

#[test]
fn ids_are_unique() {
    let ids: Vec<String> = all().iter().map(|o| key(o).1).collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

#[test]
fn every_reference_resolves() {
    let objects = all();
    let present: BTreeSet<(String, String)> = objects.iter().map(key).collect();
    for o in &objects {
        for r in o["references"].as_array().unwrap() {
            let target = (
                r["type"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            );
            assert!(present.contains(&target), "{:?} -> {target:?}", key(o));
        }
        let names = reference_names(o);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len(), "{:?}: duplicate names", key(o));
    }
}

#[test]
fn every_reference_name_is_used_and_every_used_name_is_declared() {
    for o in all() {
        let mut used = BTreeSet::new();
        let attributes = &o["attributes"];
        if attributes
            .pointer("/kibanaSavedObjectMeta/searchSourceJSON")
            .is_some()
        {
            let source = embedded(&o, "/attributes/kibanaSavedObjectMeta/searchSourceJSON");
            if let Some(name) = source["indexRefName"].as_str() {
                used.insert(name.to_owned());
            }
        }
        match o["type"].as_str().unwrap() {
            "visualization" => {
                let vis = embedded(&o, "/attributes/visState");
                for control in vis["params"]["controls"].as_array().unwrap() {
                    used.insert(control["indexPatternRefName"].as_str().unwrap().to_owned());
                }
            }
            "lens" => {
                used.insert("indexpattern-datasource-current-indexpattern".to_owned());
                for layer in lens_layers(&o).keys() {
                    used.insert(format!("indexpattern-datasource-layer-{layer}"));
                }
            }
            "dashboard" => {
                let panels = embedded(&o, "/attributes/panelsJSON");
                for panel in panels.as_array().unwrap() {
                    used.insert(panel["panelRefName"].as_str().unwrap().to_owned());
                }
            }
            _ => {}
        }
        let declared: BTreeSet<String> = reference_names(&o).into_iter().collect();
        assert_eq!(used, declared, "{:?}", key(&o));
    }
}

#[test]
fn panels_point_at_objects_of_their_type() {
    let objects = all();
    let dashboard = of_type(&objects, "dashboard")[0];
    let panels = embedded(dashboard, "/attributes/panelsJSON");
    let references = dashboard["references"].as_array().unwrap();
    let mut cells = BTreeSet::new();
    let mut indexes = BTreeSet::new();
    for panel in panels.as_array().unwrap() {
        let name = panel["panelRefName"].as_str().unwrap();
        let reference = references.iter().find(|r| r["name"] == name).unwrap();
        assert_eq!(panel["type"], reference["type"], "{name}");
        let index = panel["panelIndex"].as_str().unwrap();
        assert!(indexes.insert(index.to_owned()), "panelIndex {index} twice");
        let grid = &panel["gridData"];
        assert_eq!(grid["i"].as_str(), Some(index));
        let (x, y, w, h) = (
            grid["x"].as_u64().unwrap(),
            grid["y"].as_u64().unwrap(),
            grid["w"].as_u64().unwrap(),
            grid["h"].as_u64().unwrap(),
        );
        // The dashboard grid is 48 columns wide.
        assert!(w > 0 && h > 0 && x + w <= 48, "{name} is off the grid");
        for cx in x..x + w {
            for cy in y..y + h {
                assert!(cells.insert((cx, cy)), "{name} overlaps another panel");
            }
        }
    }
    // Everything but the data view is on the dashboard.
    let on_dashboard: BTreeSet<(String, String)> = references
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap().to_owned(),
                r["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for o in &objects {
        let kind = o["type"].as_str().unwrap();
        if kind != "index-pattern" && kind != "dashboard" {
            assert!(
                on_dashboard.contains(&key(o)),
                "{:?} is not on the dashboard",
                key(o)
            );
        }
    }
    assert_eq!(
        dashboard["attributes"]["title"],
        "Kubernetes container logs"
    );
}

#[test]
fn fields_exist_in_the_shipper_mapping_with_a_usable_type() {
    let objects = all();
    let runtime = runtime_fields(&objects);
    let uses = field_uses(&objects);
    assert!(uses.len() > 20, "the walk found the fields: {uses:?}");
    // The labels mapping varies by backend; no panel may depend on it.
    for labels in [
        LabelsMapping::Flattened,
        LabelsMapping::FlatObject,
        LabelsMapping::Disabled,
    ] {
        let mapped = mapped_fields(labels);
        assert!(mapped.contains_key("kubernetes.pod.name"), "{mapped:?}");
        for (field, usage, at) in &uses {
            let kind = match (mapped.get(field), runtime.get(field)) {
                (Some(kind), None) => kind,
                (None, Some(kind)) => kind,
                (Some(_), Some(_)) => panic!("{at}: {field} is both mapped and a runtime field"),
                (None, None) => panic!("{at}: {field} is not in the shipper's mapping"),
            };
            assert!(
                type_allows(kind, *usage),
                "{at}: {field} is {kind}, which cannot be used as {usage:?}"
            );
        }
    }
}

#[test]
fn the_ingest_delay_reads_the_shipper_s_ingest_time() {
    let objects = all();
    let runtime = runtime_fields(&objects);
    assert_eq!(
        runtime.get("kelp.ingest_delay_ms").map(String::as_str),
        Some("long")
    );
    let view = of_type(&objects, "index-pattern")[0];
    let map = embedded(view, "/attributes/runtimeFieldMap");
    let source = map["kelp.ingest_delay_ms"]["script"]["source"]
        .as_str()
        .unwrap();
    assert_eq!(
        script_fields(source),
        [
            "event.ingested",
            "@timestamp",
            "event.ingested",
            "@timestamp"
        ]
    );
    assert!(source.contains("emit("), "a runtime field emits its value");
    let formats = embedded(view, "/attributes/fieldFormatMap");
    assert_eq!(formats["kelp.ingest_delay_ms"]["id"], "duration");
}

#[test]
fn the_data_view_is_kelp_logs_on_timestamp() {
    let objects = all();
    let views = of_type(&objects, "index-pattern");
    assert_eq!(views.len(), 1);
    assert_eq!(views[0]["id"], DATA_VIEW_ID);
    assert_eq!(views[0]["attributes"]["title"], DATA_VIEW_TITLE);
    assert_eq!(views[0]["attributes"]["timeFieldName"], "@timestamp");
}

#[test]
fn the_container_logs_search_has_the_columns_of_the_issue() {
    let objects = all();
    let search = objects
        .iter()
        .find(|o| o["attributes"]["title"] == "Container logs")
        .unwrap();
    assert_eq!(search["type"], "search");
    let columns: Vec<&str> = search["attributes"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        columns,
        [
            "kubernetes.namespace",
            "kubernetes.pod.name",
            "kubernetes.container.name",
            "stream",
            "message"
        ]
    );
}

#[test]
fn controls_filter_namespace_then_pod_then_container() {
    let objects = all();
    let vis = embedded(
        of_type(&objects, "visualization")[0],
        "/attributes/visState",
    );
    assert_eq!(vis["type"], "input_control_vis");
    let controls = vis["params"]["controls"].as_array().unwrap();
    let chain: Vec<(&str, &str)> = controls
        .iter()
        .map(|c| {
            (
                c["fieldName"].as_str().unwrap(),
                c["parent"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("kubernetes.namespace", ""),
            ("kubernetes.pod.name", "namespace"),
            ("kubernetes.container.name", "pod"),
        ]
    );
    let ids: Vec<&str> = controls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    for (_, parent) in &chain {
        assert!(parent.is_empty() || ids.contains(parent), "parent {parent}");
    }
}

#[test]
fn lens_states_are_self_consistent() {
    let objects = all();
    let lenses = of_type(&objects, "lens");
    assert_eq!(lenses.len(), 5);
    for o in lenses {
        let at = key(o);
        let attributes = &o["attributes"];
        let kind = attributes["visualizationType"].as_str().unwrap();
        assert!(
            ["lnsXY", "lnsDatatable", "lnsMetric"].contains(&kind),
            "{at:?}: {kind}"
        );
        let layers = lens_layers(o);
        assert_eq!(layers.len(), 1, "{at:?}: one layer");
        let (layer_id, layer) = layers.iter().next().unwrap();
        let columns = layer["columns"].as_object().unwrap();
        let order: BTreeSet<&str> = layer["columnOrder"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let ids: BTreeSet<&str> = columns.keys().map(String::as_str).collect();
        assert_eq!(order, ids, "{at:?}: columnOrder lists every column once");
        for (id, column) in columns {
            for field in ["label", "dataType", "operationType", "isBucketed"] {
                assert!(column.get(field).is_some(), "{at:?}: {id} has no {field}");
            }
            if let Some(target) = column.pointer("/params/orderBy/columnId") {
                let target = target.as_str().unwrap();
                assert!(ids.contains(target), "{at:?}: {id} orders by {target}");
                assert_eq!(
                    columns[target]["isBucketed"], false,
                    "{at:?}: order by a metric"
                );
            }
        }
        let vis = &attributes["state"]["visualization"];
        let mut accessors: Vec<&str> = Vec::new();
        match kind {
            "lnsXY" => {
                for l in vis["layers"].as_array().unwrap() {
                    assert_eq!(l["layerId"].as_str(), Some(layer_id.as_str()), "{at:?}");
                    assert_eq!(l["layerType"], "data", "{at:?}");
                    accessors.push(l["xAccessor"].as_str().unwrap());
                    if let Some(split) = l["splitAccessor"].as_str() {
                        accessors.push(split);
                    }
                    for a in l["accessors"].as_array().unwrap() {
                        let a = a.as_str().unwrap();
                        assert_eq!(columns[a]["isBucketed"], false, "{at:?}: y is a metric");
                        accessors.push(a);
                    }
                }
            }
            "lnsDatatable" => {
                assert_eq!(vis["layerId"].as_str(), Some(layer_id.as_str()), "{at:?}");
                for c in vis["columns"].as_array().unwrap() {
                    accessors.push(c["columnId"].as_str().unwrap());
                }
                if let Some(sort) = vis.pointer("/sorting/columnId") {
                    accessors.push(sort.as_str().unwrap());
                }
            }
            _ => accessors.push(vis["accessor"].as_str().unwrap()),
        }
        for a in &accessors {
            assert!(ids.contains(a), "{at:?}: accessor {a} is not a column");
        }
        let shown: BTreeSet<&str> = accessors.into_iter().collect();
        assert_eq!(shown, ids, "{at:?}: every column is shown");
    }
}

#[test]
fn migration_versions_do_not_outrun_kibana_7_17() {
    let versions: BTreeMap<&str, &str> = MIGRATION_VERSIONS.iter().copied().collect();
    for o in all() {
        let (kind, id) = key(&o);
        let want = versions[kind.as_str()];
        assert_eq!(
            o["migrationVersion"],
            serde_json::json!({ kind.clone(): want }),
            "{kind}/{id}"
        );
        assert_eq!(o["coreMigrationVersion"], "7.17.0", "{kind}/{id}");
    }
}

#[test]
fn kql_fields_finds_compared_fields_only() {
    assert_eq!(
        kql_fields(r#"stream : "stderr" or log.level : ("error" or "fatal")"#),
        ["stream", "log.level"]
    );
    assert_eq!(kql_fields(r#"not (message : "a:b")"#), ["message"]);
    assert!(kql_fields("").is_empty());
}
