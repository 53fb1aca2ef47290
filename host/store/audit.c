/*
 * tvd audit log: canonical records, SHA-256 chain, SQLite file, anchor in
 * the store, verification of the log and of exports. See audit.h and
 * docs/store.md.
 *
 * Why a file of its own and not a table in the store: the audit log belongs
 * to one host and only grows, while the store may be the cluster's etcd,
 * whose size limits and replication are meant for small, current state.
 * The cluster store keeps only the anchor (the head hash). A separate SQLite
 * file also gives the log its own retention and backup and keeps its
 * append transactions from ever contending with membership writes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-audit"

#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sqlite3.h>

#include "json-depth.h"

G_DEFINE_QUARK(tvd-audit-error-quark, tvd_audit_error)

#define AUDIT_APPLICATION_ID 1414939713     /* "TVDA" */
#define AUDIT_SCHEMA_VERSION 1
#define ANCHOR_CAS_TRIES 16

struct _TvdAuditLog {
    GMutex lock;
    sqlite3 *db;
    char *path;
    TvdStore *anchor_store;
    char *anchor_key;
};

/* ---- Records ---------------------------------------------------------------- */

void tvd_audit_record_free(TvdAuditRecord *rec)
{
    if (!rec) {
        return;
    }
    g_free(rec->time);
    g_free(rec->actor);
    g_free(rec->vm);
    g_free(rec->domain);
    g_free(rec->event);
    g_free(rec->reason);
    g_clear_pointer(&rec->details, json_node_unref);
    g_free(rec);
}

void tvd_audit_report_clear(TvdAuditReport *report)
{
    g_clear_pointer(&report->why, g_free);
    memset(report, 0, sizeof(*report));
}

const char *tvd_audit_fault_name(TvdAuditFault fault)
{
    switch (fault) {
    case TVD_AUDIT_OK:
        return "ok";
    case TVD_AUDIT_MALFORMED:
        return "malformed";
    case TVD_AUDIT_HASH_MISMATCH:
        return "hash-mismatch";
    case TVD_AUDIT_PREV_MISMATCH:
        return "chain-broken";
    case TVD_AUDIT_GAP:
        return "gap";
    case TVD_AUDIT_REORDERED:
        return "reordered";
    case TVD_AUDIT_TRUNCATED:
        return "truncated";
    case TVD_AUDIT_ANCHOR_MISMATCH:
        return "anchor-mismatch";
    }
    return "unknown";
}

