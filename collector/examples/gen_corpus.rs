//! Writes a benchmark corpus of CRI log lines to a file.
//!
//! `cargo run --release -p kelp-collector --example gen_corpus -- <lines> <file> [seed]`
//!
//! The same seed (default 1) always writes the same bytes.

#[path = "../benches/corpus.rs"]
mod corpus;

use std::fs::File;
use std::io::BufWriter;

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: gen_corpus <lines> <file> [seed]";
    let lines: usize = args.next().context(usage)?.parse().context(usage)?;
    let path = args.next().context(usage)?;
    let seed: u64 = match args.next() {
        Some(seed) => seed.parse().context(usage)?,
        None => 1,
    };
    let file = File::create(&path).with_context(|| format!("creating {path} failed"))?;
    let mut out = BufWriter::new(file);
    corpus::write_lines(seed, lines, &mut out)?;
    let file = out.into_inner()?;
    let bytes = file.metadata()?.len();
    println!(
        "{path}: {lines} lines, {bytes} bytes, {:.1} bytes per line (seed {seed})",
        bytes as f64 / lines.max(1) as f64
    );
    Ok(())
}
