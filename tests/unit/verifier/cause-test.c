/*
 * Causes and verdicts (host/verifier/cause.h): every cause has a name that
 * maps back, a class; verifier errors map by rank; details are escaped and
 * bounded whatever the guest put in them.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "cause.h"
#include "verifier.h"

static void test_names_round_trip(void)
{
    for (guint i = TVD_CAUSE_AWAITING; i < TVD_CAUSE_COUNT_; i++) {
        TvdCause back = TVD_CAUSE_NONE;
        const char *name = tvd_cause_name((TvdCause)i);

        g_assert_cmpstr(name, !=, "unknown");
        g_assert_true(tvd_cause_from_name(name, &back));
        g_assert_cmpint(back, ==, i);
        g_assert_cmpint(tvd_cause_class((TvdCause)i), !=, TVD_REASON_NONE);
        /* Names are distinct: the first with this name is this one. */
        for (guint j = 0; j < i; j++) {
            g_assert_cmpstr(tvd_cause_name((TvdCause)j), !=, name);
        }
    }
    g_assert_cmpstr(tvd_cause_name(TVD_CAUSE_COUNT_), ==, "unknown");
    g_assert_false(tvd_cause_from_name("no-such-cause", &(TvdCause){ 0 }));
    g_assert_false(tvd_cause_from_name(NULL, &(TvdCause){ 0 }));
}

static void test_verify_errors_map_by_name(void)
{
    for (int code = TVD_VERIFY_ERROR_MALFORMED; code <= TVD_VERIFY_ERROR_LAST;
         code++) {
        g_assert_cmpstr(tvd_cause_name(tvd_cause_from_verify_error(code)), ==,
                        tvd_verify_error_reason(code));
    }
    g_assert_cmpint(tvd_cause_from_verify_error(0), ==, TVD_CAUSE_MALFORMED);
    g_assert_cmpint(tvd_cause_from_verify_error(9999), ==, TVD_CAUSE_MALFORMED);
}

static void test_classes(void)
{
    g_assert_cmpint(tvd_cause_class(TVD_CAUSE_DEADLINE_MISSED), ==,
                    TVD_REASON_DEADLINE);
    g_assert_cmpint(tvd_cause_class(TVD_CAUSE_POLICY_UNKNOWN_DIGEST), ==,
                    TVD_REASON_POLICY);
    g_assert_cmpint(tvd_cause_class(TVD_CAUSE_BAD_SIGNATURE), ==,
                    TVD_REASON_EVIDENCE);
    g_assert_cmpstr(tvd_reason_class_name(tvd_cause_class(TVD_CAUSE_STORE_FAILURE)),
                    ==, "host");
    g_assert_cmpstr(tvd_reason_class_name(TVD_REASON_ADMIN), ==, "admin");
}

/* Guest bytes: invalid UTF-8, control characters, backslashes. */
static void test_detail_escaped(void)
{
    TvdVerdict v;

    tvd_verdict_set(&v, TVD_STATE_QUARANTINED, TVD_CAUSE_POLICY_UNKNOWN_DIGEST,
                    "unknown digest for %s", "/tmp/\xff\xfe\n\\x");
    g_assert_cmpint(v.state, ==, TVD_STATE_QUARANTINED);
    g_assert_cmpint(v.cause, ==, TVD_CAUSE_POLICY_UNKNOWN_DIGEST);
    g_assert_cmpstr(v.detail, ==,
                    "unknown digest for /tmp/\\xff\\xfe\\x0a\\x5cx");
    g_assert_true(g_utf8_validate(v.detail, -1, NULL));
}

static void test_detail_bounded(void)
{
    g_autofree char *big = g_strnfill(10000, '\x01');
    TvdVerdict v;
    char small[8];

    tvd_verdict_set(&v, TVD_STATE_QUARANTINED, TVD_CAUSE_LOG_MALFORMED, "%s",
                    big);
    g_assert_cmpuint(strlen(v.detail), <, TVD_CAUSE_DETAIL_MAX);
    g_assert_true(g_str_has_suffix(v.detail, "..."));
    g_assert_true(g_str_has_prefix(v.detail, "\\x01\\x01"));
    /* An escape is never cut in half. */
    g_assert_cmpuint((strlen(v.detail) - 3) % 4, ==, 0);

    /* Exactly fitting text is not cut. */
    g_assert_cmpstr(tvd_escape_bounded("1234567", -1, small, sizeof(small)), ==,
                    "1234567");
    g_assert_cmpstr(tvd_escape_bounded("12345678", -1, small, sizeof(small)), ==,
                    "1234...");
    /* Embedded NUL with an explicit length is escaped, not an end. */
    g_assert_cmpstr(tvd_escape_bounded("a\0b", 3, small, sizeof(small)), ==,
                    "a\\x00b");
    tvd_verdict_set(&v, TVD_STATE_ADMITTED, TVD_CAUSE_ATTESTED, NULL);
    g_assert_cmpstr(v.detail, ==, "");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/cause/names-round-trip", test_names_round_trip);
    g_test_add_func("/cause/verify-errors-map-by-name",
                    test_verify_errors_map_by_name);
    g_test_add_func("/cause/classes", test_classes);
    g_test_add_func("/cause/detail-escaped", test_detail_escaped);
    g_test_add_func("/cause/detail-bounded", test_detail_bounded);
    return g_test_run();
}
