/*
 * tvd verifier: the supervisor's checks of a VM's TPM evidence.
 *
 *  - TPM public areas (TPM2B_PUBLIC) to OpenSSL keys and TPM object names;
 *  - MakeCredential (TPM 2.0 Part 1 §24, Part 3 TPM2_MakeCredential) to
 *    bind an AK to an EK;
 *  - quote verification (TPMS_ATTEST + TPMT_SIGNATURE);
 *  - single-use nonces with expiry;
 *  - EK certificate chain and key checks;
 *  - IMA binary measurement log parsing (the kernel's templates with a
 *    file digest, SHA-1 and per-bank logs) and PCR replay.
 *
 * All cryptography is OpenSSL 3; libtss2-mu only unmarshals TPM structures.
 * Every rejection is a GError in TVD_VERIFY_ERROR whose code is one of
 * TvdVerifyError; tvd_verify_error_reason() gives its stable short name
 * ("bad-signature", ...) for logs, audit records and metrics labels.
 * docs/verifier.md describes the algorithms and the spec references.
 *
 * Objects here are not thread-safe: use one per thread (the supervisor is
 * a single GLib main loop).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_VERIFIER_H
#define TVD_HOST_VERIFIER_H

#include <stddef.h>
#include <stdint.h>
#include <glib.h>
#include <openssl/evp.h>
#include <tss2/tss2_tpm2_types.h>

G_BEGIN_DECLS

/* ---- Errors ---------------------------------------------------------------- */

#define TVD_VERIFY_ERROR (tvd_verify_error_quark())
GQuark tvd_verify_error_quark(void);

typedef enum {
    TVD_VERIFY_ERROR_MALFORMED = 1,         /* "malformed": structure does not parse */
    TVD_VERIFY_ERROR_UNSUPPORTED,           /* "unsupported-algorithm" */
    TVD_VERIFY_ERROR_NAME_MISMATCH,         /* "name-mismatch": name != H(public) */
    TVD_VERIFY_ERROR_AK_ATTRIBUTES,         /* "ak-attributes": not a restricted signing key */
    TVD_VERIFY_ERROR_EK_ATTRIBUTES,         /* "ek-attributes": not a restricted decryption key */
    TVD_VERIFY_ERROR_SIGNATURE_SCHEME,      /* "signature-scheme-mismatch": sig alg vs AK */
    TVD_VERIFY_ERROR_BAD_SIGNATURE,         /* "bad-signature" */
    TVD_VERIFY_ERROR_NOT_TPM_GENERATED,     /* "not-tpm-generated": magic != TPM_GENERATED_VALUE */
    TVD_VERIFY_ERROR_NOT_A_QUOTE,           /* "not-a-quote": type != TPM_ST_ATTEST_QUOTE */
    TVD_VERIFY_ERROR_NONCE_MISMATCH,        /* "nonce-mismatch": extraData != nonce */
    TVD_VERIFY_ERROR_PCR_SELECTION_MISMATCH,/* "pcr-selection-mismatch" */
    TVD_VERIFY_ERROR_PCR_VALUES,            /* "pcr-values-incomplete": values do not fit the selection */
    TVD_VERIFY_ERROR_PCR_DIGEST_MISMATCH,   /* "pcr-digest-mismatch" */
    TVD_VERIFY_ERROR_NONCE_UNKNOWN,         /* "nonce-unknown": never issued (or long gone) */
    TVD_VERIFY_ERROR_NONCE_REUSED,          /* "nonce-reused": already consumed */
    TVD_VERIFY_ERROR_NONCE_EXPIRED,         /* "nonce-expired" */
    TVD_VERIFY_ERROR_NONCE_OWNER,           /* "nonce-wrong-owner": issued for another VM */
    TVD_VERIFY_ERROR_NONCE_STORE_FULL,      /* "nonce-store-full" */
    TVD_VERIFY_ERROR_EK_CERT_INVALID,       /* "ek-cert-invalid": not a certificate */
    TVD_VERIFY_ERROR_EK_CERT_UNTRUSTED,     /* "ek-cert-untrusted": does not chain to the CA */
    TVD_VERIFY_ERROR_EK_KEY_MISMATCH,       /* "ek-key-mismatch": cert key != TPM EK */
    TVD_VERIFY_ERROR_LOG_MALFORMED,         /* "log-malformed" */
    TVD_VERIFY_ERROR_LOG_LIMIT,             /* "log-limit": a cap was exceeded */
    TVD_VERIFY_ERROR_LOG_TEMPLATE_HASH,     /* "log-template-hash-mismatch" */
    TVD_VERIFY_ERROR_LOG_OFFSET,            /* "log-offset": entries do not continue the replay */
    TVD_VERIFY_ERROR_LOG_REPLAY_MISMATCH,   /* "log-replay-mismatch": replay != quoted PCR */
    TVD_VERIFY_ERROR_CRYPTO,                /* "crypto-failure": OpenSSL failed (internal) */
} TvdVerifyError;
#define TVD_VERIFY_ERROR_LAST TVD_VERIFY_ERROR_CRYPTO

