/*
 * tvdctl vm: start, stop, list, show, revoke, readmit, register-ek.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"
#include "api.h"

#include <stdio.h>
#include <string.h>

static const TvdctlColumn vm_columns[] = {
    { "NAME", "name" },
    { "DOMAIN", "domain" },
    { "ROLE", "role" },
    { "STATE", "state" },
    { "RUNNING", "running" },
    { "CAUSE", "cause" },
    { "SINCE", "since" },
    { "DETAIL", "detail" },
    { NULL, NULL },
};

/* "512", "512M", "512MiB", "2G", "2GiB" -> MiB. */
static gboolean parse_memory(const char *text, guint64 *mib)
{
    g_autofree char *num = NULL;
    const char *p = text;
    guint64 v, mult = 1;

    while (g_ascii_isdigit(*p)) {
        p++;
    }
    if (p == text || p - text > 9) {
        return FALSE;
    }
    num = g_strndup(text, (gsize)(p - text));
    v = g_ascii_strtoull(num, NULL, 10);
    if (*p == '\0' || g_ascii_strcasecmp(p, "M") == 0 ||
        g_ascii_strcasecmp(p, "MiB") == 0) {
        mult = 1;
    } else if (g_ascii_strcasecmp(p, "G") == 0 ||
               g_ascii_strcasecmp(p, "GiB") == 0) {
        mult = 1024;
    } else {
        return FALSE;
    }
    *mib = v * mult;
    return TRUE;
}

static void add_string(JsonBuilder *b, const char *member, const char *value)
{
    if (value) {
        json_builder_set_member_name(b, member);
        json_builder_add_string_value(b, value);
    }
}

static int vm_start(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *domain = NULL, *kernel = NULL, *initrd = NULL;
    g_autofree char *append = NULL, *memory = NULL, *role = NULL;
    g_autofree char *kernel_abs = NULL, *initrd_abs = NULL;
    const GOptionEntry entries[] = {
        { "domain", 0, 0, G_OPTION_ARG_STRING, &domain,
          "Domain to join (required)", "D" },
        { "kernel", 0, 0, G_OPTION_ARG_FILENAME, &kernel,
          "Guest kernel (required)", "K" },
        { "initrd", 0, 0, G_OPTION_ARG_FILENAME, &initrd,
          "Guest initrd (required)", "I" },
        { "append", 0, 0, G_OPTION_ARG_STRING, &append,
          "Kernel command line", "A" },
        { "memory", 0, 0, G_OPTION_ARG_STRING, &memory,
          "Guest memory: MiB, or with suffix M/G", "M" },
        { "role", 0, 0, G_OPTION_ARG_STRING, &role,
          "Role in the domain's network rules", "R" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) body = NULL;
    const char *name;
    guint64 mib = 0;

    /* options */
    if (!tvdctl_parse(g, "vm start", "NAME --domain D --kernel K --initrd I",
                      "Start a VM with a vTPM and admit it into a domain.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    /* inputs */
    if (!tvdctl_one_name(argc, argv, "VM", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!domain || !kernel || !initrd) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "vm start needs --domain, --kernel and --initrd");
    }
    if (memory && !parse_memory(memory, &mib)) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "--memory: '%s' is not a size (e.g. 512, 512M, 2G)",
                           memory);
    }
    /* The supervisor does not share our working directory. */
    kernel_abs = g_canonicalize_filename(kernel, NULL);
    initrd_abs = g_canonicalize_filename(initrd, NULL);
    json_builder_begin_object(b);
    add_string(b, "name", name);
    add_string(b, "domain", domain);
    add_string(b, "kernel", kernel_abs);
    add_string(b, "initrd", initrd_abs);
    add_string(b, "append", append);
    if (memory) {
        json_builder_set_member_name(b, "memory");
        json_builder_add_int_value(b, (gint64)MIN(mib, (guint64)G_MAXINT64));
    }
    add_string(b, "role", role);
    json_builder_end_object(b);
    body = json_builder_get_root(b);
    /* call, outputs */
    return tvdctl_show(g, "POST", "/v1/vms", body);
}

