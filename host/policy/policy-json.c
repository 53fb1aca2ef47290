/*
 * Strict JSON checker and position locator. See policy-json.h.
 *
 * One recursive-descent walker does both jobs; the recursion is bounded by
 * TVD_POLICY_MAX_DEPTH. Lines and columns are 1-based; a column counts
 * characters (UTF-8 sequences), a tab counts as one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy"

#include "policy-json.h"

#include <string.h>

#define NUMBER_TOKEN_MAX    32u     /* characters of a number literal */
#define INTEGER_DIGITS_MAX  16u     /* digits of an integer literal */

typedef struct {
    const char *p;                  /* the document */
    gsize len;
    gsize off;                      /* next byte */
    guint line, col;                /* of data[off] */
    GString *path;                  /* path of the value being read */
    GString *scratch;               /* decoded string */
    /* locate mode */
    const char *target;
    gboolean found;
    guint found_line, found_col;
    /* error */
    GError **error;
    TvdPolicyErrorLocation *loc;
    gboolean failed;
} Walker;

void tvd_policy_json_path_key(GString *path, const char *key)
{
    gboolean ident = key[0] != '\0' && !g_ascii_isdigit(key[0]);

    for (const char *k = key; *k && ident; k++) {
        ident = g_ascii_isalnum(*k) || *k == '_';
    }
    if (ident) {
        if (path->len > 0) {
            g_string_append_c(path, '.');
        }
        g_string_append(path, key);
        return;
    }
    g_string_append(path, "[\"");
    for (const char *k = key; *k; k++) {
        guchar c = (guchar)*k;

        if (c == '"' || c == '\\') {
            g_string_append_printf(path, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            g_string_append_printf(path, "\\u%04x", c);
        } else {
            g_string_append_c(path, (char)c);
        }
    }
    g_string_append(path, "\"]");
}

void tvd_policy_json_path_index(GString *path, guint index)
{
    g_string_append_printf(path, "[%u]", index);
}

G_GNUC_PRINTF(3, 4)
static gboolean fail(Walker *w, TvdPolicyError code, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    if (w->failed) {
        return FALSE;
    }
    w->failed = TRUE;
    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (w->loc) {
        g_free(w->loc->path);
        w->loc->path = g_strdup(w->path->str);
        w->loc->line = w->line;
        w->loc->column = w->col;
    }
    g_set_error_literal(w->error, TVD_POLICY_ERROR, code, msg);
    return FALSE;
}

static void advance(Walker *w)
{
    guchar c = (guchar)w->p[w->off];

    w->off++;
    if (c == '\n') {
        w->line++;
        w->col = 1;
    } else if ((c & 0xc0) != 0x80) {
        w->col++;                               /* not a continuation byte */
    }
}

static void skip_ws(Walker *w)
{
    while (w->off < w->len) {
        char c = w->p[w->off];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            return;
        }
        advance(w);
    }
}

static int peek(const Walker *w)
{
    return w->off < w->len ? (guchar)w->p[w->off] : -1;
}

