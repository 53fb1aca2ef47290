/*
 * The fast test layer of the API: an in-memory TvdApiBackend and helpers
 * that run the real API server in-process on a temporary unix socket and
 * drive it through the real HTTP stack (libsoup client, raw sockets, the
 * built tvdctl binary).
 *
 * The in-memory backend is NOT the supervisor: it stands in for it so the
 * HTTP layer, the decoders, the error mapping and tvdctl are tested end to
 * end quickly. Its rules (docs/api.md's shapes, simple state changes) are
 * only as rich as those tests need. The supervisor's own tests drive the
 * same API against the real core.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_TEST_API_BACKEND_H
#define TVD_TEST_API_BACKEND_H

#include "api.h"

#include <libsoup/soup.h>

G_BEGIN_DECLS

/* The signature the in-memory backend accepts for any policy; any other is
 * refused as forbidden (a stand-in for "not signed by a trusted key"). */
#define TEST_GOOD_SIGNATURE "good-signature"
/* The one EK certificate the stand-in registers. */
#define TEST_GOOD_EK_CERT "good-ek-cert"

typedef struct TestBackend TestBackend;

TestBackend *test_backend_new(void);
void test_backend_free(TestBackend *tb);
/* The vtable with every operation, or with only health (for 501 tests). */
const TvdApiBackend *test_backend_vtable(void);
const TvdApiBackend *test_backend_vtable_empty(void);
/* Makes audit_verify report a broken chain at seq 2. */
void test_backend_break_audit(TestBackend *tb);
/* Appends an audit entry (action, subject, reason). */
void test_backend_audit(TestBackend *tb, const char *action,
                        const char *subject, const char *reason);
guint test_backend_n_vms(TestBackend *tb);

/* A running server on a fresh socket in a fresh temporary directory. */
typedef struct {
    char *dir;              /* temp dir (removed by teardown) */
    char *socket_path;      /* dir/run/api.sock */
    TestBackend *backend;
    TvdApiServer *server;
} ApiFixture;

void api_fixture_setup(ApiFixture *f, gconstpointer data);
void api_fixture_teardown(ApiFixture *f, gconstpointer data);

/*
 * Runs @fn(@data) in a worker thread while this thread iterates the
 * default main context (where the server lives) until @fn returns.
 */
void run_client(GThreadFunc fn, gpointer data);

/* One HTTP request through a libsoup session over the unix socket. */
typedef struct {
    guint status;
    GBytes *body;
    char *content_type;
    char *allow;            /* Allow header, if any */
    GError *error;          /* transport error (no status) */
} HttpReply;

void http_reply_clear(HttpReply *r);
/* @ctype NULL = application/json when @body is set. */
void http_request(const char *socket_path, const char *method,
                  const char *path, const char *ctype, const void *body,
                  gsize len, HttpReply *reply);
/* Parses the reply body as a JSON object (asserts it is one). */
JsonNode *http_reply_json(const HttpReply *r);
/* Asserts an error reply: @status and the error document's @code, and
 * that the message starts with @prefix (NULL: any). */
void assert_api_error(const HttpReply *r, guint status, const char *code,
                      const char *prefix);

/* Raw bytes over the socket (for requests libsoup will not send); answers
 * everything the server sent until it closed or @timeout_ms passed. */
char *raw_request(const char *socket_path, const char *request, gsize len,
                  guint timeout_ms);

/* Runs the built tvdctl (path from $TVDCTL) with --socket first. */
typedef struct {
    int exit_code;
    char *out;
    char *err;
} CtlResult;

void ctl_result_clear(CtlResult *r);
/* NULL-terminated arguments after "tvdctl --socket PATH". @socket_path
 * NULL: no --socket. Skips the test (returns FALSE) without $TVDCTL. */
gboolean run_tvdctl(const char *socket_path, CtlResult *r, ...)
    G_GNUC_NULL_TERMINATED;
/* As run_tvdctl() without --socket, with $TVD_SOCKET set to @env_socket. */
gboolean run_tvdctl_env(const char *env_socket, CtlResult *r, ...)
    G_GNUC_NULL_TERMINATED;
/* Parses r->out as one JSON document (asserts). */
JsonNode *ctl_json(const CtlResult *r);

/* A JSON object member as a string / int (asserts it exists). */
const char *jstr(JsonNode *obj, const char *member);
gint64 jint(JsonNode *obj, const char *member);

G_END_DECLS

#endif
