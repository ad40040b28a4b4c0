#!/usr/bin/env bash
# The cost of the client port's `:authority` wrapper (src/h2_authority.rs) on the gRPC path:
# one release binary, two single-member servers side by side, one with
# KEEL_H2_AUTHORITY_FIX=off; rounds alternate which goes first. Prints ops/s, p99 and the
# server's CPU ticks (1/100 s) per run. `ROUNDS=6 benches/h2-authority-ab.sh`. Loopback only.
set -euo pipefail
KEEL=${KEEL:-target/release/keel}  # cargo build --release --bin keel
ROUNDS=${ROUNDS:-5}
dir=$(mktemp -d)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
start() { # name fix
  local c=$(port) p=$(port)
  KEEL_H2_AUTHORITY_FIX=$2 RUST_LOG=off $KEEL serve --single --name $1 --data-dir $dir/$1 \
    --listen-client-urls http://127.0.0.1:$c --advertise-client-urls http://127.0.0.1:$c \
    --listen-peer-urls http://127.0.0.1:$p --initial-advertise-peer-urls http://127.0.0.1:$p \
    >/dev/null 2>&1 &
  echo "$! $c"
}
read PID_OFF PORT_OFF < <(start off off)
read PID_ON PORT_ON < <(start on on)
trap 'kill $PID_OFF $PID_ON 2>/dev/null; rm -rf $dir' EXIT
for p in $PORT_OFF $PORT_ON; do
  for i in $(seq 100); do curl -s -o /dev/null -X POST http://127.0.0.1:$p/v3/kv/range -d '{"key":"YQ=="}' && break; sleep 0.1; done
done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # label pid port workload...
  local label=$1 pid=$2 port=$3; shift 3
  local before=$(cpu $pid)
  local out=$($KEEL bench --protocol grpc --endpoints http://127.0.0.1:$port --clients 64 --conns 8 -w json "$@" 2>/dev/null)
  local after=$(cpu $pid)
  echo "$label $1 $(echo "$out" | python3 -c 'import json,sys;d=json.load(sys.stdin);print("%.0f ops/s p99 %.2f ms" % (d["ops_per_second"], d["latency_ms"]["p99"]))') cpu_ticks=$((after-before))"
}
for which in off on; do # warm-up: both keyspaces filled before the rounds
  if [ $which = off ]; then port=$PORT_OFF; else port=$PORT_ON; fi
  $KEEL bench --protocol grpc --endpoints http://127.0.0.1:$port --clients 64 --conns 8 put --total 20000 --val-size 256 --key-space-size 10000 >/dev/null 2>&1
done
for r in $(seq $ROUNDS); do
  if (( r % 2 )); then order="off on"; else order="on off"; fi
  for which in $order; do
    if [ $which = off ]; then pid=$PID_OFF port=$PORT_OFF; else pid=$PID_ON port=$PORT_ON; fi
    run "r$r $which" $pid $port put --total 20000 --val-size 256 --key-space-size 10000
    run "r$r $which" $pid $port range --total 50000 --consistency s --key-space-size 10000
  done
done
