/*
 * Admission benchmark (issue 3, item 11): prints figures, asserts no timing.
 *
 * 1. Latency from the agent's hello to ADMITTED, without any guest boot:
 *    the supervisor core in-process, a fake tvd device on the adoption
 *    socket (frames of docs/device.md), the guest agent's TPM library on a
 *    real swtpm provisioned by the supervisor's vTPM CA. Every round is a
 *    new adopted VM (PENDING -> ADMITTED, so the record and the audit
 *    entry are written as in production). Split into the time spent in TPM
 *    commands (ActivateCredential, Quote) and everything else (the
 *    supervisor's verification, MakeCredential, policy, store and audit
 *    writes, and the socket hops). Target: 50 ms.
 *
 * 2. Many VMs on one supervisor: --vms fake devices (default 1000), each
 *    adopted and admitted with a full round on real TPM evidence (one swtpm
 *    shared by all: the same EK and AK, which the supervisor allows for
 *    adopted VMs). The fake devices and the agent run in a child process,
 *    so the supervisor's resident memory (VmRSS after malloc_trim) is its
 *    own. Target: 64 KiB per VM.
 *
 * Usage: admission-bench [--rounds N] [--vms M] [--skip-latency|--skip-scale]
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "adm-harness.h"

#define DOMAIN "bench"

static void quiet_log(const gchar *domain, GLogLevelFlags level,
                      const gchar *message, gpointer data)
{
    if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL |
                 G_LOG_LEVEL_WARNING)) {
        g_printerr("%s: %s\n", domain ? domain : "", message);
    }
}

static long rss_kib(void)
{
    g_autofree char *status = NULL;
    const char *p;

    malloc_trim(0);
    if (!g_file_get_contents("/proc/self/status", &status, NULL, NULL) ||
        !(p = strstr(status, "VmRSS:"))) {
        return -1;
    }
    return strtol(p + 6, NULL, 10);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(double *sorted, guint n, double p)
{
    guint i = (guint)(p * (n - 1) + 0.5);

    return sorted[MIN(i, n - 1)];
}

static void report(const char *what, double *v, guint n)
{
    double sum = 0;

    for (guint i = 0; i < n; i++) {
        sum += v[i];
    }
    qsort(v, n, sizeof(*v), cmp_double);
    g_print("  %-34s mean %7.2f ms  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms\n",
            what, sum / n, pct(v, n, 0.5), pct(v, n, 0.99), v[n - 1]);
}

static void rmrf(const char *dir)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

    if (system(cmd) != 0) {
        g_printerr("cannot remove %s\n", dir);
    }
}

/* ---- 1. latency ---------------------------------------------------------------- */

typedef struct {
    TvdSupervisor *sup;
    const char *name;
} Adopted;

static gboolean is_adopted(gpointer data)
{
    Adopted *a = data;
    TvdVm *vm = tvd_supervisor_vm_find(a->sup, a->name);

    return vm && tvd_vm_connected(vm);
}

