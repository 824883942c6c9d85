#!/usr/bin/env bash
# Issue #20: ingest throughput of one and of several gateways sharing one PostgreSQL (and
# Mosquitto's shared subscription), beside one gateway on SQLite, in the same way: release
# builds, a tuned Mosquitto on a free port, `vigil-sim load` publishing QoS 1 as fast as the
# broker takes it while the gateways run; the rate is readings stored (summed over the
# gateways' `vigil_readings_stored_total`) over the time from the first publish to the last
# commit. PostgreSQL is a throw-away cluster (initdb) with its defaults (fsync on).
# Usage: bash scripts/bench-postgres.sh [GATEWAYS] [DEVICES] [MSGS_PER_DEVICE]
#   GATEWAYS=0: one gateway on SQLite (the embedded store), for comparison.
#   READINGS_PER_MESSAGE=N (env, default 1), CONNECTIONS=N (env, default 10).
set -euo pipefail
cd "$(dirname "$0")/.."
export VIGIL_HTTP_METRICS_PUBLIC=true RUST_LOG=warn
GATEWAYS=${1:-2}
DEVICES=${2:-100}
MSGS=${3:-2000}
PER=${READINGS_PER_MESSAGE:-1}
TOTAL=$((DEVICES * MSGS * PER))
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=${VIGIL_BIN:-$PWD/target/release/vigil}
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then setpriv --reuid=postgres --regid=postgres --init-groups "$@"; else "$@"; fi; }
cleanup() {
  kill "${PIDS[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  [ -d "$T/pg" ] && as_pg "$(pg_bin)/pg_ctl" -D "$T/pg/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port)
cat > "$T/mosquitto.conf" <<CONF
listener $MQ 127.0.0.1
allow_anonymous true
persistence false
log_dest none
max_queued_messages 0
max_inflight_messages 1000
CONF
mosquitto -c "$T/mosquitto.conf" & PIDS+=($!)

if [ "$GATEWAYS" -gt 0 ]; then
  mkdir -p "$T/pg"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$T/pg"
  PGPORT=$(port)
  as_pg "$(pg_bin)/initdb" -D "$T/pg/data" -U vigil --auth=trust -E UTF8 --no-sync >/dev/null
  as_pg "$(pg_bin)/pg_ctl" -D "$T/pg/data" -l "$T/pg/log" -w \
    -o "-p $PGPORT -k $T/pg -c listen_addresses=127.0.0.1" start >/dev/null
  export VIGIL_STORE_URL="postgres://vigil@127.0.0.1:$PGPORT/postgres"
  N=$GATEWAYS
  STORE="PostgreSQL $("$(pg_bin)/postgres" --version | awk '{print $3}')"
else
  N=1
  STORE="SQLite"
fi
$B patient add --name Bench --id bench --data-dir "$T/d0" --json >/dev/null
for i in $(seq 0 $((DEVICES - 1))); do
  $B device add --patient bench --kind hub --id "load-$i" --data-dir "$T/d0" --json >/dev/null
done
export VIGIL_MQTT_BROKER_URL="mqtt://127.0.0.1:$MQ" VIGIL_MQTT_SHARED_GROUP=vigil
HTTP=()
for g in $(seq 0 $((N - 1))); do
  h=$(port); HTTP+=("$h")
  VIGIL_MQTT_CLIENT_ID="bench-gw-$g" $B run --data-dir "$T/d$g" --http-addr "127.0.0.1:$h" \
    --mqtt-addr "127.0.0.1:$(port)" >/dev/null 2>>"$T/log-$g" & PIDS+=($!)
done
for h in "${HTTP[@]}"; do
  until curl -sf "http://127.0.0.1:$h/readyz" >/dev/null; do sleep 0.1; done
done
stored() {
  local sum=0 s
  for h in "${HTTP[@]}"; do
    s=$(curl -s "http://127.0.0.1:$h/metrics" | awk '/^vigil_readings_stored_total/ {print $2}')
    sum=$((sum + ${s:-0}))
  done
  echo "$sum"
}
LOAD=$($SIM load --broker "mqtt://127.0.0.1:$MQ" --devices "$DEVICES" --connections "${CONNECTIONS:-10}" \
  --messages "$MSGS" --qos 1 --readings-per-message "$PER")
t0=$(python3 -c "import json,sys,time; print(time.time() - json.loads(sys.argv[1])['seconds'])" "$LOAD")
deadline=$((SECONDS + 600))
while :; do
  s=$(stored)
  [ "$s" -ge "$TOTAL" ] && break
  if [ $SECONDS -ge $deadline ]; then echo "timeout: stored $s of $TOTAL" >&2; break; fi
  sleep 0.1
done
t1=$(date +%s.%N)
per=$(for h in "${HTTP[@]}"; do curl -s "http://127.0.0.1:$h/metrics" | awk '/^vigil_readings_stored_total/ {printf "%s ", $2}'; done)
python3 - "$LOAD" "$t0" "$t1" "$s" "$TOTAL" "$N" "$STORE" "$per" <<'PY'
import json, sys
load = json.loads(sys.argv[1]); t0, t1 = float(sys.argv[2]), float(sys.argv[3])
stored, total, n, store, per = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8].split()
print(f"{n} gateway(s) on {store}: publisher {load['acked']} messages acked at {load['acked_per_second']:.0f} msg/s; "
      f"stored {stored}/{total} in {t1-t0:.2f} s = {stored/(t1-t0):.0f} readings/s (per gateway: {' / '.join(per)})")
PY
