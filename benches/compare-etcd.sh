#!/usr/bin/env bash
# keel against etcd on one box: a 3-member etcd and a 3-member keel on loopback, the same
# `keel bench` matrix run against each in turn (keel, etcd, keel, etcd, … so drift in the
# machine's load hits both), server CPU seconds and RSS sampled from /proc, and a markdown
# table of keel/etcd ratios against issue 8's targets. A benchmark, not a test: it never
# fails on numbers, only when something could not be run.
#
# How to run (root, so a missing etcd can be installed with apt-get):
#   benches/compare-etcd.sh                     # the default matrix, a few minutes
#   benches/compare-etcd.sh --keys 1000000      # issue 8's 1M keys for RSS and restart
#   benches/compare-etcd.sh --total 50000 --rounds 3 --out /tmp/results
#   benches/compare-etcd.sh --protocol grpc     # the same matrix over etcd's gRPC API
#
# Durability is equivalent: etcd fsyncs its WAL before acknowledging (always), keel fsyncs
# its Raft log before acknowledging (always). Both run with their default snapshot counts.
set -euo pipefail
cd "$(dirname "$0")/.."

KEYS=100000       # keys loaded for the RSS and restart-to-serving rows
TOTAL=20000       # operations per throughput run
ROUNDS=1          # times the matrix runs; each row takes the median
WATCHERS=100
PROTOCOL=gateway  # what keel bench speaks to both: gateway (JSON over HTTP/1.1) or grpc
OUT=""
# Below Linux's ephemeral range (32768+), where an outgoing connection may hold any port.
ETCD_PORT_BASE=${ETCD_PORT_BASE:-15379}
KEEL_PORT_BASE=${KEEL_PORT_BASE:-14379}

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
}
while [ $# -gt 0 ]; do
    case $1 in
        --keys) KEYS=$2; shift 2 ;;
        --total) TOTAL=$2; shift 2 ;;
        --rounds) ROUNDS=$2; shift 2 ;;
        --watchers) WATCHERS=$2; shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --protocol)
            case $2 in gateway|grpc) PROTOCOL=$2 ;; *) echo "compare-etcd: --protocol is gateway or grpc, not $2" >&2; exit 2 ;; esac
            shift 2 ;;
        -h|--help) usage ;;
        *) echo "compare-etcd: unknown flag $1" >&2; usage ;;
    esac
done

