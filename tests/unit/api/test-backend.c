/*
 * The fast test layer of the API: in-memory backend and client helpers.
 * See test-backend.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api-test"

#include "test-backend.h"

#include <stdarg.h>
#include <string.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

/* ---- In-memory backend -------------------------------------------------- */

typedef struct {
    char *name, *domain, *role, *state, *reason, *kernel, *initrd, *append;
    guint64 memory;
    gint64 since;
} TestVm;

typedef struct {
    char *name;
    guint id;
    guint64 serial;
    gsize policy_len;
} TestDomain;

typedef struct {
    guint64 seq;
    char *action, *subject, *reason;
} TestAudit;

struct TestBackend {
    GHashTable *vms;        /* name -> TestVm */
    GHashTable *domains;    /* name -> TestDomain */
    GPtrArray *audit;       /* TestAudit */
    guint next_domain_id;
    gboolean audit_broken;
};

static void vm_free(gpointer p)
{
    TestVm *vm = p;

    g_free(vm->name);
    g_free(vm->domain);
    g_free(vm->role);
    g_free(vm->state);
    g_free(vm->reason);
    g_free(vm->kernel);
    g_free(vm->initrd);
    g_free(vm->append);
    g_free(vm);
}

static void domain_free(gpointer p)
{
    TestDomain *d = p;

    g_free(d->name);
    g_free(d);
}

static void audit_free(gpointer p)
{
    TestAudit *a = p;

    g_free(a->action);
    g_free(a->subject);
    g_free(a->reason);
    g_free(a);
}

TestBackend *test_backend_new(void)
{
    TestBackend *tb = g_new0(TestBackend, 1);

    tb->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, vm_free);
    tb->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                        domain_free);
    tb->audit = g_ptr_array_new_with_free_func(audit_free);
    tb->next_domain_id = 100;
    return tb;
}

void test_backend_free(TestBackend *tb)
{
    if (!tb) {
        return;
    }
    g_hash_table_unref(tb->vms);
    g_hash_table_unref(tb->domains);
    g_ptr_array_unref(tb->audit);
    g_free(tb);
}

void test_backend_break_audit(TestBackend *tb)
{
    tb->audit_broken = TRUE;
}

guint test_backend_n_vms(TestBackend *tb)
{
    return g_hash_table_size(tb->vms);
}

void test_backend_audit(TestBackend *tb, const char *action,
                        const char *subject, const char *reason)
{
    TestAudit *a = g_new0(TestAudit, 1);

    a->seq = tb->audit->len + 1;
    a->action = g_strdup(action);
    a->subject = g_strdup(subject);
    a->reason = g_strdup(reason);
    g_ptr_array_add(tb->audit, a);
}

static void set_str(JsonBuilder *b, const char *k, const char *v)
{
    json_builder_set_member_name(b, k);
    if (v) {
        json_builder_add_string_value(b, v);
    } else {
        json_builder_add_null_value(b);
    }
}

static void set_int(JsonBuilder *b, const char *k, gint64 v)
{
    json_builder_set_member_name(b, k);
    json_builder_add_int_value(b, v);
}

static void build_vm(JsonBuilder *b, const TestVm *vm)
{
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(vm->since);
    g_autofree char *since = g_date_time_format_iso8601(t);

    json_builder_begin_object(b);
    set_str(b, "name", vm->name);
    set_str(b, "domain", vm->domain);
    set_str(b, "role", vm->role);
    set_str(b, "state", vm->state);
    set_str(b, "reason", vm->reason);
    set_str(b, "since", since);
    /* As the supervisor's: whether QEMU runs (a stopped VM leaves the
     * stand-in at once). */
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, g_strcmp0(vm->state, "STOPPED") != 0);
    set_int(b, "memory", (gint64)vm->memory);
    set_str(b, "kernel", vm->kernel);
    set_str(b, "initrd", vm->initrd);
    set_str(b, "append", vm->append);
    json_builder_end_object(b);
}

static TestVm *lookup_vm(TestBackend *tb, const char *name, GError **error)
{
    TestVm *vm = g_hash_table_lookup(tb->vms, name);

    if (!vm) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "no VM named %s", name);
    }
    return vm;
}

static void transition(TestBackend *tb, TestVm *vm, const char *state,
                       const char *reason)
{
    g_free(vm->state);
    g_free(vm->reason);
    vm->state = g_strdup(state);
    vm->reason = g_strdup(reason);
    vm->since = 1795000000 + tb->audit->len;
    test_backend_audit(tb, state, vm->name, reason);
}

