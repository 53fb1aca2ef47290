#!/usr/bin/env bash
# Boot smoke test of the guest image (docs/guest-image.md): a real swtpm, a
# stand-in supervisor socket and QEMU with the tvd device, under the
# accelerator scripts/accel-probe picks (TCG where KVM does not boot a guest).
#
#   1. the plain image boots and its self-check finds the vTPM and the tvd
#      device, reads MAGIC and STATE through BAR0 and binds uio_pci_generic;
#      the device says hello to the supervisor socket; the guest powers off.
#   2. the IMA variant with an extra binary (tpm2_pcrread and the TCTI it
#      loads, copied with their libraries by --with) runs it as tvd.run,
#      and IMA has measured the files it ran. Both VMs boot at the same time.
#   3. a second build with unchanged inputs reuses the cached image.
#
# Prints TAP. IT_KEEP=1 keeps the work dir; the boot time is a diagnostic.
# Times out 120 s after the builds.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

PLAN=15
# The 120 s limit starts once the images and QEMU are there: a cold QEMU
# build (scripts/build-qemu) takes minutes, a cached one a fraction of a second.
it_init 0
it_need swtpm python3 || it_skip_all "missing programs: $IT_MISSING"
it_plan $PLAN

# ---- build -------------------------------------------------------------------

t0=$(it_now)
img=$(it_guest_image) ||
    it_setup_bail "guest image builds" "$(tail -n 20 "$IT_WORK/build-guest-image.log")"
it_setup_done "guest image builds"
it_diag "image: $img (build or cache lookup: $(it_elapsed "$t0") s)"

# The IMA image carries tpm2_pcrread and the TCTI that tpm2-tss loads with
# dlopen (ldd does not list it).
img2=""
img2_skip=""
tcti=""
for d in /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu; do
    [ -e "$d/libtss2-tcti-device.so.0" ] && tcti=$d/libtss2-tcti-device.so.0 && break
done
if [ ! -x /usr/bin/tpm2_pcrread ] || [ -z "$tcti" ]; then
    img2_skip="tpm2-tools or libtss2-tcti-device missing"
    it_skip "IMA image records its kernel arguments" "$img2_skip"
else
    t0=$(it_now)
    if img2=$(it_guest_image --ima --with /usr/bin/tpm2_pcrread --with "$tcti"); then
        it_setup_done "IMA image with tpm2_pcrread and its libraries builds"
        it_diag "image: $img2 (build or cache lookup: $(it_elapsed "$t0") s)"
        it_check "IMA image records its kernel arguments" \
            grep -q 'ima_policy=tcb ima_template=ima-ng' "$img2/cmdline"
    else
        it_setup_failed "IMA image with tpm2_pcrread and its libraries builds" \
            "$(tail -n 20 "$IT_WORK/build-guest-image.log")"
        img2_skip="no IMA image"
        it_skip "IMA image records its kernel arguments" "$img2_skip"
    fi
fi

if ! it_qemu; then
    it_skip_rest $PLAN "QEMU with the tvd device could not be built"
    exit 0
fi
it_accel
it_watchdog 120

# ---- boot both VMs at once (TCG on a shared machine: halves the wall time) ----

it_start_swtpm tpm1 || it_bail "swtpm did not start"
it_start_listener sup1 || it_bail "the supervisor listener did not start"
mapfile -t tpm_args < <(it_tpm_args tpm0 "$IT_SWTPM_CTRL")
it_start_vm vm1 "$img" "" -- \
    -chardev "socket,id=sup,path=$IT_LISTENER_SOCK,reconnect-ms=1000" \
    -netdev user,id=n0 -device e1000,netdev=n0,romfile= \
    "${tpm_args[@]}" \
    -device tvd,chardev=sup,netdev=n0,tpmdev=tpm0
vm1=$IT_VM_PID
con=$IT_VM_CONSOLE
t1=$IT_VM_T0

if [ -n "$img2" ]; then
    it_start_swtpm tpm2 || it_bail "swtpm did not start"
    mapfile -t tpm_args < <(it_tpm_args tpm0 "$IT_SWTPM_CTRL")
    it_start_vm vm2 "$img2" "tvd.run=/usr/bin/tpm2_pcrread -- -T device:/dev/tpmrm0 sha256:10" -- \
        -netdev user,id=n0 -device e1000,netdev=n0,romfile= "${tpm_args[@]}"
    vm2=$IT_VM_PID
    con2=$IT_VM_CONSOLE
    t2=$IT_VM_T0
fi

# ---- 1. plain image, self-check --------------------------------------------------

