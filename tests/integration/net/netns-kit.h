/*
 * Network namespace kit for the enforcer's tests and benchmark: the calling
 * process moves into a network namespace of its own (the "host", so the
 * enforcer never sees the machine's real bridges), and each member is a
 * namespace of its own (a VM stand-in) whose eth0 is one end of a veth pair;
 * the other end, in the host namespace, is the member's "tap".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_NETNS_KIT_H
#define TVD_NETNS_KIT_H

#include <glib.h>

typedef struct {
    char ns[32];            /* namespace name, "tvdt<pid>-<n>" */
    char tap[16];           /* host end, "tvdt<n>" */
    guint8 mac[6];
    guint8 ip[4];
    char ip_text[16];
} KitMember;

/*
 * Enters a fresh network namespace. FALSE with the reason in @why when that
 * cannot work here (not root, no unshare, a tool missing, no nftables bridge
 * family or no bridges in the kernel).
 */
gboolean kit_enter(char **why);

/* Runs "sh -c" on the formatted command; its stdout in @out (nullable). */
int kit_sh(char **out, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Makes member number @n: its namespace, veth pair, MAC, address /24. */
void kit_member_make(KitMember *m, guint n, const char *ip);
void kit_member_destroy(KitMember *m);

/* Removes what the enforcer and the tests made in the host namespace. */
void kit_reset(void);

/* The bridge @ifname is a port of (ip -j), NULL when none or no such link. */
char *kit_link_master(const char *ifname);
/* TRUE when a link named @ifname exists in the host namespace. */
gboolean kit_link_exists(const char *ifname);
/* TRUE when @ifname is administratively up. */
gboolean kit_link_up(const char *ifname);

#endif /* TVD_NETNS_KIT_H */
