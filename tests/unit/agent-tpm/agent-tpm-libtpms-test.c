/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's TPM layer against an in-process libtpms TPM (no processes,
 * no files). libtpms is one TPM per process: the tests share it and run in
 * the order they are added; each checks that nothing stayed loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_mu.h>

#include "agent-tpm.h"
#include "tcti-libtpms.h"
#include "tpm-test-util.h"

static TSS2_TCTI_CONTEXT *tcti;
static char *tmpdir;

static TvdAgentTpm *
open_tpm(const TvdAgentTpmConfig *config)
{
    g_autoptr(GError) error = NULL;
    TvdAgentTpm *tpm = tvd_agent_tpm_new_with_tcti(config, tcti, &error);

    g_assert_no_error(error);
    g_assert_nonnull(tpm);
    return tpm;
}

static void
parse_public(GBytes *b, TPM2B_PUBLIC *pub)
{
    size_t off = 0;

    memset(pub, 0, sizeof(*pub));
    g_assert_cmpint(Tss2_MU_TPM2B_PUBLIC_Unmarshal(g_bytes_get_data(b, NULL),
                                                   g_bytes_get_size(b), &off,
                                                   pub), ==, TSS2_RC_SUCCESS);
    g_assert_cmpuint(off, ==, g_bytes_get_size(b));
}

/* ---- EK ---------------------------------------------------------------- */

static void
test_ek(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) pub1 = NULL, pub2 = NULL, cert1 = NULL, cert2 = NULL;
    TPM2B_PUBLIC pub;
    const TPMT_PUBLIC *p = &pub.publicArea;

    g_assert_true(tvd_agent_tpm_get_ek(tpm, alg, &pub1, &cert1, &error));
    g_assert_no_error(error);
    g_assert_null(cert1); /* a bare libtpms TPM has no EK certificate */
    parse_public(pub1, &pub);
    g_assert_true(p->objectAttributes & TPMA_OBJECT_RESTRICTED);
    g_assert_true(p->objectAttributes & TPMA_OBJECT_DECRYPT);
    g_assert_true(p->objectAttributes & TPMA_OBJECT_FIXEDTPM);
    g_assert_true(p->objectAttributes & TPMA_OBJECT_ADMINWITHPOLICY);
    if (alg == TVD_AGENT_TPM_ALG_RSA) {
        g_assert_cmpuint(p->type, ==, TPM2_ALG_RSA);
        g_assert_cmpuint(p->nameAlg, ==, TPM2_ALG_SHA256);
        g_assert_cmpuint(p->parameters.rsaDetail.keyBits, ==, 2048);
        g_assert_cmpuint(p->unique.rsa.size, ==, 256);
        g_assert_false(p->objectAttributes & TPMA_OBJECT_USERWITHAUTH);
    } else {
        g_assert_cmpuint(p->type, ==, TPM2_ALG_ECC);
        g_assert_cmpuint(p->nameAlg, ==, TPM2_ALG_SHA384);
        g_assert_cmpuint(p->parameters.eccDetail.curveID, ==,
                         TPM2_ECC_NIST_P384);
        g_assert_cmpuint(p->unique.ecc.x.size, ==, 48);
        g_assert_cmpuint(p->unique.ecc.y.size, ==, 48);
    }
    /* OpenSSL can use it. */
    EVP_PKEY *pkey = tpm_test_pkey_from_public(pub1, &error);
    g_assert_no_error(error);
    g_assert_nonnull(pkey);
    EVP_PKEY_free(pkey);

    /* The primary is derived from the seed: the same key again. */
    g_assert_true(tvd_agent_tpm_get_ek(tpm, alg, &pub2, &cert2, &error));
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(pub1, pub2));
    tpm_test_assert_clean(tcti);
}

/* ---- AK ---------------------------------------------------------------- */

static GBytes *ak_names[3];

