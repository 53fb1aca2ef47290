/*
 * The network enforcer (host/net) against the kernel, in network namespaces
 * the test makes (netns-kit.h): desired state in, kernel state out (read with
 * ip -j and nft -j); stale objects removed and foreign ones untouched; a
 * second reconcile changes nothing; drift found by a dry run and repaired;
 * traffic between namespaces standing in for VMs: members of a domain reach
 * each other, nothing crosses domains (not even ARP), spoofed MAC, ARP and IP
 * sources are dropped and counted, a rule opens one port and not another,
 * and a detach cuts an established flow.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "netns-kit.h"

static char *skip_reason;

typedef struct {
    KitMember m[4];
    guint n;
    TvdNetEnforcer *enforcer;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    memset(f, 0, sizeof(*f));
    if (skip_reason) {
        return;
    }
    kit_reset();
    f->enforcer = tvd_net_enforcer_new(&err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    for (guint i = 0; i < f->n; i++) {
        kit_member_destroy(&f->m[i]);
    }
    tvd_net_enforcer_free(f->enforcer);
    if (!skip_reason) {
        kit_reset();
    }
}

static gboolean skipped(void)
{
    if (skip_reason) {
        g_test_skip(skip_reason);
        return TRUE;
    }
    return FALSE;
}

static KitMember *member(Fixture *f, const char *ip)
{
    KitMember *m = &f->m[f->n];

    kit_member_make(m, f->n + 1, ip);
    f->n++;
    return m;
}

static void add_member(TvdNetDomain *d, const KitMember *m, const char *role,
                       gboolean attached)
{
    g_autoptr(GError) err = NULL;
    TvdNetMember member = { .vm = m->ns, .tap = m->tap, .role = role,
                            .attached = attached };

    memcpy(member.mac, m->mac, 6);
    memcpy(member.ipv4, m->ip, 4);
    g_assert_true(tvd_net_domain_add_member(d, &member, &err));
    g_assert_no_error(err);
}

static TvdNetDomain *domain(TvdNetState *s, guint32 id, gboolean allow)
{
    static const guint8 subnet[4] = { 10, 100, 0, 0 };
    g_autoptr(GError) err = NULL;
    TvdNetDomain *d = tvd_net_state_add_domain(s, id, subnet, 24, allow, &err);

    g_assert_no_error(err);
    g_assert_true(tvd_net_domain_add_role(d, "web", &err));
    g_assert_true(tvd_net_domain_add_role(d, "db", &err));
    return d;
}

static TvdNetDrift reconcile(Fixture *f, const TvdNetState *s, gboolean dry)
{
    g_autoptr(GError) err = NULL;
    TvdNetDrift drift;

    g_assert_true(tvd_net_enforcer_reconcile(f->enforcer, s, dry, &drift, &err));
    g_assert_no_error(err);
    return drift;
}

static gboolean ping(const KitMember *from, const KitMember *to)
{
    return kit_sh(NULL, "ip netns exec %s busybox ping -c 1 -W 1 %s >/dev/null 2>&1",
                  from->ns, to->ip_text) == 0;
}

static void assert_master(const char *tap, const char *bridge)
{
    g_autofree char *master = kit_link_master(tap);

    g_assert_cmpstr(master, ==, bridge);
}

static gboolean nft_has(const char *listing, const char *what)
{
    g_autofree char *out = NULL;

    kit_sh(&out, "nft list %s 2>/dev/null", listing);
    return out && *out;
}

/* Desired state in, kernel state out; stale gone, foreign kept; twice = no change. */
static void test_reconcile(Fixture *f, gconstpointer data)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autofree char *elems = NULL;
    TvdNetDomain *d7, *d8;
    KitMember *a, *b, *c, *d;
    TvdNetDrift drift;

    if (skipped()) {
        return;
    }
    a = member(f, "10.100.0.2");
    b = member(f, "10.100.0.3");
    c = member(f, "10.100.0.4");
    d = member(f, "10.100.0.5");
    /* Foreign: a bridge with a port, and nftables tables of others. */
    g_assert_cmpint(kit_sh(NULL, "ip link add foreignbr type bridge && "
                           "ip link add fx0 type veth peer name fx1 && "
                           "ip link set fx0 master foreignbr && "
                           "nft add table bridge foreign && "
                           "nft add chain bridge foreign c && "
                           "nft add table inet filter"), ==, 0);
    /* Stale: a bridge of a domain that is gone, holding a member's tap. */
    g_assert_cmpint(kit_sh(NULL, "ip link add tvdbr-99 type bridge && "
                           "ip link set %s master tvdbr-99 && "
                           "nft add table bridge tvd && nft add chain bridge tvd junk && "
                           "nft add set bridge tvd d99_mac '{ type ifname . ether_addr; }'",
                           d->tap), ==, 0);

    d7 = domain(s, 7, TRUE);
    d8 = domain(s, 8, TRUE);
    add_member(d7, a, "web", TRUE);
    add_member(d7, b, "db", TRUE);
    add_member(d8, c, "web", TRUE);
    add_member(d7, d, "web", FALSE);

    /* A dry run sees what the reconcile will do, and does none of it. */
    drift = reconcile(f, s, TRUE);
    g_assert_cmpuint(drift.bridges_created, ==, 2);
    g_assert_cmpuint(drift.ports_attached, ==, 3);
    g_assert_false(kit_link_exists("tvdbr-7"));
    g_assert_true(kit_link_exists("tvdbr-99"));

    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(drift.bridges_created, ==, 2);
    g_assert_cmpuint(drift.bridges_deleted, ==, 1);
    g_assert_cmpuint(drift.ports_attached, ==, 3);
    g_assert_cmpuint(drift.objects_deleted, ==, 2);

    assert_master(a->tap, "tvdbr-7");
    assert_master(b->tap, "tvdbr-7");
    assert_master(c->tap, "tvdbr-8");
    assert_master(d->tap, NULL);
    g_assert_false(kit_link_exists("tvdbr-99"));
    assert_master("fx0", "foreignbr");
    g_assert_true(nft_has("table bridge foreign", NULL));
    g_assert_true(nft_has("table inet filter", NULL));
    g_assert_true(nft_has("chain bridge tvd d7_pre", NULL));
    g_assert_true(nft_has("chain bridge tvd d8_fwd", NULL));
    g_assert_false(nft_has("chain bridge tvd junk", NULL));
    g_assert_false(nft_has("set bridge tvd d99_mac", NULL));
    g_assert_cmpint(kit_sh(&elems, "nft -j list set bridge tvd d7_mac"), ==, 0);
    g_assert_nonnull(strstr(elems, "\"tvdt1\", \"02:00:00:00:00:01\""));
    g_assert_nonnull(strstr(elems, "\"tvdt4\", \"02:00:00:00:00:04\""));
    g_assert_null(strstr(elems, "tvdt3"));

    /* Twice: nothing to do, and nothing done. */
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);

    /* A restarted supervisor (a new enforcer, no memory): still nothing. */
    tvd_net_enforcer_free(f->enforcer);
    f->enforcer = tvd_net_enforcer_new(NULL);
    g_assert_nonnull(f->enforcer);
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);

    /* Drift: a rule slipped in, a foreign port, an element gone, a port down. */
    g_assert_cmpint(kit_sh(NULL, "nft add rule bridge tvd d7_fwd accept && "
                           "ip link set fx1 master tvdbr-8 && "
                           "nft delete element bridge tvd d7_mac "
                           "'{ \"tvdt2\" . 02:00:00:00:00:02 }' && "
                           "ip link set %s nomaster && ip addr add 192.0.2.1/24 dev tvdbr-7 "
                           "&& ip link set %s down", a->tap, b->tap), ==, 0);
    drift = reconcile(f, s, TRUE);
    g_assert_cmpuint(drift.chains_written, ==, 1);
    g_assert_cmpuint(drift.ports_released, ==, 1);
    g_assert_cmpuint(drift.elements_added, ==, 1);
    g_assert_cmpuint(drift.ports_attached, ==, 2);
    g_assert_cmpuint(drift.bridges_fixed, ==, 1);
    /* A dry run changes nothing. */
    assert_master(a->tap, NULL);
    assert_master("fx1", "tvdbr-8");

    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 6);
    assert_master(a->tap, "tvdbr-7");
    g_assert_true(kit_link_up(b->tap));
    assert_master("fx1", NULL);
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);

    /* A shape beyond repair (a set of another type): the table is rebuilt. */
    g_assert_cmpint(kit_sh(NULL, "nft flush chain bridge tvd d8_fwd && "
                           "nft delete set bridge tvd d8_role-db && "
                           "nft add set bridge tvd d8_role-db '{ type ether_addr; }'"), ==, 0);
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(drift.tables_created, ==, 1);
    g_assert_true(nft_has("chain bridge tvd d8_fwd", NULL));
    g_assert_true(nft_has("table bridge foreign", NULL));
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);

    /*
     * A domain gone: its bridge, chains, sets, counters and elements go,
     * repaired in place (map elements that jump to its chains first, in one
     * batch).
     */
    {
        g_autoptr(TvdNetState) fewer = tvd_net_state_new();

        d7 = domain(fewer, 7, TRUE);
        add_member(d7, a, "web", TRUE);
        add_member(d7, b, "db", TRUE);
        add_member(d7, d, "web", FALSE);
        drift = reconcile(f, fewer, FALSE);
        g_assert_cmpuint(drift.tables_created, ==, 0);
        g_assert_cmpuint(drift.bridges_deleted, ==, 1);
        /* d8_pre and d8_fwd; sets mac, arp, ip and two roles; five counters. */
        g_assert_cmpuint(drift.objects_deleted, ==, 2 + 5 + 5);
        g_assert_false(kit_link_exists("tvdbr-8"));
        g_assert_false(nft_has("chain bridge tvd d8_pre", NULL));
        g_assert_false(nft_has("counter bridge tvd d8_denied", NULL));
        assert_master(c->tap, NULL);
        assert_master(a->tap, "tvdbr-7");
        drift = reconcile(f, fewer, FALSE);
        g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);
    }
}

