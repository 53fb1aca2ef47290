/*
 * libFuzzer target: tvdctl's parser of the Prometheus text format (the
 * supervisor's /metrics answer, turned into JSON by `tvdctl metrics
 * --json`). It must answer a document or a TVDCTL_ERROR, never crash.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "tvdctl.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    JsonNode *doc = tvdctl_prom_parse((const char *)data, size, &error);

    if (doc) {
        /* The document serialises (valid JSON, no NaN numbers). */
        g_autofree char *text = json_to_string(doc, FALSE);

        g_assert(text && text[0] == '{');
        json_node_unref(doc);
    } else if (!error || error->domain != TVDCTL_ERROR) {
        g_error("prom parser failed without a TVDCTL_ERROR");
    }
    return 0;
}
