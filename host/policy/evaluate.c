/*
 * tvd domain policy: evaluation of verified evidence against membership
 * requirements, and the exclude globs. See policy.h and docs/policy.md.
 *
 * Paths come from the guest: they are never trusted to be printable, short
 * or unique. Reasons quote them escaped and shortened.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy"

#include "policy.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define REASON_PATH_MAX 120u    /* bytes of a path quoted in a reason */

/* ---- Globs ------------------------------------------------------------------- */

/*
 * "**" matches any run of characters, '/' included; "*" any run without
 * '/'; "?" one character other than '/'; "\x" the character x; anything
 * else itself. A dynamic program over the path, one row per pattern token:
 * O(pattern x path), no backtracking blow-up.
 */
gboolean tvd_policy_glob_match(const char *pattern, const char *path)
{
    gsize n = strlen(path);
    guint8 rows[2][TVD_POLICY_MAX_PATH + 2];
    guint8 *cur = rows[0], *next = rows[1];
    const char *p = pattern;

    if (n > TVD_POLICY_MAX_PATH) {
        return FALSE;
    }
    /* Quick reject on the literal prefix. */
    for (gsize i = 0; p[i] && p[i] != '*' && p[i] != '?' && p[i] != '\\'; i++) {
        if (i >= n || p[i] != path[i]) {
            return FALSE;
        }
    }
    memset(cur, 0, n + 1);
    cur[0] = 1;
    while (*p) {
        gboolean any = FALSE;

        memset(next, 0, n + 1);
        if (p[0] == '*' && p[1] == '*') {
            guint8 run = 0;

            while (*p == '*') {
                p++;                            /* "***" is "**" */
            }
            for (gsize j = 0; j <= n; j++) {
                run |= cur[j];
                next[j] = run;
            }
        } else if (p[0] == '*') {
            guint8 run = 0;

            p++;
            for (gsize j = 0; j <= n; j++) {
                if (j > 0 && path[j - 1] == '/') {
                    run = 0;
                }
                run |= cur[j];
                next[j] = run;
            }
        } else {
            char lit = *p;
            gboolean wild = lit == '?';

            if (lit == '\\' && p[1]) {
                p++;
                lit = *p;
            }
            p++;
            for (gsize j = 0; j < n; j++) {
                if (cur[j] && (wild ? path[j] != '/' : path[j] == lit)) {
                    next[j + 1] = 1;
                }
            }
        }
        for (gsize j = 0; j <= n && !any; j++) {
            any = next[j];
        }
        if (!any) {
            return FALSE;
        }
        {
            guint8 *t = cur;

            cur = next;
            next = t;
        }
    }
    return cur[n] != 0;
}

/* ---- Evaluation ---------------------------------------------------------------- */

static const char *const violation_names[] = {
    [TVD_POLICY_OK] = "ok",
    [TVD_POLICY_V_AGENT_VERSION] = "agent-version",
    [TVD_POLICY_V_PCR_MISSING] = "pcr-missing",
    [TVD_POLICY_V_PCR_MISMATCH] = "pcr-mismatch",
    [TVD_POLICY_V_DIGEST_MISMATCH] = "digest-mismatch",
    [TVD_POLICY_V_UNKNOWN_DIGEST] = "unknown-digest",
    [TVD_POLICY_V_REQUIRED_MISSING] = "required-missing",
    [TVD_POLICY_V_BAD_PATH] = "bad-path",
};

const char *tvd_policy_violation_name(TvdPolicyViolation violation)
{
    if ((guint)violation >= G_N_ELEMENTS(violation_names)) {
        return "unknown";
    }
    return violation_names[violation];
}

void tvd_policy_result_clear(TvdPolicyResult *result)
{
    g_clear_pointer(&result->reason, g_free);
    g_clear_pointer(&result->item, g_free);
    memset(result, 0, sizeof(*result));
}

/* Printable, escaped, at most REASON_PATH_MAX bytes (+ "..."). */
static char *show_path(const char *path)
{
    GString *s = g_string_new(NULL);

    for (const char *p = path; *p; p++) {
        guchar c = (guchar)*p;

        if (s->len >= REASON_PATH_MAX) {
            g_string_append(s, "...");
            break;
        }
        if (c < 0x20 || c >= 0x7f || c == '\\') {
            g_string_append_printf(s, "\\x%02x", c);
        } else {
            g_string_append_c(s, (char)c);
        }
    }
    return g_string_free(s, FALSE);
}

static char *hex(const guint8 d[32])
{
    char *s = g_malloc(7 + 64 + 1);

    memcpy(s, "sha256:", 7);
    for (int i = 0; i < 32; i++) {
        g_snprintf(s + 7 + 2 * i, 3, "%02x", d[i]);
    }
    return s;
}

