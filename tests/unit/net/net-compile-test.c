/*
 * tvd-net without the kernel: the desired state refuses what it cannot
 * enforce (bad ids, subnets, names, MACs, addresses, duplicates, unknown
 * roles, IPv6); a policy's network section becomes roles, rules and the
 * default; the compiled table holds the anti-spoofing chain, the rules in
 * both directions and the members in sets; a rules change changes the
 * chain's comments and a member change only set elements; the reader of
 * nftables' JSON listing gives back the elements in the compiler's form.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "net-private.h"

static const guint8 net24[4] = { 10, 100, 0, 0 };

static TvdNetDomain *domain(TvdNetState *s, guint32 id)
{
    g_autoptr(GError) err = NULL;
    TvdNetDomain *d = tvd_net_state_add_domain(s, id, net24, 24, FALSE, &err);

    g_assert_no_error(err);
    g_assert_true(tvd_net_domain_add_role(d, "web", &err));
    g_assert_true(tvd_net_domain_add_role(d, "db", &err));
    return d;
}

static TvdNetMember member(const char *tap, guint8 last, const char *role)
{
    TvdNetMember m = { .vm = tap, .tap = tap, .role = role, .attached = TRUE,
                       .mac = { 0x52, 0x54, 0, 0, 0, last },
                       .ipv4 = { 10, 100, 0, last } };

    return m;
}

static void expect_invalid(gboolean ok, GError **err)
{
    g_assert_false(ok);
    g_assert_error(*err, TVD_NET_ERROR, TVD_NET_ERROR_INVALID);
    g_clear_error(err);
}

static void test_refused(void)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    static const guint8 hostbits[4] = { 10, 100, 0, 1 };
    TvdNetDomain *d = domain(s, 7);
    TvdNetMember m;

    expect_invalid(tvd_net_state_add_domain(s, 0, net24, 24, FALSE, &err) != NULL, &err);
    expect_invalid(tvd_net_state_add_domain(s, 16777216, net24, 24, FALSE, &err) != NULL,
                   &err);
    expect_invalid(tvd_net_state_add_domain(s, 7, net24, 24, FALSE, &err) != NULL, &err);
    expect_invalid(tvd_net_state_add_domain(s, 8, hostbits, 24, FALSE, &err) != NULL, &err);
    expect_invalid(tvd_net_state_add_domain(s, 8, net24, 31, FALSE, &err) != NULL, &err);
    expect_invalid(tvd_net_domain_add_role(d, "Web", &err), &err);
    expect_invalid(tvd_net_domain_add_role(d, "web", &err), &err);
    expect_invalid(tvd_net_domain_add_rule(d, "web", "cache", TVD_POLICY_PROTO_TCP, NULL, 0,
                                           &err), &err);
    expect_invalid(tvd_net_domain_add_rule(d, "web", "db", TVD_POLICY_PROTO_ICMP,
                                           &(TvdPolicyPortRange){ 1, 2 }, 1, &err), &err);

    m = member("tap1", 2, "web");
    g_assert_true(tvd_net_domain_add_member(d, &m, &err));
    g_assert_no_error(err);
    m = member("tap1", 3, "web");                       /* tap twice */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap2", 2, "web");                       /* address twice */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap2", 3, "cache");                     /* unknown role */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap2", 3, "web");
    m.mac[0] = 0x01;                                    /* multicast MAC */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap2", 255, "web");                     /* broadcast address */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap2", 3, "web");
    m.ipv4[2] = 1;                                      /* outside the subnet */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tvdbr-9", 3, "web");                    /* a bridge's name */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("tap\"x", 3, "web");                     /* would break a rule */
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
    m = member("a-very-long-tap-name", 3, "web");
    expect_invalid(tvd_net_domain_add_member(d, &m, &err), &err);
}

static const char policy_json[] =
    "{ \"tvd_policy\": 1, \"serial\": 1,"
    "  \"domain\": { \"name\": \"blue\", \"id\": 42 },"
    "  \"membership\": { \"unlisted\": \"allow\" },"
    "  \"network\": { \"subnet\": \"10.42.0.0/24\", \"encryption\": \"none\","
    "                 \"roles\": [\"web\", \"db\"], \"default_role\": \"web\","
    "                 \"intra_default\": \"deny\","
    "                 \"rules\": [ { \"from\": \"web\", \"to\": \"db\", \"protocol\": \"tcp\","
    "                              \"ports\": [5432, \"8000-8080\"] },"
    "                            { \"from\": \"*\", \"to\": \"*\", \"protocol\": \"icmp\" } ] },"
    "  \"properties\": { \"secure_io\": false } }";

