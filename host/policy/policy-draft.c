/*
 * Drafting a domain policy for an image: see policy-draft.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy-tool"

#include "policy-draft.h"
#include "policy.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>
#include <openssl/evp.h>

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)

/* The agent measures its own binary first, in every round. */
#define AGENT_PATH "/usr/bin/tvd-agent"

/*
 * What changes at run time, so has no reference digest: the kernel's
 * pseudo-files (the agent measures /proc/sys/kernel/random/boot_id, new at
 * every boot), device nodes, and what services write after boot.
 */
const char *const tvd_draft_excludes[] = {
    "/proc/**", "/sys/**", "/dev/**", "/run/**", "/tmp/**", "/var/tmp/**",
    "/var/log/**", "/var/run/**", NULL,
};

static TvdDraftDigests *digests_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
}

/* Adds @path -> @hex; the same path twice must have the same digest. */
static gboolean digests_add(TvdDraftDigests *d, const char *path,
                            const char *hex, const char *where,
                            GError **error)
{
    const char *old = g_hash_table_lookup(d, path);

    if (old && strcmp(old, hex) != 0) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_VALUE,
                    "%s: %s is listed twice with different digests", where,
                    path);
        return FALSE;
    }
    g_hash_table_replace(d, g_strdup(path), g_ascii_strdown(hex, -1));
    return TRUE;
}

static gboolean is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++) {
        if (!g_ascii_isxdigit(s[i])) {
            return FALSE;
        }
    }
    return TRUE;
}

TvdDraftDigests *tvd_draft_digests_from_manifest(const char *path,
                                                 GError **error)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GHashTable) d = digests_new();
    gsize len;
    guint n = 0;

    if (!g_file_get_contents(path, &text, &len, error)) {
        return NULL;
    }
    if (memchr(text, '\0', len)) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_VALUE,
                    "%s: not a text file", path);
        return NULL;
    }
    lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        const char *p = *l;
        g_autofree char *where = NULL;

        n++;
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        /* sha256sum output: two spaces (text mode) or a space and a star. */
        if (strlen(p) < 64 + 3 || !is_hex64(p) || p[64] != ' ' ||
            (p[65] != ' ' && p[65] != '*') || p[66] != '/') {
            continue;
        }
        where = g_strdup_printf("%s:%u", path, n);
        {
            g_autofree char *hex = g_strndup(p, 64);

            if (!digests_add(d, p + 66, hex, where, error)) {
                return NULL;
            }
        }
    }
    if (g_hash_table_size(d) == 0) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_VALUE,
                    "%s: no digests (lines \"SHA256  /PATH\"); an image "
                    "manifest of scripts/build-guest-image has them, or "
                    "use --root DIR", path);
        return NULL;
    }
    return g_steal_pointer(&d);
}

/* SHA-256 of the file at @fd as lowercase hex. */
static char *sha256_fd(int fd, const char *path, GError **error)
{
    g_autoptr(EVP_MD_CTX) ctx = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    char buf[65536];
    ssize_t got;

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                    "%s: SHA-256 is not available", path);
        return NULL;
    }
    while ((got = read(fd, buf, sizeof(buf))) != 0) {
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0) {
            g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                        "%s: %s", path, g_strerror(errno));
            return NULL;
        }
        EVP_DigestUpdate(ctx, buf, (size_t)got);
    }
    EVP_DigestFinal_ex(ctx, md, &md_len);
    {
        GString *hex = g_string_sized_new(2 * md_len);

        for (unsigned int i = 0; i < md_len; i++) {
            g_string_append_printf(hex, "%02x", md[i]);
        }
        return g_string_free(hex, FALSE);
    }
}

static gboolean walk(TvdDraftDigests *d, const char *root, const char *rel,
                     GError **error)
{
    g_autofree char *dir_path = g_build_filename(root, rel, NULL);
    g_autoptr(GDir) dir = g_dir_open(dir_path, 0, error);
    const char *name;

    if (!dir) {
        return FALSE;
    }
    while ((name = g_dir_read_name(dir))) {
        g_autofree char *child = g_build_filename(rel, name, NULL);
        g_autofree char *full = g_build_filename(root, child, NULL);
        struct stat st;

        if (lstat(full, &st) != 0) {
            g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                        "%s: %s", full, g_strerror(errno));
            return FALSE;
        }
        if (S_ISDIR(st.st_mode)) {
            if (!walk(d, root, child, error)) {
                return FALSE;
            }
        } else if (S_ISREG(st.st_mode)) {
            g_autofree char *hex = NULL;
            int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

            if (fd < 0) {
                g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                            "%s: %s", full, g_strerror(errno));
                return FALSE;
            }
            hex = sha256_fd(fd, full, error);
            close(fd);
            if (!hex) {
                return FALSE;
            }
            g_hash_table_replace(d, g_strdup(child), g_steal_pointer(&hex));
        }
        /* Symbolic links, devices, sockets: the file a link names is
         * measured under its own path, the others are not files. */
    }
    return TRUE;
}

