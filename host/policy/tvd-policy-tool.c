/*
 * tvd-policy-tool: make administrator keys, sign, verify and check domain
 * policies (docs/policy.md). tvdctl's "domain sign" wraps the same calls.
 *
 *   tvd-policy-tool keygen [--type ed25519|ecdsa-p256] PRIVATE.pem PUBLIC.pem
 *   tvd-policy-tool key-id KEY.pem
 *   tvd-policy-tool sign --key PRIVATE.pem [--output SIG] POLICY.json
 *   tvd-policy-tool verify --trust DIR [--signature SIG] [--json] POLICY.json
 *   tvd-policy-tool check [--json] POLICY.json
 *   tvd-policy-tool draft --name NAME --id ID (--manifest FILE | --root DIR)
 *                         [--subnet CIDR] [--role ROLE] [--output FILE]
 *
 * Exit codes: 0 success, 1 the policy or signature is invalid, 2 usage,
 * 3 a file or key could not be used.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy-tool"

#include <stdio.h>
#include <string.h>

#include <json-glib/json-glib.h>

#include "policy.h"
#include "policy-draft.h"

enum {
    EXIT_OK = 0,
    EXIT_INVALID = 1,
    EXIT_USAGE = 2,
    EXIT_IO = 3,
};

static int fail_with(GError *error)
{
    int code = EXIT_INVALID;

    if (error->domain == TVD_POLICY_ERROR &&
        (error->code == TVD_POLICY_ERROR_IO || error->code == TVD_POLICY_ERROR_KEY)) {
        code = EXIT_IO;
    } else if (error->domain != TVD_POLICY_ERROR) {
        code = EXIT_IO;
    }
    g_printerr("tvd-policy-tool: %s\n", error->message);
    return code;
}

static int usage_error(GOptionContext *ctx, const char *msg)
{
    g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);

    g_printerr("tvd-policy-tool: %s\n%s", msg, help);
    return EXIT_USAGE;
}

static void print_summary(const TvdPolicy *p, const char *signer, gboolean json)
{
    const TvdPolicyData *d = tvd_policy_data(p);

    if (json) {
        g_autoptr(JsonBuilder) b = json_builder_new();
        g_autoptr(JsonGenerator) gen = json_generator_new();
        g_autoptr(JsonNode) root = NULL;
        g_autofree char *text = NULL;

        json_builder_begin_object(b);
        json_builder_set_member_name(b, "domain");
        json_builder_add_string_value(b, d->name);
        json_builder_set_member_name(b, "id");
        json_builder_add_int_value(b, d->id);
        json_builder_set_member_name(b, "serial");
        json_builder_add_int_value(b, (gint64)d->serial);
        json_builder_set_member_name(b, "digest");
        json_builder_add_string_value(b, tvd_policy_get_digest_string(p));
        json_builder_set_member_name(b, "canonical_digest");
        json_builder_add_string_value(b, tvd_policy_get_canonical_digest(p));
        json_builder_set_member_name(b, "membership_digest");
        json_builder_add_string_value(b, tvd_policy_get_membership_digest(p));
        json_builder_set_member_name(b, "signed_by");
        if (signer) {
            json_builder_add_string_value(b, signer);
        } else {
            json_builder_add_null_value(b);
        }
        json_builder_end_object(b);
        root = json_builder_get_root(b);
        json_generator_set_root(gen, root);
        json_generator_set_pretty(gen, TRUE);
        text = json_generator_to_data(gen, NULL);
        g_print("%s\n", text);
        return;
    }
    g_print("domain %s (id %u), serial %" G_GUINT64_FORMAT "\n", d->name, d->id, d->serial);
    g_print("  digest            %s\n", tvd_policy_get_digest_string(p));
    g_print("  canonical digest  %s\n", tvd_policy_get_canonical_digest(p));
    g_print("  membership digest %s\n", tvd_policy_get_membership_digest(p));
    g_print("  references %u, allowlist %u, excludes %u, PCRs 0x%06x, roles %u, rules %u\n",
            d->n_references, d->n_allowlist, d->n_excludes, d->pcr_mask, d->n_roles,
            d->n_rules);
    g_print("  attestation every %u ms, deadline %u ms, on failure %s, agent PCR %u\n",
            d->interval_ms, d->deadline_ms, tvd_policy_on_failure_name(d->on_failure),
            d->measurement_pcr);
    g_print("  evidence: IMA %s, agent list %s, bank %s, IMA violations %s%s\n",
            d->ima == TVD_POLICY_EVIDENCE_REQUIRED ? "required" : "optional",
            d->agent_list == TVD_POLICY_EVIDENCE_REQUIRED ? "required" : "optional",
            d->pcr_bank == TVD_POLICY_BANK_SHA384 ? "sha384" :
            d->pcr_bank == TVD_POLICY_BANK_SHA512 ? "sha512" : "sha256",
            d->ima_violations_allowed ? "allowed" : "rejected",
            d->boot_aggregate_referenced ? ", boot_aggregate checked" : "");
    if (signer) {
        g_print("  signed by %s\n", signer);
    }
}

static int cmd_keygen(int argc, char **argv)
{
    g_autofree char *type = NULL;
    g_autofree char *id = NULL;
    g_autoptr(GError) error = NULL;
    GOptionEntry entries[] = {
        { "type", 't', 0, G_OPTION_ARG_STRING, &type, "ed25519 (default) or ecdsa-p256",
          "TYPE" },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("PRIVATE.pem PUBLIC.pem");
    TvdPolicyKeyType t = TVD_POLICY_KEY_ED25519;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 3) {
        return usage_error(ctx, "keygen needs PRIVATE.pem and PUBLIC.pem");
    }
    if (type && strcmp(type, "ecdsa-p256") == 0) {
        t = TVD_POLICY_KEY_ECDSA_P256;
    } else if (type && strcmp(type, "ed25519") != 0) {
        return usage_error(ctx, "--type is ed25519 or ecdsa-p256");
    }
    if (!tvd_policy_keygen(t, argv[1], argv[2], &id, &error)) {
        return fail_with(error);
    }
    g_print("%s\n", id);
    return EXIT_OK;
}

static int cmd_key_id(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GOptionContext) ctx = g_option_context_new("KEY.pem");
    g_autofree char *id = NULL;

    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 2) {
        return usage_error(ctx, "key-id needs one key file");
    }
    id = tvd_policy_key_id_of_file(argv[1], &error);
    if (!id) {
        return fail_with(error);
    }
    g_print("%s\n", id);
    return EXIT_OK;
}

static gboolean read_limited(const char *path, gsize max, char **data, gsize *len,
                             GError **error)
{
    if (!g_file_get_contents(path, data, len, error)) {
        return FALSE;
    }
    if (*len > max) {
        g_clear_pointer(data, g_free);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_TOO_LARGE,
                    "%s: larger than %zu bytes", path, max);
        return FALSE;
    }
    return TRUE;
}

static int cmd_sign(int argc, char **argv)
{
    g_autofree char *key = NULL;
    g_autofree char *output = NULL;
    g_autofree char *data = NULL;
    g_autofree char *sig = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    GOptionEntry entries[] = {
        { "key", 'k', 0, G_OPTION_ARG_FILENAME, &key, "administrator private key (0600)",
          "PRIVATE.pem" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
          "signature file (default POLICY.json.sig)", "SIG" },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("POLICY.json");
    gsize len = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 2 || !key) {
        return usage_error(ctx, "sign needs --key and one policy file");
    }
    if (!read_limited(argv[1], TVD_POLICY_MAX_BYTES, &data, &len, &error)) {
        return fail_with(error);
    }
    /* Never sign what the supervisor would refuse to parse. */
    policy = tvd_policy_parse(data, len, argv[1], NULL, &error);
    if (!policy) {
        return fail_with(error);
    }
    sig = tvd_policy_sign(data, len, key, &error);
    if (!sig) {
        return fail_with(error);
    }
    if (!output) {
        output = g_strconcat(argv[1], ".sig", NULL);
    }
    if (!g_file_set_contents(output, sig, -1, &error)) {
        return fail_with(error);
    }
    g_print("%s\n", output);
    return EXIT_OK;
}

