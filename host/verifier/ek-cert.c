/*
 * tvd verifier: EK certificate checks.
 *
 * The certificate must chain to the host's vTPM CA (X509_verify_cert over an
 * X509_STORE holding the CA certificates, each a trust anchor) and carry
 * the very key the TPM reports as its EK (EVP_PKEY_eq). Tested with the
 * certificates swtpm_setup + swtpm_localca write into the vTPM's NV.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#define EK_CERT_MAX 4096u

/* Adds the PEM certificates of @ca, or the one DER certificate, to @store. */
static gboolean
load_ca(X509_STORE *store, const guint8 *ca, gsize ca_len, GError **error)
{
    BIO *bio = BIO_new_mem_buf(ca, (int)ca_len);
    X509 *x;
    guint n = 0;

    while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
        X509_STORE_add_cert(store, x);
        X509_free(x);
        n++;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (n == 0) {
        const guint8 *p = ca;

        x = d2i_X509(NULL, &p, (long)ca_len);
        if (x) {
            X509_STORE_add_cert(store, x);
            X509_free(x);
            n++;
        }
        ERR_clear_error();
    }
    if (n == 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_CERT_UNTRUSTED,
                    "no CA certificate could be read");
        return FALSE;
    }
    return TRUE;
}

gboolean
tvd_ek_cert_verify(const guint8 *cert, gsize cert_len, const guint8 *ca,
                   gsize ca_len, EVP_PKEY *ek, GError **error)
{
    const guint8 *p = cert;
    X509 *x = NULL;
    X509_STORE *store = NULL;
    X509_STORE_CTX *ctx = NULL;
    EVP_PKEY *cert_key;
    gboolean ok = FALSE;
    int rc;

    if (cert_len == 0 || cert_len > EK_CERT_MAX || ca_len == 0 ||
        ca_len > G_MAXINT) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_CERT_INVALID,
                    "EK certificate of %zu bytes (1..%u)", cert_len,
                    EK_CERT_MAX);
        return FALSE;
    }
    x = d2i_X509(NULL, &p, (long)cert_len);
    if (!x) {
        ERR_clear_error();
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_CERT_INVALID,
                    "EK certificate is not DER X.509");
        return FALSE;
    }
    /* NV indices may be larger than the certificate: zero padding only. */
    for (gsize i = (gsize)(p - cert); i < cert_len; i++) {
        if (cert[i] != 0) {
            g_set_error(error, TVD_VERIFY_ERROR,
                        TVD_VERIFY_ERROR_EK_CERT_INVALID,
                        "bytes after the EK certificate");
            goto out;
        }
    }

    store = X509_STORE_new();
    ctx = X509_STORE_CTX_new();
    if (!store || !ctx) {
        tvd_crypto_fail(error, "X509_STORE");
        goto out;
    }
    if (!load_ca(store, ca, ca_len, error)) {
        goto out;
    }
    /* Every certificate given is a trust anchor: swtpm_localca signs EK
     * certificates with an intermediate under its own root, and the host
     * may trust either. */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN);
    if (!X509_STORE_CTX_init(ctx, store, x, NULL)) {
        tvd_crypto_fail(error, "X509_STORE_CTX_init");
        goto out;
    }
    rc = X509_verify_cert(ctx);
    if (rc != 1) {
        int err = X509_STORE_CTX_get_error(ctx);

        ERR_clear_error();
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_CERT_UNTRUSTED,
                    "EK certificate does not chain to the vTPM CA: %s",
                    X509_verify_cert_error_string(err));
        goto out;
    }
    if (ek) {
        cert_key = X509_get0_pubkey(x);
        if (!cert_key || EVP_PKEY_eq(cert_key, ek) != 1) {
            ERR_clear_error();
            g_set_error(error, TVD_VERIFY_ERROR,
                        TVD_VERIFY_ERROR_EK_KEY_MISMATCH,
                        "EK certificate's key is not the TPM's EK");
            goto out;
        }
    }
    ok = TRUE;

out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(x);
    return ok;
}
