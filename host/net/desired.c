/*
 * tvd-net: the desired state (domains, roles, rules, members), checked as it
 * is built so that the compiler and the enforcer only see valid input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "net-private.h"

G_DEFINE_QUARK(tvd-net-error-quark, tvd_net_error)

void tvd_net_bridge_name(guint32 id, char buf[TVD_NET_IFNAME_MAX + 1])
{
    snprintf(buf, TVD_NET_IFNAME_MAX + 1, TVD_NET_BRIDGE_PREFIX "%u", id);
}

guint32 tvd_net_bridge_id(const char *name)
{
    const char *digits;
    guint64 id = 0;

    if (!g_str_has_prefix(name, TVD_NET_BRIDGE_PREFIX)) {
        return 0;
    }
    digits = name + strlen(TVD_NET_BRIDGE_PREFIX);
    if (!*digits || *digits == '0' || strlen(digits) > 8) {
        return 0;
    }
    for (const char *c = digits; *c; c++) {
        if (!g_ascii_isdigit(*c)) {
            return 0;
        }
        id = id * 10 + (guint64)(*c - '0');
    }
    return id <= TVD_POLICY_DOMAIN_ID_MAX ? (guint32)id : 0;
}

static void rule_clear(gpointer p)
{
    TvdNetRule *rule = p;

    g_free(rule->ports);
}

static void member_clear(gpointer p)
{
    TvdNetMemberPriv *member = p;

    g_free(member->vm);
}

static void domain_free(gpointer p)
{
    TvdNetDomain *domain = p;

    g_ptr_array_unref(domain->roles);
    g_array_unref(domain->rules);
    g_array_unref(domain->members);
    g_hash_table_unref(domain->addresses);
    g_free(domain);
}

TvdNetState *tvd_net_state_new(void)
{
    TvdNetState *state = g_new0(TvdNetState, 1);

    state->domains = g_ptr_array_new_with_free_func(domain_free);
    state->ids = g_hash_table_new(g_direct_hash, g_direct_equal);
    state->taps = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return state;
}

void tvd_net_state_free(TvdNetState *state)
{
    if (!state) {
        return;
    }
    g_hash_table_unref(state->taps);
    g_hash_table_unref(state->ids);
    g_ptr_array_unref(state->domains);
    g_free(state);
}

static guint32 ipv4_u32(const guint8 a[4])
{
    return (guint32)a[0] << 24 | (guint32)a[1] << 16 | (guint32)a[2] << 8 | a[3];
}

static guint32 prefix_mask(guint8 prefix)
{
    return prefix ? 0xffffffffu << (32 - prefix) : 0;
}

TvdNetDomain *tvd_net_state_add_domain(TvdNetState *state, guint32 id,
                                       const guint8 subnet[4], guint8 prefix,
                                       gboolean default_allow, GError **error)
{
    TvdNetDomain *domain;

    if (id == 0 || id > TVD_POLICY_DOMAIN_ID_MAX) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain id %u is out of range 1..%u", id, TVD_POLICY_DOMAIN_ID_MAX);
        return NULL;
    }
    if (g_hash_table_contains(state->ids, GUINT_TO_POINTER(id))) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain id %u is given twice", id);
        return NULL;
    }
    if (state->domains->len >= TVD_NET_MAX_DOMAINS) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "more than %u domains", TVD_NET_MAX_DOMAINS);
        return NULL;
    }
    if (prefix < 8 || prefix > 30 || (ipv4_u32(subnet) & ~prefix_mask(prefix))) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: subnet %u.%u.%u.%u/%u is not a /8../30 network "
                    "with its host bits zero", id, subnet[0], subnet[1], subnet[2],
                    subnet[3], prefix);
        return NULL;
    }
    domain = g_new0(TvdNetDomain, 1);
    domain->state = state;
    domain->id = id;
    memcpy(domain->subnet, subnet, 4);
    domain->prefix = prefix;
    domain->default_allow = default_allow;
    domain->roles = g_ptr_array_new_with_free_func(g_free);
    domain->rules = g_array_new(FALSE, TRUE, sizeof(TvdNetRule));
    g_array_set_clear_func(domain->rules, rule_clear);
    domain->members = g_array_new(FALSE, TRUE, sizeof(TvdNetMemberPriv));
    g_array_set_clear_func(domain->members, member_clear);
    domain->addresses = g_hash_table_new(g_direct_hash, g_direct_equal);
    g_ptr_array_add(state->domains, domain);
    g_hash_table_insert(state->ids, GUINT_TO_POINTER(id), domain);
    return domain;
}

/* Role names as the policy spells them: [a-z][a-z0-9_-]{0,31}. */
static gboolean role_name_valid(const char *role)
{
    size_t len = strlen(role);

    if (len == 0 || len > TVD_POLICY_ROLE_MAX || !g_ascii_islower(role[0])) {
        return FALSE;
    }
    for (size_t i = 1; i < len; i++) {
        if (!g_ascii_islower(role[i]) && !g_ascii_isdigit(role[i]) &&
            role[i] != '_' && role[i] != '-') {
            return FALSE;
        }
    }
    return TRUE;
}

