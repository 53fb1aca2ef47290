/*
 * Unit tests of the store interface on the real SQLite backend: every
 * operation, compare-and-swap, atomic transactions, watches (ordering,
 * resume, compaction, other processes), schema checks, two objects on one
 * file, and crash safety (a writer killed with SIGKILL at random points).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "store-backend.h"   /* tvd_store_prefix_end */

#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

typedef struct {
    char *dir;
    char *path;
    TvdStore *store;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    (void)data;
    f->dir = g_dir_make_tmp("tvd-store-XXXXXX", &err);
    g_assert_no_error(err);
    f->path = g_build_filename(f->dir, "store.db", NULL);
    f->store = tvd_store_sqlite_open(f->path, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(f->store);
}

static void rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(dir);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    (void)data;
    g_clear_pointer(&f->store, tvd_store_unref);
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->path);
}

static GBytes *b(const char *s)
{
    return g_bytes_new(s, strlen(s));
}

/* Values are not NUL-terminated: parse them with their length. */
static gint64 bytes_int(GBytes *v)
{
    gsize n;
    const char *d = g_bytes_get_data(v, &n);
    g_autofree char *str = g_strndup(d ? d : "", n);
    return g_ascii_strtoll(str, NULL, 10);
}

static void assert_value(TvdStore *store, const char *key, const char *want)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStoreEntry) e = tvd_store_get(store, key, &err);
    g_assert_no_error(err);
    gsize n;
    const char *d = g_bytes_get_data(e->value, &n);
    g_assert_cmpmem(d, n, want, strlen(want));
}

static void assert_absent(TvdStore *store, const char *key)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStoreEntry) e = tvd_store_get(store, key, &err);
    g_assert_null(e);
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND);
}

static gint64 rev_of(TvdStore *store)
{
    gint64 rev = -1;
    g_autoptr(GError) err = NULL;
    g_assert_true(tvd_store_revision(store, &rev, &err));
    g_assert_no_error(err);
    return rev;
}

/* ---- Basic operations ------------------------------------------------------ */

