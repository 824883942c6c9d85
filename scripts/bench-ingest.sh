#!/usr/bin/env bash
# Quick ingest measurement: DEVICES connections each publish MSGS QoS 1 batch messages (two
# readings each) with mosquitto_pub to the embedded broker of a release build, and the script
# reports stored readings per second. Every PUBACK waits for the SQLite commit (fsync).
# Usage: bash scripts/bench-ingest.sh [DEVICES] [MSGS]      (needs mosquitto-clients)
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
DEVICES=${1:-4}
MSGS=${2:-5000}
cargo build --release --locked -q -p vigil-gateway
B=$PWD/target/release/vigil
T=$(mktemp -d)
trap 'kill $PID 2>/dev/null || true; rm -rf "$T"' EXIT
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
for i in $(seq 1 "$DEVICES"); do
  $B device add --patient bench --kind hub --id "hub-$i" --data-dir "$T/d" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["password"])' > "$T/pw$i"
done
python3 - "$MSGS" > "$T/msgs" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    print('{"ts":%d,"readings":[{"metric":"heart_rate","value":%d},{"metric":"spo2","value":97}]}'
          % (1763774100000 + i * 1000, 60 + i % 40))
PY
HTTP=127.0.0.1:$((20000 + RANDOM % 10000)); MQTT=$((30000 + RANDOM % 10000))
$B run --data-dir "$T/d" --http-addr "$HTTP" --mqtt-addr "127.0.0.1:$MQTT" >/dev/null 2>"$T/log" &
PID=$!
until curl -sf "http://$HTTP/readyz" >/dev/null; do sleep 0.2; done
start=$(date +%s.%N)
for i in $(seq 1 "$DEVICES"); do
  mosquitto_pub -h 127.0.0.1 -p "$MQTT" -q 1 -u "hub-$i" -P "$(cat "$T/pw$i")" -i "hub-$i-bench" \
    -t "vigil/v1/hub-$i/readings" -l < "$T/msgs" &
done
wait $(jobs -p | grep -v "^$PID$")
end=$(date +%s.%N)
stored=$(curl -s "http://$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')
rss=$(ps -o rss= -p $PID)
python3 -c "import sys; d=$end-$start; print(f'$DEVICES devices x $MSGS msgs: {$stored} readings stored in {d:.2f} s = {$stored/d:.0f} readings/s; RSS {$rss/1024:.0f} MiB')"
