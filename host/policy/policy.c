/*
 * tvd domain policy: parser, model, canonical form, updates.
 * See policy.h and docs/policy.md.
 *
 * Parsing is in three passes over the same bytes:
 * (1) policy-json.c checks strict JSON and caps (nesting, string length,
 *     integer literals) and reports syntax errors with line and column;
 * (2) json-glib builds the tree (immutable nodes);
 * (3) the schema walk below checks every member against the format; on an
 *     error it knows the JSON path, and asks policy-json.c to find where
 *     that path starts in the text.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy"

#include "policy.h"
#include "policy-json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <openssl/evp.h>

G_DEFINE_QUARK(tvd-policy-error-quark, tvd_policy_error)

enum { SECTION_MEMBERSHIP, SECTION_ATTESTATION, SECTION_NETWORK,
       SECTION_PROPERTIES, SECTION_OTHER, N_SECTIONS };

struct _TvdPolicy {
    gatomicrefcount ref;
    TvdPolicyData d;
    GBytes *bytes;
    guint8 digest[32];
    char *digest_str;
    char *canonical_str;
    guint8 section_digest[N_SECTIONS][32];
    char *membership_str;
};

void tvd_policy_error_location_clear(TvdPolicyErrorLocation *loc)
{
    g_clear_pointer(&loc->path, g_free);
    loc->line = 0;
    loc->column = 0;
}

/* ---- Helpers ---------------------------------------------------------------- */

static void sha256(const void *data, gsize len, guint8 out[32])
{
    unsigned int n = 32;

    if (!EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) || n != 32) {
        g_error("EVP_Digest(SHA-256) failed");  /* only on OpenSSL breakage */
    }
}

static char *digest_string(const guint8 d[32])
{
    GString *s = g_string_new("sha256:");

    for (int i = 0; i < 32; i++) {
        g_string_append_printf(s, "%02x", d[i]);
    }
    return g_string_free(s, FALSE);
}

static int cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static int cmp_reference(const void *a, const void *b)
{
    return strcmp(((const TvdPolicyReference *)a)->path,
                  ((const TvdPolicyReference *)b)->path);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

gboolean tvd_policy_parse_version(const char *text, guint32 *out)
{
    guint parts[3] = { 0, 0, 0 };
    guint n = 0;
    const char *p = text;

    while (n < 3) {
        guint v = 0, digits = 0;

        while (g_ascii_isdigit(*p)) {
            v = v * 10 + (guint)(*p - '0');
            if (++digits > 3 || v > 255) {
                return FALSE;
            }
            p++;
        }
        if (digits == 0) {
            return FALSE;
        }
        parts[n++] = v;
        if (*p == '\0') {
            break;
        }
        if (*p != '.' || n == 3) {
            return FALSE;
        }
        p++;
    }
    *out = TVD_POLICY_AGENT_VERSION(parts[0], parts[1], parts[2]);
    return TRUE;
}

/* ---- Parse context ---------------------------------------------------------- */

typedef struct {
    const char *data;
    gsize len;
    const char *source;
    GString *path;
    TvdPolicyErrorLocation *loc;
    GError **error;
} Ctx;

G_GNUC_PRINTF(3, 4)
static gboolean perr(Ctx *c, TvdPolicyError code, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;
    guint line = 0, col = 0;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    /* A path that is not in the text (a missing member) is reported at its
     * nearest ancestor that is. */
    {
        g_autofree char *p = g_strdup(c->path->str);

        while (!tvd_policy_json_locate(c->data, c->len, p, &line, &col)) {
            char *cut = MAX(strrchr(p, '.'), strrchr(p, '['));

            if (p[0] == '\0') {
                line = col = 1;
                break;
            }
            if (cut) {
                *cut = '\0';
            } else {
                p[0] = '\0';
            }
        }
    }
    if (c->loc) {
        g_free(c->loc->path);
        c->loc->path = g_strdup(c->path->str);
        c->loc->line = line;
        c->loc->column = col;
    }
    if (c->path->len > 0) {
        g_set_error(c->error, TVD_POLICY_ERROR, code, "%s:%u:%u: %s: %s",
                    c->source, line, col, c->path->str, msg);
    } else {
        g_set_error(c->error, TVD_POLICY_ERROR, code, "%s:%u:%u: %s",
                    c->source, line, col, msg);
    }
    return FALSE;
}

static gsize push_key(Ctx *c, const char *key)
{
    gsize saved = c->path->len;

    tvd_policy_json_path_key(c->path, key);
    return saved;
}

static gsize push_index(Ctx *c, guint i)
{
    gsize saved = c->path->len;

    tvd_policy_json_path_index(c->path, i);
    return saved;
}

static void pop(Ctx *c, gsize saved)
{
    g_string_truncate(c->path, saved);
}

static const char *node_kind(JsonNode *n)
{
    switch (json_node_get_node_type(n)) {
    case JSON_NODE_OBJECT:
        return "an object";
    case JSON_NODE_ARRAY:
        return "an array";
    case JSON_NODE_NULL:
        return "null";
    default:
        switch (json_node_get_value_type(n)) {
        case G_TYPE_STRING:
            return "a string";
        case G_TYPE_BOOLEAN:
            return "a boolean";
        default:
            return "a number";
        }
    }
}

/* Levenshtein distance, for "did you mean"; names longer than 32 are far. */
static guint edit_distance(const char *a, const char *b)
{
    gsize la = strlen(a), lb = strlen(b);
    guint row[33];

    if (la > 32 || lb > 32) {
        return G_MAXUINT;
    }
    for (gsize j = 0; j <= lb; j++) {
        row[j] = (guint)j;
    }
    for (gsize i = 1; i <= la; i++) {
        guint diag = row[0];

        row[0] = (guint)i;
        for (gsize j = 1; j <= lb; j++) {
            guint up = row[j];
            guint best = MIN(row[j] + 1, row[j - 1] + 1);

            row[j] = MIN(best, diag + (a[i - 1] != b[j - 1]));
            diag = up;
        }
    }
    return row[lb];
}

const char *tvd_policy_suggest(const char *name, const char *const *known)
{
    const char *best = NULL;
    guint best_d = 3;                           /* suggest at distance 1 or 2 */

    for (const char *const *k = known; *k; k++) {
        guint dist = edit_distance(name, *k);

        if (dist < best_d) {
            best_d = dist;
            best = *k;
        }
    }
    return best;
}

/* Checks that every member of @obj is in @known (NULL-terminated). */
static gboolean check_members(Ctx *c, JsonObject *obj, const char *const *known)
{
    g_autoptr(GList) members = json_object_get_members(obj);

    for (GList *l = members; l; l = l->next) {
        const char *name = l->data;
        gboolean ok = FALSE;

        for (const char *const *k = known; *k && !ok; k++) {
            ok = strcmp(*k, name) == 0;
        }
        if (!ok) {
            g_autofree char *list = g_strjoinv(", ", (char **)known);
            const char *best = tvd_policy_suggest(name, known);

            push_key(c, name);
            if (best) {
                return perr(c, TVD_POLICY_ERROR_UNKNOWN_FIELD,
                            "unknown field, did you mean \"%s\"? (this object may have: %s)",
                            best, list);
            }
            return perr(c, TVD_POLICY_ERROR_UNKNOWN_FIELD,
                        "unknown field (this object may have: %s)", list);
        }
    }
    return TRUE;
}

/*
 * Looks up member @name of @obj. The path is pushed (the caller pops with
 * the returned *saved). *node is NULL if absent and not @required.
 */
static gboolean member(Ctx *c, JsonObject *obj, const char *name,
                       gboolean required, JsonNode **node, gsize *saved)
{
    *saved = push_key(c, name);
    *node = json_object_get_member(obj, name);
    if (!*node && required) {
        return perr(c, TVD_POLICY_ERROR_MISSING_FIELD, "required field is missing");
    }
    return TRUE;
}

static gboolean want_type(Ctx *c, JsonNode *n, JsonNodeType t, GType vt,
                          const char *what)
{
    if (json_node_get_node_type(n) == t &&
        (t != JSON_NODE_VALUE || json_node_get_value_type(n) == vt)) {
        return TRUE;
    }
    return perr(c, TVD_POLICY_ERROR_TYPE, "expected %s, got %s", what, node_kind(n));
}

static gboolean get_object(Ctx *c, JsonNode *n, JsonObject **out)
{
    if (!want_type(c, n, JSON_NODE_OBJECT, 0, "an object")) {
        return FALSE;
    }
    *out = json_node_get_object(n);
    return TRUE;
}

static gboolean get_array(Ctx *c, JsonNode *n, guint min, guint max, JsonArray **out)
{
    guint len;

    if (!want_type(c, n, JSON_NODE_ARRAY, 0, "an array")) {
        return FALSE;
    }
    *out = json_node_get_array(n);
    len = json_array_get_length(*out);
    if (len > max) {
        return perr(c, TVD_POLICY_ERROR_TOO_LARGE,
                    "%u elements, at most %u allowed", len, max);
    }
    if (len < min) {
        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "at least %u element%s required", min, min == 1 ? " is" : "s are");
    }
    return TRUE;
}

