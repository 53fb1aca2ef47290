/*
 * Unit tests of the tvd verifier that need no TPM: KDFs against OpenSSL's
 * own KBKDF and a plain digest loop, TPM public parsing, quote verification
 * with synthetic keys (every rejection reason), nonces, EK certificates made
 * with OpenSSL, IMA log parsing and replay.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>
#include <openssl/core_names.h>
#include <openssl/kdf.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "verifier.h"
#include "synth.h"
#include "evidence.h"

#define ERR(e, code) g_assert_error(e, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_##code)

/* ---- Reasons ----------------------------------------------------------- */

static void
test_reasons(void)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    for (int c = 1; c <= TVD_VERIFY_ERROR_LAST; c++) {
        const char *r = tvd_verify_error_reason(c);

        g_assert_cmpstr(r, !=, "unknown");
        g_assert_false(g_hash_table_contains(seen, r));
        g_hash_table_add(seen, (gpointer)r);
    }
    g_assert_cmpstr(tvd_verify_error_reason(0), ==, "unknown");
    g_assert_cmpstr(tvd_verify_error_reason(TVD_VERIFY_ERROR_LAST + 1), ==,
                    "unknown");
    g_assert_cmpstr(tvd_verify_error_reason(TVD_VERIFY_ERROR_BAD_SIGNATURE),
                    ==, "bad-signature");
}

/* ---- KDFs ---------------------------------------------------------------- */

/* OpenSSL's KBKDF (SP800-108 counter mode, HMAC) as the reference. */
static void
kbkdf(const char *md, const guint8 *key, gsize key_len, const char *label,
      const guint8 *ctx, gsize ctx_len, guint8 *out, gsize out_len)
{
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "KBKDF", NULL);
    EVP_KDF_CTX *kctx = EVP_KDF_CTX_new(kdf);
    OSSL_PARAM p[7], *q = p;

    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_MAC, "HMAC", 0);
    *q++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)md,
                                            0);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key,
                                             key_len);
    *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
                                             (void *)label, strlen(label));
    if (ctx_len) {
        *q++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO,
                                                 (void *)ctx, ctx_len);
    }
    *q = OSSL_PARAM_construct_end();
    g_assert_cmpint(EVP_KDF_derive(kctx, out, out_len, p), ==, 1);
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
}

static void
test_kdfa(void)
{
    guint8 key[32], ctx_u[34], ctx_v[7], a[80], b[80], uv[41];
    static const guint32 bits[] = { 128, 256, 640 };
    g_autoptr(GError) error = NULL;

    for (gsize i = 0; i < sizeof(key); i++) {
        key[i] = (guint8)(i * 7 + 1);
    }
    for (gsize i = 0; i < sizeof(ctx_u); i++) {
        ctx_u[i] = (guint8)(0xa0 + i);
    }
    memset(ctx_v, 0x5c, sizeof(ctx_v));
    memcpy(uv, ctx_u, sizeof(ctx_u));
    memcpy(uv + sizeof(ctx_u), ctx_v, sizeof(ctx_v));
    for (gsize i = 0; i < G_N_ELEMENTS(bits); i++) {
        gsize n = bits[i] / 8;

        g_assert_true(tvd_kdfa(TPM2_ALG_SHA256, key, sizeof(key), "STORAGE",
                               ctx_u, sizeof(ctx_u), NULL, 0, bits[i], a,
                               &error));
        g_assert_no_error(error);
        kbkdf("SHA256", key, sizeof(key), "STORAGE", ctx_u, sizeof(ctx_u), b,
              n);
        g_assert_cmpmem(a, n, b, n);

        g_assert_true(tvd_kdfa(TPM2_ALG_SHA1, key, 20, "INTEGRITY", ctx_u,
                               sizeof(ctx_u), ctx_v, sizeof(ctx_v), bits[i],
                               a, &error));
        kbkdf("SHA1", key, 20, "INTEGRITY", uv, sizeof(uv), b, n);
        g_assert_cmpmem(a, n, b, n);

        g_assert_true(tvd_kdfa(TPM2_ALG_SHA384, key, sizeof(key), "INTEGRITY",
                               NULL, 0, NULL, 0, bits[i], a, &error));
        kbkdf("SHA384", key, sizeof(key), "INTEGRITY", NULL, 0, b, n);
        g_assert_cmpmem(a, n, b, n);
    }
    g_assert_false(tvd_kdfa(0x0099, key, 32, "X", NULL, 0, NULL, 0, 128, a,
                            &error));
    ERR(error, UNSUPPORTED);
    g_clear_error(&error);
    g_assert_false(tvd_kdfa(TPM2_ALG_SHA256, key, 32, "X", NULL, 0, NULL, 0,
                            12, a, &error));
    ERR(error, MALFORMED);
}

static void
test_kdfe(void)
{
    guint8 z[32], u[32], v[32], out[64], ref[64];
    g_autoptr(GError) error = NULL;

    memset(z, 0x11, sizeof(z));
    memset(u, 0x22, sizeof(u));
    memset(v, 0x33, sizeof(v));
    g_assert_true(tvd_kdfe(TPM2_ALG_SHA256, z, 32, "IDENTITY", u, 32, v, 32,
                           512, out, &error));
    g_assert_no_error(error);
    /* H([i]_32 || Z || "IDENTITY" || 0 || U || V), i = 1, 2 */
    for (guint32 i = 1; i <= 2; i++) {
        guint8 be[4] = { 0, 0, 0, (guint8)i };
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();

        g_assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
        EVP_DigestUpdate(ctx, be, 4);
        EVP_DigestUpdate(ctx, z, 32);
        EVP_DigestUpdate(ctx, "IDENTITY", 9);
        EVP_DigestUpdate(ctx, u, 32);
        EVP_DigestUpdate(ctx, v, 32);
        EVP_DigestFinal_ex(ctx, ref + 32 * (i - 1), NULL);
        EVP_MD_CTX_free(ctx);
    }
    g_assert_cmpmem(out, 64, ref, 64);
}

/* ---- TPM public ------------------------------------------------------------ */

static void
check_public(TPM2_ALG_ID type, TPM2_ALG_ID scheme)
{
    g_autoptr(TvdSynthKey) k = tvd_synth_ak_new(type, scheme, 0);
    g_autoptr(GError) error = NULL;
    gsize len, name_len;
    const guint8 *buf = g_bytes_get_data(k->public, &len);
    g_autoptr(TvdTpmPublic) pub = tvd_tpm_public_parse(buf, len, &error);
    const guint8 *name;
    guint8 ref[34];
    unsigned int dl;

    g_assert_no_error(error);
    g_assert_nonnull(pub);
    g_assert_cmpint(EVP_PKEY_eq(tvd_tpm_public_pkey(pub), k->key), ==, 1);
    name = tvd_tpm_public_name(pub, &name_len);
    ref[0] = 0x00;
    ref[1] = 0x0b;
    g_assert_true(EVP_Digest(buf + 2, len - 2, ref + 2, &dl, EVP_sha256(),
                             NULL));
    g_assert_cmpmem(name, name_len, ref, sizeof(ref));
    g_assert_true(tvd_tpm_public_check_name(pub, ref, sizeof(ref), &error));
    g_assert_true(tvd_tpm_public_check_ak(pub, &error));
    g_assert_no_error(error);
    g_assert_false(tvd_tpm_public_check_ek(pub, &error));
    ERR(error, EK_ATTRIBUTES);
    g_clear_error(&error);
    ref[20] ^= 1;
    g_assert_false(tvd_tpm_public_check_name(pub, ref, sizeof(ref), &error));
    ERR(error, NAME_MISMATCH);
    g_clear_error(&error);
    g_assert_false(tvd_tpm_public_check_name(pub, ref, 20, &error));
    ERR(error, NAME_MISMATCH);
}