need() {
    local package=$1 command=$2
    command -v "$command" >/dev/null 2>&1 && return
    if [ "$(id -u)" != 0 ]; then
        echo "compare-etcd: $command is missing; run as root or: apt-get install $package" >&2
        exit 1
    fi
    echo "compare-etcd: installing $package" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
need etcd-server etcd
need jq jq
need curl curl

# KEEL_BIN measures an already built binary (another commit's, say) instead of this tree's.
if [ -n "${KEEL_BIN:-}" ]; then
    KEEL=$KEEL_BIN
else
    echo "compare-etcd: building keel (release)" >&2
    cargo build --release --quiet --bin keel
    KEEL=$PWD/target/release/keel
fi

WORK=$(mktemp -d /tmp/compare-etcd.XXXXXX)
RESULTS=${OUT:-$WORK/results}
mkdir -p "$RESULTS"
declare -A PID=()

KEEP_LOGS=""
cleanup() {
    local key
    for key in "${!PID[@]}"; do
        kill -KILL "${PID[$key]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "$KEEP_LOGS" ]; then
        echo "compare-etcd: logs kept in $WORK" >&2
        return
    fi
    rm -rf "$WORK/etcd" "$WORK/keel"
    if [ -n "$OUT" ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

client_port() { echo $(( $1 + 10 * $2 )); }   # base, member
peer_port() { echo $(( $1 + 10 * $2 + 1 )); }

base_of() { if [ "$1" = keel ]; then echo "$KEEL_PORT_BASE"; else echo "$ETCD_PORT_BASE"; fi; }

endpoints() {
    local base; base=$(base_of "$1")
    echo "http://127.0.0.1:$(client_port "$base" 1),http://127.0.0.1:$(client_port "$base" 2),http://127.0.0.1:$(client_port "$base" 3)"
}

initial_cluster() {
    local system=$1 base prefix; base=$(base_of "$system")
    prefix=$([ "$system" = keel ] && echo n || echo e)
    echo "${prefix}1=http://127.0.0.1:$(peer_port "$base" 1),${prefix}2=http://127.0.0.1:$(peer_port "$base" 2),${prefix}3=http://127.0.0.1:$(peer_port "$base" 3)"
}

# start SYSTEM MEMBER: starts one member in the background (same flags as a first start,
# which both treat as a restart when the data dir has a member in it).
start() {
    local system=$1 i=$2 base client peer
    base=$(base_of "$system")
    client=http://127.0.0.1:$(client_port "$base" "$i")
    peer=http://127.0.0.1:$(peer_port "$base" "$i")
    mkdir -p "$WORK/$system"
    if [ "$system" = keel ]; then
        RUST_LOG=error "$KEEL" serve --name "n$i" --data-dir "$WORK/keel/n$i" \
            --listen-client-urls "$client" --advertise-client-urls "$client" \
            --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
            --initial-cluster "$(initial_cluster keel)" --initial-cluster-state new \
            --initial-cluster-token compare >>"$WORK/keel/n$i.log" 2>&1 &
    else
        etcd --name "e$i" --data-dir "$WORK/etcd/e$i" \
            --listen-client-urls "$client" --advertise-client-urls "$client" \
            --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
            --initial-cluster "$(initial_cluster etcd)" --initial-cluster-state new \
            --initial-cluster-token compare >>"$WORK/etcd/e$i.log" 2>&1 &
    fi
    PID[$system$i]=$!
}

# wait_serving SYSTEM: until every member answers a linearizable range (60 s at most).
wait_serving() {
    local system=$1 deadline=$((SECONDS + 60)) endpoint
    for endpoint in $(endpoints "$system" | tr , ' '); do
        until curl -sf -m 2 -X POST "$endpoint/v3/kv/range" -d '{"key":"AA=="}' >/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "compare-etcd: $system at $endpoint is not serving after 60 s" >&2
                KEEP_LOGS=1
                exit 1
            fi
            sleep 0.05
        done
    done
}

start_all() {
    local i
    for i in 1 2 3; do start "$1" "$i"; done
}

stop_all() {
    local system=$1 i
    for i in 1 2 3; do kill -TERM "${PID[$system$i]}" 2>/dev/null || true; done
    for i in 1 2 3; do wait "${PID[$system$i]}" 2>/dev/null || true; unset "PID[$system$i]"; done
}

TICKS=$(getconf CLK_TCK)
# cpu_seconds SYSTEM: user + system CPU time of its three servers so far.
cpu_seconds() {
    local system=$1 i total=0 ticks
    for i in 1 2 3; do
        # Fields after the command name, which is in parentheses: utime is 14th, stime 15th.
        ticks=$(sed 's/^.*) //' "/proc/${PID[$system$i]}/stat" | awk '{print $12 + $13}')
        total=$((total + ticks))
    done
    awk -v t="$total" -v hz="$TICKS" 'BEGIN {printf "%.2f", t / hz}'
}

# memory_mib SYSTEM FIELD: the mean over members of VmRSS or VmHWM, in MiB.
memory_mib() {
    local system=$1 field=$2 i total=0 kb
    for i in 1 2 3; do
        kb=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/${PID[$system$i]}/status")
        total=$((total + kb))
    done
    awk -v t="$total" 'BEGIN {printf "%.1f", t / 3 / 1024}'
}

# bench SYSTEM NAME ROUND ARGS…: one `keel bench` run; its JSON report gains the servers' CPU.
bench() {
    local system=$1 name=$2 round=$3; shift 3
    local before after file=$RESULTS/$system-$name-$round.json
    before=$(cpu_seconds "$system")
    "$KEEL" bench --protocol "$PROTOCOL" --endpoints "$(endpoints "$system")" "$@" -w json >"$file.tmp"
    after=$(cpu_seconds "$system")
    jq --argjson cpu "$(awk -v a="$after" -v b="$before" 'BEGIN {print a - b}')" \
        '. + {server_cpu_seconds: $cpu}' "$file.tmp" >"$file"
    rm -f "$file.tmp"
    echo "  $system $name: $(jq -r '"\(.ops_per_second | floor) ops/s, p99 \(.latency_ms.p99) ms, errors \(.errors)"' "$file")" >&2
}

# The matrix: one run per step, by name.
SPACE=10000
step() {
    local system=$1 name=$2 round=$3
    case $name in
        put-64) bench "$system" "$name" "$round" --clients 64 --conns 64 put \
            --total "$TOTAL" --val-size 256 --key-space-size $SPACE ;;
        put-256) bench "$system" "$name" "$round" --clients 256 --conns 256 put \
            --total "$TOTAL" --val-size 256 --key-space-size $SPACE ;;
        range-l) bench "$system" "$name" "$round" --clients 64 --conns 64 range \
            --consistency l --total "$TOTAL" --key-space-size $SPACE ;;
        range-s) bench "$system" "$name" "$round" --clients 64 --conns 64 range \
            --consistency s --total "$TOTAL" --key-space-size $SPACE ;;
        txn-put) bench "$system" "$name" "$round" --clients 64 --conns 64 txn-put \
            --total "$TOTAL" --val-size 256 --key-space-size $SPACE ;;
        watch) bench "$system" "$name" "$round" watch --watchers "$WATCHERS" \
            --total 500 --rate 100 --val-size 256 ;;
        keepalive) bench "$system" "$name" "$round" --clients 64 --conns 64 lease-keepalive \
            --total "$TOTAL" ;;
    esac
}
STEPS="put-64 put-256 range-l range-s txn-put watch keepalive"

