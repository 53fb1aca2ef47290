/*
 * Under attack (issue 9): prints figures, asserts no timing.
 *
 * One supervisor core in-process (the admission harness: a signed policy
 * of interval 1 s, deadline 3 s), --vms honest adopted VMs (default 100)
 * re-attesting every second, and one attacker VM that, as fast as it can:
 *
 *   hellos     re-sends valid agent hellos back to back;
 *   oversize   gets an attest request and answers it with evidence and
 *              LOG_CHUNKs of 1,016 records of 8 KiB each (about 8 MiB per
 *              message, under the frame cap) until the round's byte cap
 *              gives its verdict, round after round;
 *   big        sends that 8 MiB LOG_CHUNK back to back whatever the phase;
 *   chunks     sends small LOG_CHUNKs nobody asked for;
 *   malformed  sends AGENT payloads that do not decode, and a frame with a
 *              broken header (the connection drops; it connects again).
 *
 * --attackers runs that many attacker VMs at once, each in its own process
 * (--modes selects what they do).
 *
 * Every VM is a software agent (host/verifier/synth-agent.h: software EK
 * with a certificate from the supervisor's vTPM CA, registered for its
 * name; software AK, ActivateCredential and quotes) on a fake device on
 * the adoption socket. The honest agents run in one child process, the
 * attacker in another, so the supervisor's CPU time (getrusage) and memory
 * (VmRSS, VmHWM) are its own. The run: warm-up until every honest VM is
 * ADMITTED, --seconds of baseline (no attacker), then --seconds with the
 * attacker. Per phase: the honest VMs' verdict latency (attest request
 * received -> MEMBERSHIP received, the agent's quote included; and
 * evidence sent -> MEMBERSHIP), rounds, verdicts other than ADMITTED
 * (missed deadlines among them), the longest gap between two attest
 * requests of one VM; the supervisor's CPU and memory.
 *
 * Usage: flood-bench [--vms N] [--seconds S] [--attackers A]
 *                    [--modes hellos,oversize,big,chunks,malformed]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adm-harness.h"
#include "evidence.h"
#include "state-name.h"
#include "synth-agent.h"

#define DOMAIN      "flood"
#define INTERVAL    "1s"
#define DEADLINE    "3s"
#define ATTACKERS_MAX 8u
#define WARMUP_MAX_S 180

/* The oversize messages: records of the entry cap, under the frame cap. */
#define BIG_RECORD      TVD_MSG_LOG_ENTRY_MAX
#define BIG_RECORDS     1016u

/* What the attacker does now, shared with the honest VMs' process (one
 * page mapped before the fork) so that their latencies can be split by it. */
typedef enum {
    MODE_NONE = 0, MODE_HELLOS, MODE_OVERSIZE, MODE_BIG, MODE_CHUNKS,
    MODE_MALFORMED, MODE_COUNT_
} Mode;
static const char *const mode_names[MODE_COUNT_] = {
    "none", "hellos", "oversize", "big", "chunks", "malformed",
};
static volatile gint *attack_mode;

static void quiet_log(const gchar *domain, GLogLevelFlags level,
                      const gchar *message, gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) {
        g_printerr("%s: %s\n", domain ? domain : "", message);
    }
}

static double now_ms(void)
{
    return g_get_monotonic_time() / 1000.0;
}

typedef struct {
    guint vms;
    guint seconds;
    guint attackers;
    char *modes;                /* comma-separated mode names, NULL = all */
} Args;

static Args opts;

static gboolean mode_on(Mode m)
{
    g_auto(GStrv) v = NULL;

    if (!opts.modes) {
        return TRUE;
    }
    v = g_strsplit(opts.modes, ",", -1);
    return g_strv_contains((const char *const *)v, mode_names[m]);
}

/* "attacker", then "attacker-1", ... */
static char *attacker_name(guint i)
{
    return i ? g_strdup_printf("attacker-%u", i) : g_strdup("attacker");
}

/* ---- pipes between the processes: short lines ------------------------------- */

static gboolean put_line(int fd, const char *line)
{
    g_autofree char *l = g_strdup_printf("%s\n", line);
    gsize len = strlen(l);

    return write(fd, l, len) == (ssize_t)len;
}

/* One line (blocking), without its newline; NULL at end of file. */
static char *get_line(int fd)
{
    GString *s = g_string_new(NULL);
    char c;

    for (;;) {
        ssize_t n = read(fd, &c, 1);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_string_free(s, TRUE);
            return NULL;
        }
        if (c == '\n') {
            return g_string_free(s, FALSE);
        }
        g_string_append_c(s, c);
    }
}

/* Is a line waiting on @fd? */
static gboolean readable(int fd)
{
    fd_set set;
    struct timeval tv = { 0 };

    FD_ZERO(&set);
    FD_SET(fd, &set);
    return select(fd + 1, &set, NULL, NULL, &tv) > 0;
}

typedef struct {
    char *adopt_socket;
    char *ca_dir;
    char *ek_dir;
} Setup;

static gboolean read_setup(int fd, Setup *s)
{
    s->adopt_socket = get_line(fd);
    s->ca_dir = get_line(fd);
    s->ek_dir = get_line(fd);
    return s->adopt_socket && s->ca_dir && s->ek_dir;
}