/* Stable short name of a TvdVerifyError code; "unknown" for others. */
const char *tvd_verify_error_reason(int code);

/* ---- Hash algorithms ------------------------------------------------------- */

/* Digest size of a TPM_ALG_ID hash (SHA-1/256/384/512), 0 if unsupported. */
gsize tvd_tpm_hash_size(TPM2_ALG_ID alg);
/* OpenSSL digest (fetched once, cached; do not free), NULL if unsupported. */
const EVP_MD *tvd_tpm_hash_md(TPM2_ALG_ID alg);

/* ---- TPM public areas ------------------------------------------------------ */

#define TVD_TPM_PUBLIC_MAX  1024u   /* marshalled TPM2B_PUBLIC accepted */
#define TVD_TPM_NAME_MAX    (2u + 64u)

typedef struct TvdTpmPublic TvdTpmPublic;

/* Parses a marshalled TPM2B_PUBLIC (RSA 2048..4096 or ECC NIST P-256/384/521)
 * into its key and name. The input must be canonical (re-marshalling gives
 * the same bytes) and use all of @len. */
TvdTpmPublic *tvd_tpm_public_parse(const guint8 *buf, gsize len, GError **error);
void tvd_tpm_public_free(TvdTpmPublic *pub);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdTpmPublic, tvd_tpm_public_free)

const TPMT_PUBLIC *tvd_tpm_public_area(const TvdTpmPublic *pub);
/* The key (borrowed: lives as long as @pub). */
EVP_PKEY *tvd_tpm_public_pkey(const TvdTpmPublic *pub);
/* The TPM2B_NAME contents: nameAlg (big-endian) || H_nameAlg(TPMT_PUBLIC). */
const guint8 *tvd_tpm_public_name(const TvdTpmPublic *pub, gsize *len);
/* Constant-time comparison of @name with the computed name. */
gboolean tvd_tpm_public_check_name(const TvdTpmPublic *pub, const guint8 *name,
                                   gsize name_len, GError **error);
/* An AK: restricted signing key (not decrypt), fixedTPM, fixedParent,
 * sensitiveDataOrigin; RSA or ECC with a SHA-256+ scheme or none. */
gboolean tvd_tpm_public_check_ak(const TvdTpmPublic *pub, GError **error);
/* An EK: restricted decryption key (not sign), fixedTPM, fixedParent, with
 * an AES-128/256-CFB symmetric definition. */
gboolean tvd_tpm_public_check_ek(const TvdTpmPublic *pub, GError **error);

/* ---- Key derivation (TPM 2.0 Part 1 §11.4.10) -------------------------------- */

/* KDFa: SP800-108 counter mode with HMAC(@hash_alg); @label gets its
 * terminating NUL; @context_u/@context_v may be NULL. Writes @bits / 8 bytes
 * (@bits a multiple of 8) into @out. */
gboolean tvd_kdfa(TPM2_ALG_ID hash_alg, const guint8 *key, gsize key_len,
                  const char *label, const guint8 *context_u, gsize u_len,
                  const guint8 *context_v, gsize v_len, guint32 bits,
                  guint8 *out, GError **error);
/* KDFe: SP800-56A concatenation KDF with @hash_alg over Z, label (with NUL),
 * partyUInfo and partyVInfo. */
gboolean tvd_kdfe(TPM2_ALG_ID hash_alg, const guint8 *z, gsize z_len,
                  const char *label, const guint8 *party_u, gsize u_len,
                  const guint8 *party_v, gsize v_len, guint32 bits,
                  guint8 *out, GError **error);

/* ---- MakeCredential ---------------------------------------------------------- */

/* TPM2_MakeCredential done in software: protects @secret (1..digest size of
 * the EK's nameAlg) for the object named @name (TPM2B_NAME contents, the AK)
 * so that only the TPM holding @ek's private key, with that object loaded,
 * recovers it with TPM2_ActivateCredential. On success @id_object holds a
 * marshalled TPM2B_ID_OBJECT and @encrypted_secret a marshalled
 * TPM2B_ENCRYPTED_SECRET. */
