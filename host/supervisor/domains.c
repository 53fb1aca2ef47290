/*
 * Domain policies: see domains.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-domains"

#include "domains.h"

#include <glib/gstdio.h>

#include "supervisor.h"

typedef struct {
    TvdPolicy *policy;
    char *signer;
    gint64 updated_us;          /* wall clock of the policy's arrival */
    gint64 rev;                 /* store revision of its policy key */
} Domain;

struct TvdDomains {
    TvdStore *store;                /* the policies; set by load */
    char *dir;                      /* policies of versions before the store */
    char *trust_dir;
    GHashTable *by_name;            /* name -> Domain */
    TvdDomainChanged changed;
    TvdDomainMembers members;
    void *opaque;
};

static void domain_free(Domain *dom)
{
    tvd_policy_unref(dom->policy);
    g_free(dom->signer);
    g_free(dom);
}

TvdDomains *tvd_domains_new(const char *dir, const char *trust_dir,
                            TvdDomainChanged changed, TvdDomainMembers members,
                            void *opaque)
{
    TvdDomains *d = g_new0(TvdDomains, 1);

    d->dir = g_strdup(dir);
    d->trust_dir = g_strdup(trust_dir);
    d->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)domain_free);
    d->changed = changed;
    d->members = members;
    d->opaque = opaque;
    return d;
}

void tvd_domains_free(TvdDomains *d)
{
    if (!d) {
        return;
    }
    g_hash_table_destroy(d->by_name);
    g_clear_pointer(&d->store, tvd_store_unref);
    g_free(d->dir);
    g_free(d->trust_dir);
    g_free(d);
}

/* Signature, then parse: nothing unsigned is ever parsed. */
static TvdPolicy *verify_and_parse(TvdDomains *d, GBytes *policy, GBytes *sig,
                                   char **signer, GError **error)
{
    g_autoptr(TvdPolicyTrustStore) trust = NULL;
    g_auto(TvdPolicyErrorLocation) loc = { 0 };

    if (!g_file_test(d->trust_dir, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "no administrator keys are trusted: put their public keys "
                    "(PEM) in %s", d->trust_dir);
        return NULL;
    }
    trust = tvd_policy_trust_store_load(d->trust_dir, error);
    if (!trust) {
        return NULL;
    }
    if (!tvd_policy_trust_store_verify(trust, g_bytes_get_data(policy, NULL),
                                       g_bytes_get_size(policy),
                                       g_bytes_get_data(sig, NULL),
                                       g_bytes_get_size(sig), signer, error)) {
        return NULL;
    }
    return tvd_policy_parse_bytes(policy, "policy", &loc, error);
}

/*
 * Where a domain lives in the store: its signed policy and signature, and
 * the serial high-water mark, which is never deleted: a domain that was at
 * serial N never comes back with less, even after its policy is lost.
 */
#define DOMAIN_PREFIX   "/domains/"
#define SERIAL_PREFIX   "/domain-serials/"

/*
 * A policy may be larger than one store value (TVD_POLICY_MAX_BYTES, 8 MiB,
 * against TVD_STORE_MAX_VALUE, 1 MiB, as in etcd): it is kept in parts
 * /domains/<name>/policy.0, .1, ... written in one transaction.
 */
#define POLICY_PARTS_MAX \
    ((TVD_POLICY_MAX_BYTES + TVD_STORE_MAX_VALUE - 1) / TVD_STORE_MAX_VALUE)

static char *policy_key(const char *name, guint part)
{
    return g_strdup_printf(DOMAIN_PREFIX "%s/policy.%u", name, part);
}

static char *sig_key(const char *name)
{
    return g_strconcat(DOMAIN_PREFIX, name, "/signature", NULL);
}

static char *serial_key(const char *name)
{
    return g_strconcat(SERIAL_PREFIX, name, NULL);
}

/*
 * The high-water mark: "<serial> <policy digest> <arrival, µs since the
 * epoch>" of the newest policy the domain had; FALSE if none.
 */
