/*
 * tvd-net: the desired state compiled into the objects of the nftables table
 * "bridge tvd" (docs/network.md, "What the enforcer creates").
 *
 * Per domain <id>:
 *   counters  d<id>_spoof_mac, _spoof_arp, _spoof_ip, _other, _denied
 *   sets      d<id>_mac   ifname . ether_addr            (port . member MAC)
 *             d<id>_arp   ifname . ether_addr . ipv4_addr
 *             d<id>_ip    ifname . ipv4_addr
 *             d<id>_role-<role>  ipv4_addr              (members of the role)
 *   chains    d<id>_pre   anti-spoofing, from the prerouting hook (before the
 *                         bridge learns a source MAC)
 *             d<id>_fwd   the domain's rules between members, from forward
 * Shared: maps "domain_pre" and "domain_fwd" (port -> jump to its domain's chain), set
 * "ports" (every member port), counters host_denied and stray, and the base
 * chains prerouting, forward and input.
 *
 * Rules are stateless (this kernel has no bridge conntrack): each allow rule
 * also lets the answers through (TCP without a bare SYN, UDP from the port,
 * ICMP replies and errors). Every rule carries a comment "tvd:<hash>:<n>"
 * where hash covers its chain's rules: the enforcer rewrites a chain whose
 * comments differ, and leaves it alone otherwise.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "net-private.h"

#define ICMP_REPLIES "icmp type { echo-reply, destination-unreachable, " \
                     "time-exceeded, parameter-problem }"

static void set_free(gpointer p)
{
    TvdNftSet *set = p;

    g_free(set->name);
    g_ptr_array_unref(set->elements);
    g_free(set);
}

static void chain_free(gpointer p)
{
    TvdNftChain *chain = p;

    g_free(chain->name);
    g_ptr_array_unref(chain->rules);
    g_ptr_array_unref(chain->comments);
    g_free(chain);
}

void tvd_nft_table_free(TvdNftTable *table)
{
    if (!table) {
        return;
    }
    g_ptr_array_unref(table->sets);
    g_ptr_array_unref(table->chains);
    g_ptr_array_unref(table->counters);
    g_free(table);
}

static TvdNftSet *add_set(TvdNftTable *table, const char *decl, gboolean quote_first,
                          const char *fmt, ...) G_GNUC_PRINTF(4, 5);

static TvdNftSet *add_set(TvdNftTable *table, const char *decl, gboolean quote_first,
                          const char *fmt, ...)
{
    TvdNftSet *set = g_new0(TvdNftSet, 1);
    va_list ap;

    va_start(ap, fmt);
    set->name = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    set->decl = decl;
    set->quote_first = quote_first;
    set->elements = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(table->sets, set);
    return set;
}

static TvdNftChain *add_chain(TvdNftTable *table, const char *hook, int priority,
                              const char *name)
{
    TvdNftChain *chain = g_new0(TvdNftChain, 1);

    chain->name = g_strdup(name);
    chain->hook = hook;
    chain->priority = priority;
    chain->rules = g_ptr_array_new_with_free_func(g_free);
    chain->comments = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(table->chains, chain);
    return chain;
}

static void add_rule(TvdNftChain *chain, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static void add_rule(TvdNftChain *chain, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    g_ptr_array_add(chain->rules, g_strdup_vprintf(fmt, ap));
    va_end(ap);
}

/* Appends each rule's comment, derived from the chain's whole rule text. */
static void seal_chain(TvdNftChain *chain)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    char hash[13];

    g_checksum_update(sum, (const guchar *)(chain->hook ? chain->hook : "-"), -1);
    for (guint i = 0; i < chain->rules->len; i++) {
        g_checksum_update(sum, (const guchar *)"\n", 1);
        g_checksum_update(sum, g_ptr_array_index(chain->rules, i), -1);
    }
    g_strlcpy(hash, g_checksum_get_string(sum), sizeof(hash));
    for (guint i = 0; i < chain->rules->len; i++) {
        g_ptr_array_add(chain->comments, g_strdup_printf("tvd:%s:%u", hash, i));
    }
}

