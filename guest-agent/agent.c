/*
 * tvd-agent lifecycle: see agent.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-agent"

#include "agent.h"

#include <glib-unix.h>
#include <stdio.h>
#include <string.h>

#include "agent-tpm.h"
#include "frame.h"
#include "host-frame.h"
#include "log-chunk.h"
#include "measure.h"
#include "message.h"
#include "state-name.h"
#include "transport.h"

#define AGENT_VERSION       TVD_AGENT_VERSION(0, 1, 0)
#define BOOT_ID             "/proc/sys/kernel/random/boot_id"
#define SEND_TIMEOUT_MS     5000
#define RETRY_MIN_MS        200
#define RETRY_MAX_MS        10000
/* Room in a mailbox half for a message's own fields beyond the log. */
#define MSG_OVERHEAD        4096u

/* The phases (TvdAgentPhase) live in host-frame.h, with the decoder. */
typedef TvdAgentPhase AgentPhase;
#define AGENT_WAIT_DEVICE       TVD_AGENT_PHASE_WAIT_DEVICE
#define AGENT_WAIT_SUPERVISOR   TVD_AGENT_PHASE_WAIT_SUPERVISOR
#define AGENT_HELLO_SENT        TVD_AGENT_PHASE_HELLO_SENT
#define AGENT_BOUND             TVD_AGENT_PHASE_BOUND

typedef struct {
    const TvdAgentConfig *cfg;
    GMainLoop *loop;
    int exit_code;
    AgentPhase phase;
    TvdTransport *t;
    TvdAgentTpm *tpm;
    TvdAgentList *list;
    TvdAgentTpmAlg ek_alg;
    TvdAgentTpmAlg ak_alg;
    GBytes *ek_public;
    GBytes *ek_cert;
    GBytes *ak_public;
    GBytes *ak_name;
    guint32 seq;
    guint32 state;
    guint32 reason;
    guint32 epoch;
    gboolean supervisor;
    guint retry_ms;
    guint retry_id;
    guint tick_id;
    guint irq_id;
    gint64 hello_at;
    GString *once_log;      /* --once: what was sent, as JSON members */
} Agent;

/* Re-send a hello nobody answered. */
#define HELLO_RETRY_US      (10 * G_USEC_PER_SEC)

static void set_phase(Agent *a, AgentPhase p)
{
    if (a->phase != p) {
        g_message("%s -> %s", tvd_agent_phase_name(a->phase),
                  tvd_agent_phase_name(p));
        a->phase = p;
    }
}

/* ---- sending ------------------------------------------------------------- */

static gboolean send_payload(Agent *a, GBytes *payload, GError **error)
{
    g_autoptr(GBytes) frame = tvd_frame_encode_bytes(TVD_FRAME_AGENT, ++a->seq,
                                                     payload, error);
    gsize len;
    const void *data;

    if (!frame) {
        return FALSE;
    }
    data = g_bytes_get_data(frame, &len);
    return tvd_transport_send(a->t, data, len, SEND_TIMEOUT_MS, error);
}

static gboolean send_msg(Agent *a, const TvdMsg *msg, GError **error)
{
    g_autoptr(GBytes) payload = tvd_msg_encode(msg, error);

    return payload && send_payload(a, payload, error);
}

static void send_error(Agent *a, guint32 code, guint16 ref, const char *text)
{
    TvdMsg msg = { .type = TVD_MSG_ERROR_REPORT };
    g_autoptr(GError) err = NULL;

    msg.u.error_report.code = code;
    msg.u.error_report.ref_type = ref;
    msg.u.error_report.text = (char *)text;
    if (!send_msg(a, &msg, &err)) {
        g_warning("cannot report an error: %s", err->message);
    }
}

/* ---- the TPM and the measurements ----------------------------------------- */

static gboolean extend_pcr(guint32 pcr, const guint8 digest[32], void *opaque,
                           GError **error)
{
    Agent *a = opaque;

    return tvd_agent_tpm_pcr_extend(a->tpm, pcr, digest, 32, error);
}