for system in keel etcd; do start_all $system; done
for system in keel etcd; do wait_serving $system; done
echo "compare-etcd: both clusters serving; results in $RESULTS" >&2

for round in $(seq 1 "$ROUNDS"); do
    # Who goes first alternates by round too, so neither always runs on a warmer machine.
    order=$([ $((round % 2)) = 1 ] && echo "keel etcd" || echo "etcd keel")
    for name in $STEPS; do
        for system in $order; do step "$system" "$name" "$round"; done
    done
done

# Memory and restart with KEYS keys (16-byte keys, 256-byte values), one system at a time.
declare -A RSS HWM RESTART
for system in keel etcd; do
    bench "$system" load 1 --clients 64 --conns 64 put --sequential-keys \
        --key-space-size "$KEYS" --total "$KEYS" --key-size 16 --val-size 256
    RSS[$system]=$(memory_mib "$system" VmRSS)
    HWM[$system]=$(memory_mib "$system" VmHWM)
    stop_all "$system"
    started=$(date +%s.%N)
    start_all "$system"
    wait_serving "$system"
    RESTART[$system]=$(awk -v a="$(date +%s.%N)" -v b="$started" 'BEGIN {printf "%.2f", a - b}')
    echo "  $system: RSS ${RSS[$system]} MiB (peak ${HWM[$system]}), restart ${RESTART[$system]} s" >&2
done

# median SYSTEM STEP JQ: the median over rounds of a number in the step's reports.
median() {
    jq -s "map($3) | sort | .[(length - 1) / 2 | floor]" "$RESULTS/$1-$2"-[0-9]*.json
}

cpu_per_10k() {
    median "$1" put-64 '.server_cpu_seconds / .ok * 10000'
}

# row LABEL TARGET(ge|le) BOUND KEEL ETCD
row() {
    awk -v label="$1" -v dir="$2" -v bound="$3" -v k="$4" -v e="$5" 'BEGIN {
        ratio = (e > 0) ? k / e : 0
        if (dir == "-") { target = "—"; met = "" }
        else {
            target = (dir == "ge" ? "≥ " : "≤ ") bound "×"
            met = ((dir == "ge" && ratio >= bound) || (dir == "le" && ratio <= bound)) ? "yes" : "no"
        }
        printf "| %s | %s | %.4g | %.4g | %.2f | %s |\n", label, target, k, e, ratio, met
    }'
}

errors=$(jq -s 'map(.errors) | add' "$RESULTS"/*.json)
echo
echo "keel $("$KEEL" --version | awk '{print $2}') vs $(etcd --version | head -1), 3 members each on 127.0.0.1, $(nproc) cores, keel bench over $PROTOCOL; $ROUNDS round(s), --total $TOTAL, median per row; errors in all runs: $errors"
echo
echo "| metric | target (keel/etcd) | keel | etcd | keel/etcd | met |"
echo "| --- | --- | --- | --- | --- | --- |"
row "put ops/s, 64 clients" ge 1.5 "$(median keel put-64 .ops_per_second)" "$(median etcd put-64 .ops_per_second)"
row "put ops/s, 256 clients" ge 1.5 "$(median keel put-256 .ops_per_second)" "$(median etcd put-256 .ops_per_second)"
row "put p99 ms, 64 clients" le 0.8 "$(median keel put-64 .latency_ms.p99)" "$(median etcd put-64 .latency_ms.p99)"
row "put p99 ms, 256 clients" le 0.8 "$(median keel put-256 .latency_ms.p99)" "$(median etcd put-256 .latency_ms.p99)"
row "range linearizable ops/s, 64 clients" ge 2 "$(median keel range-l .ops_per_second)" "$(median etcd range-l .ops_per_second)"
row "range serializable ops/s, 64 clients" ge 2 "$(median keel range-s .ops_per_second)" "$(median etcd range-s .ops_per_second)"
row "txn-put ops/s, 64 clients" - 0 "$(median keel txn-put .ops_per_second)" "$(median etcd txn-put .ops_per_second)"
row "watch event p99 ms, $WATCHERS watchers, 100 puts/s" le 1.0 "$(median keel watch .latency_ms.p99)" "$(median etcd watch .latency_ms.p99)"
row "lease keepalive ops/s, 64 clients" - 0 "$(median keel keepalive .ops_per_second)" "$(median etcd keepalive .ops_per_second)"
row "server CPU s per 10k puts (3 members, put-64)" le 0.6 "$(cpu_per_10k keel)" "$(cpu_per_10k etcd)"
row "RSS MiB per member, $KEYS keys" le 0.5 "${RSS[keel]}" "${RSS[etcd]}"
row "peak RSS MiB per member, $KEYS keys" - 0 "${HWM[keel]}" "${HWM[etcd]}"
row "restart-to-serving s, $KEYS keys" le 1.0 "${RESTART[keel]}" "${RESTART[etcd]}"
