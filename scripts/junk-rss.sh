#!/bin/sh
# Peak memory on endless junk (issue 23), with public tools only
# (/usr/bin/time, yes, head, /proc). Prints the peak RSS of
#
#   1. `swantrail parse` of JUNK_MB megabytes of junk lines, and the size
#      of the JSON it prints;
#   2. the daemon (`swantrail run`), its one command source running a
#      script that does `exec yes junk...`, every other setting at its
#      default (1 GiB max_bytes, 5 s timeout, 10 s interval), a file sink,
#      after RUN_SECONDS: its VmHWM, and the lines it logged about the polls.
#
# Both stay under 64 MB: diagnostics past the first 20 are only counted, no
# line is held past 64 KiB, and the command is stopped at max_bytes.
#
# usage: scripts/junk-rss.sh [WORKDIR]     (files in WORKDIR are replaced)
# env:   JUNK_MB=300 RUN_SECONDS=35 MAX_BYTES= (e.g. "16MiB" for the source)
set -eu

cd "$(dirname "$0")/.."
JUNK_MB=${JUNK_MB:-300}
RUN_SECONDS=${RUN_SECONDS:-35}
MAX_BYTES=${MAX_BYTES:-}
W=${1:-$(mktemp -d)}
mkdir -p "$W"
W=$(cd "$W" && pwd)

cargo build --release --quiet --bin swantrail
B=$(pwd)/target/release/swantrail

# 1. parse
yes 'junk junk junk' | head -c $((JUNK_MB * 1000000)) >"$W/junk.txt"
/usr/bin/time -f '%M %U %S' -o "$W/time" "$B" parse "$W/junk.txt" >"$W/parse.json" 2>"$W/parse.err"
read -r kib user sys <"$W/time"
echo "parse of $JUNK_MB MB of junk: peak RSS $((kib / 1024)) MB, ${user}s user ${sys}s sys," \
    "$(wc -c <"$W/parse.json") bytes of JSON"
sed 's/^/  /' "$W/parse.err"
rm -f "$W/junk.txt"

# 2. the daemon
printf '#!/bin/sh\nexec yes "junk junk junk"\n' >"$W/ipsec"
chmod +x "$W/ipsec"
rm -rf "$W/state" "$W/out"
mkdir -p "$W/state" "$W/out"
{
    echo "state_dir = \"$W/state\""
    echo '[[source]]'
    echo 'type = "command"'
    echo 'name = "pluto"'
    echo "argv = [\"$W/ipsec\", \"whack\", \"--status\"]"
    if [ -n "$MAX_BYTES" ]; then echo "max_bytes = \"$MAX_BYTES\""; fi
    echo '[[sink]]'
    echo 'type = "file"'
    echo "path = \"$W/out/events.ndjson\""
} >"$W/swantrail.toml"
"$B" run --config "$W/swantrail.toml" 2>"$W/run.log" &
pid=$!
sleep "$RUN_SECONDS"
hwm=$(awk '/^VmHWM:/ { print $2 }' "/proc/$pid/status")
rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
kill -TERM "$pid"
wait "$pid" || true
echo "daemon after ${RUN_SECONDS}s of \`yes\` as pluto: peak RSS (VmHWM) $((hwm / 1024)) MB," \
    "$((rss / 1024)) MB held; $(cat "$W/out/events.ndjson" 2>/dev/null | wc -l) events; its warnings:"
grep -E 'WARN|ERROR' "$W/run.log" | sed 's/^/  /'