static char *version_text(guint32 v)
{
    return g_strdup_printf("%u.%u.%u", (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff);
}

G_GNUC_PRINTF(4, 5)
static void violation(TvdPolicyResult *r, TvdPolicyViolation v, const char *item,
                      const char *fmt, ...)
{
    va_list ap;

    r->n_violations++;
    if (r->verdict == TVD_POLICY_VIOLATION) {
        return;                                 /* keep the first */
    }
    r->verdict = TVD_POLICY_VIOLATION;
    r->violation = v;
    r->item = g_strdup(item);
    va_start(ap, fmt);
    r->reason = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (strlen(r->reason) > 255) {
        r->reason[255] = '\0';                  /* ASCII only: a safe cut */
    }
}

static gboolean digest_in(const guint8 (*list)[32], guint n, const guint8 d[32])
{
    gboolean found = FALSE;

    /* Short lists, no secret: a plain scan (CRYPTO_memcmp costs nothing). */
    for (guint i = 0; i < n; i++) {
        found |= CRYPTO_memcmp(list[i], d, 32) == 0;
    }
    return found;
}

static int cmp_ref_key(const void *key, const void *elem)
{
    return strcmp(key, ((const TvdPolicyReference *)elem)->path);
}

static int cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

TvdPolicyVerdict tvd_policy_evaluate(const TvdPolicy *policy,
                                     const TvdPolicyEvidence *ev,
                                     TvdPolicyResult *r)
{
    const TvdPolicyData *d = tvd_policy_data(policy);
    g_autofree guint8 *seen = g_new0(guint8, MAX(d->n_references, 1));

    memset(r, 0, sizeof(*r));
    r->verdict = TVD_POLICY_ALLOWED;
    r->violation = TVD_POLICY_OK;

    if (d->min_agent_version && ev->agent_version < d->min_agent_version) {
        g_autofree char *have = version_text(ev->agent_version);
        g_autofree char *want = version_text(d->min_agent_version);

        violation(r, TVD_POLICY_V_AGENT_VERSION, "agent version",
                  "agent version %s below minimum %s", have, want);
    }

    for (guint i = 0; i < TVD_POLICY_PCR_COUNT; i++) {
        g_autofree char *item = NULL;

        if (!(d->pcr_mask & (1u << i))) {
            continue;
        }
        item = g_strdup_printf("PCR %u", i);
        if (!(ev->pcr_mask & (1u << i))) {
            violation(r, TVD_POLICY_V_PCR_MISSING, item,
                      "PCR %u is required but not in the evidence", i);
        } else if (!digest_in((const guint8 (*)[32])d->pcr_values[i], d->n_pcr_values[i],
                              ev->pcrs[i])) {
            g_autofree char *want = hex(d->pcr_values[i][0]);
            g_autofree char *got = hex(ev->pcrs[i]);

            if (d->n_pcr_values[i] == 1) {
                violation(r, TVD_POLICY_V_PCR_MISMATCH, item,
                          "PCR %u mismatch: expected %s got %s", i, want, got);
            } else {
                violation(r, TVD_POLICY_V_PCR_MISMATCH, item,
                          "PCR %u mismatch: got %s, none of the %u accepted values",
                          i, got, d->n_pcr_values[i]);
            }
        }
    }

    for (gsize i = 0; i < ev->n_entries; i++) {
        const TvdPolicyMeasurement *e = &ev->entries[i];
        const TvdPolicyReference *ref;
        gboolean excluded = FALSE;

        if (!e->path || e->path[0] == '\0' || strlen(e->path) > TVD_POLICY_MAX_PATH) {
            g_autofree char *shown = show_path(e->path ? e->path : "");

            violation(r, TVD_POLICY_V_BAD_PATH, shown,
                      "measured entry %" G_GSIZE_FORMAT " has an empty or too long path", i);
            continue;
        }
        for (guint j = 0; j < d->n_excludes && !excluded; j++) {
            excluded = tvd_policy_glob_match(d->excludes[j], e->path);
        }
        if (excluded) {
            r->n_ignored++;
            continue;
        }
        ref = d->n_references == 0 ? NULL :
              bsearch(e->path, d->references, d->n_references, sizeof(*d->references),
                      cmp_ref_key);
        if (ref) {
            seen[ref - d->references] = 1;
            if (!digest_in((const guint8 (*)[32])ref->digests, ref->n_digests, e->sha256)) {
                g_autofree char *shown = show_path(e->path);
                g_autofree char *got = hex(e->sha256);

                violation(r, TVD_POLICY_V_DIGEST_MISMATCH, e->path,
                          "digest mismatch for %s: %s is not a reference digest",
                          shown, got);
            }
            continue;
        }
        if (d->n_allowlist &&
            bsearch(e->sha256, d->allowlist, d->n_allowlist, 32, cmp32)) {
            continue;
        }
        if (!d->unlisted_allowed) {
            g_autofree char *shown = show_path(e->path);
            g_autofree char *got = hex(e->sha256);

            violation(r, TVD_POLICY_V_UNKNOWN_DIGEST, e->path,
                      "unknown digest for %s: %s", shown, got);
        }
    }

    for (guint i = 0; i < d->n_references; i++) {
        if (d->references[i].required && !seen[i]) {
            g_autofree char *shown = show_path(d->references[i].path);

            violation(r, TVD_POLICY_V_REQUIRED_MISSING, d->references[i].path,
                      "required file %s was not measured", shown);
        }
    }
    return r->verdict;
}