static gboolean read_mark(TvdDomains *d, const char *name, guint64 *serial,
                          char **digest, gint64 *updated_us, GError **error)
{
    g_autofree char *key = serial_key(name);
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdStoreEntry) e = tvd_store_get(d->store, key, &err);
    g_autofree char *text = NULL;
    g_auto(GStrv) parts = NULL;

    if (!e) {
        if (g_error_matches(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND)) {
            return FALSE;
        }
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    text = g_strndup(g_bytes_get_data(e->value, NULL),
                     g_bytes_get_size(e->value));
    parts = g_strsplit(text, " ", 3);
    if (!parts[0] || !parts[1] || !parts[2] ||
        !g_ascii_string_to_unsigned(parts[0], 10, 0, G_MAXUINT64, serial,
                                    NULL) ||
        !g_ascii_string_to_signed(parts[2], 10, 0, G_MAXINT64, updated_us,
                                  NULL)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_FAILED,
                    "%s: malformed serial mark in the store", key);
        return FALSE;
    }
    *digest = g_strdup(parts[1]);
    return TRUE;
}

/*
 * No rollback: @policy may stand for domain @name only with a serial above
 * the high-water mark, or at it with the very same policy.
 */
static gboolean check_mark(TvdDomains *d, TvdPolicy *policy, GError **error)
{
    const TvdPolicyData *pd = tvd_policy_data(policy);
    g_autofree char *digest = NULL;
    g_autoptr(GError) err = NULL;
    guint64 mark = 0;
    gint64 updated_us = 0;

    if (!read_mark(d, pd->name, &mark, &digest, &updated_us, &err)) {
        if (err) {
            g_propagate_error(error, g_steal_pointer(&err));
            return FALSE;
        }
        return TRUE;
    }
    if (pd->serial > mark ||
        (pd->serial == mark &&
         !g_strcmp0(digest, tvd_policy_get_digest_string(policy)))) {
        return TRUE;
    }
    g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                "domain %s has been at serial %" G_GUINT64_FORMAT ": a policy "
                "with serial %" G_GUINT64_FORMAT " would roll it back (sign "
                "it with a serial above %" G_GUINT64_FORMAT ")", pd->name,
                mark, pd->serial, mark);
    return FALSE;
}

/*
 * Policy, signature and mark in one transaction: a crash leaves the old
 * pair or the new one, never a policy without its signature. @expected_rev
 * is the policy key's revision the caller saw (0: it must not exist).
 */
static gboolean store(TvdDomains *d, TvdPolicy *parsed, GBytes *policy,
                      GBytes *sig, gint64 expected_rev, gint64 *out_rev,
                      GError **error)
{
    const TvdPolicyData *pd = tvd_policy_data(parsed);
    g_autofree char *pk = policy_key(pd->name, 0);
    g_autofree char *sk = sig_key(pd->name);
    g_autofree char *mk = serial_key(pd->name);
    gsize size = g_bytes_get_size(policy);
    g_autofree char *mark = g_strdup_printf("%" G_GUINT64_FORMAT " %s %" G_GINT64_FORMAT,
                                            pd->serial,
                                            tvd_policy_get_digest_string(parsed),
                                            g_get_real_time());
    g_autoptr(GBytes) mb = g_bytes_new(mark, strlen(mark));
    g_autoptr(TvdStoreTxn) txn = tvd_store_txn_new();

    if (!check_mark(d, parsed, error)) {
        return FALSE;
    }
    tvd_store_txn_compare(txn, pk, expected_rev);
    for (guint part = 0; part < POLICY_PARTS_MAX; part++) {
        g_autofree char *key = policy_key(pd->name, part);
        gsize off = (gsize)part * TVD_STORE_MAX_VALUE;

        if (off < size || part == 0) {
            g_autoptr(GBytes) chunk = g_bytes_new_from_bytes(
                policy, off, MIN(size - off, TVD_STORE_MAX_VALUE));

            tvd_store_txn_put(txn, key, chunk);
        } else {
            tvd_store_txn_delete(txn, key);     /* of a larger policy */
        }
    }
    tvd_store_txn_put(txn, sk, sig);
    tvd_store_txn_put(txn, mk, mb);
    if (!tvd_store_txn_commit(d->store, txn, out_rev, error)) {
        g_prefix_error(error, "cannot store the policy of domain %s: ",
                       pd->name);
        return FALSE;
    }
    return TRUE;
}

