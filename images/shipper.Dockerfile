# kelp-shipper: the Kafka consumer group that indexes into Elasticsearch/OpenSearch.
# Build from the repository root:
#   docker build -f images/shipper.Dockerfile -t <registry>/kelp-shipper:<version> .
# images/smoke proves this build without a Docker engine; keep the two in step.

# Build stage: the same command, target and features as images/smoke.
FROM docker.io/library/rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p kelp-shipper --bin kelp-shipper \
 && install -D -m 0755 target/release/kelp-shipper /out/kelp-shipper

# Final stage: glibc and libgcc only; TLS is rustls, librdkafka is linked in.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="kelp-shipper" \
      org.opencontainers.image.description="Indexes kelp events from Kafka into Elasticsearch or OpenSearch, exactly once in effect" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/kelp"
COPY --from=build /out/kelp-shipper /usr/local/bin/kelp-shipper
# distroless "nonroot": uid 65532.
USER 65532:65532
# Prometheus /metrics, /healthz and /readyz.
EXPOSE 9102
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz.
ENTRYPOINT ["/usr/local/bin/kelp-shipper"]
CMD ["run", "--config", "/etc/kelp/shipper.yaml"]
