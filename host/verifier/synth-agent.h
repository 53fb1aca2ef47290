/*
 * tvd verifier test kit: a software agent. A TPM and the guest agent made
 * with OpenSSL, for tests and benchmarks that need many agents where a
 * swtpm each would be too heavy:
 *
 *  - an EK: RSA-2048 decryption key whose TPM2B_PUBLIC is the one a TPM
 *    makes from the EK Credential Profile's default template (L-1), with
 *    an X.509 certificate issued by a given CA key and certificate;
 *  - an AK (RSA-2048, RSASSA-SHA256, the usual AK attributes);
 *  - TPM2_ActivateCredential in software (TPM 2.0 Part 1 §24, Part 3
 *    §12.5): the inverse of tvd_make_credential();
 *  - a SHA-256 PCR bank, the agent's measurement list (ima-ng records in
 *    its PCR) and quotes over a requested selection;
 *  - the agent's messages: AGENT_HELLO, CREDENTIAL_RESPONSE, EVIDENCE.
 *
 * Never linked into a daemon.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_VERIFIER_SYNTH_AGENT_H
#define TVD_HOST_VERIFIER_SYNTH_AGENT_H

#include <openssl/x509.h>

#include "message.h"
#include "synth.h"

G_BEGIN_DECLS

/* The EK Credential Profile's RSA template attributes (0x000300b2). */
#define TVD_SYNTH_EK_ATTRIBUTES                                             \
    (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |                       \
     TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |       \
     TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT)

/* A self-signed CA (RSA-2048) for tests: *@key and *@cert, the caller's. */
gboolean tvd_synth_ca_new(const char *common_name, EVP_PKEY **key,
                          X509 **cert, GError **error);
/* A CA's signing key and issuer certificate from PEM files (swtpm_localca's
 * signkey.pem and issuercert.pem). */
gboolean tvd_synth_ca_load(const char *key_pem, const char *cert_pem,
                           EVP_PKEY **key, X509 **cert, GError **error);

typedef struct TvdSynthAgent TvdSynthAgent;

/*
 * A new software TPM and agent: fresh EK and AK, the EK certificate signed
 * by @ca_key for @ca_cert's subject, PCRs all zero, an empty list whose
 * records go into @agent_pcr.
 */
TvdSynthAgent *tvd_synth_agent_new(EVP_PKEY *ca_key, X509 *ca_cert,
                                   guint8 agent_pcr, GError **error);
void tvd_synth_agent_free(TvdSynthAgent *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdSynthAgent, tvd_synth_agent_free)

GBytes *tvd_synth_agent_ek_public(TvdSynthAgent *a);     /* TPM2B_PUBLIC */
GBytes *tvd_synth_agent_ek_cert(TvdSynthAgent *a);       /* DER */
GBytes *tvd_synth_agent_ak_public(TvdSynthAgent *a);     /* TPM2B_PUBLIC */
GBytes *tvd_synth_agent_ak_name(TvdSynthAgent *a);       /* TPM2B_NAME contents */
const TvdSynthKey *tvd_synth_agent_ak(TvdSynthAgent *a);

/*
 * TPM2_ActivateCredential with the EK and the AK: @id_object (marshalled
 * TPM2B_ID_OBJECT) and @encrypted_secret (TPM2B_ENCRYPTED_SECRET) as
 * tvd_make_credential() makes them. The seed is RSA-OAEP(SHA-256, label
 * "IDENTITY\0")-decrypted; the integrity HMAC over encIdentity || AK name
 * is checked (in constant time) before anything is decrypted. Errors in
 * TVD_VERIFY_ERROR: MALFORMED (sizes, a seed that does not decrypt: a TPM
 * says TPM_RC_VALUE/SIZE), BAD_SIGNATURE (the HMAC: TPM_RC_INTEGRITY).
 */
GBytes *tvd_synth_agent_activate(TvdSynthAgent *a, GBytes *id_object,
                                 GBytes *encrypted_secret, GError **error);

/* Extends SHA-256 PCR @pcr with @digest, as TPM2_PCR_Extend. */
void tvd_synth_agent_extend(TvdSynthAgent *a, guint pcr,
                            const guint8 digest[32]);
/* The SHA-256 PCR @pcr now. */
const guint8 *tvd_synth_agent_pcr(TvdSynthAgent *a, guint pcr);
/* The agent measures @path (file digest @sha256): one ima-ng record in
 * the list, its template data's SHA-256 extended into the agent PCR. */
void tvd_synth_agent_measure(TvdSynthAgent *a, const char *path,
                             const guint8 sha256[32]);
/* The agent's list (GBytes records), borrowed. */
GPtrArray *tvd_synth_agent_list(TvdSynthAgent *a);

/*
 * TPM2_Quote with the AK over the SHA-256 PCRs @select (bit i = PCR i)
 * qualified by @nonce: the TPMS_ATTEST, its TPMT_SIGNATURE and the
 * selected PCRs' values (ascending index, concatenated). The TPM's clock
 * advances at each quote.
 */
void tvd_synth_agent_quote(TvdSynthAgent *a, const guint8 *nonce,
                           gsize nonce_len, guint32 select, GBytes **attest,
                           GBytes **signature, GBytes **pcr_values);

/* ---- the agent's messages (encoded payloads of docs/protocol) -------- */

/* AGENT_HELLO: EK public and certificate, AK, the list's PCR, the
 * capabilities of an agent without IMA (agent list, SHA-256 bank). */
GBytes *tvd_synth_agent_hello(TvdSynthAgent *a);
/* CREDENTIAL_CHALLENGE payload in, CREDENTIAL_RESPONSE payload out. */
GBytes *tvd_synth_agent_answer_challenge(TvdSynthAgent *a, GBytes *challenge,
                                         GError **error);
/* ATTEST_REQUEST payload in, EVIDENCE payload out: a quote over the
 * request's selection and nonce, the PCR values, the agent list from the
 * request's offset. */
GBytes *tvd_synth_agent_answer_request(TvdSynthAgent *a, GBytes *request,
                                       GError **error);
/* The same with the evidence decoded (tvd_msg_evidence_clear it). */
gboolean tvd_synth_agent_evidence(TvdSynthAgent *a,
                                  const TvdMsgAttestRequest *req,
                                  TvdMsgEvidence *out, GError **error);

G_END_DECLS

#endif /* TVD_HOST_VERIFIER_SYNTH_AGENT_H */
