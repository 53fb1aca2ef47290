/*
 * tvd verifier: the TPM's key derivation functions (TPM 2.0 Part 1 §11.4.10).
 *
 * KDFa is SP800-108 in counter mode with HMAC: for i = 1, 2, ...
 *   K(i) = HMAC_hash(key, [i]_32 || label || 0x00 || contextU || contextV || [bits]_32)
 * made with OpenSSL's EVP_MAC HMAC (tests cross-check it with OpenSSL's own
 * KBKDF). KDFe is the SP800-56A concatenation KDF:
 *   K(i) = H([i]_32 || Z || label || 0x00 || partyUInfo || partyVInfo)
 * which is OpenSSL's SSKDF with the fixed info label||0||U||V.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

static gboolean
kdf_args(TPM2_ALG_ID hash_alg, gsize key_len, guint32 bits, GError **error)
{
    if (!tvd_tpm_hash_md(hash_alg)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "KDF hash 0x%04x not supported", hash_alg);
        return FALSE;
    }
    if (key_len == 0 || bits == 0 || bits % 8 != 0 || bits > 8 * 1024) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "KDF with a %zu-byte key for %u bits", key_len, bits);
        return FALSE;
    }
    return TRUE;
}

gboolean
tvd_kdfa(TPM2_ALG_ID hash_alg, const guint8 *key, gsize key_len,
         const char *label, const guint8 *context_u, gsize u_len,
         const guint8 *context_v, gsize v_len, guint32 bits, guint8 *out,
         GError **error)
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    guint8 block[EVP_MAX_MD_SIZE];
    guint8 be[4], be_bits[4];
    static const guint8 zero;
    gsize want = bits / 8, done = 0, n;
    gboolean ok = TRUE;

    if (!kdf_args(hash_alg, key_len, bits, error)) {
        return FALSE;
    }
    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_MAC_PARAM_DIGEST, (char *)tvd_tpm_hash_name(hash_alg), 0);
    params[1] = OSSL_PARAM_construct_end();
    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    tvd_put_be32(be_bits, bits);
    for (guint32 i = 1; ok && done < want; i++) {
        size_t len = 0;

        tvd_put_be32(be, i);
        ok = ctx && EVP_MAC_init(ctx, key, key_len, params) &&
             EVP_MAC_update(ctx, be, 4) &&
             EVP_MAC_update(ctx, (const guint8 *)label, strlen(label)) &&
             EVP_MAC_update(ctx, &zero, 1) &&
             (u_len == 0 || EVP_MAC_update(ctx, context_u, u_len)) &&
             (v_len == 0 || EVP_MAC_update(ctx, context_v, v_len)) &&
             EVP_MAC_update(ctx, be_bits, 4) &&
             EVP_MAC_final(ctx, block, &len, sizeof(block));
        if (ok) {
            n = MIN(len, want - done);
            memcpy(out + done, block, n);
            done += n;
        }
    }
    OPENSSL_cleanse(block, sizeof(block));
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    if (!ok) {
        OPENSSL_cleanse(out, want);
        return tvd_crypto_fail(error, "KDFa (HMAC)");
    }
    return TRUE;
}

gboolean
tvd_kdfe(TPM2_ALG_ID hash_alg, const guint8 *z, gsize z_len,
         const char *label, const guint8 *party_u, gsize u_len,
         const guint8 *party_v, gsize v_len, guint32 bits, guint8 *out,
         GError **error)
{
    EVP_KDF *kdf = NULL;
    EVP_KDF_CTX *ctx = NULL;
    OSSL_PARAM params[4];
    g_autofree guint8 *info = NULL;
    gsize label_len = strlen(label), info_len;
    gboolean ok;

    if (!kdf_args(hash_alg, z_len, bits, error)) {
        return FALSE;
    }
    info_len = label_len + 1 + u_len + v_len;
    info = g_malloc0(info_len);
    memcpy(info, label, label_len);
    if (u_len) {
        memcpy(info + label_len + 1, party_u, u_len);
    }
    if (v_len) {
        memcpy(info + label_len + 1 + u_len, party_v, v_len);
    }
    params[0] = OSSL_PARAM_construct_utf8_string(
        OSSL_KDF_PARAM_DIGEST, (char *)tvd_tpm_hash_name(hash_alg), 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET,
                                                  (void *)z, z_len);
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
                                                  info_len);
    params[3] = OSSL_PARAM_construct_end();
    kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
    ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
    ok = ctx && EVP_KDF_derive(ctx, out, bits / 8, params) > 0;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    if (!ok) {
        return tvd_crypto_fail(error, "KDFe (SSKDF)");
    }
    return TRUE;
}
