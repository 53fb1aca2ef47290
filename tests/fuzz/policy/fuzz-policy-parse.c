/*
 * libFuzzer target: the domain policy parser. Any input must either parse
 * or fail with a TVD_POLICY_ERROR whose location is inside the input (and
 * json-glib must accept whatever the strict checker accepted); a
 * parsed policy must evaluate and compare with itself without trouble.
 *
 * Seeds: the example policies in examples/policies.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_auto(TvdPolicyErrorLocation) loc = { NULL, 0, 0 };
    GError *error = NULL;
    TvdPolicy *p;

    p = tvd_policy_parse(data, size, "fuzz", &loc, &error);
    if (!p) {
        guint lines = 1;

        if (!error || error->domain != TVD_POLICY_ERROR || !loc.path) {
            __builtin_trap();
        }
        for (size_t i = 0; i < size; i++) {
            lines += data[i] == '\n';
        }
        /* line 0 only when json-glib refused what the strict checker
         * accepted: the two must agree */
        if (loc.line == 0 || loc.line > lines + 1) {
            __builtin_trap();
        }
        g_error_free(error);
        return 0;
    }
    {
        TvdPolicyMeasurement m[2] = { { "/usr/bin/x", { 0 } }, { "/tmp/a/b", { 1 } } };
        TvdPolicyEvidence ev = { m, 2, 0xffffff, { { 0 } }, 0x010000 };
        TvdPolicyResult r = { 0 };

        tvd_policy_evaluate(p, &ev, &r);
        tvd_policy_result_clear(&r);
        if (tvd_policy_diff(p, p) != 0) {
            __builtin_trap();
        }
    }
    tvd_policy_unref(p);
    return 0;
}
