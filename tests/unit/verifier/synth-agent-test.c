/*
 * The software agent of the test kit (synth-agent.h) against the
 * verifier: its EK and certificate pass the supervisor's EK checks, its
 * ActivateCredential recovers what tvd_make_credential() wrapped and
 * rejects tampered blobs, its quotes verify with tvd_quote_verify() and
 * its evidence passes whole rounds of tvd_round_verify() with a policy.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>
#include <openssl/pem.h>

#include "round.h"
#include "synth-agent.h"

#define OWNER       "vm-soft"
#define AGENT_PCR   13u
#define AGENT_PATH  "/usr/bin/tvd-agent"

/* Key generation is the slow part: one CA and one agent for most tests. */
static EVP_PKEY *ca_key;
static X509 *ca_cert;
static GBytes *ca_pem;

static GBytes *pem_of(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data = NULL;
    long len;
    GBytes *out;

    g_assert_true(PEM_write_bio_X509(b, x));
    len = BIO_get_mem_data(b, &data);
    out = g_bytes_new(data, (gsize)len);
    BIO_free(b);
    return out;
}

static TvdSynthAgent *agent_new(void)
{
    g_autoptr(GError) error = NULL;
    TvdSynthAgent *a = tvd_synth_agent_new(ca_key, ca_cert, AGENT_PCR,
                                           &error);

    g_assert_no_error(error);
    g_assert_nonnull(a);
    return a;
}

static TvdTpmPublic *parse(GBytes *b)
{
    g_autoptr(GError) error = NULL;
    TvdTpmPublic *p = tvd_tpm_public_parse(g_bytes_get_data(b, NULL),
                                           g_bytes_get_size(b), &error);

    g_assert_no_error(error);
    return p;
}

static void test_ek(void)
{
    g_autoptr(TvdSynthAgent) a = agent_new();
    g_autoptr(TvdTpmPublic) ek = parse(tvd_synth_agent_ek_public(a));
    g_autoptr(TvdTpmPublic) ak = parse(tvd_synth_agent_ak_public(a));
    g_autoptr(GError) error = NULL;
    EVP_PKEY *other_key = NULL;
    X509 *other_cert = NULL;
    g_autoptr(GBytes) other_pem = NULL;
    GBytes *cert = tvd_synth_agent_ek_cert(a);
    const TPMT_PUBLIC *area = tvd_tpm_public_area(ek);
    gsize name_len;
    const guint8 *name = tvd_tpm_public_name(ak, &name_len);

    /* The EK template as a TPM makes it. */
    g_assert_cmphex(area->objectAttributes, ==, 0x000300b2);
    g_assert_cmpuint(area->authPolicy.size, ==, 32);
    g_assert_cmpuint(area->parameters.rsaDetail.keyBits, ==, 2048);
    g_assert_true(tvd_tpm_public_check_ek(ek, &error));
    g_assert_no_error(error);
    g_assert_true(tvd_tpm_public_check_ak(ak, &error));
    g_assert_no_error(error);
    g_assert_true(tvd_tpm_public_check_name(
        ak, g_bytes_get_data(tvd_synth_agent_ak_name(a), NULL),
        g_bytes_get_size(tvd_synth_agent_ak_name(a)), &error));
    g_assert_cmpmem(name, name_len,
                    g_bytes_get_data(tvd_synth_agent_ak_name(a), NULL),
                    g_bytes_get_size(tvd_synth_agent_ak_name(a)));

    /* The certificate chains to its CA and holds the EK... */
    g_assert_true(tvd_ek_cert_verify(g_bytes_get_data(cert, NULL),
                                     g_bytes_get_size(cert),
                                     g_bytes_get_data(ca_pem, NULL),
                                     g_bytes_get_size(ca_pem),
                                     tvd_tpm_public_pkey(ek), &error));
    g_assert_no_error(error);
    /* ...not the AK's key, and not to another CA. */
    g_assert_false(tvd_ek_cert_verify(g_bytes_get_data(cert, NULL),
                                      g_bytes_get_size(cert),
                                      g_bytes_get_data(ca_pem, NULL),
                                      g_bytes_get_size(ca_pem),
                                      tvd_tpm_public_pkey(ak), &error));
    g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_EK_KEY_MISMATCH);
    g_clear_error(&error);
    g_assert_true(tvd_synth_ca_new("another CA", &other_key, &other_cert,
                                   &error));
    other_pem = pem_of(other_cert);
    g_assert_false(tvd_ek_cert_verify(g_bytes_get_data(cert, NULL),
                                      g_bytes_get_size(cert),
                                      g_bytes_get_data(other_pem, NULL),
                                      g_bytes_get_size(other_pem),
                                      tvd_tpm_public_pkey(ek), &error));
    g_assert_error(error, TVD_VERIFY_ERROR,
                   TVD_VERIFY_ERROR_EK_CERT_UNTRUSTED);
    EVP_PKEY_free(other_key);
    X509_free(other_cert);
}