gboolean tvd_make_credential(const TvdTpmPublic *ek, const guint8 *name,
                             gsize name_len, const guint8 *secret,
                             gsize secret_len, GBytes **id_object,
                             GBytes **encrypted_secret, GError **error);

/* ---- Quotes ------------------------------------------------------------------ */

#define TVD_ATTEST_MAX      2048u   /* marshalled TPMS_ATTEST accepted */
#define TVD_SIGNATURE_MAX   1024u   /* marshalled TPMT_SIGNATURE accepted */
#define TVD_NONCE_LEN       32u

/* An AK prepared for repeated verification: the key is parsed once and the
 * OpenSSL contexts are initialised once and reused. */
typedef struct TvdAkKey TvdAkKey;

TvdAkKey *tvd_ak_key_new(const TvdTpmPublic *ak, GError **error);
/* Convenience: parse a TPM2B_PUBLIC, check it is an AK and prepare it. */
TvdAkKey *tvd_ak_key_new_from_public(const guint8 *buf, gsize len, GError **error);
void tvd_ak_key_free(TvdAkKey *key);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAkKey, tvd_ak_key_free)
const TvdTpmPublic *tvd_ak_key_public(const TvdAkKey *key);

typedef struct {
    const guint8 *nonce;            /* expected extraData */
    gsize nonce_len;
    TPM2_ALG_ID pcr_bank;           /* the one bank requested */
    guint32 pcr_select;             /* bit i = PCR i */
    const guint8 *pcr_values;       /* the selected PCRs' values, ascending index, concatenated */
    gsize pcr_values_len;
} TvdQuoteExpect;

typedef struct {
    guint64 clock;                  /* clockInfo */
    guint32 reset_count;
    guint32 restart_count;
    gboolean safe;
    guint64 firmware_version;
    guint8 qualified_signer[TVD_TPM_NAME_MAX];
    gsize qualified_signer_len;
    TPM2_ALG_ID sig_alg;            /* TPM2_ALG_RSASSA, _RSAPSS or _ECDSA */
} TvdQuoteInfo;

/* Verifies a quote: the TPMT_SIGNATURE over the TPMS_ATTEST bytes with the
 * AK first (so every later check looks at authentic data), then magic,
 * type, extraData == nonce (constant time), PCR selection == requested and
 * pcrDigest == H_sig(pcr_values). @info (may be NULL) is filled on success. */
gboolean tvd_quote_verify(TvdAkKey *ak, const guint8 *attest, gsize attest_len,
                          const guint8 *signature, gsize signature_len,
                          const TvdQuoteExpect *expect, TvdQuoteInfo *info,
                          GError **error);

/* Whether the TPM kept its PCRs between two verified quotes of one
 * binding (TPMS_CLOCK_INFO, TPM 2.0 Part 1 §36). */
typedef enum {
    TVD_TPM_FIRST_QUOTE = 0,        /* no earlier quote to compare with */
    TVD_TPM_SAME_BOOT,              /* same resetCount and restartCount */
    TVD_TPM_RESUMED,                /* restartCount grew, resetCount same:
                                     * TPM Resume, PCRs restored */
    TVD_TPM_RESET,                  /* resetCount differs: the TPM was reset
                                     * (a reboot), its PCRs restarted */
    TVD_TPM_ROLLED_BACK,            /* same resetCount but restartCount or
                                     * clock went back: an older TPM state */
} TvdTpmContinuity;

/* Compares the quote info of the earlier round @prev (NULL: none) with
 * @cur. Only RESET and ROLLED_BACK break a binding's log replay. */
TvdTpmContinuity tvd_quote_info_continuity(const TvdQuoteInfo *prev,
                                           const TvdQuoteInfo *cur);
/* "first-quote", "same-boot", "resumed", "reset", "rolled-back". */
const char *tvd_tpm_continuity_name(TvdTpmContinuity c);

/* The checks of tvd_quote_verify() after the signature: parse, magic, type,
 * nonce, selection, PCR digest (with @sig_hash, the signature's hash).
 * Only meaningful on attest bytes whose signature has been verified; public
 * for tests and the fuzz target. */
gboolean tvd_quote_check_attest(const guint8 *attest, gsize attest_len,
                                TPM2_ALG_ID sig_hash,
                                const TvdQuoteExpect *expect,
                                TvdQuoteInfo *info, GError **error);

/* ---- Nonces ------------------------------------------------------------------ */

typedef struct TvdNonceStore TvdNonceStore;
/* Monotonic clock in microseconds (g_get_monotonic_time by default). */
typedef gint64 (*TvdClockFunc)(gpointer user_data);

/* At most @max_outstanding nonces live at once; each expires @ttl_us after
 * issue. */