/* The agent itself and the boot first, then what the config names. */
static gboolean measure_base(Agent *a, GError **error)
{
    g_autofree char *boot_id = NULL;
    g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);

    /* The agent under its own path, so a policy can name it. */
    if (!self || tvd_agent_list_measure(a->list, self, extend_pcr, a,
                                        error) < 0) {
        g_prefix_error(error, "measuring the agent: ");
        return FALSE;
    }
    if (g_file_get_contents(BOOT_ID, &boot_id, NULL, NULL) &&
        tvd_agent_list_measure_data(a->list, BOOT_ID, g_strstrip(boot_id),
                                    strlen(boot_id), extend_pcr, a,
                                    error) < 0) {
        return FALSE;
    }
    for (char **p = a->cfg->measure; p && *p; p++) {
        g_autoptr(GError) err = NULL;

        if (tvd_agent_list_measure(a->list, *p, extend_pcr, a, &err) < 0) {
            /* A missing file is a fact to prove, not a reason to stop. */
            g_warning("%s", err->message);
        }
    }
    return TRUE;
}

static gboolean open_tpm(Agent *a, GError **error)
{
    TvdAgentTpmConfig tc = { .tcti = a->cfg->tcti };
    g_autofree char *state = NULL;

    a->tpm = tvd_agent_tpm_new(&tc, error);
    if (!a->tpm ||
        !tvd_agent_tpm_get_ek(a->tpm, a->ek_alg, &a->ek_public, &a->ek_cert,
                              error) ||
        !tvd_agent_tpm_ensure_ak(a->tpm, a->ak_alg, &a->ak_public,
                                 &a->ak_name, error)) {
        return FALSE;
    }
    state = a->cfg->state_dir
            ? g_build_filename(a->cfg->state_dir, "agent-list.bin", NULL)
            : NULL;
    if (a->cfg->state_dir) {
        g_mkdir_with_parents(a->cfg->state_dir, 0700);
    }
    a->list = tvd_agent_list_new(a->cfg->pcr, state);
    return measure_base(a, error);
}

static void once_note(Agent *a, const char *key, gint64 value)
{
    if (a->once_log) {
        g_string_append_printf(a->once_log, "%s  \"%s\": %" G_GINT64_FORMAT,
                               a->once_log->len ? ",\n" : "", key, value);
    }
}

static void once_note_str(Agent *a, const char *key, const char *value)
{
    g_autofree char *esc = g_strescape(value ? value : "", NULL);

    if (a->once_log) {
        g_string_append_printf(a->once_log, "%s  \"%s\": \"%s\"",
                               a->once_log->len ? ",\n" : "", key, esc);
    }
}

/* ---- messages from the supervisor ------------------------------------------- */

static void send_hello(Agent *a)
{
    TvdMsg msg = { .type = TVD_MSG_AGENT_HELLO };
    TvdMsgAgentHello *h = &msg.u.agent_hello;
    g_autofree char *boot_id = NULL;
    g_autoptr(GError) err = NULL;

    h->agent_version = AGENT_VERSION;
    if (g_file_get_contents(BOOT_ID, &boot_id, NULL, NULL)) {
        g_strlcpy(h->boot_id, g_strstrip(boot_id), sizeof(h->boot_id));
    }
    h->ek_type = a->ek_alg == TVD_AGENT_TPM_ALG_ECC ? TVD_EK_ECC : TVD_EK_RSA;
    h->ek_cert = a->ek_cert;
    h->ek_public = a->ek_public;
    h->ak_public = a->ak_public;
    h->ak_name = a->ak_name;
    h->ak_alg = a->ak_alg == TVD_AGENT_TPM_ALG_ECC
                ? TVD_AK_ECC_P256_ECDSA_SHA256 : TVD_AK_RSA2048_RSASSA_SHA256;
    h->agent_pcr = a->cfg->pcr;
    h->capabilities = TVD_CAP_AGENT_LIST | TVD_CAP_PCR_SHA256 |
                      (a->cfg->hook ? TVD_CAP_HOOK : 0) |
                      (g_file_test(a->cfg->ima_log, G_FILE_TEST_EXISTS)
                       ? TVD_CAP_IMA : 0);
    a->hello_at = g_get_monotonic_time();
    if (!send_msg(a, &msg, &err)) {
        g_warning("cannot send the hello: %s", err->message);
        return;
    }
    once_note_str(a, "hello_ek", a->ek_alg == TVD_AGENT_TPM_ALG_ECC ? "ecc"
                                                                   : "rsa");
    once_note_str(a, "hello_ak", a->ak_alg == TVD_AGENT_TPM_ALG_ECC ? "ecc"
                                                                   : "rsa");
    set_phase(a, AGENT_HELLO_SENT);
}

