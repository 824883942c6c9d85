#!/usr/bin/env bash
# Chart queries on the local store (issue #4 benchmark): one patient with DAYS days of heart rate at
# 1 Hz (86 400 readings a day) published through Mosquitto to a release `vigil run`, then the
# readings API timed for a 24-hour chart (raw, and `resolution=auto` → minutes) and a 30-day
# chart (`resolution=auto` → hours),
# median of 7 requests each, plus the ingest rate of the fill.
# Usage: bash scripts/bench-history.sh [DAYS]   (needs mosquitto)
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
DAYS=${1:-30}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=$PWD/target/release/vigil
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest none\nmax_queued_messages 0\n' "$MQ" > "$T/mosquitto.conf"
mosquitto -c "$T/mosquitto.conf" & PIDS+=($!)
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
$B device add --patient bench --kind hub --id "load-0" --data-dir "$T/d" --json >/dev/null
TOKEN=$($B token create --name bench --data-dir "$T/d" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
VIGIL_MQTT_BROKER_URL="mqtt://127.0.0.1:$MQ" VIGIL_MQTT_CLIENT_ID=bench-gw RUST_LOG=error \
  VIGIL_STORAGE_RAW_RETENTION_DAYS=0 \
  $B run --data-dir "$T/d" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$(port)" >/dev/null 2>"$T/log" &
PIDS+=($!)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
N=$((DAYS * 86400))
NOW=$(date +%s%3N)
START=$((NOW - N * 1000))
t0=$(date +%s.%N)
$SIM load --broker "mqtt://127.0.0.1:$MQ" --devices 1 --connections 1 --messages $((N / 100)) \
  --readings-per-message 100 --step-ms 1000 --start-ms "$START" >/dev/null
until [ "$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '$1 == "vigil_readings_stored_total" {print $2}')" -ge "$N" ]; do sleep 0.2; done
t1=$(date +%s.%N)
python3 -c "print(f'filled {$N} readings ({$DAYS} days at 1 Hz) in {$t1-$t0:.1f} s = {$N/($t1-$t0):.0f} readings/s')"
iso() { python3 -c "import datetime,sys; print(datetime.datetime.fromtimestamp(int(sys.argv[1])/1000, datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))" "$1"; }
timeit() {
  for _ in 1 2 3 4 5 6 7; do
    curl -s -o "$T/body" -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "$1"
  done | sort -n | sed -n 4p
}
DAY_FROM=$(iso $((NOW - 86400000))); MONTH_FROM=$(iso $((NOW - 30 * 86400000)))
U="http://127.0.0.1:$HTTP/api/v1/patients/bench/readings?metric=heart_rate"
d=$(timeit "$U&from=$DAY_FROM&limit=100000&resolution=raw")
dn=$(python3 -c "import json; print(len(json.load(open('$T/body'))['readings']))")
a=$(timeit "$U&from=$DAY_FROM&resolution=auto")
an=$(python3 -c "import json; b=json.load(open('$T/body')); print(b['resolution'], len(b['buckets']))")
m=$(timeit "$U&from=$MONTH_FROM&resolution=auto")
mn=$(python3 -c "import json; b=json.load(open('$T/body')); print(b['resolution'], len(b['buckets']))")
echo "24-hour raw chart: $dn readings, median $(python3 -c "print(f'{$d*1000:.1f}')") ms"
echo "24-hour chart (auto): $an buckets, median $(python3 -c "print(f'{$a*1000:.1f}')") ms"
echo "30-day chart (auto): $mn buckets, median $(python3 -c "print(f'{$m*1000:.1f}')") ms"
