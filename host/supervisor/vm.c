/*
 * A VM of this supervisor: its creation, its membership transitions (each
 * recorded, then pushed to the device, then audited) and the operator's
 * decisions. See supervisor.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include <glib/gstdio.h>

#include "launcher.h"

G_DEFINE_QUARK(tvd-supervisor-error-quark, tvd_supervisor_error)

/* Every VM starts here: the record and its admission state machine. */
TvdVm *tvd_vm_new(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = g_new0(TvdVm, 1);

    vm->sup = sup;
    vm->name = g_strdup(name);
    vm->adm = tvd_admission_new(&tvd_vm_admission_host, vm, &sup->shared);
    g_hash_table_insert(sup->vms, vm->name, vm);
    return vm;
}

void tvd_vm_free(TvdVm *vm)
{
    tvd_admission_free(vm->adm);
    g_clear_handle_id(&vm->deadline_id, g_source_remove);
    tvd_vm_hello_timer_cancel(vm);
    if (vm->pid_watch) {
        g_source_remove(vm->pid_watch);
    }
    tvd_device_conn_free(vm->conn);
    if (vm->service) {
        g_socket_service_stop(vm->service);
        g_socket_listener_close(G_SOCKET_LISTENER(vm->service));
        g_object_unref(vm->service);
    }
    g_clear_object(&vm->qemu);
    g_clear_object(&vm->swtpm);
    g_clear_pointer(&vm->ek_cert, g_bytes_unref);
    g_free(vm->name);
    g_free(vm->vm_id);
    g_free(vm->domain);
    g_free(vm->role);
    g_free(vm->detail);
    g_free(vm->reason);
    g_free(vm->kernel);
    g_free(vm->initrd);
    g_free(vm->append);
    g_free(vm->dir);
    g_free(vm->sock_path);
    g_free(vm);
}

void tvd_vm_set_str(char **dst, const char *src)
{
    g_free(*dst);
    *dst = g_strdup(src);
}

char *tvd_vm_time_string(gint64 wall_us)
{
    g_autoptr(GDateTime) t = NULL;

    if (wall_us <= 0) {
        return NULL;
    }
    t = g_date_time_new_from_unix_utc(wall_us / G_USEC_PER_SEC);
    return t ? g_date_time_format_iso8601(t) : NULL;
}

void tvd_vm_to_json(const TvdVm *vm, JsonBuilder *b)
{
    g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc(
        vm->since_us / G_USEC_PER_SEC);
    g_autofree char *since_s = since ? g_date_time_format_iso8601(since) : NULL;
    g_autofree char *last_s = tvd_vm_time_string(vm->last_verified_us);
    g_autofree char *deadline_s = tvd_vm_time_string(tvd_vm_deadline(vm));

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, vm->name);
    json_builder_set_member_name(b, "vm_id");
    json_builder_add_string_value(b, vm->vm_id ? vm->vm_id : "");
    json_builder_set_member_name(b, "domain");
    json_builder_add_string_value(b, vm->domain ? vm->domain : "");
    json_builder_set_member_name(b, "role");
    json_builder_add_string_value(b, vm->role ? vm->role : "");
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, tvd_state_name(vm->state));
    json_builder_set_member_name(b, "reason_code");
    json_builder_add_int_value(b, tvd_cause_class(vm->cause));
    json_builder_set_member_name(b, "reason");
    json_builder_add_string_value(b, vm->reason ? vm->reason : "");
    json_builder_set_member_name(b, "cause");
    json_builder_add_string_value(b, tvd_cause_name(vm->cause));
    json_builder_set_member_name(b, "cause_class");
    json_builder_add_string_value(b, tvd_reason_class_name(
                                      tvd_cause_class(vm->cause)));
    json_builder_set_member_name(b, "detail");
    json_builder_add_string_value(b, vm->detail ? vm->detail : "");
    json_builder_set_member_name(b, "since");
    json_builder_add_string_value(b, since_s ? since_s : "");
    json_builder_set_member_name(b, "last_verified");
    json_builder_add_string_value(b, last_s ? last_s : "");
    json_builder_set_member_name(b, "deadline");
    json_builder_add_string_value(b, deadline_s ? deadline_s : "");
    json_builder_set_member_name(b, "adopted");
    json_builder_add_boolean_value(b, vm->adopted);
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, vm->running);
    json_builder_set_member_name(b, "connected");
    json_builder_add_boolean_value(b, vm->conn != NULL);
    json_builder_set_member_name(b, "link_up");
    json_builder_add_boolean_value(b, vm->conn &&
                                   (vm->device_status & TVD_STATUS_LINK_UP));
    json_builder_set_member_name(b, "qemu_pid");
    json_builder_add_int_value(b, vm->qemu_pid);
    if (!vm->adopted && !strcmp(vm->sup->cfg->nic, "tap")) {
        g_autofree char *tap = tvd_launcher_tap_name(vm->name);

        json_builder_set_member_name(b, "tap");
        json_builder_add_string_value(b, tap);
    }
    if (!vm->adopted) {
        json_builder_set_member_name(b, "kernel");
        json_builder_add_string_value(b, vm->kernel ? vm->kernel : "");
        json_builder_set_member_name(b, "initrd");
        json_builder_add_string_value(b, vm->initrd ? vm->initrd : "");
        json_builder_set_member_name(b, "append");
        json_builder_add_string_value(b, vm->append ? vm->append : "");
        json_builder_set_member_name(b, "memory");
        json_builder_add_int_value(b, vm->memory_mib);
    }
    json_builder_end_object(b);
}

