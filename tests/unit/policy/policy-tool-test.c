/*
 * tvd-policy-tool end to end: keygen, key-id, sign, verify, check, and its
 * documented exit codes (0 ok, 1 invalid, 2 usage, 3 file or key).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "policy.h"

static char *dir;
static GPtrArray *paths;                        /* freed at exit */

static const char *in_dir(const char *name)
{
    char *p = g_build_filename(dir, name, NULL);

    g_ptr_array_add(paths, p);
    return p;
}

/* Runs the tool; answers its exit status, stdout in *out (optional). */
static int tool(char **out, const char *first, ...)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *o = NULL;
    g_autofree char *e = NULL;
    const char *a;
    va_list ap;
    int status = -1;

    g_ptr_array_add(argv, (gpointer)TVD_POLICY_TOOL);
    va_start(ap, first);
    for (a = first; a; a = va_arg(ap, const char *)) {
        g_ptr_array_add(argv, (gpointer)a);
    }
    va_end(ap);
    g_ptr_array_add(argv, NULL);
    g_assert_true(g_spawn_sync(dir, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &o, &e, &status, &error));
    g_assert_no_error(error);
    g_test_message("%s %s -> %s%s", TVD_POLICY_TOOL, first, o, e);
    if (out) {
        *out = g_steal_pointer(&o);
    }
    g_assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void test_flow(void)
{
    g_autofree char *id = NULL;
    g_autofree char *id2 = NULL;
    g_autofree char *out = NULL;
    g_autofree char *json = NULL;
    g_autofree char *blue = g_build_filename(TVD_EXAMPLES_DIR, "blue.json", NULL);
    g_autofree char *red = g_build_filename(TVD_EXAMPLES_DIR, "red.json", NULL);
    const char *copy = in_dir("blue.json");
    g_autofree char *text = NULL;
    gsize len;

    g_assert_cmpint(g_mkdir(in_dir("trust"), 0755), ==, 0);
    g_assert_cmpint(tool(&id, "keygen", "--type", "ecdsa-p256", "admin.key", "trust/admin.pem",
                         NULL), ==, 0);
    g_assert_true(g_str_has_prefix(id, "sha256:"));
    g_assert_cmpint(tool(&id2, "key-id", "trust/admin.pem", NULL), ==, 0);
    g_assert_cmpstr(id2, ==, id);
    g_assert_cmpint(tool(NULL, "keygen", "admin.key", "x.pem", NULL), ==, 3);

    g_assert_true(g_file_get_contents(blue, &text, &len, NULL));
    g_assert_true(g_file_set_contents(copy, text, (gssize)len, NULL));
    g_assert_cmpint(tool(&out, "sign", "--key", "admin.key", "blue.json", NULL), ==, 0);
    g_assert_true(g_file_test(in_dir("blue.json.sig"),
                              G_FILE_TEST_IS_REGULAR));
    g_assert_cmpint(tool(NULL, "verify", "--trust", "trust", "blue.json", NULL), ==, 0);
    g_assert_cmpint(tool(&json, "verify", "--trust", "trust", "--json", "blue.json", NULL),
                    ==, 0);
    g_assert_nonnull(strstr(json, "\"signed_by\" : \"admin\""));
    g_assert_nonnull(strstr(json, "\"id\" : 100"));

    /* another policy under blue's signature: invalid */
    g_assert_cmpint(tool(NULL, "verify", "--trust", "trust", "--signature", "blue.json.sig",
                         red, NULL), ==, 1);
    /* one byte changed */
    text[len - 2] = text[len - 2] == ' ' ? '\t' : ' ';
    g_assert_true(g_file_set_contents(copy, text, (gssize)len, NULL));
    g_assert_cmpint(tool(NULL, "verify", "--trust", "trust", "blue.json", NULL), ==, 1);

    /* a key readable by the group is refused */
    g_assert_cmpint(chmod(in_dir("admin.key"), 0640), ==, 0);
    g_assert_cmpint(tool(NULL, "sign", "--key", "admin.key", red, NULL), ==, 3);

    g_assert_cmpint(tool(NULL, "check", red, NULL), ==, 0);
    g_assert_cmpint(tool(NULL, "check", "nonexistent.json", NULL), ==, 3);
    g_assert_true(g_file_set_contents(copy, "{\"tvd_policy\": 1, \"x\": 1}", -1, NULL));
    g_assert_cmpint(tool(NULL, "check", "blue.json", NULL), ==, 1);
    g_assert_cmpint(tool(NULL, "frobnicate", NULL), ==, 2);
    g_assert_cmpint(tool(NULL, "sign", "blue.json", NULL), ==, 2);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int rc;

    g_test_init(&argc, &argv, NULL);
    paths = g_ptr_array_new_with_free_func(g_free);
    dir = g_dir_make_tmp("tvd-policy-tool-XXXXXX", &error);
    g_assert_no_error(error);
    g_test_add_func("/policy/tool/flow", test_flow);
    rc = g_test_run();
    {
        const char *names[] = { "admin.key", "x.pem", "blue.json", "blue.json.sig",
                                "trust/admin.pem" };

        for (guint i = 0; i < G_N_ELEMENTS(names); i++) {
            g_autofree char *p = g_build_filename(dir, names[i], NULL);

            g_unlink(p);
        }
        g_rmdir(in_dir("trust"));
        g_rmdir(dir);
    }
    g_ptr_array_unref(paths);
    g_free(dir);
    return rc;
}
