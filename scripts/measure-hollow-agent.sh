#!/usr/bin/env bash
# Measures what hollow nodes cost: starts `keel dev` (3 members, no agents of its own), then
# `keel agent --hollow --nodes N` against it, waits for N Ready nodes, and reads the agent's
# CPU (utime+stime from /proc/PID/stat) over a window and its RSS (VmRSS).
#
#   scripts/measure-hollow-agent.sh [NODES] [WINDOW_SECONDS] [PODS]
#
# PODS > 0 also runs a Deployment of that many replicas on the hollow nodes and measures
# again once they are Available. Needs a release build (cargo build --release -p keel) and
# kubectl. Everything listens on 127.0.0.1; pod IPs are bookkeeping in 169.254.0.0/16.
set -euo pipefail
NODES=${1:-100}
WINDOW=${2:-60}
PODS=${3:-0}
KEEL=${KEEL:-${CARGO_TARGET_DIR:-target}/release/keel}
DIR=$(mktemp -d /tmp/keel-hollow-XXXX)
cleanup() {
  [[ -n "${AGENT:-}" ]] && kill "$AGENT" 2>/dev/null || true
  [[ -n "${DEV:-}" ]] && kill -INT "$DEV" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
"$KEEL" dev --base-port 0 --nodes 0 --data-dir "$DIR/dev" >"$DIR/dev.log" 2>&1 &
DEV=$!
export KUBECONFIG=$DIR/dev/admin.kubeconfig
until kubectl get ns kube-node-lease >/dev/null 2>&1; do sleep 0.5; done
"$KEEL" agent --hollow --nodes "$NODES" --kubeconfig "$KUBECONFIG" --data-dir "$DIR/agent" >"$DIR/agent.log" 2>&1 &
AGENT=$!
START=$(date +%s.%N)
until [[ $(kubectl get nodes --no-headers 2>/dev/null | grep -c ' Ready ') -ge $NODES ]]; do sleep 1; done
echo "nodes: $NODES Ready after $(echo "$(date +%s.%N) - $START" | bc) s"
TICK=$(getconf CLK_TCK)
measure() {
  local label=$1
  local before after
  before=$(awk '{print $14 + $15}' /proc/$AGENT/stat)
  sleep "$WINDOW"
  after=$(awk '{print $14 + $15}' /proc/$AGENT/stat)
  local rss
  rss=$(awk '/VmRSS/ {print $2}' /proc/$AGENT/status)
  local cpu
  cpu=$(echo "scale=2; 100 * ($after - $before) / $TICK / $WINDOW" | bc)
  echo "$label: agent CPU ${cpu}% of one core over ${WINDOW}s, RSS $((rss / 1024)) MiB ($((rss / NODES)) KiB per node)"
}
measure "idle ($NODES nodes renewing Leases every 10 s)"
if [[ $PODS -gt 0 ]]; then
  cat <<YAML | kubectl apply -f - >/dev/null
apiVersion: apps/v1
kind: Deployment
metadata: {name: hollow-load}
spec:
  replicas: $PODS
  selector: {matchLabels: {app: hollow-load}}
  template:
    metadata: {labels: {app: hollow-load}}
    spec: {containers: [{name: app, image: busybox}]}
YAML
  START=$(date +%s.%N)
  until [[ $(kubectl get deploy hollow-load -o jsonpath='{.status.availableReplicas}' 2>/dev/null || echo 0) == "$PODS" ]]; do sleep 1; done
  echo "pods: $PODS Available after $(echo "$(date +%s.%N) - $START" | bc) s"
  measure "with $PODS pods"
fi