/* stop, show, readmit: NAME only. */
static int vm_simple(TvdctlGlobal *g, int argc, char **argv,
                     const char *verb, const char *summary,
                     const char *method, const char *suffix)
{
    g_autofree char *cmd = g_strconcat("vm ", verb, NULL);
    g_autofree char *path = NULL;
    const char *name;

    if (!tvdctl_parse(g, cmd, "NAME", summary, NULL, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!tvdctl_one_name(argc, argv, "VM", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    path = g_strconcat("/v1/vms/", name, suffix, NULL);
    return tvdctl_show(g, method, path, NULL);
}

static int vm_stop(TvdctlGlobal *g, int argc, char **argv)
{
    return vm_simple(g, argc, argv, "stop", "Stop a VM and its vTPM.",
                     "POST", "/stop");
}

static int vm_show(TvdctlGlobal *g, int argc, char **argv)
{
    return vm_simple(g, argc, argv, "show",
                     "Show a VM, its membership state and reason.", "GET", "");
}

static int vm_readmit(TvdctlGlobal *g, int argc, char **argv)
{
    return vm_simple(g, argc, argv, "readmit",
                     "Re-attest a quarantined or revoked VM.", "POST",
                     "/readmit");
}

static int vm_revoke(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *reason = NULL;
    g_autofree char *path = NULL;
    const GOptionEntry entries[] = {
        { "reason", 0, 0, G_OPTION_ARG_STRING, &reason,
          "Why (recorded in the audit log)", "R" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) body = NULL;
    const char *name;

    if (!tvdctl_parse(g, "vm revoke", "NAME [--reason R]",
                      "Revoke a VM's membership: its link goes down at once.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!tvdctl_one_name(argc, argv, "VM", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    json_builder_begin_object(b);
    add_string(b, "reason", reason);
    json_builder_end_object(b);
    body = json_builder_get_root(b);
    path = g_strconcat("/v1/vms/", name, "/revoke", NULL);
    return tvdctl_show(g, "POST", path, body);
}

static int vm_register_ek(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *cert_path = NULL;
    g_autofree char *der = NULL;
    g_autofree char *b64 = NULL;
    g_autofree char *path = NULL;
    g_autoptr(GError) error = NULL;
    const GOptionEntry entries[] = {
        { "ek-cert", 0, 0, G_OPTION_ARG_FILENAME, &cert_path,
          "The EK certificate of the VM's vTPM (DER)", "FILE" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) body = NULL;
    const char *name;
    gsize len;

    if (!tvdctl_parse(g, "vm register-ek", "NAME --ek-cert FILE",
                      "Bind an adopted VM to its vTPM's EK: only an agent "
                      "with that EK is admitted.", entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!tvdctl_one_name(argc, argv, "VM", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!cert_path) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "vm register-ek: --ek-cert FILE "
                           "is required");
    }
    if (!g_file_get_contents(cert_path, &der, &len, &error)) {
        return tvdctl_fail(TVDCTL_EXIT_LOCAL, "--ek-cert: %s", error->message);
    }
    if (len == 0 || len > TVD_API_MAX_EK_CERT) {
        return tvdctl_fail(TVDCTL_EXIT_INVALID, "--ek-cert: %s is not a DER "
                           "certificate of 1..%u bytes", cert_path,
                           TVD_API_MAX_EK_CERT);
    }
    b64 = g_base64_encode((const guchar *)der, len);
    json_builder_begin_object(b);
    add_string(b, "ek_cert", b64);
    json_builder_end_object(b);
    body = json_builder_get_root(b);
    path = g_strconcat("/v1/vms/", name, "/ek", NULL);
    return tvdctl_show(g, "POST", path, body);
}

static int vm_list(TvdctlGlobal *g, int argc, char **argv)
{
    g_autoptr(JsonNode) doc = NULL;
    JsonNode *vms;
    int rc;

    if (!tvdctl_parse(g, "vm list", "", "List the VMs of this host.", NULL,
                      &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "vm list takes no arguments");
    }
    rc = tvdctl_call(g, "GET", "/v1/vms", NULL, &doc);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    if (g->json) {
        tvdctl_print_json(doc);
        return TVDCTL_EXIT_OK;
    }
    vms = json_object_get_member(json_node_get_object(doc), "vms");
    tvdctl_print_table(vms && JSON_NODE_HOLDS_ARRAY(vms) ?
                       json_node_get_array(vms) : NULL, vm_columns);
    return TVDCTL_EXIT_OK;
}

const TvdctlVerb tvdctl_vm_verbs[] = {
    { "start", "NAME --domain D --kernel K --initrd I [--append A] "
      "[--memory M] [--role R]", "start a VM into a domain", vm_start },
    { "stop", "NAME", "stop a VM", vm_stop },
    { "list", "", "list VMs with their membership state", vm_list },
    { "show", "NAME", "show one VM", vm_show },
    { "revoke", "NAME [--reason R]", "revoke a VM's membership", vm_revoke },
    { "readmit", "NAME", "re-attest and readmit a VM", vm_readmit },
    { "register-ek", "NAME --ek-cert FILE",
      "bind an adopted VM to its vTPM's EK", vm_register_ek },
    { NULL, NULL, NULL, NULL },
};
