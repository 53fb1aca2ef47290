/*
 * tvdctl: option parsing, the HTTP client over the supervisor's unix socket
 * (libsoup-3), error and exit-code mapping, and output helpers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"
#include "api.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>


/* ---- Options ----------------------------------------------------------- */

gboolean tvdctl_parse(TvdctlGlobal *g, const char *cmd, const char *synopsis,
                      const char *summary, const GOptionEntry *entries,
                      int *argc, char ***argv)
{
    g_autofree char *socket = NULL, *url = NULL, *cert = NULL;
    g_autofree char *key = NULL, *cacert = NULL;
    const GOptionEntry common[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &g->json,
          "Print the API's JSON document", NULL },
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &socket,
          "Supervisor socket (default $TVD_SOCKET or "
          TVDCTL_DEFAULT_SOCKET ")", "PATH" },
        { "url", 0, 0, G_OPTION_ARG_STRING, &url,
          "The supervisor's TCP listener instead (mutual TLS; $TVD_URL)",
          "https://HOST:PORT" },
        { "tls-cert", 0, 0, G_OPTION_ARG_FILENAME, &cert,
          "Client certificate for --url (PEM)", "FILE" },
        { "tls-key", 0, 0, G_OPTION_ARG_FILENAME, &key,
          "Its private key (PEM)", "FILE" },
        { "tls-ca", 0, 0, G_OPTION_ARG_FILENAME, &cacert,
          "CA of the server's certificate (default: the system's)", "FILE" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(synopsis);
    g_autoptr(GError) error = NULL;
    g_autofree char *prg = g_strconcat("tvdctl ", cmd, NULL);

    g_set_prgname(prg);
    g_option_context_set_summary(ctx, summary);
    if (entries) {
        g_option_context_add_main_entries(ctx, entries, NULL);
    }
    g_option_context_add_main_entries(ctx, common, NULL);
    if (!g_option_context_parse(ctx, argc, argv, &error)) {
        g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);

        fprintf(stderr, "tvdctl %s: %s\n", cmd, error->message);
        if (g_error_matches(error, G_OPTION_ERROR,
                            G_OPTION_ERROR_UNKNOWN_OPTION)) {
            /* "-web3" meant as a name reads as an option: say why. */
            fprintf(stderr, "tvdctl %s: an argument that starts with '-' is "
                    "read as an option; names never start with '-' "
                    "([A-Za-z0-9][A-Za-z0-9._-]{0,63}), and arguments after "
                    "'--' are never options\n", cmd);
        }
        fprintf(stderr, "\n%s", help);
        return FALSE;
    }
    /* Arguments after "--" are positional; drop the "--" itself. */
    for (int i = 1; i < *argc; i++) {
        if (strcmp((*argv)[i], "--") == 0) {
            memmove(&(*argv)[i], &(*argv)[i + 1],
                    (size_t)(*argc - i) * sizeof(char *));
            (*argc)--;
            break;
        }
    }
#define TAKE(field, var)                                                   \
    if (var) {                                                             \
        g_free(g->field);                                                  \
        g->field = g_steal_pointer(&var);                                  \
    }
    TAKE(socket_path, socket)
    TAKE(url, url)
    TAKE(cert, cert)
    TAKE(key, key)
    TAKE(cacert, cacert)
#undef TAKE
    return TRUE;
}

int tvdctl_fail(int code, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    fprintf(stderr, "tvdctl: %s\n", msg);
    return code;
}

gboolean tvdctl_one_name(int argc, char **argv, const char *what,
                         const char **name)
{
    if (argc != 2) {
        fprintf(stderr, "tvdctl: expected exactly one %s NAME "
                        "(see --help)\n", what);
        return FALSE;
    }
    if (!tvd_api_name_is_valid(argv[1])) {
        fprintf(stderr, "tvdctl: '%s' is not a valid %s name "
                        "([A-Za-z0-9][A-Za-z0-9._-]{0,63})\n", argv[1], what);
        return FALSE;
    }
    *name = argv[1];
    return TRUE;
}

/* ---- HTTP ------------------------------------------------------------- */

int tvdctl_exit_of_status(guint status)
{
    if (status >= 200 && status < 300) {
        return TVDCTL_EXIT_OK;
    }
    switch (status) {
    case 400:
    case 411:
    case 413:
    case 415:
        return TVDCTL_EXIT_INVALID;
    case 403:
        return TVDCTL_EXIT_FORBIDDEN;
    case 404:
        return TVDCTL_EXIT_NOT_FOUND;
    case 409:
        return TVDCTL_EXIT_CONFLICT;
    case 501:
        return TVDCTL_EXIT_UNSUPPORTED;
    default:
        return TVDCTL_EXIT_SERVER;
    }
}

