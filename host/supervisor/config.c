/*
 * Supervisor configuration: see config.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-config"

#include "config.h"
#include "policy.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(tvd-config-error-quark, tvd_config_error)

TvdSupervisorConfig *tvd_config_new_default(const char *state_dir)
{
    TvdSupervisorConfig *cfg = g_new0(TvdSupervisorConfig, 1);

    cfg->state_dir = g_strdup(state_dir ? state_dir : "/var/lib/tvd");
    /* The default socket is where tvdctl looks (/run/tvd/supervisor.sock);
     * a supervisor given its own state directory keeps its sockets there,
     * so that two supervisors never share a run directory. */
    cfg->run_dir = state_dir ? g_build_filename(cfg->state_dir, "run", NULL)
                             : g_strdup("/run/tvd");
    cfg->api_socket = g_build_filename(cfg->run_dir, "supervisor.sock", NULL);
    cfg->adopt_socket = g_build_filename(cfg->run_dir, "adopt.sock", NULL);
    cfg->qemu_binary = g_strdup("qemu-system-x86_64");
    cfg->accel = g_strdup("kvm:tcg");
    cfg->default_memory_mib = 256;
    cfg->hello_timeout_s = 60;
    cfg->swtpm = g_strdup("swtpm");
    cfg->swtpm_setup = g_strdup("swtpm_setup");
    cfg->swtpm_localca = g_strdup("swtpm_localca");
    cfg->nic = g_strdup("tap");
    cfg->trusted_keys_dir = g_build_filename(cfg->state_dir, "admin-keys",
                                             NULL);
    cfg->interval_s = 30;
    cfg->deadline_s = 60;
    return cfg;
}

void tvd_config_free(TvdSupervisorConfig *cfg)
{
    if (!cfg) {
        return;
    }
    g_free(cfg->state_dir);
    g_free(cfg->run_dir);
    g_free(cfg->api_socket);
    g_free(cfg->adopt_socket);
    g_free(cfg->qemu_binary);
    g_free(cfg->firmware_dir);
    g_free(cfg->accel);
    g_free(cfg->swtpm);
    g_free(cfg->swtpm_setup);
    g_free(cfg->swtpm_localca);
    g_free(cfg->trusted_keys_dir);
    g_free(cfg->nic);
    g_free(cfg->api_tcp);
    g_free(cfg->api_tls_cert);
    g_free(cfg->api_tls_key);
    g_free(cfg->api_tls_client_ca);
    g_free(cfg);
}

/* Replace *@dst with the key's value when the key is present. */
static gboolean take_string(GKeyFile *kf, const char *group, const char *key,
                            char **dst, GError **error)
{
    g_autoptr(GError) err = NULL;
    char *val = g_key_file_get_string(kf, group, key, &err);

    if (!val) {
        if (g_error_matches(err, G_KEY_FILE_ERROR,
                            G_KEY_FILE_ERROR_KEY_NOT_FOUND) ||
            g_error_matches(err, G_KEY_FILE_ERROR,
                            G_KEY_FILE_ERROR_GROUP_NOT_FOUND)) {
            return TRUE;
        }
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[%s] %s: %s", group, key, err->message);
        return FALSE;
    }
    if (!*val) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[%s] %s: must not be empty", group, key);
        g_free(val);
        return FALSE;
    }
    g_free(*dst);
    *dst = val;
    return TRUE;
}

static gboolean take_uint(GKeyFile *kf, const char *group, const char *key,
                          guint min, guint max, guint *dst, GError **error)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *val = g_key_file_get_string(kf, group, key, &err);
    guint64 v;

    if (!val) {
        return TRUE;
    }
    if (!g_ascii_string_to_unsigned(val, 10, min, max, &v, &err)) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[%s] %s: %s", group, key, err->message);
        return FALSE;
    }
    *dst = (guint)v;
    return TRUE;
}