static gboolean tb_health(void *ctx, JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;

    json_builder_begin_object(out);
    set_str(out, "status", "ok");
    set_str(out, "api", TVD_API_VERSION);
    set_int(out, "vms", g_hash_table_size(tb->vms));
    json_builder_end_object(out);
    return TRUE;
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
    return strcmp(a, b);
}

static gboolean tb_vm_list(void *ctx, JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(tb->vms),
                                         cmp_str);

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "vms");
    json_builder_begin_array(out);
    for (GList *l = names; l; l = l->next) {
        build_vm(out, g_hash_table_lookup(tb->vms, l->data));
    }
    json_builder_end_array(out);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean tb_vm_show(void *ctx, const char *name, JsonBuilder *out,
                           GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm;

    if (strcmp(name, "boom") == 0) {
        /* Not an API error: the server must answer 500 "internal". */
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "the store is on fire");
        return FALSE;
    }
    vm = lookup_vm(tb, name, error);
    if (!vm) {
        return FALSE;
    }
    build_vm(out, vm);
    return TRUE;
}

static gboolean tb_vm_start(void *ctx, const TvdApiVmSpec *spec,
                            JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm;

    if (!g_hash_table_contains(tb->domains, spec->domain)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "domain: no domain named %s", spec->domain);
        return FALSE;
    }
    if (g_hash_table_contains(tb->vms, spec->name)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_CONFLICT,
                    "a VM named %s exists already", spec->name);
        return FALSE;
    }
    vm = g_new0(TestVm, 1);
    vm->name = g_strdup(spec->name);
    vm->domain = g_strdup(spec->domain);
    vm->role = g_strdup(spec->role);
    vm->kernel = g_strdup(spec->kernel);
    vm->initrd = g_strdup(spec->initrd);
    vm->append = g_strdup(spec->append);
    vm->memory = spec->memory_mib ? spec->memory_mib : 256;
    g_hash_table_insert(tb->vms, vm->name, vm);
    transition(tb, vm, "PENDING", "started, waiting for the agent");
    build_vm(out, vm);
    return TRUE;
}

static gboolean tb_vm_stop(void *ctx, const char *name, JsonBuilder *out,
                           GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm = lookup_vm(tb, name, error);

    if (!vm) {
        return FALSE;
    }
    transition(tb, vm, "STOPPED", "stopped by operator");
    build_vm(out, vm);
    g_hash_table_remove(tb->vms, name);
    return TRUE;
}

static gboolean tb_vm_revoke(void *ctx, const char *name, const char *reason,
                             JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm = lookup_vm(tb, name, error);

    if (!vm) {
        return FALSE;
    }
    if (strcmp(vm->state, "REVOKED") == 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_CONFLICT,
                    "%s is revoked already", name);
        return FALSE;
    }
    transition(tb, vm, "REVOKED", reason ? reason : "revoked by operator");
    build_vm(out, vm);
    return TRUE;
}

/* The stand-in accepts one certificate, TEST_GOOD_EK_CERT's bytes. */
static gboolean tb_vm_register_ek(void *ctx, const char *name, GBytes *cert,
                                  JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm = lookup_vm(tb, name, error);
    gsize len;
    const char *der = g_bytes_get_data(cert, &len);

    if (!vm) {
        return FALSE;
    }
    if (len != strlen(TEST_GOOD_EK_CERT) ||
        memcmp(der, TEST_GOOD_EK_CERT, len) != 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "the EK certificate of %s does not chain to the vTPM CA",
                    name);
        return FALSE;
    }
    build_vm(out, vm);
    return TRUE;
}

static gboolean tb_vm_readmit(void *ctx, const char *name, JsonBuilder *out,
                              GError **error)
{
    TestBackend *tb = ctx;
    TestVm *vm = lookup_vm(tb, name, error);

    if (!vm) {
        return FALSE;
    }
    if (strcmp(vm->state, "ADMITTED") == 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_CONFLICT,
                    "%s is admitted already", name);
        return FALSE;
    }
    transition(tb, vm, "PENDING", "readmit requested");
    build_vm(out, vm);
    return TRUE;
}

