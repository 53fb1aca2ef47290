/*
 * quote-verify-bench: quote verifications per second on one core for
 * RSA-2048 (RSASSA-SHA256) and ECC P-256 (ECDSA-SHA256) AKs, next to the
 * raw OpenSSL signature rate for the same keys, measured in the same run:
 *
 *   tvd quote verify     tvd_quote_verify(): signature + attest parse +
 *                        nonce + PCR selection + PCR digest
 *   EVP_DigestVerify     OpenSSL's one-shot verify of the same attest bytes
 *                        with the same EVP_PKEY (init per call)
 *   openssl speed        `openssl speed -seconds S rsa2048 ecdsap256`
 *                        verify/s (the limit: the signature check itself)
 *
 * Rates are per second of user CPU time of this process, the clock
 * `openssl speed` uses by default, so that a busy shared machine skews
 * neither side (the loops stop after SECONDS of CPU or 20 x SECONDS of
 * wall time).
 *
 * Quotes are synthetic TPMS_ATTEST structures (libtss2-mu) signed with
 * OpenSSL keys, so no TPM is needed. Prints figures; asserts nothing about
 * timing. Usage: quote-verify-bench [SECONDS] (default 3).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <glib.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "verifier.h"
#include "synth.h"

#define N_QUOTES 32

typedef struct {
    const char *label;
    TPM2_ALG_ID type, scheme;
    const char *speed_key;          /* line of `openssl speed` output */
} KeyKind;

typedef struct {
    GBytes *attest[N_QUOTES];
    GBytes *sig[N_QUOTES];
    guint8 nonce[N_QUOTES][32];
    guint8 pcrs[3 * 32];
} Quotes;

static double
rate(guint64 n, gint64 us)
{
    return us > 0 ? (double)n * 1e6 / (double)us : 0.0;
}

/* User CPU time of the process in microseconds (as openssl speed counts). */
static gint64
cpu_now(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (gint64)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec;
}

/* TRUE while a loop that began at @cpu0/@wall0 should go on. */
static gboolean
running(gint64 cpu0, gint64 wall0, double seconds, gint64 *cpu_used)
{
    *cpu_used = cpu_now() - cpu0;
    return *cpu_used < (gint64)(seconds * 1e6) &&
           g_get_monotonic_time() - wall0 < (gint64)(20 * seconds * 1e6);
}

static double
bench_tvd(TvdAkKey *ak, Quotes *q, double seconds)
{
    gint64 cpu0 = cpu_now(), wall0 = g_get_monotonic_time(), used = 0;
    guint64 n = 0;

    while (running(cpu0, wall0, seconds, &used)) {
        for (int i = 0; i < 64; i++) {
            int k = (int)(n % N_QUOTES);
            TvdQuoteExpect e = { q->nonce[k], 32, TPM2_ALG_SHA256,
                                 (1u << 0) | (1u << 10) | (1u << 11),
                                 q->pcrs, sizeof(q->pcrs) };
            GError *error = NULL;

            if (!tvd_quote_verify(ak, g_bytes_get_data(q->attest[k], NULL),
                                  g_bytes_get_size(q->attest[k]),
                                  g_bytes_get_data(q->sig[k], NULL),
                                  g_bytes_get_size(q->sig[k]), &e, NULL,
                                  &error)) {
                fprintf(stderr, "verify failed: %s\n", error->message);
                exit(1);
            }
            n++;
        }
    }
    return rate(n, used);
}

/* The reference: EVP_DigestVerify over the same bytes, DER signatures. */
static double
bench_evp(EVP_PKEY *key, GBytes **attest, GBytes **der, double seconds)
{
    gint64 cpu0 = cpu_now(), wall0 = g_get_monotonic_time(), used = 0;
    guint64 n = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    while (running(cpu0, wall0, seconds, &used)) {
        for (int i = 0; i < 64; i++) {
            int k = (int)(n % N_QUOTES);

            if (EVP_DigestVerifyInit_ex(ctx, NULL, "SHA256", NULL, NULL, key,
                                        NULL) != 1 ||
                EVP_DigestVerify(ctx, g_bytes_get_data(der[k], NULL),
                                 g_bytes_get_size(der[k]),
                                 g_bytes_get_data(attest[k], NULL),
                                 g_bytes_get_size(attest[k])) != 1) {
                fprintf(stderr, "EVP_DigestVerify failed\n");
                exit(1);
            }
            EVP_MD_CTX_reset(ctx);
            n++;
        }
    }
    EVP_MD_CTX_free(ctx);
    return rate(n, used);
}

static GBytes *
der_sign(EVP_PKEY *key, GBytes *data)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    guint8 sig[512];
    size_t len = sizeof(sig);

    if (EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) !=
            1 ||
        EVP_DigestSign(ctx, sig, &len, g_bytes_get_data(data, NULL),
                       g_bytes_get_size(data)) != 1) {
        fprintf(stderr, "sign failed\n");
        exit(1);
    }
    EVP_MD_CTX_free(ctx);
    return g_bytes_new(sig, len);
}

