/*
 * tvd verifier: TPM2_Quote verification (TPM 2.0 Part 2 §10.12 TPMS_ATTEST,
 * §10.12.1 TPMS_QUOTE_INFO, §11.3.4 TPMT_SIGNATURE; Part 3 §18.4).
 *
 * Order: the signature over the attest bytes first, with the AK's key, so
 * that every later check looks at data the TPM produced; then magic, type,
 * extraData (the nonce, constant-time compare), the PCR selection and the
 * PCR digest (H_sig-hash of the supplied PCR values, ascending index).
 *
 * The verify path is allocation-light: a TvdAkKey keeps the EVP_PKEY, a
 * digest context and one initialised EVP_PKEY_CTX per signature scheme, and
 * reuses them for every quote; the attest is hashed once, then
 * EVP_PKEY_verify checks the digest.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/rsa.h>
#include <tss2/tss2_mu.h>

enum { SCHEME_RSASSA, SCHEME_RSAPSS, SCHEME_ECDSA, SCHEME_COUNT };

struct TvdAkKey {
    TvdTpmPublic *pub;
    TPM2_ALG_ID key_scheme;         /* the AK's scheme, TPM2_ALG_NULL = any */
    TPM2_ALG_ID key_hash;
    EVP_MD_CTX *md_ctx;
    EVP_PKEY_CTX *verify_ctx[SCHEME_COUNT];
    TPM2_ALG_ID verify_hash[SCHEME_COUNT];
};

void
tvd_ak_key_free(TvdAkKey *key)
{
    if (!key) {
        return;
    }
    for (int i = 0; i < SCHEME_COUNT; i++) {
        EVP_PKEY_CTX_free(key->verify_ctx[i]);
    }
    EVP_MD_CTX_free(key->md_ctx);
    tvd_tpm_public_free(key->pub);
    g_free(key);
}

const TvdTpmPublic *
tvd_ak_key_public(const TvdAkKey *key)
{
    return key->pub;
}

/* Initialises (once per scheme and hash) the verify context. */
static EVP_PKEY_CTX *
verify_ctx(TvdAkKey *key, int scheme, TPM2_ALG_ID hash, GError **error)
{
    EVP_PKEY_CTX *ctx = key->verify_ctx[scheme];
    const EVP_MD *md = tvd_tpm_hash_md(hash);
    gboolean ok;

    if (ctx && key->verify_hash[scheme] == hash) {
        return ctx;
    }
    EVP_PKEY_CTX_free(ctx);
    key->verify_ctx[scheme] = NULL;
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, tvd_tpm_public_pkey(key->pub),
                                     NULL);
    ok = ctx && EVP_PKEY_verify_init(ctx) > 0;
    if (ok && scheme == SCHEME_RSASSA) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0;
    } else if (ok && scheme == SCHEME_RSAPSS) {
        ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING) > 0 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, RSA_PSS_SALTLEN_AUTO) > 0;
    }
    ok = ok && EVP_PKEY_CTX_set_signature_md(ctx, md) > 0;
    if (ok && scheme == SCHEME_RSAPSS) {
        ok = EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md) > 0;
    }
    if (!ok) {
        EVP_PKEY_CTX_free(ctx);
        tvd_crypto_fail(error, "verify context");
        return NULL;
    }
    key->verify_ctx[scheme] = ctx;
    key->verify_hash[scheme] = hash;
    return ctx;
}

