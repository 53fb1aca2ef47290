/*
 * Store benchmark: puts/s, gets/s, CAS/s, transactions/s and watch event
 * latency (commit → callback in the main loop) on the SQLite backend, plus
 * audit appends/s and verification speed. Prints figures; asserts nothing.
 *
 *   store-bench [DIR] [N]     DIR: where the files go (default: a new
 *                             directory under $TMPDIR), N: operations per
 *                             figure (default 2000)
 *
 * The store is opened with its production settings (WAL,
 * synchronous=FULL): every write is one fsync, so write figures are bound
 * by the disk under DIR. docs/store.md records the figures.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "audit.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

static double now_s(void)
{
    return (double)g_get_monotonic_time() / 1e6;
}

static void die(GError *err)
{
    fprintf(stderr, "store-bench: %s\n", err ? err->message : "failed");
    exit(1);
}

static void report(const char *what, guint n, double secs)
{
    printf("%-34s %8u ops in %7.3f s  %10.0f ops/s  %8.1f us/op\n", what, n,
           secs, n / secs, secs * 1e6 / n);
}

typedef struct {
    gint64 *commit_us;      /* commit time by revision offset */
    gint64 base_rev;
    GArray *lat;            /* of double (us) */
    guint want;
} WatchBench;

static void on_event(TvdStore *store, const TvdStoreEvent *ev, gpointer data)
{
    WatchBench *wb = data;
    (void)store;
    gint64 now = g_get_monotonic_time();
    gint64 i = ev->revision - wb->base_rev;
    if (ev->type == TVD_STORE_EVENT_PUT && i >= 0 && (guint)i < wb->want) {
        double us = (double)(now - wb->commit_us[i]);
        g_array_append_val(wb->lat, us);
    }
}

static int cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(GArray *a, double p)
{
    guint idx = (guint)(p / 100.0 * (a->len - 1) + 0.5);
    return g_array_index(a, double, MIN(idx, a->len - 1));
}

