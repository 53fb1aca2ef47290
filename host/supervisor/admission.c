/*
 * Admission and re-attestation of one VM: see admission.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-admission"

#include "admission.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "message.h"
#include "round.h"

#define SECRET_LEN          32u
/* Before a policy says otherwise, the first evidence must come this fast. */
#define FIRST_DEADLINE_MS   30000u

/* Where the admission of the VM stands (docs/supervisor.md, "Admission"). */
typedef enum {
    PHASE_WAIT_HELLO,       /* no agent yet, or the binding was lost */
    PHASE_WAIT_ACTIVATION,  /* challenge sent */
    PHASE_WAIT_EVIDENCE,    /* attest request sent */
    PHASE_WAIT_LOGS,        /* evidence in, log chunks still coming */
    PHASE_BOUND,            /* AK bound, between rounds */
    PHASE_COUNT_
} Phase;

/* What can happen to it. */
typedef enum {
    EV_AGENT_HELLO,
    EV_CREDENTIAL_RESPONSE,
    EV_EVIDENCE,
    EV_LOG_CHUNK,
    EV_AGENT_ERROR,         /* the agent reports an error */
    EV_MALFORMED,           /* an agent message that does not decode */
    EV_OTHER_MESSAGE,       /* a message the agent never sends */
    EV_ROUND_DUE,           /* the interval passed, or a re-attestation */
    EV_ANSWER_TIMEOUT,      /* a challenge or request went unanswered */
    EV_DEADLINE_MISSED,     /* the VM's membership deadline passed */
    EV_UNBIND,              /* the device went away or was reset */
    EV_COUNT_
} Event;

/* What the event does in that phase; the action sets the next phase. */
typedef enum {
    ACT_IGNORE,             /* out of sequence: logged and dropped */
    ACT_BIND,               /* check EK and AK, send the credential challenge */
    ACT_ACTIVATE,           /* check the secret: bound, first round */
    ACT_START_ROUND,        /* fresh nonce, attest request */
    ACT_TAKE_EVIDENCE,      /* keep it; verify once the logs are complete */
    ACT_TAKE_CHUNK,
    ACT_FAIL,               /* a verdict with the event's cause */
    ACT_LOG,                /* logged only (an agent error between rounds) */
    ACT_UNBIND,
} Action;

#define I ACT_IGNORE
#define F ACT_FAIL
static const Action transitions[EV_COUNT_][PHASE_COUNT_] = {
    /*                         WAIT_HELLO  WAIT_ACTIVATION   WAIT_EVIDENCE      WAIT_LOGS       BOUND */
    [EV_AGENT_HELLO]         = { ACT_BIND, ACT_BIND,         ACT_BIND,          ACT_BIND,       ACT_BIND },
    [EV_CREDENTIAL_RESPONSE] = { I,        ACT_ACTIVATE,     I,                 I,              I },
    [EV_EVIDENCE]            = { I,        I,                ACT_TAKE_EVIDENCE, I,              I },
    [EV_LOG_CHUNK]           = { F,        F,                F,                 ACT_TAKE_CHUNK, F },
    [EV_AGENT_ERROR]         = { ACT_LOG,  F,                F,                 ACT_LOG,        ACT_LOG },
    [EV_MALFORMED]           = { I,        F,                F,                 F,              I },
    [EV_OTHER_MESSAGE]       = { I,        I,                I,                 I,              I },
    [EV_ROUND_DUE]           = { I,        I,                I,                 I,              ACT_START_ROUND },
    [EV_ANSWER_TIMEOUT]      = { I,        F,                F,                 F,              I },
    [EV_DEADLINE_MISSED]     = { F,        F,                F,                 F,              F },
    [EV_UNBIND]              = { ACT_UNBIND, ACT_UNBIND,     ACT_UNBIND,        ACT_UNBIND,     ACT_UNBIND },
};
#undef I
#undef F

static const char *const phase_names[PHASE_COUNT_] = {
    "wait-hello", "wait-activation", "wait-evidence", "wait-logs", "bound",
};

