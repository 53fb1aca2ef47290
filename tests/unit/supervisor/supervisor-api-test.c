/*
 * The REST API and tvdctl against the real supervisor core (the API's own
 * tests in tests/unit/api use an in-memory stand-in): the server of
 * host/supervisor/api with the core's backend (api-backend.c) on a unix
 * socket, driven by the built tvdctl, while a fake device and the agent's
 * TPM library play an adopted VM (core-fixture.h). No QEMU.
 *
 *  - vm list/show: an admitted VM with its link up; revoke and readmit go
 *    to the core and the device's link follows; an unknown VM is "not
 *    found";
 *  - domain list/show: the signed domain; a policy with a signature no
 *    trusted key made is refused as forbidden;
 *  - audit: the core's records, verified; a record changed in the database
 *    fails `tvdctl audit --verify` naming its seq.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <signal.h>
#include <string.h>

#include "api-backend.h"
#include "core-fixture.h"
#include "test-backend.h"

/* Exit codes of docs/tvdctl.md. */
enum {
    EXIT_OK = 0,
    EXIT_NOT_FOUND = 2,
    EXIT_FORBIDDEN = 7,
    EXIT_VERIFY = 8,
};

typedef struct {
    CoreFixture core;
    char *socket_path;
    TvdApiServer *server;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdApiServerConfig config = { 0 };

    core_fixture_setup(&f->core, data);
    if (!f->core.sup) {
        return;
    }
    f->socket_path = g_build_filename(f->core.dir, "api", "api.sock", NULL);
    config.socket_path = f->socket_path;
    f->server = tvd_api_server_new(&config, &tvd_supervisor_api_backend,
                                   f->core.sup, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->server);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->server, tvd_api_server_free);
    g_clear_pointer(&f->socket_path, g_free);
    core_fixture_teardown(&f->core, data);
}

#define CTL(f, r, ...) run_tvdctl((f)->socket_path, (r), __VA_ARGS__, NULL)

