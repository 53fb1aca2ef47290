/*
 * Domain policies in the store (host/supervisor/domains.c): policy,
 * signature and serial high-water mark kept together; no rollback to an
 * older signed policy, not through update, not by re-creating a domain
 * whose policy was lost, not by an old policy put back into the store;
 * a stored domain that does not load stops the load; policy files of
 * earlier versions are imported.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib/gstdio.h>
#include <string.h>

#include "domains.h"
#include "supervisor.h"

typedef struct {
    char *dir;
    char *key;
    char *trust;
    char *files;
    TvdStore *store;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *pub = NULL;
    g_autofree char *db = NULL;

    f->dir = g_dir_make_tmp("tvd-domains-XXXXXX", &err);
    g_assert_no_error(err);
    f->key = g_build_filename(f->dir, "admin.key", NULL);
    f->trust = g_build_filename(f->dir, "trusted", NULL);
    f->files = g_build_filename(f->dir, "domains", NULL);
    g_assert_cmpint(g_mkdir(f->trust, 0700), ==, 0);
    pub = g_build_filename(f->trust, "admin.pem", NULL);
    g_assert_true(tvd_policy_keygen(TVD_POLICY_KEY_ED25519, f->key, pub, NULL,
                                    &err));
    db = g_build_filename(f->dir, "store.db", NULL);
    f->store = tvd_store_sqlite_open(db, NULL, &err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

    tvd_store_unref(f->store);
    g_assert_cmpint(system(cmd), ==, 0);
    g_free(f->dir);
    g_free(f->key);
    g_free(f->trust);
    g_free(f->files);
}

static TvdDomains *domains_new(Fixture *f)
{
    return tvd_domains_new(f->files, f->trust, NULL, NULL, NULL);
}

/*
 * A signed policy of domain @name at @serial; @variant changes its text;
 * @n_refs reference digests with 4,000-byte paths make it large.
 */
static void signed_policy_refs(Fixture *f, const char *name, guint serial,
                               guint variant, guint n_refs, GBytes **policy,
                               GBytes **sig)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GString) refs = g_string_new(NULL);
    g_autofree char *long_name = g_strnfill(4000, 'x');
    char *text;
    char *s;

    for (guint i = 0; i < n_refs; i++) {
        g_string_append_printf(refs, "%s{\"path\": \"/%s%u\", \"sha256\": "
                               "\"%064u\"}", i ? ",\n" : "", long_name, i, i);
    }
    text = g_strdup_printf(
        "{\"tvd_policy\": 1, \"serial\": %u,\n"
        " \"domain\": {\"name\": \"%s\", \"id\": 7},\n"
        " \"membership\": {\"reference_digests\": [%s], \"unlisted\": \"allow\"},\n"
        " \"attestation\": {\"interval\": \"%us\", \"deadline\": \"60s\",\n"
        "   \"on_failure\": \"quarantine\"},\n"
        " \"network\": {\"subnet\": \"10.7.0.0/24\", \"roles\": [\"app\"],\n"
        "   \"default_role\": \"app\"}}\n", serial, name, refs->str,
        10 + variant);
    s = tvd_policy_sign(text, strlen(text), f->key, &err);
    g_assert_no_error(err);
    *policy = g_bytes_new_take(text, strlen(text));
    *sig = g_bytes_new_take(s, strlen(s));
}

static void signed_policy(Fixture *f, const char *name, guint serial,
                          guint variant, GBytes **policy, GBytes **sig)
{
    signed_policy_refs(f, name, serial, variant, 0, policy, sig);
}

static guint64 serial_of(TvdDomains *d, const char *name)
{
    TvdPolicy *p = tvd_domains_get(d, name);

    g_assert_nonnull(p);
    return tvd_policy_data(p)->serial;
}

static void create(TvdDomains *d, Fixture *f, const char *name, guint serial,
                   guint variant, GError **error)
{
    g_autoptr(GBytes) p = NULL;
    g_autoptr(GBytes) s = NULL;

    signed_policy(f, name, serial, variant, &p, &s);
    tvd_domains_create(d, p, s, NULL, error);
}

static void update(TvdDomains *d, Fixture *f, const char *name, guint serial,
                   guint variant, GError **error)
{
    g_autoptr(GBytes) p = NULL;
    g_autoptr(GBytes) s = NULL;

    signed_policy(f, name, serial, variant, &p, &s);
    tvd_domains_update(d, name, p, s, error);
}

static void test_kept_across_restart(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdDomains *d = domains_new(f);

    g_assert_true(tvd_domains_load(d, f->store, &err));
    create(d, f, "blue", 1, 0, &err);
    g_assert_no_error(err);
    update(d, f, "blue", 2, 0, &err);
    g_assert_no_error(err);
    tvd_domains_free(d);

    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(serial_of(d, "blue"), ==, 2);
    /* Nothing is written outside the store. */
    g_assert_false(g_file_test(f->files, G_FILE_TEST_EXISTS));
    tvd_domains_free(d);
}

