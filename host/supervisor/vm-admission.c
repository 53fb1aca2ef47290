/*
 * What the admission state machine (admission.h) needs from a VM: a way
 * to the agent, the VM's state, policy and provisioned EK, and where its
 * verdicts go.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include "message.h"

static gboolean adm_send(void *opaque, GBytes *payload, GError **error)
{
    TvdVm *vm = opaque;

    if (!vm->conn) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                    "the device is not connected");
        return FALSE;
    }
    return tvd_device_conn_send_agent(vm->conn, payload, error);
}

static void adm_verdict(void *opaque, const TvdVerdict *v, gboolean verified,
                        gboolean stop)
{
    TvdVm *vm = opaque;

    tvd_metrics_verdict(vm, v);
    /* A revoked VM stays revoked until the operator readmits it. */
    if (vm->state == TVD_STATE_REVOKED && v->state != TVD_STATE_REVOKED) {
        return;
    }
    /* The one place the membership deadline moves. */
    if (verified && v->state == TVD_STATE_ADMITTED) {
        tvd_vm_evidence_verified(vm);
    }
    if (vm->state != v->state || vm->cause != v->cause ||
        g_strcmp0(vm->detail, v->detail)) {
        tvd_vm_transition(vm, v, "verifier");
    }
    if (stop && vm->running) {
        tvd_supervisor_vm_stop(vm->sup, vm->name, NULL);
    }
}

static enum tvd_state adm_state(void *opaque)
{
    return ((TvdVm *)opaque)->state;
}

static TvdPolicy *adm_policy(void *opaque)
{
    TvdVm *vm = opaque;

    return tvd_domains_get(vm->sup->domains, vm->domain);
}

static GBytes *adm_ek_cert(void *opaque, guint8 ek_type)
{
    TvdVm *vm = opaque;
    g_autofree char *path = NULL;
    g_autofree char *data = NULL;
    gsize len;

    if (!vm->dir) {
        return NULL;
    }
    if (vm->adopted) {
        /* What the operator registered, of whichever type. */
        path = tvd_vm_registered_ek_path(vm);
        if (!g_file_get_contents(path, &data, &len, NULL)) {
            return NULL;
        }
        return g_bytes_new_take(g_steal_pointer(&data), len);
    }
    path = g_build_filename(vm->dir, "vtpm", ek_type == TVD_EK_ECC
                            ? "ek-ecc.der" : "ek-rsa.der", NULL);
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        /* Launched but without that certificate: nothing can match. */
        return g_bytes_new_static("", 0);
    }
    return g_bytes_new_take(g_steal_pointer(&data), len);
}

static const char *adm_name(void *opaque)
{
    return ((TvdVm *)opaque)->name;
}

const TvdAdmissionHost tvd_vm_admission_host = {
    .send = adm_send,
    .verdict = adm_verdict,
    .state = adm_state,
    .policy = adm_policy,
    .ek_cert = adm_ek_cert,
    .name = adm_name,
};