static void
test_ak(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) pub = NULL, name = NULL, pub2 = NULL, name2 = NULL;
    g_autoptr(GBytes) computed = NULL;
    TPM2B_PUBLIC p;
    guint before;

    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &pub, &name, &error));
    g_assert_no_error(error);
    parse_public(pub, &p);
    g_assert_cmpuint(p.publicArea.type, ==, alg == TVD_AGENT_TPM_ALG_RSA ?
                     TPM2_ALG_RSA : TPM2_ALG_ECC);
    g_assert_true(p.publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED);
    g_assert_true(p.publicArea.objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT);
    g_assert_false(p.publicArea.objectAttributes & TPMA_OBJECT_DECRYPT);
    if (alg == TVD_AGENT_TPM_ALG_ECC) {
        g_assert_cmpuint(p.publicArea.parameters.eccDetail.curveID, ==,
                         TPM2_ECC_NIST_P256);
    }
    /* The name is nameAlg || SHA-256(TPMT_PUBLIC). */
    computed = tpm_test_name_of_public(pub, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(name), ==, 34);
    g_assert_true(g_bytes_equal(name, computed));

    /* Created once: the second call only reads it. */
    before = tvd_tcti_libtpms_commands(tcti);
    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &pub2, &name2, &error));
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(name, name2));
    g_assert_cmpuint(tvd_tcti_libtpms_commands(tcti) - before, <=, 4);
    ak_names[alg] = g_bytes_ref(name);
    tpm_test_assert_clean(tcti);
}

/* A power cycle keeps the AKs (they are persistent, in NV). */
static void
test_ak_power_cycle(void)
{
    g_autoptr(GError) error = NULL;

    tvd_tcti_libtpms_free(tcti);
    tcti = tvd_tcti_libtpms_new(FALSE, &error);
    g_assert_no_error(error);

    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    for (int alg = TVD_AGENT_TPM_ALG_RSA; alg <= TVD_AGENT_TPM_ALG_ECC; alg++) {
        g_autoptr(GBytes) pub = NULL, name = NULL;

        g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &pub, &name, &error));
        g_assert_no_error(error);
        g_assert_nonnull(ak_names[alg]);
        g_assert_true(g_bytes_equal(name, ak_names[alg]));
    }
    tpm_test_assert_clean(tcti);
}

/* An object at the AK handle that is not our AK is reported, never evicted. */
static void
test_ak_foreign(void)
{
    /* The RSA AK's handle pointed at the ECC AK. */
    TvdAgentTpmConfig config = {
        .ak_handle_rsa = TVD_AGENT_TPM_DEFAULT_AK_HANDLE_ECC,
        .ak_handle_ecc = 0x81018002,
    };
    g_autoptr(TvdAgentTpm) tpm = open_tpm(&config);
    g_autoptr(TvdAgentTpm) plain = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) pub = NULL, name = NULL;

    g_assert_false(tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA, &pub,
                                           &name, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH);
    g_assert_null(pub);
    g_clear_error(&error);
    g_assert_true(tvd_agent_tpm_ensure_ak(plain, TVD_AGENT_TPM_ALG_ECC, &pub,
                                          &name, &error));
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(name, ak_names[TVD_AGENT_TPM_ALG_ECC]));
    tpm_test_assert_clean(tcti);
}

static void
test_config_invalid(void)
{
    static const TvdAgentTpmConfig bad[] = {
        { .ak_handle_rsa = 0x81800000 },              /* platform range */
        { .ak_handle_ecc = 0x01c00002 },              /* an NV index */
        { .ak_handle_rsa = 0x81018005, .ak_handle_ecc = 0x81018005 },
    };

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        TvdAgentTpm *tpm = tvd_agent_tpm_new_with_tcti(&bad[i], tcti, &error);

        g_assert_null(tpm);
        g_assert_error(error, TVD_AGENT_TPM_ERROR,
                       TVD_AGENT_TPM_ERROR_INVALID);
    }
}

static void
test_tcti_invalid(void)
{
    static const char *const confs[] = {
        "no-such-tcti-xyz", "device:/nonexistent/tpmrm0",
    };

    for (guint i = 0; i < G_N_ELEMENTS(confs); i++) {
        TvdAgentTpmConfig config = { .tcti = confs[i] };
        g_autoptr(GError) error = NULL;
        TvdAgentTpm *tpm = tvd_agent_tpm_new(&config, &error);

        g_assert_null(tpm);
        g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_TCTI);
        g_assert_nonnull(strstr(error->message, confs[i]));
    }
}

