/*
 * The built tvdctl binary ($TVDCTL) against the API server running
 * in-process on a temporary unix socket with the in-memory backend (the
 * fast test layer): every verb, its --json output parsed back, its human
 * output, and the documented exit codes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api-test"

#include "test-backend.h"

#include <string.h>

#include <glib/gstdio.h>

#ifdef HAVE_POLICY
#include "policy.h"
#endif

/* Exit codes of docs/tvdctl.md (repeated here on purpose: a change there
 * must be a deliberate change here). */
enum {
    EXIT_OK = 0,
    EXIT_USAGE = 1,
    EXIT_NOT_FOUND = 2,
    EXIT_INVALID = 3,
    EXIT_CONFLICT = 4,
    EXIT_CONNECT = 5,
    EXIT_SERVER = 6,
    EXIT_FORBIDDEN = 7,
    EXIT_VERIFY = 8,
    EXIT_LOCAL = 9,
    EXIT_UNSUPPORTED = 10,
};

#define CTL(f, r, ...) run_tvdctl((f)->socket_path, (r), __VA_ARGS__, NULL)

/* A policy that parses (tvdctl checks it before sending or signing). */
#define POLICY_OF(name)                                                     \
    "{\"tvd_policy\": 1, \"serial\": 1,\n"                                 \
    " \"domain\": {\"name\": \"" name "\", \"id\": 7},\n"                   \
    " \"membership\": {\"reference_digests\": [], \"unlisted\": \"deny\"},\n"  \
    " \"network\": {\"subnet\": \"10.7.0.0/24\", \"roles\": [\"web\"]}}\n"
#define BLUE_POLICY POLICY_OF("blue")

/* Writes policy and signature files into the fixture's directory. */
static void write_policy(ApiFixture *f, const char *sig, char **policy_path,
                         char **sig_path)
{
    *policy_path = g_build_filename(f->dir, "blue.json", NULL);
    *sig_path = g_build_filename(f->dir, "blue.json.sig", NULL);
    g_assert_true(g_file_set_contents(*policy_path, BLUE_POLICY, -1, NULL));
    g_assert_true(g_file_set_contents(*sig_path, sig, -1, NULL));
}