static gboolean get_string(Ctx *c, JsonNode *n, gsize max, const char **out)
{
    if (!want_type(c, n, JSON_NODE_VALUE, G_TYPE_STRING, "a string")) {
        return FALSE;
    }
    *out = json_node_get_string(n);
    if (strlen(*out) > max) {
        return perr(c, TVD_POLICY_ERROR_TOO_LARGE,
                    "string of %zu bytes, at most %zu allowed", strlen(*out), max);
    }
    return TRUE;
}

static gboolean get_int(Ctx *c, JsonNode *n, gint64 min, gint64 max, gint64 *out)
{
    if (!want_type(c, n, JSON_NODE_VALUE, G_TYPE_INT64, "an integer")) {
        return FALSE;
    }
    *out = json_node_get_int(n);
    if (*out < min || *out > max) {
        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "%" G_GINT64_FORMAT " is out of range %" G_GINT64_FORMAT
                    "..%" G_GINT64_FORMAT, *out, min, max);
    }
    return TRUE;
}

static gboolean get_bool(Ctx *c, JsonNode *n, gboolean *out)
{
    if (!want_type(c, n, JSON_NODE_VALUE, G_TYPE_BOOLEAN, "true or false")) {
        return FALSE;
    }
    *out = json_node_get_boolean(n);
    return TRUE;
}

/* One of @names (NULL-terminated); *out = its index. */
static gboolean get_enum(Ctx *c, JsonNode *n, const char *const *names, guint *out)
{
    const char *s;

    if (!get_string(c, n, 64, &s)) {
        return FALSE;
    }
    for (guint i = 0; names[i]; i++) {
        if (strcmp(names[i], s) == 0) {
            *out = i;
            return TRUE;
        }
    }
    {
        g_autofree char *list = g_strjoinv(" | ", (char **)names);
        g_autofree char *shown = g_strescape(s, NULL);

        return perr(c, TVD_POLICY_ERROR_VALUE, "\"%s\" is not one of %s", shown, list);
    }
}

