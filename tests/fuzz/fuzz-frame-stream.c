/*
 * libFuzzer target: the chardev stream as the supervisor reads it. The
 * first input byte sets the size of the pieces fed to the reassembler;
 * every frame that comes out goes through the control decoder of its type.
 * Checks: no crash, no leak, the reader never buffers more than a partial
 * frame plus one piece, and a frame's payload length matches its header.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdint.h>
#include <stdlib.h>
#include <glib.h>

#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Small cap so oversize lengths are reachable with small inputs. */
#define FUZZ_MAX_PAYLOAD 1024u

static void decode_control(const struct tvd_frame_header *h, GBytes *payload)
{
    gsize n;
    const uint8_t *p = g_bytes_get_data(payload, &n);
    struct tvd_device_hello hello;
    struct tvd_device_event ev;
    struct tvd_set_state st;
    struct tvd_set_link link;
    GError *error = NULL;

    switch (h->type) {
    case TVD_FRAME_DEVICE_HELLO:
        tvd_device_hello_decode(p, n, &hello, &error);
        break;
    case TVD_FRAME_DEVICE_EVENT:
        tvd_device_event_decode(p, n, &ev, &error);
        break;
    case TVD_FRAME_SET_STATE:
        tvd_set_state_decode(p, n, &st, &error);
        break;
    case TVD_FRAME_SET_LINK:
        tvd_set_link_decode(p, n, &link, &error);
        break;
    default:
        break;
    }
    g_clear_error(&error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TvdFrameReader *r;
    size_t piece, off;
    struct tvd_frame_header h;
    GBytes *payload = NULL;
    GError *error = NULL;

    if (size < 1) {
        return 0;
    }
    piece = (size_t)data[0] + 1;
    data++;
    size--;

    /* The whole input as one mailbox frame. */
    if (tvd_frame_decode(data, size, FUZZ_MAX_PAYLOAD, &h, &payload,
                         &error)) {
        if (g_bytes_get_size(payload) != h.length) {
            abort();
        }
        decode_control(&h, payload);
        g_bytes_unref(payload);
    }
    g_clear_error(&error);

    /* The input as a stream, in pieces. */
    r = tvd_frame_reader_new(FUZZ_MAX_PAYLOAD);
    for (off = 0; off < size; off += piece) {
        size_t n = MIN(piece, size - off);
        TvdFrameReaderStatus st;

        tvd_frame_reader_feed(r, data + off, n);
        while ((st = tvd_frame_reader_next(r, &h, &payload, &error)) ==
               TVD_FRAME_READER_FRAME) {
            if (g_bytes_get_size(payload) != h.length ||
                h.length > FUZZ_MAX_PAYLOAD) {
                abort();
            }
            decode_control(&h, payload);
            g_bytes_unref(payload);
        }
        g_clear_error(&error);
        if (tvd_frame_reader_buffered(r) >=
            TVD_FRAME_HEADER_SIZE + FUZZ_MAX_PAYLOAD + piece) {
            abort();
        }
        if (st == TVD_FRAME_READER_ERROR && (off / piece) % 2) {
            tvd_frame_reader_reset(r);
        }
    }
    tvd_frame_reader_free(r);
    return 0;
}
