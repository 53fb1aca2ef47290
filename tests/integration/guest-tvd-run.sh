#!/bin/sh
# /usr/bin/tvd-run in the admission test's guest image: runs tvd-agent with
# the given arguments, plus the faults the kernel command line asks for
# (tests/integration/admission.sh):
#   tvd.tamper=N      N s after the device first says ADMITTED, change
#                     /opt/app/app.sh (the next round must quarantine);
#   tvd.kill_agent=N  N s after the device first says ADMITTED, kill the
#                     agent (the missed deadline must quarantine);
#   tvd.run_unknown=N N s after the device first says ADMITTED, write a
#                     program that is not in the image to /root and run it
#                     (IMA measures it: the next round must quarantine);
#   tvd.watch_link=1  bring eth0 up and print "TVD-GUEST: link state=S
#                     carrier=C" whenever the device's state or the NIC's
#                     carrier changes (the link gate, seen from the guest).
# The guest stays up after a kill: a powered-off VM would close its device
# connection, and with it the round whose deadline is being tested.
arg() { echo " $(cat /proc/cmdline) " | sed -n "s/.* $1=\([0-9][0-9]*\) .*/\1/p"; }
tamper=$(arg tvd.tamper)
kill_after=$(arg tvd.kill_agent)
unknown=$(arg tvd.run_unknown)
watch=$(arg tvd.watch_link)
[ -n "$tamper$kill_after$unknown$watch" ] || exec /usr/bin/tvd-agent "$@"

# The agent's hook records the device's state (2 = ADMITTED).
# shellcheck disable=SC2016 # expanded by the hook's shell
/usr/bin/tvd-agent --hook 'echo "$TVD_STATE" >/run/tvd-state' "$@" &
agent=$!
if [ -n "$watch" ]; then
    ip link set eth0 up
    (
        last=""
        while :; do
            now="state=$(cat /run/tvd-state 2>/dev/null) carrier=$(cat /sys/class/net/eth0/carrier 2>/dev/null)"
            [ "$now" = "$last" ] || echo "TVD-GUEST: link $now"
            last=$now
            sleep 0.2
        done
    ) &
fi
until [ "$(cat /run/tvd-state 2>/dev/null)" = 2 ]; do sleep 0.2; done
if [ -n "$tamper" ]; then
    sleep "$tamper"
    echo 'echo changed at run time' >>/opt/app/app.sh
    echo "TVD-GUEST: tampered /opt/app/app.sh"
fi
if [ -n "$unknown" ]; then
    sleep "$unknown"
    printf '#!/bin/sh\necho "unknown program ran"\n' >/root/unknown.sh
    chmod 0755 /root/unknown.sh
    /root/unknown.sh
    echo "TVD-GUEST: ran an unknown program"
fi
if [ -n "$kill_after" ]; then
    sleep "$kill_after"
    kill -KILL "$agent"
    echo "TVD-GUEST: killed the agent"
    while :; do sleep 3600; done
fi
wait "$agent"
