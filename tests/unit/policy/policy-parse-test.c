/*
 * Domain policy parser: valid policies, defaults, the canonical form and
 * updates, and malformed policies whose errors must name the exact JSON
 * path, line and column.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "policy.h"
#include "policy-test-base.h"

/* ---- Valid ------------------------------------------------------------------- */

static TvdPolicy *parse_ok(const char *text)
{
    g_autoptr(GError) error = NULL;
    TvdPolicy *p = tvd_policy_parse(text, strlen(text), "test.json", NULL, &error);

    g_assert_no_error(error);
    g_assert_nonnull(p);
    return p;
}

static void test_base(void)
{
    g_autofree char *text = base_policy_with(0, NULL);
    g_autoptr(TvdPolicy) p = parse_ok(text);
    const TvdPolicyData *d = tvd_policy_data(p);

    g_assert_cmpstr(d->name, ==, "blue");
    g_assert_cmpuint(d->id, ==, 100);
    g_assert_cmpuint(d->serial, ==, 7);
    g_assert_cmphex(d->min_agent_version, ==, TVD_POLICY_AGENT_VERSION(1, 0, 0));
    g_assert_cmphex(d->pcr_mask, ==, 1);
    g_assert_cmpuint(d->n_pcr_values[0], ==, 1);
    g_assert_cmpuint(d->pcr_values[0][0][31], ==, 0xaa);
    g_assert_cmpuint(d->n_references, ==, 2);
    /* sorted by path */
    g_assert_cmpstr(d->references[0].path, ==, "/etc/conf");
    g_assert_cmpuint(d->references[0].n_digests, ==, 2);
    g_assert_false(d->references[0].required);
    g_assert_cmpstr(d->references[1].path, ==, "/usr/bin/agent");
    g_assert_true(d->references[1].required);
    g_assert_cmpuint(d->n_allowlist, ==, 1);
    g_assert_cmpuint(d->n_excludes, ==, 2);
    g_assert_false(d->unlisted_allowed);
    g_assert_cmpuint(d->interval_ms, ==, 1000);
    g_assert_cmpuint(d->deadline_ms, ==, 3000);
    g_assert_cmpint(d->on_failure, ==, TVD_POLICY_ON_FAILURE_QUARANTINE);
    g_assert_cmpuint(d->measurement_pcr, ==, 13);
    g_assert_cmpuint(d->subnet_family, ==, 4);
    g_assert_cmpuint(d->subnet_prefix, ==, 24);
    g_assert_cmpuint(d->subnet_addr[0], ==, 10);
    g_assert_cmpuint(d->subnet_addr[1], ==, 1);
    g_assert_cmpint(d->encryption, ==, TVD_POLICY_ENCRYPTION_WIREGUARD);
    g_assert_cmpuint(d->n_roles, ==, 2);
    g_assert_cmpstr(d->default_role, ==, "web");
    g_assert_false(d->intra_default_allow);
    g_assert_cmpuint(d->n_rules, ==, 3);
    g_assert_cmpint(d->rules[0].protocol, ==, TVD_POLICY_PROTO_TCP);
    g_assert_cmpuint(d->rules[0].n_ports, ==, 1);
    g_assert_cmpuint(d->rules[0].ports[0].first, ==, 5432);
    g_assert_cmpint(d->rules[1].protocol, ==, TVD_POLICY_PROTO_ICMP);
    g_assert_cmpstr(d->rules[1].from, ==, "*");
    g_assert_cmpuint(d->rules[2].ports[0].first, ==, 1000);
    g_assert_cmpuint(d->rules[2].ports[0].last, ==, 2000);
    g_assert_cmpuint(d->rules[2].ports[1].last, ==, 53);
    g_assert_cmphex(d->properties, ==, TVD_POLICY_PROP_ALL);
    g_assert_cmpuint(d->max_vcpus, ==, 2);
    g_assert_cmpuint(d->max_memory_mib, ==, 1024);
    g_assert_cmpuint(d->max_members_per_host, ==, 4);
    g_assert_true(tvd_policy_has_role(p, "db"));
    g_assert_false(tvd_policy_has_role(p, "*"));
    g_assert_true(g_str_has_prefix(tvd_policy_get_digest_string(p), "sha256:"));
    g_assert_cmpuint(strlen(tvd_policy_get_digest_string(p)), ==, 71);
    g_assert_cmpuint(g_bytes_get_size(tvd_policy_get_bytes(p)), ==, strlen(text));
}

static const char minimal[] =
    "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"x1\", \"id\": 1},\n"
    " \"membership\": {}, \"network\": {\"subnet\": \"fd00:64::/64\", \"roles\": [\"a\"]}}\n";

static void test_defaults(void)
{
    g_autoptr(TvdPolicy) p = parse_ok(minimal);
    const TvdPolicyData *d = tvd_policy_data(p);

    g_assert_cmpuint(d->interval_ms, ==, 60000);
    g_assert_cmpuint(d->deadline_ms, ==, 120000);
    g_assert_cmpuint(d->measurement_pcr, ==, TVD_POLICY_MEASUREMENT_PCR_DEFAULT);
    g_assert_cmpint(d->on_failure, ==, TVD_POLICY_ON_FAILURE_QUARANTINE);
    g_assert_cmpint(d->encryption, ==, TVD_POLICY_ENCRYPTION_WIREGUARD);
    g_assert_cmpuint(d->subnet_family, ==, 6);
    g_assert_cmpuint(d->subnet_prefix, ==, 64);
    g_assert_null(d->default_role);
    g_assert_cmphex(d->properties, ==,
                    TVD_POLICY_PROP_ALL & ~(guint32)TVD_POLICY_PROP_AVAILABILITY);
    g_assert_cmpuint(d->min_agent_version, ==, 0);
    g_assert_cmpuint(d->pcr_mask, ==, 0);
    g_assert_cmpuint(d->n_references + d->n_allowlist + d->n_excludes + d->n_rules, ==, 0);
}

