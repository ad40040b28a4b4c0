#!/usr/bin/env bash
# Prints the streamed answers (watch, lease keepalive, snapshot) of each URL given, with ids
# masked, so two runs can be diffed:
#   tests/it/etcd/compare-streams.sh http://127.0.0.1:23790 > etcd.out
#   tests/it/etcd/compare-streams.sh http://127.0.0.1:23799 > keel.out
#   diff etcd.out keel.out
# Run it after compare.sh, on the state compare.sh leaves (see compare.sh for the setup).
set -u
b() { printf %s "$1" | base64 -w0; }
norm() { sed -E 's/"(cluster_id|member_id|ID)":"[0-9]{6,}"/"\1":"<id>"/g; s/"raft_term":"[0-9]+"/"raft_term":"<t>"/g'; }
for URL in "$@"; do
  echo "##### $URL"
  echo "== compacted"; timeout 1 curl -s -N -X POST $URL/v3/watch -d "{\"create_request\":{\"key\":\"$(b foo)\",\"start_revision\":\"1\"}}" | norm
  echo "== replay from 4 with prev_kv"; timeout 1 curl -s -N -X POST $URL/v3/watch -d "{\"create_request\":{\"key\":\"$(b a)\",\"range_end\":\"$(b z)\",\"start_revision\":\"4\",\"prev_kv\":true}}" | norm
  echo "== multi"; (printf '%s' "{\"create_request\":{\"key\":\"$(b foo)\",\"watch_id\":\"7\"}} {\"create_request\":{\"key\":\"$(b k1)\",\"filters\":[\"NOPUT\"]}} {\"progress_request\":{}} {\"cancel_request\":{\"watch_id\":\"7\"}}"; sleep 0.7) | timeout 1 curl -s -N -X POST $URL/v3/watch --data-binary @- | norm
  echo "== bad"; timeout 1 curl -s -N -X POST $URL/v3/watch -d "{bad" | norm; echo
  echo "== keepalive x2"; curl -s -X POST $URL/v3/lease/keepalive -d '{"ID":"1001"} {"ID":"999"}' | norm
  echo "== snapshot first line keys"; curl -s -X POST $URL/v3/maintenance/snapshot -d '{}' | head -1 | python3 -c "import json,sys; print(sorted(json.loads(sys.stdin.readline())['result'].keys()))"
done