static const char *const event_names[EV_COUNT_] = {
    "agent-hello", "credential-response", "evidence", "log-chunk",
    "agent-error", "malformed", "other-message", "round-due",
    "answer-timeout", "deadline-missed", "unbind",
};

/*
 * An event with what it carries: a decoded message (hello, response,
 * evidence, chunk, error), or the verdict a failing event gives.
 */
typedef struct {
    Event event;
    TvdMsg *msg;
    TvdVerdict failure;     /* cause + detail, for ACT_FAIL */
} EventArg;

/* Agent hellos: each costs EK and AK checks, so a VM gets a few at once
 * and then one per HELLO_REFILL_MS. */
#define HELLO_BURST         4u
#define HELLO_REFILL_MS     1000u
/* Bounds what a guest can make us buffer before a verdict. */
#define ROUND_BYTES_MAX     (64u * 1024 * 1024)

struct TvdAdmission {
    const TvdAdmissionHost *host;
    void *vm;
    const TvdAdmissionShared *shared;
    Phase phase;

    /* from the agent hello */
    guint32 agent_version;
    guint64 caps;
    guint8 agent_pcr;
    TvdTpmPublic *ek;
    TvdAkKey *ak;
    gboolean ak_bound;              /* ActivateCredential answered right */
    guint8 secret[SECRET_LEN];

    /* the round in progress: its request and what came in answer */
    TvdRoundRequest req;
    TvdMsgEvidence evidence;
    gboolean have_evidence;
    /* by TvdLogKind: GBytes, chunks after evidence */
    GPtrArray *chunk_entries[TVD_ROUND_LOG_KINDS];
    gboolean chunk_more[TVD_ROUND_LOG_KINDS];
    gint64 round_start_us;

    /* what the binding's rounds have proven (log replays, measurements,
     * the TPM's clock): kept between rounds, dropped with the binding */
    TvdRoundState *round_state;

    gsize round_bytes;              /* log entry bytes buffered this round */

    /* hello rate limit (token bucket) and the checks of the last hello */
    guint hello_tokens;
    gint64 hello_refill_us;
    guint8 checked_ids[32];         /* SHA-256 of EK public, cert, AK public */
    gboolean have_checked;

    guint deadline_id;              /* how long the pending answer may take */
    guint interval_id;
    TvdAdmissionStats stats;
};

/* ---- helpers -------------------------------------------------------------- */

static TvdPolicy *adm_policy(TvdAdmission *adm)
{
    return adm->host->policy(adm->vm);
}

guint tvd_admission_interval_ms(TvdAdmission *adm)
{
    TvdPolicy *p = adm_policy(adm);

    return p ? tvd_policy_data(p)->interval_ms : adm->shared->default_interval_ms;
}

guint tvd_admission_deadline_ms(TvdAdmission *adm)
{
    TvdPolicy *p = adm_policy(adm);

    return p ? tvd_policy_data(p)->deadline_ms : adm->shared->default_deadline_ms;
}

static void cancel_timers(TvdAdmission *adm)
{
    g_clear_handle_id(&adm->deadline_id, g_source_remove);
    g_clear_handle_id(&adm->interval_id, g_source_remove);
}

static void clear_round(TvdAdmission *adm)
{
    if (adm->have_evidence) {
        tvd_msg_evidence_clear(&adm->evidence);
        adm->have_evidence = FALSE;
    }
    for (guint k = 0; k < G_N_ELEMENTS(adm->chunk_entries); k++) {
        g_clear_pointer(&adm->chunk_entries[k], g_ptr_array_unref);
        adm->chunk_more[k] = FALSE;
    }
    adm->round_bytes = 0;
}

/* Forget the binding: a new agent hello starts from scratch. */
static void unbind(TvdAdmission *adm)
{
    cancel_timers(adm);
    /* Nonces issued for this binding answer nothing any more. */
    tvd_nonce_store_revoke_owner(adm->shared->nonces,
                                 adm->host->name(adm->vm));
    clear_round(adm);
    g_clear_pointer(&adm->ek, tvd_tpm_public_free);
    g_clear_pointer(&adm->ak, tvd_ak_key_free);
    adm->ak_bound = FALSE;
    g_clear_pointer(&adm->round_state, tvd_round_state_free);
    OPENSSL_cleanse(adm->secret, sizeof(adm->secret));
    adm->phase = PHASE_WAIT_HELLO;
}