void tvdctl_print_error_json(const char *code, const char *message)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "code");
    json_builder_add_string_value(b, code);
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, message);
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    tvdctl_print_json(root);
}

/* Replaces control characters so that nothing the server relays (e.g. a
 * reason a guest influenced) can drive the terminal. */
static char *sanitize(const char *s)
{
    char *out = g_strdup(s);

    for (char *p = out; *p; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    return out;
}

typedef struct {
    gboolean finished;
    GBytes *body;
    GError *error;
} SendDone;

static void send_done(GObject *source, GAsyncResult *res, gpointer data)
{
    SendDone *done = data;

    done->body = soup_session_send_and_read_finish(SOUP_SESSION(source), res,
                                                   &done->error);
    done->finished = TRUE;
}

/* A session for the unix socket, or for --url with mutual TLS. */
static SoupSession *make_session(TvdctlGlobal *g, char **base, GError **error)
{
    SoupSession *session;

    if (!g->url) {
        g_autoptr(GSocketAddress) addr =
            g_unix_socket_address_new(g->socket_path);

        *base = g_strdup("http://localhost");
        session = g_object_new(SOUP_TYPE_SESSION, "remote-connectable", addr,
                               "timeout", 600, "user-agent", "tvdctl", NULL);
    } else {
        g_autoptr(GUri) uri = g_uri_parse(g->url, G_URI_FLAGS_NONE, NULL);

        if (!uri || g_strcmp0(g_uri_get_scheme(uri), "https") != 0 ||
            !g_uri_get_host(uri) ||
            (g_uri_get_path(uri)[0] && strcmp(g_uri_get_path(uri), "/"))) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                        "--url: '%s' is not https://HOST:PORT (the TCP "
                        "listener speaks mutual TLS only)", g->url);
            return NULL;
        }
        *base = g_strdup(g->url);
        if (g_str_has_suffix(*base, "/")) {
            (*base)[strlen(*base) - 1] = '\0';
        }
        session = g_object_new(SOUP_TYPE_SESSION, "timeout", 600,
                               "user-agent", "tvdctl", NULL);
        if (g->cacert) {
            g_autoptr(GTlsDatabase) db = NULL;
            g_autofree char *abs = g_canonicalize_filename(g->cacert, NULL);

            db = g_tls_file_database_new(abs, error);
            if (!db) {
                g_object_unref(session);
                g_prefix_error(error, "--tls-ca: ");
                return NULL;
            }
            soup_session_set_tls_database(session, db);
        }
    }
    /* Never ask a proxy resolver (libproxy) about the supervisor. */
    soup_session_set_proxy_resolver(session, NULL);
    return session;
}

/*
 * Sends one request; *status and *resp on an answer. Returns OK, or
 * CONNECT / SERVER / LOCAL after printing why. Asynchronous on a private
 * context: libsoup 3.2 answers a server's client-certificate request only
 * on the session's context.
 */