static gboolean malformed(GError **error, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static gboolean malformed(GError **error, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error_literal(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED, msg);
    return FALSE;
}

/* ---- Canonical JSON ------------------------------------------------------------
 * Objects: members sorted bytewise by name; no whitespace; integers as
 * decimal int64 (no fractions or exponents: floats are refused); strings
 * with '"' and '\\' escaped, \b \f \n \r \t for those controls, \u00xx
 * (lowercase hex) for the other controls below 0x20, everything else
 * (including non-ASCII UTF-8) as is; true, false, null.
 */

static void canon_string(GString *out, const char *s)
{
    g_string_append_c(out, '"');
    for (const guint8 *p = (const guint8 *)s; *p; p++) {
        switch (*p) {
        case '"':
            g_string_append(out, "\\\"");
            break;
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\b':
            g_string_append(out, "\\b");
            break;
        case '\f':
            g_string_append(out, "\\f");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '\r':
            g_string_append(out, "\\r");
            break;
        case '\t':
            g_string_append(out, "\\t");
            break;
        default:
            if (*p < 0x20) {
                g_string_append_printf(out, "\\u%04x", *p);
            } else {
                g_string_append_c(out, (char)*p);
            }
        }
    }
    g_string_append_c(out, '"');
}

static gboolean canon_text(GString *out, const char *s, GError **error)
{
    if (!g_utf8_validate(s, -1, NULL)) {
        return malformed(error, "string is not valid UTF-8");
    }
    canon_string(out, s);
    return TRUE;
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(a, b);
}

static gboolean canon_node(GString *out, JsonNode *node, guint depth,
                           GError **error)
{
    if (depth > TVD_AUDIT_MAX_DEPTH) {
        return malformed(error, "details nest deeper than %u",
                         TVD_AUDIT_MAX_DEPTH);
    }
    if (out->len > TVD_AUDIT_MAX_RECORD) {
        return malformed(error, "record larger than %u bytes",
                         TVD_AUDIT_MAX_RECORD);
    }
    switch (json_node_get_node_type(node)) {
    case JSON_NODE_OBJECT: {
        JsonObject *obj = json_node_get_object(node);
        g_autoptr(GList) names = json_object_get_members(obj);
        names = g_list_sort(names, cmp_names);
        g_string_append_c(out, '{');
        for (GList *l = names; l; l = l->next) {
            if (l != names) {
                g_string_append_c(out, ',');
            }
            if (!canon_text(out, l->data, error)) {
                return FALSE;
            }
            g_string_append_c(out, ':');
            if (!canon_node(out, json_object_get_member(obj, l->data),
                            depth + 1, error)) {
                return FALSE;
            }
        }
        g_string_append_c(out, '}');
        return TRUE;
    }
    case JSON_NODE_ARRAY: {
        JsonArray *arr = json_node_get_array(node);
        guint n = json_array_get_length(arr);
        g_string_append_c(out, '[');
        for (guint i = 0; i < n; i++) {
            if (i) {
                g_string_append_c(out, ',');
            }
            if (!canon_node(out, json_array_get_element(arr, i), depth + 1,
                            error)) {
                return FALSE;
            }
        }
        g_string_append_c(out, ']');
        return TRUE;
    }
    case JSON_NODE_NULL:
        g_string_append(out, "null");
        return TRUE;
    case JSON_NODE_VALUE:
    default:
        break;
    }
    GType t = json_node_get_value_type(node);
    if (t == G_TYPE_INT64) {
        g_string_append_printf(out, "%" G_GINT64_FORMAT,
                               json_node_get_int(node));
    } else if (t == G_TYPE_BOOLEAN) {
        g_string_append(out, json_node_get_boolean(node) ? "true" : "false");
    } else if (t == G_TYPE_STRING) {
        return canon_text(out, json_node_get_string(node), error);
    } else {
        return malformed(error, "only integers are allowed as numbers");
    }
    return TRUE;
}

static void hex_encode(GString *out, const guint8 *b, gsize n)
{
    static const char digits[] = "0123456789abcdef";
    for (gsize i = 0; i < n; i++) {
        g_string_append_c(out, digits[b[i] >> 4]);
        g_string_append_c(out, digits[b[i] & 15]);
    }
}

static gboolean hex_decode(const char *s, guint8 *out, gsize n)
{
    if (strlen(s) != 2 * n) {
        return FALSE;
    }
    for (gsize i = 0; i < 2 * n; i++) {
        int v;
        if (s[i] >= '0' && s[i] <= '9') {
            v = s[i] - '0';
        } else if (s[i] >= 'a' && s[i] <= 'f') {
            v = s[i] - 'a' + 10;
        } else {
            return FALSE;   /* lowercase only: one spelling per hash */
        }
        if (i % 2 == 0) {
            out[i / 2] = (guint8)(v << 4);
        } else {
            out[i / 2] |= (guint8)v;
        }
    }
    return TRUE;
}

static void canon_opt(GString *out, const char *name, const char *v)
{
    g_string_append_printf(out, "\"%s\":", name);
    if (v) {
        canon_string(out, v);
    } else {
        g_string_append(out, "null");
    }
}

/* Members in bytewise order: actor details domain event [hash prev]
 * reason seq time vm. */
static GString *canon_record(const TvdAuditRecord *rec, gboolean with_hashes,
                             GError **error)
{
    g_autoptr(GString) out = g_string_sized_new(256);
    const char *strs[] = { rec->time, rec->actor, rec->vm, rec->domain,
                           rec->event, rec->reason };

    for (gsize i = 0; i < G_N_ELEMENTS(strs); i++) {
        if (strs[i] && !g_utf8_validate(strs[i], -1, NULL)) {
            malformed(error, "record string is not valid UTF-8");
            return NULL;
        }
    }
    if (!rec->time || !rec->actor || !rec->event || !rec->details ||
        !JSON_NODE_HOLDS_OBJECT(rec->details)) {
        malformed(error, "record lacks time, actor, event or details object");
        return NULL;
    }
    g_string_append(out, "{\"actor\":");
    canon_string(out, rec->actor);
    g_string_append(out, ",\"details\":");
    if (!canon_node(out, rec->details, 1, error)) {
        return NULL;
    }
    g_string_append_c(out, ',');
    canon_opt(out, "domain", rec->domain);
    g_string_append(out, ",\"event\":");
    canon_string(out, rec->event);
    if (with_hashes) {
        g_string_append(out, ",\"hash\":\"");
        hex_encode(out, rec->hash, TVD_AUDIT_HASH_SIZE);
        g_string_append(out, "\",\"prev\":\"");
        hex_encode(out, rec->prev, TVD_AUDIT_HASH_SIZE);
        g_string_append_c(out, '"');
    }
    g_string_append_c(out, ',');
    canon_opt(out, "reason", rec->reason);
    g_string_append_printf(out, ",\"seq\":%" G_GINT64_FORMAT ",", rec->seq);
    canon_opt(out, "time", rec->time);
    g_string_append_c(out, ',');
    canon_opt(out, "vm", rec->vm);
    g_string_append_c(out, '}');
    if (out->len > TVD_AUDIT_MAX_RECORD + (with_hashes ? 160u : 0u)) {
        malformed(error, "record larger than %u bytes", TVD_AUDIT_MAX_RECORD);
        return NULL;
    }
    return g_steal_pointer(&out);
}

GBytes *tvd_audit_record_canonical(const TvdAuditRecord *rec, GError **error)
{
    GString *s = canon_record(rec, FALSE, error);
    return s ? g_string_free_to_bytes(s) : NULL;
}

char *tvd_audit_record_to_json(const TvdAuditRecord *rec, GError **error)
{
    GString *s = canon_record(rec, TRUE, error);
    return s ? g_string_free(s, FALSE) : NULL;
}

static void chain_hash(const guint8 prev[TVD_AUDIT_HASH_SIZE],
                       const void *bytes, gsize len,
                       guint8 out[TVD_AUDIT_HASH_SIZE])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int n = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, prev, TVD_AUDIT_HASH_SIZE) != 1 ||
        EVP_DigestUpdate(ctx, bytes, len) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != TVD_AUDIT_HASH_SIZE) {
        /* Only allocation failure gets here; GLib aborts on those too. */
        g_error("SHA-256 failed");
    }
    EVP_MD_CTX_free(ctx);
}

/* ---- Decoding (outside input) --------------------------------------------------- */

/* Nesting depth of a JSON text, counted before json-glib (which recurses). */
static gboolean get_string(JsonObject *obj, const char *name, gboolean nullable,
                           gsize max, char **out, GError **error)
{
    JsonNode *n = json_object_get_member(obj, name);
    if (!n) {
        return malformed(error, "member '%s' is missing", name);
    }
    if (nullable && JSON_NODE_HOLDS_NULL(n)) {
        *out = NULL;
        return TRUE;
    }
    if (!JSON_NODE_HOLDS_VALUE(n) ||
        json_node_get_value_type(n) != G_TYPE_STRING) {
        return malformed(error, "member '%s' is not a string", name);
    }
    const char *s = json_node_get_string(n);
    if (strlen(s) > max) {
        return malformed(error, "member '%s' is longer than %zu bytes", name,
                         max);
    }
    *out = g_strdup(s);
    return TRUE;
}

