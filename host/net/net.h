/*
 * tvd-net: the network enforcer of one host (docs/network.md).
 *
 * The caller describes the desired state: per domain a bridge, its roles,
 * its intra-domain rules and the default between members, and per member a
 * tap name, a MAC, an assigned IPv4 address, a role and whether its port is
 * attached. tvd_net_enforcer_reconcile() moves the kernel towards it:
 *
 *   - links (libnl-route-3): a bridge "tvdbr-<domain id>" per domain, up,
 *     without addresses; a member's tap is a port of its domain's bridge
 *     exactly while it is attached; any other port of a tvdbr- bridge is
 *     released; a detached member's tap is off every bridge and down (so it
 *     reaches the host's own stack neither); bridges "tvdbr-*" of no domain
 *     are deleted;
 *   - rules (libnftables, one transaction per reconcile): the table "tvd" in
 *     the bridge family, anti-spoofing before the bridge learns (prerouting)
 *     and the domain's rules between members (forward), with members kept
 *     in sets so that a join or a leave changes set elements only.
 *
 * The enforcer owns exactly the links named "tvdbr-*", the taps the desired
 * state names, and the table "bridge tvd"; it never touches anything else.
 * A reconcile is idempotent: run twice, the second reports no change.
 * tvd_net_enforcer_detach() is the fast path of a verdict: one netlink
 * request takes a tap off its bridge.
 *
 * IPv4 only: a domain whose subnet is IPv6 is refused (UNSUPPORTED).
 * The enforcer works in the network namespace of the calling thread.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_NET_H
#define TVD_HOST_NET_H

#include <glib.h>

#include "policy.h"

G_BEGIN_DECLS

#define TVD_NET_ERROR (tvd_net_error_quark())
GQuark tvd_net_error_quark(void);

typedef enum {
    TVD_NET_ERROR_INVALID,      /* a bad desired state (name, address, duplicate) */
    TVD_NET_ERROR_UNSUPPORTED,  /* something this enforcer does not do (IPv6) */
    TVD_NET_ERROR_NETLINK,      /* a link request failed */
    TVD_NET_ERROR_NFT,          /* an nftables transaction or listing failed */
    TVD_NET_ERROR_NOT_FOUND,    /* no such tap or domain */
    TVD_NET_ERROR_EXHAUSTED,    /* no free address left in the subnet */
    TVD_NET_ERROR_STORE,        /* the store refused a read or write */
} TvdNetError;

#define TVD_NET_BRIDGE_PREFIX   "tvdbr-"    /* + decimal domain id, <= 14 bytes */
#define TVD_NET_TABLE           "tvd"       /* nftables table, bridge family */
#define TVD_NET_IFNAME_MAX      15u         /* IFNAMSIZ - 1 */
#define TVD_NET_MAX_DOMAINS     4096u       /* per host */
#define TVD_NET_MAX_MEMBERS     65536u      /* per domain */

/* ---- Desired state ---------------------------------------------------------- */

typedef struct _TvdNetState TvdNetState;
typedef struct _TvdNetDomain TvdNetDomain;

typedef struct {
    const char *vm;             /* the VM's name (for messages) */
    const char *tap;            /* its port: a tap (or veth) name */
    guint8 mac[6];              /* the only source MAC it may use */
    guint8 ipv4[4];             /* the only source address it may use */
    const char *role;           /* one of the domain's roles */
    gboolean attached;          /* a port of the domain's bridge (ADMITTED) */
} TvdNetMember;

TvdNetState *tvd_net_state_new(void);
void tvd_net_state_free(TvdNetState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdNetState, tvd_net_state_free)

/*
 * A domain with no roles or rules yet: @id 1..16777215 (the bridge is
 * "tvdbr-<id>"), @subnet an IPv4 network that members' addresses must lie
 * in, @default_allow what happens to traffic between members that no rule
 * allows. The domain belongs to @state.
 */
TvdNetDomain *tvd_net_state_add_domain(TvdNetState *state, guint32 id,
                                       const guint8 subnet[4], guint8 prefix,
                                       gboolean default_allow, GError **error);