static void test_examples(void)
{
    const char *names[] = { "blue.json", "red.json" };
    const guint ids[] = { 100, 200 };

    for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
        g_autofree char *path = g_build_filename(TVD_EXAMPLES_DIR, names[i], NULL);
        g_autoptr(GError) error = NULL;
        g_autoptr(TvdPolicy) p = tvd_policy_load_file(path, NULL, &error);

        g_assert_no_error(error);
        g_assert_cmpuint(tvd_policy_data(p)->id, ==, ids[i]);
        g_assert_cmpuint(tvd_policy_data(p)->n_rules, >, 0);
        g_assert_cmpuint(tvd_policy_data(p)->n_roles, >=, 2);
    }
}

static void test_evidence(void)
{
    g_autofree char *base = base_policy_with(0, NULL);
    g_autoptr(TvdPolicy) a = parse_ok(base);
    g_autofree char *spelled = base_policy_with(
        14, "    \"unlisted\": \"deny\", \"evidence\": { \"ima\": \"optional\", "
            "\"agent_list\": \"required\", \"pcr_bank\": \"sha256\", "
            "\"ima_violations\": \"reject\" }");
    g_autoptr(TvdPolicy) b = parse_ok(spelled);
    g_autofree char *strict = base_policy_with(
        14, "    \"unlisted\": \"deny\", \"evidence\": { \"ima\": \"required\", "
            "\"agent_list\": \"optional\", \"ima_violations\": \"allow\" }");
    g_autoptr(TvdPolicy) c = parse_ok(strict);
    g_autofree char *with_boot = g_strdup(strict);
    g_autoptr(TvdPolicy) e = NULL;
    g_autoptr(TvdPolicy) f = NULL;
    const TvdPolicyData *d = tvd_policy_data(a);
    TvdPolicyEvidencePlan plan;

    /* defaults: the agent's list required, IMA judged when offered */
    g_assert_cmpint(d->ima, ==, TVD_POLICY_EVIDENCE_OPTIONAL);
    g_assert_cmpint(d->agent_list, ==, TVD_POLICY_EVIDENCE_REQUIRED);
    g_assert_cmphex(d->pcr_bank, ==, TVD_POLICY_BANK_SHA256);
    g_assert_false(d->ima_violations_allowed);
    g_assert_false(d->boot_aggregate_referenced);
    /* the defaults spelled out change nothing, not even the digests */
    g_assert_cmpstr(tvd_policy_get_canonical_digest(a), ==,
                    tvd_policy_get_canonical_digest(b));
    g_assert_true(tvd_policy_membership_changed(a, c));

    /* the plan comes from the policy, the agent's offers only add */
    tvd_policy_evidence_plan(a, FALSE, FALSE, &plan);
    g_assert_false(plan.ima);
    g_assert_true(plan.agent_list && plan.agent_list_required);
    g_assert_cmphex(plan.pcr_select, ==, 1u << 0 | 1u << 13);
    tvd_policy_evidence_plan(a, TRUE, TRUE, &plan);
    g_assert_true(plan.ima && !plan.ima_required);
    g_assert_cmphex(plan.pcr_select, ==, 1u << 0 | 1u << 10 | 1u << 13);

    d = tvd_policy_data(c);
    g_assert_cmpint(d->ima, ==, TVD_POLICY_EVIDENCE_REQUIRED);
    g_assert_cmpint(d->agent_list, ==, TVD_POLICY_EVIDENCE_OPTIONAL);
    g_assert_true(d->ima_violations_allowed);
    /* a guest that hides IMA is still asked for it */
    tvd_policy_evidence_plan(c, FALSE, FALSE, &plan);
    g_assert_true(plan.ima && plan.ima_required);
    g_assert_false(plan.agent_list);
    g_assert_true(plan.ima_violations_allowed);
    g_assert_cmphex(plan.pcr_select, ==, 1u << 0 | 1u << 10);

    /* a boot_aggregate reference: PCR 0..9 are quoted */
    {
        g_autofree char *t = base_policy_with(
            10, "      { \"path\": \"boot_aggregate\", \"sha256\": \"" HC "\" }");
        char *at = strstr(t, "\"unlisted\": \"deny\"");

        g_assert_nonnull(at);
        g_free(with_boot);
        with_boot = g_strdup_printf("%.*s\"unlisted\": \"deny\", \"evidence\": "
                                    "{ \"ima\": \"required\" }%s",
                                    (int)(at - t), t,
                                    at + strlen("\"unlisted\": \"deny\""));
    }
    e = parse_ok(with_boot);
    g_assert_true(tvd_policy_data(e)->boot_aggregate_referenced);
    tvd_policy_evidence_plan(e, FALSE, TRUE, &plan);
    g_assert_true(plan.boot_aggregate);
    g_assert_cmphex(plan.pcr_select, ==, 0x3ffu | 1u << 10 | 1u << 13);

    /* no policy: the defaults */
    tvd_policy_evidence_plan(NULL, FALSE, FALSE, &plan);
    g_assert_cmphex(plan.pcr_select, ==, 1u << TVD_POLICY_MEASUREMENT_PCR_DEFAULT);
    g_assert_cmphex(plan.pcr_bank, ==, TVD_POLICY_BANK_SHA256);

    /* SHA-384 without pinned PCR values */
    f = parse_ok("{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"x\", "
                 "\"id\": 1}, \"membership\": {\"evidence\": {\"pcr_bank\": "
                 "\"sha384\"}}, \"network\": {\"subnet\": \"10.0.0.0/24\", "
                 "\"roles\": [\"a\"]}}");
    g_assert_cmphex(tvd_policy_data(f)->pcr_bank, ==, TVD_POLICY_BANK_SHA384);
}

