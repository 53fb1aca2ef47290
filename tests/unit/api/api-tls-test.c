/*
 * The API's TCP listener with mutual TLS: throwaway CAs and certificates
 * made with the openssl command; a client with a certificate from the
 * trusted CA is served, one without a certificate or with a certificate
 * from another CA is refused in the handshake.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api-test"

#include "test-backend.h"

#include <string.h>

#include <glib/gstdio.h>

typedef struct {
    char *dir;
    TestBackend *backend;
    TvdApiServer *server;
    char *socket_path;
    guint16 port;
} TlsFixture;

static gboolean have_openssl(void)
{
    g_autofree char *path = g_find_program_in_path("openssl");

    return path != NULL;
}

static gboolean openssl(const char *dir, const char *const *args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status;

    g_ptr_array_add(argv, (gpointer)"openssl");
    for (; *args; args++) {
        g_ptr_array_add(argv, (gpointer)*args);
    }
    g_ptr_array_add(argv, NULL);
    if (!g_spawn_sync(dir, (char **)argv->pdata, NULL, G_SPAWN_SEARCH_PATH |
                      G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err,
                      &status, &error)) {
        g_test_message("openssl: %s", error->message);
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, &error)) {
        g_test_message("openssl %s: %s\n%s", args[-1], error->message, err);
        return FALSE;
    }
    return TRUE;
}

/* CA "name": name-ca.key/.pem; leaf "leaf" signed by it with @ext. */
static gboolean make_ca(const char *dir, const char *name)
{
    g_autofree char *key = g_strdup_printf("%s-ca.key", name);
    g_autofree char *pem = g_strdup_printf("%s-ca.pem", name);
    g_autofree char *subj = g_strdup_printf("/CN=tvd test %s CA", name);
    const char *args[] = {
        "req", "-x509", "-newkey", "ec", "-pkeyopt",
        "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", pem,
        "-days", "2", "-subj", subj,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", NULL
    };

    return openssl(dir, args);
}

static gboolean make_leaf(const char *dir, const char *ca, const char *name,
                          const char *ext)
{
    g_autofree char *key = g_strdup_printf("%s.key", name);
    g_autofree char *csr = g_strdup_printf("%s.csr", name);
    g_autofree char *pem = g_strdup_printf("%s.pem", name);
    g_autofree char *extfile = g_strdup_printf("%s/%s.ext", dir, name);
    g_autofree char *ca_key = g_strdup_printf("%s-ca.key", ca);
    g_autofree char *ca_pem = g_strdup_printf("%s-ca.pem", ca);
    g_autofree char *subj = g_strdup_printf("/CN=%s", name);
    const char *req[] = {
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", key, "-out", csr, "-subj", subj, NULL
    };
    const char *sign[] = {
        "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
        "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", extfile,
        NULL
    };

    return g_file_set_contents(extfile, ext, -1, NULL) &&
           openssl(dir, req) && openssl(dir, sign);
}

static void tls_setup(TlsFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *server_pem = NULL, *server_key = NULL, *ca = NULL;
    g_autoptr(GTlsCertificate) cert = NULL;
    g_autoptr(GTlsDatabase) db = NULL;
    g_autoptr(GInetAddress) lo = NULL;
    g_autoptr(GSocketAddress) addr = NULL;
    TvdApiServerConfig config = { 0 };

    f->dir = g_dir_make_tmp("tvd-api-tls-XXXXXX", &error);
    g_assert_no_error(error);
    if (!have_openssl()) {
        return;
    }
    if (!g_tls_backend_supports_tls(g_tls_backend_get_default())) {
        return;
    }
    g_assert_true(make_ca(f->dir, "good"));
    g_assert_true(make_ca(f->dir, "rogue"));
    g_assert_true(make_leaf(f->dir, "good", "server",
                            "basicConstraints=CA:FALSE\n"
                            "extendedKeyUsage=serverAuth\n"
                            "subjectAltName=IP:127.0.0.1,DNS:localhost\n"));
    g_assert_true(make_leaf(f->dir, "good", "admin",
                            "basicConstraints=CA:FALSE\n"
                            "extendedKeyUsage=clientAuth\n"));
    g_assert_true(make_leaf(f->dir, "rogue", "intruder",
                            "basicConstraints=CA:FALSE\n"
                            "extendedKeyUsage=clientAuth\n"));

    server_pem = g_build_filename(f->dir, "server.pem", NULL);
    server_key = g_build_filename(f->dir, "server.key", NULL);
    ca = g_build_filename(f->dir, "good-ca.pem", NULL);
    cert = g_tls_certificate_new_from_files(server_pem, server_key, &error);
    g_assert_no_error(error);
    db = g_tls_file_database_new(ca, &error);
    g_assert_no_error(error);
    lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    addr = g_inet_socket_address_new(lo, 0);

    f->backend = test_backend_new();
    f->socket_path = g_build_filename(f->dir, "api.sock", NULL);
    config.socket_path = f->socket_path;
    config.tcp_address = G_INET_SOCKET_ADDRESS(addr);
    config.tls_certificate = cert;
    config.tls_client_ca = db;
    f->server = tvd_api_server_new(&config, test_backend_vtable(), f->backend,
                                   &error);
    g_assert_no_error(error);
    f->port = tvd_api_server_get_tcp_port(f->server);
    g_assert_cmpuint(f->port, !=, 0);
}