TvdAkKey *
tvd_ak_key_new(const TvdTpmPublic *ak, GError **error)
{
    g_autoptr(TvdAkKey) key = NULL;
    const TPMT_PUBLIC *a = tvd_tpm_public_area(ak);

    if (!tvd_tpm_public_check_ak(ak, error)) {
        return NULL;
    }
    key = g_new0(TvdAkKey, 1);
    key->pub = tvd_tpm_public_dup(ak);
    if (a->type == TPM2_ALG_RSA) {
        key->key_scheme = a->parameters.rsaDetail.scheme.scheme;
        key->key_hash = a->parameters.rsaDetail.scheme.details.anySig.hashAlg;
    } else {
        key->key_scheme = a->parameters.eccDetail.scheme.scheme;
        key->key_hash = a->parameters.eccDetail.scheme.details.anySig.hashAlg;
    }
    key->md_ctx = EVP_MD_CTX_new();
    if (!key->md_ctx) {
        tvd_crypto_fail(error, "EVP_MD_CTX_new");
        return NULL;
    }
    /* Prepare the context of the AK's own scheme now. */
    if (key->key_scheme != TPM2_ALG_NULL) {
        int s = key->key_scheme == TPM2_ALG_RSASSA   ? SCHEME_RSASSA
                : key->key_scheme == TPM2_ALG_RSAPSS ? SCHEME_RSAPSS
                                                     : SCHEME_ECDSA;
        if (!verify_ctx(key, s, key->key_hash, error)) {
            return NULL;
        }
    }
    return g_steal_pointer(&key);
}

TvdAkKey *
tvd_ak_key_new_from_public(const guint8 *buf, gsize len, GError **error)
{
    g_autoptr(TvdTpmPublic) pub = tvd_tpm_public_parse(buf, len, error);

    return pub ? tvd_ak_key_new(pub, error) : NULL;
}

/* Checks the signature's scheme against the AK and verifies it. */
static gboolean
check_signature(TvdAkKey *key, const guint8 *attest, gsize attest_len,
                const TPMT_SIGNATURE *sig, TPM2_ALG_ID *hash_out,
                GError **error)
{
    const TPMT_PUBLIC *a = tvd_tpm_public_area(key->pub);
    TPM2_ALG_ID hash = sig->signature.any.hashAlg;
    guint8 digest[EVP_MAX_MD_SIZE];
    guint8 der[160];
    const guint8 *sig_bytes;
    gsize sig_len;
    unsigned int dlen = 0;
    EVP_PKEY_CTX *ctx;
    int scheme, rc;

    switch (sig->sigAlg) {
    case TPM2_ALG_RSASSA:
        scheme = SCHEME_RSASSA;
        break;
    case TPM2_ALG_RSAPSS:
        scheme = SCHEME_RSAPSS;
        break;
    case TPM2_ALG_ECDSA:
        scheme = SCHEME_ECDSA;
        break;
    default:
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_SIGNATURE_SCHEME,
                    "signature algorithm 0x%04x not supported", sig->sigAlg);
        return FALSE;
    }
    if ((a->type == TPM2_ALG_RSA) != (scheme != SCHEME_ECDSA) ||
        (key->key_scheme != TPM2_ALG_NULL &&
         (key->key_scheme != sig->sigAlg || key->key_hash != hash)) ||
        (hash != TPM2_ALG_SHA256 && hash != TPM2_ALG_SHA384 &&
         hash != TPM2_ALG_SHA512)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_SIGNATURE_SCHEME,
                    "signature 0x%04x/0x%04x does not fit the AK "
                    "(type 0x%04x, scheme 0x%04x/0x%04x)", sig->sigAlg, hash,
                    a->type, key->key_scheme, key->key_hash);
        return FALSE;
    }

    if (scheme == SCHEME_ECDSA) {
        const TPMS_SIGNATURE_ECC *e = &sig->signature.ecdsa;
        ECDSA_SIG *es = ECDSA_SIG_new();
        BIGNUM *r = BN_bin2bn(e->signatureR.buffer, e->signatureR.size, NULL);
        BIGNUM *s = BN_bin2bn(e->signatureS.buffer, e->signatureS.size, NULL);
        guint8 *p = der;
        int n = -1;
        gboolean too_long = FALSE;

        if (es && r && s && ECDSA_SIG_set0(es, r, s)) {
            r = s = NULL;
            too_long = i2d_ECDSA_SIG(es, NULL) > (int)sizeof(der);
            if (!too_long) {
                n = i2d_ECDSA_SIG(es, &p);
            }
        }
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        if (too_long) {
            g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                        "ECDSA r (%u bytes) or s (%u bytes) too long",
                        e->signatureR.size, e->signatureS.size);
            return FALSE;
        }
        if (n <= 0) {
            return tvd_crypto_fail(error, "ECDSA signature encoding");
        }
        sig_bytes = der;
        sig_len = (gsize)n;
    } else {
        sig_bytes = sig->signature.rsassa.sig.buffer;
        sig_len = sig->signature.rsassa.sig.size;
    }

    ctx = verify_ctx(key, scheme, hash, error);
    if (!ctx) {
        return FALSE;
    }
    if (!EVP_DigestInit_ex2(key->md_ctx, tvd_tpm_hash_md(hash), NULL) ||
        !EVP_DigestUpdate(key->md_ctx, attest, attest_len) ||
        !EVP_DigestFinal_ex(key->md_ctx, digest, &dlen)) {
        return tvd_crypto_fail(error, "attest digest");
    }
    rc = EVP_PKEY_verify(ctx, sig_bytes, sig_len, digest, dlen);
    if (rc != 1) {
        ERR_clear_error();
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_BAD_SIGNATURE,
                    "quote signature does not verify with the AK");
        return FALSE;
    }
    *hash_out = hash;
    return TRUE;
}

