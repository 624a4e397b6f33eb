#!/usr/bin/env bash
# Builds a real Kubernetes 1.36 API server for tests, with etcd and kubectl beside it:
#
#   $RDG_APISERVER_CACHE/bin/kube-apiserver  apiextensions-apiserver v1.36 (CRDs and custom
#                                            resources only) built from main.go, static
#   $RDG_APISERVER_CACHE/bin/etcd            etcd 3.5 (Debian sid's etcd-server)
#   $RDG_APISERVER_CACHE/bin/kubectl         kubectl 1.36 (Debian sid's kubectl)
#   $RDG_APISERVER_CACHE/bin/VERSIONS        the Debian package versions they came from
#
# RDG_APISERVER_CACHE defaults to <repo>/target/apiserver. How to run the server (flags,
# certificates, readiness): README.md beside this file.
#
# Usage (as root; nothing is installed on the host but the debootstrap package):
#   bash e2e/apiserver/build.sh
#
# Debian 12 has none of these packages; Debian sid has them, so they are installed into a
# sid chroot ($RDG_APISERVER_CACHE/chroot, made with debootstrap) and the Go program is built
# there offline, in GOPATH mode, against the Go sources that golang-*-dev packages put under
# /usr/share/gocode. No sid package is ever installed on the host. etcd and kubectl are
# unpacked from their .debs (not installed: etcd-server's maintainer scripts want /proc and
# systemd), so nothing is mounted in the chroot. Their binaries need glibc >= 2.34 (bookworm
# has 2.36); the API server is static.
#
# A second run with the binaries in place and an unchanged build.sh and main.go takes well
# under a second and needs no root. Uncached, on 2 cores: 4-5 min (debootstrap 25-35 s,
# apt 75 s, go build 130-230 s, removing the chroot 12 s); with a kept chroot, a rebuild
# after a main.go change takes seconds (Go build cache).
#
# Environment:
#   RDG_APISERVER_CACHE        cache directory (default <repo>/target/apiserver)
#   RDG_APISERVER_KEEP_CHROOT  1: keep the chroot (about 5 GB; with its Go build cache a
#                              rebuild after a main.go change skips debootstrap and apt);
#                              default: delete it after a successful build
#   RDG_APISERVER_MIRROR       Debian mirror (default http://deb.debian.org/debian)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${RDG_APISERVER_CACHE:-$repo/target/apiserver}
mirror=${RDG_APISERVER_MIRROR:-http://deb.debian.org/debian}
keep_chroot=${RDG_APISERVER_KEEP_CHROOT:-0}
root=$cache/chroot
bin=$cache/bin
logs=$cache/logs
stamp_file=$cache/stamp
binaries=(kube-apiserver etcd kubectl)

say() { printf '[apiserver/build.sh] %s\n' "$*" >&2; }
die() { say "ERROR: $*"; exit 1; }

stamp() { cat "$here/build.sh" "$here/main.go" | sha256sum | cut -d' ' -f1; }

up_to_date() {
  [ -f "$stamp_file" ] && [ "$(cat "$stamp_file")" = "$(stamp)" ] || return 1
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
}

if up_to_date; then
  say "up to date: $bin (${binaries[*]})"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and chroot need it); the binaries are missing or stale in $bin"

mkdir -p "$cache" "$logs"
exec 9>"$cache/.lock"
flock 9 # one build at a time; a second caller waits, then finds the binaries up to date
if up_to_date; then
  say "up to date: $bin (built by a concurrent run)"
  exit 0
fi

current_step=""
on_exit() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -n "$current_step" ]; then
    say "FAILED during: $current_step (exit $rc); logs in $logs"
  fi
}
trap on_exit EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
t_total=$(now)

# step NAME LOG COMMAND...: runs COMMAND with its output in $logs/LOG, prints its duration,
# and on failure the last lines of the log.
step() {
  local name=$1 log=$logs/$2
  shift 2
  current_step=$name
  say "$name ..."
  local t0
  t0=$(now)
  # Not `if ! "$@"`: bash ignores set -e inside a function called as a condition.
  local rc=0
  set +e
  (set -e; "$@") >"$log" 2>&1
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    say "$name failed (exit $rc) after $(elapsed "$t0") s; last lines of $log:"
    tail -n 30 "$log" >&2
    exit 1
  fi
  say "$name: done in $(elapsed "$t0") s"
  current_step=""
}

# In the chroot, with a clean environment.
in_chroot() {
  chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    DEBIAN_FRONTEND=noninteractive "$@"
}

# Never follow a path out of the chroot's file system, and refuse if anything is mounted
# inside (this script mounts nothing, but an earlier hand-made mount must not be wiped).
remove_chroot() {
  [ -e "$root" ] || return 0
  local mounted
  mounted=$(findmnt -rn -o TARGET | grep "^$root/" || true)
  if [ -n "$mounted" ]; then
    die "something is mounted under $root; unmount it first: $(echo "$mounted" | tr '\n' ' ')"
  fi
  rm -rf --one-file-system "$root"
}

ensure_debootstrap() {
  command -v debootstrap >/dev/null && return 0
  command -v apt-get >/dev/null || die "debootstrap is missing and there is no apt-get to install it"
  apt-get install -y debootstrap || { apt-get update && apt-get install -y debootstrap; }
}

# --- 1. debootstrap a minimal sid ------------------------------------------------------------
# debootstrap does not check the Release file's Valid-Until (a frozen snapshot mirror is past
# it); apt does, so the chroot's apt is told not to.
make_chroot() {
  remove_chroot
  debootstrap --variant=minbase sid "$root" "$mirror"
  cat >"$root/etc/apt/apt.conf.d/99rdg" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF
  touch "$root/.rdg-debootstrap-done"
}

