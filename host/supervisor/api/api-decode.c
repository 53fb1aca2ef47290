/*
 * tvd API: error domain and the decoders of request bodies and query
 * parameters. Everything here takes untrusted bytes. See api.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api"

#include "api.h"

#include <string.h>

#include "json-depth.h"

G_DEFINE_QUARK(tvd-api-error-quark, tvd_api_error)

/* ---- Errors -------------------------------------------------------------- */

static const struct {
    guint status;
    const char *name;
} error_table[] = {
    [TVD_API_ERROR_INTERNAL] = { 500, "internal" },
    [TVD_API_ERROR_INVALID] = { 400, "invalid" },
    [TVD_API_ERROR_NOT_FOUND] = { 404, "not_found" },
    [TVD_API_ERROR_CONFLICT] = { 409, "conflict" },
    [TVD_API_ERROR_FORBIDDEN] = { 403, "forbidden" },
    [TVD_API_ERROR_TOO_LARGE] = { 413, "too_large" },
    [TVD_API_ERROR_LENGTH_REQUIRED] = { 411, "length_required" },
    [TVD_API_ERROR_METHOD] = { 405, "method_not_allowed" },
    [TVD_API_ERROR_MEDIA_TYPE] = { 415, "unsupported_media_type" },
    [TVD_API_ERROR_NOT_IMPLEMENTED] = { 501, "not_implemented" },
    [TVD_API_ERROR_UNAVAILABLE] = { 503, "unavailable" },
};

guint tvd_api_error_http_status(int code)
{
    if (code < 0 || (size_t)code >= G_N_ELEMENTS(error_table)) {
        return 500;
    }
    return error_table[code].status;
}

const char *tvd_api_error_code_name(int code)
{
    if (code < 0 || (size_t)code >= G_N_ELEMENTS(error_table)) {
        return "internal";
    }
    return error_table[code].name;
}

int tvd_api_error_code_from_name(const char *name)
{
    for (size_t i = 0; name && i < G_N_ELEMENTS(error_table); i++) {
        if (strcmp(error_table[i].name, name) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* ---- Scalars ------------------------------------------------------------- */

gboolean tvd_api_name_is_valid(const char *name)
{
    size_t n;

    if (!name || !g_ascii_isalnum(name[0])) {
        return FALSE;
    }
    for (n = 0; name[n]; n++) {
        char c = name[n];

        if (n >= TVD_API_MAX_NAME) {
            return FALSE;
        }
        if (!g_ascii_isalnum(c) && c != '.' && c != '_' && c != '-') {
            return FALSE;
        }
    }
    return TRUE;
}

gboolean tvd_api_parse_uint(const char *field, const char *text, guint64 max,
                            guint64 *out, GError **error)
{
    guint64 v = 0;

    if (!text || !text[0]) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: must be an unsigned decimal integer", field);
        return FALSE;
    }
    for (const char *p = text; *p; p++) {
        guint d;

        if (*p < '0' || *p > '9') {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: must be an unsigned decimal integer", field);
            return FALSE;
        }
        d = (guint)(*p - '0');
        if (v > (max - d) / 10) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: must be at most %" G_GUINT64_FORMAT, field, max);
            return FALSE;
        }
        v = v * 10 + d;
    }
    *out = v;
    return TRUE;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

GBytes *tvd_api_base64_decode(const char *field, const char *text,
                              size_t max, GError **error)
{
    size_t len = strlen(text), pad = 0, out_len;
    g_autofree guint8 *buf = NULL;
    size_t o = 0;

    if (len % 4 != 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: base64 length is not a multiple of 4", field);
        return NULL;
    }
    if (len >= 1 && text[len - 1] == '=') {
        pad++;
        if (len >= 2 && text[len - 2] == '=') {
            pad++;
        }
    }
    out_len = len / 4 * 3 - pad;
    if (out_len > max) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: longer than %zu bytes", field, max);
        return NULL;
    }
    buf = g_malloc(out_len ? out_len : 1);
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        gboolean last = (i + 4 == len);

        for (size_t k = 0; k < 4; k++) {
            char c = text[i + k];

            if (c == '=' && last && k >= 4 - pad) {
                v[k] = 0;
                continue;
            }
            v[k] = b64_value(c);
            if (v[k] < 0) {
                g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                            "%s: invalid base64 character at offset %zu",
                            field, i + k);
                return NULL;
            }
        }
        /* Canonical encoding: the bits under the padding are zero. */
        if (last && ((pad == 1 && (v[2] & 0x3)) ||
                     (pad == 2 && (v[1] & 0xf)))) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: non-canonical base64 padding", field);
            return NULL;
        }
        guint32 w = ((guint32)v[0] << 18) | ((guint32)v[1] << 12) |
                    ((guint32)v[2] << 6) | (guint32)v[3];
        size_t n = last ? 3 - pad : 3;

        for (size_t k = 0; k < n; k++) {
            buf[o++] = (guint8)(w >> (16 - 8 * k));
        }
    }
    g_assert(o == out_len);
    return g_bytes_new_take(g_steal_pointer(&buf), out_len);
}

