/*
 * libFuzzer target: the IMA binary measurement log parser (every template
 * it accepts; the SHA-1 log and the per-bank logs), whole-buffer and
 * incremental, and the replay of what parses in the SHA-1, SHA-256 and
 * SHA-384 banks with each extend rule. The first byte picks allow_partial
 * (bit 0), small caps (bit 1), the log's template hash (bits 2-3: SHA-1,
 * SHA-256, SHA-384, SHA-512) and the replay rule (bits 4-5).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "verifier.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const TPM2_ALG_ID algs[] = { TPM2_ALG_SHA1, TPM2_ALG_SHA256,
                                         TPM2_ALG_SHA384, TPM2_ALG_SHA512 };
    TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    TPM2_ALG_ID alg;
    GPtrArray *entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    static const guint8 zero[64];
    GError *error = NULL;
    gsize consumed = 0;
    TvdImaEntry *one;

    if (size < 1) {
        g_ptr_array_unref(entries);
        return 0;
    }
    alg = algs[(data[0] >> 2) & 3];
    if (data[0] & 2) {
        limits.max_entries = 4;
        limits.max_data_len = 300;
        limits.max_path_len = 64;
    }
    if (tvd_ima_log_parse_bank(alg, data + 1, size - 1, &limits, data[0] & 1,
                               entries, &consumed, &error)) {
        g_assert(consumed <= size - 1);
        for (int b = 0; b < 3; b++) {
            TPM2_ALG_ID bank = algs[b];
            TvdImaReplay *r = tvd_ima_replay_new(bank, 10, NULL);
            guint used = 0;

            tvd_ima_replay_set_rule(r, (TvdImaExtendRule)((data[0] >> 4) % 3));
            tvd_ima_replay_match(r, 0, entries, zero, tvd_tpm_hash_size(bank),
                                 &used, &error);
            g_clear_error(&error);
            tvd_ima_replay_free(r);
        }
    }
    g_clear_error(&error);
    one = tvd_ima_entry_parse_bank(alg, data + 1, size - 1, &limits, &error);
    tvd_ima_entry_free(one);
    g_clear_error(&error);
    g_ptr_array_unref(entries);
    return 0;
}