/* `tvdctl vm show VM --json`: the VM's JSON object (unref it). */
static JsonNode *vm_show(Fixture *f)
{
    CtlResult r;
    JsonNode *doc;

    g_assert_true(CTL(f, &r, "vm", "show", CORE_VM, "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    ctl_result_clear(&r);
    return doc;
}

static gboolean have_tvdctl(Fixture *f)
{
    if (!f->core.sup) {
        return FALSE;
    }
    if (!g_getenv("TVDCTL")) {
        g_test_skip("TVDCTL does not name the built tvdctl (meson sets it)");
        return FALSE;
    }
    return TRUE;
}

static void test_vms(Fixture *f, gconstpointer data)
{
    CtlResult r;
    JsonNode *doc;
    JsonArray *vms;

    if (!have_tvdctl(f)) {
        return;
    }
    core_admit_good(&f->core);
    g_assert_true(CTL(f, &r, "vm", "list", "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    vms = json_object_get_array_member(json_node_get_object(doc), "vms");
    g_assert_cmpuint(json_array_get_length(vms), ==, 1);
    g_assert_cmpstr(json_object_get_string_member(
                        json_array_get_object_element(vms, 0), "name"), ==,
                    CORE_VM);
    json_node_unref(doc);
    ctl_result_clear(&r);

    doc = vm_show(f);
    g_assert_cmpstr(jstr(doc, "state"), ==, "ADMITTED");
    g_assert_cmpstr(jstr(doc, "domain"), ==, CORE_DOMAIN);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(doc),
                                                 "link_up"));
    json_node_unref(doc);

    /* Revoked through the API: the core and the device follow. */
    g_assert_true(CTL(f, &r, "vm", "revoke", CORE_VM, "--reason", "api test"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
    g_assert_cmpint(tvd_vm_state(core_vm(&f->core)), ==, TVD_STATE_REVOKED);
    g_assert_true(harness_wait(core_link_down, &f->core, CORE_WAIT_MS));
    doc = vm_show(f);
    g_assert_cmpstr(jstr(doc, "state"), ==, "REVOKED");
    g_assert_nonnull(strstr(jstr(doc, "reason"), "api test"));
    g_assert_false(json_object_get_boolean_member(json_node_get_object(doc),
                                                  "link_up"));
    json_node_unref(doc);

    /* Readmitted through the API: attested again, link up again. */
    g_assert_true(CTL(f, &r, "vm", "readmit", CORE_VM));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
    core_admit_good(&f->core);
    doc = vm_show(f);
    g_assert_cmpstr(jstr(doc, "state"), ==, "ADMITTED");
    json_node_unref(doc);

    g_assert_true(CTL(f, &r, "vm", "show", "no-such-vm"));
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);
}

static void test_domains(Fixture *f, gconstpointer data)
{
    g_autofree char *policy = NULL;
    g_autofree char *sig = NULL;
    CtlResult r;
    JsonNode *doc;

    if (!have_tvdctl(f)) {
        return;
    }
    g_assert_true(CTL(f, &r, "domain", "show", CORE_DOMAIN, "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "name"), ==, CORE_DOMAIN);
    json_node_unref(doc);
    ctl_result_clear(&r);

    g_assert_true(CTL(f, &r, "domain", "show", "no-such-domain"));
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);

    /* A well-formed policy whose signature no trusted key made. */
    policy = g_build_filename(f->core.dir, "red.json", NULL);
    sig = g_build_filename(f->core.dir, "red.json.sig", NULL);
    g_assert_true(g_file_set_contents(policy,
        "{\"tvd_policy\": 1, \"serial\": 1, "
        "\"domain\": {\"name\": \"red\", \"id\": 7}, "
        "\"membership\": {\"reference_digests\": [], \"unlisted\": \"deny\"}, "
        "\"network\": {\"subnet\": \"10.7.0.0/24\", \"roles\": [\"web\"]}}\n",
        -1, NULL));
    g_assert_true(g_file_set_contents(sig, "not a signature\n", -1, NULL));
    g_assert_true(CTL(f, &r, "domain", "create", "red", "--policy", policy,
                      "--signature", sig));
    g_test_message("domain create with a forged signature: exit %d: %s",
                   r.exit_code, r.err);
    g_assert_cmpint(r.exit_code, ==, EXIT_FORBIDDEN);
    ctl_result_clear(&r);
    g_assert_true(CTL(f, &r, "domain", "show", "red"));
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);
}

static void test_audit(Fixture *f, gconstpointer data)
{
    CtlResult r;
    JsonNode *doc;
    JsonArray *entries;
    gboolean admitted = FALSE;
    gint64 seq;

    if (!have_tvdctl(f)) {
        return;
    }
    core_admit_good(&f->core);
    g_assert_true(CTL(f, &r, "audit", "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    entries = json_object_get_array_member(json_node_get_object(doc),
                                           "entries");
    for (guint i = 0; i < json_array_get_length(entries); i++) {
        JsonObject *e = json_array_get_object_element(entries, i);

        if (g_strcmp0(json_object_get_string_member(e, "action"),
                      "admitted") == 0 &&
            strstr(json_object_get_string_member(e, "subject"), CORE_VM)) {
            admitted = TRUE;
        }
    }
    g_assert_true(admitted);
    json_node_unref(doc);
    ctl_result_clear(&r);

    g_assert_true(CTL(f, &r, "audit", "--verify", "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(doc),
                                                 "ok"));
    json_node_unref(doc);
    ctl_result_clear(&r);

    seq = core_tamper_audit(&f->core, "admitted");
    g_assert_true(CTL(f, &r, "audit", "--verify", "--json"));
    g_assert_cmpint(r.exit_code, ==, EXIT_VERIFY);
    doc = ctl_json(&r);
    g_assert_false(json_object_get_boolean_member(json_node_get_object(doc),
                                                  "ok"));
    g_assert_cmpint(jint(doc, "first_bad"), ==, seq);
    json_node_unref(doc);
    ctl_result_clear(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
#define ADD(path, fn) \
    g_test_add("/supervisor/api/" path, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("vms", test_vms);
    ADD("domains", test_domains);
    ADD("audit", test_audit);
    return g_test_run();
}
