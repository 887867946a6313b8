//! Shipper CPU per event: decode the Kafka record, render its index name and
//! append the bulk action and document, for realistic ~400-byte records.
//!
//! `cargo bench -p kelp-shipper --bench encode` (add `-- --quick` for a short run).
//! The budget is 3 µs per event for `decode+index_name+encode`; criterion
//! prints the time per batch of `EVENTS` and the events/s throughput.
//! `decode_full_event` is the baseline of decoding the whole `Event`.

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use kelp_record::{
    Container, ContainerName, Event, EventId, EventMeta, Flag, Host, KelpMeta, Kubernetes, Log,
    LogFile, Node, Owner, Pod, Stream,
};
use kelp_shipper::bulk::{BatchLimits, BulkBatch, Ingested, RecordView};
use kelp_shipper::index_name::IndexTemplate;
use kelp_shipper::source::{SourcePos, TopicId, TopicPartition};

const EVENTS: usize = 1024;

const MESSAGES: &[&str] = &[
    "GET /api/v1/orders/17 200 12ms",
    "level=info msg=\"reconciled\" name=checkout duration=3.2ms",
    "WARN c.e.CheckoutService - retrying payment call (attempt 2/5)",
    "{\"level\":\"error\",\"msg\":\"upstream timed out\",\"elapsed_ms\":5003}",
    "ok",
];

const NAMESPACES: &[&str] = &["shop", "payments", "kube-system", "monitoring", "default"];

