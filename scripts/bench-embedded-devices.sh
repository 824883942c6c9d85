#!/usr/bin/env bash
# The embedded broker with many connected devices (issue #3: gateway RSS < 150 MB with 10 000
# devices). Provisions DEVICES devices, then `vigil-sim load --credentials` connects each one
# with its own credentials to a release `vigil run` (embedded broker) and publishes MSGS
# readings per device; reports stored readings and the gateway's RSS.
# Usage: bash scripts/bench-embedded-devices.sh [DEVICES] [MSGS]
#   RATE=N (env): publish N messages/s in total, so every device stays connected for
#   MSGS * DEVICES / N seconds (default: as fast as possible). The report gives the largest
#   number of devices seen connected at once.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
DEVICES=${1:-10000}
MSGS=${2:-5}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=$PWD/target/release/vigil
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port)
ulimit -n "$(ulimit -Hn)"
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
t0=$(date +%s)
seq 0 $((DEVICES - 1)) | xargs -P "$(nproc)" -I{} "$B" device add --patient bench --kind hub --id "dev-{}" --data-dir "$T/d" --json > "$T/creds"
echo "provisioned $DEVICES devices in $(( $(date +%s) - t0 )) s"
RUST_LOG=warn $B run --data-dir "$T/d" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$MQ" >/dev/null 2>"$T/log" &
VPID=$!; PIDS+=($VPID)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
idle=$(ps -o rss= -p $VPID)
t0=$(date +%s.%N)
$SIM load --broker "mqtt://127.0.0.1:$MQ" --credentials "$T/creds" --messages "$MSGS" --rate "${RATE:-0}" > "$T/load" &
LPID=$!
peak=0; most=0; n=0
while kill -0 $LPID 2>/dev/null; do
  r=$(ps -o rss= -p $VPID); [ "$r" -gt "$peak" ] && peak=$r
  # Counting sockets is not free with 10 000 of them: once a second.
  if [ $((n++ % 5)) = 0 ]; then
    c=$(ss -Htn state established "( sport = :$MQ )" | wc -l); [ "$c" -gt "$most" ] && most=$c
  fi
  sleep 0.2
done
t1=$(date +%s.%N)
stored=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')
echo "load: $(cat "$T/load")"
python3 -c "print(f'$DEVICES connected devices x $MSGS readings: stored $stored in {$t1-$t0:.1f} s; at most $most connected at once; gateway RSS idle {$idle/1024:.0f} MiB, peak {$peak/1024:.0f} MiB')"
