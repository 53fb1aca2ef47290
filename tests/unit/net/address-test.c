/*
 * The address allocator (host/net/address.c) against the SQLite store:
 * lowest free address first, the same address again for the same VM (also
 * after reopening the store), reused after a release, exhaustion, a new
 * address when the subnet changed, bad names refused, and two stores on one
 * file allocating from two threads at once never hand out one address twice.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib/gstdio.h>
#include <string.h>

#include "address.h"

typedef struct {
    char *dir;
    char *db;
    TvdStore *store;
} Fixture;

static const guint8 net24[4] = { 10, 100, 0, 0 };

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdStoreSqliteOptions opts = { .sync_normal = TRUE };

    f->dir = g_dir_make_tmp("tvd-address-XXXXXX", &err);
    g_assert_no_error(err);
    f->db = g_build_filename(f->dir, "store.db", NULL);
    f->store = tvd_store_sqlite_open(f->db, &opts, &err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autofree char *wal = g_strconcat(f->db, "-wal", NULL);
    g_autofree char *shm = g_strconcat(f->db, "-shm", NULL);

    tvd_store_unref(f->store);
    g_unlink(f->db);
    g_unlink(wal);
    g_unlink(shm);
    g_rmdir(f->dir);
    g_free(f->db);
    g_free(f->dir);
}

static guint8 assign(TvdStore *store, const char *domain, const guint8 net[4],
                     guint8 prefix, const char *vm)
{
    g_autoptr(GError) err = NULL;
    guint8 out[4] = { 0 };

    g_assert_true(tvd_net_address_assign(store, domain, net, prefix, vm, out, &err));
    g_assert_no_error(err);
    g_assert_cmpmem(out, 3, net, 3);
    return out[3];
}

static void test_stable(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStoreEntry) entry = NULL;
    TvdStoreSqliteOptions opts = { .sync_normal = TRUE };
    guint8 out[4];

    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web1"), ==, 1);
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web2"), ==, 2);
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "db1"), ==, 3);
    /* Another domain has its own addresses. */
    g_assert_cmpuint(assign(f->store, "red", net24, 24, "web1"), ==, 1);
    /* Readmission: the same address. */
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web2"), ==, 2);

    /* A restart: the same addresses from the file. */
    tvd_store_unref(f->store);
    f->store = tvd_store_sqlite_open(f->db, &opts, &err);
    g_assert_no_error(err);
    g_assert_true(tvd_net_address_lookup(f->store, "blue", "db1", out, &err));
    g_assert_cmpuint(out[3], ==, 3);
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web1"), ==, 1);

    /* The keys the store holds. */
    entry = tvd_store_get(f->store, "/addresses/blue/vm/web2", &err);
    g_assert_no_error(err);
    g_assert_cmpmem(g_bytes_get_data(entry->value, NULL), g_bytes_get_size(entry->value),
                    "10.100.0.2", 10);
    g_clear_pointer(&entry, tvd_store_entry_free);
    entry = tvd_store_get(f->store, "/addresses/blue/ip/10.100.0.2", &err);
    g_assert_no_error(err);
    g_assert_cmpmem(g_bytes_get_data(entry->value, NULL), g_bytes_get_size(entry->value),
                    "web2", 4);

    /* Released on delete, then the lowest free one is given again. */
    g_assert_true(tvd_net_address_release(f->store, "blue", "web2", &err));
    g_assert_true(tvd_net_address_release(f->store, "blue", "web2", &err));
    g_assert_no_error(err);
    g_assert_false(tvd_net_address_lookup(f->store, "blue", "web2", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND);
    g_clear_error(&err);
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web3"), ==, 2);
}