/* MakeCredential for @a's EK and @name; the blobs out. */
static void make(TvdSynthAgent *a, GBytes *name, const guint8 *secret,
                 gsize len, GBytes **blob, GBytes **enc)
{
    g_autoptr(TvdTpmPublic) ek = parse(tvd_synth_agent_ek_public(a));
    g_autoptr(GError) error = NULL;

    g_assert_true(tvd_make_credential(ek, g_bytes_get_data(name, NULL),
                                      g_bytes_get_size(name), secret, len,
                                      blob, enc, &error));
    g_assert_no_error(error);
}

static GBytes *flip(GBytes *b, gsize at)
{
    gsize len;
    guint8 *d = g_memdup2(g_bytes_get_data(b, &len), g_bytes_get_size(b));

    g_assert_cmpuint(at, <, len);
    d[at] ^= 0x01;
    return g_bytes_new_take(d, len);
}

static void test_activate(void)
{
    g_autoptr(TvdSynthAgent) a = agent_new();
    g_autoptr(TvdSynthAgent) b = agent_new();
    g_autoptr(GError) error = NULL;
    guint8 secret[32];
    gsize len;

    for (guint i = 0; i < sizeof(secret); i++) {
        secret[i] = (guint8)(i * 7 + 1);
    }
    /* Round trips, for each size a credential may have. */
    for (gsize n = 1; n <= sizeof(secret); n += 15) {
        g_autoptr(GBytes) blob = NULL;
        g_autoptr(GBytes) enc = NULL;
        g_autoptr(GBytes) got = NULL;

        make(a, tvd_synth_agent_ak_name(a), secret, n, &blob, &enc);
        got = tvd_synth_agent_activate(a, blob, enc, &error);
        g_assert_no_error(error);
        g_assert_cmpmem(g_bytes_get_data(got, NULL), g_bytes_get_size(got),
                        secret, n);
    }
    {
        g_autoptr(GBytes) blob = NULL;
        g_autoptr(GBytes) enc = NULL;
        g_autoptr(GBytes) bad = NULL;

        make(a, tvd_synth_agent_ak_name(a), secret, sizeof(secret), &blob,
             &enc);
        g_bytes_get_data(blob, &len);
        /* A bit of encIdentity, of the HMAC: TPM_RC_INTEGRITY. */
        bad = flip(blob, len - 1);
        g_assert_null(tvd_synth_agent_activate(a, bad, enc, &error));
        g_assert_error(error, TVD_VERIFY_ERROR,
                       TVD_VERIFY_ERROR_BAD_SIGNATURE);
        g_clear_error(&error);
        g_clear_pointer(&bad, g_bytes_unref);
        bad = flip(blob, 4);
        g_assert_null(tvd_synth_agent_activate(a, bad, enc, &error));
        g_assert_error(error, TVD_VERIFY_ERROR,
                       TVD_VERIFY_ERROR_BAD_SIGNATURE);
        g_clear_error(&error);
        g_clear_pointer(&bad, g_bytes_unref);
        /* The encrypted seed: OAEP refuses it. */
        bad = flip(enc, 40);
        g_assert_null(tvd_synth_agent_activate(a, blob, bad, &error));
        g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED);
        g_clear_error(&error);
        g_clear_pointer(&bad, g_bytes_unref);
        /* A truncated blob. */
        bad = g_bytes_new_from_bytes(blob, 0, len - 3);
        g_assert_null(tvd_synth_agent_activate(a, bad, enc, &error));
        g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED);
        g_clear_error(&error);
        /* Another TPM's EK cannot open it. */
        g_assert_null(tvd_synth_agent_activate(b, blob, enc, &error));
        g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED);
        g_clear_error(&error);
    }
    {
        /* Made for another AK (b's name) on a's EK: a's AK cannot bind. */
        g_autoptr(GBytes) blob = NULL;
        g_autoptr(GBytes) enc = NULL;

        make(a, tvd_synth_agent_ak_name(b), secret, sizeof(secret), &blob,
             &enc);
        g_assert_null(tvd_synth_agent_activate(a, blob, enc, &error));
        g_assert_error(error, TVD_VERIFY_ERROR,
                       TVD_VERIFY_ERROR_BAD_SIGNATURE);
    }
}