static void send_msg(TvdAdmission *adm, const TvdMsg *msg)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) payload = tvd_msg_encode(msg, &err);

    if (!payload || !adm->host->send(adm->vm, payload, &err)) {
        g_warning("%s: cannot send %s: %s", adm->host->name(adm->vm),
                  tvd_msg_type_name(msg->type), err->message);
    }
}

static void send_membership(TvdAdmission *adm, const TvdVerdict *v)
{
    TvdMsg msg = { .type = TVD_MSG_MEMBERSHIP };
    g_autofree char *text = NULL;

    /*
     * The agent hears only a verdict the host took: not one that would
     * lift a revocation (a round in flight when the VM was revoked), nor an
     * ADMITTED whose record could not be written (the host failed closed
     * to QUARANTINED). The device already shows the host's state.
     */
    if (adm->host->state(adm->vm) != v->state) {
        return;
    }
    text = v->detail[0] ? g_strdup_printf("%s: %s", tvd_cause_name(v->cause),
                                          v->detail)
                        : g_strdup(tvd_cause_name(v->cause));
    msg.u.membership.state = v->state;
    msg.u.membership.reason = tvd_cause_class(v->cause);
    msg.u.membership.reason_text = text;
    msg.u.membership.deadline_s = v->state == TVD_STATE_REVOKED ? 0 :
        (tvd_admission_interval_ms(adm) + tvd_admission_deadline_ms(adm) + 999) / 1000;
    send_msg(adm, &msg);
}

static void dispatch(TvdAdmission *adm, EventArg *arg);

static void dispatch_event(TvdAdmission *adm, Event event)
{
    EventArg arg = { .event = event };

    dispatch(adm, &arg);
}

static gboolean on_interval(gpointer data)
{
    TvdAdmission *adm = data;

    adm->interval_id = 0;
    dispatch_event(adm, EV_ROUND_DUE);
    return G_SOURCE_REMOVE;
}

static void schedule_next_round(TvdAdmission *adm)
{
    g_clear_handle_id(&adm->interval_id, g_source_remove);
    adm->interval_id = g_timeout_add(tvd_admission_interval_ms(adm), on_interval, adm);
}

/* The state a failure leads to: the policy's on_failure action. */
static enum tvd_state failure_state(TvdAdmission *adm, gboolean *stop)
{
    TvdPolicy *p = adm_policy(adm);
    TvdPolicyOnFailure action = p ? tvd_policy_data(p)->on_failure
                                  : TVD_POLICY_ON_FAILURE_QUARANTINE;

    *stop = action == TVD_POLICY_ON_FAILURE_STOP;
    return action == TVD_POLICY_ON_FAILURE_REVOKE ? TVD_STATE_REVOKED
                                                  : TVD_STATE_QUARANTINED;
}

/*
 * A failed round: @v (its state the policy's action). Quarantined VMs keep
 * being attested (they come back when they comply); revoked ones not.
 */
static void fail_with(TvdAdmission *adm, const TvdVerdict *v, gboolean stop)
{
    adm->stats.failures++;
    g_clear_handle_id(&adm->deadline_id, g_source_remove);
    clear_round(adm);
    adm->host->verdict(adm->vm, v, FALSE, stop);
    send_membership(adm, v);
    if (adm->ak_bound && v->state != TVD_STATE_REVOKED) {
        adm->phase = PHASE_BOUND;
        schedule_next_round(adm);
    } else {
        unbind(adm);
    }
}

/* A failure whose detail is already escaped (an event's verdict). */
static void fail_verdict(TvdAdmission *adm, const TvdVerdict *failure)
{
    TvdVerdict v = *failure;
    gboolean stop;

    v.state = failure_state(adm, &stop);
    fail_with(adm, &v, stop);
}