/* Keys we know, so that a typo is an error rather than silently ignored. */
static const char *const known_keys[][2] = {
    { "supervisor", "state_dir" }, { "supervisor", "run_dir" },
    { "supervisor", "api_socket" }, { "supervisor", "adopt_socket" },
    { "qemu", "binary" }, { "qemu", "firmware_dir" }, { "qemu", "accel" },
    { "qemu", "default_memory_mib" }, { "qemu", "hello_timeout_s" },
    { "vtpm", "swtpm" }, { "vtpm", "swtpm_setup" }, { "vtpm", "swtpm_localca" },
    { "policy", "trusted_keys_dir" }, { "network", "nic" },
    { "api", "tcp" }, { "api", "tls_cert" }, { "api", "tls_key" },
    { "api", "tls_client_ca" },
    { "attestation", "interval_s" }, { "attestation", "deadline_s" },
};

/* The known groups (@group NULL) or the known keys of @group. */
static GPtrArray *known_names(const char *group)
{
    GPtrArray *names = g_ptr_array_new();

    for (gsize i = 0; i < G_N_ELEMENTS(known_keys); i++) {
        const char *name = group ? known_keys[i][1] : known_keys[i][0];

        if ((!group || !strcmp(known_keys[i][0], group)) &&
            !g_ptr_array_find_with_equal_func(names, name, g_str_equal,
                                              NULL)) {
            g_ptr_array_add(names, (gpointer)name);
        }
    }
    g_ptr_array_add(names, NULL);
    return names;
}

static gboolean check_known(GKeyFile *kf, GError **error)
{
    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    g_autoptr(GPtrArray) group_names = known_names(NULL);

    for (char **g = groups; *g; g++) {
        g_auto(GStrv) keys = g_key_file_get_keys(kf, *g, NULL, NULL);
        g_autoptr(GPtrArray) key_names = NULL;
        const char *const *gn = (const char *const *)group_names->pdata;

        if (!g_strv_contains(gn, *g)) {
            const char *best = tvd_policy_suggest(*g, gn);
            g_autofree char *list = g_strjoinv(", ", (char **)gn);

            g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                        "unknown group [%s]%s%s%s (groups: %s)", *g,
                        best ? ", did you mean [" : "", best ? best : "",
                        best ? "]?" : "", list);
            return FALSE;
        }
        key_names = known_names(*g);
        for (char **k = keys; k && *k; k++) {
            const char *const *kn = (const char *const *)key_names->pdata;

            if (!g_strv_contains(kn, *k)) {
                const char *best = tvd_policy_suggest(*k, kn);
                g_autofree char *list = g_strjoinv(", ", (char **)kn);

                g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                            "[%s] %s: unknown key%s%s%s ([%s] may have: %s)",
                            *g, *k, best ? ", did you mean \"" : "",
                            best ? best : "", best ? "\"?" : "", *g, list);
                return FALSE;
            }
        }
    }
    return TRUE;
}

/* One directory the supervisor keeps its state or sockets in. */
static gboolean check_dir(const char *what, const char *path, GError **error)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return TRUE;            /* created 0700 at start */
        }
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_UNSAFE,
                    "%s %s: %s", what, path, g_strerror(errno));
        return FALSE;
    }
    if (!S_ISDIR(st.st_mode)) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_UNSAFE,
                    "%s %s is not a directory", what, path);
        return FALSE;
    }
    if (st.st_uid != geteuid()) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_UNSAFE,
                    "%s %s belongs to uid %u, not to the supervisor's user "
                    "(uid %u)", what, path, (unsigned)st.st_uid,
                    (unsigned)geteuid());
        return FALSE;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_UNSAFE,
                    "%s %s is writable by group or others (mode %04o): "
                    "refusing to start; chmod go-w %s (0700 is the default)",
                    what, path, (unsigned)(st.st_mode & 07777), path);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_config_check_dirs(const TvdSupervisorConfig *cfg, GError **error)
{
    return check_dir("the state directory", cfg->state_dir, error) &&
           check_dir("the run directory", cfg->run_dir, error);
}