/*
 * The default TCTI kind, "device:<path>", end to end: a pseudo-terminal in
 * raw mode stands in for /dev/tpmrm0 and a thread relays each command from
 * its master side to the libtpms TPM.
 */
typedef struct {
    int master;
    gint stop;
    guint relayed;
} PtyRelay;

static gboolean
read_full(int fd, guint8 *buf, size_t len, gint *stop)
{
    size_t got = 0;

    while (got < len) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        ssize_t n;

        if (g_atomic_int_get(stop)) {
            return FALSE;
        }
        if (poll(&pfd, 1, 50) <= 0) {
            continue;
        }
        n = read(fd, buf + got, len - got);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
            continue;
        }
        if (n <= 0) {
            return FALSE;
        }
        got += (size_t)n;
    }
    return TRUE;
}

static gpointer
pty_relay(gpointer data)
{
    PtyRelay *r = data;
    guint8 cmd[4096], rsp[4096];

    for (;;) {
        size_t rsp_len = sizeof(rsp);
        guint32 size;

        if (!read_full(r->master, cmd, 10, &r->stop)) {
            break;
        }
        size = (guint32)cmd[2] << 24 | (guint32)cmd[3] << 16 |
               (guint32)cmd[4] << 8 | cmd[5];
        if (size < 10 || size > sizeof(cmd) ||
            !read_full(r->master, cmd + 10, size - 10, &r->stop)) {
            break;
        }
        if (Tss2_Tcti_Transmit(tcti, size, cmd) != TSS2_RC_SUCCESS ||
            Tss2_Tcti_Receive(tcti, &rsp_len, rsp, -1) != TSS2_RC_SUCCESS ||
            write(r->master, rsp, rsp_len) != (ssize_t)rsp_len) {
            break;
        }
        r->relayed++;
    }
    return NULL;
}

static void
test_device_tcti(void)
{
    PtyRelay relay = { .master = -1 };
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) values = NULL;
    g_auto(TvdAgentTpmQuote) q = { 0 };
    g_autofree char *conf = NULL;
    struct termios tio;
    GThread *thread;
    guint8 nonce[32] = { 7 };
    struct sigaction ignore = { .sa_handler = SIG_IGN }, old_hup;
    int slave;

    /*
     * The device TCTI opens the tty without O_NOCTTY: in a session leader
     * without a terminal (as under meson test) the pty becomes our
     * controlling terminal, and closing its master sends us SIGHUP.
     */
    g_assert_cmpint(sigaction(SIGHUP, &ignore, &old_hup), ==, 0);
    relay.master = posix_openpt(O_RDWR | O_NOCTTY);
    g_assert_cmpint(relay.master, >=, 0);
    g_assert_cmpint(grantpt(relay.master), ==, 0);
    g_assert_cmpint(unlockpt(relay.master), ==, 0);
    conf = g_strdup_printf("device:%s", ptsname(relay.master));
    /* Raw, no echo; held open so the master never sees a hangup. */
    slave = open(conf + 7, O_RDWR | O_NOCTTY);
    g_assert_cmpint(slave, >=, 0);
    g_assert_cmpint(tcgetattr(slave, &tio), ==, 0);
    cfmakeraw(&tio);
    g_assert_cmpint(tcsetattr(slave, TCSANOW, &tio), ==, 0);

    thread = g_thread_new("pty-tpm", pty_relay, &relay);
    {
        TvdAgentTpmConfig config = { .tcti = conf };
        g_autoptr(TvdAgentTpm) tpm = tvd_agent_tpm_new(&config, &error);

        g_assert_no_error(error);
        g_assert_true(tvd_agent_tpm_pcr_read(tpm, 0xff00ff, &values, NULL,
                                             &error));
        g_assert_no_error(error);
        g_assert_true(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_ECC,
                                          0xff00ff, nonce, sizeof(nonce), &q,
                                          &error));
        g_assert_no_error(error);
        g_assert_true(g_bytes_equal(values, q.pcr_values));
    }
    g_atomic_int_set(&relay.stop, 1);
    g_thread_join(thread);
    g_test_message("%u commands through %s", relay.relayed, conf);
    g_assert_cmpuint(relay.relayed, >=, 4);
    close(slave);
    close(relay.master);
    g_assert_cmpint(sigaction(SIGHUP, &old_hup, NULL), ==, 0);
    tpm_test_assert_clean(tcti);
}

