/*
 * tvd-policy-tool end to end: keygen, key-id, sign, verify, check, and its
 * documented exit codes (0 ok, 1 invalid, 2 usage, 3 file or key).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* Removes @path and everything under it (the draft test's image tree). */
static void remove_tree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *child = g_build_filename(path, name, NULL);

        if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
            !g_file_test(child, G_FILE_TEST_IS_SYMLINK)) {
            remove_tree(child);
        } else {
            g_unlink(child);
        }
    }
    g_rmdir(path);
}

static void put(const char *root, const char *path, const char *text)
{
    g_autofree char *full = g_build_filename(root, path, NULL);
    g_autofree char *parent = g_path_get_dirname(full);

    g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
    g_assert_true(g_file_set_contents(full, text, -1, NULL));
}

/* The reference of @path in @p, or NULL. */
static const TvdPolicyReference *reference(const TvdPolicy *p, const char *path)
{
    const TvdPolicyData *d = tvd_policy_data(p);

    for (guint i = 0; i < d->n_references; i++) {
        if (strcmp(d->references[i].path, path) == 0) {
            return &d->references[i];
        }
    }
    return NULL;
}

/*
 * draft: a policy for an image from its tree or its manifest: a reference
 * per file with the file's SHA-256, nothing under the run-time excludes
 * (the agent's boot_id is excluded), the agent required, unsigned but
 * signable; the errors of bad input.
 */
static void test_draft(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *work = g_dir_make_tmp("tvd-policy-draft-XXXXXX", &error);
    g_autofree char *img = g_build_filename(work, "img", NULL);
    g_autofree char *link = g_build_filename(img, "bin", "sh", NULL);
    g_autofree char *bin = g_build_filename(img, "bin", NULL);
    g_autofree char *drafted = g_build_filename(work, "web.json", NULL);
    g_autofree char *manifest = g_build_filename(work, "manifest", NULL);
    g_autofree char *agent_sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256,
                                                               "agent-bytes", -1);
    g_autofree char *conf_sha = g_compute_checksum_for_string(G_CHECKSUM_SHA256, "x=1\n",
                                                              -1);
    g_autofree char *out = NULL, *before = NULL, *after = NULL, *mtext = NULL;
    g_autoptr(TvdPolicy) p = NULL;
    g_autoptr(TvdPolicy) from_manifest = NULL;
    const TvdPolicyReference *ref;
    const TvdPolicyData *d;
    gboolean boot_id_excluded = FALSE;

    g_assert_no_error(error);
    put(img, "usr/bin/tvd-agent", "agent-bytes");
    put(img, "etc/app.conf", "x=1\n");
    put(img, "run/app.pid", "1\n");
    put(img, "proc/sys/kernel/random/boot_id", "a-boot\n");
    g_assert_cmpint(g_mkdir_with_parents(bin, 0755), ==, 0);
    g_assert_cmpint(symlink("../usr/bin/tvd-agent", link), ==, 0);

    g_assert_cmpint(tool(NULL, "draft", "--name", "web", "--id", "300", "--root", img,
                         "--output", drafted, NULL), ==, 0);
    p = tvd_policy_load_file(drafted, NULL, &error);
    g_assert_no_error(error);
    d = tvd_policy_data(p);
    g_assert_cmpstr(d->name, ==, "web");
    g_assert_cmpuint(d->id, ==, 300);
    /* Two files; the link, /run and /proc are not references. */
    g_assert_cmpuint(d->n_references, ==, 2);
    ref = reference(p, "/usr/bin/tvd-agent");
    g_assert_nonnull(ref);
    g_assert_true(ref->required);
    g_assert_cmpuint(ref->n_digests, ==, 1);
    {
        g_autofree char *hex = g_malloc0(65);

        for (int i = 0; i < 32; i++) {
            g_snprintf(hex + 2 * i, 3, "%02x", ref->digests[0][i]);
        }
        g_assert_cmpstr(hex, ==, agent_sha);
    }
    ref = reference(p, "/etc/app.conf");
    g_assert_nonnull(ref);
    g_assert_false(ref->required);
    g_assert_null(reference(p, "/bin/sh"));
    for (guint i = 0; i < d->n_excludes; i++) {
        boot_id_excluded |= tvd_policy_glob_match(d->excludes[i],
                                                  "/proc/sys/kernel/random/boot_id");
    }
    g_assert_true(boot_id_excluded);
    g_assert_false(d->unlisted_allowed);
    /* Unsigned, and signable as it is. */
    g_assert_false(g_file_test(in_dir("web.json.sig"), G_FILE_TEST_EXISTS));
    g_assert_cmpint(tool(NULL, "keygen", "draft.key", "draft.pem", NULL), ==, 0);
    g_assert_cmpint(tool(NULL, "sign", "--key", "draft.key", drafted, NULL), ==, 0);

    /* Never over an existing file. */
    g_assert_true(g_file_get_contents(drafted, &before, NULL, NULL));
    g_assert_cmpint(tool(NULL, "draft", "--name", "web", "--id", "301", "--root", img,
                         "--output", drafted, NULL), ==, 3);
    g_assert_true(g_file_get_contents(drafted, &after, NULL, NULL));
    g_assert_cmpstr(before, ==, after);

    /* A manifest as build-guest-image writes it: the digest lines count,
     * the rest is ignored; the same references as the tree. */
    mtext = g_strdup_printf("variant: plain\nfiles:\n  /etc/app.conf\n"
                            "  /usr/bin/tvd-agent <- /build/tvd-agent\n"
                            "sha256 (every regular file of the image):\n"
                            "  %s  /etc/app.conf\n  %s  /usr/bin/tvd-agent\n"
                            "  %s  /run/app.pid\n", conf_sha, agent_sha, conf_sha);
    g_assert_true(g_file_set_contents(manifest, mtext, -1, NULL));
    g_assert_cmpint(tool(&out, "draft", "--name", "web", "--id", "300", "--manifest",
                         manifest, NULL), ==, 0);
    from_manifest = tvd_policy_parse(out, strlen(out), "stdout", NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(tvd_policy_get_membership_digest(from_manifest), ==,
                    tvd_policy_get_membership_digest(p));

    /* Bad input: no digests, a path with two digests, both sources, a
     * domain name the format refuses (the draft must parse). */
    g_assert_true(g_file_set_contents(manifest, "files:\n  /init\n", -1, NULL));
    g_assert_cmpint(tool(NULL, "draft", "--name", "web", "--id", "300", "--manifest",
                         manifest, NULL), ==, 1);
    g_free(mtext);
    mtext = g_strdup_printf("%s  /a\n%s  /a\n", conf_sha, agent_sha);
    g_assert_true(g_file_set_contents(manifest, mtext, -1, NULL));
    g_assert_cmpint(tool(NULL, "draft", "--name", "web", "--id", "300", "--manifest",
                         manifest, NULL), ==, 1);
    g_assert_cmpint(tool(NULL, "draft", "--name", "web", "--id", "300", "--manifest",
                         manifest, "--root", img, NULL), ==, 2);
    g_assert_cmpint(tool(NULL, "draft", "--name", "Web_1", "--id", "300", "--root", img,
                         NULL), ==, 1);
    g_assert_cmpint(tool(NULL, "draft", "--id", "300", "--root", img, NULL), ==, 2);

    remove_tree(work);
    g_unlink(in_dir("draft.key"));
    g_unlink(in_dir("draft.pem"));
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
    g_test_add_func("/policy/tool/draft", test_draft);
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
