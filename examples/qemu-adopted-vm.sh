#!/bin/sh
# A VM started with plain QEMU that a tvd-supervisor adopts (the same VM as
# libvirt-domain.xml). Run as the supervisor's user (root with the example
# unit): the vTPM CA's keys in $STATE/vtpm-ca are readable by it only, and
# the adoption socket is 0600. docs/supervisor.md, "Adoption".
set -eu

NAME=web1                               # the VM's name in tvdctl vm list
DOMAIN=blue                             # the domain it asks to join
STATE=/var/lib/tvd                      # the supervisor's state directory
RUN=/run/tvd                            # its run directory (adopt.sock)
VM=/var/lib/vms/$NAME                   # this VM's own files
IMG=/var/lib/tvd/images                 # vmlinuz, initrd.img (docs/guest-image.md)
QEMU=/usr/local/bin/qemu-system-x86_64  # built with the tvd device (scripts/build-qemu)

# 1. The vTPM, once: its EK certificates must be issued by the host's vTPM
#    CA, which swtpm_setup uses through the supervisor's configuration
#    (without --config, swtpm_setup's own CA issues them, and the supervisor
#    refuses to register them). --not-overwrite keeps an existing state.
if [ ! -e "$VM/certs/ek-rsa2048.crt" ]; then
    mkdir -p "$VM/vtpm" "$VM/certs"
    chmod 0700 "$VM" "$VM/vtpm" "$VM/certs"
    swtpm_setup --tpm2 --tpmstate "$VM/vtpm" \
        --config "$STATE/vtpm-ca/swtpm_setup.conf" \
        --create-ek-cert --create-platform-cert --lock-nvram --ecc \
        --write-ek-cert-files "$VM/certs" --not-overwrite
fi

# 2. Bind the VM's name to that vTPM's EK (the agent's default EK is RSA):
#    an agent with any other EK is quarantined with ek-not-bound.
tvdctl vm register-ek "$NAME" --ek-cert "$VM/certs/ek-rsa2048.crt"

# 3. swtpm for this run; --terminate: it ends when QEMU closes the socket.
swtpm socket --tpm2 --tpmstate dir="$VM/vtpm" \
    --ctrl type=unixio,path="$VM/swtpm.sock" \
    --log file="$VM/swtpm.log" --terminate --daemon

# 4. QEMU: -name names the VM to the supervisor; the tvd device's chardev
#    connects to the adoption socket (and reconnects after the supervisor
#    restarts), gates the NIC net0 and reads the vTPM tpm0.
exec "$QEMU" -name "$NAME" -machine pc -accel kvm -m 512 \
    -nodefaults -no-user-config -display none -serial stdio \
    -kernel "$IMG/vmlinuz" -initrd "$IMG/initrd.img" \
    -append "console=ttyS0 tvd.run=/usr/bin/tvd-agent" \
    -chardev socket,id=tpmchr,path="$VM/swtpm.sock" \
    -tpmdev emulator,id=tpm0,chardev=tpmchr \
    -device tpm-crb,tpmdev=tpm0 \
    -netdev user,id=net0,restrict=on \
    -device e1000,netdev=net0,romfile= \
    -chardev socket,id=tvdsup,path="$RUN/adopt.sock",reconnect-ms=1000 \
    -device tvd,chardev=tvdsup,netdev=net0,tpmdev=tpm0,domain="$DOMAIN"
