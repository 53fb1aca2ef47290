/*
 * tvd API server: listening, routing, limits, error mapping, access log and
 * the API's own metrics. The operations are the backend's. See api.h and
 * docs/api.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api"

#include "api.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>

#define JSON_TYPE "application/json"
#define METRICS_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct TvdApiServer {
    SoupServer *soup;
    const TvdApiBackend *backend;
    void *ctx;
    char *socket_path;
    size_t max_body;
    guint16 tcp_port;
    /* "route code" -> guint64 count, and request latencies. */
    GHashTable *requests;
    TvdPromHistogram latency;
};

/* One request as the route handlers see it. */
typedef struct {
    const char *name;       /* NAME segment of the path, or NULL */
    GHashTable *query;      /* decoded query, may be NULL */
    const char *body;
    size_t body_len;
} Request;

typedef gboolean (*RouteFn)(TvdApiServer *s, const Request *req,
                            JsonBuilder *out, GError **error);

typedef struct {
    const char *method;
    const char *pattern;        /* '*' is a NAME segment */
    const char *id;             /* route name in logs and metrics */
    RouteFn fn;                 /* NULL: /metrics */
    guint ok_status;
    const char *const *query;   /* allowed query parameters */
    gboolean big_body;          /* may carry a policy */
} Route;

/* ---- Route handlers -------------------------------------------------------- */

#define NOT_IMPLEMENTED(s, op)                                             \
    do {                                                                   \
        if (!(s)->backend->op) {                                           \
            g_set_error(error, TVD_API_ERROR,                              \
                        TVD_API_ERROR_NOT_IMPLEMENTED,                     \
                        "%s: not implemented by this supervisor", #op);    \
            return FALSE;                                                  \
        }                                                                  \
    } while (0)

static gboolean r_health(TvdApiServer *s, const Request *req,
                         JsonBuilder *out, GError **error)
{
    (void)req;
    if (!s->backend->health) {
        /* Answering at all is the health of the API itself. */
        json_builder_begin_object(out);
        json_builder_set_member_name(out, "status");
        json_builder_add_string_value(out, "ok");
        json_builder_set_member_name(out, "api");
        json_builder_add_string_value(out, TVD_API_VERSION);
        json_builder_end_object(out);
        return TRUE;
    }
    return s->backend->health(s->ctx, out, error);
}

static gboolean r_vm_list(TvdApiServer *s, const Request *req,
                          JsonBuilder *out, GError **error)
{
    (void)req;
    NOT_IMPLEMENTED(s, vm_list);
    return s->backend->vm_list(s->ctx, out, error);
}

static gboolean r_vm_start(TvdApiServer *s, const Request *req,
                           JsonBuilder *out, GError **error)
{
    g_autoptr(TvdApiVmSpec) spec = NULL;

    NOT_IMPLEMENTED(s, vm_start);
    spec = tvd_api_decode_vm_spec(req->body, req->body_len, error);
    return spec && s->backend->vm_start(s->ctx, spec, out, error);
}

static gboolean r_vm_show(TvdApiServer *s, const Request *req,
                          JsonBuilder *out, GError **error)
{
    NOT_IMPLEMENTED(s, vm_show);
    return s->backend->vm_show(s->ctx, req->name, out, error);
}

static gboolean r_vm_stop(TvdApiServer *s, const Request *req,
                          JsonBuilder *out, GError **error)
{
    NOT_IMPLEMENTED(s, vm_stop);
    return s->backend->vm_stop(s->ctx, req->name, out, error);
}

static gboolean r_vm_revoke(TvdApiServer *s, const Request *req,
                            JsonBuilder *out, GError **error)
{
    g_autofree char *reason = NULL;

    NOT_IMPLEMENTED(s, vm_revoke);
    return tvd_api_decode_revoke(req->body, req->body_len, &reason, error) &&
           s->backend->vm_revoke(s->ctx, req->name, reason, out, error);
}

static gboolean r_vm_readmit(TvdApiServer *s, const Request *req,
                             JsonBuilder *out, GError **error)
{
    NOT_IMPLEMENTED(s, vm_readmit);
    return s->backend->vm_readmit(s->ctx, req->name, out, error);
}

static gboolean r_vm_register_ek(TvdApiServer *s, const Request *req,
                                 JsonBuilder *out, GError **error)
{
    g_autoptr(GBytes) cert = NULL;

    NOT_IMPLEMENTED(s, vm_register_ek);
    cert = tvd_api_decode_register_ek(req->body, req->body_len, error);
    return cert && s->backend->vm_register_ek(s->ctx, req->name, cert, out,
                                              error);
}

static gboolean r_domain_list(TvdApiServer *s, const Request *req,
                              JsonBuilder *out, GError **error)
{
    (void)req;
    NOT_IMPLEMENTED(s, domain_list);
    return s->backend->domain_list(s->ctx, out, error);
}

static gboolean r_domain_create(TvdApiServer *s, const Request *req,
                                JsonBuilder *out, GError **error)
{
    g_autoptr(TvdApiDomainSpec) spec = NULL;

    NOT_IMPLEMENTED(s, domain_create);
    spec = tvd_api_decode_domain_spec(req->body, req->body_len, TRUE, error);
    return spec && s->backend->domain_create(s->ctx, spec, out, error);
}

static gboolean r_domain_show(TvdApiServer *s, const Request *req,
                              JsonBuilder *out, GError **error)
{
    NOT_IMPLEMENTED(s, domain_show);
    return s->backend->domain_show(s->ctx, req->name, out, error);
}

static gboolean r_domain_update(TvdApiServer *s, const Request *req,
                                JsonBuilder *out, GError **error)
{
    g_autoptr(TvdApiDomainSpec) spec = NULL;

    NOT_IMPLEMENTED(s, domain_update);
    spec = tvd_api_decode_domain_spec(req->body, req->body_len, FALSE, error);
    if (!spec) {
        return FALSE;
    }
    if (spec->name && strcmp(spec->name, req->name) != 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "name: \"%s\" does not match the URL's \"%s\"",
                    spec->name, req->name);
        return FALSE;
    }
    return s->backend->domain_update(s->ctx, req->name, spec, out, error);
}

