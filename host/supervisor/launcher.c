/*
 * QEMU command line: see launcher.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-launcher"

#include "launcher.h"

static void add(GPtrArray *a, const char *arg)
{
    g_ptr_array_add(a, g_strdup(arg));
}

static void addf(GPtrArray *a, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void addf(GPtrArray *a, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(a, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

char *tvd_launcher_tap_name(const char *vm_name)
{
    /* IFNAMSIZ is 16: a stable short name from the VM's name. */
    return g_strdup_printf("tvd%08x", g_str_hash(vm_name));
}

GStrv tvd_launcher_qemu_argv(const TvdSupervisorConfig *cfg, const char *name,
                             const char *vm_id, const char *domain,
                             const char *kernel, const char *initrd,
                             const char *append, guint memory_mib,
                             const char *sup_sock, const char *tpm_sock,
                             const char *vm_dir)
{
    GPtrArray *a = g_ptr_array_new();
    g_auto(GStrv) accels = g_strsplit(cfg->accel, ":", -1);

    add(a, cfg->qemu_binary);
    add(a, "-name");
    addf(a, "%s,debug-threads=on", name);
    add(a, "-uuid");
    add(a, vm_id);
    add(a, "-machine");
    add(a, "pc");
    /* "kvm:tcg" tries KVM first and falls back to TCG where there is none. */
    for (char **acc = accels; *acc; acc++) {
        add(a, "-accel");
        add(a, *acc);
    }
    add(a, "-m");
    addf(a, "%u", memory_mib);
    add(a, "-nodefaults");
    add(a, "-no-user-config");
    add(a, "-display");
    add(a, "none");
    add(a, "-serial");
    addf(a, "file:%s/console.log", vm_dir);
    add(a, "-qmp");
    addf(a, "unix:%s/qmp.sock,server=on,wait=off", vm_dir);
    add(a, "-pidfile");
    addf(a, "%s/qemu.pid", vm_dir);
    if (cfg->firmware_dir) {
        add(a, "-L");
        add(a, cfg->firmware_dir);
    }
    add(a, "-kernel");
    add(a, kernel);
    add(a, "-initrd");
    add(a, initrd);
    add(a, "-append");
    add(a, append && *append ? append : "console=ttyS0");

    /* The supervisor end: the device reconnects by itself after restarts. */
    add(a, "-chardev");
    addf(a, "socket,id=tvdsup,path=%s,reconnect-ms=500", sup_sock);
    /* The vTPM. */
    add(a, "-chardev");
    addf(a, "socket,id=tpmchr,path=%s", tpm_sock);
    add(a, "-tpmdev");
    add(a, "emulator,id=tpm0,chardev=tpmchr");
    add(a, "-device");
    add(a, "tpm-crb,tpmdev=tpm0");
    /*
     * The NIC the device gates: a tap of its own, attached to nothing (the
     * per-domain bridges of the network isolation layer take it in), or
     * user-mode networking with restrict=on where taps cannot be made.
     */
    add(a, "-netdev");
    if (!strcmp(cfg->nic, "tap")) {
        g_autofree char *tap = tvd_launcher_tap_name(name);

        addf(a, "tap,id=net0,ifname=%s,script=no,downscript=no", tap);
    } else {
        add(a, "user,id=net0,restrict=on");
    }
    add(a, "-device");
    add(a, "e1000,netdev=net0,romfile=");
    add(a, "-device");
    addf(a, "tvd,chardev=tvdsup,netdev=net0,tpmdev=tpm0,domain=%s,vm-id=%s",
         domain, vm_id);
    g_ptr_array_add(a, NULL);
    return (GStrv)g_ptr_array_free(a, FALSE);
}
