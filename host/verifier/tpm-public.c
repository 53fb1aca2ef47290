/*
 * tvd verifier: TPM2B_PUBLIC -> EVP_PKEY and TPM object name.
 *
 * The name of an object is nameAlg || H_nameAlg(TPMT_PUBLIC) (TPM 2.0
 * Part 1 §16). libtss2-mu unmarshals the structure; every semantic check
 * (sizes, attributes, schemes, the point on the curve) is made here.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>

struct TvdTpmPublic {
    TPMT_PUBLIC area;
    EVP_PKEY *pkey;
    guint8 name[TVD_TPM_NAME_MAX];
    gsize name_len;
};

void
tvd_tpm_public_free(TvdTpmPublic *pub)
{
    if (!pub) {
        return;
    }
    EVP_PKEY_free(pub->pkey);
    g_free(pub);
}

const TPMT_PUBLIC *
tvd_tpm_public_area(const TvdTpmPublic *pub)
{
    return &pub->area;
}

EVP_PKEY *
tvd_tpm_public_pkey(const TvdTpmPublic *pub)
{
    return pub->pkey;
}

const guint8 *
tvd_tpm_public_name(const TvdTpmPublic *pub, gsize *len)
{
    *len = pub->name_len;
    return pub->name;
}

static EVP_PKEY *
pkey_from_params(const char *type, OSSL_PARAM_BLD *bld, GError **error)
{
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    EVP_PKEY_CTX *check = NULL;
    EVP_PKEY *pkey = NULL;
    gboolean ok;

    ok = params && ctx && EVP_PKEY_fromdata_init(ctx) > 0 &&
         EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) > 0;
    if (ok) {
        check = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (!check || EVP_PKEY_public_check(check) <= 0) {
            g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                        "%s public key fails OpenSSL's public key check", type);
            ERR_clear_error();
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
    } else {
        /* OpenSSL rejects the key material itself (e.g. point off curve) */
        tvd_crypto_fail(error, "EVP_PKEY_fromdata");
        if (error && *error) {
            (*error)->code = TVD_VERIFY_ERROR_MALFORMED;
        }
    }
    EVP_PKEY_CTX_free(check);
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static EVP_PKEY *
rsa_pkey(const TPMT_PUBLIC *area, GError **error)
{
    const TPMS_RSA_PARMS *p = &area->parameters.rsaDetail;
    const TPM2B_PUBLIC_KEY_RSA *n = &area->unique.rsa;
    OSSL_PARAM_BLD *bld;
    BIGNUM *bn_n, *bn_e;
    EVP_PKEY *pkey = NULL;
    guint32 e = p->exponent ? p->exponent : 65537u;

    if (p->keyBits != 2048 && p->keyBits != 3072 && p->keyBits != 4096) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "RSA key size %u not supported (2048, 3072, 4096)",
                    p->keyBits);
        return NULL;
    }
    if (n->size != p->keyBits / 8 || (n->buffer[0] & 0x80) == 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "RSA modulus of %u bytes does not have %u bits",
                    n->size, p->keyBits);
        return NULL;
    }
    bn_n = BN_bin2bn(n->buffer, n->size, NULL);
    bn_e = BN_new();
    bld = OSSL_PARAM_BLD_new();
    if (bn_n && bn_e && bld && BN_set_word(bn_e, e) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e)) {
        pkey = pkey_from_params("RSA", bld, error);
    } else {
        tvd_crypto_fail(error, "RSA parameters");
    }
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn_n);
    BN_free(bn_e);
    return pkey;
}

gboolean
tvd_tpm_ecc_curve(TPM2_ECC_CURVE curve, const char **group, gsize *field)
{
    switch (curve) {
    case TPM2_ECC_NIST_P256:
        *group = "prime256v1";
        *field = 32;
        return TRUE;
    case TPM2_ECC_NIST_P384:
        *group = "secp384r1";
        *field = 48;
        return TRUE;
    case TPM2_ECC_NIST_P521:
        *group = "secp521r1";
        *field = 66;
        return TRUE;
    default:
        return FALSE;
    }
}

