#!/usr/bin/env bash
# Runs the whole test suite: unit tests, the shell's pseudo-terminal tests and every
# sql-tests/**/*.slt file. Installs nothing today; the Kafka broker is added
# here when the Kafka connector lands.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --no-fail-fast "$@"
