//! A seeded generator of realistic CRI log lines, shared by the `parse`
//! benchmark and `examples/gen_corpus.rs`.
//!
//! The same seed gives the same bytes: the generator is PCG (`rand_pcg`,
//! whose output is fixed by its algorithm) and the corpus depends on nothing
//! else. Lines average about 172 bytes and mix containerd (`Z`, trimmed
//! fraction) and CRI-O (`+01:00`) timestamps, plain-text and JSON app logs,
//! about 2% partial (`P`) lines of split long lines, and Java stack traces.

use std::io::{self, Write};

use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use time::{OffsetDateTime, UtcOffset};

/// 2026-11-27T20:00:00Z in Unix nanoseconds: where the corpus's clock starts.
const START_NANOS: i128 = 1_795_809_600_000_000_000;

/// Writes `lines` CRI lines generated from `seed` to `out`.
pub(crate) fn write_lines(seed: u64, lines: usize, out: &mut impl Write) -> io::Result<()> {
    let mut generator = Generator {
        rng: Pcg64Mcg::seed_from_u64(seed),
        nanos: START_NANOS,
        content: String::with_capacity(2048),
    };
    let mut written = 0;
    while written < lines {
        written += generator.record(lines - written, out)?;
    }
    Ok(())
}

struct Generator {
    rng: Pcg64Mcg,
    nanos: i128,
    content: String,
}

impl Generator {
    /// Writes one record (a line, a split line or a stack trace) of at most
    /// `room` lines; returns how many lines it wrote.
    fn record(&mut self, room: usize, out: &mut impl Write) -> io::Result<usize> {
        let pick = self.rng.random_range(0..1000);
        if pick < 4 && room >= 30 {
            return self.stack_trace(out);
        }
        if pick < 12 && room >= 3 {
            return self.split_line(out);
        }
        self.content.clear();
        match pick {
            0..=379 => self.spring_line("INFO"),
            380..=479 => self.access_line(),
            480..=529 => self.klog_line(),
            530..=639 => self.go_line(),
            640..=759 => self.python_line(),
            760..=789 => self.spring_line("WARN"),
            _ => self.json_line(0),
        }
        let stream = if self.rng.random_bool(0.1) {
            "stderr"
        } else {
            "stdout"
        };
        self.write(out, stream, "F")?;
        Ok(1)
    }

    /// A long JSON line split by the runtime into two or three pieces.
    fn split_line(&mut self, out: &mut impl Write) -> io::Result<usize> {
        self.content.clear();
        let payload = self.rng.random_range(150..450);
        self.json_line(payload);
        let whole = std::mem::take(&mut self.content);
        let pieces = self.rng.random_range(2..=3);
        let step = whole.len() / pieces;
        for piece in 0..pieces {
            let end = if piece + 1 == pieces {
                whole.len()
            } else {
                (piece + 1) * step
            };
            self.content.clear();
            self.content.push_str(&whole[piece * step..end]);
            let tag = if piece + 1 == pieces { "F" } else { "P" };
            self.write(out, "stdout", tag)?;
        }
        self.content = whole;
        Ok(pieces)
    }

    /// A Spring Boot error with a Java stack trace, one CRI line per line.
    fn stack_trace(&mut self, out: &mut impl Write) -> io::Result<usize> {
        let mut lines = 0;
        self.content.clear();
        self.spring_line("ERROR");
        self.write(out, "stdout", "F")?;
        lines += 1;
        let causes = self.rng.random_range(1..=2);
        for cause in 0..causes {
            self.content.clear();
            let exception = EXCEPTIONS[self.rng.random_range(0..EXCEPTIONS.len())];
            let id = self.rng.random_range(1000..99999);
            if cause > 0 {
                self.content.push_str("Caused by: ");
            }
            self.content
                .push_str(&format!("{exception}: order {id} could not be processed"));
            self.write(out, "stdout", "F")?;
            lines += 1;
            for _ in 0..self.rng.random_range(6..12) {
                self.content.clear();
                let frame = FRAMES[self.rng.random_range(0..FRAMES.len())];
                let line = self.rng.random_range(20..900);
                self.content
                    .push_str(&format!("\tat {frame}:{line}) ~[shop.jar!/:1.4.2]"));
                self.write(out, "stdout", "F")?;
                lines += 1;
            }
            if cause > 0 {
                self.content.clear();
                let more = self.rng.random_range(5..40);
                self.content.push_str(&format!("\t... {more} more"));
                self.write(out, "stdout", "F")?;
                lines += 1;
            }
        }
        Ok(lines)
    }

    fn spring_line(&mut self, level: &str) {
        let thread = self.rng.random_range(1..=10);
        let class = CLASSES[self.rng.random_range(0..CLASSES.len())];
        let order = self.rng.random_range(10000..99999);
        let customer = self.rng.random_range(100..9999);
        let app_time = self.app_time();
        self.content.push_str(&format!(
            "{app_time} {level:>5} 1 --- [nio-8080-exec-{thread}] {class} : Created order {order} for customer {customer}"
        ));
    }

