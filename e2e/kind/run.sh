#!/usr/bin/env bash
# shellcheck disable=SC2016 # jq programs are in single quotes on purpose
# rdg end-to-end suite on kind (needs Docker, kind, kubectl, helm and jq; about 5 minutes).
#
#   e2e/kind/run.sh [--dry-run] [--keep] [--example FILE] [--group NAME]
#                   [--pod-bound S] [--node-bound S] [--vip-bound-ms MS]
#
# Creates a 3-node kind cluster (e2e/kind/kind-config.yaml) and connects every node to a
# second Docker network (kind has one; `docker network connect` adds eth1), builds the image
# and `kind load`s it, installs charts/rdg-operator, applies the example group with its
# members' nodeName/addresses, VIP and net-check target rewritten to this cluster, waits for
# `kubectl get rdg` to show a HOT member and phase Healthy, then twice:
#   1. deletes the hot member's pod (kubectl delete pod --grace-period=0 --force),
#   2. stops the hot member's node container (docker stop),
# and asserts each time: the VIP answers from another node within --vip-bound-ms (arping from
# a host-network client pod on the kind network), `kubectl get rdg` shows a new HOT within the
# bound, the VIP answers from that member's node, a receiver pod (`rdg receive`) sees the
# carousel again from the new hot member only, and `.status.lastFailover` is filled in.
# Everything is deleted on exit (the cluster, the second network) unless --keep.
#
# --dry-run prints the plan (every command that changes something) and runs none of it.
#
# Environment (flags win): RDG_KIND_CLUSTER (rdg-e2e), RDG_E2E_IMAGE (rdg:e2e),
# RDG_E2E_NAMESPACE (rdg-system), RDG_E2E_VIP (default: .255.200 of the kind /16, or .200 of
# a /24), RDG_E2E_SECONDARY_SUBNET (172.31.250.0/24), RDG_E2E_RECEIVE_SECONDS (8),
# RDG_E2E_SKIP_BUILD=1 (use an image already built as RDG_E2E_IMAGE).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

dry_run=false
keep=false
example="$repo/manifests/examples/two-member.yaml"
group=""
cluster=${RDG_KIND_CLUSTER:-rdg-e2e}
image=${RDG_E2E_IMAGE:-rdg:e2e}
namespace=${RDG_E2E_NAMESPACE:-rdg-system}
vip=${RDG_E2E_VIP:-}
secondary_net="${cluster}-secondary"
secondary_subnet=${RDG_E2E_SECONDARY_SUBNET:-172.31.250.0/24}
receive_seconds=${RDG_E2E_RECEIVE_SECONDS:-8}
# `kubectl get rdg` shows what the agents report through the API, so its bounds are looser
# than the data plane's. After a node stops, its pod stays Running (node NotReady) and its
# last report still claims hot, but that claim is superseded as soon as the new hot member
# reports a later epoch (the dead member's last report says it heard that member).
pod_bound=15
node_bound=15
# The data plane: the VIP must answer from another node within this (heartbeat timeout +
# election + gratuitous ARP, plus the arping poll period).
vip_bound_ms=5000

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry_run=true ;;
    --keep) keep=true ;;
    --example) example=$2; shift ;;
    --group) group=$2; shift ;;
    --pod-bound) pod_bound=$2; shift ;;
    --node-bound) node_bound=$2; shift ;;
    --vip-bound-ms) vip_bound_ms=$2; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

# The plan and progress go to fd 3 (stdout), also from functions whose stdout is captured.
exec 3>&1

context="kind-$cluster"
kctl=(kubectl --context "$context" --namespace "$namespace")

log() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# Runs a command that changes something; with --dry-run only prints it.
run() {
  printf '+ %s\n' "$*"
  if ! $dry_run; then
    "$@"
  fi
}

# Prints the value of a query; with --dry-run prints the placeholder instead.
query() {
  local placeholder=$1
  shift
  if $dry_run; then
    printf '%s\n' "$placeholder"
  else
    "$@"
  fi
}

now_ms() { date +%s%3N; }

cleanup() {
  local rc=$?
  if $keep; then
    echo "--keep: cluster $cluster left running (kind delete cluster --name $cluster;" \
      "docker network rm $secondary_net)"
    return
  fi
  log "cleanup"
  if ! $dry_run && [ "$rc" != 0 ]; then
    "${kctl[@]}" get rdg -o yaml 2>/dev/null | sed -n '/^  status:/,$p' | head -80 || true
    "${kctl[@]}" get pods -o wide 2>/dev/null || true
  fi
  run kind delete cluster --name "$cluster" || true
  run docker network rm "$secondary_net" || true
}

