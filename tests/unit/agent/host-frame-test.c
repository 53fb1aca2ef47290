/*
 * The agent's host->guest decoder (guest-agent/host-frame.c), what
 * handle_frame in agent.c runs on every frame the host leaves in the
 * mailbox before it touches the TPM: the messages a supervisor sends are
 * taken; malformed, oversize, wrong-type and wrong-direction frames (an
 * EVIDENCE sent to the agent) are refused with an error, and so are
 * messages out of sequence for the agent's phase. Nothing here may crash:
 * run it under ASan+UBSan (tests/fuzz/agent fuzzes the same function).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <string.h>

#include "codec-vectors.h"
#include "host-frame.h"

#define HALF        (32u * 1024)
#define MAX_PAYLOAD (HALF - TVD_FRAME_HEADER_SIZE)

static GBytes *agent_frame(const void *payload, gsize len)
{
    g_autoptr(GError) err = NULL;
    GBytes *f = tvd_frame_encode(TVD_FRAME_AGENT, 1, payload, len, &err);

    g_assert_no_error(err);
    return f;
}

static gboolean decode(GBytes *frame, TvdMsg *msg, guint16 *type,
                       GError **error)
{
    gsize len;
    const void *d = g_bytes_get_data(frame, &len);

    return tvd_agent_decode_host_frame(d, len, MAX_PAYLOAD, msg, type, error);
}

typedef struct {
    const guint8 *bytes;
    gsize len;
    guint16 type;
} Vec;

#define VEC(name, t) { name, sizeof(name), t }

static const Vec to_agent[] = {
    VEC(vec_msg_credential_challenge, TVD_MSG_CREDENTIAL_CHALLENGE),
    VEC(vec_msg_attest_request, TVD_MSG_ATTEST_REQUEST),
    VEC(vec_msg_membership, TVD_MSG_MEMBERSHIP),
    VEC(vec_msg_error_report, TVD_MSG_ERROR_REPORT),
};

static const Vec from_agent[] = {
    VEC(vec_msg_agent_hello, TVD_MSG_AGENT_HELLO),
    VEC(vec_msg_credential_response, TVD_MSG_CREDENTIAL_RESPONSE),
    VEC(vec_msg_evidence, TVD_MSG_EVIDENCE),
    VEC(vec_msg_log_chunk, TVD_MSG_LOG_CHUNK),
};

static void test_accepts(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(to_agent); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(to_agent[i].bytes, to_agent[i].len);
        TvdMsg msg;
        guint16 type = 0xffff;

        g_assert_true(decode(f, &msg, &type, &err));
        g_assert_no_error(err);
        g_assert_cmpuint(msg.type, ==, to_agent[i].type);
        g_assert_cmpuint(type, ==, to_agent[i].type);
        tvd_msg_clear(&msg);
    }
    /* The decoded values, for one of them. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(vec_msg_attest_request,
                                          sizeof(vec_msg_attest_request));
        TvdMsg msg, want;

        g_assert_true(decode(f, &msg, NULL, &err));
        vec_attest_request(&want);
        g_assert_cmpmem(msg.u.attest_request.nonce, TVD_MSG_NONCE_LEN,
                        want.u.attest_request.nonce, TVD_MSG_NONCE_LEN);
        g_assert_cmpuint(msg.u.attest_request.pcr_select, ==,
                         want.u.attest_request.pcr_select);
        g_assert_cmpuint(msg.u.attest_request.ima_offset, ==,
                         want.u.attest_request.ima_offset);
        tvd_msg_clear(&msg);
        tvd_msg_clear(&want);
    }
}

/* Messages only an agent sends, EVIDENCE first among them. */
static void test_wrong_direction(void)
{
    for (guint i = 0; i < G_N_ELEMENTS(from_agent); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(from_agent[i].bytes,
                                          from_agent[i].len);
        TvdMsg msg;
        guint16 type = 0;

        g_assert_false(decode(f, &msg, &type, &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_DIRECTION);
        /* Named, so the error report can say which. */
        g_assert_cmpuint(type, ==, from_agent[i].type);
        /* Left cleared: nothing to free, nothing to use. */
        g_assert_cmpuint(msg.type, ==, 0);
    }
}

/* Frames of the device<->supervisor control types, and unknown types, in
 * the guest's mailbox. */
static void test_wrong_frame_type(void)
{
    const guint8 types[] = { TVD_FRAME_DEVICE_HELLO, TVD_FRAME_DEVICE_EVENT,
                             TVD_FRAME_SET_STATE, TVD_FRAME_SET_LINK, 0x00,
                             0x21, 0xff };

    for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(vec_msg_membership,
                                          sizeof(vec_msg_membership));
        g_autofree guint8 *b = g_memdup2(g_bytes_get_data(f, NULL),
                                         g_bytes_get_size(f));
        TvdMsg msg;
        guint16 type = 0xffff;

        b[5] = types[i];
        g_assert_false(tvd_agent_decode_host_frame(b, g_bytes_get_size(f),
                                                   MAX_PAYLOAD, &msg, &type,
                                                   &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_FRAME);
        g_assert_cmpuint(type, ==, 0);
    }
}

static void test_malformed_frames(void)
{
    g_autoptr(GBytes) f = agent_frame(vec_msg_membership,
                                      sizeof(vec_msg_membership));
    gsize len;
    const guint8 *good = g_bytes_get_data(f, &len);

    /* Every truncation, and one byte too many (a frame fills the length
     * the device gives exactly). */
    for (gsize cut = 0; cut <= len + 1; cut++) {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_malloc0(len + 1);
        TvdMsg msg;

        if (cut == len) {
            continue;
        }
        memcpy(b, good, MIN(cut, len));
        g_assert_false(tvd_agent_decode_host_frame(cut ? b : NULL, cut,
                                                   MAX_PAYLOAD, &msg, NULL,
                                                   &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_FRAME);
    }
    /* Bad magic, version, flags, a length that disagrees. */
    for (guint field = 0; field < 4; field++) {
        static const gsize at[] = { 0, 4, 6, 8 };
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(good, len);
        TvdMsg msg;

        b[at[field]] ^= 0x40;
        g_assert_false(tvd_agent_decode_host_frame(b, len, MAX_PAYLOAD, &msg,
                                                   NULL, &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_FRAME);
    }
}

/* A frame whose payload is larger than the mailbox half could carry. */
static void test_oversize(void)
{
    g_autofree guint8 *big = g_malloc0(MAX_PAYLOAD + 1);
    g_autoptr(GBytes) ok = agent_frame(big, MAX_PAYLOAD);
    g_autoptr(GBytes) over = agent_frame(big, MAX_PAYLOAD + 1);
    g_autoptr(GError) err = NULL;
    TvdMsg msg;

    /* Fits: a frame, but zeros are not a message. */
    g_assert_false(decode(ok, &msg, NULL, &err));
    g_assert_error(err, TVD_AGENT_FRAME_ERROR, TVD_AGENT_FRAME_ERROR_MESSAGE);
    g_clear_error(&err);
    /* Does not fit: refused before the message decoder sees it. */
    g_assert_false(decode(over, &msg, NULL, &err));
    g_assert_error(err, TVD_AGENT_FRAME_ERROR, TVD_AGENT_FRAME_ERROR_FRAME);
    g_clear_error(&err);
    /* A header that claims the largest payload there is, on 16 bytes. */
    {
        struct tvd_frame_header h = {
            .magic = TVD_FRAME_MAGIC, .version = TVD_FRAME_VERSION,
            .type = TVD_FRAME_AGENT, .length = 0xffffffff, .seq = 1,
        };
        guint8 b[TVD_FRAME_HEADER_SIZE];

        tvd_frame_header_encode(&h, b);
        g_assert_false(tvd_agent_decode_host_frame(b, sizeof(b), MAX_PAYLOAD,
                                                   &msg, NULL, &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_FRAME);
    }
}

/* Well-formed frames whose payload is not a message: the agent answers
 * these with ERROR code 1. */
static void test_malformed_messages(void)
{
    static const guint8 junk[][12] = {
        { 0 }, { 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
        { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff },
    };

    for (guint i = 0; i < G_N_ELEMENTS(junk); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(junk[i], sizeof(junk[i]));
        TvdMsg msg;
        guint16 type = 0xffff;

        g_assert_false(decode(f, &msg, &type, &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_MESSAGE);
        g_assert_cmpuint(type, ==, 0);
    }
    /* An empty payload. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) f = agent_frame(NULL, 0);
        TvdMsg msg;

        g_assert_false(decode(f, &msg, NULL, &err));
        g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                       TVD_AGENT_FRAME_ERROR_MESSAGE);
    }
}

/* handle_frame answers a refused message with an ERROR_REPORT carrying the
 * error's text: that report must itself encode, or the supervisor never
 * hears why. */
static void assert_reportable(const GError *refusal, guint16 type)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) enc = NULL;
    TvdMsg rep = { .type = TVD_MSG_ERROR_REPORT };

    rep.u.error_report.code = TVD_MSG_ERR_MALFORMED;
    rep.u.error_report.ref_type = type;
    rep.u.error_report.text = refusal->message;
    enc = tvd_msg_encode(&rep, &err);
    if (!enc) {
        g_test_message("unreportable: \"%s\": %s", refusal->message,
                       err->message);
    }
    g_assert_no_error(err);
}

/* Every single-byte change and every truncation of every vector's payload,
 * inside a well-formed frame: either a message for the agent or an error,
 * never anything else (and never a crash under the sanitizers). */
static void test_mutations(void)
{
    const Vec *sets[] = { to_agent, from_agent };
    guint ok = 0, refused = 0;

    for (guint s = 0; s < 2; s++) {
        for (guint v = 0; v < 4; v++) {
            const Vec *vec = &sets[s][v];

            for (gsize pos = 0; pos < vec->len; pos++) {
                for (guint k = 0; k < 3; k++) {
                    static const guint8 x[] = { 0x01, 0x80, 0xff };
                    g_autofree guint8 *p = g_memdup2(vec->bytes, vec->len);
                    g_autoptr(GBytes) f = NULL;
                    g_autoptr(GError) err = NULL;
                    TvdMsg msg;
                    guint16 type;

                    p[pos] ^= x[k];
                    f = agent_frame(p, vec->len);
                    if (decode(f, &msg, &type, &err)) {
                        g_assert_no_error(err);
                        g_assert_true(msg.type == TVD_MSG_CREDENTIAL_CHALLENGE ||
                                      msg.type == TVD_MSG_ATTEST_REQUEST ||
                                      msg.type == TVD_MSG_MEMBERSHIP ||
                                      msg.type == TVD_MSG_ERROR_REPORT);
                        tvd_msg_clear(&msg);
                        ok++;
                    } else {
                        g_assert_nonnull(err);
                        g_assert_true(err->domain == TVD_AGENT_FRAME_ERROR);
                        assert_reportable(err, type);
                        refused++;
                    }
                }
            }
            for (gsize cut = 0; cut < vec->len; cut++) {
                g_autoptr(GBytes) f = agent_frame(vec->bytes, cut);
                g_autoptr(GError) err = NULL;
                TvdMsg msg;

                g_assert_false(decode(f, &msg, NULL, &err));
                g_assert_nonnull(err);
                refused++;
            }
        }
    }
    g_test_message("mutations: %u decoded, %u refused", ok, refused);
    g_assert_cmpuint(refused, >, 0);
}

/* docs/protocol.md §2.4: out of sequence is refused (ERROR code 4). */
static void test_sequence(void)
{
    static const struct {
        TvdAgentPhase phase;
        guint16 type;
        gboolean ok;
    } cases[] = {
        { TVD_AGENT_PHASE_WAIT_DEVICE, TVD_MSG_MEMBERSHIP, FALSE },
        { TVD_AGENT_PHASE_WAIT_SUPERVISOR, TVD_MSG_CREDENTIAL_CHALLENGE,
          FALSE },
        { TVD_AGENT_PHASE_WAIT_SUPERVISOR, TVD_MSG_ATTEST_REQUEST, FALSE },
        { TVD_AGENT_PHASE_WAIT_SUPERVISOR, TVD_MSG_MEMBERSHIP, TRUE },
        { TVD_AGENT_PHASE_HELLO_SENT, TVD_MSG_CREDENTIAL_CHALLENGE, TRUE },
        { TVD_AGENT_PHASE_HELLO_SENT, TVD_MSG_ATTEST_REQUEST, FALSE },
        { TVD_AGENT_PHASE_HELLO_SENT, TVD_MSG_MEMBERSHIP, TRUE },
        { TVD_AGENT_PHASE_HELLO_SENT, TVD_MSG_ERROR_REPORT, TRUE },
        { TVD_AGENT_PHASE_BOUND, TVD_MSG_ATTEST_REQUEST, TRUE },
        { TVD_AGENT_PHASE_BOUND, TVD_MSG_CREDENTIAL_CHALLENGE, TRUE },
        { TVD_AGENT_PHASE_BOUND, TVD_MSG_MEMBERSHIP, TRUE },
        { TVD_AGENT_PHASE_BOUND, TVD_MSG_EVIDENCE, FALSE },
        { TVD_AGENT_PHASE_BOUND, TVD_MSG_AGENT_HELLO, FALSE },
        { TVD_AGENT_PHASE_BOUND, 0, FALSE },
        { TVD_AGENT_PHASE_BOUND, 999, FALSE },
        { (TvdAgentPhase)42, TVD_MSG_ATTEST_REQUEST, FALSE },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        gboolean ok = tvd_agent_host_msg_expected(cases[i].phase,
                                                  cases[i].type, &err);

        g_assert_cmpint(ok, ==, cases[i].ok);
        if (!ok) {
            g_assert_error(err, TVD_AGENT_FRAME_ERROR,
                           TVD_AGENT_FRAME_ERROR_SEQUENCE);
        } else {
            g_assert_no_error(err);
        }
    }
    g_assert_cmpstr(tvd_agent_phase_name(TVD_AGENT_PHASE_BOUND), ==, "BOUND");
    g_assert_cmpstr(tvd_agent_phase_name((TvdAgentPhase)42), ==, "?");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/agent/host-frame/accepts", test_accepts);
    g_test_add_func("/agent/host-frame/wrong-direction",
                    test_wrong_direction);
    g_test_add_func("/agent/host-frame/wrong-frame-type",
                    test_wrong_frame_type);
    g_test_add_func("/agent/host-frame/malformed-frames",
                    test_malformed_frames);
    g_test_add_func("/agent/host-frame/oversize", test_oversize);
    g_test_add_func("/agent/host-frame/malformed-messages",
                    test_malformed_messages);
    g_test_add_func("/agent/host-frame/mutations", test_mutations);
    g_test_add_func("/agent/host-frame/sequence", test_sequence);
    return g_test_run();
}