static gboolean time_is_valid(const char *t)
{
    /* Exactly YYYY-MM-DDTHH:MM:SS.ffffffZ, and a real instant. */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (strlen(t) != sizeof(shape) - 1) {
        return FALSE;
    }
    for (gsize i = 0; i < sizeof(shape) - 1; i++) {
        if (shape[i] == 'd' ? !g_ascii_isdigit(t[i]) : t[i] != shape[i]) {
            return FALSE;
        }
    }
    g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(t, NULL);
    return dt != NULL;
}

/* actor details domain event reason seq time vm (+ hash prev in lines) */
#define RECORD_MEMBERS 8u

static TvdAuditRecord *record_from_object(JsonObject *obj,
                                          gboolean with_hashes,
                                          GError **error)
{
    g_autoptr(TvdAuditRecord) rec = g_new0(TvdAuditRecord, 1);
    guint want = RECORD_MEMBERS + (with_hashes ? 2u : 0u);

    if (json_object_get_size(obj) != want) {
        malformed(error, "record has %u members, expected %u",
                  json_object_get_size(obj), want);
        return NULL;
    }
    JsonNode *seq = json_object_get_member(obj, "seq");
    if (!seq || !JSON_NODE_HOLDS_VALUE(seq) ||
        json_node_get_value_type(seq) != G_TYPE_INT64 ||
        json_node_get_int(seq) < 1) {
        malformed(error, "member 'seq' is not a positive integer");
        return NULL;
    }
    rec->seq = json_node_get_int(seq);
    if (!get_string(obj, "time", FALSE, 64, &rec->time, error) ||
        !get_string(obj, "actor", FALSE, TVD_AUDIT_MAX_NAME, &rec->actor,
                    error) ||
        !get_string(obj, "vm", TRUE, TVD_AUDIT_MAX_NAME, &rec->vm, error) ||
        !get_string(obj, "domain", TRUE, TVD_AUDIT_MAX_NAME, &rec->domain,
                    error) ||
        !get_string(obj, "event", FALSE, TVD_AUDIT_MAX_NAME, &rec->event,
                    error) ||
        !get_string(obj, "reason", TRUE, TVD_AUDIT_MAX_REASON, &rec->reason,
                    error)) {
        return NULL;
    }
    if (!time_is_valid(rec->time)) {
        malformed(error, "member 'time' is not YYYY-MM-DDTHH:MM:SS.ffffffZ");
        return NULL;
    }
    JsonNode *details = json_object_get_member(obj, "details");
    if (!details || !JSON_NODE_HOLDS_OBJECT(details)) {
        malformed(error, "member 'details' is not an object");
        return NULL;
    }
    rec->details = json_node_copy(details);
    if (with_hashes) {
        g_autofree char *hash = NULL, *prev = NULL;
        if (!get_string(obj, "hash", FALSE, 64, &hash, error) ||
            !get_string(obj, "prev", FALSE, 64, &prev, error)) {
            return NULL;
        }
        if (!hex_decode(hash, rec->hash, TVD_AUDIT_HASH_SIZE) ||
            !hex_decode(prev, rec->prev, TVD_AUDIT_HASH_SIZE)) {
            malformed(error, "'hash' and 'prev' must be 64 lowercase hex digits");
            return NULL;
        }
    }
    return g_steal_pointer(&rec);
}

/* Parses one JSON object text; NULL + MALFORMED otherwise. */
static JsonNode *parse_object(const char *data, gsize len, gsize max,
                              GError **error)
{
    if (len > max) {
        malformed(error, "line longer than %zu bytes", max);
        return NULL;
    }
    if (memchr(data, '\0', len) || !g_utf8_validate(data, (gssize)len, NULL)) {
        malformed(error, "line is not NUL-free UTF-8");
        return NULL;
    }
    if (!tvd_json_depth_ok(data, len, TVD_AUDIT_MAX_DEPTH + 1, NULL)) {
        malformed(error, "JSON nests deeper than %u", TVD_AUDIT_MAX_DEPTH);
        return NULL;
    }
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) perr = NULL;
    if (!json_parser_load_from_data(parser, data, (gssize)len, &perr)) {
        malformed(error, "not JSON: %s", perr->message);
        return NULL;
    }
    JsonNode *root = json_parser_get_root(parser);
    if (!root || !JSON_NODE_HOLDS_OBJECT(root)) {
        malformed(error, "not a JSON object");
        return NULL;
    }
    return json_node_copy(root);
}

TvdAuditRecord *tvd_audit_record_from_json(const char *line, gsize len,
                                           GError **error)
{
    g_autoptr(JsonNode) root = parse_object(line, len,
                                            TVD_AUDIT_MAX_RECORD + 256, error);
    if (!root) {
        return NULL;
    }
    return record_from_object(json_node_get_object(root), TRUE, error);
}

/* Decodes the canonical bytes stored in the log (no hash members). */
static TvdAuditRecord *record_from_canonical(const void *data, gsize len,
                                             GError **error)
{
    g_autoptr(JsonNode) root = parse_object(data, len, TVD_AUDIT_MAX_RECORD,
                                            error);
    if (!root) {
        return NULL;
    }
    return record_from_object(json_node_get_object(root), FALSE, error);
}

/* ---- Chain verification ------------------------------------------------------------ */

typedef struct {
    TvdAuditReport *report;
    gint64 expect;                      /* next seq */
    guint8 prev[TVD_AUDIT_HASH_SIZE];   /* hash of record expect - 1 */
} Walk;

static void walk_init(Walk *w, TvdAuditReport *report)
{
    memset(report, 0, sizeof(*report));
    memset(w, 0, sizeof(*w));
    w->report = report;
    w->expect = 1;
}

