//! Load generator for `bench/shipper-delay`: produces kelp records (built with
//! `kelp_record::Event`, `@timestamp` = the wall clock when the record is
//! built) into a Kafka topic at a fixed rate, the way kelp-collector does
//! (lz4, acks=all, idempotence, keyed by file), and optionally measures how
//! long it takes until sampled events are *searchable* in the search engine.
//!
//! ```text
//! cargo run --release -p kelp-shipper --example produce_load -- \
//!     --brokers 127.0.0.1:9092 --topic kelp-bench --rate 5000 --seconds 60 \
//!     --probe-url http://127.0.0.1:9200 --probe-every 50
//! ```
//!
//! Pacing: event `i` is due at `start + i / rate`; the generator sleeps until
//! the next 1 ms tick and then produces every event due by then, so the rate
//! holds over any window longer than a few milliseconds and a stall is caught
//! up (and reported as `max_behind_ms`) instead of silently lowering the rate.
//!
//! Probe: every `--probe-every`-th event is remembered with its `@timestamp`.
//! A task searches for the oldest `--probe-batch` remembered ids (an `ids`
//! query, which like every search sees only refreshed documents) every
//! `--probe-interval-ms`; an id's delay is the send time of the first search
//! that found it minus its `@timestamp`. The resolution is the probe interval
//! plus one search. When the shipper falls far behind, a probe beyond the
//! oldest `--probe-batch` is only asked for later, so long delays are upper
//! bounds (short ones, the ones that matter for a goal, are exact).
//!
//! Output: `key=value` lines on stdout, for the bench script.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Parser;
use kelp_record::{
    Container, ContainerName, Event, EventId, EventMeta, Host, KelpMeta, Kubernetes, Log, LogFile,
    Node, Pod, Stream,
};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

#[derive(Debug, Parser)]
#[command(about = "Produce kelp records at a fixed rate and probe when they become searchable")]
struct Args {
    /// Kafka bootstrap servers.
    #[arg(long)]
    brokers: String,
    /// Topic to produce to.
    #[arg(long)]
    topic: String,
    /// Events per second.
    #[arg(long, default_value_t = 5000)]
    rate: u64,
    /// How long to produce, seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// `kubernetes.namespace` of every event (the index name carries it).
    #[arg(long, default_value = "bench")]
    namespace: String,
    /// Simulated log files (pods); each is one Kafka key.
    #[arg(long, default_value_t = 24)]
    files: u64,
    /// Search engine base URL; without it nothing is probed.
    #[arg(long)]
    probe_url: Option<String>,
    /// Index pattern to search for probes.
    #[arg(long, default_value = "kelp-logs-*")]
    probe_index: String,
    /// Remember every Nth event as a probe.
    #[arg(long, default_value_t = 100)]
    probe_every: u64,
    /// Most pending probes (the oldest) asked for in one search: bounds the
    /// probe's own cost when the shipper falls behind.
    #[arg(long, default_value_t = 300)]
    probe_batch: usize,
    /// How often to search for pending probes, ms.
    #[arg(long, default_value_t = 100)]
    probe_interval_ms: u64,
    /// After producing, how long to wait for the last probes, seconds.
    #[arg(long, default_value_t = 60)]
    probe_timeout: u64,
}

#[derive(Debug, Default)]
struct Deliveries {
    ok: AtomicU64,
    failed: AtomicU64,
}

