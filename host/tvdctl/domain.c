/*
 * tvdctl domain: create, update, list, show (through the API) and sign,
 * keygen (offline, with the policy library).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"
#include "api.h"

#include <stdio.h>
#include <string.h>

#ifdef TVDCTL_HAVE_POLICY
#include "policy.h"
#endif

static const TvdctlColumn domain_columns[] = {
    { "NAME", "name" },
    { "ID", "id" },
    { "SERIAL", "serial" },
    { "MEMBERS", "members" },
    { "UPDATED", "updated" },
    { NULL, NULL },
};

/* Reads @path whole, at most @max bytes. */
static int read_file(const char *what, const char *path, size_t max,
                     char **data, gsize *len)
{
    g_autoptr(GError) error = NULL;

    if (!g_file_get_contents(path, data, len, &error)) {
        return tvdctl_fail(TVDCTL_EXIT_LOCAL, "%s: %s", what, error->message);
    }
    if (*len > max) {
        g_clear_pointer(data, g_free);
        return tvdctl_fail(TVDCTL_EXIT_INVALID, "%s: %s is larger than %zu "
                           "bytes", what, path, max);
    }
    return TVDCTL_EXIT_OK;
}

#ifdef TVDCTL_HAVE_POLICY
/*
 * Parses the policy as the supervisor will, so that a mistake is reported
 * here with the file's name, line, column and field, before anything is
 * signed or sent. With @name, also refuses a policy of another domain: the
 * supervisor names a domain after its policy.
 */
static int check_policy(TvdctlGlobal *g, const char *path, const char *data,
                        gsize len, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicy) policy = tvd_policy_parse(data, len, path, NULL,
                                                   &error);
    g_autofree char *m = NULL;
    const char *code = "invalid_policy";

    if (!policy) {
        m = g_strdup(error->message);
    } else if (name && strcmp(tvd_policy_data(policy)->name, name) != 0) {
        m = g_strdup_printf("%s is the policy of domain '%s', not '%s': the "
                            "NAME must be the policy's domain.name", path,
                            tvd_policy_data(policy)->name, name);
        code = "name_mismatch";
    } else {
        return TVDCTL_EXIT_OK;
    }
    if (g->json) {
        tvdctl_print_error_json(code, m);
    }
    return tvdctl_fail(TVDCTL_EXIT_INVALID, "%s", m);
}
#endif

