/*
 * tvd-net: the enforcer. A reconcile releases the ports that must leave
 * (links.c), brings the table "bridge tvd" to the compiled desired state in
 * one nftables transaction, then makes bridges and lets ports join.
 *
 * The table is compared object by object with the kernel's listing: missing
 * counters, sets and chains are added, a chain whose rule comments differ is
 * flushed and written again, set elements are added and removed, objects of
 * the table nobody wants are deleted. A table whose shape cannot be repaired
 * that way (a base chain on another hook, a set of another type), or a
 * repair the kernel refuses, is rebuilt whole, still in one transaction.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <nftables/libnftables.h>
#include <string.h>

#include "links.h"

struct _TvdNetEnforcer {
    struct nl_sock *sock;
    struct nft_ctx *nft;
};

guint tvd_net_drift_changes(const TvdNetDrift *d)
{
    return d->bridges_created + d->bridges_deleted + d->bridges_fixed + d->ports_attached +
           d->ports_detached + d->ports_released + d->tables_created + d->chains_written +
           d->objects_added + d->objects_deleted + d->elements_added + d->elements_removed;
}

TvdNetEnforcer *tvd_net_enforcer_new(GError **error)
{
    g_autoptr(TvdNetEnforcer) e = g_new0(TvdNetEnforcer, 1);
    int rc;

    e->sock = nl_socket_alloc();
    if (!e->sock) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NETLINK, "no netlink socket");
        return NULL;
    }
    if ((rc = nl_connect(e->sock, NETLINK_ROUTE)) < 0) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NETLINK,
                    "connecting to rtnetlink: %s", nl_geterror(rc));
        return NULL;
    }
    e->nft = nft_ctx_new(NFT_CTX_DEFAULT);
    if (!e->nft || nft_ctx_buffer_output(e->nft) || nft_ctx_buffer_error(e->nft)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NFT, "no nftables context");
        return NULL;
    }
    return g_steal_pointer(&e);
}

void tvd_net_enforcer_free(TvdNetEnforcer *e)
{
    if (!e) {
        return;
    }
    if (e->nft) {
        nft_ctx_free(e->nft);
    }
    if (e->sock) {
        nl_socket_free(e->sock);
    }
    g_free(e);
}

/* Runs @cmds as one transaction; the output of a listing into @out. */
static gboolean nft_run(TvdNetEnforcer *e, const char *cmds, gboolean json, char **out,
                        GError **error)
{
    int rc;

    nft_ctx_output_set_flags(e->nft, json ? NFT_CTX_OUTPUT_JSON : 0);
    rc = nft_run_cmd_from_buffer(e->nft, cmds);
    if (out) {
        *out = g_strdup(nft_ctx_get_output_buffer(e->nft));
    } else {
        (void)nft_ctx_get_output_buffer(e->nft);
    }
    if (rc) {
        g_autofree char *msg = g_strndup(nft_ctx_get_error_buffer(e->nft), 2000);

        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NFT, "nftables: %s",
                    g_strstrip(msg));
        if (out) {
            g_clear_pointer(out, g_free);
        }
        return FALSE;
    }
    (void)nft_ctx_get_error_buffer(e->nft);
    return TRUE;
}

/* The table as the kernel has it; NULL in @out when there is none. */
static gboolean read_table(TvdNetEnforcer *e, TvdNftObserved **out, GError **error)
{
    g_autofree char *tables = NULL;
    g_autofree char *listing = NULL;

    *out = NULL;
    if (!nft_run(e, "list tables bridge", TRUE, &tables, error)) {
        return FALSE;
    }
    if (!strstr(tables, "\"name\": \"" TVD_NET_TABLE "\"")) {
        return TRUE;
    }
    if (!nft_run(e, "list table bridge " TVD_NET_TABLE, TRUE, &listing, error)) {
        return FALSE;
    }
    *out = tvd_nft_observed_parse(listing, error);
    return *out || !error || !*error;
}

static void add_elements(const TvdNftSet *set, GPtrArray *elements, const char *verb,
                         GString *script)
{
    if (!elements->len) {
        return;
    }
    g_string_append_printf(script, "%s element bridge " TVD_NET_TABLE " %s { ", verb,
                           set->name);
    for (guint i = 0; i < elements->len; i++) {
        if (i) {
            g_string_append(script, ", ");
        }
        tvd_nft_element_render(set, g_ptr_array_index(elements, i), script);
    }
    g_string_append(script, " }\n");
}