static gboolean r_audit_list(TvdApiServer *s, const Request *req,
                             JsonBuilder *out, GError **error)
{
    const char *v;
    guint64 since = 0, limit = TVD_API_AUDIT_DEFAULT_LIMIT;

    NOT_IMPLEMENTED(s, audit_list);
    v = req->query ? g_hash_table_lookup(req->query, "since") : NULL;
    if (v && !tvd_api_parse_uint("since", v, G_MAXUINT64, &since, error)) {
        return FALSE;
    }
    v = req->query ? g_hash_table_lookup(req->query, "limit") : NULL;
    if (v) {
        if (!tvd_api_parse_uint("limit", v, TVD_API_AUDIT_MAX_LIMIT, &limit,
                                error)) {
            return FALSE;
        }
        if (limit == 0) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "limit: must be at least 1");
            return FALSE;
        }
    }
    return s->backend->audit_list(s->ctx, since, (guint)limit, out, error);
}

static gboolean r_audit_verify(TvdApiServer *s, const Request *req,
                               JsonBuilder *out, GError **error)
{
    (void)req;
    NOT_IMPLEMENTED(s, audit_verify);
    return s->backend->audit_verify(s->ctx, out, error);
}

static const char *const audit_query[] = { "since", "limit", NULL };

static const Route routes[] = {
    { "GET", "/v1/health", "health", r_health, 200, NULL, FALSE },
    { "GET", "/v1/vms", "vm_list", r_vm_list, 200, NULL, FALSE },
    { "POST", "/v1/vms", "vm_start", r_vm_start, 201, NULL, FALSE },
    { "GET", "/v1/vms/*", "vm_show", r_vm_show, 200, NULL, FALSE },
    { "POST", "/v1/vms/*/stop", "vm_stop", r_vm_stop, 200, NULL, FALSE },
    { "POST", "/v1/vms/*/revoke", "vm_revoke", r_vm_revoke, 200, NULL, FALSE },
    { "POST", "/v1/vms/*/readmit", "vm_readmit", r_vm_readmit, 200, NULL, FALSE },
    { "POST", "/v1/vms/*/ek", "vm_register_ek", r_vm_register_ek, 200, NULL,
      FALSE },
    { "GET", "/v1/domains", "domain_list", r_domain_list, 200, NULL, FALSE },
    { "POST", "/v1/domains", "domain_create", r_domain_create, 201, NULL,
      TRUE },
    { "GET", "/v1/domains/*", "domain_show", r_domain_show, 200, NULL, FALSE },
    { "PUT", "/v1/domains/*", "domain_update", r_domain_update, 200, NULL,
      TRUE },
    { "GET", "/v1/audit", "audit_list", r_audit_list, 200, audit_query, FALSE },
    { "GET", "/v1/audit/verify", "audit_verify", r_audit_verify, 200, NULL, FALSE },
    { "GET", "/metrics", "metrics", NULL, 200, NULL, FALSE },
};

