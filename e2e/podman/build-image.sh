#!/usr/bin/env bash
# Builds the rdg image from the project's Dockerfile with podman, offline: the binary is the
# static `rdg` built on this host (glibc linked statically, stripped), handed to the Dockerfile
# as the `rdg-binary` build context. Prints the image reference on its last line.
#
#   bash e2e/podman/build-image.sh            # image localhost/rdg:dev
#   RDG_IMAGE=localhost/rdg:e2e bash e2e/podman/build-image.sh
#
# The cargo build is the release build of the whole workspace for the explicit target, the same
# command CI runs once for its benchmarks: run after it, it compiles nothing.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
image=${RDG_IMAGE:-localhost/rdg:dev}
target=x86_64-unknown-linux-gnu
export CONTAINERS_CONF=${CONTAINERS_CONF:-$root/e2e/podman/containers.conf}

command -v podman >/dev/null || { echo "podman is not installed" >&2; exit 2; }
RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --workspace --target "$target" >&2
bin="target/$target/release/rdg"
if readelf --program-headers "$bin" | grep -q "program interpreter"; then
  echo "$bin is dynamically linked; the image needs a static binary" >&2
  exit 1
fi
context=target/image
mkdir -p "$context"
strip -o "$context/rdg.new" "$bin"
mv "$context/rdg.new" "$context/rdg"
podman build --quiet --build-arg RDG_BINARY=from-context --build-context "rdg-binary=$context" \
  --tag "$image" --file Dockerfile . >&2
echo "$image"