static char *render(const TvdNetState *s)
{
    g_autoptr(TvdNftTable) table = tvd_nft_compile(s);
    GString *out = g_string_new(NULL);

    tvd_nft_table_render(table, out);
    return g_string_free(out, FALSE);
}

static void test_policy(void)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdPolicy) policy = tvd_policy_parse(policy_json, strlen(policy_json), NULL,
                                                   NULL, &err);
    g_autofree char *text = NULL;
    TvdNetDomain *d;
    TvdNetMember m = member("tap1", 2, "db");

    g_assert_no_error(err);
    d = tvd_net_state_add_policy_domain(s, policy, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(d->id, ==, 42);
    g_assert_false(d->default_allow);
    m.ipv4[1] = 42;
    g_assert_true(tvd_net_domain_add_member(d, &m, &err));
    text = render(s);
    g_assert_nonnull(strstr(text, "add set bridge tvd d42_role-db { type ipv4_addr; }"));
    g_assert_nonnull(strstr(text, "ip saddr @d42_role-web ip daddr @d42_role-db "
                                  "tcp dport { 5432, 8000-8080 } accept"));
    /* The answer, without a bare SYN: db cannot open a connection from 5432. */
    g_assert_nonnull(strstr(text, "ip saddr @d42_role-db ip daddr @d42_role-web "
                                  "tcp sport { 5432, 8000-8080 } "
                                  "tcp flags & (syn | ack) != syn accept"));
    g_assert_nonnull(strstr(text, "ether type ip ip protocol icmp accept"));
    g_assert_nonnull(strstr(text, "counter name \"d42_denied\" drop"));
    g_assert_nonnull(strstr(text, "iifname . ether saddr != @d42_mac"));
}

static void test_ipv6_refused(void)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *v6 = g_strdup(policy_json);
    g_autoptr(TvdPolicy) policy = NULL;
    char *at = strstr(v6, "10.42.0.0/24");

    memcpy(at, "fd00:42::/64", 12);
    policy = tvd_policy_parse(v6, strlen(v6), NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_null(tvd_net_state_add_policy_domain(s, policy, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_UNSUPPORTED);
}

static TvdNftChain *chain(TvdNftTable *t, const char *name)
{
    for (guint i = 0; i < t->chains->len; i++) {
        TvdNftChain *c = g_ptr_array_index(t->chains, i);

        if (!strcmp(c->name, name)) {
            return c;
        }
    }
    g_assert_not_reached();
}

static TvdNftSet *set(TvdNftTable *t, const char *name)
{
    for (guint i = 0; i < t->sets->len; i++) {
        TvdNftSet *x = g_ptr_array_index(t->sets, i);

        if (!strcmp(x->name, name)) {
            return x;
        }
    }
    g_assert_not_reached();
}

/* A member joining changes elements only; a rule changes the chain's comments. */
static void test_sets_not_rules(void)
{
    g_autoptr(TvdNetState) s1 = tvd_net_state_new();
    g_autoptr(TvdNetState) s2 = tvd_net_state_new();
    g_autoptr(TvdNetState) s3 = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdNftTable) t1 = NULL;
    g_autoptr(TvdNftTable) t2 = NULL;
    g_autoptr(TvdNftTable) t3 = NULL;
    TvdNetDomain *d;
    TvdNetMember a = member("tap1", 2, "web");
    TvdNetMember b = member("tap2", 3, "db");

    d = domain(s1, 7);
    g_assert_true(tvd_net_domain_add_member(d, &a, &err));
    d = domain(s2, 7);
    g_assert_true(tvd_net_domain_add_member(d, &a, &err));
    g_assert_true(tvd_net_domain_add_member(d, &b, &err));
    d = domain(s3, 7);
    g_assert_true(tvd_net_domain_add_rule(d, "web", "db", TVD_POLICY_PROTO_UDP, NULL, 0,
                                          &err));
    g_assert_true(tvd_net_domain_add_member(d, &a, &err));
    g_assert_no_error(err);
    t1 = tvd_nft_compile(s1);
    t2 = tvd_nft_compile(s2);
    t3 = tvd_nft_compile(s3);

    g_assert_cmpstr(g_ptr_array_index(chain(t1, "d7_fwd")->comments, 0), ==,
                    g_ptr_array_index(chain(t2, "d7_fwd")->comments, 0));
    g_assert_cmpstr(g_ptr_array_index(chain(t1, "d7_fwd")->comments, 0), !=,
                    g_ptr_array_index(chain(t3, "d7_fwd")->comments, 0));
    g_assert_cmpuint(set(t1, "d7_mac")->elements->len, ==, 1);
    g_assert_cmpuint(set(t2, "d7_mac")->elements->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(set(t2, "d7_arp")->elements, 1), ==,
                    "tap2 . 52:54:00:00:00:03 . 10.100.0.3");
    g_assert_cmpstr(g_ptr_array_index(set(t2, "domain_pre")->elements, 1), ==,
                    "tap2 : jump d7_pre");
}