static void fail(TvdAdmission *adm, TvdCause cause, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);
static void fail(TvdAdmission *adm, TvdCause cause, const char *fmt, ...)
{
    TvdVerdict v;
    gboolean stop;
    va_list ap;

    va_start(ap, fmt);
    tvd_verdict_setv(&v, failure_state(adm, &stop), cause, fmt, ap);
    va_end(ap);
    fail_with(adm, &v, stop);
}

/* A verifier error (TVD_VERIFY_ERROR) as a failed round. */
static void fail_verify(TvdAdmission *adm, const GError *err,
                        const char *what)
{
    fail(adm, tvd_cause_from_verify_error(err->code), "%s%s%s",
         what ? what : "", what ? ": " : "", err->message);
}

static gboolean on_deadline(gpointer data)
{
    TvdAdmission *adm = data;
    EventArg arg = { .event = EV_ANSWER_TIMEOUT };

    adm->deadline_id = 0;
    /* Without an answer, the binding cannot be trusted to still hold. */
    tvd_verdict_set(&arg.failure, TVD_STATE_QUARANTINED,
                    TVD_CAUSE_DEADLINE_MISSED, "no %s within %u ms",
                    adm->phase == PHASE_WAIT_ACTIVATION
                    ? "credential response" : "evidence",
                    tvd_admission_deadline_ms(adm));
    dispatch(adm, &arg);
    return G_SOURCE_REMOVE;
}

static void arm_deadline(TvdAdmission *adm, guint ms)
{
    g_clear_handle_id(&adm->deadline_id, g_source_remove);
    adm->deadline_id = g_timeout_add(ms, on_deadline, adm);
}

/* ---- hello and credential activation -------------------------------------- */

/* One more hello allowed? A token bucket of HELLO_BURST. */
static gboolean hello_allowed(TvdAdmission *adm)
{
    gint64 now = g_get_monotonic_time();
    gint64 step = (gint64)HELLO_REFILL_MS * 1000;

    if (adm->hello_refill_us == 0) {
        adm->hello_tokens = HELLO_BURST;
        adm->hello_refill_us = now;
    }
    while (adm->hello_tokens < HELLO_BURST &&
           now - adm->hello_refill_us >= step) {
        adm->hello_tokens++;
        adm->hello_refill_us += step;
    }
    if (adm->hello_tokens == HELLO_BURST) {
        adm->hello_refill_us = now;
    }
    if (adm->hello_tokens == 0) {
        return FALSE;
    }
    adm->hello_tokens--;
    return TRUE;
}

/* SHA-256 over the identities a hello presents (length-prefixed). */
static void hello_ids(GBytes *ek_public, GBytes *cert, GBytes *ak_public,
                      GBytes *ak_name, guint8 out[32])
{
    g_autoptr(GChecksum) c = g_checksum_new(G_CHECKSUM_SHA256);
    GBytes *parts[] = { ek_public, cert, ak_public, ak_name };
    gsize n = 32;

    for (guint i = 0; i < G_N_ELEMENTS(parts); i++) {
        gsize len = parts[i] ? g_bytes_get_size(parts[i]) : 0;
        guint8 be[4] = { len >> 24, len >> 16, len >> 8, len };

        g_checksum_update(c, be, sizeof(be));
        if (len) {
            g_checksum_update(c, g_bytes_get_data(parts[i], NULL), len);
        }
    }
    g_checksum_get_digest(c, out, &n);
}

