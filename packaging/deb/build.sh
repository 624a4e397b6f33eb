#!/usr/bin/env bash
# Builds the Debian package rdg_VERSION-1_ARCH.deb from an rdg binary that is already built
# (this script compiles nothing of rdg): installs the pinned cargo-deb if missing, writes the
# manual pages and shell completions with that binary's `rdg generate-assets`, puts the
# commented example configuration together, and runs `cargo deb --no-build`. Prints the
# package's path on its last line.
#
#   cargo build --release -p rdg && bash packaging/deb/build.sh
#   # CI: the static release build for the explicit target
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked --workspace \
#     --target x86_64-unknown-linux-gnu
#   bash packaging/deb/build.sh --target x86_64-unknown-linux-gnu
#
# Further arguments go to cargo deb (e.g. --maintainer "Name <mail>", --deb-revision 2).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

# The cargo-deb release this packaging is made and tested with.
cargo_deb_version=3.8.0

target=""
if [ "${1:-}" = --target ]; then
  target=${2:?--target needs a target triple}
  shift 2
fi

if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $cargo_deb_version" ]; then
  echo "installing cargo-deb $cargo_deb_version" >&2
  start=$(date +%s)
  cargo install cargo-deb --locked --version "$cargo_deb_version" >&2
  echo "cargo-deb $cargo_deb_version installed in $(($(date +%s) - start)) s" >&2
fi

target_dir=${CARGO_TARGET_DIR:-$root/target}
bin=$target_dir/${target:+$target/}release/rdg
if [ ! -x "$bin" ]; then
  echo "no rdg binary at $bin; build it first:" >&2
  if [ -n "$target" ]; then
    echo "  RUSTFLAGS=\"-C target-feature=+crt-static\" cargo build --release --locked --workspace --target $target" >&2
  else
    echo "  cargo build --release -p rdg" >&2
  fi
  exit 2
fi

# Generated assets: the paths [package.metadata.deb] in Cargo.toml names (ignored by git).
assets=$root/target/deb-assets
mkdir -p "$assets"
"$bin" generate-assets --out "$assets" >/dev/null
cat packaging/deb/infocast.yaml.head examples/infocast.yaml > "$assets/infocast.yaml"
"$bin" check-config "$assets/infocast.yaml" >&2

out=$root/target/debian
mkdir -p "$out"
# --strip: the debug information of the release profile stays out of the package.
deb=$(cargo deb --no-build --strip ${target:+--target "$target"} --output "$out/" "$@" | tail -n 1)
[ -f "$deb" ] || { echo "cargo deb did not report a package (got: $deb)" >&2; exit 1; }
echo "$deb"
