/*
 * The REST API's backend: maps each route to the supervisor core.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api"

#include "api-backend.h"

#include "audit.h"
#include "json-util.h"
#include "domains.h"
#include "supervisor.h"

/* The core's errors, in the API's domain (and so HTTP statuses). */
static gboolean api_fail(GError **error, GError *err)
{
    int code = TVD_API_ERROR_INTERNAL;

    if (err->domain == TVD_SUPERVISOR_ERROR) {
        switch (err->code) {
        case TVD_SUPERVISOR_ERROR_NOT_FOUND:
            code = TVD_API_ERROR_NOT_FOUND;
            break;
        case TVD_SUPERVISOR_ERROR_INVALID:
            code = TVD_API_ERROR_INVALID;
            break;
        case TVD_SUPERVISOR_ERROR_CONFLICT:
            code = TVD_API_ERROR_CONFLICT;
            break;
        default:
            break;
        }
    } else if (err->domain == TVD_POLICY_ERROR) {
        code = err->code == TVD_POLICY_ERROR_UNKNOWN_KEY ||
               err->code == TVD_POLICY_ERROR_SIGNATURE
               ? TVD_API_ERROR_FORBIDDEN : TVD_API_ERROR_INVALID;
    }
    g_set_error_literal(error, TVD_API_ERROR, code, err->message);
    g_error_free(err);
    return FALSE;
}

static gboolean vm_out(TvdSupervisor *sup, const char *name, JsonBuilder *out,
                       GError **error)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    if (!vm) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "no VM named %s", name);
        return FALSE;
    }
    tvd_vm_to_json(vm, out);
    return TRUE;
}

static gboolean be_health(void *ctx, JsonBuilder *out, GError **error)
{
    g_autoptr(GList) vms = tvd_supervisor_vm_list(ctx);

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "status");
    json_builder_add_string_value(out, "ok");
    json_builder_set_member_name(out, "api");
    json_builder_add_string_value(out, TVD_API_VERSION);
    json_builder_set_member_name(out, "version");
    json_builder_add_string_value(out, TVD_VERSION);
    json_builder_set_member_name(out, "vms");
    json_builder_add_int_value(out, g_list_length(vms));
    json_builder_end_object(out);
    return TRUE;
}

static gboolean be_vm_list(void *ctx, JsonBuilder *out, GError **error)
{
    g_autoptr(GList) vms = tvd_supervisor_vm_list(ctx);

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "vms");
    json_builder_begin_array(out);
    for (GList *l = vms; l; l = l->next) {
        tvd_vm_to_json(l->data, out);
    }
    json_builder_end_array(out);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean be_vm_show(void *ctx, const char *name, JsonBuilder *out,
                           GError **error)
{
    return vm_out(ctx, name, out, error);
}

static gboolean be_vm_start(void *ctx, const TvdApiVmSpec *spec,
                            JsonBuilder *out, GError **error)
{
    TvdVmSpec s = {
        .name = spec->name, .domain = spec->domain, .role = spec->role,
        .kernel = spec->kernel, .initrd = spec->initrd,
        .append = spec->append, .memory_mib = spec->memory_mib,
    };
    GError *err = NULL;

    if (!tvd_supervisor_vm_start(ctx, &s, &err)) {
        return api_fail(error, err);
    }
    return vm_out(ctx, spec->name, out, error);
}

static gboolean be_vm_stop(void *ctx, const char *name, JsonBuilder *out,
                           GError **error)
{
    GError *err = NULL;

    if (!tvd_supervisor_vm_stop(ctx, name, &err)) {
        return api_fail(error, err);
    }
    return vm_out(ctx, name, out, error);
}

static gboolean be_vm_revoke(void *ctx, const char *name, const char *reason,
                             JsonBuilder *out, GError **error)
{
    GError *err = NULL;

    if (!tvd_supervisor_vm_revoke(ctx, name, reason, &err)) {
        return api_fail(error, err);
    }
    return vm_out(ctx, name, out, error);
}

static gboolean be_vm_register_ek(void *ctx, const char *name, GBytes *cert,
                                  JsonBuilder *out, GError **error)
{
    GError *err = NULL;

    if (!tvd_supervisor_vm_register_ek(ctx, name, cert, &err)) {
        return api_fail(error, err);
    }
    return vm_out(ctx, name, out, error);
}

static gboolean be_vm_readmit(void *ctx, const char *name, JsonBuilder *out,
                              GError **error)
{
    GError *err = NULL;

    if (!tvd_supervisor_vm_readmit(ctx, name, &err)) {
        return api_fail(error, err);
    }
    return vm_out(ctx, name, out, error);
}

static gboolean be_domain_create(void *ctx, const TvdApiDomainSpec *spec,
                                 JsonBuilder *out, GError **error)
{
    g_autofree char *name = NULL;
    GError *err = NULL;

    if (!tvd_supervisor_domain_create(ctx, spec->policy, spec->signature,
                                      &name, &err)) {
        return api_fail(error, err);
    }
    if (spec->name && g_strcmp0(spec->name, name)) {
        g_warning("domain created as %s (the request said %s)", name,
                  spec->name);
    }
    return tvd_domains_show_json(tvd_supervisor_domains(ctx), name, out,
                                 error);
}