static gboolean walk_fail(Walk *w, TvdAuditFault fault, gint64 seq,
                          const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static gboolean walk_fail(Walk *w, TvdAuditFault fault, gint64 seq,
                          const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    w->report->fault = fault;
    w->report->bad_seq = seq;
    w->report->why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    return FALSE;
}

/*
 * One record at position @pos (its row seq or its line's expected seq).
 * @rec is NULL when it did not decode (@decode_error says why). @bytes are
 * the canonical bytes that were hashed; @prev/@hash as stored.
 */
static gboolean walk_step(Walk *w, gint64 pos, const TvdAuditRecord *rec,
                          const char *decode_error, GBytes *bytes,
                          const guint8 *prev, const guint8 *hash)
{
    if (pos > w->expect) {
        return walk_fail(w, TVD_AUDIT_GAP, w->expect,
                         "record %" G_GINT64_FORMAT " is missing (next is %"
                         G_GINT64_FORMAT ")", w->expect, pos);
    }
    if (!rec) {
        return walk_fail(w, TVD_AUDIT_MALFORMED, pos, "record %"
                         G_GINT64_FORMAT " does not decode: %s", pos,
                         decode_error);
    }
    if (rec->seq != pos) {
        return walk_fail(w, TVD_AUDIT_REORDERED, pos, "position %"
                         G_GINT64_FORMAT " holds record %" G_GINT64_FORMAT,
                         pos, rec->seq);
    }
    guint8 h[TVD_AUDIT_HASH_SIZE];
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);
    chain_hash(prev, data, len, h);
    if (CRYPTO_memcmp(h, hash, TVD_AUDIT_HASH_SIZE) != 0) {
        return walk_fail(w, TVD_AUDIT_HASH_MISMATCH, pos, "record %"
                         G_GINT64_FORMAT " was altered: its content does not "
                         "hash to its stored hash", pos);
    }
    if (CRYPTO_memcmp(prev, w->prev, TVD_AUDIT_HASH_SIZE) != 0) {
        /* Record pos is self-consistent, so pos - 1 (or its hash) changed. */
        return walk_fail(w, TVD_AUDIT_PREV_MISMATCH, pos > 1 ? pos - 1 : pos,
                         "record %" G_GINT64_FORMAT " is chained to another "
                         "hash than record %" G_GINT64_FORMAT " has: record %"
                         G_GINT64_FORMAT " was rewritten", pos, pos - 1,
                         pos > 1 ? pos - 1 : pos);
    }
    memcpy(w->prev, hash, TVD_AUDIT_HASH_SIZE);
    w->report->records++;
    w->report->head_seq = pos;
    memcpy(w->report->head_hash, hash, TVD_AUDIT_HASH_SIZE);
    w->expect = pos + 1;
    return TRUE;
}

/* Parses an anchor value {"hash":"<hex>","seq":N}. */
static gboolean anchor_parse(const char *data, gsize len, gint64 *seq,
                             guint8 hash[TVD_AUDIT_HASH_SIZE], GError **error)
{
    g_autoptr(JsonNode) root = parse_object(data, len, 1024, error);
    if (!root) {
        return FALSE;
    }
    JsonObject *obj = json_node_get_object(root);
    JsonNode *s = json_object_get_member(obj, "seq");
    g_autofree char *hex = NULL;
    if (!s || !JSON_NODE_HOLDS_VALUE(s) ||
        json_node_get_value_type(s) != G_TYPE_INT64 || json_node_get_int(s) < 1 ||
        !get_string(obj, "hash", FALSE, 64, &hex, error) ||
        !hex_decode(hex, hash, TVD_AUDIT_HASH_SIZE)) {
        if (error && !*error) {
            malformed(error, "anchor is not {\"hash\":\"<64 hex>\",\"seq\":N}");
        }
        return FALSE;
    }
    *seq = json_node_get_int(s);
    return TRUE;
}

static char *anchor_format(gint64 seq, const guint8 hash[TVD_AUDIT_HASH_SIZE])
{
    GString *s = g_string_new("{\"hash\":\"");
    hex_encode(s, hash, TVD_AUDIT_HASH_SIZE);
    g_string_append_printf(s, "\",\"seq\":%" G_GINT64_FORMAT "}", seq);
    return g_string_free(s, FALSE);
}

/*
 * After a clean walk: the anchor's record must be in the log with the
 * anchor's hash. @hash_at(seq) gives a verified record's hash.
 */
static void walk_check_anchor(Walk *w, gint64 anchor_seq,
                              const guint8 *anchor_hash,
                              const guint8 *hash_at_anchor)
{
    w->report->anchor_seq = anchor_seq;
    if (anchor_seq > w->report->head_seq) {
        walk_fail(w, TVD_AUDIT_TRUNCATED, w->report->head_seq + 1,
                  "the log ends at %" G_GINT64_FORMAT " but the anchor names "
                  "record %" G_GINT64_FORMAT ": records were removed",
                  w->report->head_seq, anchor_seq);
    } else if (!hash_at_anchor ||
               CRYPTO_memcmp(hash_at_anchor, anchor_hash,
                             TVD_AUDIT_HASH_SIZE) != 0) {
        walk_fail(w, TVD_AUDIT_ANCHOR_MISMATCH, anchor_seq,
                  "record %" G_GINT64_FORMAT " does not have the anchor's hash:"
                  " the log was rewritten up to there", anchor_seq);
    }
}

typedef struct {
    TvdAuditRecord *rec;    /* NULL when the line did not decode */
    char *error;
    GBytes *bytes;          /* canonical bytes of rec */
} Line;