/* ---- PCRs ---------------------------------------------------------------- */

static void
sha256_extend(guint8 pcr[32], const guint8 digest[32])
{
    guint8 buf[64];
    unsigned int len = 0;

    memcpy(buf, pcr, 32);
    memcpy(buf + 32, digest, 32);
    g_assert_true(EVP_Digest(buf, sizeof(buf), pcr, &len, EVP_sha256(),
                             NULL));
    g_assert_cmpuint(len, ==, 32);
}

static void
test_pcr_extend_read(void)
{
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) before = NULL, after = NULL;
    static const guint pcrs[] = { 10, 16, 23 };
    guint8 expected[TVD_AGENT_TPM_NUM_PCRS][32];
    guint32 counter1 = 0, counter2 = 0;
    const guint8 *v;

    /* All 24 PCRs: more than one TPM2_PCR_Read (8 per command). */
    g_assert_true(tvd_agent_tpm_pcr_read(tpm, TVD_AGENT_TPM_PCR_ALL, &before,
                                         &counter1, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(before), ==, 24 * 32);
    memcpy(expected, g_bytes_get_data(before, NULL), sizeof(expected));

    for (guint i = 0; i < G_N_ELEMENTS(pcrs); i++) {
        for (guint round = 0; round < 2; round++) {
            guint8 digest[32];

            memset(digest, (int)(pcrs[i] * 7 + round), sizeof(digest));
            g_assert_true(tvd_agent_tpm_pcr_extend(tpm, pcrs[i], digest,
                                                   sizeof(digest), &error));
            g_assert_no_error(error);
            sha256_extend(expected[pcrs[i]], digest);
        }
    }
    g_assert_true(tvd_agent_tpm_pcr_read(tpm, TVD_AGENT_TPM_PCR_ALL, &after,
                                         &counter2, &error));
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(after, NULL), g_bytes_get_size(after),
                    expected, sizeof(expected));
    g_assert_cmpuint(counter2, >, counter1);

    /* A sparse selection comes back in ascending PCR order. */
    g_clear_pointer(&after, g_bytes_unref);
    g_assert_true(tvd_agent_tpm_pcr_read(tpm, (1u << 23) | (1u << 10), &after,
                                         NULL, &error));
    g_assert_no_error(error);
    v = g_bytes_get_data(after, NULL);
    g_assert_cmpuint(g_bytes_get_size(after), ==, 64);
    g_assert_cmpmem(v, 32, expected[10], 32);
    g_assert_cmpmem(v + 32, 32, expected[23], 32);
    tpm_test_assert_clean(tcti);
}