static void install(TvdDomains *d, TvdPolicy *policy, char *signer,
                    gint64 updated_us, gint64 rev)
{
    Domain *dom = g_new0(Domain, 1);

    dom->policy = policy;
    dom->signer = signer;
    dom->updated_us = updated_us;
    dom->rev = rev;
    g_hash_table_replace(d->by_name,
                         g_strdup(tvd_policy_data(policy)->name), dom);
}

gboolean tvd_domains_create(TvdDomains *d, GBytes *policy, GBytes *sig,
                            char **name_out, GError **error)
{
    g_autofree char *signer = NULL;
    g_autoptr(TvdPolicy) p = verify_and_parse(d, policy, sig, &signer, error);
    const char *name;
    gint64 rev = 0;

    if (!p) {
        return FALSE;
    }
    name = tvd_policy_data(p)->name;
    if (g_hash_table_contains(d->by_name, name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "domain %s exists: use update", name);
        return FALSE;
    }
    if (!store(d, p, policy, sig, 0, &rev, error)) {
        return FALSE;
    }
    g_message("domain %s (id %u) created, signed by %s", name,
              tvd_policy_data(p)->id, signer);
    if (name_out) {
        *name_out = g_strdup(name);
    }
    install(d, g_steal_pointer(&p), g_steal_pointer(&signer),
            g_get_real_time(), rev);
    return TRUE;
}

gboolean tvd_domains_update(TvdDomains *d, const char *name, GBytes *policy,
                            GBytes *sig, GError **error)
{
    Domain *old = g_hash_table_lookup(d->by_name, name);
    g_autofree char *signer = NULL;
    g_autoptr(TvdPolicy) p = NULL;
    gboolean changed;
    gint64 rev = 0;

    if (!old) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_NOT_FOUND,
                    "no domain named %s", name);
        return FALSE;
    }
    p = verify_and_parse(d, policy, sig, &signer, error);
    if (!p) {
        return FALSE;
    }
    if (g_strcmp0(tvd_policy_data(p)->name, name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "the policy is for domain %s, not %s",
                    tvd_policy_data(p)->name, name);
        return FALSE;
    }
    if (!tvd_policy_check_update(old->policy, p, error) ||
        !store(d, p, policy, sig, old->rev, &rev, error)) {
        return FALSE;
    }
    changed = tvd_policy_membership_changed(old->policy, p);
    g_message("domain %s updated to serial %" G_GUINT64_FORMAT ", signed by "
              "%s%s", name, tvd_policy_data(p)->serial, signer,
              changed ? ": members are re-evaluated" : "");
    install(d, g_steal_pointer(&p), g_steal_pointer(&signer),
            g_get_real_time(), rev);
    if (changed && d->changed) {
        d->changed(name, d->opaque);
    }
    return TRUE;
}

/*
 * One domain from its store keys. Anything wrong stops the start: a domain
 * silently dropped would leave its members judged by no policy.
 */