/* Members reach each other; across domains nothing passes, not even ARP. */
static void test_traffic(Fixture *f, gconstpointer data)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autofree char *neigh = NULL;
    TvdNetDomain *d7, *d8;
    KitMember *a, *b, *c, *rogue;

    if (skipped()) {
        return;
    }
    a = member(f, "10.100.0.2");
    b = member(f, "10.100.0.3");
    c = member(f, "10.100.0.4");   /* same subnet, other domain */
    d7 = domain(s, 7, TRUE);
    d8 = domain(s, 8, TRUE);
    add_member(d7, a, "web", TRUE);
    add_member(d7, b, "web", TRUE);
    add_member(d8, c, "web", TRUE);
    reconcile(f, s, FALSE);

    g_assert_true(ping(a, b));
    g_assert_true(ping(b, a));
    g_assert_false(ping(a, c));
    g_assert_false(ping(c, b));
    /*
     * Not even ARP: a host that receives an ARP request for its address
     * keeps the asker as a neighbour; c has no entry for a, b none for c.
     */
    kit_sh(&neigh, "ip -n %s neigh show; ip -n %s neigh show %s; ip -n %s neigh show %s",
           c->ns, a->ns, c->ip_text, b->ns, c->ip_text);
    g_assert_null(strstr(neigh, "lladdr"));

    /*
     * A port put on the domain's bridge behind the enforcer's back passes
     * nothing to or from members until the next reconcile takes it off.
     */
    rogue = member(f, "10.100.0.9");
    g_assert_cmpint(kit_sh(NULL, "ip link set %s master tvdbr-7 && ip link set %s up",
                           rogue->tap, rogue->tap), ==, 0);
    g_assert_false(ping(rogue, a));
    g_assert_false(ping(a, rogue));
    g_assert_cmpuint(reconcile(f, s, FALSE).ports_released, ==, 1);
    assert_master(rogue->tap, NULL);
    g_assert_true(ping(a, b));
}

