/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's TPM layer against a real swtpm provisioned by swtpm_setup
 * with swtpm_localca: EK certificates in NV, persistent EKs, tpm2-tools as
 * the independent peer for MakeCredential and quote checking.
 *
 * One swtpm for the whole run (set up once, about a second); the tests run
 * in the order added and share it.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_tctildr.h>

#include "agent-tpm.h"
#include "tpm-test-util.h"

static TpmTestSwtpm *swtpm;
static const char *skip_reason;
static char *setup_error;
static TSS2_TCTI_CONTEXT *tcti;
static GBytes *ek_pubs[3];

static gboolean
need_swtpm(void)
{
    if (skip_reason) {
        g_autofree char *msg = g_strdup_printf("%s is not installed",
                                               skip_reason);
        g_test_skip(msg);
        return FALSE;
    }
    if (setup_error) {
        g_test_fail_printf("swtpm setup failed: %s", setup_error);
        return FALSE;
    }
    return TRUE;
}

static gboolean
need_tools(const char *prog)
{
    if (!need_swtpm()) {
        return FALSE;
    }
    if (!tpm_test_have(prog)) {
        g_autofree char *msg = g_strdup_printf("%s (tpm2-tools) is not "
                                               "installed", prog);
        g_test_skip(msg);
        return FALSE;
    }
    return TRUE;
}

static void
connect_tcti(void)
{
    TSS2_RC rc = Tss2_TctiLdr_Initialize(tpm_test_swtpm_tcti(swtpm), &tcti);

    g_assert_cmphex(rc, ==, TSS2_RC_SUCCESS);
}

static void
disconnect_tcti(void)
{
    if (tcti) {
        Tss2_TctiLdr_Finalize(&tcti);
    }
}

static TvdAgentTpm *
open_tpm(void)
{
    g_autoptr(GError) error = NULL;
    TvdAgentTpm *tpm = tvd_agent_tpm_new_with_tcti(NULL, tcti, &error);

    g_assert_no_error(error);
    return tpm;
}

/* The certificate's key, independently of the library: EVP_PKEY_eq. */
static void
assert_cert_certifies(GBytes *cert, GBytes *ek_pub, int want_type)
{
    g_autoptr(GError) error = NULL;
    const unsigned char *p = g_bytes_get_data(cert, NULL);
    X509 *x = d2i_X509(NULL, &p, (long)g_bytes_get_size(cert));
    EVP_PKEY *from_tpm;

    g_assert_nonnull(x);
    g_assert_true(p == (const unsigned char *)g_bytes_get_data(cert, NULL) +
                  g_bytes_get_size(cert));
    from_tpm = tpm_test_pkey_from_public(ek_pub, &error);
    g_assert_no_error(error);
    g_assert_cmpint(EVP_PKEY_get_base_id(X509_get0_pubkey(x)), ==, want_type);
    g_assert_cmpint(EVP_PKEY_eq(X509_get0_pubkey(x), from_tpm), ==, 1);
    if (want_type == EVP_PKEY_EC) {
        g_assert_cmpint(EVP_PKEY_get_bits(from_tpm), ==, 384);
    } else {
        g_assert_cmpint(EVP_PKEY_get_bits(from_tpm), ==, 2048);
    }
    EVP_PKEY_free(from_tpm);
    X509_free(x);
}

static void
test_open_by_string(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) values = NULL;
    TvdAgentTpmConfig config = { 0 };
    TvdAgentTpm *tpm;

    if (!need_swtpm()) {
        return;
    }
    /* swtpm serves one connection at a time: let go of ours meanwhile. */
    disconnect_tcti();
    config.tcti = tpm_test_swtpm_tcti(swtpm);
    tpm = tvd_agent_tpm_new(&config, &error);
    g_assert_no_error(error);
    g_assert_true(tvd_agent_tpm_pcr_read(tpm, 0x1, &values, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(values), ==, 32);
    tvd_agent_tpm_free(tpm);
    connect_tcti();
}

static void
test_ek_cert(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) pub = NULL, cert = NULL;
    TPM2B_PUBLIC p;
    size_t off = 0;

    memset(&p, 0, sizeof(p));
    if (!need_swtpm()) {
        return;
    }
    tpm = open_tpm();
    g_assert_true(tvd_agent_tpm_get_ek(tpm, alg, &pub, &cert, &error));
    g_assert_no_error(error);
    g_assert_nonnull(cert);
    assert_cert_certifies(cert, pub, alg == TVD_AGENT_TPM_ALG_RSA ?
                          EVP_PKEY_RSA : EVP_PKEY_EC);
    g_assert_cmpint(Tss2_MU_TPM2B_PUBLIC_Unmarshal(g_bytes_get_data(pub, NULL),
                                                   g_bytes_get_size(pub),
                                                   &off, &p), ==, 0);
    if (alg == TVD_AGENT_TPM_ALG_ECC) {
        g_assert_cmpuint(p.publicArea.parameters.eccDetail.curveID, ==,
                         TPM2_ECC_NIST_P384);
    }
    ek_pubs[alg] = g_bytes_ref(pub);
    tpm_test_assert_clean(tcti);
}

