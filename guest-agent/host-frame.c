/*
 * The agent's host->guest decoder: see host-frame.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-agent"

#include "host-frame.h"

#include <string.h>

#include "frame.h"

G_DEFINE_QUARK(tvd-agent-frame-error-quark, tvd_agent_frame_error)

static const char *const phase_names[] = {
    "WAIT_DEVICE", "WAIT_SUPERVISOR", "HELLO_SENT", "BOUND",
};

const char *tvd_agent_phase_name(TvdAgentPhase phase)
{
    return (guint)phase < G_N_ELEMENTS(phase_names) ? phase_names[phase]
                                                     : "?";
}

gboolean tvd_agent_decode_host_frame(const void *data, gsize len,
                                     guint32 max_payload, TvdMsg *msg,
                                     guint16 *msg_type, GError **error)
{
    struct tvd_frame_header hdr;
    g_autoptr(GBytes) payload = NULL;
    g_autoptr(GError) err = NULL;

    memset(msg, 0, sizeof(*msg));
    if (msg_type) {
        *msg_type = 0;
    }
    if (!tvd_frame_decode(data, len, max_payload, &hdr, &payload, &err)) {
        g_set_error(error, TVD_AGENT_FRAME_ERROR, TVD_AGENT_FRAME_ERROR_FRAME,
                    "bad frame from the host: %s", err->message);
        return FALSE;
    }
    if (hdr.type != TVD_FRAME_AGENT) {
        g_set_error(error, TVD_AGENT_FRAME_ERROR, TVD_AGENT_FRAME_ERROR_FRAME,
                    "a %s frame in the mailbox: only AGENT frames reach "
                    "the guest", tvd_frame_type_name(hdr.type));
        return FALSE;
    }
    if (!tvd_msg_decode(payload, msg, &err)) {
        g_set_error(error, TVD_AGENT_FRAME_ERROR,
                    TVD_AGENT_FRAME_ERROR_MESSAGE,
                    "bad message from the supervisor: %s", err->message);
        return FALSE;
    }
    if (msg_type) {
        *msg_type = msg->type;
    }
    switch (msg->type) {
    case TVD_MSG_CREDENTIAL_CHALLENGE:
    case TVD_MSG_ATTEST_REQUEST:
    case TVD_MSG_MEMBERSHIP:
    case TVD_MSG_ERROR_REPORT:
        return TRUE;
    default:
        g_set_error(error, TVD_AGENT_FRAME_ERROR,
                    TVD_AGENT_FRAME_ERROR_DIRECTION,
                    "a %s message is not for an agent",
                    tvd_msg_type_name(msg->type));
        tvd_msg_clear(msg);
        return FALSE;
    }
}

gboolean tvd_agent_host_msg_expected(TvdAgentPhase phase, guint16 type,
                                     GError **error)
{
    gboolean ok;

    switch (type) {
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        ok = phase == TVD_AGENT_PHASE_HELLO_SENT ||
             phase == TVD_AGENT_PHASE_BOUND;
        break;
    case TVD_MSG_ATTEST_REQUEST:
        ok = phase == TVD_AGENT_PHASE_BOUND;
        break;
    case TVD_MSG_MEMBERSHIP:
    case TVD_MSG_ERROR_REPORT:
        ok = phase != TVD_AGENT_PHASE_WAIT_DEVICE;
        break;
    default:
        ok = FALSE;
        break;
    }
    if (!ok) {
        g_set_error(error, TVD_AGENT_FRAME_ERROR,
                    TVD_AGENT_FRAME_ERROR_SEQUENCE,
                    "a %s message in phase %s", tvd_msg_type_name(type),
                    tvd_agent_phase_name(phase));
    }
    return ok;
}