static void tls_teardown(TlsFixture *f, gconstpointer data)
{
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    const char *e;

    tvd_api_server_free(f->server);
    test_backend_free(f->backend);
    while (d && (e = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(f->dir, e, NULL);

        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->socket_path);
}

typedef struct {
    TlsFixture *f;
    const char *client;     /* "admin", "intruder" or NULL */
    guint status;
    GError *error;
} TlsJob;

typedef struct {
    gboolean finished;
    GBytes *body;
    GError *error;
} TlsDone;

static void tls_done(GObject *source, GAsyncResult *res, gpointer data)
{
    TlsDone *done = data;

    done->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res,
                                                   &done->error);
    done->finished = TRUE;
}

static gpointer tls_job(gpointer p)
{
    TlsJob *j = p;
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autofree char *ca = g_build_filename(j->f->dir, "good-ca.pem", NULL);
    g_autofree char *url = g_strdup_printf("https://127.0.0.1:%u/v1/health",
                                           j->f->port);
    g_autoptr(GTlsDatabase) db = NULL;
    g_autoptr(SoupSession) session = NULL;
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GBytes) body = NULL;
    g_autoptr(GError) error = NULL;
    TlsDone done = { 0 };

    g_main_context_push_thread_default(ctx);
    db = g_tls_file_database_new(ca, &error);
    g_assert_no_error(error);
    session = g_object_new(SOUP_TYPE_SESSION, "tls-database", db, "timeout",
                           30, NULL);
    /* No proxies for 127.0.0.1 (and no libproxy, which throws C++
     * exceptions that a sanitized C binary cannot catch). */
    soup_session_set_proxy_resolver(session, NULL);
    msg = soup_message_new("GET", url);
    if (j->client) {
        g_autofree char *pem = g_strdup_printf("%s/%s.pem", j->f->dir,
                                               j->client);
        g_autofree char *key = g_strdup_printf("%s/%s.key", j->f->dir,
                                               j->client);
        g_autoptr(GTlsCertificate) cert =
            g_tls_certificate_new_from_files(pem, key, &error);

        g_assert_no_error(error);
        soup_message_set_tls_client_certificate(msg, cert);
    }
    /* Asynchronously: libsoup 3.2 answers the server's certificate request
     * on the session's context, which a synchronous send does not run. */
    soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL,
                                     tls_done, &done);
    while (!done.finished) {
        g_main_context_iteration(ctx, TRUE);
    }
    body = done.body;
    j->error = done.error;
    j->status = body ? soup_message_get_status(msg) : 0;
    g_clear_object(&msg);
    g_clear_object(&session);
    g_main_context_pop_thread_default(ctx);
    return NULL;
}

static gboolean skip_without_tls(TlsFixture *f)
{
    if (!f->server) {
        g_test_skip(!have_openssl()
                        ? "no openssl command"
                        : "GIO has no TLS backend (glib-networking)");
        return TRUE;
    }
    return FALSE;
}

static void test_client_cert_accepted(TlsFixture *f, gconstpointer data)
{
    TlsJob j = { f, "admin", 0, NULL };

    if (skip_without_tls(f)) {
        return;
    }
    run_client(tls_job, &j);
    g_assert_no_error(j.error);
    g_assert_cmpuint(j.status, ==, 200);
}

static void test_no_client_cert(TlsFixture *f, gconstpointer data)
{
    TlsJob j = { f, NULL, 0, NULL };

    if (skip_without_tls(f)) {
        return;
    }
    run_client(tls_job, &j);
    g_test_message("refused with: %s", j.error ? j.error->message : "-");
    g_assert_nonnull(j.error);
    g_assert_cmpuint(j.status, ==, 0);
    g_clear_error(&j.error);
}

