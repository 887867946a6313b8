//! The operations endpoint: `/metrics` (Prometheus, OpenMetrics text),
//! `/healthz` (the pipeline loop is making rounds) and `/readyz` (sink
//! reachable, checkpoints loaded). Plain hyper, as the shipper's: three
//! fixed routes do not need a framework.
//!
//! The pipeline is a synchronous loop on the main thread, so the server runs
//! on a small single-threaded tokio runtime in a thread of its own and reads
//! the shared [`Metrics`] and [`Health`]; it never touches pipeline state.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::health::Health;
use crate::internal_events::{KafkaBrokersUp, Metrics};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; charset=utf-8";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The address is taken or not local.
    #[error("listening on metrics.listen {address} failed: {source}")]
    Bind {
        /// `metrics.listen`.
        address: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The runtime or its thread could not start.
    #[error("starting the metrics server thread failed: {0}")]
    Start(std::io::Error),
}

/// The running server; dropping it stops the server and joins its thread.
#[derive(Debug)]
pub struct Server {
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `address` (on the caller's thread, so a taken port is an error
    /// here) and serves from a new thread.
    ///
    /// # Errors
    /// When the address cannot be bound or the thread cannot start.
    pub fn start(
        address: SocketAddr,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> Result<Server, ServerError> {
        let bind = |source| ServerError::Bind { address, source };
        let listener = std::net::TcpListener::bind(address).map_err(bind)?;
        listener.set_nonblocking(true).map_err(bind)?;
        let local = listener.local_addr().map_err(bind)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ServerError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("kelp-metrics".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => serve(listener, metrics, health, stopped).await,
                        Err(error) => {
                            tracing::error!(%error, "serving metrics failed: the listener is unusable");
                        }
                    }
                });
            })
            .map_err(ServerError::Start)?;
        Ok(Server {
            address: local,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// The address served (with the port chosen when `:0` was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already: nothing to stop then.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    mut stop: oneshot::Receiver<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "accepting a metrics connection failed");
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        let health = Arc::clone(&health);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let response = route(&request, &metrics, &health);
                async move { Ok::<_, Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics connection ended with an error");
            }
        });
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn route(request: &Request<Incoming>, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    if request.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "use GET\n".into());
    }
    respond(request.uri().path(), metrics, health)
}

/// The response for a path, apart from HTTP (unit-tested).
fn respond(path: &str, metrics: &Metrics, health: &Health) -> Response<Full<Bytes>> {
    match path {
        "/metrics" => {
            if let Some(brokers) = health.sink().and_then(|sink| sink.brokers_up()) {
                KafkaBrokersUp { brokers }.emit(metrics);
            }
            reply(StatusCode::OK, OPENMETRICS, metrics.encode())
        }
        "/healthz" => match health.live() {
            Ok(()) => reply(StatusCode::OK, TEXT, "ok\n".into()),
            Err(why) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("not live: {why}\n"),
            ),
        },
        "/readyz" => match health.ready() {
            Ok(()) => reply(StatusCode::OK, TEXT, "ready\n".into()),
            Err(missing) => reply(
                StatusCode::SERVICE_UNAVAILABLE,
                TEXT,
                format!("not ready: {missing}\n"),
            ),
        },
        _ => reply(
            StatusCode::NOT_FOUND,
            TEXT,
            "not found: try /metrics, /healthz or /readyz\n".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::time::Duration;

    use super::*;
    use crate::sink::SinkStatus;

    fn get(address: SocketAddr, path: &str) -> (u16, String) {
        let mut stream = std::net::TcpStream::connect(address).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    #[test]
    fn serves_the_three_routes_over_http_and_stops_on_drop() {
        let metrics = Arc::new(Metrics::new());
        let health = Arc::new(Health::new(Duration::from_secs(30)));
        let server = Server::start(
            "127.0.0.1:0".parse().unwrap(),
            Arc::clone(&metrics),
            Arc::clone(&health),
        )
        .unwrap();
        let address = server.local_addr();
        assert_ne!(address.port(), 0);

        let (status, body) = get(address, "/metrics");
        assert_eq!(status, 200);
        assert!(body.contains("kelp_collector_lines_read_total 0"), "{body}");
        assert!(body.contains("# EOF"), "{body}");
        assert_eq!(get(address, "/healthz"), (200, "ok\n".to_owned()));
        let (status, body) = get(address, "/readyz");
        assert_eq!(status, 503);
        assert!(body.contains("checkpoints not loaded"), "{body}");

        health.set_checkpoints_loaded();
        let status = SinkStatus::kafka();
        health.set_sink(status.clone());
        assert_eq!(get(address, "/readyz").0, 503);
        status.set_brokers_up(1);
        assert_eq!(get(address, "/readyz"), (200, "ready\n".to_owned()));
        let (_, body) = get(address, "/metrics");
        assert!(body.contains("kelp_collector_kafka_brokers_up 1"), "{body}");
        assert_eq!(get(address, "/nope").0, 404);

        health.set_liveness_timeout(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let (status, body) = get(address, "/healthz");
        assert_eq!(status, 503);
        assert!(body.contains("pipeline loop silent"), "{body}");

        drop(server);
        assert!(std::net::TcpStream::connect(address).is_err());
    }

    #[test]
    fn a_taken_port_is_an_error_naming_the_field() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = taken.local_addr().unwrap();
        let error = Server::start(
            address,
            Arc::new(Metrics::new()),
            Arc::new(Health::new(Duration::from_secs(1))),
        )
        .unwrap_err();
        assert!(
            error.to_string().starts_with("listening on metrics.listen"),
            "{error}"
        );
    }
}
