#!/bin/sh
# Scale measurements of issue 11, with public tools only (/usr/bin/time,
# wc, awk; perf stat where it works). Prints, in CPU seconds (user+sys) of
# release builds:
#
#   1. parse / show / diff-of-the-same-dump-twice at 1k, 10k and 50k
#      synthetic tunnels (5.4 status), next to `wc -l` on the same dump;
#   2. with CAPTURE=path/to/04-rekeyed/status.txt, the issue's own table:
#      that capture's tunnels repeated 1,000..8,000 times;
#   3. the daemon (`swantrail run`, command source) polling a 10k and a 50k
#      series at 1 % churn per poll, `status` and `trafficstatus` +
#      `showstates`: CPU per poll and peak RSS.
#
# usage: scripts/scale.sh [WORKDIR]     (WORKDIR is emptied and reused)
# env:   SIZES="1000 10000 50000" DAEMON_SIZES="10000 50000" POLLS=5
#        INTERVAL=5s CAPTURE=... COPIES="1000 2000 4000 8000"
# Needs about 300 MB in WORKDIR for the 50k dumps (removed at the end).
set -eu

cd "$(dirname "$0")/.."
SIZES=${SIZES:-"1000 10000 50000"}
DAEMON_SIZES=${DAEMON_SIZES:-"10000 50000"}
POLLS=${POLLS:-5}
INTERVAL=${INTERVAL:-5s}
COPIES=${COPIES:-"1000 2000 4000 8000"}
CAPTURE=${CAPTURE:-}
W=${1:-$(mktemp -d)}
mkdir -p "$W"
W=$(cd "$W" && pwd)

cargo build --release --quiet --bin swantrail --example synth
ROOT=$(pwd)
B=$ROOT/target/release/swantrail
S=$ROOT/target/release/examples/synth

# cpu CMD...: "user+sys seconds  peak-RSS-MB" of one run, stdout discarded.
cpu() {
    /usr/bin/time -f '%U %S %M' -o "$W/time" "$@" >/dev/null 2>"$W/stderr" || {
        echo "failed: $*" >&2
        cat "$W/stderr" >&2
        return 1
    }
    awk '{ printf "%.2f s  %4.0f MB", $1 + $2, $3 / 1024 }' "$W/time"
}

table() { # table LABEL FILE...
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' \
        "input" "dump" "wc -l" "parse" "show" "diff same dump twice" "(peak RSS parse / show / diff)"
    printf '|---|---|---|---|---|---|---|\n'
    for f in "$@"; do
        mb=$(du -m "$f" | cut -f1)
        w=$(cpu wc -l "$f" | cut -d' ' -f1)
        p=$(cpu "$B" parse --max-bytes 1GiB "$f")
        s=$(cpu "$B" show --max-bytes 1GiB "$f")
        d=$(cpu "$B" diff --max-bytes 1GiB "$f" "$f")
        printf '| %s | %s MB | %s s | %s | %s | %s | %s / %s / %s |\n' \
            "$(basename "$f" .txt)" "$mb" "$w" "${p%%  *}" "${s%%  *}" "${d%%  *}" \
            "${p##*  }" "${s##*  }" "${d##*  }"
    done
}

echo "## parse, show, diff (release, CPU user+sys)"
echo
files=""
for n in $SIZES; do
    "$S" dump "$n" 5.4 status >"$W/synth-$n.txt"
    files="$files $W/synth-$n.txt"
done
# shellcheck disable=SC2086
table $files
if [ -n "$CAPTURE" ]; then
    echo
    echo "## the issue's method: $(basename "$(dirname "$CAPTURE")")/status.txt repeated"
    echo
    files=""
    for n in $COPIES; do
        "$S" copies "$n" "$CAPTURE" >"$W/copies-$n.txt"
        files="$files $W/copies-$n.txt"
    done
    # shellcheck disable=SC2086
    table $files
    rm -f $files
fi

