/*
 * tvd verifier: error domain, reason names and the hash algorithm table.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <openssl/err.h>

G_DEFINE_QUARK(tvd-verify-error-quark, tvd_verify_error)

static const char *const reasons[] = {
    [TVD_VERIFY_ERROR_MALFORMED] = "malformed",
    [TVD_VERIFY_ERROR_UNSUPPORTED] = "unsupported-algorithm",
    [TVD_VERIFY_ERROR_NAME_MISMATCH] = "name-mismatch",
    [TVD_VERIFY_ERROR_AK_ATTRIBUTES] = "ak-attributes",
    [TVD_VERIFY_ERROR_EK_ATTRIBUTES] = "ek-attributes",
    [TVD_VERIFY_ERROR_SIGNATURE_SCHEME] = "signature-scheme-mismatch",
    [TVD_VERIFY_ERROR_BAD_SIGNATURE] = "bad-signature",
    [TVD_VERIFY_ERROR_NOT_TPM_GENERATED] = "not-tpm-generated",
    [TVD_VERIFY_ERROR_NOT_A_QUOTE] = "not-a-quote",
    [TVD_VERIFY_ERROR_NONCE_MISMATCH] = "nonce-mismatch",
    [TVD_VERIFY_ERROR_PCR_SELECTION_MISMATCH] = "pcr-selection-mismatch",
    [TVD_VERIFY_ERROR_PCR_VALUES] = "pcr-values-incomplete",
    [TVD_VERIFY_ERROR_PCR_DIGEST_MISMATCH] = "pcr-digest-mismatch",
    [TVD_VERIFY_ERROR_NONCE_UNKNOWN] = "nonce-unknown",
    [TVD_VERIFY_ERROR_NONCE_REUSED] = "nonce-reused",
    [TVD_VERIFY_ERROR_NONCE_EXPIRED] = "nonce-expired",
    [TVD_VERIFY_ERROR_NONCE_OWNER] = "nonce-wrong-owner",
    [TVD_VERIFY_ERROR_NONCE_STORE_FULL] = "nonce-store-full",
    [TVD_VERIFY_ERROR_EK_CERT_INVALID] = "ek-cert-invalid",
    [TVD_VERIFY_ERROR_EK_CERT_UNTRUSTED] = "ek-cert-untrusted",
    [TVD_VERIFY_ERROR_EK_KEY_MISMATCH] = "ek-key-mismatch",
    [TVD_VERIFY_ERROR_LOG_MALFORMED] = "log-malformed",
    [TVD_VERIFY_ERROR_LOG_LIMIT] = "log-limit",
    [TVD_VERIFY_ERROR_LOG_TEMPLATE_HASH] = "log-template-hash-mismatch",
    [TVD_VERIFY_ERROR_LOG_OFFSET] = "log-offset",
    [TVD_VERIFY_ERROR_LOG_REPLAY_MISMATCH] = "log-replay-mismatch",
    [TVD_VERIFY_ERROR_CRYPTO] = "crypto-failure",
};

const char *
tvd_verify_error_reason(int code)
{
    if (code <= 0 || code > TVD_VERIFY_ERROR_LAST || !reasons[code]) {
        return "unknown";
    }
    return reasons[code];
}

gboolean
tvd_crypto_fail(GError **error, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "no OpenSSL error";

    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    ERR_clear_error();
    g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_CRYPTO,
                "%s failed: %s", what, buf);
    return FALSE;
}

static const struct {
    TPM2_ALG_ID alg;
    gsize size;
    const char *name;
} hashes[] = {
    { TPM2_ALG_SHA1, 20, "SHA1" },
    { TPM2_ALG_SHA256, 32, "SHA256" },
    { TPM2_ALG_SHA384, 48, "SHA384" },
    { TPM2_ALG_SHA512, 64, "SHA512" },
};

static EVP_MD *fetched[G_N_ELEMENTS(hashes)];

gsize
tvd_tpm_hash_size(TPM2_ALG_ID alg)
{
    for (gsize i = 0; i < G_N_ELEMENTS(hashes); i++) {
        if (hashes[i].alg == alg) {
            return hashes[i].size;
        }
    }
    return 0;
}

const char *
tvd_tpm_hash_name(TPM2_ALG_ID alg)
{
    for (gsize i = 0; i < G_N_ELEMENTS(hashes); i++) {
        if (hashes[i].alg == alg) {
            return hashes[i].name;
        }
    }
    return NULL;
}

const EVP_MD *
tvd_tpm_hash_md(TPM2_ALG_ID alg)
{
    static gsize once;

    if (g_once_init_enter(&once)) {
        for (gsize i = 0; i < G_N_ELEMENTS(hashes); i++) {
            fetched[i] = EVP_MD_fetch(NULL, hashes[i].name, NULL);
        }
        g_once_init_leave(&once, 1);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(hashes); i++) {
        if (hashes[i].alg == alg) {
            return fetched[i];
        }
    }
    return NULL;
}

gboolean
tvd_hash(TPM2_ALG_ID alg, const guint8 *a, gsize a_len, const guint8 *b,
         gsize b_len, guint8 *out, GError **error)
{
    const EVP_MD *md = tvd_tpm_hash_md(alg);
    EVP_MD_CTX *ctx;
    gboolean ok;

    if (!md) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "hash algorithm 0x%04x not supported", alg);
        return FALSE;
    }
    ctx = EVP_MD_CTX_new();
    ok = ctx && EVP_DigestInit_ex2(ctx, md, NULL) &&
         (a_len == 0 || EVP_DigestUpdate(ctx, a, a_len)) &&
         (b_len == 0 || EVP_DigestUpdate(ctx, b, b_len)) &&
         EVP_DigestFinal_ex(ctx, out, NULL);
    EVP_MD_CTX_free(ctx);
    if (!ok) {
        return tvd_crypto_fail(error, "digest");
    }
    return TRUE;
}

void
tvd_mu_quiet(void)
{
    static gsize once;

    /* libtss2-mu logs a WARNING line to stderr for every malformed
     * structure; evidence comes from guests, so keep its log out of the
     * supervisor's (our own errors say what failed). TSS2_LOG set by the
     * operator wins. Done once, before the first unmarshal. */
    if (g_once_init_enter(&once)) {
        if (!g_getenv("TSS2_LOG")) {
            g_setenv("TSS2_LOG", "marshal+none", FALSE);
        }
        g_once_init_leave(&once, 1);
    }
}
