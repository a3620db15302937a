#!/bin/sh
# Resident memory of the daemon on a small gateway (issue 25), with public
# tools only (/proc, python3 for a throwaway HTTP receiver). For each of
#
#   file     a file sink (what a typical operator configures);
#   http     + an http sink (ndjson to a local receiver answering 200);
#   syslog   + a syslog sink over TLS with the system's CA certificates
#              (its receiver is not listening: the events stay spooled and
#              the sink retries, as during an outage);
#   metrics  + the `[metrics]` endpoint, scraped once a poll;
#
# it starts `swantrail run` (release build) with a command source whose
# `ipsec` is a script printing tests/fixtures/lab-4.10/status.txt (3 tunnels
# up, 2 negotiating) every 200 ms, waits for POLLS polls and prints the
# daemon's VmRSS (held now), VmHWM (peak), thread count, and its anonymous
# versus file-backed resident memory (the binary's own text pages count in
# RSS too).
#
# usage: scripts/small-gateway-rss.sh [WORKDIR]   (files in WORKDIR are replaced)
# env:   POLLS=30 CONFIGS="file http syslog metrics"; any MIMALLOC_* variable
#        is passed on to the daemon, e.g. MIMALLOC_ARENA_EAGER_COMMIT=0.
set -eu

cd "$(dirname "$0")/.."
POLLS=${POLLS:-30}
CONFIGS=${CONFIGS:-file http syslog metrics}
W=${1:-$(mktemp -d)}
mkdir -p "$W"
W=$(cd "$W" && pwd)

cargo build --release --quiet --bin swantrail
B=$(pwd)/target/release/swantrail
DUMP=$(pwd)/tests/fixtures/lab-4.10/status.txt

# A port nobody listens on now (for the receivers and /metrics).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait until FILE has at least N lines, for at most SECONDS.
wait_lines() {
    # (sh has no local variables: these names are this function's own)
    wl_file=$1 wl_n=$2 wl_tries=$(($3 * 10))
    while [ "$(cat "$wl_file" 2>/dev/null | wc -l)" -lt "$wl_n" ]; do
        wl_tries=$((wl_tries - 1))
        if [ "$wl_tries" -lt 0 ]; then
            echo "gave up waiting for $wl_n lines in $wl_file" >&2
            return 1
        fi
        sleep 0.1
    done
}

# The HTTP receiver: answers every POST with 200 and counts the lines.
cat >"$W/receiver.py" <<'EOF'
import http.server, sys
class Receiver(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(sys.argv[2], "ab") as out:
            out.write(body)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Receiver).serve_forever()
EOF

printf '#!/bin/sh\necho poll >>"%s/polls"\nexec cat "%s"\n' "$W" "$DUMP" >"$W/ipsec"
chmod +x "$W/ipsec"

printf '%-8s %8s %8s %8s %8s %8s\n' config VmRSS VmHWM anon file threads
for config in $CONFIGS; do
    rm -rf "$W/state" "$W/out" "$W/polls" "$W/received"
    mkdir -p "$W/state" "$W/out"
    receiver=
    metrics_port=
    {
        echo "state_dir = \"$W/state\""
        echo '[[source]]'
        echo 'type = "command"'
        echo "argv = [\"$W/ipsec\", \"whack\", \"--status\"]"
        echo 'interval = "200ms"'
        echo 'jitter = "0s"'
        echo '[[sink]]'
        echo 'type = "file"'
        echo "path = \"$W/out/events.ndjson\""
        case $config in http | syslog | metrics)
            port=$(free_port)
            python3 "$W/receiver.py" "$port" "$W/received" &
            receiver=$!
            echo '[[sink]]'
            echo 'type = "http"'
            echo 'name = "http"'
            echo "url = \"http://127.0.0.1:$port/\""
            ;;
        esac
        case $config in syslog | metrics)
            echo '[[sink]]'
            echo 'type = "syslog"'
            echo 'name = "syslog"'
            echo 'transport = "tls"'
            echo "address = \"127.0.0.1:$(free_port)\""
            ;;
        esac
        case $config in metrics)
            metrics_port=$(free_port)
            echo '[metrics]'
            echo "listen = \"127.0.0.1:$metrics_port\""
            ;;
        esac
    } >"$W/swantrail.toml"
    "$B" run --config "$W/swantrail.toml" 2>"$W/run-$config.log" &
    pid=$!
    i=0
    while [ "$i" -lt "$POLLS" ]; do
        i=$((i + 1))
        wait_lines "$W/polls" "$i" 30
        if [ -n "$metrics_port" ]; then
            curl -fsS "http://127.0.0.1:$metrics_port/metrics" >/dev/null || true
        fi
    done
    # The last poll's events reach the sinks within a batch wait (1 s).
    wait_lines "$W/out/events.ndjson" 1 30
    sleep 1
    cp "/proc/$pid/status" "$W/status-$config"
    cp "/proc/$pid/smaps_rollup" "$W/smaps_rollup-$config"
    cp "/proc/$pid/smaps" "$W/smaps-$config"
    threads=$(ls "/proc/$pid/task" | wc -l)
    kill -TERM "$pid"
    wait "$pid" || true
    if [ -n "$receiver" ]; then kill "$receiver"; wait "$receiver" 2>/dev/null || true; fi
    awk -v config="$config" -v threads="$threads" '
        { kib[$1] = $2 }
        END {
            printf "%-8s %5.1f MB %5.1f MB %5.1f MB %5.1f MB %8d\n", config,
                kib["VmRSS:"] / 1024, kib["VmHWM:"] / 1024,
                kib["RssAnon:"] / 1024, kib["RssFile:"] / 1024, threads
        }' "$W/status-$config"
done
echo "(files in $W: status-*, smaps-* and run-*.log of each configuration)"
