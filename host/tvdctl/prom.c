/*
 * tvdctl: a parser of the Prometheus text exposition format 0.0.4, to turn
 * /metrics into JSON for `tvdctl metrics --json`. The text comes from the
 * server: it is outside input, so nothing here aborts and every malformed
 * line is an error naming its line number (fuzzed in tests/fuzz/api).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"

#include <math.h>
#include <string.h>

#define PROM_MAX_LABELS 64

G_DEFINE_QUARK(tvdctl-error-quark, tvdctl_error)

typedef struct {
    char *name;
    char *type;
    char *help;
    JsonArray *samples;
} Family;

static void family_free(gpointer p)
{
    Family *f = p;

    g_free(f->name);
    g_free(f->type);
    g_free(f->help);
    if (f->samples) {
        json_array_unref(f->samples);
    }
    g_free(f);
}

typedef struct {
    GPtrArray *families;        /* Family, in order of appearance */
    GHashTable *by_name;        /* name -> Family (borrowed) */
} Parser;

static Family *family_get(Parser *p, const char *name)
{
    Family *f = g_hash_table_lookup(p->by_name, name);

    if (!f) {
        f = g_new0(Family, 1);
        f->name = g_strdup(name);
        f->samples = json_array_new();
        g_ptr_array_add(p->families, f);
        g_hash_table_insert(p->by_name, f->name, f);
    }
    return f;
}

/* The family a sample belongs to: histogram/summary suffixes fold in. */
static Family *family_of_sample(Parser *p, const char *name)
{
    static const char *const suffixes[] = { "_bucket", "_sum", "_count",
                                            NULL };
    Family *f = g_hash_table_lookup(p->by_name, name);
    size_t n = strlen(name);

    if (f) {
        return f;
    }
    for (size_t i = 0; suffixes[i]; i++) {
        size_t k = strlen(suffixes[i]);

        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            g_autofree char *base = g_strndup(name, n - k);

            f = g_hash_table_lookup(p->by_name, base);
            if (f && (g_strcmp0(f->type, "histogram") == 0 ||
                      g_strcmp0(f->type, "summary") == 0)) {
                return f;
            }
        }
    }
    return family_get(p, name);
}

static gboolean is_name_start(char c, gboolean colon)
{
    return g_ascii_isalpha(c) || c == '_' || (colon && c == ':');
}

static gboolean is_name_char(char c, gboolean colon)
{
    return is_name_start(c, colon) || g_ascii_isdigit(c);
}

/* A metric (colon = TRUE) or label name at *s; advances *s. */
static char *take_name(const char **s, gboolean colon)
{
    const char *start = *s;

    if (!is_name_start(**s, colon)) {
        return NULL;
    }
    while (is_name_char(**s, colon)) {
        (*s)++;
    }
    return g_strndup(start, (gsize)(*s - start));
}

static void skip_blank(const char **s)
{
    while (**s == ' ' || **s == '\t') {
        (*s)++;
    }
}

/* A float value token (whole token); TRUE with *v. */
static gboolean parse_value(const char *tok, double *v)
{
    char *end = NULL;

    if (strcmp(tok, "NaN") == 0) {
        *v = NAN;
        return TRUE;
    }
    if (strcmp(tok, "+Inf") == 0 || strcmp(tok, "Inf") == 0) {
        *v = INFINITY;
        return TRUE;
    }
    if (strcmp(tok, "-Inf") == 0) {
        *v = -INFINITY;
        return TRUE;
    }
    if (!tok[0] || strspn(tok, "0123456789.eE+-") != strlen(tok)) {
        return FALSE;
    }
    *v = g_ascii_strtod(tok, &end);
    return end && *end == '\0' && isfinite(*v);
}

