/*
 * tvd verifier: TPM2_MakeCredential in software (TPM 2.0 Part 1 §24,
 * Part 3 §12.6, Part 1 Annex B.10.4 / C.6.4 for the seed).
 *
 *   seed     RSA EK: random, nameAlg-digest-sized, RSA-OAEP(nameAlg,
 *                    label "IDENTITY\0") to the EK -> encrypted secret
 *            ECC EK: ephemeral key on the EK's curve, Z = x(d_e * Q_EK),
 *                    seed = KDFe(nameAlg, Z, "IDENTITY", x_e, x_EK);
 *                    encrypted secret = TPMS_ECC_POINT of the ephemeral key
 *   symKey   = KDFa(nameAlg, seed, "STORAGE", name, -, EK symmetric bits)
 *   encIdentity = AES-CFB(symKey, IV 0, TPM2B_DIGEST(credential))
 *   HMACkey  = KDFa(nameAlg, seed, "INTEGRITY", -, -, digest bits)
 *   outerHMAC = HMAC_nameAlg(HMACkey, encIdentity || name)
 *   TPM2B_ID_OBJECT = TPM2B_DIGEST(outerHMAC) || encIdentity
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

static const char identity_label[] = "IDENTITY";

/* RSA: random seed, OAEP-encrypted to the EK. */
static GBytes *
seed_rsa(const TvdTpmPublic *ek, guint8 *seed, gsize seed_len, GError **error)
{
    const TPMT_PUBLIC *a = tvd_tpm_public_area(ek);
    EVP_PKEY_CTX *ctx;
    guint8 *label;
    guint8 out[2 + 512];
    size_t out_len = sizeof(out) - 2;
    gboolean ok;

    if (RAND_bytes(seed, (int)seed_len) != 1) {
        tvd_crypto_fail(error, "RAND_bytes");
        return NULL;
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, tvd_tpm_public_pkey(ek), NULL);
    /* The label includes its NUL; set0 takes ownership of the copy. */
    label = OPENSSL_memdup(identity_label, sizeof(identity_label));
    ok = ctx && label && EVP_PKEY_encrypt_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, tvd_tpm_hash_name(a->nameAlg),
                                           NULL) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, tvd_tpm_hash_name(a->nameAlg),
                                           NULL) > 0 &&
         EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label,
                                          sizeof(identity_label)) > 0;
    if (ok) {
        label = NULL;
        ok = EVP_PKEY_encrypt(ctx, out + 2, &out_len, seed, seed_len) > 0;
    }
    OPENSSL_free(label);
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        tvd_crypto_fail(error, "RSA-OAEP encryption of the seed");
        return NULL;
    }
    tvd_put_be16(out, (guint16)out_len);
    return g_bytes_new(out, out_len + 2);
}

static gboolean
bn_param(EVP_PKEY *pkey, const char *name, guint8 *out, gsize len)
{
    BIGNUM *bn = NULL;
    gboolean ok = EVP_PKEY_get_bn_param(pkey, name, &bn) > 0 &&
                  BN_bn2binpad(bn, out, (int)len) == (int)len;

    BN_free(bn);
    return ok;
}

/* ECC: one-pass ECDH with an ephemeral key, seed from KDFe. */
static GBytes *
seed_ecc(const TvdTpmPublic *ek, guint8 *seed, gsize seed_len, GError **error)
{
    const TPMT_PUBLIC *a = tvd_tpm_public_area(ek);
    const char *group;
    gsize field;
    EVP_PKEY *eph = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    guint8 z[66], x[66], y[66];
    size_t z_len = sizeof(z);
    guint8 out[2 + 2 + 66 + 2 + 66];
    gsize n;
    gboolean ok;

    if (!tvd_tpm_ecc_curve(a->parameters.eccDetail.curveID, &group, &field)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "EK curve not supported");
        return NULL;
    }
    eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", group);
    ctx = eph ? EVP_PKEY_CTX_new_from_pkey(NULL, eph, NULL) : NULL;
    ok = ctx && EVP_PKEY_derive_init(ctx) > 0 &&
         EVP_PKEY_derive_set_peer(ctx, tvd_tpm_public_pkey(ek)) > 0 &&
         EVP_PKEY_derive(ctx, z, &z_len) > 0 && z_len == field &&
         bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_X, x, field) &&
         bn_param(eph, OSSL_PKEY_PARAM_EC_PUB_Y, y, field);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(eph);
    if (!ok) {
        OPENSSL_cleanse(z, sizeof(z));
        tvd_crypto_fail(error, "ECDH with the EK");
        return NULL;
    }
    ok = tvd_kdfe(a->nameAlg, z, z_len, identity_label, x, field,
                  a->unique.ecc.x.buffer, a->unique.ecc.x.size,
                  (guint32)seed_len * 8, seed, error);
    OPENSSL_cleanse(z, sizeof(z));
    if (!ok) {
        return NULL;
    }
    /* TPM2B_ENCRYPTED_SECRET { TPMS_ECC_POINT { TPM2B x, TPM2B y } } */
    n = 2 + field + 2 + field;
    tvd_put_be16(out, (guint16)n);
    tvd_put_be16(out + 2, (guint16)field);
    memcpy(out + 4, x, field);
    tvd_put_be16(out + 4 + field, (guint16)field);
    memcpy(out + 6 + field, y, field);
    return g_bytes_new(out, n + 2);
}

