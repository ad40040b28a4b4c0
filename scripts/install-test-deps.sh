#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain (scripts/test.sh runs this first), so
# a fresh machine passes the suite with one command. Idempotent: installs only what is missing.
set -euo pipefail

# need_deb PACKAGE COMMAND: installs Debian's PACKAGE unless COMMAND is already on PATH.
need_deb() {
    local package=$1 command=$2
    if command -v "$command" >/dev/null 2>&1; then
        return
    fi
    install_deb "$package" "$command"
}

# install_deb PACKAGE WHAT: installs Debian's PACKAGE, which provides WHAT.
install_deb() {
    local package=$1 what=$2
    if [ "$(id -u)" != 0 ]; then
        echo "install-test-deps: $what missing; run as root or: apt-get install $package" >&2
        exit 1
    fi
    if [ -z "${APT_UPDATED:-}" ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}

# Certificate checks in the PKI tests: `openssl verify` of the generated chain.
need_deb openssl openssl

# The chaos suite pauses members with `kill -STOP` / `kill -CONT` (tests/it/chaos/cluster.rs).
need_deb procps kill
# keelctl's parity test runs etcdctl 3.4 and keelctl against the same real etcd 3.4; the gRPC
# tests drive keel with etcdctl as they would etcd.
need_deb etcd-server etcd
need_deb etcd-client etcdctl
# The etcd-client crate (a dev-dependency of the gRPC tests) runs protoc in its build script,
# which also needs protobuf's well-known .proto includes (libprotobuf-dev). keel's own build
# needs neither: its protos are compiled by protox.
need_deb protobuf-compiler protoc
# The host runtime (control/runtime) sets pod links and addresses with iproute2's `ip` (not in
# Debian's minimal base images), and its tests run busybox's httpd, wget, ip and dd inside
# containers (busybox-static, which scripts/build-test-image.sh makes the embedded runtime's
# test image from).
need_deb iproute2 ip
need_deb busybox-static busybox
if [ ! -f /usr/include/google/protobuf/timestamp.proto ]; then
    install_deb libprotobuf-dev "protobuf's well-known .proto files"
fi

# The Kubernetes API tests drive keel with real clients: kubectl v1.32 (on this machine kind
# by default) and the Python `kubernetes` client from PyPI.
if ! command -v kubectl >/dev/null 2>&1; then
    echo "install-test-deps: kubectl (v1.32) is missing; the Kubernetes API tests run it" >&2
    exit 1
fi
if ! python3 -c 'import kubernetes' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'kubernetes==37.0.2'
fi
# openstack's etcd3gw, a client of etcd's JSON gateway (tests/it/etcd3gw.rs).
if ! python3 -c 'import etcd3gw' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'etcd3gw==2.7.0'
fi
# etcd3gw's own test suite, which tests/it/etcd3gw.rs runs against keel, is built on oslotest.
if ! python3 -c 'import oslotest' >/dev/null 2>&1; then
    python3 -m pip install --quiet --disable-pip-version-check 'oslotest==6.1.1'
fi