static void build_domain(TestBackend *tb, JsonBuilder *b, const TestDomain *d)
{
    GHashTableIter it;
    TestVm *vm;
    gint64 members = 0;

    g_hash_table_iter_init(&it, tb->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        members += strcmp(vm->domain, d->name) == 0;
    }
    json_builder_begin_object(b);
    set_str(b, "name", d->name);
    set_int(b, "id", d->id);
    set_int(b, "serial", (gint64)d->serial);
    set_int(b, "members", members);
    set_int(b, "policy_bytes", (gint64)d->policy_len);
    set_str(b, "updated", "2026-11-22T20:00:00Z");
    json_builder_end_object(b);
}

static gboolean check_signature(const TvdApiDomainSpec *spec, GError **error)
{
    gsize len;
    const char *sig = g_bytes_get_data(spec->signature, &len);

    if (len != strlen(TEST_GOOD_SIGNATURE) ||
        memcmp(sig, TEST_GOOD_SIGNATURE, len) != 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_FORBIDDEN,
                    "signature: not made by a trusted administrator key");
        return FALSE;
    }
    return TRUE;
}

static gboolean tb_domain_create(void *ctx, const TvdApiDomainSpec *spec,
                                 JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    TestDomain *d;

    if (!check_signature(spec, error)) {
        return FALSE;
    }
    if (g_hash_table_contains(tb->domains, spec->name)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_CONFLICT,
                    "a domain named %s exists already", spec->name);
        return FALSE;
    }
    d = g_new0(TestDomain, 1);
    d->name = g_strdup(spec->name);
    d->id = tb->next_domain_id++;
    d->serial = 1;
    d->policy_len = g_bytes_get_size(spec->policy);
    g_hash_table_insert(tb->domains, d->name, d);
    test_backend_audit(tb, "domain-create", d->name, NULL);
    build_domain(tb, out, d);
    return TRUE;
}

static gboolean tb_domain_list(void *ctx, JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    g_autoptr(GList) names = g_list_sort(g_hash_table_get_keys(tb->domains),
                                         cmp_str);

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "domains");
    json_builder_begin_array(out);
    for (GList *l = names; l; l = l->next) {
        build_domain(tb, out, g_hash_table_lookup(tb->domains, l->data));
    }
    json_builder_end_array(out);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean tb_domain_show(void *ctx, const char *name, JsonBuilder *out,
                               GError **error)
{
    TestBackend *tb = ctx;
    TestDomain *d = g_hash_table_lookup(tb->domains, name);

    if (!d) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "no domain named %s", name);
        return FALSE;
    }
    build_domain(tb, out, d);
    return TRUE;
}

static gboolean tb_domain_update(void *ctx, const char *name,
                                 const TvdApiDomainSpec *spec,
                                 JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    TestDomain *d = g_hash_table_lookup(tb->domains, name);

    if (!d) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "no domain named %s", name);
        return FALSE;
    }
    if (!check_signature(spec, error)) {
        return FALSE;
    }
    d->serial++;
    d->policy_len = g_bytes_get_size(spec->policy);
    test_backend_audit(tb, "domain-update", d->name, NULL);
    build_domain(tb, out, d);
    return TRUE;
}

static gboolean tb_audit_list(void *ctx, guint64 since, guint limit,
                              JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;
    guint64 next = since;

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "entries");
    json_builder_begin_array(out);
    for (guint i = 0; i < tb->audit->len && limit > 0; i++) {
        TestAudit *a = tb->audit->pdata[i];

        if (a->seq < since) {
            continue;
        }
        json_builder_begin_object(out);
        set_int(out, "seq", (gint64)a->seq);
        set_str(out, "time", "2026-11-22T20:00:00Z");
        set_str(out, "action", a->action);
        set_str(out, "subject", a->subject);
        set_str(out, "reason", a->reason);
        set_str(out, "hash", "00");
        json_builder_end_object(out);
        next = a->seq + 1;
        limit--;
    }
    json_builder_end_array(out);
    set_int(out, "next", (gint64)next);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean tb_audit_verify(void *ctx, JsonBuilder *out, GError **error)
{
    TestBackend *tb = ctx;

    json_builder_begin_object(out);
    json_builder_set_member_name(out, "ok");
    json_builder_add_boolean_value(out, !tb->audit_broken);
    set_int(out, "checked", tb->audit->len);
    json_builder_set_member_name(out, "first_bad");
    if (tb->audit_broken) {
        json_builder_add_int_value(out, 2);
    } else {
        json_builder_add_null_value(out);
    }
    set_str(out, "error", tb->audit_broken ? "hash chain broken" : NULL);
    json_builder_end_object(out);
    return TRUE;
}