static gboolean
check_selection(const TPML_PCR_SELECTION *sel, const TvdQuoteExpect *expect,
                GError **error)
{
    const TPMS_PCR_SELECTION *s = &sel->pcrSelections[0];
    guint32 mask = 0;

    if (sel->count != 1 || s->hash != expect->pcr_bank ||
        s->sizeofSelect == 0 || s->sizeofSelect > 4) {
        goto mismatch;
    }
    for (guint i = 0; i < s->sizeofSelect; i++) {
        mask |= (guint32)s->pcrSelect[i] << (8 * i);
    }
    if (mask != expect->pcr_select) {
        goto mismatch;
    }
    return TRUE;

mismatch:
    g_set_error(error, TVD_VERIFY_ERROR,
                TVD_VERIFY_ERROR_PCR_SELECTION_MISMATCH,
                "quoted PCR selection (%u banks, first 0x%04x) is not bank "
                "0x%04x PCRs 0x%06x", sel->count,
                sel->count ? s->hash : 0, expect->pcr_bank,
                expect->pcr_select);
    return FALSE;
}

gboolean
tvd_quote_check_attest(const guint8 *attest, gsize attest_len,
                       TPM2_ALG_ID sig_hash, const TvdQuoteExpect *expect,
                       TvdQuoteInfo *info, GError **error)
{
    TPMS_ATTEST at;
    guint8 pcr_digest[EVP_MAX_MD_SIZE];
    gsize bank_size, n_pcrs, digest_size = tvd_tpm_hash_size(sig_hash);
    size_t off = 0;

    if (attest_len == 0 || attest_len > TVD_ATTEST_MAX) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "attest of %zu bytes (1..%u)", attest_len,
                    TVD_ATTEST_MAX);
        return FALSE;
    }
    if (!digest_size) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "signature hash 0x%04x not supported", sig_hash);
        return FALSE;
    }
    tvd_mu_quiet();
    if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest, attest_len, &off, &at) !=
            TSS2_RC_SUCCESS ||
        off != attest_len) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "TPMS_ATTEST does not parse");
        return FALSE;
    }
    if (at.magic != TPM2_GENERATED_VALUE) {
        g_set_error(error, TVD_VERIFY_ERROR,
                    TVD_VERIFY_ERROR_NOT_TPM_GENERATED,
                    "attest magic 0x%08x is not TPM_GENERATED_VALUE",
                    at.magic);
        return FALSE;
    }
    if (at.type != TPM2_ST_ATTEST_QUOTE) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NOT_A_QUOTE,
                    "attest type 0x%04x is not TPM_ST_ATTEST_QUOTE", at.type);
        return FALSE;
    }
    if (at.extraData.size != expect->nonce_len ||
        CRYPTO_memcmp(at.extraData.buffer, expect->nonce,
                      expect->nonce_len) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_MISMATCH,
                    "quote qualifying data is not the nonce sent");
        return FALSE;
    }
    if (!check_selection(&at.attested.quote.pcrSelect, expect, error)) {
        return FALSE;
    }
    bank_size = tvd_tpm_hash_size(expect->pcr_bank);
    n_pcrs = (gsize)__builtin_popcount(expect->pcr_select);
    if (!bank_size || expect->pcr_values_len != n_pcrs * bank_size) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_PCR_VALUES,
                    "%zu bytes of PCR values for %zu PCRs of bank 0x%04x",
                    expect->pcr_values_len, n_pcrs, expect->pcr_bank);
        return FALSE;
    }
    if (!tvd_hash(sig_hash, expect->pcr_values, expect->pcr_values_len, NULL,
                  0, pcr_digest, error)) {
        return FALSE;
    }
    if (at.attested.quote.pcrDigest.size != digest_size ||
        CRYPTO_memcmp(at.attested.quote.pcrDigest.buffer, pcr_digest,
                      digest_size) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR,
                    TVD_VERIFY_ERROR_PCR_DIGEST_MISMATCH,
                    "quoted PCR digest does not match the PCR values");
        return FALSE;
    }

    if (info) {
        memset(info, 0, sizeof(*info));
        info->clock = at.clockInfo.clock;
        info->reset_count = at.clockInfo.resetCount;
        info->restart_count = at.clockInfo.restartCount;
        info->safe = at.clockInfo.safe != 0;
        info->firmware_version = at.firmwareVersion;
        info->qualified_signer_len = MIN(at.qualifiedSigner.size,
                                         sizeof(info->qualified_signer));
        memcpy(info->qualified_signer, at.qualifiedSigner.name,
               info->qualified_signer_len);
    }
    return TRUE;
}

