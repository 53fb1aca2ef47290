/*
 * The EK bound to a VM. A launched VM is bound to the EK of the vTPM the
 * supervisor provisioned for it (vms/NAME/vtpm/ek-*.der); an adopted VM to
 * the EK certificate the operator registered (vms/NAME/ek-registered.der).
 * An adopted VM without one is never admitted: a certificate the agent
 * sends proves only that the host's CA issued it to some vTPM, maybe
 * another VM's that a guest relays its challenges to.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include <glib/gstdio.h>

#include "verifier.h"

char *tvd_vm_registered_ek_path(const TvdVm *vm)
{
    return g_build_filename(vm->dir, "ek-registered.der", NULL);
}

gboolean tvd_supervisor_vm_register_ek(TvdSupervisor *sup, const char *name,
                                       GBytes *ek_cert, GError **error)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);
    g_autoptr(GError) err = NULL;
    g_autofree char *path = NULL;
    g_autofree char *digest = NULL;
    gsize len;
    const guint8 *der;

    if (!vm && !tvd_api_name_is_valid(name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "invalid VM name '%s'", name ? name : "");
        return FALSE;
    }
    if (vm && !vm->adopted) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s was launched by this supervisor: it is bound to "
                    "the EK of the vTPM provisioned for it", name);
        return FALSE;
    }
    der = ek_cert ? g_bytes_get_data(ek_cert, &len) : NULL;
    if (!der || len == 0 ||
        !tvd_ek_cert_verify(der, len,
                            g_bytes_get_data(sup->shared.ca_pem, NULL),
                            g_bytes_get_size(sup->shared.ca_pem), NULL,
                            &err)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "the EK certificate of %s: %s", name,
                    err ? err->message : "empty");
        return FALSE;
    }
    if (!vm) {
        /* Registered before its QEMU first connects: an adopted VM that
         * waits for its device. */
        TvdVerdict pending;

        vm = tvd_vm_new(sup, name);
        vm->adopted = TRUE;
        vm->dir = g_build_filename(sup->cfg->state_dir, "vms", name, NULL);
        vm->since_us = g_get_real_time();
        tvd_verdict_set(&pending, TVD_STATE_PENDING, TVD_CAUSE_AWAITING,
                        "registered, awaiting its device");
        tvd_vm_set_verdict(vm, &pending);
        tvd_vm_record_or_fail(vm);
    }
    path = tvd_vm_registered_ek_path(vm);
    if (g_mkdir_with_parents(vm->dir, 0700) != 0 ||
        !g_file_set_contents_full(path, (const char *)der, len,
                                  G_FILE_SET_CONTENTS_CONSISTENT |
                                  G_FILE_SET_CONTENTS_DURABLE, 0600, &err)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_FAILED,
                    "cannot record the EK certificate of %s: %s", name,
                    err ? err->message : g_strerror(errno));
        return FALSE;
    }
    digest = g_compute_checksum_for_data(G_CHECKSUM_SHA256, der, len);
    {
        g_autofree char *why = g_strconcat("sha256:", digest, NULL);

        tvd_supervisor_audit_event(sup, "operator", vm->name, vm->domain,
                                   "ek-register", why, NULL);
    }
    /* A binding made with another EK does not carry over. */
    tvd_admission_reset(vm->adm);
    g_message("%s: EK certificate registered (sha256:%s)", vm->name, digest);
    return TRUE;
}