static void
test_activate(gconstpointer data)
{
    guint combo = GPOINTER_TO_UINT(data);
    TvdAgentTpmAlg ek_alg = combo >> 4, ak_alg = combo & 0xf;
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) ek_pub = NULL, ek_cert = NULL, ak_pub = NULL;
    g_autoptr(GBytes) ak_name = NULL, secret = NULL, blob = NULL, enc = NULL;
    g_autoptr(GBytes) got = NULL, bad_name = NULL, blob2 = NULL, enc2 = NULL;
    guint8 raw[32], other[34];

    if (!need_tools("tpm2_makecredential")) {
        return;
    }
    tpm = open_tpm();
    g_assert_true(tvd_agent_tpm_get_ek(tpm, ek_alg, &ek_pub, &ek_cert,
                                       &error));
    g_assert_no_error(error);
    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, ak_alg, &ak_pub, &ak_name,
                                          &error));
    g_assert_no_error(error);
    g_assert_true(RAND_bytes(raw, sizeof(raw)) == 1);
    secret = g_bytes_new(raw, sizeof(raw));
    g_assert_true(tpm_test_makecredential(tpm_test_swtpm_dir(swtpm), ek_pub,
                                          ak_name, secret, &blob, &enc,
                                          &error));
    g_assert_no_error(error);
    got = tvd_agent_tpm_activate_credential(tpm, ek_alg, ak_alg, blob, enc,
                                            &error);
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(got, secret));
    tpm_test_assert_clean(tcti);

    memcpy(other, g_bytes_get_data(ak_name, NULL), sizeof(other));
    other[2] ^= 0x80;
    bad_name = g_bytes_new(other, sizeof(other));
    g_assert_true(tpm_test_makecredential(tpm_test_swtpm_dir(swtpm), ek_pub,
                                          bad_name, secret, &blob2, &enc2,
                                          &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, g_bytes_unref);
    got = tvd_agent_tpm_activate_credential(tpm, ek_alg, ak_alg, blob2, enc2,
                                            &error);
    g_assert_null(got);
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED);
    g_test_message("wrong AK name: %s", error->message);
    tpm_test_assert_clean(tcti);
}

static char *
hex(const guint8 *d, gsize n)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < n; i++) {
        g_string_append_printf(s, "%02x", d[i]);
    }
    return g_string_free(s, FALSE);
}

static gboolean
write_file(const char *dir, const char *name, GBytes *b, char **path)
{
    *path = g_build_filename(dir, name, NULL);
    return g_file_set_contents(*path, g_bytes_get_data(b, NULL),
                               (gssize)g_bytes_get_size(b), NULL);
}

static void
test_quote_checkquote(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    const char *dir;
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) ak_pub = NULL, ak_name = NULL;
    g_auto(TvdAgentTpmQuote) q = { 0 };
    g_autofree char *pub_path = NULL, *msg_path = NULL, *sig_path = NULL;
    g_autofree char *pcr_path = NULL, *nonce_hex = NULL, *other_hex = NULL;
    guint8 nonce[32], digest[32];
    /* PCRs 0, 1, 2, 16 and 23 of the SHA-256 bank */
    const guint32 mask = 0x00810007;

    if (!need_tools("tpm2_checkquote")) {
        return;
    }
    dir = tpm_test_swtpm_dir(swtpm);
    tpm = open_tpm();
    memset(digest, 0x42 + alg, sizeof(digest));
    g_assert_true(tvd_agent_tpm_pcr_extend(tpm, 16, digest, 32, &error));
    g_assert_no_error(error);
    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &ak_pub, &ak_name,
                                          &error));
    g_assert_no_error(error);
    g_assert_true(RAND_bytes(nonce, sizeof(nonce)) == 1);
    g_assert_true(tvd_agent_tpm_quote(tpm, alg, mask, nonce, sizeof(nonce),
                                      &q, &error));
    g_assert_no_error(error);
    tpm_test_assert_clean(tcti);

    /* OpenSSL on its own */
    g_assert_true(tpm_test_verify_signature(ak_pub, q.attest, q.signature,
                                            &error));
    g_assert_no_error(error);

    /* tpm2_checkquote: signature, nonce and PCR digest against the values */
    g_assert_true(write_file(dir, "ak.pub", ak_pub, &pub_path));
    g_assert_true(write_file(dir, "quote.msg", q.attest, &msg_path));
    g_assert_true(write_file(dir, "quote.sig", q.signature, &sig_path));
    g_assert_true(write_file(dir, "quote.pcrs", q.pcr_values, &pcr_path));
    nonce_hex = hex(nonce, sizeof(nonce));
    {
        const char *argv[] = {
            "tpm2_checkquote", "-u", pub_path, "-m", msg_path, "-s", sig_path,
            "-f", pcr_path, "-l", "sha256:0,1,2,16,23", "-g", "sha256",
            "-q", nonce_hex, NULL,
        };

        g_assert_true(tpm_test_run(argv, &error));
        g_assert_no_error(error);
    }
    /* ... and it does reject another nonce. */
    nonce[0] ^= 1;
    other_hex = hex(nonce, sizeof(nonce));
    {
        const char *argv[] = {
            "tpm2_checkquote", "-u", pub_path, "-m", msg_path, "-s", sig_path,
            "-f", pcr_path, "-l", "sha256:0,1,2,16,23", "-g", "sha256",
            "-q", other_hex, NULL,
        };

        g_assert_false(tpm_test_run(argv, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
    }
}

/* swtpm restarted on the same state: the AKs are still there. */
static void
test_ak_persists(void)
{
    g_autoptr(GError) error = NULL;
    GBytes *names[3] = { NULL };

    if (!need_swtpm()) {
        return;
    }
    {
        g_autoptr(TvdAgentTpm) tpm = open_tpm();

        for (int alg = 1; alg <= 2; alg++) {
            g_autoptr(GBytes) pub = NULL;

            g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &pub, &names[alg],
                                                  &error));
            g_assert_no_error(error);
        }
    }
    disconnect_tcti();
    tpm_test_swtpm_stop(swtpm);
    g_assert_true(tpm_test_swtpm_start(swtpm, &error));
    g_assert_no_error(error);
    connect_tcti();
    {
        g_autoptr(TvdAgentTpm) tpm = open_tpm();

        for (int alg = 1; alg <= 2; alg++) {
            g_autoptr(GBytes) pub = NULL, name = NULL;

            g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &pub, &name,
                                                  &error));
            g_assert_no_error(error);
            g_assert_true(g_bytes_equal(name, names[alg]));
            g_bytes_unref(names[alg]);
        }
    }
    tpm_test_assert_clean(tcti);
}