static void line_clear(Line *l)
{
    g_clear_pointer(&l->rec, tvd_audit_record_free);
    g_clear_pointer(&l->error, g_free);
    g_clear_pointer(&l->bytes, g_bytes_unref);
}

/* Splits off the next line of @data at *off; FALSE at the end. */
static gboolean next_line(const char *data, gsize len, gsize *off,
                          const char **line, gsize *n)
{
    if (*off >= len) {
        return FALSE;
    }
    const char *start = data + *off;
    const char *nl = memchr(start, '\n', len - *off);
    *line = start;
    *n = nl ? (gsize)(nl - start) : len - *off;
    *off += *n + (nl ? 1 : 0);
    return TRUE;
}

static void decode_line(const char *line, gsize n, Line *l)
{
    g_autoptr(GError) derr = NULL;
    l->rec = tvd_audit_record_from_json(line, n, &derr);
    if (l->rec) {
        l->bytes = tvd_audit_record_canonical(l->rec, &derr);
        if (!l->bytes) {
            g_clear_pointer(&l->rec, tvd_audit_record_free);
        }
    }
    if (!l->rec) {
        l->error = g_strdup(derr->message);
    }
}

/* TRUE if a line after @off holds record @seq (only run on a fault). */
static gboolean seq_later(const char *data, gsize len, gsize off, gint64 seq)
{
    const char *line;
    gsize n;
    while (next_line(data, len, &off, &line, &n)) {
        g_autoptr(TvdAuditRecord) rec = tvd_audit_record_from_json(line, n,
                                                                   NULL);
        if (rec && rec->seq == seq) {
            return TRUE;
        }
    }
    return FALSE;
}

gboolean tvd_audit_verify_jsonl(const char *data, gsize len,
                                const char *anchor_json,
                                TvdAuditReport *report, GError **error)
{
    gint64 anchor_seq = 0;
    guint8 anchor_hash[TVD_AUDIT_HASH_SIZE];
    guint8 hash_at_anchor[TVD_AUDIT_HASH_SIZE];
    gboolean have_at_anchor = FALSE;
    const char *line;
    gsize n, off = 0;
    Walk w;

    walk_init(&w, report);
    if (anchor_json && !anchor_parse(anchor_json, strlen(anchor_json),
                                     &anchor_seq, anchor_hash, error)) {
        return FALSE;
    }
    /* One pass, one line in memory at a time. */
    while (next_line(data, len, &off, &line, &n)) {
        Line l = { NULL, NULL, NULL };
        decode_line(line, n, &l);
        gint64 pos = w.expect;
        /* Record expect is nowhere later: this is a gap, not a move. */
        if (l.rec && l.rec->seq > w.expect &&
            !seq_later(data, len, off, w.expect)) {
            pos = l.rec->seq;
        }
        gboolean ok = walk_step(&w, pos, l.rec, l.error, l.bytes,
                                l.rec ? l.rec->prev : NULL,
                                l.rec ? l.rec->hash : NULL);
        if (ok && pos == anchor_seq) {
            memcpy(hash_at_anchor, l.rec->hash, TVD_AUDIT_HASH_SIZE);
            have_at_anchor = TRUE;
        }
        line_clear(&l);
        if (!ok) {
            return TRUE;
        }
    }
    if (anchor_seq) {
        walk_check_anchor(&w, anchor_seq, anchor_hash,
                          have_at_anchor ? hash_at_anchor : NULL);
    }
    return TRUE;
}

/* ---- The log file ------------------------------------------------------------------- */

static gboolean db_fail(TvdAuditLog *log, const char *what, GError **error)
{
    g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_IO, "%s: %s: %s",
                log->path, what, sqlite3_errmsg(log->db));
    return FALSE;
}

static gboolean exec_sql(TvdAuditLog *log, const char *sql, GError **error)
{
    char *msg = NULL;
    if (sqlite3_exec(log->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_IO, "%s: %s",
                    log->path, msg ? msg : "error");
        sqlite3_free(msg);
        return FALSE;
    }
    return TRUE;
}

static gboolean query_int(TvdAuditLog *log, const char *sql, gint64 *out,
                          GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(log->db, sql, -1, &st, NULL) != SQLITE_OK) {
        return db_fail(log, sql, error);
    }
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_fail(log, sql, error);
    }
    return TRUE;
}

static const char audit_schema[] =
    "CREATE TABLE audit(seq INTEGER PRIMARY KEY, prev BLOB NOT NULL,"
    "  hash BLOB NOT NULL, record BLOB NOT NULL);"
    /* A guard against mistakes, not attackers: those are what the chain
     * and the anchor are for. */
    "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "PRAGMA application_id = 1414939713;"
    "PRAGMA user_version = 1;";

static gboolean audit_init_schema(TvdAuditLog *log, GError **error)
{
    gint64 app = 0, ver = 0, tables = 0;
    if (!exec_sql(log, "BEGIN IMMEDIATE", error)) {
        return FALSE;
    }
    if (!query_int(log, "PRAGMA application_id", &app, error) ||
        !query_int(log, "PRAGMA user_version", &ver, error) ||
        !query_int(log, "SELECT count(*) FROM sqlite_schema", &tables, error)) {
        goto fail;
    }
    if (app == 0 && ver == 0 && tables == 0) {
        if (!exec_sql(log, audit_schema, error)) {
            goto fail;
        }
    } else if (app != AUDIT_APPLICATION_ID) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_SCHEMA,
                    "%s: not a tvd audit log", log->path);
        goto fail;
    } else if (ver != AUDIT_SCHEMA_VERSION) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_SCHEMA,
                    "%s: audit log schema version %" G_GINT64_FORMAT " is not "
                    "the one this build understands (%d)", log->path, ver,
                    AUDIT_SCHEMA_VERSION);
        goto fail;
    }
    return exec_sql(log, "COMMIT", error);