static gboolean parse_hex32(const char *s, guint8 out[32])
{
    if (g_str_has_prefix(s, "sha256:")) {
        s += 7;
    }
    if (strlen(s) != 64) {
        return FALSE;
    }
    for (int i = 0; i < 32; i++) {
        int hi = g_ascii_xdigit_value(s[2 * i]);
        int lo = g_ascii_xdigit_value(s[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return FALSE;
        }
        out[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}

static gboolean get_digest(Ctx *c, JsonNode *n, guint8 out[32])
{
    const char *s;

    if (!get_string(c, n, 80, &s)) {
        return FALSE;
    }
    if (!parse_hex32(s, out)) {
        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "expected a SHA-256 digest: 64 hex digits, optionally after \"sha256:\"");
    }
    return TRUE;
}

/* A digest or an array of 1..max digests. */
static gboolean get_digest_list(Ctx *c, JsonNode *n, guint max, guint *count,
                                guint8 (**out)[32])
{
    JsonArray *a;
    guint len;

    if (json_node_get_node_type(n) != JSON_NODE_ARRAY) {
        guint8 d[32];

        if (json_node_get_node_type(n) != JSON_NODE_VALUE ||
            json_node_get_value_type(n) != G_TYPE_STRING) {
            return perr(c, TVD_POLICY_ERROR_TYPE,
                        "expected a digest string or an array of them, got %s",
                        node_kind(n));
        }
        if (!get_digest(c, n, d)) {
            return FALSE;
        }
        *out = g_memdup2(d, 32);
        *count = 1;
        return TRUE;
    }
    if (!get_array(c, n, 1, max, &a)) {
        return FALSE;
    }
    len = json_array_get_length(a);
    *out = g_malloc0_n(len, 32);
    *count = len;
    for (guint i = 0; i < len; i++) {
        gsize s = push_index(c, i);

        if (!get_digest(c, json_array_get_element(a, i), (*out)[i])) {
            return FALSE;
        }
        pop(c, s);
    }
    return TRUE;
}

/* "500ms", "30s", "5m", "1h" -> milliseconds. */
static gboolean get_duration(Ctx *c, JsonNode *n, guint64 *ms)
{
    const char *s, *p;
    guint64 v = 0, mult;
    guint digits = 0;

    if (!get_string(c, n, 32, &s)) {
        return FALSE;
    }
    for (p = s; g_ascii_isdigit(*p) && digits < 10; p++, digits++) {
        v = v * 10 + (guint64)(*p - '0');
    }
    if (digits == 0 || g_ascii_isdigit(*p)) {
        goto bad;
    }
    if (strcmp(p, "ms") == 0) {
        mult = 1;
    } else if (strcmp(p, "s") == 0) {
        mult = 1000;
    } else if (strcmp(p, "m") == 0) {
        mult = 60 * 1000;
    } else if (strcmp(p, "h") == 0) {
        mult = 3600 * 1000;
    } else {
        goto bad;
    }
    *ms = v * mult;                         /* < 10^10 * 3.6*10^6: no overflow */
    return TRUE;
bad:
    return perr(c, TVD_POLICY_ERROR_VALUE,
                "expected a duration: an integer and a unit ms, s, m or h (\"30s\")");
}

static gboolean is_dns_label(const char *s)
{
    gsize len = strlen(s);

    if (len == 0 || len > TVD_POLICY_NAME_MAX || s[0] == '-' || s[len - 1] == '-') {
        return FALSE;
    }
    for (const char *p = s; *p; p++) {
        if (!(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '-')) {
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean is_role_name(const char *s)
{
    gsize len = strlen(s);

    if (len == 0 || len > TVD_POLICY_ROLE_MAX || !g_ascii_islower(s[0])) {
        return FALSE;
    }
    for (const char *p = s; *p; p++) {
        if (!(g_ascii_islower(*p) || g_ascii_isdigit(*p) || *p == '-' || *p == '_')) {
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean is_measured_path(const char *s)
{
    return (s[0] == '/' || strcmp(s, "boot_aggregate") == 0) &&
           strlen(s) <= TVD_POLICY_MAX_PATH;
}

/* ---- Sections --------------------------------------------------------------- */

static gboolean parse_domain(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = { "name", "id", "description", NULL };
    JsonObject *o;
    JsonNode *m;
    gsize s;
    const char *str;
    gint64 v;

    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "name", TRUE, &m, &s) || !get_string(c, m, 256, &str)) {
        return FALSE;
    }
    if (!is_dns_label(str)) {
        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "a domain name is one DNS label: 1..%u of a-z, 0-9 and '-', "
                    "not starting or ending with '-'", TVD_POLICY_NAME_MAX);
    }
    d->name = g_strdup(str);
    pop(c, s);
    if (!member(c, o, "id", TRUE, &m, &s) ||
        !get_int(c, m, 1, TVD_POLICY_DOMAIN_ID_MAX, &v)) {
        return FALSE;
    }
    d->id = (guint32)v;
    pop(c, s);
    if (!member(c, o, "description", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        if (!get_string(c, m, TVD_POLICY_MAX_DESCRIPTION, &str)) {
            return FALSE;
        }
        d->description = g_strdup(str);
    }
    pop(c, s);
    return TRUE;
}

static gboolean parse_pcrs(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    JsonObject *o;
    g_autoptr(GList) members = NULL;

    if (!get_object(c, n, &o)) {
        return FALSE;
    }
    members = json_object_get_members(o);
    for (GList *l = members; l; l = l->next) {
        const char *key = l->data;
        gsize s = push_key(c, key);
        guint idx = 0;
        gboolean ok = key[0] != '\0' && strlen(key) <= 2 &&
                      !(key[0] == '0' && key[1] != '\0');

        for (const char *p = key; ok && *p; p++) {
            ok = g_ascii_isdigit(*p);
            idx = idx * 10 + (guint)(*p - '0');
        }
        if (!ok || idx >= TVD_POLICY_PCR_COUNT) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "a PCR index is a decimal number 0..%u", TVD_POLICY_PCR_COUNT - 1);
        }
        if (!get_digest_list(c, json_object_get_member(o, key), TVD_POLICY_MAX_PCR_VALUES,
                             &d->n_pcr_values[idx], &d->pcr_values[idx])) {
            return FALSE;
        }
        d->pcr_mask |= 1u << idx;
        pop(c, s);
    }
    return TRUE;
}

static gboolean parse_references(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = { "path", "sha256", "required", NULL };
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    JsonArray *a;

    if (!get_array(c, n, 0, TVD_POLICY_MAX_REFERENCES, &a)) {
        return FALSE;
    }
    d->n_references = json_array_get_length(a);
    d->references = g_new0(TvdPolicyReference, d->n_references);
    for (guint i = 0; i < d->n_references; i++) {
        TvdPolicyReference *r = &d->references[i];
        gsize si = push_index(c, i), s;
        JsonObject *o;
        JsonNode *m;
        const char *path;

        if (!get_object(c, json_array_get_element(a, i), &o) ||
            !check_members(c, o, known)) {
            return FALSE;
        }
        if (!member(c, o, "path", TRUE, &m, &s) ||
            !get_string(c, m, TVD_POLICY_MAX_PATH, &path)) {
            return FALSE;
        }
        if (!is_measured_path(path)) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "expected an absolute path (or \"boot_aggregate\")");
        }
        r->path = g_strdup(path);
        pop(c, s);
        if (!member(c, o, "sha256", TRUE, &m, &s) ||
            !get_digest_list(c, m, TVD_POLICY_MAX_REF_DIGESTS, &r->n_digests, &r->digests)) {
            return FALSE;
        }
        pop(c, s);
        if (!member(c, o, "required", FALSE, &m, &s) ||
            (m && !get_bool(c, m, &r->required))) {
            return FALSE;
        }
        pop(c, s);
        if (g_hash_table_contains(seen, r->path)) {
            push_key(c, "path");
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "path already listed in membership.reference_digests[%u]",
                        GPOINTER_TO_UINT(g_hash_table_lookup(seen, r->path)) - 1);
        }
        g_hash_table_insert(seen, r->path, GUINT_TO_POINTER(i + 1));
        pop(c, si);
    }
    if (d->n_references > 1) {
        qsort(d->references, d->n_references, sizeof(*d->references), cmp_reference);
    }
    return TRUE;
}

static gboolean parse_allowlist(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    JsonArray *a;
    guint len, out = 0;

    if (!get_array(c, n, 0, TVD_POLICY_MAX_ALLOWLIST, &a)) {
        return FALSE;
    }
    len = json_array_get_length(a);
    d->allowlist = g_malloc0_n(MAX(len, 1), 32);
    for (guint i = 0; i < len; i++) {
        gsize s = push_index(c, i);

        if (!get_digest(c, json_array_get_element(a, i), d->allowlist[i])) {
            return FALSE;
        }
        pop(c, s);
    }
    qsort(d->allowlist, len, 32, cmp32);
    for (guint i = 0; i < len; i++) {
        if (out == 0 || memcmp(d->allowlist[out - 1], d->allowlist[i], 32) != 0) {
            memmove(d->allowlist[out++], d->allowlist[i], 32);
        }
    }
    d->n_allowlist = out;
    return TRUE;
}

static gboolean parse_excludes(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    JsonArray *a;

    if (!get_array(c, n, 0, TVD_POLICY_MAX_EXCLUDES, &a)) {
        return FALSE;
    }
    d->n_excludes = json_array_get_length(a);
    d->excludes = g_new0(char *, d->n_excludes + 1);
    for (guint i = 0; i < d->n_excludes; i++) {
        gsize s = push_index(c, i);
        const char *g;

        if (!get_string(c, json_array_get_element(a, i), TVD_POLICY_MAX_GLOB, &g)) {
            return FALSE;
        }
        if (g[0] != '/' && g[0] != '*') {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "an exclude glob starts with '/' or '*'");
        }
        d->excludes[i] = g_strdup(g);
        pop(c, s);
    }
    return TRUE;
}

static gboolean parse_evidence(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = {
        "ima", "agent_list", "pcr_bank", "ima_violations", NULL
    };
    static const char *const needs[] = { "optional", "required", NULL };
    static const char *const banks[] = { "sha256", "sha384", "sha512", NULL };
    static const guint16 bank_ids[] = {
        TVD_POLICY_BANK_SHA256, TVD_POLICY_BANK_SHA384, TVD_POLICY_BANK_SHA512,
    };
    static const char *const violations[] = { "reject", "allow", NULL };
    JsonObject *o;
    JsonNode *m;
    gsize s;
    guint v;

    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "ima", FALSE, &m, &s) || (m && !get_enum(c, m, needs, &v))) {
        return FALSE;
    }
    if (m) {
        d->ima = (TvdPolicyEvidenceNeed)v;
    }
    pop(c, s);
    if (!member(c, o, "agent_list", FALSE, &m, &s) ||
        (m && !get_enum(c, m, needs, &v))) {
        return FALSE;
    }
    if (m) {
        d->agent_list = (TvdPolicyEvidenceNeed)v;
    }
    pop(c, s);
    if (!member(c, o, "pcr_bank", FALSE, &m, &s) ||
        (m && !get_enum(c, m, banks, &v))) {
        return FALSE;
    }
    if (m) {
        d->pcr_bank = bank_ids[v];
        /* The PCR values and reference digests of a policy are SHA-256. */
        if (d->pcr_bank != TVD_POLICY_BANK_SHA256 && d->pcr_mask) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "membership.pcrs holds SHA-256 values: the bank must "
                        "be \"sha256\"");
        }
    }
    pop(c, s);
    if (!member(c, o, "ima_violations", FALSE, &m, &s) ||
        (m && !get_enum(c, m, violations, &v))) {
        return FALSE;
    }
    if (m) {
        d->ima_violations_allowed = v == 1;
    }
    pop(c, s);
    return TRUE;
}