/*
 * TRUE when @path matches @pattern segment by segment; a '*' segment
 * matches any non-empty segment, returned in *name (a pointer into a copy
 * the caller frees through *segments).
 */
static gboolean path_match(const char *pattern, char **segs,
                           const char **name)
{
    g_auto(GStrv) pat = g_strsplit(pattern, "/", -1);
    guint n = g_strv_length(pat);

    if (n != g_strv_length(segs)) {
        return FALSE;
    }
    for (guint i = 0; i < n; i++) {
        if (strcmp(pat[i], "*") == 0) {
            if (!segs[i][0]) {
                return FALSE;
            }
            *name = segs[i];
        } else if (strcmp(pat[i], segs[i]) != 0) {
            return FALSE;
        }
    }
    return TRUE;
}

/* The route of @method on @path (NULL: none); *name gets the NAME segment. */
static const Route *find_route(const char *method, char **segs,
                               const char **name, GString *allow)
{
    const Route *route = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(routes); i++) {
        const char *n = NULL;

        if (!path_match(routes[i].pattern, segs, &n)) {
            continue;
        }
        if (allow) {
            g_string_append_printf(allow, "%s%s", allow->len ? ", " : "",
                                   routes[i].method);
        }
        if (strcmp(routes[i].method, method) == 0) {
            route = &routes[i];
            *name = n;
        }
    }
    return route;
}

static size_t body_cap(const TvdApiServer *s, const Route *route)
{
    if (route && route->big_body) {
        return MAX(s->max_body, TVD_API_MAX_DOMAIN_BODY);
    }
    return s->max_body;
}

/* ---- Responses ------------------------------------------------------------- */

static void respond_json(SoupServerMessage *msg, guint status, JsonNode *root)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    gsize len;
    char *text;

    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, &len);
    /* A trailing newline for people reading with curl. */
    text = g_realloc(text, len + 2);
    text[len++] = '\n';
    text[len] = '\0';
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, JSON_TYPE, SOUP_MEMORY_TAKE, text,
                                     len);
}

static void respond_error(SoupServerMessage *msg, const GError *error)
{
    g_autoptr(JsonBuilder) b = json_builder_new_immutable();
    g_autoptr(JsonNode) root = NULL;
    int code = error->domain == TVD_API_ERROR ? error->code
                                              : TVD_API_ERROR_INTERNAL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "error");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "code");
    json_builder_add_string_value(b, tvd_api_error_code_name(code));
    json_builder_set_member_name(b, "message");
    json_builder_add_string_value(b, error->message);
    json_builder_end_object(b);
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    respond_json(msg, tvd_api_error_http_status(code), root);
}

/* ---- Metrics --------------------------------------------------------------- */

static void count_request(TvdApiServer *s, const char *route, guint status,
                          double seconds)
{
    char *key = g_strdup_printf("%s %u", route, status);
    guint64 *n = g_hash_table_lookup(s->requests, key);

    if (n) {
        g_free(key);
    } else {
        n = g_new0(guint64, 1);
        g_hash_table_insert(s->requests, key, n);
    }
    (*n)++;
    tvd_prom_histogram_observe(&s->latency, seconds);
}

static void write_own_metrics(TvdApiServer *s, GString *out)
{
    g_autoptr(GList) keys = g_list_sort(g_hash_table_get_keys(s->requests),
                                        (GCompareFunc)strcmp);

    tvd_prom_family(out, "tvd_api_requests_total", "counter",
                    "API requests answered, by route and HTTP status.");
    for (GList *l = keys; l; l = l->next) {
        const char *key = l->data;
        const char *sp = strchr(key, ' ');
        g_autofree char *route = g_strndup(key, (gsize)(sp - key));
        const char *labels[] = { "route", route, "code", sp + 1, NULL };
        guint64 *n = g_hash_table_lookup(s->requests, key);

        tvd_prom_sample(out, "tvd_api_requests_total", labels, (double)*n);
    }
    tvd_prom_family(out, "tvd_api_request_duration_seconds", "histogram",
                    "Time to answer an API request.");
    tvd_prom_histogram_write(&s->latency, out,
                             "tvd_api_request_duration_seconds", NULL);
}

