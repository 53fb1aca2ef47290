/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers for the agent TPM tests and the benchmark: independent checks
 * with OpenSSL, tpm2-tools as the credential peer, and a real swtpm.
 */
#ifndef TVD_TPM_TEST_UTIL_H
#define TVD_TPM_TEST_UTIL_H

#include <gio/gio.h>
#include <openssl/evp.h>
#include <tss2/tss2_tcti.h>

/* The key inside a marshalled TPM2B_PUBLIC (RSA, or ECC P-256/P-384). */
EVP_PKEY *tpm_test_pkey_from_public(GBytes *tpm2b_public, GError **error);

/* nameAlg || H(TPMT_PUBLIC), recomputed from a marshalled TPM2B_PUBLIC. */
GBytes *tpm_test_name_of_public(GBytes *tpm2b_public, GError **error);

/* Verifies a TPMT_SIGNATURE (RSASSA or ECDSA, SHA-256) over @attest. */
gboolean tpm_test_verify_signature(GBytes *ak_public, GBytes *attest,
                                   GBytes *signature, GError **error);

/*
 * Transient objects and loaded sessions in the TPM behind @tcti (through a
 * separate ESYS context), to check that nothing leaked.
 */
gboolean tpm_test_count_loaded(TSS2_TCTI_CONTEXT *tcti, guint *transients,
                               guint *sessions, GError **error);
/* Asserts that no transient object or session is left loaded in the TPM. */
void tpm_test_assert_clean(TSS2_TCTI_CONTEXT *tcti);

/* Evicts the persistent object at @handle (owner auth, empty). */
gboolean tpm_test_evict(TSS2_TCTI_CONTEXT *tcti, guint32 handle,
                        GError **error);

/* Is @prog in PATH? */
gboolean tpm_test_have(const char *prog);

/* Runs argv (NULL-terminated); fails on a non-zero exit with its output. */
gboolean tpm_test_run(const char *const *argv, GError **error);

/*
 * MakeCredential with tpm2-tools (tpm2_makecredential --tcti=none):
 * returns the marshalled TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET.
 */
gboolean tpm_test_makecredential(const char *dir, GBytes *ek_public,
                                 GBytes *ak_name, GBytes *secret,
                                 GBytes **blob, GBytes **enc_secret,
                                 GError **error);

/* A real swtpm with an EK certificate from swtpm_setup + swtpm_localca. */
typedef struct TpmTestSwtpm TpmTestSwtpm;

/* NULL when swtpm, swtpm_setup or swtpm_localca is missing (*why says). */
TpmTestSwtpm *tpm_test_swtpm_new(const char **why, GError **error);
/* Starts (or restarts after a stop) the swtpm process on the same state. */
gboolean tpm_test_swtpm_start(TpmTestSwtpm *s, GError **error);
void tpm_test_swtpm_stop(TpmTestSwtpm *s);
const char *tpm_test_swtpm_tcti(TpmTestSwtpm *s);
const char *tpm_test_swtpm_dir(TpmTestSwtpm *s);
void tpm_test_swtpm_free(TpmTestSwtpm *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TpmTestSwtpm, tpm_test_swtpm_free)

/* Recursively removes a temporary directory. */
void tpm_test_rmtree(const char *dir);

#endif