/*
 * A boot_aggregate reference is enforced: the round recomputes it from
 * the quoted PCRs 0-9 of the (SHA-256) bank and needs the IMA log.
 */
static gboolean check_boot_aggregate(Ctx *c, TvdPolicyData *d)
{
    for (guint i = 0; i < d->n_references; i++) {
        if (strcmp(d->references[i].path, "boot_aggregate") != 0) {
            continue;
        }
        d->boot_aggregate_referenced = TRUE;
        if (d->ima != TVD_POLICY_EVIDENCE_REQUIRED) {
            push_key(c, "reference_digests");
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "a boot_aggregate reference is checked against the "
                        "IMA log: set membership.evidence.ima to "
                        "\"required\"");
        }
        if (d->pcr_bank != TVD_POLICY_BANK_SHA256) {
            push_key(c, "evidence");
            push_key(c, "pcr_bank");
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "a boot_aggregate reference is a SHA-256 digest: the "
                        "bank must be \"sha256\"");
        }
    }
    return TRUE;
}

static gboolean parse_membership(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = {
        "min_agent_version", "pcrs", "reference_digests", "ima_allowlist",
        "excludes", "unlisted", "evidence", NULL
    };
    static const char *const unlisted[] = { "deny", "allow", NULL };
    JsonObject *o;
    JsonNode *m;
    gsize s;

    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "min_agent_version", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        const char *v;

        if (!get_string(c, m, 16, &v)) {
            return FALSE;
        }
        if (!tvd_policy_parse_version(v, &d->min_agent_version)) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "expected a version MAJOR[.MINOR[.PATCH]], each part 0..255");
        }
    }
    pop(c, s);
    if (!member(c, o, "pcrs", FALSE, &m, &s) || (m && !parse_pcrs(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "reference_digests", FALSE, &m, &s) ||
        (m && !parse_references(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "ima_allowlist", FALSE, &m, &s) ||
        (m && !parse_allowlist(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "excludes", FALSE, &m, &s) || (m && !parse_excludes(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "unlisted", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        guint v;

        if (!get_enum(c, m, unlisted, &v)) {
            return FALSE;
        }
        d->unlisted_allowed = v == 1;
    }
    pop(c, s);
    d->ima = TVD_POLICY_EVIDENCE_OPTIONAL;
    d->agent_list = TVD_POLICY_EVIDENCE_REQUIRED;
    d->pcr_bank = TVD_POLICY_BANK_SHA256;
    if (!member(c, o, "evidence", FALSE, &m, &s) || (m && !parse_evidence(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    if (!check_boot_aggregate(c, d)) {
        return FALSE;
    }
    /* A required path that an exclude hides could never be checked. */
    for (guint i = 0; i < d->n_references; i++) {
        for (guint j = 0; j < d->n_excludes; j++) {
            if (tvd_policy_glob_match(d->excludes[j], d->references[i].path)) {
                g_autofree char *glob = g_strescape(d->excludes[j], NULL);
                g_autofree char *path = g_strescape(d->references[i].path, NULL);

                push_key(c, "excludes");
                push_index(c, j);
                return perr(c, TVD_POLICY_ERROR_VALUE, "exclude %s hides the reference path %s",
                            glob, path);
            }
        }
    }
    return TRUE;
}

static gboolean parse_attestation(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = {
        "interval", "deadline", "on_failure", "measurement_pcr", NULL
    };
    static const char *const actions[] = { "quarantine", "revoke", "stop", NULL };
    JsonObject *o = NULL;
    JsonNode *m;
    gsize s;
    guint64 ms;
    gboolean have_deadline = FALSE;

    d->interval_ms = TVD_POLICY_INTERVAL_DEFAULT_MS;
    d->on_failure = TVD_POLICY_ON_FAILURE_QUARANTINE;
    d->measurement_pcr = TVD_POLICY_MEASUREMENT_PCR_DEFAULT;
    if (!n) {
        d->deadline_ms = 2 * d->interval_ms;
        return TRUE;
    }
    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "interval", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        if (!get_duration(c, m, &ms)) {
            return FALSE;
        }
        if (ms < TVD_POLICY_INTERVAL_MIN_MS || ms > TVD_POLICY_INTERVAL_MAX_MS) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "interval must be 100ms..24h");
        }
        d->interval_ms = (guint32)ms;
    }
    pop(c, s);
    if (!member(c, o, "deadline", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        if (!get_duration(c, m, &ms)) {
            return FALSE;
        }
        if (ms <= d->interval_ms || ms > TVD_POLICY_DEADLINE_MAX_MS) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "deadline must be longer than the interval (%u ms) and at most 48h",
                        d->interval_ms);
        }
        d->deadline_ms = (guint32)ms;
        have_deadline = TRUE;
    }
    pop(c, s);
    if (!have_deadline) {
        d->deadline_ms = 2 * d->interval_ms;
    }
    if (!member(c, o, "on_failure", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        guint v;

        if (!get_enum(c, m, actions, &v)) {
            return FALSE;
        }
        d->on_failure = (TvdPolicyOnFailure)(v + 1);
    }
    pop(c, s);
    if (!member(c, o, "measurement_pcr", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        gint64 v;

        if (!get_int(c, m, 0, TVD_POLICY_PCR_COUNT - 1, &v)) {
            return FALSE;
        }
        if (v < TVD_POLICY_MEASUREMENT_PCR_MIN || v > TVD_POLICY_MEASUREMENT_PCR_MAX) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "PCR %" G_GINT64_FORMAT " may not hold the agent's list: "
                        "use %u..%u (0-9 boot, 10 IMA, 16 and 23 resettable, "
                        "17-22 dynamic launch)", v, TVD_POLICY_MEASUREMENT_PCR_MIN,
                        TVD_POLICY_MEASUREMENT_PCR_MAX);
        }
        d->measurement_pcr = (guint8)v;
    }
    pop(c, s);
    return TRUE;
}

static gboolean parse_subnet(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    const char *str, *slash;
    char addr[64];
    guint prefix = 0, bits, minp, maxp;
    gsize alen;

    if (!get_string(c, n, 64, &str)) {
        return FALSE;
    }
    slash = strchr(str, '/');
    alen = slash ? (gsize)(slash - str) : 0;
    if (!slash || alen == 0 || alen >= sizeof(addr) || slash[1] == '\0' ||
        strlen(slash + 1) > 3) {
        goto bad;
    }
    memcpy(addr, str, alen);
    addr[alen] = '\0';
    for (const char *p = slash + 1; *p; p++) {
        if (!g_ascii_isdigit(*p)) {
            goto bad;
        }
        prefix = prefix * 10 + (guint)(*p - '0');
    }
    if (inet_pton(AF_INET, addr, d->subnet_addr) == 1) {
        d->subnet_family = 4;
        bits = 32;
        minp = 8;
        maxp = 30;
    } else if (inet_pton(AF_INET6, addr, d->subnet_addr) == 1) {
        d->subnet_family = 6;
        bits = 128;
        minp = 16;
        maxp = 126;
    } else {
        goto bad;
    }
    if (prefix < minp || prefix > maxp) {
        return perr(c, TVD_POLICY_ERROR_VALUE, "IPv%u prefix length must be %u..%u",
                    d->subnet_family, minp, maxp);
    }
    for (guint i = prefix; i < bits; i++) {
        if (d->subnet_addr[i / 8] & (0x80u >> (i % 8))) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "host bits are set: %s is not a network address for /%u",
                        addr, prefix);
        }
    }
    d->subnet_prefix = (guint8)prefix;
    return TRUE;
bad:
    return perr(c, TVD_POLICY_ERROR_VALUE,
                "expected a subnet in CIDR notation (\"10.100.0.0/24\", \"fd00:64::/64\")");
}

static gboolean parse_ports(Ctx *c, JsonNode *n, TvdPolicyRule *r)
{
    JsonArray *a;

    if (!get_array(c, n, 1, TVD_POLICY_MAX_PORTS, &a)) {
        return FALSE;
    }
    r->n_ports = json_array_get_length(a);
    r->ports = g_new0(TvdPolicyPortRange, r->n_ports);
    for (guint i = 0; i < r->n_ports; i++) {
        gsize s = push_index(c, i);
        JsonNode *e = json_array_get_element(a, i);
        guint64 lo, hi;

        if (json_node_get_node_type(e) == JSON_NODE_VALUE &&
            json_node_get_value_type(e) == G_TYPE_INT64) {
            gint64 v = json_node_get_int(e);

            if (v < 1 || v > 65535) {
                return perr(c, TVD_POLICY_ERROR_VALUE,
                            "port %" G_GINT64_FORMAT " is out of range 1..65535", v);
            }
            lo = hi = (guint64)v;
        } else if (json_node_get_node_type(e) == JSON_NODE_VALUE &&
                   json_node_get_value_type(e) == G_TYPE_STRING) {
            const char *str = json_node_get_string(e);
            g_auto(GStrv) parts = g_strsplit(str, "-", 3);

            if (g_strv_length(parts) != 2 ||
                !g_ascii_string_to_unsigned(parts[0], 10, 1, 65535, &lo, NULL) ||
                !g_ascii_string_to_unsigned(parts[1], 10, 1, 65535, &hi, NULL) ||
                !g_ascii_isdigit(parts[0][0]) || !g_ascii_isdigit(parts[1][0])) {
                return perr(c, TVD_POLICY_ERROR_VALUE,
                            "expected a port range \"FIRST-LAST\" of ports 1..65535");
            }
            if (lo > hi) {
                return perr(c, TVD_POLICY_ERROR_VALUE,
                            "empty port range: %" G_GUINT64_FORMAT " > %" G_GUINT64_FORMAT,
                            lo, hi);
            }
        } else {
            return perr(c, TVD_POLICY_ERROR_TYPE,
                        "expected a port number or a range string, got %s", node_kind(e));
        }
        r->ports[i].first = (guint16)lo;
        r->ports[i].last = (guint16)hi;
        pop(c, s);
    }
    return TRUE;
}

static gboolean check_role_ref(Ctx *c, const TvdPolicyData *d, const char *role)
{
    if (strcmp(role, "*") == 0 || g_strv_contains((const char *const *)d->roles, role)) {
        return TRUE;
    }
    {
        g_autofree char *shown = g_strescape(role, NULL);

        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "role \"%s\" is not in network.roles (nor \"*\")", shown);
    }
}