static void
test_pcr_invalid(void)
{
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    guint8 digest[32] = { 0 };
    GBytes *values = NULL;
    GError *error = NULL;

    g_assert_false(tvd_agent_tpm_pcr_read(tpm, 0, &values, NULL, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_agent_tpm_pcr_read(tpm, 1u << 24, &values, NULL,
                                          &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(values);
    g_assert_false(tvd_agent_tpm_pcr_extend(tpm, 24, digest, 32, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_agent_tpm_pcr_extend(tpm, 16, digest, 20, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
}

/* ---- Quote --------------------------------------------------------------- */

static void
check_quote(TvdAgentTpmAlg alg, const TvdAgentTpmQuote *q, GBytes *ak_pub,
            guint32 mask, const guint8 *nonce, gsize nonce_len)
{
    g_autoptr(GError) error = NULL;
    TPMS_ATTEST a;
    size_t off = 0;
    guint8 md[32];
    unsigned int md_len = 0;

    (void)alg;
    g_assert_cmpuint(q->pcr_mask, ==, mask);
    g_assert_cmpuint(g_bytes_get_size(q->pcr_values), ==,
                     32u * (guint)__builtin_popcount(mask));
    /* Signature by the AK, checked with OpenSSL alone. */
    g_assert_true(tpm_test_verify_signature(ak_pub, q->attest, q->signature,
                                            &error));
    g_assert_no_error(error);
    /* TPMS_ATTEST: a quote with our nonce over our PCR values. */
    memset(&a, 0, sizeof(a));
    g_assert_cmpint(Tss2_MU_TPMS_ATTEST_Unmarshal(
                        g_bytes_get_data(q->attest, NULL),
                        g_bytes_get_size(q->attest), &off, &a), ==,
                    TSS2_RC_SUCCESS);
    g_assert_cmpuint(a.magic, ==, TPM2_GENERATED_VALUE);
    g_assert_cmpuint(a.type, ==, TPM2_ST_ATTEST_QUOTE);
    g_assert_cmpmem(a.extraData.buffer, a.extraData.size, nonce, nonce_len);
    g_assert_true(EVP_Digest(g_bytes_get_data(q->pcr_values, NULL),
                             g_bytes_get_size(q->pcr_values), md, &md_len,
                             EVP_sha256(), NULL));
    g_assert_cmpmem(a.attested.quote.pcrDigest.buffer,
                    a.attested.quote.pcrDigest.size, md, md_len);

    /* A changed byte of TPMS_ATTEST no longer verifies. */
    {
        gsize len = g_bytes_get_size(q->attest);
        g_autofree guint8 *copy = g_memdup2(g_bytes_get_data(q->attest, NULL),
                                            len);
        g_autoptr(GBytes) bad = NULL;

        copy[len - 1] ^= 1;
        bad = g_bytes_new(copy, len);
        g_assert_false(tpm_test_verify_signature(ak_pub, bad, q->signature,
                                                 NULL));
    }
}

static void
test_quote(gconstpointer data)
{
    TvdAgentTpmAlg alg = GPOINTER_TO_INT(data);
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) ak_pub = NULL, ak_name = NULL, values = NULL;
    g_auto(TvdAgentTpmQuote) q = { 0 };
    guint32 mask = 0x0081ffff; /* PCRs 0-15, 23: 17 PCRs */
    guint8 nonce[32];

    g_assert_true(RAND_bytes(nonce, sizeof(nonce)) == 1);
    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, alg, &ak_pub, &ak_name,
                                          &error));
    g_assert_no_error(error);
    g_assert_true(tvd_agent_tpm_quote(tpm, alg, mask, nonce, sizeof(nonce),
                                      &q, &error));
    g_assert_no_error(error);
    check_quote(alg, &q, ak_pub, mask, nonce, sizeof(nonce));
    g_assert_true(tvd_agent_tpm_pcr_read(tpm, mask, &values, NULL, &error));
    g_assert_true(g_bytes_equal(values, q.pcr_values));

    /* The longest nonce TPM2B_DATA holds. */
    guint8 long_nonce[TVD_AGENT_TPM_MAX_NONCE];
    memset(long_nonce, 0xa5, sizeof(long_nonce));
    g_assert_true(tvd_agent_tpm_quote(tpm, alg, 1, long_nonce,
                                      sizeof(long_nonce), &q, &error));
    g_assert_no_error(error);
    check_quote(alg, &q, ak_pub, 1, long_nonce, sizeof(long_nonce));
    tpm_test_assert_clean(tcti);
}

static void
test_quote_invalid(void)
{
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_auto(TvdAgentTpmQuote) q = { 0 };
    guint8 nonce[TVD_AGENT_TPM_MAX_NONCE + 1] = { 0 };
    GError *error = NULL;

    g_assert_false(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 1, nonce,
                                       sizeof(nonce), &q, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 1, nonce,
                                       0, &q, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 0, nonce,
                                       8, &q, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(tvd_agent_tpm_quote(tpm, 7, 1, nonce, 8, &q, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(q.attest);
}

/* A quote by an AK handle with nothing there. */
static void
test_quote_no_ak(void)
{
    TvdAgentTpmConfig config = { .ak_handle_rsa = 0x81018077 };
    g_autoptr(TvdAgentTpm) tpm = open_tpm(&config);
    g_auto(TvdAgentTpmQuote) q = { 0 };
    g_autoptr(GError) error = NULL;
    guint8 nonce[8] = { 1 };

    g_assert_false(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 1, nonce,
                                       sizeof(nonce), &q, &error));
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "0x81018077"));
    tpm_test_assert_clean(tcti);
}

/* ---- ActivateCredential -------------------------------------------------- */

static void
test_activate(gconstpointer data)
{
    guint combo = GPOINTER_TO_UINT(data);
    TvdAgentTpmAlg ek_alg = combo >> 4, ak_alg = combo & 0xf;
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) ek_pub = NULL, ek_cert = NULL, ak_pub = NULL;
    g_autoptr(GBytes) ak_name = NULL, secret = NULL, blob = NULL;
    g_autoptr(GBytes) enc = NULL, got = NULL, wrong_name = NULL;
    g_autoptr(GBytes) blob2 = NULL, enc2 = NULL;
    guint8 raw[32];

    if (!tpm_test_have("tpm2_makecredential")) {
        g_test_skip("tpm2_makecredential (tpm2-tools) is not installed");
        return;
    }
    tpm = open_tpm(NULL);
    g_assert_true(tvd_agent_tpm_get_ek(tpm, ek_alg, &ek_pub, &ek_cert,
                                       &error));
    g_assert_no_error(error);
    g_assert_true(tvd_agent_tpm_ensure_ak(tpm, ak_alg, &ak_pub, &ak_name,
                                          &error));
    g_assert_no_error(error);
    g_assert_true(RAND_bytes(raw, sizeof(raw)) == 1);
    secret = g_bytes_new(raw, sizeof(raw));

    g_assert_true(tpm_test_makecredential(tmpdir, ek_pub, ak_name, secret,
                                          &blob, &enc, &error));
    g_assert_no_error(error);
    got = tvd_agent_tpm_activate_credential(tpm, ek_alg, ak_alg, blob, enc,
                                            &error);
    g_assert_no_error(error);
    g_assert_nonnull(got);
    g_assert_true(g_bytes_equal(got, secret));
    tpm_test_assert_clean(tcti);

    /* Made for another AK name: the TPM refuses (integrity check). */
    {
        guint8 other[34];

        memcpy(other, g_bytes_get_data(ak_name, NULL), sizeof(other));
        other[33] ^= 0x55;
        wrong_name = g_bytes_new(other, sizeof(other));
    }
    g_assert_true(tpm_test_makecredential(tmpdir, ek_pub, wrong_name, secret,
                                          &blob2, &enc2, &error));
    g_assert_no_error(error);
    g_clear_pointer(&got, g_bytes_unref);
    got = tvd_agent_tpm_activate_credential(tpm, ek_alg, ak_alg, blob2, enc2,
                                            &error);
    g_assert_null(got);
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED);
    g_assert_nonnull(strstr(error->message, "TPM2_ActivateCredential"));
    g_assert_nonnull(strstr(error->message, "integrity"));
    g_test_message("wrong AK name: %s", error->message);
    g_clear_error(&error);
    tpm_test_assert_clean(tcti);

    /* Garbage in: refused before the TPM sees it. */
    {
        g_autoptr(GBytes) junk = g_bytes_new("\x00\x05\x01", 3);

        got = tvd_agent_tpm_activate_credential(tpm, ek_alg, ak_alg, junk,
                                                enc, &error);
        g_assert_null(got);
        g_assert_error(error, TVD_AGENT_TPM_ERROR,
                       TVD_AGENT_TPM_ERROR_INVALID);
    }
}

/* ---- retries and errors ---------------------------------------------------- */

static void
test_retry(void)
{
    static const guint32 rcs[] = {
        TPM2_RC_RETRY, TPM2_RC_YIELDED, TPM2_RC_TESTING,
    };
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);

    for (guint i = 0; i < G_N_ELEMENTS(rcs); i++) {
        g_autoptr(GError) error = NULL;
        g_auto(TvdAgentTpmQuote) q = { 0 };
        g_autoptr(GBytes) values = NULL;
        guint8 nonce[16] = { 9 };

        /* More than ESYS's own 5 resubmissions: our backoff must take over. */
        tvd_tcti_libtpms_inject(tcti, TPM2_CC_Quote, rcs[i], 12);
        g_assert_true(tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 0x7,
                                          nonce, sizeof(nonce), &q, &error));
        g_assert_no_error(error);
        tvd_tcti_libtpms_inject(tcti, TPM2_CC_PCR_Read, rcs[i], 3);
        g_assert_true(tvd_agent_tpm_pcr_read(tpm, 0x7, &values, NULL,
                                             &error));
        g_assert_no_error(error);
    }
    tpm_test_assert_clean(tcti);
}