preflight() {
  local missing=()
  for tool in docker kind kubectl helm jq; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [ -f "$example" ] || missing+=("example $example")
  if [ "${#missing[@]}" -gt 0 ]; then
    if $dry_run; then
      echo "(dry run; a real run would stop here: missing ${missing[*]})"
    else
      fail "missing ${missing[*]}"
    fi
  fi
}

# ---------------------------------------------------------------------------------------
# Cluster

nodes=()         # member nodes first (workers), then the control-plane
declare -A ip1   # node -> address on the kind network
declare -A ip2   # node -> address on the second network
declare -A mac   # node -> MAC of its kind-network interface (eth0)
client_node=""

create_cluster() {
  log "kind cluster $cluster (3 nodes) and a second network $secondary_net"
  run kind create cluster --name "$cluster" --config "$here/kind-config.yaml" --wait 180s
  run docker network create --driver bridge --subnet "$secondary_subnet" "$secondary_net"
  local all
  all=$(query "$(printf '%s\n' "$cluster-control-plane" "$cluster-worker" "$cluster-worker2")" \
    kind get nodes --name "$cluster")
  local n all_nodes
  mapfile -t all_nodes <<<"$all"
  for n in "${all_nodes[@]}"; do
    run docker network connect "$secondary_net" "$n"
  done
  mapfile -t nodes < <(printf '%s\n' "${all_nodes[@]}" | grep -v control-plane | sort)
  client_node=$(printf '%s\n' "${all_nodes[@]}" | grep control-plane | head -n1)
  nodes+=("$client_node")
  for n in "${nodes[@]}"; do
    ip1[$n]=$(query "<$n-ip>" docker inspect -f \
      '{{with index .NetworkSettings.Networks "kind"}}{{.IPAddress}}{{end}}' "$n")
    ip2[$n]=$(query "<$n-ip2>" docker inspect -f \
      "{{with index .NetworkSettings.Networks \"$secondary_net\"}}{{.IPAddress}}{{end}}" "$n")
    mac[$n]=$(query "<$n-mac>" docker exec "$n" cat /sys/class/net/eth0/address)
    echo "node $n: kind ${ip1[$n]} (${mac[$n]}), second network ${ip2[$n]}"
  done
  if [ -z "$vip" ]; then
    local subnet
    subnet=$(query "172.18.0.0/16" docker network inspect kind -f \
      '{{range .IPAM.Config}}{{println .Subnet}}{{end}}' | grep -m1 '\.')
    case "$subnet" in
      */16) vip="$(echo "$subnet" | cut -d. -f1-2).255.200/16" ;;
      */24) vip="$(echo "$subnet" | cut -d. -f1-3).200/24" ;;
      *) fail "kind network $subnet: set RDG_E2E_VIP (an unused address/prefix in it)" ;;
    esac
  fi
  gateway=$(query "172.18.0.1" docker network inspect kind -f \
    '{{range .IPAM.Config}}{{println .Gateway}}{{end}}' | grep -m1 '\.')
  echo "VIP $vip, net-check target $gateway"
}

build_and_install() {
  log "image $image, chart"
  if [ "${RDG_E2E_SKIP_BUILD:-}" != 1 ]; then
    run docker build -t "$image" "$repo"
  fi
  run kind load docker-image "$image" --name "$cluster"
  run helm upgrade --install rdg "$repo/charts/rdg-operator" --kube-context "$context" \
    --namespace "$namespace" --create-namespace \
    --set image.repository="${image%:*}" --set image.tag="${image##*:}" \
    --set image.pullPolicy=Never --set logLevel=debug --wait --timeout 180s
  run "${kctl[@]}" apply -f "$here/client-pods.yaml"
  run "${kctl[@]}" wait --for=condition=Ready pod/rdg-e2e-client --timeout=120s
}

# ---------------------------------------------------------------------------------------
# The group

declare -A node_of # member -> node
channel=""
channel_interface=""