static gboolean tb_metrics(void *ctx, GString *out, GError **error)
{
    TestBackend *tb = ctx;
    static const char *const states[] = { "PENDING", "ADMITTED",
                                          "QUARANTINED", "REVOKED", NULL };
    static const double bounds[] = { 0.01, 0.05, 0.1 };
    TvdPromHistogram h;
    const char *reason_labels[] = { "reason", "quote \"bad\"\\sig\n", NULL };

    tvd_prom_family(out, "tvd_members", "gauge", "VMs by membership state.");
    for (size_t i = 0; states[i]; i++) {
        GHashTableIter it;
        TestVm *vm;
        guint n = 0;
        const char *labels[] = { "state", states[i], NULL };

        g_hash_table_iter_init(&it, tb->vms);
        while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
            n += strcmp(vm->state, states[i]) == 0;
        }
        tvd_prom_sample(out, "tvd_members", labels, n);
    }
    tvd_prom_family(out, "tvd_attestation_failures_total", "counter",
                    "Failed attestations by reason.\nSecond line \\ here.");
    tvd_prom_sample(out, "tvd_attestation_failures_total", reason_labels, 3);
    tvd_prom_family(out, "tvd_admission_seconds", "histogram",
                    "Agent hello to ADMITTED.");
    tvd_prom_histogram_init(&h, bounds, G_N_ELEMENTS(bounds));
    tvd_prom_histogram_observe(&h, 0.02);
    tvd_prom_histogram_observe(&h, 0.2);
    tvd_prom_histogram_write(&h, out, "tvd_admission_seconds", NULL);
    return TRUE;
}

static const TvdApiBackend vtable = {
    .health = tb_health,
    .vm_list = tb_vm_list,
    .vm_show = tb_vm_show,
    .vm_start = tb_vm_start,
    .vm_stop = tb_vm_stop,
    .vm_revoke = tb_vm_revoke,
    .vm_readmit = tb_vm_readmit,
    .vm_register_ek = tb_vm_register_ek,
    .domain_create = tb_domain_create,
    .domain_list = tb_domain_list,
    .domain_show = tb_domain_show,
    .domain_update = tb_domain_update,
    .audit_list = tb_audit_list,
    .audit_verify = tb_audit_verify,
    .metrics = tb_metrics,
};

static const TvdApiBackend vtable_empty = { 0 };

const TvdApiBackend *test_backend_vtable(void)
{
    return &vtable;
}

const TvdApiBackend *test_backend_vtable_empty(void)
{
    return &vtable_empty;
}

/* ---- Fixture ----------------------------------------------------------- */

void api_fixture_setup(ApiFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    const TvdApiBackend *vt = data ? data : test_backend_vtable();
    TvdApiServerConfig config = { 0 };

    f->dir = g_dir_make_tmp("tvd-api-XXXXXX", &error);
    g_assert_no_error(error);
    /* A parent that does not exist yet: the server makes it 0750. */
    f->socket_path = g_build_filename(f->dir, "run", "api.sock", NULL);
    f->backend = test_backend_new();
    config.socket_path = f->socket_path;
    f->server = tvd_api_server_new(&config, vt, f->backend, &error);
    g_assert_no_error(error);
    g_assert_nonnull(f->server);
}

static void rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *e;

    while (d && (e = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, e, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_rf(p);
        } else {
            g_unlink(p);
        }
    }
    if (d) {
        g_dir_close(d);
    }
    g_rmdir(path);
}

void api_fixture_teardown(ApiFixture *f, gconstpointer data)
{
    tvd_api_server_free(f->server);
    test_backend_free(f->backend);
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->socket_path);
}

/* ---- Client side ------------------------------------------------------- */

typedef struct {
    GThreadFunc fn;
    gpointer data;
    gint done;
} Worker;