static void
test_retry_exhausted(void)
{
    g_autoptr(TvdAgentTpm) tpm = open_tpm(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) values = NULL;
    gint64 start = g_get_monotonic_time();

    tvd_tcti_libtpms_inject(tcti, TPM2_CC_PCR_Read, TPM2_RC_YIELDED, 100000);
    g_assert_false(tvd_agent_tpm_pcr_read(tpm, 0x1, &values, NULL, &error));
    tvd_tcti_libtpms_inject(tcti, 0, 0, 0);
    g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_BUSY);
    g_test_message("gave up after %" G_GINT64_FORMAT " ms: %s",
                   (g_get_monotonic_time() - start) / 1000, error->message);
    tpm_test_assert_clean(tcti);
}

/*
 * A TPM error in the middle of each operation: the error names the command
 * and carries the decoded response code, and every transient object and
 * session is flushed.
 */
static void
test_error_paths(void)
{
    static const struct {
        guint32 cc;
        const char *cmd;
    } points[] = {
        { TPM2_CC_PolicySecret, "TPM2_PolicySecret" },
        { TPM2_CC_ActivateCredential, "TPM2_ActivateCredential" },
        { TPM2_CC_Quote, "TPM2_Quote" },
        { TPM2_CC_Create, "TPM2_Create" },
        { TPM2_CC_Load, "TPM2_Load" },
        { TPM2_CC_EvictControl, "TPM2_EvictControl" },
        { TPM2_CC_ReadPublic, "TPM2_ReadPublic" },
    };
    /* A fresh handle so ensure_ak has to create. */
    TvdAgentTpmConfig config = { .ak_handle_rsa = 0x81018040 };
    g_autoptr(TvdAgentTpm) tpm = open_tpm(&config);
    g_autoptr(TvdAgentTpm) plain = open_tpm(NULL);
    g_autoptr(GBytes) blob = NULL, enc = NULL;
    guint8 nonce[20] = { 3 };

    /* A syntactically fine credential; activation fails before or at the TPM. */
    {
        g_autoptr(GBytes) secret = g_bytes_new("0123456789abcdef", 16);
        g_autoptr(GBytes) ek_pub = NULL, ek_cert = NULL;
        g_autoptr(GBytes) ak_pub = NULL, ak_name = NULL;
        g_autoptr(GError) error = NULL;

        if (!tpm_test_have("tpm2_makecredential")) {
            g_test_skip("tpm2_makecredential (tpm2-tools) is not installed");
            return;
        }
        g_assert_true(tvd_agent_tpm_get_ek(plain, TVD_AGENT_TPM_ALG_RSA,
                                           &ek_pub, &ek_cert, &error));
        g_assert_true(tvd_agent_tpm_ensure_ak(plain, TVD_AGENT_TPM_ALG_RSA,
                                              &ak_pub, &ak_name, &error));
        g_assert_true(tpm_test_makecredential(tmpdir, ek_pub, ak_name, secret,
                                              &blob, &enc, &error));
        g_assert_no_error(error);
    }

    for (guint i = 0; i < G_N_ELEMENTS(points); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) pub = NULL, name = NULL, got = NULL;
        g_auto(TvdAgentTpmQuote) q = { 0 };

        tvd_tcti_libtpms_inject(tcti, points[i].cc, TPM2_RC_FAILURE, 1);
        switch (points[i].cc) {
        case TPM2_CC_PolicySecret:
        case TPM2_CC_ActivateCredential:
            got = tvd_agent_tpm_activate_credential(plain,
                                                    TVD_AGENT_TPM_ALG_RSA,
                                                    TVD_AGENT_TPM_ALG_RSA,
                                                    blob, enc, &error);
            g_assert_null(got);
            break;
        case TPM2_CC_Quote:
            g_assert_false(tvd_agent_tpm_quote(plain, TVD_AGENT_TPM_ALG_RSA,
                                               0x3, nonce, sizeof(nonce), &q,
                                               &error));
            break;
        case TPM2_CC_ReadPublic:
            /* Reading the existing AK's public area. */
            g_assert_false(tvd_agent_tpm_ensure_ak(plain,
                                                   TVD_AGENT_TPM_ALG_RSA,
                                                   &pub, &name, &error));
            break;
        default:
            g_assert_false(tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA,
                                                   &pub, &name, &error));
            break;
        }
        tvd_tcti_libtpms_inject(tcti, 0, 0, 0);
        g_assert_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED);
        g_test_message("%s", error->message);
        g_assert_nonnull(strstr(error->message, "TPM failure"));
        g_assert_nonnull(strstr(error->message, "0x00000101"));
        g_assert_nonnull(strstr(error->message, points[i].cmd));
        tpm_test_assert_clean(tcti);
    }
    /* Nothing was persisted by the failed creations; now it works. */
    {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) pub = NULL, name = NULL;

        g_assert_true(tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA,
                                              &pub, &name, &error));
        g_assert_no_error(error);
        tpm_test_assert_clean(tcti);
    }
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    int ret;

    g_test_init(&argc, &argv, NULL);
    /* ESYS logs every TPM error to stderr; the tests provoke many. */
    g_setenv("TSS2_LOG", "all+none", FALSE);
    tcti = tvd_tcti_libtpms_new(TRUE, &error);
    g_assert_no_error(error);
    tmpdir = g_dir_make_tmp("tvd-agent-tpm-XXXXXX", &error);
    g_assert_no_error(error);

    g_test_add_data_func("/agent-tpm/libtpms/ek/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA), test_ek);
    g_test_add_data_func("/agent-tpm/libtpms/ek/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC), test_ek);
    g_test_add_data_func("/agent-tpm/libtpms/ak/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA), test_ak);
    g_test_add_data_func("/agent-tpm/libtpms/ak/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC), test_ak);
    g_test_add_func("/agent-tpm/libtpms/ak/power-cycle", test_ak_power_cycle);
    g_test_add_func("/agent-tpm/libtpms/ak/foreign-object", test_ak_foreign);
    g_test_add_func("/agent-tpm/libtpms/config/invalid", test_config_invalid);
    g_test_add_func("/agent-tpm/libtpms/tcti/invalid", test_tcti_invalid);
    g_test_add_func("/agent-tpm/libtpms/tcti/device-path", test_device_tcti);
    g_test_add_func("/agent-tpm/libtpms/pcr/extend-read",
                    test_pcr_extend_read);
    g_test_add_func("/agent-tpm/libtpms/pcr/invalid", test_pcr_invalid);
    g_test_add_data_func("/agent-tpm/libtpms/quote/rsa",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_RSA), test_quote);
    g_test_add_data_func("/agent-tpm/libtpms/quote/ecc",
                         GINT_TO_POINTER(TVD_AGENT_TPM_ALG_ECC), test_quote);
    g_test_add_func("/agent-tpm/libtpms/quote/invalid", test_quote_invalid);
    g_test_add_func("/agent-tpm/libtpms/quote/no-ak", test_quote_no_ak);
    g_test_add_data_func("/agent-tpm/libtpms/activate/rsa-ek-rsa-ak",
                         GUINT_TO_POINTER(0x11), test_activate);
    g_test_add_data_func("/agent-tpm/libtpms/activate/ecc-ek-ecc-ak",
                         GUINT_TO_POINTER(0x22), test_activate);
    g_test_add_data_func("/agent-tpm/libtpms/activate/rsa-ek-ecc-ak",
                         GUINT_TO_POINTER(0x12), test_activate);
    g_test_add_func("/agent-tpm/libtpms/retry/transient", test_retry);
    g_test_add_func("/agent-tpm/libtpms/retry/exhausted",
                    test_retry_exhausted);
    g_test_add_func("/agent-tpm/libtpms/errors/flushed", test_error_paths);

    ret = g_test_run();

    tvd_tcti_libtpms_free(tcti);
    for (guint i = 0; i < G_N_ELEMENTS(ak_names); i++) {
        g_clear_pointer(&ak_names[i], g_bytes_unref);
    }
    tpm_test_rmtree(tmpdir);
    g_free(tmpdir);
    /* The in-memory NV callbacks mean libtpms never wrote ./NVChip. */
    if (g_file_test("NVChip", G_FILE_TEST_EXISTS)) {
        g_printerr("libtpms wrote ./NVChip\n");
        ret = 1;
    }
    return ret;
}
