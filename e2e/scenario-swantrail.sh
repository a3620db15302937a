# scenario-swantrail.sh - the lab's scenario a with swantrail watching both
# peers the whole time; sourced by the lab's scenario.sh after lib.sh.
#
# Next to each pluto runs `swantrail run`: a command source polls
# `ipsec whack --status` plus `--trafficstatus` over that pluto's control
# socket every 2 s, and a file sink writes the events to
# captures/swantrail/<side>/events.ndjson. A second daemon on west,
# "west-light", polls the cheaper `--trafficstatus` plus `--showstates`
# that big gateways use instead of `--status`. A third, "west-audit", polls
# as "west" does and also reads pluto's Linux audit records (the kernel's
# audit multicast group, from the guest's initial network namespace). A
# fourth, "west-log", polls as "west" does and also reads west's pluto log
# file (a `pluto-log` source). When east's pluto is killed
# (phase 06), west's swantrail is killed with SIGKILL too and started
# again from its checkpoint, as after a crash of the gateway's daemon.
# East's swantrail stays up through east's pluto being killed and
# restarted: it must report the outage and the restart once each.
#
# Debian's auditd runs in the guest from before the first pluto to after
# the last one: pluto writes a Linux audit record (CRYPTO_IKE_SA,
# CRYPTO_IPSEC_SA) for every SA it starts, fails or destroys, and the
# kernel drops them unless audit is enabled, which auditd does. Both
# plutos send theirs from their network namespaces; the kernel hands them
# to auditd in the initial one, which writes captures/audit/audit.log
# (never rotated, flushed record by record).
#
# After scenario a's phases, before the daemons stop, come SAs that live
# less than one poll (phase 08-short-lived, with the series running again):
# v2-tun's Child SA rekeyed by force and terminated the moment pluto logs
# the rekey; v2-tun brought up and terminated the moment its Child SA is
# up; v2-tun's IKE SA rekeyed by force and terminated at once; and v1-tun
# (IKEv1) brought up and terminated the moment its IPsec SA is up.
#
# The audit parts (auditd, west-audit, phase 08) run only when e2e/lab.sh
# staged $LAB/audit.enabled (on 4.10 unless SWANTRAIL_E2E_AUDIT=0).
#
# e2e/lab.sh stages this file, e2e/swantrail-daemons.sh (the daemons' config,
# start and stop), the binary ($LAB/swantrail) and the lab.

. "$LAB/swantrail-daemons.sh"
SWANTRAIL_WHACK="\"$IPSEC\", \"whack\""
# The lab's own functions, wrapped: swantrail starts with each side's first
# pluto, crashes with east's pluto, and stops before the plutos do.
eval "lab_start_pluto() $(declare -f start_pluto | tail -n +2)"
eval "lab_stop_pluto() $(declare -f stop_pluto | tail -n +2)"
eval "lab_finish() $(declare -f finish | tail -n +2)"

audit_enabled() { [ -f "$LAB/audit.enabled" ]; }

start_pluto() {
    if audit_enabled && [ ! -f "$ST/audit/pid" ]; then start_auditd; fi
    lab_start_pluto "$@"
    [ -f "$ST/swantrail/$1/pid" ] || start_swantrail "$1"
    if [ "$1" = west ] && [ ! -f "$ST/swantrail/west-light/pid" ]; then
        start_swantrail west-light
        start_swantrail west-log
        if audit_enabled; then start_swantrail west-audit; fi
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

# ---------------------------------------------------------------- short-lived SAs
# whack action $3... on west, then --terminate $1 the moment west's log has a
# line matching $2 (a bash regex). Starting a process in the guest takes a
# second or more, so the terminate is made ready before the action: a
# watcher follows the log from its end (bash's own read and =~, nothing
# started per line) and runs whack itself, not the ipsec wrapper.
act_then_terminate() {
    local conn=$1 pattern=$2 watcher
    shift 2
    (
        timeout 120 tail -n0 -F "$ST/west/pluto.log" 2>/dev/null | while IFS= read -r line; do
            [[ $line =~ $pattern ]] || continue
            echo "### $EPOCHSECONDS west: whack --name $conn --terminate" >> "$CAP/whack-actions.txt"
            /usr/libexec/ipsec/whack --ctlsocket "$ST/west/run/pluto.ctl" --name "$conn" --terminate \
                >> "$CAP/whack-actions.txt" 2>&1
            break
        done
    ) &
    watcher=$!
    sleep 1   # tail follows the log
    WA west "$@"
    wait $watcher
    log "$conn: '$pattern' then --terminate"
}

# Phase 08: SAs that live less than one poll, with the series running again.
short_lived_sas() {
    mkdir -p "$CAP/08-short-lived"
    start_series
    log "short-lived: v2-tun Child SA rekeyed, then terminated at once"
    act_then_terminate v2-tun '"v2-tun" #[0-9]+: initiator rekeyed Child SA' --rekey-ipsec --name v2-tun
    sleep 4
    log "short-lived: v2-tun brought up, then terminated at once"
    act_then_terminate v2-tun '"v2-tun" #[0-9]+: initiator established Child SA' --name v2-tun --initiate
    sleep 4
    log "short-lived: v2-tun brought up, IKE SA rekeyed, then terminated at once"
    WA west --name v2-tun --initiate
    wait_for 60 conn_up v2-tun || log "WARNING: v2-tun not up"
    sleep 2
    act_then_terminate v2-tun '"v2-tun" #[0-9]+: initiator rekeyed IKE SA' --rekey-ike --name v2-tun
    sleep 4
    log "short-lived: v1-tun terminated, brought up, then terminated at once"
    WA west --name v1-tun --terminate
    sleep 2
    act_then_terminate v1-tun '"v1-tun" #[0-9]+: IPsec SA established' --name v1-tun --initiate
    sleep 6
    capture 08-short-lived west east
    stop_series
}

finish() {
    if audit_enabled; then short_lived_sas; fi
    sleep 5   # let the last polls see the final state
    stop_swantrail west TERM
    stop_swantrail west-light TERM
    stop_swantrail west-audit TERM
    stop_swantrail west-log TERM
    stop_swantrail east TERM
    lab_finish "$@"
    stop_auditd
}

. "$LAB/scenario-a.sh"