static EVP_PKEY *
ecc_pkey(const TPMT_PUBLIC *area, GError **error)
{
    const TPMS_ECC_POINT *q = &area->unique.ecc;
    const char *group;
    gsize field;
    guint8 point[1 + 2 * 66];
    OSSL_PARAM_BLD *bld;
    EVP_PKEY *pkey = NULL;

    if (!tvd_tpm_ecc_curve(area->parameters.eccDetail.curveID, &group,
                           &field)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "ECC curve 0x%04x not supported (NIST P-256/384/521)",
                    area->parameters.eccDetail.curveID);
        return NULL;
    }
    if (q->x.size == 0 || q->x.size > field || q->y.size == 0 ||
        q->y.size > field) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "ECC point coordinates of %u and %u bytes for a "
                    "%zu-byte field", q->x.size, q->y.size, field);
        return NULL;
    }
    memset(point, 0, sizeof(point));
    point[0] = 0x04;
    memcpy(point + 1 + field - q->x.size, q->x.buffer, q->x.size);
    memcpy(point + 1 + 2 * field - q->y.size, q->y.buffer, q->y.size);
    bld = OSSL_PARAM_BLD_new();
    if (bld &&
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group, 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                         point, 1 + 2 * field)) {
        pkey = pkey_from_params("EC", bld, error);
    } else {
        tvd_crypto_fail(error, "EC parameters");
    }
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

TvdTpmPublic *
tvd_tpm_public_parse(const guint8 *buf, gsize len, GError **error)
{
    g_autoptr(TvdTpmPublic) pub = g_new0(TvdTpmPublic, 1);
    TPM2B_PUBLIC in;
    g_autofree guint8 *canon = NULL;
    size_t off = 0;
    gsize digest_len;
    TSS2_RC rc;

    if (len < 2 || len > TVD_TPM_PUBLIC_MAX) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "TPM2B_PUBLIC of %zu bytes (2..%u)", len,
                    TVD_TPM_PUBLIC_MAX);
        return NULL;
    }
    memset(&in, 0, sizeof(in));
    tvd_mu_quiet();
    rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(buf, len, &off, &in);
    if (rc != TSS2_RC_SUCCESS || off != len || in.size != len - 2) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "TPM2B_PUBLIC does not parse (rc 0x%x, %zu of %zu bytes)",
                    rc, off, len);
        return NULL;
    }
    /* The name hashes the TPM's own marshalling: insist the input is it. */
    canon = g_malloc(len);
    off = 0;
    rc = Tss2_MU_TPMT_PUBLIC_Marshal(&in.publicArea, canon, len - 2, &off);
    if (rc != TSS2_RC_SUCCESS || off != len - 2 ||
        memcmp(canon, buf + 2, len - 2) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "TPMT_PUBLIC is not in canonical form");
        return NULL;
    }
    pub->area = in.publicArea;

    digest_len = tvd_tpm_hash_size(pub->area.nameAlg);
    if (!digest_len) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "nameAlg 0x%04x not supported", pub->area.nameAlg);
        return NULL;
    }
    tvd_put_be16(pub->name, pub->area.nameAlg);
    if (!tvd_hash(pub->area.nameAlg, buf + 2, len - 2, NULL, 0, pub->name + 2,
                  error)) {
        return NULL;
    }
    pub->name_len = 2 + digest_len;

    switch (pub->area.type) {
    case TPM2_ALG_RSA:
        pub->pkey = rsa_pkey(&pub->area, error);
        break;
    case TPM2_ALG_ECC:
        pub->pkey = ecc_pkey(&pub->area, error);
        break;
    default:
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "public key type 0x%04x not supported (RSA, ECC)",
                    pub->area.type);
        return NULL;
    }
    if (!pub->pkey) {
        return NULL;
    }
    return g_steal_pointer(&pub);
}

