#!/usr/bin/env bash
# End-to-end admission with real guests (docs/testing-e2e.md): the
# supervisor launches two VMs (QEMU with the tvd device under the
# accelerator scripts/accel-probe picks, TCG where KVM does not boot a guest;
# a swtpm each) from guest images that run tvd-agent; the agent proves the
# guest to the supervisor through the device and the vTPM against a signed
# domain policy written here.
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
# Two more VMs of the good image run at the same time: "drift" changes
# /opt/app/app.sh after its admission and is QUARANTINED at the next round;
# in "mute" the agent is killed after the admission, the deadline is missed
# and it is QUARANTINED. The guests run the agent through guest-tvd-run.sh.
#
# A fifth VM, "ima", boots the IMA variant of the image (ima_policy=tcb) in
# domain "violet", whose policy allows exactly the files of the image
# (their digests, taken from the initrd) and denies anything else: it is
# ADMITTED on the IMA log its kernel wrote, then runs a program that is not
# in the image and is QUARANTINED with that program named.
#
# Needs TVD_BUILD_DIR (meson sets it), swtpm, jq, sha256sum. Prints TAP;
# IT_KEEP=1 keeps the work dir (supervisor log, consoles, state).
set -uo pipefail
# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

PLAN=34
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
# agent_gone VM: the guest's tvd.run program (the agent) has exited, e.g.
# because the guest kernel found no TPM: nothing will change any more.
agent_gone() { grep -q 'TVD-GUEST: run-exit=' "$STATE/vms/$1/console.log" 2>/dev/null; }
# wait_vm VM JQ-CONDITION TIMEOUT [JQ-GIVE-UP]: until the condition on
# `vm show --json` holds; fails at the timeout or as soon as GIVE-UP holds.
wait_vm() {
    local end js
    end=$(($(date +%s) + $3))
    while :; do
        js=$(ctl vm show "$1" --json 2>/dev/null)
        [ "$(jq -r "$2" <<<"$js" 2>/dev/null)" = true ] && return 0
        [ -n "${4:-}" ] && [ "$(jq -r "$4" <<<"$js" 2>/dev/null)" = true ] && return 1
        agent_gone "$1" && return 1
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
console() { tr -d '\r' <"$STATE/vms/$1/console.log" 2>/dev/null; }

# sub A B: A - B in seconds with one decimal, "?" when either is unknown.
sub() { [ -n "$1" ] && [ -n "$2" ] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", a - b }' || echo "?"; }

# Audit records are the supervisor's own account of every transition, with
# its clock: a state that lasted less than a poll is still there. An entry
# (docs/api.md) has "action" (the new state) and "subject" ("vm/NAME").
# shellcheck disable=SC2016 # a jq program
AUDIT_VM='.entries[] | select(.subject == "vm/" + $vm)'
audit_of() {
    ctl audit --json --limit 1000 2>/dev/null |
        jq -r --arg vm "$1" "$AUDIT_VM"' | .time + " " + .action + ": " + (.reason // "")'
}
# wait_audit VM EVENT TIMEOUT [AFTER]: print the time (epoch) of VM's first
# EVENT record (admitted, quarantined, ...) later than AFTER (epoch).
wait_audit() {
    local end t e
    end=$(($(date +%s) + $3))
    while :; do
        while read -r t; do
            e=$(date -d "$t" +%s.%N) || continue
            if [ -z "${4:-}" ] || awk -v a="$e" -v b="$4" 'BEGIN { exit !(a > b) }'; then
                echo "$e"
                return 0
            fi
        done < <(ctl audit --json --limit 1000 2>/dev/null |
            jq -r --arg vm "$1" --arg ev "$2" "$AUDIT_VM"' | select(.action | ascii_downcase == $ev) | .time')
        agent_gone "$1" && return 1
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.5
    done
}

# The watcher notes when a console line of interest first appears (host
# clock): "EPOCH VM MARK" lines in $W/marks. Marks: booted, run (the agent
# starts), tampered, killed, unknown (guest-tvd-run.sh's faults).
watch_consoles() {
    local f vm line m
    declare -A seen=()
    while :; do
        for f in "$STATE"/vms/*/console.log; do
            [ -e "$f" ] || continue
            vm=${f%/console.log}
            vm=${vm##*/}
            while read -r line; do
                case "$line" in
                *booted*) m=booted ;;
                *"run /"*) m=run ;;
                *tampered*) m=tampered ;;
                *killed*) m=killed ;;
                *"state=4 carrier=0"*) m="cut" ;;
                *unknown*) m=unknown ;;
                *) continue ;;
                esac
                [ -z "${seen[$vm:$m]:-}" ] || continue
                seen[$vm:$m]=1
                echo "$(date +%s.%N) $vm $m" >>"$W/marks"
            done < <(grep -o -E 'TVD-GUEST: (booted|run /|tampered|killed the agent|ran an unknown|link state=4 carrier=0)' "$f")
        done
        sleep 0.2
    done
}
mark_time() { awk -v v="$1" -v m="$2" '$2 == v && $3 == m { print $1; exit }' "$W/marks" 2>/dev/null; }
wait_mark() {
    local end
    end=$(($(date +%s) + $3))
    until [ -n "$(mark_time "$1" "$2")" ]; do
        [ "$(date +%s)" -lt "$end" ] && ! agent_gone "$1" || return 1
        sleep 0.2
    done
    mark_time "$1" "$2"
}
declare -A T_START=()
# vm_times VM T_ADMITTED: boot and agent-start-to-admitted diagnostics.
vm_times() {
    it_diag "$1: boot (vm start -> /init) $(sub "$(mark_time "$1" booted)" "${T_START[$1]:-}") s, agent start -> first verdict $(sub "$2" "$(mark_time "$1" run)") s, vm start -> first verdict $(sub "$2" "${T_START[$1]:-}") s"
}

