# %systemd_postun_with_restart: reload units; on upgrade, restart the
# service only if it was running.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart swantrail.service >/dev/null 2>&1 || :
    fi
fi
