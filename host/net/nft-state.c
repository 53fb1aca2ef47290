/*
 * tvd-net: what the kernel holds in the table "bridge tvd", read from
 * libnftables' JSON listing into names, set elements (canonical strings, the
 * form nft-compile.c produces), chain hooks, rule comments and counters.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <json-glib/json-glib.h>
#include <string.h>

#include "net-private.h"

void tvd_nft_observed_free(TvdNftObserved *observed)
{
    if (!observed) {
        return;
    }
    g_hash_table_unref(observed->sets);
    g_hash_table_unref(observed->set_types);
    g_hash_table_unref(observed->chains);
    g_hash_table_unref(observed->chain_hooks);
    g_hash_table_unref(observed->counters);
    g_free(observed);
}

/*
 * One element value as a canonical string: strings as they are, concatenations
 * joined by " . ", a map element as "key : jump chain". Forms the enforcer never
 * writes become a string no desired element equals, so they count as stale.
 */
static void canon_value(JsonNode *node, GString *out)
{
    if (JSON_NODE_HOLDS_VALUE(node)) {
        if (json_node_get_value_type(node) == G_TYPE_STRING) {
            g_string_append(out, json_node_get_string(node));
        } else if (json_node_get_value_type(node) == G_TYPE_INT64) {
            g_string_append_printf(out, "%" G_GINT64_FORMAT, json_node_get_int(node));
        } else {
            g_string_append(out, "?");
        }
        return;
    }
    if (JSON_NODE_HOLDS_ARRAY(node)) {
        JsonArray *pair = json_node_get_array(node);

        /* A map element: [key, verdict]. */
        if (json_array_get_length(pair) == 2) {
            canon_value(json_array_get_element(pair, 0), out);
            g_string_append(out, " : ");
            canon_value(json_array_get_element(pair, 1), out);
        } else {
            g_string_append(out, "?");
        }
        return;
    }
    if (JSON_NODE_HOLDS_OBJECT(node)) {
        JsonObject *obj = json_node_get_object(node);

        if (json_object_has_member(obj, "concat")) {
            JsonArray *parts = json_object_get_array_member(obj, "concat");

            for (guint i = 0; parts && i < json_array_get_length(parts); i++) {
                if (i) {
                    g_string_append(out, " . ");
                }
                canon_value(json_array_get_element(parts, i), out);
            }
            return;
        }
        if (json_object_has_member(obj, "elem")) {
            JsonObject *elem = json_object_get_object_member(obj, "elem");

            if (elem && json_object_has_member(elem, "val")) {
                canon_value(json_object_get_member(elem, "val"), out);
                return;
            }
        }
        for (const char *const *v = (const char *const[]){ "jump", "goto", NULL }; *v; v++) {
            JsonObject *verdict = json_object_has_member(obj, *v) ?
                                  json_object_get_object_member(obj, *v) : NULL;

            if (verdict && json_object_has_member(verdict, "target")) {
                g_string_append_printf(out, "%s %s", *v,
                                       json_object_get_string_member(verdict, "target"));
                return;
            }
        }
    }
    g_string_append(out, "?");
}

static char *canon_type(JsonObject *obj)
{
    JsonNode *type = json_object_get_member(obj, "type");
    GString *s = g_string_new(NULL);

    if (type && JSON_NODE_HOLDS_ARRAY(type)) {
        JsonArray *parts = json_node_get_array(type);

        for (guint i = 0; i < json_array_get_length(parts); i++) {
            g_string_append_printf(s, "%s%s", i ? " . " : "",
                                   json_array_get_string_element(parts, i));
        }
    } else if (type && JSON_NODE_HOLDS_VALUE(type)) {
        g_string_append(s, json_node_get_string(type));
    }
    if (json_object_has_member(obj, "map")) {
        g_string_append_printf(s, " : %s", json_object_get_string_member(obj, "map"));
    }
    return g_string_free(s, FALSE);
}

static gboolean ours(JsonObject *obj)
{
    return json_object_has_member(obj, "family") && json_object_has_member(obj, "table") &&
           !g_strcmp0(json_object_get_string_member(obj, "family"), "bridge") &&
           !g_strcmp0(json_object_get_string_member(obj, "table"), TVD_NET_TABLE);
}