static int bench_latency(guint rounds)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = g_dir_make_tmp("tvd-adm-bench-XXXXXX", &err);
    g_autoptr(TvdSupervisor) sup = NULL;
    g_autoptr(HarnessSwtpm) tpm = NULL;
    g_autoptr(HarnessAgent) agent = NULL;
    g_autofree char *conf = NULL;
    g_autofree double *total = g_new0(double, rounds);
    g_autofree double *tpm_ms = g_new0(double, rounds);
    g_autofree double *sup_ms = g_new0(double, rounds);
    double *ph[3] = { g_new0(double, rounds), g_new0(double, rounds),
                                 g_new0(double, rounds) };
    guint8 digest[32];
    int rc = 0;

    if (!dir || !(sup = harness_supervisor_new(dir, DOMAIN, "1h", &err))) {
        g_printerr("supervisor: %s\n", err->message);
        return 1;
    }
    conf = harness_supervisor_setup_conf(sup);
    tpm = harness_swtpm_new(conf, &err);
    if (!tpm || !(agent = harness_agent_new(harness_swtpm_tcti(tpm), &err))) {
        g_printerr("swtpm: %s\n", err->message);
        rc = 1;
        goto out;
    }
    harness_agent_digest(digest);
    if (!harness_agent_measure(agent, HARNESS_AGENT_PATH, digest, &err)) {
        g_printerr("measure: %s\n", err->message);
        rc = 1;
        goto out;
    }
    for (guint i = 0; i < rounds + 1; i++) {
        g_autofree char *name = g_strdup_printf("lat-%u", i);
        g_autoptr(HarnessLink) link = NULL;
        Adopted ad = { sup, name };
        guint32 state = 0;
        gint64 t0;
        gint64 tpm0;
        gint64 w0[3];
        double ms;

        link = harness_fake_link_new(tvd_supervisor_config(sup)->adopt_socket,
                                     name, DOMAIN, &err);
        /* Adoption (device hello) is not part of the agent's admission. */
        if (!link || !harness_wait(is_adopted, &ad, 30000)) {
            g_printerr("adoption of %s failed\n", name);
            rc = 1;
            goto out;
        }
        if (!tvd_supervisor_vm_register_ek(sup, name, agent->ek_cert, &err)) {
            g_printerr("%s: %s\n", name, err->message);
            rc = 1;
            goto out;
        }
        tpm0 = agent->tpm_us;
        memcpy(w0, agent->wait_us, sizeof(w0));
        t0 = g_get_monotonic_time();
        if (!harness_admit(agent, link, &state, &err) ||
            state != TVD_STATE_ADMITTED) {
            g_printerr("round %u: %s (%s)\n", i, err ? err->message : "",
                       tvd_vm_reason(tvd_supervisor_vm_find(sup, name)));
            rc = 1;
            goto out;
        }
        ms = (g_get_monotonic_time() - t0) / 1000.0;
        if (i == 0) {
            continue;           /* warm-up: first use of the keys, caches */
        }
        total[i - 1] = ms;
        tpm_ms[i - 1] = (agent->tpm_us - tpm0) / 1000.0;
        sup_ms[i - 1] = ms - tpm_ms[i - 1];
        for (guint k = 0; k < 3; k++) {
            ph[k][i - 1] = (agent->wait_us[k] - w0[k]) / 1000.0;
        }
    }
    g_print("admission latency, agent hello to ADMITTED (%u rounds, swtpm, "
            "RSA-2048 EK and AK, fake device on the adoption socket):\n",
            rounds);
    report("total", total, rounds);
    report("TPM (ActivateCredential + Quote)", tpm_ms, rounds);
    report("supervisor and transport", sup_ms, rounds);
    report("  hello -> challenge", ph[0], rounds);
    report("  response -> attest request", ph[1], rounds);
    report("  evidence -> ADMITTED", ph[2], rounds);
    g_print("  target: 50 ms or less\n");
out:
    for (guint k = 0; k < 3; k++) {
        g_free(ph[k]);
    }
    g_clear_pointer(&sup, tvd_supervisor_free);
    rmrf(dir);
    return rc;
}

/* ---- 2. many VMs ------------------------------------------------------------- */

