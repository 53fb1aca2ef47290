/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tvd-agent: the guest's TPM, through tpm2-tss ESYS.
 *
 * Everything the agent asks of its TPM goes through this interface:
 *
 *   - the Endorsement Key (EK): its public area and, when the vTPM was
 *     provisioned with one, its certificate from NV;
 *   - the Attestation Keys (AK): restricted signing keys created once under
 *     the EK and kept at persistent handles;
 *   - TPM2_ActivateCredential, which proves to the supervisor that the AK
 *     lives in the same TPM as the EK;
 *   - PCR extend and read (SHA-256 bank);
 *   - TPM2_Quote over a PCR selection with the supervisor's nonce.
 *
 * Design notes, handles, templates and figures: docs/agent-tpm.md.
 *
 * Byte formats: every "TPM2B_..." or "TPMT_..." blob below is the TPM's
 * own big-endian marshalling (tss2-mu), so the supervisor can unmarshal
 * it with any TSS. Blobs named TPM2B_* include their 2-byte size prefix.
 *
 * Threads: a TvdAgentTpm is not thread-safe; use it from one thread.
 * Every call runs to completion (blocking I/O to the TPM). Each call flushes
 * every transient object and session it loaded, on success and on error.
 *
 * Transient TPM conditions (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING)
 * are retried with a small exponential backoff; every other failure is
 * reported as a GError in TVD_AGENT_TPM_ERROR whose message names the TPM
 * command and carries Tss2_RC_Decode()'s text and the raw response code.
 */
#ifndef TVD_AGENT_TPM_H
#define TVD_AGENT_TPM_H

#include <glib.h>
#include <stdint.h>
#include <tss2/tss2_tcti.h>

G_BEGIN_DECLS

/* The kernel's resource manager: transients survive only per open file. */
#define TVD_AGENT_TPM_DEFAULT_TCTI "device:/dev/tpmrm0"

/* Persistent handles (owner range 0x81000000-0x817fffff) for the AKs. */
#define TVD_AGENT_TPM_DEFAULT_AK_HANDLE_RSA 0x81018000u
#define TVD_AGENT_TPM_DEFAULT_AK_HANDLE_ECC 0x81018001u

/* TCG EK Credential Profile handles (as written by swtpm_setup). */
#define TVD_AGENT_TPM_EK_CERT_NV_RSA   0x01c00002u /* RSA 2048 EK cert */
#define TVD_AGENT_TPM_EK_CERT_NV_ECC   0x01c00016u /* ECC P-384 EK cert */
#define TVD_AGENT_TPM_EK_HANDLE_RSA    0x81010001u
#define TVD_AGENT_TPM_EK_HANDLE_ECC    0x81010016u

/* PCRs 0..23 of the SHA-256 bank; a selection is a bitmap (bit n: PCR n). */
#define TVD_AGENT_TPM_NUM_PCRS         24u
#define TVD_AGENT_TPM_PCR_ALL          0x00ffffffu
#define TVD_AGENT_TPM_DIGEST_SIZE      32u   /* SHA-256 */
#define TVD_AGENT_TPM_MAX_NONCE        64u   /* sizeof(TPMU_HA) */
#define TVD_AGENT_TPM_MAX_CERT         4096u /* largest EK cert accepted */

#define TVD_AGENT_TPM_ERROR (tvd_agent_tpm_error_quark())
GQuark tvd_agent_tpm_error_quark(void);

typedef enum {
    TVD_AGENT_TPM_ERROR_FAILED,       /* the TPM or the TSS refused (RC in message) */
    TVD_AGENT_TPM_ERROR_TCTI,         /* the TCTI could not be opened */
    TVD_AGENT_TPM_ERROR_INVALID,      /* a bad argument from the caller */
    TVD_AGENT_TPM_ERROR_BUSY,         /* RETRY/YIELDED/TESTING outlasted the backoff */
    TVD_AGENT_TPM_ERROR_MISMATCH,     /* the TPM's answer is inconsistent (EK vs
                                       * cert, a foreign key at the AK handle, a
                                       * quote that is not what was asked) */
} TvdAgentTpmError;

/* Key algorithm of an EK or an AK. */
typedef enum {
    TVD_AGENT_TPM_ALG_RSA = 1,   /* EK: RSA 2048 (template L-1); AK: RSA 2048 RSASSA-SHA256 */
    TVD_AGENT_TPM_ALG_ECC = 2,   /* EK: ECC P-384 (template H-3); AK: ECC P-256 ECDSA-SHA256 */
} TvdAgentTpmAlg;

typedef struct {
    const char *tcti;      /* NULL: TVD_AGENT_TPM_DEFAULT_TCTI; else a
                            * Tss2_TctiLdr_Initialize string such as
                            * "swtpm:path=/run/tpm.sock" or
                            * "swtpm:host=127.0.0.1,port=2321" */
    guint32 ak_handle_rsa; /* 0: TVD_AGENT_TPM_DEFAULT_AK_HANDLE_RSA */
    guint32 ak_handle_ecc; /* 0: TVD_AGENT_TPM_DEFAULT_AK_HANDLE_ECC */
} TvdAgentTpmConfig;

typedef struct TvdAgentTpm TvdAgentTpm;

/*
 * Opens the TPM named by config->tcti (config may be NULL for all defaults).
 */
