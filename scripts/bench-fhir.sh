#!/usr/bin/env bash
# FHIR R4 benchmark (issue #18): one patient's heart rate at one reading a minute for DAYS days
# (43 200 readings for 30) published through Mosquitto to a release `vigil run`, then
#   - Observation search, the first page of 1 000 (median of 7), and every page of the 30 days
#     followed through `next` links (total and per page);
#   - one day's search (1 440 Observations in one page, median of 7);
#   - Observation/{id} (median of 7);
#   - `vigil fhir export` of the whole patient (resources/s).
# Usage: bash scripts/bench-fhir.sh [DAYS]   (needs mosquitto)
set -euo pipefail
cd "$(dirname "$0")/.."
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
N=$((DAYS * 1440))
NOW=$(date +%s%3N)
START=$((NOW - N * 60000))
$SIM load --broker "mqtt://127.0.0.1:$MQ" --devices 1 --connections 1 --messages $((N / 60)) \
  --readings-per-message 60 --step-ms 60000 --start-ms "$START" >/dev/null
until [ "$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '$1 == "vigil_readings_stored_total" {print $2}')" -ge "$N" ]; do sleep 0.2; done
echo "stored $N readings ($DAYS days, one a minute)"
BASE="http://127.0.0.1:$HTTP/fhir/r4"
python3 - "$BASE" "$TOKEN" "$NOW" "$DAYS" <<'PY'
import json, statistics, sys, time, urllib.request, datetime
base, token, now, days = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def get(url):
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        body = json.loads(r.read())
    return body, time.perf_counter() - t
def iso(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
since = iso(now - days * 86_400_000 - 60_000)
first = f"{base}/Observation?patient=bench&code=8867-4&date=ge{since}&_count=1000"
times = sorted(get(first)[1] for _ in range(7))
print(f"first page of 1 000 Observations: median {times[3]*1000:.1f} ms")
url, pages, total, t0, per = first, 0, 0, time.perf_counter(), []
while url:
    body, dt = get(url)
    per.append(dt)
    pages += 1
    total += len(body.get("entry", []))
    url = next((l["url"] for l in body["link"] if l["relation"] == "next"), None)
elapsed = time.perf_counter() - t0
print(f"all {days} days: {total} Observations in {pages} pages, {elapsed:.2f} s "
      f"({total/elapsed:.0f} Observations/s; page median {statistics.median(per)*1000:.1f} ms)")
day = f"{base}/Observation?patient=bench&code=8867-4&date=ge{iso(now - 86_400_000)}&_count=1000"
dt = sorted(get(day)[1] for _ in range(7))
n = len(get(day)[0].get("entry", []))
print(f"last day's first page ({n} Observations): median {dt[3]*1000:.1f} ms")
oid = get(first)[0]["entry"][0]["resource"]["id"]
one = sorted(get(f"{base}/Observation/{oid}")[1] for _ in range(7))
print(f"Observation/{{id}}: median {one[3]*1000:.2f} ms")
PY
OUT=$($B fhir export --patient bench --out "$T/bench.fhir.json" --data-dir "$T/d" --json)
python3 -c "
import json,os,sys; o=json.loads(sys.argv[1]); n=o['observations']+o['devices']+1
print(f\"vigil fhir export: {n} resources in {o['seconds']:.2f} s = {n/o['seconds']:.0f} resources/s, {os.path.getsize(sys.argv[2])/1e6:.1f} MB\")
" "$OUT" "$T/bench.fhir.json"
