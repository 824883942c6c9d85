#!/usr/bin/env bash
# Gateway memory with many devices (issue #3: RSS < 150 MB with 10 000 devices). Provisions
# DEVICES devices with the CLI (argon2 hashing makes this take minutes), then has each publish
# MSGS readings through a local Mosquitto to a release `vigil run` in external mode, and reports
# the gateway's peak RSS. External mode: the broker holds the device connections; the gateway
# holds per-device state (registry cache, last seen).
# Usage: bash scripts/bench-devices.sh [DEVICES] [MSGS]
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
DEVICES=${1:-10000}
MSGS=${2:-10}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=$PWD/target/release/vigil
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d); chmod 755 "$T"
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port)
printf "listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\nmax_inflight_messages 1000\n" "$MQ" > "$T/m.conf"
mosquitto -c "$T/m.conf" & PIDS+=($!)
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
t0=$(date +%s)
seq 0 $((DEVICES - 1)) | xargs -P "$(nproc)" -I{} "$B" device add --patient bench --kind hub --id "load-{}" --data-dir "$T/d" --json >/dev/null
echo "provisioned $DEVICES devices in $(( $(date +%s) - t0 )) s"
export VIGIL_MQTT_BROKER_URL="mqtt://127.0.0.1:$MQ" VIGIL_MQTT_CLIENT_ID=bench-devices RUST_LOG=warn
$B run --data-dir "$T/d" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$(port)" >/dev/null 2>"$T/log" &
VPID=$!; PIDS+=($VPID)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
idle=$(ps -o rss= -p $VPID)
$SIM load --broker "mqtt://127.0.0.1:$MQ" --devices "$DEVICES" --connections 8 --messages "$MSGS" >/dev/null &
LPID=$!
peak=0
while kill -0 $LPID 2>/dev/null || [ "$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')" -lt $((DEVICES * MSGS)) ]; do
  r=$(ps -o rss= -p $VPID); [ "$r" -gt "$peak" ] && peak=$r
  sleep 0.1
done
stored=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')
echo "$DEVICES devices x $MSGS readings: stored $stored; gateway RSS idle $((idle / 1024)) MiB, peak $((peak / 1024)) MiB"
