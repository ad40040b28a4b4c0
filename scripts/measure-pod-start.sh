#!/usr/bin/env bash
# Pod start latency per runtime: bound → Running for the `embedded` runtime (the test image
# from scripts/build-test-image.sh, imported with `keel image import`) against `host`, on one
# `keel dev` node. Pods are created already bound (spec.nodeName), one at a time, alternating
# the two runtimes (A, B, A, B… on a noisy machine both see the same noise); the time is from
# the create call returning to the watch event that shows phase Running. Prints p50/p99 per
# runtime and their ratio.
#
#   sudo scripts/measure-pod-start.sh [PODS_PER_RUNTIME]      (default 50)
#
# Needs root (namespaces, overlayfs, cgroups), a keel build (KEEL=path, default the debug
# binary of CARGO_TARGET_DIR), busybox-static and python3 with the `kubernetes` package
# (scripts/install-test-deps.sh). Everything listens on 127.0.0.1; pod IPs are 169.254.x.
set -euo pipefail
PODS=${1:-50}
KEEL=${KEEL:-${CARGO_TARGET_DIR:-target}/debug/keel}
HERE=$(cd "$(dirname "$0")" && pwd)
DIR=$(mktemp -d /tmp/keel-podstart-XXXX)
cleanup() {
  [[ -n "${DEV:-}" ]] && kill -INT "$DEV" 2>/dev/null && wait "$DEV" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$KEEL" dev --size 1 --base-port 0 --apiserver-port 0 --nodes 1 --data-dir "$DIR/dev" >"$DIR/dev.log" 2>&1 &
DEV=$!
export KUBECONFIG=$DIR/dev/admin.kubeconfig
deadline=$((SECONDS + 120))
until kubectl get node keel-node-0 2>/dev/null | grep -q ' Ready '; do
  ((SECONDS < deadline)) || { echo "keel dev did not come up; see its log:" >&2; cat "$DIR/dev.log" >&2; exit 1; }
  sleep 0.5
done
"$HERE/build-test-image.sh" "$DIR/busybox.tar" >/dev/null
"$KEEL" image import "$DIR/busybox.tar" --data-dir "$DIR/dev"

python3 - "$PODS" <<'PY'
import statistics, sys, time
from kubernetes import client, config, watch

pods = int(sys.argv[1])
config.load_kube_config()
api = client.CoreV1Api()

def start(name, runtime):
    body = {"metadata": {"name": name}, "spec": {
        "nodeName": "keel-node-0", "runtimeClassName": runtime, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"]}]}}
    stream = watch.Watch()
    created = api.create_namespaced_pod("default", body)
    began = time.monotonic()
    for event in stream.stream(api.list_namespaced_pod, "default", field_selector=f"metadata.name={name}",
                               resource_version=created.metadata.resource_version, timeout_seconds=60):
        if event["object"].status.phase == "Running":
            stream.stop()
            return time.monotonic() - began
    raise SystemExit(f"{name} did not reach Running in 60 s")

times = {"host": [], "embedded": []}
for i in range(pods):
    for runtime in ("embedded", "host") if i % 2 else ("host", "embedded"):
        name = f"{runtime}-{i}"
        times[runtime].append(start(name, runtime))
        api.delete_namespaced_pod(name, "default", grace_period_seconds=0)

def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]

for runtime, values in times.items():
    print(f"{runtime:9} bound->Running over {len(values)} pods: p50 {pct(values, 50) * 1000:.0f} ms, "
          f"p99 {pct(values, 99) * 1000:.0f} ms")
ratio = statistics.median(times["embedded"]) / statistics.median(times["host"])
print(f"embedded/host p50 ratio: {ratio:.2f}")
PY