/*
 * Without the persistent EKs the templates must produce the very keys
 * swtpm_setup certified (RSA L-1, ECC P-384 H-3), and activation must
 * still work with the transient EK.
 */
static void
test_ek_from_template(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) pub = NULL, cert = NULL;

    if (!need_swtpm()) {
        return;
    }
    g_assert_nonnull(ek_pubs[alg]);
    g_assert_true(tpm_test_evict(tcti, alg == TVD_AGENT_TPM_ALG_RSA ?
                                 TVD_AGENT_TPM_EK_HANDLE_RSA :
                                 TVD_AGENT_TPM_EK_HANDLE_ECC, &error));
    g_assert_no_error(error);
    tpm = open_tpm();
    g_assert_true(tvd_agent_tpm_get_ek(tpm, alg, &pub, &cert, &error));
    g_assert_no_error(error);
    g_assert_nonnull(cert);
    g_assert_true(g_bytes_equal(pub, ek_pubs[alg]));
    assert_cert_certifies(cert, pub, alg == TVD_AGENT_TPM_ALG_RSA ?
                          EVP_PKEY_RSA : EVP_PKEY_EC);
    tpm_test_assert_clean(tcti);
    /* Activation against the transient EK (policy session for RSA). */
    test_activate(GUINT_TO_POINTER((guint)alg << 4 | (guint)alg));
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    /* ESYS logs every TPM error to stderr; the tests provoke many. */
    g_setenv("TSS2_LOG", "all+none", FALSE);
    swtpm = tpm_test_swtpm_new(&skip_reason, &error);
    if (swtpm && !tpm_test_swtpm_start(swtpm, &error)) {
        g_clear_pointer(&swtpm, tpm_test_swtpm_free);
    }
    if (!swtpm && !skip_reason) {
        setup_error = g_strdup(error ? error->message : "unknown error");
    }
    if (swtpm) {
        connect_tcti();
    }

    g_test_add_func("/agent-tpm/swtpm/open-by-tcti-string",
                    test_open_by_string);
    g_test_add_data_func("/agent-tpm/swtpm/ek-cert/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA), test_ek_cert);
    g_test_add_data_func("/agent-tpm/swtpm/ek-cert/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC), test_ek_cert);
    g_test_add_data_func("/agent-tpm/swtpm/activate/rsa-ek-rsa-ak",
                         GUINT_TO_POINTER(0x11), test_activate);
    g_test_add_data_func("/agent-tpm/swtpm/activate/ecc-ek-ecc-ak",
                         GUINT_TO_POINTER(0x22), test_activate);
    g_test_add_data_func("/agent-tpm/swtpm/activate/ecc-ek-rsa-ak",
                         GUINT_TO_POINTER(0x21), test_activate);
    g_test_add_data_func("/agent-tpm/swtpm/quote/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA),
                         test_quote_checkquote);
    g_test_add_data_func("/agent-tpm/swtpm/quote/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC),
                         test_quote_checkquote);
    g_test_add_func("/agent-tpm/swtpm/ak/persists-restart", test_ak_persists);
    g_test_add_data_func("/agent-tpm/swtpm/ek-template/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA),
                         test_ek_from_template);
    g_test_add_data_func("/agent-tpm/swtpm/ek-template/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC),
                         test_ek_from_template);

    ret = g_test_run();

    disconnect_tcti();
    tpm_test_swtpm_free(swtpm);
    for (guint i = 0; i < G_N_ELEMENTS(ek_pubs); i++) {
        g_clear_pointer(&ek_pubs[i], g_bytes_unref);
    }
    g_free(setup_error);
    return ret;
}