/* Same content laid out differently: same canonical digest, other bytes. */
static void test_canonical(void)
{
    g_autofree char *text = base_policy_with(0, NULL);
    g_autoptr(TvdPolicy) a = parse_ok(text);
    g_autofree char *reordered = base_policy_with(
        16, "  \"attestation\": { \"measurement_pcr\": 13, \"on_failure\": \"quarantine\","
            " \"deadline\": \"3000ms\", \"interval\": \"1s\" },");
    g_autoptr(TvdPolicy) b = parse_ok(reordered);
    g_autofree char *digest_case = base_policy_with(
        12, "    \"ima_allowlist\": [\"sha256:" HE "\", \"" HE "\"],");
    g_autoptr(TvdPolicy) c = parse_ok(digest_case);

    g_assert_cmpstr(tvd_policy_get_digest_string(a), !=, tvd_policy_get_digest_string(b));
    g_assert_cmpstr(tvd_policy_get_canonical_digest(a), ==,
                    tvd_policy_get_canonical_digest(b));
    g_assert_cmpstr(tvd_policy_get_canonical_digest(a), ==,
                    tvd_policy_get_canonical_digest(c));
    g_assert_cmpuint(tvd_policy_diff(a, b), ==, 0);
    g_assert_false(tvd_policy_membership_changed(a, b));
}

static void test_diff(void)
{
    g_autofree char *text = base_policy_with(0, NULL);
    g_autoptr(TvdPolicy) base = parse_ok(text);
    static const struct {
        guint line;
        const char *text;
        guint32 changes;
    } cases[] = {
        { 12, "    \"ima_allowlist\": [\"" HD "\"],", TVD_POLICY_CHANGE_MEMBERSHIP },
        { 6, "    \"min_agent_version\": \"1.1\",", TVD_POLICY_CHANGE_MEMBERSHIP },
        { 13, "    \"excludes\": [\"/tmp/**\"],", TVD_POLICY_CHANGE_MEMBERSHIP },
        { 14, "    \"unlisted\": \"allow\"", TVD_POLICY_CHANGE_MEMBERSHIP },
        { 16, "  \"attestation\": { \"interval\": \"2s\", \"deadline\": \"3s\" },",
          TVD_POLICY_CHANGE_ATTESTATION },
        { 16, "  \"attestation\": { \"interval\": \"1s\", \"deadline\": \"3s\", "
              "\"measurement_pcr\": 14 },",
          TVD_POLICY_CHANGE_ATTESTATION | TVD_POLICY_CHANGE_MEMBERSHIP },
        { 25, "      { \"from\": \"*\", \"to\": \"*\", \"protocol\": \"any\" },",
          TVD_POLICY_CHANGE_NETWORK },
        { 3, "  \"serial\": 8,", TVD_POLICY_CHANGE_OTHER },
        { 30, "    \"availability\": { \"max_vcpus\": 4 } }", TVD_POLICY_CHANGE_PROPERTIES },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *t = base_policy_with(cases[i].line, cases[i].text);
        g_autoptr(TvdPolicy) p = parse_ok(t);

        g_test_message("diff case %u", i);
        g_assert_cmphex(tvd_policy_diff(base, p), ==, cases[i].changes);
        g_assert_cmpint(tvd_policy_membership_changed(base, p), ==,
                        (cases[i].changes & TVD_POLICY_CHANGE_MEMBERSHIP) != 0);
    }
}

