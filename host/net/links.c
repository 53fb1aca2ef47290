/*
 * tvd-net: the links (libnl-route-3): a bridge "tvdbr-<id>" per domain, up and
 * without addresses, and each member's tap a port of it exactly while the
 * member is attached. Two phases around the rules (enforcer.c): first every
 * port that must leave leaves and stale bridges go, then bridges are made and
 * ports join, so a port is never on a bridge without its rules.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <net/if.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet6.h>
#include <string.h>

#include "links.h"

static gboolean nl_failed(int rc, GError **error, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static gboolean nl_failed(int rc, GError **error, const char *fmt, ...)
{
    g_autofree char *what = NULL;
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NETLINK, "%s: %s", what,
                nl_geterror(rc));
    return FALSE;
}

/* The desired domain whose bridge is @name, or NULL. */
static const TvdNetDomain *bridge_domain(const TvdNetState *state, const char *name)
{
    guint32 id = tvd_net_bridge_id(name);

    return id ? g_hash_table_lookup(state->ids, GUINT_TO_POINTER(id)) : NULL;
}

static const TvdNetMemberPriv *find_member(const TvdNetDomain *domain, const char *tap)
{
    for (guint i = 0; i < domain->members->len; i++) {
        const TvdNetMemberPriv *m = &g_array_index(domain->members, TvdNetMemberPriv, i);

        if (!strcmp(m->tap, tap)) {
            return m;
        }
    }
    return NULL;
}

/*
 * One RTM_NEWLINK: no master (the kernel drops the port and its FDB entries)
 * and down. A tap that is down passes nothing either way, so a member off its
 * bridge cannot reach the host's own stack through it (ARP for the host's
 * addresses, IPv6 link-local) either.
 */
static int cut(struct nl_sock *sock, struct rtnl_link *link, struct rtnl_link *change)
{
    rtnl_link_set_master(change, 0);
    rtnl_link_unset_flags(change, IFF_UP);
    return rtnl_link_change(sock, link, change, 0);
}

static gboolean set_down(struct nl_sock *sock, struct rtnl_link *link, GError **error)
{
    struct rtnl_link *change = rtnl_link_alloc();
    int rc;

    rtnl_link_unset_flags(change, IFF_UP);
    rc = rtnl_link_change(sock, link, change, 0);
    rtnl_link_put(change);
    return rc < 0 ? nl_failed(rc, error, "bringing %s down", rtnl_link_get_name(link)) : TRUE;
}

static gboolean load_links(struct nl_sock *sock, struct nl_cache **cache, GError **error)
{
    int rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, cache);

    return rc < 0 ? nl_failed(rc, error, "listing links") : TRUE;
}