static int role_index(const TvdNetDomain *domain, const char *role)
{
    for (guint i = 0; i < domain->roles->len; i++) {
        if (!strcmp(g_ptr_array_index(domain->roles, i), role)) {
            return (int)i;
        }
    }
    return -1;
}

gboolean tvd_net_domain_add_role(TvdNetDomain *domain, const char *role,
                                 GError **error)
{
    if (!role_name_valid(role)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: '%s' is not a role name", domain->id, role);
        return FALSE;
    }
    if (role_index(domain, role) >= 0 || domain->roles->len >= TVD_POLICY_MAX_ROLES) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: role '%s' is a duplicate or one too many",
                    domain->id, role);
        return FALSE;
    }
    g_ptr_array_add(domain->roles, g_strdup(role));
    return TRUE;
}

static gboolean rule_role(const TvdNetDomain *domain, const char *role, int *out,
                          GError **error)
{
    if (!strcmp(role, "*")) {
        *out = -1;
        return TRUE;
    }
    *out = role_index(domain, role);
    if (*out < 0) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: a rule names the unknown role '%s'", domain->id, role);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_net_domain_add_rule(TvdNetDomain *domain, const char *from,
                                 const char *to, TvdPolicyProtocol protocol,
                                 const TvdPolicyPortRange *ports, guint n_ports,
                                 GError **error)
{
    TvdNetRule rule = { .protocol = protocol };

    if (!rule_role(domain, from, &rule.from, error) ||
        !rule_role(domain, to, &rule.to, error)) {
        return FALSE;
    }
    if (protocol != TVD_POLICY_PROTO_ANY && protocol != TVD_POLICY_PROTO_TCP &&
        protocol != TVD_POLICY_PROTO_UDP && protocol != TVD_POLICY_PROTO_ICMP) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: protocol %d is not any, tcp, udp or icmp",
                    domain->id, (int)protocol);
        return FALSE;
    }
    if (n_ports && protocol != TVD_POLICY_PROTO_TCP && protocol != TVD_POLICY_PROTO_UDP) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: ports need tcp or udp", domain->id);
        return FALSE;
    }
    if (n_ports > TVD_POLICY_MAX_PORTS || domain->rules->len >= TVD_POLICY_MAX_RULES) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: too many rules or ports", domain->id);
        return FALSE;
    }
    for (guint i = 0; i < n_ports; i++) {
        if (ports[i].first == 0 || ports[i].first > ports[i].last) {
            g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                        "domain %u: port range %u-%u is not 1..65535 ascending",
                        domain->id, ports[i].first, ports[i].last);
            return FALSE;
        }
    }
    rule.n_ports = n_ports;
    rule.ports = n_ports ? g_memdup2(ports, n_ports * sizeof(*ports)) : NULL;
    g_array_append_val(domain->rules, rule);
    return TRUE;
}