/* A spoofed source MAC, ARP sender or IP source is dropped and counted. */
static void test_spoof(Fixture *f, gconstpointer data)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    TvdNetCounters before, after;
    TvdNetDomain *d7;
    KitMember *a, *b;

    if (skipped()) {
        return;
    }
    a = member(f, "10.100.0.2");
    b = member(f, "10.100.0.3");
    d7 = domain(s, 7, TRUE);
    add_member(d7, a, "web", TRUE);
    add_member(d7, b, "web", TRUE);
    reconcile(f, s, FALSE);
    g_assert_true(ping(a, b));

    /* IPv6 (or anything not IPv4 or ARP) is dropped and counted. */
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &before, &err));
    kit_sh(NULL, "for i in $(seq 50); do ip -n %s -6 addr show dev eth0 scope link | "
           "grep inet6 | grep -qv tentative && break; sleep 0.1; done", a->ns);
    /* b's link-local address (EUI-64 of 02:00:00:00:00:02). */
    g_assert_cmpint(kit_sh(NULL, "ip netns exec %s busybox ping6 -c 1 -W 1 -I eth0 "
                           "fe80::ff:fe00:2 >/dev/null 2>&1", a->ns), !=, 0);
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.other.packets, >, before.other.packets);

    /* Another MAC. */
    before = after;
    g_assert_cmpint(kit_sh(NULL, "ip -n %s neigh flush dev eth0; "
                           "ip -n %s link set eth0 address 02:00:00:00:00:99", a->ns,
                           a->ns), ==, 0);
    g_assert_false(ping(a, b));
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.spoof_mac.packets, >, before.spoof_mac.packets);
    g_assert_cmpint(kit_sh(NULL, "ip -n %s link set eth0 address 02:00:00:00:00:01",
                           a->ns), ==, 0);
    g_assert_true(ping(a, b));

    /* Another address: its ARP is dropped ... */
    before = after;
    g_assert_cmpint(kit_sh(NULL, "ip -n %s addr flush dev eth0 && "
                           "ip -n %s addr add 10.100.0.50/24 dev eth0 && "
                           "ip -n %s neigh flush dev eth0 && ip -n %s neigh flush dev eth0",
                           a->ns, a->ns, a->ns, b->ns), ==, 0);
    g_assert_false(ping(a, b));
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.spoof_arp.packets, >, before.spoof_arp.packets);

    /* ... and so is its IP packet, sent without ARP to a neighbour it knows. */
    before = after;
    g_assert_cmpint(kit_sh(NULL, "ip -n %s neigh replace %s lladdr 02:00:00:00:00:02 "
                           "dev eth0 nud permanent", a->ns, b->ip_text), ==, 0);
    g_assert_false(ping(a, b));
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.spoof_ip.packets, >, before.spoof_ip.packets);

    g_assert_no_error(err);
}

