use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::VolumeResourceRequirements;

use super::*;
use crate::manifests::{self, Object};
use crate::stack::Stack;

fn rendered(yaml: &str, name: &str) -> StatefulSet {
    let stack = Stack::from_yaml_str(yaml).unwrap();
    manifests::build(&stack)
        .into_iter()
        .find_map(|o| match o {
            Object::StatefulSet(sts) if sts.metadata.name.as_deref() == Some(name) => Some(sts),
            _ => None,
        })
        .unwrap()
}

#[test]
fn quantities_parse_to_bytes() {
    let gi = 1u128 << 30;
    let cases = [
        ("10Gi", Some(10 * gi)),
        ("1Ti", Some(1024 * gi)),
        ("512Mi", Some(512 << 20)),
        ("1.5Gi", Some(3 * gi / 2)),
        ("10G", Some(10_000_000_000)),
        ("100", Some(100)),
        ("1e9", Some(1_000_000_000)),
        ("1500m", Some(2)),
        ("0.5", Some(1)),
        ("", None),
        ("Gi", None),
        ("10Xi", None),
        ("ten", None),
    ];
    for (text, expected) in cases {
        assert_eq!(quantity_bytes(text), expected, "{text}");
    }
}

#[test]
fn claim_names_match_template_statefulset_and_ordinal() {
    let cases = [
        ("data-kafka-0", Some(0)),
        ("data-kafka-12", Some(12)),
        ("data-kafka-", None),
        ("data-kafka-x", None),
        ("data-kafka-connect-0", None),
        ("logs-kafka-0", None),
        ("data-zookeeper-0", None),
    ];
    for (claim, expected) in cases {
        assert_eq!(claim_ordinal(claim, "data", "kafka"), expected, "{claim}");
    }
}

/// `sts` with its only claim template changed by `change`.
fn with_claim(sts: &StatefulSet, change: impl FnOnce(&mut PersistentVolumeClaim)) -> StatefulSet {
    let mut sts = sts.clone();
    let claims = sts
        .spec
        .as_mut()
        .unwrap()
        .volume_claim_templates
        .as_mut()
        .unwrap();
    change(&mut claims[0]);
    sts
}

fn set_size(claim: &mut PersistentVolumeClaim, size: &str) {
    claim.spec.as_mut().unwrap().resources = Some(VolumeResourceRequirements {
        requests: Some(BTreeMap::from([(
            "storage".to_owned(),
            Quantity(size.to_owned()),
        )])),
        ..VolumeResourceRequirements::default()
    });
}

#[test]
fn a_bigger_volume_size_in_the_stack_plans_growth() {
    let live = rendered("storage: {storage_class: fast}", "kafka");
    let desired = rendered(
        "storage: {storage_class: fast}\nkafka: {volume_size_gib: 200}",
        "kafka",
    );
    let plan = plan(&live, &desired);
    assert_eq!(
        plan.grow,
        vec![ClaimGrowth {
            template: "data".to_owned(),
            storage_class: Some("fast".to_owned()),
            from: Quantity("100Gi".to_owned()),
            to: Quantity("200Gi".to_owned()),
        }]
    );
    assert!(plan.refused.is_empty());
    assert!(plan.is_needed());
    assert_eq!(
        plan.to_string(),
        "statefulset kafka: grow data-kafka-* from 100Gi to 200Gi\n"
    );
    // Other changes of the StatefulSet (pod template, replicas) are not
    // growth's business.
    let other = rendered(
        "storage: {storage_class: fast}\nkafka: {replicas: 5, heap_mib: 1024}",
        "kafka",
    );
    let plan = super::plan(&live, &other);
    assert!(plan.grow.is_empty() && plan.refused.is_empty(), "{plan}");
    assert!(!plan.is_needed());
}

#[test]
fn refusals_name_the_change_and_the_fix() {
    type Change = fn(&mut PersistentVolumeClaim);
    let base = rendered("storage: {storage_class: fast}", "elasticsearch");
    // (case, change to the desired template, text in the refusal)
    let cases: [(&str, Change, &str); 6] = [
        (
            "shrink",
            |c| set_size(c, "50Gi"),
            "shrinking from 100Gi to 50Gi is not possible; fix: volumes cannot shrink: keep the size at 100Gi or more",
        ),
        (
            "storage class",
            |c| c.spec.as_mut().unwrap().storage_class_name = Some("slow".to_owned()),
            "storageClassName Some(\"fast\") -> Some(\"slow\") changed; fix: a StatefulSet's volume claim templates cannot change",
        ),
        (
            "access modes",
            |c| c.spec.as_mut().unwrap().access_modes = Some(vec!["ReadWriteMany".to_owned()]),
            "accessModes",
        ),
        (
            "labels",
            |c| {
                c.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert("team".to_owned(), "x".to_owned());
            },
            "labels",
        ),
        (
            "renamed",
            |c| c.metadata.name = Some("disk".to_owned()),
            "the template is new",
        ),
        (
            "unreadable size",
            |c| set_size(c, "lots"),
            "size \"lots\" is not a quantity",
        ),
    ];
    for (case, change, text) in cases {
        let desired = with_claim(&base, change);
        let plan = plan(&base, &desired);
        assert!(!plan.refused.is_empty(), "{case}");
        assert!(!plan.is_needed(), "{case}");
        let shown = plan.to_string();
        assert!(shown.contains(text), "{case}: {text:?} not in {shown:?}");
    }
}

#[test]
fn server_defaults_are_not_changes() {
    let desired = rendered("storage: {storage_class: fast}", "zookeeper");
    // The API server fills in volumeMode and adds a status to templates.
    let live = with_claim(&desired, |c| {
        c.spec.as_mut().unwrap().volume_mode = None;
        c.status = Some(Default::default());
    });
    let plan = plan(&live, &desired);
    assert!(plan.refused.is_empty(), "{plan}");
    assert!(plan.grow.is_empty(), "{plan}");
}

#[test]
fn same_size_in_other_units_is_no_growth() {
    let live = with_claim(&rendered("", "zookeeper"), |c| set_size(c, "10Gi"));
    let desired = with_claim(&live, |c| set_size(c, "10240Mi"));
    let plan = plan(&live, &desired);
    assert!(plan.grow.is_empty() && plan.refused.is_empty(), "{plan}");
}

#[test]
fn reports_and_errors_say_what_happened() {
    let report = GrowthReport {
        statefulset: "kafka".to_owned(),
        patched: vec!["data-kafka-0".to_owned()],
        unchanged: vec!["data-kafka-1".to_owned()],
        statefulset_deleted: true,
    };
    assert_eq!(
        report.to_string(),
        "persistentvolumeclaim data-kafka-0: resized\n\
         persistentvolumeclaim data-kafka-1: already at size\n\
         statefulset kafka: deleted, pods orphaned (kept running); apply it again to adopt them\n"
    );
    let error = GrowthError::ExpansionNotAllowed {
        statefulset: "kafka".to_owned(),
        class: "fixed".to_owned(),
    };
    assert!(
        error
            .to_string()
            .contains("storageclass fixed does not allow volume expansion; fix: set allowVolumeExpansion: true"),
        "{error}"
    );
}
