/*
 * The network enforcer's figures (docs/network.md, "Figures"), in network
 * namespaces of its own (tests/integration/net/netns-kit.h), root only:
 *
 *   1. detach: tvd_net_enforcer_detach() of an attached member's port, and
 *      the reconcile that follows a verdict (one member detached), p50/p99;
 *   2. a domain of 1,000 members: compile, first apply (the whole table in
 *      one transaction), a reconcile with one member more, one with none;
 *   3. member-to-member TCP throughput through the domain bridge with the
 *      rules, next to a plain bridge in the same run (the ratio is the
 *      figure), measured by two threads each in a member's namespace.
 *
 * Prints figures; asserts no timing.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net-private.h"
#include "netns-kit.h"

#define DETACH_ROUNDS   200
#define BIG_DOMAIN      1000
#define FLOW_SECONDS    3
#define FLOW_PORT       5201

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void print_percentiles(const char *what, double *ms, guint n)
{
    qsort(ms, n, sizeof(*ms), cmp_double);
    printf("%-44s p50 %8.3f ms   p99 %8.3f ms   (n=%u)\n", what, ms[n / 2],
           ms[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], n);
}

static double now_ms(void)
{
    return (double)g_get_monotonic_time() / 1000.0;
}

/*
 * CPU time of the process (user + system: netlink and nftables requests are
 * processed in the caller's context), to tell work from waiting on a loaded
 * machine.
 */
static double cpu_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static TvdNetDomain *domain(TvdNetState *s, guint32 id, gboolean allow)
{
    static const guint8 subnet[4] = { 10, 100, 0, 0 };
    TvdNetDomain *d = tvd_net_state_add_domain(s, id, subnet, 16, allow, NULL);

    g_assert_nonnull(d);
    g_assert_true(tvd_net_domain_add_role(d, "web", NULL));
    return d;
}

static void add(TvdNetDomain *d, const KitMember *m, gboolean attached)
{
    TvdNetMember member = { .vm = m->ns, .tap = m->tap, .role = "web",
                            .attached = attached };

    memcpy(member.mac, m->mac, 6);
    memcpy(member.ipv4, m->ip, 4);
    g_assert_true(tvd_net_domain_add_member(d, &member, NULL));
}

static TvdNetState *pair_state(const KitMember *a, const KitMember *b, gboolean b_attached)
{
    TvdNetState *s = tvd_net_state_new();
    TvdNetDomain *d = domain(s, 7, FALSE);
    TvdPolicyPortRange port = { FLOW_PORT, FLOW_PORT };

    g_assert_true(tvd_net_domain_add_rule(d, "web", "web", TVD_POLICY_PROTO_TCP, &port, 1,
                                          NULL));
    g_assert_true(tvd_net_domain_add_rule(d, "web", "web", TVD_POLICY_PROTO_ICMP, NULL, 0,
                                          NULL));
    add(d, a, TRUE);
    add(d, b, b_attached);
    return s;
}

static void reconcile(TvdNetEnforcer *e, const TvdNetState *s)
{
    g_autoptr(GError) err = NULL;

    if (!tvd_net_enforcer_reconcile(e, s, FALSE, NULL, &err)) {
        g_error("reconcile: %s", err->message);
    }
}

static void bench_detach(TvdNetEnforcer *e, const KitMember *a, const KitMember *b)
{
    g_autoptr(TvdNetState) attached = pair_state(a, b, TRUE);
    g_autoptr(TvdNetState) detached = pair_state(a, b, FALSE);
    double detach_ms[DETACH_ROUNDS], verdict_ms[DETACH_ROUNDS];
    double detach_cpu = 0;

    for (guint i = 0; i < DETACH_ROUNDS; i++) {
        g_autoptr(GError) err = NULL;
        double t0, c0;

        reconcile(e, attached);
        t0 = now_ms();
        c0 = cpu_ms();
        g_assert_true(tvd_net_enforcer_detach(e, b->tap, &err));
        detach_ms[i] = now_ms() - t0;
        detach_cpu += cpu_ms() - c0;
        reconcile(e, attached);
        t0 = now_ms();
        reconcile(e, detached);
        verdict_ms[i] = now_ms() - t0;
    }
    print_percentiles("detach (one netlink request)", detach_ms, DETACH_ROUNDS);
    printf("%-44s mean CPU %.3f ms\n", "", detach_cpu / DETACH_ROUNDS);
    print_percentiles("reconcile after a verdict (1 detached)", verdict_ms, DETACH_ROUNDS);
}