/* ---- JSON helpers -------------------------------------------------------- */

/* Parses @data as a JSON object (the root); empty input is an error. */
static JsonObject *parse_object(const void *data, size_t len,
                                JsonParser **parser_out, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new_immutable();
    g_autoptr(GError) local = NULL;
    JsonNode *root;
    gsize deep_at = 0;

    if (len > G_MAXSSIZE) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_TOO_LARGE,
                    "body: too large");
        return NULL;
    }
    /* json-glib stops at a NUL byte: treat one as malformed, not as the end. */
    if (len > 0 && memchr(data, '\0', len)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "body: contains a NUL byte");
        return NULL;
    }
    if (len == 0 || !g_utf8_validate(data, (gssize)len, NULL)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    len == 0 ? "body: empty, a JSON object is required"
                             : "body: not valid UTF-8");
        return NULL;
    }
    if (!tvd_json_depth_ok(data, len, TVD_JSON_DEPTH_MAX, &deep_at)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "body: nested deeper than %u levels (at byte %" G_GSIZE_FORMAT ")",
                    TVD_JSON_DEPTH_MAX, deep_at);
        return NULL;
    }
    if (!json_parser_load_from_data(parser, data, (gssize)len, &local)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "body: malformed JSON: %s", local->message);
        return NULL;
    }
    root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "body: must be a JSON object");
        return NULL;
    }
    *parser_out = g_steal_pointer(&parser);
    return json_node_get_object(root);
}

/* Every member of @obj must be one of @allowed (NULL-terminated). */
static gboolean check_members(JsonObject *obj, const char *const *allowed,
                              GError **error)
{
    JsonObjectIter it;
    const char *member;
    JsonNode *node;

    json_object_iter_init(&it, obj);
    while (json_object_iter_next(&it, &member, &node)) {
        if (!g_strv_contains(allowed, member)) {
            g_autofree char *shown = g_strndup(member, 64);

            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: unknown field", shown);
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * The string member @field of @obj into *out (a copy). Absent or null:
 * error when @required, else *out = NULL. The string must be 1..max bytes
 * (json-glib has checked UTF-8); no control characters.
 */
static gboolean get_string(JsonObject *obj, const char *field,
                           gboolean required, size_t max, char **out,
                           GError **error)
{
    JsonNode *node = json_object_get_member(obj, field);
    const char *s;
    size_t len;

    *out = NULL;
    if (!node || JSON_NODE_HOLDS_NULL(node)) {
        if (required) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: required", field);
            return FALSE;
        }
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_VALUE(node) ||
        json_node_get_value_type(node) != G_TYPE_STRING) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: must be a string", field);
        return FALSE;
    }
    s = json_node_get_string(node);
    len = strlen(s);
    if (len == 0) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: must not be empty", field);
        return FALSE;
    }
    if (len > max) {
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: longer than %zu bytes", field, max);
        return FALSE;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "%s: contains a control character", field);
            return FALSE;
        }
    }
    *out = g_strdup(s);
    return TRUE;
}

static gboolean get_name(JsonObject *obj, const char *field,
                         gboolean required, char **out, GError **error)
{
    if (!get_string(obj, field, required, TVD_API_MAX_NAME, out, error)) {
        return FALSE;
    }
    if (*out && !tvd_api_name_is_valid(*out)) {
        g_clear_pointer(out, g_free);
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: must match [A-Za-z0-9][A-Za-z0-9._-]{0,63}", field);
        return FALSE;
    }
    return TRUE;
}

static gboolean get_abs_path(JsonObject *obj, const char *field,
                             char **out, GError **error)
{
    if (!get_string(obj, field, TRUE, TVD_API_MAX_PATH, out, error)) {
        return FALSE;
    }
    if (!g_path_is_absolute(*out)) {
        g_clear_pointer(out, g_free);
        g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                    "%s: must be an absolute path", field);
        return FALSE;
    }
    return TRUE;
}

/* ---- Decoders ------------------------------------------------------------ */

void tvd_api_vm_spec_free(TvdApiVmSpec *spec)
{
    if (!spec) {
        return;
    }
    g_free(spec->name);
    g_free(spec->domain);
    g_free(spec->kernel);
    g_free(spec->initrd);
    g_free(spec->append);
    g_free(spec->role);
    g_free(spec);
}

