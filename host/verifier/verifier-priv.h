/*
 * tvd verifier: helpers shared by the verifier's source files.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_VERIFIER_PRIV_H
#define TVD_HOST_VERIFIER_PRIV_H

#include "verifier.h"

/* Sets a CRYPTO error with OpenSSL's first queued error; returns FALSE. */
gboolean tvd_crypto_fail(GError **error, const char *what);
/* OpenSSL name of a TPM hash ("SHA256"), NULL if unsupported. */
const char *tvd_tpm_hash_name(TPM2_ALG_ID alg);
/* out = H_alg(a || b); either part may be empty. */
gboolean tvd_hash(TPM2_ALG_ID alg, const guint8 *a, gsize a_len,
                  const guint8 *b, gsize b_len, guint8 *out, GError **error);

/* Silences libtss2-mu's own logging of malformed input (once). */
void tvd_mu_quiet(void);

/* OpenSSL group name and field size in bytes of a TPM curve. */
gboolean tvd_tpm_ecc_curve(TPM2_ECC_CURVE curve, const char **group,
                           gsize *field);

/* A new reference-holding copy of @pub (for objects that keep it). */
TvdTpmPublic *tvd_tpm_public_dup(const TvdTpmPublic *pub);

static inline void
tvd_put_be16(guint8 *p, guint16 v)
{
    p[0] = (guint8)(v >> 8);
    p[1] = (guint8)v;
}

static inline void
tvd_put_be32(guint8 *p, guint32 v)
{
    p[0] = (guint8)(v >> 24);
    p[1] = (guint8)(v >> 16);
    p[2] = (guint8)(v >> 8);
    p[3] = (guint8)v;
}

#endif /* TVD_HOST_VERIFIER_PRIV_H */