static TvdSynthAgent *agent_for(const Setup *s, const char *name,
                                GError **error)
{
    g_autofree char *key = g_build_filename(s->ca_dir, "signkey.pem", NULL);
    g_autofree char *cert = g_build_filename(s->ca_dir, "issuercert.pem",
                                             NULL);
    g_autofree char *ek = g_strdup_printf("%s/%s.der", s->ek_dir, name);
    static EVP_PKEY *ca_key;
    static X509 *ca_cert;
    g_autoptr(TvdSynthAgent) a = NULL;
    guint8 digest[32];
    GBytes *der;

    if (!ca_key && !tvd_synth_ca_load(key, cert, &ca_key, &ca_cert, error)) {
        return NULL;
    }
    a = tvd_synth_agent_new(ca_key, ca_cert, HARNESS_AGENT_PCR, error);
    if (!a) {
        return NULL;
    }
    harness_agent_digest(digest);
    tvd_synth_agent_measure(a, HARNESS_AGENT_PATH, digest);
    der = tvd_synth_agent_ek_cert(a);
    /* The parent registers it: the VM is bound to this EK. */
    if (!g_file_set_contents(ek, g_bytes_get_data(der, NULL),
                             g_bytes_get_size(der), error)) {
        return NULL;
    }
    return g_steal_pointer(&a);
}

/* ---- statistics ----------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(GArray *v, double p)
{
    guint i;

    if (v->len == 0) {
        return 0;
    }
    g_array_sort(v, cmp_double);
    i = (guint)(p * (v->len - 1) + 0.5);
    return g_array_index(v, double, MIN(i, v->len - 1));
}

typedef struct {
    GArray *latency;            /* attest request -> verdict, ms */
    GArray *sup_latency;        /* evidence sent -> verdict, ms */
    guint rounds_ok;
    guint not_admitted;         /* verdicts other than ADMITTED */
    guint deadline_missed;      /* among them: deadline-missed */
    guint late_requests;        /* gap between requests > interval + deadline */
    double max_gap_ms;          /* between two attest requests of one VM */
    char *first_failure;
} PhaseStats;

static void phase_init(PhaseStats *p)
{
    memset(p, 0, sizeof(*p));
    p->latency = g_array_new(FALSE, FALSE, sizeof(double));
    p->sup_latency = g_array_new(FALSE, FALSE, sizeof(double));
}

static void phase_print(const char *what, PhaseStats *p, guint vms,
                        double seconds)
{
    g_print("  %s (%.0f s):\n", what, seconds);
    g_print("    verdict latency, attest request -> verdict: p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms\n", pct(p->latency, 0.5),
            pct(p->latency, 0.99), pct(p->latency, 1.0));
    g_print("    of which evidence sent -> verdict:          p50 %.2f ms, "
            "p99 %.2f ms, max %.2f ms\n", pct(p->sup_latency, 0.5),
            pct(p->sup_latency, 0.99), pct(p->sup_latency, 1.0));
    g_print("    rounds ADMITTED: %u (%.2f per VM per second); verdicts not "
            "ADMITTED: %u; missed deadlines: %u\n", p->rounds_ok,
            p->rounds_ok / MAX(seconds, 1e-3) / MAX(vms, 1), p->not_admitted,
            p->deadline_missed);
    g_print("    longest gap between two attest requests of one VM: %.0f ms; "
            "gaps above interval + deadline: %u\n", p->max_gap_ms,
            p->late_requests);
    if (p->first_failure) {
        g_print("    first verdict not ADMITTED: %s\n", p->first_failure);
    }
}

/* ---- the honest VMs (child process) ------------------------------------------ */

typedef struct {
    char *name;
    TvdSynthAgent *agent;
    HarnessLink *link;
    double request_ms;          /* last attest request, 0 = none pending */
    double evidence_ms;
    double last_request_ms;
    gboolean admitted;
} Honest;

typedef enum { PH_WARMUP, PH_BASELINE, PH_ATTACK, PH_DONE } Phase;

typedef struct {
    Honest *vms;
    guint n;
    Phase phase;
    PhaseStats stats[3];
    GArray *by_mode[MODE_COUNT_];   /* attack phase latencies, ms */
    guint admitted;
    gboolean broken;
} HonestRun;

static void honest_take(HonestRun *run, Honest *h, GBytes *payload)
{
    g_autoptr(GError) err = NULL;
    PhaseStats *ps = &run->stats[run->phase == PH_DONE ? PH_ATTACK
                                                        : run->phase];
    TvdMsg msg;
    g_autoptr(GBytes) answer = NULL;

    if (!tvd_msg_decode(payload, &msg, &err)) {
        g_printerr("%s: the supervisor sent what does not decode: %s\n",
                   h->name, err->message);
        return;
    }
    switch (msg.type) {
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        answer = tvd_synth_agent_answer_challenge(h->agent, payload, &err);
        break;
    case TVD_MSG_ATTEST_REQUEST: {
        double t = now_ms();

        if (h->last_request_ms > 0 && run->phase != PH_WARMUP) {
            double gap = t - h->last_request_ms;

            ps->max_gap_ms = MAX(ps->max_gap_ms, gap);
            /* interval + deadline: the promise itself */
            ps->late_requests += gap > 1000.0 + 3000.0;
        }
        h->last_request_ms = t;
        h->request_ms = t;
        answer = tvd_synth_agent_answer_request(h->agent, payload, &err);
        h->evidence_ms = now_ms();
        break;
    }
    case TVD_MSG_MEMBERSHIP: {
        double t = now_ms();
        TvdMsgMembership *m = &msg.u.membership;

        if (m->state == TVD_STATE_ADMITTED) {
            if (!h->admitted) {
                h->admitted = TRUE;
                run->admitted++;
            }
            if (h->request_ms > 0) {
                double l = t - h->request_ms;
                double s = t - h->evidence_ms;

                g_array_append_val(ps->latency, l);
                g_array_append_val(ps->sup_latency, s);
                ps->rounds_ok++;
                if (run->phase == PH_ATTACK) {
                    g_array_append_val(run->by_mode[g_atomic_int_get(
                                           attack_mode)], l);
                }
            }
        } else {
            ps->not_admitted++;
            if (m->reason_text && strstr(m->reason_text, "deadline")) {
                ps->deadline_missed++;
            }
            if (!ps->first_failure) {
                ps->first_failure = g_strdup_printf(
                    "%s %s: %s", h->name, tvd_state_name(m->state),
                    m->reason_text ? m->reason_text : "");
            }
        }
        h->request_ms = 0;
        break;
    }
    default:
        break;
    }
    if (err) {
        g_printerr("%s: %s\n", h->name, err->message);
    }
    if (answer && !harness_link_send(h->link, answer, &err)) {
        g_printerr("%s: send: %s\n", h->name, err->message);
    }
    tvd_msg_clear(&msg);
}