static void
test_public_rsa(void)
{
    check_public(TPM2_ALG_RSA, TPM2_ALG_RSASSA);
}

static void
test_public_ecc(void)
{
    check_public(TPM2_ALG_ECC, TPM2_ALG_ECDSA);
}

static void
test_public_malformed(void)
{
    g_autoptr(TvdSynthKey) k = tvd_synth_ak_new(TPM2_ALG_ECC, TPM2_ALG_ECDSA, 0);
    gsize len;
    const guint8 *buf = g_bytes_get_data(k->public, &len);
    g_autofree guint8 *copy = g_malloc(len + 1);
    g_autoptr(GError) error = NULL;

    /* every truncation, and a trailing byte */
    for (gsize n = 0; n < len; n++) {
        g_assert_null(tvd_tpm_public_parse(buf, n, &error));
        ERR(error, MALFORMED);
        g_clear_error(&error);
    }
    memcpy(copy, buf, len);
    copy[len] = 0;
    g_assert_null(tvd_tpm_public_parse(copy, len + 1, &error));
    ERR(error, MALFORMED);
    g_clear_error(&error);
    /* a point not on the curve */
    copy[len - 1] ^= 0x01;
    g_assert_null(tvd_tpm_public_parse(copy, len, &error));
    ERR(error, MALFORMED);
    g_clear_error(&error);
    copy[len - 1] ^= 0x01;
    /* unknown key type (keyedhash is 0x0008): does not parse as RSA/ECC */
    copy[2] = 0x00;
    copy[3] = 0x25;
    g_assert_null(tvd_tpm_public_parse(copy, len, &error));
    g_assert_nonnull(error);
}

static void
test_public_ak_attributes(void)
{
    g_autoptr(TvdSynthKey) k = tvd_synth_ak_new(
        TPM2_ALG_RSA, TPM2_ALG_RSASSA,
        TPMA_OBJECT_SIGN_ENCRYPT | TPMA_OBJECT_FIXEDTPM |
            TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN);
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *buf = g_bytes_get_data(k->public, &len);

    /* not restricted: it could sign a forged TPMS_ATTEST */
    g_assert_null(tvd_ak_key_new_from_public(buf, len, &error));
    ERR(error, AK_ATTRIBUTES);
}

/* ---- Quotes ------------------------------------------------------------------ */

typedef struct {
    TvdSynthKey *k;
    TvdAkKey *ak;
    guint8 nonce[32];
    guint8 pcrs[3 * 32];
    guint32 select;
    GBytes *attest;
    GBytes *sig;
} QuoteFixture;

static void
quote_setup(QuoteFixture *f, gconstpointer data)
{
    TPM2_ALG_ID scheme = GPOINTER_TO_UINT(data);
    TPM2_ALG_ID type = scheme == TPM2_ALG_ECDSA ? TPM2_ALG_ECC : TPM2_ALG_RSA;
    g_autoptr(GError) error = NULL;
    gsize len;
    const guint8 *buf;

    f->k = tvd_synth_ak_new(type, scheme, 0);
    buf = g_bytes_get_data(f->k->public, &len);
    f->ak = tvd_ak_key_new_from_public(buf, len, &error);
    g_assert_no_error(error);
    for (gsize i = 0; i < sizeof(f->nonce); i++) {
        f->nonce[i] = (guint8)(i + 1);
    }
    for (gsize i = 0; i < sizeof(f->pcrs); i++) {
        f->pcrs[i] = (guint8)(i * 3);
    }
    f->select = (1u << 0) | (1u << 10) | (1u << 17);
    f->attest = tvd_synth_attest(TPM2_ST_ATTEST_QUOTE, f->nonce, 32,
                                 TPM2_ALG_SHA256, f->select, f->pcrs,
                                 sizeof(f->pcrs));
    f->sig = tvd_synth_sign(f->k, f->attest);
}

static void
quote_teardown(QuoteFixture *f, gconstpointer data)
{
    (void)data;
    tvd_ak_key_free(f->ak);
    tvd_synth_key_free(f->k);
    g_bytes_unref(f->attest);
    g_bytes_unref(f->sig);
}

static gboolean
verify(QuoteFixture *f, GBytes *attest, GBytes *sig, const guint8 *nonce,
       guint16 bank, guint32 select, const guint8 *pcrs, gsize pcrs_len,
       TvdQuoteInfo *info, GError **error)
{
    TvdQuoteExpect e = { nonce, 32, bank, select, pcrs, pcrs_len };
    gsize al, sl;
    const guint8 *a = g_bytes_get_data(attest, &al);
    const guint8 *s = g_bytes_get_data(sig, &sl);

    (void)f;
    return tvd_quote_verify(f->ak, a, al, s, sl, &e, info, error);
}

#define VERIFY(f, attest, sig, nonce, bank, sel, pcrs, info, error) \
    verify(f, attest, sig, nonce, bank, sel, pcrs, sizeof(pcrs), info, error)

static void
test_quote_good(QuoteFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    TvdQuoteInfo info;

    g_assert_true(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                         f->select, f->pcrs, &info, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(info.clock, ==, 123456);
    g_assert_cmpuint(info.reset_count, ==, 1);
    g_assert_cmpuint(info.restart_count, ==, 2);
    g_assert_cmpuint(info.sig_alg, ==, GPOINTER_TO_UINT(data));
    g_assert_cmpuint(info.qualified_signer_len, ==, 34);
}

static GBytes *
flip(GBytes *b, gsize i)
{
    gsize len;
    const guint8 *src = g_bytes_get_data(b, &len);
    guint8 *d = g_memdup2(src, len);

    d[i] ^= 0x01;
    return g_bytes_new_take(d, len);
}

static void
test_quote_tamper_attest(QuoteFixture *f, gconstpointer data)
{
    gsize len = g_bytes_get_size(f->attest);

    (void)data;
    for (gsize i = 0; i < len; i++) {
        g_autoptr(GBytes) bad = flip(f->attest, i);
        g_autoptr(GError) error = NULL;

        g_assert_false(VERIFY(f, bad, f->sig, f->nonce, TPM2_ALG_SHA256,
                              f->select, f->pcrs, NULL, &error));
        ERR(error, BAD_SIGNATURE);
    }
    /* the reused contexts still accept a good quote */
    g_assert_true(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                         f->select, f->pcrs, NULL, NULL));
}

static void
test_quote_tamper_signature(QuoteFixture *f, gconstpointer data)
{
    gsize len = g_bytes_get_size(f->sig);

    (void)data;
    for (gsize i = 0; i < len; i++) {
        g_autoptr(GBytes) bad = flip(f->sig, i);
        g_autoptr(GError) error = NULL;

        g_assert_false(VERIFY(f, f->attest, bad, f->nonce, TPM2_ALG_SHA256,
                              f->select, f->pcrs, NULL, &error));
        g_assert_true(error->domain == TVD_VERIFY_ERROR);
        if (i >= 4 + 2) {
            /* past sigAlg/hash and the size fields: the value itself */
            if (error->code != TVD_VERIFY_ERROR_BAD_SIGNATURE) {
                g_assert_cmpint(error->code, ==, TVD_VERIFY_ERROR_MALFORMED);
            }
        }
    }
    g_assert_true(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                         f->select, f->pcrs, NULL, NULL));
}