static gboolean serve_metrics(TvdApiServer *s, SoupServerMessage *msg,
                              GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    gsize len;

    if (s->backend->metrics && !s->backend->metrics(s->ctx, out, error)) {
        return FALSE;
    }
    if (out->len && out->str[out->len - 1] != '\n') {
        g_string_append_c(out, '\n');
    }
    write_own_metrics(s, out);
    len = out->len;
    soup_server_message_set_status(msg, 200, NULL);
    soup_server_message_set_response(msg, METRICS_TYPE, SOUP_MEMORY_TAKE,
                                     g_string_free(g_steal_pointer(&out),
                                                   FALSE), len);
    return TRUE;
}

/* ---- Dispatch -------------------------------------------------------------- */

static gboolean is_unix(SoupServerMessage *msg)
{
    GSocketAddress *local = soup_server_message_get_local_address(msg);

    return local && G_IS_UNIX_SOCKET_ADDRESS(local);
}

/* TCP requests must come with a verified client certificate. The handshake
 * already refuses others; this is the second lock. */
static gboolean peer_allowed(SoupServerMessage *msg)
{
    return is_unix(msg) ||
           (soup_server_message_get_tls_peer_certificate(msg) &&
            soup_server_message_get_tls_peer_certificate_errors(msg) == 0);
}

static char *describe_peer(SoupServerMessage *msg)
{
    GSocket *sock = soup_server_message_get_socket(msg);
    GTlsCertificate *cert;

    if (is_unix(msg) && sock) {
        g_autoptr(GCredentials) cred = g_socket_get_credentials(sock, NULL);

        if (cred) {
            return g_strdup_printf("uid=%ld pid=%ld",
                                   (long)g_credentials_get_unix_user(cred,
                                                                     NULL),
                                   (long)g_credentials_get_unix_pid(cred,
                                                                    NULL));
        }
        return g_strdup("unix");
    }
    cert = soup_server_message_get_tls_peer_certificate(msg);
    if (cert) {
        g_autofree char *subject = g_tls_certificate_get_subject_name(cert);

        return g_strdup_printf("%s cert=\"%s\"",
                               soup_server_message_get_remote_host(msg),
                               subject ? subject : "?");
    }
    return g_strdup(soup_server_message_get_remote_host(msg));
}

/* Bodies up to this size are read and thrown away after an early refusal,
 * so that an ordinary client gets its answer; above it, or with no length,
 * the connection is answered and closed at once. */
#define DRAIN_MAX (16u * 1024u * 1024u)

/*
 * Answers @msg with an error before its body is read. libsoup 3.2 reads a
 * request's body even when an early handler has set a status, so: either
 * the body is drained without being kept (small bodies), or the connection
 * is taken over, answered and closed (@close).
 */
static void refuse_early(SoupServerMessage *msg, int code, const char *message,
                         gboolean close_now)
{
    g_autoptr(GError) error = g_error_new_literal(TVD_API_ERROR, code,
                                                  message);
    SoupMessageHeaders *resp = soup_server_message_get_response_headers(msg);
    g_autoptr(GIOStream) stream = NULL;
    g_autoptr(GString) raw = NULL;
    g_autoptr(GBytes) body = NULL;
    GOutputStream *out;
    gsize len;
    const char *data;

    respond_error(msg, error);
    soup_message_headers_replace(resp, "Connection", "close");
    if (!close_now) {
        soup_message_body_set_accumulate(
            soup_server_message_get_request_body(msg), FALSE);
        return;
    }
    body = soup_message_body_flatten(soup_server_message_get_response_body(msg));
    data = g_bytes_get_data(body, &len);
    raw = g_string_new(NULL);
    g_string_append_printf(raw, "HTTP/1.1 %u %s\r\nContent-Type: " JSON_TYPE
                           "\r\nContent-Length: %zu\r\nConnection: close"
                           "\r\n\r\n", soup_server_message_get_status(msg),
                           soup_status_get_phrase(
                               soup_server_message_get_status(msg)), len);
    g_string_append_len(raw, data, (gssize)len);
    stream = soup_server_message_steal_connection(msg);
    if (!stream) {
        return;
    }
    out = g_io_stream_get_output_stream(stream);
    /* A few hundred bytes into a fresh connection: this does not block. */
    g_output_stream_write_all(out, raw->str, raw->len, NULL, NULL, NULL);
    g_output_stream_flush(out, NULL, NULL);
    g_io_stream_close(stream, NULL, NULL);
}