int main(int argc, char **argv)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *dir = NULL;
    guint n = 2000;

    if (argc > 1) {
        dir = g_strdup(argv[1]);
        g_mkdir_with_parents(dir, 0700);
    } else {
        dir = g_dir_make_tmp("tvd-store-bench-XXXXXX", &err);
        if (!dir) {
            die(err);
        }
    }
    if (argc > 2) {
        n = (guint)MAX(10, atoi(argv[2]));
    }
    g_autofree char *path = g_build_filename(dir, "bench-store.db", NULL);
    g_autofree char *apath = g_build_filename(dir, "bench-audit.db", NULL);
    const char *suffixes[] = { "", "-wal", "-shm" };
    for (gsize i = 0; i < G_N_ELEMENTS(suffixes); i++) {
        g_autofree char *p1 = g_strconcat(path, suffixes[i], NULL);
        g_autofree char *p2 = g_strconcat(apath, suffixes[i], NULL);
        g_unlink(p1);
        g_unlink(p2);
    }

    printf("store-bench: SQLite %s, WAL, synchronous=FULL, files in %s\n",
           sqlite3_libversion(), dir);
    g_autoptr(TvdStore) store = tvd_store_sqlite_open(path, NULL, &err);
    if (!store) {
        die(err);
    }
    g_autofree char *val = g_strnfill(200, 'v');   /* a member record's size */
    g_autoptr(GBytes) value = g_bytes_new(val, strlen(val));

    /* Puts: one transaction (one revision, one fsync) each. */
    double t0 = now_s();
    for (guint i = 0; i < n; i++) {
        g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", i % 8, i);
        if (!tvd_store_put(store, k, value, NULL, &err)) {
            die(err);
        }
    }
    report("put (1 key per txn)", n, now_s() - t0);

    /* Gets of existing keys. */
    guint gets = n * 10;
    t0 = now_s();
    for (guint i = 0; i < gets; i++) {
        g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", (i % n) % 8,
                                             i % n);
        g_autoptr(TvdStoreEntry) e = tvd_store_get(store, k, &err);
        if (!e) {
            die(err);
        }
    }
    report("get", gets, now_s() - t0);

    /* List of one domain's prefix (n/8 keys each). */
    guint lists = 200;
    t0 = now_s();
    for (guint i = 0; i < lists; i++) {
        g_autofree char *pfx = g_strdup_printf("/members/d%u/", i % 8);
        g_autoptr(GPtrArray) l = tvd_store_list(store, pfx, NULL, &err);
        if (!l) {
            die(err);
        }
    }
    g_autofree char *lname = g_strdup_printf("list (%u keys each)", n / 8);
    report(lname, lists, now_s() - t0);

    /* CAS: read-modify-write at the key's revision. */
    t0 = now_s();
    for (guint i = 0; i < n; i++) {
        g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", i % 8, i);
        g_autoptr(TvdStoreEntry) e = tvd_store_get(store, k, &err);
        if (!e || !tvd_store_cas(store, k, e->mod_revision, value, NULL, NULL,
                                 &err)) {
            die(err);
        }
    }
    report("CAS (get + compare-and-swap)", n, now_s() - t0);

    /* Transactions of 8 puts. */
    guint txns = n / 8;
    t0 = now_s();
    for (guint i = 0; i < txns; i++) {
        g_autoptr(TvdStoreTxn) t = tvd_store_txn_new();
        for (guint j = 0; j < 8; j++) {
            g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", j,
                                                 i * 8 + j);
            tvd_store_txn_put(t, k, value);
        }
        if (!tvd_store_txn_commit(store, t, NULL, &err)) {
            die(err);
        }
    }
    report("txn of 8 puts", txns, now_s() - t0);

    /* Watch latency: commit returns -> callback runs (same thread's loop). */
    guint wn = MIN(n, 1000u);
    WatchBench wb = { g_new0(gint64, wn), 0, g_array_new(FALSE, FALSE,
                                                         sizeof(double)), wn };
    if (!tvd_store_revision(store, &wb.base_rev, &err)) {
        die(err);
    }
    wb.base_rev++;
    guint wid = tvd_store_watch(store, "/watched/", 0, on_event, &wb, NULL,
                                &err);
    if (!wid) {
        die(err);
    }
    for (guint i = 0; i < wn; i++) {
        if (!tvd_store_put(store, "/watched/k", value, NULL, &err)) {
            die(err);
        }
        wb.commit_us[i] = g_get_monotonic_time();   /* commit returned */
        while (wb.lat->len <= i && g_main_context_iteration(NULL, TRUE)) {
        }
    }
    g_array_sort(wb.lat, cmp_double);
    printf("%-34s %8u events  p50 %6.1f us  p99 %6.1f us  max %6.1f us\n",
           "watch latency (commit -> callback)", wb.lat->len, pct(wb.lat, 50),
           pct(wb.lat, 99), pct(wb.lat, 100));
    tvd_store_unwatch(store, wid);

    /* Watch latency across processes' style: a second object polling. */
    TvdStoreSqliteOptions popts = { .poll_interval_ms = 5 };
    g_autoptr(TvdStore) poller = tvd_store_sqlite_open(path, &popts, &err);
    if (!poller) {
        die(err);
    }
    guint pn = MIN(wn, 200u);
    g_array_set_size(wb.lat, 0);
    if (!tvd_store_revision(store, &wb.base_rev, &err)) {
        die(err);
    }
    wb.base_rev++;
    wb.want = pn;
    wid = tvd_store_watch(poller, "/watched/", 0, on_event, &wb, NULL, &err);
    for (guint i = 0; i < pn; i++) {
        if (!tvd_store_put(store, "/watched/k", value, NULL, &err)) {
            die(err);
        }
        wb.commit_us[i] = g_get_monotonic_time();
        while (wb.lat->len <= i && g_main_context_iteration(NULL, TRUE)) {
        }
    }
    g_array_sort(wb.lat, cmp_double);
    printf("%-34s %8u events  p50 %6.1f us  p99 %6.1f us  max %6.1f us\n",
           "watch latency (other object, 5ms poll)", wb.lat->len,
           pct(wb.lat, 50), pct(wb.lat, 99), pct(wb.lat, 100));
    tvd_store_unwatch(poller, wid);
    g_free(wb.commit_us);
    g_array_unref(wb.lat);

    /* Audit: appends (each one fsync of the log + one anchor CAS). */
    g_autoptr(TvdAuditLog) log = tvd_audit_open(apath, store, NULL, &err);
    if (!log) {
        die(err);
    }
    guint an = MIN(n, 1000u);
    t0 = now_s();
    for (guint i = 0; i < an; i++) {
        g_autoptr(JsonObject) det = json_object_new();
        json_object_set_string_member(det, "pcr_digest",
            "3d458cfe55cc03ea1f443f1562beec8df51c75e14a9fcf9a7234a13f198e7969");
        json_object_set_int_member(det, "latency_us", 1234);
        g_autofree char *vm = g_strdup_printf("vm%05u", i);
        if (!tvd_audit_append(log, "supervisor", vm, "blue", "admit",
                              "quote verified", det, NULL, &err)) {
            die(err);
        }
    }
    report("audit append (+ anchor CAS)", an, now_s() - t0);
    TvdAuditReport r;
    t0 = now_s();
    if (!tvd_audit_verify(log, &r, &err)) {
        die(err);
    }
    double vs = now_s() - t0;
    report("audit verify (per record)", (guint)r.records, vs);
    if (r.fault != TVD_AUDIT_OK) {
        fprintf(stderr, "store-bench: audit verify: %s\n", r.why);
        return 1;
    }
    tvd_audit_report_clear(&r);

    /* For comparison only: the same writes without an fsync per commit. */
    g_autofree char *npath = g_build_filename(dir, "bench-normal.db", NULL);
    TvdStoreSqliteOptions nopts = { .sync_normal = TRUE };
    g_autoptr(TvdStore) normal = tvd_store_sqlite_open(npath, &nopts, &err);
    if (!normal) {
        die(err);
    }
    t0 = now_s();
    for (guint i = 0; i < n; i++) {
        g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", i % 8, i);
        if (!tvd_store_put(normal, k, value, NULL, &err)) {
            die(err);
        }
    }
    report("put, synchronous=NORMAL", n, now_s() - t0);
    t0 = now_s();
    for (guint i = 0; i < n; i++) {
        g_autofree char *k = g_strdup_printf("/members/d%u/vm%05u", i % 8, i);
        g_autoptr(TvdStoreEntry) e = tvd_store_get(normal, k, &err);
        if (!e || !tvd_store_cas(normal, k, e->mod_revision, value, NULL, NULL,
                                 &err)) {
            die(err);
        }
    }
    report("CAS, synchronous=NORMAL", n, now_s() - t0);
    g_clear_pointer(&normal, tvd_store_unref);

    if (argc <= 1) {
        for (gsize i = 0; i < G_N_ELEMENTS(suffixes); i++) {
            g_autofree char *p1 = g_strconcat(path, suffixes[i], NULL);
            g_autofree char *p2 = g_strconcat(apath, suffixes[i], NULL);
            g_autofree char *p3 = g_strconcat(npath, suffixes[i], NULL);
            g_unlink(p1);
            g_unlink(p2);
            g_unlink(p3);
        }
        g_rmdir(dir);
    }
    return 0;
}