static void on_challenge(Agent *a, TvdMsgCredentialChallenge *c)
{
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_RESPONSE };
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) secret = tvd_agent_tpm_activate_credential(
        a->tpm, a->ek_alg, a->ak_alg, c->credential_blob, c->encrypted_secret,
        &err);

    if (!secret) {
        g_warning("ActivateCredential: %s", err->message);
        send_error(a, TVD_MSG_ERR_TPM, TVD_MSG_CREDENTIAL_CHALLENGE,
                   err->message);
        return;
    }
    msg.u.credential_response.secret = secret;
    if (!send_msg(a, &msg, &err)) {
        g_warning("cannot answer the challenge: %s", err->message);
        return;
    }
    set_phase(a, AGENT_BOUND);
}

/* Entries of both logs from the offsets asked for. */
static GPtrArray *ima_since(Agent *a, guint64 offset)
{
    g_autofree char *data = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;
    GPtrArray *recs;

    if (!g_file_get_contents(a->cfg->ima_log, &data, &len, &err)) {
        return g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    }
    recs = tvd_measure_split_log((const guint8 *)data, len, offset,
                                 G_MAXUINT, &err);
    if (!recs) {
        g_warning("IMA log: %s", err->message);
        return g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    }
    return recs;
}


static void on_attest_request(Agent *a, TvdMsgAttestRequest *r)
{
    g_auto(TvdAgentTpmQuote) q = { 0 };
    g_autoptr(GError) err = NULL;
    TvdMsg msg = { .type = TVD_MSG_EVIDENCE };
    TvdMsgEvidence *ev = &msg.u.evidence;
    TvdPendingLog logs[2] = { 0 };
    guint n_logs = 0;
    gsize half = tvd_transport_half_size(a->t);
    gsize budget = half > MSG_OVERHEAD * 2 ? half - MSG_OVERHEAD : half / 2;
    const guint8 *vals;
    guint idx = 0;

    if (a->phase != AGENT_BOUND) {
        send_error(a, TVD_MSG_ERR_UNEXPECTED, TVD_MSG_ATTEST_REQUEST,
                   "attest request before credential activation");
        return;
    }
    if (r->pcr_bank != TVD_TPM_ALG_SHA256) {
        send_error(a, TVD_MSG_ERR_UNEXPECTED, TVD_MSG_ATTEST_REQUEST,
                   "only the sha256 bank is supported");
        return;
    }
    /* Measure again: a changed file becomes a new record before the quote. */
    for (char **p = r->paths; p && *p; p++) {
        if (tvd_agent_list_measure(a->list, *p, extend_pcr, a, &err) < 0) {
            g_warning("%s", err->message);
            g_clear_error(&err);
        }
    }
    for (char **p = a->cfg->measure; p && *p; p++) {
        if (tvd_agent_list_measure(a->list, *p, extend_pcr, a, &err) < 0) {
            g_clear_error(&err);
        }
    }
    if (!tvd_agent_tpm_quote(a->tpm, a->ak_alg, r->pcr_select, r->nonce,
                             sizeof(r->nonce), &q, &err)) {
        g_warning("quote: %s", err->message);
        send_error(a, TVD_MSG_ERR_TPM, TVD_MSG_ATTEST_REQUEST, err->message);
        return;
    }
    ev->attest = q.attest;
    ev->signature = q.signature;
    ev->pcr_bank = TVD_TPM_ALG_SHA256;
    vals = g_bytes_get_data(q.pcr_values, NULL);
    for (guint i = 0; i < 24; i++) {
        if (q.pcr_mask & (1u << i)) {
            ev->pcrs[ev->n_pcrs].index = i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(vals + 32 * idx++, 32);
            ev->n_pcrs++;
        }
    }
    if (g_file_test(a->cfg->ima_log, G_FILE_TEST_EXISTS)) {
        logs[n_logs].kind = TVD_LOG_IMA_NG;
        logs[n_logs].offset = r->ima_offset;
        logs[n_logs].entries = ima_since(a, r->ima_offset);
        n_logs++;
    }
    logs[n_logs].kind = TVD_LOG_AGENT_LIST;
    logs[n_logs].offset = r->agent_offset;
    logs[n_logs].entries = tvd_agent_list_since(a->list, r->agent_offset);
    n_logs++;

    /* The evidence carries what fits; LOG_CHUNK messages carry the rest. */
    for (guint i = 0; i < n_logs; i++) {
        gsize share = budget / n_logs;

        tvd_pending_log_fill_chunk(&logs[i], &ev->logs[i], share);
    }
    ev->n_logs = n_logs;
    if (!send_msg(a, &msg, &err)) {
        g_warning("cannot send the evidence: %s", err->message);
    }
    once_note(a, "pcr_select", r->pcr_select);
    once_note(a, "evidence_pcrs", ev->n_pcrs);
    for (guint i = 0; i < n_logs; i++) {
        once_note(a, logs[i].kind == TVD_LOG_IMA_NG ? "ima_entries"
                                                    : "agent_entries",
                  logs[i].entries->len);
        g_ptr_array_unref(ev->logs[i].entries);
        ev->logs[i].entries = NULL;
    }
    for (guint i = 0; i < ev->n_pcrs; i++) {
        g_bytes_unref(ev->pcrs[i].digest);
    }
    for (guint i = 0; i < n_logs && !err; i++) {
        while (logs[i].next < logs[i].entries->len) {
            TvdMsg chunk = { .type = TVD_MSG_LOG_CHUNK };

            tvd_pending_log_fill_chunk(&logs[i], &chunk.u.log_chunk, budget);
            if (!send_msg(a, &chunk, &err)) {
                g_warning("cannot send a log chunk: %s", err->message);
                g_ptr_array_unref(chunk.u.log_chunk.entries);
                break;
            }
            g_ptr_array_unref(chunk.u.log_chunk.entries);
        }
    }
    for (guint i = 0; i < n_logs; i++) {
        g_ptr_array_unref(logs[i].entries);
    }
}

