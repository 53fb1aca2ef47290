/*
 * tvd-supervisor: the TVD proxy of one host.
 *
 * Start order (as swtpm's): parse options, load the configuration, open the
 * state and sockets, tell systemd we are ready, run the main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include <glib-unix.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "api-backend.h"
#include "config.h"
#include "supervisor.h"

static gboolean on_signal(gpointer data)
{
    GMainLoop *loop = data;

    sd_notify(0, "STOPPING=1");
    g_message("shutting down");
    g_main_loop_quit(loop);
    return G_SOURCE_CONTINUE;
}

/* The optional TCP listener, always with mutual TLS. */
static gboolean setup_tcp(const TvdSupervisorConfig *cfg,
                          TvdApiServerConfig *api, GError **error)
{
    g_autoptr(GSocketConnectable) addr = NULL;
    g_autoptr(GSocketAddressEnumerator) en = NULL;
    GSocketAddress *sa;

    if (!cfg->api_tcp) {
        return TRUE;
    }
    addr = g_network_address_parse(cfg->api_tcp, 0, error);
    if (!addr) {
        return FALSE;
    }
    en = g_socket_connectable_enumerate(addr);
    sa = g_socket_address_enumerator_next(en, NULL, error);
    if (!sa) {
        return FALSE;
    }
    api->tcp_address = G_INET_SOCKET_ADDRESS(sa);
    api->tls_certificate = g_tls_certificate_new_from_files(
        cfg->api_tls_cert, cfg->api_tls_key, error);
    if (!api->tls_certificate) {
        return FALSE;
    }
    api->tls_client_ca = g_tls_file_database_new(cfg->api_tls_client_ca,
                                                 error);
    return api->tls_client_ca != NULL;
}

int main(int argc, char **argv)
{
    g_autofree char *config_path = NULL;
    g_autofree char *state_dir = NULL;
    gboolean verbose = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config_path,
          "configuration file (default: built-in defaults)", "FILE" },
        { "state-dir", 's', 0, G_OPTION_ARG_FILENAME, &state_dir,
          "state directory (overrides [supervisor] state_dir)", "DIR" },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose,
          "log debug messages", NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- Trusted Virtual Domain supervisor");
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdSupervisorConfig) cfg = NULL;
    g_autoptr(TvdSupervisor) sup = NULL;
    g_autoptr(GMainLoop) loop = NULL;
    g_autoptr(TvdApiServer) api = NULL;
    TvdApiServerConfig api_cfg = { 0 };

    setlocale(LC_ALL, "");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "tvd-supervisor: %s\n", err->message);
        return 2;
    }
    if (verbose) {
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
    }
    cfg = config_path ? tvd_config_load_file(config_path, &err)
                      : tvd_config_new_default(NULL);
    if (!cfg) {
        fprintf(stderr, "tvd-supervisor: %s\n", err->message);
        return 2;
    }
    if (state_dir) {
        g_autofree char *data = g_strdup_printf("[supervisor]\nstate_dir=%s\n",
                                                state_dir);
        /* Re-derive the paths that hang off the state directory. */
        if (!config_path) {
            tvd_config_free(g_steal_pointer(&cfg));
            cfg = tvd_config_load_data(data, strlen(data), &err);
        } else {
            g_free(cfg->state_dir);
            cfg->state_dir = g_strdup(state_dir);
        }
        if (!cfg) {
            fprintf(stderr, "tvd-supervisor: %s\n", err->message);
            return 2;
        }
    }
    if (!tvd_config_check_dirs(cfg, &err)) {
        fprintf(stderr, "tvd-supervisor: %s\n", err->message);
        return 2;
    }
    umask(077);
    sup = tvd_supervisor_new(g_steal_pointer(&cfg));
    if (!tvd_supervisor_start(sup, &err)) {
        fprintf(stderr, "tvd-supervisor: %s\n", err->message);
        return 1;
    }
    api_cfg.socket_path = tvd_supervisor_config(sup)->api_socket;
    if (!setup_tcp(tvd_supervisor_config(sup), &api_cfg, &err)) {
        fprintf(stderr, "tvd-supervisor: [api]: %s\n", err->message);
        return 2;
    }
    api = tvd_api_server_new(&api_cfg, &tvd_supervisor_api_backend, sup, &err);
    if (!api) {
        fprintf(stderr, "tvd-supervisor: API: %s\n", err->message);
        return 1;
    }
    loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGTERM, on_signal, loop);
    g_unix_signal_add(SIGINT, on_signal, loop);
    g_message("ready: state in %s, API on %s, adoption socket %s",
              tvd_supervisor_config(sup)->state_dir,
              tvd_supervisor_config(sup)->api_socket,
              tvd_supervisor_config(sup)->adopt_socket);
    sd_notify(0, "READY=1");
    g_main_loop_run(loop);
    g_clear_pointer(&api, tvd_api_server_free);
    g_clear_object(&api_cfg.tcp_address);
    g_clear_object(&api_cfg.tls_certificate);
    g_clear_object(&api_cfg.tls_client_ca);
    return 0;
}
