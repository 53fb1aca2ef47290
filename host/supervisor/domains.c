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
} Domain;

struct TvdDomains {
    char *dir;
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

static gboolean store(TvdDomains *d, const char *name, GBytes *policy,
                      GBytes *sig, GError **error)
{
    g_autofree char *p = g_strdup_printf("%s/%s.json", d->dir, name);
    g_autofree char *s = g_strdup_printf("%s/%s.sig", d->dir, name);

    if (g_mkdir_with_parents(d->dir, 0700) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create %s: %s", d->dir, g_strerror(errno));
        return FALSE;
    }
    /* Signature first: a policy file never stands without its signature. */
    return g_file_set_contents_full(s, g_bytes_get_data(sig, NULL),
                                    g_bytes_get_size(sig),
                                    G_FILE_SET_CONTENTS_CONSISTENT |
                                    G_FILE_SET_CONTENTS_DURABLE, 0600,
                                    error) &&
           g_file_set_contents_full(p, g_bytes_get_data(policy, NULL),
                                    g_bytes_get_size(policy),
                                    G_FILE_SET_CONTENTS_CONSISTENT |
                                    G_FILE_SET_CONTENTS_DURABLE, 0600, error);
}

static void install(TvdDomains *d, TvdPolicy *policy, char *signer,
                    gint64 updated_us)
{
    Domain *dom = g_new0(Domain, 1);

    dom->policy = policy;
    dom->signer = signer;
    dom->updated_us = updated_us;
    g_hash_table_replace(d->by_name,
                         g_strdup(tvd_policy_data(policy)->name), dom);
}

gboolean tvd_domains_create(TvdDomains *d, GBytes *policy, GBytes *sig,
                            char **name_out, GError **error)
{
    g_autofree char *signer = NULL;
    g_autoptr(TvdPolicy) p = verify_and_parse(d, policy, sig, &signer, error);
    const char *name;

    if (!p) {
        return FALSE;
    }
    name = tvd_policy_data(p)->name;
    if (g_hash_table_contains(d->by_name, name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "domain %s exists: use update", name);
        return FALSE;
    }
    if (!store(d, name, policy, sig, error)) {
        return FALSE;
    }
    g_message("domain %s (id %u) created, signed by %s", name,
              tvd_policy_data(p)->id, signer);
    if (name_out) {
        *name_out = g_strdup(name);
    }
    install(d, g_steal_pointer(&p), g_steal_pointer(&signer),
            g_get_real_time());
    return TRUE;
}

gboolean tvd_domains_update(TvdDomains *d, const char *name, GBytes *policy,
                            GBytes *sig, GError **error)
{
    Domain *old = g_hash_table_lookup(d->by_name, name);
    g_autofree char *signer = NULL;
    g_autoptr(TvdPolicy) p = NULL;
    gboolean changed;

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
        !store(d, name, policy, sig, error)) {
        return FALSE;
    }
    changed = tvd_policy_membership_changed(old->policy, p);
    g_message("domain %s updated to serial %" G_GUINT64_FORMAT ", signed by "
              "%s%s", name, tvd_policy_data(p)->serial, signer,
              changed ? ": members are re-evaluated" : "");
    install(d, g_steal_pointer(&p), g_steal_pointer(&signer),
            g_get_real_time());
    if (changed && d->changed) {
        d->changed(name, d->opaque);
    }
    return TRUE;
}

gboolean tvd_domains_load(TvdDomains *d, GError **error)
{
    g_autoptr(GDir) dir = g_dir_open(d->dir, 0, NULL);
    const char *entry;

    while (dir && (entry = g_dir_read_name(dir))) {
        g_autofree char *p = NULL;
        g_autofree char *s = NULL;
        g_autofree char *signer = NULL;
        g_autoptr(GMappedFile) pf = NULL;
        g_autoptr(GMappedFile) sf = NULL;
        g_autoptr(GBytes) pb = NULL;
        g_autoptr(GBytes) sb = NULL;
        g_autoptr(GError) err = NULL;
        TvdPolicy *policy;

        if (!g_str_has_suffix(entry, ".json")) {
            continue;
        }
        p = g_build_filename(d->dir, entry, NULL);
        s = g_strdup_printf("%.*s.sig", (int)(strlen(p) - 5), p);
        pf = g_mapped_file_new(p, FALSE, &err);
        sf = pf ? g_mapped_file_new(s, FALSE, &err) : NULL;
        if (!sf) {
            g_warning("skipping the stored policy %s: %s", p, err->message);
            continue;
        }
        pb = g_mapped_file_get_bytes(pf);
        sb = g_mapped_file_get_bytes(sf);
        /* Verified again: the state directory is not a trust anchor. */
        policy = verify_and_parse(d, pb, sb, &signer, &err);
        if (!policy) {
            g_warning("skipping the stored policy %s: %s", p, err->message);
            continue;
        }
        {
            GStatBuf st;

            install(d, policy, g_steal_pointer(&signer),
                    g_stat(p, &st) == 0 ? (gint64)st.st_mtime * G_USEC_PER_SEC
                                        : g_get_real_time());
        }
    }
    return TRUE;
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