apply_group() {
  log "group from $example"
  local nodes_json="[]" n
  if ! $dry_run; then
    for n in "${nodes[@]}"; do
      nodes_json=$(jq -c --arg n "$n" --arg a "${ip1[$n]}" --arg b "${ip2[$n]}" \
        '. + [{name: $n, ip1: $a, ip2: $b}]' <<<"$nodes_json")
    done
  fi
  local manifest="${TMPDIR:-/tmp}/rdg-e2e-group.json"
  printf '+ kubectl create --dry-run=client -o json -f %s | jq -f %s > %s\n' \
    "$example" "$here/cluster-group.jq" "$manifest"
  if ! $dry_run; then
    # Without --namespace: an example naming its own namespace must not be refused here.
    kubectl --context "$context" create --dry-run=client -o json -f "$example" \
      | jq --arg ns "$namespace" --arg image "$image" --argjson nodes "$nodes_json" \
        --arg vip "$vip" --arg gateway "$gateway" -f "$here/cluster-group.jq" >"$manifest"
  fi
  local groups
  groups=$(query "<group>" jq -r '.items[] | select(.kind == "RedundantGroup") | .metadata.name' "$manifest")
  if [ -z "$group" ]; then
    [ "$(wc -w <<<"$groups")" = 1 ] || fail "$example has groups [$groups]: pick one with --group"
    group=$groups
  fi
  run "${kctl[@]}" apply --server-side -f "$manifest"
  local m
  for m in $(query "<member-a> <member-b>" jq -r --arg g "$group" \
    '.items[] | select(.kind == "RedundantGroup" and .metadata.name == $g) | .spec.members[].name' "$manifest"); do
    node_of[$m]=$(query "<node-of-$m>" jq -r --arg g "$group" --arg m "$m" \
      '.items[] | select(.metadata.name == $g) | .spec.members[] | select(.name == $m) | .nodeName' "$manifest")
  done
  channel=$(query "<channel>" jq -r --arg g "$group" \
    '.items[] | select(.metadata.name == $g) | .spec.transmitter.channels[0] // empty | "\(.address):\(.port)"' "$manifest")
  channel_interface=${ip1[$client_node]:-}
  echo "group $group, members: ${!node_of[*]}, carousel channel ${channel:-(none: receiver checks skipped)}"
}

status_json() { "${kctl[@]}" get rdg "$group" -o json; }

# Waits until `kubectl get rdg` shows a hot member other than $1 (and phase Healthy when $3 is
# "healthy"), at most $2 seconds; prints the hot member ($4 with --dry-run).
wait_hot() {
  local old=$1 bound=$2 want=${3:-any}
  if $dry_run; then
    echo "+ wait <= ${bound}s for kubectl get rdg $group: HOT not '${old}'${3:+, phase Healthy}" >&3
    echo "${4:-<new-hot>}"
    return
  fi
  local deadline=$((SECONDS + bound)) hot phase s
  while :; do
    s=$(status_json) || s='{}' # a failed request is retried until the deadline
    hot=$(jq -r '.status.hot // ""' <<<"$s")
    phase=$(jq -r '.status.phase // ""' <<<"$s")
    if [ -n "$hot" ] && [ "$hot" != "$old" ] && { [ "$want" != healthy ] || [ "$phase" = Healthy ]; }; then
      echo "kubectl get rdg: HOT $hot, phase $phase" >&3
      echo "$hot"
      return
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "no new HOT (not '$old', $want) within ${bound}s: HOT '$hot' phase '$phase'"
    sleep 1
  done
}

# MACs that answer ARP for the VIP within $1 requests/seconds (default 3), as seen by the
# client pod (one line each, sorted).
vip_macs() {
  local n=${1:-3}
  "${kctl[@]}" exec rdg-e2e-client -- arping -c "$n" -w "$n" -I eth0 "${vip%/*}" 2>/dev/null \
    | grep -o '\[[0-9a-fA-F:]*\]' | tr -d '[]' | tr 'A-F' 'a-f' | sort -u || true
}

# Polls the VIP until some node other than $1's answers (alone); prints the milliseconds
# from $2 (start of the fault, ms since the epoch).
wait_vip_moves() {
  local old_node=$1 since=$2
  if $dry_run; then
    echo "+ kubectl exec rdg-e2e-client -- arping -I eth0 ${vip%/*} until a node other than $old_node answers (<= ${vip_bound_ms} ms)" >&3
    return
  fi
  local macs
  while :; do
    macs=$(vip_macs 1)
    if [ -n "$macs" ] && [ "$(wc -l <<<"$macs")" = 1 ] && [ "$macs" != "${mac[$old_node]}" ]; then
      local took=$(($(now_ms) - since))
      echo "VIP ${vip%/*} answered from $macs after ${took} ms"
      [ "$took" -le "$vip_bound_ms" ] || fail "VIP moved after ${took} ms (bound ${vip_bound_ms} ms)"
      return
    fi
    [ $(($(now_ms) - since)) -le $((vip_bound_ms + 10000)) ] \
      || fail "VIP ${vip%/*} still answered by [$macs] (old node $old_node: ${mac[$old_node]})"
  done
}

