# swantrail-daemons.sh - the swantrail daemons of the e2e scenarios, shared
# by e2e/scenario-swantrail.sh (4.10) and e2e/scenario-swantrail-52.sh (5.2);
# sourced by them after the lab's lib.sh. e2e/lab.sh stages it with them.
#
# A scenario sets SWANTRAIL_WHACK before calling these: the start of the
# whack command line that talks to its pluto, as the items of a TOML array
# (`"/usr/sbin/ipsec", "whack"`).
#
#   swantrail_config INSTANCE   write $ST/swantrail/INSTANCE/swantrail.toml
#   start_swantrail INSTANCE    start `swantrail run` on it (pid in $ST)
#   stop_swantrail INSTANCE SIG stop it; its exit status goes to
#                               captures/swantrail/INSTANCE/exit-SIG
#
# INSTANCE is a side (west, east) or a side and a variant: "west-light"
# polls `--trafficstatus` plus `--showstates` instead of `--status` plus
# `--trafficstatus`; "west-audit" polls as "west" does and also reads
# pluto's Linux audit records from the kernel's audit multicast group
# (netlink, in the initial network namespace, as root), keeping only those
# of the pid in west's pluto.pid (east's pluto runs in the same kernel).
# Each daemon's command source polls every 2 s over the
# side's control socket; a file sink writes captures/swantrail/INSTANCE/events.ndjson.
# Each daemon logs every poll command's start and exit (debug level, in
# captures/swantrail/INSTANCE/daemon.log): the judge takes from them which
# short-lived SAs no listing of a snapshot daemon could have seen.

SWANTRAIL_BIN=$LAB/swantrail

swantrail_config() {   # $1 instance
    local i=$1 s=${1%%-*} first=--status extra=--trafficstatus
    : "${SWANTRAIL_WHACK:?the scenario sets SWANTRAIL_WHACK}"
    if [ "$i" = west-light ]; then first=--trafficstatus; extra=--showstates; fi
    mkdir -p "$ST/swantrail/$i" "$CAP/swantrail/$i"
    cat > "$ST/swantrail/$i/swantrail.toml" <<EOT
state_dir = "$ST/swantrail/$i/state"
hostname = "$s"

# Each poll command's start and exit at debug level: the judge
# (tests/integration/support/pluto_log.rs) tells from them which SAs a listing could see.
[log]
level = "info,swantrail::source::command=debug"

[[source]]
type = "command"
name = "pluto"
argv = [$SWANTRAIL_WHACK, "--ctlsocket", "$ST/$s/run/pluto.ctl", "$first"]
extra_argv = [[$SWANTRAIL_WHACK, "--ctlsocket", "$ST/$s/run/pluto.ctl", "$extra"]]
interval = "2s"
timeout = "20s"
jitter = "0s"

[[sink]]
type = "file"
path = "$CAP/swantrail/$i/events.ndjson"
EOT
    swantrail_audit_source "$i" >> "$ST/swantrail/$i/swantrail.toml"
}

swantrail_audit_source() {   # $1 instance: its audit source, if it has one
    [ "${1#*-}" = audit ] || return 0
    cat <<EOT

[[source]]
type = "audit"
name = "audit"
from = "netlink"
pluto = "pluto"
pid_file = "$ST/${1%%-*}/run/pluto.pid"
EOT
}

start_swantrail() {   # $1 instance
    local s=$1
    [ -f "$ST/swantrail/$s/swantrail.toml" ] || swantrail_config "$s"
    "$SWANTRAIL_BIN" run --config "$ST/swantrail/$s/swantrail.toml" \
        >> "$CAP/swantrail/$s/stdout.log" 2>> "$CAP/swantrail/$s/daemon.log" &
    echo $! > "$ST/swantrail/$s/pid"
    log "swantrail for $s started pid=$!"
}

stop_swantrail() {   # $1 instance, $2 signal
    local s=$1 sig=${2:-TERM} pid rc
    pid=$(cat "$ST/swantrail/$s/pid" 2>/dev/null) || return 0
    [ -d /proc/$pid ] || return 0
    kill -$sig "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    rc=$?
    echo "$rc" > "$CAP/swantrail/$s/exit-$sig"
    log "swantrail for $s pid=$pid stopped with SIG$sig (exit $rc)"
}