TvdNonceStore *tvd_nonce_store_new(guint max_outstanding, gint64 ttl_us);
void tvd_nonce_store_free(TvdNonceStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdNonceStore, tvd_nonce_store_free)
void tvd_nonce_store_set_clock(TvdNonceStore *store, TvdClockFunc func,
                               gpointer user_data);
/* Issues a fresh 32-byte nonce (RAND_bytes) bound to @owner (may be NULL). */
gboolean tvd_nonce_store_issue(TvdNonceStore *store, const char *owner,
                               guint8 nonce[TVD_NONCE_LEN], GError **error);
/* Consumes @nonce once: fails with NONCE_UNKNOWN, NONCE_REUSED,
 * NONCE_EXPIRED or NONCE_OWNER. */
gboolean tvd_nonce_store_consume(TvdNonceStore *store, const char *owner,
                                 const guint8 *nonce, gsize nonce_len,
                                 GError **error);
/* Drops expired entries; returns how many. Issue and consume prune too. */
guint tvd_nonce_store_prune(TvdNonceStore *store);
/* Entries held (outstanding nonces and remembered consumed ones). */
guint tvd_nonce_store_size(TvdNonceStore *store);
/* When the store is full, forgets the consumed nonces it remembers (a
 * replay of one is then refused as unknown, not as reused), so that only
 * live nonces can fill it; returns how many were forgotten. */
guint tvd_nonce_store_make_room(TvdNonceStore *store);
/* Drops @owner's unconsumed nonces (its binding is gone); returns how many. */
guint tvd_nonce_store_revoke_owner(TvdNonceStore *store, const char *owner);

/* ---- EK certificates ----------------------------------------------------------- */

/* Checks that @cert (DER; trailing zero bytes from an NV index allowed)
 * chains to a CA certificate in @ca (PEM, one or more, or DER; each one is
 * a trust anchor, so an intermediate alone is enough) and, if @ek is not
 * NULL, that the certificate's key equals @ek. */
gboolean tvd_ek_cert_verify(const guint8 *cert, gsize cert_len,
                            const guint8 *ca, gsize ca_len, EVP_PKEY *ek,
                            GError **error);

/* ---- IMA measurement logs ------------------------------------------------------ */

/* Templates accepted (the kernel's built-in ones with a file digest and a
 * name): ima-ng (d-ng|n-ng), ima-sig (+sig), ima-buf (+buf), ima-ngv2
 * (d-ngv2|n-ng), ima-sigv2 (+sig), ima-modsig (d-ng|n-ng|sig|d-modsig|
 * modsig) and evm-sig (d-ng|n-ng and seven EVM fields, kept uninterpreted
 * in the template data). */

#define TVD_IMA_TEMPLATE_NAME_MAX   15u     /* IMA_TEMPLATE_NAME_LEN_MAX */
#define TVD_IMA_SHA1_LEN            20u

typedef struct {
    guint max_entries;              /* per parse call */
    guint max_name_len;             /* template name */
    guint max_data_len;             /* template data */
    guint max_path_len;             /* n-ng field, bytes with the NUL */
} TvdImaLimits;

/* 65536 entries, 15, 8192, 4096. */
#define TVD_IMA_LIMITS_DEFAULT { 65536u, TVD_IMA_TEMPLATE_NAME_MAX, 8192u, 4096u }

typedef struct {
    guint32 pcr;
    guint8 template_hash[TVD_IMA_SHA1_LEN]; /* SHA-1 of template_data; zero
                                             * for a violation */
    char template_name[TVD_IMA_TEMPLATE_NAME_MAX + 1];
    GBytes *template_data;          /* as hashed into the PCR banks */
    char digest_type[8];            /* "ima", or d-ngv2's "verity" */
    char digest_alg[16];            /* d-ng algorithm, "sha256", ... */
    guint8 digest[64];              /* d-ng file digest */
    gsize digest_len;
    char *path;                     /* n-ng, valid UTF-8 not required; NUL-free */
    GBytes *sig;                    /* sig field, NULL if empty */
    GBytes *buf;                    /* ima-buf buffer field, NULL if empty */
    gboolean violation;             /* template digest all zero */
    TPM2_ALG_ID template_alg;       /* the log's template digest: SHA-1, or
                                     * the bank of a per-bank log */
    guint8 template_digest[64];     /* as in the record */
    gsize template_digest_len;
    gboolean template_sha1_padded;  /* per-bank record holding SHA-1 padded
                                     * with zeros (kernel without the hash) */
} TvdImaEntry;

void tvd_ima_entry_free(TvdImaEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdImaEntry, tvd_ima_entry_free)