# fault_case VM MARK WHAT REASON-GLOB: VM is ADMITTED, then its guest does
# WHAT (console MARK) and VM is QUARANTINED with a reason matching the glob.
fault_case() {
    local vm=$1 mark=$2 what=$3 glob=$4 ta tm tq reason
    if ta=$(wait_audit "$vm" admitted 300); then
        it_ok "$vm is ADMITTED"
        vm_times "$vm" "$ta"
    else
        it_not_ok "$vm is ADMITTED" "$(audit_of "$vm")" "$(console_tail "$vm")"
    fi
    if tm=$(wait_mark "$vm" "$mark" 120) && tq=$(wait_audit "$vm" quarantined 120 "$ta"); then
        it_ok "$vm $what and is QUARANTINED"
        it_diag "detection ($what -> QUARANTINED): $(sub "$tq" "$tm") s"
    else
        it_not_ok "$vm $what and is QUARANTINED" "$(audit_of "$vm")" "$(console_tail "$vm")"
    fi
    reason=$(vm_field "$vm" .reason)
    it_diag "$vm: $reason"
    # shellcheck disable=SC2254 # the glob is the point
    case "$reason" in
    $glob) it_ok "$vm: the reason is $glob" ;;
    *) it_not_ok "$vm: the reason is $glob" "reason: $reason" ;;
    esac
}
console_tail() { console "$1" | tail -n "${2:-25}" | sed "s/^/$1 console: /"; }
sup_tail() { tail -n 25 "$W/supervisor.log" | sed 's/^/supervisor: /'; }

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
    # shellcheck disable=SC2013 # one number per file
    for pid in $(cat "$STATE"/vms/*/qemu.pid 2>/dev/null); do
        case "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" in
        *"$STATE"*) it_stop "$pid" ;;
        esac
    done
    for pid in $(pgrep -f -- "swtpm .*$STATE/" 2>/dev/null); do it_stop "$pid"; done
}
on_exit() {
    local rc=$?
    stop_vms
    (exit "$rc")
    it_cleanup
}
trap on_exit EXIT

# ---- images -------------------------------------------------------------------

mkdir -p "$W/app"
printf '#!/bin/sh\necho "app: serving"\n' >"$W/app/app.sh"
printf '#!/bin/sh\necho "evil: exfiltrating"\n' >"$W/app/evil.sh"
chmod 0755 "$W/app/app.sh" "$W/app/evil.sh"
withs=(--with "$AGENT:/usr/bin/tvd-agent" --with "$tcti"
    --with "$(dirname "$0")/guest-tvd-run.sh:/usr/bin/tvd-run"
    --with "$W/app/app.sh:/opt/app/app.sh")
t0=$(it_now)
if img=$(it_guest_image "${withs[@]}") &&
    img_bad=$(it_guest_image "${withs[@]}" --with "$W/app/evil.sh:/opt/app/evil.sh"); then
    it_setup_done "guest images build (agent, TCTI, app; tampered: + evil.sh)"
    it_diag "images: $img $img_bad (build or cache lookup: $(it_elapsed "$t0") s)"
else
    it_setup_bail "guest images build" "$(tail -n 20 "$W/build-guest-image.log")"
fi
img_ima=""
if ! command -v busybox >/dev/null; then
    it_diag "set-up: no IMA guest image: no busybox on the host to unpack the initrd"
elif img_ima=$(it_guest_image --ima "${withs[@]}"); then
    it_setup_done "IMA guest image builds"
else
    it_setup_failed "IMA guest image builds" "$(tail -n 20 "$W/build-guest-image.log")"
    img_ima=""
fi
if ! it_qemu; then
    it_skip_rest $PLAN "QEMU with the tvd device could not be built"
    exit 0
fi
it_accel
it_watchdog 900

# ---- admin key, trust store, policy --------------------------------------------

mkdir -m 0700 "$STATE"
mkdir -m 0755 "$STATE/admin-keys"
if "$PTOOL" keygen "$W/admin.key" "$W/admin.pub" >"$W/keygen.log" 2>&1 &&
    install -m 0644 "$W/admin.pub" "$STATE/admin-keys/test-admin.pem"; then
    it_setup_done "admin key made and trusted"
else
    it_setup_bail "admin key made and trusted" "$(cat "$W/keygen.log")"
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
  "attestation": { "interval": "5s", "deadline": "30s", "on_failure": "quarantine" },
  "network": { "subnet": "10.100.0.0/24", "roles": ["app"], "default_role": "app" }
}
EOF
if "$PTOOL" sign --key "$W/admin.key" "$W/blue.json" >"$W/sign.log" 2>&1; then
    it_setup_done "policy blue signed"
else
    it_setup_bail "policy blue signed" "$(cat "$W/sign.log")"
fi

# violet: every regular file of the IMA image is allowed by its digest (the
# kernel's own files, busybox, the agent and its libraries, /init), anything
# else is denied. The initrd is a gzip'ed newc cpio: busybox unpacks it.
if [ -n "$img_ima" ]; then
    mkdir "$W/ima-root"
    (cd "$W/ima-root" && gzip -dc "$img_ima/initrd.img" | busybox cpio -id 2>/dev/null)
    allow=$(find "$W/ima-root" -type f -exec sha256sum {} + | cut -d' ' -f1 | sort -u |
        sed 's/.*/"&"/' | paste -sd, -)
    it_diag "violet allows the $(find "$W/ima-root" -type f | wc -l) files of the IMA image"
    cat >"$W/violet.json" <<EOF
{
  "tvd_policy": 1,
  "serial": 1,
  "description": "admission integration test, IMA",
  "domain": { "name": "violet", "id": 300 },
  "membership": {
    "reference_digests": [
      { "path": "/usr/bin/tvd-agent", "sha256": "$agent_sha", "required": true },
      { "path": "/opt/app/app.sh", "sha256": "$app_sha", "required": true }
    ],
    "ima_allowlist": [$allow],
    "excludes": ["/proc/**"],
    "unlisted": "deny"
  },
  "attestation": { "interval": "5s", "deadline": "30s", "on_failure": "quarantine" },
  "network": { "subnet": "10.30.0.0/24", "roles": ["app"], "default_role": "app" }
}
EOF
    "$PTOOL" sign --key "$W/admin.key" "$W/violet.json" >>"$W/sign.log" 2>&1 ||
        it_diag "signing violet failed: $(cat "$W/sign.log")"
fi

# The supervisor's default NIC is a tap per VM, which QEMU can only make
# with CAP_NET_ADMIN; without it, user-mode networking (the gate is the same).
# TVD_IT_NIC=tap|user chooses.
nic=${TVD_IT_NIC:-user}
if [ -z "${TVD_IT_NIC:-}" ] && [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then nic=tap; fi
it_diag "VM NICs: $nic"
cat >"$W/supervisor.conf" <<EOF
[supervisor]
state_dir=$STATE

[qemu]
binary=$IT_QEMU
firmware_dir=$IT_QEMU_FW
accel=$IT_ACCEL

[network]
nic=$nic
EOF

# ---- supervisor, domain, VMs ---------------------------------------------------

watch_consoles &
it_track $!
if start_supervisor; then
    it_setup_done "supervisor starts and serves the API"
else
    it_setup_bail "supervisor starts and serves the API" "$(sup_tail)"
fi
if out=$(ctl domain create blue --policy "$W/blue.json" --signature "$W/blue.json.sig" 2>&1); then
    it_setup_done "tvdctl domain create blue"
else
    it_setup_bail "tvdctl domain create blue" "$out"
fi

append="$(cat "$img/cmdline") tvd.run=/usr/bin/tvd-run -- -m /opt/app"
if [ -n "$img_ima" ]; then
    if out=$(ctl domain create violet --policy "$W/violet.json" \
        --signature "$W/violet.json.sig" 2>&1) &&
        T_START[ima]=$(it_now) &&
        out=$(ctl vm start ima --domain violet --kernel "$img_ima/vmlinuz" \
            --initrd "$img_ima/initrd.img" \
            --append "$(cat "$img_ima/cmdline") tvd.run_unknown=2 tvd.run=/usr/bin/tvd-run -- -m /opt/app" 2>&1); then
        it_setup_done "tvdctl domain create violet, vm start ima"
    else
        it_setup_failed "tvdctl domain create violet, vm start ima" "$out"
        img_ima=""
    fi
fi
T_START[good]=$(it_now)
if out=$(ctl vm start good --domain blue --kernel "$img/vmlinuz" \
    --initrd "$img/initrd.img" --append "tvd.watch_link=1 $append" 2>&1); then
    it_setup_done "tvdctl vm start good"
else
    it_setup_bail "tvdctl vm start good" "$out" "$(sup_tail)"
fi
T_START[bad]=$(it_now)
if out=$(ctl vm start bad --domain blue --kernel "$img_bad/vmlinuz" \
    --initrd "$img_bad/initrd.img" --append "$append" 2>&1); then
    it_setup_done "tvdctl vm start bad"
else
    it_setup_bail "tvdctl vm start bad" "$out" "$(sup_tail)"
fi

for vm in drift:tvd.tamper=2 mute:tvd.kill_agent=2; do
    T_START[${vm%%:*}]=$(it_now)
    if out=$(ctl vm start "${vm%%:*}" --domain blue --kernel "$img/vmlinuz" \
        --initrd "$img/initrd.img" --append "${vm#*:} $append" 2>&1); then
        it_setup_done "tvdctl vm start ${vm%%:*} (${vm#*:})"
    else
        it_setup_bail "tvdctl vm start ${vm%%:*} (${vm#*:})" "$out" "$(sup_tail)"
    fi
done

# "once": the agent's one-round mode (tvd-agent --once) in a booted guest:
# one attestation, what it sent printed as JSON, exit 0 when admitted.
T_START[once]=$(it_now)
if out=$(ctl vm start once --domain blue --kernel "$img/vmlinuz" --initrd "$img/initrd.img" \
    --append "$(cat "$img/cmdline") tvd.run=/usr/bin/tvd-agent -- --once -m /opt/app" 2>&1); then
    it_setup_done "tvdctl vm start once (tvd-agent --once)"
else
    it_setup_bail "tvdctl vm start once (tvd-agent --once)" "$out" "$(sup_tail)"
fi

# ---- 1. good is admitted ---------------------------------------------------------

if wait_vm good '.state == "ADMITTED"' 300 '.state == "QUARANTINED" or .state == "REVOKED"'; then
    it_ok "good becomes ADMITTED"
    vm_times good "$(wait_audit good admitted 5)"
else
    it_not_ok "good becomes ADMITTED" "state: $(vm_field good .state): $(vm_field good .reason)" \
        "$(console_tail good)" "$(sup_tail)"
fi
it_is "good's link is up" "$(vm_field good .link_up)" true
# The guest's own view of the gate (guest-tvd-run.sh, tvd.watch_link): eth0
# has no carrier while PENDING, has it once ADMITTED.
if it_wait_console "$STATE/vms/good/console.log" 'TVD-GUEST: link state=1 carrier=0' 5; then
    it_ok "good's NIC has no carrier while PENDING (seen in the guest)"
else
    it_not_ok "good's NIC has no carrier while PENDING (seen in the guest)" "$(console good | grep 'link state')"
fi
if it_wait_console "$STATE/vms/good/console.log" 'TVD-GUEST: link state=2 carrier=1' 30; then
    it_ok "good's NIC has carrier once ADMITTED (seen in the guest)"
else
    it_not_ok "good's NIC has carrier once ADMITTED (seen in the guest)" "$(console good | grep 'link state')"
fi
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

# The one-round agent printed its round and exited 0 (admitted).
if it_wait_console "$STATE/vms/once/console.log" 'TVD-GUEST: run-exit=' 300 &&
    [ "$(it_guest_value "$STATE/vms/once/console.log" run-exit)" = 0 ] &&
    console once | grep -q '"membership": "ADMITTED"' &&
    console once | grep -q '"agent_entries":'; then
    it_ok "tvd-agent --once: one round, printed (membership ADMITTED, agent entries), exit 0"
else
    it_not_ok "tvd-agent --once: one round, printed, exit 0" "$(console_tail once 40)"
fi

# ---- 2. bad is quarantined, evil.sh named ------------------------------------------

if wait_vm bad '.state == "QUARANTINED"' 300 '.state == "ADMITTED"'; then
    it_ok "bad becomes QUARANTINED"
    vm_times bad "$(wait_audit bad quarantined 5)"
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

# ---- drift, mute, ima: faults after the admission --------------------------------

fault_case drift tampered "changes /opt/app/app.sh" 'digest-mismatch*/opt/app/app.sh*'
fault_case mute killed "loses its agent" '*deadline-missed*'
if [ -z "$img_ima" ]; then
    for _ in 1 2 3; do it_skip "IMA guest" "no IMA image"; done
else
    fault_case ima unknown "runs a program that is not in the image" 'unknown-digest*/root/unknown.sh*'
fi

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
if tc=$(wait_mark good cut 30); then
    it_ok "good's NIC loses its carrier when REVOKED (seen in the guest)"
    it_diag "revocation (revoke -> no carrier in the guest): $(sub "$tc" "$t0") s"
else
    it_not_ok "good's NIC loses its carrier when REVOKED (seen in the guest)" "$(console good | grep 'link state')"
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
it_is "drift and mute are still QUARANTINED" \
    "$(vm_field drift .state) $(vm_field mute .state)" "QUARANTINED QUARANTINED"
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
end=$(($(date +%s) + 30))
until [ "$(console good | grep -c 'TVD-GUEST: link state=2 carrier=1')" -ge 2 ] ||
    [ "$(date +%s)" -ge "$end" ]; do sleep 0.2; done
if [ "$(console good | grep -c 'TVD-GUEST: link state=2 carrier=1')" -ge 2 ]; then
    it_ok "good's NIC has carrier again (seen in the guest)"
else
    it_not_ok "good's NIC has carrier again (seen in the guest)" "$(console good | grep 'link state')"
fi
if out=$(ctl audit --verify 2>&1); then
    it_ok "tvdctl audit --verify after the restart"
else
    it_not_ok "tvdctl audit --verify after the restart" "$out"
fi