static gpointer worker_main(gpointer p)
{
    Worker *w = p;

    w->fn(w->data);
    g_atomic_int_set(&w->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

void run_client(GThreadFunc fn, gpointer data)
{
    Worker w = { fn, data, 0 };
    GThread *t = g_thread_new("api-client", worker_main, &w);

    while (!g_atomic_int_get(&w.done)) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_thread_join(t);
    /* Let the server finish what the request left (closing, logging). */
    while (g_main_context_iteration(NULL, FALSE)) {
    }
}

void http_reply_clear(HttpReply *r)
{
    g_clear_pointer(&r->body, g_bytes_unref);
    g_clear_pointer(&r->content_type, g_free);
    g_clear_pointer(&r->allow, g_free);
    g_clear_error(&r->error);
}

typedef struct {
    const char *socket_path, *method, *path, *ctype;
    const void *body;
    gsize len;
    HttpReply *reply;
} HttpJob;

static gpointer http_job(gpointer p)
{
    HttpJob *j = p;
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(j->socket_path);
    g_autoptr(SoupSession) session = NULL;
    g_autoptr(SoupMessage) msg = NULL;
    g_autofree char *url = g_strconcat("http://localhost", j->path, NULL);
    SoupMessageHeaders *h;
    const char *v;

    g_main_context_push_thread_default(ctx);
    session = g_object_new(SOUP_TYPE_SESSION, "remote-connectable", addr,
                           "timeout", 30, NULL);
    soup_session_set_proxy_resolver(session, NULL);
    msg = soup_message_new(j->method, url);
    g_assert_nonnull(msg);
    if (j->body) {
        g_autoptr(GBytes) b = g_bytes_new(j->body, j->len);

        soup_message_set_request_body_from_bytes(
            msg, j->ctype ? j->ctype : "application/json", b);
    }
    j->reply->body = soup_session_send_and_read(session, msg, NULL,
                                                &j->reply->error);
    if (j->reply->body) {
        h = soup_message_get_response_headers(msg);
        j->reply->status = soup_message_get_status(msg);
        v = soup_message_headers_get_one(h, "Content-Type");
        j->reply->content_type = g_strdup(v);
        j->reply->allow = g_strdup(soup_message_headers_get_one(h, "Allow"));
    }
    g_clear_object(&msg);
    g_clear_object(&session);
    g_main_context_pop_thread_default(ctx);
    return NULL;
}

void http_request(const char *socket_path, const char *method,
                  const char *path, const char *ctype, const void *body,
                  gsize len, HttpReply *reply)
{
    HttpJob j = { socket_path, method, path, ctype, body, len, reply };

    memset(reply, 0, sizeof(*reply));
    run_client(http_job, &j);
}

JsonNode *http_reply_json(const HttpReply *r)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) error = NULL;
    gsize len;
    const char *data;

    g_assert_no_error(r->error);
    g_assert_nonnull(r->body);
    g_assert_cmpstr(r->content_type, ==, "application/json");
    data = g_bytes_get_data(r->body, &len);
    json_parser_load_from_data(p, data ? data : "", (gssize)len, &error);
    g_assert_no_error(error);
    g_assert_true(JSON_NODE_HOLDS_OBJECT(json_parser_get_root(p)));
    return json_node_copy(json_parser_get_root(p));
}

const char *jstr(JsonNode *obj, const char *member)
{
    JsonNode *n;

    g_assert_true(JSON_NODE_HOLDS_OBJECT(obj));
    n = json_object_get_member(json_node_get_object(obj), member);
    g_assert_nonnull(n);
    g_assert_cmpint(json_node_get_value_type(n), ==, G_TYPE_STRING);
    return json_node_get_string(n);
}

gint64 jint(JsonNode *obj, const char *member)
{
    JsonNode *n;

    g_assert_true(JSON_NODE_HOLDS_OBJECT(obj));
    n = json_object_get_member(json_node_get_object(obj), member);
    g_assert_nonnull(n);
    g_assert_cmpint(json_node_get_value_type(n), ==, G_TYPE_INT64);
    return json_node_get_int(n);
}

void assert_api_error(const HttpReply *r, guint status, const char *code,
                      const char *prefix)
{
    g_autoptr(JsonNode) doc = http_reply_json(r);
    JsonObject *o = json_node_get_object(doc);
    JsonNode *e = json_object_get_member(o, "error");
    g_autoptr(JsonNode) copy = NULL;
    const char *message;

    g_assert_cmpuint(r->status, ==, status);
    g_assert_nonnull(e);
    g_assert_cmpuint(json_object_get_size(o), ==, 1);
    copy = json_node_copy(e);
    g_assert_cmpstr(jstr(copy, "code"), ==, code);
    message = jstr(copy, "message");
    if (prefix && !g_str_has_prefix(message, prefix)) {
        g_error("error message \"%s\" does not start with \"%s\"", message,
                prefix);
    }
}

typedef struct {
    const char *socket_path;
    const char *request;
    gsize len;
    guint timeout_ms;
    GString *answer;
} RawJob;

