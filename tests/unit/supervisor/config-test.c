/*
 * The supervisor's configuration (host/supervisor/config.c): the default
 * paths an operator and tvdctl rely on, and the errors a mistyped
 * configuration gets.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-config-test"

#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

/* One API socket default, the one tvdctl and docs/api.md use. */
static void test_default_socket(void)
{
    g_autoptr(TvdSupervisorConfig) cfg = tvd_config_new_default(NULL);

    g_assert_cmpstr(cfg->state_dir, ==, "/var/lib/tvd");
    g_assert_cmpstr(cfg->run_dir, ==, "/run/tvd");
    g_assert_cmpstr(cfg->api_socket, ==, "/run/tvd/supervisor.sock");
    g_assert_cmpstr(cfg->adopt_socket, ==, "/run/tvd/adopt.sock");
}

/* A supervisor with a state directory of its own keeps its sockets there,
 * so two supervisors (tests, a second instance) never share them. */
static void test_state_dir_socket(void)
{
    static const char conf[] = "[supervisor]\nstate_dir=/srv/tvd\n";
    g_autoptr(TvdSupervisorConfig) own = tvd_config_new_default("/srv/tvd");
    g_autoptr(TvdSupervisorConfig) loaded = NULL;
    g_autoptr(TvdSupervisorConfig) empty = NULL;
    g_autoptr(TvdSupervisorConfig) moved = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_cmpstr(own->api_socket, ==, "/srv/tvd/run/supervisor.sock");
    loaded = tvd_config_load_data(conf, strlen(conf), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(loaded->run_dir, ==, "/srv/tvd/run");
    g_assert_cmpstr(loaded->api_socket, ==, "/srv/tvd/run/supervisor.sock");

    /* A configuration without state_dir: the defaults. */
    empty = tvd_config_load_data("[qemu]\naccel=tcg\n", 17, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(empty->api_socket, ==, "/run/tvd/supervisor.sock");

    /* run_dir moves both sockets. */
    moved = tvd_config_load_data("[supervisor]\nrun_dir=/x\n", 24, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(moved->api_socket, ==, "/x/supervisor.sock");
    g_assert_cmpstr(moved->adopt_socket, ==, "/x/adopt.sock");
}

/* A mistyped key or group is an error that names the nearest known one. */
static void test_did_you_mean(void)
{
    static const char key[] = "[qemu]\nacel=tcg\n";
    static const char group[] = "[attestaton]\ninterval_s=5\n";
    static const char far[] = "[qemu]\nfrobnicate=1\n";
    g_autoptr(GError) error = NULL;

    g_assert_null(tvd_config_load_data(key, strlen(key), &error));
    g_assert_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "[qemu] acel: unknown key, did "
                                            "you mean \"accel\"?"));
    g_clear_error(&error);
    g_assert_null(tvd_config_load_data(group, strlen(group), &error));
    g_assert_nonnull(strstr(error->message, "unknown group [attestaton], did "
                                            "you mean [attestation]?"));
    g_clear_error(&error);
    /* Nothing near: no suggestion, the keys of the group. */
    g_assert_null(tvd_config_load_data(far, strlen(far), &error));
    g_assert_null(strstr(error->message, "did you mean"));
    g_assert_nonnull(strstr(error->message, "[qemu] may have: binary"));
}

/* State and run directories others could write are refused at start. */
static void test_unsafe_dirs(void)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *top = g_dir_make_tmp("tvd-config-XXXXXX", &error);
    g_autofree char *state = g_build_filename(top, "state", NULL);
    g_autofree char *file = g_build_filename(top, "file", NULL);
    g_autoptr(TvdSupervisorConfig) cfg = NULL;

    g_assert_no_error(error);
    cfg = tvd_config_new_default(state);
    /* Missing: created 0700 at start. */
    g_assert_true(tvd_config_check_dirs(cfg, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
    g_assert_true(tvd_config_check_dirs(cfg, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_chmod(state, 0770), ==, 0);
    g_assert_false(tvd_config_check_dirs(cfg, &error));
    g_assert_error(error, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_UNSAFE);
    g_assert_nonnull(strstr(error->message, "writable by group or others "
                                            "(mode 0770)"));
    g_clear_error(&error);
    g_assert_cmpint(g_chmod(state, 0702), ==, 0);
    g_assert_false(tvd_config_check_dirs(cfg, &error));
    g_clear_error(&error);
    g_assert_cmpint(g_chmod(state, 0750), ==, 0);
    g_assert_true(tvd_config_check_dirs(cfg, &error));
    g_assert_no_error(error);

    /* The run directory too, and a file where a directory should be. */
    g_assert_cmpint(g_mkdir(cfg->run_dir, 0777), ==, 0);
    g_assert_cmpint(g_chmod(cfg->run_dir, 0777), ==, 0);
    g_assert_false(tvd_config_check_dirs(cfg, &error));
    g_assert_nonnull(strstr(error->message, "the run directory"));
    g_clear_error(&error);
    g_assert_cmpint(g_rmdir(cfg->run_dir), ==, 0);
    g_assert_true(g_file_set_contents(file, "", 0, NULL));
    g_free(cfg->state_dir);
    cfg->state_dir = g_strdup(file);
    g_assert_false(tvd_config_check_dirs(cfg, &error));
    g_assert_nonnull(strstr(error->message, "is not a directory"));

    g_unlink(file);
    g_rmdir(state);
    g_rmdir(top);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/default-socket", test_default_socket);
    g_test_add_func("/config/state-dir-socket", test_state_dir_socket);
    g_test_add_func("/config/did-you-mean", test_did_you_mean);
    g_test_add_func("/config/unsafe-dirs", test_unsafe_dirs);
    return g_test_run();
}