static void
test_quote_semantics(QuoteFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint8 nonce[32], pcrs[sizeof(f->pcrs)];

    (void)data;
    memcpy(nonce, f->nonce, 32);
    nonce[31] ^= 0x80;
    g_assert_false(VERIFY(f, f->attest, f->sig, nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, NONCE_MISMATCH);
    g_clear_error(&error);

    memcpy(pcrs, f->pcrs, sizeof(pcrs));
    pcrs[40] ^= 0x01;
    g_assert_false(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, pcrs, NULL, &error));
    ERR(error, PCR_DIGEST_MISMATCH);
    g_clear_error(&error);

    g_assert_false(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                          f->select | 2u, f->pcrs, NULL, &error));
    ERR(error, PCR_SELECTION_MISMATCH);
    g_clear_error(&error);

    g_assert_false(VERIFY(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA1,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, PCR_SELECTION_MISMATCH);
    g_clear_error(&error);

    g_assert_false(verify(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, 64, NULL, &error));
    ERR(error, PCR_VALUES);
    g_clear_error(&error);

    g_assert_false(verify(f, f->attest, f->sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, 0, NULL, &error));
    ERR(error, PCR_VALUES);
}

static void
test_quote_structure(QuoteFixture *f, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) certify = tvd_synth_attest(TPM2_ST_ATTEST_CERTIFY,
                                                 f->nonce, 32, 0, 0, NULL, 0);
    g_autoptr(GBytes) certify_sig = tvd_synth_sign(f->k, certify);
    g_autoptr(GBytes) magic = flip(f->attest, 0);
    g_autoptr(GBytes) magic_sig = tvd_synth_sign(f->k, magic);
    g_autoptr(GBytes) trailing = NULL;
    g_autoptr(GBytes) trailing_sig = NULL;
    gsize len;
    guint8 *d;

    (void)data;
    /* signed by the AK, but not a quote / not TPM-generated / trailing bytes
     * (a non-restricted key could do this: the checks still hold) */
    g_assert_false(VERIFY(f, certify, certify_sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, NOT_A_QUOTE);
    g_clear_error(&error);
    g_assert_false(VERIFY(f, magic, magic_sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, NOT_TPM_GENERATED);
    g_clear_error(&error);

    d = g_malloc0(g_bytes_get_size(f->attest) + 1);
    len = g_bytes_get_size(f->attest);
    memcpy(d, g_bytes_get_data(f->attest, NULL), len);
    trailing = g_bytes_new_take(d, len + 1);
    trailing_sig = tvd_synth_sign(f->k, trailing);
    g_assert_false(VERIFY(f, trailing, trailing_sig, f->nonce,
                          TPM2_ALG_SHA256, f->select, f->pcrs, NULL, &error));
    ERR(error, MALFORMED);
    g_clear_error(&error);

    /* garbage sizes */
    g_assert_false(tvd_quote_verify(f->ak, d, 0, d, 1, NULL, NULL, &error));
    ERR(error, MALFORMED);
    g_clear_error(&error);

    if (GPOINTER_TO_UINT(data) == TPM2_ALG_ECDSA) {
        /* ECDSA r and s of 128 bytes each: no P-256 signature */
        guint8 big[4 + 2 * (2 + 128)];
        g_autoptr(GBytes) big_sig = NULL;

        memset(big, 0xff, sizeof(big));
        big[0] = 0x00;
        big[1] = 0x18;                  /* TPM_ALG_ECDSA */
        big[2] = 0x00;
        big[3] = 0x0b;                  /* SHA-256 */
        big[4] = 0x00;
        big[5] = 0x80;
        big[4 + 2 + 128] = 0x00;
        big[4 + 2 + 128 + 1] = 0x80;
        big_sig = g_bytes_new(big, sizeof(big));
        g_assert_false(VERIFY(f, f->attest, big_sig, f->nonce,
                              TPM2_ALG_SHA256, f->select, f->pcrs, NULL,
                              &error));
        ERR(error, MALFORMED);
    }
}

static void
test_quote_wrong_key(QuoteFixture *f, gconstpointer data)
{
    TPM2_ALG_ID scheme = GPOINTER_TO_UINT(data);
    g_autoptr(TvdSynthKey) other = tvd_synth_ak_new(
        scheme == TPM2_ALG_ECDSA ? TPM2_ALG_ECC : TPM2_ALG_RSA, scheme, 0);
    g_autoptr(GBytes) other_sig = tvd_synth_sign(other, f->attest);
    g_autoptr(TvdSynthKey) cross = tvd_synth_ak_new(
        scheme == TPM2_ALG_ECDSA ? TPM2_ALG_RSA : TPM2_ALG_ECC,
        scheme == TPM2_ALG_ECDSA ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA, 0);
    g_autoptr(GBytes) cross_sig = tvd_synth_sign(cross, f->attest);
    g_autoptr(GError) error = NULL;

    g_assert_false(VERIFY(f, f->attest, other_sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, BAD_SIGNATURE);
    g_clear_error(&error);
    g_assert_false(VERIFY(f, f->attest, cross_sig, f->nonce, TPM2_ALG_SHA256,
                          f->select, f->pcrs, NULL, &error));
    ERR(error, SIGNATURE_SCHEME);
    g_clear_error(&error);
    if (scheme != TPM2_ALG_ECDSA) {
        /* RSASSA AK, PSS signature (and the other way round) */
        g_autoptr(TvdSynthKey) pss = tvd_synth_ak_new(
            TPM2_ALG_RSA, scheme == TPM2_ALG_RSASSA ? TPM2_ALG_RSAPSS
                                                    : TPM2_ALG_RSASSA, 0);
        g_autoptr(GBytes) pss_sig = tvd_synth_sign(pss, f->attest);

        g_assert_false(VERIFY(f, f->attest, pss_sig, f->nonce,
                              TPM2_ALG_SHA256, f->select, f->pcrs, NULL,
                              &error));
        ERR(error, SIGNATURE_SCHEME);
    }
}

/* ---- Nonces ---------------------------------------------------------------- */

static gint64
fake_clock(gpointer data)
{
    return *(gint64 *)data;
}

static void
test_nonce(void)
{
    g_autoptr(TvdNonceStore) s = tvd_nonce_store_new(3, 1000);
    g_autoptr(GError) error = NULL;
    guint8 a[32], b[32], c[32], d[32];
    gint64 now = 5000;

    tvd_nonce_store_set_clock(s, fake_clock, &now);
    g_assert_true(tvd_nonce_store_issue(s, "vm1", a, &error));
    g_assert_true(tvd_nonce_store_issue(s, "vm1", b, &error));
    g_assert_no_error(error);
    g_assert_true(memcmp(a, b, 32) != 0);

    g_assert_true(tvd_nonce_store_consume(s, "vm1", a, 32, &error));
    g_assert_no_error(error);
    g_assert_false(tvd_nonce_store_consume(s, "vm1", a, 32, &error));
    ERR(error, NONCE_REUSED);
    g_clear_error(&error);

    g_assert_false(tvd_nonce_store_consume(s, "vm2", b, 32, &error));
    ERR(error, NONCE_OWNER);
    g_clear_error(&error);

    memset(d, 0x42, sizeof(d));
    g_assert_false(tvd_nonce_store_consume(s, "vm1", d, 32, &error));
    ERR(error, NONCE_UNKNOWN);
    g_clear_error(&error);
    g_assert_false(tvd_nonce_store_consume(s, "vm1", b, 31, &error));
    ERR(error, NONCE_UNKNOWN);
    g_clear_error(&error);

    g_assert_true(tvd_nonce_store_issue(s, NULL, c, &error));
    g_assert_false(tvd_nonce_store_issue(s, NULL, d, &error));
    ERR(error, NONCE_STORE_FULL);
    g_clear_error(&error);

    /* b expires at 6000 */
    now = 6000;
    g_assert_false(tvd_nonce_store_consume(s, "vm1", b, 32, &error));
    ERR(error, NONCE_EXPIRED);
    g_clear_error(&error);
    g_assert_cmpuint(tvd_nonce_store_size(s), ==, 0);
    /* once pruned, an old nonce is unknown */
    g_assert_false(tvd_nonce_store_consume(s, NULL, c, 32, &error));
    ERR(error, NONCE_UNKNOWN);
    g_clear_error(&error);

    g_assert_true(tvd_nonce_store_issue(s, NULL, d, &error));
    now = 6999;
    g_assert_true(tvd_nonce_store_consume(s, NULL, d, 32, &error));
    g_assert_no_error(error);
}

/* ---- EK certificates ------------------------------------------------------ */

static X509 *
make_cert(EVP_PKEY *subject_key, EVP_PKEY *issuer_key, X509 *issuer,
          const char *cn, gboolean ca)
{
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    X509V3_CTX v3;
    X509_EXTENSION *ext;

    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_set_subject_name(x, name);
    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
    X509_NAME_free(name);
    X509_set_pubkey(x, subject_key);
    X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
                              ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                              ca ? "critical,keyCertSign,cRLSign"
                                 : "critical,keyEncipherment");
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    g_assert_cmpint(X509_sign(x, issuer_key, EVP_sha256()), >, 0);
    return x;
}

static GBytes *
der(X509 *x)
{
    guint8 *buf = NULL;
    int n = i2d_X509(x, &buf);
    GBytes *b;

    g_assert_cmpint(n, >, 0);
    b = g_bytes_new(buf, (gsize)n);
    OPENSSL_free(buf);
    return b;
}

static GBytes *
pem(X509 *x)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data;
    long n;
    GBytes *b;

    PEM_write_bio_X509(bio, x);
    n = BIO_get_mem_data(bio, &data);
    b = g_bytes_new(data, (gsize)n);
    BIO_free(bio);
    return b;
}

