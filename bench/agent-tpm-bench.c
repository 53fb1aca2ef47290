/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Time of each TPM step of one attestation round through the agent's TPM
 * layer: PCR read, quote (PCR read + TPM2_Quote + checks), activate
 * credential, PCR extend, and the one-time EK and AK steps.
 *
 *   agent-tpm-bench [--rounds N] [--tcti CONF | --libtpms]
 *
 * Without --tcti it provisions and starts its own swtpm (swtpm_setup with
 * swtpm_localca, unix socket). --libtpms uses the in-process libtpms TPM,
 * which shows what the TPM's own work costs without a process hop.
 * Prints figures; asserts nothing (docs/agent-tpm.md records them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "agent-tpm.h"
#include "tpm-test-util.h"
#ifdef HAVE_LIBTPMS
#include "tcti-libtpms.h"
#endif

#define MAX_ROUNDS 1000

typedef struct {
    const char *name;
    double ms[MAX_ROUNDS];
    guint n;
} Step;

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static void
report(const Step *s)
{
    double v[MAX_ROUNDS], sum = 0;

    if (s->n == 0) {
        return;
    }
    memcpy(v, s->ms, s->n * sizeof(double));
    qsort(v, s->n, sizeof(double), cmp_double);
    for (guint i = 0; i < s->n; i++) {
        sum += v[i];
    }
    printf("%-34s %4u %9.2f %9.2f %9.2f %9.2f\n", s->name, s->n, v[0],
           v[s->n / 2], sum / s->n, v[s->n - 1]);
}

static double
now_ms(void)
{
    return (double)g_get_monotonic_time() / 1000.0;
}

#define TIMED(step, expr) \
    do { \
        double t0_ = now_ms(); \
        gboolean ok_ = (expr); \
        (step)->ms[(step)->n++] = now_ms() - t0_; \
        if (!ok_) { \
            g_printerr("%s: %s\n", (step)->name, \
                       error ? error->message : "failed"); \
            return 1; \
        } \
    } while (0)

static int
run(TvdAgentTpm *tpm, guint rounds, const char *dir)
{
    g_autoptr(GError) error = NULL;
    Step ek_rsa = { "get EK rsa (cert from NV)", { 0 }, 0 };
    Step ek_ecc = { "get EK ecc (cert from NV)", { 0 }, 0 };
    Step ak_first = { "ensure AK rsa (first: create)", { 0 }, 0 };
    Step ak_again = { "ensure AK rsa (exists)", { 0 }, 0 };
    Step pcr_read = { "PCR read (PCRs 0-15, sha256)", { 0 }, 0 };
    Step quote_rsa = { "quote rsa AK (PCRs 0-15)", { 0 }, 0 };
    Step quote_ecc = { "quote ecc AK (PCRs 0-15)", { 0 }, 0 };
    Step activate = { "activate credential (rsa EK/AK)", { 0 }, 0 };
    Step extend = { "PCR extend (PCR 16)", { 0 }, 0 };
    Step round = { "round: PCR read + quote + activate", { 0 }, 0 };
    g_autoptr(GBytes) ek_pub = NULL, ak_pub = NULL;
    g_autoptr(GBytes) ak_name = NULL, secret = NULL, blob = NULL;
    g_autoptr(GBytes) enc = NULL;
    guint8 nonce[32], digest[32] = { 0 };
    const guint32 mask = 0xffff;

    for (guint i = 0; i < MIN(rounds, 5u); i++) {
        g_autoptr(GBytes) p = NULL, c = NULL;

        TIMED(&ek_rsa, tvd_agent_tpm_get_ek(tpm, TVD_AGENT_TPM_ALG_RSA, &p,
                                            &c, &error));
        if (!c) {
            ek_rsa.name = "get EK rsa (no cert)";
        }
        if (i == 0) {
            ek_pub = g_bytes_ref(p);
        }
        g_clear_pointer(&p, g_bytes_unref);
        g_clear_pointer(&c, g_bytes_unref);
        TIMED(&ek_ecc, tvd_agent_tpm_get_ek(tpm, TVD_AGENT_TPM_ALG_ECC, &p,
                                            &c, &error));
        if (!c) {
            ek_ecc.name = "get EK ecc (no cert)";
        }
    }
    {
        g_autoptr(GBytes) p = NULL, n = NULL;

        TIMED(&ak_first, tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA,
                                                 &ak_pub, &ak_name, &error));
        TIMED(&ak_first, tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_ECC,
                                                 &p, &n, &error));
        ak_first.n = 1; /* the ECC one only made sure it exists */
    }
    for (guint i = 0; i < MIN(rounds, 5u); i++) {
        g_autoptr(GBytes) p = NULL, n = NULL;

        TIMED(&ak_again, tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA,
                                                 &p, &n, &error));
    }

    /* The supervisor's MakeCredential, outside the timing. */
    RAND_bytes(digest, sizeof(digest));
    secret = g_bytes_new(digest, sizeof(digest));
    if (!tpm_test_makecredential(dir, ek_pub, ak_name, secret, &blob, &enc,
                                 &error)) {
        g_printerr("tpm2_makecredential: %s\n", error->message);
        return 1;
    }

    for (guint i = 0; i < rounds; i++) {
        g_autoptr(GBytes) values = NULL, got = NULL;
        g_auto(TvdAgentTpmQuote) q = { 0 };
        g_auto(TvdAgentTpmQuote) q2 = { 0 };
        double t0 = now_ms();

        RAND_bytes(nonce, sizeof(nonce));
        TIMED(&pcr_read, tvd_agent_tpm_pcr_read(tpm, mask, &values, NULL,
                                                &error));
        TIMED(&quote_rsa, tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA,
                                              mask, nonce, sizeof(nonce), &q,
                                              &error));
        TIMED(&activate, (got = tvd_agent_tpm_activate_credential(
                              tpm, TVD_AGENT_TPM_ALG_RSA,
                              TVD_AGENT_TPM_ALG_RSA, blob, enc, &error)) !=
              NULL);
        round.ms[round.n++] = now_ms() - t0;
        if (!g_bytes_equal(got, secret)) {
            g_printerr("activate: wrong secret\n");
            return 1;
        }
        TIMED(&quote_ecc, tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_ECC,
                                              mask, nonce, sizeof(nonce), &q2,
                                              &error));
        digest[0] = (guint8)i;
        TIMED(&extend, tvd_agent_tpm_pcr_extend(tpm, 16, digest,
                                                sizeof(digest), &error));
    }

    printf("%-34s %4s %9s %9s %9s %9s\n", "step (ms)", "n", "min", "median",
           "mean", "max");
    report(&ek_rsa);
    report(&ek_ecc);
    report(&ak_first);
    report(&ak_again);
    report(&pcr_read);
    report(&quote_rsa);
    report(&quote_ecc);
    report(&activate);
    report(&extend);
    report(&round);
    return 0;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpmTestSwtpm) swtpm = NULL;
    g_autoptr(TvdAgentTpm) tpm = NULL;
    g_autofree char *tmp = NULL;
    const char *tcti = NULL;
    gboolean libtpms = FALSE;
    guint rounds = 20;
    int ret;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            int n = atoi(argv[++i]);

            rounds = (guint)CLAMP(n, 1, MAX_ROUNDS);
        } else if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc) {
            tcti = argv[++i];
        } else if (strcmp(argv[i], "--libtpms") == 0) {
            libtpms = TRUE;
        } else {
            g_printerr("usage: %s [--rounds N] [--tcti CONF | --libtpms]\n",
                       argv[0]);
            return 2;
        }
    }
    g_setenv("TSS2_LOG", "all+none", FALSE);
    if (!tpm_test_have("tpm2_makecredential")) {
        printf("agent-tpm-bench: skipped, tpm2_makecredential missing\n");
        return 0;
    }
    tmp = g_dir_make_tmp("tvd-agent-tpm-bench-XXXXXX", &error);
    if (!tmp) {
        g_printerr("%s\n", error->message);
        return 1;
    }

    if (libtpms) {
#ifdef HAVE_LIBTPMS
        TSS2_TCTI_CONTEXT *ctx = tvd_tcti_libtpms_new(TRUE, &error);

        if (!ctx) {
            g_printerr("%s\n", error->message);
            return 1;
        }
        tpm = tvd_agent_tpm_new_with_tcti(NULL, ctx, &error);
        printf("TPM: in-process libtpms, %u rounds\n", rounds);
        ret = tpm ? run(tpm, rounds, tmp) : 1;
        g_clear_pointer(&tpm, tvd_agent_tpm_free);
        tvd_tcti_libtpms_free(ctx);
#else
        g_printerr("built without libtpms\n");
        ret = 2;
#endif
    } else {
        if (!tcti) {
            const char *why = NULL;

            swtpm = tpm_test_swtpm_new(&why, &error);
            if (!swtpm && why) {
                printf("agent-tpm-bench: skipped, %s missing\n", why);
                tpm_test_rmtree(tmp);
                return 0;
            }
            if (!swtpm || !tpm_test_swtpm_start(swtpm, &error)) {
                g_printerr("swtpm: %s\n", error->message);
                return 1;
            }
            tcti = tpm_test_swtpm_tcti(swtpm);
        }
        TvdAgentTpmConfig config = { .tcti = tcti };

        tpm = tvd_agent_tpm_new(&config, &error);
        printf("TPM: %s%s, %u rounds\n", tcti,
               swtpm ? " (swtpm started by the bench)" : "", rounds);
        ret = tpm ? run(tpm, rounds, tmp) : 1;
    }
    if (error && ret != 0) {
        g_printerr("%s\n", error->message);
    }
    g_clear_pointer(&tpm, tvd_agent_tpm_free);
    tpm_test_rmtree(tmp);
    return ret;
}
