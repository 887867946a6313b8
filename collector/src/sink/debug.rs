//! Debug sinks: every event as one JSON line on stdout or in a file.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use super::{DeliveryFailure, Outgoing, Receipt, Refused, Sink};

/// Writes each event as a line to a writer; acknowledges after the flush.
#[derive(Debug)]
struct LineSink<W: Write> {
    out: BufWriter<W>,
    /// Tokens written but not yet flushed, and so not yet acknowledged.
    unflushed: Vec<u64>,
    ready: VecDeque<Receipt>,
}

impl<W: Write + Send> LineSink<W> {
    fn new(out: W) -> Self {
        LineSink {
            out: BufWriter::new(out),
            unflushed: Vec::new(),
            ready: VecDeque::new(),
        }
    }

    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused> {
        let written = self
            .out
            .write_all(out.payload)
            .and_then(|()| self.out.write_all(b"\n"));
        match written {
            Ok(()) => {
                self.unflushed.push(out.token);
                Ok(())
            }
            Err(error) => Err(Refused::Rejected(write_failure(&error))),
        }
    }

    fn receipts(&mut self, into: &mut Vec<Receipt>) {
        if !self.unflushed.is_empty() {
            // Acknowledge only what reached the OS: a crash before the flush
            // must not move the checkpoint over unwritten events.
            let result = self.out.flush().map_err(|error| write_failure(&error));
            for token in self.unflushed.drain(..) {
                self.ready.push_back(Receipt {
                    token,
                    result: result.clone(),
                });
            }
        }
        into.extend(self.ready.drain(..));
    }
}

fn write_failure(error: &io::Error) -> DeliveryFailure {
    DeliveryFailure {
        reason: "write_failed",
        detail: error.to_string(),
        payload: None,
    }
}

/// Prints every event as an NDJSON line on stdout.
#[derive(Debug)]
pub struct StdoutSink(LineSink<io::Stdout>);

impl StdoutSink {
    /// A sink on this process's stdout.
    pub fn new() -> Self {
        StdoutSink(LineSink::new(io::stdout()))
    }
}

impl Default for StdoutSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Sink for StdoutSink {
    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused> {
        self.0.offer(out)
    }

    fn receipts(&mut self, into: &mut Vec<Receipt>, _wait: Duration) {
        self.0.receipts(into);
    }

    fn in_flight(&self) -> usize {
        self.0.unflushed.len() + self.0.ready.len()
    }
}

/// Appends every event as an NDJSON line to a file.
#[derive(Debug)]
pub struct FileSink(LineSink<File>);

impl FileSink {
    /// Opens (creating if needed) `path` for appending.
    ///
    /// # Errors
    /// When the file cannot be opened.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(FileSink(LineSink::new(file)))
    }
}

impl Sink for FileSink {
    fn offer(&mut self, out: Outgoing<'_>) -> Result<(), Refused> {
        self.0.offer(out)
    }

    fn receipts(&mut self, into: &mut Vec<Receipt>, _wait: Duration) {
        self.0.receipts(into);
        // Durable like Kafka's acks=all: fsync before acknowledging.
        if let Err(error) = self.0.out.get_ref().sync_data() {
            for receipt in into.iter_mut() {
                receipt.result = Err(write_failure(&error));
            }
        }
    }

    fn in_flight(&self) -> usize {
        self.0.unflushed.len() + self.0.ready.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_sink_acknowledges_after_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.ndjson");
        let mut sink = FileSink::open(&path).unwrap();
        for (token, payload) in [(7, &b"{\"a\":1}"[..]), (8, b"{\"b\":2}")] {
            sink.offer(Outgoing {
                token,
                topic: "t",
                key: b"",
                payload,
            })
            .unwrap();
        }
        assert_eq!(sink.in_flight(), 2);
        let mut receipts = Vec::new();
        sink.receipts(&mut receipts, Duration::ZERO);
        let tokens: Vec<u64> = receipts.iter().map(|r| r.token).collect();
        assert_eq!(tokens, [7, 8]);
        assert!(receipts.iter().all(|r| r.result.is_ok()));
        assert_eq!(sink.in_flight(), 0);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "{\"a\":1}\n{\"b\":2}\n"
        );
    }
}