static gboolean parse_rules(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = { "from", "to", "protocol", "ports", NULL };
    static const char *const protos[] = { "tcp", "udp", "icmp", "any", NULL };
    static const TvdPolicyProtocol proto_val[] = {
        TVD_POLICY_PROTO_TCP, TVD_POLICY_PROTO_UDP, TVD_POLICY_PROTO_ICMP,
        TVD_POLICY_PROTO_ANY,
    };
    JsonArray *a;

    if (!get_array(c, n, 0, TVD_POLICY_MAX_RULES, &a)) {
        return FALSE;
    }
    d->n_rules = json_array_get_length(a);
    d->rules = g_new0(TvdPolicyRule, d->n_rules);
    for (guint i = 0; i < d->n_rules; i++) {
        TvdPolicyRule *r = &d->rules[i];
        gsize si = push_index(c, i), s;
        JsonObject *o;
        JsonNode *m;
        const char *str;
        guint p;

        if (!get_object(c, json_array_get_element(a, i), &o) ||
            !check_members(c, o, known)) {
            return FALSE;
        }
        if (!member(c, o, "from", TRUE, &m, &s) ||
            !get_string(c, m, TVD_POLICY_ROLE_MAX, &str) || !check_role_ref(c, d, str)) {
            return FALSE;
        }
        r->from = g_strdup(str);
        pop(c, s);
        if (!member(c, o, "to", TRUE, &m, &s) ||
            !get_string(c, m, TVD_POLICY_ROLE_MAX, &str) || !check_role_ref(c, d, str)) {
            return FALSE;
        }
        r->to = g_strdup(str);
        pop(c, s);
        if (!member(c, o, "protocol", TRUE, &m, &s) || !get_enum(c, m, protos, &p)) {
            return FALSE;
        }
        r->protocol = proto_val[p];
        pop(c, s);
        if (!member(c, o, "ports", FALSE, &m, &s)) {
            return FALSE;
        }
        if (m) {
            if (r->protocol != TVD_POLICY_PROTO_TCP && r->protocol != TVD_POLICY_PROTO_UDP) {
                return perr(c, TVD_POLICY_ERROR_VALUE,
                            "ports apply to tcp and udp only, not to %s", protos[p]);
            }
            if (!parse_ports(c, m, r)) {
                return FALSE;
            }
        }
        pop(c, s);
        pop(c, si);
    }
    return TRUE;
}