static TvdNetState *big_state(guint members)
{
    TvdNetState *s = tvd_net_state_new();
    TvdNetDomain *d = domain(s, 9, FALSE);
    TvdPolicyPortRange ports[2] = { { 80, 80 }, { 8000, 8080 } };

    g_assert_true(tvd_net_domain_add_role(d, "db", NULL));
    g_assert_true(tvd_net_domain_add_rule(d, "web", "db", TVD_POLICY_PROTO_TCP, ports, 2,
                                          NULL));
    g_assert_true(tvd_net_domain_add_rule(d, "*", "*", TVD_POLICY_PROTO_ICMP, NULL, 0, NULL));
    for (guint i = 0; i < members; i++) {
        g_autofree char *tap = g_strdup_printf("tvdb%u", i);
        TvdNetMember m = { .vm = tap, .tap = tap, .role = i % 2 ? "db" : "web",
                           .attached = TRUE,
                           .mac = { 0x02, 0, 0, 1, (guint8)(i >> 8), (guint8)i },
                           .ipv4 = { 10, 100, (guint8)(1 + i / 250), (guint8)(1 + i % 250) } };

        g_assert_true(tvd_net_domain_add_member(d, &m, NULL));
    }
    return s;
}

static void bench_big_domain(TvdNetEnforcer *e)
{
    g_autoptr(TvdNetState) s = big_state(BIG_DOMAIN);
    g_autoptr(TvdNetState) s1 = big_state(BIG_DOMAIN + 1);
    g_autoptr(TvdNftTable) table = NULL;
    TvdNetDrift drift;
    double t0, c0, compile_ms, apply_ms, plus_one_ms, none_ms;
    double apply_cpu, plus_one_cpu, none_cpu;

    kit_reset();
    t0 = now_ms();
    table = tvd_nft_compile(s);
    compile_ms = now_ms() - t0;
    t0 = now_ms();
    c0 = cpu_ms();
    g_assert_true(tvd_net_enforcer_reconcile(e, s, FALSE, &drift, NULL));
    apply_ms = now_ms() - t0;
    apply_cpu = cpu_ms() - c0;
    t0 = now_ms();
    c0 = cpu_ms();
    g_assert_true(tvd_net_enforcer_reconcile(e, s1, FALSE, &drift, NULL));
    plus_one_ms = now_ms() - t0;
    plus_one_cpu = cpu_ms() - c0;
    g_assert_cmpuint(drift.elements_added, >, 0);
    t0 = now_ms();
    c0 = cpu_ms();
    g_assert_true(tvd_net_enforcer_reconcile(e, s1, FALSE, &drift, NULL));
    none_ms = now_ms() - t0;
    none_cpu = cpu_ms() - c0;
    g_assert_cmpuint(tvd_net_drift_changes(&drift), ==, 0);
    /* Seven elements per member: mac, arp, ip, role, domain_pre, domain_fwd, ports. */
    printf("domain of %u members (%u set elements), wall (CPU) ms:\n"
           "  compile %.1f, first apply %.1f (%.1f), one member more %.1f (%.1f), "
           "no change %.1f (%.1f)\n", BIG_DOMAIN, BIG_DOMAIN * 7, compile_ms, apply_ms,
           apply_cpu, plus_one_ms, plus_one_cpu, none_ms, none_cpu);
}

typedef struct {
    const char *ns;
    const char *peer_ip;
    guint64 bytes;
    GMutex lock;
    GCond ready_cond;
    gboolean ready;
} Flow;

static void enter_ns(const char *ns)
{
    g_autofree char *path = g_strdup_printf("/run/netns/%s", ns);
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(setns(fd, CLONE_NEWNET), ==, 0);
    close(fd);
}