static void test_quote(void)
{
    g_autoptr(TvdSynthAgent) a = agent_new();
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdAkKey) ak = NULL;
    g_autoptr(GBytes) attest = NULL;
    g_autoptr(GBytes) sig = NULL;
    g_autoptr(GBytes) values = NULL;
    GBytes *pub = tvd_synth_agent_ak_public(a);
    guint8 nonce[TVD_NONCE_LEN];
    guint8 other[TVD_NONCE_LEN];
    guint8 digest[32];
    guint32 select = (1u << 0) | (1u << AGENT_PCR) | (1u << 16);
    TvdQuoteExpect expect = {
        .nonce = nonce, .nonce_len = sizeof(nonce),
        .pcr_bank = TPM2_ALG_SHA256, .pcr_select = select,
    };
    TvdQuoteInfo info;

    memset(nonce, 0x5a, sizeof(nonce));
    memset(other, 0xa5, sizeof(other));
    memset(digest, 0x33, sizeof(digest));
    tvd_synth_agent_measure(a, AGENT_PATH, digest);
    g_assert_cmpuint(tvd_synth_agent_list(a)->len, ==, 1);
    tvd_synth_agent_quote(a, nonce, sizeof(nonce), select, &attest, &sig,
                          &values);
    g_assert_cmpuint(g_bytes_get_size(values), ==, 3 * 32);
    g_assert_cmpmem((const guint8 *)g_bytes_get_data(values, NULL) + 32, 32,
                    tvd_synth_agent_pcr(a, AGENT_PCR), 32);
    ak = tvd_ak_key_new_from_public(g_bytes_get_data(pub, NULL),
                                    g_bytes_get_size(pub), &error);
    g_assert_no_error(error);
    expect.pcr_values = g_bytes_get_data(values, NULL);
    expect.pcr_values_len = g_bytes_get_size(values);
    g_assert_true(tvd_quote_verify(ak, g_bytes_get_data(attest, NULL),
                                   g_bytes_get_size(attest),
                                   g_bytes_get_data(sig, NULL),
                                   g_bytes_get_size(sig), &expect, &info,
                                   &error));
    g_assert_no_error(error);
    g_assert_cmpuint(info.sig_alg, ==, TPM2_ALG_RSASSA);
    /* Another nonce, another PCR value: refused. */
    expect.nonce = other;
    g_assert_false(tvd_quote_verify(ak, g_bytes_get_data(attest, NULL),
                                    g_bytes_get_size(attest),
                                    g_bytes_get_data(sig, NULL),
                                    g_bytes_get_size(sig), &expect, NULL,
                                    &error));
    g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_MISMATCH);
    g_clear_error(&error);
    expect.nonce = nonce;
    tvd_synth_agent_measure(a, "/bin/later", digest);
    g_clear_pointer(&values, g_bytes_unref);
    {
        g_autoptr(GBytes) a2 = NULL;
        g_autoptr(GBytes) s2 = NULL;

        /* Values now, quote then: the digest does not match. */
        tvd_synth_agent_quote(a, nonce, sizeof(nonce), select, &a2, &s2,
                              &values);
    }
    expect.pcr_values = g_bytes_get_data(values, NULL);
    g_assert_false(tvd_quote_verify(ak, g_bytes_get_data(attest, NULL),
                                    g_bytes_get_size(attest),
                                    g_bytes_get_data(sig, NULL),
                                    g_bytes_get_size(sig), &expect, NULL,
                                    &error));
    g_assert_error(error, TVD_VERIFY_ERROR,
                   TVD_VERIFY_ERROR_PCR_DIGEST_MISMATCH);
}

