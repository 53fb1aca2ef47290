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

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/config/default-socket", test_default_socket);
    g_test_add_func("/config/state-dir-socket", test_state_dir_socket);
    return g_test_run();
}