static gboolean be_domain_list(void *ctx, JsonBuilder *out, GError **error)
{
    json_builder_begin_object(out);
    json_builder_set_member_name(out, "domains");
    tvd_domains_list_json(tvd_supervisor_domains(ctx), out);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean be_domain_show(void *ctx, const char *name, JsonBuilder *out,
                               GError **error)
{
    GError *err = NULL;

    if (!tvd_domains_show_json(tvd_supervisor_domains(ctx), name, out, &err)) {
        return api_fail(error, err);
    }
    return TRUE;
}

static gboolean be_domain_update(void *ctx, const char *name,
                                 const TvdApiDomainSpec *spec,
                                 JsonBuilder *out, GError **error)
{
    GError *err = NULL;

    if (!tvd_supervisor_domain_update(ctx, name, spec->policy,
                                      spec->signature, &err)) {
        return api_fail(error, err);
    }
    return tvd_domains_show_json(tvd_supervisor_domains(ctx), name, out,
                                 error);
}

/* An audit record as the API's entry: seq, time, action, subject, ... */
static void audit_entry(JsonObject *rec, JsonBuilder *out)
{
    const char *vm = tvd_json_string_member(rec, "vm");
    const char *domain = tvd_json_string_member(rec, "domain");
    const char *reason = tvd_json_string_member(rec, "reason");
    g_autofree char *subject = vm ? g_strconcat("vm/", vm, NULL)
                               : domain ? g_strconcat("domain/", domain, NULL)
                               : g_strdup("supervisor");

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "seq");
    json_builder_add_int_value(out, json_object_get_int_member(rec, "seq"));
    json_builder_set_member_name(out, "time");
    json_builder_add_string_value(out, tvd_json_string_member(rec, "time"));
    json_builder_set_member_name(out, "action");
    json_builder_add_string_value(out, tvd_json_string_member(rec, "event"));
    json_builder_set_member_name(out, "subject");
    json_builder_add_string_value(out, subject);
    json_builder_set_member_name(out, "actor");
    json_builder_add_string_value(out, tvd_json_string_member(rec, "actor"));
    json_builder_set_member_name(out, "reason");
    if (reason) {
        json_builder_add_string_value(out, reason);
    } else {
        json_builder_add_null_value(out);
    }
    json_builder_set_member_name(out, "hash");
    json_builder_add_string_value(out, tvd_json_string_member(rec, "hash"));
    json_builder_end_object(out);
}

static gboolean be_audit_list(void *ctx, guint64 since, guint limit,
                              JsonBuilder *out, GError **error)
{
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    GError *err = NULL;
    g_auto(GStrv) lines = NULL;
    g_autofree char *text = NULL;
    gint64 next = MAX(since, 1);
    guint n = 0;

    if (!tvd_audit_export(tvd_supervisor_audit(ctx), MAX(since, 1), mem, NULL,
                          &err)) {
        return api_fail(error, err);
    }
    g_output_stream_close(mem, NULL, NULL);
    text = g_strndup(
        g_memory_output_stream_get_data(G_MEMORY_OUTPUT_STREAM(mem)),
        g_memory_output_stream_get_data_size(G_MEMORY_OUTPUT_STREAM(mem)));
    lines = g_strsplit(text, "\n", -1);
    json_builder_begin_object(out);
    json_builder_set_member_name(out, "entries");
    json_builder_begin_array(out);
    for (char **l = lines; *l && n < limit; l++) {
        g_autoptr(JsonParser) p = json_parser_new();
        JsonObject *rec;

        if (!**l || !json_parser_load_from_data(p, *l, -1, NULL) ||
            !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p))) {
            continue;
        }
        rec = json_node_get_object(json_parser_get_root(p));
        audit_entry(rec, out);
        next = json_object_get_int_member(rec, "seq") + 1;
        n++;
    }
    json_builder_end_array(out);
    json_builder_set_member_name(out, "next");
    json_builder_add_int_value(out, next);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean be_audit_verify(void *ctx, JsonBuilder *out, GError **error)
{
    TvdAuditReport report = { 0 };
    GError *err = NULL;
    g_autoptr(GString) head = g_string_new(NULL);

    if (!tvd_audit_verify(tvd_supervisor_audit(ctx), &report, &err)) {
        return api_fail(error, err);
    }
    for (guint i = 0; i < TVD_AUDIT_HASH_SIZE; i++) {
        g_string_append_printf(head, "%02x", report.head_hash[i]);
    }
    json_builder_begin_object(out);
    json_builder_set_member_name(out, "ok");
    json_builder_add_boolean_value(out, report.fault == TVD_AUDIT_OK);
    json_builder_set_member_name(out, "checked");
    json_builder_add_int_value(out, report.records);
    json_builder_set_member_name(out, "first_bad");
    if (report.fault == TVD_AUDIT_OK) {
        json_builder_add_null_value(out);
    } else {
        json_builder_add_int_value(out, report.bad_seq);
    }
    json_builder_set_member_name(out, "error");
    if (report.fault == TVD_AUDIT_OK) {
        json_builder_add_null_value(out);
    } else {
        g_autofree char *why = g_strdup_printf(
            "%s%s%s", tvd_audit_fault_name(report.fault),
            report.why ? ": " : "", report.why ? report.why : "");

        json_builder_add_string_value(out, why);
    }
    json_builder_set_member_name(out, "head");
    json_builder_add_string_value(out, head->str);
    json_builder_end_object(out);
    tvd_audit_report_clear(&report);
    return TRUE;
}

static gboolean be_metrics(void *ctx, GString *out, GError **error)
{
    tvd_supervisor_metrics(ctx, out);
    return TRUE;
}

const TvdApiBackend tvd_supervisor_api_backend = {
    .health = be_health,
    .vm_list = be_vm_list,
    .vm_show = be_vm_show,
    .vm_start = be_vm_start,
    .vm_stop = be_vm_stop,
    .vm_revoke = be_vm_revoke,
    .vm_readmit = be_vm_readmit,
    .vm_register_ek = be_vm_register_ek,
    .domain_create = be_domain_create,
    .domain_list = be_domain_list,
    .domain_show = be_domain_show,
    .domain_update = be_domain_update,
    .audit_list = be_audit_list,
    .audit_verify = be_audit_verify,
    .metrics = be_metrics,
};