static int cmd_verify(int argc, char **argv)
{
    g_autofree char *trust = NULL;
    g_autofree char *sig_path = NULL;
    g_autofree char *data = NULL;
    g_autofree char *sig = NULL;
    g_autofree char *signer = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicyTrustStore) store = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "trust", 't', 0, G_OPTION_ARG_FILENAME, &trust,
          "directory of trusted administrator public keys", "DIR" },
        { "signature", 's', 0, G_OPTION_ARG_FILENAME, &sig_path,
          "signature file (default POLICY.json.sig)", "SIG" },
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the result as JSON", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("POLICY.json");
    gsize len = 0, sig_len = 0;

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 2 || !trust) {
        return usage_error(ctx, "verify needs --trust and one policy file");
    }
    if (!sig_path) {
        sig_path = g_strconcat(argv[1], ".sig", NULL);
    }
    store = tvd_policy_trust_store_load(trust, &error);
    if (!store) {
        return fail_with(error);
    }
    if (!read_limited(argv[1], TVD_POLICY_MAX_BYTES, &data, &len, &error) ||
        !read_limited(sig_path, TVD_POLICY_SIG_FILE_MAX, &sig, &sig_len, &error)) {
        return fail_with(error);
    }
    if (!tvd_policy_trust_store_verify(store, data, len, sig, sig_len, &signer, &error)) {
        return fail_with(error);
    }
    policy = tvd_policy_parse(data, len, argv[1], NULL, &error);
    if (!policy) {
        return fail_with(error);
    }
    print_summary(policy, signer, json);
    return EXIT_OK;
}

