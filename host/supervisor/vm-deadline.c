/*
 * The membership deadline of a VM. An ADMITTED VM stays a member only
 * while its evidence is fresh: by last_verified + interval + deadline (the
 * domain policy's timings) a new round must have been verified, or the VM
 * gets the policy's failure action with cause deadline-missed.
 *
 * last_verified is the wall-clock time of the last ADMITTED verdict on
 * verified evidence; it is persisted in the VM record, so a restarted
 * supervisor keeps counting from it. Nothing else moves it: not an agent
 * hello, not a device (re)connection, not a restart, not an API call.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

gint64 tvd_vm_deadline(const TvdVm *vm)
{
    TvdAdmission *adm = vm->adm;

    if (vm->state != TVD_STATE_ADMITTED) {
        return 0;
    }
    /* Never verified (a record from before, or a test's hand): due now. */
    if (vm->last_verified_us <= 0) {
        return 1;
    }
    return vm->last_verified_us +
           ((gint64)tvd_admission_interval_ms(adm) +
            tvd_admission_deadline_ms(adm)) * 1000;
}

static gboolean on_deadline(gpointer data)
{
    TvdVm *vm = data;
    g_autofree char *last = tvd_vm_time_string(vm->last_verified_us);
    g_autofree char *detail = NULL;

    vm->deadline_id = 0;
    if (vm->state != TVD_STATE_ADMITTED) {
        return G_SOURCE_REMOVE;
    }
    /* The wall clock may have been set back: not due yet, wait again. */
    if (g_get_real_time() < tvd_vm_deadline(vm)) {
        tvd_vm_deadline_update(vm);
        return G_SOURCE_REMOVE;
    }
    detail = g_strdup_printf("no verified evidence since %s (interval %u ms "
                             "+ deadline %u ms)", last ? last : "never",
                             tvd_admission_interval_ms(vm->adm),
                             tvd_admission_deadline_ms(vm->adm));
    tvd_admission_deadline_missed(vm->adm, detail);
    return G_SOURCE_REMOVE;
}

void tvd_vm_deadline_update(TvdVm *vm)
{
    gint64 due = tvd_vm_deadline(vm);
    gint64 left_ms;

    g_clear_handle_id(&vm->deadline_id, g_source_remove);
    if (!due) {
        return;
    }
    left_ms = (due - g_get_real_time() + 999) / 1000;
    vm->deadline_id = g_timeout_add(
        (guint)CLAMP(left_ms, 0, (gint64)G_MAXINT32), on_deadline, vm);
}

void tvd_vm_evidence_verified(TvdVm *vm)
{
    vm->last_verified_us = g_get_real_time();
    /* Persisted at once: a restart counts from here, not from its start. */
    tvd_vm_record_or_fail(vm);
    tvd_vm_deadline_update(vm);
}
