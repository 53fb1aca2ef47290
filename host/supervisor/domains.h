/*
 * The domains this supervisor knows: signed policies, verified against the
 * administrators' keys the host trusts, kept in the store with a serial
 * high-water mark per domain that only grows (no rollback, even across a
 * lost policy or a restart).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_DOMAINS_H
#define TVD_SUPERVISOR_DOMAINS_H

#include <glib.h>
#include <json-glib/json-glib.h>

#include "policy.h"
#include "store.h"

G_BEGIN_DECLS

typedef struct TvdDomains TvdDomains;

/* Called after an update that changes what members must prove. */
typedef void (*TvdDomainChanged)(const char *name, void *opaque);
/* How many VMs a domain has (for the domain documents). */
typedef guint (*TvdDomainMembers)(const char *name, void *opaque);

/* @dir: policy files of earlier versions to import; @trust_dir: the
 * administrators' public keys. */
TvdDomains *tvd_domains_new(const char *dir, const char *trust_dir,
                            TvdDomainChanged changed, TvdDomainMembers members,
                            void *opaque);
void tvd_domains_free(TvdDomains *d);
/*
 * Loads the policies kept in @store (verifying each signature again, and
 * that none is older than its domain's serial high-water mark) and keeps
 * @store for later writes; policy files of earlier versions in the
 * directory are imported. Any stored domain that does not load fails it.
 */
gboolean tvd_domains_load(TvdDomains *d, TvdStore *store, GError **error);

/*
 * Verifies @sig over @policy with a trusted key, parses it, checks the name
 * and stores it. Create fails if the domain exists; update if it does not,
 * or if the update may not replace the current policy (serial, id).
 */
gboolean tvd_domains_create(TvdDomains *d, GBytes *policy, GBytes *sig,
                            char **name_out, GError **error);
gboolean tvd_domains_update(TvdDomains *d, const char *name, GBytes *policy,
                            GBytes *sig, GError **error);
TvdPolicy *tvd_domains_get(TvdDomains *d, const char *name);
/* JSON: one object per domain (docs/api.md: name, id, serial, members,
 * updated, policy_sha256, signer, attestation settings). */
void tvd_domains_list_json(TvdDomains *d, JsonBuilder *b);
gboolean tvd_domains_show_json(TvdDomains *d, const char *name,
                               JsonBuilder *b, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdDomains, tvd_domains_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_DOMAINS_H */
