#!/usr/bin/env bash
# Issue #5's alerting latency: p99 from MQTT publish to alert persisted (seen on the live
# stream: an upper bound) while ingesting RATE readings/s, and p99 from publish to the family
# e-mail handed to a real SMTP server (aiosmtpd). A release `vigil run` with its embedded
# broker; LOAD devices publish RATE single readings/s of normal heart rates (every one evaluated
# by the rules: times are live, not late); PROBES patients each get one SpO2 85 % reading,
# INTERVAL_MS apart, from their own device.
# Usage: RATE=10000 PROBES=200 bash scripts/bench-alert-latency.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
RATE=${RATE:-10000}
PROBES=${PROBES:-200}
LOAD=${LOAD:-20}
INTERVAL_MS=${INTERVAL_MS:-100}
# Extra dashboard live-stream clients, each timing every alert (issue #6: 100 within 1 s); with
# WARD=1 each also fetches the ward view's changing part on every alert, as the page's script
# does, and times publish → a ward view showing the patient red. PATIENTS more patients (with
# an hour of readings each, so every ward row has values and a sparkline) fill the ward view.
STREAMS=${STREAMS:-0}
WARD=${WARD:-0}
PATIENTS=${PATIENTS:-0}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=$PWD/target/release/vigil
SIM=$PWD/target/release/vigil-sim
PY=python3; $PY -c 'import aiosmtpd' 2>/dev/null || PY=/usr/bin/python3
T=$(mktemp -d)
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port); SMTP=$(port)
$PY -m aiosmtpd -n -l "127.0.0.1:$SMTP" -c aiosmtpd.handlers.Mailbox "$T/mail" 2>/dev/null & PIDS+=($!)

D="$T/d"
$B patient add --name "Load" --id load --data-dir "$D" --json >/dev/null
seq 0 $((LOAD - 1)) | xargs -P "$(nproc)" -I{} "$B" device add --patient load --kind hub --id "load-{}" --data-dir "$D" --json > "$T/load.jsonl"
provision() {
  "$B" patient add --name "Probe $1" --id "probe-$1" --data-dir "$D" --json >/dev/null
  "$B" contact add --patient "probe-$1" --name "Probe family $1" --email "probe-$1@example.org" --data-dir "$D" --json >/dev/null
  "$B" device add --patient "probe-$1" --kind pulse_oximeter --id "probe-dev-$1" --data-dir "$D" --json
}
export -f provision; export B D
seq 0 $((PROBES - 1)) | xargs -P "$(nproc)" -I{} bash -c 'provision {}' > "$T/probe-devices.jsonl"
python3 - "$T/probe-devices.jsonl" > "$T/probes.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line); i = d["id"].rsplit("-", 1)[1]
    print(json.dumps({"id": d["id"], "password": d["password"], "patient": f"probe-{i}", "tag": f"probe-{i}@"}))
PY
TOKEN=$($B token create --name bench --data-dir "$D" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
ward_patient() {
  "$B" patient add --name "Ward $1" --id "ward-$1" --data-dir "$D" --json >/dev/null
  "$B" device add --patient "ward-$1" --kind hub --id "ward-hub-$1" --data-dir "$D" --json
}
export -f ward_patient
[ "$PATIENTS" -gt 0 ] && seq 0 $((PATIENTS - 1)) | xargs -P "$(nproc)" -I{} bash -c 'ward_patient {}' > "$T/ward.jsonl"
[ "$WARD" = 1 ] && printf 'ward-watch-2026-x\n' | $B user add --name bench --admin --password-stdin --data-dir "$D" --json >/dev/null

export VIGIL_SMTP_HOST=127.0.0.1 VIGIL_SMTP_PORT=$SMTP VIGIL_SMTP_SECURITY=none RUST_LOG=warn
$B run --data-dir "$D" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$MQ" >/dev/null 2>"$T/log" &
VPID=$!; PIDS+=($VPID)
until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
if [ "$PATIENTS" -gt 0 ]; then
  # An hour of five vitals a minute for each ward patient, 60 messages per hub at once.
  $SIM load --broker "mqtt://127.0.0.1:$MQ" --credentials "$T/ward.jsonl" --rate 20000 \
    --messages 60 --start-ms "$(( $(date +%s%3N) - 3600000 ))" --step-ms 60000 >/dev/null
fi
WARD_ARGS=()
if [ "$WARD" = 1 ]; then
  COOKIE=$(curl -s -o /dev/null -D - -d 'username=bench&password=ward-watch-2026-x' "http://127.0.0.1:$HTTP/login" | awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^vigil_session=/ {print $2}')
  WARD_ARGS=(--ward-cookie "$COOKIE")
fi

# Background load for the whole probe run (plus ramp-up and settling), with live times: each
# device publishes RATE/LOAD readings a second, so step the readings' times by LOAD*1000/RATE ms.
SECS=$(( PROBES * INTERVAL_MS / 1000 + 25 ))
STEP=$(( LOAD * 1000 / RATE )); [ "$STEP" -ge 1 ] || STEP=1
$SIM load --broker "mqtt://127.0.0.1:$MQ" --credentials "$T/load.jsonl" --rate "$RATE" \
  --messages $(( RATE * SECS / LOAD )) --start-ms "$(date +%s%3N)" --step-ms "$STEP" >"$T/load.json" &
LPID=$!; PIDS+=($LPID)
sleep 3
s0=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}'); t0=$(date +%s%3N)
$SIM probe --broker "mqtt://127.0.0.1:$MQ" --http "http://127.0.0.1:$HTTP" --token "$TOKEN" \
  --credentials "$T/probes.jsonl" --interval-ms "$INTERVAL_MS" --maildir "$T/mail" --streams "$STREAMS" "${WARD_ARGS[@]}" | tee "$T/probe.json"
s1=$(curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}'); t1=$(date +%s%3N)
echo "background ingest during the probes: $(( (s1 - s0) * 1000 / (t1 - t0) )) readings/s stored (target $RATE)"
kill $LPID 2>/dev/null || true
