#!/usr/bin/env bash
# Runs Vigil's whole test suite on a fresh Debian machine, installing what it needs.
# Used by the README and by .ci/run. In CI (CI=true) a missing tool or service is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked
