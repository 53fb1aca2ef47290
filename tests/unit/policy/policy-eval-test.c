/*
 * Evaluation of verified evidence against a policy's membership
 * requirements: verdicts, exact reasons, excludes, and the glob matcher.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "policy.h"
#include "policy-test-base.h"

static TvdPolicy *policy_with(guint line, const char *text)
{
    g_autofree char *doc = base_policy_with(line, text);
    g_autoptr(GError) error = NULL;
    TvdPolicy *p = tvd_policy_parse(doc, strlen(doc), "eval.json", NULL, &error);

    g_assert_no_error(error);
    return p;
}

static void fill(guint8 d[32], guint8 v)
{
    memset(d, v, 32);
}

/* Evidence that the base policy admits. */
typedef struct {
    TvdPolicyMeasurement entries[8];
    TvdPolicyEvidence ev;
} Fixture;

static void good_evidence(Fixture *f)
{
    memset(f, 0, sizeof(*f));
    f->entries[0].path = "boot_aggregate";
    fill(f->entries[0].sha256, 0xee);           /* allowlisted */
    f->entries[1].path = "/usr/bin/agent";
    fill(f->entries[1].sha256, 0xbb);
    f->entries[2].path = "/etc/conf";
    fill(f->entries[2].sha256, 0xdd);           /* the second reference digest */
    f->entries[3].path = "/tmp/build/cc1";
    fill(f->entries[3].sha256, 0x11);           /* excluded by the /tmp glob */
    f->entries[4].path = "/var/app.log";
    fill(f->entries[4].sha256, 0x12);           /* excluded by the /var glob */
    f->ev.entries = f->entries;
    f->ev.n_entries = 5;
    f->ev.pcr_mask = 1u << 0 | 1u << 10;
    fill(f->ev.pcrs[0], 0xaa);
    fill(f->ev.pcrs[10], 0x42);
    f->ev.agent_version = TVD_POLICY_AGENT_VERSION(1, 0, 0);
}

static void test_allowed(void)
{
    g_autoptr(TvdPolicy) p = policy_with(0, NULL);
    g_auto(TvdPolicyResult) r = { 0 };
    Fixture f;

    good_evidence(&f);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_ALLOWED);
    g_assert_cmpint(r.violation, ==, TVD_POLICY_OK);
    g_assert_null(r.reason);
    g_assert_null(r.item);
    g_assert_cmpuint(r.n_violations, ==, 0);
    g_assert_cmpuint(r.n_ignored, ==, 2);
}

typedef struct {
    const char *name;
    void (*mutate)(Fixture *f);
    TvdPolicyViolation violation;
    const char *item;
    const char *reason;
} EvalCase;

static void m_old_agent(Fixture *f)
{
    f->ev.agent_version = TVD_POLICY_AGENT_VERSION(0, 9, 0);
}

static void m_pcr_missing(Fixture *f)
{
    f->ev.pcr_mask = 1u << 10;
}

static void m_pcr_wrong(Fixture *f)
{
    fill(f->ev.pcrs[0], 0x01);
}

static void m_unknown(Fixture *f)
{
    f->entries[5].path = "/usr/bin/evil";
    fill(f->entries[5].sha256, 0x11);
    f->ev.n_entries = 6;
}

static void m_mismatch(Fixture *f)
{
    /* allowlisted digest, but the path has its own reference digests */
    fill(f->entries[1].sha256, 0xee);
}

static void m_required(Fixture *f)
{
    f->entries[1].path = "/usr/bin/agent2";
    fill(f->entries[1].sha256, 0xee);
}

static void m_nasty_path(Fixture *f)
{
    f->entries[5].path = "/tmp\n/evil\x1b[0m";  /* not under /tmp/: "\n" follows */
    fill(f->entries[5].sha256, 0x11);
    f->ev.n_entries = 6;
}

static void m_empty_path(Fixture *f)
{
    f->entries[5].path = "";
    f->ev.n_entries = 6;
}

static void m_star_no_slash(Fixture *f)
{
    /* the single star of the /var glob does not reach into subdirectories */
    f->entries[5].path = "/var/log/x.log";
    fill(f->entries[5].sha256, 0x11);
    f->ev.n_entries = 6;
}

static const EvalCase eval_cases[] = {
    { "agent-version", m_old_agent, TVD_POLICY_V_AGENT_VERSION, "agent version",
      "agent version 0.9.0 below minimum 1.0.0" },
    { "pcr-missing", m_pcr_missing, TVD_POLICY_V_PCR_MISSING, "PCR 0",
      "PCR 0 is required but not in the evidence" },
    { "pcr-mismatch", m_pcr_wrong, TVD_POLICY_V_PCR_MISMATCH, "PCR 0",
      "PCR 0 mismatch: expected sha256:" HA " got "
      "sha256:0101010101010101010101010101010101010101010101010101010101010101" },
    { "unknown-digest", m_unknown, TVD_POLICY_V_UNKNOWN_DIGEST, "/usr/bin/evil",
      "unknown digest for /usr/bin/evil: "
      "sha256:1111111111111111111111111111111111111111111111111111111111111111" },
    { "digest-mismatch", m_mismatch, TVD_POLICY_V_DIGEST_MISMATCH, "/usr/bin/agent",
      "digest mismatch for /usr/bin/agent: sha256:" HE " is not a reference digest" },
    { "required-missing", m_required, TVD_POLICY_V_REQUIRED_MISSING, "/usr/bin/agent",
      "required file /usr/bin/agent was not measured" },
    { "escaped-path", m_nasty_path, TVD_POLICY_V_UNKNOWN_DIGEST, "/tmp\n/evil\x1b[0m",
      "unknown digest for /tmp\\x0a/evil\\x1b[0m: "
      "sha256:1111111111111111111111111111111111111111111111111111111111111111" },
    { "empty-path", m_empty_path, TVD_POLICY_V_BAD_PATH, "",
      "measured entry 5 has an empty or too long path" },
    { "star-stops-at-slash", m_star_no_slash, TVD_POLICY_V_UNKNOWN_DIGEST, "/var/log/x.log",
      "unknown digest for /var/log/x.log: "
      "sha256:1111111111111111111111111111111111111111111111111111111111111111" },
};

static void test_violation(gconstpointer data)
{
    const EvalCase *c = data;
    g_autoptr(TvdPolicy) p = policy_with(0, NULL);
    g_auto(TvdPolicyResult) r = { 0 };
    Fixture f;

    good_evidence(&f);
    c->mutate(&f);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_VIOLATION);
    g_assert_cmpint(r.verdict, ==, TVD_POLICY_VIOLATION);
    g_assert_cmpint(r.violation, ==, c->violation);
    g_assert_cmpstr(r.item, ==, c->item);
    g_assert_cmpstr(r.reason, ==, c->reason);
    g_assert_cmpuint(r.n_violations, ==, 1);
    g_assert_cmpuint(strlen(r.reason), <=, 255);
    g_assert_cmpstr(tvd_policy_violation_name(r.violation), !=, "unknown");
}

static void test_first_of_many(void)
{
    g_autoptr(TvdPolicy) p = policy_with(0, NULL);
    g_auto(TvdPolicyResult) r = { 0 };
    Fixture f;

    good_evidence(&f);
    m_unknown(&f);
    m_pcr_wrong(&f);
    m_required(&f);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_VIOLATION);
    /* PCRs are checked before measurements */
    g_assert_cmpint(r.violation, ==, TVD_POLICY_V_PCR_MISMATCH);
    g_assert_cmpuint(r.n_violations, ==, 3);
}

static void test_unlisted_allow(void)
{
    g_autoptr(TvdPolicy) p = policy_with(14, "    \"unlisted\": \"allow\"");
    g_auto(TvdPolicyResult) r = { 0 };
    g_auto(TvdPolicyResult) r2 = { 0 };
    Fixture f;

    good_evidence(&f);
    m_unknown(&f);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_ALLOWED);
    /* reference paths stay strict */
    m_mismatch(&f);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r2), ==, TVD_POLICY_VIOLATION);
    g_assert_cmpint(r2.violation, ==, TVD_POLICY_V_DIGEST_MISMATCH);
}

static void test_pcr_alternatives(void)
{
    g_autoptr(TvdPolicy) p = policy_with(7, "    \"pcrs\": { \"0\": [\"" HA "\", \"" HB "\"], "
                                            "\"7\": \"" HC "\" },");
    g_auto(TvdPolicyResult) r = { 0 };
    g_auto(TvdPolicyResult) r2 = { 0 };
    Fixture f;

    good_evidence(&f);
    f.ev.pcr_mask |= 1u << 7;
    fill(f.ev.pcrs[0], 0xbb);
    fill(f.ev.pcrs[7], 0xcc);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_ALLOWED);
    fill(f.ev.pcrs[0], 0xcc);
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r2), ==, TVD_POLICY_VIOLATION);
    g_assert_cmpstr(r2.reason, ==, "PCR 0 mismatch: got sha256:"
                    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
                    ", none of the 2 accepted values");
}

static void test_long_path(void)
{
    g_autoptr(TvdPolicy) p = policy_with(0, NULL);
    g_auto(TvdPolicyResult) r = { 0 };
    g_autofree char *path = g_strnfill(300, 'x');
    Fixture f;

    path[0] = '/';
    good_evidence(&f);
    f.entries[5].path = path;
    fill(f.entries[5].sha256, 0x11);
    f.ev.n_entries = 6;
    g_assert_cmpint(tvd_policy_evaluate(p, &f.ev, &r), ==, TVD_POLICY_VIOLATION);
    g_assert_cmpstr(r.item, ==, path);
    g_assert_nonnull(strstr(r.reason, "xxx...: sha256:1111"));
    g_assert_cmpuint(strlen(r.reason), <=, 255);
}