static void test_no_rollback(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdDomains *d = domains_new(f);
    g_autoptr(TvdStoreEntry) old_policy = NULL;
    g_autoptr(TvdStoreEntry) old_sig = NULL;

    g_assert_true(tvd_domains_load(d, f->store, &err));
    create(d, f, "blue", 1, 0, &err);
    g_assert_no_error(err);
    old_policy = tvd_store_get(f->store, "/domains/blue/policy.0", &err);
    old_sig = tvd_store_get(f->store, "/domains/blue/signature", &err);
    g_assert_no_error(err);
    update(d, f, "blue", 5, 0, &err);
    g_assert_no_error(err);

    /* Through update: an older or equal serial. */
    update(d, f, "blue", 4, 0, &err);
    g_assert_error(err, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE);
    g_clear_error(&err);
    tvd_domains_free(d);

    /* The policy is lost (deleted from the store); the mark stays. */
    g_assert_true(tvd_store_delete(f->store, "/domains/blue/policy.0", NULL, &err));
    g_assert_true(tvd_store_delete(f->store, "/domains/blue/signature", NULL,
                                   &err));
    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_null(tvd_domains_get(d, "blue"));
    create(d, f, "blue", 3, 0, &err);
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "serial 5"));
    g_clear_error(&err);
    /* The same serial with other content is a fork, not the same policy. */
    create(d, f, "blue", 5, 1, &err);
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT);
    g_clear_error(&err);
    create(d, f, "blue", 6, 0, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(serial_of(d, "blue"), ==, 6);
    tvd_domains_free(d);

    /* An old signed policy put back into the store: the load fails. */
    g_assert_true(tvd_store_put(f->store, "/domains/blue/policy.0",
                                old_policy->value, NULL, &err));
    g_assert_true(tvd_store_put(f->store, "/domains/blue/signature",
                                old_sig->value, NULL, &err));
    d = domains_new(f);
    g_assert_false(tvd_domains_load(d, f->store, &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "domain blue"));
    g_clear_error(&err);
    tvd_domains_free(d);
}

/* A policy whose signature no longer verifies stops the load, named. */
static void test_bad_record_stops_load(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdDomains *d = domains_new(f);
    g_autoptr(GBytes) junk = g_bytes_new_static("{}", 2);

    g_assert_true(tvd_domains_load(d, f->store, &err));
    create(d, f, "red", 1, 0, &err);
    g_assert_no_error(err);
    tvd_domains_free(d);
    g_assert_true(tvd_store_put(f->store, "/domains/red/signature", junk, NULL,
                                &err));
    d = domains_new(f);
    g_assert_false(tvd_domains_load(d, f->store, &err));
    g_assert_nonnull(err);
    g_test_message("%s", err->message);
    g_assert_nonnull(strstr(err->message, "domain red"));
    tvd_domains_free(d);
}

/* A policy larger than one store value is kept in parts, and shrinks. */
static void test_large_policy(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) p = NULL;
    g_autoptr(GBytes) s = NULL;
    g_autoptr(GBytes) p2 = NULL;
    g_autoptr(GBytes) s2 = NULL;
    TvdDomains *d = domains_new(f);

    signed_policy_refs(f, "big", 1, 0, 700, &p, &s);
    g_assert_cmpuint(g_bytes_get_size(p), >, 2 * TVD_STORE_MAX_VALUE);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_true(tvd_domains_create(d, p, s, NULL, &err));
    g_assert_no_error(err);
    tvd_domains_free(d);

    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(tvd_policy_data(tvd_domains_get(d, "big"))->n_references,
                     ==, 700);
    signed_policy_refs(f, "big", 2, 0, 1, &p2, &s2);
    g_assert_true(tvd_domains_update(d, "big", p2, s2, &err));
    g_assert_no_error(err);
    tvd_domains_free(d);

    /* The parts of the larger policy are gone: it reloads as the small one. */
    g_assert_null(tvd_store_get(f->store, "/domains/big/policy.1", NULL));
    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(serial_of(d, "big"), ==, 2);
    tvd_domains_free(d);
}

static void test_files_imported(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) p = NULL;
    g_autoptr(GBytes) s = NULL;
    g_autofree char *pf = g_build_filename(f->files, "green.json", NULL);
    g_autofree char *sf = g_build_filename(f->files, "green.sig", NULL);
    g_autofree char *done = g_strconcat(pf, ".imported", NULL);
    TvdDomains *d;

    signed_policy(f, "green", 3, 0, &p, &s);
    g_assert_cmpint(g_mkdir(f->files, 0700), ==, 0);
    g_assert_true(g_file_set_contents(pf, g_bytes_get_data(p, NULL),
                                      g_bytes_get_size(p), &err));
    g_assert_true(g_file_set_contents(sf, g_bytes_get_data(s, NULL),
                                      g_bytes_get_size(s), &err));
    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(serial_of(d, "green"), ==, 3);
    g_assert_true(g_file_test(done, G_FILE_TEST_EXISTS));
    tvd_domains_free(d);

    d = domains_new(f);
    g_assert_true(tvd_domains_load(d, f->store, &err));
    g_assert_cmpuint(serial_of(d, "green"), ==, 3);
    tvd_domains_free(d);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) \
    g_test_add("/domains/" path, Fixture, NULL, fixture_setup, fn, \
               fixture_teardown)
    ADD("kept-across-restart", test_kept_across_restart);
    ADD("no-rollback", test_no_rollback);
    ADD("bad-record-stops-load", test_bad_record_stops_load);
    ADD("large-policy", test_large_policy);
    ADD("files-imported", test_files_imported);
    return g_test_run();
}