/* create and update: the same body, POST /v1/domains or PUT .../NAME. */
static int domain_put(TvdctlGlobal *g, int argc, char **argv, gboolean create)
{
    g_autofree char *policy_path = NULL, *sig_path = NULL;
    g_autofree char *policy = NULL, *sig = NULL;
    g_autofree char *policy64 = NULL, *sig64 = NULL, *path = NULL;
    const GOptionEntry entries[] = {
        { "policy", 0, 0, G_OPTION_ARG_FILENAME, &policy_path,
          "Domain policy (JSON, docs/policy.md)", "FILE" },
        { "signature", 0, 0, G_OPTION_ARG_FILENAME, &sig_path,
          "Detached signature of the policy (tvdctl domain sign)", "FILE" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) body = NULL;
    const char *name;
    gsize policy_len, sig_len;
    int rc;

    /* options */
    if (!tvdctl_parse(g, create ? "domain create" : "domain update",
                      "NAME --policy FILE --signature FILE",
                      create ? "Create a domain from a signed policy."
                             : "Replace a domain's policy; members are "
                               "re-evaluated.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    /* inputs */
    if (!tvdctl_one_name(argc, argv, "domain", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!policy_path || !sig_path) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "--policy and --signature are "
                           "required");
    }
    rc = read_file("--policy", policy_path, TVD_API_MAX_POLICY, &policy,
                   &policy_len);
    if (rc == TVDCTL_EXIT_OK) {
        rc = read_file("--signature", sig_path, TVD_API_MAX_SIGNATURE, &sig,
                       &sig_len);
    }
#ifdef TVDCTL_HAVE_POLICY
    if (rc == TVDCTL_EXIT_OK) {
        rc = check_policy(g, policy_path, policy, policy_len, name);
    }
#endif
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    policy64 = g_base64_encode((const guchar *)policy, policy_len);
    sig64 = g_base64_encode((const guchar *)sig, sig_len);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, name);
    json_builder_set_member_name(b, "policy");
    json_builder_add_string_value(b, policy64);
    json_builder_set_member_name(b, "signature");
    json_builder_add_string_value(b, sig64);
    json_builder_end_object(b);
    body = json_builder_get_root(b);

    /* call, outputs */
    if (create) {
        return tvdctl_show(g, "POST", "/v1/domains", body);
    }
    path = g_strconcat("/v1/domains/", name, NULL);
    return tvdctl_show(g, "PUT", path, body);
}

static int domain_create(TvdctlGlobal *g, int argc, char **argv)
{
    return domain_put(g, argc, argv, TRUE);
}

static int domain_update(TvdctlGlobal *g, int argc, char **argv)
{
    return domain_put(g, argc, argv, FALSE);
}

static int domain_show(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *path = NULL;
    const char *name;

    if (!tvdctl_parse(g, "domain show", "NAME",
                      "Show a domain, its policy digest and members.", NULL,
                      &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (!tvdctl_one_name(argc, argv, "domain", &name)) {
        return TVDCTL_EXIT_USAGE;
    }
    path = g_strconcat("/v1/domains/", name, NULL);
    return tvdctl_show(g, "GET", path, NULL);
}

static int domain_list(TvdctlGlobal *g, int argc, char **argv)
{
    g_autoptr(JsonNode) doc = NULL;
    JsonNode *list;
    int rc;

    if (!tvdctl_parse(g, "domain list", "", "List the domains.", NULL, &argc,
                      &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "domain list takes no arguments");
    }
    rc = tvdctl_call(g, "GET", "/v1/domains", NULL, &doc);
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    if (g->json) {
        tvdctl_print_json(doc);
        return TVDCTL_EXIT_OK;
    }
    list = json_object_get_member(json_node_get_object(doc), "domains");
    tvdctl_print_table(list && JSON_NODE_HOLDS_ARRAY(list) ?
                       json_node_get_array(list) : NULL, domain_columns);
    return TVDCTL_EXIT_OK;
}

#ifdef TVDCTL_HAVE_POLICY

static void print_pairs(TvdctlGlobal *g, const char *const *pairs)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;

    json_builder_begin_object(b);
    for (size_t i = 0; pairs[i]; i += 2) {
        json_builder_set_member_name(b, pairs[i]);
        json_builder_add_string_value(b, pairs[i + 1]);
    }
    json_builder_end_object(b);
    root = json_builder_get_root(b);
    if (g->json) {
        tvdctl_print_json(root);
    } else {
        tvdctl_print_object(json_node_get_object(root));
    }
}

static int domain_sign(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *key = NULL, *policy_path = NULL, *out = NULL;
    g_autofree char *policy = NULL, *sig = NULL;
    g_autoptr(GError) error = NULL;
    const GOptionEntry entries[] = {
        { "key", 0, 0, G_OPTION_ARG_FILENAME, &key,
          "Administrator private key (PEM, mode 0600)", "KEY" },
        { "policy", 0, 0, G_OPTION_ARG_FILENAME, &policy_path,
          "Policy to sign", "FILE" },
        { "out", 0, 0, G_OPTION_ARG_FILENAME, &out,
          "Signature file (default FILE.sig)", "SIG" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    gsize len;
    int rc;

    if (!tvdctl_parse(g, "domain sign", "--key KEY --policy FILE [--out SIG]",
                      "Sign a policy offline with an administrator key.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1 || !key || !policy_path) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "domain sign needs --key and --policy, no NAME");
    }
    if (!out) {
        out = g_strconcat(policy_path, ".sig", NULL);
    }
    rc = read_file("--policy", policy_path, TVD_API_MAX_POLICY, &policy, &len);
    if (rc == TVDCTL_EXIT_OK) {
        /* Never sign what the supervisor would refuse to parse. */
        rc = check_policy(g, policy_path, policy, len, NULL);
    }
    if (rc != TVDCTL_EXIT_OK) {
        return rc;
    }
    sig = tvd_policy_sign(policy, len, key, &error);
    if (!sig) {
        return tvdctl_fail(TVDCTL_EXIT_LOCAL, "%s", error->message);
    }
    if (!g_file_set_contents(out, sig, -1, &error)) {
        return tvdctl_fail(TVDCTL_EXIT_LOCAL, "%s", error->message);
    }
    {
        const char *pairs[] = { "policy", policy_path, "signature", out,
                                NULL };

        print_pairs(g, pairs);
    }
    return TVDCTL_EXIT_OK;
}

static int domain_keygen(TvdctlGlobal *g, int argc, char **argv)
{
    g_autofree char *prefix = NULL, *type = NULL, *key_id = NULL;
    g_autofree char *priv = NULL, *pub = NULL;
    g_autoptr(GError) error = NULL;
    const GOptionEntry entries[] = {
        { "out", 0, 0, G_OPTION_ARG_FILENAME, &prefix,
          "Writes PREFIX.key (0600) and PREFIX.pub", "PREFIX" },
        { "type", 0, 0, G_OPTION_ARG_STRING, &type,
          "ed25519 (default) or p256", "TYPE" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    TvdPolicyKeyType kt = TVD_POLICY_KEY_ED25519;

    if (!tvdctl_parse(g, "domain keygen", "--out PREFIX [--type TYPE]",
                      "Make an administrator key pair for signing policies.",
                      entries, &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1 || !prefix) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "domain keygen needs --out");
    }
    if (type && strcmp(type, "p256") == 0) {
        kt = TVD_POLICY_KEY_ECDSA_P256;
    } else if (type && strcmp(type, "ed25519") != 0) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE,
                           "--type: '%s' is not ed25519 or p256", type);
    }
    priv = g_strconcat(prefix, ".key", NULL);
    pub = g_strconcat(prefix, ".pub", NULL);
    if (!tvd_policy_keygen(kt, priv, pub, &key_id, &error)) {
        return tvdctl_fail(TVDCTL_EXIT_LOCAL, "%s", error->message);
    }
    {
        const char *pairs[] = { "private_key", priv, "public_key", pub,
                                "key_id", key_id, NULL };

        print_pairs(g, pairs);
    }
    return TVDCTL_EXIT_OK;
}

#else /* !TVDCTL_HAVE_POLICY */

static int not_built(TvdctlGlobal *g, int argc, char **argv, const char *cmd)
{
    g_autofree char *m = g_strdup_printf("%s: not built: this tvdctl was "
                                         "built without the policy library "
                                         "(host/policy)", cmd);

    /* Whatever the options: the verb cannot run. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            tvdctl_print_error_json("not_built", m);
            break;
        }
    }
    return tvdctl_fail(TVDCTL_EXIT_UNSUPPORTED, "%s", m);
}

static int domain_sign(TvdctlGlobal *g, int argc, char **argv)
{
    return not_built(g, argc, argv, "domain sign");
}

static int domain_keygen(TvdctlGlobal *g, int argc, char **argv)
{
    return not_built(g, argc, argv, "domain keygen");
}

#endif

const TvdctlVerb tvdctl_domain_verbs[] = {
    { "create", "NAME --policy FILE --signature FILE",
      "create a domain from a signed policy", domain_create },
    { "update", "NAME --policy FILE --signature FILE",
      "replace a domain's policy (members are re-evaluated)", domain_update },
    { "list", "", "list domains", domain_list },
    { "show", "NAME", "show one domain", domain_show },
    { "sign", "--key KEY --policy FILE [--out SIG]",
      "sign a policy (offline)", domain_sign },
    { "keygen", "--out PREFIX [--type ed25519|p256]",
      "make an administrator key pair (offline)", domain_keygen },
    { NULL, NULL, NULL, NULL },
};
