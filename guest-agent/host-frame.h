/*
 * The agent's host->guest decoder, apart from the TPM and the device so a
 * test or a fuzzer can drive it: one frame out of the H2G mailbox half
 * (tvd_frame_decode, AGENT frames only), its message (tvd_msg_decode), the
 * direction (only what a supervisor may send an agent) and the sequencing
 * of docs/protocol.md §2.4 against the agent's lifecycle phase.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_AGENT_HOST_FRAME_H
#define TVD_AGENT_HOST_FRAME_H

#include <glib.h>

#include "message.h"

G_BEGIN_DECLS

#define TVD_AGENT_FRAME_ERROR (tvd_agent_frame_error_quark())
GQuark tvd_agent_frame_error_quark(void);

typedef enum {
    TVD_AGENT_FRAME_ERROR_FRAME,        /* not a well-formed AGENT frame */
    TVD_AGENT_FRAME_ERROR_MESSAGE,      /* the payload is not a message */
    TVD_AGENT_FRAME_ERROR_DIRECTION,    /* a message only an agent sends */
    TVD_AGENT_FRAME_ERROR_SEQUENCE,     /* not expected in this phase */
} TvdAgentFrameError;

/* The agent's lifecycle (docs/agent.md has the diagram). */
typedef enum {
    TVD_AGENT_PHASE_WAIT_DEVICE,
    TVD_AGENT_PHASE_WAIT_SUPERVISOR,
    TVD_AGENT_PHASE_HELLO_SENT,
    TVD_AGENT_PHASE_BOUND,
} TvdAgentPhase;

const char *tvd_agent_phase_name(TvdAgentPhase phase);

/*
 * Decodes the frame the host left in the H2G half (@len bytes, exactly one
 * frame) into @msg (free with tvd_msg_clear; cleared on failure). The
 * payload may hold at most @max_payload bytes (the mailbox half less the
 * header). *@msg_type (may be NULL) gets the message type when the message
 * decoded, also on a DIRECTION error, and 0 otherwise, so the caller can
 * name it in its error report. Never aborts on any input.
 */
gboolean tvd_agent_decode_host_frame(const void *data, gsize len,
                                     guint32 max_payload, TvdMsg *msg,
                                     guint16 *msg_type, GError **error);

/*
 * Whether a message of @type from the supervisor is expected in @phase:
 * a challenge after the hello (or again once bound: a repeated hello gets
 * a second challenge), an attest request only once bound, membership and
 * error reports whenever a supervisor is there. FALSE with a SEQUENCE
 * error otherwise (answer with ERROR code 4, docs/protocol.md §2.4).
 */
gboolean tvd_agent_host_msg_expected(TvdAgentPhase phase, guint16 type,
                                     GError **error);

G_END_DECLS

#endif /* TVD_AGENT_HOST_FRAME_H */
