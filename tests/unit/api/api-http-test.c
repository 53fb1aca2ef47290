/*
 * The API server through the real HTTP stack: every route with a libsoup
 * client over the unix socket, against the in-memory backend (the fast
 * test layer, test-backend.c). Errors, limits, type checks, metrics format,
 * socket permissions and the access log.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api-test"

#include "test-backend.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

static const char *const vm_body =
    "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/boot/vmlinuz\","
    "\"initrd\":\"/boot/initrd.img\",\"append\":\"console=ttyS0\","
    "\"memory\":512,\"role\":\"web\"}";

/* {"name": NAME, "policy": base64(POLICY), "signature": base64(SIG)} */
static char *domain_body(const char *name, const char *policy,
                         const char *sig)
{
    g_autofree char *p = g_base64_encode((const guchar *)policy,
                                         strlen(policy));
    g_autofree char *s = g_base64_encode((const guchar *)sig, strlen(sig));

    if (!name) {
        return g_strdup_printf("{\"policy\":\"%s\",\"signature\":\"%s\"}", p,
                               s);
    }
    return g_strdup_printf("{\"name\":\"%s\",\"policy\":\"%s\","
                           "\"signature\":\"%s\"}", name, p, s);
}

static void post(ApiFixture *f, const char *path, const char *body,
                 HttpReply *r)
{
    http_request(f->socket_path, "POST", path, NULL, body,
                 body ? strlen(body) : 0, r);
}

static void get(ApiFixture *f, const char *path, HttpReply *r)
{
    http_request(f->socket_path, "GET", path, NULL, NULL, 0, r);
}

static void create_blue(ApiFixture *f)
{
    g_autofree char *body = domain_body("blue", "{\"tvd_policy\":1}",
                                        TEST_GOOD_SIGNATURE);
    HttpReply r;

    post(f, "/v1/domains", body, &r);
    g_assert_cmpuint(r.status, ==, 201);
    http_reply_clear(&r);
}

/* ---- Routes ------------------------------------------------------------ */

static void test_health(ApiFixture *f, gconstpointer data)
{
    HttpReply r;
    g_autoptr(JsonNode) doc = NULL;

    get(f, "/v1/health", &r);
    g_assert_no_error(r.error);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "status"), ==, "ok");
    g_assert_cmpstr(jstr(doc, "api"), ==, "v1");
    http_reply_clear(&r);
}

static void test_vm_lifecycle(ApiFixture *f, gconstpointer data)
{
    HttpReply r;
    JsonNode *doc;
    JsonArray *vms;

    create_blue(f);

    post(f, "/v1/vms", vm_body, &r);
    g_assert_cmpuint(r.status, ==, 201);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "name"), ==, "web1");
    g_assert_cmpstr(jstr(doc, "domain"), ==, "blue");
    g_assert_cmpstr(jstr(doc, "role"), ==, "web");
    g_assert_cmpstr(jstr(doc, "state"), ==, "PENDING");
    g_assert_cmpstr(jstr(doc, "append"), ==, "console=ttyS0");
    g_assert_cmpint(jint(doc, "memory"), ==, 512);
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/vms", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    vms = json_object_get_array_member(json_node_get_object(doc), "vms");
    g_assert_cmpuint(json_array_get_length(vms), ==, 1);
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/vms/web1", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "kernel"), ==, "/boot/vmlinuz");
    json_node_unref(doc);
    http_reply_clear(&r);

    post(f, "/v1/vms/web1/revoke", "{\"reason\":\"compromised\"}", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "REVOKED");
    g_assert_cmpstr(jstr(doc, "reason"), ==, "compromised");
    json_node_unref(doc);
    http_reply_clear(&r);

    /* Revoking twice is a conflict. */
    post(f, "/v1/vms/web1/revoke", NULL, &r);
    assert_api_error(&r, 409, "conflict", "web1 is revoked already");
    http_reply_clear(&r);

    post(f, "/v1/vms/web1/readmit", NULL, &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "PENDING");
    json_node_unref(doc);
    http_reply_clear(&r);

    /* A revoke without a body gets the backend's default reason. */
    post(f, "/v1/vms/web1/revoke", NULL, &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "reason"), ==, "revoked by operator");
    json_node_unref(doc);
    http_reply_clear(&r);

    post(f, "/v1/vms/web1/stop", NULL, &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "state"), ==, "STOPPED");
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/vms/web1", &r);
    assert_api_error(&r, 404, "not_found", "no VM named web1");
    http_reply_clear(&r);
    g_assert_cmpuint(test_backend_n_vms(f->backend), ==, 0);
}