static gboolean create_blue(ApiFixture *f)
{
    g_autofree char *p = NULL, *s = NULL;
    CtlResult r;

    write_policy(f, TEST_GOOD_SIGNATURE, &p, &s);
    if (!CTL(f, &r, "domain", "create", "blue", "--policy", p, "--signature",
             s)) {
        return FALSE;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
    return TRUE;
}

static void test_help(ApiFixture *f, gconstpointer data)
{
    CtlResult r;

    if (!run_tvdctl(NULL, &r, "--help", NULL)) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    /* Usage is generated from the table: every verb is listed. */
    for (const char *const *v = (const char *const[]){
             "vm start", "vm stop", "vm list", "vm show", "vm revoke",
             "vm readmit", "vm register-ek", "domain create", "domain update", "domain list",
             "domain show", "domain sign", "domain keygen", "audit",
             "metrics", "health", "Exit codes", NULL };
         *v; v++) {
        g_assert_nonnull(strstr(r.out, *v));
    }
    ctl_result_clear(&r);

    run_tvdctl(NULL, &r, NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "frobnicate", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    g_assert_nonnull(strstr(r.err, "unknown command"));
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "vm", "frobnicate", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "vm", "show", "--bogus", "x", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    /* A name meant as "-web3" reads as an option: the error says so; after
     * "--" it is an argument, and refused as a name. */
    run_tvdctl(NULL, &r, "vm", "show", "-web3", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    g_assert_nonnull(strstr(r.err, "Unknown option -web3"));
    g_assert_nonnull(strstr(r.err, "names never start with '-'"));
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "vm", "show", "--", "-web3", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    g_assert_nonnull(strstr(r.err, "'-web3' is not a valid VM name"));
    ctl_result_clear(&r);
}

static void test_health(ApiFixture *f, gconstpointer data)
{
    g_autoptr(JsonNode) doc = NULL;
    CtlResult r;

    if (!CTL(f, &r, "health", "--json")) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "status"), ==, "ok");
    ctl_result_clear(&r);

    CTL(f, &r, "health");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "status: ok"));
    ctl_result_clear(&r);

    /* $TVD_SOCKET is not consulted when --socket is given; without a
     * server: connection failed, with an error document under --json. */
    run_tvdctl("/nonexistent/tvd.sock", &r, "health", "--json", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_CONNECT);
    {
        g_autoptr(JsonNode) err = ctl_json(&r);
        JsonNode *e = json_object_get_member(json_node_get_object(err),
                                             "error");

        g_assert_cmpstr(jstr(e, "code"), ==, "connection_failed");
    }
    ctl_result_clear(&r);

    /* $TVD_SOCKET when there is no --socket; --socket wins over it. */
    run_tvdctl_env(f->socket_path, &r, "health", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
    run_tvdctl_env(f->socket_path, &r, "--socket", "/nonexistent/tvd.sock",
                   "health", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_CONNECT);
    g_assert_nonnull(strstr(r.err, "/nonexistent/tvd.sock"));
    /* The error says where the path came from and asks the likely cause. */
    g_assert_nonnull(strstr(r.err, "--socket"));
    g_assert_nonnull(strstr(r.err, "$TVD_SOCKET"));
    g_assert_nonnull(strstr(r.err, "/run/tvd/supervisor.sock"));
    g_assert_nonnull(strstr(r.err, "is tvd-supervisor running?"));
    ctl_result_clear(&r);

    /* --socket after the verb works too. */
    run_tvdctl(NULL, &r, "health", "--socket", f->socket_path, NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
}

static void test_domains(ApiFixture *f, gconstpointer data)
{
    g_autofree char *p = NULL, *s = NULL, *forged = NULL, *red = NULL;
    JsonNode *doc;
    CtlResult r;

    write_policy(f, TEST_GOOD_SIGNATURE, &p, &s);
    if (!CTL(f, &r, "domain", "create", "blue", "--policy", p, "--signature",
             s, "--json")) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "name"), ==, "blue");
    g_assert_cmpint(jint(doc, "serial"), ==, 1);
    g_assert_cmpint(jint(doc, "policy_bytes"), ==, strlen(BLUE_POLICY));
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "create", "blue", "--policy", p, "--signature", s);
    g_assert_cmpint(r.exit_code, ==, EXIT_CONFLICT);
    g_assert_nonnull(strstr(r.err, "exists already (conflict, HTTP 409)"));
    ctl_result_clear(&r);

    forged = g_build_filename(f->dir, "forged.sig", NULL);
    red = g_build_filename(f->dir, "red.json", NULL);
    g_assert_true(g_file_set_contents(forged, "forged", -1, NULL));
    g_assert_true(g_file_set_contents(red, POLICY_OF("red"), -1, NULL));
    CTL(f, &r, "domain", "create", "red", "--policy", red, "--signature",
        forged, "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_FORBIDDEN);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(json_object_get_member(json_node_get_object(doc),
                                                "error"), "code"),
                    ==, "forbidden");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "update", "blue", "--policy", p, "--signature", s,
        "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpint(jint(doc, "serial"), ==, 2);
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "list", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                         json_node_get_object(doc), "domains")), ==, 1);
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "list");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_true(g_str_has_prefix(r.out, "NAME"));
    g_assert_nonnull(strstr(r.out, "\nblue "));
    g_assert_nonnull(strstr(r.out, " 100 "));
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "show", "blue");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "serial:"));
    ctl_result_clear(&r);

    CTL(f, &r, "domain", "show", "nope", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);

    /* Local problems: a missing file, missing options. */
    CTL(f, &r, "domain", "create", "x", "--policy", "/nonexistent",
        "--signature", s);
    g_assert_cmpint(r.exit_code, ==, EXIT_LOCAL);
    ctl_result_clear(&r);
    CTL(f, &r, "domain", "create", "x", "--policy", p);
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    CTL(f, &r, "domain", "show", "bad/name");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
}

