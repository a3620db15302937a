# %systemd_post without the preset: swantrail is installed, never enabled.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
