//! `kelp plan`'s diff: the live object against the server's dry-run of the
//! apply, as a list of changed paths. Pure: both sides are JSON as the API
//! server returned them, so defaults and other managers' fields are on both
//! sides and only what the apply would change shows up.

use serde_json::Value;

/// Fields that change on every write or belong to the server, not to the
/// stack: comparing them would report a change on every plan.
const IGNORED: [&str; 7] = [
    "/metadata/managedFields",
    "/metadata/resourceVersion",
    "/metadata/generation",
    "/metadata/uid",
    "/metadata/creationTimestamp",
    "/status",
    "/metadata/selfLink",
];

/// What the apply would do to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The object does not exist yet.
    Create,
    /// These paths would change (JSON pointers, e.g. `/spec/replicas`).
    Update(Vec<String>),
    /// Nothing would change.
    Unchanged,
    /// The API server's dry run refused the apply (e.g. an immutable
    /// field); the text is its answer.
    Refused(String),
}

/// Compares `live` with `after`, the dry-run result of applying the stack's
/// object; `None` live means the object is missing.
pub fn change(live: Option<&Value>, after: &Value) -> Change {
    let Some(live) = live else {
        return Change::Create;
    };
    let mut paths = Vec::new();
    walk("", live, after, &mut paths);
    if paths.is_empty() {
        Change::Unchanged
    } else {
        Change::Update(paths)
    }
}

/// JSON pointer escaping of one key (`~` and `/`).
fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    if IGNORED.contains(&path) {
        return;
    }
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                let sub = format!("{path}/{}", escape(key));
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(&sub, x, y, out),
                    _ if IGNORED.contains(&sub.as_str()) => {}
                    _ => out.push(sub),
                }
            }
        }
        // Lists of the same length are compared item by item, so a changed
        // container image says `/spec/template/spec/containers/0/image`.
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(&format!("{path}/{i}"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_diff_lists_changed_paths_and_ignores_server_fields() {
        let live = json!({
            "metadata": {"name": "kafka", "resourceVersion": "10", "generation": 2,
                         "uid": "u", "creationTimestamp": "t",
                         "managedFields": [{"manager": "kelp"}],
                         "labels": {"app.kubernetes.io/version": "3.9.1", "a/b": "x"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [
                {"name": "kafka", "image": "kafka:3.9.1"}]}}},
            "status": {"readyReplicas": 3}
        });
        let table: Vec<(Option<Value>, Value, Change)> = vec![
            (None, live.clone(), Change::Create),
            (Some(live.clone()), live.clone(), Change::Unchanged),
            (
                Some(live.clone()),
                {
                    let mut v = live.clone();
                    v["metadata"]["resourceVersion"] = json!("11");
                    v["metadata"]["generation"] = json!(3);
                    v["metadata"]["managedFields"] = json!([]);
                    v["status"] = json!({"readyReplicas": 1});
                    v
                },
                Change::Unchanged,
            ),
            (
                Some(live.clone()),
                {
                    let mut v = live.clone();
                    v["spec"]["template"]["spec"]["containers"][0]["image"] = json!("kafka:3.9.2");
                    v["metadata"]["labels"]["app.kubernetes.io/version"] = json!("3.9.2");
                    v["metadata"]["labels"]["a/b"] = json!("y");
                    v
                },
                Change::Update(vec![
                    "/metadata/labels/a~1b".to_owned(),
                    "/metadata/labels/app.kubernetes.io~1version".to_owned(),
                    "/spec/template/spec/containers/0/image".to_owned(),
                ]),
            ),
            (
                Some(live.clone()),
                {
                    let mut v = live.clone();
                    v["spec"]["template"]["spec"]["containers"] =
                        json!([{"name": "kafka"}, {"name": "sidecar"}]);
                    v["spec"]["paused"] = json!(true);
                    v
                },
                Change::Update(vec![
                    "/spec/paused".to_owned(),
                    "/spec/template/spec/containers".to_owned(),
                ]),
            ),
            (
                Some(json!(1)),
                json!(2),
                Change::Update(vec!["/".to_owned()]),
            ),
        ];
        for (before, after, want) in table {
            assert_eq!(change(before.as_ref(), &after), want, "{after}");
        }
    }
}
