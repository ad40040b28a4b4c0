#!/usr/bin/env bash
# Runs the same auth session against etcd 3.4 and keel and says, per request, whether the
# answers (status + body, ids masked) are the SAME or DIFF. Each server gets its own tokens.
#
# How to run (fresh data dirs; a low bcrypt cost keeps it quick):
#   etcd --data-dir "$(mktemp -d)" --bcrypt-cost 4 --listen-client-urls http://127.0.0.1:23790 \
#        --advertise-client-urls http://127.0.0.1:23790 --listen-peer-urls http://127.0.0.1:23800 \
#        --initial-advertise-peer-urls http://127.0.0.1:23800 \
#        --initial-cluster default=http://127.0.0.1:23800 &
#   cargo run -- serve --single --bcrypt-cost 4 --data-dir "$(mktemp -d)" \
#        --listen-client-urls http://127.0.0.1:23799 --advertise-client-urls http://127.0.0.1:23799 &
#   tests/it/etcd/compare-auth.sh http://127.0.0.1:23790 http://127.0.0.1:23799
#
# Expected DIFFs: the member list of a plain user (by design keel lets only root list
# members; etcd 3.4 lets any user), member URLs, and the sizes, indexes and version of status.
# Last run (etcd 3.4.23): every other request SAME (42 of 45).
set -u
ETCD=$1 KEEL=$2
b() { printf %s "$1" | base64 -w0; }
norm() { sed -E 's/"(cluster_id|member_id|ID|leader)":"[0-9]{6,}"/"\1":"<id>"/g; s/"raft_term":"[0-9]+"/"raft_term":"<t>"/g; s/"revision":"[0-9]+"/"revision":"<r>"/g'; }
declare -A TOKEN
token() { # server name password
  curl -s -X POST "$1/v3/auth/authenticate" -d "{\"name\":\"$2\",\"password\":\"$3\"}" |
    sed -nE 's/.*"token":"([^"]*)".*/\1/p'
}
ask() { # server user path body
  local auth=()
  if [ -n "$2" ]; then auth=(-H "Authorization: ${TOKEN[$1/$2]}"); fi
  curl -s -w ' [%{http_code}]' -X POST "$1$3" "${auth[@]}" -d "$4" | norm
}
req() { # name user path body
  local e k
  e=$(ask "$ETCD" "$2" "$3" "$4")
  k=$(ask "$KEEL" "$2" "$3" "$4")
  if [ "$e" == "$k" ]; then echo "SAME  $1: $e"; else echo "DIFF  $1"; echo "  etcd: $e"; echo "  keel: $k"; fi
}
login() { # user password
  TOKEN[$ETCD/$1]=$(token "$ETCD" "$1" "$2")
  TOKEN[$KEEL/$1]=$(token "$KEEL" "$1" "$2")
}
req enable-noroot "" /v3/auth/enable '{}'
req user-add-root "" /v3/auth/user/add '{"name":"root","password":"rootpw"}'
req enable-norole "" /v3/auth/enable '{}'
req grant-root "" /v3/auth/user/grant '{"user":"root","role":"root"}'
req role-add "" /v3/auth/role/add '{"name":"app"}'
req role-add-dup "" /v3/auth/role/add '{"name":"app"}'
req perm-read "" /v3/auth/role/grant "{\"name\":\"app\",\"perm\":{\"permType\":\"READ\",\"key\":\"$(b /app/)\",\"range_end\":\"$(b /app0)\"}}"
req perm-write "" /v3/auth/role/grant "{\"name\":\"app\",\"perm\":{\"permType\":\"WRITE\",\"key\":\"$(b /a)\"}}"
req role-get "" /v3/auth/role/get '{"role":"app"}'
req role-get-missing "" /v3/auth/role/get '{"role":"nope"}'
req user-add "" /v3/auth/user/add '{"name":"alice","password":"alicepw"}'
req user-add-dup "" /v3/auth/user/add '{"name":"alice","password":"alicepw"}'
req user-add-empty "" /v3/auth/user/add '{"name":"","password":"x"}'
req grant-missing-role "" /v3/auth/user/grant '{"user":"alice","role":"nope"}'
req grant-app "" /v3/auth/user/grant '{"user":"alice","role":"app"}'
req user-get "" /v3/auth/user/get '{"name":"alice"}'
req user-get-missing "" /v3/auth/user/get '{"name":"nobody"}'
req user-list "" /v3/auth/user/list '{}'
req role-list "" /v3/auth/role/list '{}'
req revoke-missing-perm "" /v3/auth/role/revoke "{\"role\":\"app\",\"key\":\"$(b /b)\"}"
req revoke-missing-role "" /v3/auth/user/revoke '{"name":"alice","role":"zzz"}'
req authenticate-disabled "" /v3/auth/authenticate '{"name":"alice","password":"alicepw"}'
req put-app "" /v3/kv/put "{\"key\":\"$(b /app/x)\",\"value\":\"$(b 1)\"}"
req enable "" /v3/auth/enable '{}'
req authenticate-bad "" /v3/auth/authenticate '{"name":"alice","password":"wrong"}'
login alice alicepw
login root rootpw
req range-anonymous "" /v3/kv/range "{\"key\":\"$(b /app/x)\"}"
req range-app alice /v3/kv/range "{\"key\":\"$(b /app/x)\"}"
req range-prefix alice /v3/kv/range "{\"key\":\"$(b /app/)\",\"range_end\":\"$(b /app0)\"}"
req range-other alice /v3/kv/range "{\"key\":\"$(b /other)\"}"
req put-denied alice /v3/kv/put "{\"key\":\"$(b /app/x)\",\"value\":\"$(b 2)\"}"
req put-allowed alice /v3/kv/put "{\"key\":\"$(b /a)\",\"value\":\"$(b 2)\"}"
req txn-denied alice /v3/kv/txn "{\"success\":[{\"request_range\":{\"key\":\"$(b /app/x)\"}}],\"failure\":[{\"request_put\":{\"key\":\"$(b /app/x)\",\"value\":\"$(b 3)\"}}]}"
req user-get-self alice /v3/auth/user/get '{"name":"alice"}'
req user-get-other alice /v3/auth/user/get '{"name":"root"}'
req role-get-own alice /v3/auth/role/get '{"role":"app"}'
req user-list-denied alice /v3/auth/user/list '{}'
req status-alice alice /v3/maintenance/status '{}'
req members-alice alice /v3/cluster/member/list '{}'
req members-root root /v3/cluster/member/list '{}'
req delete-root root /v3/auth/user/delete '{"name":"root"}'
req disable-alice alice /v3/auth/disable '{}'
req delete-alice root /v3/auth/user/delete '{"name":"alice"}'
req range-deleted alice /v3/kv/range "{\"key\":\"$(b /app/x)\"}"
req disable root /v3/auth/disable '{}'
req range-after-disable "" /v3/kv/range "{\"key\":\"$(b /app/x)\"}"
