/*
 * libFuzzer target: the IMA binary measurement log parser (ima-ng,
 * ima-sig), whole-buffer and incremental, and the replay of what parses.
 * The first byte picks allow_partial and small caps.
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
    TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    GPtrArray *entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    static const guint8 zero[32];
    GError *error = NULL;
    gsize consumed = 0;
    TvdImaEntry *one;

    if (size < 1) {
        g_ptr_array_unref(entries);
        return 0;
    }
    if (data[0] & 2) {
        limits.max_entries = 4;
        limits.max_data_len = 300;
        limits.max_path_len = 64;
    }
    if (tvd_ima_log_parse(data + 1, size - 1, &limits, data[0] & 1, entries,
                          &consumed, &error)) {
        g_assert(consumed <= size - 1);
        for (int b = 0; b < 2; b++) {
            TvdImaReplay *r = tvd_ima_replay_new(b ? TPM2_ALG_SHA1
                                                   : TPM2_ALG_SHA256,
                                                 10, NULL);
            guint used = 0;

            tvd_ima_replay_match(r, 0, entries, zero, b ? 20 : 32, &used,
                                 &error);
            g_clear_error(&error);
            tvd_ima_replay_free(r);
        }
    }
    g_clear_error(&error);
    one = tvd_ima_entry_parse(data + 1, size - 1, &limits, &error);
    tvd_ima_entry_free(one);
    g_clear_error(&error);
    g_ptr_array_unref(entries);
    return 0;
}