static void on_hello(TvdAdmission *adm, TvdMsgAgentHello *h)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) bound = NULL;
    GBytes *cert;
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_CHALLENGE };
    g_autoptr(GBytes) blob = NULL;
    g_autoptr(GBytes) enc = NULL;
    const guint8 *name;
    gsize name_len;
    gsize len;
    const guint8 *data;
    guint8 ids[32];
    gboolean checked;

    if (!hello_allowed(adm)) {
        /* Dropped, not answered: the binding and the deadline stay. */
        if (adm->stats.hellos_limited++ == 0) {
            g_warning("%s: agent hellos above %u per %u ms are dropped",
                      adm->host->name(adm->vm), 1u, HELLO_REFILL_MS);
        }
        return;
    }
    unbind(adm);
    adm->round_start_us = g_get_monotonic_time();
    if (!h->ek_public || g_bytes_get_size(h->ek_public) == 0) {
        fail(adm, TVD_CAUSE_EK_PUBLIC_MISSING, "the agent hello carries no "
             "EK public area");
        return;
    }
    /*
     * The EK binding: the EK must be the one of the vTPM provisioned for
     * this VM, or the one the operator registered for an adopted VM (its
     * certificate), chaining to the host's vTPM CA. The certificate an
     * agent sends is not believed: a guest could relay its challenges to
     * another VM's vTPM whose certificate the CA also issued.
     */
    bound = adm->host->ek_cert(adm->vm, h->ek_type);
    if (!bound) {
        fail(adm, TVD_CAUSE_EK_NOT_BOUND, "no EK is registered for this "
             "adopted VM (tvdctl vm register-ek)");
        return;
    }
    cert = bound;
    if (g_bytes_get_size(cert) == 0) {
        fail(adm, TVD_CAUSE_EK_CERT_MISSING, "no EK certificate of this "
             "type for this VM");
        return;
    }
    /* The same EK, certificate and AK as the last good hello: checked. */
    hello_ids(h->ek_public, cert, h->ak_public, h->ak_name, ids);
    checked = adm->have_checked &&
              CRYPTO_memcmp(ids, adm->checked_ids, sizeof(ids)) == 0;
    data = g_bytes_get_data(h->ek_public, &len);
    adm->ek = tvd_tpm_public_parse(data, len, &err);
    if (!adm->ek || (!checked && !tvd_tpm_public_check_ek(adm->ek, &err))) {
        fail_verify(adm, err, "ek");
        return;
    }
    data = g_bytes_get_data(cert, &len);
    if (!checked &&
        !tvd_ek_cert_verify(data, len,
                            g_bytes_get_data(adm->shared->ca_pem, NULL),
                            g_bytes_get_size(adm->shared->ca_pem),
                            tvd_tpm_public_pkey(adm->ek), &err)) {
        if (g_error_matches(err, TVD_VERIFY_ERROR,
                            TVD_VERIFY_ERROR_EK_KEY_MISMATCH)) {
            fail(adm, TVD_CAUSE_EK_NOT_BOUND, "the agent's EK is not the "
                 "one bound to this VM: %s", err->message);
        } else {
            fail_verify(adm, err, "ek certificate");
        }
        return;
    }
    data = g_bytes_get_data(h->ak_public, &len);
    adm->ak = tvd_ak_key_new_from_public(data, len, &err);
    if (!adm->ak ||
        (!checked &&
         !tvd_tpm_public_check_name(tvd_ak_key_public(adm->ak),
                                    g_bytes_get_data(h->ak_name, NULL),
                                    g_bytes_get_size(h->ak_name), &err))) {
        fail_verify(adm, err, "ak");
        return;
    }
    memcpy(adm->checked_ids, ids, sizeof(ids));
    adm->have_checked = TRUE;
    adm->agent_version = h->agent_version;
    adm->caps = h->capabilities;
    adm->agent_pcr = h->agent_pcr;

    /* MakeCredential binds the AK to this EK: only that TPM can answer. */
    if (RAND_bytes(adm->secret, sizeof(adm->secret)) != 1) {
        fail(adm, TVD_CAUSE_CRYPTO, "no random secret");
        return;
    }
    name = tvd_tpm_public_name(tvd_ak_key_public(adm->ak), &name_len);
    if (!tvd_make_credential(adm->ek, name, name_len, adm->secret,
                             sizeof(adm->secret), &blob, &enc, &err)) {
        fail(adm, TVD_CAUSE_CRYPTO, "make-credential: %s", err->message);
        return;
    }
    msg.u.credential_challenge.credential_blob = blob;
    msg.u.credential_challenge.encrypted_secret = enc;
    adm->phase = PHASE_WAIT_ACTIVATION;
    send_msg(adm, &msg);
    arm_deadline(adm, MAX(tvd_admission_deadline_ms(adm), FIRST_DEADLINE_MS));
    g_debug("%s: agent %u.%u.%u said hello; credential challenge sent",
            adm->host->name(adm->vm), h->agent_version >> 16,
            (h->agent_version >> 8) & 0xff, h->agent_version & 0xff);
}