static void early_handler(SoupServer *soup, SoupServerMessage *msg,
                          const char *path, GHashTable *query, gpointer data)
{
    TvdApiServer *s = data;
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    SoupEncoding enc = soup_message_headers_get_encoding(h);
    g_auto(GStrv) segs = g_strsplit(path, "/", -1);
    const char *name = NULL;
    const Route *route = find_route(soup_server_message_get_method(msg), segs,
                                    &name, NULL);
    size_t cap = body_cap(s, route);
    guint64 length = enc == SOUP_ENCODING_CONTENT_LENGTH ?
        (guint64)soup_message_headers_get_content_length(h) : 0;
    const char *method = soup_server_message_get_method(msg);
    g_autofree char *m = NULL;
    int code;
    gboolean close_now;

    (void)soup;
    (void)query;
    if (!peer_allowed(msg)) {
        code = TVD_API_ERROR_FORBIDDEN;
        m = g_strdup("client certificate required");
        close_now = length > DRAIN_MAX || enc != SOUP_ENCODING_CONTENT_LENGTH;
    } else if (enc == SOUP_ENCODING_CHUNKED || enc == SOUP_ENCODING_EOF) {
        code = TVD_API_ERROR_LENGTH_REQUIRED;
        m = g_strdup("body: Content-Length required");
        close_now = TRUE;
    } else if (length > cap) {
        code = TVD_API_ERROR_TOO_LARGE;
        m = g_strdup_printf("body: larger than the limit of %zu bytes", cap);
        close_now = length > DRAIN_MAX;
    } else {
        return;
    }
    g_debug("%s %s -> %u route=%s (refused before the body%s)", method, path,
            tvd_api_error_http_status(code), route ? route->id : "unknown",
            close_now ? ", connection closed" : "");
    count_request(s, route ? route->id : "unknown",
                  tvd_api_error_http_status(code), 0);
    refuse_early(msg, code, m, close_now);
}

static gboolean dispatch(TvdApiServer *s, SoupServerMessage *msg,
                         const char *path, GHashTable *query,
                         const char **route_id, GError **error)
{
    const char *method = soup_server_message_get_method(msg);
    SoupMessageBody *body = soup_server_message_get_request_body(msg);
    g_auto(GStrv) segs = g_strsplit(path, "/", -1);
    g_autoptr(GString) allow = g_string_new(NULL);
    g_autoptr(JsonBuilder) out = NULL;
    g_autoptr(JsonNode) root = NULL;
    g_autoptr(GBytes) bytes = NULL;
    const Route *route;
    Request req = { .query = query };
    size_t cap;

    route = find_route(method, segs, &req.name, allow);
    if (!route && allow->len) {
        soup_message_headers_replace(
            soup_server_message_get_response_headers(msg), "Allow",
            allow->str);
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_METHOD,
                    "%s: method not allowed here (allowed: %s)", method,
                    allow->str);
        return FALSE;
    }
    if (!route) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_NOT_FOUND,
                    "no such resource: %s", path);
        return FALSE;
    }
    *route_id = route->id;

    if (req.name && !tvd_api_name_is_valid(req.name)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "name: must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
        return FALSE;
    }
    if (query) {
        GHashTableIter it;
        const char *key;

        g_hash_table_iter_init(&it, query);
        while (g_hash_table_iter_next(&it, (gpointer *)&key, NULL)) {
            if (!route->query || !g_strv_contains(route->query, key)) {
                g_autofree char *shown = g_strndup(key, 64);

                g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                            "%s: unknown query parameter", shown);
                return FALSE;
            }
        }
    }

    bytes = soup_message_body_flatten(body);
    req.body = g_bytes_get_data(bytes, &req.body_len);
    cap = body_cap(s, route);
    if (req.body_len > cap) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_TOO_LARGE,
                    "body: larger than the limit of %zu bytes", cap);
        return FALSE;
    }
    if (req.body_len > 0) {
        const char *ct = soup_message_headers_get_content_type(
            soup_server_message_get_request_headers(msg), NULL);

        if (!ct || g_ascii_strcasecmp(ct, JSON_TYPE) != 0) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_MEDIA_TYPE,
                        "body: Content-Type must be %s", JSON_TYPE);
            return FALSE;
        }
    }

    if (!route->fn) {
        return serve_metrics(s, msg, error);
    }
    out = json_builder_new_immutable();
    if (!route->fn(s, &req, out, error)) {
        return FALSE;
    }
    root = json_builder_get_root(out);
    if (!root) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INTERNAL,
                    "%s: the supervisor produced no result", route->id);
        return FALSE;
    }
    respond_json(msg, route->ok_status, root);
    return TRUE;
}