static int send_request(TvdctlGlobal *g, const char *method, const char *path,
                        JsonNode *body, guint *status, GBytes **resp,
                        char **content_type)
{
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(SoupSession) session = NULL;
    g_autoptr(SoupMessage) msg = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *base = NULL, *url = NULL;
    const char *where = g->url ? g->url : g->socket_path;
    SendDone done = { 0 };
    const char *ct;
    int rc = TVDCTL_EXIT_OK;

    g_main_context_push_thread_default(ctx);
    session = make_session(g, &base, &error);
    if (!session) {
        rc = tvdctl_fail(TVDCTL_EXIT_USAGE, "%s", error->message);
        goto out;
    }
    url = g_strconcat(base, path, NULL);
    msg = soup_message_new(method, url);
    if (!msg) {
        rc = tvdctl_fail(TVDCTL_EXIT_USAGE, "bad request URL %s", url);
        goto out;
    }
    if (g->url && (g->cert || g->key)) {
        g_autoptr(GTlsCertificate) cert = NULL;

        if (!g->cert || !g->key) {
            rc = tvdctl_fail(TVDCTL_EXIT_USAGE,
                             "--tls-cert and --tls-key go together");
            goto out;
        }
        cert = g_tls_certificate_new_from_files(g->cert, g->key, &error);
        if (!cert) {
            rc = tvdctl_fail(TVDCTL_EXIT_LOCAL, "--tls-cert/--tls-key: %s",
                             error->message);
            goto out;
        }
        soup_message_set_tls_client_certificate(msg, cert);
    }
    if (body) {
        char *text = json_to_string(body, FALSE);
        g_autoptr(GBytes) bytes = g_bytes_new_take(text, strlen(text));

        soup_message_set_request_body_from_bytes(msg, "application/json",
                                                 bytes);
    }
    soup_session_send_and_read_async(session, msg, G_PRIORITY_DEFAULT, NULL,
                                     send_done, &done);
    while (!done.finished) {
        g_main_context_iteration(ctx, TRUE);
    }
    *resp = done.body;
    if (!*resp) {
        gboolean conn = done.error->domain == G_IO_ERROR ||
                        done.error->domain == G_RESOLVER_ERROR ||
                        done.error->domain == G_TLS_ERROR;
        /* Say which setting chose the address, and the likely cause. */
        const char *hint =
            !conn ? "" :
            g->url ? "; is tvd-supervisor running with its TCP listener? "
                     "(the address comes from --url or $TVD_URL)" :
            "; is tvd-supervisor running? (the socket comes from --socket "
            "PATH, else $TVD_SOCKET, else " TVDCTL_DEFAULT_SOCKET ")";
        g_autofree char *m =
            g_strdup_printf("%s %s: %s%s", conn ? "cannot connect to the "
                            "supervisor at" : "request to", where,
                            done.error->message, hint);

        g_clear_error(&done.error);
        if (g->json) {
            tvdctl_print_error_json(conn ? "connection_failed"
                                         : "bad_response", m);
        }
        rc = tvdctl_fail(conn ? TVDCTL_EXIT_CONNECT : TVDCTL_EXIT_SERVER,
                         "%s", m);
        goto out;
    }
    *status = soup_message_get_status(msg);
    ct = soup_message_headers_get_content_type(
        soup_message_get_response_headers(msg), NULL);
    *content_type = g_strdup(ct ? ct : "");
out:
    g_clear_object(&msg);
    g_clear_object(&session);
    /* Let the session's pending sources finish on our context. */
    while (g_main_context_iteration(ctx, FALSE)) {
    }
    g_main_context_pop_thread_default(ctx);
    return rc;
}

/* Reports a non-2xx answer: the error document's code and message. */
static int report_error(TvdctlGlobal *g, guint status, GBytes *resp,
                        const char *content_type)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    gsize len;
    const char *data = g_bytes_get_data(resp, &len);
    const char *code = NULL, *message = NULL;
    JsonNode *root = NULL;
    int rc = tvdctl_exit_of_status(status);

    if (strcmp(content_type, "application/json") == 0 &&
        json_parser_load_from_data(parser, data ? data : "", (gssize)len,
                                   NULL)) {
        root = json_parser_get_root(parser);
    }
    if (root && JSON_NODE_HOLDS_OBJECT(root)) {
        JsonObject *o = json_node_get_object(root);
        JsonNode *e = json_object_get_member(o, "error");

        if (e && JSON_NODE_HOLDS_OBJECT(e)) {
            JsonObject *eo = json_node_get_object(e);
            JsonNode *c = json_object_get_member(eo, "code");
            JsonNode *m = json_object_get_member(eo, "message");

            if (c && json_node_get_value_type(c) == G_TYPE_STRING) {
                code = json_node_get_string(c);
            }
            if (m && json_node_get_value_type(m) == G_TYPE_STRING) {
                message = json_node_get_string(m);
            }
        }
    }
    if (g->json) {
        if (code) {
            tvdctl_print_json(root);
        } else {
            g_autofree char *m = g_strdup_printf("HTTP %u", status);

            tvdctl_print_error_json("bad_response", m);
        }
    }
    if (code && message) {
        g_autofree char *clean = sanitize(message);

        return tvdctl_fail(rc, "%s (%s, HTTP %u)", clean, code, status);
    }
    return tvdctl_fail(rc, "the supervisor answered HTTP %u", status);
}

int tvdctl_call(TvdctlGlobal *g, const char *method, const char *path,
                JsonNode *body, JsonNode **result)
{
    g_autoptr(GBytes) resp = NULL;
    g_autofree char *ct = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) error = NULL;
    guint status = 0;
    gsize len;
    const char *data;
    JsonNode *root;
    int rc;

    rc = send_request(g, method, path, body, &status, &resp, &ct);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    if (status < 200 || status >= 300) {
        return report_error(g, status, resp, ct);
    }
    data = g_bytes_get_data(resp, &len);
    if (strcmp(ct, "application/json") != 0 ||
        !json_parser_load_from_data(parser, data ? data : "", (gssize)len,
                                    &error) ||
        !(root = json_parser_get_root(parser)) ||
        !JSON_NODE_HOLDS_OBJECT(root)) {
        if (g->json) {
            tvdctl_print_error_json("bad_response", "not a JSON object");
        }
        return tvdctl_fail(TVDCTL_EXIT_SERVER,
                           "the supervisor's answer is not a JSON object%s%s",
                           error ? ": " : "", error ? error->message : "");
    }
    if (result) {
        *result = json_node_copy(root);
    }
    return TVDCTL_EXIT_OK;
}

