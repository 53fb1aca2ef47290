/*
 * tvd verifier test kit: synthetic TPM keys and quotes made with OpenSSL and
 * marshalled with libtss2-mu, for unit tests, fuzz seeds and the benchmark
 * (no TPM needed). Never linked into the supervisor.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_VERIFIER_SYNTH_H
#define TVD_HOST_VERIFIER_SYNTH_H

#include "verifier.h"

G_BEGIN_DECLS

typedef struct {
    EVP_PKEY *key;                  /* private key */
    GBytes *public;                 /* TPM2B_PUBLIC */
    TPM2_ALG_ID scheme;             /* RSASSA, RSAPSS, ECDSA (hash SHA-256) */
} TvdSynthKey;

void tvd_synth_key_free(TvdSynthKey *k);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdSynthKey, tvd_synth_key_free)

/* An AK-like key (restricted signing, SHA-256 scheme @scheme, TPM2_ALG_NULL
 * for none): RSA-2048 for RSASSA/RSAPSS, else ECC P-256; @attrs 0 = the
 * usual AK attributes. */
TvdSynthKey *tvd_synth_ak_new(TPM2_ALG_ID type, TPM2_ALG_ID scheme,
                              TPMA_OBJECT attrs);
/* A marshalled TPM2B_PUBLIC for @pkey (RSA or EC P-256) with @attrs and,
 * for decryption keys, AES-128-CFB. */
GBytes *tvd_synth_public(EVP_PKEY *pkey, TPMA_OBJECT attrs,
                         TPM2_ALG_ID scheme, gboolean decrypt);
/* A marshalled TPMS_ATTEST of type @type (TPM2_ST_ATTEST_QUOTE) quoting bank
 * @bank PCRs @select whose digest (SHA-256) is over @pcr_values. */
GBytes *tvd_synth_attest(TPM2_ST type, const guint8 *nonce, gsize nonce_len,
                         TPM2_ALG_ID bank, guint32 select,
                         const guint8 *pcr_values, gsize pcr_values_len);
/* The same with the clock info given (tvd_synth_attest: 123456, 1, 2). */
GBytes *tvd_synth_attest_clock(TPM2_ST type, const guint8 *nonce,
                               gsize nonce_len, TPM2_ALG_ID bank,
                               guint32 select, const guint8 *pcr_values,
                               gsize pcr_values_len, guint64 clock,
                               guint32 reset_count, guint32 restart_count);
/* A marshalled TPMT_SIGNATURE by @k over @attest (SHA-256). */
GBytes *tvd_synth_sign(const TvdSynthKey *k, GBytes *attest);

/* One binary ima-ng record (little-endian) of @path with file digest
 * sha256 @digest; @violation writes a zero template hash. */
GBytes *tvd_synth_ima_record(guint32 pcr, const char *path,
                             const guint8 digest[32], gboolean violation);
/* A record of template @name over @data (template data as is) for the log
 * whose template digests are @template_alg's (TPM2_ALG_SHA1: the classic
 * log; another: a per-bank log); @padded writes SHA-1 zero-padded, as a
 * kernel without @template_alg's hash does; @violation a zero digest. */
GBytes *tvd_synth_ima_record_data(TPM2_ALG_ID template_alg, gboolean padded,
                                  guint32 pcr, const char *name,
                                  const guint8 *data, gsize data_len,
                                  gboolean violation);

G_END_DECLS

#endif /* TVD_HOST_VERIFIER_SYNTH_H */
