/*
 * libFuzzer target: the signature file decoder. A decoded signature must
 * encode to text that decodes to the same fields (the encoding is
 * canonical), and verification against an empty trust store must fail
 * cleanly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TvdPolicySignature a, b;
    GError *error = NULL;
    char *text;

    if (!tvd_policy_signature_decode(data, size, &a, &error)) {
        if (!error || error->domain != TVD_POLICY_ERROR) {
            __builtin_trap();
        }
        g_error_free(error);
        return 0;
    }
    text = tvd_policy_signature_encode(&a);
    if (!tvd_policy_signature_decode(text, strlen(text), &b, NULL) ||
        memcmp(&a, &b, sizeof(a)) != 0) {
        __builtin_trap();
    }
    {
        TvdPolicyTrustStore *s = tvd_policy_trust_store_new();

        if (tvd_policy_trust_store_verify(s, "x", 1, data, size, NULL, NULL)) {
            __builtin_trap();
        }
        tvd_policy_trust_store_free(s);
    }
    g_free(text);
    return 0;
}
