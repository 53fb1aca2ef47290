/*
 * libFuzzer target: TPM2B_PUBLIC parsing (RSA and ECC keys, names), the
 * AK and EK checks, AK preparation, and MakeCredential to whatever passes
 * as an EK.
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
    static const guint8 name[34] = { 0x00, 0x0b, 1, 2, 3 };
    static const guint8 secret[16] = { 0x42 };
    GError *error = NULL;
    TvdTpmPublic *pub = tvd_tpm_public_parse(data, size, &error);
    gsize name_len;

    g_clear_error(&error);
    if (!pub) {
        return 0;
    }
    g_assert(tvd_tpm_public_name(pub, &name_len) && name_len >= 22);
    if (tvd_tpm_public_check_ak(pub, &error)) {
        TvdAkKey *ak = tvd_ak_key_new(pub, &error);

        tvd_ak_key_free(ak);
    }
    g_clear_error(&error);
    if (tvd_tpm_public_check_ek(pub, &error)) {
        GBytes *id = NULL, *enc = NULL;

        if (tvd_make_credential(pub, name, sizeof(name), secret,
                                sizeof(secret), &id, &enc, &error)) {
            g_bytes_unref(id);
            g_bytes_unref(enc);
        }
    }
    g_clear_error(&error);
    tvd_tpm_public_free(pub);
    return 0;
}
