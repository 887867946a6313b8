//! Shared fixtures for the unit tests.

use std::collections::BTreeMap;

use kelp_record::{
    Container, ContainerName, Event, EventId, EventMeta, Flag, Host, KelpMeta, Kubernetes, Log,
    LogFile, Node, Owner, Pod, Stream,
};

/// A realistic event: a Deployment's pod with labels, on a CRI runtime.
pub(crate) fn event() -> Event {
    Event {
        timestamp: "2026-11-27T20:17:29.123456789Z".into(),
        message: "GET /api/v1/orders/17 200 12ms".into(),
        stream: Stream::Stdout,
        log: Log {
            file: LogFile {
                path: "/var/log/pods/shop_checkout-7d4b9c6f5-x2x9q_0f0e/checkout/0.log".into(),
            },
            offset: 4096,
            flags: vec![Flag::Partial],
            level: Some("info".into()),
        },
        kubernetes: Kubernetes {
            namespace: "shop".into(),
            pod: Pod {
                name: "checkout-7d4b9c6f5-x2x9q".into(),
                uid: "0f0e0d0c-0b0a-0908-0706-050403020100".into(),
            },
            container: ContainerName {
                name: "checkout".into(),
                image: Some("registry.example/shop/checkout:1.4.2".into()),
            },
            node: Some(Node {
                name: "node-1".into(),
            }),
            labels: BTreeMap::from([
                ("app".to_owned(), "checkout".to_owned()),
                ("app.kubernetes.io/name".to_owned(), "Checkout".to_owned()),
            ]),
            annotations: BTreeMap::new(),
            owner: Some(Owner {
                kind: "ReplicaSet".into(),
                name: "checkout-7d4b9c6f5".into(),
            }),
        },
        container: Container {
            id: Some("containerd://4f1c".into()),
            runtime: "cri".into(),
        },
        host: Host {
            name: "node-1".into(),
        },
        event: EventMeta {
            id: EventId::new(0x00c0_ffee_00c0_ffee, 4096),
            ingested: None,
        },
        kelp: KelpMeta::default(),
    }
}
