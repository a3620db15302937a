# scenario-swantrail.sh - the lab's scenario a with swantrail watching both
# peers the whole time; sourced by the lab's scenario.sh after lib.sh.
#
# Next to each pluto runs `swantrail run`: a command source polls
# `ipsec whack --status` plus `--trafficstatus` over that pluto's control
# socket every 2 s, and a file sink writes the events to
# captures/swantrail/<side>/events.ndjson. A second daemon on west,
# "west-light", polls the cheaper `--trafficstatus` plus `--showstates`
# that big gateways use instead of `--status`. When east's pluto is killed
# (phase 06), west's swantrail is killed with SIGKILL too and started
# again from its checkpoint, as after a crash of the gateway's daemon.
# East's swantrail stays up through east's pluto being killed and
# restarted: it must report the outage and the restart once each.
#
# e2e/lab.sh stages this file, the binary ($LAB/swantrail) and the lab.

SWANTRAIL_BIN=$LAB/swantrail

swantrail_config() {   # $1 instance (west, west-light, east)
    local i=$1 s=${1%%-*} first=--status extra=--trafficstatus
    if [ "$i" = west-light ]; then first=--trafficstatus; extra=--showstates; fi
    mkdir -p "$ST/swantrail/$i" "$CAP/swantrail/$i"
    cat > "$ST/swantrail/$i/swantrail.toml" <<EOF
state_dir = "$ST/swantrail/$i/state"
hostname = "$s"

[[source]]
type = "command"
name = "pluto"
argv = ["$IPSEC", "whack", "--ctlsocket", "$ST/$s/run/pluto.ctl", "$first"]
extra_argv = [["$IPSEC", "whack", "--ctlsocket", "$ST/$s/run/pluto.ctl", "$extra"]]
interval = "2s"
timeout = "20s"
jitter = "0s"

[[sink]]
type = "file"
path = "$CAP/swantrail/$i/events.ndjson"
EOF
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

# The lab's own functions, wrapped: swantrail starts with each side's first
# pluto, crashes with east's pluto, and stops before the plutos do.
eval "lab_start_pluto() $(declare -f start_pluto | tail -n +2)"
eval "lab_stop_pluto() $(declare -f stop_pluto | tail -n +2)"
eval "lab_finish() $(declare -f finish | tail -n +2)"

start_pluto() {
    lab_start_pluto "$@"
    [ -f "$ST/swantrail/$1/pid" ] || start_swantrail "$1"
    if [ "$1" = west ] && [ ! -f "$ST/swantrail/west-light/pid" ]; then
        start_swantrail west-light
    fi
}

stop_pluto() {
    if [ "$1" = east ] && [ "${2:-TERM}" = KILL ] && [ ! -f "$ST/swantrail/west/crashed" ]; then
        stop_swantrail west KILL
        touch "$ST/swantrail/west/crashed"
        lab_stop_pluto "$@"
        start_swantrail west
        return
    fi
    lab_stop_pluto "$@"
}

finish() {
    sleep 5   # let the last polls see the final state
    stop_swantrail west TERM
    stop_swantrail west-light TERM
    stop_swantrail east TERM
    lab_finish "$@"
}

. "$LAB/scenario-a.sh"