static gboolean parse_network(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = {
        "subnet", "encryption", "roles", "default_role", "intra_default", "rules", NULL
    };
    static const char *const enc[] = { "none", "wireguard", NULL };
    static const char *const intra[] = { "deny", "allow", NULL };
    JsonObject *o;
    JsonNode *m;
    JsonArray *a;
    gsize s;
    guint v;

    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "subnet", TRUE, &m, &s) || !parse_subnet(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    d->encryption = TVD_POLICY_ENCRYPTION_WIREGUARD;
    if (!member(c, o, "encryption", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        if (!get_enum(c, m, enc, &v)) {
            return FALSE;
        }
        d->encryption = v == 0 ? TVD_POLICY_ENCRYPTION_NONE : TVD_POLICY_ENCRYPTION_WIREGUARD;
    }
    pop(c, s);
    if (!member(c, o, "roles", TRUE, &m, &s) ||
        !get_array(c, m, 1, TVD_POLICY_MAX_ROLES, &a)) {
        return FALSE;
    }
    d->n_roles = json_array_get_length(a);
    d->roles = g_new0(char *, d->n_roles + 1);
    for (guint i = 0; i < d->n_roles; i++) {
        gsize si = push_index(c, i);
        const char *role;

        if (!get_string(c, json_array_get_element(a, i), 64, &role)) {
            return FALSE;
        }
        if (!is_role_name(role)) {
            return perr(c, TVD_POLICY_ERROR_VALUE,
                        "a role name is 1..%u of a-z, 0-9, '-' and '_', starting with a letter",
                        TVD_POLICY_ROLE_MAX);
        }
        if (g_strv_contains((const char *const *)d->roles, role)) {
            return perr(c, TVD_POLICY_ERROR_VALUE, "role \"%s\" is listed twice", role);
        }
        d->roles[i] = g_strdup(role);
        pop(c, si);
    }
    pop(c, s);
    if (!member(c, o, "default_role", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        const char *role;

        if (!get_string(c, m, 64, &role)) {
            return FALSE;
        }
        if (!g_strv_contains((const char *const *)d->roles, role)) {
            g_autofree char *shown = g_strescape(role, NULL);

            return perr(c, TVD_POLICY_ERROR_VALUE, "role \"%s\" is not in network.roles",
                        shown);
        }
        d->default_role = g_strdup(role);
    }
    pop(c, s);
    if (!member(c, o, "intra_default", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        if (!get_enum(c, m, intra, &v)) {
            return FALSE;
        }
        d->intra_default_allow = v == 1;
    }
    pop(c, s);
    if (!member(c, o, "rules", FALSE, &m, &s) || (m && !parse_rules(c, m, d))) {
        return FALSE;
    }
    pop(c, s);
    return TRUE;
}

static gboolean parse_properties(Ctx *c, JsonNode *n, TvdPolicyData *d)
{
    static const char *const known[] = {
        "confinement", "integrity", "secure_io", "reset", "availability", "auditing", NULL
    };
    static const char *const bools[] = {
        "confinement", "integrity", "secure_io", "reset", NULL, "auditing"
    };
    static const char *const avail_known[] = {
        "max_vcpus", "max_memory_mib", "max_members_per_host", NULL
    };
    JsonObject *o, *ao;
    JsonNode *m;
    gsize s;

    /* Default: every property except availability (which needs limits). */
    d->properties = TVD_POLICY_PROP_ALL & ~(guint32)TVD_POLICY_PROP_AVAILABILITY;
    if (!n) {
        goto check;
    }
    if (!get_object(c, n, &o) || !check_members(c, o, known)) {
        return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(bools); i++) {
        gboolean b;

        if (!bools[i]) {
            continue;
        }
        if (!member(c, o, bools[i], FALSE, &m, &s)) {
            return FALSE;
        }
        if (m) {
            if (!get_bool(c, m, &b)) {
                return FALSE;
            }
            if (b) {
                d->properties |= 1u << i;
            } else {
                d->properties &= ~(1u << i);
            }
        }
        pop(c, s);
    }
    if (!member(c, o, "availability", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        gint64 v;
        gsize s2;
        JsonNode *am;

        if (!get_object(c, m, &ao) || !check_members(c, ao, avail_known)) {
            return FALSE;
        }
        d->properties |= TVD_POLICY_PROP_AVAILABILITY;
        if (!member(c, ao, "max_vcpus", FALSE, &am, &s2) ||
            (am && !get_int(c, am, 1, 1024, &v))) {
            return FALSE;
        }
        d->max_vcpus = am ? (guint32)v : 0;
        pop(c, s2);
        if (!member(c, ao, "max_memory_mib", FALSE, &am, &s2) ||
            (am && !get_int(c, am, 16, 16 * 1024 * 1024, &v))) {
            return FALSE;
        }
        d->max_memory_mib = am ? (guint64)v : 0;
        pop(c, s2);
        if (!member(c, ao, "max_members_per_host", FALSE, &am, &s2) ||
            (am && !get_int(c, am, 1, 100000, &v))) {
            return FALSE;
        }
        d->max_members_per_host = am ? (guint32)v : 0;
        pop(c, s2);
    }
    pop(c, s);
check:
    if ((d->properties & TVD_POLICY_PROP_SECURE_IO) &&
        d->encryption == TVD_POLICY_ENCRYPTION_NONE) {
        push_key(c, "secure_io");
        return perr(c, TVD_POLICY_ERROR_VALUE,
                    "secure_io needs network.encryption \"wireguard\"");
    }
    return TRUE;
}

static gboolean parse_root(Ctx *c, JsonNode *root, TvdPolicyData *d)
{
    static const char *const known[] = {
        "tvd_policy", "serial", "description", "domain", "membership",
        "attestation", "network", "properties", NULL
    };
    JsonObject *o;
    JsonNode *m;
    gsize s;
    gint64 v;

    if (!get_object(c, root, &o)) {
        return FALSE;
    }
    /* The version first: an unknown version's fields are not ours to judge. */
    if (!member(c, o, "tvd_policy", TRUE, &m, &s) || !get_int(c, m, 0, G_MAXINT32, &v)) {
        return FALSE;
    }
    if (v != TVD_POLICY_FORMAT_VERSION) {
        return perr(c, TVD_POLICY_ERROR_VERSION,
                    "format version %" G_GINT64_FORMAT " is not supported (this is %d)",
                    v, TVD_POLICY_FORMAT_VERSION);
    }
    pop(c, s);
    if (!check_members(c, o, known)) {
        return FALSE;
    }
    if (!member(c, o, "serial", TRUE, &m, &s) ||
        !get_int(c, m, 1, (gint64)TVD_POLICY_SERIAL_MAX, &v)) {
        return FALSE;
    }
    d->serial = (guint64)v;
    pop(c, s);
    if (!member(c, o, "description", FALSE, &m, &s)) {
        return FALSE;
    }
    if (m) {
        const char *str;

        if (!get_string(c, m, TVD_POLICY_MAX_DESCRIPTION, &str)) {
            return FALSE;
        }
        g_free(d->description);
        d->description = g_strdup(str);
    }
    pop(c, s);
    if (!member(c, o, "domain", TRUE, &m, &s) || !parse_domain(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "membership", TRUE, &m, &s) || !parse_membership(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "attestation", FALSE, &m, &s) || !parse_attestation(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "network", TRUE, &m, &s) || !parse_network(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    if (!member(c, o, "properties", FALSE, &m, &s) || !parse_properties(c, m, d)) {
        return FALSE;
    }
    pop(c, s);
    return TRUE;
}

/* ---- Canonical form ---------------------------------------------------------- */

static void canon_str(GString *g, const char *key, const char *v)
{
    g_string_append_printf(g, "%s=", key);
    if (v) {
        g_autofree char *e = g_strescape(v, NULL);

        g_string_append_printf(g, "\"%s\"", e);
    } else {
        g_string_append(g, "null");
    }
    g_string_append_c(g, '\n');
}

static void canon_digest(GString *g, const guint8 d[32])
{
    for (int i = 0; i < 32; i++) {
        g_string_append_printf(g, "%02x", d[i]);
    }
}

static void canon_membership(GString *g, const TvdPolicyData *d)
{
    g_string_append_printf(g, "membership.min_agent_version=%06x\n", d->min_agent_version);
    for (guint i = 0; i < TVD_POLICY_PCR_COUNT; i++) {
        g_autofree guint8 (*sorted)[32] = NULL;

        if (!(d->pcr_mask & (1u << i))) {
            continue;
        }
        sorted = g_memdup2(d->pcr_values[i], (gsize)d->n_pcr_values[i] * 32);
        qsort(sorted, d->n_pcr_values[i], 32, cmp32);
        g_string_append_printf(g, "membership.pcrs.%u=", i);
        for (guint j = 0; j < d->n_pcr_values[i]; j++) {
            if (j == 0 || memcmp(sorted[j - 1], sorted[j], 32) != 0) {
                canon_digest(g, sorted[j]);
                g_string_append_c(g, ',');
            }
        }
        g_string_append_c(g, '\n');
    }
    for (guint i = 0; i < d->n_references; i++) {
        const TvdPolicyReference *r = &d->references[i];
        g_autofree guint8 (*sorted)[32] = g_memdup2(r->digests, (gsize)r->n_digests * 32);

        qsort(sorted, r->n_digests, 32, cmp32);
        canon_str(g, "membership.reference.path", r->path);
        g_string_append_printf(g, "membership.reference.required=%d\n", r->required);
        g_string_append(g, "membership.reference.sha256=");
        for (guint j = 0; j < r->n_digests; j++) {
            if (j == 0 || memcmp(sorted[j - 1], sorted[j], 32) != 0) {
                canon_digest(g, sorted[j]);
                g_string_append_c(g, ',');
            }
        }
        g_string_append_c(g, '\n');
    }
    g_string_append_printf(g, "membership.ima_allowlist=%u:", d->n_allowlist);
    for (guint i = 0; i < d->n_allowlist; i++) {
        canon_digest(g, d->allowlist[i]);
        g_string_append_c(g, ',');
    }
    g_string_append_c(g, '\n');
    if (d->n_excludes > 0) {
        g_autofree char **ex = g_memdup2(d->excludes, sizeof(char *) * d->n_excludes);

        qsort(ex, d->n_excludes, sizeof(char *), cmp_str);
        for (guint i = 0; i < d->n_excludes; i++) {
            canon_str(g, "membership.exclude", ex[i]);
        }
    }
    g_string_append_printf(g, "membership.unlisted=%s\n",
                           d->unlisted_allowed ? "allow" : "deny");
    /* Only what differs from the defaults: policies written before
     * membership.evidence keep their digests. */
    if (d->ima != TVD_POLICY_EVIDENCE_OPTIONAL) {
        g_string_append(g, "membership.evidence.ima=required\n");
    }
    if (d->agent_list != TVD_POLICY_EVIDENCE_REQUIRED) {
        g_string_append(g, "membership.evidence.agent_list=optional\n");
    }
    if (d->pcr_bank != TVD_POLICY_BANK_SHA256) {
        g_string_append_printf(g, "membership.evidence.pcr_bank=%04x\n",
                               d->pcr_bank);
    }
    if (d->ima_violations_allowed) {
        g_string_append(g, "membership.evidence.ima_violations=allow\n");
    }
    /* The agent's list lives in this PCR: a change re-evaluates members. */
    g_string_append_printf(g, "attestation.measurement_pcr=%u\n", d->measurement_pcr);
}

static void canon_attestation(GString *g, const TvdPolicyData *d)
{
    g_string_append_printf(g, "attestation.interval_ms=%u\nattestation.deadline_ms=%u\n"
                           "attestation.on_failure=%s\nattestation.measurement_pcr=%u\n",
                           d->interval_ms, d->deadline_ms,
                           tvd_policy_on_failure_name(d->on_failure), d->measurement_pcr);
}

static void canon_network(GString *g, const TvdPolicyData *d)
{
    char addr[64];

    inet_ntop(d->subnet_family == 4 ? AF_INET : AF_INET6, d->subnet_addr, addr,
              sizeof(addr));
    g_string_append_printf(g, "network.subnet=%s/%u\nnetwork.encryption=%s\n", addr,
                           d->subnet_prefix,
                           d->encryption == TVD_POLICY_ENCRYPTION_NONE ? "none" : "wireguard");
    {
        g_autofree char **roles = g_memdup2(d->roles, sizeof(char *) * (d->n_roles + 1));

        qsort(roles, d->n_roles, sizeof(char *), cmp_str);
        for (guint i = 0; i < d->n_roles; i++) {
            canon_str(g, "network.role", roles[i]);
        }
    }
    canon_str(g, "network.default_role", d->default_role);
    g_string_append_printf(g, "network.intra_default=%s\n",
                           d->intra_default_allow ? "allow" : "deny");
    /* Rules are allow rules: their order does not matter, but they are kept
     * in document order here (sorting them is not worth the code). */
    for (guint i = 0; i < d->n_rules; i++) {
        const TvdPolicyRule *r = &d->rules[i];

        g_string_append_printf(g, "network.rule=%s>%s/%u:", r->from, r->to, r->protocol);
        for (guint j = 0; j < r->n_ports; j++) {
            g_string_append_printf(g, "%u-%u,", r->ports[j].first, r->ports[j].last);
        }
        g_string_append_c(g, '\n');
    }
}

static void canon_properties(GString *g, const TvdPolicyData *d)
{
    g_string_append_printf(g, "properties=%02x\nproperties.max_vcpus=%u\n"
                           "properties.max_memory_mib=%" G_GUINT64_FORMAT "\n"
                           "properties.max_members_per_host=%u\n",
                           d->properties, d->max_vcpus, d->max_memory_mib,
                           d->max_members_per_host);
}

static void canon_other(GString *g, const TvdPolicyData *d)
{
    g_string_append_printf(g, "tvd_policy=%d\nserial=%" G_GUINT64_FORMAT "\n",
                           TVD_POLICY_FORMAT_VERSION, d->serial);
    canon_str(g, "description", d->description);
    canon_str(g, "domain.name", d->name);
    g_string_append_printf(g, "domain.id=%u\n", d->id);
}

static void compute_digests(TvdPolicy *p)
{
    void (*const fns[N_SECTIONS])(GString *, const TvdPolicyData *) = {
        canon_membership, canon_attestation, canon_network, canon_properties, canon_other,
    };
    g_autoptr(GString) all = g_string_new(NULL);
    guint8 d[32];

    for (guint i = 0; i < N_SECTIONS; i++) {
        g_autoptr(GString) g = g_string_new(NULL);

        fns[i](g, &p->d);
        sha256(g->str, g->len, p->section_digest[i]);
        g_string_append_len(all, g->str, (gssize)g->len);
    }
    sha256(all->str, all->len, d);
    p->canonical_str = digest_string(d);
    p->membership_str = digest_string(p->section_digest[SECTION_MEMBERSHIP]);
}

/* ---- Public API ---------------------------------------------------------------- */

static void data_clear(TvdPolicyData *d)
{
    g_free(d->description);
    g_free(d->name);
    for (guint i = 0; i < TVD_POLICY_PCR_COUNT; i++) {
        g_free(d->pcr_values[i]);
    }
    for (guint i = 0; i < d->n_references; i++) {
        g_free(d->references[i].path);
        g_free(d->references[i].digests);
    }
    g_free(d->references);
    g_free(d->allowlist);
    g_strfreev(d->excludes);
    g_strfreev(d->roles);
    g_free(d->default_role);
    for (guint i = 0; i < d->n_rules; i++) {
        g_free(d->rules[i].from);
        g_free(d->rules[i].to);
        g_free(d->rules[i].ports);
    }
    g_free(d->rules);
    memset(d, 0, sizeof(*d));
}

TvdPolicy *tvd_policy_parse_bytes(GBytes *bytes, const char *source,
                                  TvdPolicyErrorLocation *loc, GError **error)
{
    gsize len;
    const char *data = g_bytes_get_data(bytes, &len);
    g_autoptr(JsonParser) parser = NULL;
    g_autoptr(GError) jerr = NULL;
    g_autoptr(GString) path = g_string_new(NULL);
    TvdPolicyErrorLocation tmp = { NULL, 0, 0 };
    TvdPolicy *p;
    Ctx c;

    if (!source) {
        source = "policy";
    }
    if (loc) {
        tvd_policy_error_location_clear(loc);
    } else {
        loc = &tmp;
    }
    if (len > TVD_POLICY_MAX_BYTES) {
        loc->path = g_strdup("");
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_TOO_LARGE,
                    "%s: %zu bytes, a policy may have at most %u", source, len,
                    TVD_POLICY_MAX_BYTES);
        return NULL;
    }
    if (!tvd_policy_json_check(data ? data : "", len, loc, &jerr)) {
        if (loc->path && loc->path[0]) {
            g_set_error(error, TVD_POLICY_ERROR, jerr->code, "%s:%u:%u: %s: %s", source,
                        loc->line, loc->column, loc->path, jerr->message);
        } else {
            g_set_error(error, TVD_POLICY_ERROR, jerr->code, "%s:%u:%u: %s", source,
                        loc->line, loc->column, jerr->message);
        }
        tvd_policy_error_location_clear(&tmp);
        return NULL;
    }
    parser = json_parser_new_immutable();
    if (!json_parser_load_from_data(parser, data, (gssize)len, &jerr)) {
        /* Unreachable for text the strict check accepted; kept as a net. */
        loc->path = g_strdup("");
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SYNTAX, "%s: %s", source,
                    jerr->message);
        tvd_policy_error_location_clear(&tmp);
        return NULL;
    }
    p = g_new0(TvdPolicy, 1);
    g_atomic_ref_count_init(&p->ref);
    c = (Ctx){ data, len, source, path, loc, error };
    if (!parse_root(&c, json_parser_get_root(parser), &p->d)) {
        data_clear(&p->d);
        g_free(p);
        tvd_policy_error_location_clear(&tmp);
        return NULL;
    }
    p->bytes = g_bytes_ref(bytes);
    sha256(data, len, p->digest);
    p->digest_str = digest_string(p->digest);
    compute_digests(p);
    return p;
}

TvdPolicy *tvd_policy_parse(const void *data, gsize len, const char *source,
                            TvdPolicyErrorLocation *loc, GError **error)
{
    g_autoptr(GBytes) b = g_bytes_new(data, len);

    return tvd_policy_parse_bytes(b, source, loc, error);
}

TvdPolicy *tvd_policy_load_file(const char *path, TvdPolicyErrorLocation *loc,
                                GError **error)
{
    g_autofree char *buf = NULL;
    g_autoptr(GBytes) b = NULL;
    gsize cap = TVD_POLICY_MAX_BYTES + 1, got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        int e = errno;

        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO, "%s: %s", path,
                    g_strerror(e));
        return NULL;
    }
    buf = g_malloc(cap);
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;

            close(fd);
            g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO, "%s: %s", path,
                        g_strerror(e));
            return NULL;
        }
        if (n == 0) {
            break;
        }
        got += (gsize)n;
    }
    close(fd);
    b = g_bytes_new(buf, got);
    return tvd_policy_parse_bytes(b, path, loc, error);
}

