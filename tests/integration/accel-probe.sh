#!/usr/bin/env bash
# scripts/accel-probe's decision (docs/supervisor.md, "Accelerator"):
#
#   - TVD_ACCEL=kvm|tcg forces the answer without booting; anything else is
#     refused;
#   - no KVM device: TCG, said so, nothing booted;
#   - a device, but the guest hangs under KVM (a fake QEMU that prints
#     SeaBIOS's "Booting from ROM..." and sleeps): TCG within the limit,
#     with the reason;
#   - a device and a guest that prints /init's first line: KVM;
#   - a device, but QEMU exits at once ("failed to set MSR"): TCG;
#   - the answer is cached (no second boot) and probed again when the QEMU
#     binary or the image changes, or with --refresh;
#   - the real QEMU with a fake device path, where the machine has no KVM:
#     QEMU cannot open KVM and the answer is TCG.
#
# The fakes stand in for broken and working KVM hosts, which this machine
# is not; the last case runs the real QEMU. Prints TAP.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

PLAN=22
it_init 120
it_plan $PLAN

PROBE=$TVD_TOP/scripts/accel-probe
# The probe's cache is the test's own; QEMU and the image come from the
# project's cache.
PROJECT_CACHE=$TVD_CACHE_DIR
export TVD_CACHE_DIR=$IT_WORK/cache
unset TVD_ACCEL TVD_ACCEL_TIMEOUT TVD_KVM_DEVICE TVD_QEMU_FW

# A fake QEMU: FAKE_MODE=hang|boot|fail; each start appends its arguments to
# $IT_WORK/calls. It writes to the file of "-serial file:PATH" as the real
# one writes the guest's console.
FAKE=$IT_WORK/fake-qemu
cat >"$FAKE" <<'EOF'
#!/bin/sh
echo "$*" >>"$FAKE_CALLS"
echo $$ >"${FAKE_CALLS%/*}/fake.pid"
console=/dev/null
prev=""
for a in "$@"; do
    [ "$prev" = -serial ] && console=${a#file:}
    prev=$a
done
case "$FAKE_MODE" in
hang)
    printf 'SeaBIOS (version 1.16.3-debian)\r\nBooting from ROM...\r\n' >>"$console"
    exec sleep 60
    ;;
boot)
    printf 'Booting from ROM...\r\nTVD-GUEST: booted 6.1.0-fake\r\n' >>"$console"
    exec sleep 60
    ;;
fail)
    echo "qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0" >&2
    exit 1
    ;;
esac
EOF
chmod 0755 "$FAKE"
export FAKE_CALLS=$IT_WORK/calls
: >"$FAKE_CALLS"
IMG=$IT_WORK/image
mkdir -p "$IMG"
echo kernel >"$IMG/vmlinuz"
echo initrd >"$IMG/initrd.img"
echo "console=ttyS0" >"$IMG/cmdline"
DEV=$IT_WORK/kvm
: >"$DEV"

calls() { wc -l <"$FAKE_CALLS" | tr -d ' '; }
# probe ARGS...: run the probe against the fakes; sets OUT, ERR, RC, SECS.
probe() {
    local t0
    t0=$(it_now)
    OUT=$("$PROBE" --qemu "$FAKE" --image "$IMG" --firmware "" "$@" 2>"$IT_WORK/err")
    RC=$?
    ERR=$(cat "$IT_WORK/err")
    SECS=$(it_elapsed "$t0")
}
# expect DESC ACCEL REASON-REGEX CALLS: one decision, its reason, and how
# many QEMU starts there have been so far.
expect() {
    local desc=$1 acc=$2 re=$3 n=$4
    if [ "$RC" = 0 ] && [ "$OUT" = "$acc" ] && [ "$(wc -l <<<"$ERR")" = 1 ] &&
        grep -Eq "^accel: $acc \(.*$re" <<<"$ERR" && [ "$(calls)" = "$n" ]; then
        it_ok "$desc"
        it_diag "$ERR (${SECS} s)"
    else
        it_not_ok "$desc" "exit $RC, stdout '$OUT', want '$acc'" "stderr: $ERR" \
            "want a reason matching: $re" "QEMU starts: $(calls), want $n"
    fi
}

# ---- forced and refused ----------------------------------------------------------

TVD_ACCEL=kvm TVD_KVM_DEVICE=$IT_WORK/none probe
expect "TVD_ACCEL=kvm: kvm without probing" kvm "forced by TVD_ACCEL=kvm" 0
TVD_ACCEL=tcg TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "TVD_ACCEL=tcg: tcg without probing, even with a working KVM" tcg "forced by TVD_ACCEL=tcg" 0
TVD_ACCEL=KVM TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
if [ "$RC" = 2 ] && [ -z "$OUT" ] && grep -q "TVD_ACCEL must be kvm, tcg or auto, not 'KVM'" <<<"$ERR"; then
    it_ok "an invalid TVD_ACCEL is refused (exit 2, no answer)"
else
    it_not_ok "an invalid TVD_ACCEL is refused" "exit $RC, stdout '$OUT'" "stderr: $ERR"
fi
TVD_ACCEL_TIMEOUT=soon TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
it_is "an invalid TVD_ACCEL_TIMEOUT is refused" "$RC:$OUT:$(calls)" "2::0"

# ---- no device, or one this user cannot open ---------------------------------------