if perf stat -e task-clock true >/dev/null 2>&1; then
    n=$(echo "$SIZES" | awk '{ print $NF }')
    echo
    echo "## perf stat: show of $n tunnels"
    perf stat -e task-clock,page-faults "$B" show --max-bytes 1GiB "$W/synth-$n.txt" 2>&1 >/dev/null |
        grep -E 'task-clock|page-faults|elapsed'
fi
rm -f "$W"/synth-*.txt

# The poll command: prints snapshot N of the series and, for the first
# command of a poll, first logs the daemon's CPU ticks (it is our parent).
cat >"$W/poll.sh" <<POLL
#!/bin/sh
kind=\$1 lead=\$2 tunnels=\$3
n=\$(cat "$W/step" 2>/dev/null || echo 0)
if [ "\$kind" = "\$lead" ]; then
    awk '{ print \$14 + \$15 }' /proc/\$PPID/stat >>"$W/ticks"
    echo \$((n + 1)) >"$W/step"
fi
exec "$S" step "\$tunnels" "\$n" 0.01 5.4 "\$kind"
POLL

daemon() { # daemon TUNNELS LEAD [EXTRA]
    rm -rf "$W/state" "$W/events.ndjson" "$W/ticks" "$W/step"
    extra=""
    if [ -n "${3:-}" ]; then
        extra="extra_argv = [[\"sh\", \"$W/poll.sh\", \"$3\", \"$2\", \"$1\"]]"
    fi
    cat >"$W/swantrail.toml" <<CONF
state_dir = "$W/state"
[[source]]
type = "command"
argv = ["sh", "$W/poll.sh", "$2", "$2", "$1"]
$extra
interval = "$INTERVAL"
timeout = "120s"
jitter = "0s"
max_bytes = "512MiB"
[[sink]]
type = "file"
path = "$W/events.ndjson"
rotate_bytes = 0
CONF
    "$B" check-config "$W/swantrail.toml" >/dev/null
    "$B" run --config "$W/swantrail.toml" 2>"$W/daemon.log" &
    pid=$!
    # Wait for POLLS + 2 polls: the inventory, POLLS changes, one to close the last.
    while [ "$(cat "$W/ticks" 2>/dev/null | wc -l)" -lt $((POLLS + 2)) ]; do
        sleep 1
    done
    # The daemon's own peak (not /usr/bin/time's, which counts the poll
    # commands, the generator included).
    rss=$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" || true
    hz=$(getconf CLK_TCK)
    # ticks[i+1] - ticks[i] is the CPU of poll i (parse, observe, spool,
    # sink); poll 0 is the inventory, the others are 1 % churn.
    awk -v hz="$hz" -v n="$1" -v kind="$2${3:++$3}" \
        -v rss="$rss" \
        -v events="$(wc -l <"$W/events.ndjson")" '
        { t[NR] = $1 }
        END {
            first = (t[2] - t[1]) / hz
            for (i = 3; i <= NR; i++) { s += t[i] - t[i - 1]; k++ }
            printf "| %d | %s | %.2f s | %.0f ms | %s MB | %d |\n", n, kind, first, 1000 * s / k / hz, rss, events
        }' "$W/ticks"
}

echo
echo "## the daemon polling a series at 1 % churn (swantrail run, command source, file sink)"
echo
echo "| tunnels | polled | first poll (inventory) CPU | CPU per poll at 1 % churn | peak RSS | events |"
echo "|---|---|---|---|---|---|"
for n in $DAEMON_SIZES; do
    daemon "$n" status
    daemon "$n" trafficstatus showstates
done
for n in $DAEMON_SIZES; do
    "$S" dump "$n" 5.4 status >"$W/wc.txt"
    printf 'wc -l on the %s-tunnel status (%s MB): %s\n' "$n" "$(du -m "$W/wc.txt" | cut -f1)" \
        "$(cpu wc -l "$W/wc.txt" | cut -d' ' -f1) s"
    rm -f "$W/wc.txt"
done