TvdPolicy *tvd_policy_ref(TvdPolicy *policy)
{
    g_atomic_ref_count_inc(&policy->ref);
    return policy;
}

void tvd_policy_unref(TvdPolicy *policy)
{
    if (policy && g_atomic_ref_count_dec(&policy->ref)) {
        data_clear(&policy->d);
        g_bytes_unref(policy->bytes);
        g_free(policy->digest_str);
        g_free(policy->canonical_str);
        g_free(policy->membership_str);
        g_free(policy);
    }
}

const TvdPolicyData *tvd_policy_data(const TvdPolicy *policy)
{
    return &policy->d;
}

GBytes *tvd_policy_get_bytes(const TvdPolicy *policy)
{
    return policy->bytes;
}

const guint8 *tvd_policy_get_digest(const TvdPolicy *policy)
{
    return policy->digest;
}

const char *tvd_policy_get_digest_string(const TvdPolicy *policy)
{
    return policy->digest_str;
}

const char *tvd_policy_get_canonical_digest(const TvdPolicy *policy)
{
    return policy->canonical_str;
}

const char *tvd_policy_get_membership_digest(const TvdPolicy *policy)
{
    return policy->membership_str;
}

gboolean tvd_policy_has_role(const TvdPolicy *policy, const char *role)
{
    return role && g_strv_contains((const char *const *)policy->d.roles, role);
}