TvdAgentTpm *tvd_agent_tpm_new(const TvdAgentTpmConfig *config, GError **error);

/*
 * Same on a TCTI context the caller built (tests use the in-process libtpms
 * TCTI). config->tcti is ignored; the TCTI is borrowed: keep it alive until
 * tvd_agent_tpm_free() and finalize it yourself afterwards.
 */
TvdAgentTpm *tvd_agent_tpm_new_with_tcti(const TvdAgentTpmConfig *config,
                                         TSS2_TCTI_CONTEXT *tcti,
                                         GError **error);

void tvd_agent_tpm_free(TvdAgentTpm *tpm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAgentTpm, tvd_agent_tpm_free)

/*
 * The EK of the given algorithm: the persistent EK when the TPM has one at
 * TVD_AGENT_TPM_EK_HANDLE_*, else the primary created from the TCG template
 * (deterministic: always the same key for the same endorsement seed).
 *
 * @ek_public: the EK's TPM2B_PUBLIC (marshalled, with its size prefix).
 * @ek_cert: (nullable) DER certificate from NV TVD_AGENT_TPM_EK_CERT_NV_*,
 *   or NULL when the index does not exist. When present, its public key
 *   must be the EK's (else TVD_AGENT_TPM_ERROR_MISMATCH).
 */
gboolean tvd_agent_tpm_get_ek(TvdAgentTpm *tpm, TvdAgentTpmAlg alg,
                              GBytes **ek_public, GBytes **ek_cert,
                              GError **error);

/*
 * The AK of the given algorithm, created under the EK of the same algorithm
 * and persisted at its handle on first use; later calls only read it. An
 * object at the handle that is not such an AK is an error (it is never
 * evicted). Returns its TPM2B_PUBLIC (marshalled) and its name (TPM2B_NAME
 * content: 2-byte nameAlg + digest, 34 bytes for SHA-256) for MakeCredential.
 */
gboolean tvd_agent_tpm_ensure_ak(TvdAgentTpm *tpm, TvdAgentTpmAlg alg,
                                 GBytes **ak_public, GBytes **ak_name,
                                 GError **error);

/*
 * TPM2_ActivateCredential of the persistent AK @ak_alg against the EK
 * @ek_alg. @credential_blob is a marshalled TPM2B_ID_OBJECT and
 * @encrypted_secret a marshalled TPM2B_ENCRYPTED_SECRET, both as produced by
 * TPM2_MakeCredential(EK public, AK name, secret). Returns the secret; its
 * memory is wiped when the GBytes is freed.
 */
GBytes *tvd_agent_tpm_activate_credential(TvdAgentTpm *tpm,
                                          TvdAgentTpmAlg ek_alg,
                                          TvdAgentTpmAlg ak_alg,
                                          GBytes *credential_blob,
                                          GBytes *encrypted_secret,
                                          GError **error);

/* Extends SHA-256 PCR @pcr (0..23) with a 32-byte @digest. */
gboolean tvd_agent_tpm_pcr_extend(TvdAgentTpm *tpm, guint pcr,
                                  const guint8 *digest, gsize digest_len,
                                  GError **error);

/*
 * Reads the SHA-256 PCRs selected in @pcr_mask (non-zero, bits 0..23).
 * @values: 32 bytes per selected PCR, in ascending PCR order.
 * @update_counter: (nullable) the TPM's pcrUpdateCounter for the read; all
 *   chunks of a read (the TPM returns at most 8 PCRs per command) come from
 *   the same counter value.
 */
gboolean tvd_agent_tpm_pcr_read(TvdAgentTpm *tpm, guint32 pcr_mask,
                                GBytes **values, guint32 *update_counter,
                                GError **error);

typedef struct {
    GBytes *attest;     /* TPMS_ATTEST (the content of the TPM2B_ATTEST) */
    GBytes *signature;  /* TPMT_SIGNATURE over @attest by the AK */
    GBytes *pcr_values; /* 32 bytes per PCR of @pcr_mask, ascending; their
                         * SHA-256 is the quote's pcrDigest (checked) */
    guint32 pcr_mask;   /* the selection quoted */
} TvdAgentTpmQuote;

void tvd_agent_tpm_quote_clear(TvdAgentTpmQuote *quote);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TvdAgentTpmQuote, tvd_agent_tpm_quote_clear)

/*
 * TPM2_Quote by the persistent AK @ak_alg over the SHA-256 PCRs of
 * @pcr_mask with @nonce (1..TVD_AGENT_TPM_MAX_NONCE bytes) as qualifying
 * data, plus the values of those PCRs. The PCRs are read before the quote;
 * if an extend slipped in between (the quote's pcrDigest does not match the
 * values read) the pair is taken again, a few times at most. The returned
 * TPMS_ATTEST has been checked to be a quote of @pcr_mask with @nonce.
 * @quote is overwritten (cleared first).
 */
gboolean tvd_agent_tpm_quote(TvdAgentTpm *tpm, TvdAgentTpmAlg ak_alg,
                             guint32 pcr_mask,
                             const guint8 *nonce, gsize nonce_len,
                             TvdAgentTpmQuote *quote, GError **error);

/* "rsa" / "ecc" */
const char *tvd_agent_tpm_alg_name(TvdAgentTpmAlg alg);

G_END_DECLS

#endif /* TVD_AGENT_TPM_H */