TVD_KVM_DEVICE=$IT_WORK/none FAKE_MODE=boot probe
expect "no KVM device: tcg, nothing booted" tcg "no $IT_WORK/none; using TCG" 0
if [ "$(id -u)" = 0 ]; then
    it_skip "a device this user cannot open: tcg" "root can open any file"
else
    : >"$IT_WORK/kvm-closed"
    chmod 0000 "$IT_WORK/kvm-closed"
    TVD_KVM_DEVICE=$IT_WORK/kvm-closed FAKE_MODE=boot probe
    expect "a device this user cannot open: tcg" tcg "not readable and writable" 0
fi

# ---- a device whose KVM hangs the guest ----------------------------------------------

TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=hang probe
expect "KVM present, the guest hangs: tcg" tcg \
    "KVM present but the guest did not boot under it in 2 s \(console: \"Booting from ROM...\"\); using TCG" 1
it_check "the hanging guest was booted with -accel kvm" grep -q -- '-accel kvm' "$FAKE_CALLS"
it_check "the fallback came within the limit (2 s, took $SECS s)" \
    awk -v s="$SECS" 'BEGIN { exit !(s >= 2 && s < 6) }'
pid=$(cat "$IT_WORK/fake.pid")
if kill -0 "$pid" 2>/dev/null; then
    it_not_ok "the hanging QEMU is stopped" "pid $pid still runs"
    kill "$pid"
else
    it_ok "the hanging QEMU is stopped"
fi

# ---- the cache -----------------------------------------------------------------------

TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "the answer is cached: no second boot" tcg \
    "did not boot under it in 2 s.*probed earlier, cached in $TVD_CACHE_DIR/accel/probe-" 1
it_check "a cache hit is quick ($SECS s)" awk -v s="$SECS" 'BEGIN { exit !(s < 2) }'

TVD_ACCEL_TIMEOUT=3 TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "another limit is another key: probed again" kvm "KVM booted the guest in [0-9.]+ s; using KVM" 2

TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "each key keeps its own answer" tcg "cached" 2

echo "# a new build" >>"$FAKE"
TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "a changed QEMU binary is probed again: a working KVM gives kvm" kvm \
    "KVM booted the guest in [0-9.]+ s; using KVM" 3
TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=hang probe
expect "the kvm answer is cached too" kvm "KVM booted the guest.*cached" 3

echo "initrd 2" >"$IMG/initrd.img"
TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=fail probe
expect "a changed image is probed again: QEMU failing under KVM gives tcg" tcg \
    "KVM present but QEMU exited \(1\) before the guest booted: qemu-system-x86_64: error: failed to set MSR 0x10a to 0x0; using TCG" 4
it_check "QEMU failing at once is seen at once ($SECS s)" awk -v s="$SECS" 'BEGIN { exit !(s < 2) }'

TVD_ACCEL_TIMEOUT=2 TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe --refresh
expect "--refresh probes again" kvm "KVM booted the guest" 5

TVD_KVM_DEVICE=$IT_WORK/none FAKE_MODE=boot probe
expect "a device that went away is seen despite a cached kvm" tcg "no $IT_WORK/none" 5
TVD_ACCEL=tcg TVD_KVM_DEVICE=$DEV FAKE_MODE=boot probe
expect "TVD_ACCEL wins over a cached answer" tcg "forced by TVD_ACCEL=tcg" 5

# ---- the real QEMU -----------------------------------------------------------------

if ! q=$(TVD_CACHE_DIR=$PROJECT_CACHE "$TVD_TOP/scripts/build-qemu" --print-binary 2>/dev/null) ||
    [ ! -x "$q" ]; then
    it_skip_rest $PLAN "QEMU is not built (scripts/build-qemu)"
    exit 0
fi
if ! img=$(TVD_CACHE_DIR=$PROJECT_CACHE it_guest_image); then
    it_skip_rest $PLAN "no guest image: $(tail -n 3 "$IT_WORK/build-guest-image.log")"
    exit 0
fi
t0=$(it_now)
fw=$(TVD_CACHE_DIR=$PROJECT_CACHE "$TVD_TOP/scripts/build-qemu" --print-firmware-dir)
OUT=$(TVD_KVM_DEVICE=$DEV "$PROBE" --qemu "$q" --firmware "$fw" --image "$img" 2>"$IT_WORK/err")
RC=$?
ERR=$(cat "$IT_WORK/err")
if [ -e /dev/kvm ]; then
    # A real KVM: whichever answer, it comes with a reason.
    if [ "$RC" = 0 ] && grep -Eq "^accel: $OUT \(" <<<"$ERR"; then
        it_ok "the real QEMU on this machine's /dev/kvm: $OUT"
    else
        it_not_ok "the real QEMU on this machine's /dev/kvm" "exit $RC, stdout '$OUT'" "$ERR"
    fi
elif [ "$RC" = 0 ] && [ "$OUT" = tcg ] && grep -q "KVM present but QEMU exited" <<<"$ERR"; then
    it_ok "the real QEMU, a fake device and no KVM in the kernel: tcg"
else
    it_not_ok "the real QEMU, a fake device and no KVM in the kernel: tcg" "exit $RC, stdout '$OUT'" "$ERR"
fi
it_diag "$ERR ($(it_elapsed "$t0") s)"
OUT=$("$PROBE" --qemu "$q" --firmware "$fw" --image "$img" 2>"$IT_WORK/err")
it_diag "this machine: $(cat "$IT_WORK/err")"