static gpointer raw_job(gpointer p)
{
    RawJob *j = p;
    g_autoptr(GError) error = NULL;
    g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_UNIX,
                                           G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_DEFAULT, &error);
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(j->socket_path);
    char buf[4096];

    g_assert_no_error(error);
    g_socket_connect(sock, addr, NULL, &error);
    g_assert_no_error(error);
    g_socket_set_timeout(sock, (j->timeout_ms + 999) / 1000);
    /* The server may answer and close before it read everything: a write
     * error after the headers is fine, the answer is what counts. */
    g_socket_send(sock, j->request, j->len, NULL, NULL);
    for (;;) {
        gssize n = g_socket_receive(sock, buf, sizeof(buf), NULL, NULL);

        if (n <= 0) {
            break;
        }
        g_string_append_len(j->answer, buf, n);
    }
    return NULL;
}

char *raw_request(const char *socket_path, const char *request, gsize len,
                  guint timeout_ms)
{
    RawJob j = { socket_path, request, len, timeout_ms, g_string_new(NULL) };

    run_client(raw_job, &j);
    return g_string_free(j.answer, FALSE);
}

/* ---- tvdctl ------------------------------------------------------------ */

void ctl_result_clear(CtlResult *r)
{
    g_clear_pointer(&r->out, g_free);
    g_clear_pointer(&r->err, g_free);
}

typedef struct {
    GPtrArray *argv;
    CtlResult *r;
    const char *env_socket;
} CtlJob;

static gpointer ctl_job(gpointer p)
{
    CtlJob *j = p;
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) l =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                  G_SUBPROCESS_FLAGS_STDERR_PIPE);
    g_autoptr(GSubprocess) proc = NULL;

    /* The test's own environment must not leak a socket in. */
    g_subprocess_launcher_unsetenv(l, "TVD_SOCKET");
    if (j->env_socket) {
        g_subprocess_launcher_setenv(l, "TVD_SOCKET", j->env_socket, TRUE);
    }
    proc = g_subprocess_launcher_spawnv(l,
                                        (const char *const *)j->argv->pdata,
                                        &error);
    g_assert_no_error(error);
    g_subprocess_communicate_utf8(proc, NULL, NULL, &j->r->out, &j->r->err,
                                  &error);
    g_assert_no_error(error);
    /* Killed by a signal (a sanitizer's abort): 128 + signal, like a shell;
     * the caller's exit-code assertion then fails with stderr logged. */
    j->r->exit_code = g_subprocess_get_if_exited(proc)
                          ? g_subprocess_get_exit_status(proc)
                          : 128 + g_subprocess_get_term_sig(proc);
    return NULL;
}

static gboolean run_tvdctl_va(const char *socket_path, const char *env_socket,
                              CtlResult *r, va_list ap)
{
    const char *exe = g_getenv("TVDCTL");
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    CtlJob j = { argv, r, env_socket };
    const char *a;

    memset(r, 0, sizeof(*r));
    if (!exe || !g_file_test(exe, G_FILE_TEST_IS_EXECUTABLE)) {
        g_test_skip("$TVDCTL does not name the built tvdctl");
        return FALSE;
    }
    g_ptr_array_add(argv, (gpointer)exe);
    if (socket_path) {
        g_ptr_array_add(argv, (gpointer)"--socket");
        g_ptr_array_add(argv, (gpointer)socket_path);
    }
    while ((a = va_arg(ap, const char *))) {
        g_ptr_array_add(argv, (gpointer)a);
    }
    g_ptr_array_add(argv, NULL);
    run_client(ctl_job, &j);
    g_test_message("tvdctl -> %d\nstdout: %s\nstderr: %s", r->exit_code,
                   r->out, r->err);
    return TRUE;
}

gboolean run_tvdctl(const char *socket_path, CtlResult *r, ...)
{
    va_list ap;
    gboolean ok;

    va_start(ap, r);
    ok = run_tvdctl_va(socket_path, NULL, r, ap);
    va_end(ap);
    return ok;
}

gboolean run_tvdctl_env(const char *env_socket, CtlResult *r, ...)
{
    va_list ap;
    gboolean ok;

    va_start(ap, r);
    ok = run_tvdctl_va(NULL, env_socket, r, ap);
    va_end(ap);
    return ok;
}

JsonNode *ctl_json(const CtlResult *r)
{
    g_autoptr(JsonParser) p = json_parser_new();
    g_autoptr(GError) error = NULL;

    json_parser_load_from_data(p, r->out, -1, &error);
    g_assert_no_error(error);
    g_assert_nonnull(json_parser_get_root(p));
    return json_node_copy(json_parser_get_root(p));
}