static void test_vms(ApiFixture *f, gconstpointer data)
{
    JsonNode *doc;
    CtlResult r;

    if (!create_blue(f)) {
        return;
    }
    CTL(f, &r, "vm", "start", "web1", "--domain", "blue", "--kernel",
        "/boot/vmlinuz", "--initrd", "initrd.img", "--append",
        "console=ttyS0 quiet", "--memory", "1G", "--role", "web", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "PENDING");
    g_assert_cmpint(jint(doc, "memory"), ==, 1024);
    g_assert_cmpstr(jstr(doc, "append"), ==, "console=ttyS0 quiet");
    /* A relative path is made absolute for the supervisor. */
    g_assert_true(g_path_is_absolute(jstr(doc, "initrd")));
    g_assert_true(g_str_has_suffix(jstr(doc, "initrd"), "/initrd.img"));
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "start", "db1", "--domain", "blue", "--kernel", "/k",
        "--initrd", "/i");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "state:"));
    g_assert_nonnull(strstr(r.out, "PENDING"));
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "start", "web1", "--domain", "blue", "--kernel", "/k",
        "--initrd", "/i");
    g_assert_cmpint(r.exit_code, ==, EXIT_CONFLICT);
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "start", "x", "--domain", "nope", "--kernel", "/k",
        "--initrd", "/i");
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);
    /* Refused by the server's checks (memory below 16 MiB). */
    CTL(f, &r, "vm", "start", "x", "--domain", "blue", "--kernel", "/k",
        "--initrd", "/i", "--memory", "8", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    doc = ctl_json(&r);
    g_assert_true(g_str_has_prefix(
        jstr(json_object_get_member(json_node_get_object(doc), "error"),
             "message"), "memory:"));
    json_node_unref(doc);
    ctl_result_clear(&r);
    /* Refused by tvdctl itself. */
    CTL(f, &r, "vm", "start", "x", "--domain", "blue", "--kernel", "/k",
        "--initrd", "/i", "--memory", "12X");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "start", "x", "--domain", "blue");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "list", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                         json_node_get_object(doc), "vms")), ==, 2);
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "list");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_true(g_str_has_prefix(r.out, "NAME"));
    g_assert_nonnull(strstr(r.out, "STATE"));
    /* Whether QEMU runs, next to the membership state. */
    g_assert_true(g_regex_match_simple(" STATE +RUNNING +", r.out, 0, 0));
    g_assert_true(g_regex_match_simple("\\nweb1 .* PENDING +yes ", r.out, 0, 0));
    g_assert_nonnull(strstr(r.out, "\ndb1 "));
    g_assert_nonnull(strstr(r.out, "\nweb1 "));
    ctl_result_clear(&r);

    /* "--" ends the options; the name after it is used. */
    CTL(f, &r, "vm", "show", "--", "web1");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "web1"));
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "show", "web1", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "role"), ==, "web");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "revoke", "web1", "--reason", "tampered kernel",
        "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "REVOKED");
    g_assert_cmpstr(jstr(doc, "reason"), ==, "tampered kernel");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "revoke", "web1");
    g_assert_cmpint(r.exit_code, ==, EXIT_CONFLICT);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "readmit", "web1", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "PENDING");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "stop", "web1", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "STOPPED");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "show", "web1");
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    g_assert_nonnull(strstr(r.err, "no VM named web1 (not_found, HTTP 404)"));
    ctl_result_clear(&r);

    /* The backend's internal failure: a server error. */
    g_test_expect_message("tvd-api", G_LOG_LEVEL_WARNING,
                          "vm_show: the store is on fire");
    CTL(f, &r, "vm", "show", "boom", "--json");
    g_test_assert_expected_messages();
    g_assert_cmpint(r.exit_code, ==, EXIT_SERVER);
    doc = ctl_json(&r);
    g_assert_cmpstr(jstr(json_object_get_member(json_node_get_object(doc),
                                                "error"), "code"),
                    ==, "internal");
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "stop");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
}

