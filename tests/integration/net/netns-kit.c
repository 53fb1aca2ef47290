/*
 * Network namespace kit (netns-kit.h). The tests may shell out to ip, nft
 * and busybox; the enforcer itself never does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <json-glib/json-glib.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns-kit.h"

int kit_sh(char **out, const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    g_autoptr(GError) err = NULL;
    const char *argv[] = { "/bin/sh", "-c", NULL, NULL };
    int status = 0;
    va_list ap;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    argv[2] = cmd;
    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, NULL,
                      &status, &err)) {
        g_printerr("# %s: %s\n", cmd, err->message);
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

gboolean kit_enter(char **why)
{
    static const char *const tools[] = { "ip", "nft", "busybox" };

    if (geteuid() != 0) {
        *why = g_strdup("needs root (network namespaces, bridges, nftables)");
        return FALSE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *path = g_find_program_in_path(tools[i]);

        if (!path) {
            *why = g_strdup_printf("%s is not installed (scripts/setup-deps)", tools[i]);
            return FALSE;
        }
    }
    /* Member namespaces left by an earlier run that died on an assertion. */
    kit_sh(NULL, "for n in $(ip netns list | awk '{print $1}' | grep '^tvdt[0-9]*-'); do "
           "p=${n#tvdt}; p=${p%%%%-*}; kill -0 $p 2>/dev/null || ip netns del $n; done");
    if (unshare(CLONE_NEWNET) != 0) {
        *why = g_strdup_printf("unshare(CLONE_NEWNET): %s", g_strerror(errno));
        return FALSE;
    }
    if (kit_sh(NULL, "ip link set lo up && ip link add tvdtprobe type bridge && "
               "ip link del tvdtprobe") != 0) {
        *why = g_strdup("the kernel makes no bridges");
        return FALSE;
    }
    if (kit_sh(NULL, "nft add table bridge tvdtprobe && nft delete table bridge tvdtprobe")
        != 0) {
        *why = g_strdup("the kernel has no nftables bridge family");
        return FALSE;
    }
    return TRUE;
}

void kit_member_make(KitMember *m, guint n, const char *ip)
{
    unsigned a, b, c, d;

    memset(m, 0, sizeof(*m));
    g_snprintf(m->ns, sizeof(m->ns), "tvdt%d-%u", (int)getpid(), n);
    g_snprintf(m->tap, sizeof(m->tap), "tvdt%u", n);
    m->mac[0] = 0x02;
    m->mac[4] = (guint8)(n >> 8);
    m->mac[5] = (guint8)n;
    g_assert_cmpint(sscanf(ip, "%u.%u.%u.%u", &a, &b, &c, &d), ==, 4);
    m->ip[0] = (guint8)a;
    m->ip[1] = (guint8)b;
    m->ip[2] = (guint8)c;
    m->ip[3] = (guint8)d;
    g_strlcpy(m->ip_text, ip, sizeof(m->ip_text));
    kit_sh(NULL, "ip netns del %s 2>/dev/null", m->ns);
    g_assert_cmpint(kit_sh(NULL,
        "ip netns add %s && ip link add %s type veth peer name eth0 netns %s && "
        "ip -n %s link set eth0 address 02:00:00:00:%02x:%02x && "
        "ip -n %s addr add %s/24 dev eth0 && ip -n %s link set eth0 up && "
        "ip -n %s link set lo up",
        m->ns, m->tap, m->ns, m->ns, m->mac[4], m->mac[5], m->ns, ip, m->ns, m->ns),
        ==, 0);
}

void kit_member_destroy(KitMember *m)
{
    if (m->ns[0]) {
        kit_sh(NULL, "ip netns pids %s 2>/dev/null | xargs -r kill 2>/dev/null; "
               "ip netns del %s", m->ns, m->ns);
        m->ns[0] = '\0';
    }
}

void kit_reset(void)
{
    kit_sh(NULL, "nft flush ruleset; for l in $(ip -o link show | "
           "awk -F': ' '{print $2}' | cut -d@ -f1); do case $l in lo) ;; "
           "*) ip link del $l 2>/dev/null;; esac; done");
}

static JsonNode *link_json(const char *ifname)
{
    g_autofree char *out = NULL;
    g_autoptr(JsonParser) parser = json_parser_new();
    JsonArray *links;

    if (kit_sh(&out, "ip -j link show dev %s 2>/dev/null", ifname) != 0 ||
        !json_parser_load_from_data(parser, out, -1, NULL)) {
        return NULL;
    }
    links = json_node_get_array(json_parser_get_root(parser));
    if (!links || json_array_get_length(links) != 1) {
        return NULL;
    }
    return json_node_copy(json_array_get_element(links, 0));
}

char *kit_link_master(const char *ifname)
{
    g_autoptr(JsonNode) link = link_json(ifname);
    JsonObject *obj = link ? json_node_get_object(link) : NULL;

    if (!obj || !json_object_has_member(obj, "master")) {
        return NULL;
    }
    return g_strdup(json_object_get_string_member(obj, "master"));
}

gboolean kit_link_exists(const char *ifname)
{
    g_autoptr(JsonNode) link = link_json(ifname);

    return link != NULL;
}

gboolean kit_link_up(const char *ifname)
{
    g_autoptr(JsonNode) link = link_json(ifname);
    JsonObject *obj = link ? json_node_get_object(link) : NULL;
    JsonArray *flags = obj && json_object_has_member(obj, "flags") ?
                       json_object_get_array_member(obj, "flags") : NULL;

    for (guint i = 0; flags && i < json_array_get_length(flags); i++) {
        if (!g_strcmp0(json_array_get_string_element(flags, i), "UP")) {
            return TRUE;
        }
    }
    return FALSE;
}