static void start_round(TvdAdmission *adm);

static void on_credential_response(TvdAdmission *adm,
                                   TvdMsgCredentialResponse *r)
{
    gsize len;
    const guint8 *secret = g_bytes_get_data(r->secret, &len);

    if (len != sizeof(adm->secret) ||
        CRYPTO_memcmp(secret, adm->secret, sizeof(adm->secret)) != 0) {
        fail(adm, TVD_CAUSE_CREDENTIAL_MISMATCH, "the AK is not bound to "
             "the VM's EK (ActivateCredential answered a wrong secret)");
        return;
    }
    OPENSSL_cleanse(adm->secret, sizeof(adm->secret));
    adm->ak_bound = TRUE;
    g_clear_pointer(&adm->round_state, tvd_round_state_free);
    adm->round_state = tvd_round_state_new();
    adm->phase = PHASE_BOUND;
    start_round(adm);
}

/* ---- attestation rounds ------------------------------------------------------- */

/*
 * A round: the request (nonce, and the PCRs and logs the policy requires,
 * from the offsets the binding has proven) is the round verifier's to make.
 */
static void start_round(TvdAdmission *adm)
{
    g_autoptr(GError) err = NULL;
    TvdMsg msg = { .type = TVD_MSG_ATTEST_REQUEST };

    if (adm->phase != PHASE_BOUND ||
        adm->host->state(adm->vm) == TVD_STATE_REVOKED) {
        return;
    }
    /*
     * One live nonce per VM: one of an earlier request of this VM answers
     * nothing any more, and consumed ones make room for live ones, so no
     * guest can fill the store that every VM's rounds draw from.
     */
    tvd_nonce_store_revoke_owner(adm->shared->nonces,
                                 adm->host->name(adm->vm));
    tvd_nonce_store_make_room(adm->shared->nonces);
    if (!tvd_round_request_new(&adm->req, adm->round_state, adm_policy(adm),
                               adm->caps, adm->shared->nonces,
                               adm->host->name(adm->vm), &err)) {
        g_warning("%s: no round: %s", adm->host->name(adm->vm), err->message);
        schedule_next_round(adm);
        return;
    }
    tvd_round_request_to_msg(&adm->req, &msg.u.attest_request);
    adm->phase = PHASE_WAIT_EVIDENCE;
    adm->round_start_us = g_get_monotonic_time();
    send_msg(adm, &msg);
    arm_deadline(adm, adm->stats.rounds ? tvd_admission_deadline_ms(adm)
                                        : MAX(tvd_admission_deadline_ms(adm),
                                              FIRST_DEADLINE_MS));
}

/* The evidence and its log chunks are in: the round verifier judges. */
static void verify_round(TvdAdmission *adm)
{
    TvdRoundInput in = {
        .policy = adm_policy(adm),
        .ak = adm->ak,
        .agent_pcr = adm->agent_pcr,
        .agent_version = adm->agent_version,
        .nonces = adm->shared->nonces,
        .owner = adm->host->name(adm->vm),
        .evidence = &adm->evidence,
        .max_log_bytes = ROUND_BYTES_MAX,
    };
    TvdRoundResult r;
    gboolean passed;

    g_clear_handle_id(&adm->deadline_id, g_source_remove);
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        in.chunk_entries[k] = adm->chunk_entries[k];
    }
    passed = tvd_round_verify(adm->round_state, &adm->req, &in, &r);
    if (r.evidence_valid) {
        adm->stats.rounds++;
    }
    adm->stats.last_round_us = g_get_monotonic_time() - adm->round_start_us;
    if (!passed) {
        /*
         * A TPM reset or rollback since the last round: the AK's binding
         * and the logs' replay belong to a boot that is gone; the agent
         * must say hello and be bound again.
         */
        if (r.verdict.cause == TVD_CAUSE_TPM_RESET) {
            adm->ak_bound = FALSE;
        }
        fail_with(adm, &r.verdict, r.stop);
        return;
    }
    clear_round(adm);
    adm->phase = PHASE_BOUND;
    adm->host->verdict(adm->vm, &r.verdict, TRUE, FALSE);
    send_membership(adm, &r.verdict);
    schedule_next_round(adm);
}