/* The whole table anew: "add; delete" makes the delete safe when it is absent. */
static void render_rebuild(const TvdNftTable *table, TvdNetDrift *drift, GString *script)
{
    g_string_append(script, "add table bridge " TVD_NET_TABLE "\n"
                    "delete table bridge " TVD_NET_TABLE "\n");
    tvd_nft_table_render(table, script);
    for (guint i = 0; i < table->sets->len; i++) {
        const TvdNftSet *set = g_ptr_array_index(table->sets, i);

        add_elements(set, set->elements, "add", script);
        drift->elements_added += set->elements->len;
    }
    drift->tables_created++;
}

static gboolean comments_equal(GPtrArray *observed, GPtrArray *wanted)
{
    if (observed->len != wanted->len) {
        return FALSE;
    }
    for (guint i = 0; i < wanted->len; i++) {
        if (strcmp(g_ptr_array_index(observed, i), g_ptr_array_index(wanted, i))) {
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * The repairs that bring @o to @table, in an order the kernel accepts in one
 * transaction. FALSE when the shape is beyond repair (rebuild instead).
 */
static gboolean render_repair(const TvdNftTable *table, TvdNftObserved *o,
                              TvdNetDrift *drift, GString *script)
{
    g_autoptr(GHashTable) want = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GString) later = g_string_new(NULL);
    GHashTableIter it;
    gpointer key;

    /* Shape: base chains on their hooks, sets of their types. */
    for (guint i = 0; i < table->chains->len; i++) {
        const TvdNftChain *chain = g_ptr_array_index(table->chains, i);
        const char *hook = g_hash_table_lookup(o->chain_hooks, chain->name);
        g_autofree char *wanted = chain->hook ?
            g_strdup_printf("%s/%d/accept", chain->hook, chain->priority) : NULL;

        if (g_hash_table_contains(o->chains, chain->name) && g_strcmp0(hook, wanted)) {
            return FALSE;
        }
        g_hash_table_add(want, chain->name);
    }
    for (guint i = 0; i < table->sets->len; i++) {
        const TvdNftSet *set = g_ptr_array_index(table->sets, i);
        const char *type = g_hash_table_lookup(o->set_types, set->name);

        if (type && strcmp(type, set->decl)) {
            return FALSE;
        }
        g_hash_table_add(want, set->name);
    }
    for (guint i = 0; i < table->counters->len; i++) {
        g_hash_table_add(want, g_ptr_array_index(table->counters, i));
    }

    /* Missing counters and sets. */
    for (guint i = 0; i < table->counters->len; i++) {
        const char *name = g_ptr_array_index(table->counters, i);

        if (!g_hash_table_contains(o->counters, name)) {
            g_string_append_printf(script, "add counter bridge " TVD_NET_TABLE " %s\n", name);
            drift->objects_added++;
        }
    }
    for (guint i = 0; i < table->sets->len; i++) {
        const TvdNftSet *set = g_ptr_array_index(table->sets, i);

        if (!g_hash_table_contains(o->sets, set->name)) {
            tvd_nft_set_render(set, script);
            drift->objects_added++;
        }
    }

    /* Elements that must go (first: a map element may jump to a stale chain). */
    for (guint i = 0; i < table->sets->len; i++) {
        const TvdNftSet *set = g_ptr_array_index(table->sets, i);
        GHashTable *have = g_hash_table_lookup(o->sets, set->name);
        g_autoptr(GHashTable) wanted = g_hash_table_new(g_str_hash, g_str_equal);
        g_autoptr(GPtrArray) extra = g_ptr_array_new();
        g_autoptr(GPtrArray) missing = g_ptr_array_new();

        for (guint e = 0; e < set->elements->len; e++) {
            const char *elem = g_ptr_array_index(set->elements, e);

            g_hash_table_add(wanted, (gpointer)elem);
            if (!have || !g_hash_table_contains(have, elem)) {
                g_ptr_array_add(missing, (gpointer)elem);
            }
        }
        if (have) {
            g_hash_table_iter_init(&it, have);
            while (g_hash_table_iter_next(&it, &key, NULL)) {
                if (!g_hash_table_contains(wanted, key)) {
                    g_ptr_array_add(extra, key);
                }
            }
        }
        add_elements(set, extra, "delete", script);
        add_elements(set, missing, "add", later);
        drift->elements_removed += extra->len;
        drift->elements_added += missing->len;
    }

    /* Stale chains lose their rules before anything they use goes. */
    g_hash_table_iter_init(&it, o->chains);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(want, key)) {
            g_string_append_printf(script, "flush chain bridge " TVD_NET_TABLE " %s\n",
                                   (const char *)key);
        }
    }

    /* Chains: missing ones declared, ones whose rules differ written again. */
    for (guint i = 0; i < table->chains->len; i++) {
        const TvdNftChain *chain = g_ptr_array_index(table->chains, i);
        GPtrArray *have = g_hash_table_lookup(o->chains, chain->name);

        if (have && comments_equal(have, chain->comments)) {
            continue;
        }
        if (have) {
            g_string_append_printf(script, "flush chain bridge " TVD_NET_TABLE " %s\n",
                                   chain->name);
        }
        tvd_nft_chain_render(chain, have == NULL, script);
        drift->chains_written++;
    }
    g_string_append(script, later->str);

    /* Stale objects last, chains before the sets and counters they used. */
    g_hash_table_iter_init(&it, o->chains);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(want, key)) {
            g_string_append_printf(script, "delete chain bridge " TVD_NET_TABLE " %s\n",
                                   (const char *)key);
            drift->objects_deleted++;
        }
    }
    g_hash_table_iter_init(&it, o->sets);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(want, key)) {
            const char *type = g_hash_table_lookup(o->set_types, key);

            g_string_append_printf(script, "delete %s bridge " TVD_NET_TABLE " %s\n",
                                   type && strchr(type, ':') ? "map" : "set",
                                   (const char *)key);
            drift->objects_deleted++;
        }
    }
    g_hash_table_iter_init(&it, o->counters);
    while (g_hash_table_iter_next(&it, &key, NULL)) {
        if (!g_hash_table_contains(want, key)) {
            g_string_append_printf(script, "delete counter bridge " TVD_NET_TABLE " %s\n",
                                   (const char *)key);
            drift->objects_deleted++;
        }
    }
    return TRUE;
}