/* vm register-ek: the certificate file's bytes reach the backend; its
 * refusal, a missing or empty file and a missing option are told apart. */
static void test_register_ek(ApiFixture *f, gconstpointer data)
{
    g_autofree char *good = g_build_filename(f->dir, "ek-good.der", NULL);
    g_autofree char *bad = g_build_filename(f->dir, "ek-bad.der", NULL);
    g_autofree char *empty = g_build_filename(f->dir, "ek-empty.der", NULL);
    CtlResult r;

    g_assert_true(g_file_set_contents(good, TEST_GOOD_EK_CERT, -1, NULL));
    g_assert_true(g_file_set_contents(bad, "another CA's certificate", -1,
                                      NULL));
    g_assert_true(g_file_set_contents(empty, "", 0, NULL));
    if (!create_blue(f)) {
        return;
    }
    CTL(f, &r, "vm", "start", "web1", "--domain", "blue", "--kernel", "/k",
        "--initrd", "/i");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);

    CTL(f, &r, "vm", "register-ek", "web1", "--ek-cert", good, "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    {
        g_autoptr(JsonNode) doc = ctl_json(&r);

        g_assert_cmpstr(jstr(doc, "name"), ==, "web1");
    }
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "register-ek", "web1", "--ek-cert", bad);
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    g_assert_nonnull(strstr(r.err, "does not chain to the vTPM CA"));
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "register-ek", "nope", "--ek-cert", good);
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "register-ek", "web1", "--ek-cert", empty);
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "register-ek", "web1", "--ek-cert", "/nonexistent.der");
    g_assert_cmpint(r.exit_code, ==, EXIT_LOCAL);
    ctl_result_clear(&r);
    CTL(f, &r, "vm", "register-ek", "web1");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
}

static void test_audit(ApiFixture *f, gconstpointer data)
{
    JsonNode *doc;
    JsonArray *entries;
    CtlResult r;

    for (int i = 0; i < 4; i++) {
        test_backend_audit(f->backend, "admit", "vm/a", "\x1b[31mred");
    }
    if (!CTL(f, &r, "audit", "--json")) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    entries = json_object_get_array_member(json_node_get_object(doc),
                                           "entries");
    g_assert_cmpuint(json_array_get_length(entries), ==, 4);
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "audit", "--since", "3", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    entries = json_object_get_array_member(json_node_get_object(doc),
                                           "entries");
    g_assert_cmpuint(json_array_get_length(entries), ==, 2);
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "audit", "--limit", "1");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_true(g_str_has_prefix(r.out, "SEQ"));
    /* Terminal escapes from the log never reach the terminal. */
    g_assert_null(strchr(r.out, '\x1b'));
    g_assert_nonnull(strstr(r.out, "?[31mred"));
    {
        g_auto(GStrv) lines = g_strsplit(r.out, "\n", -1);

        /* The header, one entry and the empty string after the last \n. */
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
    }
    ctl_result_clear(&r);

    CTL(f, &r, "audit", "--since", "x");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    CTL(f, &r, "audit", "--limit", "0");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);
    CTL(f, &r, "audit", "--verify", "--since", "2");
    g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
    ctl_result_clear(&r);

    CTL(f, &r, "audit", "--verify", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(doc),
                                                 "ok"));
    json_node_unref(doc);
    ctl_result_clear(&r);

    CTL(f, &r, "audit", "--verify");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "ok:"));
    ctl_result_clear(&r);

    test_backend_break_audit(f->backend);
    CTL(f, &r, "audit", "--verify", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_VERIFY);
    doc = ctl_json(&r);
    g_assert_false(json_object_get_boolean_member(json_node_get_object(doc),
                                                  "ok"));
    json_node_unref(doc);
    g_assert_nonnull(strstr(r.err, "does NOT verify (entry 2: hash chain "
                                   "broken)"));
    ctl_result_clear(&r);
}