static gboolean logs_complete(TvdAdmission *adm)
{
    for (guint k = 0; k < G_N_ELEMENTS(adm->chunk_more); k++) {
        if (adm->chunk_more[k]) {
            return FALSE;
        }
    }
    return TRUE;
}

/* Log entry bytes a round buffers: FALSE (and a verdict) above the cap. */
static gboolean count_round_bytes(TvdAdmission *adm, GPtrArray *entries)
{
    for (guint j = 0; entries && j < entries->len; j++) {
        adm->round_bytes += g_bytes_get_size(entries->pdata[j]);
    }
    if (adm->round_bytes > ROUND_BYTES_MAX) {
        fail(adm, TVD_CAUSE_LOG_LIMIT, "more than %u bytes of log entries in "
             "one round", ROUND_BYTES_MAX);
        return FALSE;
    }
    return TRUE;
}

static void take_evidence(TvdAdmission *adm, TvdMsg *msg)
{
    adm->evidence = msg->u.evidence;
    memset(&msg->u.evidence, 0, sizeof(msg->u.evidence));
    adm->have_evidence = TRUE;
    for (guint i = 0; i < adm->evidence.n_logs; i++) {
        TvdMsgLogChunk *c = &adm->evidence.logs[i];

        if (!count_round_bytes(adm, c->entries)) {
            return;
        }
        if (c->kind < G_N_ELEMENTS(adm->chunk_more)) {
            adm->chunk_more[c->kind] = c->more;
        }
    }
    if (logs_complete(adm)) {
        verify_round(adm);
    } else {
        adm->phase = PHASE_WAIT_LOGS;
    }
}

/* Bounds what a guest can make us buffer before a verdict. */
#define CHUNK_ENTRIES_MAX   (16u * TVD_MSG_LOG_ENTRIES_MAX)

static void take_chunk(TvdAdmission *adm, TvdMsgLogChunk *c)
{
    GPtrArray **dst;

    if (c->kind >= G_N_ELEMENTS(adm->chunk_more) || !adm->chunk_more[c->kind]) {
        fail(adm, TVD_CAUSE_LOG_OFFSET, "unexpected log chunk");
        return;
    }
    if (!count_round_bytes(adm, c->entries)) {
        return;
    }
    dst = &adm->chunk_entries[c->kind];
    if (!*dst) {
        *dst = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    }
    for (guint j = 0; c->entries && j < c->entries->len; j++) {
        if ((*dst)->len >= CHUNK_ENTRIES_MAX) {
            fail(adm, TVD_CAUSE_LOG_LIMIT, "more than %u log entries in one "
                 "round", CHUNK_ENTRIES_MAX);
            return;
        }
        g_ptr_array_add(*dst, g_bytes_ref(c->entries->pdata[j]));
    }
    adm->chunk_more[c->kind] = c->more;
    if (logs_complete(adm)) {
        verify_round(adm);
    }
}

/* ---- the state machine ------------------------------------------------------ */

static void dispatch(TvdAdmission *adm, EventArg *arg)
{
    Phase from = adm->phase;
    Action action = transitions[arg->event][from];
    TvdMsg *msg = arg->msg;

    switch (action) {
    case ACT_IGNORE:
        if (msg) {
            g_warning("%s: %s out of sequence (%s): ignored",
                      adm->host->name(adm->vm), tvd_msg_type_name(msg->type),
                      phase_names[from]);
        }
        break;
    case ACT_LOG: {
        /* Guest text: escaped and bounded before it reaches the log. */
        char text[TVD_CAUSE_DETAIL_MAX];

        tvd_escape_bounded(msg->u.error_report.text, -1, text, sizeof(text));
        g_message("%s: agent reports error %u: %s", adm->host->name(adm->vm),
                  msg->u.error_report.code, text);
        break;
    }
    case ACT_BIND:
        on_hello(adm, &msg->u.agent_hello);
        break;
    case ACT_ACTIVATE:
        on_credential_response(adm, &msg->u.credential_response);
        break;
    case ACT_START_ROUND:
        g_clear_handle_id(&adm->interval_id, g_source_remove);
        start_round(adm);
        break;
    case ACT_TAKE_EVIDENCE:
        take_evidence(adm, msg);
        break;
    case ACT_TAKE_CHUNK:
        take_chunk(adm, &msg->u.log_chunk);
        break;
    case ACT_FAIL:
        fail_verdict(adm, &arg->failure);
        break;
    case ACT_UNBIND:
        unbind(adm);
        break;
    }
    if (adm->phase != from) {
        g_debug("%s: %s: %s -> %s", adm->host->name(adm->vm),
                event_names[arg->event], phase_names[from],
                phase_names[adm->phase]);
    }
}