static gboolean load_one(TvdDomains *d, const char *name, GError **error)
{
    g_autofree char *sk = sig_key(name);
    g_autoptr(TvdStoreEntry) se = tvd_store_get(d->store, sk, error);
    g_autoptr(GByteArray) text = g_byte_array_new();
    gint64 rev = 0;
    g_autofree char *signer = NULL;
    g_autofree char *digest = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    guint64 serial = 0;
    gint64 updated_us = 0;

    if (!se) {
        g_prefix_error(error, "domain %s: ", name);
        return FALSE;
    }
    for (guint part = 0; part < POLICY_PARTS_MAX; part++) {
        g_autofree char *key = policy_key(name, part);
        g_autoptr(GError) err = NULL;
        g_autoptr(TvdStoreEntry) pe = tvd_store_get(d->store, key, &err);

        if (!pe) {
            if (part > 0 &&
                g_error_matches(err, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND)) {
                break;
            }
            g_propagate_prefixed_error(error, g_steal_pointer(&err),
                                       "domain %s: ", name);
            return FALSE;
        }
        if (part == 0) {
            rev = pe->mod_revision;
        }
        g_byte_array_append(text, g_bytes_get_data(pe->value, NULL),
                            g_bytes_get_size(pe->value));
    }
    /* Verified again: the state directory is not a trust anchor. */
    {
        g_autoptr(GBytes) pb = g_byte_array_free_to_bytes(g_steal_pointer(&text));

        policy = verify_and_parse(d, pb, se->value, &signer, error);
    }
    if (!policy) {
        g_prefix_error(error, "the stored policy of domain %s: ", name);
        return FALSE;
    }
    if (g_strcmp0(tvd_policy_data(policy)->name, name) ||
        !check_mark(d, policy, error)) {
        if (error && !*error) {
            g_set_error(error, TVD_SUPERVISOR_ERROR,
                        TVD_SUPERVISOR_ERROR_FAILED, "the stored policy of "
                        "domain %s is for domain %s", name,
                        tvd_policy_data(policy)->name);
        } else {
            g_prefix_error(error, "the stored policy of domain %s: ", name);
        }
        return FALSE;
    }
    /* check_mark passed: the mark exists unless the store lost it. */
    if (!read_mark(d, name, &serial, &digest, &updated_us, error)) {
        if (error && !*error) {
            g_set_error(error, TVD_SUPERVISOR_ERROR,
                        TVD_SUPERVISOR_ERROR_FAILED, "domain %s has no "
                        "serial mark in the store", name);
        }
        return FALSE;
    }
    install(d, g_steal_pointer(&policy), g_steal_pointer(&signer),
            updated_us, rev);
    return TRUE;
}

/*
 * Policies kept as files by earlier versions (<name>.json + <name>.sig)
 * move into the store once; the files are renamed *.imported.
 */
static gboolean import_files(TvdDomains *d, GError **error)
{
    g_autoptr(GDir) dir = g_dir_open(d->dir, 0, NULL);
    const char *entry;

    while (dir && (entry = g_dir_read_name(dir))) {
        g_autofree char *p = NULL;
        g_autofree char *s = NULL;
        g_autofree char *signer = NULL;
        g_autofree char *done = NULL;
        g_autoptr(GMappedFile) pf = NULL;
        g_autoptr(GMappedFile) sf = NULL;
        g_autoptr(GBytes) pb = NULL;
        g_autoptr(GBytes) sb = NULL;
        g_autoptr(TvdPolicy) policy = NULL;
        const char *name;
        gint64 rev = 0;

        if (!g_str_has_suffix(entry, ".json")) {
            continue;
        }
        p = g_build_filename(d->dir, entry, NULL);
        s = g_strdup_printf("%.*s.sig", (int)(strlen(p) - 5), p);
        pf = g_mapped_file_new(p, FALSE, error);
        sf = pf ? g_mapped_file_new(s, FALSE, error) : NULL;
        if (!sf) {
            g_prefix_error(error, "importing %s: ", p);
            return FALSE;
        }
        pb = g_mapped_file_get_bytes(pf);
        sb = g_mapped_file_get_bytes(sf);
        policy = verify_and_parse(d, pb, sb, &signer, error);
        if (!policy) {
            g_prefix_error(error, "importing %s: ", p);
            return FALSE;
        }
        name = tvd_policy_data(policy)->name;
        if (g_hash_table_contains(d->by_name, name)) {
            g_warning("%s: domain %s is in the store already: file ignored",
                      p, name);
            continue;
        }
        if (!store(d, policy, pb, sb, 0, &rev, error)) {
            return FALSE;
        }
        g_message("domain %s imported from %s into the store", name, p);
        install(d, g_steal_pointer(&policy), g_steal_pointer(&signer),
                g_get_real_time(), rev);
        done = g_strconcat(p, ".imported", NULL);
        if (g_rename(p, done) != 0) {
            g_warning("cannot rename %s: %s", p, g_strerror(errno));
        }
    }
    return TRUE;
}