# --- 2. packages: Go, the apiextensions-apiserver sources with all their dependencies, and
# etcd and kubectl unpacked (not installed) from their .debs.
install_packages() {
  in_chroot apt-get update
  in_chroot apt-get install -y golang-go golang-k8s-apiextensions-apiserver-dev
  in_chroot sh -ec '
    rm -rf /opt/debs /opt/unpacked && mkdir -p /opt/debs /opt/unpacked
    chown _apt /opt/debs
    cd /opt/debs && apt-get download etcd-server kubectl
    for d in /opt/debs/*.deb; do dpkg-deb -x "$d" /opt/unpacked; done
    dpkg-deb -f /opt/debs/etcd-server_*.deb Version > /opt/unpacked/etcd-server.version
    dpkg-deb -f /opt/debs/kubectl_*.deb Version > /opt/unpacked/kubectl.version
    rm -rf /opt/debs'
  in_chroot apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  touch "$root/.rdg-packages-done"
}

# --- 3. go build, offline (GOPATH mode: GO111MODULE=off, no proxy) ----------------------------
build_apiserver() {
  local deb_version k8s_version minor
  rm -f "$root/opt/kube-apiserver"
  deb_version=$(in_chroot dpkg-query -W -f '${Version}' golang-k8s-apiextensions-apiserver-dev)
  k8s_version=${deb_version%%-*}   # 0.36.4-1 -> 0.36.4 (staging repos are 0.x of Kubernetes 1.x)
  k8s_version=${k8s_version%%+*}
  minor=$(echo "$k8s_version" | cut -d. -f2)
  k8s_version="v1.$minor.$(echo "$k8s_version" | cut -d. -f3)"
  echo "golang-k8s-apiextensions-apiserver-dev $deb_version -> Kubernetes $k8s_version"
  rm -rf "$root/opt/gopath" && mkdir -p "$root/opt/gopath/src/rdg-apiserver"
  cp "$here/main.go" "$root/opt/gopath/src/rdg-apiserver/main.go"
  local v=k8s.io/component-base/version
  local ldflags="-s -w -X $v.gitVersion=$k8s_version -X $v.gitMajor=1 -X $v.gitMinor=$minor -X $v.gitTreeState=clean"
  # GOROOT is given because /proc is not mounted (go finds it via /proc/self/exe otherwise).
  # Without the version -X flags the server reports v0.0.0 and kubectl version fails.
  in_chroot GOROOT=/usr/lib/go GOTELEMETRY=off GO111MODULE=off GOPROXY=off GOTOOLCHAIN=local \
    GOFLAGS= CGO_ENABLED=0 GOPATH=/opt/gopath:/usr/share/gocode GOCACHE=/root/.cache/go-build \
    sh -ec "cd /opt/gopath/src/rdg-apiserver && go version && go build -trimpath -o /opt/kube-apiserver -ldflags '$ldflags' ."
  echo "$deb_version" >"$root/opt/apiextensions.version"
}

# --- 4. copy out, check the binaries run on the host, record versions, stamp ------------------
install_binaries() {
  rm -rf "$bin.new" && mkdir -p "$bin.new"
  install -m 0755 "$root/opt/kube-apiserver" "$bin.new/kube-apiserver"
  install -m 0755 "$root/opt/unpacked/usr/bin/etcd" "$bin.new/etcd"
  install -m 0755 "$root/opt/unpacked/usr/bin/kubectl" "$bin.new/kubectl"
  "$bin.new/etcd" --version
  "$bin.new/kubectl" version --client
  "$bin.new/kube-apiserver" --help >/dev/null
  {
    echo "golang-k8s-apiextensions-apiserver-dev $(cat "$root/opt/apiextensions.version")"
    echo "etcd-server $(cat "$root/opt/unpacked/etcd-server.version")"
    echo "kubectl $(cat "$root/opt/unpacked/kubectl.version")"
    echo "go $(in_chroot dpkg-query -W -f '${Version}' golang-go)"
  } >"$bin.new/VERSIONS"
  cat "$bin.new/VERSIONS"
  rm -rf "$bin" && mv "$bin.new" "$bin"
  stamp >"$stamp_file"
}

say "building into $bin (logs: $logs)"
if [ ! -f "$root/.rdg-debootstrap-done" ]; then
  step "install debootstrap on the host if missing" host-apt.log ensure_debootstrap
  command -v debootstrap >/dev/null || die "debootstrap could not be installed"
  step "debootstrap sid (minbase) into $root" debootstrap.log make_chroot
else
  say "reusing the chroot $root"
fi
if [ ! -f "$root/.rdg-packages-done" ]; then
  step "apt-get install golang-go golang-k8s-apiextensions-apiserver-dev; unpack etcd-server, kubectl" \
    apt.log install_packages
fi
step "go build kube-apiserver (offline, GOPATH mode)" go-build.log build_apiserver
step "install binaries into $bin" install.log install_binaries
if [ "$keep_chroot" = 1 ]; then
  say "keeping the chroot $root (RDG_APISERVER_KEEP_CHROOT=1)"
else
  step "remove the chroot (RDG_APISERVER_KEEP_CHROOT=1 keeps it)" remove-chroot.log remove_chroot
fi
say "done in $(elapsed "$t_total") s: $bin"
sed 's/^/  /' "$bin/VERSIONS" >&2