/* Parses one record of the binary log (little-endian, as the kernel of an
 * x86/arm64 guest writes it) that must fill exactly @len bytes. */
TvdImaEntry *tvd_ima_entry_parse(const guint8 *buf, gsize len,
                                 const TvdImaLimits *limits, GError **error);
/* Parses the whole records at the start of @buf into @entries (of
 * TvdImaEntry, with free func). With @allow_partial a truncated last record
 * is left unparsed (read more and call again from *consumed); otherwise it
 * is an error. On error @entries is unchanged. */
gboolean tvd_ima_log_parse(const guint8 *buf, gsize len,
                           const TvdImaLimits *limits, gboolean allow_partial,
                           GPtrArray *entries, gsize *consumed, GError **error);
/* The same for the per-bank logs of recent kernels
 * (binary_runtime_measurements_<hash>): template digests of @template_alg's
 * size, each H_alg(template data) or the zero-padded SHA-1 of it.
 * TPM2_ALG_SHA1 is the classic log (the two functions above). */
TvdImaEntry *tvd_ima_entry_parse_bank(TPM2_ALG_ID template_alg,
                                      const guint8 *buf, gsize len,
                                      const TvdImaLimits *limits,
                                      GError **error);
gboolean tvd_ima_log_parse_bank(TPM2_ALG_ID template_alg, const guint8 *buf,
                                gsize len, const TvdImaLimits *limits,
                                gboolean allow_partial, GPtrArray *entries,
                                gsize *consumed, GError **error);

/* Linux's boot_aggregate over a bank (ima_calc_boot_aggregate_tfm, Linux
 * 5.8 and later): H(PCR0 || .. || PCR9) of that bank, PCR 0..7 only for
 * SHA-1. @pcrs holds 10 values of the bank's size. */
gboolean tvd_ima_boot_aggregate(TPM2_ALG_ID bank, const guint8 *pcrs,
                                gsize pcrs_len, guint8 *out, GError **error);

/* Replays the entries of one PCR of one bank. The SHA-1 bank extends the
 * template hash; other banks extend H_bank(template data) (Linux >= 5.8,
 * and the tvd agent's list), or, from a kernel without that hash, the
 * SHA-1 template hash padded with zeros; a per-bank log's entry of the
 * replayed bank extends its own template digest. A violation (zero
 * template hash) extends all-0xff. Entries of other PCRs are counted but
 * not extended (a caller that must not accept them checks entry->pcr). */
typedef struct TvdImaReplay TvdImaReplay;

/* How a non-SHA-1 bank was extended with SHA-1-log entries. */
typedef enum {
    TVD_IMA_EXTEND_AUTO = 0,        /* the bank's hash, else the padded
                                     * SHA-1; fixed by the first entry
                                     * accepted (the default) */
    TVD_IMA_EXTEND_BANK_HASH,       /* H_bank(template data) */
    TVD_IMA_EXTEND_SHA1_PADDED,     /* SHA-1 template hash, zero-padded */
} TvdImaExtendRule;

TvdImaReplay *tvd_ima_replay_new(TPM2_ALG_ID bank, guint pcr, GError **error);
TvdImaReplay *tvd_ima_replay_copy(const TvdImaReplay *replay);
void tvd_ima_replay_free(TvdImaReplay *replay);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdImaReplay, tvd_ima_replay_free)
/* Entries accepted so far (the log offset of the next one). */
guint64 tvd_ima_replay_count(const TvdImaReplay *replay);
const guint8 *tvd_ima_replay_value(const TvdImaReplay *replay, gsize *len);
TPM2_ALG_ID tvd_ima_replay_bank(const TvdImaReplay *replay);
guint tvd_ima_replay_pcr(const TvdImaReplay *replay);
void tvd_ima_replay_set_rule(TvdImaReplay *replay, TvdImaExtendRule rule);
TvdImaExtendRule tvd_ima_replay_rule(const TvdImaReplay *replay);
/* Extends @entries (log indices @offset..) into a copy of the state and
 * accepts the shortest prefix after which the PCR equals @quoted (entries
 * logged after the quote stay for the next round); *@used (may be NULL) gets
 * its length. Fails with LOG_OFFSET if @offset != count, LOG_REPLAY_MISMATCH
 * if no prefix matches; on failure the state is unchanged. */
gboolean tvd_ima_replay_match(TvdImaReplay *replay, guint64 offset,
                              GPtrArray *entries, const guint8 *quoted,
                              gsize quoted_len, guint *used, GError **error);

G_END_DECLS

#endif /* TVD_HOST_VERIFIER_H */