static TvdSupervisorConfig *config_from_keyfile(GKeyFile *kf, GError **error)
{
    g_autofree char *state_dir = g_key_file_get_string(kf, "supervisor",
                                                       "state_dir", NULL);
    g_autoptr(TvdSupervisorConfig) cfg = NULL;

    if (!check_known(kf, error)) {
        return NULL;
    }
    cfg = tvd_config_new_default(state_dir && *state_dir ? state_dir : NULL);
    if (!take_string(kf, "supervisor", "run_dir", &cfg->run_dir, error)) {
        return NULL;
    }
    /* Sockets default to the run directory, which may just have moved. */
    g_free(cfg->api_socket);
    g_free(cfg->adopt_socket);
    cfg->api_socket = g_build_filename(cfg->run_dir, "supervisor.sock", NULL);
    cfg->adopt_socket = g_build_filename(cfg->run_dir, "adopt.sock", NULL);
    if (!take_string(kf, "supervisor", "api_socket", &cfg->api_socket, error) ||
        !take_string(kf, "supervisor", "adopt_socket", &cfg->adopt_socket,
                     error) ||
        !take_string(kf, "qemu", "binary", &cfg->qemu_binary, error) ||
        !take_string(kf, "qemu", "firmware_dir", &cfg->firmware_dir, error) ||
        !take_string(kf, "qemu", "accel", &cfg->accel, error) ||
        !take_uint(kf, "qemu", "default_memory_mib", 64, 1024 * 1024,
                   &cfg->default_memory_mib, error) ||
        !take_uint(kf, "qemu", "hello_timeout_s", 1, 3600,
                   &cfg->hello_timeout_s, error) ||
        !take_string(kf, "vtpm", "swtpm", &cfg->swtpm, error) ||
        !take_string(kf, "vtpm", "swtpm_setup", &cfg->swtpm_setup, error) ||
        !take_string(kf, "vtpm", "swtpm_localca", &cfg->swtpm_localca, error) ||
        !take_string(kf, "policy", "trusted_keys_dir", &cfg->trusted_keys_dir,
                     error) ||
        !take_string(kf, "network", "nic", &cfg->nic, error) ||
        !take_string(kf, "api", "tcp", &cfg->api_tcp, error) ||
        !take_string(kf, "api", "tls_cert", &cfg->api_tls_cert, error) ||
        !take_string(kf, "api", "tls_key", &cfg->api_tls_key, error) ||
        !take_string(kf, "api", "tls_client_ca", &cfg->api_tls_client_ca,
                     error) ||
        !take_uint(kf, "attestation", "interval_s", 1, 86400,
                   &cfg->interval_s, error) ||
        !take_uint(kf, "attestation", "deadline_s", 1, 86400,
                   &cfg->deadline_s, error)) {
        return NULL;
    }
    if (strcmp(cfg->accel, "kvm") && strcmp(cfg->accel, "tcg") &&
        strcmp(cfg->accel, "kvm:tcg")) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[qemu] accel: must be kvm, tcg or kvm:tcg, not '%s'",
                    cfg->accel);
        return NULL;
    }
    if (strcmp(cfg->nic, "tap") && strcmp(cfg->nic, "user")) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[network] nic: must be tap or user, not '%s'", cfg->nic);
        return NULL;
    }
    if (!cfg->api_tcp != !cfg->api_tls_cert ||
        !cfg->api_tcp != !cfg->api_tls_key ||
        !cfg->api_tcp != !cfg->api_tls_client_ca) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[api] tcp, tls_cert, tls_key and tls_client_ca go "
                    "together: the TCP listener always uses mutual TLS");
        return NULL;
    }
    if (cfg->deadline_s <= cfg->interval_s) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "[attestation] deadline_s (%u) must exceed interval_s (%u)",
                    cfg->deadline_s, cfg->interval_s);
        return NULL;
    }
    return g_steal_pointer(&cfg);
}

TvdSupervisorConfig *tvd_config_load_data(const char *data, gsize len,
                                          GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;

    if (!g_key_file_load_from_data(kf, data, len, G_KEY_FILE_NONE, &err)) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "%s", err->message);
        return NULL;
    }
    return config_from_keyfile(kf, error);
}

TvdSupervisorConfig *tvd_config_load_file(const char *path, GError **error)
{
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GError) err = NULL;
    TvdSupervisorConfig *cfg;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "%s", err->message);
        return NULL;
    }
    cfg = tvd_config_load_data(data, len, &err);
    if (!cfg) {
        g_set_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID,
                    "%s: %s", path, err->message);
    }
    return cfg;
}