static void test_metrics(ApiFixture *f, gconstpointer data)
{
    g_autoptr(JsonNode) doc = NULL;
    JsonArray *families;
    gboolean seen_members = FALSE, seen_hist = FALSE, seen_escape = FALSE;
    CtlResult r;

    if (!CTL(f, &r, "metrics")) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_nonnull(strstr(r.out, "# TYPE tvd_members gauge\n"));
    ctl_result_clear(&r);

    CTL(f, &r, "metrics", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    doc = ctl_json(&r);
    families = json_object_get_array_member(json_node_get_object(doc),
                                            "metrics");
    for (guint i = 0; i < json_array_get_length(families); i++) {
        JsonObject *fam = json_array_get_object_element(families, i);
        const char *name = json_object_get_string_member(fam, "name");
        JsonArray *samples = json_object_get_array_member(fam, "samples");

        if (strcmp(name, "tvd_members") == 0) {
            seen_members = TRUE;
            g_assert_cmpstr(json_object_get_string_member(fam, "type"), ==,
                            "gauge");
            g_assert_cmpuint(json_array_get_length(samples), ==, 4);
        } else if (strcmp(name, "tvd_admission_seconds") == 0) {
            /* _bucket, _sum and _count fold into the histogram. */
            seen_hist = TRUE;
            g_assert_cmpuint(json_array_get_length(samples), ==, 6);
        } else if (strcmp(name, "tvd_attestation_failures_total") == 0) {
            JsonObject *s0 = json_array_get_object_element(samples, 0);
            JsonObject *labels = json_object_get_object_member(s0, "labels");

            seen_escape = TRUE;
            g_assert_cmpstr(json_object_get_string_member(labels, "reason"),
                            ==, "quote \"bad\"\\sig\n");
            g_assert_cmpfloat(json_object_get_double_member(s0, "value"), ==,
                              3.0);
            g_assert_cmpstr(json_object_get_string_member(fam, "help"), ==,
                            "Failed attestations by reason.\n"
                            "Second line \\ here.");
        }
    }
    g_assert_true(seen_members && seen_hist && seen_escape);
    ctl_result_clear(&r);
}

static void test_not_implemented(ApiFixture *f, gconstpointer data)
{
    CtlResult r;

    if (!CTL(f, &r, "vm", "list")) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_UNSUPPORTED);
    ctl_result_clear(&r);
    CTL(f, &r, "audit", "--verify", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_UNSUPPORTED);
    ctl_result_clear(&r);
}

