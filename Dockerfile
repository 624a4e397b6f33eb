# syntax=docker/dockerfile:1
# One image for the rdg controller, the member agents and the carousel transmitter: a static
# (musl) `rdg` binary at /usr/local/bin/rdg on distroless static.
#
#   docker build -t rdg:dev .
#   docker run --rm rdg:dev --version
#
# The final image's default user is root: the agent container needs it for NET_ADMIN/NET_RAW
# (VIPs, gratuitous ARP, ICMP net check). The controller Deployment runs it as uid 65532
# (runAsNonRoot), the carousel container as 65532 too.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
# ring (rustls' crypto) compiles C: musl-gcc for the static target. The version is the one of
# the Debian release the pinned Rust image is built on.
# hadolint ignore=DL3008
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends musl-tools \
    && rm -rf /var/lib/apt/lists/* \
    && rustup target add x86_64-unknown-linux-musl
WORKDIR /src
COPY . .
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    CC_x86_64_unknown_linux_musl=musl-gcc
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin rdg \
    && install -D -m 0755 target/x86_64-unknown-linux-musl/release/rdg /out/rdg \
    && /out/rdg --version

# distroless publishes rolling tags only; pin a digest (…@sha256:…) for reproducible releases.
# hadolint ignore=DL3007
FROM gcr.io/distroless/static-debian12:latest
LABEL org.opencontainers.image.title="rdg" \
      org.opencontainers.image.description="Redundant groups for Infocast servers: controller, agent and transmitter" \
      org.opencontainers.image.source="https://github.com/infocast/rdg" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/rdg /usr/local/bin/rdg
ENTRYPOINT ["/usr/local/bin/rdg"]
CMD ["--help"]