static gpointer receiver(gpointer p)
{
    Flow *f = p;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(FLOW_PORT) };
    static char buf[1 << 16];
    int one = 1, ls, s;
    ssize_t n;

    enter_ns(f->ns);
    ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    g_assert_cmpint(bind(ls, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    g_assert_cmpint(listen(ls, 1), ==, 0);
    g_mutex_lock(&f->lock);
    f->ready = TRUE;
    g_cond_signal(&f->ready_cond);
    g_mutex_unlock(&f->lock);
    s = accept(ls, NULL, NULL);
    g_assert_cmpint(s, >=, 0);
    while ((n = read(s, buf, sizeof(buf))) > 0) {
        f->bytes += (guint64)n;
    }
    close(s);
    close(ls);
    return NULL;
}

/* Gbit/s of one TCP stream from @from to @to for FLOW_SECONDS. */
static double flow(const KitMember *from, const KitMember *to)
{
    Flow f = { .ns = to->ns };
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(FLOW_PORT) };
    static char buf[1 << 16];
    GThread *rx;
    double t0, secs;
    int s;

    g_mutex_init(&f.lock);
    g_cond_init(&f.ready_cond);
    rx = g_thread_new("rx", receiver, &f);
    g_mutex_lock(&f.lock);
    while (!f.ready) {
        g_cond_wait(&f.ready_cond, &f.lock);
    }
    g_mutex_unlock(&f.lock);

    memcpy(&addr.sin_addr, to->ip, 4);
    s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(connect(s, (struct sockaddr *)&addr, sizeof(addr)), ==, 0);
    t0 = now_ms();
    while (now_ms() - t0 < FLOW_SECONDS * 1000.0) {
        g_assert_cmpint(write(s, buf, sizeof(buf)), >, 0);
    }
    close(s);
    g_thread_join(rx);
    secs = (now_ms() - t0) / 1000.0;
    g_mutex_clear(&f.lock);
    g_cond_clear(&f.ready_cond);
    return (double)f.bytes * 8 / secs / 1e9;
}

/* A thread of its own, so that the sender's setns leaves the main thread alone. */
typedef struct {
    const KitMember *from, *to;
    double gbps;
} FlowJob;

static gpointer flow_thread(gpointer p)
{
    FlowJob *job = p;

    enter_ns(job->from->ns);
    job->gbps = flow(job->from, job->to);
    return NULL;
}

static double run_flow(const KitMember *from, const KitMember *to)
{
    FlowJob job = { .from = from, .to = to };

    g_thread_join(g_thread_new("tx", flow_thread, &job));
    return job.gbps;
}

static void bench_throughput(TvdNetEnforcer *e, KitMember *m)
{
    g_autoptr(TvdNetState) s = pair_state(&m[0], &m[1], TRUE);
    double plain[2], ruled[2];

    kit_reset();
    kit_member_make(&m[0], 1, "10.100.0.2");
    kit_member_make(&m[1], 2, "10.100.0.3");
    kit_member_make(&m[2], 3, "10.100.0.2");
    kit_member_make(&m[3], 4, "10.100.0.3");
    reconcile(e, s);
    g_assert_cmpint(kit_sh(NULL, "ip link add plainbr type bridge && ip link set plainbr up "
                           "&& ip link set %s master plainbr && ip link set %s up && "
                           "ip link set %s master plainbr && ip link set %s up",
                           m[2].tap, m[2].tap, m[3].tap, m[3].tap), ==, 0);
    /* Warm up ARP on both. */
    kit_sh(NULL, "ip netns exec %s busybox ping -c 1 -W 1 %s >/dev/null; "
           "ip netns exec %s busybox ping -c 1 -W 1 %s >/dev/null",
           m[0].ns, m[1].ip_text, m[2].ns, m[3].ip_text);
    for (guint i = 0; i < 2; i++) {
        plain[i] = run_flow(&m[2], &m[3]);
        ruled[i] = run_flow(&m[0], &m[1]);
    }
    printf("TCP, one stream, %u s each, alternated twice:\n", FLOW_SECONDS);
    printf("  plain bridge          %6.2f Gbit/s  %6.2f Gbit/s\n", plain[0], plain[1]);
    printf("  domain bridge + rules %6.2f Gbit/s  %6.2f Gbit/s\n", ruled[0], ruled[1]);
    printf("  ratio (rules / plain) %6.2f\n", (ruled[0] + ruled[1]) / (plain[0] + plain[1]));
    for (guint i = 0; i < 4; i++) {
        kit_member_destroy(&m[i]);
    }
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdNetEnforcer) e = NULL;
    char *why = NULL;
    KitMember m[4];

    if (!kit_enter(&why)) {
        printf("# SKIP net-bench: %s\n", why);
        return 0;
    }
    e = tvd_net_enforcer_new(&err);
    g_assert_no_error(err);

    kit_reset();
    kit_member_make(&m[0], 1, "10.100.0.2");
    kit_member_make(&m[1], 2, "10.100.0.3");
    bench_detach(e, &m[0], &m[1]);
    kit_member_destroy(&m[0]);
    kit_member_destroy(&m[1]);

    bench_big_domain(e);
    bench_throughput(e, m);
    kit_reset();
    return 0;
}