# The VIP answers from member $1's node only.
check_vip_on() {
  local member=$1 node
  node=${node_of[$member]:-<node>}
  run "${kctl[@]}" exec rdg-e2e-client -- ping -c 1 -W 2 "${vip%/*}"
  if $dry_run; then
    echo "+ assert: arping ${vip%/*} answered only by $node's MAC"
    return
  fi
  local macs
  macs=$(vip_macs)
  [ "$macs" = "${mac[$node]}" ] || fail "VIP answered by [$macs], want only $node (${mac[$node]})"
  echo "VIP ${vip%/*} answers from $node (${mac[$node]})"
}

receivers=0
# A receiver pod on the client node sees the carousel, sent by member $1's node only.
check_carousel_from() {
  local member=$1 node name
  [ -n "$channel" ] || { echo "no transmitter channel in the group: carousel check skipped"; return; }
  node=${node_of[$member]:-<node>}
  receivers=$((receivers + 1))
  name="rdg-e2e-receiver-$receivers"
  local overrides='{"spec":{"hostNetwork":true,"nodeSelector":{"rdg.infocast.io/e2e-role":"client"},"tolerations":[{"key":"node-role.kubernetes.io/control-plane","operator":"Exists","effect":"NoSchedule"}]}}'
  run "${kctl[@]}" run "$name" --image="$image" --image-pull-policy=Never --restart=Never \
    --overrides="$overrides" -- receive --channel "$channel" --interface "$channel_interface" \
    --seconds "$receive_seconds" --json
  run "${kctl[@]}" wait --for=jsonpath='{.status.phase}'=Succeeded "pod/$name" \
    --timeout="$((receive_seconds + 60))s"
  if $dry_run; then
    echo "+ assert: $name's report has completed objects, senders = [${ip1[$node]:-<ip>}], interleaved false"
    return
  fi
  local report
  report=$("${kctl[@]}" logs "$name" | grep '^{' | tail -n1)
  echo "receiver: $(jq -c '{objects: [.objects[] | {name, completed, corrupt}], senders, longestSilenceMs, interleaved}' <<<"$report")"
  jq -e '[.objects[].completed] | add > 0' <<<"$report" >/dev/null \
    || fail "the receiver completed no carousel object"
  jq -e --arg ip "${ip1[$node]}" '.senders == [$ip] and (.interleaved | not)' <<<"$report" >/dev/null \
    || fail "carousel senders $(jq -c .senders <<<"$report"), want only $node (${ip1[$node]})"
}

# .status.lastFailover names $1 (when $2 = strict) or is at least filled in.
check_last_failover() {
  local member=$1 strictness=$2
  if $dry_run; then
    echo "+ assert: kubectl get rdg $group: .status.lastFailover filled in${2:+ ($2: to = $member)}"
    return
  fi
  local f
  f=$(status_json | jq -c '.status.lastFailover // empty')
  [ -n "$f" ] || fail ".status.lastFailover is empty"
  echo "lastFailover: $f"
  if [ "$(jq -r .to <<<"$f")" != "$member" ]; then
    if [ "$strictness" = strict ]; then
      fail "lastFailover.to is not $member"
    fi
    echo "note: lastFailover.to is not $member (the deleted pod's agent handed over on SIGTERM: planned)"
  fi
}

# ---------------------------------------------------------------------------------------

main() {
  preflight
  trap cleanup EXIT
  create_cluster
  build_and_install
  apply_group

  log "1. a HOT member and phase Healthy"
  local hot new started
  hot=$(wait_hot "" 180 healthy "<hot>")
  check_vip_on "$hot"
  check_carousel_from "$hot"

  log "2. delete the hot member's pod"
  started=$(now_ms)
  run "${kctl[@]}" delete pod "$group-$hot" --grace-period=0 --force --wait=false
  wait_vip_moves "${node_of[$hot]:-<node>}" "$started"
  new=$(wait_hot "$hot" "$pod_bound")
  check_vip_on "$new"
  check_carousel_from "$new"
  check_last_failover "$new" lenient
  # The controller recreates the pod; it comes back as a standby.
  hot=$(wait_hot "" 180 healthy "<new-hot>")
  [ "$hot" = "$new" ] || $dry_run || fail "the recreated member preempted: HOT $hot"

  log "3. stop the hot member's node (docker stop ${node_of[$hot]:-<node>})"
  [ "${node_of[$hot]:-}" != "$client_node" ] || $dry_run \
    || fail "the hot member runs on the control-plane node: stopping it would stop the API server"
  started=$(now_ms)
  run docker stop "${node_of[$hot]:-<node>}"
  wait_vip_moves "${node_of[$hot]:-<node>}" "$started"
  new=$(wait_hot "$hot" "$node_bound")
  check_vip_on "$new"
  check_carousel_from "$new"
  check_last_failover "$new" strict

  if $dry_run; then
    log "end of the plan (dry run: nothing was run)"
  else
    log "passed"
  fi
}

main
