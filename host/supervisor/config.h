/*
 * The supervisor's configuration: a GKeyFile, read from a file or from a
 * string (so tests need no files). examples/tvd-supervisor.conf documents
 * every key with its default.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_CONFIG_H
#define TVD_SUPERVISOR_CONFIG_H

#include <glib.h>

G_BEGIN_DECLS

#define TVD_CONFIG_ERROR (tvd_config_error_quark())
GQuark tvd_config_error_quark(void);

typedef enum {
    TVD_CONFIG_ERROR_INVALID,
    TVD_CONFIG_ERROR_UNSAFE,    /* a directory others could write to */
} TvdConfigError;

typedef struct {
    /* [supervisor] */
    char *state_dir;        /* persistent: store, vTPM CA and states */
    char *run_dir;          /* sockets */
    char *api_socket;
    char *adopt_socket;     /* shared socket for VMs started by others */
    /* [qemu] */
    char *qemu_binary;
    char *firmware_dir;     /* -L, may be NULL */
    char *accel;            /* "kvm", "tcg" or "kvm:tcg" */
    guint default_memory_mib;
    guint hello_timeout_s;  /* a launched VM's device must say hello by then */
    /* [vtpm] */
    char *swtpm;
    char *swtpm_setup;
    char *swtpm_localca;
    /* [network] */
    char *nic;              /* "tap" (an isolated tap per VM) or "user" */
    /* [api] optional TCP listener with mutual TLS: all four or none */
    char *api_tcp;          /* "ADDRESS:PORT" */
    char *api_tls_cert;     /* server certificate (PEM) */
    char *api_tls_key;      /* its private key (PEM, 0600) */
    char *api_tls_client_ca;/* CA certificates of accepted clients */
    /* [policy] */
    char *trusted_keys_dir; /* administrators' public keys (PEM) */
    /* [attestation] defaults when a policy says nothing */
    guint interval_s;
    guint deadline_s;
} TvdSupervisorConfig;

/* Defaults for everything, state under @state_dir (NULL: /var/lib/tvd). */
TvdSupervisorConfig *tvd_config_new_default(const char *state_dir);
TvdSupervisorConfig *tvd_config_load_file(const char *path, GError **error);
TvdSupervisorConfig *tvd_config_load_data(const char *data, gsize len,
                                          GError **error);
void tvd_config_free(TvdSupervisorConfig *cfg);
/*
 * The state and run directories, where they exist: directories of the
 * supervisor's user that neither group nor others can write (a missing one
 * is created 0700 at start). Checked before anything is read from them.
 */
gboolean tvd_config_check_dirs(const TvdSupervisorConfig *cfg, GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdSupervisorConfig, tvd_config_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_CONFIG_H */
