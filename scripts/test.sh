#!/usr/bin/env bash
# The project's test command (the README names it; CI runs it via .ci/run).
# Formatting, lints as errors, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# One test at a time: most tests run whole clusters with Raft timers, and two of them sharing
# the 2 cores of a CI machine made elections (and so timeouts) out of CPU starvation.
RUST_TEST_THREADS=1 cargo test --workspace --all-targets
cargo test --workspace --doc