gboolean tvd_supervisor_audit_event(TvdSupervisor *sup, const char *actor,
                                    const char *vm, const char *domain,
                                    const char *event, const char *reason,
                                    const TvdVerdict *verdict)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(JsonObject) details = NULL;

    if (!sup->audit) {
        return TRUE;
    }
    if (verdict) {
        details = json_object_new();
        json_object_set_string_member(details, "cause",
                                      tvd_cause_name(verdict->cause));
        json_object_set_string_member(details, "class",
                                      tvd_reason_class_name(
                                          tvd_cause_class(verdict->cause)));
        json_object_set_string_member(details, "detail", verdict->detail);
    }
    if (!tvd_audit_append(sup->audit, actor, vm, domain, event, reason,
                          details, NULL, &err)) {
        g_critical("audit log: %s", err->message);
        return FALSE;
    }
    return TRUE;
}

/* ---- transitions -------------------------------------------------------- */

void tvd_vm_push_state(TvdVm *vm)
{
    g_autoptr(GError) err = NULL;

    if (!vm->conn || !vm->have_hello) {
        return;
    }
    if (!tvd_device_conn_set_state(vm->conn, vm->state,
                                   tvd_cause_class(vm->cause),
                                   &err)) {
        g_warning("%s: cannot push %s to the device: %s", vm->name,
                  tvd_state_name(vm->state), err->message);
    }
}

/* Cause, detail and the "cause: detail" shown, from @v. */
void tvd_vm_set_verdict(TvdVm *vm, const TvdVerdict *v)
{
    vm->state = v->state;
    vm->cause = v->cause;
    tvd_vm_set_str(&vm->detail, v->detail);
    g_free(vm->reason);
    vm->reason = v->detail[0] ? g_strdup_printf("%s: %s",
                                                tvd_cause_name(v->cause),
                                                v->detail)
                              : g_strdup(tvd_cause_name(v->cause));
}

/* A durable write failed: the VM leaves membership, the device follows. */
static void fail_closed(TvdVm *vm, TvdCause cause, const char *what)
{
    TvdVerdict v;

    if (vm->state != TVD_STATE_ADMITTED) {
        return;
    }
    tvd_verdict_set(&v, TVD_STATE_QUARANTINED, cause, "%s", what);
    tvd_vm_set_verdict(vm, &v);
    vm->since_us = g_get_real_time();
    g_warning("%s: %s: %s; the VM is QUARANTINED", vm->name,
               tvd_cause_name(cause), what);
    g_clear_handle_id(&vm->deadline_id, g_source_remove);
    tvd_vm_push_state(vm);
}

gboolean tvd_vm_record_or_fail(TvdVm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *what = NULL;

    if (tvd_vm_save(vm, &err)) {
        return TRUE;
    }
    what = g_strdup_printf("the VM record cannot be written: %s",
                           err->message);
    fail_closed(vm, TVD_CAUSE_STORE_FAILURE, what);
    /* Still worth a try: the safe state on disk too if the store is back. */
    tvd_vm_save(vm, NULL);
    return FALSE;
}