#[derive(Debug, Clone)]
struct Ctx(Arc<Deliveries>);

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _opaque: ()) {
        match result {
            Ok(_) => self.0.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.0.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// A probe waiting to become searchable: id and `@timestamp` (unix ns).
type Pending = Arc<Mutex<Vec<(String, i128)>>>;

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// RFC 3339 UTC with nanoseconds, as the collector writes `@timestamp`.
fn rfc3339_nanos(nanos: i128) -> String {
    let secs = nanos.div_euclid(1_000_000_000) as i64;
    let frac = nanos.rem_euclid(1_000_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// A simulated container log file: where its events come from.
#[derive(Debug)]
struct File {
    key: String,
    fingerprint: u64,
    offset: u64,
    pod: String,
    uid: String,
    path: String,
}

const LEVELS: [&str; 4] = ["INFO ", "INFO ", "WARN ", "ERROR"];
const PATHS: [&str; 5] = [
    "/api/v1/cart/items",
    "/api/v1/checkout",
    "/healthz",
    "/api/v2/search?q=shoes&page=2",
    "/static/app.8f3a1c.js",
];

fn message(i: u64, now: &str) -> String {
    let x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let level = LEVELS[(x >> 60) as usize % LEVELS.len()];
    let path = PATHS[(x >> 50) as usize % PATHS.len()];
    if x.is_multiple_of(5) {
        format!(
            "{{\"ts\":\"{now}\",\"level\":\"{}\",\"msg\":\"request served\",\"path\":\"{path}\",\"status\":200,\"duration_ms\":{},\"trace_id\":\"{x:016x}\"}}",
            level.trim_end().to_lowercase(),
            x % 997
        )
    } else {
        format!(
            "{} {level} [http-nio-8080-exec-{}] c.e.shop.web.RequestLogger : {path} handled in {} ms for user {} (request {i})",
            &now[..23],
            x % 16,
            x % 997,
            x % 100_000
        )
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.rate > 0 && args.probe_every > 0,
        "rate and probe-every must be > 0"
    );
    let deliveries = Arc::new(Deliveries::default());
    let producer: ThreadedProducer<Ctx> = ThreadedProducer::from_config_and_context(
        ClientConfig::new()
            .set("bootstrap.servers", &args.brokers)
            .set("compression.type", "lz4")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "20")
            .set("queue.buffering.max.messages", "1000000"),
        Ctx(Arc::clone(&deliveries)),
    )
    .context("creating the kafka producer failed")?;

    let mut files: Vec<File> = (0..args.files.max(1))
        .map(|n| {
            let fingerprint = 0x6b65_6c70_0000_0000 | n;
            let pod = format!("loadgen-{n}");
            let uid = format!("00000000-0000-4000-8000-{n:012x}");
            File {
                key: format!("{fingerprint:016x}"),
                fingerprint,
                offset: 0,
                path: format!("/var/log/pods/{}_{pod}_{uid}/app/0.log", args.namespace),
                pod,
                uid,
            }
        })
        .collect();

    let pending: Pending = Arc::new(Mutex::new(Vec::new()));
    let producing = Arc::new(AtomicBool::new(true));
    let prober = args.probe_url.clone().map(|url| {
        let pending = Arc::clone(&pending);
        let producing = Arc::clone(&producing);
        let index = args.probe_index.clone();
        let interval = Duration::from_millis(args.probe_interval_ms.max(10));
        let most = args.probe_batch.max(1);
        let timeout = Duration::from_secs(args.probe_timeout);
        std::thread::spawn(move || {
            probe(&url, &index, &pending, &producing, interval, most, timeout)
        })
    });

    let total = args.rate * args.seconds;
    let per_tick = (args.rate / 1000).max(1);
    let start = Instant::now();
    let start_unix_ms = unix_nanos(SystemTime::now()) / 1_000_000;
    let mut sent: u64 = 0;
    let mut max_behind = Duration::ZERO;
    let mut queue_full: u64 = 0;
    let mut buf = Vec::with_capacity(1024);
    while sent < total {
        // Everything due by now, at most one tick's worth ahead.
        let due = ((start.elapsed().as_nanos() * u128::from(args.rate)) / 1_000_000_000) as u64;
        let due = due.min(total);
        if due > sent {
            let behind = start.elapsed().saturating_sub(Duration::from_nanos(
                sent.saturating_mul(1_000_000_000) / args.rate,
            ));
            max_behind = max_behind.max(behind);
        }
        while sent < due {
            let file_n = (sent.wrapping_mul(7919) % files.len() as u64) as usize;
            let file = &mut files[file_n];
            let now = unix_nanos(SystemTime::now());
            let ts = rfc3339_nanos(now);
            let event = Event {
                message: message(sent, &ts),
                timestamp: ts,
                stream: if sent.is_multiple_of(9) {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                log: Log {
                    file: LogFile {
                        path: file.path.clone(),
                    },
                    offset: file.offset,
                    flags: Vec::new(),
                    level: None,
                },
                kubernetes: Kubernetes {
                    namespace: args.namespace.clone(),
                    pod: Pod {
                        name: file.pod.clone(),
                        uid: file.uid.clone(),
                    },
                    container: ContainerName {
                        name: "app".to_owned(),
                        image: None,
                    },
                    node: Some(Node {
                        name: "bench-node".to_owned(),
                    }),
                    ..Kubernetes::default()
                },
                container: Container {
                    id: None,
                    runtime: "cri".to_owned(),
                },
                host: Host {
                    name: "bench-node".to_owned(),
                },
                event: EventMeta {
                    id: EventId::new(file.fingerprint, file.offset),
                    ingested: None,
                },
                kelp: KelpMeta::default(),
            };
            // The CRI line this event would have come from: 36 bytes of prefix.
            file.offset += event.message.len() as u64 + 36;
            event.write_json(&mut buf);
            loop {
                let record = BaseRecord::to(&args.topic).key(&file.key).payload(&buf);
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                        queue_full += 1;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err((e, _)) => return Err(e).context("producing failed"),
                }
            }
            if sent.is_multiple_of(args.probe_every) && args.probe_url.is_some() {
                let id = event.event.id.to_string();
                if let Ok(mut p) = pending.lock() {
                    p.push((id, now));
                }
            }
            sent += 1;
        }
        // Sleep to the next tick: the time event `sent + per_tick - 1` is due.
        let next =
            Duration::from_nanos((sent + per_tick).saturating_mul(1_000_000_000) / args.rate);
        if let Some(wait) = next.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let produce_secs = start.elapsed().as_secs_f64();
    let end_unix_ms = unix_nanos(SystemTime::now()) / 1_000_000;
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the producer failed")?;
    let flushed_secs = start.elapsed().as_secs_f64();
    producing.store(false, Ordering::Relaxed);
    println!("produced={sent}");
    println!("produce_start_unix_ms={start_unix_ms}");
    println!("produce_end_unix_ms={end_unix_ms}");
    println!("produce_seconds={produce_secs:.3}");
    println!("achieved_rate={:.1}", sent as f64 / produce_secs);
    println!("flushed_seconds={flushed_secs:.3}");
    println!("max_behind_ms={:.1}", max_behind.as_secs_f64() * 1000.0);
    println!("queue_full_waits={queue_full}");
    println!("delivered={}", deliveries.ok.load(Ordering::Relaxed));
    println!(
        "delivery_failed={}",
        deliveries.failed.load(Ordering::Relaxed)
    );
    if let Some(prober) = prober {
        match prober.join() {
            Ok(Ok(report)) => print!("{report}"),
            Ok(Err(e)) => println!("probe_error={e:#}"),
            Err(_) => println!("probe_error=panicked"),
        }
    }
    Ok(())
}

/// Searches for pending probes until producing has ended and every probe was
/// found (or `timeout` after producing ended). Returns the report lines.
fn probe(
    url: &str,
    index: &str,
    pending: &Pending,
    producing: &AtomicBool,
    interval: Duration,
    most: usize,
    timeout: Duration,
) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let client = reqwest::Client::new();
    let search = format!("{}/{index}/_search", url.trim_end_matches('/'));
    let mut delays_ms: Vec<f64> = Vec::new();
    let mut errors: u64 = 0;
    let mut done_since: Option<Instant> = None;
    loop {
        let tick = Instant::now();
        let batch: Vec<(String, i128)> = match pending.lock() {
            Ok(p) => p.iter().take(most).cloned().collect(),
            Err(_) => Vec::new(),
        };
        if !producing.load(Ordering::Relaxed) {
            let since = *done_since.get_or_insert_with(Instant::now);
            if batch.is_empty() || since.elapsed() > timeout {
                break;
            }
        }
        if !batch.is_empty() {
            let body = serde_json::json!({
                "size": batch.len(),
                "_source": false,
                "query": {"ids": {"values": batch.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>()}},
            });
            let sent_at = unix_nanos(SystemTime::now());
            let answer = runtime.block_on(async {
                client
                    .post(&search)
                    .header("content-type", "application/json")
                    .body(body.to_string())
                    .send()
                    .await?
                    .error_for_status()?
                    .text()
                    .await
            });
            match answer
                .map_err(anyhow::Error::from)
                .and_then(|text| Ok(serde_json::from_str::<serde_json::Value>(&text)?))
            {
                Ok(json) => {
                    let found: std::collections::HashSet<&str> = json["hits"]["hits"]
                        .as_array()
                        .map(|hits| hits.iter().filter_map(|h| h["_id"].as_str()).collect())
                        .unwrap_or_default();
                    if !found.is_empty()
                        && let Ok(mut p) = pending.lock()
                    {
                        p.retain(|(id, ts)| {
                            if found.contains(id.as_str()) {
                                delays_ms.push((sent_at - ts) as f64 / 1e6);
                                false
                            } else {
                                true
                            }
                        });
                    }
                }
                // Index not created yet, or a hiccup: try again next tick.
                Err(_) => errors += 1,
            }
        }
        if let Some(wait) = interval.checked_sub(tick.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    let missing = pending.lock().map(|p| p.len()).unwrap_or(0);
    delays_ms.sort_by(f64::total_cmp);
    let q = |p: f64| -> f64 {
        if delays_ms.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * delays_ms.len() as f64).ceil() as usize).clamp(1, delays_ms.len());
        delays_ms[rank - 1]
    };
    Ok(format!(
        "probes_found={}\nprobes_missing={missing}\nprobe_errors={errors}\nsearchable_p50_ms={:.0}\nsearchable_p90_ms={:.0}\nsearchable_p99_ms={:.0}\nsearchable_max_ms={:.0}\n",
        delays_ms.len(),
        q(0.50),
        q(0.90),
        q(0.99),
        delays_ms.last().copied().unwrap_or(f64::NAN),
    ))
}

#[cfg(test)]
mod tests {
    use super::rfc3339_nanos;

    #[test]
    fn formats_like_the_collector() {
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(1_795_810_649_123_456_789),
            "2026-11-27T20:17:29.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }
}
