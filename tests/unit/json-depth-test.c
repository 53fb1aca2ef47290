/*
 * The JSON nesting-depth check of common/json-depth.h: depth counted over
 * arrays and objects, strings and escapes skipped, the offending offset.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>

#include "json-depth.h"

static gboolean ok(const char *text, guint max, gsize *at)
{
    return tvd_json_depth_ok(text, strlen(text), max, at);
}

static void test_depth_counted(void)
{
    gsize at = 0;

    g_assert_true(ok("{}", 1, NULL));
    g_assert_true(ok("{\"a\":[1,{\"b\":2}]}", 3, NULL));
    g_assert_false(ok("{\"a\":[1,{\"b\":2}]}", 2, &at));
    g_assert_cmpuint(at, ==, 8);
    /* Siblings do not add up. */
    g_assert_true(ok("[[],[],[[]]]", 3, NULL));
    g_assert_true(ok("42", 0, NULL));
    g_assert_false(ok("[", 0, &at));
    g_assert_cmpuint(at, ==, 0);
}

static void test_strings_skipped(void)
{
    g_assert_true(ok("[\"[[[[{{{{\"]", 1, NULL));
    /* An escaped quote does not end the string. */
    g_assert_true(ok("[\"\\\"[[[[\"]", 1, NULL));
    g_assert_true(ok("[\"\\\\\"]", 1, NULL));
    g_assert_false(ok("[\"\\\\\",[]]", 1, NULL));
}

/* What json-glib also parses: a quote in a single-quoted string or in a
 * comment does not open a string that would hide the brackets after it. */
static void test_lenient_syntax(void)
{
    gsize n = 100000;
    g_autofree char *deep = g_strnfill(n, '[');
    static const char *const prefixes[] = {
        "{\"a\": ['\"', ", "{\"a\": /* \" */ ", "{\"a\": // \"\n",
        "{\"a\": '\\', \"b\": ",
    };

    for (guint i = 0; i < G_N_ELEMENTS(prefixes); i++) {
        g_autofree char *text = g_strconcat(prefixes[i], deep, NULL);

        g_test_message("prefix %s", prefixes[i]);
        g_assert_false(tvd_json_depth_ok(text, strlen(text),
                                         TVD_JSON_DEPTH_MAX, NULL));
    }
    /* Brackets inside them do not count. */
    g_assert_true(ok("['[[[[', /* [[[[ */ 1] // [[[[\n", 1, NULL));
}

static void test_huge(void)
{
    gsize n = 1000000;
    g_autofree char *deep = g_strnfill(n, '[');
    gsize at = 0;

    g_assert_false(tvd_json_depth_ok(deep, n, TVD_JSON_DEPTH_MAX, &at));
    g_assert_cmpuint(at, ==, TVD_JSON_DEPTH_MAX);
    /* Only @len bytes are read: not NUL-terminated input. */
    g_assert_true(tvd_json_depth_ok(deep, TVD_JSON_DEPTH_MAX,
                                    TVD_JSON_DEPTH_MAX, NULL));
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/json-depth/counted", test_depth_counted);
    g_test_add_func("/json-depth/strings-skipped", test_strings_skipped);
    g_test_add_func("/json-depth/lenient-syntax", test_lenient_syntax);
    g_test_add_func("/json-depth/huge", test_huge);
    return g_test_run();
}