gboolean
tvd_quote_verify(TvdAkKey *ak, const guint8 *attest, gsize attest_len,
                 const guint8 *signature, gsize signature_len,
                 const TvdQuoteExpect *expect, TvdQuoteInfo *info,
                 GError **error)
{
    TPMT_SIGNATURE sig;
    TPM2_ALG_ID sig_hash = TPM2_ALG_NULL;
    size_t off = 0;

    if (attest_len == 0 || attest_len > TVD_ATTEST_MAX ||
        signature_len == 0 || signature_len > TVD_SIGNATURE_MAX) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "attest of %zu bytes (1..%u) or signature of %zu bytes "
                    "(1..%u)", attest_len, TVD_ATTEST_MAX, signature_len,
                    TVD_SIGNATURE_MAX);
        return FALSE;
    }
    tvd_mu_quiet();
    if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(signature, signature_len, &off,
                                         &sig) != TSS2_RC_SUCCESS ||
        off != signature_len) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "TPMT_SIGNATURE does not parse");
        return FALSE;
    }
    if (!check_signature(ak, attest, attest_len, &sig, &sig_hash, error) ||
        !tvd_quote_check_attest(attest, attest_len, sig_hash, expect, info,
                                error)) {
        return FALSE;
    }
    if (info) {
        info->sig_alg = sig.sigAlg;
    }
    return TRUE;
}

TvdTpmContinuity
tvd_quote_info_continuity(const TvdQuoteInfo *prev, const TvdQuoteInfo *cur)
{
    if (!prev) {
        return TVD_TPM_FIRST_QUOTE;
    }
    if (cur->reset_count != prev->reset_count) {
        return TVD_TPM_RESET;
    }
    /* Clock only moves forward within one resetCount (it is saved on an
     * orderly shutdown and a disorderly one increments resetCount). */
    if (cur->restart_count < prev->restart_count || cur->clock < prev->clock) {
        return TVD_TPM_ROLLED_BACK;
    }
    return cur->restart_count == prev->restart_count ? TVD_TPM_SAME_BOOT
                                                     : TVD_TPM_RESUMED;
}

const char *
tvd_tpm_continuity_name(TvdTpmContinuity c)
{
    switch (c) {
    case TVD_TPM_FIRST_QUOTE:
        return "first-quote";
    case TVD_TPM_SAME_BOOT:
        return "same-boot";
    case TVD_TPM_RESUMED:
        return "resumed";
    case TVD_TPM_RESET:
        return "reset";
    case TVD_TPM_ROLLED_BACK:
        return "rolled-back";
    }
    return "unknown";
}
