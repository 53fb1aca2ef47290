/*
 * tvd-net internals: the desired state's structures, the nftables compiler
 * and the kernel readers the enforcer combines.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_NET_PRIVATE_H
#define TVD_HOST_NET_PRIVATE_H

#include "net.h"

typedef struct {
    char *vm;
    char tap[TVD_NET_IFNAME_MAX + 1];
    guint8 mac[6];
    guint8 ipv4[4];
    guint role;                 /* index into the domain's roles */
    gboolean attached;
} TvdNetMemberPriv;

typedef struct {
    int from;                   /* role index, -1 = "*" */
    int to;
    TvdPolicyProtocol protocol;
    guint n_ports;
    TvdPolicyPortRange *ports;
} TvdNetRule;

struct _TvdNetDomain {
    TvdNetState *state;
    guint32 id;
    guint8 subnet[4];
    guint8 prefix;
    gboolean default_allow;
    GPtrArray *roles;           /* char * */
    GArray *rules;              /* TvdNetRule */
    GArray *members;            /* TvdNetMemberPriv */
    GHashTable *addresses;      /* guint32 address -> member index + 1 */
};

struct _TvdNetState {
    GPtrArray *domains;         /* TvdNetDomain *, owned */
    GHashTable *ids;            /* domain id -> TvdNetDomain * */
    GHashTable *taps;           /* tap name -> TvdNetDomain * */
};

/* "tvdbr-<id>" into @buf. */
void tvd_net_bridge_name(guint32 id, char buf[TVD_NET_IFNAME_MAX + 1]);
/* The domain id of a "tvdbr-<id>" name, 0 when it is not one. */
guint32 tvd_net_bridge_id(const char *name);

/* ---- nftables (nft-compile.c): text the enforcer sends in one transaction -- */

/* One named set or map of the table and the elements it should hold. */
typedef struct {
    char *name;
    const char *decl;           /* "type ifname . ether_addr" ... */
    gboolean quote_first;       /* first component is an ifname */
    GPtrArray *elements;        /* canonical strings (see nft-state.c) */
} TvdNftSet;

/* One chain of the table and the comments its rules carry, in order. */
typedef struct {
    char *name;
    const char *hook;           /* NULL for a regular chain, else the hook */
    int priority;               /* of a base chain (policy accept) */
    GPtrArray *rules;           /* rule text, each ending with its comment */
    GPtrArray *comments;        /* the comment of each rule */
} TvdNftChain;

typedef struct {
    GPtrArray *sets;            /* TvdNftSet * */
    GPtrArray *chains;          /* TvdNftChain * */
    GPtrArray *counters;        /* char * */
} TvdNftTable;

TvdNftTable *tvd_nft_compile(const TvdNetState *state);
void tvd_nft_table_free(TvdNftTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdNftTable, tvd_nft_table_free)

/* The whole table as one nft script (used when the table is built anew). */
void tvd_nft_table_render(const TvdNftTable *table, GString *out);
/* "add chain ..." when @declare, then "add rule ..." for each rule. */
void tvd_nft_chain_render(const TvdNftChain *chain, gboolean declare, GString *out);
/* "add set|map ... { type ...; }". */
void tvd_nft_set_render(const TvdNftSet *set, GString *out);
/* One element of @set in nft syntax ("\"tap\" . 52:54:00:00:00:01"). */
void tvd_nft_element_render(const TvdNftSet *set, const char *element,
                            GString *out);

/* ---- nftables readback (nft-state.c) ---------------------------------------- */

typedef struct {
    GHashTable *sets;           /* name -> GHashTable (set of canonical elements) */
    GHashTable *set_types;      /* name -> "ifname . ether_addr" ... */
    GHashTable *chains;         /* name -> GPtrArray of rule comments ("" none) */
    GHashTable *chain_hooks;    /* name -> "prerouting/-200/accept" of base chains */
    GHashTable *counters;       /* name -> TvdNetCount * */
} TvdNftObserved;

void tvd_nft_observed_free(TvdNftObserved *observed);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdNftObserved, tvd_nft_observed_free)

/* Parses the JSON of "list table bridge tvd"; an absent table is NULL, no error. */
TvdNftObserved *tvd_nft_observed_parse(const char *json, GError **error);

#endif /* TVD_HOST_NET_PRIVATE_H */
