#!/usr/bin/env bash
# Outside-in tests: programs nobody here wrote, against the examples, on 127.0.0.1.
#   bash .ci/interop.sh [autobahn] [clients] [chromium] [stalled]     (default: all four)
# Installs the peers with ../shared/peers/install.sh (idempotent), builds the examples,
# and fails unless every check passes. Artifacts (Autobahn report, screenshot) go to
# target/interop/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS_DIR:-$HOME/.cache/wsgate-peers}
OUT=$ROOT/target/interop
parts=${*:-autobahn clients chromium stalled}
mkdir -p "$OUT"

declare -a PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# start NAME LOG CMD...: run a server in the background (it stops by itself after 15
# minutes at the latest) and wait for its "listening on" line.
start() {
    local log=$1; shift
    timeout 900 "$@" >"$log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do
        grep -q "^listening on" "$log" && return 0
        sleep 0.1
    done
    echo "server did not start: $*" >&2; cat "$log" >&2; return 1
}

need=""
for p in $parts; do case $p in
    autobahn) need="$need autobahn" ;;
    clients) need="$need python node" ;;
    chromium) need="$need chromium node" ;;
    stalled) ;;
    *) echo "unknown part: $p" >&2; exit 2 ;;
esac; done
echo "== install peers:$need"
bash ../shared/peers/install.sh $need

echo "== build examples"
cargo build --release --example echo_server --example auth_demo --example tokio_echo
BIN=$ROOT/target/release/examples

for p in $parts; do case $p in
autobahn)
    echo "== Autobahn TestSuite, fuzzing client, cases 1-10 against echo_server"
    start "$OUT/autobahn-server.log" "$BIN/echo_server" --addr 127.0.0.1:9001
    rm -rf "$OUT/autobahn" && mkdir -p "$OUT/autobahn" && cd "$OUT/autobahn"
    cat > spec.json <<'JSON'
{"outdir": "./reports/servers",
 "servers": [{"agent": "wsgate", "url": "ws://127.0.0.1:9001"}],
 "cases": ["*"], "exclude-cases": ["12.*", "13.*"], "exclude-agent-cases": {}}
JSON
    timeout 600 "$PEERS/ab27/bin/wstest" -m fuzzingclient -s spec.json > wstest.log 2>&1 \
        || { tail -20 wstest.log; exit 1; }
    python3 - reports/servers/index.json <<'PY'
import collections, json, sys
cases = json.load(open(sys.argv[1]))["wsgate"]
tally = collections.Counter(c["behavior"] for c in cases.values())
print("cases:", len(cases), dict(sorted(tally.items())))
bad = []
for cid, c in sorted(cases.items(), key=lambda kv: [int(x) for x in kv[0].split(".")]):
    major = cid.split(".")[0]
    ok = c["behavior"] in ("OK", "INFORMATIONAL") or (
        c["behavior"] == "UNIMPLEMENTED" and major in ("12", "13"))
    close_ok = c["behaviorClose"] in ("OK", "INFORMATIONAL")
    if not (ok and close_ok):
        bad.append(f'{cid}: {c["behavior"]} / close {c["behaviorClose"]}')
if len(cases) < 301:
    bad.append(f"only {len(cases)} cases ran, expected 301")
for b in bad:
    print("FAIL", b)
sys.exit(1 if bad else 0)
PY
    cd "$ROOT"
    ;;
clients)
    echo "== Python websockets and Node ws clients against echo_server --token"
    TOKEN=Tok3n_from-ci
    start "$OUT/clients-server.log" "$BIN/echo_server" --addr 127.0.0.1:9011 --token "$TOKEN"
    "$PEERS/py3/bin/python" tests/interop/python_client.py ws://127.0.0.1:9011 "$TOKEN"
    NODE_PATH=$PEERS/node/node_modules node tests/interop/node_client.mjs ws://127.0.0.1:9011 "$TOKEN"
    echo "== the same clients against tokio_echo (reads on readiness, writes from the queue)"
    start "$OUT/clients-tokio.log" "$BIN/tokio_echo" --addr 127.0.0.1:9012 --token "$TOKEN"
    "$PEERS/py3/bin/python" tests/interop/python_client.py ws://127.0.0.1:9012 "$TOKEN"
    NODE_PATH=$PEERS/node/node_modules node tests/interop/node_client.mjs ws://127.0.0.1:9012 "$TOKEN"
    ;;
chromium)
    echo "== headless Chromium against auth_demo"
    start "$OUT/auth-demo.log" "$BIN/auth_demo" --addr 127.0.0.1:9021
    NODE_PATH=$PEERS/node/node_modules timeout 600 \
        node tests/interop/chromium.mjs http://127.0.0.1:9021/ "$OUT/auth_demo.png"
    ;;
stalled)
    echo "== 2,000 clients stalled mid-request against tokio_echo: their cost, and the 408 at the deadline"
    ulimit -n "$(ulimit -Hn)"
    start "$OUT/stalled-server.log" "$BIN/tokio_echo" --addr 127.0.0.1:9031 --handshake-timeout 3
    # The server is the child of the `timeout` that bounds it.
    server=$(pgrep -P "${PIDS[-1]}")
    timeout 120 python3 tests/interop/stalled_clients.py 127.0.0.1:9031 "$server" 2000 3
    ;;
esac; done
echo "== interop: all passed"