static gboolean reconcile_rules(TvdNetEnforcer *e, const TvdNetState *desired,
                                gboolean dry_run, TvdNetDrift *drift, GError **error)
{
    g_autoptr(TvdNftTable) table = tvd_nft_compile(desired);
    g_autoptr(TvdNftObserved) observed = NULL;
    g_autoptr(GString) script = g_string_new(NULL);
    g_autoptr(GError) repair_error = NULL;
    TvdNetDrift repair = { 0 };

    if (!read_table(e, &observed, error)) {
        return FALSE;
    }
    if (observed && render_repair(table, observed, &repair, script)) {
        if (dry_run || !script->len) {
            *drift = repair;
            return TRUE;
        }
        if (nft_run(e, script->str, FALSE, NULL, &repair_error)) {
            *drift = repair;
            return TRUE;
        }
        g_message("repairing table bridge " TVD_NET_TABLE
                  " failed (%s); rebuilding it", repair_error->message);
    }
    g_string_truncate(script, 0);
    memset(drift, 0, sizeof(*drift));
    render_rebuild(table, drift, script);
    return dry_run || nft_run(e, script->str, FALSE, NULL, error);
}

gboolean tvd_net_enforcer_reconcile(TvdNetEnforcer *e, const TvdNetState *desired,
                                    gboolean dry_run, TvdNetDrift *drift, GError **error)
{
    TvdNetDrift links = { 0 };
    TvdNetDrift rules = { 0 };
    TvdNetDrift ignored;

    if (!drift) {
        drift = &ignored;
    }
    memset(drift, 0, sizeof(*drift));
    if (!tvd_net_links_release(e->sock, desired, dry_run, &links, error) ||
        !reconcile_rules(e, desired, dry_run, &rules, error) ||
        !tvd_net_links_attach(e->sock, desired, dry_run, &links, error)) {
        return FALSE;
    }
    *drift = links;
    drift->tables_created = rules.tables_created;
    drift->chains_written = rules.chains_written;
    drift->objects_added = rules.objects_added;
    drift->objects_deleted = rules.objects_deleted;
    drift->elements_added = rules.elements_added;
    drift->elements_removed = rules.elements_removed;
    return TRUE;
}

gboolean tvd_net_enforcer_detach(TvdNetEnforcer *e, const char *tap, GError **error)
{
    return tvd_net_links_detach(e->sock, tap, error);
}

gboolean tvd_net_enforcer_counters(TvdNetEnforcer *e, guint32 domain_id,
                                   TvdNetCounters *counters, GError **error)
{
    g_autoptr(TvdNftObserved) observed = NULL;
    struct {
        const char *suffix;
        TvdNetCount *into;
    } names[] = {
        { "spoof_mac", &counters->spoof_mac }, { "spoof_arp", &counters->spoof_arp },
        { "spoof_ip", &counters->spoof_ip }, { "other", &counters->other },
        { "denied", &counters->denied },
    };

    memset(counters, 0, sizeof(*counters));
    if (!read_table(e, &observed, error)) {
        return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *name = g_strdup_printf("d%u_%s", domain_id, names[i].suffix);
        TvdNetCount *count = observed ? g_hash_table_lookup(observed->counters, name) : NULL;

        if (!count) {
            g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND,
                        "domain %u has no counter %s", domain_id, name);
            return FALSE;
        }
        *names[i].into = *count;
    }
    return TRUE;
}