/// Deterministic, varied records around 400 bytes.
fn records() -> Vec<Vec<u8>> {
    (0..EVENTS)
        .map(|i| {
            let ns = NAMESPACES[i % NAMESPACES.len()];
            let app = format!("app-{}", i % 7);
            let pod = format!("{app}-7d4b9c6f5-{:05x}", i % 97);
            let mut labels = BTreeMap::new();
            if i % 3 != 0 {
                labels.insert("app".to_owned(), app.clone());
            }
            if i % 3 == 2 {
                labels.insert("pod-template-hash".to_owned(), "7d4b9c6f5".to_owned());
            }
            let event = Event {
                timestamp: format!(
                    "2026-11-27T20:{:02}:{:02}.{:09}Z",
                    i % 60,
                    (i * 7) % 60,
                    i * 1_000_003 % 1_000_000_000
                ),
                message: MESSAGES[i % MESSAGES.len()].to_owned(),
                stream: if i % 4 == 0 {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                log: Log {
                    file: LogFile {
                        path: format!("/var/log/pods/{ns}_{pod}_0f0e0d0c-0b0a/{app}/0.log"),
                    },
                    offset: (i as u64) * 211,
                    flags: if i % 10 == 0 {
                        vec![Flag::Partial]
                    } else {
                        vec![]
                    },
                    level: None,
                },
                kubernetes: Kubernetes {
                    namespace: ns.to_owned(),
                    pod: Pod {
                        name: pod.clone(),
                        uid: "0f0e0d0c-0b0a-0908-0706-050403020100".to_owned(),
                    },
                    container: ContainerName {
                        name: app.clone(),
                        image: None,
                    },
                    node: Some(Node {
                        name: format!("node-{}", i % 3),
                    }),
                    labels,
                    annotations: BTreeMap::new(),
                    owner: (i % 4 == 0).then(|| Owner {
                        kind: "ReplicaSet".to_owned(),
                        name: format!("{app}-7d4b9c6f5"),
                    }),
                },
                container: Container {
                    id: None,
                    runtime: "cri".to_owned(),
                },
                host: Host {
                    name: format!("node-{}", i % 3),
                },
                event: EventMeta {
                    id: EventId::new(0x3f2a_9c0d_1e4b_5a67 ^ (i as u64 % 13), (i as u64) * 211),
                    ingested: None,
                },
                kelp: KelpMeta::default(),
            };
            event.to_json()
        })
        .collect()
}

/// This thread's CPU time (user + system) in clock ticks, from
/// `/proc/thread-self/stat`: unlike wall time, it does not grow when other
/// processes share the cores. `None` off Linux.
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// CPU time per event of the whole path over `rounds` passes, in µs,
/// assuming the usual 100 ticks per second.
fn cpu_us_per_event(
    records: &[Vec<u8>],
    template: &IndexTemplate,
    ingested: &Ingested,
    rounds: usize,
) -> Option<f64> {
    let tp = TopicPartition::new(TopicId(0), 0);
    let before = thread_cpu_ticks()?;
    for _ in 0..rounds {
        let mut batch = BulkBatch::new(limits());
        for (i, r) in records.iter().enumerate() {
            batch
                .push_record(SourcePos::new(tp, i as i64), r, template, ingested)
                .expect("fits");
        }
        black_box(batch.body());
    }
    let ticks = thread_cpu_ticks()? - before;
    Some(ticks as f64 * 10_000.0 / (rounds * records.len()) as f64)
}

/// The first version's path, for comparison: decode the whole `Event`, set
/// `event.ingested`, render the index name and re-serialize.
fn baseline_cpu_us_per_event(
    records: &[Vec<u8>],
    template: &IndexTemplate,
    ingested: &Ingested,
    rounds: usize,
) -> Option<f64> {
    use std::io::Write as _;
    let before = thread_cpu_ticks()?;
    let mut name = String::new();
    for _ in 0..rounds {
        let mut body: Vec<u8> = Vec::new();
        for r in records {
            let mut event = Event::from_json(r).expect("valid record");
            template.render_into(&event, &mut name).expect("renders");
            event.event.ingested = Some(ingested.as_str().to_owned());
            write!(
                body,
                r#"{{"index":{{"_index":"{name}","_id":"{}"}}}}"#,
                event.event.id
            )
            .expect("vec");
            body.push(b'\n');
            serde_json::to_writer(&mut body, &event).expect("vec");
            body.push(b'\n');
        }
        black_box(&body);
    }
    let ticks = thread_cpu_ticks()? - before;
    Some(ticks as f64 * 10_000.0 / (rounds * records.len()) as f64)
}

fn limits() -> BatchLimits {
    BatchLimits {
        max_bytes: 64 << 20,
        max_events: usize::MAX,
    }
}

fn bench(c: &mut Criterion) {
    let records = records();
    let bytes: usize = records.iter().map(Vec::len).sum();
    println!(
        "{EVENTS} records, {} bytes on average",
        bytes / records.len()
    );
    let template = IndexTemplate::default();
    let ingested = Ingested::from_unix_millis(1_795_810_650_000);
    let tp = TopicPartition::new(TopicId(0), 0);
    if let Some(us) = baseline_cpu_us_per_event(&records, &template, &ingested, 400) {
        println!(
            "baseline full decode+re-encode: {us:.2} µs CPU per event (thread CPU time, {} events)",
            400 * EVENTS
        );
    }
    if let Some(us) = cpu_us_per_event(&records, &template, &ingested, 400) {
        println!(
            "decode+index_name+encode: {us:.2} µs CPU per event (thread CPU time, {} events)",
            400 * EVENTS
        );
    }

    let mut group = c.benchmark_group("encode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    // Baseline: the full record decode the first version used.
    group.bench_function("decode_full_event", |b| {
        b.iter(|| {
            for r in &records {
                black_box(Event::from_json(black_box(r)).expect("valid record"));
            }
        })
    });
    group.bench_function("decode_view", |b| {
        b.iter(|| {
            for r in &records {
                black_box(RecordView::parse(black_box(r)).expect("valid record"));
            }
        })
    });
    let events: Vec<Event> = records
        .iter()
        .map(|r| Event::from_json(r).expect("valid record"))
        .collect();
    group.bench_function("index_name", |b| {
        let mut name = String::new();
        b.iter(|| {
            for e in &events {
                template.render_into(e, &mut name).expect("renders");
                black_box(&name);
            }
        })
    });
    group.bench_function("decode+index_name+encode", |b| {
        b.iter_batched_ref(
            || BulkBatch::new(limits()),
            |batch| {
                for (i, r) in records.iter().enumerate() {
                    batch
                        .push_record(SourcePos::new(tp, i as i64), r, &template, &ingested)
                        .expect("fits");
                }
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
