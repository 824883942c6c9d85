#!/usr/bin/env bash
# Ingest through an external Mosquitto (issue #3 benchmark). Starts a tuned Mosquitto on a free
# port, a release `vigil run` subscribed to it, and `vigil-sim load`; reports the publisher's
# acknowledged rate and the gateway's stored rate in the same run (stored = committed and acked
# after commit).
# Usage: bash scripts/bench-external.sh [DEVICES] [MSGS_PER_DEVICE] [QOS] [MODE]
#   READINGS_PER_MESSAGE=N (env, default 1): each message is a hub batch of N readings.
#   MODE=live (default): the gateway runs while the load is published.
#   MODE=backlog: the load is queued at the broker while the gateway is down, then drained.
#   MODE=null: the broker's own ceiling for a backlog drain: the same load queued for a
#     mosquitto_sub that acknowledges at once and stores nothing, instead of the gateway.
set -euo pipefail
cd "$(dirname "$0")/.."
# The benchmark reads /metrics on loopback without a token.
export VIGIL_HTTP_METRICS_PUBLIC=true
DEVICES=${1:-20}
MSGS=${2:-25000}
QOS=${3:-1}
MODE=${4:-live}
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators
B=${VIGIL_BIN:-$PWD/target/release/vigil}  # VIGIL_BIN: compare two builds
SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
chmod 755 "$T"
PIDS=()
trap 'kill ${PIDS[@]} 2>/dev/null || true; rm -rf "$T"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port)
cat > "$T/mosquitto.conf" <<CONF
listener $MQ 127.0.0.1
allow_anonymous true
persistence false
log_dest none
# docs/mosquitto.conf: never drop QoS 1 messages for a slow or offline subscriber.
max_queued_messages 0
max_inflight_messages 1000
CONF
mosquitto -c "$T/mosquitto.conf" & MPID=$!; PIDS+=($MPID)
$B patient add --name Bench --id bench --data-dir "$T/d" --json >/dev/null
for i in $(seq 0 $((DEVICES - 1))); do
  $B device add --patient bench --kind hub --id "load-$i" --data-dir "$T/d" --json >/dev/null
done
export VIGIL_MQTT_BROKER_URL="mqtt://127.0.0.1:$MQ" VIGIL_MQTT_CLIENT_ID=bench-gw RUST_LOG=warn
start_vigil() {
  $B run --data-dir "$T/d" --http-addr "127.0.0.1:$HTTP" --mqtt-addr "127.0.0.1:$(port)" >/dev/null 2>>"$T/log" &
  VPID=$!; PIDS+=($VPID)
  until curl -sf "http://127.0.0.1:$HTTP/readyz" >/dev/null; do sleep 0.1; done
}
# CPU seconds a process has used (utime + stime, clock ticks of 1/100 s).
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
stored() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {print $2}'; }
# Stored and QoS 0 messages dropped on arrival (issue #19), in one scrape: "stored dropped".
progress() { curl -s "http://127.0.0.1:$HTTP/metrics" | awk '/^vigil_readings_stored_total/ {s=$2} /^vigil_mqtt_qos0_dropped_total/ {d=$2} END {print s+0, d+0}'; }
PER=${READINGS_PER_MESSAGE:-1}
TOTAL=$((DEVICES * MSGS * PER))
if [ "$MODE" = null ]; then
  SUB=(mosquitto_sub -h 127.0.0.1 -p "$MQ" -q 1 -c -i bench-null -t 'vigil/v1/+/readings')
  "${SUB[@]}" -E  # register the persistent session, then leave
  $SIM load --broker "mqtt://127.0.0.1:$MQ" --devices "$DEVICES" --connections "${CONNECTIONS:-4}" --messages "$MSGS" --qos "$QOS" --readings-per-message "$PER" >/dev/null
  m0=$(cpu $MPID); t0=$(date +%s.%N)
  "${SUB[@]}" -C $((DEVICES * MSGS)) >/dev/null
  t1=$(date +%s.%N)
  python3 -c "d=$t1-$t0; n=$DEVICES*$MSGS; print(f'mode=null qos=$QOS: broker delivered {n} queued messages to a null subscriber in {d:.2f} s = {n/d:.0f} msg/s; broker CPU s {$(cpu $MPID)-$m0:.2f}')"
  exit 0
fi
start_vigil
if [ "$MODE" = backlog ]; then
  kill $VPID; wait $VPID 2>/dev/null || true
fi
m0=$(cpu $MPID); v0=$(cpu $VPID 2>/dev/null || echo 0)
LOAD=$($SIM load --broker "mqtt://127.0.0.1:$MQ" --devices "$DEVICES" --connections "${CONNECTIONS:-4}" --messages "$MSGS" --qos "$QOS" --readings-per-message "$PER")
if [ "$MODE" = backlog ]; then
  m0=$(cpu $MPID); v0=0
  t0=$(date +%s.%N); start_vigil
else
  t0=$(python3 -c "import json,sys,time; print(time.time() - json.loads(sys.argv[1])['seconds'])" "$LOAD")
fi
# Poll cheaply (the machine has two cores to share with the broker and the gateway): one curl
# per 50 ms, peak RSS from /proc (VmHWM), no interpreter start-ups inside the loop.
deadline=$((SECONDS + 300))
last=-1; still=0
while :; do
  read -r s dropped < <(progress)
  # Every message stored or dropped on arrival (QoS 0 only; a dropped message held PER readings).
  [ $((s + dropped * PER)) -ge "$TOTAL" ] && { t1=$(date +%s.%N); break; }
  # QoS 0 the broker dropped never arrives: stop after 3 s without progress.
  if [ "$s" = "$last" ]; then still=$((still + 1)); else still=0; last=$s; t1=$(date +%s.%N); fi
  [ "$QOS" = 0 ] && [ $still -ge 60 ] && break
  if [ $SECONDS -ge $deadline ]; then echo "timeout: stored $s of $TOTAL" >&2; break; fi
  sleep 0.05
done
peak=$(awk '/^VmHWM/ {print $2}' "/proc/$VPID/status")
vcpu=$(python3 -c "print($(cpu $VPID) - $v0)"); mcpu=$(python3 -c "print($(cpu $MPID) - $m0)")
read -r s dropped < <(progress)
python3 - "$LOAD" "$t0" "$t1" "$s" "$TOTAL" "$peak" "$MODE" "$QOS" "$vcpu" "$mcpu" "$dropped" <<'PY'
import json, sys
load = json.loads(sys.argv[1]); t0, t1 = float(sys.argv[2]), float(sys.argv[3])
stored, total, peak, mode, qos = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], sys.argv[8]
vcpu, mcpu = float(sys.argv[9]), float(sys.argv[10])
dropped = int(sys.argv[11])
print(f"mode={mode} qos={qos}: publisher {load['acked']} messages ({load['readings']} readings) acked at {load['acked_per_second']:.0f} msg/s; "
      f"gateway stored {stored}/{total} in {t1-t0:.2f} s = {stored/(t1-t0):.0f} readings/s; "
      f"lost {total-stored} (dropped on arrival by the gateway: {dropped} messages); gateway peak RSS {peak/1024:.0f} MiB; "
      f"CPU s gateway {vcpu:.2f} ({vcpu*1e6/max(stored,1):.1f} us/reading), broker {mcpu:.2f}")
PY
