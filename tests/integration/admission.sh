#!/usr/bin/env bash
# End-to-end admission with real guests (docs/testing-e2e.md): the
# supervisor launches two VMs (QEMU under TCG with the tvd device, a swtpm
# each) from guest images that run tvd-agent; the agent proves the guest to
# the supervisor through the device and the vTPM against a signed domain
# policy written here.
#
#   1. "good" (agent + /opt/app/app.sh) is ADMITTED, its link is up and the
#      agent in the guest sees ADMITTED;
#   2. "bad" (the same plus /opt/app/evil.sh) is QUARANTINED, the reason
#      names evil.sh;
#   3. tvdctl vm revoke good: REVOKED, link down (time as a diagnostic);
#   4. the audit log verifies;
#   5. bad's QEMU killed: running false, its swtpm gone;
#   6. the supervisor killed and restarted: states kept; readmit good: it is
#      attested again and ADMITTED.
#
# Needs TVD_BUILD_DIR (meson sets it), swtpm, jq, sha256sum. Prints TAP;
# IT_KEEP=1 keeps the work dir (supervisor log, consoles, state).
set -uo pipefail
. "$(dirname "$0")/lib.sh"

PLAN=26
it_init 0
it_need swtpm swtpm_setup swtpm_localca jq sha256sum ||
    it_skip_all "missing programs: $IT_MISSING"
B=${TVD_BUILD_DIR:-}
[ -n "$B" ] || it_skip_all "TVD_BUILD_DIR is not set (run it through meson test)"
SUP_BIN=$B/host/supervisor/tvd-supervisor
CTL_BIN=$B/host/tvdctl/tvdctl
AGENT=$B/guest-agent/tvd-agent
PTOOL=$B/host/policy/tvd-policy-tool
for f in "$SUP_BIN" "$CTL_BIN" "$AGENT" "$PTOOL"; do
    [ -x "$f" ] || it_skip_all "not built: $f"
done
tcti=""
for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
    [ -e "$d/libtss2-tcti-device.so.0" ] && tcti=$d/libtss2-tcti-device.so.0 && break
done
[ -n "$tcti" ] || it_skip_all "libtss2-tcti-device.so.0 is missing"
it_plan $PLAN

W=$IT_WORK
STATE=$W/state
SOCK=$STATE/run/supervisor.sock
SUP_PID=""