static void test_put_get_delete(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    gint64 rev = 0;
    (void)data;

    g_assert_cmpstr(tvd_store_backend_name(f->store), ==, "sqlite");
    g_assert_cmpint(rev_of(f->store), ==, 0);
    assert_absent(f->store, "/a");

    g_assert_true(tvd_store_put_string(f->store, "/a", "one", &rev, &err));
    g_assert_no_error(err);
    g_assert_cmpint(rev, ==, 1);
    g_assert_true(tvd_store_put_string(f->store, "/b", "", &rev, &err));
    g_assert_cmpint(rev, ==, 2);
    g_assert_true(tvd_store_put_string(f->store, "/a", "two", &rev, &err));
    g_assert_cmpint(rev, ==, 3);

    g_autoptr(TvdStoreEntry) a = tvd_store_get(f->store, "/a", &err);
    g_assert_no_error(err);
    g_assert_cmpstr(a->key, ==, "/a");
    g_assert_cmpint(a->create_revision, ==, 1);
    g_assert_cmpint(a->mod_revision, ==, 3);
    g_assert_cmpint(a->version, ==, 2);
    g_assert_cmpint(a->lease, ==, 0);
    assert_value(f->store, "/a", "two");
    assert_value(f->store, "/b", "");

    /* Binary values with NULs survive. */
    static const guint8 bin[] = { 0, 1, 0xff, 0, 7 };
    g_autoptr(GBytes) bv = g_bytes_new_static(bin, sizeof(bin));
    g_assert_true(tvd_store_put(f->store, "/bin", bv, NULL, &err));
    g_autoptr(TvdStoreEntry) be = tvd_store_get(f->store, "/bin", &err);
    g_assert_true(g_bytes_equal(be->value, bv));

    g_assert_true(tvd_store_delete(f->store, "/a", &rev, &err));
    g_assert_no_error(err);
    g_assert_cmpint(rev, ==, 5);
    assert_absent(f->store, "/a");
    g_assert_false(tvd_store_delete(f->store, "/a", &rev, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_cmpint(rev_of(f->store), ==, 5);

    /* Recreated: create_revision and version start over. */
    g_assert_true(tvd_store_put_string(f->store, "/a", "three", &rev, &err));
    g_autoptr(TvdStoreEntry) a2 = tvd_store_get(f->store, "/a", &err);
    g_assert_cmpint(a2->create_revision, ==, 6);
    g_assert_cmpint(a2->version, ==, 1);
}

static void test_validation(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    (void)data;

    g_assert_false(tvd_store_put_string(f->store, "", "x", NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(tvd_store_put_string(f->store, "/\xff\xfe", "x", NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);

    g_autofree char *long_key = g_strnfill(TVD_STORE_MAX_KEY + 1, 'k');
    g_assert_false(tvd_store_put_string(f->store, long_key, "x", NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);
    long_key[TVD_STORE_MAX_KEY] = '\0';
    g_assert_true(tvd_store_put_string(f->store, long_key, "x", NULL, &err));
    g_assert_no_error(err);

    g_autofree guint8 *big = g_malloc0(TVD_STORE_MAX_VALUE + 1);
    g_autoptr(GBytes) bigv = g_bytes_new_static(big, TVD_STORE_MAX_VALUE + 1);
    g_assert_false(tvd_store_put(f->store, "/big", bigv, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);
    g_autoptr(GBytes) maxv = g_bytes_new_static(big, TVD_STORE_MAX_VALUE);
    g_assert_true(tvd_store_put(f->store, "/big", maxv, NULL, &err));
    g_assert_no_error(err);

    /* Nothing invalid consumed a revision. */
    g_assert_cmpint(rev_of(f->store), ==, 2);
}

static void test_list(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    const char *keys[] = { "/m/d1/vm2", "/m/d1/vm1", "/m/d2/vm1", "/m/d1",
                           "/n", "/m/d10/x", "/m/d1\xc3\xa9" };
    (void)data;

    for (gsize i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_assert_true(tvd_store_put_string(f->store, keys[i], keys[i], NULL,
                                           &err));
    }
    gint64 rev = 0;
    g_autoptr(GPtrArray) all = tvd_store_list(f->store, "", &rev, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(all->len, ==, G_N_ELEMENTS(keys));
    g_assert_cmpint(rev, ==, (gint64)G_N_ELEMENTS(keys));
    for (guint i = 1; i < all->len; i++) {
        const TvdStoreEntry *p = all->pdata[i - 1], *q = all->pdata[i];
        g_assert_cmpint(strcmp(p->key, q->key), <, 0);
    }

    g_autoptr(GPtrArray) d1 = tvd_store_list(f->store, "/m/d1/", NULL, &err);
    g_assert_cmpuint(d1->len, ==, 2);
    g_assert_cmpstr(((TvdStoreEntry *)d1->pdata[0])->key, ==, "/m/d1/vm1");
    g_assert_cmpstr(((TvdStoreEntry *)d1->pdata[1])->key, ==, "/m/d1/vm2");

    /* "/m/d1" covers /m/d1, /m/d1/..., /m/d10/x and /m/d1é. */
    g_autoptr(GPtrArray) d1p = tvd_store_list(f->store, "/m/d1", NULL, &err);
    g_assert_cmpuint(d1p->len, ==, 5);

    g_autoptr(GPtrArray) none = tvd_store_list(f->store, "/zz", NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(none->len, ==, 0);
}

static void test_prefix_end(void)
{
    g_autofree char *a = tvd_store_prefix_end("/a");
    g_assert_cmpstr(a, ==, "/b");
    g_autofree char *c = tvd_store_prefix_end("a\xff");
    g_assert_cmpstr(c, ==, "b");
    g_assert_null(tvd_store_prefix_end("\xff\xff"));
    g_assert_null(tvd_store_prefix_end(""));
}

/* ---- Compare-and-swap and transactions -------------------------------------- */

static void test_cas(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) v1 = b("v1"), v2 = b("v2"), v3 = b("v3");
    gint64 rev = 0, actual = -1;
    (void)data;

    /* Create only if absent. */
    g_assert_true(tvd_store_cas(f->store, "/k", TVD_STORE_REV_ABSENT, v1, &rev,
                                &actual, &err));
    g_assert_no_error(err);
    g_assert_cmpint(rev, ==, 1);
    g_assert_false(tvd_store_cas(f->store, "/k", TVD_STORE_REV_ABSENT, v2,
                                 NULL, &actual, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "/k"));
    g_assert_cmpint(actual, ==, 1);
    g_clear_error(&err);

    /* Update at the right revision, then a stale writer loses. */
    g_assert_true(tvd_store_cas(f->store, "/k", 1, v2, &rev, NULL, &err));
    g_assert_cmpint(rev, ==, 2);
    g_assert_false(tvd_store_cas(f->store, "/k", 1, v3, NULL, &actual, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_assert_cmpint(actual, ==, 2);
    g_clear_error(&err);
    assert_value(f->store, "/k", "v2");

    /* CAS delete. */
    g_assert_false(tvd_store_cas(f->store, "/k", 1, NULL, NULL, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_clear_error(&err);
    g_assert_true(tvd_store_cas(f->store, "/k", 2, NULL, &rev, NULL, &err));
    g_assert_cmpint(rev, ==, 3);
    assert_absent(f->store, "/k");

    /* An update expecting a revision of a missing key conflicts with 0. */
    g_assert_false(tvd_store_cas(f->store, "/k", 3, v1, NULL, &actual, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_assert_cmpint(actual, ==, 0);
    g_clear_error(&err);
    g_assert_false(tvd_store_cas(f->store, "/k", -5, v1, NULL, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_assert_cmpint(rev_of(f->store), ==, 3);
}

static void test_txn(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) x = b("x"), y = b("y");
    gint64 rev = 0;
    (void)data;

    g_assert_true(tvd_store_put_string(f->store, "/d/a", "1", NULL, &err));
    g_assert_true(tvd_store_put_string(f->store, "/d/b", "1", NULL, &err));
    g_assert_true(tvd_store_put_string(f->store, "/e", "1", NULL, &err));

    /* All operations of a transaction share one revision. */
    g_autoptr(TvdStoreTxn) t1 = tvd_store_txn_new();
    tvd_store_txn_compare(t1, "/d/a", 1);
    tvd_store_txn_compare(t1, "/new", TVD_STORE_REV_ABSENT);
    tvd_store_txn_compare(t1, "/e", TVD_STORE_REV_EXISTS);
    tvd_store_txn_put(t1, "/d/a", x);
    tvd_store_txn_put(t1, "/new", y);
    tvd_store_txn_delete(t1, "/d/b");
    tvd_store_txn_delete(t1, "/missing");     /* no-op */
    g_assert_true(tvd_store_txn_commit(f->store, t1, &rev, &err));
    g_assert_no_error(err);
    g_assert_cmpint(rev, ==, 4);
    g_autoptr(TvdStoreEntry) a = tvd_store_get(f->store, "/d/a", NULL);
    g_autoptr(TvdStoreEntry) n = tvd_store_get(f->store, "/new", NULL);
    g_assert_cmpint(a->mod_revision, ==, 4);
    g_assert_cmpint(n->mod_revision, ==, 4);
    assert_absent(f->store, "/d/b");

    /* A failing compare (the last one) writes nothing. */
    g_autoptr(TvdStoreTxn) t2 = tvd_store_txn_new();
    tvd_store_txn_compare(t2, "/d/a", 4);
    tvd_store_txn_compare(t2, "/e", 2);
    tvd_store_txn_put(t2, "/d/a", y);
    tvd_store_txn_delete(t2, "/new");
    g_assert_false(tvd_store_txn_commit(f->store, t2, &rev, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "'/e'"));
    g_clear_error(&err);
    assert_value(f->store, "/d/a", "x");
    assert_value(f->store, "/new", "y");
    g_assert_cmpint(rev_of(f->store), ==, 4);

    /* An operation failing half-way (unknown lease) rolls back earlier ones. */
    g_autoptr(TvdStoreTxn) t3 = tvd_store_txn_new();
    tvd_store_txn_put(t3, "/d/a", y);
    tvd_store_txn_delete(t3, "/new");
    tvd_store_txn_put_lease(t3, "/leased", x, 999);
    g_assert_false(tvd_store_txn_commit(f->store, t3, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND);
    g_clear_error(&err);
    assert_value(f->store, "/d/a", "x");
    assert_value(f->store, "/new", "y");
    g_assert_cmpint(rev_of(f->store), ==, 4);

    /* The same key twice is refused before anything runs. */
    g_autoptr(TvdStoreTxn) t4 = tvd_store_txn_new();
    tvd_store_txn_put(t4, "/z", x);
    tvd_store_txn_delete(t4, "/z");
    g_assert_false(tvd_store_txn_commit(f->store, t4, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);

    /* Too many operations. */
    g_autoptr(TvdStoreTxn) t5 = tvd_store_txn_new();
    for (guint i = 0; i <= TVD_STORE_MAX_TXN_OPS; i++) {
        g_autofree char *k = g_strdup_printf("/many/%u", i);
        tvd_store_txn_put(t5, k, x);
    }
    g_assert_false(tvd_store_txn_commit(f->store, t5, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);

    /* A transaction that changes nothing takes no revision. */
    g_autoptr(TvdStoreTxn) t6 = tvd_store_txn_new();
    tvd_store_txn_delete(t6, "/nothing");
    g_assert_true(tvd_store_txn_commit(f->store, t6, &rev, &err));
    g_assert_cmpint(rev, ==, 4);

    /* Prefix delete. */
    g_assert_true(tvd_store_put_string(f->store, "/d/c", "1", NULL, &err));
    g_assert_true(tvd_store_put_string(f->store, "/dd", "1", NULL, &err));
    g_autoptr(TvdStoreTxn) t7 = tvd_store_txn_new();
    tvd_store_txn_delete_prefix(t7, "/d/");
    g_assert_true(tvd_store_txn_commit(f->store, t7, &rev, &err));
    g_assert_no_error(err);
    g_assert_cmpint(rev, ==, 7);
    g_autoptr(GPtrArray) left = tvd_store_list(f->store, "/d", NULL, &err);
    g_assert_cmpuint(left->len, ==, 1);
    g_assert_cmpstr(((TvdStoreEntry *)left->pdata[0])->key, ==, "/dd");
}

static void test_leases(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) v = b("host");
    gint64 lease = 0;
    (void)data;

    g_assert_true(tvd_store_lease_grant(f->store, 10, &lease, &err));
    g_assert_no_error(err);
    g_assert_cmpint(lease, >, 0);
    g_autoptr(TvdStoreTxn) t = tvd_store_txn_new();
    tvd_store_txn_put_lease(t, "/hosts/a", v, lease);
    tvd_store_txn_put_lease(t, "/hosts/a/vtep", v, lease);
    tvd_store_txn_put(t, "/hosts/b", v);
    g_assert_true(tvd_store_txn_commit(f->store, t, NULL, &err));
    g_autoptr(TvdStoreEntry) e = tvd_store_get(f->store, "/hosts/a", &err);
    g_assert_cmpint(e->lease, ==, lease);
    g_assert_true(tvd_store_lease_keepalive(f->store, lease, &err));
    g_assert_true(tvd_store_lease_revoke(f->store, lease, &err));
    g_assert_no_error(err);
    assert_absent(f->store, "/hosts/a");
    assert_absent(f->store, "/hosts/a/vtep");
    assert_value(f->store, "/hosts/b", "host");
    g_assert_cmpint(rev_of(f->store), ==, 2);
    g_assert_false(tvd_store_lease_keepalive(f->store, lease, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_false(tvd_store_lease_grant(f->store, 0, &lease, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
}

/* ---- Watches ------------------------------------------------------------------ */

typedef struct {
    GPtrArray *log;     /* "PUT /k v @rev" strings */
    guint stop_after;   /* unwatch itself after this many events (0: never) */
    guint id;
    gboolean destroyed;
} Seen;

static void seen_clear(Seen *s)
{
    g_clear_pointer(&s->log, g_ptr_array_unref);
}

static void on_event(TvdStore *store, const TvdStoreEvent *ev, gpointer data)
{
    Seen *s = data;
    if (ev->type == TVD_STORE_EVENT_COMPACTED) {
        g_ptr_array_add(s->log, g_strdup_printf("COMPACTED @%" G_GINT64_FORMAT,
                                                ev->revision));
        return;
    }
    if (ev->type == TVD_STORE_EVENT_PUT) {
        gsize n;
        const char *d = g_bytes_get_data(ev->value, &n);
        g_ptr_array_add(s->log, g_strdup_printf("PUT %s %.*s @%" G_GINT64_FORMAT,
                                                ev->key, (int)n, d ? d : "",
                                                ev->revision));
    } else {
        g_assert_null(ev->value);
        g_ptr_array_add(s->log, g_strdup_printf("DEL %s @%" G_GINT64_FORMAT,
                                                ev->key, ev->revision));
    }
    if (s->stop_after && s->log->len == s->stop_after) {
        tvd_store_unwatch(store, s->id);
    }
}

static void on_destroy(gpointer data)
{
    ((Seen *)data)->destroyed = TRUE;
}

/* Runs the default context until it has nothing ready. */
static void drain(void)
{
    for (int i = 0; i < 1000 && g_main_context_iteration(NULL, FALSE); i++) {
    }
}

static void assert_log(Seen *s, const char *const *want)
{
    guint n = g_strv_length((char **)want);
    for (guint i = 0; i < MIN(n, s->log->len); i++) {
        g_assert_cmpstr(s->log->pdata[i], ==, want[i]);
    }
    g_assert_cmpuint(s->log->len, ==, n);
}

static void test_watch_order(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Seen all = { g_ptr_array_new_with_free_func(g_free), 0, 0, FALSE };
    Seen sub = { g_ptr_array_new_with_free_func(g_free), 0, 0, FALSE };
    g_autoptr(GBytes) v = b("v");
    (void)data;

    g_assert_true(tvd_store_put_string(f->store, "/before", "0", NULL, &err));
    all.id = tvd_store_watch(f->store, "", 0, on_event, &all, on_destroy, &err);
    g_assert_no_error(err);
    sub.id = tvd_store_watch(f->store, "/m/", 0, on_event, &sub, NULL, &err);
    g_assert_cmpuint(all.id, >, 0);
    g_assert_cmpuint(sub.id, !=, all.id);
    drain();
    g_assert_cmpuint(all.log->len, ==, 0);    /* from now: no history */

    g_assert_true(tvd_store_put_string(f->store, "/m/a", "1", NULL, &err));
    g_assert_true(tvd_store_put_string(f->store, "/x", "2", NULL, &err));
    g_autoptr(TvdStoreTxn) t = tvd_store_txn_new();
    tvd_store_txn_put(t, "/m/c", v);
    tvd_store_txn_put(t, "/m/b", v);
    tvd_store_txn_delete(t, "/m/a");
    g_assert_true(tvd_store_txn_commit(f->store, t, NULL, &err));
    g_assert_true(tvd_store_delete(f->store, "/x", NULL, &err));
    /* Nothing is delivered outside the main context. */
    g_assert_cmpuint(all.log->len, ==, 0);
    drain();

    const char *const want_all[] = {
        "PUT /m/a 1 @2", "PUT /x 2 @3", "PUT /m/c v @4", "PUT /m/b v @4",
        "DEL /m/a @4", "DEL /x @5", NULL };
    const char *const want_sub[] = {
        "PUT /m/a 1 @2", "PUT /m/c v @4", "PUT /m/b v @4", "DEL /m/a @4", NULL };
    assert_log(&all, want_all);
    assert_log(&sub, want_sub);

    tvd_store_unwatch(f->store, all.id);
    g_assert_true(all.destroyed);
    g_assert_true(tvd_store_put_string(f->store, "/m/z", "9", NULL, &err));
    drain();
    g_assert_cmpuint(all.log->len, ==, 6);
    g_assert_cmpuint(sub.log->len, ==, 5);
    seen_clear(&all);
    seen_clear(&sub);
}

static void test_watch_resume(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    Seen s = { g_ptr_array_new_with_free_func(g_free), 0, 0, FALSE };
    (void)data;

    for (int i = 1; i <= 600; i++) {     /* more than one dispatch batch */
        g_autofree char *k = g_strdup_printf("/k/%03d", i % 7);
        g_autofree char *v = g_strdup_printf("%d", i);
        g_assert_true(tvd_store_put_string(f->store, k, v, NULL, &err));
    }
    /* Resume from revision 595: exactly 595..600, then live ones. */
    s.id = tvd_store_watch(f->store, "/k/", 595, on_event, &s, NULL, &err);
    g_assert_no_error(err);
    drain();
    g_assert_cmpuint(s.log->len, ==, 6);
    g_assert_cmpstr(s.log->pdata[0], ==, "PUT /k/000 595 @595");
    g_assert_cmpstr(s.log->pdata[5], ==, "PUT /k/005 600 @600");
    g_assert_true(tvd_store_put_string(f->store, "/k/x", "live", NULL, &err));
    drain();
    g_assert_cmpuint(s.log->len, ==, 7);
    g_assert_cmpstr(s.log->pdata[6], ==, "PUT /k/x live @601");
    tvd_store_unwatch(f->store, s.id);
    g_ptr_array_set_size(s.log, 0);

    /* From revision 1: the whole history, in order, across batches. */
    s.id = tvd_store_watch(f->store, "", 1, on_event, &s, NULL, &err);
    drain();
    g_assert_cmpuint(s.log->len, ==, 601);
    for (guint i = 0; i < 600; i++) {
        g_autofree char *want = g_strdup_printf("PUT /k/%03u %u @%u",
                                                (i + 1) % 7, i + 1, i + 1);
        g_assert_cmpstr(s.log->pdata[i], ==, want);
    }
    tvd_store_unwatch(f->store, s.id);
    g_ptr_array_set_size(s.log, 0);

    /* A watch that removes itself from its callback. */
    s.stop_after = 3;
    s.id = tvd_store_watch(f->store, "", 1, on_event, &s, on_destroy, &err);
    drain();
    g_assert_cmpuint(s.log->len, ==, 3);
    g_assert_true(s.destroyed);

    /* Compaction: earlier revisions can no longer be watched. */
    g_assert_true(tvd_store_compact(f->store, 590, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(tvd_store_watch(f->store, "", 100, on_event, &s, NULL,
                                     &err), ==, 0);
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_COMPACTED);
    g_clear_error(&err);
    g_assert_false(tvd_store_compact(f->store, 1000, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID);
    g_clear_error(&err);

    /* A watch left behind by a compaction gets COMPACTED and ends. */
    g_ptr_array_set_size(s.log, 0);
    s.stop_after = 0;
    s.destroyed = FALSE;
    s.id = tvd_store_watch(f->store, "", 591, on_event, &s, on_destroy, &err);
    g_assert_no_error(err);
    g_assert_true(tvd_store_compact(f->store, 595, &err));
    drain();
    g_assert_cmpuint(s.log->len, ==, 1);
    g_assert_cmpstr(s.log->pdata[0], ==, "COMPACTED @595");
    g_assert_true(s.destroyed);
    /* Current keys are untouched by compaction. */
    g_autoptr(GPtrArray) keys = tvd_store_list(f->store, "/k/", NULL, &err);
    g_assert_cmpuint(keys->len, ==, 8);
    seen_clear(&s);
}

static void on_event_unref(TvdStore *store, const TvdStoreEvent *ev,
                           gpointer data)
{
    (void)ev;
    TvdStore **holder = data;
    /* The last reference is dropped from inside a callback; the rest of the
     * batch may still be delivered, to a store kept alive until it ends. */
    if (*holder) {
        g_assert_true(*holder == store);
        tvd_store_unref(g_steal_pointer(holder));
    }
}

static void test_watch_unref_in_callback(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    (void)data;
    TvdStore *holder = g_steal_pointer(&f->store);
    g_assert_true(tvd_store_put_string(holder, "/a", "1", NULL, &err));
    g_assert_true(tvd_store_put_string(holder, "/b", "1", NULL, &err));
    tvd_store_watch(holder, "", 1, on_event_unref, &holder, NULL, &err);
    g_assert_no_error(err);
    drain();
    g_assert_null(holder);
}

/* ---- Schema and files --------------------------------------------------------- */

static void sql(const char *path, const char *statement)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    int rc = sqlite3_exec(db, statement, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        g_error("%s: %s", statement, msg);
    }
    sqlite3_close(db);
}

static void test_schema(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    struct stat st;
    (void)data;

    g_assert_cmpint(stat(f->path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    g_assert_true(tvd_store_put_string(f->store, "/a", "1", NULL, &err));
    /* SQLite gives the WAL and its index the database's mode. */
    const char *side[] = { "-wal", "-shm" };
    for (gsize i = 0; i < G_N_ELEMENTS(side); i++) {
        g_autofree char *p = g_strconcat(f->path, side[i], NULL);
        g_assert_cmpint(stat(p, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    }
    g_clear_pointer(&f->store, tvd_store_unref);

    /* Reopen: same data. */
    f->store = tvd_store_sqlite_open(f->path, NULL, &err);
    g_assert_no_error(err);
    assert_value(f->store, "/a", "1");
    g_clear_pointer(&f->store, tvd_store_unref);

    /* A newer schema is refused with a clear message. */
    sql(f->path, "PRAGMA user_version = 2");
    g_assert_null(tvd_store_sqlite_open(f->path, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_SCHEMA);
    g_assert_nonnull(strstr(err->message, "newer"));
    g_clear_error(&err);
    sql(f->path, "PRAGMA user_version = 1");

    /* Some other application's database. */
    g_autofree char *other = g_build_filename(f->dir, "other.db", NULL);
    sql(other, "CREATE TABLE t(x)");
    g_assert_null(tvd_store_sqlite_open(other, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT);
    g_clear_error(&err);

    /* Not a database at all. */
    g_autofree char *junk = g_build_filename(f->dir, "junk.db", NULL);
    g_autofree char *garbage = g_strnfill(8192, 'J');
    g_assert_true(g_file_set_contents(junk, garbage, -1, NULL));
    g_assert_null(tvd_store_sqlite_open(junk, NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT);
    g_clear_error(&err);

    /* An existing file that is too open is tightened to 0600. */
    g_autofree char *loose = g_build_filename(f->dir, "loose.db", NULL);
    g_assert_true(g_file_set_contents(loose, "", 0, NULL));
    g_assert_cmpint(chmod(loose, 0644), ==, 0);
    g_autoptr(TvdStore) l = tvd_store_sqlite_open(loose, NULL, &err);
    g_assert_no_error(err);
    g_assert_nonnull(l);
    g_assert_cmpint(stat(loose, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);

    /* A directory that does not exist. */
    g_assert_null(tvd_store_sqlite_open("/nonexistent-dir/x.db", NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_IO);
}

/* ---- Two store objects on one file (as two processes) -------------------------------- */

static gboolean quit_loop(gpointer loop)
{
    g_main_loop_quit(loop);
    return G_SOURCE_REMOVE;
}

static void on_event_quit(TvdStore *store, const TvdStoreEvent *ev,
                          gpointer data)
{
    Seen *s = data;
    on_event(store, ev, s);
}

static void test_two_objects(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdStoreSqliteOptions opts = { .poll_interval_ms = 10 };
    Seen s = { g_ptr_array_new_with_free_func(g_free), 0, 0, FALSE };
    g_autoptr(GBytes) one = b("1");
    (void)data;

    g_autoptr(TvdStore) other = tvd_store_sqlite_open(f->path, &opts, &err);
    g_assert_no_error(err);

    g_assert_true(tvd_store_put_string(f->store, "/a", "from-1", NULL, &err));
    assert_value(other, "/a", "from-1");
    g_assert_true(tvd_store_put_string(other, "/b", "from-2", NULL, &err));
    assert_value(f->store, "/b", "from-2");
    g_assert_cmpint(rev_of(f->store), ==, 2);

    /* CAS across objects: the second writer at the same revision loses. */
    g_autoptr(TvdStoreEntry) e1 = tvd_store_get(f->store, "/a", &err);
    g_autoptr(TvdStoreEntry) e2 = tvd_store_get(other, "/a", &err);
    g_assert_true(tvd_store_cas(other, "/a", e2->mod_revision, one, NULL,
                                NULL, &err));
    g_assert_false(tvd_store_cas(f->store, "/a", e1->mod_revision, one, NULL,
                                 NULL, &err));
    g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
    g_clear_error(&err);

    /* A polling watch on one object sees writes made through the other. */
    s.id = tvd_store_watch(other, "/w/", 0, on_event_quit, &s, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(tvd_store_put_string(f->store, "/w/1", "x", NULL, &err));
    g_assert_true(tvd_store_put_string(f->store, "/w/2", "y", NULL, &err));
    g_autoptr(GMainLoop) loop = g_main_loop_new(NULL, FALSE);
    guint guard = g_timeout_add_seconds(10, quit_loop, loop);
    while (s.log->len < 2 && g_main_context_iteration(NULL, TRUE) &&
           g_main_context_find_source_by_id(NULL, guard)) {
    }
    g_source_remove(guard);
    g_assert_cmpuint(s.log->len, ==, 2);
    g_assert_cmpstr(s.log->pdata[0], ==, "PUT /w/1 x @4");
    g_assert_cmpstr(s.log->pdata[1], ==, "PUT /w/2 y @5");
    tvd_store_unwatch(other, s.id);
    seen_clear(&s);
}

/* ---- Concurrent writers ------------------------------------------------------------ */

static void counter_increments(const char *path, int n)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStore) st = tvd_store_sqlite_open(path, NULL, &err);
    g_assert_no_error(err);
    for (int i = 0; i < n; i++) {
        for (;;) {
            g_autoptr(TvdStoreEntry) e = tvd_store_get(st, "/counter", NULL);
            gint64 v = e ? bytes_int(e->value) : 0;
            g_autofree char *nv = g_strdup_printf("%" G_GINT64_FORMAT, v + 1);
            g_autoptr(GBytes) bv = b(nv);
            g_clear_error(&err);
            if (tvd_store_cas(st, "/counter", e ? e->mod_revision : 0, bv,
                              NULL, NULL, &err)) {
                break;
            }
            g_assert_error(err, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT);
        }
    }
}

static void test_concurrent_cas(Fixture *f, gconstpointer data)
{
    (void)data;
    g_assert_true(tvd_store_put_string(f->store, "/counter", "0", NULL, NULL));
    pid_t pids[2];
    for (int c = 0; c < 2; c++) {
        pids[c] = fork();
        g_assert_cmpint(pids[c], >=, 0);
        if (pids[c] == 0) {
            counter_increments(f->path, 100);
            _exit(0);
        }
    }
    counter_increments(f->path, 100);
    for (int c = 0; c < 2; c++) {
        int status = 0;
        g_assert_cmpint(waitpid(pids[c], &status, 0), ==, pids[c]);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    /* No lost update: 300 increments, 300 revisions after the first put. */
    assert_value(f->store, "/counter", "300");
    g_assert_cmpint(rev_of(f->store), ==, 301);
}

/* ---- Crash safety ------------------------------------------------------------------- */

/*
 * The child commits, forever, transactions i = 1, 2, ... of:
 *   put /c/counter = i, put /a/i = "i", put /b/i = "i", delete /a/(i-1)
 * and is killed with SIGKILL at a random moment. After its first commit it
 * writes one byte to @notify_fd, so the parent knows the round got that far
 * however slow the machine is.
 */
static G_GNUC_NORETURN void crash_writer(const char *path, int notify_fd)
{
    g_autoptr(TvdStore) st = tvd_store_sqlite_open(path, NULL, NULL);
    if (!st) {
        _exit(2);
    }
    g_autoptr(TvdStoreEntry) c = tvd_store_get(st, "/c/counter", NULL);
    gint64 i = c ? bytes_int(c->value) : 0;
    for (;;) {
        i++;
        g_autofree char *v = g_strdup_printf("%" G_GINT64_FORMAT, i);
        g_autofree char *ka = g_strdup_printf("/a/%08" G_GINT64_FORMAT, i);
        g_autofree char *kb = g_strdup_printf("/b/%08" G_GINT64_FORMAT, i);
        g_autofree char *kprev = g_strdup_printf("/a/%08" G_GINT64_FORMAT,
                                                 i - 1);
        g_autoptr(GBytes) bv = b(v);
        g_autoptr(TvdStoreTxn) t = tvd_store_txn_new();
        tvd_store_txn_put(t, "/c/counter", bv);
        tvd_store_txn_put(t, ka, bv);
        tvd_store_txn_put(t, kb, bv);
        tvd_store_txn_delete(t, kprev);
        if (!tvd_store_txn_commit(st, t, NULL, NULL)) {
            _exit(3);
        }
        if (notify_fd >= 0) {
            if (write(notify_fd, "c", 1) != 1) {
                _exit(4);
            }
            close(notify_fd);
            notify_fd = -1;
        }
    }
}

static gint64 sql_int(sqlite3 *db, const char *q)
{
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, q, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    gint64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void check_consistent(const char *path, gint64 *out_counter)
{
    g_autoptr(GError) err = NULL;

    /* The raw file first: integrity and the revision invariants. */
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st,
                                       NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    g_assert_cmpstr((const char *)sqlite3_column_text(st, 0), ==, "ok");
    sqlite3_finalize(st);
    gint64 rev = sql_int(db, "SELECT value FROM meta WHERE name='revision'");
    gint64 max_mod = sql_int(db, "SELECT coalesce(max(mod_rev), 0) FROM kv");
    gint64 max_ev = sql_int(db, "SELECT coalesce(max(rev), 0) FROM events");
    g_assert_cmpint(rev, ==, max_mod);
    g_assert_cmpint(rev, ==, max_ev);
    /* Every revision has its events (none half-written). */
    g_assert_cmpint(sql_int(db, "SELECT count(DISTINCT rev) FROM events"), ==,
                    rev);
    sqlite3_close(db);

    /* Then through the store: every transaction all or nothing. */
    g_autoptr(TvdStore) s = tvd_store_sqlite_open(path, NULL, &err);
    g_assert_no_error(err);
    gint64 counter = 0;
    g_autoptr(TvdStoreEntry) c = tvd_store_get(s, "/c/counter", NULL);
    if (c) {
        counter = bytes_int(c->value);
        g_assert_cmpint(c->mod_revision, ==, rev);
    }
    g_assert_cmpint(counter, ==, rev);
    g_autoptr(GPtrArray) as = tvd_store_list(s, "/a/", NULL, &err);
    g_autoptr(GPtrArray) bs = tvd_store_list(s, "/b/", NULL, &err);
    g_assert_cmpuint(as->len, ==, counter ? 1 : 0);
    g_assert_cmpuint(bs->len, ==, (guint)counter);
    if (counter) {
        g_autofree char *ka = g_strdup_printf("/a/%08" G_GINT64_FORMAT, counter);
        g_assert_cmpstr(((TvdStoreEntry *)as->pdata[0])->key, ==, ka);
    }
    for (guint i = 0; i < bs->len; i++) {
        const TvdStoreEntry *e = bs->pdata[i];
        g_assert_cmpint(e->mod_revision, ==, (gint64)i + 1);
    }
    *out_counter = counter;
}

static void test_crash_safety(Fixture *f, gconstpointer data)
{
    gint64 last = 0;
    (void)data;
    g_clear_pointer(&f->store, tvd_store_unref);

    for (int round = 0; round < 8; round++) {
        /* Odd rounds kill at any moment, also in the open; even rounds
         * wait for the round's first commit, then kill at a random moment
         * in the loop: those must add transactions, on any machine. */
        gboolean after_commit = round % 2 == 0;
        int fds[2];
        g_assert_cmpint(pipe(fds), ==, 0);
        pid_t pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
            close(fds[0]);
            if (!after_commit) {
                close(fds[1]);
                fds[1] = -1;
            }
            crash_writer(f->path, fds[1]);
        }
        close(fds[1]);
        if (after_commit) {
            struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
            char c;
            /* A generous bound: the first commit of a round takes ms. */
            g_assert_cmpint(poll(&pfd, 1, 60000), ==, 1);
            g_assert_cmpint(read(fds[0], &c, 1), ==, 1);
        }
        close(fds[0]);
        g_usleep((gulong)g_test_rand_int_range(0, 20000));
        g_assert_cmpint(kill(pid, SIGKILL), ==, 0);
        int status = 0;
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

        gint64 counter = 0;
        check_consistent(f->path, &counter);
        g_test_message("round %d: %" G_GINT64_FORMAT " transactions survived",
                       round, counter);
        if (after_commit) {
            g_assert_cmpint(counter, >, last);
        } else {
            g_assert_cmpint(counter, >=, last);
        }
        last = counter;
    }
    g_assert_cmpint(last, >, 0);
}

/* ---- Threads ---------------------------------------------------------------------- */

typedef struct {
    TvdStore *store;
    int id;
} Worker;

static gpointer put_worker(gpointer data)
{
    Worker *wk = data;
    for (int i = 0; i < 50; i++) {
        g_autofree char *k = g_strdup_printf("/t/%d/%02d", wk->id, i);
        g_autoptr(GError) err = NULL;
        g_assert_true(tvd_store_put_string(wk->store, k, "v", NULL, &err));
        g_assert_no_error(err);
    }
    return NULL;
}

typedef struct {
    TvdStore *store;
    guint want;
    GPtrArray *log;
} ThreadWatch;

static void on_event_thread(TvdStore *store, const TvdStoreEvent *ev,
                            gpointer data)
{
    ThreadWatch *tw = data;
    (void)store;
    g_ptr_array_add(tw->log, g_strdup(ev->key));
}

/* A watch owned by another thread, in that thread's own context. */
static gpointer watch_thread(gpointer data)
{
    ThreadWatch *tw = data;
    g_autoptr(GMainContext) ctx = g_main_context_new();
    g_autoptr(GError) err = NULL;
    g_main_context_push_thread_default(ctx);
    guint id = tvd_store_watch(tw->store, "/t/", 1, on_event_thread, tw, NULL,
                               &err);
    g_assert_no_error(err);
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    while (tw->log->len < tw->want && g_get_monotonic_time() < deadline) {
        g_main_context_iteration(ctx, TRUE);
    }
    tvd_store_unwatch(tw->store, id);
    g_main_context_pop_thread_default(ctx);
    return NULL;
}

static void test_threads(Fixture *f, gconstpointer data)
{
    (void)data;
    GThread *threads[4];
    Worker workers[4];
    ThreadWatch tw = { f->store, 200, g_ptr_array_new_with_free_func(g_free) };

    GThread *watcher = g_thread_new("watch", watch_thread, &tw);
    for (int i = 0; i < 4; i++) {
        workers[i] = (Worker){ f->store, i };
        threads[i] = g_thread_new("put", put_worker, &workers[i]);
    }
    for (int i = 0; i < 4; i++) {
        g_thread_join(threads[i]);
    }
    g_thread_join(watcher);
    /* Every put took its own revision; the watcher saw each exactly once. */
    g_assert_cmpint(rev_of(f->store), ==, 200);
    g_assert_cmpuint(tw.log->len, ==, 200);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < tw.log->len; i++) {
        g_assert_true(g_hash_table_add(seen, tw.log->pdata[i]));
    }
    g_ptr_array_unref(tw.log);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define T(name, fn) \
    g_test_add("/store/" name, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    T("put-get-delete", test_put_get_delete);
    T("validation", test_validation);
    T("list", test_list);
    g_test_add_func("/store/prefix-end", test_prefix_end);
    T("cas", test_cas);
    T("txn", test_txn);
    T("leases", test_leases);
    T("watch/order", test_watch_order);
    T("watch/resume", test_watch_resume);
    T("watch/unref-in-callback", test_watch_unref_in_callback);
    T("schema", test_schema);
    T("two-objects", test_two_objects);
    T("concurrent-cas", test_concurrent_cas);
    T("threads", test_threads);
    T("crash-safety", test_crash_safety);
#undef T
    return g_test_run();
}