gboolean tvd_net_links_release(struct nl_sock *sock, const TvdNetState *state,
                               gboolean dry_run, TvdNetDrift *drift, GError **error)
{
    struct nl_cache *cache = NULL;
    gboolean ok = TRUE;

    if (!load_links(sock, &cache, error)) {
        return FALSE;
    }
    for (struct nl_object *o = nl_cache_get_first(cache); o && ok; o = nl_cache_get_next(o)) {
        struct rtnl_link *link = (struct rtnl_link *)o;
        const char *name = rtnl_link_get_name(link);
        int master = rtnl_link_get_master(link);
        struct rtnl_link *bridge;
        const TvdNetDomain *domain;
        const TvdNetDomain *own;
        const TvdNetMemberPriv *member;
        int rc;

        /* A bridge of ours no domain wants (or a non-bridge squatting on the name). */
        if (g_str_has_prefix(name, TVD_NET_BRIDGE_PREFIX)) {
            domain = bridge_domain(state, name);
            if (!domain || g_strcmp0(rtnl_link_get_type(link), "bridge")) {
                drift->bridges_deleted++;
                if (!dry_run && (rc = rtnl_link_delete(sock, link)) < 0) {
                    ok = nl_failed(rc, error, "deleting %s", name);
                }
            }
            continue;
        }
        if (master <= 0) {
            /* A detached member's tap off every bridge, but up: down it goes. */
            own = g_hash_table_lookup(state->taps, name);
            member = own ? find_member(own, name) : NULL;
            if (member && !member->attached && (rtnl_link_get_flags(link) & IFF_UP)) {
                drift->ports_detached++;
                ok = dry_run || set_down(sock, link, error);
            }
            continue;
        }
        bridge = rtnl_link_get(cache, master);
        domain = bridge ? bridge_domain(state, rtnl_link_get_name(bridge)) : NULL;
        own = g_hash_table_lookup(state->taps, name);
        member = own ? find_member(own, name) : NULL;
        if (bridge && g_str_has_prefix(rtnl_link_get_name(bridge), TVD_NET_BRIDGE_PREFIX) &&
            !member) {
            /* A port on one of our bridges that no member owns. */
            drift->ports_released++;
        } else if (member && (!member->attached || own != domain)) {
            /* A member's tap that must not be where it is. */
            drift->ports_detached++;
        } else {
            if (bridge) {
                rtnl_link_put(bridge);
            }
            continue;
        }
        if (bridge) {
            rtnl_link_put(bridge);
        }
        if (!dry_run) {
            struct rtnl_link *change = rtnl_link_alloc();

            /* A member's tap goes down too; a port no member owns only leaves. */
            if (member) {
                rc = cut(sock, link, change);
            } else {
                rtnl_link_set_master(change, 0);
                rc = rtnl_link_change(sock, link, change, 0);
            }
            rtnl_link_put(change);
            if (rc < 0) {
                ok = nl_failed(rc, error, "taking %s off its bridge", name);
            }
        }
    }
    nl_cache_free(cache);
    return ok;
}

static gboolean create_bridge(struct nl_sock *sock, const char *name, GError **error)
{
    struct rtnl_link *link = rtnl_link_alloc();
    int rc;

    rtnl_link_set_name(link, name);
    rtnl_link_set_type(link, "bridge");
    rtnl_link_set_flags(link, IFF_UP);
    /* No IPv6 link-local address: the host has no address on a domain. */
    rtnl_link_inet6_set_addr_gen_mode(link, 1 /* IN6_ADDR_GEN_MODE_NONE */);
    rc = rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL);
    if (rc == -NLE_OPNOTSUPP || rc == -NLE_AF_NOSUPPORT) {
        rtnl_link_put(link);
        link = rtnl_link_alloc();
        rtnl_link_set_name(link, name);
        rtnl_link_set_type(link, "bridge");
        rtnl_link_set_flags(link, IFF_UP);
        rc = rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL);
    }
    rtnl_link_put(link);
    return rc < 0 ? nl_failed(rc, error, "creating bridge %s", name) : TRUE;
}

static gboolean set_up(struct nl_sock *sock, struct rtnl_link *link, GError **error)
{
    struct rtnl_link *change = rtnl_link_alloc();
    int rc;

    rtnl_link_set_flags(change, IFF_UP);
    rc = rtnl_link_change(sock, link, change, 0);
    rtnl_link_put(change);
    return rc < 0 ? nl_failed(rc, error, "bringing %s up", rtnl_link_get_name(link)) : TRUE;
}

/* Removes every address of the bridge @ifindex; TRUE in @changed if one was. */
static gboolean strip_addresses(struct nl_sock *sock, struct nl_cache *addrs, int ifindex,
                                gboolean dry_run, gboolean *changed, GError **error)
{
    for (struct nl_object *o = nl_cache_get_first(addrs); o; o = nl_cache_get_next(o)) {
        struct rtnl_addr *addr = (struct rtnl_addr *)o;
        int rc;

        if (rtnl_addr_get_ifindex(addr) != ifindex) {
            continue;
        }
        *changed = TRUE;
        if (!dry_run && (rc = rtnl_addr_delete(sock, addr, 0)) < 0) {
            return nl_failed(rc, error, "removing an address of bridge %d", ifindex);
        }
    }
    return TRUE;
}