gboolean tvd_domains_load(TvdDomains *d, TvdStore *store, GError **error)
{
    g_autoptr(GPtrArray) keys = NULL;

    g_return_val_if_fail(!d->store, FALSE);
    d->store = tvd_store_ref(store);
    keys = tvd_store_list(d->store, DOMAIN_PREFIX, NULL, error);
    if (!keys) {
        return FALSE;
    }
    for (guint i = 0; i < keys->len; i++) {
        TvdStoreEntry *e = keys->pdata[i];
        const char *rest = e->key + strlen(DOMAIN_PREFIX);
        const char *slash = strchr(rest, '/');
        g_autofree char *name = NULL;

        if (!slash || strcmp(slash, "/policy.0") != 0) {
            continue;
        }
        name = g_strndup(rest, (gsize)(slash - rest));
        if (!load_one(d, name, error)) {
            return FALSE;
        }
    }
    return import_files(d, error);
}

TvdPolicy *tvd_domains_get(TvdDomains *d, const char *name)
{
    Domain *dom = name ? g_hash_table_lookup(d->by_name, name) : NULL;

    return dom ? dom->policy : NULL;
}

static void domain_json(TvdDomains *d, Domain *dom, JsonBuilder *b)
{
    const TvdPolicyData *pd = tvd_policy_data(dom->policy);
    g_autoptr(GDateTime) t = g_date_time_new_from_unix_utc(
        dom->updated_us / G_USEC_PER_SEC);
    g_autofree char *updated = t ? g_date_time_format_iso8601(t) : NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, pd->name);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, pd->id);
    json_builder_set_member_name(b, "serial");
    json_builder_add_int_value(b, (gint64)pd->serial);
    json_builder_set_member_name(b, "members");
    json_builder_add_int_value(b, d->members ? d->members(pd->name, d->opaque)
                                             : 0);
    json_builder_set_member_name(b, "updated");
    json_builder_add_string_value(b, updated ? updated : "");
    json_builder_set_member_name(b, "policy_sha256");
    json_builder_add_string_value(b,
                                  tvd_policy_get_digest_string(dom->policy));
    json_builder_set_member_name(b, "signer");
    json_builder_add_string_value(b, dom->signer ? dom->signer : "");
    json_builder_set_member_name(b, "interval_ms");
    json_builder_add_int_value(b, pd->interval_ms);
    json_builder_set_member_name(b, "deadline_ms");
    json_builder_add_int_value(b, pd->deadline_ms);
    json_builder_set_member_name(b, "on_failure");
    json_builder_add_string_value(b,
                                  tvd_policy_on_failure_name(pd->on_failure));
    json_builder_end_object(b);
}

static gint name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tvd_domains_list_json(TvdDomains *d, JsonBuilder *b)
{
    g_autofree gpointer *names = NULL;
    guint n;

    names = g_hash_table_get_keys_as_array(d->by_name, &n);
    qsort(names, n, sizeof(*names), name_cmp);
    json_builder_begin_array(b);
    for (guint i = 0; i < n; i++) {
        domain_json(d, g_hash_table_lookup(d->by_name, names[i]), b);
    }
    json_builder_end_array(b);
}

gboolean tvd_domains_show_json(TvdDomains *d, const char *name,
                               JsonBuilder *b, GError **error)
{
    Domain *dom = g_hash_table_lookup(d->by_name, name);

    if (!dom) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_NOT_FOUND,
                    "no domain named %s", name);
        return FALSE;
    }
    domain_json(d, dom, b);
    return TRUE;
}
