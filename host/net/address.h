/*
 * tvd-net: each member's address in its domain's subnet, kept in the store.
 *
 * Two keys per member, written in one transaction whose compares make a
 * collision impossible, even between supervisors sharing a store:
 *
 *     /addresses/<domain>/vm/<vm>    = "10.100.0.5"
 *     /addresses/<domain>/ip/<addr>  = "<vm>"
 *
 * An address stays with its VM across restarts and readmission until it is
 * released (the VM is deleted). The lowest free host address is given out
 * (the network and broadcast addresses never are). IPv4 only, like the
 * enforcer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_NET_ADDRESS_H
#define TVD_HOST_NET_ADDRESS_H

#include "net.h"
#include "store.h"

G_BEGIN_DECLS

#define TVD_NET_ADDRESS_PREFIX  "/addresses/"

/*
 * @vm's address in @domain (a domain name), assigned from @subnet/@prefix
 * (/8../30) if it has none, or none in that subnet any more. EXHAUSTED when
 * every host address is taken.
 */
gboolean tvd_net_address_assign(TvdStore *store, const char *domain,
                                const guint8 subnet[4], guint8 prefix,
                                const char *vm, guint8 out[4], GError **error);
/* @vm's assigned address; NOT_FOUND when it has none. */
gboolean tvd_net_address_lookup(TvdStore *store, const char *domain, const char *vm,
                                guint8 out[4], GError **error);
/* Gives @vm's address back. Not an error when it has none. */
gboolean tvd_net_address_release(TvdStore *store, const char *domain, const char *vm,
                                 GError **error);

G_END_DECLS

#endif /* TVD_HOST_NET_ADDRESS_H */