static gboolean wake(gpointer data)
{
    return G_SOURCE_CONTINUE;
}

static int honest_main(int rfd, int wfd, guint n, guint seconds)
{
    g_autoptr(GError) err = NULL;
    Setup s = { 0 };
    HonestRun run = { 0 };
    g_autofree char *go = NULL;
    double phase_end = 0;
    double t_warm;

    if (!read_setup(rfd, &s)) {
        return 1;
    }
    run.vms = g_new0(Honest, n);
    run.n = n;
    for (guint i = 0; i < 3; i++) {
        phase_init(&run.stats[i]);
    }
    for (guint i = 0; i < MODE_COUNT_; i++) {
        run.by_mode[i] = g_array_new(FALSE, FALSE, sizeof(double));
    }
    for (guint i = 0; i < n; i++) {
        run.vms[i].name = g_strdup_printf("honest-%03u", i);
        run.vms[i].agent = agent_for(&s, run.vms[i].name, &err);
        if (!run.vms[i].agent) {
            g_printerr("honest agents: %s\n", err->message);
            return 1;
        }
    }
    if (!put_line(wfd, "ready") || !(go = get_line(rfd))) {
        return 1;
    }
    t_warm = now_ms();
    for (guint i = 0; i < n; i++) {
        Honest *h = &run.vms[i];
        g_autoptr(GBytes) hello = NULL;

        h->link = harness_fake_link_new(s.adopt_socket, h->name, DOMAIN, &err);
        hello = h->link ? tvd_synth_agent_hello(h->agent) : NULL;
        if (!h->link || !harness_link_send(h->link, hello, &err)) {
            g_printerr("%s: %s\n", h->name, err->message);
            return 1;
        }
    }
    g_timeout_add(50, wake, NULL);
    while (run.phase != PH_DONE) {
        double t;

        g_main_context_iteration(NULL, TRUE);
        for (guint i = 0; i < n; i++) {
            GBytes *p;

            while ((p = harness_link_take(run.vms[i].link))) {
                honest_take(&run, &run.vms[i], p);
                g_bytes_unref(p);
            }
            if (harness_link_broken(run.vms[i].link) && !run.broken) {
                run.broken = TRUE;
                g_printerr("%s: the supervisor closed the connection\n",
                           run.vms[i].name);
            }
        }
        t = now_ms();
        if (run.phase == PH_WARMUP &&
            (run.admitted == n || t - t_warm > WARMUP_MAX_S * 1000.0)) {
            g_print("honest VMs: %u of %u ADMITTED after %.1f s of warm-up\n",
                    run.admitted, n, (t - t_warm) / 1000);
            if (run.admitted != n) {
                return 1;
            }
            run.phase = PH_BASELINE;
            phase_end = t + seconds * 1000.0;
            put_line(wfd, "baseline");
        } else if (run.phase == PH_BASELINE && t >= phase_end) {
            run.phase = PH_ATTACK;
            phase_end = t + seconds * 1000.0;
            put_line(wfd, "attack");
        } else if (run.phase == PH_ATTACK && t >= phase_end) {
            run.phase = PH_DONE;
        }
    }
    g_print("%u honest VMs (software agents, fake devices; policy interval "
            INTERVAL ", deadline " DEADLINE "):\n", n);
    phase_print("baseline, no attacker", &run.stats[PH_BASELINE], n, seconds);
    phase_print("under attack", &run.stats[PH_ATTACK], n, seconds);
    g_print("    by what the attacker was doing when the verdict came "
            "(attest request -> verdict):\n");
    for (guint i = MODE_HELLOS; i < MODE_COUNT_; i++) {
        g_print("      %-18s %5u rounds  p50 %7.2f ms  p99 %7.2f ms  max "
                "%7.2f ms\n", mode_names[i], run.by_mode[i]->len,
                pct(run.by_mode[i], 0.5), pct(run.by_mode[i], 0.99),
                pct(run.by_mode[i], 1.0));
    }
    fflush(stdout);
    put_line(wfd, "done");
    /* Keep the connections until the parent has looked at the VMs. */
    g_free(get_line(rfd));
    return 0;
}

/* ---- the attacker (child process) ------------------------------------------------- */

typedef struct {
    TvdSynthAgent *agent;
    HarnessLink *link;
    const Setup *setup;
    const char *name;
    int rfd;
    GBytes *big_chunk;          /* LOG_CHUNK payload, more = TRUE */
    GPtrArray *big_entries;
    /* what was sent */
    guint64 hellos;
    guint64 challenges;
    guint64 oversize_msgs;
    guint64 big_msgs;
    guint64 oversize_bytes;
    guint64 byte_cap_verdicts;
    guint64 chunks;
    guint64 malformed;
    guint64 broken_frames;
    guint64 reconnects;
    guint64 memberships;
    char *last_verdict;
    gboolean stop;
} Attack;