/*
 * The same, with the id, subnet, roles, rules and default of @policy. On an
 * error (of these calls and the ones below) the state may hold a part of
 * what was asked: discard it.
 */
TvdNetDomain *tvd_net_state_add_policy_domain(TvdNetState *state,
                                              const TvdPolicy *policy,
                                              GError **error);
gboolean tvd_net_domain_add_role(TvdNetDomain *domain, const char *role,
                                 GError **error);
/* An allow rule: @from and @to are roles or "*"; 0 ports = every port. */
gboolean tvd_net_domain_add_rule(TvdNetDomain *domain, const char *from,
                                 const char *to, TvdPolicyProtocol protocol,
                                 const TvdPolicyPortRange *ports, guint n_ports,
                                 GError **error);
/* Copied. A tap may belong to one member of one domain of the state. */
gboolean tvd_net_domain_add_member(TvdNetDomain *domain,
                                   const TvdNetMember *member, GError **error);

/* ---- The enforcer ----------------------------------------------------------- */

/* What a reconcile changed (or, dry, would change): the drift it repaired. */
typedef struct {
    guint bridges_created;
    guint bridges_deleted;          /* "tvdbr-*" of no domain */
    guint bridges_fixed;            /* brought up, addresses removed */
    guint ports_attached;           /* taps that joined (or were brought up) */
    guint ports_detached;           /* members no longer attached (or up) */
    guint ports_released;           /* ports of our bridges no member owns */
    guint taps_missing;             /* attached members whose tap is absent */
    guint tables_created;           /* the nftables table was (re)built */
    guint chains_written;           /* chains whose rules were (re)written */
    guint objects_added;            /* missing sets and counters */
    guint objects_deleted;          /* stale chains, sets, counters */
    guint elements_added;
    guint elements_removed;
} TvdNetDrift;

/* The number of changes in @drift (taps_missing is not a change). */
guint tvd_net_drift_changes(const TvdNetDrift *drift);

/* A packet counter read back from the kernel. */
typedef struct {
    guint64 packets;
    guint64 bytes;
} TvdNetCount;

/* A domain's drop counters (nftables named counters "d<id>_<what>"). */
typedef struct {
    TvdNetCount spoof_mac;      /* source MAC not the port's member's */
    TvdNetCount spoof_arp;      /* ARP sender MAC/IP not the member's */
    TvdNetCount spoof_ip;       /* IPv4 source not the member's address */
    TvdNetCount other;          /* neither IPv4 nor ARP (IPv6, VLAN tags, ...) */
    TvdNetCount denied;         /* between members, allowed by no rule */
} TvdNetCounters;

typedef struct _TvdNetEnforcer TvdNetEnforcer;

/* Opens a netlink socket and an nftables context (needs CAP_NET_ADMIN). */
TvdNetEnforcer *tvd_net_enforcer_new(GError **error);
void tvd_net_enforcer_free(TvdNetEnforcer *enforcer);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdNetEnforcer, tvd_net_enforcer_free)

/*
 * Moves the kernel to @desired; with @dry_run only compares. @drift (nullable)
 * gets what differed. Rules first, then links: a member's set elements exist
 * before its port joins, and a port leaves before its elements go. On an
 * error the kernel may be partly reconciled; the next call continues.
 */
gboolean tvd_net_enforcer_reconcile(TvdNetEnforcer *enforcer,
                                    const TvdNetState *desired,
                                    gboolean dry_run, TvdNetDrift *drift,
                                    GError **error);

/*
 * Takes @tap off whatever bridge it is a port of and brings it down, at once
 * (one netlink request). Not an error when it is no port. NOT_FOUND when no
 * such link.
 */
gboolean tvd_net_enforcer_detach(TvdNetEnforcer *enforcer, const char *tap,
                                 GError **error);

/* Reads domain @domain_id's drop counters. NOT_FOUND when it has none. */
gboolean tvd_net_enforcer_counters(TvdNetEnforcer *enforcer, guint32 domain_id,
                                   TvdNetCounters *counters, GError **error);

G_END_DECLS

#endif /* TVD_HOST_NET_H */
