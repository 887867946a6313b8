# kelp-collector: the per-node DaemonSet agent.
# Build from the repository root:
#   docker build -f images/collector.Dockerfile -t <registry>/kelp-collector:<version> .
# images/smoke proves this build without a Docker engine; keep the two in step.

# Build stage: the same command, target and features as images/smoke.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kelp-collector --bin kelp-collector \
 && install -D -m 0755 target/release/kelp-collector /out/kelp-collector

# Final stage: glibc and libgcc only; librdkafka, zlib and zstd are linked in.
FROM gcr.io/distroless/cc-debian12
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kelp-collector" \
      org.opencontainers.image.description="Tails Kubernetes container logs and ships them to Kafka, exactly once in effect" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/kelp"
COPY --from=build /out/kelp-collector /usr/local/bin/kelp-collector
# The kubelet's log files are root-owned (0640 root:root), so the collector
# runs as uid 0, but with a read-only root filesystem and every capability
# dropped except DAC_READ_SEARCH; the DaemonSet sets both (docs/RELEASE.md).
USER 0:0
# Prometheus /metrics, /healthz and /readyz.
EXPOSE 9101
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/usr/local/bin/kelp-collector"]
CMD ["run", "--config", "/etc/kelp/collector.yaml"]