static void run_hook(Agent *a, guint32 state, guint32 reason,
                     const char *text)
{
    g_autoptr(GError) err = NULL;
    g_auto(GStrv) env = g_get_environ();
    g_autofree char *st = g_strdup_printf("%u", state);
    g_autofree char *rs = g_strdup_printf("%u", reason);
    char *argv[] = { "/bin/sh", "-c", a->cfg->hook, NULL };

    env = g_environ_setenv(env, "TVD_STATE", st, TRUE);
    env = g_environ_setenv(env, "TVD_REASON", rs, TRUE);
    env = g_environ_setenv(env, "TVD_REASON_TEXT", text ? text : "", TRUE);
    if (!g_spawn_async(NULL, argv, env, G_SPAWN_DEFAULT, NULL, NULL, NULL,
                       &err)) {
        g_warning("hook: %s", err->message);
    }
}

static void on_membership(Agent *a, TvdMsgMembership *m)
{
    g_message("membership: %s (%s)", tvd_state_name(m->state),
              m->reason_text ? m->reason_text : "");
    if (a->once_log) {
        once_note_str(a, "membership", tvd_state_name(m->state));
        once_note_str(a, "reason", m->reason_text);
        a->exit_code = m->state == TVD_STATE_ADMITTED ? 0 : 1;
        g_main_loop_quit(a->loop);
    }
}

/* Decode (host-frame.c), check the sequence, dispatch; bad input is logged,
 * answered with an error report when it came from the supervisor, and
 * otherwise ignored. */