/* nft -j output (trimmed from nftables 1.0.6) read back in the compiler's form. */
static const char listing[] =
    "{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\"}},"
    "{\"table\": {\"family\": \"bridge\", \"name\": \"tvd\", \"handle\": 1}},"
    "{\"counter\": {\"family\": \"bridge\", \"name\": \"d7_denied\", \"table\": \"tvd\","
    " \"packets\": 3, \"bytes\": 180}},"
    "{\"set\": {\"family\": \"bridge\", \"name\": \"d7_arp\", \"table\": \"tvd\","
    " \"type\": [\"ifname\", \"ether_addr\", \"ipv4_addr\"],"
    " \"elem\": [{\"concat\": [\"tap2\", \"52:54:00:00:00:03\", \"10.100.0.3\"]}]}},"
    "{\"map\": {\"family\": \"bridge\", \"name\": \"domain_pre\", \"table\": \"tvd\","
    " \"type\": \"ifname\", \"map\": \"verdict\","
    " \"elem\": [[\"tap2\", {\"jump\": {\"target\": \"d7_pre\"}}]]}},"
    "{\"chain\": {\"family\": \"bridge\", \"table\": \"tvd\", \"name\": \"prerouting\","
    " \"type\": \"filter\", \"hook\": \"prerouting\", \"prio\": -200, \"policy\": \"accept\"}},"
    "{\"rule\": {\"family\": \"bridge\", \"table\": \"tvd\", \"chain\": \"prerouting\","
    " \"comment\": \"tvd:0123456789ab:0\", \"expr\": []}},"
    "{\"rule\": {\"family\": \"bridge\", \"table\": \"tvd\", \"chain\": \"prerouting\","
    " \"expr\": []}},"
    "{\"set\": {\"family\": \"bridge\", \"name\": \"x\", \"table\": \"other\","
    " \"type\": \"ipv4_addr\"}}]}";

static void test_observed(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdNftObserved) o = tvd_nft_observed_parse(listing, &err);
    GPtrArray *comments;
    TvdNetCount *count;

    g_assert_no_error(err);
    g_assert_nonnull(o);
    g_assert_true(g_hash_table_contains(g_hash_table_lookup(o->sets, "d7_arp"),
                                        "tap2 . 52:54:00:00:00:03 . 10.100.0.3"));
    g_assert_true(g_hash_table_contains(g_hash_table_lookup(o->sets, "domain_pre"),
                                        "tap2 : jump d7_pre"));
    g_assert_cmpstr(g_hash_table_lookup(o->set_types, "domain_pre"), ==, "ifname : verdict");
    g_assert_cmpstr(g_hash_table_lookup(o->chain_hooks, "prerouting"), ==,
                    "prerouting/-200/accept");
    comments = g_hash_table_lookup(o->chains, "prerouting");
    g_assert_cmpuint(comments->len, ==, 2);
    g_assert_cmpstr(g_ptr_array_index(comments, 1), ==, "");
    count = g_hash_table_lookup(o->counters, "d7_denied");
    g_assert_cmpuint(count->packets, ==, 3);
    g_assert_false(g_hash_table_contains(o->sets, "x"));   /* another table's */

    /* No table: no error, nothing observed. Not JSON: an error. */
    g_clear_pointer(&o, tvd_nft_observed_free);
    o = tvd_nft_observed_parse("{\"nftables\": [{\"metainfo\": {}}]}", &err);
    g_assert_null(o);
    g_assert_no_error(err);
    o = tvd_nft_observed_parse("{\"nftables\": ", &err);
    g_assert_null(o);
    g_assert_nonnull(err);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/net/desired/refused", test_refused);
    g_test_add_func("/net/desired/policy", test_policy);
    g_test_add_func("/net/desired/ipv6-refused", test_ipv6_refused);
    g_test_add_func("/net/compile/sets-not-rules", test_sets_not_rules);
    g_test_add_func("/net/compile/observed", test_observed);
    return g_test_run();
}