void tvd_api_domain_spec_free(TvdApiDomainSpec *spec)
{
    if (!spec) {
        return;
    }
    g_free(spec->name);
    g_clear_pointer(&spec->policy, g_bytes_unref);
    g_clear_pointer(&spec->signature, g_bytes_unref);
    g_free(spec);
}

TvdApiVmSpec *tvd_api_decode_vm_spec(const void *data, size_t len,
                                     GError **error)
{
    static const char *const allowed[] = {
        "name", "domain", "kernel", "initrd", "append", "memory", "role", NULL
    };
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(TvdApiVmSpec) spec = g_new0(TvdApiVmSpec, 1);
    JsonObject *obj;
    JsonNode *mem;

    obj = parse_object(data, len, &parser, error);
    if (!obj || !check_members(obj, allowed, error) ||
        !get_name(obj, "name", TRUE, &spec->name, error) ||
        !get_name(obj, "domain", TRUE, &spec->domain, error) ||
        !get_abs_path(obj, "kernel", &spec->kernel, error) ||
        !get_abs_path(obj, "initrd", &spec->initrd, error) ||
        !get_string(obj, "append", FALSE, TVD_API_MAX_APPEND, &spec->append,
                    error) ||
        !get_name(obj, "role", FALSE, &spec->role, error)) {
        return NULL;
    }
    mem = json_object_get_member(obj, "memory");
    if (mem && !JSON_NODE_HOLDS_NULL(mem)) {
        gint64 v;

        if (!JSON_NODE_HOLDS_VALUE(mem) ||
            json_node_get_value_type(mem) != G_TYPE_INT64) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "memory: must be an integer (MiB)");
            return NULL;
        }
        v = json_node_get_int(mem);
        if (v < TVD_API_MIN_MEMORY_MIB || v > TVD_API_MAX_MEMORY_MIB) {
            g_set_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID,
                        "memory: must be %u..%u MiB", TVD_API_MIN_MEMORY_MIB,
                        TVD_API_MAX_MEMORY_MIB);
            return NULL;
        }
        spec->memory_mib = (guint64)v;
    }
    return g_steal_pointer(&spec);
}

TvdApiDomainSpec *tvd_api_decode_domain_spec(const void *data, size_t len,
                                             gboolean require_name,
                                             GError **error)
{
    static const char *const allowed[] = {
        "name", "policy", "signature", NULL
    };
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(TvdApiDomainSpec) spec = g_new0(TvdApiDomainSpec, 1);
    g_autofree char *policy = NULL;
    g_autofree char *sig = NULL;
    JsonObject *obj;

    /* base64 grows by 4/3: the string caps follow from the byte caps. */
    obj = parse_object(data, len, &parser, error);
    if (!obj || !check_members(obj, allowed, error) ||
        !get_name(obj, "name", require_name, &spec->name, error) ||
        !get_string(obj, "policy", TRUE, (TVD_API_MAX_POLICY + 2) / 3 * 4,
                    &policy, error) ||
        !get_string(obj, "signature", TRUE,
                    (TVD_API_MAX_SIGNATURE + 2) / 3 * 4, &sig, error)) {
        return NULL;
    }
    spec->policy = tvd_api_base64_decode("policy", policy, TVD_API_MAX_POLICY,
                                         error);
    if (!spec->policy) {
        return NULL;
    }
    spec->signature = tvd_api_base64_decode("signature", sig,
                                            TVD_API_MAX_SIGNATURE, error);
    if (!spec->signature) {
        return NULL;
    }
    return g_steal_pointer(&spec);
}

GBytes *tvd_api_decode_register_ek(const void *data, size_t len,
                                   GError **error)
{
    static const char *const allowed[] = { "ek_cert", NULL };
    g_autoptr(JsonParser) parser = NULL;
    g_autofree char *cert = NULL;
    JsonObject *obj = parse_object(data, len, &parser, error);

    if (!obj || !check_members(obj, allowed, error) ||
        !get_string(obj, "ek_cert", TRUE, (TVD_API_MAX_EK_CERT + 2) / 3 * 4,
                    &cert, error)) {
        return NULL;
    }
    return tvd_api_base64_decode("ek_cert", cert, TVD_API_MAX_EK_CERT, error);
}

gboolean tvd_api_decode_revoke(const void *data, size_t len, char **reason,
                               GError **error)
{
    static const char *const allowed[] = { "reason", NULL };
    g_autoptr(JsonParser) parser = NULL;
    JsonObject *obj;

    *reason = NULL;
    if (len == 0) {
        return TRUE;
    }
    obj = parse_object(data, len, &parser, error);
    return obj && check_members(obj, allowed, error) &&
           get_string(obj, "reason", FALSE, TVD_API_MAX_REASON, reason, error);
}
