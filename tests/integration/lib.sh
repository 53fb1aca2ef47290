# shellcheck shell=bash
# Shared helpers for the integration tests (bash, TAP on stdout).
#
#   . "$(dirname "$0")/lib.sh"
#   it_init [120]                work dir, cleanup trap, a 120 s watchdog
#   it_watchdog 120              (re)start the watchdog, e.g. after builds
#   it_plan 5
#   it_need swtpm python3 || it_skip_all "..."
#   it_qemu                      sets IT_QEMU and IT_QEMU_FW (builds QEMU if needed)
#   it_accel                     sets IT_ACCEL (kvm|tcg, scripts/accel-probe), says why
#   dir=$(it_guest_image [--ima] [--with BIN[:DEST]]...)
#   it_start_swtpm tpm1 [--ek-certs]      sets IT_SWTPM_CTRL
#   it_start_listener sup1                sets IT_LISTENER_SOCK (bytes -> sup1.bin)
#   it_start_vm vm1 "$dir" "extra kernel args" -- extra qemu args...
#                                         sets IT_VM_PID, IT_VM_CONSOLE, IT_VM_QMP
#   it_wait_console "$IT_VM_CONSOLE" 'TVD-GUEST: selfcheck-done' 60 "$IT_VM_PID"
#   it_guest_value "$IT_VM_CONSOLE" magic     -> 0x31445654
#   it_is "magic" "$got" "$want"; it_ok / it_not_ok / it_skip / it_diag
#   it_setup_done DESC / it_setup_bail DESC [DIAG...] / it_setup_failed DESC
#                                set-up steps: diagnostics, never "ok" lines
#
# Every process started here is recorded and stopped by pid on exit (TERM,
# then KILL after 5 s). The work dir (/tmp/tvd-it-<name>.XXXXXX) is removed
# unless a test failed or IT_KEEP=1; its path is printed as a diagnostic then.

# shellcheck source=../../scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

IT_NAME=$(basename "$0" .sh)
IT_WORK=""
IT_PIDS=()
IT_N=0
IT_FAILED=0
IT_WATCHDOG=""
IT_TIMEOUT=0

# ---- TAP -------------------------------------------------------------------