static gboolean attack_should_stop(Attack *a)
{
    if (!a->stop && readable(a->rfd)) {
        a->stop = TRUE;
    }
    return a->stop;
}

/* Reads what the supervisor sent: its MEMBERSHIPs are counted. Returns
 * the first message of @type (or NULL). */
static GBytes *attack_drain(Attack *a, guint16 type)
{
    GBytes *want = NULL;
    GBytes *p;

    while (g_main_context_iteration(NULL, FALSE)) {
    }
    while ((p = harness_link_take(a->link))) {
        TvdMsg msg;

        if (tvd_msg_decode(p, &msg, NULL)) {
            if (msg.type == TVD_MSG_MEMBERSHIP) {
                a->memberships++;
                g_free(a->last_verdict);
                a->last_verdict = g_strdup_printf(
                    "%s: %s", tvd_state_name(msg.u.membership.state),
                    msg.u.membership.reason_text
                    ? msg.u.membership.reason_text : "");
                if (msg.u.membership.reason_text &&
                    strstr(msg.u.membership.reason_text, "log-limit")) {
                    a->byte_cap_verdicts++;
                }
            }
            if (!want && msg.type == type) {
                want = g_bytes_ref(p);
            }
            tvd_msg_clear(&msg);
        }
        g_bytes_unref(p);
    }
    return want;
}

/* Reads what the supervisor sent, keeps nothing. */
static void attack_poll(Attack *a)
{
    GBytes *p = attack_drain(a, 0);

    if (p) {
        g_bytes_unref(p);
    }
}

/* Waits up to @ms for a message of @type. */
static GBytes *attack_wait(Attack *a, guint16 type, guint ms)
{
    double end = now_ms() + ms;

    while (now_ms() < end && !attack_should_stop(a)) {
        GBytes *p = attack_drain(a, type);

        if (p) {
            return p;
        }
        if (harness_link_broken(a->link)) {
            return NULL;
        }
        g_usleep(1000);
    }
    return NULL;
}

static gboolean attack_send(Attack *a, GBytes *payload)
{
    g_autoptr(GError) err = NULL;

    if (!harness_link_send(a->link, payload, &err)) {
        return FALSE;
    }
    return TRUE;
}

static gboolean attack_reconnect(Attack *a)
{
    g_autoptr(GError) err = NULL;

    g_clear_pointer(&a->link, harness_link_free);
    a->link = harness_fake_link_new(a->setup->adopt_socket, a->name, DOMAIN,
                                    &err);
    a->reconnects++;
    return a->link != NULL;
}

/* Valid hellos, back to back, for @ms. */
static void attack_hellos(Attack *a, guint ms)
{
    g_autoptr(GBytes) hello = tvd_synth_agent_hello(a->agent);
    double end = now_ms() + ms;
    GBytes *c;

    g_atomic_int_set(attack_mode, MODE_HELLOS);
    while (now_ms() < end && !attack_should_stop(a)) {
        if (!attack_send(a, hello)) {
            return;
        }
        a->hellos++;
        c = attack_drain(a, TVD_MSG_CREDENTIAL_CHALLENGE);
        a->challenges += c != NULL;
        g_clear_pointer(&c, g_bytes_unref);
    }
}

/* Evidence for @request whose agent list carries the big records. */
static GBytes *oversize_evidence(Attack *a, GBytes *request)
{
    TvdMsgAttestRequest r = { 0 };
    TvdMsg msg = { .type = TVD_MSG_EVIDENCE };
    GBytes *out = NULL;

    if (!tvd_msg_attest_request_decode(request, &r, NULL)) {
        return NULL;
    }
    if (tvd_synth_agent_evidence(a->agent, &r, &msg.u.evidence, NULL)) {
        TvdMsgLogChunk *c = &msg.u.evidence.logs[0];

        g_ptr_array_unref(c->entries);
        c->entries = g_ptr_array_ref(a->big_entries);
        c->more = TRUE;
        out = tvd_msg_encode(&msg, NULL);
    }
    tvd_msg_evidence_clear(&msg.u.evidence);
    tvd_msg_attest_request_clear(&r);
    return out;
}

/* Bound (hello, activation), then every round: the oversize answer until
 * the byte cap's verdict; for @ms. */
static void attack_oversize(Attack *a, guint ms)
{
    g_autoptr(GBytes) hello = tvd_synth_agent_hello(a->agent);
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;
    double end = now_ms() + ms;

    g_atomic_int_set(attack_mode, MODE_OVERSIZE);
    /* A hello may be refused for a while (rate limit): try again. */
    while (!challenge && now_ms() < end && !attack_should_stop(a)) {
        if (!attack_send(a, hello)) {
            return;
        }
        a->hellos++;
        challenge = attack_wait(a, TVD_MSG_CREDENTIAL_CHALLENGE, 1100);
    }
    if (!challenge) {
        return;
    }
    a->challenges++;
    response = tvd_synth_agent_answer_challenge(a->agent, challenge, NULL);
    if (!response || !attack_send(a, response)) {
        return;
    }
    while (now_ms() < end && !attack_should_stop(a)) {
        g_autoptr(GBytes) request = attack_wait(a, TVD_MSG_ATTEST_REQUEST,
                                                3000);
        g_autoptr(GBytes) ev = NULL;
        guint64 verdicts = a->memberships;

        if (!request) {
            return;
        }
        ev = oversize_evidence(a, request);
        if (!ev || !attack_send(a, ev)) {
            return;
        }
        a->oversize_msgs++;
        a->oversize_bytes += g_bytes_get_size(ev);
        /* Chunks until the verdict (the byte cap) comes back. */
        for (guint i = 0; i < 64 && a->memberships == verdicts &&
             !attack_should_stop(a); i++) {
            if (!attack_send(a, a->big_chunk)) {
                return;
            }
            a->oversize_msgs++;
            a->oversize_bytes += g_bytes_get_size(a->big_chunk);
            attack_poll(a);
        }
    }
}

