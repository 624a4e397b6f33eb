# syntax=docker/dockerfile:1
# One image for the rdg controller, the member agents and the carousel transmitter: a static
# `rdg` binary at /usr/local/bin/rdg on an empty (`scratch`) base, uid 65532 by default.
#
#   docker build -t rdg:dev .
#   docker run --rm rdg:dev --version
#
# The binary is built in the `build` stage below, or taken ready-made from a build context
# named `rdg-binary` (a directory holding a static `rdg`) when RDG_BINARY=from-context:
#
#   podman build --build-arg RDG_BINARY=from-context --build-context rdg-binary=DIR -t rdg:dev .
#
# `e2e/image/build.sh` does that with the binary built on the host. Pods choose their user:
# the member's agent container runs as uid 0 with only NET_ADMIN and NET_RAW (VIPs,
# gratuitous ARP, ICMP net check); the controller and the carousel run as 65532.

ARG RUST_VERSION=1.95
# `build` (compile here) or `from-context` (take the binary from the `rdg-binary` context).
ARG RDG_BINARY=build

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY . .
# glibc linked statically (crt-static), so that the binary runs on an empty base. `--target`
# keeps the flag off build scripts and proc-macros, which must stay dynamic.
ENV CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols \
    RUSTFLAGS="-C target-feature=+crt-static"
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin rdg \
    && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/rdg /out/rdg \
    && /out/rdg --version

FROM scratch AS from-context
# The named build context `rdg-binary`, not a stage.
# hadolint ignore=DL3022
COPY --from=rdg-binary rdg /out/rdg

# hadolint ignore=DL3006
FROM ${RDG_BINARY} AS binary

FROM scratch
LABEL org.opencontainers.image.title="rdg" \
      org.opencontainers.image.description="Redundant groups for Infocast servers: controller, agent and transmitter" \
      org.opencontainers.image.source="https://github.com/infocast/rdg" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=binary /out/rdg /usr/local/bin/rdg
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/rdg"]
CMD ["--help"]
