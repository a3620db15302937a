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
#   start_auditd, stop_auditd   Debian's auditd in the guest (the audit
#                               daemon's records, captures/audit/audit.log)
#
# INSTANCE is a side (west, east) or a side and a variant: "west-light"
# polls `--trafficstatus` plus `--showstates` instead of `--status` plus
# `--trafficstatus`; "west-audit" polls as "west" does and also reads
# pluto's Linux audit records from the kernel's audit multicast group
# (netlink, in the initial network namespace, as root), keeping only those
# of the pid in west's pluto.pid (east's pluto runs in the same kernel);
# "west-log" polls as "west" does and also reads pluto's own log, the file
# west's pluto writes with --logfile ($ST/west/pluto.log, logtime=yes,
# logappend=yes), from its end when the daemon starts.
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
    swantrail_log_source "$i" >> "$ST/swantrail/$i/swantrail.toml"
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

swantrail_log_source() {   # $1 instance: its pluto-log source, if it has one
    [ "${1#*-}" = log ] || return 0
    cat <<EOT

[[source]]
type = "pluto-log"
name = "pluto-log"
from = "file"
path = "$ST/${1%%-*}/pluto.log"
pluto = "pluto"
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

# ---------------------------------------------------------------- auditd
# Debian's auditd in the guest, writing captures/audit/audit.log: what the
# "west-audit" daemon's records are checked against (start_auditd before
# the first pluto, stop_auditd after the last).
AUDITD=/usr/sbin/auditd
start_auditd() {
    local i
    [ -x "$AUDITD" ] || { log "no $AUDITD (apt-get install auditd)"; exit 2; }
    mkdir -p "$ST/audit/plugins.d" "$CAP/audit"
    # -n: no fork, so it stays a child of this script (-f, for debugging,
    # would print the records on stderr instead of writing the log).
    # Everything kept: no rotation, no action that stops logging short of a
    # full disk, every record written as it comes. ENRICHED is Debian's
    # default format (the raw fields, then the resolved ones after a 0x1d).
    cat > "$ST/audit/auditd.conf" <<EOF
local_events = yes
write_logs = yes
log_file = $CAP/audit/audit.log
log_group = root
log_format = ENRICHED
flush = DATA
max_log_file = 0
max_log_file_action = IGNORE
space_left = 2
space_left_action = IGNORE
admin_space_left = 1
admin_space_left_action = IGNORE
disk_full_action = SUSPEND
disk_error_action = SUSPEND
verify_email = no
use_libwrap = no
name_format = NONE
q_depth = 8000
overflow_action = IGNORE
plugin_dir = $ST/audit/plugins.d
end_of_event_timeout = 2
EOF
    chmod 600 "$ST/audit/auditd.conf"
    # A deep kernel backlog, so that no record is lost while auditd is busy.
    auditctl -b 8192 > "$ST/audit/auditctl.log" 2>&1
    "$AUDITD" -n -c "$ST/audit" >> "$ST/audit/auditd.log" 2>&1 &
    echo $! > "$ST/audit/pid"
    for i in $(seq 1 50); do
        auditctl -s 2>/dev/null | grep -q "^pid $(cat "$ST/audit/pid")\$" && break
        sleep 0.2
    done
    auditctl -s > "$CAP/audit/auditctl-status-start.txt" 2>&1
    grep -q '^enabled 1' "$CAP/audit/auditctl-status-start.txt" || { log "auditd did not enable audit"; exit 2; }
    log "auditd started pid=$(cat "$ST/audit/pid"): $(tr '\n' ' ' < "$CAP/audit/auditctl-status-start.txt")"
}

stop_auditd() {
    local pid
    pid=$(cat "$ST/audit/pid" 2>/dev/null) || return 0
    auditctl -s > "$CAP/audit/auditctl-status-end.txt" 2>&1
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    log "auditd pid=$pid stopped: $(grep -c '^type=CRYPTO_' "$CAP/audit/audit.log") CRYPTO_ records, kernel $(grep '^lost' "$CAP/audit/auditctl-status-end.txt")"
}
