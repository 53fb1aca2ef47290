/*
 * tvd-supervisor core: see supervisor.h; supervisor-private.h lists its
 * parts. This one starts the supervisor (directories, vTPM CA, domains,
 * store and audit log, the VMs of an earlier run, the adoption socket),
 * relays domain changes to their members, and shuts down.
 *
 * Each VM the supervisor launches gets its own listening socket; the VM's
 * tvd device connects to it (reconnecting by itself), so a connection on
 * that socket is that VM's by construction. VMs started by others connect
 * to the shared adoption socket and are identified by their device hello
 * and the peer's credentials.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include "vtpm.h"

/* A domain's requirements changed: every member proves itself again. */
static void on_domain_changed(const char *name, void *opaque)
{
    TvdSupervisor *sup = opaque;
    GHashTableIter it;
    TvdVm *vm;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        if (!g_strcmp0(vm->domain, name)) {
            tvd_admission_reattest(vm->adm);
        }
    }
}

static guint count_members(const char *name, void *opaque)
{
    TvdSupervisor *sup = opaque;
    GHashTableIter it;
    TvdVm *vm;
    guint n = 0;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        n += !g_strcmp0(vm->domain, name);
    }
    return n;
}

gboolean tvd_supervisor_domain_create(TvdSupervisor *sup, GBytes *policy,
                                      GBytes *sig, char **name,
                                      GError **error)
{
    g_autofree char *created = NULL;

    if (!tvd_domains_create(sup->domains, policy, sig, &created, error)) {
        return FALSE;
    }
    tvd_supervisor_audit_event(sup, "operator", NULL, created, "domain-create",
                               tvd_policy_get_digest_string(
                                   tvd_domains_get(sup->domains, created)),
                               NULL);
    if (name) {
        *name = g_steal_pointer(&created);
    }
    return TRUE;
}

gboolean tvd_supervisor_domain_update(TvdSupervisor *sup, const char *name,
                                      GBytes *policy, GBytes *sig,
                                      GError **error)
{
    if (!tvd_domains_update(sup->domains, name, policy, sig, error)) {
        return FALSE;
    }
    tvd_supervisor_audit_event(sup, "operator", NULL, name, "domain-update",
                               tvd_policy_get_digest_string(
                                   tvd_domains_get(sup->domains, name)),
                               NULL);
    return TRUE;
}

TvdAuditLog *tvd_supervisor_audit(TvdSupervisor *sup)
{
    return sup->audit;
}

TvdDomains *tvd_supervisor_domains(TvdSupervisor *sup)
{
    return sup->domains;
}

/* ---- the supervisor ------------------------------------------------------- */

TvdSupervisor *tvd_supervisor_new(TvdSupervisorConfig *cfg)
{
    TvdSupervisor *sup = g_new0(TvdSupervisor, 1);

    g_autofree char *domains = g_build_filename(cfg->state_dir, "domains",
                                                NULL);

    sup->cfg = cfg;
    sup->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                     (GDestroyNotify)tvd_vm_free);
    sup->domains = tvd_domains_new(domains, cfg->trusted_keys_dir,
                                   on_domain_changed, count_members, sup);
    /* Enough outstanding nonces for every VM twice; each lives a deadline. */
    sup->shared.nonces = tvd_nonce_store_new(16384,
                                             (gint64)cfg->deadline_s * 2 *
                                             G_USEC_PER_SEC + 60 * G_USEC_PER_SEC);
    sup->shared.default_interval_ms = cfg->interval_s * 1000;
    tvd_metrics_init(sup);
    sup->shared.default_deadline_ms = cfg->deadline_s * 1000;
    return sup;
}

const TvdSupervisorConfig *tvd_supervisor_config(TvdSupervisor *sup)
{
    return sup->cfg;
}

static gboolean make_dir(const char *path, int mode, GError **error)
{
    if (g_mkdir_with_parents(path, mode) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create %s: %s", path, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_supervisor_start(TvdSupervisor *sup, GError **error)
{
    g_autofree char *vms = g_build_filename(sup->cfg->state_dir, "vms", NULL);

    if (!make_dir(sup->cfg->state_dir, 0700, error) ||
        !make_dir(sup->cfg->run_dir, 0700, error) ||
        !make_dir(vms, 0700, error)) {
        return FALSE;
    }
    sup->ca_root = tvd_vtpm_ca_ensure(sup->cfg, error);
    if (!sup->ca_root) {
        return FALSE;
    }
    {
        /*
         * swtpm_localca signs EK certificates with its intermediate
         * (issuercert.pem), not with the root: the verifier needs both to
         * build the chain (each is a trust anchor, see tvd_ek_cert_verify).
         */
        g_autofree char *ca_dir = g_path_get_dirname(sup->ca_root);
        g_autofree char *issuer = g_build_filename(ca_dir, "issuercert.pem",
                                                   NULL);
        g_autofree char *pem = NULL;
        g_autofree char *issuer_pem = NULL;
        char *both;

        if (!g_file_get_contents(sup->ca_root, &pem, NULL, error) ||
            !g_file_get_contents(issuer, &issuer_pem, NULL, error)) {
            return FALSE;
        }
        both = g_strconcat(pem, "\n", issuer_pem, NULL);
        sup->shared.ca_pem = g_bytes_new_take(both, strlen(both));
    }
    {
        g_autofree char *db = g_build_filename(sup->cfg->state_dir,
                                               "store.db", NULL);
        g_autofree char *log = g_build_filename(sup->cfg->state_dir,
                                                "audit.db", NULL);

        sup->store = tvd_store_sqlite_open(db, NULL, error);
        if (!sup->store) {
            return FALSE;
        }
        sup->audit = tvd_audit_open(log, sup->store, NULL, error);
        if (!sup->audit) {
            return FALSE;
        }
    }
    if (!tvd_domains_load(sup->domains, sup->store, error)) {
        return FALSE;
    }
    if (!tvd_vm_restore_all(sup, error)) {
        return FALSE;
    }
    tvd_supervisor_audit_event(sup, "supervisor", NULL, NULL, "start", NULL,
                               NULL);
    return tvd_adoption_start(sup, error);
}

void tvd_supervisor_free(TvdSupervisor *sup)
{
    if (!sup) {
        return;
    }
    tvd_adoption_stop(sup);
    g_hash_table_destroy(sup->vms);
    g_clear_pointer(&sup->audit, tvd_audit_close);
    g_clear_pointer(&sup->store, tvd_store_unref);
    tvd_domains_free(sup->domains);
    tvd_nonce_store_free(sup->shared.nonces);
    g_clear_pointer(&sup->shared.ca_pem, g_bytes_unref);
    g_free(sup->ca_root);
    tvd_config_free(sup->cfg);
    g_free(sup);
}
