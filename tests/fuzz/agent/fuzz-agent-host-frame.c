/*
 * libFuzzer target: the agent's host->guest decoder
 * (tvd_agent_decode_host_frame, guest-agent/host-frame.c), which handle_frame
 * runs on every frame the host leaves in the H2G mailbox half.
 *
 * Input: byte 0 picks the mode and the agent's phase; the rest is
 *   - mode bit 0 clear: the raw mailbox contents (header + payload), or
 *   - mode bit 0 set: a message payload, wrapped here in a well-formed AGENT
 *     frame so the fuzzer spends its time in the message decoder (seeds:
 *     tests/fuzz/corpus/fuzz-message with a 0x01 byte in front).
 * Checks: no crash or sanitizer report; the error report the agent sends
 * for a refused message encodes; a decoded message is one a
 * supervisor sends, re-encodes, and decodes again to the same bytes; the
 * sequencing check answers for every phase.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "host-frame.h"

/* A 64 KiB mailbox, the device's default. */
#define MAX_PAYLOAD (32u * 1024 - TVD_FRAME_HEADER_SIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const void *frame, gsize len, TvdAgentPhase phase)
{
    GError *err = NULL;
    TvdMsg msg;
    guint16 type = 0xffff;
    GBytes *again = NULL;
    TvdMsg msg2;
    GBytes *again2 = NULL;

    if (!tvd_agent_decode_host_frame(frame, len, MAX_PAYLOAD, &msg, &type,
                                     &err)) {
        if (!err || err->domain != TVD_AGENT_FRAME_ERROR || msg.type != 0) {
            abort();
        }
        if (err->code == TVD_AGENT_FRAME_ERROR_DIRECTION && type == 0) {
            abort();
        }
        /* handle_frame reports it with this text: it must encode. */
        if (err->code == TVD_AGENT_FRAME_ERROR_MESSAGE) {
            TvdMsg rep = { .type = TVD_MSG_ERROR_REPORT };
            GBytes *enc;

            rep.u.error_report.code = TVD_MSG_ERR_MALFORMED;
            rep.u.error_report.text = err->message;
            enc = tvd_msg_encode(&rep, NULL);
            if (!enc) {
                abort();
            }
            g_bytes_unref(enc);
        }
        g_error_free(err);
        return;
    }
    if (err || type != msg.type ||
        (msg.type != TVD_MSG_CREDENTIAL_CHALLENGE &&
         msg.type != TVD_MSG_ATTEST_REQUEST &&
         msg.type != TVD_MSG_MEMBERSHIP &&
         msg.type != TVD_MSG_ERROR_REPORT)) {
        abort();
    }
    if (!tvd_agent_host_msg_expected(phase, msg.type, &err)) {
        if (!err) {
            abort();
        }
        g_clear_error(&err);
    }
    /* What decoded is a valid message: it encodes, and stays the same. */
    again = tvd_msg_encode(&msg, &err);
    if (!again) {
        abort();
    }
    if (!tvd_msg_decode(again, &msg2, &err)) {
        abort();
    }
    again2 = tvd_msg_encode(&msg2, &err);
    if (!again2 || !g_bytes_equal(again, again2)) {
        abort();
    }
    g_bytes_unref(again2);
    g_bytes_unref(again);
    tvd_msg_clear(&msg2);
    tvd_msg_clear(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    TvdAgentPhase phase;

    if (size < 1) {
        return 0;
    }
    phase = (TvdAgentPhase)((data[0] >> 1) & 3);
    if (data[0] & 1) {
        GBytes *frame = tvd_frame_encode(TVD_FRAME_AGENT, 1, data + 1,
                                         size - 1, NULL);
        gsize len;
        const void *f;

        if (!frame) {
            return 0;
        }
        f = g_bytes_get_data(frame, &len);
        check(f, len, phase);
        g_bytes_unref(frame);
    } else {
        /* An exact copy, so reads past the end are caught. */
        void *copy = g_memdup2(data + 1, size - 1);

        check(copy, size - 1, phase);
        g_free(copy);
    }
    return 0;
}
