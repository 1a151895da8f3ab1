# syntax=docker/dockerfile:1
#
# The facio binary in a small non-root image.
#
#   docker build -t facio:0.1.0 .
#   docker run --rm -p 8900:8900 -v facio-data:/data -e FACIO_MANAGEMENT_TOKEN=... facio:0.1.0
#
# State (SQLite store, master key file, workspace) lives in /data: mount a volume there.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Every workspace member's manifest must be present for Cargo to resolve the
# workspace; .dockerignore keeps target/ and other local files out.
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p facio --bin facio \
    && install -D -m 0755 target/release/facio /out/facio

FROM debian:bookworm-slim AS runtime
# ca-certificates: the providers' TLS certificates are verified against the system
# store. Nothing else is needed: the exec sandbox is built into the binary.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 facio \
    && useradd --system --uid 10001 --gid facio --home-dir /data --shell /usr/sbin/nologin facio \
    && install -d -o facio -g facio -m 0700 /data
COPY --from=build /out/facio /usr/local/bin/facio

ENV FACIO_DATA_DIR=/data
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8900

# /healthz over bash's /dev/tcp, so the image needs no HTTP client. The port follows
# FACIO_API__PORT when it is set.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${FACIO_API__PORT:-8900} && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["facio"]
CMD ["serve", "--host", "0.0.0.0"]