/* The 8 MiB LOG_CHUNK back to back, whatever the phase, for @ms: each is
 * decoded before the state machine can refuse it. */
static void attack_big(Attack *a, guint ms)
{
    double end = now_ms() + ms;

    g_atomic_int_set(attack_mode, MODE_BIG);
    while (now_ms() < end && !attack_should_stop(a)) {
        if (!attack_send(a, a->big_chunk)) {
            return;
        }
        a->big_msgs++;
        a->oversize_bytes += g_bytes_get_size(a->big_chunk);
        attack_poll(a);
    }
}

/* Small LOG_CHUNKs nobody asked for, for @ms. */
static void attack_chunks(Attack *a, guint ms)
{
    TvdMsg msg = { .type = TVD_MSG_LOG_CHUNK };
    g_autoptr(GBytes) payload = NULL;
    double end = now_ms() + ms;

    g_atomic_int_set(attack_mode, MODE_CHUNKS);
    msg.u.log_chunk.kind = TVD_LOG_AGENT_LIST;
    msg.u.log_chunk.offset = 1;
    msg.u.log_chunk.entries = g_ptr_array_new();
    g_ptr_array_add(msg.u.log_chunk.entries,
                    tvd_synth_agent_list(a->agent)->pdata[0]);
    payload = tvd_msg_encode(&msg, NULL);
    g_ptr_array_unref(msg.u.log_chunk.entries);
    while (payload && now_ms() < end && !attack_should_stop(a)) {
        if (!attack_send(a, payload)) {
            return;
        }
        a->chunks++;
        attack_poll(a);
    }
}

/* Payloads that do not decode for @ms, then one frame with a broken
 * header: the supervisor drops the connection; connect again. */
static void attack_malformed(Attack *a, guint ms)
{
    double end = now_ms() + ms;
    guint8 junk[512];
    guint8 frame[64];

    g_atomic_int_set(attack_mode, MODE_MALFORMED);
    while (now_ms() < end && !attack_should_stop(a)) {
        g_autoptr(GBytes) p = NULL;

        for (guint i = 0; i < sizeof(junk); i++) {
            junk[i] = (guint8)g_random_int();
        }
        p = g_bytes_new(junk, g_random_int_range(1, sizeof(junk)));
        if (!attack_send(a, p)) {
            return;
        }
        a->malformed++;
        attack_poll(a);
    }
    memset(frame, 0xa5, sizeof(frame));
    if (harness_link_send_raw(a->link, frame, sizeof(frame), NULL)) {
        a->broken_frames++;
    }
    for (guint i = 0; i < 200 && !harness_link_broken(a->link); i++) {
        attack_poll(a);
        g_usleep(1000);
    }
    attack_reconnect(a);
}

static int attacker_main(int rfd, int wfd, const char *name)
{
    g_autoptr(GError) err = NULL;
    Setup s = { 0 };
    Attack a = { .rfd = rfd, .setup = &s, .name = name };
    g_autofree char *go = NULL;
    guint8 sha1[20] = { 0 };
    g_autofree guint8 *data = NULL;
    gsize data_len = BIG_RECORD - TVD_MSG_LOG_RECORD_MIN - strlen("ima-ng");
    double t0;

    if (!read_setup(rfd, &s)) {
        return 1;
    }
    a.agent = agent_for(&s, name, &err);
    if (!a.agent) {
        g_printerr("attacker: %s\n", err->message);
        return 1;
    }
    /* One record at the entry cap, 1,016 times: about 8 MiB a message. */
    data = g_malloc(data_len);
    memset(data, 'A', data_len);
    a.big_entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    {
        GBytes *rec = tvd_ima_record_encode(HARNESS_AGENT_PCR, sha1,
                                            sizeof(sha1), "ima-ng", data,
                                            data_len);
        TvdMsg msg = { .type = TVD_MSG_LOG_CHUNK };

        g_assert_cmpuint(g_bytes_get_size(rec), ==, BIG_RECORD);
        for (guint i = 0; i < BIG_RECORDS; i++) {
            g_ptr_array_add(a.big_entries, g_bytes_ref(rec));
        }
        g_bytes_unref(rec);
        msg.u.log_chunk.kind = TVD_LOG_AGENT_LIST;
        msg.u.log_chunk.offset = 1;
        msg.u.log_chunk.more = TRUE;
        msg.u.log_chunk.entries = a.big_entries;
        a.big_chunk = tvd_msg_encode(&msg, &err);
        if (!a.big_chunk) {
            g_printerr("attacker: %s\n", err->message);
            return 1;
        }
    }
    if (!put_line(wfd, "ready") || !(go = get_line(rfd))) {
        return 1;
    }
    t0 = now_ms();
    if (!attack_reconnect(&a)) {
        return 1;
    }
    a.reconnects = 0;
    while (!attack_should_stop(&a)) {
        if (mode_on(MODE_HELLOS)) {
            attack_hellos(&a, 1000);
        }
        if (mode_on(MODE_OVERSIZE)) {
            attack_oversize(&a, 4000);
        }
        if (mode_on(MODE_BIG)) {
            attack_big(&a, 2000);
        }
        if (mode_on(MODE_CHUNKS)) {
            attack_chunks(&a, 1000);
        }
        if (mode_on(MODE_MALFORMED)) {
            attack_malformed(&a, 1000);
        }
        if (!a.link && !attack_reconnect(&a)) {
            break;
        }
    }
    g_print("%s, in %.0f s: %" G_GUINT64_FORMAT " hellos (%"
            G_GUINT64_FORMAT " answered with a challenge), %" G_GUINT64_FORMAT
            " oversize evidence/LOG_CHUNK messages in rounds and %"
            G_GUINT64_FORMAT " back to back (%.0f MiB; %"
            G_GUINT64_FORMAT " byte-cap verdicts), %" G_GUINT64_FORMAT
            " unexpected LOG_CHUNKs, %" G_GUINT64_FORMAT " malformed payloads, %"
            G_GUINT64_FORMAT " broken frames (%" G_GUINT64_FORMAT
            " reconnections), %" G_GUINT64_FORMAT " verdicts received; last: %s\n",
            name, (now_ms() - t0) / 1000, a.hellos, a.challenges,
            a.oversize_msgs,
            a.big_msgs, a.oversize_bytes / 1048576.0, a.byte_cap_verdicts, a.chunks,
            a.malformed, a.broken_frames, a.reconnects, a.memberships,
            a.last_verdict ? a.last_verdict : "none");
    fflush(stdout);
    put_line(wfd, "done");
    return 0;
}