static void test_offline(ApiFixture *f, gconstpointer data)
{
    g_autofree char *prefix = g_build_filename(f->dir, "admin", NULL);
    g_autofree char *key = g_strconcat(prefix, ".key", NULL);
    g_autofree char *p = NULL, *s = NULL, *sig = NULL;
    CtlResult r;

    if (!run_tvdctl(NULL, &r, "domain", "keygen", "--out", prefix, "--json",
                    NULL)) {
        return;
    }
    if (r.exit_code == EXIT_UNSUPPORTED) {
        /* Built without host/policy: the verb says so, clearly. */
        g_assert_nonnull(strstr(r.err, "not built"));
        ctl_result_clear(&r);
        run_tvdctl(NULL, &r, "domain", "sign", "--key", key, "--policy",
                   "x", NULL);
        g_assert_cmpint(r.exit_code, ==, EXIT_UNSUPPORTED);
        ctl_result_clear(&r);
        g_test_skip("tvdctl built without the policy library");
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    {
        g_autoptr(JsonNode) doc = ctl_json(&r);

        g_assert_cmpstr(jstr(doc, "private_key"), ==, key);
        g_assert_true(g_str_has_prefix(jstr(doc, "key_id"), "sha256:"));
    }
    ctl_result_clear(&r);
    write_policy(f, "", &p, &s);
    sig = g_strconcat(p, ".sig", NULL);
    g_unlink(sig);
    run_tvdctl(NULL, &r, "domain", "sign", "--key", key, "--policy", p,
               "--json", NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    g_assert_true(g_file_test(sig, G_FILE_TEST_IS_REGULAR));
    ctl_result_clear(&r);
#ifdef HAVE_POLICY
    {
        /* The signature verifies with the public key over the policy's
         * exact bytes, and not over other bytes. */
        g_autofree char *pub = g_strconcat(prefix, ".pub", NULL);
        g_autofree char *pem = NULL, *policy = NULL, *sigtext = NULL;
        g_autoptr(TvdPolicyTrustStore) store = tvd_policy_trust_store_new();
        g_autoptr(GError) error = NULL;
        gsize pem_len, policy_len, sig_len;

        g_assert_true(g_file_get_contents(pub, &pem, &pem_len, NULL));
        g_assert_true(g_file_get_contents(p, &policy, &policy_len, NULL));
        g_assert_true(g_file_get_contents(sig, &sigtext, &sig_len, NULL));
        g_assert_true(tvd_policy_trust_store_add_pem(store, pem, pem_len,
                                                     "admin", &error));
        g_assert_no_error(error);
        g_assert_true(tvd_policy_trust_store_verify(store, policy, policy_len,
                                                    sigtext, sig_len, NULL,
                                                    &error));
        g_assert_no_error(error);
        g_assert_false(tvd_policy_trust_store_verify(store, "{}", 2, sigtext,
                                                     sig_len, NULL, &error));
        g_assert_nonnull(error);
    }
#endif
    /* --out, and a P-256 key. */
    {
        g_autofree char *p256 = g_build_filename(f->dir, "ecdsa", NULL);
        g_autofree char *p256_key = g_strconcat(p256, ".key", NULL);
        g_autofree char *out = g_build_filename(f->dir, "other.sig", NULL);

        run_tvdctl(NULL, &r, "domain", "keygen", "--out", p256, "--type",
                   "p256", NULL);
        g_assert_cmpint(r.exit_code, ==, EXIT_OK);
        g_assert_nonnull(strstr(r.out, "key_id:"));
        ctl_result_clear(&r);
        run_tvdctl(NULL, &r, "domain", "sign", "--key", p256_key, "--policy",
                   p, "--out", out, NULL);
        g_assert_cmpint(r.exit_code, ==, EXIT_OK);
        g_assert_true(g_file_test(out, G_FILE_TEST_IS_REGULAR));
        ctl_result_clear(&r);
        run_tvdctl(NULL, &r, "domain", "keygen", "--out", p256, "--type",
                   "rsa", NULL);
        g_assert_cmpint(r.exit_code, ==, EXIT_USAGE);
        ctl_result_clear(&r);
    }
    /* A second keygen onto the same files must refuse. */
    run_tvdctl(NULL, &r, "domain", "keygen", "--out", prefix, NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_LOCAL);
    ctl_result_clear(&r);
}

/*
 * tvdctl parses a policy before it signs or sends it: a mistake is named
 * with the file, line, column and field, and a NAME that is not the
 * policy's domain is refused; nothing reaches the supervisor.
 */
static void test_policy_checks(ApiFixture *f, gconstpointer data)
{
#ifdef HAVE_POLICY
    g_autofree char *p = NULL, *s = NULL;
    g_autofree char *bad = g_build_filename(f->dir, "bad.json", NULL);
    g_autofree char *bad_sig = g_strconcat(bad, ".sig", NULL);
    g_autofree char *prefix = g_build_filename(f->dir, "admin", NULL);
    g_autofree char *key = g_strconcat(prefix, ".key", NULL);
    g_autofree char *where = NULL;
    CtlResult r;

    write_policy(f, TEST_GOOD_SIGNATURE, &p, &s);
    g_assert_true(g_file_set_contents(bad,
        "{\"tvd_policy\": 1, \"serial\": 1,\n"
        " \"domain\": {\"name\": \"blue\", \"id\": 7},\n"
        " \"membership\": {\"reference_digests\": [], \"excludez\": []},\n"
        " \"network\": {\"subnet\": \"10.7.0.0/24\", \"roles\": [\"web\"]}}\n",
        -1, NULL));
    where = g_strconcat(bad, ":3:", NULL);

    /* NAME must be the policy's domain, for create and update. */
    if (!CTL(f, &r, "domain", "create", "red", "--policy", p, "--signature",
             s)) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    g_assert_nonnull(strstr(r.err, "is the policy of domain 'blue', not "
                                   "'red'"));
    ctl_result_clear(&r);
    CTL(f, &r, "domain", "show", "red");
    g_assert_cmpint(r.exit_code, ==, EXIT_NOT_FOUND);
    ctl_result_clear(&r);
    g_assert_true(create_blue(f));
    CTL(f, &r, "domain", "update", "red", "--policy", p, "--signature", s,
        "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    {
        g_autoptr(JsonNode) doc = ctl_json(&r);
        JsonNode *e = json_object_get_member(json_node_get_object(doc),
                                             "error");

        g_assert_cmpstr(jstr(e, "code"), ==, "name_mismatch");
    }
    ctl_result_clear(&r);

    /* A policy that does not parse: the file's name, line and field, and
     * the supervisor never sees it (blue keeps serial 1). */
    CTL(f, &r, "domain", "update", "blue", "--policy", bad, "--signature",
        s, "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    g_assert_nonnull(strstr(r.err, where));
    g_assert_nonnull(strstr(r.err, "membership.excludez"));
    g_assert_nonnull(strstr(r.err, "did you mean \"excludes\""));
    g_assert_null(strstr(r.err, "policy:"));
    {
        g_autoptr(JsonNode) doc = ctl_json(&r);
        JsonNode *e = json_object_get_member(json_node_get_object(doc),
                                             "error");

        g_assert_cmpstr(jstr(e, "code"), ==, "invalid_policy");
    }
    ctl_result_clear(&r);
    CTL(f, &r, "domain", "show", "blue", "--json");
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    {
        g_autoptr(JsonNode) doc = ctl_json(&r);

        g_assert_cmpint(jint(doc, "serial"), ==, 1);
    }
    ctl_result_clear(&r);

    /* domain sign refuses it too, and writes no signature. */
    run_tvdctl(NULL, &r, "domain", "keygen", "--out", prefix, NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_OK);
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "domain", "sign", "--key", key, "--policy", bad,
               NULL);
    g_assert_cmpint(r.exit_code, ==, EXIT_INVALID);
    g_assert_nonnull(strstr(r.err, where));
    g_assert_false(g_file_test(bad_sig, G_FILE_TEST_EXISTS));
    ctl_result_clear(&r);
#else
    g_test_skip("built without the policy library: tvdctl cannot parse "
                "policies");
#endif
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(path, fn, vt)                                                    \
    g_test_add("/api/tvdctl/" path, ApiFixture, vt, api_fixture_setup, fn,  \
               api_fixture_teardown)
    ADD("help", test_help, NULL);
    ADD("health", test_health, NULL);
    ADD("domains", test_domains, NULL);
    ADD("vms", test_vms, NULL);
    ADD("register-ek", test_register_ek, NULL);
    ADD("audit", test_audit, NULL);
    ADD("metrics", test_metrics, NULL);
    ADD("not-implemented", test_not_implemented,
        test_backend_vtable_empty());
    ADD("offline", test_offline, NULL);
    ADD("policy-checks", test_policy_checks, NULL);
    return g_test_run();
}