gboolean
tvd_tpm_public_check_name(const TvdTpmPublic *pub, const guint8 *name,
                          gsize name_len, GError **error)
{
    if (name_len != pub->name_len ||
        CRYPTO_memcmp(name, pub->name, name_len) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NAME_MISMATCH,
                    "name does not match the public area");
        return FALSE;
    }
    return TRUE;
}

static gboolean
has_all(TPMA_OBJECT attrs, TPMA_OBJECT want)
{
    return (attrs & want) == want;
}

gboolean
tvd_tpm_public_check_ak(const TvdTpmPublic *pub, GError **error)
{
    const TPMT_PUBLIC *a = &pub->area;
    TPMA_OBJECT want = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT |
                       TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                       TPMA_OBJECT_SENSITIVEDATAORIGIN;
    TPM2_ALG_ID scheme, hash;

    if (!has_all(a->objectAttributes, want) ||
        (a->objectAttributes & TPMA_OBJECT_DECRYPT)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_AK_ATTRIBUTES,
                    "AK attributes 0x%08x: need restricted, sign, fixedTPM, "
                    "fixedParent, sensitiveDataOrigin and not decrypt",
                    a->objectAttributes);
        return FALSE;
    }
    if (a->type == TPM2_ALG_RSA) {
        scheme = a->parameters.rsaDetail.scheme.scheme;
        hash = a->parameters.rsaDetail.scheme.details.anySig.hashAlg;
        if (scheme != TPM2_ALG_RSASSA && scheme != TPM2_ALG_RSAPSS &&
            scheme != TPM2_ALG_NULL) {
            goto bad_scheme;
        }
    } else {
        scheme = a->parameters.eccDetail.scheme.scheme;
        hash = a->parameters.eccDetail.scheme.details.anySig.hashAlg;
        if (scheme != TPM2_ALG_ECDSA && scheme != TPM2_ALG_NULL) {
            goto bad_scheme;
        }
    }
    if (scheme != TPM2_ALG_NULL && hash != TPM2_ALG_SHA256 &&
        hash != TPM2_ALG_SHA384 && hash != TPM2_ALG_SHA512) {
        goto bad_scheme;
    }
    return TRUE;

bad_scheme:
    g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_AK_ATTRIBUTES,
                "AK signing scheme 0x%04x with hash 0x%04x not supported",
                scheme, hash);
    return FALSE;
}

gboolean
tvd_tpm_public_check_ek(const TvdTpmPublic *pub, GError **error)
{
    const TPMT_PUBLIC *a = &pub->area;
    const TPMT_SYM_DEF_OBJECT *sym;
    TPMA_OBJECT want = TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                       TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT;

    if (!has_all(a->objectAttributes, want) ||
        (a->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_ATTRIBUTES,
                    "EK attributes 0x%08x: need restricted, decrypt, "
                    "fixedTPM, fixedParent and not sign", a->objectAttributes);
        return FALSE;
    }
    sym = a->type == TPM2_ALG_RSA ? &a->parameters.rsaDetail.symmetric
                                  : &a->parameters.eccDetail.symmetric;
    if (sym->algorithm != TPM2_ALG_AES || sym->mode.aes != TPM2_ALG_CFB ||
        (sym->keyBits.aes != 128 && sym->keyBits.aes != 256)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_ATTRIBUTES,
                    "EK symmetric definition 0x%04x/%u/0x%04x is not "
                    "AES-128/256-CFB", sym->algorithm, sym->keyBits.aes,
                    sym->mode.aes);
        return FALSE;
    }
    return TRUE;
}

TvdTpmPublic *
tvd_tpm_public_dup(const TvdTpmPublic *pub)
{
    TvdTpmPublic *copy = g_memdup2(pub, sizeof(*pub));

    EVP_PKEY_up_ref(copy->pkey);
    return copy;
}