static void handle_frame(Agent *a, GBytes *frame)
{
    g_autoptr(GError) err = NULL;
    TvdMsg msg;
    guint16 type;
    gsize len;
    const void *data = g_bytes_get_data(frame, &len);
    guint32 half = tvd_transport_half_size(a->t);

    if (!tvd_agent_decode_host_frame(data, len, half - TVD_FRAME_HEADER_SIZE,
                                     &msg, &type, &err)) {
        g_warning("ignoring it: %s", err->message);
        if (g_error_matches(err, TVD_AGENT_FRAME_ERROR,
                            TVD_AGENT_FRAME_ERROR_MESSAGE)) {
            send_error(a, TVD_MSG_ERR_MALFORMED, 0, err->message);
        } else if (g_error_matches(err, TVD_AGENT_FRAME_ERROR,
                                   TVD_AGENT_FRAME_ERROR_DIRECTION)) {
            send_error(a, TVD_MSG_ERR_UNEXPECTED, type, "not for an agent");
        }
        return;
    }
    if (!tvd_agent_host_msg_expected(a->phase, msg.type, &err)) {
        g_warning("ignoring it: %s", err->message);
        send_error(a, TVD_MSG_ERR_UNEXPECTED, msg.type, err->message);
        tvd_msg_clear(&msg);
        return;
    }
    switch (msg.type) {
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        on_challenge(a, &msg.u.credential_challenge);
        break;
    case TVD_MSG_ATTEST_REQUEST:
        on_attest_request(a, &msg.u.attest_request);
        break;
    case TVD_MSG_MEMBERSHIP:
        on_membership(a, &msg.u.membership);
        break;
    case TVD_MSG_ERROR_REPORT:
        g_warning("the supervisor reports error %u: %s",
                  msg.u.error_report.code,
                  msg.u.error_report.text ? msg.u.error_report.text : "");
        break;
    default:
        g_warning("ignoring a %s message: not for an agent",
                  tvd_msg_type_name(msg.type));
        send_error(a, TVD_MSG_ERR_UNEXPECTED, msg.type, "not for an agent");
        break;
    }
    tvd_msg_clear(&msg);
}

/* ---- the device --------------------------------------------------------------- */

/* @causes: interrupt causes already taken (uio), or 0 to read them here. */
static void poll_device(Agent *a, guint32 causes)
{
    gboolean sup;
    guint32 state;
    guint32 reason;
    GBytes *frame;

    if (!a->t) {
        return;
    }
    if (tvd_transport_irq_fd(a->t) < 0) {
        causes = tvd_transport_ack_irq(a->t);
    }
    if ((causes & TVD_INT_SUPERVISOR) && a->supervisor) {
        /* Gone and back between two looks: a new supervisor, a new hello. */
        a->supervisor = FALSE;
        set_phase(a, AGENT_WAIT_SUPERVISOR);
    }
    sup = tvd_transport_read_reg(a->t, TVD_REG_STATUS) & TVD_STATUS_SUPERVISOR;
    state = tvd_transport_read_reg(a->t, TVD_REG_STATE);
    reason = tvd_transport_read_reg(a->t, TVD_REG_REASON);
    if (state != a->state || reason != a->reason) {
        g_message("device state %s (reason 0x%x)", tvd_state_name(state), reason);
        if (a->cfg->hook) {
            run_hook(a, state, reason, NULL);
        }
        a->state = state;
        a->reason = reason;
    }
    if (sup != a->supervisor) {
        g_message("supervisor %s", sup ? "connected" : "went away");
        a->supervisor = sup;
        set_phase(a, sup ? AGENT_WAIT_SUPERVISOR : AGENT_WAIT_SUPERVISOR);
    }
    if (sup && (a->phase == AGENT_WAIT_SUPERVISOR ||
                (a->phase == AGENT_HELLO_SENT &&
                 g_get_monotonic_time() - a->hello_at > HELLO_RETRY_US))) {
        send_hello(a);
    }
    while ((frame = tvd_transport_take(a->t))) {
        handle_frame(a, frame);
        g_bytes_unref(frame);
    }
}

