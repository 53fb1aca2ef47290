/*
 * vTPMs: the host's vTPM CA and one swtpm per VM, provisioned with an EK
 * certificate from that CA (swtpm_setup + swtpm_localca), started and
 * stopped with its VM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_VTPM_H
#define TVD_SUPERVISOR_VTPM_H

#include <gio/gio.h>

#include "config.h"

G_BEGIN_DECLS

/* Directory of the host's vTPM CA under the state directory. */
char *tvd_vtpm_ca_dir(const TvdSupervisorConfig *cfg);

/*
 * Creates the CA on first use (its private keys 0600) and returns the path
 * of the certificate that EK certificates chain to (the CA's root).
 */
char *tvd_vtpm_ca_ensure(const TvdSupervisorConfig *cfg, GError **error);

/*
 * Makes a TPM 2.0 state in @dir with RSA and ECC EKs and their certificates
 * unless one is there already. The EK certificates (DER) are copied to
 * @dir/ek-rsa.der and @dir/ek-ecc.der; *@ek_cert_der gets the RSA one.
 */
gboolean tvd_vtpm_provision(const TvdSupervisorConfig *cfg, const char *dir,
                            const char *vm_name, GBytes **ek_cert_der,
                            GError **error);

/* Starts swtpm on @dir with its control socket at @ctrl_path. */
GSubprocess *tvd_vtpm_start(const TvdSupervisorConfig *cfg, const char *dir,
                            const char *ctrl_path, GError **error);

G_END_DECLS

#endif /* TVD_SUPERVISOR_VTPM_H */
