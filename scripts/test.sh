#!/usr/bin/env bash
# The project's test command (the README names it; CI runs it via .ci/run).
# Formatting, lints as errors, then every test in the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh

cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
cargo test --workspace --doc
