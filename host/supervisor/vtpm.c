/*
 * vTPM provisioning: see vtpm.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-vtpm"

#include "vtpm.h"

#include <ftw.h>
#include <glib/gstdio.h>

static int remove_entry(const char *path, const struct stat *st, int flag,
                        struct FTW *ftw)
{
    return remove(path);
}

/* Remove a directory tree we made ourselves (no symlinks followed). */
static void remove_tree(const char *path)
{
    if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        g_warning("cannot remove %s: %s", path, g_strerror(errno));
    }
}

char *tvd_vtpm_ca_dir(const TvdSupervisorConfig *cfg)
{
    return g_build_filename(cfg->state_dir, "vtpm-ca", NULL);
}

static gboolean write_private(const char *path, const char *text,
                              GError **error)
{
    if (!g_file_set_contents_full(path, text, -1,
                                  G_FILE_SET_CONTENTS_CONSISTENT, 0600,
                                  error)) {
        return FALSE;
    }
    return TRUE;
}

/* The two small config files swtpm_setup and swtpm_localca need. */
static gboolean write_ca_configs(const TvdSupervisorConfig *cfg,
                                 const char *ca, GError **error)
{
    g_autofree char *localca = g_build_filename(ca, "swtpm-localca.conf", NULL);
    g_autofree char *options = g_build_filename(ca, "swtpm-localca.options",
                                                NULL);
    g_autofree char *setup = g_build_filename(ca, "swtpm_setup.conf", NULL);
    g_autofree char *localca_text = g_strdup_printf(
        "statedir = %s\n"
        "signingkey = %s/signkey.pem\n"
        "issuercert = %s/issuercert.pem\n"
        "certserial = %s/certserial\n", ca, ca, ca, ca);
    g_autofree char *setup_text = NULL;
    g_autofree char *localca_bin = g_find_program_in_path(cfg->swtpm_localca);

    if (!localca_bin) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                    "%s not found (install swtpm-tools)", cfg->swtpm_localca);
        return FALSE;
    }
    setup_text = g_strdup_printf("create_certs_tool = %s\n"
                                 "create_certs_tool_config = %s\n"
                                 "create_certs_tool_options = %s\n"
                                 "active_pcr_banks = sha256\n",
                                 localca_bin, localca, options);
    return write_private(localca, localca_text, error) &&
           write_private(options, "--platform-manufacturer tvd\n"
                                  "--platform-version 1\n"
                                  "--platform-model tvd-vtpm\n", error) &&
           write_private(setup, setup_text, error);
}

static gboolean run_setup(const TvdSupervisorConfig *cfg, const char *ca,
                          const char *dir, const char *certs_dir,
                          GError **error)
{
    g_autofree char *setup = g_build_filename(ca, "swtpm_setup.conf", NULL);
    g_autoptr(GSubprocess) p = NULL;
    g_autofree char *out = NULL;
    g_autofree char *errs = NULL;
    g_autofree char *state_arg = g_strdup(dir);

    p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                         G_SUBPROCESS_FLAGS_STDERR_PIPE, error,
                         cfg->swtpm_setup, "--tpm2", "--tpmstate", state_arg,
                         "--config", setup, "--create-ek-cert",
                         "--create-platform-cert", "--lock-nvram", "--ecc",
                         "--write-ek-cert-files", certs_dir,
                         "--not-overwrite", NULL);
    if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, &out, &errs,
                                             error)) {
        return FALSE;
    }
    if (!g_subprocess_get_successful(p)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "swtpm_setup failed for %s: %s", dir,
                    errs && *errs ? g_strstrip(errs) : "no message");
        return FALSE;
    }
    return TRUE;
}

/* The CA's private keys must never be readable by anyone else. */
static void protect_ca_keys(const char *ca)
{
    g_autoptr(GDir) d = g_dir_open(ca, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        if (g_str_has_suffix(name, ".pem") && (strstr(name, "key") ||
                                               strstr(name, "privkey"))) {
            g_autofree char *p = g_build_filename(ca, name, NULL);

            if (g_chmod(p, 0600) != 0) {
                g_warning("cannot restrict %s to 0600", p);
            }
        }
    }
}