static void mark(Walker *w, guint line, guint col)
{
    if (w->target && !w->found && strcmp(w->path->str, w->target) == 0) {
        w->found = TRUE;
        w->found_line = line;
        w->found_col = col;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

static gboolean read_hex4(Walker *w, guint32 *out)
{
    guint32 v = 0;

    for (int i = 0; i < 4; i++) {
        int h = w->off < w->len ? hexval(w->p[w->off]) : -1;

        if (h < 0) {
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "bad \\u escape");
        }
        v = v << 4 | (guint32)h;
        advance(w);
    }
    *out = v;
    return TRUE;
}

/* Reads a string at '"'; leaves the decoded text in w->scratch. */
static gboolean read_string(Walker *w)
{
    g_string_truncate(w->scratch, 0);
    advance(w);                                 /* opening quote */
    for (;;) {
        int c = peek(w);

        if (c < 0) {
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "unterminated string");
        }
        if (c == '"') {
            if (w->scratch->len > TVD_POLICY_MAX_STRING) {  /* a last escape or UTF-8 */
                return fail(w, TVD_POLICY_ERROR_TOO_LARGE,
                            "string longer than %u bytes", TVD_POLICY_MAX_STRING);
            }
            advance(w);
            return TRUE;
        }
        if (c < 0x20) {
            return fail(w, TVD_POLICY_ERROR_SYNTAX,
                        "control character 0x%02x in a string", (guint)c);
        }
        if (w->scratch->len >= TVD_POLICY_MAX_STRING) {
            return fail(w, TVD_POLICY_ERROR_TOO_LARGE,
                        "string longer than %u bytes", TVD_POLICY_MAX_STRING);
        }
        if (c == '\\') {
            guint32 cp;

            advance(w);
            c = peek(w);
            switch (c) {
            case '"': case '\\': case '/':
                g_string_append_c(w->scratch, (char)c);
                advance(w);
                continue;
            case 'b': g_string_append_c(w->scratch, '\b'); advance(w); continue;
            case 'f': g_string_append_c(w->scratch, '\f'); advance(w); continue;
            case 'n': g_string_append_c(w->scratch, '\n'); advance(w); continue;
            case 'r': g_string_append_c(w->scratch, '\r'); advance(w); continue;
            case 't': g_string_append_c(w->scratch, '\t'); advance(w); continue;
            case 'u':
                advance(w);
                if (!read_hex4(w, &cp)) {
                    return FALSE;
                }
                if (cp >= 0xdc00 && cp <= 0xdfff) {
                    return fail(w, TVD_POLICY_ERROR_SYNTAX,
                                "lone low surrogate \\u%04x", cp);
                }
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    guint32 lo;

                    if (w->len - w->off < 2 || w->p[w->off] != '\\' ||
                        w->p[w->off + 1] != 'u') {
                        return fail(w, TVD_POLICY_ERROR_SYNTAX,
                                    "lone high surrogate \\u%04x", cp);
                    }
                    advance(w);
                    advance(w);
                    if (!read_hex4(w, &lo)) {
                        return FALSE;
                    }
                    if (lo < 0xdc00 || lo > 0xdfff) {
                        return fail(w, TVD_POLICY_ERROR_SYNTAX,
                                    "high surrogate not followed by a low one");
                    }
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                }
                if (cp == 0) {
                    return fail(w, TVD_POLICY_ERROR_SYNTAX,
                                "\\u0000 is not allowed in a string");
                }
                g_string_append_unichar(w->scratch, cp);
                continue;
            default:
                return fail(w, TVD_POLICY_ERROR_SYNTAX, "bad escape in a string");
            }
        }
        if (c < 0x80) {
            g_string_append_c(w->scratch, (char)c);
            advance(w);
        } else {
            /* One UTF-8 sequence, validated before it is copied. */
            gsize n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
            gunichar u;

            if (w->len - w->off < n) {
                return fail(w, TVD_POLICY_ERROR_SYNTAX, "invalid UTF-8");
            }
            u = g_utf8_get_char_validated(w->p + w->off, (gssize)n);
            if (u == (gunichar)-1 || u == (gunichar)-2 ||
                (gsize)g_unichar_to_utf8(u, NULL) != n) {
                return fail(w, TVD_POLICY_ERROR_SYNTAX, "invalid UTF-8");
            }
            g_string_append_len(w->scratch, w->p + w->off, (gssize)n);
            for (gsize i = 0; i < n; i++) {
                advance(w);
            }
        }
    }
}

static gboolean read_digits(Walker *w, guint *count)
{
    guint n = 0;

    while (peek(w) >= '0' && peek(w) <= '9') {
        advance(w);
        n++;
    }
    *count = n;
    return n > 0 || fail(w, TVD_POLICY_ERROR_SYNTAX, "digit expected in a number");
}

static gboolean read_number(Walker *w)
{
    gsize start = w->off;
    guint int_digits, n;
    gboolean integer = TRUE;

    if (peek(w) == '-') {
        advance(w);
    }
    if (peek(w) == '0') {
        advance(w);
        int_digits = 1;
        if (peek(w) >= '0' && peek(w) <= '9') {
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "leading zero in a number");
        }
    } else if (!read_digits(w, &int_digits)) {
        return FALSE;
    }
    if (peek(w) == '.') {
        integer = FALSE;
        advance(w);
        if (!read_digits(w, &n)) {
            return FALSE;
        }
    }
    if (peek(w) == 'e' || peek(w) == 'E') {
        integer = FALSE;
        advance(w);
        if (peek(w) == '+' || peek(w) == '-') {
            advance(w);
        }
        if (!read_digits(w, &n)) {
            return FALSE;
        }
    }
    if (w->off - start > NUMBER_TOKEN_MAX) {
        return fail(w, TVD_POLICY_ERROR_TOO_LARGE, "number literal too long");
    }
    if (integer && int_digits > INTEGER_DIGITS_MAX) {
        return fail(w, TVD_POLICY_ERROR_TOO_LARGE,
                    "integer literal with more than %u digits", INTEGER_DIGITS_MAX);
    }
    return TRUE;
}

static gboolean read_literal(Walker *w, const char *lit)
{
    gsize n = strlen(lit);

    if (w->len - w->off < n || memcmp(w->p + w->off, lit, n) != 0) {
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "unexpected character");
    }
    for (gsize i = 0; i < n; i++) {
        advance(w);
    }
    return TRUE;
}

