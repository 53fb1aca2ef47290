/*
 * libFuzzer target: the control frame decoders (device hello, device event,
 * set state, set link). The first input byte picks the decoder, the rest is
 * the payload. Property: whatever decodes re-encodes to the same bytes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (memcmp(a, b, n) != 0) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t out[TVD_DEVICE_HELLO_SIZE];
    GError *error = NULL;
    const uint8_t *p;
    size_t n;

    if (size < 1) {
        return 0;
    }
    p = data + 1;
    n = size - 1;
    switch (data[0] % 4) {
    case 0: {
        struct tvd_device_hello h;

        if (tvd_device_hello_decode(p, n, &h, &error)) {
            if (!tvd_device_hello_encode(&h, out, NULL)) {
                abort();
            }
            same(out, p, TVD_DEVICE_HELLO_SIZE);
        }
        break;
    }
    case 1: {
        struct tvd_device_event ev;

        if (tvd_device_event_decode(p, n, &ev, &error)) {
            if (!tvd_device_event_encode(&ev, out, NULL)) {
                abort();
            }
            same(out, p, TVD_DEVICE_EVENT_SIZE);
        }
        break;
    }
    case 2: {
        struct tvd_set_state st;

        if (tvd_set_state_decode(p, n, &st, &error)) {
            if (!tvd_set_state_encode(&st, out, NULL)) {
                abort();
            }
            same(out, p, TVD_SET_STATE_SIZE);
        }
        break;
    }
    case 3: {
        struct tvd_set_link link;

        if (tvd_set_link_decode(p, n, &link, &error)) {
            if (!tvd_set_link_encode(&link, out, NULL)) {
                abort();
            }
            same(out, p, TVD_SET_LINK_SIZE);
        }
        break;
    }
    }
    g_clear_error(&error);
    return 0;
}