int tvdctl_call_text(TvdctlGlobal *g, const char *path, GBytes **text)
{
    g_autofree char *ct = NULL;
    guint status = 0;
    int rc;

    rc = send_request(g, "GET", path, NULL, &status, text, &ct);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    if (status < 200 || status >= 300) {
        rc = report_error(g, status, *text, ct);
        g_clear_pointer(text, g_bytes_unref);
    }
    return rc;
}

/* ---- Output ----------------------------------------------------------- */

void tvdctl_print_json(JsonNode *node)
{
    g_autofree char *text = json_to_string(node, FALSE);

    printf("%s\n", text);
}

char *tvdctl_member_text(JsonObject *obj, const char *member)
{
    JsonNode *n = obj ? json_object_get_member(obj, member) : NULL;
    g_autofree char *raw = NULL;

    if (!n || JSON_NODE_HOLDS_NULL(n)) {
        return g_strdup("-");
    }
    if (!JSON_NODE_HOLDS_VALUE(n)) {
        raw = json_to_string(n, FALSE);
    } else {
        switch (json_node_get_value_type(n)) {
        case G_TYPE_STRING:
            raw = g_strdup(json_node_get_string(n));
            break;
        case G_TYPE_INT64:
            raw = g_strdup_printf("%" G_GINT64_FORMAT, json_node_get_int(n));
            break;
        case G_TYPE_BOOLEAN:
            raw = g_strdup(json_node_get_boolean(n) ? "yes" : "no");
            break;
        default:
            raw = json_to_string(n, FALSE);
        }
    }
    return sanitize(raw);
}

void tvdctl_print_object(JsonObject *obj)
{
    g_autoptr(GList) members = json_object_get_members(obj);
    guint width = 0;

    for (GList *l = members; l; l = l->next) {
        width = MAX(width, (guint)strlen(l->data));
    }
    for (GList *l = members; l; l = l->next) {
        g_autofree char *v = tvdctl_member_text(obj, l->data);
        g_autofree char *clean = sanitize(l->data);
        g_autofree char *k = g_strconcat(clean, ":", NULL);

        printf("%-*s %s\n", (int)width + 1, k, v);
    }
}

void tvdctl_print_table(JsonArray *array, const TvdctlColumn *columns)
{
    guint ncol = 0, nrow = array ? json_array_get_length(array) : 0;
    g_autofree guint *width = NULL;
    g_autoptr(GPtrArray) cells = g_ptr_array_new_with_free_func(g_free);

    while (columns[ncol].header) {
        ncol++;
    }
    width = g_new0(guint, ncol);
    for (guint c = 0; c < ncol; c++) {
        width[c] = (guint)strlen(columns[c].header);
    }
    for (guint r = 0; r < nrow; r++) {
        JsonNode *n = json_array_get_element(array, r);
        JsonObject *o = JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n)
                                                  : NULL;

        for (guint c = 0; c < ncol; c++) {
            char *t = tvdctl_member_text(o, columns[c].member);

            width[c] = MAX(width[c], (guint)g_utf8_strlen(t, -1));
            g_ptr_array_add(cells, t);
        }
    }
    for (guint c = 0; c < ncol; c++) {
        if (c + 1 < ncol) {
            printf("%-*s  ", (int)width[c], columns[c].header);
        } else {
            printf("%s\n", columns[c].header);
        }
    }
    for (guint r = 0; r < nrow; r++) {
        for (guint c = 0; c < ncol; c++) {
            const char *t = cells->pdata[r * ncol + c];

            if (c + 1 < ncol) {
                /* Pad by characters, not bytes. */
                guint pad = width[c] - (guint)g_utf8_strlen(t, -1);

                printf("%s%*s  ", t, (int)pad, "");
            } else {
                printf("%s\n", t);
            }
        }
    }
}

int tvdctl_show(TvdctlGlobal *g, const char *method, const char *path,
                JsonNode *body)
{
    g_autoptr(JsonNode) doc = NULL;
    int rc = tvdctl_call(g, method, path, body, &doc);

    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    if (g->json) {
        tvdctl_print_json(doc);
    } else {
        tvdctl_print_object(json_node_get_object(doc));
    }
    return TVDCTL_EXIT_OK;
}
