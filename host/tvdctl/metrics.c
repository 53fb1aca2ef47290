/*
 * tvdctl metrics: the supervisor's Prometheus metrics, as text or as JSON.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"

#include <stdio.h>

static int metrics(TvdctlGlobal *g, int argc, char **argv)
{
    g_autoptr(GBytes) text = NULL;
    g_autoptr(JsonNode) doc = NULL;
    g_autoptr(GError) error = NULL;
    const char *data;
    gsize len;
    int rc;

    if (!tvdctl_parse(g, "metrics", "",
                      "Print the Prometheus metrics (--json: parsed).", NULL,
                      &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "metrics takes no arguments");
    }
    rc = tvdctl_call_text(g, "/metrics", &text);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    data = g_bytes_get_data(text, &len);
    if (!g->json) {
        fwrite(data ? data : "", 1, len, stdout);
        return TVDCTL_EXIT_OK;
    }
    doc = tvdctl_prom_parse(data ? data : "", len, &error);
    if (!doc) {
        tvdctl_print_error_json("bad_response", error->message);
        return tvdctl_fail(TVDCTL_EXIT_SERVER, "metrics: %s", error->message);
    }
    tvdctl_print_json(doc);
    return TVDCTL_EXIT_OK;
}

const TvdctlVerb tvdctl_metrics_verbs[] = {
    { NULL, "", "print the Prometheus metrics", metrics },
    { NULL, NULL, NULL, NULL },
};