static char *ports_text(const TvdNetRule *rule)
{
    GString *s = g_string_new("{ ");

    for (guint i = 0; i < rule->n_ports; i++) {
        const TvdPolicyPortRange *r = &rule->ports[i];

        if (i) {
            g_string_append(s, ", ");
        }
        if (r->first == r->last) {
            g_string_append_printf(s, "%u", r->first);
        } else {
            g_string_append_printf(s, "%u-%u", r->first, r->last);
        }
    }
    g_string_append(s, " }");
    return g_string_free(s, FALSE);
}

/* "ip saddr @d1_role-web ip daddr @d1_role-db " (either side may be "*"). */
static char *peers_text(const TvdNetDomain *domain, int from, int to)
{
    GString *s = g_string_new(NULL);

    if (from >= 0) {
        g_string_append_printf(s, "ip saddr @d%u_role-%s ", domain->id,
                               (const char *)g_ptr_array_index(domain->roles, from));
    }
    if (to >= 0) {
        g_string_append_printf(s, "ip daddr @d%u_role-%s ", domain->id,
                               (const char *)g_ptr_array_index(domain->roles, to));
    }
    if (!s->len) {
        g_string_append(s, "ether type ip ");
    }
    return g_string_free(s, FALSE);
}

/* One allow rule and the rules that let its answers back (stateless). */
static void compile_rule(const TvdNetDomain *domain, const TvdNetRule *rule,
                         TvdNftChain *fwd)
{
    g_autofree char *go = peers_text(domain, rule->from, rule->to);
    g_autofree char *back = peers_text(domain, rule->to, rule->from);
    g_autofree char *ports = rule->n_ports ? ports_text(rule) : NULL;

    switch (rule->protocol) {
    case TVD_POLICY_PROTO_TCP:
        if (ports) {
            add_rule(fwd, "%stcp dport %s accept", go, ports);
            add_rule(fwd, "%stcp sport %s tcp flags & (syn | ack) != syn accept",
                     back, ports);
        } else {
            add_rule(fwd, "%sip protocol tcp accept", go);
            add_rule(fwd, "%stcp flags & (syn | ack) != syn accept", back);
        }
        break;
    case TVD_POLICY_PROTO_UDP:
        if (ports) {
            add_rule(fwd, "%sudp dport %s accept", go, ports);
            add_rule(fwd, "%sudp sport %s accept", back, ports);
        } else {
            add_rule(fwd, "%sip protocol udp accept", go);
            add_rule(fwd, "%sip protocol udp accept", back);
        }
        break;
    case TVD_POLICY_PROTO_ICMP:
        add_rule(fwd, "%sip protocol icmp accept", go);
        add_rule(fwd, "%s" ICMP_REPLIES " accept", back);
        break;
    case TVD_POLICY_PROTO_ANY:
    default:
        add_rule(fwd, "%saccept", go);
        add_rule(fwd, "%stcp flags & (syn | ack) != syn accept", back);
        add_rule(fwd, "%sip protocol udp accept", back);
        add_rule(fwd, "%s" ICMP_REPLIES " accept", back);
        break;
    }
}

static char *mac_text(const guint8 mac[6])
{
    return g_strdup_printf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2],
                           mac[3], mac[4], mac[5]);
}