static void test_exhausted(Fixture *f, gconstpointer data)
{
    static const guint8 net30[4] = { 192, 168, 7, 4 };
    g_autoptr(GError) err = NULL;
    guint8 out[4];

    /* A /30 has two host addresses: .5 and .6 (not .4, not .7). */
    g_assert_cmpuint(assign(f->store, "tiny", net30, 30, "a"), ==, 5);
    g_assert_cmpuint(assign(f->store, "tiny", net30, 30, "b"), ==, 6);
    g_assert_false(tvd_net_address_assign(f->store, "tiny", net30, 30, "c", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_EXHAUSTED);
}

static void test_subnet_changed(Fixture *f, gconstpointer data)
{
    static const guint8 other[4] = { 10, 200, 0, 0 };
    g_autoptr(GError) err = NULL;
    guint8 out[4];

    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web1"), ==, 1);
    g_assert_cmpuint(assign(f->store, "blue", other, 24, "web1"), ==, 1);
    g_assert_true(tvd_net_address_lookup(f->store, "blue", "web1", out, &err));
    g_assert_cmpuint(out[1], ==, 200);
    /* The old address is free again, not left behind. */
    g_assert_cmpuint(assign(f->store, "blue", net24, 24, "web2"), ==, 1);
}

static void test_bad_input(Fixture *f, gconstpointer data)
{
    static const guint8 hostbits[4] = { 10, 100, 0, 1 };
    g_autoptr(GError) err = NULL;
    guint8 out[4];

    g_assert_false(tvd_net_address_assign(f->store, "blue", hostbits, 24, "a", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(tvd_net_address_assign(f->store, "blue", net24, 31, "a", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(tvd_net_address_assign(f->store, "blue", net24, 24, "a/../b", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(tvd_net_address_assign(f->store, "", net24, 24, "a", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_INVALID);
    g_clear_error(&err);

    /* A value that is not an address is an error, not an address. */
    g_assert_true(tvd_store_put_string(f->store, "/addresses/blue/vm/odd", "10.100.0.01",
                                       NULL, &err));
    g_assert_false(tvd_net_address_lookup(f->store, "blue", "odd", out, &err));
    g_assert_error(err, TVD_NET_ERROR, TVD_NET_ERROR_STORE);
}

typedef struct {
    const char *db;
    guint index;
    guint8 got[40][4];
} Racer;

static gpointer race(gpointer p)
{
    Racer *r = p;
    g_autoptr(GError) err = NULL;
    TvdStoreSqliteOptions opts = { .sync_normal = TRUE };
    g_autoptr(TvdStore) store = tvd_store_sqlite_open(r->db, &opts, &err);

    g_assert_no_error(err);
    for (guint i = 0; i < G_N_ELEMENTS(r->got); i++) {
        g_autofree char *vm = g_strdup_printf("vm-%u-%u", r->index, i);

        g_assert_true(tvd_net_address_assign(store, "blue", net24, 24, vm, r->got[i], &err));
        g_assert_no_error(err);
    }
    return NULL;
}

/* Two writers, each with its own store on one file: no address twice. */
static void test_concurrent(Fixture *f, gconstpointer data)
{
    Racer racers[2] = { { .db = f->db, .index = 0 }, { .db = f->db, .index = 1 } };
    g_autoptr(GHashTable) seen = g_hash_table_new(g_direct_hash, g_direct_equal);
    GThread *threads[2];

    for (guint t = 0; t < 2; t++) {
        threads[t] = g_thread_new("racer", race, &racers[t]);
    }
    for (guint t = 0; t < 2; t++) {
        g_thread_join(threads[t]);
    }
    for (guint t = 0; t < 2; t++) {
        for (guint i = 0; i < G_N_ELEMENTS(racers[t].got); i++) {
            guint last = racers[t].got[i][3];

            g_assert_false(g_hash_table_contains(seen, GUINT_TO_POINTER(last)));
            g_hash_table_add(seen, GUINT_TO_POINTER(last));
        }
    }
    g_assert_cmpuint(g_hash_table_size(seen), ==, 80);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/net/address/stable", Fixture, NULL, fixture_setup, test_stable,
               fixture_teardown);
    g_test_add("/net/address/exhausted", Fixture, NULL, fixture_setup, test_exhausted,
               fixture_teardown);
    g_test_add("/net/address/subnet-changed", Fixture, NULL, fixture_setup,
               test_subnet_changed, fixture_teardown);
    g_test_add("/net/address/bad-input", Fixture, NULL, fixture_setup, test_bad_input,
               fixture_teardown);
    g_test_add("/net/address/concurrent", Fixture, NULL, fixture_setup, test_concurrent,
               fixture_teardown);
    return g_test_run();
}