static void
test_ek_cert(void)
{
    EVP_PKEY *ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    EVP_PKEY *other_ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "prime256v1");
    EVP_PKEY *ek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *other_ek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    X509 *ca = make_cert(ca_key, ca_key, NULL, "tvd vTPM CA", TRUE);
    X509 *other_ca = make_cert(other_ca_key, other_ca_key, NULL, "tvd vTPM CA",
                               TRUE);
    X509 *cert = make_cert(ek, ca_key, ca, "ek", FALSE);
    g_autoptr(GBytes) ca_pem = pem(ca);
    g_autoptr(GBytes) ca_der = der(ca);
    g_autoptr(GBytes) other_pem = pem(other_ca);
    g_autoptr(GBytes) cert_der = der(cert);
    g_autoptr(GError) error = NULL;
    gsize cl, al, dl, ol;
    const guint8 *c = g_bytes_get_data(cert_der, &cl);
    const guint8 *a = g_bytes_get_data(ca_pem, &al);
    const guint8 *ad = g_bytes_get_data(ca_der, &dl);
    const guint8 *o = g_bytes_get_data(other_pem, &ol);
    g_autofree guint8 *padded = g_malloc0(cl + 16);

    g_assert_true(tvd_ek_cert_verify(c, cl, a, al, ek, &error));
    g_assert_no_error(error);
    g_assert_true(tvd_ek_cert_verify(c, cl, ad, dl, ek, &error));
    g_assert_no_error(error);
    memcpy(padded, c, cl);
    g_assert_true(tvd_ek_cert_verify(padded, cl + 16, a, al, NULL, &error));
    g_assert_no_error(error);
    padded[cl + 3] = 1;
    g_assert_false(tvd_ek_cert_verify(padded, cl + 16, a, al, NULL, &error));
    ERR(error, EK_CERT_INVALID);
    g_clear_error(&error);

    g_assert_false(tvd_ek_cert_verify(c, cl, o, ol, ek, &error));
    ERR(error, EK_CERT_UNTRUSTED);
    g_clear_error(&error);
    g_assert_false(tvd_ek_cert_verify(c, cl, a, al, other_ek, &error));
    ERR(error, EK_KEY_MISMATCH);
    g_clear_error(&error);
    g_assert_false(tvd_ek_cert_verify(c, cl / 2, a, al, ek, &error));
    ERR(error, EK_CERT_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_ek_cert_verify(c, cl, (const guint8 *)"junk", 4, ek,
                                      &error));
    ERR(error, EK_CERT_UNTRUSTED);
    g_clear_error(&error);
    /* a flipped bit in the signature */
    memcpy(padded, c, cl);
    padded[cl - 5] ^= 0x10;
    g_assert_false(tvd_ek_cert_verify(padded, cl, a, al, ek, &error));
    ERR(error, EK_CERT_UNTRUSTED);

    X509_free(cert);
    X509_free(ca);
    X509_free(other_ca);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(other_ca_key);
    EVP_PKEY_free(ek);
    EVP_PKEY_free(other_ek);
}

/* ---- IMA ------------------------------------------------------------------- */

static void
put_le32(GByteArray *a, guint32 v)
{
    guint8 b[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16),
                    (guint8)(v >> 24) };

    g_byte_array_append(a, b, 4);
}

/* An ima-sig (or ima-buf) record, built field by field. */
static GBytes *
ima3_record(const char *template, const char *path, gsize sig_len)
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    GByteArray *rec = g_byte_array_new();
    guint8 digest[20], th[20];
    unsigned int n;

    memset(digest, 0xab, sizeof(digest));
    put_le32(data, 6 + 20);
    g_byte_array_append(data, (const guint8 *)"sha1:", 6);
    g_byte_array_append(data, digest, 20);
    put_le32(data, (guint32)strlen(path) + 1);
    g_byte_array_append(data, (const guint8 *)path, (guint)strlen(path) + 1);
    put_le32(data, (guint32)sig_len);
    for (gsize i = 0; i < sig_len; i++) {
        guint8 c = (guint8)i;

        g_byte_array_append(data, &c, 1);
    }
    EVP_Digest(data->data, data->len, th, &n, EVP_sha1(), NULL);
    put_le32(rec, 10);
    g_byte_array_append(rec, th, 20);
    put_le32(rec, 7);
    g_byte_array_append(rec, (const guint8 *)template, 7);
    put_le32(rec, data->len);
    g_byte_array_append(rec, data->data, data->len);
    return g_byte_array_free_to_bytes(rec);
}

/* boot_aggregate, 8 files, a violation, an ima-sig record, one in PCR 11 */
static GByteArray *
make_log(guint n_files)
{
    GByteArray *log = g_byte_array_new();
    guint8 digest[32];

    memset(digest, 0x01, sizeof(digest));
    for (guint i = 0; i < n_files + 4; i++) {
        g_autoptr(GBytes) r = NULL;
        g_autofree char *path = g_strdup_printf("/usr/bin/tool-%u", i);

        digest[0] = (guint8)i;
        if (i == 0) {
            r = tvd_synth_ima_record(10, "boot_aggregate", digest, FALSE);
        } else if (i == 3) {
            r = tvd_synth_ima_record(10, "/tmp/violated", digest, TRUE);
        } else if (i == 5) {
            r = ima3_record("ima-sig", "/usr/lib/signed.so", 9);
        } else if (i == 6) {
            r = tvd_synth_ima_record(11, "/other/pcr", digest, FALSE);
        } else {
            r = tvd_synth_ima_record(10, path, digest, FALSE);
        }
        g_byte_array_append(log, g_bytes_get_data(r, NULL),
                            (guint)g_bytes_get_size(r));
    }
    return log;
}

