#!/usr/bin/env bash
# The ward view under a flood of readings (docs/benchmarks.md): a release `vigil run` (embedded
# broker), 1 000 patients' hubs at 10 000 readings/s for 30 s, and 20 signed-in clients fetching
# `GET /ward` every 250 ms, as the page's script does on reading events. Prints the fetch times,
# the number of ward renders, the gateway's CPU and the ingest rate kept.
# Usage: bash scripts/bench-ward-flood.sh
set -e
cd "$(dirname "$0")/.."
cargo build --release --locked -q -p vigil-gateway -p vigil-simulators

B=$PWD/target/release/vigil; SIM=$PWD/target/release/vigil-sim
T=$(mktemp -d)
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MQ=$(port); HTTP=$(port); D=$T/d
$B device provision --count 1000 --prefix load --data-dir $D > $T/load.jsonl 2>/dev/null
printf 'ward-watch-2026-x\n' | $B user add --name bench --admin --password-stdin --data-dir $D --json >/dev/null
RUST_LOG=warn,vigil_dashboard=debug $B run --data-dir $D --http-addr 127.0.0.1:$HTTP --mqtt-addr 127.0.0.1:$MQ >/dev/null 2>$T/log & VP=$!
until curl -sf http://127.0.0.1:$HTTP/readyz >/dev/null; do sleep 0.1; done
COOKIE=$(curl -s -o /dev/null -D - -d 'username=bench&password=ward-watch-2026-x' "http://127.0.0.1:$HTTP/login" | awk -F'[ ;]' 'tolower($1)=="set-cookie:" && $2 ~ /^vigil_session=/ {print $2}')
$SIM load --broker mqtt://127.0.0.1:$MQ --credentials $T/load.jsonl --rate 10000 --duration 30s --qos 1 --live-ts > $T/load.json &
LP=$!
sleep 2
c0=$(awk '{print $14+$15}' /proc/$VP/stat)
python3 - "$HTTP" "$COOKIE" <<'PY'
import sys, threading, time, urllib.request
port, cookie = sys.argv[1], sys.argv[2]
stop = time.time() + 25
lat = []
def client():
    while time.time() < stop:
        t = time.time()
        req = urllib.request.Request(f"http://127.0.0.1:{port}/ward", headers={"Cookie": cookie})
        urllib.request.urlopen(req).read()
        lat.append(time.time() - t)
        time.sleep(0.25)
ts = [threading.Thread(target=client) for _ in range(20)]
[t.start() for t in ts]; [t.join() for t in ts]
lat.sort()
print(f"fetches {len(lat)} median {lat[len(lat)//2]*1000:.0f} ms p99 {lat[int(len(lat)*0.99)]*1000:.0f} ms")
PY
c1=$(awk '{print $14+$15}' /proc/$VP/stat)
wait $LP
echo "gateway cpu during clients: $(python3 -c "print(round(($c1-$c0)/100/25*100))") % of a core; renders: $(grep -c 'ward body rendered' $T/log)"
python3 -c "import json; d=json.load(open('$T/load.json')); print('load acked/s', d['acked_per_second'])"
kill $VP; wait 2>/dev/null; rm -rf $T
