/*
 * Writes the seed corpus of the fuzz targets from the golden vectors of
 * tests/unit/codec-vectors.h:
 *
 *   gen-corpus DIR   ->  DIR/fuzz-message/<message>
 *                        DIR/fuzz-control/<control frame>
 *                        DIR/fuzz-frame-stream/<frame or stream>
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "codec-vectors.h"

static void put(const char *dir, const char *target, const char *name,
                guint8 prefix, gboolean with_prefix, const void *data,
                gsize len)
{
    g_autofree char *d = g_build_filename(dir, target, NULL);
    g_autofree char *path = g_build_filename(d, name, NULL);
    g_autoptr(GByteArray) b = g_byte_array_new();
    g_autoptr(GError) error = NULL;

    if (g_mkdir_with_parents(d, 0755) < 0) {
        g_printerr("gen-corpus: cannot create %s\n", d);
        exit(1);
    }
    if (with_prefix) {
        g_byte_array_append(b, &prefix, 1);
    }
    g_byte_array_append(b, data, (guint)len);
    if (!g_file_set_contents(path, (const char *)b->data, b->len, &error)) {
        g_printerr("gen-corpus: %s\n", error->message);
        exit(1);
    }
}

int main(int argc, char **argv)
{
    guint8 hello[TVD_FRAME_HEADER_SIZE + TVD_DEVICE_HELLO_SIZE];
    g_autoptr(GByteArray) stream = g_byte_array_new();
    g_autoptr(GBytes) agent = NULL;
    const char *dir;
    gsize i;

    if (argc != 2) {
        g_printerr("usage: gen-corpus DIR\n");
        return 2;
    }
    dir = argv[1];

    for (i = 0; i < G_N_ELEMENTS(vec_messages); i++) {
        put(dir, "fuzz-message", vec_messages[i].name, 0, FALSE,
            vec_messages[i].bytes, vec_messages[i].len);
    }

    /* Control payloads, behind the selector byte of fuzz-control. */
    memcpy(hello, vec_hello_header, sizeof(vec_hello_header));
    vec_device_hello_payload(hello + TVD_FRAME_HEADER_SIZE);
    put(dir, "fuzz-control", "device-hello", 0, TRUE,
        hello + TVD_FRAME_HEADER_SIZE, TVD_DEVICE_HELLO_SIZE);
    put(dir, "fuzz-control", "device-event", 1, TRUE,
        vec_frame_device_event + TVD_FRAME_HEADER_SIZE,
        TVD_DEVICE_EVENT_SIZE);
    put(dir, "fuzz-control", "set-state", 2, TRUE,
        vec_frame_set_state + TVD_FRAME_HEADER_SIZE, TVD_SET_STATE_SIZE);
    put(dir, "fuzz-control", "set-link", 3, TRUE,
        vec_frame_set_link + TVD_FRAME_HEADER_SIZE, TVD_SET_LINK_SIZE);

    /* Frames and a stream, behind the piece-size byte of the stream target. */
    agent = tvd_frame_encode(TVD_FRAME_AGENT, 3, vec_msg_attest_request,
                             sizeof(vec_msg_attest_request), NULL);
    put(dir, "fuzz-frame-stream", "device-hello", 255, TRUE, hello,
        sizeof(hello));
    put(dir, "fuzz-frame-stream", "device-event", 255, TRUE,
        vec_frame_device_event, sizeof(vec_frame_device_event));
    put(dir, "fuzz-frame-stream", "set-state", 255, TRUE,
        vec_frame_set_state, sizeof(vec_frame_set_state));
    put(dir, "fuzz-frame-stream", "set-link", 255, TRUE,
        vec_frame_set_link, sizeof(vec_frame_set_link));
    put(dir, "fuzz-frame-stream", "agent", 255, TRUE,
        g_bytes_get_data(agent, NULL), g_bytes_get_size(agent));
    g_byte_array_append(stream, hello, sizeof(hello));
    g_byte_array_append(stream, vec_frame_device_event,
                        sizeof(vec_frame_device_event));
    g_byte_array_append(stream, vec_frame_set_state,
                        sizeof(vec_frame_set_state));
    g_byte_array_append(stream, g_bytes_get_data(agent, NULL),
                        (guint)g_bytes_get_size(agent));
    g_byte_array_append(stream, vec_frame_set_link,
                        sizeof(vec_frame_set_link));
    put(dir, "fuzz-frame-stream", "stream-pieces-5", 4, TRUE, stream->data,
        stream->len);
    put(dir, "fuzz-frame-stream", "stream-whole", 255, TRUE, stream->data,
        stream->len);
    return 0;
}
