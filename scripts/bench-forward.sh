#!/usr/bin/env bash
# InfluxDB forwarder drain (issue #4 benchmark). Starts Mosquitto and a release `vigil run`
# (external mode) whose [influxdb] url points at a VictoriaMetrics that is not running yet;
# `vigil-sim load` publishes POINTS readings (hub batches of 10), which pile up in the forward
# queue; then VictoriaMetrics starts and the script times the drain and checks the count the
# server holds.
# Usage: bash scripts/bench-forward.sh [POINTS]   (needs mosquitto, victoria-metrics)
#   LIVE=N (env): also publish N live readings (hub batches of 10, QoS 1) twice: once while the
#   server is still down (baseline) and once during the drain, and report both ingest rates, so
#   one run shows whether draining the backlog starves live traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
POINTS=${1:-1000000}
DEVICES=20
MSGS=$((POINTS / DEVICES / 10))
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=${VIGIL_BIN:-$PWD/target/release/vigil}  # VIGIL_BIN: compare two builds
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port); VM=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\nmax_inflight_messages 1000\n' "$MQ" > "$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" & PIDS+=($!)
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
for i in $(seq 0 $((DEVICES - 1))); do
  $B device add --patient bench --kind hub --id "load-$i" --data-dir "$T/d" --json >/dev/null
done
metric() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
VIGIL_MQTT_BROKER_URL="mqtt://127.0.0.1:$MQ" VIGIL_MQTT_CLIENT_ID=bench-gw RUST_LOG=error \
  VIGIL_INFLUXDB_URL="http://127.0.0.1:$VM" VIGIL_INFLUXDB_BUCKET=vitals \
  $B run --data-dir "$T/d" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$(port)" >/dev/null 2>"$T/log" &
VPID=$!; PIDS+=($VPID)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
$SIM load --broker "mqtt://127.0.0.1:$MQ" --devices $DEVICES --messages $MSGS --readings-per-message 10 >/dev/null
until [ "$(metric vigil_influxdb_backlog_points)" = "$POINTS" ]; do sleep 0.2; done
LIVE=${LIVE:-0}
live() {  # $1: start time of the readings, so that each phase's readings are new ones
  $SIM load --broker "mqtt://127.0.0.1:$MQ" --devices $DEVICES --messages $((LIVE / DEVICES / 10)) \
    --readings-per-message 10 --start-ms "$1" \
    | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["acked_per_second"] * 10))'
}
TOTAL=$POINTS
if [ "$LIVE" -gt 0 ]; then
  base=$(live $(( $(date +%s) * 1000 - 3 * 3600 * 1000 )))
  TOTAL=$((POINTS + 2 * LIVE))
  until [ "$(metric vigil_influxdb_backlog_points)" = "$((POINTS + LIVE))" ]; do sleep 0.2; done
fi
echo "queued: $(metric vigil_readings_stored_total) stored, $(metric vigil_influxdb_backlog_points) waiting"
victoria-metrics -httpListenAddr="127.0.0.1:$VM" -storageDataPath="$T/vm" -retentionPeriod=100y >/dev/null 2>&1 &
VMPID=$!; PIDS+=($VMPID)
until curl -sf "http://127.0.0.1:$VM/health" >/dev/null; do sleep 0.05; done
tup=$(date +%s.%N)
# The forwarder notices the server at its next retry (backoff up to 30 s); the drain is timed
# from the first accepted request (less the 20 ms polling step), the wait before it is
# reported separately.
until [ "$(metric vigil_influxdb_forwarded_points_total)" != "0" ]; do sleep 0.02; done
c0=$(awk '{print $14 + $15}' "/proc/$VPID/stat"); v0=$(awk '{print $14 + $15}' "/proc/$VMPID/stat")
t0=$(date +%s.%N); f0=$(metric vigil_influxdb_forwarded_points_total)
if [ "$LIVE" -gt 0 ]; then
  live $(( $(date +%s) * 1000 - 2 * 3600 * 1000 )) > "$T/during" & LIVEPID=$!
fi
until [ "$(metric vigil_influxdb_forwarded_points_total)" -ge "$TOTAL" ]; do sleep 0.02; done
t1=$(date +%s.%N)
c1=$(awk '{print $14 + $15}' "/proc/$VPID/stat"); v1=$(awk '{print $14 + $15}' "/proc/$VMPID/stat")
# The server makes what it took searchable after a few seconds: count until it stops growing.
count() { curl -s "http://127.0.0.1:$VM/api/v1/export" -d 'match[]=vitals_value' \
  | python3 -c 'import json,sys; print(sum(len(json.loads(l)["values"]) for l in sys.stdin if l.strip()))'; }
held=0
for _ in $(seq 1 15); do
  sleep 2; now=$(count)
  [ "$now" = "$held" ] && [ "$now" != 0 ] && break
  held=$now
done
# The rate counts only the points accepted after t0 (the first answer's points came before).
python3 -c "d=$t1-$t0; n=$TOTAL-$f0; print(f'drained $TOTAL points: the last {n} in {d:.2f} s = {n/d:.0f} points/s (first request {$t0-$tup:.2f} s after the server was up); CPU s: gateway {($c1-$c0)/100:.2f}, server {($v1-$v0)/100:.2f}; server holds {$held} points')"
if [ "$LIVE" -gt 0 ]; then
  wait $LIVEPID
  echo "live ingest of $LIVE readings: $base readings/s with the server down, $(cat "$T/during") readings/s during the drain"
fi