void tvd_vm_transition(TvdVm *vm, const TvdVerdict *v, const char *actor)
{
    guint32 old = vm->state;

    tvd_vm_set_verdict(vm, v);
    vm->since_us = g_get_real_time();
    g_message("%s: %s -> %s by %s: %s", vm->name, tvd_state_name(old),
              tvd_state_name(vm->state), actor, vm->reason);
    /* Recorded first, then the device: the link gate follows at once. */
    tvd_vm_record_or_fail(vm);
    tvd_vm_push_state(vm);
    tvd_vm_deadline_update(vm);
    {
        g_autofree char *event = g_ascii_strdown(tvd_state_name(vm->state),
                                                 -1);
        /* What was decided in the end (a failed write changes it). */
        TvdVerdict now = { .state = vm->state, .cause = vm->cause };

        g_strlcpy(now.detail, vm->detail ? vm->detail : "", sizeof(now.detail));
        if (!tvd_supervisor_audit_event(vm->sup, actor, vm->name, vm->domain,
                                        event, vm->reason, &now)) {
            /* A decision that is not in the audit log is not kept. */
            fail_closed(vm, TVD_CAUSE_AUDIT_FAILURE,
                        "the audit log refused the entry");
            tvd_vm_save(vm, NULL);
        }
    }
}

/* ---- the VMs ------------------------------------------------------------ */

TvdVm *tvd_vm_lookup(TvdSupervisor *sup, const char *name, GError **error)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    if (!vm) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_NOT_FOUND,
                    "no VM named %s", name);
    }
    return vm;
}

TvdVm *tvd_supervisor_vm_find(TvdSupervisor *sup, const char *name)
{
    return name ? g_hash_table_lookup(sup->vms, name) : NULL;
}

static gint vm_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const TvdVm *)a)->name, ((const TvdVm *)b)->name);
}

GList *tvd_supervisor_vm_list(TvdSupervisor *sup)
{
    return g_list_sort(g_hash_table_get_values(sup->vms), vm_cmp);
}

gboolean tvd_supervisor_vm_revoke(TvdSupervisor *sup, const char *name,
                                  const char *reason, GError **error)
{
    TvdVm *vm = tvd_vm_lookup(sup, name, error);
    TvdVerdict v;

    if (!vm) {
        return FALSE;
    }
    tvd_verdict_set(&v, TVD_STATE_REVOKED, TVD_CAUSE_OPERATOR_REVOKE, "%s",
                    reason ? reason : "");
    tvd_vm_transition(vm, &v, "operator");
    return TRUE;
}

gboolean tvd_supervisor_vm_readmit(TvdSupervisor *sup, const char *name,
                                   GError **error)
{
    TvdVm *vm = tvd_vm_lookup(sup, name, error);
    TvdVerdict v;

    if (!vm) {
        return FALSE;
    }
    if (vm->state != TVD_STATE_REVOKED && vm->state != TVD_STATE_QUARANTINED) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s is %s: only a revoked or quarantined VM can be "
                    "readmitted", name, tvd_state_name(vm->state));
        return FALSE;
    }
    /* Readmission means a fresh attestation, never a free pass. */
    tvd_verdict_set(&v, TVD_STATE_PENDING, TVD_CAUSE_OPERATOR_READMIT,
                    "awaiting attestation");
    tvd_vm_transition(vm, &v, "operator");
    tvd_admission_reattest(vm->adm);
    return TRUE;
}

void tvd_supervisor_fail_store_writes(TvdSupervisor *sup, gboolean fail)
{
    sup->fail_store_writes = fail;
}

const char *tvd_vm_name(const TvdVm *vm)
{
    return vm->name;
}

enum tvd_state tvd_vm_state(const TvdVm *vm)
{
    return vm->state;
}

const char *tvd_vm_reason(const TvdVm *vm)
{
    return vm->reason ? vm->reason : "";
}

TvdCause tvd_vm_cause(const TvdVm *vm)
{
    return vm->cause;
}

const char *tvd_vm_detail(const TvdVm *vm)
{
    return vm->detail ? vm->detail : "";
}

gint64 tvd_vm_last_verified(const TvdVm *vm)
{
    return vm->last_verified_us;
}

gboolean tvd_vm_connected(const TvdVm *vm)
{
    return vm->conn != NULL && vm->have_hello;
}

guint32 tvd_vm_device_status(const TvdVm *vm)
{
    return vm->device_status;
}