static char *ip_text(const guint8 ip[4])
{
    return g_strdup_printf("%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
}

static void compile_domain(const TvdNetDomain *domain, TvdNftTable *table,
                           TvdNftSet *pre, TvdNftSet *fwd_map, TvdNftSet *ports)
{
    guint32 id = domain->id;
    TvdNftSet *mac_set, *arp_set, *ip_set;
    g_autoptr(GPtrArray) role_sets = g_ptr_array_new();
    g_autofree char *pre_name = g_strdup_printf("d%u_pre", id);
    g_autofree char *fwd_name = g_strdup_printf("d%u_fwd", id);
    TvdNftChain *pre_chain, *fwd_chain;
    static const char *const counters[] = {
        "spoof_mac", "spoof_arp", "spoof_ip", "other", "denied",
    };

    for (guint i = 0; i < G_N_ELEMENTS(counters); i++) {
        g_ptr_array_add(table->counters, g_strdup_printf("d%u_%s", id, counters[i]));
    }
    mac_set = add_set(table, "ifname . ether_addr", TRUE, "d%u_mac", id);
    arp_set = add_set(table, "ifname . ether_addr . ipv4_addr", TRUE, "d%u_arp", id);
    ip_set = add_set(table, "ifname . ipv4_addr", TRUE, "d%u_ip", id);
    for (guint r = 0; r < domain->roles->len; r++) {
        g_ptr_array_add(role_sets,
                        add_set(table, "ipv4_addr", FALSE, "d%u_role-%s", id,
                                (const char *)g_ptr_array_index(domain->roles, r)));
    }

    for (guint i = 0; i < domain->members->len; i++) {
        const TvdNetMemberPriv *m = &g_array_index(domain->members, TvdNetMemberPriv, i);
        g_autofree char *mac = mac_text(m->mac);
        g_autofree char *ip = ip_text(m->ipv4);
        TvdNftSet *role_set = g_ptr_array_index(role_sets, m->role);

        g_ptr_array_add(mac_set->elements, g_strdup_printf("%s . %s", m->tap, mac));
        g_ptr_array_add(arp_set->elements,
                        g_strdup_printf("%s . %s . %s", m->tap, mac, ip));
        g_ptr_array_add(ip_set->elements, g_strdup_printf("%s . %s", m->tap, ip));
        g_ptr_array_add(role_set->elements, g_strdup(ip));
        g_ptr_array_add(pre->elements, g_strdup_printf("%s : jump %s", m->tap, pre_name));
        g_ptr_array_add(fwd_map->elements,
                        g_strdup_printf("%s : jump %s", m->tap, fwd_name));
        g_ptr_array_add(ports->elements, g_strdup(m->tap));
    }

    pre_chain = add_chain(table, NULL, 0, pre_name);
    add_rule(pre_chain, "iifname . ether saddr != @d%u_mac counter name \"d%u_spoof_mac\" "
             "drop", id, id);
    add_rule(pre_chain, "ether type arp iifname . arp saddr ether . arp saddr ip != "
             "@d%u_arp counter name \"d%u_spoof_arp\" drop", id, id);
    add_rule(pre_chain, "ether type ip iifname . ip saddr != @d%u_ip "
             "counter name \"d%u_spoof_ip\" drop", id, id);
    add_rule(pre_chain, "ether type != { ip, arp } counter name \"d%u_other\" drop", id);
    seal_chain(pre_chain);

    fwd_chain = add_chain(table, NULL, 0, fwd_name);
    /* ARP between members: its sender was checked on the way in. */
    add_rule(fwd_chain, "oifname != @ports counter name \"stray\" drop");
    add_rule(fwd_chain, "ether type arp accept");
    for (guint i = 0; i < domain->rules->len; i++) {
        compile_rule(domain, &g_array_index(domain->rules, TvdNetRule, i), fwd_chain);
    }
    if (domain->default_allow) {
        add_rule(fwd_chain, "accept");
    } else {
        add_rule(fwd_chain, "counter name \"d%u_denied\" drop", id);
    }
    seal_chain(fwd_chain);
}

TvdNftTable *tvd_nft_compile(const TvdNetState *state)
{
    TvdNftTable *table = g_new0(TvdNftTable, 1);
    TvdNftSet *pre, *fwd, *ports;
    TvdNftChain *chain;

    table->sets = g_ptr_array_new_with_free_func(set_free);
    table->chains = g_ptr_array_new_with_free_func(chain_free);
    table->counters = g_ptr_array_new_with_free_func(g_free);

    g_ptr_array_add(table->counters, g_strdup("host_denied"));
    g_ptr_array_add(table->counters, g_strdup("stray"));
    pre = add_set(table, "ifname : verdict", TRUE, "domain_pre");
    fwd = add_set(table, "ifname : verdict", TRUE, "domain_fwd");
    ports = add_set(table, "ifname", TRUE, "ports");

    /* Domain chains first: the base chains' rules and the maps jump to them. */
    for (guint i = 0; i < state->domains->len; i++) {
        compile_domain(g_ptr_array_index(state->domains, i), table, pre, fwd, ports);
    }

    /* Before the bridge learns: -200 is earlier than any usual filter. */
    chain = add_chain(table, "prerouting", -200, "prerouting");
    add_rule(chain, "iifname vmap @domain_pre");
    seal_chain(chain);
    chain = add_chain(table, "forward", 0, "forward");
    add_rule(chain, "iifname vmap @domain_fwd");
    /* From a port no member owns (the enforcer releases those) to a member. */
    add_rule(chain, "oifname @ports counter name \"stray\" drop");
    seal_chain(chain);
    /* A domain's bridge has no address: members reach nothing on the host. */
    chain = add_chain(table, "input", 0, "input");
    add_rule(chain, "iifname @ports counter name \"host_denied\" drop");
    seal_chain(chain);
    return table;
}

void tvd_nft_element_render(const TvdNftSet *set, const char *element, GString *out)
{
    size_t first;

    if (!set->quote_first) {
        g_string_append(out, element);
        return;
    }
    first = strcspn(element, " ");
    g_string_append_c(out, '"');
    g_string_append_len(out, element, (gssize)first);
    g_string_append_c(out, '"');
    g_string_append(out, element + first);
}

void tvd_nft_chain_render(const TvdNftChain *chain, gboolean declare, GString *out)
{
    if (declare) {
        g_string_append_printf(out, "add chain bridge " TVD_NET_TABLE " %s", chain->name);
        if (chain->hook) {
            g_string_append_printf(out, " { type filter hook %s priority %d; "
                                   "policy accept; }", chain->hook, chain->priority);
        }
        g_string_append_c(out, '\n');
    }
    for (guint r = 0; r < chain->rules->len; r++) {
        g_string_append_printf(out, "add rule bridge " TVD_NET_TABLE " %s %s "
                               "comment \"%s\"\n", chain->name,
                               (const char *)g_ptr_array_index(chain->rules, r),
                               (const char *)g_ptr_array_index(chain->comments, r));
    }
}

void tvd_nft_set_render(const TvdNftSet *set, GString *out)
{
    gboolean is_map = strchr(set->decl, ':') != NULL;

    g_string_append_printf(out, "add %s bridge " TVD_NET_TABLE " %s { type %s; }\n",
                           is_map ? "map" : "set", set->name, set->decl);
}

void tvd_nft_table_render(const TvdNftTable *table, GString *out)
{
    g_string_append(out, "add table bridge " TVD_NET_TABLE
                    " { comment \"tvd-net: managed by tvd, see docs/network.md\"; }\n");
    for (guint i = 0; i < table->counters->len; i++) {
        g_string_append_printf(out, "add counter bridge " TVD_NET_TABLE " %s\n",
                               (const char *)g_ptr_array_index(table->counters, i));
    }
    for (guint i = 0; i < table->sets->len; i++) {
        tvd_nft_set_render(g_ptr_array_index(table->sets, i), out);
    }
    for (guint i = 0; i < table->chains->len; i++) {
        tvd_nft_chain_render(g_ptr_array_index(table->chains, i), TRUE, out);
    }
}