const char *tvd_policy_on_failure_name(TvdPolicyOnFailure action)
{
    switch (action) {
    case TVD_POLICY_ON_FAILURE_QUARANTINE:
        return "quarantine";
    case TVD_POLICY_ON_FAILURE_REVOKE:
        return "revoke";
    case TVD_POLICY_ON_FAILURE_STOP:
        return "stop";
    default:
        return "unknown";
    }
}

guint32 tvd_policy_diff(const TvdPolicy *old_policy, const TvdPolicy *new_policy)
{
    static const guint32 flag[N_SECTIONS] = {
        TVD_POLICY_CHANGE_MEMBERSHIP, TVD_POLICY_CHANGE_ATTESTATION,
        TVD_POLICY_CHANGE_NETWORK, TVD_POLICY_CHANGE_PROPERTIES, TVD_POLICY_CHANGE_OTHER,
    };
    guint32 changes = 0;

    for (guint i = 0; i < N_SECTIONS; i++) {
        if (memcmp(old_policy->section_digest[i], new_policy->section_digest[i], 32) != 0) {
            changes |= flag[i];
        }
    }
    return changes;
}

gboolean tvd_policy_membership_changed(const TvdPolicy *old_policy,
                                       const TvdPolicy *new_policy)
{
    return (tvd_policy_diff(old_policy, new_policy) & TVD_POLICY_CHANGE_MEMBERSHIP) != 0;
}

gboolean tvd_policy_check_update(const TvdPolicy *old_policy,
                                 const TvdPolicy *new_policy, GError **error)
{
    if (strcmp(old_policy->d.name, new_policy->d.name) != 0 ||
        old_policy->d.id != new_policy->d.id) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE,
                    "update names domain %s (%u), the policy is for %s (%u)",
                    new_policy->d.name, new_policy->d.id, old_policy->d.name,
                    old_policy->d.id);
        return FALSE;
    }
    if (new_policy->d.serial <= old_policy->d.serial) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE,
                    "update has serial %" G_GUINT64_FORMAT ", not above the current %"
                    G_GUINT64_FORMAT " (rollback refused)",
                    new_policy->d.serial, old_policy->d.serial);
        return FALSE;
    }
    return TRUE;
}

/* ---- Host properties and limits -------------------------------------------- */

gboolean tvd_policy_host_can_carry(const TvdPolicy *policy, guint32 host_properties,
                                   char **reason)
{
    static const char *const names[] = {
        "confinement", "integrity", "secure_io", "reset", "availability", "auditing",
    };
    guint32 missing = policy->d.properties & ~host_properties;
    g_autoptr(GString) s = NULL;

    if (!missing) {
        return TRUE;
    }
    s = g_string_new("host lacks required properties:");
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        if (missing & (1u << i)) {
            g_string_append_printf(s, " %s", names[i]);
        }
    }
    if (reason) {
        *reason = g_string_free(g_steal_pointer(&s), FALSE);
    }
    return FALSE;
}

gboolean tvd_policy_check_vm_limits(const TvdPolicy *policy, guint32 vcpus,
                                    guint64 memory_mib, guint32 members_on_host,
                                    char **reason)
{
    const TvdPolicyData *d = &policy->d;
    char *r = NULL;

    if (d->max_vcpus && vcpus > d->max_vcpus) {
        r = g_strdup_printf("%u vCPUs above the domain's limit of %u", vcpus, d->max_vcpus);
    } else if (d->max_memory_mib && memory_mib > d->max_memory_mib) {
        r = g_strdup_printf("%" G_GUINT64_FORMAT " MiB of memory above the domain's limit "
                            "of %" G_GUINT64_FORMAT " MiB", memory_mib, d->max_memory_mib);
    } else if (d->max_members_per_host && members_on_host >= d->max_members_per_host) {
        r = g_strdup_printf("the host already carries %u members of the domain (limit %u)",
                            members_on_host, d->max_members_per_host);
    }
    if (!r) {
        return TRUE;
    }
    if (reason) {
        *reason = r;
    } else {
        g_free(r);
    }
    return FALSE;
}