static gboolean read_value(Walker *w, guint depth);

static gboolean read_object(Walker *w, guint depth)
{
    g_autoptr(GHashTable) names = g_hash_table_new_full(g_str_hash, g_str_equal,
                                                        g_free, NULL);
    gsize base = w->path->len;

    advance(w);                                 /* '{' */
    skip_ws(w);
    if (peek(w) == '}') {
        advance(w);
        return TRUE;
    }
    for (;;) {
        guint kline, kcol;

        skip_ws(w);
        if (peek(w) != '"') {
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "member name expected");
        }
        kline = w->line;
        kcol = w->col;
        if (!read_string(w)) {
            return FALSE;
        }
        tvd_policy_json_path_key(w->path, w->scratch->str);
        if (!g_hash_table_add(names, g_strdup(w->scratch->str))) {
            w->line = kline;
            w->col = kcol;
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "duplicate member");
        }
        mark(w, kline, kcol);
        skip_ws(w);
        if (peek(w) != ':') {
            return fail(w, TVD_POLICY_ERROR_SYNTAX, "':' expected");
        }
        advance(w);
        if (!read_value(w, depth)) {
            return FALSE;
        }
        g_string_truncate(w->path, base);
        skip_ws(w);
        if (peek(w) == ',') {
            advance(w);
            continue;
        }
        if (peek(w) == '}') {
            advance(w);
            return TRUE;
        }
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "',' or '}' expected");
    }
}

static gboolean read_array(Walker *w, guint depth)
{
    gsize base = w->path->len;
    guint index = 0;

    advance(w);                                 /* '[' */
    skip_ws(w);
    if (peek(w) == ']') {
        advance(w);
        return TRUE;
    }
    for (;; index++) {
        tvd_policy_json_path_index(w->path, index);
        if (!read_value(w, depth)) {
            return FALSE;
        }
        g_string_truncate(w->path, base);
        skip_ws(w);
        if (peek(w) == ',') {
            advance(w);
            continue;
        }
        if (peek(w) == ']') {
            advance(w);
            return TRUE;
        }
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "',' or ']' expected");
    }
}

/* Reads one value; w->path is its path. */
static gboolean read_value(Walker *w, guint depth)
{
    int c;
    gboolean is_member = w->path->len > 0 && w->path->str[w->path->len - 1] != ']';

    skip_ws(w);
    if (!is_member) {
        /* array elements (and the root) are located at their value */
        mark(w, w->line, w->col);
    }
    c = peek(w);
    switch (c) {
    case '{':
    case '[':
        if (depth >= TVD_POLICY_MAX_DEPTH) {
            return fail(w, TVD_POLICY_ERROR_TOO_LARGE,
                        "nesting deeper than %u levels", TVD_POLICY_MAX_DEPTH);
        }
        return c == '{' ? read_object(w, depth + 1) : read_array(w, depth + 1);
    case '"':
        return read_string(w);
    case 't':
        return read_literal(w, "true");
    case 'f':
        return read_literal(w, "false");
    case 'n':
        return read_literal(w, "null");
    case -1:
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "unexpected end of document");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return read_number(w);
        }
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "unexpected character");
    }
}

static gboolean walk(Walker *w)
{
    skip_ws(w);
    if (w->off == w->len) {
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "empty document");
    }
    if (!read_value(w, 0)) {
        return FALSE;
    }
    skip_ws(w);
    if (w->off != w->len) {
        return fail(w, TVD_POLICY_ERROR_SYNTAX, "data after the end of the document");
    }
    return TRUE;
}

static void walker_init(Walker *w, const char *data, gsize len)
{
    memset(w, 0, sizeof(*w));
    w->p = data;
    w->len = len;
    w->line = 1;
    w->col = 1;
    w->path = g_string_new(NULL);
    w->scratch = g_string_new(NULL);
}

static void walker_clear(Walker *w)
{
    g_string_free(w->path, TRUE);
    g_string_free(w->scratch, TRUE);
}

gboolean tvd_policy_json_check(const char *data, gsize len,
                               TvdPolicyErrorLocation *loc, GError **error)
{
    Walker w;
    gboolean ok;

    walker_init(&w, data, len);
    w.error = error;
    w.loc = loc;
    ok = walk(&w);
    walker_clear(&w);
    return ok;
}

gboolean tvd_policy_json_locate(const char *data, gsize len, const char *path,
                                guint *line, guint *column)
{
    Walker w;

    walker_init(&w, data, len);
    w.target = path;
    (void)walk(&w);
    *line = w.found ? w.found_line : 0;
    *column = w.found ? w.found_col : 0;
    walker_clear(&w);
    return w.found;
}
