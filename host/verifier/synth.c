/*
 * tvd verifier test kit: synthetic keys, attests, signatures, IMA records.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "synth.h"
#include "evidence.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

void
tvd_synth_key_free(TvdSynthKey *k)
{
    if (!k) {
        return;
    }
    EVP_PKEY_free(k->key);
    g_clear_pointer(&k->public, g_bytes_unref);
    g_free(k);
}

static void
bn_to_buf(EVP_PKEY *pkey, const char *param, guint8 *out, gsize len)
{
    BIGNUM *bn = NULL;

    g_assert(EVP_PKEY_get_bn_param(pkey, param, &bn) > 0);
    g_assert(BN_bn2binpad(bn, out, (int)len) == (int)len);
    BN_free(bn);
}

GBytes *
tvd_synth_public(EVP_PKEY *pkey, TPMA_OBJECT attrs, TPM2_ALG_ID scheme,
                 gboolean decrypt)
{
    TPM2B_PUBLIC pub;
    guint8 buf[1024];
    size_t off = 0;

    memset(&pub, 0, sizeof(pub));
    pub.publicArea.nameAlg = TPM2_ALG_SHA256;
    pub.publicArea.objectAttributes = attrs;
    pub.publicArea.authPolicy.size = 0;
    if (EVP_PKEY_is_a(pkey, "RSA")) {
        TPMS_RSA_PARMS *p = &pub.publicArea.parameters.rsaDetail;

        pub.publicArea.type = TPM2_ALG_RSA;
        p->keyBits = (TPM2_KEY_BITS)EVP_PKEY_get_bits(pkey);
        p->exponent = 0;
        if (decrypt) {
            p->symmetric.algorithm = TPM2_ALG_AES;
            p->symmetric.keyBits.aes = 128;
            p->symmetric.mode.aes = TPM2_ALG_CFB;
            p->scheme.scheme = TPM2_ALG_NULL;
        } else {
            p->symmetric.algorithm = TPM2_ALG_NULL;
            p->scheme.scheme = scheme;
            p->scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
        }
        pub.publicArea.unique.rsa.size = p->keyBits / 8;
        bn_to_buf(pkey, OSSL_PKEY_PARAM_RSA_N, pub.publicArea.unique.rsa.buffer,
                  p->keyBits / 8);
    } else {
        TPMS_ECC_PARMS *p = &pub.publicArea.parameters.eccDetail;

        pub.publicArea.type = TPM2_ALG_ECC;
        p->curveID = TPM2_ECC_NIST_P256;
        p->kdf.scheme = TPM2_ALG_NULL;
        if (decrypt) {
            p->symmetric.algorithm = TPM2_ALG_AES;
            p->symmetric.keyBits.aes = 128;
            p->symmetric.mode.aes = TPM2_ALG_CFB;
            p->scheme.scheme = TPM2_ALG_NULL;
        } else {
            p->symmetric.algorithm = TPM2_ALG_NULL;
            p->scheme.scheme = scheme;
            p->scheme.details.anySig.hashAlg = TPM2_ALG_SHA256;
        }
        pub.publicArea.unique.ecc.x.size = 32;
        pub.publicArea.unique.ecc.y.size = 32;
        bn_to_buf(pkey, OSSL_PKEY_PARAM_EC_PUB_X,
                  pub.publicArea.unique.ecc.x.buffer, 32);
        bn_to_buf(pkey, OSSL_PKEY_PARAM_EC_PUB_Y,
                  pub.publicArea.unique.ecc.y.buffer, 32);
    }
    g_assert(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof(buf), &off) ==
             TSS2_RC_SUCCESS);
    return g_bytes_new(buf, off);
}

TvdSynthKey *
tvd_synth_ak_new(TPM2_ALG_ID type, TPM2_ALG_ID scheme, TPMA_OBJECT attrs)
{
    TvdSynthKey *k = g_new0(TvdSynthKey, 1);

    if (!attrs) {
        attrs = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH;
    }
    if (type == TPM2_ALG_RSA) {
        k->key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    } else {
        k->key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    }
    g_assert(k->key);
    k->scheme = scheme;
    k->public = tvd_synth_public(k->key, attrs, scheme, FALSE);
    return k;
}

GBytes *
tvd_synth_attest(TPM2_ST type, const guint8 *nonce, gsize nonce_len,
                 TPM2_ALG_ID bank, guint32 select, const guint8 *pcr_values,
                 gsize pcr_values_len)
{
    return tvd_synth_attest_clock(type, nonce, nonce_len, bank, select,
                                  pcr_values, pcr_values_len, 123456, 1, 2);
}

GBytes *
tvd_synth_attest_clock(TPM2_ST type, const guint8 *nonce, gsize nonce_len,
                       TPM2_ALG_ID bank, guint32 select,
                       const guint8 *pcr_values, gsize pcr_values_len,
                       guint64 clock, guint32 reset_count,
                       guint32 restart_count)
{
    TPMS_ATTEST at;
    guint8 buf[2048];
    size_t off = 0;
    unsigned int dlen = 0;

    memset(&at, 0, sizeof(at));
    at.magic = TPM2_GENERATED_VALUE;
    at.type = type;
    at.qualifiedSigner.size = 34;
    at.qualifiedSigner.name[1] = 0x0b;
    g_assert(nonce_len <= sizeof(at.extraData.buffer));
    at.extraData.size = (UINT16)nonce_len;
    memcpy(at.extraData.buffer, nonce, nonce_len);
    at.clockInfo.clock = clock;
    at.clockInfo.resetCount = reset_count;
    at.clockInfo.restartCount = restart_count;
    at.clockInfo.safe = 1;
    at.firmwareVersion = 0x2019102300163636ULL;
    if (type == TPM2_ST_ATTEST_QUOTE) {
        TPMS_QUOTE_INFO *q = &at.attested.quote;

        q->pcrSelect.count = 1;
        q->pcrSelect.pcrSelections[0].hash = bank;
        q->pcrSelect.pcrSelections[0].sizeofSelect = 3;
        q->pcrSelect.pcrSelections[0].pcrSelect[0] = select & 0xff;
        q->pcrSelect.pcrSelections[0].pcrSelect[1] = (select >> 8) & 0xff;
        q->pcrSelect.pcrSelections[0].pcrSelect[2] = (select >> 16) & 0xff;
        q->pcrDigest.size = 32;
        g_assert(EVP_Digest(pcr_values, pcr_values_len, q->pcrDigest.buffer,
                            &dlen, EVP_sha256(), NULL));
    } else if (type == TPM2_ST_ATTEST_CERTIFY) {
        at.attested.certify.name.size = 34;
        at.attested.certify.qualifiedName.size = 34;
    }
    g_assert(Tss2_MU_TPMS_ATTEST_Marshal(&at, buf, sizeof(buf), &off) ==
             TSS2_RC_SUCCESS);
    return g_bytes_new(buf, off);
}

GBytes *
tvd_synth_sign(const TvdSynthKey *k, GBytes *attest)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    guint8 der[512];
    size_t der_len = sizeof(der);
    TPMT_SIGNATURE sig;
    guint8 buf[1024];
    size_t off = 0;
    gsize len;
    const guint8 *data = g_bytes_get_data(attest, &len);

    g_assert(EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL, k->key,
                                   NULL) == 1);
    if (k->scheme == TPM2_ALG_RSAPSS) {
        g_assert(EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) > 0);
        g_assert(EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) >
                 0);
    }
    g_assert(EVP_DigestSign(ctx, der, &der_len, data, len) == 1);
    EVP_MD_CTX_free(ctx);

    memset(&sig, 0, sizeof(sig));
    sig.sigAlg = k->scheme == TPM2_ALG_NULL
                     ? (EVP_PKEY_is_a(k->key, "RSA") ? TPM2_ALG_RSASSA
                                                     : TPM2_ALG_ECDSA)
                     : k->scheme;
    if (sig.sigAlg == TPM2_ALG_ECDSA) {
        const guint8 *p = der;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
        const BIGNUM *r, *s;

        g_assert(es);
        ECDSA_SIG_get0(es, &r, &s);
        sig.signature.ecdsa.hash = TPM2_ALG_SHA256;
        sig.signature.ecdsa.signatureR.size = 32;
        sig.signature.ecdsa.signatureS.size = 32;
        BN_bn2binpad(r, sig.signature.ecdsa.signatureR.buffer, 32);
        BN_bn2binpad(s, sig.signature.ecdsa.signatureS.buffer, 32);
        ECDSA_SIG_free(es);
    } else {
        sig.signature.rsassa.hash = TPM2_ALG_SHA256;
        sig.signature.rsassa.sig.size = (UINT16)der_len;
        memcpy(sig.signature.rsassa.sig.buffer, der, der_len);
    }
    g_assert(Tss2_MU_TPMT_SIGNATURE_Marshal(&sig, buf, sizeof(buf), &off) ==
             TSS2_RC_SUCCESS);
    return g_bytes_new(buf, off);
}

GBytes *
tvd_synth_ima_record_data(TPM2_ALG_ID template_alg, gboolean padded,
                          guint32 pcr, const char *name, const guint8 *data,
                          gsize data_len, gboolean violation)
{
    const EVP_MD *md = padded ? EVP_sha1() : tvd_tpm_hash_md(template_alg);
    gsize size = tvd_tpm_hash_size(template_alg);
    guint8 th[64] = { 0 };
    unsigned int len = 0;

    g_assert(md && size);
    if (!violation) {
        g_assert(EVP_Digest(data, data_len, th, &len, md, NULL));
    }
    return tvd_ima_record_encode(pcr, th, size, name, data, data_len);
}

GBytes *
tvd_synth_ima_record(guint32 pcr, const char *path, const guint8 digest[32],
                     gboolean violation)
{
    g_autoptr(GByteArray) data = g_byte_array_new();

    tvd_ima_ng_data_append(data, "sha256", digest, 32, path);
    return tvd_synth_ima_record_data(TPM2_ALG_SHA1, FALSE, pcr, "ima-ng",
                                     data->data, data->len, violation);
}