/* ---- the supervisor (parent) --------------------------------------------------- */

typedef struct {
    struct rusage ru;
    long rss_kib;
    long hwm_kib;
    long store_kib;             /* store.db + audit.db (+ WAL files) */
    double stall_ms;            /* the main loop's longest stall before */
    double t_ms;
} Snapshot;

/* A 10 ms timer in the supervisor's main loop: how late it runs is how
 * long one dispatch held the loop (a frame decoded, a write synced). */
#define PROBE_MS 10
static gint64 probe_last_us;
static gint64 probe_max_us;
static gint64 probe_max_by_mode[MODE_COUNT_];

static gboolean probe(gpointer data)
{
    gint64 now = g_get_monotonic_time();

    if (probe_last_us) {
        gint64 late = now - probe_last_us - PROBE_MS * 1000;
        gint mode = g_atomic_int_get(attack_mode);

        probe_max_us = MAX(probe_max_us, late);
        probe_max_by_mode[mode] = MAX(probe_max_by_mode[mode], late);
    }
    probe_last_us = now;
    return G_SOURCE_CONTINUE;
}

static const char *state_dir;

static long file_kib(const char *dir, const char *name)
{
    g_autofree char *p = g_build_filename(dir, name, NULL);
    GStatBuf st;

    return g_stat(p, &st) == 0 ? (long)(st.st_size / 1024) : -1;
}

static long status_kib(const char *field)
{
    g_autofree char *status = NULL;
    const char *p;

    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL) ||
        !(p = strstr(status, field))) {
        return -1;
    }
    return strtol(p + strlen(field), NULL, 10);
}

static void snapshot(Snapshot *s)
{
    malloc_trim(0);
    getrusage(RUSAGE_SELF, &s->ru);
    s->rss_kib = status_kib("VmRSS:");
    s->hwm_kib = status_kib("VmHWM:");
    s->store_kib = 0;
    for (const char *const *f = (const char *const[]){
             "store.db", "store.db-wal", "audit.db", "audit.db-wal", NULL };
         *f; f++) {
        s->store_kib += MAX(file_kib(state_dir, *f), 0);
    }
    s->stall_ms = probe_max_us / 1000.0;
    probe_max_us = 0;
    s->t_ms = now_ms();
}

static double cpu_s(const struct rusage *r)
{
    return r->ru_utime.tv_sec + r->ru_stime.tv_sec +
           (r->ru_utime.tv_usec + r->ru_stime.tv_usec) / 1e6;
}

static void print_sup(const char *what, const Snapshot *a, const Snapshot *b)
{
    double wall = (b->t_ms - a->t_ms) / 1000;
    double cpu = cpu_s(&b->ru) - cpu_s(&a->ru);

    g_print("  %-22s CPU %.2f s in %.1f s (%.0f%% of one core); VmRSS %ld -> "
            "%ld KiB (%+ld KiB); VmHWM %ld KiB; store and audit files "
            "%+ld KiB; main loop stalled up to %.0f ms\n", what, cpu, wall,
            100 * cpu / MAX(wall, 1e-3), a->rss_kib, b->rss_kib,
            b->rss_kib - a->rss_kib, b->hwm_kib, b->store_kib - a->store_kib,
            b->stall_ms);
}

static pid_t spawn(int *to, int *from, int (*fn)(int, int, gpointer),
                   gpointer data)
{
    int down[2];
    int up[2];
    pid_t pid;

    if (pipe(down) != 0 || pipe(up) != 0) {
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        close(down[1]);
        close(up[0]);
        _exit(fn(down[0], up[1], data));
    }
    close(down[0]);
    close(up[1]);
    *to = down[1];
    *from = up[0];
    return pid;
}


static int run_honest(int rfd, int wfd, gpointer data)
{
    Args *args = data;

    return honest_main(rfd, wfd, args->vms, args->seconds);
}

static int run_attacker(int rfd, int wfd, gpointer data)
{
    g_autofree char *name = attacker_name(GPOINTER_TO_UINT(data));

    return attacker_main(rfd, wfd, name);
}

