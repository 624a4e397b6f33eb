#!/usr/bin/env bash
# Checks of the alerting rules and the Grafana dashboard (called from .ci/run):
#   - renders the chart's PrometheusRule (metrics.prometheusRule.enabled=true) through the same
#     Helm SDK as .ci/kubernetes-checks and extracts its rule groups into a plain rules file;
#   - promtool check rules: that file and charts/rdg-operator/rules/rdg-alerts.yaml, and every
#     query of charts/rdg-operator/dashboards/rdg.json (as recording rules, so PromQL is parsed);
#   - promtool test rules monitoring/tests/*.yaml (each alert firing and staying silent).
# promtool comes from Debian's `prometheus` package, downloaded (apt-get download) and
# unpacked into target/prometheus/, never installed (its postinst would start a daemon).
# The metric names the rules and the dashboard use are checked against the code by
# `cargo test -p rdg-operator --test monitoring`.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
out="$target/monitoring"
venv="$target/helm-venv"
promdir="$target/prometheus"
promtool="$promdir/root/usr/bin/promtool"
helm_sdk_version=$(sed -n 's/^helm_sdk_version=\([^ ]*\).*/\1/p' .ci/kubernetes-checks)

if [ ! -x "$promtool" ]; then
  echo "== promtool (Debian package prometheus, unpacked into $promdir)"
  mkdir -p "$promdir"
  rm -rf "$promdir/root" "$promdir"/prometheus_*.deb
  # As root, apt-get warns that the download is not sandboxed (_apt cannot write there).
  if ! (cd "$promdir" && apt-get download prometheus); then
    echo "apt-get download prometheus failed (run apt-get update?)" >&2
    exit 1
  fi
  debs=("$promdir"/prometheus_*.deb)
  deb=${debs[0]}
  dpkg-deb -x "$deb" "$promdir/root"
  rm -f "$deb"
fi
"$promtool" --version 2>&1 | head -n1

if ! "$venv/bin/python" -c "import helm_python" 2>/dev/null; then
  echo "== Helm SDK (helm-python-sdk $helm_sdk_version in $venv, as .ci/kubernetes-checks)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "helm-python-sdk==$helm_sdk_version"
fi

echo "== render the chart's PrometheusRule and the dashboard's queries"
rm -rf "$out"
mkdir -p "$out"
"$venv/bin/python" - "$out" <<'PY'
"""Writes rdg-alerts.rules.yaml (the rule groups of the rendered PrometheusRule) and
dashboard-queries.rules.yaml (each dashboard query as a recording rule) into argv[1]."""
import json
import re
import sys

import helm_python as helm

out = sys.argv[1]
values = {"metrics": {"prometheusRule": {"enabled": True}, "dashboard": {"enabled": True}}}
with helm.Chart.load("charts/rdg-operator") as chart:
    chart.validate_schema(values)
    manifests = chart.render(values, name="rdg", namespace="rdg-system", is_install=True)
text = manifests["rdg-operator/templates/prometheusrule.yaml"]
m = re.search(r"(?ms)^spec:\n(.*)", text)
if m is None or "kind: PrometheusRule" not in text:
    sys.exit(f"no PrometheusRule spec in the render:\n{text}")
body = m.group(1)
if any(l and not l.startswith("  ") for l in body.splitlines()):
    sys.exit("the PrometheusRule's spec is not its last key")
with open(f"{out}/rdg-alerts.rules.yaml", "w") as f:
    f.write("# Rendered from charts/rdg-operator by monitoring/check.sh\n")
    f.write("".join(l[2:] + "\n" for l in body.splitlines()))
if "rdg.json" not in manifests["rdg-operator/templates/dashboard.yaml"]:
    sys.exit("the dashboard ConfigMap does not hold rdg.json")

with open("charts/rdg-operator/dashboards/rdg.json") as f:
    dashboard = json.load(f)
rules = []
for panel in dashboard["panels"]:
    for t in panel.get("targets", []):
        expr = (t["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")
                .replace("$namespace", ".*").replace("$group", ".*"))
        if "$" in expr:
            sys.exit(f"panel {panel['title']!r}: unknown variable in {t['expr']}")
        rules.append({"record": f"dashboard:panel{panel['id']}:{t['refId']}", "expr": expr})
with open(f"{out}/dashboard-queries.rules.yaml", "w") as f:
    json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, f, indent=2)
print(f"  {len(rules)} dashboard queries")
PY

echo "== promtool check rules"
"$promtool" check rules charts/rdg-operator/rules/rdg-alerts.yaml \
  "$out/rdg-alerts.rules.yaml" "$out/dashboard-queries.rules.yaml"

echo "== promtool test rules monitoring/tests/*.yaml"
# The tests read rdg-alerts.rules.yaml beside them: they run from copies in $out.
tests=()
for t in monitoring/tests/*.yaml; do
  cp "$t" "$out/"
  tests+=("$out/$(basename "$t")")
done
"$promtool" test rules "${tests[@]}"
echo "monitoring checks passed"