static gboolean
aes_cfb_encrypt(guint bits, const guint8 *key, const guint8 *in, gsize len,
                guint8 *out, GError **error)
{
    EVP_CIPHER *cipher = EVP_CIPHER_fetch(NULL, bits == 256 ? "AES-256-CFB"
                                                            : "AES-128-CFB",
                                          NULL);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    static const guint8 iv[16];
    int l1 = 0, l2 = 0;
    gboolean ok;

    ok = cipher && ctx && EVP_EncryptInit_ex2(ctx, cipher, key, iv, NULL) &&
         EVP_EncryptUpdate(ctx, out, &l1, in, (int)len) &&
         EVP_EncryptFinal_ex(ctx, out + l1, &l2) && (gsize)(l1 + l2) == len;
    EVP_CIPHER_CTX_free(ctx);
    EVP_CIPHER_free(cipher);
    if (!ok) {
        return tvd_crypto_fail(error, "AES-CFB");
    }
    return TRUE;
}

gboolean
tvd_make_credential(const TvdTpmPublic *ek, const guint8 *name,
                    gsize name_len, const guint8 *secret, gsize secret_len,
                    GBytes **id_object, GBytes **encrypted_secret,
                    GError **error)
{
    const TPMT_PUBLIC *a = tvd_tpm_public_area(ek);
    TPM2_ALG_ID name_alg = a->nameAlg;
    gsize dsize = tvd_tpm_hash_size(name_alg);
    guint sym_bits;
    guint8 seed[64], sym_key[32], hmac_key[64], hmac[EVP_MAX_MD_SIZE];
    guint8 plain[2 + 64], enc[2 + 64];
    guint8 *mac_in = NULL;
    gsize enc_len = 2 + secret_len, hmac_len = 0;
    g_autoptr(GBytes) secret_out = NULL;
    guint8 blob[2 + 2 + 64 + 2 + 64];
    gboolean ok = FALSE;

    g_return_val_if_fail(id_object && encrypted_secret, FALSE);
    if (!tvd_tpm_public_check_ek(ek, error)) {
        return FALSE;
    }
    if (name_len < 2 ||
        tvd_tpm_hash_size((TPM2_ALG_ID)((name[0] << 8) | name[1])) !=
            name_len - 2) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "object name of %zu bytes is not nameAlg || digest",
                    name_len);
        return FALSE;
    }
    if (secret_len == 0 || secret_len > dsize) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "credential of %zu bytes (1..%zu for the EK's nameAlg)",
                    secret_len, dsize);
        return FALSE;
    }
    sym_bits = a->type == TPM2_ALG_RSA
                   ? a->parameters.rsaDetail.symmetric.keyBits.aes
                   : a->parameters.eccDetail.symmetric.keyBits.aes;

    if (a->type == TPM2_ALG_RSA) {
        secret_out = seed_rsa(ek, seed, dsize, error);
    } else {
        secret_out = seed_ecc(ek, seed, dsize, error);
    }
    if (!secret_out) {
        goto out;
    }

    /* encIdentity = AES-CFB(symKey, TPM2B_DIGEST(credential)) */
    tvd_put_be16(plain, (guint16)secret_len);
    memcpy(plain + 2, secret, secret_len);
    if (!tvd_kdfa(name_alg, seed, dsize, "STORAGE", name, name_len, NULL, 0,
                  sym_bits, sym_key, error) ||
        !aes_cfb_encrypt(sym_bits, sym_key, plain, enc_len, enc, error)) {
        goto out;
    }

    /* outerHMAC = HMAC(HMACkey, encIdentity || name) */
    if (!tvd_kdfa(name_alg, seed, dsize, "INTEGRITY", NULL, 0, NULL, 0,
                  (guint32)dsize * 8, hmac_key, error)) {
        goto out;
    }
    mac_in = g_malloc(enc_len + name_len);
    memcpy(mac_in, enc, enc_len);
    memcpy(mac_in + enc_len, name, name_len);
    if (!EVP_Q_mac(NULL, "HMAC", NULL, tvd_tpm_hash_name(name_alg), NULL,
                   hmac_key, dsize, mac_in, enc_len + name_len, hmac,
                   sizeof(hmac), &hmac_len) || hmac_len != dsize) {
        tvd_crypto_fail(error, "outer HMAC");
        goto out;
    }

    /* TPM2B_ID_OBJECT { TPM2B_DIGEST integrityHMAC, encIdentity } */
    tvd_put_be16(blob, (guint16)(2 + dsize + enc_len));
    tvd_put_be16(blob + 2, (guint16)dsize);
    memcpy(blob + 4, hmac, dsize);
    memcpy(blob + 4 + dsize, enc, enc_len);
    *id_object = g_bytes_new(blob, 4 + dsize + enc_len);
    *encrypted_secret = g_steal_pointer(&secret_out);
    ok = TRUE;

out:
    OPENSSL_cleanse(seed, sizeof(seed));
    OPENSSL_cleanse(sym_key, sizeof(sym_key));
    OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
    OPENSSL_cleanse(plain, sizeof(plain));
    g_free(mac_in);
    return ok;
}