/* Interface names we accept: what the kernel does, minus the surprising. */
static gboolean ifname_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > TVD_NET_IFNAME_MAX) {
        return FALSE;
    }
    for (size_t i = 0; i < len; i++) {
        if (!g_ascii_isalnum(name[i]) && name[i] != '_' && name[i] != '-' &&
            name[i] != '.') {
            return FALSE;
        }
    }
    return TRUE;
}

gboolean tvd_net_domain_add_member(TvdNetDomain *domain,
                                   const TvdNetMember *member, GError **error)
{
    TvdNetMemberPriv priv = { 0 };
    const char *vm = member->vm ? member->vm : member->tap;
    guint32 addr = ipv4_u32(member->ipv4);
    guint32 mask = prefix_mask(domain->prefix);
    static const guint8 zero_mac[6];
    int role;

    if (!ifname_valid(member->tap) || tvd_net_bridge_id(member->tap) ||
        g_str_has_prefix(member->tap, TVD_NET_BRIDGE_PREFIX)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: '%s' is not a usable tap name", vm, member->tap);
        return FALSE;
    }
    if (g_hash_table_contains(domain->state->taps, member->tap)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: tap %s belongs to another member", vm, member->tap);
        return FALSE;
    }
    if ((member->mac[0] & 1) || !memcmp(member->mac, zero_mac, 6)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: the MAC is multicast or zero", vm);
        return FALSE;
    }
    if ((addr & mask) != ipv4_u32(domain->subnet) || (addr & ~mask) == 0 ||
        (addr & ~mask) == ~mask) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: %u.%u.%u.%u is no host address of domain %u's subnet",
                    vm, member->ipv4[0], member->ipv4[1], member->ipv4[2],
                    member->ipv4[3], domain->id);
        return FALSE;
    }
    if (g_hash_table_contains(domain->addresses, GUINT_TO_POINTER(addr))) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: address %u.%u.%u.%u is another member's", vm,
                    member->ipv4[0], member->ipv4[1], member->ipv4[2], member->ipv4[3]);
        return FALSE;
    }
    role = member->role ? role_index(domain, member->role) : -1;
    if (role < 0) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "member %s: role '%s' is not one of domain %u's", vm,
                    member->role ? member->role : "(none)", domain->id);
        return FALSE;
    }
    if (domain->members->len >= TVD_NET_MAX_MEMBERS) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "domain %u: more than %u members", domain->id, TVD_NET_MAX_MEMBERS);
        return FALSE;
    }
    priv.vm = g_strdup(vm);
    g_strlcpy(priv.tap, member->tap, sizeof(priv.tap));
    memcpy(priv.mac, member->mac, 6);
    memcpy(priv.ipv4, member->ipv4, 4);
    priv.role = (guint)role;
    priv.attached = member->attached;
    g_array_append_val(domain->members, priv);
    g_hash_table_insert(domain->addresses, GUINT_TO_POINTER(addr),
                        GUINT_TO_POINTER(domain->members->len));
    g_hash_table_insert(domain->state->taps, g_strdup(member->tap), domain);
    return TRUE;
}

TvdNetDomain *tvd_net_state_add_policy_domain(TvdNetState *state,
                                              const TvdPolicy *policy,
                                              GError **error)
{
    const TvdPolicyData *p = tvd_policy_data(policy);
    TvdNetDomain *domain;

    if (p->subnet_family != 4) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_UNSUPPORTED,
                    "domain %s: IPv6 subnets are not enforced yet", p->name);
        return NULL;
    }
    domain = tvd_net_state_add_domain(state, p->id, p->subnet_addr, p->subnet_prefix,
                                      p->intra_default_allow, error);
    if (!domain) {
        return NULL;
    }
    for (guint i = 0; i < p->n_roles; i++) {
        if (!tvd_net_domain_add_role(domain, p->roles[i], error)) {
            return NULL;
        }
    }
    for (guint i = 0; i < p->n_rules; i++) {
        const TvdPolicyRule *r = &p->rules[i];

        if (!tvd_net_domain_add_rule(domain, r->from, r->to, r->protocol, r->ports,
                                     r->n_ports, error)) {
            return NULL;
        }
    }
    return domain;
}