static void test_vm_errors(ApiFixture *f, gconstpointer data)
{
    HttpReply r;

    /* Unknown domain: the backend's 404. */
    post(f, "/v1/vms", vm_body, &r);
    assert_api_error(&r, 404, "not_found", "domain:");
    http_reply_clear(&r);

    create_blue(f);
    post(f, "/v1/vms", vm_body, &r);
    g_assert_cmpuint(r.status, ==, 201);
    http_reply_clear(&r);
    post(f, "/v1/vms", vm_body, &r);
    assert_api_error(&r, 409, "conflict", "a VM named web1 exists");
    http_reply_clear(&r);

    /* An error outside TVD_API_ERROR is a 500 with its message (and a
     * warning in the log). */
    g_test_expect_message("tvd-api", G_LOG_LEVEL_WARNING,
                          "vm_show: the store is on fire");
    get(f, "/v1/vms/boom", &r);
    g_test_assert_expected_messages();
    assert_api_error(&r, 500, "internal", "the store is on fire");
    http_reply_clear(&r);

    post(f, "/v1/vms/nope/stop", NULL, &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);
    post(f, "/v1/vms/nope/readmit", NULL, &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);
}

static void test_domains(ApiFixture *f, gconstpointer data)
{
    g_autofree char *bad_sig = domain_body("red", "{}", "forged");
    g_autofree char *update = domain_body(NULL, "{\"tvd_policy\":1,\"x\":2}",
                                          TEST_GOOD_SIGNATURE);
    g_autofree char *mismatch = domain_body("green", "{}",
                                            TEST_GOOD_SIGNATURE);
    g_autofree char *dup = domain_body("blue", "{}", TEST_GOOD_SIGNATURE);
    HttpReply r;
    JsonNode *doc;
    JsonArray *list;

    create_blue(f);
    post(f, "/v1/domains", dup, &r);
    assert_api_error(&r, 409, "conflict", NULL);
    http_reply_clear(&r);

    post(f, "/v1/domains", bad_sig, &r);
    assert_api_error(&r, 403, "forbidden", "signature:");
    http_reply_clear(&r);

    get(f, "/v1/domains", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    list = json_object_get_array_member(json_node_get_object(doc), "domains");
    g_assert_cmpuint(json_array_get_length(list), ==, 1);
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/domains/blue", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpint(jint(doc, "serial"), ==, 1);
    g_assert_cmpint(jint(doc, "policy_bytes"), ==, 16);
    json_node_unref(doc);
    http_reply_clear(&r);

    http_request(f->socket_path, "PUT", "/v1/domains/blue", NULL, update,
                 strlen(update), &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpint(jint(doc, "serial"), ==, 2);
    g_assert_cmpint(jint(doc, "policy_bytes"), ==, 22);
    json_node_unref(doc);
    http_reply_clear(&r);

    /* The body's name must be the URL's. */
    http_request(f->socket_path, "PUT", "/v1/domains/blue", NULL, mismatch,
                 strlen(mismatch), &r);
    assert_api_error(&r, 400, "invalid", "name:");
    http_reply_clear(&r);

    http_request(f->socket_path, "PUT", "/v1/domains/nope", NULL, update,
                 strlen(update), &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);

    get(f, "/v1/domains/nope", &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);
}

static void test_audit(ApiFixture *f, gconstpointer data)
{
    HttpReply r;
    JsonNode *doc;
    JsonArray *entries;

    for (int i = 0; i < 5; i++) {
        g_autofree char *subject = g_strdup_printf("vm/v%d", i);

        test_backend_audit(f->backend, "admit", subject, "ok");
    }
    get(f, "/v1/audit?since=2&limit=2", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    entries = json_object_get_array_member(json_node_get_object(doc),
                                           "entries");
    g_assert_cmpuint(json_array_get_length(entries), ==, 2);
    g_assert_cmpint(json_object_get_int_member(
                        json_array_get_object_element(entries, 0), "seq"),
                    ==, 2);
    g_assert_cmpint(jint(doc, "next"), ==, 4);
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/audit", &r);
    doc = http_reply_json(&r);
    entries = json_object_get_array_member(json_node_get_object(doc),
                                           "entries");
    g_assert_cmpuint(json_array_get_length(entries), ==, 5);
    json_node_unref(doc);
    http_reply_clear(&r);

    get(f, "/v1/audit?since=abc", &r);
    assert_api_error(&r, 400, "invalid", "since:");
    http_reply_clear(&r);
    get(f, "/v1/audit?since=-1", &r);
    assert_api_error(&r, 400, "invalid", "since:");
    http_reply_clear(&r);
    get(f, "/v1/audit?since=99999999999999999999999", &r);
    assert_api_error(&r, 400, "invalid", "since:");
    http_reply_clear(&r);
    get(f, "/v1/audit?limit=0", &r);
    assert_api_error(&r, 400, "invalid", "limit:");
    http_reply_clear(&r);
    get(f, "/v1/audit?limit=1001", &r);
    assert_api_error(&r, 400, "invalid", "limit:");
    http_reply_clear(&r);
    get(f, "/v1/audit?colour=red", &r);
    assert_api_error(&r, 400, "invalid", "colour: unknown query parameter");
    http_reply_clear(&r);
    /* Routes without query parameters refuse them too. */
    get(f, "/v1/vms?since=1", &r);
    assert_api_error(&r, 400, "invalid", "since: unknown query parameter");
    http_reply_clear(&r);

    get(f, "/v1/audit/verify", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_true(json_object_get_boolean_member(json_node_get_object(doc),
                                                 "ok"));
    json_node_unref(doc);
    http_reply_clear(&r);

    test_backend_break_audit(f->backend);
    get(f, "/v1/audit/verify", &r);
    doc = http_reply_json(&r);
    g_assert_false(json_object_get_boolean_member(json_node_get_object(doc),
                                                  "ok"));
    g_assert_cmpint(jint(doc, "first_bad"), ==, 2);
    json_node_unref(doc);
    http_reply_clear(&r);
}

/* ---- Request checking ---------------------------------------------------- */

typedef struct {
    const char *body;
    const char *prefix;     /* expected start of the error message */
} BadBody;

static const BadBody bad_vm_bodies[] = {
    { "{", "body: malformed JSON" },
    { "{\"name\":\"a\",}", "body: malformed JSON" },
    { "[1,2]", "body: must be a JSON object" },
    { "\"web1\"", "body: must be a JSON object" },
    { "{}", "name: required" },
    { "{\"name\":7}", "name: must be a string" },
    { "{\"name\":null,\"domain\":\"blue\"}", "name: required" },
    { "{\"name\":\"\"}", "name: must not be empty" },
    { "{\"name\":\"-web\"}", "name: must match" },
    { "{\"name\":\"a/b\"}", "name: must match" },
    { "{\"name\":\"web1\",\"domain\":[\"blue\"]}", "domain: must be a string" },
    { "{\"name\":\"web1\",\"domain\":\"blue\"}", "kernel: required" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"vmlinuz\"}",
      "kernel: must be an absolute path" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":true}", "initrd: must be a string" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"memory\":\"512\"}", "memory: must be an integer" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"memory\":512.5}", "memory: must be an integer" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"memory\":8}", "memory: must be 16.." },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"memory\":-512}", "memory: must be 16.." },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"role\":{}}", "role: must be a string" },
    { "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
      "\"initrd\":\"/i\",\"append\":\"a\\nb\"}",
      "append: contains a control character" },
    { "{\"name\":\"web1\",\"colour\":\"red\"}", "colour: unknown field" },
};

static void test_bad_vm_bodies(ApiFixture *f, gconstpointer data)
{
    create_blue(f);
    for (size_t i = 0; i < G_N_ELEMENTS(bad_vm_bodies); i++) {
        HttpReply r;

        g_test_message("body %s", bad_vm_bodies[i].body);
        post(f, "/v1/vms", bad_vm_bodies[i].body, &r);
        assert_api_error(&r, 400, "invalid", bad_vm_bodies[i].prefix);
        http_reply_clear(&r);
    }
    g_assert_cmpuint(test_backend_n_vms(f->backend), ==, 0);
}

static void test_bad_requests(ApiFixture *f, gconstpointer data)
{
    static const char nul_body[] = "{\"name\":\"a\0\"}";
    static const char not_utf8[] = "{\"name\":\"\xff\"}";
    HttpReply r;

    /* Empty body where one is required. */
    post(f, "/v1/vms", NULL, &r);
    assert_api_error(&r, 400, "invalid", "body: empty");
    http_reply_clear(&r);

    /* A NUL byte inside the body. */
    http_request(f->socket_path, "POST", "/v1/vms", NULL, nul_body,
                 sizeof(nul_body) - 1, &r);
    assert_api_error(&r, 400, "invalid", "body: contains a NUL byte");
    http_reply_clear(&r);

    /* Not UTF-8. */
    http_request(f->socket_path, "POST", "/v1/vms", NULL, not_utf8,
                 strlen(not_utf8), &r);
    assert_api_error(&r, 400, "invalid", "body: not valid UTF-8");
    http_reply_clear(&r);

    /* Wrong media type. */
    http_request(f->socket_path, "POST", "/v1/vms", "text/plain", vm_body,
                 strlen(vm_body), &r);
    assert_api_error(&r, 415, "unsupported_media_type", "body:");
    http_reply_clear(&r);

    /* Bad names in the URL. */
    get(f, "/v1/vms/-x", &r);
    assert_api_error(&r, 400, "invalid", "name:");
    http_reply_clear(&r);
    get(f, "/v1/vms/a%20b", &r);
    assert_api_error(&r, 400, "invalid", "name:");
    http_reply_clear(&r);
    /* An encoded slash is a slash: no such route, not a name. */
    get(f, "/v1/vms/a%2Fb", &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);

    /* Revoke: the reason must be a string, nothing else is accepted. */
    post(f, "/v1/vms/web1/revoke", "{\"reason\":5}", &r);
    assert_api_error(&r, 400, "invalid", "reason: must be a string");
    http_reply_clear(&r);
    post(f, "/v1/vms/web1/revoke", "{\"why\":\"x\"}", &r);
    assert_api_error(&r, 400, "invalid", "why: unknown field");
    http_reply_clear(&r);

    /* Domain bodies: base64 and types. */
    post(f, "/v1/domains", "{\"name\":\"d\",\"policy\":\"e30\","
         "\"signature\":\"Zm9v\"}", &r);
    assert_api_error(&r, 400, "invalid", "policy: base64 length");
    http_reply_clear(&r);
    post(f, "/v1/domains", "{\"name\":\"d\",\"policy\":\"e30=\","
         "\"signature\":\"Zm9*\"}", &r);
    assert_api_error(&r, 400, "invalid", "signature: invalid base64");
    http_reply_clear(&r);
    post(f, "/v1/domains", "{\"name\":\"d\",\"policy\":{},"
         "\"signature\":\"Zm9v\"}", &r);
    assert_api_error(&r, 400, "invalid", "policy: must be a string");
    http_reply_clear(&r);
    post(f, "/v1/domains", "{\"policy\":\"e30=\",\"signature\":\"Zm9v\"}",
         &r);
    assert_api_error(&r, 400, "invalid", "name: required");
    http_reply_clear(&r);
}

static void test_unknown_route(ApiFixture *f, gconstpointer data)
{
    HttpReply r;

    get(f, "/v2/vms", &r);
    assert_api_error(&r, 404, "not_found", "no such resource");
    http_reply_clear(&r);
    get(f, "/v1/vms/web1/nope", &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);
    get(f, "/", &r);
    assert_api_error(&r, 404, "not_found", NULL);
    http_reply_clear(&r);

    /* Known path, wrong method: 405 with Allow. */
    http_request(f->socket_path, "DELETE", "/v1/vms", NULL, NULL, 0, &r);
    assert_api_error(&r, 405, "method_not_allowed", NULL);
    g_assert_cmpstr(r.allow, ==, "GET, POST");
    http_reply_clear(&r);
    get(f, "/v1/vms/web1/stop", &r);
    assert_api_error(&r, 405, "method_not_allowed", NULL);
    g_assert_cmpstr(r.allow, ==, "POST");
    http_reply_clear(&r);
}

static void test_body_too_large(ApiFixture *f, gconstpointer data)
{
    static const char huge[] =
        "POST /v1/vms HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        "Content-Length: 4294967296\r\n\r\n{";
    static const char chunked[] =
        "POST /v1/vms HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n";
    gsize n = TVD_API_MAX_BODY + 1;
    g_autofree char *big = g_malloc(n);
    g_autofree char *answer = NULL;
    HttpReply r;

    /* A whole body over the cap, sent by libsoup with its length. */
    memset(big, ' ', n);
    http_request(f->socket_path, "POST", "/v1/vms", NULL, big, n, &r);
    assert_api_error(&r, 413, "too_large", "body: larger than the limit");
    http_reply_clear(&r);

    /* Exactly at the cap: read, then refused for its content. */
    http_request(f->socket_path, "POST", "/v1/vms", NULL, big, n - 1, &r);
    assert_api_error(&r, 400, "invalid", "body: must be a JSON object");
    http_reply_clear(&r);

    /* A huge announced length is refused from the headers alone. */
    answer = raw_request(f->socket_path, huge, strlen(huge), 5000);
    g_test_message("answer: %s", answer);
    g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 413"));
    g_assert_nonnull(strstr(answer, "\"too_large\""));
    g_clear_pointer(&answer, g_free);

    /* A chunked body has no length to check up front: 411. */
    answer = raw_request(f->socket_path, chunked, strlen(chunked), 5000);
    g_assert_true(g_str_has_prefix(answer, "HTTP/1.1 411"));
    g_assert_nonnull(strstr(answer, "\"length_required\""));
}

/*
 * Deeply nested JSON (json-glib's parser recurses once per level) is
 * refused before it is parsed, and the server keeps answering.
 */
static void test_deep_nesting(ApiFixture *f, gconstpointer data)
{
    static const char *const routes[] = { "/v1/vms", "/v1/domains" };
    gsize sizes[] = { TVD_API_MAX_BODY, TVD_API_MAX_DOMAIN_BODY };

    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        g_autofree char *deep = g_strnfill(sizes[i], '[');
        HttpReply r;

        http_request(f->socket_path, "POST", routes[i], NULL, deep,
                     sizes[i], &r);
        assert_api_error(&r, 400, "invalid", "body: nested deeper than");
        http_reply_clear(&r);
    }
    {
        /* A quote json-glib takes in a single-quoted string hides nothing. */
        g_autofree char *deep = g_strnfill(300000, '[');
        g_autofree char *body = g_strconcat("{\"a\": ['\"', ", deep, NULL);
        HttpReply r;

        http_request(f->socket_path, "POST", "/v1/vms", NULL, body,
                     strlen(body), &r);
        assert_api_error(&r, 400, "invalid", "body: nested deeper than");
        http_reply_clear(&r);
    }
    {
        HttpReply r;

        get(f, "/v1/health", &r);
        g_assert_cmpuint(r.status, ==, 200);
        http_reply_clear(&r);
    }
}

static void test_domain_body_cap(ApiFixture *f, gconstpointer data)
{
    /* The domain routes take a policy of up to 8 MiB (base64: ~11 MiB). */
    gsize n = 2 * TVD_API_MAX_BODY;
    g_autofree char *policy = g_malloc(n + 1);
    g_autofree char *body = NULL;
    HttpReply r;

    memset(policy, ' ', n);
    policy[0] = '{';
    policy[n - 1] = '}';
    policy[n] = '\0';
    body = domain_body("big", policy, TEST_GOOD_SIGNATURE);
    post(f, "/v1/domains", body, &r);
    g_assert_cmpuint(r.status, ==, 201);
    http_reply_clear(&r);
}

static void test_not_implemented(ApiFixture *f, gconstpointer data)
{
    HttpReply r;
    g_autoptr(JsonNode) doc = NULL;

    get(f, "/v1/vms", &r);
    assert_api_error(&r, 501, "not_implemented", "vm_list:");
    http_reply_clear(&r);
    post(f, "/v1/vms", vm_body, &r);
    assert_api_error(&r, 501, "not_implemented", NULL);
    http_reply_clear(&r);
    get(f, "/v1/audit/verify", &r);
    assert_api_error(&r, 501, "not_implemented", NULL);
    http_reply_clear(&r);

    /* Health answers from the API itself. */
    get(f, "/v1/health", &r);
    g_assert_cmpuint(r.status, ==, 200);
    doc = http_reply_json(&r);
    g_assert_cmpstr(jstr(doc, "status"), ==, "ok");
    http_reply_clear(&r);

    /* Metrics: only the API's own families. */
    get(f, "/metrics", &r);
    g_assert_cmpuint(r.status, ==, 200);
    g_assert_nonnull(strstr(g_bytes_get_data(r.body, NULL),
                            "tvd_api_requests_total{route=\"vm_list\","
                            "code=\"501\"} 1\n"));
    http_reply_clear(&r);
}

/* ---- Metrics --------------------------------------------------------------- */

static void test_metrics(ApiFixture *f, gconstpointer data)
{
    /* Text format 0.0.4: comments, and samples "name{labels} value". */
    g_autoptr(GRegex) sample = g_regex_new(
        "^[a-zA-Z_:][a-zA-Z0-9_:]*"
        "(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\\\n]|\\\\[\\\\n\"])*\",?)*\\})?"
        " (-?[0-9.e+-]+|NaN|\\+Inf|-Inf)$", 0, 0, NULL);
    g_autoptr(GRegex) comment = g_regex_new(
        "^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
        "(counter|gauge|histogram|summary|untyped))$", 0, 0, NULL);
    g_auto(GStrv) lines = NULL;
    g_autofree char *text = NULL;
    HttpReply r;
    gsize len;
    guint samples = 0;

    create_blue(f);
    get(f, "/v1/vms", &r);
    http_reply_clear(&r);
    get(f, "/metrics", &r);
    g_assert_no_error(r.error);
    g_assert_cmpuint(r.status, ==, 200);
    g_assert_true(g_str_has_prefix(r.content_type,
                                   "text/plain; version=0.0.4"));
    text = g_strndup(g_bytes_get_data(r.body, &len), g_bytes_get_size(r.body));
    g_assert_true(g_str_has_suffix(text, "\n"));
    lines = g_strsplit(text, "\n", -1);
    for (guint i = 0; lines[i] && lines[i + 1]; i++) {
        if (lines[i][0] == '#') {
            if (!g_regex_match(comment, lines[i], 0, NULL)) {
                g_error("bad comment line: %s", lines[i]);
            }
        } else if (!g_regex_match(sample, lines[i], 0, NULL)) {
            g_error("bad sample line: %s", lines[i]);
        } else {
            samples++;
        }
    }
    g_assert_cmpuint(samples, >, 10);
    /* The backend's families, with escaping. */
    g_assert_nonnull(strstr(text, "# TYPE tvd_members gauge\n"));
    g_assert_nonnull(strstr(text, "tvd_members{state=\"ADMITTED\"} 0\n"));
    g_assert_nonnull(strstr(text, "# HELP tvd_attestation_failures_total "
                                  "Failed attestations by reason.\\n"
                                  "Second line \\\\ here.\n"));
    g_assert_nonnull(strstr(text, "tvd_attestation_failures_total{reason="
                                  "\"quote \\\"bad\\\"\\\\sig\\n\"} 3\n"));
    g_assert_nonnull(strstr(text, "tvd_admission_seconds_bucket{le=\"0.05\"} "
                                  "1\n"));
    g_assert_nonnull(strstr(text, "tvd_admission_seconds_bucket{le=\"+Inf\"} "
                                  "2\n"));
    g_assert_nonnull(strstr(text, "tvd_admission_seconds_count 2\n"));
    /* The API's own, counting the requests before this one. */
    g_assert_nonnull(strstr(text, "tvd_api_requests_total{route=\"vm_list\","
                                  "code=\"200\"} 1\n"));
    g_assert_nonnull(strstr(text, "tvd_api_requests_total{route="
                                  "\"domain_create\",code=\"201\"} 1\n"));
    g_assert_nonnull(strstr(text, "tvd_api_request_duration_seconds_count 2\n"));
    http_reply_clear(&r);

    http_request(f->socket_path, "POST", "/metrics", NULL, NULL, 0, &r);
    assert_api_error(&r, 405, "method_not_allowed", NULL);
    http_reply_clear(&r);
}

/* ---- Socket ------------------------------------------------------------------ */

static void test_socket_modes(ApiFixture *f, gconstpointer data)
{
    g_autofree char *parent = g_path_get_dirname(f->socket_path);
    g_autofree char *file = g_build_filename(f->dir, "file", NULL);
    g_autoptr(GError) error = NULL;
    TvdApiServerConfig config = { 0 };
    TvdApiServer *other;
    struct stat st;

    g_assert_cmpint(stat(f->socket_path, &st), ==, 0);
    g_assert_true(S_ISSOCK(st.st_mode));
    g_assert_cmpint(st.st_mode & 07777, ==, 0660);
    g_assert_cmpint(stat(parent, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0750);

    /* A live server at the path is not replaced. */
    config.socket_path = f->socket_path;
    other = tvd_api_server_new(&config, test_backend_vtable(), f->backend,
                               &error);
    g_assert_null(other);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE);
    g_clear_error(&error);

    /* A regular file is not a stale socket. */
    g_assert_true(g_file_set_contents(file, "x", 1, NULL));
    config.socket_path = file;
    other = tvd_api_server_new(&config, test_backend_vtable(), f->backend,
                               &error);
    g_assert_null(other);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_clear_error(&error);

    /* A stale socket (server gone without cleanup) is replaced. */
    {
        g_autoptr(GSocket) s = g_socket_new(G_SOCKET_FAMILY_UNIX,
                                            G_SOCKET_TYPE_STREAM, 0, NULL);
        g_autofree char *stale = g_build_filename(f->dir, "stale.sock", NULL);
        g_autoptr(GSocketAddress) a = g_unix_socket_address_new(stale);
        HttpReply r;

        g_assert_true(g_socket_bind(s, a, FALSE, NULL));
        g_socket_close(s, NULL);
        config.socket_path = stale;
        other = tvd_api_server_new(&config, test_backend_vtable(), f->backend,
                                   &error);
        g_assert_no_error(error);
        http_request(stale, "GET", "/v1/health", NULL, NULL, 0, &r);
        g_assert_cmpuint(r.status, ==, 200);
        http_reply_clear(&r);
        tvd_api_server_free(other);
        g_assert_false(g_file_test(stale, G_FILE_TEST_EXISTS));
    }

    /* TCP needs the whole mutual TLS configuration. */
    {
        g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(
            G_SOCKET_FAMILY_IPV4);
        g_autoptr(GSocketAddress) tcp = g_inet_socket_address_new(lo, 0);
        g_autofree char *p = g_build_filename(f->dir, "tcp.sock", NULL);

        config.socket_path = p;
        config.tcp_address = G_INET_SOCKET_ADDRESS(tcp);
        other = tvd_api_server_new(&config, test_backend_vtable(), f->backend,
                                   &error);
        g_assert_null(other);
        g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    }
}

/* ---- Access log ----------------------------------------------------------- */

static GPtrArray *captured;

static GLogWriterOutput capture_writer(GLogLevelFlags level,
                                       const GLogField *fields, gsize n,
                                       gpointer data)
{
    const char *domain = NULL, *message = NULL;

    for (gsize i = 0; i < n; i++) {
        if (strcmp(fields[i].key, "GLIB_DOMAIN") == 0) {
            domain = fields[i].value;
        } else if (strcmp(fields[i].key, "MESSAGE") == 0) {
            message = fields[i].value;
        }
    }
    if (captured && (level & G_LOG_LEVEL_DEBUG) &&
        g_strcmp0(domain, "tvd-api") == 0 && message) {
        g_ptr_array_add(captured, g_strdup(message));
        return G_LOG_WRITER_HANDLED;
    }
    if (level & G_LOG_LEVEL_DEBUG) {
        return G_LOG_WRITER_HANDLED;
    }
    return g_log_writer_default(level, fields, n, data);
}

static void test_access_log(ApiFixture *f, gconstpointer data)
{
    g_autofree char *want = g_strdup_printf("uid=%ld pid=%ld",
                                            (long)getuid(), (long)getpid());
    gboolean found = FALSE;
    HttpReply r;

    captured = g_ptr_array_new_with_free_func(g_free);
    g_log_set_debug_enabled(TRUE);
    get(f, "/v1/vms/nope", &r);
    http_reply_clear(&r);
    g_log_set_debug_enabled(FALSE);
    for (guint i = 0; i < captured->len; i++) {
        const char *m = captured->pdata[i];

        g_test_message("log: %s", m);
        if (strstr(m, "GET /v1/vms/nope -> 404") && strstr(m, want) &&
            strstr(m, "route=vm_show")) {
            found = TRUE;
        }
    }
    g_assert_true(found);
    g_clear_pointer(&captured, g_ptr_array_unref);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_log_set_writer_func(capture_writer, NULL, NULL);

#define ADD(path, fn, vt)                                                   \
    g_test_add("/api/http/" path, ApiFixture, vt, api_fixture_setup, fn,   \
               api_fixture_teardown)
    ADD("health", test_health, NULL);
    ADD("vm-lifecycle", test_vm_lifecycle, NULL);
    ADD("vm-errors", test_vm_errors, NULL);
    ADD("domains", test_domains, NULL);
    ADD("audit", test_audit, NULL);
    ADD("bad-vm-bodies", test_bad_vm_bodies, NULL);
    ADD("bad-requests", test_bad_requests, NULL);
    ADD("unknown-route", test_unknown_route, NULL);
    ADD("body-too-large", test_body_too_large, NULL);
    ADD("deep-nesting", test_deep_nesting, NULL);
    ADD("domain-body-cap", test_domain_body_cap, NULL);
    ADD("not-implemented", test_not_implemented,
        test_backend_vtable_empty());
    ADD("metrics", test_metrics, NULL);
    ADD("socket-modes", test_socket_modes, NULL);
    ADD("access-log", test_access_log, NULL);
    return g_test_run();
}