/* The child: the agent and @n fake devices, one admission after another. */
static int scale_child(int rfd, int wfd, guint n)
{
    g_autoptr(GError) err = NULL;
    char buf[8192];
    ssize_t len = read(rfd, buf, sizeof(buf) - 1);
    g_auto(GStrv) lines = NULL;
    g_autoptr(HarnessSwtpm) tpm = NULL;
    g_autoptr(HarnessAgent) agent = NULL;
    g_autoptr(GPtrArray) links = g_ptr_array_new_with_free_func(
        (GDestroyNotify)harness_link_free);
    guint8 digest[32];

    if (len <= 0) {
        return 1;
    }
    buf[len] = 0;
    lines = g_strsplit(buf, "\n", 3);
    if (!lines[0] || !lines[1]) {
        return 1;
    }
    tpm = harness_swtpm_new(lines[0], &err);
    if (!tpm || !(agent = harness_agent_new(harness_swtpm_tcti(tpm), &err))) {
        g_printerr("child: %s\n", err->message);
        return 1;
    }
    harness_agent_digest(digest);
    if (!harness_agent_measure(agent, HARNESS_AGENT_PATH, digest, &err)) {
        g_printerr("child: %s\n", err->message);
        return 1;
    }
    /* The parent binds the VMs to this EK before they connect. */
    {
        g_autofree char *ca_dir = g_path_get_dirname(lines[0]);
        g_autofree char *ek = g_build_filename(ca_dir, "bench-ek.der", NULL);

        if (!g_file_set_contents(ek, g_bytes_get_data(agent->ek_cert, NULL),
                                 g_bytes_get_size(agent->ek_cert), &err)) {
            g_printerr("child: %s\n", err->message);
            return 1;
        }
    }
    /* The swtpm is provisioned: the clock starts now. */
    if (write(wfd, "ready\n", 6) != 6 || read(rfd, buf, 3) != 3) {
        return 1;
    }
    for (guint i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("sim-%04u", i);
        HarnessLink *link = harness_fake_link_new(lines[1], name, DOMAIN, &err);
        guint32 state = 0;

        if (!link || !harness_admit(agent, link, &state, &err) ||
            state != TVD_STATE_ADMITTED) {
            g_printerr("child: VM %s: %s (state %u)\n", name,
                       err ? err->message : "", state);
            return 1;
        }
        g_ptr_array_add(links, link);
    }
    /* Done: keep every connection open until the parent has measured. */
    if (write(wfd, "done\n", 5) != 5) {
        return 1;
    }
    len = read(rfd, buf, sizeof(buf));
    return 0;
}

typedef struct {
    TvdSupervisor *sup;
    guint want;
    int done_fd;
    gboolean child_done;
} Scale;

static guint count_admitted(TvdSupervisor *sup, guint *connected)
{
    g_autoptr(GList) vms = tvd_supervisor_vm_list(sup);
    guint n = 0;

    *connected = 0;
    for (GList *l = vms; l; l = l->next) {
        n += tvd_vm_state(l->data) == TVD_STATE_ADMITTED;
        *connected += tvd_vm_connected(l->data);
    }
    return n;
}

static gboolean on_child_done(gint fd, GIOCondition cond, gpointer data)
{
    Scale *s = data;

    s->child_done = TRUE;
    return G_SOURCE_REMOVE;
}