static void
test_ima_parse(void)
{
    g_autoptr(GByteArray) log = make_log(8);
    g_autoptr(GPtrArray) all =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GError) error = NULL;
    const TvdImaEntry *e;
    gsize consumed = 0;

    g_assert_true(tvd_ima_log_parse(log->data, log->len, NULL, FALSE, all,
                                    &consumed, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(consumed, ==, log->len);
    g_assert_cmpuint(all->len, ==, 12);
    e = g_ptr_array_index(all, 0);
    g_assert_cmpstr(e->path, ==, "boot_aggregate");
    g_assert_cmpstr(e->template_name, ==, "ima-ng");
    g_assert_cmpstr(e->digest_alg, ==, "sha256");
    g_assert_cmpuint(e->digest_len, ==, 32);
    g_assert_false(e->violation);
    e = g_ptr_array_index(all, 3);
    g_assert_true(e->violation);
    e = g_ptr_array_index(all, 5);
    g_assert_cmpstr(e->template_name, ==, "ima-sig");
    g_assert_cmpstr(e->digest_alg, ==, "sha1");
    g_assert_cmpuint(g_bytes_get_size(e->sig), ==, 9);
    e = g_ptr_array_index(all, 6);
    g_assert_cmpuint(e->pcr, ==, 11);

    /* incremental: every split point gives the same records */
    for (gsize cut = 0; cut <= log->len; cut += 7) {
        g_autoptr(GPtrArray) part =
            g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
        gsize c1 = 0, c2 = 0;

        g_assert_true(tvd_ima_log_parse(log->data, cut, NULL, TRUE, part, &c1,
                                        &error));
        g_assert_cmpuint(c1, <=, cut);
        g_assert_true(tvd_ima_log_parse(log->data + c1, log->len - c1, NULL,
                                        FALSE, part, &c2, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(c1 + c2, ==, log->len);
        g_assert_cmpuint(part->len, ==, all->len);
        for (guint i = 0; i < part->len; i++) {
            const TvdImaEntry *x = g_ptr_array_index(part, i);
            const TvdImaEntry *y = g_ptr_array_index(all, i);

            g_assert_cmpmem(x->template_hash, 20, y->template_hash, 20);
            g_assert_cmpstr(x->path, ==, y->path);
        }
    }

    /* a truncated log is an error without allow_partial */
    g_assert_false(tvd_ima_log_parse(log->data, log->len - 1, NULL, FALSE,
                                     all, NULL, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    g_assert_cmpuint(all->len, ==, 12);
}

static void
test_ima_limits(void)
{
    g_autoptr(GByteArray) log = make_log(8);
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GError) error = NULL;
    TvdImaLimits l = TVD_IMA_LIMITS_DEFAULT;
    gsize consumed = 0;

    l.max_entries = 5;
    g_assert_false(tvd_ima_log_parse(log->data, log->len, &l, FALSE, out,
                                     NULL, &error));
    ERR(error, LOG_LIMIT);
    g_clear_error(&error);
    g_assert_true(tvd_ima_log_parse(log->data, log->len, &l, TRUE, out,
                                    &consumed, &error));
    g_assert_cmpuint(out->len, ==, 5);
    g_assert_cmpuint(consumed, <, log->len);

    l = (TvdImaLimits)TVD_IMA_LIMITS_DEFAULT;
    l.max_data_len = 40;
    g_assert_false(tvd_ima_log_parse(log->data, log->len, &l, FALSE, out,
                                     NULL, &error));
    ERR(error, LOG_LIMIT);
    g_clear_error(&error);
    l = (TvdImaLimits)TVD_IMA_LIMITS_DEFAULT;
    l.max_name_len = 5;
    g_assert_false(tvd_ima_log_parse(log->data, log->len, &l, FALSE, out,
                                     NULL, &error));
    ERR(error, LOG_LIMIT);
    g_clear_error(&error);
    l = (TvdImaLimits)TVD_IMA_LIMITS_DEFAULT;
    l.max_path_len = 10;
    g_assert_false(tvd_ima_log_parse(log->data, log->len, &l, FALSE, out,
                                     NULL, &error));
    ERR(error, LOG_LIMIT);
}

static void
test_ima_templates(void)
{
    g_autoptr(GBytes) buf = ima3_record("ima-buf", "kexec-cmdline", 13);
    g_autoptr(GBytes) nosig = ima3_record("ima-sig", "/bin/unsigned", 0);
    g_autoptr(GBytes) other = ima3_record("ima-xyz", "/bin/x", 0);
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdImaEntry) e = NULL, f = NULL;

    e = tvd_ima_entry_parse(g_bytes_get_data(buf, NULL),
                            g_bytes_get_size(buf), NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->template_name, ==, "ima-buf");
    g_assert_cmpstr(e->path, ==, "kexec-cmdline");
    g_assert_cmpuint(g_bytes_get_size(e->buf), ==, 13);
    g_assert_null(e->sig);
    f = tvd_ima_entry_parse(g_bytes_get_data(nosig, NULL),
                            g_bytes_get_size(nosig), NULL, &error);
    g_assert_no_error(error);
    g_assert_null(f->sig);
    g_assert_null(tvd_ima_entry_parse(g_bytes_get_data(other, NULL),
                                      g_bytes_get_size(other), NULL, &error));
    ERR(error, LOG_MALFORMED);
}

static void
test_ima_malformed(void)
{
    guint8 digest[32] = { 0 };
    g_autoptr(GBytes) r = tvd_synth_ima_record(10, "/bin/sh", digest, FALSE);
    gsize len;
    const guint8 *src = g_bytes_get_data(r, &len);
    g_autofree guint8 *d = g_memdup2(src, len);
    g_autoptr(GError) error = NULL;
    TvdImaEntry *e;

    e = tvd_ima_entry_parse(d, len, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->path, ==, "/bin/sh");
    tvd_ima_entry_free(e);

    d[4] ^= 1;                          /* template hash */
    g_assert_null(tvd_ima_entry_parse(d, len, NULL, &error));
    ERR(error, LOG_TEMPLATE_HASH);
    g_clear_error(&error);
    d[4] ^= 1;
    d[4 + 20 + 4 + 4] = 'x';            /* "ima-ng" -> "ima-xg" */
    g_assert_null(tvd_ima_entry_parse(d, len, NULL, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    d[4 + 20 + 4 + 4] = 'n';
    d[len - 1] = 'x';                   /* path loses its NUL */
    g_assert_null(tvd_ima_entry_parse(d, len, NULL, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    d[len - 1] = 0;
    d[0] = 24;                          /* PCR 24 */
    g_assert_null(tvd_ima_entry_parse(d, len, NULL, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    d[0] = 10;
    for (gsize n = 0; n < len; n++) {
        g_assert_null(tvd_ima_entry_parse(d, n, NULL, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
    }
}

/* Independent replay: extend by hand with EVP_Digest. */
static void
ref_replay(const EVP_MD *md, GByteArray *log, guint n, guint32 pcr,
           guint8 *value)
{
    gsize off = 0, size = (gsize)EVP_MD_get_size(md);

    memset(value, 0, size);
    for (guint i = 0; i < n; i++) {
        const guint8 *p = log->data + off;
        guint32 rpcr = p[0] | p[1] << 8;
        guint32 nl = p[24] | p[25] << 8;
        guint32 dl = p[28 + nl] | p[29 + nl] << 8;
        guint8 m[64], buf[128];
        gboolean viol = TRUE;

        for (int j = 0; j < 20; j++) {
            viol = viol && p[4 + j] == 0;
        }
        if (rpcr == pcr) {
            if (viol) {
                memset(m, 0xff, size);
            } else if (size == 20) {
                memcpy(m, p + 4, 20);
            } else {
                EVP_Digest(p + 32 + nl, dl, m, NULL, md, NULL);
            }
            memcpy(buf, value, size);
            memcpy(buf + size, m, size);
            EVP_Digest(buf, 2 * size, value, NULL, md, NULL);
        }
        off += 32 + nl + dl;
    }
}

static void
check_replay(TPM2_ALG_ID bank, const EVP_MD *md)
{
    g_autoptr(GByteArray) log = make_log(8);
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GPtrArray) first = g_ptr_array_new();
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    g_autoptr(TvdImaReplay) r = NULL;
    g_autoptr(GError) error = NULL;
    gsize size = (gsize)EVP_MD_get_size(md), vl;
    guint8 at5[64], all[64], bad[64];
    guint used = 99;

    g_assert_true(tvd_ima_log_parse(log->data, log->len, NULL, FALSE,
                                    entries, NULL, &error));
    ref_replay(md, log, 5, 10, at5);
    ref_replay(md, log, entries->len, 10, all);
    for (guint i = 0; i < entries->len; i++) {
        g_ptr_array_add(i < 5 ? first : rest, g_ptr_array_index(entries, i));
    }
    r = tvd_ima_replay_new(bank, 10, &error);
    g_assert_no_error(error);

    /* the quote was taken after 5 entries; 2 more were logged since */
    g_ptr_array_add(first, g_ptr_array_index(rest, 0));
    g_ptr_array_add(first, g_ptr_array_index(rest, 1));
    g_assert_true(tvd_ima_replay_match(r, 0, first, at5, size, &used,
                                       &error));
    g_assert_no_error(error);
    g_assert_cmpuint(used, ==, 5);
    g_assert_cmpuint(tvd_ima_replay_count(r), ==, 5);
    g_assert_cmpmem(tvd_ima_replay_value(r, &vl), vl, at5, size);

    memcpy(bad, all, size);
    bad[0] ^= 1;
    g_assert_false(tvd_ima_replay_match(r, 5, rest, bad, size, NULL, &error));
    ERR(error, LOG_REPLAY_MISMATCH);
    g_clear_error(&error);
    g_assert_cmpuint(tvd_ima_replay_count(r), ==, 5);
    g_assert_false(tvd_ima_replay_match(r, 4, rest, all, size, NULL, &error));
    ERR(error, LOG_OFFSET);
    g_clear_error(&error);
    g_assert_false(tvd_ima_replay_match(r, 5, rest, all, size - 1, NULL,
                                        &error));
    ERR(error, PCR_VALUES);
    g_clear_error(&error);

    g_assert_true(tvd_ima_replay_match(r, 5, rest, all, size, &used, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(used, ==, rest->len);
    g_assert_cmpuint(tvd_ima_replay_count(r), ==, entries->len);
    /* nothing new: the PCR is unchanged */
    g_assert_true(tvd_ima_replay_match(r, entries->len, NULL, all, size,
                                       &used, &error));
    g_assert_cmpuint(used, ==, 0);
}

static void
test_ima_replay_sha256(void)
{
    check_replay(TPM2_ALG_SHA256, EVP_sha256());
}

static void
test_ima_replay_sha1(void)
{
    check_replay(TPM2_ALG_SHA1, EVP_sha1());
}

static void
test_ima_boot_aggregate(void)
{
    guint8 pcrs[10 * 32], out[32], ref[32];
    g_autoptr(GError) error = NULL;

    for (gsize i = 0; i < sizeof(pcrs); i++) {
        pcrs[i] = (guint8)i;
    }
    g_assert_true(tvd_ima_boot_aggregate(TPM2_ALG_SHA256, pcrs, sizeof(pcrs),
                                         out, &error));
    EVP_Digest(pcrs, sizeof(pcrs), ref, NULL, EVP_sha256(), NULL);
    g_assert_cmpmem(out, 32, ref, 32);
    g_assert_true(tvd_ima_boot_aggregate(TPM2_ALG_SHA1, pcrs, 200, out,
                                         &error));
    EVP_Digest(pcrs, 160, ref, NULL, EVP_sha1(), NULL);
    g_assert_cmpmem(out, 20, ref, 20);
    g_assert_false(tvd_ima_boot_aggregate(TPM2_ALG_SHA256, pcrs, 32, out,
                                          &error));
    ERR(error, MALFORMED);
}

/* A real log: Debian's 6.1 kernel booted with ima_policy=tcb
 * ima_template=ima-ng ima_hash=sha256 on QEMU with a swtpm (both banks),
 * binary_runtime_measurements and the PCRs read from sysfs in the guest
 * (data/, see docs/verifier.md). */
static gboolean
read_pcr(GHashTable *pcrs, const char *key, guint8 *out, gsize len)
{
    const char *hexv = g_hash_table_lookup(pcrs, key);

    if (!hexv || strlen(hexv) != 2 * len) {
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        int hi = g_ascii_xdigit_value(hexv[2 * i]);
        int lo = g_ascii_xdigit_value(hexv[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            return FALSE;
        }
        out[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}

static void
test_ima_real_log(void)
{
    g_autofree char *log_path = g_test_build_filename(
        G_TEST_DIST, "data", "ima-ng-linux-6.1.bin", NULL);
    g_autofree char *pcr_path = g_test_build_filename(
        G_TEST_DIST, "data", "ima-ng-linux-6.1.pcrs", NULL);
    g_autofree char *log = NULL, *text = NULL;
    g_auto(GStrv) lines = NULL;
    g_autoptr(GHashTable) pcrs = g_hash_table_new_full(g_str_hash,
                                                       g_str_equal, g_free,
                                                       g_free);
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GError) error = NULL;
    guint8 boot[10 * 32], agg[32], p10[32], p10_sha1[20];
    const TvdImaEntry *first;
    gsize log_len = 0;
    guint used = 0;

    g_assert_true(g_file_get_contents(log_path, &log, &log_len, &error));
    g_assert_true(g_file_get_contents(pcr_path, &text, NULL, &error));
    lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        char *eq = strchr(lines[i], '=');

        if (eq) {
            g_hash_table_insert(pcrs, g_strndup(lines[i], eq - lines[i]),
                                g_strdup(eq + 1));
        }
    }
    for (int i = 0; i < 10; i++) {
        g_autofree char *k = g_strdup_printf("PCR%d-SHA256", i);

        g_assert_true(read_pcr(pcrs, k, boot + 32 * i, 32));
    }
    g_assert_true(read_pcr(pcrs, "PCR10-SHA256", p10, 32));
    g_assert_true(read_pcr(pcrs, "PCR10-SHA1", p10_sha1, 20));

    g_assert_true(tvd_ima_log_parse((const guint8 *)log, log_len, NULL, FALSE,
                                    entries, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(entries->len, >=, 2);
    first = g_ptr_array_index(entries, 0);
    g_assert_cmpstr(first->path, ==, "boot_aggregate");
    g_assert_cmpstr(first->digest_alg, ==, "sha256");
    g_assert_true(tvd_ima_boot_aggregate(TPM2_ALG_SHA256, boot, sizeof(boot),
                                         agg, &error));
    g_assert_cmpmem(first->digest, first->digest_len, agg, 32);

    for (int b = 0; b < 2; b++) {
        g_autoptr(TvdImaReplay) r = tvd_ima_replay_new(
            b ? TPM2_ALG_SHA1 : TPM2_ALG_SHA256, 10, &error);

        g_assert_true(tvd_ima_replay_match(r, 0, entries, b ? p10_sha1 : p10,
                                           b ? 20 : 32, &used, &error));
        g_assert_no_error(error);
        g_assert_cmpuint(used, ==, entries->len);
    }
}

/* ---- Templates and per-bank logs of recent kernels ------------------------ */

/* Template data of @n fields given as (bytes, length) pairs. */
static GByteArray *
fields(guint n, ...)
{
    GByteArray *d = g_byte_array_new();
    va_list ap;

    va_start(ap, n);
    for (guint i = 0; i < n; i++) {
        const void *p = va_arg(ap, const void *);
        gsize len = va_arg(ap, gsize);

        tvd_append_le32(d, (guint32)len);
        g_byte_array_append(d, p, (guint)len);
    }
    va_end(ap);
    return d;
}

/* "<prefix>" NUL then 32 bytes of @fill: a d-ng / d-ngv2 field. */
static GByteArray *
digest_field(const char *prefix, guint8 fill)
{
    GByteArray *f = g_byte_array_new();
    guint8 d[32];

    memset(d, fill, sizeof(d));
    g_byte_array_append(f, (const guint8 *)prefix, (guint)strlen(prefix) + 1);
    g_byte_array_append(f, d, sizeof(d));
    return f;
}

static TvdImaEntry *
parse_template(const char *name, GByteArray *data, GError **error)
{
    g_autoptr(GBytes) r = tvd_synth_ima_record_data(TPM2_ALG_SHA1, FALSE, 10,
                                                    name, data->data,
                                                    data->len, FALSE);

    return tvd_ima_entry_parse(g_bytes_get_data(r, NULL),
                               g_bytes_get_size(r), NULL, error);
}

static void
test_ima_templates_recent(void)
{
    static const char path[] = "/usr/bin/x";
    static const guint8 sig[5] = { 3, 2, 1, 0, 9 };
    static const guint8 u32v[4] = { 0, 0, 0, 0 };
    g_autoptr(GByteArray) dng = digest_field("sha256:", 0x11);
    g_autoptr(GByteArray) dv2 = digest_field("ima:sha256:", 0x22);
    g_autoptr(GByteArray) verity = digest_field("verity:sha512:", 0x33);
    g_autoptr(GByteArray) badtype = digest_field("foo:sha256:", 0x44);
    g_autoptr(GByteArray) ngv2 = fields(2, dv2->data, (gsize)dv2->len,
                                        path, sizeof(path));
    g_autoptr(GByteArray) sigv2 = fields(3, verity->data, (gsize)verity->len,
                                         path, sizeof(path), sig, sizeof(sig));
    g_autoptr(GByteArray) modsig = fields(5, dng->data, (gsize)dng->len, path,
                                          sizeof(path), sig, sizeof(sig),
                                          "", (gsize)0, sig, sizeof(sig));
    g_autoptr(GByteArray) evm = fields(9, dng->data, (gsize)dng->len, path,
                                       sizeof(path), sig, sizeof(sig),
                                       "security.ima", (gsize)12, u32v,
                                       sizeof(u32v), sig, sizeof(sig), u32v,
                                       sizeof(u32v), u32v, sizeof(u32v),
                                       u32v, (gsize)2);
    g_autoptr(GByteArray) bad_v2 = fields(2, badtype->data,
                                          (gsize)badtype->len, path,
                                          sizeof(path));
    g_autoptr(GByteArray) short_modsig = fields(4, dng->data, (gsize)dng->len,
                                                path, sizeof(path), sig,
                                                sizeof(sig), "", (gsize)0);
    g_autoptr(GError) error = NULL;
    TvdImaEntry *e;

    e = parse_template("ima-ngv2", ngv2, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->digest_type, ==, "ima");
    g_assert_cmpstr(e->digest_alg, ==, "sha256");
    g_assert_cmpuint(e->digest_len, ==, 32);
    g_assert_cmpuint(e->digest[0], ==, 0x22);
    g_assert_cmpstr(e->path, ==, path);
    tvd_ima_entry_free(e);

    e = parse_template("ima-sigv2", sigv2, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->digest_type, ==, "verity");
    g_assert_cmpstr(e->digest_alg, ==, "sha512");
    g_assert_cmpuint(g_bytes_get_size(e->sig), ==, sizeof(sig));
    tvd_ima_entry_free(e);

    e = parse_template("ima-modsig", modsig, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->digest_type, ==, "ima");
    g_assert_cmpstr(e->path, ==, path);
    g_assert_cmpuint(g_bytes_get_size(e->sig), ==, sizeof(sig));
    tvd_ima_entry_free(e);

    e = parse_template("evm-sig", evm, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(e->path, ==, path);
    g_assert_cmpuint(e->digest[0], ==, 0x11);
    tvd_ima_entry_free(e);

    /* d-ngv2 of an unknown type; a template with a field missing; one
     * with a field too many; the legacy "ima" template */
    g_assert_null(parse_template("ima-ngv2", bad_v2, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    g_assert_null(parse_template("ima-modsig", short_modsig, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    g_assert_null(parse_template("ima-ngv2", modsig, &error));
    ERR(error, LOG_MALFORMED);
    g_clear_error(&error);
    g_assert_null(parse_template("ima", ngv2, &error));
    ERR(error, LOG_MALFORMED);
}

/* Extends @value (@size bytes) with @m by hand. */
static void
ref_extend(const EVP_MD *md, guint8 *value, const guint8 *m)
{
    gsize size = (gsize)EVP_MD_get_size(md);
    guint8 buf[128];

    memcpy(buf, value, size);
    memcpy(buf + size, m, size);
    EVP_Digest(buf, 2 * size, value, NULL, md, NULL);
}

/* Three ima-ng records' template data. */
static GByteArray *
ng_data(guint i)
{
    GByteArray *d = g_byte_array_new();
    g_autofree char *path = g_strdup_printf("/usr/lib/lib%u.so", i);
    guint8 digest[32];

    memset(digest, (int)(0x40 + i), sizeof(digest));
    tvd_ima_ng_data_append(d, "sha256", digest, 32, path);
    return d;
}

static void
check_per_bank(TPM2_ALG_ID alg, const EVP_MD *md, gboolean padded)
{
    g_autoptr(GByteArray) log = g_byte_array_new();
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GPtrArray) classic =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(TvdImaReplay) r = tvd_ima_replay_new(alg, 10, NULL);
    g_autoptr(GError) error = NULL;
    gsize size = (gsize)EVP_MD_get_size(md);
    guint8 value[64] = { 0 }, m[64];
    guint used = 0;

    for (guint i = 0; i < 3; i++) {
        g_autoptr(GByteArray) d = ng_data(i);
        g_autoptr(GBytes) rec = tvd_synth_ima_record_data(
            alg, padded, 10, "ima-ng", d->data, d->len, i == 1);

        g_byte_array_append(log, g_bytes_get_data(rec, NULL),
                            (guint)g_bytes_get_size(rec));
        memset(m, 0, sizeof(m));
        if (i == 1) {
            memset(m, 0xff, size);
        } else {
            EVP_Digest(d->data, d->len, m, NULL, padded ? EVP_sha1() : md,
                       NULL);
        }
        ref_extend(md, value, m);
    }
    g_assert_true(tvd_ima_log_parse_bank(alg, log->data, log->len, NULL,
                                         FALSE, entries, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(entries->len, ==, 3);
    for (guint i = 0; i < 3; i++) {
        const TvdImaEntry *e = g_ptr_array_index(entries, i);

        g_assert_cmpuint(e->template_digest_len, ==, size);
        g_assert_cmpint(e->template_alg, ==, alg);
        g_assert_cmpint(e->violation, ==, i == 1);
        g_assert_cmpint(e->template_sha1_padded, ==, padded && i != 1);
    }
    g_assert_true(tvd_ima_replay_match(r, 0, entries, value, size, &used,
                                       &error));
    g_assert_no_error(error);
    g_assert_cmpuint(used, ==, 3);

    /* Read as a SHA-1 log, the digest shifts every field: refused. */
    g_assert_false(tvd_ima_log_parse(log->data, log->len, NULL, FALSE,
                                     classic, NULL, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);

    /* A flipped byte of a template digest */
    log->data[4] ^= 1;
    g_assert_false(tvd_ima_log_parse_bank(alg, log->data, log->len, NULL,
                                          FALSE, classic, NULL, &error));
    ERR(error, LOG_TEMPLATE_HASH);
}

static void
test_ima_per_bank(void)
{
    g_autoptr(GError) error = NULL;

    check_per_bank(TPM2_ALG_SHA256, EVP_sha256(), FALSE);
    check_per_bank(TPM2_ALG_SHA384, EVP_sha384(), FALSE);
    /* a kernel without sha384 (Debian 6.1 early boot): padded SHA-1 */
    check_per_bank(TPM2_ALG_SHA384, EVP_sha384(), TRUE);
    g_assert_null(tvd_ima_entry_parse_bank(0x0027, (const guint8 *)"", 0,
                                           NULL, &error));
    ERR(error, UNSUPPORTED);
}

/* The classic log replayed into the SHA-384 bank of a kernel that had no
 * SHA-384: each entry extended the SHA-1 template hash, zero-padded. */
static void
test_ima_replay_padded(void)
{
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GPtrArray) first = g_ptr_array_new();
    g_autoptr(GPtrArray) second = g_ptr_array_new();
    g_autoptr(TvdImaReplay) r = tvd_ima_replay_new(TPM2_ALG_SHA384, 10, NULL);
    g_autoptr(TvdImaReplay) strict = NULL;
    g_autoptr(GError) error = NULL;
    guint8 at2[48] = { 0 }, at3[48], m[48];
    guint used = 0;

    for (guint i = 0; i < 3; i++) {
        g_autoptr(GByteArray) d = ng_data(i);
        g_autoptr(GBytes) rec = tvd_synth_ima_record_data(
            TPM2_ALG_SHA1, FALSE, 10, "ima-ng", d->data, d->len, FALSE);
        TvdImaEntry *e = tvd_ima_entry_parse(g_bytes_get_data(rec, NULL),
                                             g_bytes_get_size(rec), NULL,
                                             &error);

        g_assert_no_error(error);
        g_ptr_array_add(entries, e);
        g_ptr_array_add(i < 2 ? first : second, e);
        memset(m, 0, sizeof(m));
        memcpy(m, e->template_hash, 20);
        if (i == 2) {
            memcpy(at3, at2, sizeof(at3));
            ref_extend(EVP_sha384(), at3, m);
        } else {
            ref_extend(EVP_sha384(), at2, m);
        }
    }
    strict = tvd_ima_replay_copy(r);
    tvd_ima_replay_set_rule(strict, TVD_IMA_EXTEND_BANK_HASH);
    g_assert_false(tvd_ima_replay_match(strict, 0, first, at2, 48, NULL,
                                        &error));
    ERR(error, LOG_REPLAY_MISMATCH);
    g_clear_error(&error);

    g_assert_cmpint(tvd_ima_replay_rule(r), ==, TVD_IMA_EXTEND_AUTO);
    g_assert_true(tvd_ima_replay_match(r, 0, first, at2, 48, &used, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(used, ==, 2);
    g_assert_cmpint(tvd_ima_replay_rule(r), ==, TVD_IMA_EXTEND_SHA1_PADDED);
    g_assert_true(tvd_ima_replay_match(r, 2, second, at3, 48, &used, &error));
    g_assert_cmpuint(used, ==, 1);
}

int
main(int argc, char **argv)
{
    static const struct {
        const char *name;
        TPM2_ALG_ID scheme;
    } schemes[] = {
        { "rsassa", TPM2_ALG_RSASSA },
        { "rsapss", TPM2_ALG_RSAPSS },
        { "ecdsa", TPM2_ALG_ECDSA },
    };

    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/verifier/reasons", test_reasons);
    g_test_add_func("/verifier/kdfa", test_kdfa);
    g_test_add_func("/verifier/kdfe", test_kdfe);
    g_test_add_func("/verifier/public/rsa", test_public_rsa);
    g_test_add_func("/verifier/public/ecc", test_public_ecc);
    g_test_add_func("/verifier/public/malformed", test_public_malformed);
    g_test_add_func("/verifier/public/ak-attributes",
                    test_public_ak_attributes);
    for (gsize i = 0; i < G_N_ELEMENTS(schemes); i++) {
        gconstpointer d = GUINT_TO_POINTER(schemes[i].scheme);
#define QT(n, fn)                                                          \
    do {                                                                   \
        g_autofree char *p = g_strdup_printf("/verifier/quote/%s/" n,      \
                                             schemes[i].name);             \
        g_test_add(p, QuoteFixture, d, quote_setup, fn, quote_teardown);   \
    } while (0)
        QT("good", test_quote_good);
        QT("tamper-attest", test_quote_tamper_attest);
        QT("tamper-signature", test_quote_tamper_signature);
        QT("semantics", test_quote_semantics);
        QT("structure", test_quote_structure);
        QT("wrong-key", test_quote_wrong_key);
#undef QT
    }
    g_test_add_func("/verifier/nonce", test_nonce);
    g_test_add_func("/verifier/ek-cert", test_ek_cert);
    g_test_add_func("/verifier/ima/parse", test_ima_parse);
    g_test_add_func("/verifier/ima/limits", test_ima_limits);
    g_test_add_func("/verifier/ima/templates", test_ima_templates);
    g_test_add_func("/verifier/ima/malformed", test_ima_malformed);
    g_test_add_func("/verifier/ima/replay-sha256", test_ima_replay_sha256);
    g_test_add_func("/verifier/ima/replay-sha1", test_ima_replay_sha1);
    g_test_add_func("/verifier/ima/boot-aggregate", test_ima_boot_aggregate);
    g_test_add_func("/verifier/ima/real-log", test_ima_real_log);
    g_test_add_func("/verifier/ima/templates-recent",
                    test_ima_templates_recent);
    g_test_add_func("/verifier/ima/per-bank", test_ima_per_bank);
    g_test_add_func("/verifier/ima/replay-padded", test_ima_replay_padded);
    return g_test_run();
}