fail:
    exec_sql(log, "ROLLBACK", NULL);
    return FALSE;
}

TvdAuditLog *tvd_audit_open(const char *path, TvdStore *anchor_store,
                            const char *anchor_key, GError **error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_IO, "%s: %s", path,
                    g_strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
        int e = errno;
        close(fd);
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_IO,
                    "%s: chmod 0600: %s", path, g_strerror(e));
        return NULL;
    }
    close(fd);

    g_autoptr(TvdAuditLog) log = g_new0(TvdAuditLog, 1);
    g_mutex_init(&log->lock);
    log->path = g_strdup(path);
    log->anchor_store = anchor_store ? tvd_store_ref(anchor_store) : NULL;
    log->anchor_key = g_strdup(anchor_key ? anchor_key
                                          : TVD_AUDIT_DEFAULT_ANCHOR);
    if (anchor_store && !tvd_store_key_is_valid(log->anchor_key, NULL)) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID,
                    "bad anchor key '%s'", log->anchor_key);
        return NULL;
    }
    if (sqlite3_open_v2(path, &log->db, SQLITE_OPEN_READWRITE |
                        SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        db_fail(log, "open", error);
        return NULL;
    }
    sqlite3_busy_timeout(log->db, 5000);
    if (!exec_sql(log, "PRAGMA journal_mode=WAL", error) ||
        !exec_sql(log, "PRAGMA synchronous=FULL", error) ||
        !audit_init_schema(log, error)) {
        return NULL;
    }
    return g_steal_pointer(&log);
}

void tvd_audit_close(TvdAuditLog *log)
{
    if (!log) {
        return;
    }
    if (log->db) {
        sqlite3_close(log->db);
    }
    g_clear_pointer(&log->anchor_store, tvd_store_unref);
    g_free(log->anchor_key);
    g_free(log->path);
    g_mutex_clear(&log->lock);
    g_free(log);
}

/* Member names that must never appear in details (substring, any case). */
static const char *const secret_words[] = {
    "secret", "password", "passphrase", "private", "privkey", "token",
    "seed", "credential_blob", "session_key", "hmac_key",
};

static gboolean details_clean(JsonNode *node, guint depth, GError **error)
{
    if (depth > TVD_AUDIT_MAX_DEPTH) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID,
                    "details nest deeper than %u", TVD_AUDIT_MAX_DEPTH);
        return FALSE;
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *a = json_node_get_array(node);
        for (guint i = 0; i < json_array_get_length(a); i++) {
            if (!details_clean(json_array_get_element(a, i), depth + 1, error)) {
                return FALSE;
            }
        }
    } else if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *o = json_node_get_object(node);
        g_autoptr(GList) names = json_object_get_members(o);
        for (GList *l = names; l; l = l->next) {
            g_autofree char *lower = g_ascii_strdown(l->data, -1);
            for (gsize i = 0; i < G_N_ELEMENTS(secret_words); i++) {
                if (strstr(lower, secret_words[i])) {
                    g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_SECRET,
                                "details member '%s' looks like a secret: "
                                "secrets never go into the audit log",
                                (const char *)l->data);
                    return FALSE;
                }
            }
            if (!details_clean(json_object_get_member(o, l->data), depth + 1,
                               error)) {
                return FALSE;
            }
        }
    }
    return TRUE;
}

static gboolean check_field(const char *name, const char *v, gboolean nullable,
                            gsize max, GError **error)
{
    if (!v) {
        if (nullable) {
            return TRUE;
        }
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID,
                    "audit record needs a %s", name);
        return FALSE;
    }
    if ((!nullable && !v[0]) || strlen(v) > max ||
        !g_utf8_validate(v, -1, NULL)) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID,
                    "audit %s must be non-empty UTF-8 of at most %zu bytes",
                    name, max);
        return FALSE;
    }
    return TRUE;
}

/* Head (seq, hash) inside the caller's transaction; seq 0 when empty. */
static gboolean read_head(TvdAuditLog *log, gint64 *seq,
                          guint8 hash[TVD_AUDIT_HASH_SIZE], GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(log->db, "SELECT seq, hash FROM audit "
                           "ORDER BY seq DESC LIMIT 1", -1, &st, NULL) != SQLITE_OK) {
        return db_fail(log, "read head", error);
    }
    int rc = sqlite3_step(st);
    gboolean ok = TRUE;
    *seq = 0;
    memset(hash, 0, TVD_AUDIT_HASH_SIZE);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        if (sqlite3_column_bytes(st, 1) != TVD_AUDIT_HASH_SIZE) {
            g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED,
                        "%s: head record %" G_GINT64_FORMAT " has a bad hash",
                        log->path, *seq);
            ok = FALSE;
        } else {
            memcpy(hash, sqlite3_column_blob(st, 1), TVD_AUDIT_HASH_SIZE);
        }
    } else if (rc != SQLITE_DONE) {
        ok = db_fail(log, "read head", error);
    }
    sqlite3_finalize(st);
    return ok;
}

