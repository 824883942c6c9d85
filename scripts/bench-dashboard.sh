#!/usr/bin/env bash
# Issue #6's dashboard targets: the ward view's data (GET /api/v1/patients) and the ward view
# page (GET /, server-rendered with sparklines) for PATIENTS patients, each with a day of
# vitals from a hub, in < 100 ms server time. A release
# `vigil run` with its embedded broker; every patient gets a hub device that publishes
# READINGS batches of five vitals (one a minute over the last READINGS minutes); then the ward
# view is fetched RUNS times and the median and worst are printed (curl's time to the last
# byte on loopback: server time plus a local round trip).
# Then patient p0 gets 30 days of the same vitals, one batch a minute (216 000 readings), and
# its page with 30-day charts (GET /patients/p0?range=30d, server-rendered with SVG charts) is
# fetched RUNS times as a signed-in clinician.
# Usage: PATIENTS=1000 bash scripts/bench-dashboard.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
PATIENTS=${PATIENTS:-1000}
READINGS=${READINGS:-60}
RUNS=${RUNS:-21}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=$PWD/target/release/vigil
T=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port)
D="$T/d"
provision() {
  "$B" patient add --name "Bệnh nhân $1" --id "p$1" --data-dir "$D" --json >/dev/null
  "$B" device add --patient "p$1" --kind hub --id "hub-$1" --data-dir "$D" --json
}
export -f provision; export B D
t0=$(date +%s)
seq 0 $((PATIENTS - 1)) | xargs -P "$(nproc)" -I{} bash -c 'provision {}' > "$T/hubs.jsonl"
echo "provisioned $PATIENTS patients in $(( $(date +%s) - t0 )) s"
TOKEN=$($B token create --name bench --data-dir "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
RUST_LOG=${RUST_LOG:-warn} $B run --data-dir "$D" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$MQ" >/dev/null 2>"$T/log" &
PIDS+=($!)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
# Each hub publishes READINGS batches of five vitals, one a minute up to now.
cat > "$T/publish.py" <<'PY'
import json, socket, struct, sys, time
hubs = [json.loads(l) for l in open(sys.argv[1])][: int(sys.argv[4]) if len(sys.argv) > 4 else None]
port, n = int(sys.argv[2]), int(sys.argv[3])
def enc(s): b = s.encode(); return struct.pack("!H", len(b)) + b
def packet(kind, body): 
    out, l = bytes([kind]), len(body)
    while True:
        d, l = l % 128, l // 128
        out += bytes([d | (128 if l else 0)])
        if not l: break
    return out + body
now = int(time.time() * 1000)
for h in hubs:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(packet(0x10, enc("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", 60) + enc(h["id"] + "-bench") + enc(h["id"]) + enc(h["password"])))
    assert s.recv(4)[3] == 0, "CONNACK"
    for i in range(n):
        ts = now - (n - i) * 60_000
        body = json.dumps({"ts": ts, "readings": [
            {"metric": "heart_rate", "value": 70 + i % 10}, {"metric": "spo2", "value": 96},
            {"metric": "bp_systolic", "value": 128}, {"metric": "temperature", "value": 36.7},
            {"metric": "respiratory_rate", "value": 16}]})
        s.sendall(packet(0x32, enc(f"vigil/v1/{h['id']}/readings") + struct.pack("!H", i + 1) + body.encode()))
        s.recv(4)  # PUBACK: stored
    s.sendall(bytes([0xE0, 0])); s.close()
PY
python3 "$T/publish.py" "$T/hubs.jsonl" "$MQ" "$READINGS"
stored=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')
echo "stored $stored readings"
for i in $(seq 1 "$RUNS"); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$HTTP/api/v1/patients"
done | sort -n | awk -v n="$RUNS" '{a[NR]=$1} END {printf "GET /api/v1/patients (%d patients): median %.1f ms, worst %.1f ms over %d runs\n", '"$PATIENTS"', a[int((n+1)/2)]*1000, a[n]*1000, n}'
printf 'ward-watch-2026-x\n' | $B user add --name bench --password-stdin --data-dir "$D" --json >/dev/null
COOKIE=$(curl -s -o /dev/null -D - -d 'username=bench&password=ward-watch-2026-x' "http://127.0.0.1:$HTTP/login" | awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^vigil_session=/ {print $2}')
# The ward view page itself: every row rendered with its sparkline. The first request reads
# every sparkline; later ones within a minute reuse them (the first is printed apart).
for i in $(seq 1 "$RUNS"); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTP/"
done > "$T/ward.txt"
awk 'NR==1 {printf "GET / (ward view page, %d patients), first (sparklines read): %.1f ms\n", '"$PATIENTS"', $1*1000}' "$T/ward.txt"
sort -n "$T/ward.txt" | awk -v n="$RUNS" '{a[NR]=$1} END {printf "GET / (ward view page, %d patients): median %.1f ms, worst %.1f ms over %d runs\n", '"$PATIENTS"', a[int((n+1)/2)]*1000, a[n]*1000, n}'
curl -s -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTP/" | grep -c 'class="spark"><svg' | sed 's/^/sparklines drawn: /'
# With RUST_LOG=vigil_dashboard=debug: where the ward view's time goes (server side).
grep -E 'ward view (data|rows)|rendered' "$T/log" | tail -6 || true
# The patient page with 30-day charts.
python3 "$T/publish.py" "$T/hubs.jsonl" "$MQ" 43200 1
for i in $(seq 1 "$RUNS"); do
  curl -s -o /dev/null -w '%{time_total}\n' -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTP/patients/p0?range=30d"
done | sort -n | awk -v n="$RUNS" '{a[NR]=$1} END {printf "GET /patients/p0?range=30d (30 days of 5 vitals): median %.1f ms, worst %.1f ms over %d runs\n", a[int((n+1)/2)]*1000, a[n]*1000, n}'
curl -s -H "Cookie: $COOKIE" "http://127.0.0.1:$HTTP/patients/p0?range=30d" | grep -c '<polyline' | sed 's/^/chart lines drawn: /'