char *tvd_vtpm_ca_ensure(const TvdSupervisorConfig *cfg, GError **error)
{
    g_autofree char *ca = tvd_vtpm_ca_dir(cfg);
    g_autofree char *root = g_build_filename(ca, "swtpm-localca-rootca-cert.pem",
                                             NULL);
    g_autofree char *tmp = NULL;
    g_autofree char *certs = NULL;
    gboolean ok;

    if (g_mkdir_with_parents(ca, 0700) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create %s: %s", ca, g_strerror(errno));
        return NULL;
    }
    if (!write_ca_configs(cfg, ca, error)) {
        return NULL;
    }
    if (g_file_test(root, G_FILE_TEST_EXISTS)) {
        protect_ca_keys(ca);
        return g_steal_pointer(&root);
    }
    /* swtpm_localca creates its CA the first time it signs: do it once. */
    tmp = g_build_filename(ca, "first-run", NULL);
    certs = g_build_filename(tmp, "certs", NULL);
    g_mkdir_with_parents(certs, 0700);
    ok = run_setup(cfg, ca, tmp, certs, error);
    remove_tree(tmp);
    if (!ok) {
        return NULL;
    }
    protect_ca_keys(ca);
    if (!g_file_test(root, G_FILE_TEST_EXISTS)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                    "swtpm_localca made no root certificate in %s", ca);
        return NULL;
    }
    g_message("created the host's vTPM CA in %s", ca);
    return g_steal_pointer(&root);
}

gboolean tvd_vtpm_provision(const TvdSupervisorConfig *cfg, const char *dir,
                            const char *vm_name, GBytes **ek_cert_der,
                            GError **error)
{
    g_autofree char *ca = tvd_vtpm_ca_dir(cfg);
    g_autofree char *root = NULL;
    g_autofree char *rsa = g_build_filename(dir, "ek-rsa.der", NULL);
    g_autofree char *certs = g_build_filename(dir, "certs", NULL);
    g_autofree char *data = NULL;
    gsize len;

    if (!g_file_test(rsa, G_FILE_TEST_EXISTS)) {
        g_autoptr(GDir) d = NULL;
        const char *name;

        root = tvd_vtpm_ca_ensure(cfg, error);
        if (!root) {
            return FALSE;
        }
        if (g_mkdir_with_parents(certs, 0700) != 0) {
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                        "cannot create %s: %s", certs, g_strerror(errno));
            return FALSE;
        }
        if (!run_setup(cfg, ca, dir, certs, error)) {
            return FALSE;
        }
        /* swtpm_setup names the files ek-<type>.crt: keep ours stable. */
        d = g_dir_open(certs, 0, error);
        if (!d) {
            return FALSE;
        }
        while ((name = g_dir_read_name(d))) {
            g_autofree char *src = g_build_filename(certs, name, NULL);
            const char *dst = NULL;

            if (g_str_has_prefix(name, "ek-rsa")) {
                dst = "ek-rsa.der";
            } else if (g_str_has_prefix(name, "ek-secp") ||
                       g_str_has_prefix(name, "ek-ecc")) {
                dst = "ek-ecc.der";
            }
            if (dst) {
                g_autofree char *to = g_build_filename(dir, dst, NULL);

                if (g_rename(src, to) != 0) {
                    g_set_error(error, G_IO_ERROR,
                                g_io_error_from_errno(errno),
                                "cannot move %s: %s", src, g_strerror(errno));
                    return FALSE;
                }
            }
        }
        g_message("provisioned the vTPM of %s in %s", vm_name, dir);
    }
    if (!g_file_get_contents(rsa, &data, &len, error)) {
        return FALSE;
    }
    *ek_cert_der = g_bytes_new_take(g_steal_pointer(&data), len);
    return TRUE;
}

GSubprocess *tvd_vtpm_start(const TvdSupervisorConfig *cfg, const char *dir,
                            const char *ctrl_path, GError **error)
{
    g_autofree char *state = g_strdup_printf("dir=%s", dir);
    g_autofree char *ctrl = g_strdup_printf("type=unixio,path=%s", ctrl_path);
    g_autofree char *log = g_strdup_printf("file=%s/swtpm.log,level=1", dir);
    GSubprocess *p;

    g_unlink(ctrl_path);
    p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT, error, cfg->swtpm,
                         "socket", "--tpm2", "--tpmstate", state, "--ctrl",
                         ctrl, "--log", log, "--terminate", NULL);
    if (!p) {
        return NULL;
    }
    /* QEMU must not start before the control socket exists. */
    for (int i = 0; i < 500; i++) {
        if (g_file_test(ctrl_path, G_FILE_TEST_EXISTS)) {
            return p;
        }
        /* Only a reaped process has an exit status: no identifier left. */
        if (!g_subprocess_get_identifier(p)) {
            break;
        }
        g_usleep(10 * 1000);
    }
    g_subprocess_force_exit(p);
    g_object_unref(p);
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                "swtpm did not open %s (see %s/swtpm.log)", ctrl_path, dir);
    return NULL;
}
