/*
 * The VM's record in the store (/vms/NAME): what a restarted supervisor
 * needs to take the VM back. Its own format, not the API's JSON: the API
 * may show more (or less) without changing what is persisted.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include "json-util.h"

#define VM_KEY_PREFIX   "/vms/"

static void add_str(JsonBuilder *b, const char *member, const char *value)
{
    json_builder_set_member_name(b, member);
    json_builder_add_string_value(b, value ? value : "");
}

static JsonNode *vm_record(const TvdVm *vm)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc(
        vm->since_us / G_USEC_PER_SEC);
    g_autofree char *since_s = since ? g_date_time_format_iso8601(since) : NULL;
    g_autofree char *last_s = NULL;

    /* Microseconds: the deadline runs from the exact moment. */
    if (vm->last_verified_us > 0) {
        last_s = g_strdup_printf("%" G_GINT64_FORMAT, vm->last_verified_us);
    }
    json_builder_begin_object(b);
    add_str(b, "name", vm->name);
    add_str(b, "vm_id", vm->vm_id);
    add_str(b, "domain", vm->domain);
    add_str(b, "role", vm->role);
    add_str(b, "state", tvd_state_name(vm->state));
    add_str(b, "cause", tvd_cause_name(vm->cause));
    add_str(b, "detail", vm->detail);
    add_str(b, "since", since_s);
    add_str(b, "last_verified", last_s);
    json_builder_set_member_name(b, "adopted");
    json_builder_add_boolean_value(b, vm->adopted);
    json_builder_set_member_name(b, "qemu_pid");
    json_builder_add_int_value(b, vm->qemu_pid);
    if (vm->have_instance) {
        g_autofree char *hex = g_malloc(2 * sizeof(vm->device_instance) + 1);

        for (guint i = 0; i < sizeof(vm->device_instance); i++) {
            g_snprintf(hex + 2 * i, 3, "%02x", vm->device_instance[i]);
        }
        add_str(b, "device_instance", hex);
    }
    if (!vm->adopted) {
        add_str(b, "kernel", vm->kernel);
        add_str(b, "initrd", vm->initrd);
        add_str(b, "append", vm->append);
        json_builder_set_member_name(b, "memory");
        json_builder_add_int_value(b, vm->memory_mib);
    }
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

/*
 * Written before a new state is pushed to the device: a supervisor killed
 * at any point restarts with every state.
 */
gboolean tvd_vm_save(TvdVm *vm, GError **error)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = vm_record(vm);
    g_autofree char *key = g_strconcat(VM_KEY_PREFIX, vm->name, NULL);
    g_autofree char *text = NULL;

    if (!vm->sup->store) {
        return TRUE;
    }
    if (vm->sup->fail_store_writes) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_FAILED,
                    "store writes fail (injected)");
        return FALSE;
    }
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    /* Every string in the record is ASCII or escaped: valid JSON. */
    return tvd_store_put_string(vm->sup->store, key, text, NULL, error);
}

/* Text the supervisor escaped before storing it (TvdVerdict's detail). */
static gboolean is_escaped_text(const char *s)
{
    gsize n = 0;

    for (; s && s[n]; n++) {
        if ((guchar)s[n] < 0x20 || (guchar)s[n] >= 0x7f) {
            return FALSE;
        }
    }
    return n < TVD_CAUSE_DETAIL_MAX;
}

static gboolean bad_record(const TvdStoreEntry *entry, GError **error,
                           const char *why)
{
    g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_FAILED,
                "the VM record %s in store.db cannot be read (%s): the "
                "supervisor does not start without it (repair or delete the "
                "record; deleting forgets the VM's state)",
                entry->key, why);
    return FALSE;
}

/*
 * A record that cannot be read stops the start: dropping it would bring a
 * revoked or quarantined VM back as a fresh PENDING one.
 */