static int bench_scale(guint n)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    g_autoptr(TvdSupervisor) sup = NULL;
    g_autofree char *conf = NULL;
    g_autofree char *msg = NULL;
    int to_child[2];
    int from_child[2];
    pid_t pid;
    long rss0;
    long rss1;
    gint64 t0;
    guint admitted;
    guint connected = 0;
    Scale s = { 0 };
    int status = 0;
    int rc = 0;
    struct rlimit rl;
    char ready[6];

    /* Two descriptors per VM (both ends), plus the store's. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2 * n + 256) {
        rl.rlim_cur = MIN(rl.rlim_max, 2 * (rlim_t)n + 256);
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (pipe(to_child) != 0 || pipe(from_child) != 0) {
        return 1;
    }
    pid = fork();
    if (pid == 0) {
        close(to_child[1]);
        close(from_child[0]);
        _exit(scale_child(to_child[0], from_child[1], n));
    }
    close(to_child[0]);
    close(from_child[1]);
    dir = g_dir_make_tmp("tvd-adm-scale-XXXXXX", &err);
    sup = dir ? harness_supervisor_new(dir, DOMAIN, "1h", &err) : NULL;
    if (!sup) {
        g_printerr("supervisor: %s\n", err->message);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        return 1;
    }
    conf = harness_supervisor_setup_conf(sup);
    msg = g_strdup_printf("%s\n%s\n", conf,
                          tvd_supervisor_config(sup)->adopt_socket);
    rss0 = rss_kib();
    if (write(to_child[1], msg, strlen(msg)) != (ssize_t)strlen(msg) ||
        read(from_child[0], ready, sizeof(ready)) != 6) {
        rc = 1;
        goto out;
    }
    /* Every adopted VM is bound to an EK: the child's, registered ahead. */
    {
        g_autofree char *ca_dir = g_path_get_dirname(conf);
        g_autofree char *ek = g_build_filename(ca_dir, "bench-ek.der", NULL);
        g_autofree char *der = NULL;
        gsize der_len;
        g_autoptr(GBytes) cert = NULL;

        if (!g_file_get_contents(ek, &der, &der_len, &err)) {
            g_printerr("%s\n", err->message);
            rc = 1;
            goto out;
        }
        cert = g_bytes_new_take(g_steal_pointer(&der), der_len);
        for (guint i = 0; i < n; i++) {
            g_autofree char *name = g_strdup_printf("sim-%04u", i);

            if (!tvd_supervisor_vm_register_ek(sup, name, cert, &err)) {
                g_printerr("%s\n", err->message);
                rc = 1;
                goto out;
            }
        }
    }
    if (write(to_child[1], "go\n", 3) != 3) {
        rc = 1;
        goto out;
    }
    t0 = g_get_monotonic_time();
    s.sup = sup;
    g_unix_fd_add(from_child[0], G_IO_IN | G_IO_HUP, on_child_done, &s);
    while (!s.child_done) {
        g_main_context_iteration(NULL, TRUE);
    }
    /* Let the last STATE_APPLIED events in. */
    for (guint i = 0; i < 200 && g_main_context_iteration(NULL, FALSE); i++) {
    }
    admitted = count_admitted(sup, &connected);
    rss1 = rss_kib();
    g_print("%u simulated VMs on one supervisor (fake devices, real swtpm "
            "evidence, one full admission each):\n", n);
    g_print("  adopted and ADMITTED: %u, devices connected: %u, in %.1f s "
            "(%.1f ms per VM, TPM included)\n", admitted, connected,
            (g_get_monotonic_time() - t0) / 1e6,
            (g_get_monotonic_time() - t0) / 1e3 / MAX(n, 1));
    g_print("  supervisor VmRSS %ld KiB before, %ld KiB after: %.1f KiB per "
            "VM (target: 64 KiB or less)\n", rss0, rss1,
            (double)(rss1 - rss0) / MAX(n, 1));
    if (admitted != n) {
        rc = 1;
    }
out:
    close(to_child[1]);
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        g_printerr("the fake devices' process failed (status %d)\n", status);
        rc = 1;
    }
    close(from_child[0]);
    g_clear_pointer(&sup, tvd_supervisor_free);
    rmrf(dir);
    return rc;
}

int main(int argc, char **argv)
{
    guint rounds = 50;
    guint vms = 1000;
    gboolean skip_latency = FALSE;
    gboolean skip_scale = FALSE;
    GOptionEntry entries[] = {
        { "rounds", 0, 0, G_OPTION_ARG_INT, &rounds, "latency rounds", "N" },
        { "vms", 0, 0, G_OPTION_ARG_INT, &vms, "simulated VMs", "M" },
        { "skip-latency", 0, 0, G_OPTION_ARG_NONE, &skip_latency, NULL, NULL },
        { "skip-scale", 0, 0, G_OPTION_ARG_NONE, &skip_scale, NULL, NULL },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(NULL);
    g_autoptr(GError) err = NULL;
    int rc = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        g_printerr("%s\n", err->message);
        return 2;
    }
    for (const char *const *p = (const char *const[]){ "swtpm", "swtpm_setup",
                                                      "swtpm_localca", NULL };
         *p; p++) {
        if (!harness_have(*p)) {
            g_print("SKIP: %s is not installed (swtpm, swtpm-tools)\n", *p);
            return 77;
        }
    }
    g_log_set_default_handler(quiet_log, NULL);
    /* The scale part forks: do it before this process grows threads. */
    if (!skip_scale && vms > 0) {
        rc |= bench_scale(vms);
    }
    if (!skip_latency && rounds > 0) {
        rc |= bench_latency(rounds);
    }
    return rc;
}