    fn access_line(&mut self) {
        let ip = (
            self.rng.random_range(0..255),
            self.rng.random_range(0..255),
            self.rng.random_range(1..255),
        );
        let path = PATHS[self.rng.random_range(0..PATHS.len())];
        let id = self.rng.random_range(1..99999);
        let status = [200, 200, 200, 201, 204, 304, 404, 500][self.rng.random_range(0..8)];
        let bytes = self.rng.random_range(0..40000);
        let seconds = self.rng.random_range(1..900);
        self.content.push_str(&format!(
            "10.{}.{}.{} - - [27/Nov/2026:20:17:29 +0000] \"GET {path}/{id} HTTP/1.1\" {status} {bytes} \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" 0.{seconds:03}",
            ip.0, ip.1, ip.2
        ));
    }

    fn klog_line(&mut self) {
        let file_line = self.rng.random_range(10..900);
        let name = self.rng.random_range(100000..999999);
        let micros = self.rng.random_range(1..9999);
        self.content.push_str(&format!(
            "I1127 20:17:29.120000       1 controller.go:{file_line}] \"Reconciled object\" controller=\"deployment\" namespace=\"shop\" name=\"web-{name:x}\" duration=\"{micros}µs\""
        ));
    }

    fn go_line(&mut self) {
        let path = PATHS[self.rng.random_range(0..PATHS.len())];
        let micros = self.rng.random_range(50..99999);
        self.content.push_str(&format!(
            "2026/11/27 20:17:29 server.go:142: GET {path} 200 in {micros}µs (remote=10.0.3.17:52044)"
        ));
    }

    fn python_line(&mut self) {
        let job = self.rng.random_range(1..999999);
        let millis = self.rng.random_range(1..5000);
        self.content.push_str(&format!(
            "INFO:app.worker:processed job {job} (queue=orders, attempt=1) in {millis}ms"
        ));
    }

    /// A structured log line; `payload` adds that many bytes of data.
    fn json_line(&mut self, payload: usize) {
        let level = ["info", "info", "info", "debug", "warn", "error"][self.rng.random_range(0..6)];
        let path = PATHS[self.rng.random_range(0..PATHS.len())];
        let id = self.rng.random_range(1..99999);
        let millis = self.rng.random_range(1..900);
        let trace: u128 = self.rng.random();
        self.content.push_str(&format!(
            "{{\"level\":\"{level}\",\"ts\":\"2026-11-27T20:17:29.120Z\",\"logger\":\"http\",\"msg\":\"request completed\",\"path\":\"{path}/{id}\",\"status\":200,\"duration_ms\":{millis},\"trace_id\":\"{trace:032x}\""
        ));
        if payload > 0 {
            self.content.push_str(",\"payload\":\"");
            for _ in 0..payload {
                let letter = self.rng.random_range(b'a'..=b'z');
                self.content.push(char::from(letter));
            }
            self.content.push('"');
        }
        self.content.push('}');
    }

    /// The application's own time stamp inside the message.
    fn app_time(&self) -> String {
        let millis = (self.nanos / 1_000_000) % 1000;
        format!("2026-11-27T20:17:29.{millis:03}Z")
    }

    /// Writes the current content as one CRI line and advances the clock.
    fn write(&mut self, out: &mut impl Write, stream: &str, tag: &str) -> io::Result<()> {
        self.nanos += i128::from(self.rng.random_range(0..2_000_000u32));
        let utc = OffsetDateTime::from_unix_timestamp_nanos(self.nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        if self.rng.random_bool(0.3) {
            // CRI-O: nine digits and the node's offset.
            let offset = UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC);
            let local = utc.to_offset(offset);
            write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}+01:00",
                local.year(),
                u8::from(local.month()),
                local.day(),
                local.hour(),
                local.minute(),
                local.second(),
                local.nanosecond()
            )?;
        } else {
            // containerd: Go's RFC3339Nano, trailing zeros trimmed.
            write!(
                out,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                utc.year(),
                u8::from(utc.month()),
                utc.day(),
                utc.hour(),
                utc.minute(),
                utc.second()
            )?;
            let fraction = format!("{:09}", utc.nanosecond());
            let fraction = fraction.trim_end_matches('0');
            if !fraction.is_empty() {
                write!(out, ".{fraction}")?;
            }
            out.write_all(b"Z")?;
        }
        writeln!(out, " {stream} {tag} {}", self.content)
    }
}

const CLASSES: &[&str] = &[
    "c.e.shop.web.OrderController",
    "c.e.s.service.PaymentService",
    "o.s.w.s.DispatcherServlet",
    "c.e.s.r.InventoryRepository",
];

const PATHS: &[&str] = &[
    "/api/v1/products",
    "/api/v1/orders",
    "/api/v2/customers/search",
    "/healthz",
];

const EXCEPTIONS: &[&str] = &[
    "java.lang.IllegalStateException",
    "org.springframework.dao.DataIntegrityViolationException",
    "java.net.SocketTimeoutException",
    "com.example.shop.PaymentDeclinedException",
];

const FRAMES: &[&str] = &[
    "com.example.shop.service.OrderService.placeOrder(OrderService.java",
    "com.example.shop.web.OrderController.create(OrderController.java",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java",
    "java.base/java.util.concurrent.ThreadPoolExecutor.runWorker(ThreadPoolExecutor.java",
    "org.springframework.transaction.interceptor.TransactionInterceptor.invoke(TransactionInterceptor.java",
];