/* Label set "{a="x",b="y"}" at *s into @labels. */
static gboolean parse_labels(const char **s, JsonObject *labels,
                             const char **why)
{
    guint n = 0;

    (*s)++; /* '{' */
    for (;;) {
        g_autofree char *key = NULL;
        GString *value;

        skip_blank(s);
        if (**s == '}') {
            (*s)++;
            return TRUE;
        }
        if (++n > PROM_MAX_LABELS) {
            *why = "too many labels";
            return FALSE;
        }
        key = take_name(s, FALSE);
        if (!key) {
            *why = "bad label name";
            return FALSE;
        }
        skip_blank(s);
        if (**s != '=') {
            *why = "'=' expected after a label name";
            return FALSE;
        }
        (*s)++;
        skip_blank(s);
        if (**s != '"') {
            *why = "'\"' expected before a label value";
            return FALSE;
        }
        (*s)++;
        value = g_string_new(NULL);
        while (**s && **s != '"') {
            if (**s == '\\') {
                (*s)++;
                if (**s == 'n') {
                    g_string_append_c(value, '\n');
                } else if (**s == '\\' || **s == '"') {
                    g_string_append_c(value, **s);
                } else {
                    g_string_free(value, TRUE);
                    *why = "bad escape in a label value";
                    return FALSE;
                }
            } else {
                g_string_append_c(value, **s);
            }
            (*s)++;
        }
        if (**s != '"') {
            g_string_free(value, TRUE);
            *why = "unterminated label value";
            return FALSE;
        }
        (*s)++;
        if (json_object_has_member(labels, key)) {
            g_string_free(value, TRUE);
            *why = "duplicate label";
            return FALSE;
        }
        json_object_set_string_member(labels, key, value->str);
        g_string_free(value, TRUE);
        skip_blank(s);
        if (**s == ',') {
            (*s)++;
        } else if (**s != '}') {
            *why = "',' or '}' expected";
            return FALSE;
        }
    }
}

static gboolean parse_comment(Parser *p, const char *s)
{
    gboolean help;
    g_autofree char *name = NULL;
    Family *f;

    s++; /* '#' */
    skip_blank(&s);
    if (g_str_has_prefix(s, "HELP") && (s[4] == ' ' || s[4] == '\t')) {
        help = TRUE;
    } else if (g_str_has_prefix(s, "TYPE") && (s[4] == ' ' || s[4] == '\t')) {
        help = FALSE;
    } else {
        return TRUE; /* an ordinary comment */
    }
    s += 4;
    skip_blank(&s);
    name = take_name(&s, TRUE);
    if (!name) {
        return FALSE;
    }
    f = family_get(p, name);
    if (help) {
        GString *text = g_string_new(NULL);

        if (*s == ' ' || *s == '\t') {
            s++;
        }
        for (; *s; s++) {
            if (*s == '\\' && s[1] == 'n') {
                g_string_append_c(text, '\n');
                s++;
            } else if (*s == '\\' && s[1] == '\\') {
                g_string_append_c(text, '\\');
                s++;
            } else {
                g_string_append_c(text, *s);
            }
        }
        g_free(f->help);
        f->help = g_string_free(text, FALSE);
        return TRUE;
    }
    skip_blank(&s);
    if (strcmp(s, "counter") != 0 && strcmp(s, "gauge") != 0 &&
        strcmp(s, "histogram") != 0 && strcmp(s, "summary") != 0 &&
        strcmp(s, "untyped") != 0) {
        return FALSE;
    }
    g_free(f->type);
    f->type = g_strdup(s);
    return TRUE;
}