/* A policy without references, allowlist or PCRs (found by the fuzzer). */
static void test_minimal_policy(void)
{
    static const char minimal[] =
        "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"x1\", \"id\": 1},\n"
        " \"membership\": {\"excludes\": [\"/tmp/**\"]},"
        " \"network\": {\"subnet\": \"fd00:64::/64\", \"roles\": [\"a\"]}}\n";
    g_autoptr(TvdPolicy) p = tvd_policy_parse(minimal, sizeof(minimal) - 1, NULL, NULL, NULL);
    g_auto(TvdPolicyResult) r = { 0 };
    g_auto(TvdPolicyResult) r2 = { 0 };
    TvdPolicyMeasurement m[1] = { { "/tmp/x", { 0 } } };
    TvdPolicyEvidence ev = { m, 1, 0, { { 0 } }, 0 };

    g_assert_nonnull(p);
    g_assert_cmpint(tvd_policy_evaluate(p, &ev, &r), ==, TVD_POLICY_ALLOWED);
    m[0].path = "/bin/sh";
    g_assert_cmpint(tvd_policy_evaluate(p, &ev, &r2), ==, TVD_POLICY_VIOLATION);
    g_assert_cmpint(r2.violation, ==, TVD_POLICY_V_UNKNOWN_DIGEST);
}

static void test_names(void)
{
    g_assert_cmpstr(tvd_policy_violation_name(TVD_POLICY_V_UNKNOWN_DIGEST), ==,
                    "unknown-digest");
    g_assert_cmpstr(tvd_policy_violation_name(TVD_POLICY_V_PCR_MISMATCH), ==, "pcr-mismatch");
    g_assert_cmpstr(tvd_policy_violation_name((TvdPolicyViolation)99), ==, "unknown");
}

static void test_glob(void)
{
    static const struct {
        const char *pattern, *path;
        gboolean match;
    } cases[] = {
        { "/tmp/**", "/tmp/a", TRUE },
        { "/tmp/**", "/tmp/a/b/c", TRUE },
        { "/tmp/**", "/tmp", FALSE },
        { "/tmp/**", "/tmpx/a", FALSE },
        { "/tmp/*", "/tmp/a", TRUE },
        { "/tmp/*", "/tmp/a/b", FALSE },
        { "/var/*.log", "/var/x.log", TRUE },
        { "/var/*.log", "/var/.log", TRUE },
        { "/var/*.log", "/var/a/x.log", FALSE },
        { "**/*.pyc", "/usr/lib/python3/x.pyc", TRUE },
        { "**/*.pyc", "/x.pyc", TRUE },
        { "**/*.pyc", "/x.py", FALSE },
        { "/usr/lib/**/cache/*", "/usr/lib/a/b/cache/f", TRUE },
        { "/usr/lib/**/cache/*", "/usr/lib/cache/f", FALSE },
        { "/usr/lib/**cache/*", "/usr/lib/cache/f", TRUE },
        { "/a?c", "/abc", TRUE },
        { "/a?c", "/a/c", FALSE },
        { "/a\\*c", "/a*c", TRUE },
        { "/a\\*c", "/abc", FALSE },
        { "/exact", "/exact", TRUE },
        { "/exact", "/exactly", FALSE },
        { "*", "/x", FALSE },
        { "**", "/x/y", TRUE },
        { "/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/*/z", "/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/a/b",
          FALSE },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_test_message("%s ~ %s", cases[i].pattern, cases[i].path);
        g_assert_cmpint(tvd_policy_glob_match(cases[i].pattern, cases[i].path), ==,
                        cases[i].match);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/policy/eval/allowed", test_allowed);
    for (guint i = 0; i < G_N_ELEMENTS(eval_cases); i++) {
        g_autofree char *name = g_strdup_printf("/policy/eval/violation/%s",
                                                eval_cases[i].name);

        g_test_add_data_func(name, &eval_cases[i], test_violation);
    }
    g_test_add_func("/policy/eval/first-of-many", test_first_of_many);
    g_test_add_func("/policy/eval/unlisted-allow", test_unlisted_allow);
    g_test_add_func("/policy/eval/pcr-alternatives", test_pcr_alternatives);
    g_test_add_func("/policy/eval/long-path", test_long_path);
    g_test_add_func("/policy/eval/minimal-policy", test_minimal_policy);
    g_test_add_func("/policy/eval/names", test_names);
    g_test_add_func("/policy/eval/glob", test_glob);
    return g_test_run();
}
