//! A port-forward to one pod, so the gates can reach pods of a real cluster
//! from the admin's machine: [`forward`] listens on `127.0.0.1:<random>`
//! and carries each accepted connection to the pod's port through the API
//! server (`pods/portforward`, the same path as `kubectl port-forward`).
//!
//! The API server hands the stream to the pod's kubelet, so a cluster of
//! fake (kwok) nodes cannot be forwarded to: the connection is accepted
//! locally and then closed.

use std::net::SocketAddr;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use super::error_chain;

/// Why a forward could not start.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The pod could not be read (missing, or no permission).
    #[error("looking up pod {namespace}/{pod} for a port-forward failed: {message}")]
    Pod {
        /// The pod's namespace.
        namespace: String,
        /// The pod.
        pod: String,
        /// The API server's answer.
        message: String,
    },
    /// The local listener could not be bound.
    #[error("listening on 127.0.0.1 for a port-forward failed: {0}")]
    Listen(#[source] std::io::Error),
}

/// A running port-forward; dropping it stops the listener and every
/// forwarded connection.
#[derive(Debug)]
pub struct Forward {
    local_addr: SocketAddr,
    pod: String,
    port: u16,
    task: JoinHandle<()>,
}

impl Forward {
    /// The local address that reaches the pod's port, e.g. `127.0.0.1:40123`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `<pod>:<port>`, for messages.
    pub fn target(&self) -> String {
        format!("{}:{}", self.pod, self.port)
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        // Dropping the accept loop drops its JoinSet, which aborts every
        // connection task with it.
        self.task.abort();
    }
}

/// Forwards `127.0.0.1:<random>` to `port` of `pod` in `namespace`. The pod
/// is looked up first so a wrong name fails here, not on every connection.
pub async fn forward(
    client: kube::Client,
    namespace: &str,
    pod: &str,
    port: u16,
) -> Result<Forward, ForwardError> {
    let pods: Api<Pod> = Api::namespaced(client, namespace);
    pods.get(pod).await.map_err(|e| ForwardError::Pod {
        namespace: namespace.to_owned(),
        pod: pod.to_owned(),
        message: error_chain(&e),
    })?;
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(ForwardError::Listen)?;
    let local_addr = listener.local_addr().map_err(ForwardError::Listen)?;
    let name = pod.to_owned();
    let task = tokio::spawn(accept_loop(listener, pods, name, port));
    tracing::debug!(%local_addr, pod, port, "port-forward listening");
    Ok(Forward {
        local_addr,
        pod: pod.to_owned(),
        port,
        task,
    })
}

async fn accept_loop(listener: TcpListener, pods: Api<Pod>, pod: String, port: u16) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(carry(stream, pods.clone(), pod.clone(), port));
                }
                Err(e) => {
                    tracing::warn!(pod, port, "accepting a port-forward connection failed: {e}");
                    // E.g. out of file descriptors: do not spin.
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Carries one local connection to the pod and back.
async fn carry(mut local: TcpStream, pods: Api<Pod>, pod: String, port: u16) {
    let mut forwarder = match pods.portforward(&pod, &[port]).await {
        Ok(forwarder) => forwarder,
        Err(e) => {
            tracing::warn!(
                pod,
                port,
                "opening the port-forward failed: {}",
                error_chain(&e)
            );
            return;
        }
    };
    let Some(mut remote) = forwarder.take_stream(port) else {
        tracing::warn!(pod, port, "the port-forward has no stream for the port");
        return;
    };
    let errors = forwarder.take_error(port);
    if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut remote).await {
        tracing::debug!(pod, port, "port-forward connection ended: {e}");
    }
    drop(remote);
    if let Some(errors) = errors
        && let Ok(Some(message)) = tokio::time::timeout(super::CHECK_TIMEOUT, errors).await
    {
        tracing::warn!(pod, port, "the port-forward reported: {message}");
    }
    if let Err(e) = forwarder.join().await {
        tracing::debug!(pod, port, "port-forward closed: {}", error_chain(&e));
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::Full;
    use hyper::service::service_fn;
    use hyper::{Request, Response};
    use hyper_util::rt::TokioIo;
    use tokio::io::AsyncReadExt as _;

    use super::*;

    /// A fake API server: the pod `zookeeper-0` exists, everything else is
    /// 404, and the port-forward upgrade is refused (as with a node that
    /// has no kubelet).
    async fn fake_api_server() -> kube::Client {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = service_fn(
                        |request: Request<hyper::body::Incoming>| async move {
                            let path = request.uri().path().to_owned();
                            let (status, body) = if path
                                == "/api/v1/namespaces/kelp/pods/zookeeper-0"
                            {
                                (
                                    200,
                                    serde_json::json!({
                                        "apiVersion": "v1", "kind": "Pod",
                                        "metadata": {"name": "zookeeper-0", "namespace": "kelp"},
                                    })
                                    .to_string(),
                                )
                            } else {
                                (
                                404,
                                serde_json::json!({
                                    "apiVersion": "v1", "kind": "Status", "status": "Failure",
                                    "message": format!("{path} not found"), "reason": "NotFound", "code": 404,
                                })
                                .to_string(),
                            )
                            };
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .status(status)
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body)))
                                    .unwrap(),
                            )
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let config = kube::Config::new(format!("http://{address}").parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    #[tokio::test]
    async fn a_missing_pod_fails_naming_it() {
        let client = fake_api_server().await;
        let error = forward(client, "kelp", "zookeeper-9", 2181)
            .await
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("looking up pod kelp/zookeeper-9 for a port-forward failed"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_refused_forward_closes_the_local_connection_and_drop_stops_listening() {
        let client = fake_api_server().await;
        let forward = forward(client, "kelp", "zookeeper-0", 2181).await.unwrap();
        let address = forward.local_addr();
        assert!(address.ip().is_loopback());
        assert_eq!(forward.target(), "zookeeper-0:2181");

        let mut stream = TcpStream::connect(address).await.unwrap();
        let mut buffer = Vec::new();
        // The upgrade is refused, so the local side is closed without data.
        let read = stream.read_to_end(&mut buffer).await;
        assert!(buffer.is_empty(), "{read:?} {buffer:?}");

        drop(forward);
        // The listener goes away once the runtime has dropped the aborted task.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(address).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert!(
            refused,
            "{address} still accepts after the forward was dropped"
        );
    }
}
