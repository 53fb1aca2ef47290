/*
 * libFuzzer target: quote evidence. The first byte picks the path:
 *   even: the input is a TPMS_ATTEST for tvd_quote_check_attest() (parse,
 *         magic, type, nonce, PCR selection and digest);
 *   odd:  the input is a TPMT_SIGNATURE for tvd_quote_verify() over a fixed
 *         synthetic quote, against an RSA (bit 1 clear) or ECC AK.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "verifier.h"
#include "synth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static TvdAkKey *aks[2];
static GBytes *attest;
static guint8 nonce[32];
static guint8 pcrs[2 * 32];

static void
init(void)
{
    for (int i = 0; i < 2; i++) {
        TvdSynthKey *k = tvd_synth_ak_new(i ? TPM2_ALG_ECC : TPM2_ALG_RSA,
                                          i ? TPM2_ALG_ECDSA : TPM2_ALG_RSASSA,
                                          0);

        aks[i] = tvd_ak_key_new_from_public(g_bytes_get_data(k->public, NULL),
                                            g_bytes_get_size(k->public), NULL);
        g_assert(aks[i]);
        tvd_synth_key_free(k);
    }
    for (gsize i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (guint8)i;
    }
    attest = tvd_synth_attest(TPM2_ST_ATTEST_QUOTE, nonce, sizeof(nonce),
                              TPM2_ALG_SHA256, (1u << 0) | (1u << 10), pcrs,
                              sizeof(pcrs));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TvdQuoteExpect e = { nonce, sizeof(nonce), TPM2_ALG_SHA256,
                         (1u << 0) | (1u << 10), pcrs, sizeof(pcrs) };
    TvdQuoteInfo info;
    GError *error = NULL;

    if (!attest) {
        init();
    }
    if (size < 1) {
        return 0;
    }
    if ((data[0] & 1) == 0) {
        tvd_quote_check_attest(data + 1, size - 1, TPM2_ALG_SHA256, &e, &info,
                               &error);
    } else {
        tvd_quote_verify(aks[(data[0] >> 1) & 1],
                         g_bytes_get_data(attest, NULL),
                         g_bytes_get_size(attest), data + 1, size - 1, &e,
                         &info, &error);
    }
    g_clear_error(&error);
    return 0;
}
