//! Lines per second through the collector's parsing pipeline, on a seeded
//! corpus of CRI lines (see `corpus.rs`).
//!
//! `cargo bench -p kelp-collector --bench parse`

mod corpus;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kelp_collector::parse::event::{EventBuilder, Source};
use kelp_collector::parse::multiline::{self, Multiline, Rule};
use kelp_collector::parse::path::parse_path;
use kelp_collector::parse::reassemble::{Assembled, Reassembler};
use kelp_collector::parse::{DEFAULT_MAX_EVENT_BYTES, Format, Timestamp, cri, parse_line};

/// Corpus size: big enough to average over the mix, small enough for quick samples.
const LINES: usize = 20_000;
const SEED: u64 = 1;
const PATH: &str =
    "/var/log/pods/shop_web-7d4b9c-abcde_0b1c2d3e-1111-2222-3333-444455556666/app/0.log";

fn corpus() -> Vec<u8> {
    let mut bytes = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = corpus::write_lines(SEED, LINES, &mut bytes);
    bytes
}

/// Splits the corpus into lines with their offsets, as the tailer hands them on.
fn lines(corpus: &[u8]) -> impl Iterator<Item = (u64, &[u8])> {
    let mut offset = 0u64;
    corpus.split_inclusive(|&b| b == b'\n').map(move |line| {
        let at = offset;
        offset += line.len() as u64;
        (at, line)
    })
}

/// The whole pipeline: parse, reassemble, multiline, build, and encode
/// unless `encode` is false.
fn pipeline(corpus: &[u8], rule: Rule, encode: bool) -> usize {
    let source = Source {
        path: PATH.to_owned(),
        meta: parse_path(PATH),
        file_identity: 0xc0ffee,
        host: "node-1".to_owned(),
        format: Format::Cri,
    };
    let mut builder = EventBuilder::new(&source);
    let mut reassembler = Reassembler::new(DEFAULT_MAX_EVENT_BYTES);
    let mut multiline = Multiline::new(multiline::Config::new(rule));
    let mut emitted: Vec<Assembled> = Vec::new();
    let mut json = Vec::with_capacity(1024);
    let mut bytes = 0;
    for (offset, line) in lines(corpus) {
        let Ok(parsed) = parse_line(Format::Cri, line) else {
            continue;
        };
        if let Some(assembled) = reassembler.push(offset, parsed) {
            multiline.push(0, assembled, &mut emitted);
        }
        for assembled in emitted.drain(..) {
            let event = builder.build(assembled);
            if encode {
                event.write_json(&mut json);
                bytes += black_box(&json).len();
            } else {
                bytes += black_box(event).message.len();
            }
        }
    }
    multiline.flush(&mut emitted);
    bytes + emitted.len()
}

fn benches(c: &mut Criterion) {
    let corpus = corpus();
    let count = lines(&corpus).count() as u64;

    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(count));
    group.sample_size(20);
    group.bench_function("cri_lines", |b| {
        b.iter(|| {
            lines(&corpus)
                .filter_map(|(_, line)| cri::parse(line).ok())
                .map(|line| line.content.len())
                .sum::<usize>()
        });
    });
    group.bench_function("pipeline_to_event", |b| {
        b.iter(|| pipeline(&corpus, Rule::None, false));
    });
    group.bench_function("pipeline_to_json", |b| {
        b.iter(|| pipeline(&corpus, Rule::None, true));
    });
    group.bench_function("pipeline_to_json_java", |b| {
        b.iter(|| pipeline(&corpus, Rule::Java, true));
    });
    group.finish();

    let mut group = c.benchmark_group("timestamp");
    group.throughput(Throughput::Elements(1));
    group.bench_function("containerd_z", |b| {
        b.iter(|| Timestamp::parse(black_box(b"2026-11-27T20:17:29.12345Z")));
    });
    group.bench_function("crio_offset", |b| {
        b.iter(|| Timestamp::parse(black_box(b"2026-11-27T21:17:29.123456789+01:00")));
    });
    group.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
