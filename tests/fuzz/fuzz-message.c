/*
 * libFuzzer target: the agent<->supervisor message decoder, fed what a
 * TVD_FRAME_AGENT payload may hold. Property: whatever decodes re-encodes
 * to exactly the same bytes (normal form is canonical), and a message that
 * decodes as one type is refused by the typed decoder of another.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <glib.h>

#include "message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GBytes *in = g_bytes_new_static(data, size);
    GError *error = NULL;
    TvdMsg msg;

    if (tvd_msg_decode(in, &msg, &error)) {
        GBytes *out = tvd_msg_encode(&msg, &error);

        if (!out || !g_bytes_equal(in, out)) {
            abort();
        }
        g_bytes_unref(out);
        if (msg.type != TVD_MSG_ERROR_REPORT) {
            TvdMsgErrorReport er;

            if (tvd_msg_error_report_decode(in, &er, &error)) {
                abort();
            }
        }
        tvd_msg_clear(&msg);
    }
    g_clear_error(&error);
    g_bytes_unref(in);
    return 0;
}