static void parse_item(TvdNftObserved *o, const char *kind, JsonObject *obj)
{
    const char *name = json_object_has_member(obj, "name") ?
                       json_object_get_string_member(obj, "name") : NULL;

    if (!strcmp(kind, "set") || !strcmp(kind, "map")) {
        GHashTable *elems = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        JsonArray *list = json_object_has_member(obj, "elem") ?
                          json_object_get_array_member(obj, "elem") : NULL;

        for (guint i = 0; list && i < json_array_get_length(list); i++) {
            GString *s = g_string_new(NULL);

            canon_value(json_array_get_element(list, i), s);
            g_hash_table_add(elems, g_string_free(s, FALSE));
        }
        g_hash_table_replace(o->sets, g_strdup(name), elems);
        g_hash_table_replace(o->set_types, g_strdup(name), canon_type(obj));
    } else if (!strcmp(kind, "chain")) {
        g_hash_table_replace(o->chains, g_strdup(name),
                             g_ptr_array_new_with_free_func(g_free));
        if (json_object_has_member(obj, "hook")) {
            g_hash_table_replace(o->chain_hooks, g_strdup(name),
                g_strdup_printf("%s/%" G_GINT64_FORMAT "/%s",
                                json_object_get_string_member(obj, "hook"),
                                json_object_get_int_member_with_default(obj, "prio", 0),
                                json_object_get_string_member_with_default(obj, "policy",
                                                                           "")));
        }
    } else if (!strcmp(kind, "rule")) {
        const char *chain = json_object_get_string_member_with_default(obj, "chain", "");
        GPtrArray *comments = g_hash_table_lookup(o->chains, chain);

        /* The listing gives chains before their rules. */
        if (comments) {
            g_ptr_array_add(comments, g_strdup(
                json_object_get_string_member_with_default(obj, "comment", "")));
        }
    } else if (!strcmp(kind, "counter")) {
        TvdNetCount *count = g_new0(TvdNetCount, 1);

        count->packets = (guint64)json_object_get_int_member_with_default(obj, "packets", 0);
        count->bytes = (guint64)json_object_get_int_member_with_default(obj, "bytes", 0);
        g_hash_table_replace(o->counters, g_strdup(name), count);
    }
}

TvdNftObserved *tvd_nft_observed_parse(const char *json, GError **error)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(TvdNftObserved) o = NULL;
    gboolean table_seen = FALSE;
    JsonObject *root;
    JsonArray *items;

    if (!json_parser_load_from_data(parser, json, -1, error)) {
        g_prefix_error(error, "nftables listing: ");
        return NULL;
    }
    root = JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser)) ?
           json_node_get_object(json_parser_get_root(parser)) : NULL;
    items = root && json_object_has_member(root, "nftables") ?
            json_object_get_array_member(root, "nftables") : NULL;
    if (!items) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NFT,
                    "nftables listing: no \"nftables\" array");
        return NULL;
    }
    o = g_new0(TvdNftObserved, 1);
    o->sets = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)g_hash_table_unref);
    o->set_types = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    o->chains = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                      (GDestroyNotify)g_ptr_array_unref);
    o->chain_hooks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    o->counters = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);

    for (guint i = 0; i < json_array_get_length(items); i++) {
        JsonNode *node = json_array_get_element(items, i);
        JsonObject *wrapper = JSON_NODE_HOLDS_OBJECT(node) ? json_node_get_object(node) : NULL;
        g_autoptr(GList) kinds = wrapper ? json_object_get_members(wrapper) : NULL;
        const char *kind = kinds ? kinds->data : NULL;
        JsonObject *obj;

        if (!kind || !JSON_NODE_HOLDS_OBJECT(json_object_get_member(wrapper, kind))) {
            continue;
        }
        obj = json_object_get_object_member(wrapper, kind);
        if (!strcmp(kind, "table")) {
            const char *family = json_object_get_string_member_with_default(obj, "family", "");
            const char *name = json_object_get_string_member_with_default(obj, "name", "");

            table_seen |= !g_strcmp0(family, "bridge") && !g_strcmp0(name, TVD_NET_TABLE);
            continue;
        }
        if (ours(obj) && json_object_has_member(obj, strcmp(kind, "rule") ? "name" : "chain")) {
            parse_item(o, kind, obj);
        }
    }
    return table_seen ? g_steal_pointer(&o) : NULL;
}