static void handler(SoupServer *soup, SoupServerMessage *msg,
                    const char *path, GHashTable *query, gpointer data)
{
    TvdApiServer *s = data;
    g_autoptr(GError) error = NULL;
    g_autofree char *peer = NULL;
    const char *route_id = "unknown";
    gint64 t0 = g_get_monotonic_time();
    guint status;

    (void)soup;
    if (!peer_allowed(msg)) {
        g_set_error(&error, TVD_API_ERROR, TVD_API_ERROR_FORBIDDEN,
                    "client certificate required");
    } else {
        dispatch(s, msg, path, query, &route_id, &error);
    }
    if (error) {
        if (error->domain != TVD_API_ERROR) {
            g_warning("%s: %s", route_id, error->message);
        }
        respond_error(msg, error);
    }
    status = soup_server_message_get_status(msg);
    count_request(s, route_id, status,
                  (double)(g_get_monotonic_time() - t0) / G_USEC_PER_SEC);
    if (g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN)) {
        return;
    }
    peer = describe_peer(msg);
    g_debug("%s %s -> %u route=%s peer=%s%s%s",
            soup_server_message_get_method(msg), path, status, route_id,
            peer, error ? " error=" : "", error ? error->message : "");
}

/*
 * Mutual TLS: GIO asks whether to accept the client's certificate even when
 * it verified (glib-networking 2.74 + libsoup 3.2 emit accept-certificate
 * with no errors, and an unhandled signal refuses). Accept exactly the
 * certificates that chain to the client CA database without any error.
 */
static gboolean accept_certificate(SoupServerMessage *msg,
                                   GTlsCertificate *cert,
                                   GTlsCertificateFlags errors, gpointer data)
{
    (void)cert;
    (void)data;
    if (errors != 0) {
        g_debug("TLS client %s refused: certificate errors 0x%x",
                soup_server_message_get_remote_host(msg), (unsigned)errors);
    }
    return errors == 0;
}

static void request_started(SoupServer *soup, SoupServerMessage *msg,
                            gpointer data)
{
    (void)soup;
    (void)data;
    g_signal_connect(msg, "accept-certificate",
                     G_CALLBACK(accept_certificate), NULL);
}

/* ---- Listening ------------------------------------------------------------- */

static GSocket *listen_unix(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GSocket) sock = NULL;
    g_autoptr(GSocketAddress) addr = NULL;
    struct stat st;

    if (!g_file_test(dir, G_FILE_TEST_IS_DIR)) {
        if (g_mkdir_with_parents(dir, 0750) < 0 || chmod(dir, 0750) < 0) {
            int e = errno;

            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "creating %s: %s", dir, g_strerror(e));
            return NULL;
        }
    }
    addr = g_unix_socket_address_new(path);
    if (lstat(path, &st) == 0) {
        g_autoptr(GSocket) probe = NULL;

        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS,
                        "%s exists and is not a socket", path);
            return NULL;
        }
        /* A live server there must not be replaced; a stale socket may. */
        probe = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                             G_SOCKET_PROTOCOL_DEFAULT, error);
        if (!probe) {
            return NULL;
        }
        if (g_socket_connect(probe, addr, NULL, NULL)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_ADDRESS_IN_USE,
                        "%s: another server is listening there", path);
            return NULL;
        }
        if (unlink(path) < 0) {
            int e = errno;

            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                        "removing stale socket %s: %s", path, g_strerror(e));
            return NULL;
        }
    }
    sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
                        G_SOCKET_PROTOCOL_DEFAULT, error);
    if (!sock || !g_socket_bind(sock, addr, FALSE, error)) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    /* Nobody can connect before listen(): set the mode in between. */
    if (chmod(path, 0660) < 0) {
        int e = errno;

        unlink(path);
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e),
                    "chmod %s: %s", path, g_strerror(e));
        return NULL;
    }
    if (!g_socket_listen(sock, error)) {
        unlink(path);
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    return g_steal_pointer(&sock);
}