/* Waits (up to 5 s) until something listens on TCP @port in @m's namespace. */
static void wait_listening(const KitMember *m, guint port)
{
    g_assert_cmpint(kit_sh(NULL, "for i in $(seq 50); do ip netns exec %s ss -Hltn "
                           "'sport = :%u' | grep -q . && exit 0; sleep 0.1; done; exit 1",
                           m->ns, port), ==, 0);
}

static gboolean tcp_reaches(const KitMember *from, const KitMember *to, guint port)
{
    g_autofree char *got = NULL;
    int rc;

    kit_sh(NULL, "ip netns exec %s timeout 10 busybox nc -l -p %u > /tmp/tvdt-%d-%u "
           "2>/dev/null &", to->ns, port, (int)getpid(), port);
    wait_listening(to, port);
    rc = kit_sh(NULL, "echo hello | ip netns exec %s timeout 3 busybox nc -w 2 %s %u",
                from->ns, to->ip_text, port);
    /* What the listener received, once it has written it (up to 3 s). */
    kit_sh(&got, "f=/tmp/tvdt-%d-%u; for i in $(seq 30); do grep -q hello $f && break; "
           "[ %d = 0 ] || break; sleep 0.1; done; cat $f; rm -f $f", (int)getpid(), port,
           rc);
    kit_sh(NULL, "ip netns pids %s | xargs -r kill 2>/dev/null", to->ns);
    return rc == 0 && got && strstr(got, "hello");
}

