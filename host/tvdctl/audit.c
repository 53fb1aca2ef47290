/*
 * tvdctl audit: read the audit log, or verify its hash chain.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"
#include "api.h"

#include <stdio.h>
#include <string.h>

static const TvdctlColumn audit_columns[] = {
    { "SEQ", "seq" },
    { "TIME", "time" },
    { "ACTION", "action" },
    { "SUBJECT", "subject" },
    { "REASON", "reason" },
    { NULL, NULL },
};

static int audit_verify(TvdctlGlobal *g)
{
    g_autoptr(JsonNode) doc = NULL;
    JsonObject *o;
    JsonNode *ok;
    int rc = tvdctl_call(g, "GET", "/v1/audit/verify", NULL, &doc);

    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    o = json_node_get_object(doc);
    ok = json_object_get_member(o, "ok");
    if (!ok || json_node_get_value_type(ok) != G_TYPE_BOOLEAN) {
        if (g->json) {
            tvdctl_print_error_json("bad_response", "ok: missing");
        }
        return tvdctl_fail(TVDCTL_EXIT_SERVER,
                           "audit verify: the answer has no \"ok\"");
    }
    if (g->json) {
        tvdctl_print_json(doc);
    } else {
        tvdctl_print_object(o);
    }
    if (!json_node_get_boolean(ok)) {
        g_autofree char *at = tvdctl_member_text(o, "first_bad");
        g_autofree char *why = tvdctl_member_text(o, "error");

        return tvdctl_fail(TVDCTL_EXIT_VERIFY,
                           "the audit log does NOT verify (entry %s: %s)", at,
                           why);
    }
    return TVDCTL_EXIT_OK;
}

static int audit(TvdctlGlobal *g, int argc, char **argv)
{
    gboolean verify = FALSE;
    g_autofree char *since = NULL, *limit = NULL, *path = NULL;
    const GOptionEntry entries[] = {
        { "since", 0, 0, G_OPTION_ARG_STRING, &since,
          "First sequence number to show (default 0)", "N" },
        { "limit", 0, 0, G_OPTION_ARG_STRING, &limit,
          "At most this many entries (default 100, max 1000)", "M" },
        { "verify", 0, 0, G_OPTION_ARG_NONE, &verify,
          "Verify the hash chain of the whole log instead", NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(JsonNode) doc = NULL;
    guint64 v;
    JsonNode *entries_node;
    int rc;

    /* options */
    if (!tvdctl_parse(g, "audit", "[--since N] [--limit M] [--verify]",
                      "Show the audit log of every decision, or verify it.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    /* inputs */
    if (argc != 1) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "audit takes no arguments");
    }
    if (verify && (since || limit)) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "--verify checks the whole log: no --since/--limit");
    }
    if (verify) {
        return audit_verify(g);
    }
    if (since && !tvd_api_parse_uint("--since", since, G_MAXUINT64, &v,
                                     NULL)) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "--since: '%s' is not a "
                           "sequence number", since);
    }
    if (limit && (!tvd_api_parse_uint("--limit", limit,
                                      TVD_API_AUDIT_MAX_LIMIT, &v, NULL) ||
                  v == 0)) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "--limit: must be 1..%u",
                           TVD_API_AUDIT_MAX_LIMIT);
    }
    path = g_strdup_printf("/v1/audit?since=%s%s%s", since ? since : "0",
                           limit ? "&limit=" : "", limit ? limit : "");
    /* call */
    rc = tvdctl_call(g, "GET", path, NULL, &doc);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    /* outputs */
    if (g->json) {
        tvdctl_print_json(doc);
        return TVDCTL_EXIT_OK;
    }
    entries_node = json_object_get_member(json_node_get_object(doc),
                                          "entries");
    tvdctl_print_table(entries_node && JSON_NODE_HOLDS_ARRAY(entries_node) ?
                       json_node_get_array(entries_node) : NULL,
                       audit_columns);
    return TVDCTL_EXIT_OK;
}

const TvdctlVerb tvdctl_audit_verbs[] = {
    { NULL, "[--since N] [--limit M] [--verify]",
      "show the audit log, or verify its hash chain", audit },
    { NULL, NULL, NULL, NULL },
};