static const double latency_bounds[] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    5, 10,
};

TvdApiServer *tvd_api_server_new(const TvdApiServerConfig *config,
                                 const TvdApiBackend *backend, void *ctx,
                                 GError **error)
{
    g_autoptr(TvdApiServer) s = g_new0(TvdApiServer, 1);
    g_autoptr(GSocket) sock = NULL;
    gboolean tls = config->tcp_address || config->tls_certificate ||
                   config->tls_client_ca;

    g_return_val_if_fail(config->socket_path, NULL);
    g_return_val_if_fail(backend, NULL);

    if (tls && !(config->tcp_address && config->tls_certificate &&
                 config->tls_client_ca)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "TCP needs an address, a server certificate and a "
                    "client CA (mutual TLS only)");
        return NULL;
    }
    s->backend = backend;
    s->ctx = ctx;
    s->max_body = config->max_body ? config->max_body : TVD_API_MAX_BODY;
    s->requests = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                        g_free);
    tvd_prom_histogram_init(&s->latency, latency_bounds,
                            G_N_ELEMENTS(latency_bounds));
    s->soup = g_object_new(SOUP_TYPE_SERVER, "server-header",
                           "tvd-supervisor/" TVD_API_VERSION, NULL);
    soup_server_add_early_handler(s->soup, NULL, early_handler, s, NULL);
    soup_server_add_handler(s->soup, NULL, handler, s, NULL);

    sock = listen_unix(config->socket_path, error);
    if (!sock) {
        return NULL;
    }
    s->socket_path = g_strdup(config->socket_path);
    if (!soup_server_listen_socket(s->soup, sock, 0, error)) {
        return NULL;
    }

    if (tls) {
        GSList *listeners;

        soup_server_set_tls_certificate(s->soup, config->tls_certificate);
        soup_server_set_tls_database(s->soup, config->tls_client_ca);
        soup_server_set_tls_auth_mode(s->soup, G_TLS_AUTHENTICATION_REQUIRED);
        g_signal_connect(s->soup, "request-started",
                         G_CALLBACK(request_started), NULL);
        if (!soup_server_listen(s->soup, G_SOCKET_ADDRESS(config->tcp_address),
                                SOUP_SERVER_LISTEN_HTTPS, error)) {
            return NULL;
        }
        /* Not soup_server_get_uris(): it takes every listener for TCP. */
        listeners = soup_server_get_listeners(s->soup);
        for (GSList *l = listeners; l; l = l->next) {
            g_autoptr(GSocketAddress) a =
                g_socket_get_local_address(l->data, NULL);

            if (a && G_IS_INET_SOCKET_ADDRESS(a)) {
                s->tcp_port = g_inet_socket_address_get_port(
                    G_INET_SOCKET_ADDRESS(a));
            }
        }
        g_slist_free(listeners);
    }
    g_info("API %s listening on %s%s", TVD_API_VERSION, config->socket_path,
           tls ? " and TCP with mutual TLS" : "");
    return g_steal_pointer(&s);
}

guint16 tvd_api_server_get_tcp_port(TvdApiServer *server)
{
    return server->tcp_port;
}

void tvd_api_server_free(TvdApiServer *s)
{
    if (!s) {
        return;
    }
    if (s->soup) {
        soup_server_disconnect(s->soup);
        g_object_unref(s->soup);
    }
    if (s->socket_path) {
        unlink(s->socket_path);
        g_free(s->socket_path);
    }
    g_clear_pointer(&s->requests, g_hash_table_unref);
    g_free(s);
}