TvdDraftDigests *tvd_draft_digests_from_tree(const char *root, GError **error)
{
    g_autoptr(GHashTable) d = digests_new();

    if (!g_file_test(root, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                    "%s: not a directory", root);
        return NULL;
    }
    if (!walk(d, root, "/", error)) {
        return NULL;
    }
    if (g_hash_table_size(d) == 0) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_VALUE,
                    "%s: no regular files", root);
        return NULL;
    }
    return g_steal_pointer(&d);
}

static int compare_paths(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static gboolean excluded(const char *path)
{
    for (const char *const *x = tvd_draft_excludes; *x; x++) {
        if (tvd_policy_glob_match(*x, path)) {
            return TRUE;
        }
    }
    return FALSE;
}

static void member_string(JsonBuilder *b, const char *name, const char *value)
{
    json_builder_set_member_name(b, name);
    json_builder_add_string_value(b, value);
}

char *tvd_draft_policy(TvdDraftDigests *digests, const TvdDraftOptions *opts,
                       guint *n_skipped, GError **error)
{
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = NULL;
    g_autofree char *subnet = NULL, *description = NULL, *text = NULL;
    g_autofree const char **paths = NULL;
    guint n_paths = 0, skipped = 0, n_refs = 0;

    paths = (const char **)g_hash_table_get_keys_as_array(digests, &n_paths);
    qsort(paths, n_paths, sizeof(*paths), compare_paths);
    for (guint i = 0; i < n_paths; i++) {
        n_refs += !excluded(paths[i]);
    }
    if (n_refs > TVD_POLICY_MAX_REFERENCES) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_TOO_LARGE,
                    "%u paths, more than the %u references a policy may "
                    "have: draft from a smaller tree, or list digests in "
                    "membership.ima_allowlist", n_refs,
                    TVD_POLICY_MAX_REFERENCES);
        return NULL;
    }
    subnet = opts->subnet ? g_strdup(opts->subnet)
                          : g_strdup_printf("10.%u.%u.0/24",
                                            (opts->id >> 8) & 0xff,
                                            opts->id & 0xff);
    description = g_strdup_printf("drafted by tvd-policy-tool from %s: "
                                  "review, then sign", opts->source);

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "tvd_policy");
    json_builder_add_int_value(b, TVD_POLICY_FORMAT_VERSION);
    json_builder_set_member_name(b, "serial");
    json_builder_add_int_value(b, 1);
    member_string(b, "description", description);
    json_builder_set_member_name(b, "domain");
    json_builder_begin_object(b);
    member_string(b, "name", opts->name);
    json_builder_set_member_name(b, "id");
    json_builder_add_int_value(b, opts->id);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "membership");
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "reference_digests");
    json_builder_begin_array(b);
    for (guint i = 0; i < n_paths; i++) {
        if (excluded(paths[i])) {
            skipped++;
            continue;
        }
        json_builder_begin_object(b);
        member_string(b, "path", paths[i]);
        member_string(b, "sha256", g_hash_table_lookup(digests, paths[i]));
        if (strcmp(paths[i], AGENT_PATH) == 0) {
            json_builder_set_member_name(b, "required");
            json_builder_add_boolean_value(b, TRUE);
        }
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_set_member_name(b, "excludes");
    json_builder_begin_array(b);
    for (const char *const *x = tvd_draft_excludes; *x; x++) {
        json_builder_add_string_value(b, *x);
    }
    json_builder_end_array(b);
    member_string(b, "unlisted", "deny");
    json_builder_set_member_name(b, "evidence");
    json_builder_begin_object(b);
    member_string(b, "ima", "optional");
    member_string(b, "agent_list", "required");
    member_string(b, "pcr_bank", "sha256");
    member_string(b, "ima_violations", "reject");
    json_builder_end_object(b);
    json_builder_end_object(b);

    json_builder_set_member_name(b, "attestation");
    json_builder_begin_object(b);
    member_string(b, "interval", "30s");
    member_string(b, "deadline", "75s");
    member_string(b, "on_failure", "quarantine");
    json_builder_end_object(b);

    json_builder_set_member_name(b, "network");
    json_builder_begin_object(b);
    member_string(b, "subnet", subnet);
    json_builder_set_member_name(b, "roles");
    json_builder_begin_array(b);
    json_builder_add_string_value(b, opts->role);
    json_builder_end_array(b);
    member_string(b, "default_role", opts->role);
    member_string(b, "intra_default", "deny");
    json_builder_end_object(b);
    json_builder_end_object(b);

    root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    json_generator_set_pretty(gen, TRUE);
    json_generator_set_indent(gen, 2);
    text = json_generator_to_data(gen, NULL);
    if (n_skipped) {
        *n_skipped = skipped;
    }
    return g_strconcat(text, "\n", NULL);
}