static gboolean register_ek(TvdSupervisor *sup, const char *ek_dir,
                            const char *name, GError **error)
{
    g_autofree char *path = g_strdup_printf("%s/%s.der", ek_dir, name);
    g_autofree char *der = NULL;
    gsize len;
    g_autoptr(GBytes) cert = NULL;

    if (!g_file_get_contents(path, &der, &len, error)) {
        return FALSE;
    }
    cert = g_bytes_new_take(g_steal_pointer(&der), len);
    return tvd_supervisor_vm_register_ek(sup, name, cert, error);
}

typedef struct {
    int fd;
    GString *buf;
    GPtrArray *lines;
} LineWatch;

static gboolean on_line(gint fd, GIOCondition cond, gpointer data)
{
    LineWatch *w = data;
    char b[256];
    ssize_t n = read(fd, b, sizeof(b));
    char *nl;

    if (n <= 0) {
        g_ptr_array_add(w->lines, g_strdup("eof"));
        return G_SOURCE_REMOVE;
    }
    g_string_append_len(w->buf, b, n);
    while ((nl = strchr(w->buf->str, '\n'))) {
        g_ptr_array_add(w->lines, g_strndup(w->buf->str, nl - w->buf->str));
        g_string_erase(w->buf, 0, nl - w->buf->str + 1);
    }
    return G_SOURCE_CONTINUE;
}

/* The honest VMs' states and the attackers', as the supervisor has them. */
static char *vm_states(TvdSupervisor *sup, guint attackers)
{
    g_autoptr(GList) vms = tvd_supervisor_vm_list(sup);
    GString *out = g_string_new(NULL);
    guint admitted = 0;
    guint honest = 0;

    for (GList *l = vms; l; l = l->next) {
        if (g_str_has_prefix(tvd_vm_name(l->data), "honest-")) {
            honest++;
            admitted += tvd_vm_state(l->data) == TVD_STATE_ADMITTED;
        }
    }
    g_string_append_printf(out, "at the end: honest VMs ADMITTED %u of %u\n",
                           admitted, honest);
    for (guint i = 0; i < attackers; i++) {
        g_autofree char *name = attacker_name(i);
        TvdVm *vm = tvd_supervisor_vm_find(sup, name);

        g_string_append_printf(out, "  %s: %s, %s (%s)\n", name,
                               vm ? tvd_state_name(tvd_vm_state(vm))
                                  : "unknown",
                               vm && tvd_vm_connected(vm) ? "connected"
                                                          : "not connected",
                               vm ? tvd_vm_reason(vm) : "");
    }
    return g_string_free(out, FALSE);
}

static void rmrf(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    if (system(cmd) != 0) {
        g_printerr("cannot remove %s\n", dir);
    }
}

