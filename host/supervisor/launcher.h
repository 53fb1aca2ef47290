/*
 * The QEMU command line of a VM the supervisor launches: the tvd device on
 * the VM's supervisor socket, the vTPM, and the NIC the device gates.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_LAUNCHER_H
#define TVD_SUPERVISOR_LAUNCHER_H

#include <glib.h>

#include "config.h"

G_BEGIN_DECLS

GStrv tvd_launcher_qemu_argv(const TvdSupervisorConfig *cfg, const char *name,
                             const char *vm_id, const char *domain,
                             const char *kernel, const char *initrd,
                             const char *append, guint memory_mib,
                             const char *sup_sock, const char *tpm_sock,
                             const char *vm_dir);

/* The name of the VM's tap ("tvdXXXXXXXX", fits IFNAMSIZ). */
char *tvd_launcher_tap_name(const char *vm_name);

G_END_DECLS

#endif /* TVD_SUPERVISOR_LAUNCHER_H */