static gboolean vm_restore(TvdSupervisor *sup, TvdStoreEntry *entry,
                           GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonObject *o;
    const char *name;
    const char *cause_name;
    const char *detail;
    const char *last;
    const char *instance;
    TvdVm *vm;
    GDateTime *since;
    guint32 state;
    TvdCause cause = TVD_CAUSE_NONE;
    gsize len;
    const char *data = g_bytes_get_data(entry->value, &len);

    if (!json_parser_load_from_data(parser, data, len, &err) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        return bad_record(entry, error, err ? err->message : "not an object");
    }
    o = json_node_get_object(json_parser_get_root(parser));
    name = tvd_json_string_member(o, "name");
    if (!tvd_api_name_is_valid(name) ||
        g_strcmp0(entry->key + strlen(VM_KEY_PREFIX), name)) {
        return bad_record(entry, error, "no valid name, or not its key's");
    }
    if (!tvd_state_from_name(tvd_json_string_member(o, "state"), &state)) {
        return bad_record(entry, error, "no valid state");
    }
    cause_name = tvd_json_string_member(o, "cause");
    if (cause_name && !tvd_cause_from_name(cause_name, &cause)) {
        return bad_record(entry, error, "an unknown cause");
    }
    /* Records written before causes: their reason becomes the detail. */
    detail = tvd_json_string_member(o, cause_name ? "detail" : "reason");
    if (!is_escaped_text(detail)) {
        return bad_record(entry, error, "a detail that is not escaped text");
    }
    last = tvd_json_string_member(o, "last_verified");
    vm = tvd_vm_new(sup, name);
    vm->dir = g_build_filename(sup->cfg->state_dir, "vms", name, NULL);
    vm->vm_id = g_strdup(tvd_json_string_member(o, "vm_id"));
    vm->domain = g_strdup(tvd_json_string_member(o, "domain"));
    vm->role = g_strdup(tvd_json_string_member(o, "role"));
    {
        TvdVerdict v = { .state = state, .cause = cause };

        g_strlcpy(v.detail, detail ? detail : "", sizeof(v.detail));
        tvd_vm_set_verdict(vm, &v);
    }
    vm->last_verified_us = last ? g_ascii_strtoll(last, NULL, 10) : 0;
    since = g_date_time_new_from_iso8601(tvd_json_string_member(o, "since") ?
                                         tvd_json_string_member(o, "since") : "", NULL);
    vm->since_us = since ? g_date_time_to_unix(since) * G_USEC_PER_SEC
                         : g_get_real_time();
    g_clear_pointer(&since, g_date_time_unref);
    vm->adopted = json_object_get_boolean_member_with_default(o, "adopted",
                                                              FALSE);
    vm->kernel = g_strdup(tvd_json_string_member(o, "kernel"));
    vm->initrd = g_strdup(tvd_json_string_member(o, "initrd"));
    vm->append = g_strdup(tvd_json_string_member(o, "append"));
    vm->memory_mib = json_object_get_int_member_with_default(o, "memory", 0);
    vm->qemu_pid = json_object_get_int_member_with_default(o, "qemu_pid", 0);
    instance = tvd_json_string_member(o, "device_instance");
    if (instance) {
        if (strlen(instance) != 2 * sizeof(vm->device_instance)) {
            return bad_record(entry, error, "a device instance that is not "
                              "32 hex digits");
        }
        for (guint i = 0; i < sizeof(vm->device_instance); i++) {
            int hi = g_ascii_xdigit_value(instance[2 * i]);
            int lo = g_ascii_xdigit_value(instance[2 * i + 1]);

            if (hi < 0 || lo < 0) {
                return bad_record(entry, error, "a device instance that is "
                                  "not 32 hex digits");
            }
            vm->device_instance[i] = (guint8)(hi << 4 | lo);
        }
        vm->have_instance = TRUE;
    }
    if (!vm->adopted) {
        vm->sock_path = g_strdup_printf("%s/vm-%s.sock", sup->cfg->run_dir,
                                        vm->name);
        if (!tvd_vm_listen(vm, &err)) {
            g_warning("%s: cannot listen again: %s", vm->name, err->message);
        }
    }
    vm->running = vm->qemu_pid > 0 && tvd_vm_watch_pid(vm);
    if (!vm->running) {
        vm->qemu_pid = 0;
    }
    /* A member's deadline keeps running from its last verified evidence. */
    tvd_vm_deadline_update(vm);
    g_message("%s: restored %s (%s)%s", vm->name, tvd_state_name(vm->state),
              vm->reason, vm->running ? ", QEMU still running" : "");
    return TRUE;
}

gboolean tvd_vm_restore_all(TvdSupervisor *sup, GError **error)
{
    g_autoptr(GPtrArray) entries = tvd_store_list(sup->store, VM_KEY_PREFIX,
                                                  NULL, error);

    if (!entries) {
        return FALSE;
    }
    for (guint i = 0; i < entries->len; i++) {
        if (!vm_restore(sup, entries->pdata[i], error)) {
            return FALSE;
        }
    }
    return TRUE;
}