static int cmd_check(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    gboolean json = FALSE;
    GOptionEntry entries[] = {
        { "json", 0, 0, G_OPTION_ARG_NONE, &json, "print the result as JSON", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("POLICY.json");

    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 2) {
        return usage_error(ctx, "check needs one policy file");
    }
    policy = tvd_policy_load_file(argv[1], NULL, &error);
    if (!policy) {
        return fail_with(error);
    }
    print_summary(policy, NULL, json);
    return EXIT_OK;
}

static int cmd_draft(int argc, char **argv)
{
    g_autofree char *name = NULL, *manifest = NULL, *root = NULL;
    g_autofree char *subnet = NULL, *role = NULL, *output = NULL;
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) digests = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    gint id = 0;
    guint skipped = 0;
    GOptionEntry entries[] = {
        { "name", 'n', 0, G_OPTION_ARG_STRING, &name, "the domain's name", "NAME" },
        { "id", 'i', 0, G_OPTION_ARG_INT, &id, "the domain's id (1..16777215)", "ID" },
        { "manifest", 'm', 0, G_OPTION_ARG_FILENAME, &manifest,
          "digests from an image manifest (lines \"SHA256  /PATH\")", "FILE" },
        { "root", 'r', 0, G_OPTION_ARG_FILENAME, &root,
          "digests of every regular file under DIR, the image's root", "DIR" },
        { "subnet", 0, 0, G_OPTION_ARG_STRING, &subnet,
          "network.subnet (default 10.(ID/256).(ID%256).0/24)", "CIDR" },
        { "role", 0, 0, G_OPTION_ARG_STRING, &role,
          "the one role and default_role (default member)", "ROLE" },
        { "output", 'o', 0, G_OPTION_ARG_FILENAME, &output,
          "write the draft here, never over an existing file (default stdout)", "FILE" },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new("");
    TvdDraftOptions opts = { 0 };

    g_option_context_set_summary(ctx, "Draft an unsigned policy for an image: review it, "
                                      "then sign it.");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
        return usage_error(ctx, error->message);
    }
    if (argc != 1 || !name || id <= 0 || !manifest == !root) {
        return usage_error(ctx, "draft needs --name, --id and one of --manifest or --root");
    }
    digests = manifest ? tvd_draft_digests_from_manifest(manifest, &error)
                       : tvd_draft_digests_from_tree(root, &error);
    if (!digests) {
        return fail_with(error);
    }
    opts.name = name;
    opts.id = (guint)id;
    opts.subnet = subnet;
    opts.role = role ? role : "member";
    opts.source = manifest ? manifest : root;
    text = tvd_draft_policy(digests, &opts, &skipped, &error);
    if (!text) {
        return fail_with(error);
    }
    /* The draft must parse: a bad --name, --id, --subnet or --role is
     * reported now, against the options, not when it is signed. */
    policy = tvd_policy_parse(text, strlen(text), "the draft", NULL, &error);
    if (!policy) {
        return fail_with(error);
    }
    if (output) {
        g_autoptr(GFile) file = g_file_new_for_path(output);
        g_autoptr(GFileOutputStream) out = g_file_create(file, G_FILE_CREATE_NONE, NULL,
                                                         &error);

        if (!out || !g_output_stream_write_all(G_OUTPUT_STREAM(out), text, strlen(text),
                                               NULL, NULL, &error) ||
            !g_output_stream_close(G_OUTPUT_STREAM(out), NULL, &error)) {
            g_printerr("tvd-policy-tool: %s: %s\n", output, error->message);
            return EXIT_IO;
        }
    } else {
        g_print("%s", text);
    }
    g_printerr("tvd-policy-tool: drafted domain %s: %u reference digests, %u paths left "
               "out under the excludes; unsigned: review it, then sign it\n", name,
               tvd_policy_data(policy)->n_references, skipped);
    return EXIT_OK;
}

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *help;
} commands[] = {
    { "keygen", cmd_keygen, "make an administrator key pair (private key 0600)" },
    { "key-id", cmd_key_id, "print the key id (sha256 of SubjectPublicKeyInfo)" },
    { "sign", cmd_sign, "check a policy and write its detached signature" },
    { "verify", cmd_verify, "verify a signature against a trust store, then check" },
    { "check", cmd_check, "parse and check a policy, print its digests" },
    { "draft", cmd_draft, "draft an unsigned policy from an image manifest or tree" },
};

static int usage(void)
{
    g_printerr("usage: tvd-policy-tool COMMAND [OPTIONS] ARGS (COMMAND --help for more)\n");
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_printerr("  %-8s %s\n", commands[i].name, commands[i].help);
    }
    g_printerr("exit codes: 0 ok, 1 invalid policy or signature, 2 usage, 3 file or key\n");
    return EXIT_USAGE;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        return usage();
    }
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].fn(argc - 1, argv + 1);
        }
    }
    return usage();
}
