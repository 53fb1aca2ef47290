/*
 * tvd-net: the link half of a reconcile (links.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_NET_LINKS_H
#define TVD_HOST_NET_LINKS_H

#include <netlink/netlink.h>

#include "net-private.h"

/* Phase 1: ports that must leave leave; bridges "tvdbr-*" of no domain go. */
gboolean tvd_net_links_release(struct nl_sock *sock, const TvdNetState *state,
                               gboolean dry_run, TvdNetDrift *drift, GError **error);
/* Phase 2: bridges exist, up, without addresses; attached members' taps join. */
gboolean tvd_net_links_attach(struct nl_sock *sock, const TvdNetState *state,
                              gboolean dry_run, TvdNetDrift *drift, GError **error);
/* One request: @tap is no bridge's port. */
gboolean tvd_net_links_detach(struct nl_sock *sock, const char *tap, GError **error);

#endif /* TVD_HOST_NET_LINKS_H */