static gboolean parse_sample(Parser *p, const char *s, const char **why)
{
    g_autofree char *name = take_name(&s, TRUE);
    g_autoptr(JsonObject) labels = json_object_new();
    g_autoptr(JsonObject) sample = json_object_new();
    g_auto(GStrv) rest = NULL;
    double v;

    if (!name) {
        *why = "bad metric name";
        return FALSE;
    }
    if (*s == '{' && !parse_labels(&s, labels, why)) {
        return FALSE;
    }
    if (*s != ' ' && *s != '\t') {
        *why = "blank expected before the value";
        return FALSE;
    }
    skip_blank(&s);
    rest = g_strsplit_set(s, " \t", -1);
    {
        /* value [timestamp], blanks collapsed */
        const char *tok[3] = { NULL, NULL, NULL };
        guint n = 0;

        for (guint i = 0; rest[i]; i++) {
            if (!rest[i][0]) {
                continue;
            }
            if (n == 2) {
                *why = "trailing garbage";
                return FALSE;
            }
            tok[n++] = rest[i];
        }
        if (!tok[0] || !parse_value(tok[0], &v)) {
            *why = "bad value";
            return FALSE;
        }
        json_object_set_string_member(sample, "name", name);
        json_object_set_object_member(sample, "labels",
                                      json_object_ref(labels));
        if (isfinite(v)) {
            json_object_set_double_member(sample, "value", v);
        } else {
            json_object_set_string_member(sample, "value", tok[0]);
        }
        if (tok[1]) {
            guint64 ts;
            const char *t = tok[1][0] == '-' ? tok[1] + 1 : tok[1];

            if (!t[0] || strspn(t, "0123456789") != strlen(t) ||
                strlen(t) > 18) {
                *why = "bad timestamp";
                return FALSE;
            }
            ts = g_ascii_strtoull(t, NULL, 10);
            json_object_set_int_member(sample, "timestamp",
                                       tok[1][0] == '-' ? -(gint64)ts
                                                        : (gint64)ts);
        }
    }
    json_array_add_object_element(family_of_sample(p, name)->samples,
                                  json_object_ref(sample));
    return TRUE;
}

JsonNode *tvdctl_prom_parse(const char *text, gsize len, GError **error)
{
    Parser p = {
        .families = g_ptr_array_new_with_free_func(family_free),
        .by_name = g_hash_table_new(g_str_hash, g_str_equal),
    };
    g_autoptr(JsonArray) out = json_array_new();
    g_autoptr(JsonObject) root = json_object_new();
    JsonNode *node = NULL;
    gsize off = 0;
    guint lineno = 0;

    if (memchr(text, '\0', len) || !g_utf8_validate(text, (gssize)len, NULL)) {
        g_set_error(error, TVDCTL_ERROR, TVDCTL_ERROR_PARSE,
                    "metrics: not UTF-8 text");
        goto out;
    }
    while (off < len) {
        const char *nl = memchr(text + off, '\n', len - off);
        gsize n = nl ? (gsize)(nl - (text + off)) : len - off;
        g_autofree char *line = g_strndup(text + off, n);
        const char *why = NULL;
        const char *s = line;

        off += n + (nl ? 1 : 0);
        lineno++;
        skip_blank(&s);
        if (!*s) {
            continue;
        }
        if (*s == '#') {
            if (!parse_comment(&p, s)) {
                why = "bad HELP or TYPE line";
            }
        } else {
            parse_sample(&p, s, &why);
        }
        if (why) {
            g_set_error(error, TVDCTL_ERROR, TVDCTL_ERROR_PARSE,
                        "metrics line %u: %s", lineno, why);
            goto out;
        }
    }
    for (guint i = 0; i < p.families->len; i++) {
        Family *f = p.families->pdata[i];
        JsonObject *o = json_object_new();

        json_object_set_string_member(o, "name", f->name);
        json_object_set_string_member(o, "type",
                                      f->type ? f->type : "untyped");
        if (f->help) {
            json_object_set_string_member(o, "help", f->help);
        } else {
            json_object_set_null_member(o, "help");
        }
        json_object_set_array_member(o, "samples",
                                     json_array_ref(f->samples));
        json_array_add_object_element(out, o);
    }
    json_object_set_array_member(root, "metrics", json_array_ref(out));
    node = json_node_init_object(json_node_alloc(), root);
out:
    g_hash_table_unref(p.by_name);
    g_ptr_array_unref(p.families);
    return node;
}