/* A rule web -> db tcp 8080 allows that port and no other; the default denies. */
static const char rules_policy[] =
    "{ \"tvd_policy\": 1, \"serial\": 1,"
    "  \"domain\": { \"name\": \"blue\", \"id\": 7 },"
    "  \"membership\": { \"unlisted\": \"allow\" },"
    "  \"network\": { \"subnet\": \"10.100.0.0/24\", \"encryption\": \"none\","
    "                 \"roles\": [\"web\", \"db\"], \"intra_default\": \"deny\","
    "                 \"rules\": [ { \"from\": \"web\", \"to\": \"db\","
    "                              \"protocol\": \"tcp\", \"ports\": [8080] } ] },"
    "  \"properties\": { \"secure_io\": false } }";

static void test_rules(Fixture *f, gconstpointer data)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(TvdNetState) s2 = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdPolicy) policy = tvd_policy_parse(rules_policy, strlen(rules_policy), NULL,
                                                   NULL, &err);
    TvdPolicyPortRange other = { 9090, 9090 };
    TvdNetCounters before, after;
    TvdNetDomain *d7;
    TvdNetDrift drift;
    KitMember *web, *db;

    if (skipped()) {
        return;
    }
    web = member(f, "10.100.0.2");
    db = member(f, "10.100.0.3");
    /* The domain's rules and default from its policy's network section. */
    g_assert_no_error(err);
    d7 = tvd_net_state_add_policy_domain(s, policy, &err);
    g_assert_no_error(err);
    add_member(d7, web, "web", TRUE);
    add_member(d7, db, "db", TRUE);
    reconcile(f, s, FALSE);

    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &before, &err));
    g_assert_true(tcp_reaches(web, db, 8080));
    g_assert_false(tcp_reaches(web, db, 9090));
    g_assert_false(tcp_reaches(db, web, 8080));     /* the rule has a direction */
    g_assert_false(ping(web, db));
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.denied.packets, >, before.denied.packets);

    /* A rules change: one chain rewritten, the members' elements untouched. */
    d7 = domain(s2, 7, FALSE);
    g_assert_true(tvd_net_domain_add_rule(d7, "web", "db", TVD_POLICY_PROTO_TCP, &other, 1,
                                          &err));
    add_member(d7, web, "web", TRUE);
    add_member(d7, db, "db", TRUE);
    drift = reconcile(f, s2, FALSE);
    g_assert_cmpuint(drift.chains_written, ==, 1);
    g_assert_cmpuint(drift.elements_added + drift.elements_removed, ==, 0);
    g_assert_cmpuint(drift.tables_created, ==, 0);
    /* The counters survive a rules change. */
    before = after;
    g_assert_true(tvd_net_enforcer_counters(f->enforcer, 7, &after, &err));
    g_assert_cmpuint(after.denied.packets, >=, before.denied.packets);
    g_assert_false(tcp_reaches(web, db, 8080));
    g_assert_true(tcp_reaches(web, db, 9090));
}

static guint64 file_size(const char *path)
{
    g_autofree char *out = NULL;

    kit_sh(&out, "stat -c %%s %s 2>/dev/null || echo 0", path);
    return g_ascii_strtoull(out, NULL, 10);
}