/* ---- API ------------------------------------------------------------------------ */

void tvd_admission_agent_frame(TvdAdmission *adm, GBytes *payload)
{
    TvdMsg msg;
    g_autoptr(GError) err = NULL;
    EventArg arg = { .msg = &msg };

    if (!tvd_msg_decode(payload, &msg, &err)) {
        /*
         * A malformed message is the guest's problem, not ours: say why,
         * escaped and bounded (the error may quote the guest's bytes).
         */
        tvd_verdict_set(&arg.failure, TVD_STATE_QUARANTINED,
                        TVD_CAUSE_MESSAGE_MALFORMED, "%s", err->message);
        g_warning("%s: malformed agent message: %s", adm->host->name(adm->vm),
                  arg.failure.detail);
        arg.event = EV_MALFORMED;
        arg.msg = NULL;
        dispatch(adm, &arg);
        return;
    }
    switch (msg.type) {
    case TVD_MSG_AGENT_HELLO:
        arg.event = EV_AGENT_HELLO;
        break;
    case TVD_MSG_CREDENTIAL_RESPONSE:
        arg.event = EV_CREDENTIAL_RESPONSE;
        break;
    case TVD_MSG_EVIDENCE:
        arg.event = EV_EVIDENCE;
        break;
    case TVD_MSG_LOG_CHUNK:
        arg.event = EV_LOG_CHUNK;
        tvd_verdict_set(&arg.failure, TVD_STATE_QUARANTINED,
                        TVD_CAUSE_LOG_OFFSET, "unexpected log chunk");
        break;
    case TVD_MSG_ERROR_REPORT:
        arg.event = EV_AGENT_ERROR;
        tvd_verdict_set(&arg.failure, TVD_STATE_QUARANTINED,
                        TVD_CAUSE_AGENT_ERROR, "%u: %s",
                        msg.u.error_report.code,
                        msg.u.error_report.text ? msg.u.error_report.text : "");
        break;
    default:
        arg.event = EV_OTHER_MESSAGE;
        break;
    }
    dispatch(adm, &arg);
    tvd_msg_clear(&msg);
}

void tvd_admission_reset(TvdAdmission *adm)
{
    dispatch_event(adm, EV_UNBIND);
}

void tvd_admission_reattest(TvdAdmission *adm)
{
    dispatch_event(adm, EV_ROUND_DUE);
}

void tvd_admission_deadline_missed(TvdAdmission *adm, const char *detail)
{
    EventArg arg = { .event = EV_DEADLINE_MISSED };

    tvd_verdict_set(&arg.failure, TVD_STATE_QUARANTINED,
                    TVD_CAUSE_DEADLINE_MISSED, "%s", detail);
    dispatch(adm, &arg);
}

const TvdAdmissionStats *tvd_admission_stats(const TvdAdmission *adm)
{
    return &adm->stats;
}

TvdAdmission *tvd_admission_new(const TvdAdmissionHost *host, void *vm,
                                const TvdAdmissionShared *shared)
{
    TvdAdmission *adm = g_new0(TvdAdmission, 1);

    adm->host = host;
    adm->vm = vm;
    adm->shared = shared;
    adm->phase = PHASE_WAIT_HELLO;
    return adm;
}

void tvd_admission_free(TvdAdmission *adm)
{
    if (!adm) {
        return;
    }
    unbind(adm);
    g_free(adm);
}