static void test_update(void)
{
    g_autofree char *t7 = base_policy_with(0, NULL);
    g_autofree char *t8 = base_policy_with(3, "  \"serial\": 8,");
    g_autofree char *other = base_policy_with(4, "  \"domain\": { \"name\": \"red\", \"id\": 200 },");
    g_autoptr(TvdPolicy) p7 = parse_ok(t7);
    g_autoptr(TvdPolicy) p8 = parse_ok(t8);
    g_autoptr(TvdPolicy) po = parse_ok(other);
    g_autoptr(GError) error = NULL;

    g_assert_true(tvd_policy_check_update(p7, p8, &error));
    g_assert_no_error(error);
    g_assert_false(tvd_policy_check_update(p8, p7, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE);
    g_assert_nonnull(strstr(error->message, "rollback"));
    g_clear_error(&error);
    g_assert_false(tvd_policy_check_update(p7, p7, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE);
    g_clear_error(&error);
    g_assert_false(tvd_policy_check_update(p7, po, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UPDATE);
}

static void test_refcount(void)
{
    g_autofree char *text = base_policy_with(0, NULL);
    TvdPolicy *p = parse_ok(text);
    TvdPolicy *q = tvd_policy_ref(p);

    tvd_policy_unref(p);
    g_assert_cmpstr(tvd_policy_data(q)->name, ==, "blue");
    tvd_policy_unref(q);
    tvd_policy_unref(NULL);
}

static void test_host_and_limits(void)
{
    g_autofree char *text = base_policy_with(0, NULL);
    g_autoptr(TvdPolicy) p = parse_ok(text);
    g_autofree char *r1 = NULL;
    g_autofree char *r2 = NULL;
    g_autofree char *r3 = NULL;
    g_autofree char *r4 = NULL;

    g_assert_true(tvd_policy_host_can_carry(p, TVD_POLICY_PROP_ALL, NULL));
    g_assert_false(tvd_policy_host_can_carry(p, TVD_POLICY_PROP_ALL &
                                             ~(guint32)(TVD_POLICY_PROP_SECURE_IO |
                                                        TVD_POLICY_PROP_AUDITING), &r1));
    g_assert_cmpstr(r1, ==, "host lacks required properties: secure_io auditing");
    g_assert_true(tvd_policy_check_vm_limits(p, 2, 1024, 3, NULL));
    g_assert_false(tvd_policy_check_vm_limits(p, 3, 1024, 0, &r2));
    g_assert_cmpstr(r2, ==, "3 vCPUs above the domain's limit of 2");
    g_assert_false(tvd_policy_check_vm_limits(p, 1, 2048, 0, &r3));
    g_assert_cmpstr(r3, ==, "2048 MiB of memory above the domain's limit of 1024 MiB");
    g_assert_false(tvd_policy_check_vm_limits(p, 1, 512, 4, &r4));
    g_assert_cmpstr(r4, ==, "the host already carries 4 members of the domain (limit 4)");
}

static void test_did_you_mean(void)
{
    g_autofree char *text = base_policy_with(19, "    \"encrypton\": \"wireguard\",");
    g_autofree char *text2 = base_policy_with(3, "  \"zzz\": 7,");
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicy) p = tvd_policy_parse(text, strlen(text), "t.json", NULL, &error);

    g_assert_null(p);
    g_assert_cmpstr(error->message, ==,
                    "t.json:19:5: network.encrypton: unknown field, did you mean "
                    "\"encryption\"? (this object may have: subnet, encryption, roles, "
                    "default_role, intra_default, rules)");
    g_clear_error(&error);
    g_assert_null(tvd_policy_parse(text2, strlen(text2), "t.json", NULL, &error));
    g_assert_nonnull(strstr(error->message, "zzz: unknown field (this object may have:"));
}

static void test_versions(void)
{
    guint32 v = 0;

    g_assert_true(tvd_policy_parse_version("1", &v));
    g_assert_cmphex(v, ==, 0x010000);
    g_assert_true(tvd_policy_parse_version("1.2.3", &v));
    g_assert_cmphex(v, ==, 0x010203);
    g_assert_true(tvd_policy_parse_version("255.0", &v));
    g_assert_false(tvd_policy_parse_version("256", &v));
    g_assert_false(tvd_policy_parse_version("1.2.3.4", &v));
    g_assert_false(tvd_policy_parse_version("1.", &v));
    g_assert_false(tvd_policy_parse_version("", &v));
    g_assert_false(tvd_policy_parse_version("v1", &v));
    g_assert_false(tvd_policy_parse_version("0001", &v));
}

/* ---- Malformed ------------------------------------------------------------------ */

typedef struct {
    guint line;                 /* base line replaced */
    const char *text;
    TvdPolicyError code;
    const char *path;           /* expected JSON path */
    guint err_line;             /* 0 = the replaced line */
    const char *anchor;         /* the column is where this first occurs in err_line */
} BadCase;

static const BadCase bad_cases[] = {
    /* membership.evidence */
    { 14, "    \"unlisted\": \"deny\", \"evidence\": { \"ima\": \"maybe\" }",
      TVD_POLICY_ERROR_VALUE, "membership.evidence.ima", 0, "\"ima\"" },
    { 14, "    \"unlisted\": \"deny\", \"evidence\": { \"imaa\": \"required\" }",
      TVD_POLICY_ERROR_UNKNOWN_FIELD, "membership.evidence.imaa", 0, "\"imaa\"" },
    { 14, "    \"unlisted\": \"deny\", \"evidence\": { \"pcr_bank\": \"sha1\" }",
      TVD_POLICY_ERROR_VALUE, "membership.evidence.pcr_bank", 0, "\"pcr_bank\"" },
    /* PCR 0 is pinned with a SHA-256 value */
    { 14, "    \"unlisted\": \"deny\", \"evidence\": { \"pcr_bank\": \"sha384\" }",
      TVD_POLICY_ERROR_VALUE, "membership.evidence.pcr_bank", 0, "\"pcr_bank\"" },
    { 14, "    \"unlisted\": \"deny\", \"evidence\": { \"ima_violations\": 1 }",
      TVD_POLICY_ERROR_TYPE, "membership.evidence.ima_violations", 0,
      "\"ima_violations\"" },
    /* boot_aggregate is enforced from the IMA log: IMA must be required */
    { 10, "      { \"path\": \"boot_aggregate\", \"sha256\": \"" HC "\" }",
      TVD_POLICY_ERROR_VALUE, "membership.reference_digests", 8,
      "\"reference_digests\"" },
    /* values out of range or malformed */
    { 18, "    \"subnet\": \"10.1.0.1/24\",", TVD_POLICY_ERROR_VALUE,
      "network.subnet", 0, "\"subnet\"" },
    { 18, "    \"subnet\": \"10.1.0.0/31\",", TVD_POLICY_ERROR_VALUE,
      "network.subnet", 0, "\"subnet\"" },
    { 18, "    \"subnet\": \"10.1.0.0\",", TVD_POLICY_ERROR_VALUE,
      "network.subnet", 0, "\"subnet\"" },
    { 26, "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", "
          "\"ports\": [\"1000-2000\", 70000] }",
      TVD_POLICY_ERROR_VALUE, "network.rules[2].ports[1]", 0, "70000" },
    { 26, "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", "
          "\"ports\": [\"2000-1000\"] }",
      TVD_POLICY_ERROR_VALUE, "network.rules[2].ports[0]", 0, "\"2000-1000\"" },
    { 26, "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", "
          "\"ports\": [\"80-\"] }",
      TVD_POLICY_ERROR_VALUE, "network.rules[2].ports[0]", 0, "\"80-\"" },
    { 26, "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", \"ports\": [] }",
      TVD_POLICY_ERROR_VALUE, "network.rules[2].ports", 0, "\"ports\"" },
    { 26, "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", \"ports\": [true] }",
      TVD_POLICY_ERROR_TYPE, "network.rules[2].ports[0]", 0, "true" },
    { 25, "      { \"from\": \"*\", \"to\": \"*\", \"protocol\": \"icmp\", \"ports\": [1] },",
      TVD_POLICY_ERROR_VALUE, "network.rules[1].ports", 0, "\"ports\"" },
    { 24, "      { \"from\": \"web\", \"to\": \"dbx\", \"protocol\": \"tcp\" },",
      TVD_POLICY_ERROR_VALUE, "network.rules[0].to", 0, "\"to\"" },
    { 24, "      { \"from\": \"web\", \"to\": \"db\", \"protocol\": \"sctp\" },",
      TVD_POLICY_ERROR_VALUE, "network.rules[0].protocol", 0, "\"protocol\"" },
    { 24, "      { \"from\": \"web\", \"to\": \"db\" },",
      TVD_POLICY_ERROR_MISSING_FIELD, "network.rules[0].protocol", 0, "{" },
    { 4, "  \"domain\": { \"name\": \"Blue\", \"id\": 100 },", TVD_POLICY_ERROR_VALUE,
      "domain.name", 0, "\"name\"" },
    { 4, "  \"domain\": { \"name\": \"-blue\", \"id\": 100 },", TVD_POLICY_ERROR_VALUE,
      "domain.name", 0, "\"name\"" },
    { 4, "  \"domain\": { \"name\": \"blue\", \"id\": 16777216 },", TVD_POLICY_ERROR_VALUE,
      "domain.id", 0, "\"id\"" },
    { 4, "  \"domain\": { \"name\": \"blue\", \"id\": 0 },", TVD_POLICY_ERROR_VALUE,
      "domain.id", 0, "\"id\"" },
    { 4, "  \"domain\": { \"name\": \"blue\", \"id\": 1.5 },", TVD_POLICY_ERROR_TYPE,
      "domain.id", 0, "\"id\"" },
    { 4, "  \"domain\": { \"name\": \"blue\" },", TVD_POLICY_ERROR_MISSING_FIELD,
      "domain.id", 0, "\"domain\"" },
    { 7, "    \"pcrs\": { \"24\": \"" HA "\" },", TVD_POLICY_ERROR_VALUE,
      "membership.pcrs[\"24\"]", 0, "\"24\"" },
    { 7, "    \"pcrs\": { \"07\": \"" HA "\" },", TVD_POLICY_ERROR_VALUE,
      "membership.pcrs[\"07\"]", 0, "\"07\"" },
    { 7, "    \"pcrs\": { \"0\": \"xyz\" },", TVD_POLICY_ERROR_VALUE,
      "membership.pcrs[\"0\"]", 0, "\"0\"" },
    { 7, "    \"pcrs\": { \"0\": [\"" HA "\", 5] },", TVD_POLICY_ERROR_TYPE,
      "membership.pcrs[\"0\"][1]", 0, "5" },
    { 9, "      { \"path\": \"/usr/bin/agent\", \"sha256\": \"bb\", \"required\": true },",
      TVD_POLICY_ERROR_VALUE, "membership.reference_digests[0].sha256", 0, "\"sha256\"" },
    { 9, "      { \"path\": \"usr/bin/agent\", \"sha256\": \"" HB "\" },",
      TVD_POLICY_ERROR_VALUE, "membership.reference_digests[0].path", 0, "\"path\"" },
    { 9, "      { \"path\": \"/usr/bin/agent\", \"sha256\": \"" HB "\", \"required\": 1 },",
      TVD_POLICY_ERROR_TYPE, "membership.reference_digests[0].required", 0, "\"required\"" },
    { 10, "      { \"path\": \"/usr/bin/agent\", \"sha256\": \"" HC "\" }",
      TVD_POLICY_ERROR_VALUE, "membership.reference_digests[1].path", 0, "\"path\"" },
    { 12, "    \"ima_allowlist\": [\"" HE "\", \"" HE "z\"],", TVD_POLICY_ERROR_VALUE,
      "membership.ima_allowlist[1]", 0, "\"" HE "z" },
    { 13, "    \"excludes\": [\"/tmp/**\", \"/usr/**\"],", TVD_POLICY_ERROR_VALUE,
      "membership.excludes[1]", 0, "\"/usr/**\"" },
    { 13, "    \"excludes\": [\"tmp\"],", TVD_POLICY_ERROR_VALUE,
      "membership.excludes[0]", 0, "\"tmp\"" },
    { 14, "    \"unlisted\": \"maybe\"", TVD_POLICY_ERROR_VALUE,
      "membership.unlisted", 0, "\"unlisted\"" },
    { 6, "    \"min_agent_version\": \"1.x\",", TVD_POLICY_ERROR_VALUE,
      "membership.min_agent_version", 0, "\"min_agent_version\"" },
    { 16, "  \"attestation\": { \"interval\": \"1s\", \"deadline\": \"1s\" },",
      TVD_POLICY_ERROR_VALUE, "attestation.deadline", 0, "\"deadline\"" },
    { 16, "  \"attestation\": { \"interval\": \"50ms\" },",
      TVD_POLICY_ERROR_VALUE, "attestation.interval", 0, "\"interval\"" },
    { 16, "  \"attestation\": { \"interval\": \"5 s\" },",
      TVD_POLICY_ERROR_VALUE, "attestation.interval", 0, "\"interval\"" },
    { 16, "  \"attestation\": { \"interval\": 5 },",
      TVD_POLICY_ERROR_TYPE, "attestation.interval", 0, "\"interval\"" },
    { 16, "  \"attestation\": { \"on_failure\": \"panic\" },",
      TVD_POLICY_ERROR_VALUE, "attestation.on_failure", 0, "\"on_failure\"" },
    { 16, "  \"attestation\": { \"measurement_pcr\": 16 },",
      TVD_POLICY_ERROR_VALUE, "attestation.measurement_pcr", 0, "\"measurement_pcr\"" },
    { 16, "  \"attestation\": { \"measurement_pcr\": 10 },",
      TVD_POLICY_ERROR_VALUE, "attestation.measurement_pcr", 0, "\"measurement_pcr\"" },
    { 16, "  \"attestation\": { \"measurement_pcr\": 23 },",
      TVD_POLICY_ERROR_VALUE, "attestation.measurement_pcr", 0, "\"measurement_pcr\"" },
    { 20, "    \"roles\": [\"web\", \"db\", \"db\"],", TVD_POLICY_ERROR_VALUE,
      "network.roles[2]", 0, "\"db\"]" },
    { 20, "    \"roles\": [\"Web\"],", TVD_POLICY_ERROR_VALUE,
      "network.roles[0]", 0, "\"Web\"" },
    { 20, "    \"roles\": \"web\",", TVD_POLICY_ERROR_TYPE, "network.roles", 0, "\"roles\"" },
    { 20, "    \"roles\": [],", TVD_POLICY_ERROR_VALUE, "network.roles", 0, "\"roles\"" },
    { 21, "    \"default_role\": \"admin\",", TVD_POLICY_ERROR_VALUE,
      "network.default_role", 0, "\"default_role\"" },
    { 19, "    \"encryption\": \"none\",", TVD_POLICY_ERROR_VALUE,
      "properties.secure_io", 29, "\"secure_io\"" },
    { 19, "    \"encryption\": \"ipsec\",", TVD_POLICY_ERROR_VALUE,
      "network.encryption", 0, "\"encryption\"" },
    { 30, "    \"availability\": { \"max_vcpus\": 0 } }", TVD_POLICY_ERROR_VALUE,
      "properties.availability.max_vcpus", 0, "\"max_vcpus\"" },
    { 29, "  \"properties\": { \"confinement\": \"yes\",", TVD_POLICY_ERROR_TYPE,
      "properties.confinement", 0, "\"confinement\"" },
    { 3, "  \"serial\": 0,", TVD_POLICY_ERROR_VALUE, "serial", 0, "\"serial\"" },
    { 3, "  \"serial\": \"7\",", TVD_POLICY_ERROR_TYPE, "serial", 0, "\"serial\"" },
    { 3, "  \"serial\": null,", TVD_POLICY_ERROR_TYPE, "serial", 0, "\"serial\"" },
    { 2, "  \"tvd_policy\": 2,", TVD_POLICY_ERROR_VERSION, "tvd_policy", 0, "\"tvd_policy\"" },
    { 2, "  \"tvd_polcy\": 1,", TVD_POLICY_ERROR_MISSING_FIELD, "tvd_policy", 1, "{" },
    /* unknown fields (typo protection) */
    { 3, "  \"serail\": 7,", TVD_POLICY_ERROR_UNKNOWN_FIELD, "serail", 0, "\"serail\"" },
    { 19, "    \"encrypton\": \"wireguard\",", TVD_POLICY_ERROR_UNKNOWN_FIELD,
      "network.encrypton", 0, "\"encrypton\"" },
    { 9, "      { \"path\": \"/usr/bin/agent\", \"sha256\": \"" HB "\", \"requird\": true },",
      TVD_POLICY_ERROR_UNKNOWN_FIELD, "membership.reference_digests[0].requird", 0,
      "\"requird\"" },
    { 30, "    \"availability\": { \"max_cpus\": 2 } }", TVD_POLICY_ERROR_UNKNOWN_FIELD,
      "properties.availability.max_cpus", 0, "\"max_cpus\"" },
    { 25, "      { \"from\": \"*\", \"to\": \"*\", \"protocol\": \"icmp\", \"port\": 1 },",
      TVD_POLICY_ERROR_UNKNOWN_FIELD, "network.rules[1].port", 0, "\"port\"" },
    /* syntax: strict JSON only, with the position of the offending byte */
    { 18, "    \"subnet\": \"10.1.0.0/24\"", TVD_POLICY_ERROR_SYNTAX, "network", 19,
      "\"encryption\"" },
    { 12, "    \"ima_allowlist\": [\"" HE "\",],", TVD_POLICY_ERROR_SYNTAX,
      "membership.ima_allowlist[1]", 0, "]" },
    { 5, "  \"membership\": { // comment", TVD_POLICY_ERROR_SYNTAX, "membership", 0, "//" },
    { 3, "  \"serial\": 7, \"serial\": 8,", TVD_POLICY_ERROR_SYNTAX, "serial", 0,
      "\"serial\": 8" },
    { 9, "      { \"path\": \"/usr/bin/a\\u0000b\", \"sha256\": \"" HB "\" },",
      TVD_POLICY_ERROR_SYNTAX, "membership.reference_digests[0].path", 0, "b\", " },
    { 9, "      { \"path\": \"/usr/bin/a\\ud800\", \"sha256\": \"" HB "\" },",
      TVD_POLICY_ERROR_SYNTAX, "membership.reference_digests[0].path", 0, "\", \"sha" },
    { 9, "      { \"path\": \"/usr/bin/a\tb\", \"sha256\": \"" HB "\" },",
      TVD_POLICY_ERROR_SYNTAX, "membership.reference_digests[0].path", 0, "\tb" },
    { 3, "  \"serial\": 12345678901234567,", TVD_POLICY_ERROR_TOO_LARGE, "serial", 0, "," },
    { 3, "  \"serial\": 07,", TVD_POLICY_ERROR_SYNTAX, "serial", 0, "7," },
    { 3, "  \"serial\": 'x',", TVD_POLICY_ERROR_SYNTAX, "serial", 0, "'" },
    { 3, "  serial: 7,", TVD_POLICY_ERROR_SYNTAX, "", 0, "serial" },
    { 7, "    \"pcrs\": {\"0\": [[[[[[[\"a\"]]]]]]]},", TVD_POLICY_ERROR_TOO_LARGE,
      "membership.pcrs[\"0\"][0][0][0][0][0]", 0, "[[\"a\"" },
    { 31, "} {}", TVD_POLICY_ERROR_SYNTAX, "", 0, "{}" },
    { 31, "", TVD_POLICY_ERROR_SYNTAX, "", 32, NULL },
};

static void check_error(const char *text, gsize len, TvdPolicyError code, const char *path,
                        guint line, guint column)
{
    g_auto(TvdPolicyErrorLocation) loc = { NULL, 0, 0 };
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdPolicy) p = tvd_policy_parse(text, len, "test.json", &loc, &error);
    g_autofree char *prefix = NULL;

    g_assert_null(p);
    g_assert_nonnull(error);
    g_test_message("error: %s", error->message);
    g_assert_error(error, TVD_POLICY_ERROR, (gint)code);
    g_assert_cmpstr(loc.path, ==, path);
    g_assert_cmpuint(loc.line, ==, line);
    if (column) {
        g_assert_cmpuint(loc.column, ==, column);
    }
    prefix = path[0] ? g_strdup_printf("test.json:%u:%u: %s: ", loc.line, loc.column, path)
                     : g_strdup_printf("test.json:%u:%u: ", loc.line, loc.column);
    g_assert_true(g_str_has_prefix(error->message, prefix));
}

static void test_bad(gconstpointer data)
{
    const BadCase *c = data;
    g_autofree char *text = base_policy_with(c->line, c->text);
    guint line = c->err_line ? c->err_line : c->line;
    guint column = 1;

    if (c->anchor) {
        const char *l = line == c->line ? c->text : base_lines[line - 1];
        const char *at = strstr(l, c->anchor);

        g_assert_nonnull(at);
        column = (guint)(at - l) + 1;
    }
    check_error(text, strlen(text), c->code, c->path, line, column);
}

#define CHECK_LIT(lit, ...) check_error(lit, sizeof(lit) - 1, __VA_ARGS__)

static void test_not_an_object(void)
{
    CHECK_LIT("[]", TVD_POLICY_ERROR_TYPE, "", 1, 1);
    CHECK_LIT("  \n", TVD_POLICY_ERROR_SYNTAX, "", 2, 1);
    CHECK_LIT("", TVD_POLICY_ERROR_SYNTAX, "", 1, 1);
    CHECK_LIT("\xef\xbb\xbf{}", TVD_POLICY_ERROR_SYNTAX, "", 1, 1);
    CHECK_LIT("{\"tvd_policy\": 1, \"x\": \"\xff\"}", TVD_POLICY_ERROR_SYNTAX, "x", 1, 25);
    /* a NUL byte ends nothing: it is an error where it is */
    CHECK_LIT("{\"tvd_policy\": 1}\0{}", TVD_POLICY_ERROR_SYNTAX, "", 1, 18);
    /* columns count characters: the two bytes of "\u00e9" are one */
    CHECK_LIT("{\"d\": \"\xc3\xa9\", \"e\": x}", TVD_POLICY_ERROR_SYNTAX, "e", 1, 17);
    /* overlong UTF-8 */
    CHECK_LIT("{\"d\": \"\xc0\xaf\"}", TVD_POLICY_ERROR_SYNTAX, "d", 1, 8);
}

/* ---- Caps ---------------------------------------------------------------------- */

static void test_cap_roles(void)
{
    g_autoptr(GString) roles = g_string_new("    \"roles\": [");
    g_autofree char *text = NULL;

    for (guint i = 0; i <= TVD_POLICY_MAX_ROLES; i++) {
        g_string_append_printf(roles, "%s\"r%u\"", i ? ", " : "", i);
    }
    g_string_append(roles, "],");
    text = base_policy_with(20, roles->str);
    check_error(text, strlen(text), TVD_POLICY_ERROR_TOO_LARGE, "network.roles", 20, 5);
}

static void test_cap_string(void)
{
    g_autofree char *longdesc = g_strnfill(TVD_POLICY_MAX_STRING + 1, 'x');
    g_autofree char *line = g_strdup_printf("  \"serial\": 7, \"description\": \"%s\",",
                                            longdesc);
    g_autofree char *text = base_policy_with(3, line);
    g_autofree char *desc = g_strnfill(TVD_POLICY_MAX_DESCRIPTION + 1, 'y');
    g_autofree char *line2 = g_strdup_printf("  \"serial\": 7, \"description\": \"%s\",", desc);
    g_autofree char *text2 = base_policy_with(3, line2);

    /* the strict scanner stops in the string, at the byte past the cap */
    check_error(text, strlen(text), TVD_POLICY_ERROR_TOO_LARGE, "description", 3,
                (guint)strlen("  \"serial\": 7, \"description\": \"") + 1 +
                TVD_POLICY_MAX_STRING);
    check_error(text2, strlen(text2), TVD_POLICY_ERROR_TOO_LARGE, "description", 3, 16);
    /* a final multi-byte character or escape may not cross the cap either */
    {
        g_autofree char *fill = g_strnfill(TVD_POLICY_MAX_STRING - 1, 'x');
        g_autofree char *l3 = g_strdup_printf("  \"serial\": 7, \"description\": \"%s\\u00e9\",",
                                              fill);
        g_autofree char *t3 = base_policy_with(3, l3);

        check_error(t3, strlen(t3), TVD_POLICY_ERROR_TOO_LARGE, "description", 3,
                    (guint)strlen(l3) - 1);
    }
}

static void test_cap_rules(void)
{
    g_autoptr(GString) g = g_string_new("    \"rules\": [");
    g_autofree char *text = NULL;

    for (guint i = 0; i <= TVD_POLICY_MAX_RULES; i++) {
        g_string_append_printf(g, "%s{\"from\": \"web\", \"to\": \"db\", \"protocol\": \"any\"}",
                               i ? "," : "");
    }
    g_string_append(g, "]");
    /* lines 23..27 become one line 23, then blank lines keep the numbering */
    text = base_policy_with(0, NULL);
    {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        g_free(lines[22]);
        lines[22] = g_strdup(g->str);
        for (guint i = 23; i < 27; i++) {
            g_free(lines[i]);
            lines[i] = g_strdup("");
        }
        g_free(text);
        text = g_strjoinv("\n", lines);
    }
    check_error(text, strlen(text), TVD_POLICY_ERROR_TOO_LARGE, "network.rules", 23, 5);
}

static void test_cap_allowlist(void)
{
    g_autoptr(GString) g = g_string_new("    \"ima_allowlist\": [");
    g_autofree char *text = NULL;

    for (guint i = 0; i <= TVD_POLICY_MAX_ALLOWLIST; i++) {
        g_string_append_printf(g, "%s\"%064x\"", i ? "," : "", i);
    }
    g_string_append(g, "],");
    text = base_policy_with(12, g->str);
    check_error(text, strlen(text), TVD_POLICY_ERROR_TOO_LARGE, "membership.ima_allowlist",
                12, 5);
    /* exactly at the cap it parses, and dedupes */
    {
        g_autoptr(GString) ok = g_string_new("    \"ima_allowlist\": [");
        g_autoptr(TvdPolicy) p = NULL;
        g_autofree char *t2 = NULL;

        for (guint i = 0; i < TVD_POLICY_MAX_ALLOWLIST; i++) {
            g_string_append_printf(ok, "%s\"%064x\"", i ? "," : "", i % 1000);
        }
        g_string_append(ok, "],");
        t2 = base_policy_with(12, ok->str);
        p = parse_ok(t2);
        g_assert_cmpuint(tvd_policy_data(p)->n_allowlist, ==, 1000);
    }
}

static void test_cap_size(void)
{
    gsize len = TVD_POLICY_MAX_BYTES + 1;
    g_autofree char *big = g_malloc(len);
    g_auto(TvdPolicyErrorLocation) loc = { NULL, 0, 0 };
    g_autoptr(GError) error = NULL;

    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    g_assert_null(tvd_policy_parse(big, len, "big.json", &loc, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_TOO_LARGE);
    g_assert_cmpstr(loc.path, ==, "");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/parse/base", test_base);
    g_test_add_func("/policy/parse/defaults", test_defaults);
    g_test_add_func("/policy/parse/examples", test_examples);
    g_test_add_func("/policy/parse/canonical", test_canonical);
    g_test_add_func("/policy/parse/evidence", test_evidence);
    g_test_add_func("/policy/parse/diff", test_diff);
    g_test_add_func("/policy/parse/update", test_update);
    g_test_add_func("/policy/parse/refcount", test_refcount);
    g_test_add_func("/policy/parse/host-and-limits", test_host_and_limits);
    g_test_add_func("/policy/parse/versions", test_versions);
    g_test_add_func("/policy/parse/did-you-mean", test_did_you_mean);
    for (guint i = 0; i < G_N_ELEMENTS(bad_cases); i++) {
        g_autofree char *name = g_strdup_printf("/policy/parse/bad/%02u-line%u", i,
                                                bad_cases[i].line);

        g_test_add_data_func(name, &bad_cases[i], test_bad);
    }
    g_test_add_func("/policy/parse/bad/not-an-object", test_not_an_object);
    g_test_add_func("/policy/parse/caps/roles", test_cap_roles);
    g_test_add_func("/policy/parse/caps/string", test_cap_string);
    g_test_add_func("/policy/parse/caps/rules", test_cap_rules);
    g_test_add_func("/policy/parse/caps/allowlist", test_cap_allowlist);
    g_test_add_func("/policy/parse/caps/size", test_cap_size);
    return g_test_run();
}