/* Detaching a member takes its port off the bridge and cuts its flow. */
static void test_detach(Fixture *f, gconstpointer data)
{
    g_autoptr(TvdNetState) s = tvd_net_state_new();
    g_autoptr(GError) err = NULL;
    g_autofree char *sink = g_strdup_printf("/tmp/tvdt-%d-flow", (int)getpid());
    guint64 size1, size2, size3;
    TvdNetDomain *d7;
    TvdNetDrift drift;
    KitMember *a, *b;

    if (skipped()) {
        return;
    }
    a = member(f, "10.100.0.2");
    b = member(f, "10.100.0.3");
    d7 = domain(s, 7, TRUE);
    add_member(d7, a, "web", TRUE);
    add_member(d7, b, "web", TRUE);
    reconcile(f, s, FALSE);

    kit_sh(NULL, "ip netns exec %s busybox nc -l -p 7000 > %s 2>/dev/null &", b->ns, sink);
    wait_listening(b, 7000);
    kit_sh(NULL, "ip netns exec %s bash -c 'exec 3<>/dev/tcp/%s/7000; "
           "while :; do echo flowing >&3 || exit; sleep 0.05; done' >/dev/null 2>&1 &",
           a->ns, b->ip_text);
    g_usleep(800 * 1000);
    size1 = file_size(sink);
    g_usleep(500 * 1000);
    size2 = file_size(sink);
    g_assert_cmpuint(size2, >, size1);

    g_assert_true(kit_link_up(a->tap));
    /* A host with an address and a route towards the member's tap. */
    g_assert_cmpint(kit_sh(NULL, "ip addr add 192.0.2.1/32 dev lo && "
                           "ip route add %s/32 dev %s && "
                           "ip -n %s route add 192.0.2.1/32 dev eth0",
                           a->ip_text, a->tap, a->ns), ==, 0);
    g_assert_true(tvd_net_enforcer_detach(f->enforcer, a->tap, &err));
    g_assert_no_error(err);
    assert_master(a->tap, NULL);
    g_assert_false(kit_link_up(a->tap));
    /* What b's kernel had received may still reach the file; then nothing. */
    g_usleep(500 * 1000);
    size2 = file_size(sink);
    g_usleep(1000 * 1000);
    size3 = file_size(sink);
    g_assert_cmpuint(size3, ==, size2);
    g_assert_false(ping(a, b));

    /*
     * Off the bridge, the tap is down: the member cannot reach the host's
     * own addresses through it either (up and off the bridge, it could).
     */
    g_assert_cmpint(kit_sh(NULL, "ip netns exec %s busybox ping -c 1 -W 1 192.0.2.1 "
                           ">/dev/null 2>&1", a->ns), !=, 0);

    /* A reconcile keeps a detached member's tap down. */
    g_assert_cmpint(kit_sh(NULL, "ip link set %s up", a->tap), ==, 0);
    {
        g_autoptr(TvdNetState) off = tvd_net_state_new();
        TvdNetDomain *d = domain(off, 7, TRUE);

        add_member(d, a, "web", FALSE);
        add_member(d, b, "web", TRUE);
        drift = reconcile(f, off, FALSE);
        g_assert_cmpuint(drift.ports_detached, ==, 1);
        g_assert_false(kit_link_up(a->tap));
    }

    /* Detached by the fast path, still attached in the desired state: put back. */
    drift = reconcile(f, s, FALSE);
    g_assert_cmpuint(drift.ports_attached, ==, 1);
    g_assert_true(ping(a, b));

    /* An unknown tap is an error that names it. */
    g_assert_false(tvd_net_enforcer_detach(f->enforcer, "tvdtnone", &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND);
    kit_sh(NULL, "rm -f %s", sink);
}

int main(int argc, char **argv)
{
    char *why = NULL;

    /* Before GLib may start a thread: unshare(CLONE_NEWNET) needs one thread. */
    if (!kit_enter(&why)) {
        skip_reason = g_strdup_printf("cannot test in a network namespace: %s", why);
        g_free(why);
    }
    g_test_init(&argc, &argv, NULL);
    g_test_add("/net/reconcile", Fixture, NULL, fixture_setup, test_reconcile,
               fixture_teardown);
    g_test_add("/net/traffic", Fixture, NULL, fixture_setup, test_traffic,
               fixture_teardown);
    g_test_add("/net/spoof", Fixture, NULL, fixture_setup, test_spoof, fixture_teardown);
    g_test_add("/net/rules", Fixture, NULL, fixture_setup, test_rules, fixture_teardown);
    g_test_add("/net/detach", Fixture, NULL, fixture_setup, test_detach,
               fixture_teardown);
    return g_test_run();
}