static TvdPolicy *policy_new(void)
{
    guint8 digest[32];
    g_autoptr(GError) error = NULL;
    g_autofree char *hex = NULL;
    g_autofree char *text = NULL;
    TvdPolicy *p;

    memset(digest, 0x44, sizeof(digest));
    hex = g_malloc(65);
    for (guint i = 0; i < 32; i++) {
        g_snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    text = g_strdup_printf(
        "{\"tvd_policy\": 1, \"serial\": 1,"
        " \"domain\": {\"name\": \"soft\", \"id\": 7},"
        " \"membership\": {\"reference_digests\": [{\"path\": \"%s\","
        "   \"sha256\": \"%s\", \"required\": true}], \"unlisted\": \"deny\"},"
        " \"attestation\": {\"measurement_pcr\": %u},"
        " \"network\": {\"subnet\": \"10.7.0.0/24\", \"roles\": [\"a\"]}}",
        AGENT_PATH, hex, AGENT_PCR);
    p = tvd_policy_parse(text, strlen(text), "soft.json", NULL, &error);
    g_assert_no_error(error);
    return p;
}

/* One round: request, the agent's evidence (through its encoded message),
 * the verdict. */
static gboolean round_once(TvdSynthAgent *a, TvdRoundState *state,
                           TvdPolicy *policy, TvdAkKey *ak,
                           TvdNonceStore *nonces, TvdRoundResult *res)
{
    g_autoptr(GError) error = NULL;
    TvdRoundRequest req;
    TvdMsg msg = { .type = TVD_MSG_ATTEST_REQUEST };
    TvdMsg ev;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) answer = NULL;
    gboolean ok;

    g_assert_true(tvd_round_request_new(&req, state, policy,
                                        TVD_CAP_AGENT_LIST |
                                        TVD_CAP_PCR_SHA256, nonces, OWNER,
                                        &error));
    g_assert_no_error(error);
    tvd_round_request_to_msg(&req, &msg.u.attest_request);
    request = tvd_msg_attest_request_encode(&msg.u.attest_request, &error);
    g_assert_no_error(error);
    answer = tvd_synth_agent_answer_request(a, request, &error);
    g_assert_no_error(error);
    g_assert_true(tvd_msg_decode(answer, &ev, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(ev.type, ==, TVD_MSG_EVIDENCE);
    {
        TvdRoundInput in = {
            .policy = policy, .ak = ak, .agent_pcr = AGENT_PCR,
            .agent_version = TVD_AGENT_VERSION(0, 1, 0), .nonces = nonces,
            .owner = OWNER, .evidence = &ev.u.evidence,
        };

        ok = tvd_round_verify(state, &req, &in, res);
    }
    tvd_msg_clear(&ev);
    return ok;
}

static void test_round(void)
{
    g_autoptr(TvdSynthAgent) a = agent_new();
    g_autoptr(TvdPolicy) policy = policy_new();
    g_autoptr(TvdRoundState) state = tvd_round_state_new();
    g_autoptr(TvdNonceStore) nonces = tvd_nonce_store_new(16,
                                                          60 * G_USEC_PER_SEC);
    g_autoptr(TvdAkKey) ak = NULL;
    g_autoptr(GError) error = NULL;
    GBytes *pub = tvd_synth_agent_ak_public(a);
    TvdRoundResult res;
    guint8 digest[32];

    ak = tvd_ak_key_new_from_public(g_bytes_get_data(pub, NULL),
                                    g_bytes_get_size(pub), &error);
    g_assert_no_error(error);
    memset(digest, 0x44, sizeof(digest));
    tvd_synth_agent_measure(a, AGENT_PATH, digest);

    g_assert_true(round_once(a, state, policy, ak, nonces, &res));
    g_assert_cmpuint(res.verdict.state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpuint(res.verdict.cause, ==, TVD_CAUSE_ATTESTED);
    g_assert_cmpuint(res.entries_accepted[TVD_LOG_AGENT_LIST], ==, 1);
    g_assert_cmpuint(tvd_round_state_log_offset(state, TVD_LOG_AGENT_LIST),
                     ==, 1);
    /* The next round: nothing new in the list, the same TPM boot. */
    g_assert_true(round_once(a, state, policy, ak, nonces, &res));
    g_assert_cmpuint(res.entries_accepted[TVD_LOG_AGENT_LIST], ==, 0);
    g_assert_cmpint(res.continuity, ==, TVD_TPM_SAME_BOOT);
    /* Something unlisted runs: the policy says no. */
    memset(digest, 0x66, sizeof(digest));
    tvd_synth_agent_measure(a, "/usr/bin/miner", digest);
    g_assert_false(round_once(a, state, policy, ak, nonces, &res));
    g_assert_cmpint(res.failed_step, ==, TVD_ROUND_STEP_POLICY);
    g_assert_true(res.evidence_valid);
    g_assert_cmpuint(res.verdict.state, !=, TVD_STATE_ADMITTED);
}

/* The agent's side of admission through encoded messages. */
static void test_messages(void)
{
    g_autoptr(TvdSynthAgent) a = agent_new();
    g_autoptr(GBytes) hello = tvd_synth_agent_hello(a);
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GBytes) enc = NULL;
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;
    g_autoptr(GError) error = NULL;
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_CHALLENGE };
    TvdMsg in;
    guint8 secret[32];

    g_assert_true(tvd_msg_decode(hello, &in, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(in.type, ==, TVD_MSG_AGENT_HELLO);
    g_assert_true(g_bytes_equal(in.u.agent_hello.ek_cert,
                                tvd_synth_agent_ek_cert(a)));
    g_assert_cmpuint(in.u.agent_hello.agent_pcr, ==, AGENT_PCR);
    tvd_msg_clear(&in);

    memset(secret, 0x77, sizeof(secret));
    make(a, tvd_synth_agent_ak_name(a), secret, sizeof(secret), &blob, &enc);
    msg.u.credential_challenge.credential_blob = blob;
    msg.u.credential_challenge.encrypted_secret = enc;
    challenge = tvd_msg_encode(&msg, &error);
    g_assert_no_error(error);
    response = tvd_synth_agent_answer_challenge(a, challenge, &error);
    g_assert_no_error(error);
    g_assert_true(tvd_msg_decode(response, &in, &error));
    g_assert_cmpuint(in.type, ==, TVD_MSG_CREDENTIAL_RESPONSE);
    g_assert_cmpmem(g_bytes_get_data(in.u.credential_response.secret, NULL),
                    g_bytes_get_size(in.u.credential_response.secret),
                    secret, sizeof(secret));
    tvd_msg_clear(&in);
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int rc;

    g_test_init(&argc, &argv, NULL);
    if (!tvd_synth_ca_new("tvd test vTPM CA", &ca_key, &ca_cert, &error)) {
        g_printerr("%s\n", error->message);
        return 1;
    }
    ca_pem = pem_of(ca_cert);
    g_test_add_func("/synth-agent/ek", test_ek);
    g_test_add_func("/synth-agent/activate", test_activate);
    g_test_add_func("/synth-agent/quote", test_quote);
    g_test_add_func("/synth-agent/round", test_round);
    g_test_add_func("/synth-agent/messages", test_messages);
    rc = g_test_run();
    EVP_PKEY_free(ca_key);
    X509_free(ca_cert);
    g_bytes_unref(ca_pem);
    return rc;
}
