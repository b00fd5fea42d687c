# The sluice image: `docker build -t sluice .` from the repository root, or through
# `docker compose -f deploy/docker-compose.yml up --build`.
#
# Every cargo invocation lives in scripts/build-image-steps.sh, which this file copies in and
# calls, and which runs the same command on a machine without Docker
# (`scripts/build-image-steps.sh`), so the image build and the local mirror cannot drift.
#
# Stages:
#   planner  reduces the source tree to a dependency skeleton (manifests, Cargo.lock and a stub
#            per target). It reruns on every change, but its output changes only when the
#            manifests, the lockfile or the set of targets do.
#   builder  compiles the dependencies against the skeleton (the cached layer), then the real
#            sources with the same command.
#   runtime  Debian slim with the binary, curl for the health check, a non-root user and the
#            write-ahead log volume.

FROM rust:1.94.1-slim-trixie AS planner
WORKDIR /src
COPY . .
RUN bash scripts/build-image-steps.sh skeleton /skeleton

FROM rust:1.94.1-slim-trixie AS builder
WORKDIR /src
COPY --from=planner /skeleton/ ./
COPY scripts/build-image-steps.sh scripts/build-image-steps.sh
# Dependencies only: this layer stays cached until Cargo.lock or a manifest changes.
RUN bash scripts/build-image-steps.sh deps
COPY . .
RUN bash scripts/build-image-steps.sh release /out

FROM debian:13.3-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid sluice --home-dir /var/lib/sluice \
        --no-create-home --shell /usr/sbin/nologin sluice \
    && install -d -o sluice -g sluice -m 0750 /var/lib/sluice
COPY --from=builder /out/sluice /usr/local/bin/sluice

# Listen on every interface inside the container (the binary's default is 127.0.0.1:3100) and
# keep the write-ahead log on the volume. Everything else comes from SLUICE_* variables or a
# config file; see `sluice check --config-only`.
ENV SLUICE_LISTEN=0.0.0.0:3100 \
    SLUICE_DATA_DIR=/var/lib/sluice

USER sluice:sluice
WORKDIR /var/lib/sluice
# SLUICE_DATA_DIR, home of the write-ahead log: an ingest node's only state, so it lives on a
# volume.
VOLUME /var/lib/sluice
EXPOSE 3100

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3100/ready"]

# `docker run IMAGE` runs `sluice serve`; `docker run IMAGE schema` or
# `docker run IMAGE check --config-only` run the other subcommands.
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve"]
