#!/usr/bin/env bash
# Sends the same unary requests to etcd 3.4 and to keel and says, per request, whether the
# answers (status + body, with ids and sizes masked) are the SAME or DIFF.
#
# How to run (both on a fresh data dir, so revisions line up):
#   apt-get install -y etcd-server
#   etcd --data-dir "$(mktemp -d)" --listen-client-urls http://127.0.0.1:23790 \
#        --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
#        --initial-advertise-peer-urls http://127.0.0.1:23800 \
#        --initial-cluster default=http://127.0.0.1:23800 &
#   cargo run -- serve --single --data-dir "$(mktemp -d)" \
#        --listen-client-urls http://127.0.0.1:23799 --advertise-client-urls http://127.0.0.1:23799 &
#   tests/it/etcd/compare.sh http://127.0.0.1:23790 http://127.0.0.1:23799
#
# Expected DIFFs (by design): the wording of JSON syntax errors (Go's vs serde's), the lease
# list order (etcd's is map order), member URLs and /version, and unknown paths, which keel
# answers in the gateway's JSON error shape (code 5) where etcd writes plain "Not Found".
set -u
ETCD=$1 KEEL=$2
b() { printf %s "$1" | base64 -w0; }
norm() { sed -E 's/"(cluster_id|member_id|ID|leader)":"[0-9]{6,}"/"\1":"<id>"/g; s/"raft_term":"[0-9]+"/"raft_term":"<t>"/g; s/"(dbSize|dbSizeInUse|raftIndex|raftAppliedIndex|raftTerm|hash)":"?[0-9]+"?/"\1":<n>/g; s/"version":"3[^"]*"/"version":"<v>"/'; }
req() { # name path body
  local e k
  e=$(curl -s -w ' [%{http_code}]' -X POST "$ETCD$2" -d "$3" | norm)
  k=$(curl -s -w ' [%{http_code}]' -X POST "$KEEL$2" -d "$3" | norm)
  if [ "$e" == "$k" ]; then echo "SAME  $1: $e"; else echo "DIFF  $1"; echo "  etcd: $e"; echo "  keel: $k"; fi
}
req put1 /v3/kv/put "{\"key\":\"$(b foo)\",\"value\":\"$(b bar)\"}"
req put-prev /v3/kv/put "{\"key\":\"$(b foo)\",\"value\":\"$(b baz)\",\"prev_kv\":true}"
req range /v3/kv/range "{\"key\":\"$(b foo)\"}"
req range-missing /v3/kv/range "{\"key\":\"$(b zzz)\"}"
req range-sorted /v3/kv/range "{\"key\":\"$(b a)\",\"range_end\":\"$(b z)\",\"sort_order\":\"DESCEND\",\"sort_target\":\"MOD\",\"limit\":1}"
req range-count /v3/kv/range "{\"key\":\"$(b a)\",\"range_end\":\"$(b z)\",\"count_only\":true}"
req range-numenum /v3/kv/range "{\"key\":\"$(b a)\",\"range_end\":\"$(b z)\",\"sort_order\":2,\"limit\":\"1\",\"keys_only\":true}"
req range-emptykey /v3/kv/range '{"key":""}'
req put-emptykey /v3/kv/put '{"key":""}'
req range-future /v3/kv/range "{\"key\":\"$(b foo)\",\"revision\":100}"
req bad-json /v3/kv/range '{bad json'
req unknown-field /v3/kv/range "{\"key\":\"$(b foo)\",\"nosuch\":1}"
req bad-enum /v3/kv/range '{"key":"YQ==","sort_order":"BOGUS"}'
req empty-body /v3/kv/range ''
req del-prev /v3/kv/deleterange "{\"key\":\"$(b foo)\",\"prev_kv\":true}"
req del-none /v3/kv/deleterange "{\"key\":\"$(b foo)\"}"
req put-k1 /v3/kv/put "{\"key\":\"$(b k1)\",\"value\":\"$(b v1)\"}"
req txn-cas /v3/kv/txn "{\"compare\":[{\"key\":\"$(b k1)\",\"result\":\"EQUAL\",\"target\":\"VALUE\",\"value\":\"$(b v1)\"}],\"success\":[{\"request_put\":{\"key\":\"$(b k1)\",\"value\":\"$(b v2)\"}},{\"request_range\":{\"key\":\"$(b k1)\"}}],\"failure\":[]}"
req txn-fail /v3/kv/txn "{\"compare\":[{\"key\":\"$(b k1)\",\"target\":\"MOD\",\"result\":\"LESS\",\"mod_revision\":\"1\"}],\"success\":[],\"failure\":[{\"request_delete_range\":{\"key\":\"$(b k1)\"}},{\"request_txn\":{}}]}"
req txn-dup /v3/kv/txn "{\"success\":[{\"request_put\":{\"key\":\"$(b k1)\",\"value\":\"$(b v2)\"}},{\"request_put\":{\"key\":\"$(b k1)\",\"value\":\"$(b v2)\"}}]}"
req txn-readonly /v3/kv/txn '{"compare":[{"key":"YQ==","target":"VERSION","result":"EQUAL"}],"success":[{"request_range":{"key":"YQ=="}}]}'
req compact /v3/kv/compaction '{"revision":"3"}'
req compact-again /v3/kv/compaction '{"revision":"3"}'
req compact-future /v3/kv/compaction '{"revision":"300"}'
req range-compacted /v3/kv/range "{\"key\":\"$(b foo)\",\"revision\":2}"
req put-nolease /v3/kv/put "{\"key\":\"$(b x)\",\"value\":\"$(b y)\",\"lease\":\"12345\"}"
req put-ignore-missing /v3/kv/put "{\"key\":\"$(b nokey)\",\"ignore_value\":true}"
req grant /v3/lease/grant '{"TTL":"60","ID":"1000"}'
req grant-dup /v3/lease/grant '{"TTL":"60","ID":"1000"}'
req grant-min /v3/lease/grant '{"TTL":"0","ID":"1001"}'
req grant-toolarge /v3/lease/grant '{"TTL":"99999999999"}'
req put-lease /v3/kv/put "{\"key\":\"$(b lk)\",\"value\":\"$(b y)\",\"lease\":\"1000\"}"
req ttl-keys /v3/lease/timetolive '{"ID":"1000","keys":true}'
req ttl-missing /v3/kv/lease/timetolive '{"ID":"999"}'
req leases /v3/lease/leases '{}'
req keepalive /v3/lease/keepalive '{"ID":"1000"}'
req keepalive-missing /v3/lease/keepalive '{"ID":"999"}'
req revoke-missing /v3/lease/revoke '{"ID":"999"}'
req revoke /v3/kv/lease/revoke '{"ID":"1000"}'
req status /v3/maintenance/status '{}'
req hash /v3/maintenance/hash '{}'
req alarm /v3/maintenance/alarm '{"action":"GET"}'
req defrag /v3/maintenance/defragment '{}'
req members /v3/cluster/member/list '{}'
req unknown-path /v3/kv/nothing '{}'
for p in /health /version /nope; do
  e=$(curl -s -w ' [%{http_code}]' "$ETCD$p" | norm); k=$(curl -s -w ' [%{http_code}]' "$KEEL$p" | norm)
  if [ "$e" == "$k" ]; then echo "SAME  GET $p: $e"; else echo "DIFF  GET $p"; echo "  etcd: $e"; echo "  keel: $k"; fi
done