gboolean tvd_audit_sync_anchor(TvdAuditLog *log, GError **error)
{
    gint64 head = 0;
    guint8 hash[TVD_AUDIT_HASH_SIZE];

    if (!log->anchor_store) {
        return TRUE;
    }
    g_mutex_lock(&log->lock);
    gboolean ok = read_head(log, &head, hash, error);
    g_mutex_unlock(&log->lock);
    if (!ok || head == 0) {
        return ok;
    }
    g_autofree char *value = anchor_format(head, hash);
    g_autoptr(GBytes) bytes = g_bytes_new(value, strlen(value));
    for (int i = 0; i < ANCHOR_CAS_TRIES; i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(TvdStoreEntry) e = tvd_store_get(log->anchor_store,
                                                   log->anchor_key, &err);
        gint64 expect = 0;
        if (e) {
            gint64 aseq = 0;
            guint8 ahash[TVD_AUDIT_HASH_SIZE];
            gsize n;
            const char *d = g_bytes_get_data(e->value, &n);
            if (anchor_parse(d ? d : "", n, &aseq, ahash, NULL) &&
                aseq >= head) {
                return TRUE;        /* never move the anchor backwards */
            }
            expect = e->mod_revision;
        } else if (!g_error_matches(err, TVD_STORE_ERROR,
                                    TVD_STORE_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&err));
            return FALSE;
        }
        g_clear_error(&err);
        if (tvd_store_cas(log->anchor_store, log->anchor_key, expect, bytes,
                          NULL, NULL, &err)) {
            return TRUE;
        }
        if (!g_error_matches(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT)) {
            g_propagate_error(error, g_steal_pointer(&err));
            return FALSE;
        }
    }
    g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_IO,
                "anchor '%s' kept changing under us", log->anchor_key);
    return FALSE;
}

/* Chains @rec to the head and inserts it, in one write transaction. */
static gboolean append_locked(TvdAuditLog *log, TvdAuditRecord *rec,
                              GError **error)
{
    g_autoptr(GError) cerr = NULL;
    g_autoptr(GBytes) bytes = NULL;
    sqlite3_stmt *st = NULL;
    gboolean ok = FALSE;
    gint64 head = 0;

    if (!exec_sql(log, "BEGIN IMMEDIATE", error) ||
        !read_head(log, &head, rec->prev, error)) {
        goto out;
    }
    rec->seq = head + 1;
    bytes = tvd_audit_record_canonical(rec, &cerr);
    if (!bytes) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID, "%s",
                    cerr->message);
        goto out;
    }
    gsize len;
    const void *data = g_bytes_get_data(bytes, &len);
    chain_hash(rec->prev, data, len, rec->hash);
    if (sqlite3_prepare_v2(log->db, "INSERT INTO audit(seq, prev, hash, record)"
                           " VALUES (?1, ?2, ?3, ?4)", -1, &st, NULL) != SQLITE_OK) {
        db_fail(log, "prepare append", error);
        goto out;
    }
    sqlite3_bind_int64(st, 1, rec->seq);
    sqlite3_bind_blob(st, 2, rec->prev, TVD_AUDIT_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, rec->hash, TVD_AUDIT_HASH_SIZE, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 4, data, len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
        db_fail(log, "append", error);
        goto out;
    }
    ok = exec_sql(log, "COMMIT", error);
out:
    sqlite3_finalize(st);
    if (!ok && !sqlite3_get_autocommit(log->db)) {
        exec_sql(log, "ROLLBACK", NULL);
    }
    return ok;
}

gboolean tvd_audit_append(TvdAuditLog *log, const char *actor,
                          const char *vm, const char *domain,
                          const char *event, const char *reason,
                          JsonObject *details, gint64 *out_seq,
                          GError **error)
{
    g_autoptr(TvdAuditRecord) rec = g_new0(TvdAuditRecord, 1);
    g_autoptr(GDateTime) now = g_date_time_new_now_utc();
    gboolean ok;

    if (!check_field("actor", actor, FALSE, TVD_AUDIT_MAX_NAME, error) ||
        !check_field("event", event, FALSE, TVD_AUDIT_MAX_NAME, error) ||
        !check_field("vm", vm, TRUE, TVD_AUDIT_MAX_NAME, error) ||
        !check_field("domain", domain, TRUE, TVD_AUDIT_MAX_NAME, error) ||
        !check_field("reason", reason, TRUE, TVD_AUDIT_MAX_REASON, error)) {
        return FALSE;
    }
    rec->details = json_node_new(JSON_NODE_OBJECT);
    if (details) {
        json_node_set_object(rec->details, details);
    } else {
        json_node_take_object(rec->details, json_object_new());
    }
    if (!details_clean(rec->details, 1, error)) {
        return FALSE;
    }
    rec->time = g_date_time_format(now, "%Y-%m-%dT%H:%M:%S.%fZ");
    rec->actor = g_strdup(actor);
    rec->vm = g_strdup(vm);
    rec->domain = g_strdup(domain);
    rec->event = g_strdup(event);
    rec->reason = g_strdup(reason);

    g_mutex_lock(&log->lock);
    ok = append_locked(log, rec, error);
    g_mutex_unlock(&log->lock);
    if (!ok) {
        return FALSE;
    }
    if (out_seq) {
        *out_seq = rec->seq;
    }
    g_autoptr(GError) aerr = NULL;
    if (!tvd_audit_sync_anchor(log, &aerr)) {
        g_warning("audit record %" G_GINT64_FORMAT " written, anchor not "
                  "updated: %s", rec->seq, aerr->message);
    }
    return TRUE;
}

/* Reads one row into a record; hashes as stored. */
static TvdAuditRecord *row_record(sqlite3_stmt *st, GBytes **out_bytes,
                                  guint8 *prev, guint8 *hash,
                                  GError **error)
{
    const void *rb = sqlite3_column_blob(st, 3);
    int rn = sqlite3_column_bytes(st, 3);
    *out_bytes = g_bytes_new(rn > 0 ? rb : NULL, (gsize)MAX(rn, 0));
    if (sqlite3_column_bytes(st, 1) != TVD_AUDIT_HASH_SIZE ||
        sqlite3_column_bytes(st, 2) != TVD_AUDIT_HASH_SIZE) {
        malformed(error, "stored prev or hash is not %u bytes",
                  TVD_AUDIT_HASH_SIZE);
        memset(prev, 0, TVD_AUDIT_HASH_SIZE);
        memset(hash, 0, TVD_AUDIT_HASH_SIZE);
        return NULL;
    }
    memcpy(prev, sqlite3_column_blob(st, 1), TVD_AUDIT_HASH_SIZE);
    memcpy(hash, sqlite3_column_blob(st, 2), TVD_AUDIT_HASH_SIZE);
    gsize n;
    const char *d = g_bytes_get_data(*out_bytes, &n);
    TvdAuditRecord *rec = record_from_canonical(d ? d : "", n, error);
    if (!rec) {
        return NULL;
    }
    g_autoptr(GBytes) canon = tvd_audit_record_canonical(rec, error);
    if (!canon || !g_bytes_equal(canon, *out_bytes)) {
        if (canon) {
            malformed(error, "stored bytes are not in canonical form");
        }
        tvd_audit_record_free(rec);
        return NULL;
    }
    memcpy(rec->prev, prev, TVD_AUDIT_HASH_SIZE);
    memcpy(rec->hash, hash, TVD_AUDIT_HASH_SIZE);
    return rec;
}