gboolean tvd_net_links_attach(struct nl_sock *sock, const TvdNetState *state,
                              gboolean dry_run, TvdNetDrift *drift, GError **error)
{
    struct nl_cache *cache = NULL;
    struct nl_cache *addrs = NULL;
    gboolean created = FALSE;
    gboolean ok = TRUE;
    int rc;

    if (!load_links(sock, &cache, error)) {
        return FALSE;
    }
    for (guint d = 0; d < state->domains->len; d++) {
        const TvdNetDomain *domain = g_ptr_array_index(state->domains, d);
        char name[TVD_NET_IFNAME_MAX + 1];
        struct rtnl_link *bridge;

        tvd_net_bridge_name(domain->id, name);
        bridge = rtnl_link_get_by_name(cache, name);
        if (!bridge) {
            drift->bridges_created++;
            created = TRUE;
            if (!dry_run && !create_bridge(sock, name, error)) {
                nl_cache_free(cache);
                return FALSE;
            }
        } else {
            rtnl_link_put(bridge);
        }
    }
    if (created && !dry_run && (rc = nl_cache_refill(sock, cache)) < 0) {
        nl_cache_free(cache);
        return nl_failed(rc, error, "listing links");
    }
    if ((rc = rtnl_addr_alloc_cache(sock, &addrs)) < 0) {
        nl_cache_free(cache);
        return nl_failed(rc, error, "listing addresses");
    }

    for (guint d = 0; d < state->domains->len && ok; d++) {
        const TvdNetDomain *domain = g_ptr_array_index(state->domains, d);
        char name[TVD_NET_IFNAME_MAX + 1];
        struct rtnl_link *bridge;
        gboolean fixed = FALSE;
        int br_index = -1;      /* dry run: a bridge that would be made */

        tvd_net_bridge_name(domain->id, name);
        bridge = rtnl_link_get_by_name(cache, name);
        if (bridge) {
            br_index = rtnl_link_get_ifindex(bridge);
            if (!(rtnl_link_get_flags(bridge) & IFF_UP)) {
                fixed = TRUE;
                ok = dry_run || set_up(sock, bridge, error);
            }
            ok = ok && strip_addresses(sock, addrs, br_index, dry_run, &fixed, error);
            drift->bridges_fixed += fixed;
            rtnl_link_put(bridge);
        }

        for (guint i = 0; i < domain->members->len && ok; i++) {
            const TvdNetMemberPriv *m = &g_array_index(domain->members, TvdNetMemberPriv, i);
            struct rtnl_link *tap;

            if (!m->attached) {
                continue;
            }
            tap = rtnl_link_get_by_name(cache, m->tap);
            if (!tap) {
                drift->taps_missing++;
                continue;
            }
            /* A port that joins, or one that someone brought down. */
            if (rtnl_link_get_master(tap) != br_index ||
                !(rtnl_link_get_flags(tap) & IFF_UP)) {
                drift->ports_attached++;
            }
            if (!dry_run && rtnl_link_get_master(tap) != br_index &&
                (rc = rtnl_link_enslave_ifindex(sock, br_index,
                                                rtnl_link_get_ifindex(tap))) < 0) {
                ok = nl_failed(rc, error, "adding %s to %s", m->tap, name);
            }
            if (ok && !dry_run && !(rtnl_link_get_flags(tap) & IFF_UP)) {
                ok = set_up(sock, tap, error);
            }
            rtnl_link_put(tap);
        }
    }
    nl_cache_free(addrs);
    nl_cache_free(cache);
    return ok;
}

gboolean tvd_net_links_detach(struct nl_sock *sock, const char *tap, GError **error)
{
    unsigned int ifindex = if_nametoindex(tap);
    struct rtnl_link *change;
    int rc;

    if (!ifindex) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND,
                    "no link %s: %s", tap, g_strerror(errno));
        return FALSE;
    }
    change = rtnl_link_alloc();
    rtnl_link_set_ifindex(change, (int)ifindex);
    rc = cut(sock, change, change);
    rtnl_link_put(change);
    return rc < 0 ? nl_failed(rc, error, "taking %s off its bridge", tap) : TRUE;
}