static int bench(Args *args)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *ek_dir = NULL;
    g_autofree char *setup = NULL;
    g_autofree char *ca_dir = NULL;
    g_autofree char *l1 = NULL;
    g_autofree char *verdicts = NULL;
    g_autoptr(TvdSupervisor) sup = NULL;
    int h_to, h_from;
    int a_to[ATTACKERS_MAX];
    int a_from[ATTACKERS_MAX];
    pid_t hp;
    pid_t ap[ATTACKERS_MAX];
    guint na = args->attackers;
    LineWatch w = { 0 };
    Snapshot snap[4];
    guint got = 0;
    gboolean attack_done = FALSE;
    int rc = 0;
    int status = 0;
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4 * args->vms + 256) {
        rl.rlim_cur = MIN(rl.rlim_max, 4 * (rlim_t)args->vms + 256);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    attack_mode = mmap(NULL, sizeof(*attack_mode), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (attack_mode == MAP_FAILED) {
        return 1;
    }
    /* The children fork before this process grows threads. */
    hp = spawn(&h_to, &h_from, run_honest, args);
    for (guint i = 0; i < na; i++) {
        ap[i] = spawn(&a_to[i], &a_from[i], run_attacker, GUINT_TO_POINTER(i));
        if (ap[i] < 0) {
            return 1;
        }
    }
    if (hp < 0) {
        return 1;
    }
    dir = g_dir_make_tmp("tvd-flood-XXXXXX", &err);
    sup = dir ? harness_supervisor_new_timed(dir, DOMAIN, INTERVAL, DEADLINE,
                                             &err) : NULL;
    if (!sup) {
        g_printerr("supervisor: %s\n", err->message);
        kill(hp, SIGKILL);
        for (guint i = 0; i < na; i++) {
            kill(ap[i], SIGKILL);
        }
        rc = 1;
        goto out;
    }
    state_dir = dir;
    ek_dir = g_build_filename(dir, "bench-ek", NULL);
    g_mkdir(ek_dir, 0700);
    ca_dir = g_build_filename(dir, "vtpm-ca", NULL);
    setup = g_strdup_printf("%s\n%s\n%s\n",
                            tvd_supervisor_config(sup)->adopt_socket, ca_dir,
                            ek_dir);
    for (guint i = 0; i < na; i++) {
        if (write(a_to[i], setup, strlen(setup)) != (ssize_t)strlen(setup)) {
            rc = 1;
        }
    }
    if (rc || write(h_to, setup, strlen(setup)) != (ssize_t)strlen(setup) ||
        !(l1 = get_line(h_from))) {
        g_printerr("the agents' processes failed\n");
        rc = 1;
        goto out;
    }
    for (guint i = 0; i < na; i++) {
        g_autofree char *ready = get_line(a_from[i]);

        if (!ready) {
            g_printerr("an attacker's process failed\n");
            rc = 1;
            goto out;
        }
    }
    /* Every adopted VM is bound to its EK before it connects. */
    for (guint i = 0; i < args->vms; i++) {
        g_autofree char *name = g_strdup_printf("honest-%03u", i);

        if (!register_ek(sup, ek_dir, name, &err)) {
            break;
        }
    }
    for (guint i = 0; i < na && !err; i++) {
        g_autofree char *name = attacker_name(i);

        register_ek(sup, ek_dir, name, &err);
    }
    if (err) {
        g_printerr("register the EK: %s\n", err->message);
        rc = 1;
        goto out;
    }
    w.buf = g_string_new(NULL);
    w.lines = g_ptr_array_new_with_free_func(g_free);
    g_unix_fd_add(h_from, G_IO_IN | G_IO_HUP, on_line, &w);
    put_line(h_to, "go");
    g_timeout_add(PROBE_MS, probe, NULL);
    snapshot(&snap[0]);
    while (!attack_done) {
        g_main_context_iteration(NULL, TRUE);
        while (got < w.lines->len) {
            const char *line = w.lines->pdata[got++];

            if (g_str_equal(line, "baseline")) {
                snapshot(&snap[1]);
            } else if (g_str_equal(line, "attack")) {
                snapshot(&snap[2]);
                for (guint i = 0; i < na; i++) {
                    put_line(a_to[i], "go");
                }
            } else if (g_str_equal(line, "done")) {
                snapshot(&snap[3]);
                /* While the attacker is still connected. */
                verdicts = vm_states(sup, na);
                attack_done = TRUE;
            } else {
                g_printerr("the honest VMs' process ended early\n");
                rc = 1;
                goto out;
            }
        }
    }
    for (guint i = 0; i < na; i++) {
        put_line(a_to[i], "stop");
    }
    /* Each attacker reports; the supervisor keeps serving them meanwhile. */
    for (guint i = 0; i < na; i++) {
        LineWatch aw = { .buf = g_string_new(NULL),
                         .lines = g_ptr_array_new_with_free_func(g_free) };
        guint src = g_unix_fd_add(a_from[i], G_IO_IN | G_IO_HUP, on_line,
                                  &aw);

        while (aw.lines->len == 0) {
            g_main_context_iteration(NULL, TRUE);
        }
        if (aw.lines->len && !g_str_equal(aw.lines->pdata[0], "eof")) {
            g_source_remove(src);
        }
        g_string_free(aw.buf, TRUE);
        g_ptr_array_unref(aw.lines);
    }
    g_print("%s", verdicts);
    g_print("the supervisor (this process: the core, its store and audit "
            "log):\n");
    print_sup("warm-up (admissions)", &snap[0], &snap[1]);
    print_sup("baseline", &snap[1], &snap[2]);
    print_sup("under attack", &snap[2], &snap[3]);
    g_print("  the main loop's longest stall by what the attacker did:");
    for (guint i = MODE_HELLOS; i < MODE_COUNT_; i++) {
        g_print(" %s %.0f ms%s", mode_names[i], probe_max_by_mode[i] / 1000.0,
                i + 1 < MODE_COUNT_ ? "," : "\n");
    }
out:
    put_line(h_to, "stop");
    close(h_to);
    for (guint i = 0; i < na; i++) {
        close(a_to[i]);
        close(a_from[i]);
    }
    if (hp > 0) {
        waitpid(hp, &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            g_printerr("the honest VMs' process failed (status %d)\n", status);
            rc = 1;
        }
    }
    for (guint i = 0; i < na; i++) {
        waitpid(ap[i], &status, 0);
    }
    if (w.buf) {
        g_string_free(w.buf, TRUE);
        g_ptr_array_unref(w.lines);
    }
    g_clear_pointer(&sup, tvd_supervisor_free);
    if (dir) {
        rmrf(dir);
    }
    return rc;
}

int main(int argc, char **argv)
{
    GOptionEntry entries[] = {
        { "vms", 0, 0, G_OPTION_ARG_INT, &opts.vms, "honest VMs", "N" },
        { "seconds", 0, 0, G_OPTION_ARG_INT, &opts.seconds,
          "length of the baseline and of the attack", "S" },
        { "attackers", 0, 0, G_OPTION_ARG_INT, &opts.attackers,
          "attacker VMs, each in its own process (default 1)", "A" },
        { "modes", 0, 0, G_OPTION_ARG_STRING, &opts.modes,
          "what the attacker does (default all): hellos, oversize (in "
          "rounds), big (8 MiB chunks back to back), chunks (small "
          "unexpected LOG_CHUNKs), malformed", "M,..." },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_autoptr(GError) err = NULL;

    opts.vms = 100;
    opts.seconds = 30;
    opts.attackers = 1;
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        g_printerr("%s\n", err->message);
        return 2;
    }
    if (opts.vms == 0 || opts.vms > 999 || opts.seconds == 0 ||
        opts.attackers == 0 || opts.attackers > ATTACKERS_MAX) {
        g_printerr("--vms 1..999, --seconds 1 or more, --attackers 1..%u\n",
                   ATTACKERS_MAX);
        return 2;
    }
    for (const char *const *p = (const char *const[]){ "swtpm_setup",
                                                      "swtpm_localca", NULL };
         *p; p++) {
        if (!harness_have(*p)) {
            g_print("SKIP: %s is not installed (swtpm-tools): the "
                    "supervisor's vTPM CA needs it\n", *p);
            return 77;
        }
    }
    g_log_set_default_handler(quiet_log, NULL);
    return bench(&opts);
}