/* verify/s of `openssl speed` for rsa2048 and ecdsap256; 0 if unavailable. */
static void
openssl_speed(double seconds, double *rsa, double *ecdsa)
{
    g_autofree char *secs = g_strdup_printf("%d", (int)(seconds + 0.5));
    const char *argv[] = { "openssl", "speed", "-seconds", secs, "rsa2048",
                           "ecdsap256", NULL };
    g_autofree char *out = NULL;
    g_auto(GStrv) lines = NULL;
    int status = 0;

    *rsa = *ecdsa = 0;
    if (!g_spawn_sync(NULL, (char **)argv, NULL,
                      G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL,
                      NULL, &out, NULL, &status, NULL) ||
        !g_spawn_check_wait_status(status, NULL)) {
        return;
    }
    lines = g_strsplit(out, "\n", -1);
    for (int i = 0; lines[i]; i++) {
        g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
        guint n = g_strv_length(f);
        const char *last = NULL;

        for (guint j = n; j > 0; j--) {
            if (*f[j - 1]) {
                last = f[j - 1];
                break;
            }
        }
        if (!last) {
            continue;
        }
        if (g_str_has_prefix(lines[i], "rsa 2048 bits")) {
            *rsa = g_ascii_strtod(last, NULL);
        } else if (strstr(lines[i], "ecdsa (nistp256)")) {
            *ecdsa = g_ascii_strtod(last, NULL);
        }
    }
}

int
main(int argc, char **argv)
{
    static const KeyKind kinds[] = {
        { "RSA-2048 RSASSA-SHA256", TPM2_ALG_RSA, TPM2_ALG_RSASSA, "rsa" },
        { "ECC P-256 ECDSA-SHA256", TPM2_ALG_ECC, TPM2_ALG_ECDSA, "ecdsa" },
    };
    double seconds = argc > 1 ? g_ascii_strtod(argv[1], NULL) : 3.0;
    double tvd[2], evp[2], speed[2];

    if (seconds <= 0) {
        seconds = 3.0;
    }
    printf("quote-verify-bench: %.1f s of user CPU per figure, one thread\n",
           seconds);
    for (int k = 0; k < 2; k++) {
        g_autoptr(TvdSynthKey) key = tvd_synth_ak_new(kinds[k].type,
                                                      kinds[k].scheme, 0);
        g_autoptr(GError) error = NULL;
        g_autoptr(TvdAkKey) ak = tvd_ak_key_new_from_public(
            g_bytes_get_data(key->public, NULL),
            g_bytes_get_size(key->public), &error);
        Quotes q;
        GBytes *der[N_QUOTES];

        if (!ak) {
            fprintf(stderr, "AK: %s\n", error->message);
            return 1;
        }
        for (gsize i = 0; i < sizeof(q.pcrs); i++) {
            q.pcrs[i] = (guint8)i;
        }
        for (int i = 0; i < N_QUOTES; i++) {
            RAND_bytes(q.nonce[i], 32);
            q.attest[i] = tvd_synth_attest(TPM2_ST_ATTEST_QUOTE, q.nonce[i],
                                           32, TPM2_ALG_SHA256,
                                           (1u << 0) | (1u << 10) | (1u << 11),
                                           q.pcrs, sizeof(q.pcrs));
            q.sig[i] = tvd_synth_sign(key, q.attest[i]);
            der[i] = der_sign(key->key, q.attest[i]);
        }
        tvd[k] = bench_tvd(ak, &q, seconds);
        evp[k] = bench_evp(key->key, q.attest, der, seconds);
        for (int i = 0; i < N_QUOTES; i++) {
            g_bytes_unref(q.attest[i]);
            g_bytes_unref(q.sig[i]);
            g_bytes_unref(der[i]);
        }
    }
    openssl_speed(seconds, &speed[0], &speed[1]);

    printf("%-24s %14s %16s %14s %9s %9s\n", "AK", "tvd quote/s",
           "EVP_DigestVerify/s", "openssl speed/s", "vs EVP", "vs speed");
    for (int k = 0; k < 2; k++) {
        char vs_speed[16] = "n/a";

        if (speed[k] > 0) {
            g_snprintf(vs_speed, sizeof(vs_speed), "%.0f%%",
                       100.0 * tvd[k] / speed[k]);
        }
        printf("%-24s %14.0f %18.0f %15.0f %8.0f%% %9s\n", kinds[k].label,
               tvd[k], evp[k], speed[k], 100.0 * tvd[k] / evp[k], vs_speed);
    }
    printf("target: tvd quote/s >= 60%% of openssl speed verify/s\n");
    return 0;
}
