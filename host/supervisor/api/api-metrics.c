/*
 * tvd API: Prometheus text exposition format 0.0.4 helpers.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api"

#include "api.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* HELP text escapes backslash and newline; label values also '"'. */
static void append_escaped(GString *out, const char *s, gboolean quote)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\':
            g_string_append(out, "\\\\");
            break;
        case '\n':
            g_string_append(out, "\\n");
            break;
        case '"':
            g_string_append(out, quote ? "\\\"" : "\"");
            break;
        default:
            g_string_append_c(out, *s);
        }
    }
}

static void append_value(GString *out, double v)
{
    char buf[G_ASCII_DTOSTR_BUF_SIZE];

    if (isnan(v)) {
        g_string_append(out, "NaN");
    } else if (isinf(v)) {
        g_string_append(out, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* Shortest of %.15g / %.17g that reads back the same value. */
        g_ascii_formatd(buf, sizeof(buf), "%.15g", v);
        if (g_ascii_strtod(buf, NULL) != v) {
            g_ascii_formatd(buf, sizeof(buf), "%.17g", v);
        }
        g_string_append(out, buf);
    }
}

void tvd_prom_family(GString *out, const char *name, const char *type,
                     const char *help)
{
    g_string_append_printf(out, "# HELP %s ", name);
    append_escaped(out, help, FALSE);
    g_string_append_printf(out, "\n# TYPE %s %s\n", name, type);
}

static void append_labels(GString *out, const char *const *labels,
                          const char *extra_key, const char *extra_value)
{
    gboolean any = FALSE;

    if ((!labels || !labels[0]) && !extra_key) {
        return;
    }
    g_string_append_c(out, '{');
    for (size_t i = 0; labels && labels[i] && labels[i + 1]; i += 2) {
        g_string_append_printf(out, "%s%s=\"", any ? "," : "", labels[i]);
        append_escaped(out, labels[i + 1], TRUE);
        g_string_append_c(out, '"');
        any = TRUE;
    }
    if (extra_key) {
        g_string_append_printf(out, "%s%s=\"", any ? "," : "", extra_key);
        append_escaped(out, extra_value, TRUE);
        g_string_append_c(out, '"');
    }
    g_string_append_c(out, '}');
}

void tvd_prom_sample(GString *out, const char *name,
                     const char *const *labels, double value)
{
    g_string_append(out, name);
    append_labels(out, labels, NULL, NULL);
    g_string_append_c(out, ' ');
    append_value(out, value);
    g_string_append_c(out, '\n');
}

void tvd_prom_histogram_init(TvdPromHistogram *h, const double *bounds,
                             guint n_bounds)
{
    memset(h, 0, sizeof(*h));
    h->n_bounds = MIN(n_bounds, TVD_PROM_MAX_BUCKETS);
    for (guint i = 0; i < h->n_bounds; i++) {
        h->bounds[i] = bounds[i];
    }
}

void tvd_prom_histogram_observe(TvdPromHistogram *h, double value)
{
    guint i;

    for (i = 0; i < h->n_bounds && value > h->bounds[i]; i++) {
    }
    h->counts[i]++;
    h->sum += value;
    h->count++;
}

void tvd_prom_histogram_write(const TvdPromHistogram *h, GString *out,
                              const char *name, const char *const *labels)
{
    g_autofree char *bucket = g_strconcat(name, "_bucket", NULL);
    guint64 cumulative = 0;
    char le[G_ASCII_DTOSTR_BUF_SIZE];

    for (guint i = 0; i < h->n_bounds; i++) {
        cumulative += h->counts[i];
        g_ascii_formatd(le, sizeof(le), "%g", h->bounds[i]);
        g_string_append(out, bucket);
        append_labels(out, labels, "le", le);
        g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", cumulative);
    }
    g_string_append(out, bucket);
    append_labels(out, labels, "le", "+Inf");
    g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", h->count);

    g_string_append_printf(out, "%s_sum", name);
    append_labels(out, labels, NULL, NULL);
    g_string_append_c(out, ' ');
    append_value(out, h->sum);
    g_string_append_printf(out, "\n%s_count", name);
    append_labels(out, labels, NULL, NULL);
    g_string_append_printf(out, " %" G_GUINT64_FORMAT "\n", h->count);
}