static gboolean on_tick(gpointer data)
{
    poll_device(data, 0);
    return G_SOURCE_CONTINUE;
}

static gboolean on_irq(gint fd, GIOCondition cond, gpointer data)
{
    Agent *a = data;

    poll_device(a, tvd_transport_ack_irq(a->t));
    return G_SOURCE_CONTINUE;
}

static gboolean try_open(gpointer data)
{
    Agent *a = data;
    g_autoptr(GError) err = NULL;

    a->retry_id = 0;
    a->t = tvd_transport_open(a->cfg->sysfs_root, a->cfg->device,
                              !a->cfg->no_uio, &err);
    if (!a->t) {
        g_warning("%s (retrying in %u ms)", err->message, a->retry_ms);
        a->retry_id = g_timeout_add(a->retry_ms, try_open, a);
        a->retry_ms = MIN(a->retry_ms * 2, RETRY_MAX_MS);
        return G_SOURCE_REMOVE;
    }
    g_message("tvd device %s, interrupts %s", tvd_transport_address(a->t),
              tvd_transport_irq_fd(a->t) >= 0 ? "through uio" : "polled");
    set_phase(a, AGENT_WAIT_SUPERVISOR);
    if (tvd_transport_irq_fd(a->t) >= 0) {
        a->irq_id = g_unix_fd_add(tvd_transport_irq_fd(a->t), G_IO_IN,
                                  on_irq, a);
    }
    /* Polling also backs up interrupts: a lost one costs one period. */
    a->tick_id = g_timeout_add(tvd_transport_irq_fd(a->t) >= 0
                               ? 1000 : a->cfg->poll_ms, on_tick, a);
    poll_device(a, 0);
    return G_SOURCE_REMOVE;
}

static gboolean on_signal(gpointer data)
{
    Agent *a = data;

    g_message("stopping");
    g_main_loop_quit(a->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean parse_alg(const char *s, TvdAgentTpmAlg *out)
{
    if (!s || !strcmp(s, "rsa")) {
        *out = TVD_AGENT_TPM_ALG_RSA;
    } else if (!strcmp(s, "ecc")) {
        *out = TVD_AGENT_TPM_ALG_ECC;
    } else {
        return FALSE;
    }
    return TRUE;
}

int tvd_agent_run(const TvdAgentConfig *cfg)
{
    Agent a = { .cfg = cfg, .retry_ms = RETRY_MIN_MS, .exit_code = 0 };
    g_autoptr(GError) err = NULL;

    if (!parse_alg(cfg->ek_alg, &a.ek_alg) ||
        !parse_alg(cfg->ak_alg, &a.ak_alg)) {
        g_printerr("tvd-agent: key algorithms are rsa or ecc\n");
        return 2;
    }
    if (!open_tpm(&a, &err)) {
        g_printerr("tvd-agent: TPM: %s\n", err->message);
        return 1;
    }
    a.loop = g_main_loop_new(NULL, FALSE);
    if (cfg->once) {
        a.once_log = g_string_new(NULL);
        a.exit_code = 1;
    }
    g_unix_signal_add(SIGTERM, on_signal, &a);
    g_unix_signal_add(SIGINT, on_signal, &a);
    try_open(&a);
    g_main_loop_run(a.loop);

    if (a.once_log) {
        printf("{\n%s\n}\n", a.once_log->str);
        g_string_free(a.once_log, TRUE);
    }
    g_clear_handle_id(&a.retry_id, g_source_remove);
    g_clear_handle_id(&a.tick_id, g_source_remove);
    g_clear_handle_id(&a.irq_id, g_source_remove);
    tvd_transport_close(a.t);
    tvd_agent_list_free(a.list);
    tvd_agent_tpm_free(a.tpm);
    g_clear_pointer(&a.ek_public, g_bytes_unref);
    g_clear_pointer(&a.ek_cert, g_bytes_unref);
    g_clear_pointer(&a.ak_public, g_bytes_unref);
    g_clear_pointer(&a.ak_name, g_bytes_unref);
    g_main_loop_unref(a.loop);
    return a.exit_code;
}