static gboolean read_anchor(TvdAuditLog *log, gint64 *seq,
                            guint8 hash[TVD_AUDIT_HASH_SIZE], GError **error)
{
    *seq = 0;
    if (!log->anchor_store) {
        return TRUE;
    }
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStoreEntry) e = tvd_store_get(log->anchor_store,
                                               log->anchor_key, &err);
    if (!e) {
        if (g_error_matches(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND)) {
            return TRUE;
        }
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    gsize n;
    const char *d = g_bytes_get_data(e->value, &n);
    if (!anchor_parse(d ? d : "", n, seq, hash, &err)) {
        g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED,
                    "anchor '%s': %s", log->anchor_key, err->message);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_audit_verify(TvdAuditLog *log, TvdAuditReport *report,
                          GError **error)
{
    Walk w;
    gint64 anchor_seq = 0;
    guint8 anchor_hash[TVD_AUDIT_HASH_SIZE];
    guint8 at_anchor[TVD_AUDIT_HASH_SIZE];
    gboolean have_at_anchor = FALSE;
    sqlite3_stmt *st = NULL;
    gboolean ok = FALSE;
    int rc;

    walk_init(&w, report);
    /* Anchor first: records appended meanwhile are still in the walk. */
    if (!read_anchor(log, &anchor_seq, anchor_hash, error)) {
        return FALSE;
    }
    g_mutex_lock(&log->lock);
    if (!exec_sql(log, "BEGIN", error)) {
        goto out;
    }
    if (sqlite3_prepare_v2(log->db, "SELECT seq, prev, hash, record FROM audit"
                           " ORDER BY seq", -1, &st, NULL) != SQLITE_OK) {
        db_fail(log, "verify", error);
        goto out;
    }
    gboolean walking = TRUE;
    while (walking && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        gint64 pos = sqlite3_column_int64(st, 0);
        g_autoptr(GError) derr = NULL;
        g_autoptr(GBytes) bytes = NULL;
        guint8 prev[TVD_AUDIT_HASH_SIZE], hash[TVD_AUDIT_HASH_SIZE];
        g_autoptr(TvdAuditRecord) rec = row_record(st, &bytes, prev, hash,
                                                   &derr);
        walking = walk_step(&w, pos, rec, derr ? derr->message : NULL, bytes,
                            prev, hash);
        if (walking && pos == anchor_seq) {
            memcpy(at_anchor, hash, TVD_AUDIT_HASH_SIZE);
            have_at_anchor = TRUE;
        }
    }
    if (walking && rc != SQLITE_DONE) {
        db_fail(log, "verify", error);
        goto out;
    }
    if (walking && anchor_seq) {
        walk_check_anchor(&w, anchor_seq, anchor_hash,
                          have_at_anchor ? at_anchor : NULL);
    }
    ok = TRUE;
out:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(log->db)) {
        exec_sql(log, "COMMIT", NULL);
    }
    g_mutex_unlock(&log->lock);
    return ok;
}

gboolean tvd_audit_export(TvdAuditLog *log, gint64 from_seq,
                          GOutputStream *out, GCancellable *cancellable,
                          GError **error)
{
    sqlite3_stmt *st = NULL;
    gboolean ok = FALSE;
    int rc;

    g_mutex_lock(&log->lock);
    if (!exec_sql(log, "BEGIN", error)) {
        goto out;
    }
    if (sqlite3_prepare_v2(log->db, "SELECT seq, prev, hash, record FROM audit"
                           " WHERE seq >= ?1 ORDER BY seq", -1, &st,
                           NULL) != SQLITE_OK) {
        db_fail(log, "export", error);
        goto out;
    }
    sqlite3_bind_int64(st, 1, from_seq);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        g_autoptr(GError) derr = NULL;
        g_autoptr(GBytes) bytes = NULL;
        guint8 prev[TVD_AUDIT_HASH_SIZE], hash[TVD_AUDIT_HASH_SIZE];
        g_autoptr(TvdAuditRecord) rec = row_record(st, &bytes, prev, hash,
                                                   &derr);
        if (!rec) {
            g_set_error(error, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED,
                        "record %" G_GINT64_FORMAT ": %s",
                        (gint64)sqlite3_column_int64(st, 0), derr->message);
            goto out;
        }
        g_autofree char *line = tvd_audit_record_to_json(rec, error);
        if (!line ||
            !g_output_stream_write_all(out, line, strlen(line), NULL,
                                       cancellable, error) ||
            !g_output_stream_write_all(out, "\n", 1, NULL, cancellable,
                                       error)) {
            goto out;
        }
    }
    if (rc != SQLITE_DONE) {
        db_fail(log, "export", error);
        goto out;
    }
    ok = TRUE;
out:
    sqlite3_finalize(st);
    if (!sqlite3_get_autocommit(log->db)) {
        exec_sql(log, "COMMIT", NULL);
    }
    g_mutex_unlock(&log->lock);
    return ok;
}