static void test_rogue_client_cert(TlsFixture *f, gconstpointer data)
{
    TlsJob j = { f, "intruder", 0, NULL };

    if (skip_without_tls(f)) {
        return;
    }
    run_client(tls_job, &j);
    g_test_message("refused with: %s", j.error ? j.error->message : "-");
    g_assert_nonnull(j.error);
    g_assert_cmpuint(j.status, ==, 0);
    g_clear_error(&j.error);
}

static void test_unix_alongside(TlsFixture *f, gconstpointer data)
{
    HttpReply r;

    if (skip_without_tls(f)) {
        return;
    }
    /* The unix socket needs no certificate: its permissions guard it. */
    http_request(f->socket_path, "GET", "/v1/health", NULL, NULL, 0, &r);
    g_assert_no_error(r.error);
    g_assert_cmpuint(r.status, ==, 200);
    http_reply_clear(&r);
}

static void test_tvdctl_url(TlsFixture *f, gconstpointer data)
{
    g_autofree char *url = NULL, *ca = NULL, *pem = NULL, *key = NULL;
    g_autofree char *rogue = NULL, *rogue_key = NULL;
    CtlResult r;

    if (skip_without_tls(f)) {
        return;
    }
    url = g_strdup_printf("https://127.0.0.1:%u", f->port);
    ca = g_build_filename(f->dir, "good-ca.pem", NULL);
    pem = g_build_filename(f->dir, "admin.pem", NULL);
    key = g_build_filename(f->dir, "admin.key", NULL);
    rogue = g_build_filename(f->dir, "intruder.pem", NULL);
    rogue_key = g_build_filename(f->dir, "intruder.key", NULL);

    if (!run_tvdctl(NULL, &r, "--url", url, "--tls-ca", ca, "--tls-cert",
                    pem, "--tls-key", key, "health", "--json", NULL)) {
        return;
    }
    g_assert_cmpint(r.exit_code, ==, 0);
    g_assert_nonnull(strstr(r.out, "\"status\":\"ok\""));
    ctl_result_clear(&r);

    /* The same, with the options after the verb. */
    run_tvdctl(NULL, &r, "vm", "list", "--url", url, "--tls-ca", ca,
               "--tls-cert", pem, "--tls-key", key, NULL);
    g_assert_cmpint(r.exit_code, ==, 0);
    g_assert_true(g_str_has_prefix(r.out, "NAME"));
    ctl_result_clear(&r);

    /* No client certificate, or one of another CA: connection refused. */
    run_tvdctl(NULL, &r, "--url", url, "--tls-ca", ca, "health", "--json",
               NULL);
    g_assert_cmpint(r.exit_code, ==, 5);
    g_assert_nonnull(strstr(r.out, "connection_failed"));
    ctl_result_clear(&r);
    run_tvdctl(NULL, &r, "--url", url, "--tls-ca", ca, "--tls-cert", rogue,
               "--tls-key", rogue_key, "health", NULL);
    g_assert_cmpint(r.exit_code, ==, 5);
    ctl_result_clear(&r);

    /* Plain HTTP over TCP does not exist. */
    run_tvdctl(NULL, &r, "--url", "http://127.0.0.1:1", "health", NULL);
    g_assert_cmpint(r.exit_code, ==, 1);
    g_assert_nonnull(strstr(r.err, "mutual TLS only"));
    ctl_result_clear(&r);
}

int main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn)                                                        \
    g_test_add("/api/tls/" path, TlsFixture, NULL, tls_setup, fn,            \
               tls_teardown)
    ADD("client-cert-accepted", test_client_cert_accepted);
    ADD("no-client-cert-refused", test_no_client_cert);
    ADD("rogue-client-cert-refused", test_rogue_client_cert);
    ADD("unix-alongside", test_unix_alongside);
    ADD("tvdctl-url", test_tvdctl_url);
    rc = g_test_run();
    /*
     * Let GLib's pool threads (they ran TLS handshakes, so they hold
     * dynamic TLS of the dlopen()ed GnuTLS module) exit before the leak
     * checker runs: LeakSanitizer of clang 14 crashes on the DTLS of live
     * threads with glibc >= 2.35. A pool thread leaves its pool half a
     * second after its last task and, with no unused threads allowed, then
     * exits. Not a timing assumption of any test.
     */
    g_thread_pool_set_max_unused_threads(0);
    g_usleep(700 * 1000);
    g_thread_pool_stop_unused_threads();
    g_usleep(50 * 1000);
    return rc;
}