if it_wait_console "$con" '^TVD-GUEST: booted ' 100 "$vm1"; then
    it_ok "guest boots (kernel $(tr -d '\r' <"$con" | sed -n 's/^TVD-GUEST: booted //p'))"
    # boot = QEMU start to the first line of /init
    it_diag "boot: $(it_elapsed "$t1") s"
else
    it_not_ok "guest boots" "$(it_console_tail "$con")" "$(tail -n 5 "$IT_WORK/vm1.log")"
fi
it_wait_console "$con" '^TVD-GUEST: selfcheck-done' 60 "$vm1" ||
    it_diag "no selfcheck-done line" "$(it_console_tail "$con")"
it_diag "self-check done: $(it_elapsed "$t1") s"

it_is "guest sees the vTPM (/dev/tpmrm0)" "$(it_guest_value "$con" tpm)" yes
dev=$(it_guest_value "$con" tvd-device)
if [ -n "$dev" ] && [ "$dev" != none ]; then
    it_ok "guest finds the tvd device (1af4:10f0) at $dev"
else
    it_not_ok "guest finds the tvd device (1af4:10f0)" "got: '$dev'"
fi
it_is "BAR0 MAGIC reads TVD1" "$(it_guest_value "$con" magic)" 0x31445654
it_is "BAR0 STATE is PENDING (1)" "$(it_guest_value "$con" state)" 1
# FEATURES: MSI-X, netdev gated, TPM linked, H2G queue.
it_is "BAR0 FEATURES has MSI-X, gate, TPM and queue" "$(it_guest_value "$con" features)" 0x0000000F
uio=$(it_guest_value "$con" uio)
case "$uio" in
uio[0-9]*) it_ok "uio_pci_generic binds the device ($uio)" ;;
*) it_not_ok "uio_pci_generic binds the device" "got: '$uio'" ;;
esac
if it_wait_exit "$vm1" 30; then
    it_ok "guest powers off and QEMU exits"
else
    it_not_ok "guest powers off and QEMU exits" "$(it_console_tail "$con")"
fi
it_diag "VM run: $(it_elapsed "$t1") s (QEMU start to exit)"
# The device's hello: frame magic "TVDF", version 1, type 1 (DEVICE_HELLO).
hello=$(head -c 6 "$IT_WORK/sup1.bin" 2>/dev/null | od -An -tx1 | tr -d ' \n')
it_is "the device sent its hello to the supervisor socket" "$hello" 545644460101

# ---- 2. IMA variant running an extra binary as tvd.run ---------------------------

if [ -z "$img2" ]; then
    for _ in 1 2 3 4; do it_skip "IMA guest" "$img2_skip"; done
else
    if it_wait_console "$con2" '^TVD-GUEST: ima-measurements=' 100 "$vm2"; then
        it_ok "IMA guest boots and runs tvd.run"
        it_diag "boot+run (IMA): $(it_elapsed "$t2") s"
    else
        it_not_ok "IMA guest boots and runs tvd.run" "$(it_console_tail "$con2")"
    fi
    it_is "tpm2_pcrread from the image exits 0" "$(it_guest_value "$con2" run-exit)" 0
    # PCR 10 holds IMA's aggregate: not all zeros once anything was measured.
    pcr10=$(tr -d '\r' <"$con2" | sed -n 's/^ *10 *: *0x\([0-9A-Fa-f]*\).*/\1/p' | head -n 1)
    if [ ${#pcr10} -eq 64 ] && [ -n "${pcr10//0/}" ]; then
        it_ok "PCR 10 read in the guest is extended (${pcr10:0:16}...)"
    else
        it_not_ok "PCR 10 read in the guest is extended" "got: '$pcr10'" "$(it_console_tail "$con2")"
    fi
    n=$(it_guest_value "$con2" ima-measurements)
    if [ -n "$n" ] && [ "$n" -gt 10 ] 2>/dev/null; then
        it_ok "IMA measured the image's files ($n entries)"
    else
        it_not_ok "IMA measured the image's files" "got '$n' entries (1 means boot_aggregate only)"
    fi
    it_wait_exit "$vm2" 30 || it_diag "the IMA guest did not power off"
fi

# ---- 3. the cache ------------------------------------------------------------

before=$(wc -l <"$IT_WORK/build-guest-image.log")
again=$(it_guest_image)
after=$(tail -n +"$((before + 1))" "$IT_WORK/build-guest-image.log")
if [ "$again" = "$img" ] && ! grep -q 'building' <<<"$after"; then
    it_ok "an unchanged image is reused from the cache"
else
    it_not_ok "an unchanged image is reused from the cache" "first: $img" "again: $again" "$after"
fi