ctl() { "$CTL_BIN" --socket "$SOCK" "$@"; }
# vm_field VM JQ-FILTER: one field of `tvdctl vm show --json`.
vm_field() { ctl vm show "$1" --json 2>/dev/null | jq -r "$2" 2>/dev/null; }
# wait_vm VM JQ-CONDITION TIMEOUT [JQ-GIVE-UP]: until the condition on
# `vm show --json` holds; fails at the timeout or as soon as GIVE-UP holds.
wait_vm() {
    local end js
    end=$(($(date +%s) + $3))
    while :; do
        js=$(ctl vm show "$1" --json 2>/dev/null)
        [ "$(jq -r "$2" <<<"$js" 2>/dev/null)" = true ] && return 0
        [ -n "${4:-}" ] && [ "$(jq -r "$4" <<<"$js" 2>/dev/null)" = true ] && return 1
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
console() { tr -d '\r' <"$STATE/vms/$1/console.log" 2>/dev/null; }
console_tail() { console "$1" | tail -n "${2:-25}" | sed "s/^/$1 console: /"; }
sup_tail() { tail -n "${1:-25}" "$W/supervisor.log" | sed 's/^/supervisor: /'; }

start_supervisor() {
    "$SUP_BIN" --config "$W/supervisor.conf" >>"$W/supervisor.log" 2>&1 &
    SUP_PID=$!
    it_track "$SUP_PID"
    local end=$(($(date +%s) + 30))
    until ctl vm list >/dev/null 2>&1; do
        kill -0 "$SUP_PID" 2>/dev/null || return 1
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# The QEMU and swtpm processes the supervisor launched outlive it by design;
# stop whatever is left of them at the end (by pid, from the VM records).
stop_vms() {
    local pid
    for pid in $(cat "$STATE"/vms/*/qemu.pid 2>/dev/null); do
        case "$(cat "/proc/$pid/cmdline" 2>/dev/null | tr '\0' ' ')" in
        *"$STATE"*) it_stop "$pid" ;;
        esac
    done
    for pid in $(pgrep -f -- "swtpm .*$STATE/" 2>/dev/null); do it_stop "$pid"; done
}
trap 'rc=$?; stop_vms; (exit $rc); it_cleanup' EXIT

# ---- images -------------------------------------------------------------------

mkdir -p "$W/app"
printf '#!/bin/sh\necho "app: serving"\n' >"$W/app/app.sh"
printf '#!/bin/sh\necho "evil: exfiltrating"\n' >"$W/app/evil.sh"
chmod 0755 "$W/app/app.sh" "$W/app/evil.sh"
withs=(--with "$AGENT:/usr/bin/tvd-agent" --with "$tcti" --with "$W/app/app.sh:/opt/app/app.sh")
t0=$(it_now)
if img=$(it_guest_image "${withs[@]}") &&
    img_bad=$(it_guest_image "${withs[@]}" --with "$W/app/evil.sh:/opt/app/evil.sh"); then
    it_ok "guest images build (agent, TCTI, app; tampered: + evil.sh)"
    it_diag "images: $img $img_bad (build or cache lookup: $(it_elapsed "$t0") s)"
else
    it_not_ok "guest images build" "$(tail -n 20 "$W/build-guest-image.log")"
    it_skip_rest $PLAN "no guest image"
    exit 1
fi
if ! it_qemu; then
    it_skip_rest $PLAN "QEMU with the tvd device could not be built"
    exit 0
fi
it_watchdog 900

# ---- admin key, trust store, policy --------------------------------------------

mkdir -m 0700 "$STATE"
mkdir -m 0755 "$STATE/admin-keys"
if "$PTOOL" keygen "$W/admin.key" "$W/admin.pub" >"$W/keygen.log" 2>&1 &&
    install -m 0644 "$W/admin.pub" "$STATE/admin-keys/test-admin.pem"; then
    it_ok "admin key made and trusted"
else
    it_not_ok "admin key made and trusted" "$(cat "$W/keygen.log")"
fi

agent_sha=$(sha256sum <"$AGENT" | cut -d' ' -f1)
app_sha=$(sha256sum <"$W/app/app.sh" | cut -d' ' -f1)
cat >"$W/blue.json" <<EOF
{
  "tvd_policy": 1,
  "serial": 1,
  "description": "admission integration test",
  "domain": { "name": "blue", "id": 100 },
  "membership": {
    "reference_digests": [
      { "path": "/usr/bin/tvd-agent", "sha256": "$agent_sha", "required": true },
      { "path": "/opt/app/app.sh", "sha256": "$app_sha", "required": true }
    ],
    "excludes": ["/proc/**"],
    "unlisted": "deny"
  },
  "attestation": { "interval": "5s", "deadline": "60s", "on_failure": "quarantine" },
  "network": { "subnet": "10.100.0.0/24", "roles": ["app"], "default_role": "app" }
}
EOF
if "$PTOOL" sign --key "$W/admin.key" "$W/blue.json" >"$W/sign.log" 2>&1; then
    it_ok "policy blue signed"
else
    it_not_ok "policy blue signed" "$(cat "$W/sign.log")"
fi

cat >"$W/supervisor.conf" <<EOF
[supervisor]
state_dir=$STATE

[qemu]
binary=$IT_QEMU
firmware_dir=$IT_QEMU_FW
accel=tcg
EOF

# ---- supervisor, domain, VMs ---------------------------------------------------

if start_supervisor; then
    it_ok "supervisor starts and serves the API"
else
    it_not_ok "supervisor starts and serves the API" "$(sup_tail)"
    it_skip_rest $PLAN "no supervisor"
    exit 1
fi
if out=$(ctl domain create blue --policy "$W/blue.json" --signature "$W/blue.json.sig" 2>&1); then
    it_ok "tvdctl domain create blue"
else
    it_not_ok "tvdctl domain create blue" "$out"
fi

append="$(cat "$img/cmdline") tvd.run=/usr/bin/tvd-agent -- -m /opt/app"
t_start=$(it_now)
if out=$(ctl vm start good --domain blue --kernel "$img/vmlinuz" \
    --initrd "$img/initrd.img" --append "$append" 2>&1); then
    it_ok "tvdctl vm start good"
else
    it_not_ok "tvdctl vm start good" "$out" "$(sup_tail)"
fi
t_start_bad=$(it_now)
if out=$(ctl vm start bad --domain blue --kernel "$img_bad/vmlinuz" \
    --initrd "$img_bad/initrd.img" --append "$append" 2>&1); then
    it_ok "tvdctl vm start bad"
else
    it_not_ok "tvdctl vm start bad" "$out" "$(sup_tail)"
fi

# ---- 1. good is admitted ---------------------------------------------------------

if wait_vm good '.state == "ADMITTED"' 300 '.state == "QUARANTINED" or .state == "REVOKED"'; then
    it_ok "good becomes ADMITTED"
    it_diag "admission latency (vm start -> ADMITTED): $(it_elapsed "$t_start") s"
    boot=$(console good | grep -c 'TVD-GUEST: booted' || true)
    [ "$boot" -gt 0 ] || it_diag "(no boot line on good's console yet)"
else
    it_not_ok "good becomes ADMITTED" "state: $(vm_field good .state): $(vm_field good .reason)" \
        "$(console_tail good)" "$(sup_tail)"
fi
it_is "good's link is up" "$(vm_field good .link_up)" true
if it_wait_console "$STATE/vms/good/console.log" 'membership: ADMITTED' 30; then
    it_ok "the agent in good is told ADMITTED"
else
    it_not_ok "the agent in good is told ADMITTED" "$(console_tail good)"
fi
if it_wait_console "$STATE/vms/good/console.log" 'device state ADMITTED' 30; then
    it_ok "the agent in good reads ADMITTED from the device"
else
    it_not_ok "the agent in good reads ADMITTED from the device" "$(console_tail good)"
fi

# ---- 2. bad is quarantined, evil.sh named ------------------------------------------

if wait_vm bad '.state == "QUARANTINED"' 300 '.state == "ADMITTED"'; then
    it_ok "bad becomes QUARANTINED"
    it_diag "detection (vm start -> QUARANTINED): $(it_elapsed "$t_start_bad") s"
else
    it_not_ok "bad becomes QUARANTINED" "state: $(vm_field bad .state): $(vm_field bad .reason)" \
        "$(console_tail bad)" "$(sup_tail)"
fi
reason=$(vm_field bad .reason)
it_diag "bad: $reason"
case "$reason" in
*/opt/app/evil.sh*) it_ok "the reason names /opt/app/evil.sh" ;;
*) it_not_ok "the reason names /opt/app/evil.sh" "reason: $reason" ;;
esac
it_is "bad's link is down" "$(vm_field bad .link_up)" false

# ---- 3. revoke ---------------------------------------------------------------------

t0=$(it_now)
if out=$(ctl vm revoke good --reason "integration test" 2>&1) &&
    wait_vm good '.state == "REVOKED" and .link_up == false' 10; then
    it_ok "tvdctl vm revoke good: REVOKED, link down"
    it_diag "revocation (revoke -> link down seen by the API): $(it_elapsed "$t0") s"
else
    it_not_ok "tvdctl vm revoke good: REVOKED, link down" "$out" \
        "state $(vm_field good .state), link_up $(vm_field good .link_up)"
fi
if it_wait_console "$STATE/vms/good/console.log" 'device state REVOKED' 30; then
    it_ok "the agent in good reads REVOKED from the device"
else
    it_not_ok "the agent in good reads REVOKED from the device" "$(console_tail good)"
fi

# ---- 4. audit ------------------------------------------------------------------------

if out=$(ctl audit --verify 2>&1); then
    it_ok "tvdctl audit --verify"
else
    it_not_ok "tvdctl audit --verify" "$out"
fi

# ---- 5. QEMU of bad killed -------------------------------------------------------------

qpid=$(vm_field bad .qemu_pid)
spid=$(pgrep -f -- "swtpm .*$STATE/vms/bad/" | head -n 1)
if [ -n "$qpid" ] && [ "$qpid" -gt 0 ] 2>/dev/null && [ -n "$spid" ]; then
    kill -KILL "$qpid"
    if wait_vm bad '.running == false' 20; then
        it_ok "bad's QEMU killed: vm show says running false"
    else
        it_not_ok "bad's QEMU killed: vm show says running false" "$(ctl vm show bad 2>&1)"
    fi
    end=$(($(date +%s) + 20))
    while kill -0 "$spid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
    if kill -0 "$spid" 2>/dev/null; then
        it_not_ok "bad's swtpm is gone" "swtpm pid $spid still runs"
    else
        it_ok "bad's swtpm is gone"
    fi
else
    it_not_ok "bad's QEMU killed: vm show says running false" "qemu pid '$qpid', swtpm pid '$spid'"
    it_skip "bad's swtpm is gone" "no pids"
fi

# ---- 6. supervisor restart, readmit ---------------------------------------------------

kill -KILL "$SUP_PID"
wait "$SUP_PID" 2>/dev/null
if start_supervisor; then
    it_ok "supervisor killed and started again"
else
    it_not_ok "supervisor killed and started again" "$(sup_tail)"
fi
it_is "good is still REVOKED" "$(vm_field good .state)" REVOKED
it_is "bad is still QUARANTINED and not running" \
    "$(vm_field bad '.state + " " + (.running | tostring)')" "QUARANTINED false"
# The device reconnects to the new supervisor, the agent says hello again.
if wait_vm good '.running == true' 20; then
    it_ok "good's QEMU is followed again"
else
    it_not_ok "good's QEMU is followed again" "$(ctl vm show good 2>&1)"
fi
t0=$(it_now)
if out=$(ctl vm readmit good 2>&1) && wait_vm good '.state == "ADMITTED"' 240 \
        '.state == "QUARANTINED" or .state == "REVOKED"'; then
    it_ok "tvdctl vm readmit good: attested again and ADMITTED"
    it_diag "readmission (readmit -> ADMITTED): $(it_elapsed "$t0") s"
else
    it_not_ok "tvdctl vm readmit good: attested again and ADMITTED" "$out" \
        "state: $(vm_field good .state): $(vm_field good .reason)" "$(console_tail good)" "$(sup_tail)"
fi
it_is "good's link is up again" "$(vm_field good .link_up)" true
if out=$(ctl audit --verify 2>&1); then
    it_ok "tvdctl audit --verify after the restart"
else
    it_not_ok "tvdctl audit --verify after the restart" "$out"
fi