it_plan() { echo "1..$1"; }
it_diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
it_ok() { IT_N=$((IT_N + 1)); echo "ok $IT_N - $1"; }
it_not_ok() {
    IT_N=$((IT_N + 1))
    IT_FAILED=$((IT_FAILED + 1))
    echo "not ok $IT_N - $1"
    shift
    [ $# -eq 0 ] || it_diag "$@"
}
it_skip() { IT_N=$((IT_N + 1)); echo "ok $IT_N - $1 # SKIP $2"; }
# Skip the rest of a plan: it_skip_rest TOTAL REASON
it_skip_rest() {
    while [ "$IT_N" -lt "$1" ]; do it_skip "not run" "$2"; done
}
it_skip_all() { echo "1..0 # SKIP $1"; exit 0; }
# it_check DESC CMD...: ok when CMD succeeds.
it_check() {
    local desc=$1
    shift
    if "$@"; then it_ok "$desc"; else it_not_ok "$desc" "failed: $*"; fi
}
# it_is DESC GOT WANT
it_is() {
    if [ "$2" = "$3" ]; then it_ok "$1"; else it_not_ok "$1" "got:  '$2'" "want: '$3'"; fi
}
it_bail() { echo "Bail out! $*"; IT_FAILED=$((IT_FAILED + 1)); exit 1; }

# Set-up steps (image builds, keys, daemons) are not test cases and print no
# "ok" line. A step done is a diagnostic; a failed step ends the test with
# "Bail out!" (it_setup_bail), or, when the test goes on without it, prints
# "# set-up failed: DESC", which scripts/run-tests counts as a failure, and
# makes the test exit non-zero (it_setup_failed).
it_setup_done() { it_diag "set-up: $1"; }
it_setup_failed() {
    IT_FAILED=$((IT_FAILED + 1))
    echo "# set-up failed: $1"
    shift
    [ $# -eq 0 ] || it_diag "$@"
}
it_setup_bail() {
    local desc=$1
    shift
    [ $# -eq 0 ] || it_diag "$@"
    it_bail "set-up failed: $desc"
}

# ---- lifecycle ---------------------------------------------------------------

it_now() { date +%s.%N; }
# it_elapsed T0: seconds since T0 with one decimal
it_elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

it_need() {
    local p missing=()
    for p in "$@"; do command -v "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    # shellcheck disable=SC2034 # read by the caller
    IT_MISSING="${missing[*]}"
    return 1
}

it_cleanup() {
    local rc=$? i
    trap - EXIT INT TERM
    if [ -n "$IT_WATCHDOG" ]; then
        kill "$IT_WATCHDOG" 2>/dev/null
        wait "$IT_WATCHDOG" 2>/dev/null
    fi
    for ((i = ${#IT_PIDS[@]} - 1; i >= 0; i--)); do it_stop "${IT_PIDS[$i]}"; done
    if [ -n "$IT_WORK" ] && [ -d "$IT_WORK" ]; then
        if [ "$IT_FAILED" -gt 0 ] || [ "$rc" -ne 0 ] || [ "${IT_KEEP:-0}" = 1 ]; then
            it_diag "work dir kept: $IT_WORK"
        else
            rm -rf "$IT_WORK"
        fi
    fi
    [ "$IT_FAILED" -eq 0 ] || rc=1
    exit "$rc"
}

it_on_timeout() {
    IT_WATCHDOG=""
    it_bail "$IT_NAME timed out after $IT_TIMEOUT s"
}

# it_init [TIMEOUT]: create the work dir, install the cleanup and, with a
# TIMEOUT other than 0, start the watchdog (see it_watchdog).
it_init() {
    IT_WORK=$(mktemp -d "/tmp/tvd-it-$IT_NAME.XXXXXX")
    trap it_cleanup EXIT
    trap 'it_bail "interrupted"' INT
    trap it_on_timeout TERM
    [ "${1:-0}" = 0 ] || it_watchdog "$1"
}

# it_watchdog SECONDS: bail out (TAP "Bail out!", cleanup, exit 1) when the
# test is still running SECONDS from now; replaces an earlier watchdog. Start
# it after cached builds that can take minutes when cold (QEMU).
it_watchdog() {
    if [ -n "$IT_WATCHDOG" ]; then
        kill "$IT_WATCHDOG" 2>/dev/null
        wait "$IT_WATCHDOG" 2>/dev/null
    fi
    IT_TIMEOUT=$1
    # The watchdog sends TERM to this shell; its own sleep dies with it.
    (
        sleep "$IT_TIMEOUT" &
        s=$!
        trap 'kill $s 2>/dev/null; exit 0' TERM
        wait $s && kill -TERM $$ 2>/dev/null
    ) &
    IT_WATCHDOG=$!
}

# it_track PID: stop PID on exit.
it_track() { IT_PIDS+=("$1"); }

# it_stop PID: TERM, wait up to 5 s, then KILL. Safe to call twice.
it_stop() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# it_wait_exit PID TIMEOUT: 0 when PID exited in time (reaped), 1 otherwise.
it_wait_exit() {
    local pid=$1 end
    end=$(($(date +%s) + $2))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
    wait "$pid" 2>/dev/null
    return 0
}

# it_wait_file PATH TIMEOUT: wait until PATH exists (a socket, a pid file).
it_wait_file() {
    local end
    end=$(($(date +%s) + $2))
    until [ -e "$1" ]; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

# ---- components ----------------------------------------------------------------

# it_qemu: set IT_QEMU and IT_QEMU_FW, building QEMU (cached) when needed.
it_qemu() {
    local q
    q=$("$TVD_TOP/scripts/build-qemu" --print-binary 2>/dev/null || true)
    if [ -z "$q" ] || [ ! -x "$q" ]; then
        "$TVD_TOP/scripts/build-qemu" >"$IT_WORK/build-qemu.log" 2>&1 ||
            { it_diag "scripts/build-qemu failed, see $IT_WORK/build-qemu.log"; return 1; }
        q=$("$TVD_TOP/scripts/build-qemu" --print-binary)
    fi
    IT_QEMU=$q
    IT_QEMU_FW=$("$TVD_TOP/scripts/build-qemu" --print-firmware-dir)
    [ -x "$IT_QEMU" ]
}

# it_accel: set IT_ACCEL to the accelerator that boots the guest here
# (scripts/accel-probe: KVM where a guest really boots under it, else TCG;
# TVD_ACCEL=kvm|tcg forces one) and print it with its reason as a TAP
# diagnostic. Call it after it_qemu and before the watchdog: a first probe
# on a host whose KVM hangs takes its 15 s limit. A probe that cannot run
# (no image) falls back to TCG, said so.
it_accel() {
    local log=$IT_WORK/accel-probe.log
    [ -z "${IT_ACCEL:-}" ] || return 0
    if IT_ACCEL=$("$TVD_TOP/scripts/accel-probe" --qemu "$IT_QEMU" --firmware "$IT_QEMU_FW" 2>"$log"); then
        IT_ACCEL_REASON=$(tail -n 1 "$log")
        IT_ACCEL_REASON=${IT_ACCEL_REASON#accel: }
    elif [ -n "${TVD_ACCEL:-}" ] && [ "${TVD_ACCEL}" != auto ]; then
        it_bail "scripts/accel-probe: $(tail -n 1 "$log")"
    else
        IT_ACCEL=tcg
        IT_ACCEL_REASON="tcg (scripts/accel-probe failed: $(tail -n 1 "$log"))"
    fi
    it_diag "accel: $IT_ACCEL_REASON"
}

# it_guest_image ARGS...: print the guest image directory (see
# scripts/build-guest-image); the build log goes to the work dir.
it_guest_image() {
    "$TVD_TOP/scripts/build-guest-image" --print-dir "$@" 2>>"$IT_WORK/build-guest-image.log"
}

# it_start_swtpm NAME [--ek-certs]: a TPM 2.0 swtpm with its state in
# $IT_WORK/NAME and its control socket at $IT_WORK/NAME.ctrl (IT_SWTPM_CTRL).
# --ek-certs first runs swtpm_setup with a local CA of the work dir
# (RSA-2048 and ECC P-384 EK certificates, persistent EKs).
it_start_swtpm() {
    local name=$1 dir=$IT_WORK/$1 ca=$IT_WORK/$1-ca
    mkdir -p "$dir"
    if [ "${2:-}" = --ek-certs ]; then
        mkdir -p "$ca"
        printf '%s\n' "statedir = $ca" "signingkey = $ca/signkey.pem" \
            "issuercert = $ca/issuercert.pem" "certserial = $ca/certserial" >"$ca/localca.conf"
        printf '%s\n' --platform-manufacturer tvd --platform-version 2.1 \
            --platform-model QEMU >"$ca/localca.options"
        printf '%s\n' "create_certs_tool = $(command -v swtpm_localca)" \
            "create_certs_tool_config = $ca/localca.conf" \
            "create_certs_tool_options = $ca/localca.options" \
            "active_pcr_banks = sha256" >"$ca/swtpm_setup.conf"
        swtpm_setup --tpm2 --tpmstate "$dir" --config "$ca/swtpm_setup.conf" \
            --create-ek-cert --create-platform-cert --lock-nvram \
            >"$IT_WORK/$name-setup.log" 2>&1 ||
            { it_diag "swtpm_setup failed, see $IT_WORK/$name-setup.log"; return 1; }
    fi
    IT_SWTPM_CTRL=$IT_WORK/$name.ctrl
    swtpm socket --tpm2 --tpmstate "dir=$dir" --ctrl "type=unixio,path=$IT_SWTPM_CTRL" \
        --flags startup-clear --log "file=$IT_WORK/$name.log" >>"$IT_WORK/$name.log" 2>&1 &
    IT_SWTPM_PID=$!
    it_track "$IT_SWTPM_PID"
    it_wait_file "$IT_SWTPM_CTRL" 10 || { it_diag "swtpm $name did not start"; return 1; }
}

# it_start_listener NAME: a stand-in for the supervisor's end of the device's
# chardev: a unix socket at $IT_WORK/NAME.sock (IT_LISTENER_SOCK) that accepts
# connections one after the other and appends every byte to $IT_WORK/NAME.bin.
it_start_listener() {
    local name=$1
    IT_LISTENER_SOCK=$IT_WORK/$name.sock
    /usr/bin/python3 -c '
import socket, sys
srv = socket.socket(socket.AF_UNIX)
srv.bind(sys.argv[1])
srv.listen(1)
with open(sys.argv[2], "ab", buffering=0) as out:
    while True:
        conn, _ = srv.accept()
        while True:
            data = conn.recv(65536)
            if not data:
                break
            out.write(data)
        conn.close()
' "$IT_LISTENER_SOCK" "$IT_WORK/$name.bin" 2>>"$IT_WORK/$name.log" &
    it_track $!
    it_wait_file "$IT_LISTENER_SOCK" 10 || { it_diag "listener $name did not start"; return 1; }
}

# it_start_vm NAME IMAGE_DIR EXTRA_APPEND [-- QEMU_ARGS...]: boot the guest
# image under IT_ACCEL (probed by it_accel when unset) with the image's kernel command line plus EXTRA_APPEND. The
# serial console goes to $IT_WORK/NAME.console (IT_VM_CONSOLE), QEMU's own
# output to NAME.log, QMP listens on NAME.qmp (IT_VM_QMP). Devices (tvd, NIC,
# TPM) come from QEMU_ARGS. Sets IT_VM_PID and IT_VM_T0 (start time).
it_start_vm() {
    local name=$1 dir=$2 append
    append="$(cat "$dir/cmdline") $3"
    shift 3
    [ "${1:-}" = -- ] && shift
    IT_VM_CONSOLE=$IT_WORK/$name.console
    IT_VM_QMP=$IT_WORK/$name.qmp
    it_accel
    : >"$IT_VM_CONSOLE"
    # shellcheck disable=SC2034 # read by the caller
    IT_VM_T0=$(it_now)
    "$IT_QEMU" -L "$IT_QEMU_FW" -machine pc -accel "$IT_ACCEL" -m 256 -smp 1 \
        -nodefaults -display none -no-reboot -name "$name" \
        -serial "file:$IT_VM_CONSOLE" \
        -qmp "unix:$IT_VM_QMP,server=on,wait=off" \
        -kernel "$dir/vmlinuz" -initrd "$dir/initrd.img" -append "$append" \
        "$@" >"$IT_WORK/$name.log" 2>&1 &
    IT_VM_PID=$!
    it_track "$IT_VM_PID"
}

# it_tpm_args ID CTRL: the QEMU arguments for a TPM CRB backed by swtpm.
it_tpm_args() {
    printf '%s\n' -chardev "socket,id=$1chr,path=$2" -tpmdev "emulator,id=$1,chardev=$1chr" \
        -device "tpm-crb,tpmdev=$1"
}

# it_wait_console FILE REGEX TIMEOUT [PID]: wait for a console line matching
# the extended REGEX; fails on timeout or when PID exits first (a last look
# at the file is taken then).
it_wait_console() {
    local file=$1 re=$2 pid=${4:-} end
    end=$(($(date +%s) + $3))
    while :; do
        # grep reads to the end (no -q): an early exit would fail the
        # pipeline with SIGPIPE under pipefail.
        tr -d '\r' <"$file" 2>/dev/null | grep -E "$re" >/dev/null && return 0
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            tr -d '\r' <"$file" 2>/dev/null | grep -E "$re" >/dev/null
            return
        fi
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.1
    done
}

# it_guest_value FILE KEY: the value of the last "TVD-GUEST: KEY=value" line.
it_guest_value() {
    tr -d '\r' <"$1" 2>/dev/null | sed -n "s/^TVD-GUEST: $2=//p" | tail -n 1
}

# it_console_tail FILE [N]: the last N (20) console lines, as TAP diagnostics.
it_console_tail() {
    tr -d '\r' <"$1" 2>/dev/null | tail -n "${2:-20}" | sed 's/^/# console: /'
}
