/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A TCTI onto an in-process libtpms TPM 2.0, for tests and benchmarks.
 *
 * libtpms keeps one TPM per process in global state, so at most one such
 * TCTI exists at a time. Its NV lives in memory (never ./NVChip) and
 * survives tvd_tcti_libtpms_free() until the next tvd_tcti_libtpms_new()
 * with @fresh = TRUE, which manufactures a new TPM (new seeds): freeing and
 * re-creating without @fresh is a power cycle (TPM2_Shutdown, TPM2_Startup).
 *
 * Not thread-safe; not for production use (the agent uses /dev/tpmrm0).
 */
#ifndef TVD_TCTI_LIBTPMS_H
#define TVD_TCTI_LIBTPMS_H

#include <glib.h>
#include <tss2/tss2_tcti.h>

G_BEGIN_DECLS

#define TVD_TCTI_LIBTPMS_ERROR (tvd_tcti_libtpms_error_quark())
GQuark tvd_tcti_libtpms_error_quark(void);

/* Starts the TPM (TPMLIB_MainInit + TPM2_Startup(CLEAR)). */
TSS2_TCTI_CONTEXT *tvd_tcti_libtpms_new(gboolean fresh, GError **error);

/* TPM2_Shutdown(CLEAR), TPMLIB_Terminate, frees the context. NULL is ok. */
void tvd_tcti_libtpms_free(TSS2_TCTI_CONTEXT *tcti);

/*
 * Fault injection: the next @count commands whose command code is @cc
 * (0: any command) are answered with the bare response code @rc without
 * reaching the TPM.
 */
void tvd_tcti_libtpms_inject(TSS2_TCTI_CONTEXT *tcti, guint32 cc, guint32 rc,
                             guint count);

/* Commands seen so far (injected ones included). */
guint tvd_tcti_libtpms_commands(TSS2_TCTI_CONTEXT *tcti);

G_END_DECLS

#endif /* TVD_TCTI_LIBTPMS_H */
