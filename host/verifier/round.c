/*
 * The round verifier: see round.h and docs/verifier.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "round.h"

#include <string.h>
#include <tss2/tss2_mu.h>

typedef struct {
    char *path;
    guint8 sha256[32];
} Measurement;

/* What one log kind has proven so far. */
typedef struct {
    TvdImaReplay *replay;           /* NULL until its first round */
    GArray *measurements;           /* Measurement, log order */
    gboolean have_boot_aggregate;   /* IMA: the first record, proven */
    char boot_aggregate_alg[16];
    guint8 boot_aggregate[64];
    gsize boot_aggregate_len;
} LogState;

struct TvdRoundState {
    LogState logs[TVD_ROUND_LOG_KINDS];
    gboolean have_quote;
    TvdQuoteInfo last_quote;
};

static void measurement_clear(gpointer data)
{
    g_free(((Measurement *)data)->path);
}

static GArray *measurements_new(void)
{
    GArray *a = g_array_new(FALSE, TRUE, sizeof(Measurement));

    g_array_set_clear_func(a, measurement_clear);
    return a;
}

static void log_state_reset(LogState *l)
{
    g_clear_pointer(&l->replay, tvd_ima_replay_free);
    g_array_set_size(l->measurements, 0);
    l->have_boot_aggregate = FALSE;
}

TvdRoundState *tvd_round_state_new(void)
{
    TvdRoundState *s = g_new0(TvdRoundState, 1);

    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        s->logs[k].measurements = measurements_new();
    }
    return s;
}

void tvd_round_state_free(TvdRoundState *state)
{
    if (!state) {
        return;
    }
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        g_clear_pointer(&state->logs[k].replay, tvd_ima_replay_free);
        g_array_unref(state->logs[k].measurements);
    }
    g_free(state);
}

guint64 tvd_round_state_log_offset(const TvdRoundState *state,
                                   TvdLogKind kind)
{
    if ((guint)kind >= TVD_ROUND_LOG_KINDS || !state->logs[kind].replay) {
        return 0;
    }
    return tvd_ima_replay_count(state->logs[kind].replay);
}

const TvdQuoteInfo *tvd_round_state_last_quote(const TvdRoundState *state)
{
    return state->have_quote ? &state->last_quote : NULL;
}

/* ---- The request ---------------------------------------------------------- */

/* A log replayed into another PCR or bank than the plan's starts over. */
static void keep_if_same(LogState *l, guint pcr, TPM2_ALG_ID bank)
{
    if (l->replay && (tvd_ima_replay_pcr(l->replay) != pcr ||
                      tvd_ima_replay_bank(l->replay) != bank)) {
        log_state_reset(l);
    }
}

gboolean tvd_round_request_new(TvdRoundRequest *req, TvdRoundState *state,
                               const TvdPolicy *policy, guint64 agent_caps,
                               TvdNonceStore *nonces, const char *owner,
                               GError **error)
{
    memset(req, 0, sizeof(*req));
    tvd_policy_evidence_plan(policy, (agent_caps & TVD_CAP_IMA) != 0,
                             (agent_caps & TVD_CAP_AGENT_LIST) != 0,
                             &req->plan);
    keep_if_same(&state->logs[TVD_LOG_IMA_NG], TVD_POLICY_IMA_PCR,
                 req->plan.pcr_bank);
    keep_if_same(&state->logs[TVD_LOG_AGENT_LIST], req->plan.agent_pcr,
                 req->plan.pcr_bank);
    req->ima_offset = tvd_round_state_log_offset(state, TVD_LOG_IMA_NG);
    req->agent_offset = tvd_round_state_log_offset(state, TVD_LOG_AGENT_LIST);
    return tvd_nonce_store_issue(nonces, owner, req->nonce, error);
}

void tvd_round_request_to_msg(const TvdRoundRequest *req,
                              TvdMsgAttestRequest *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->nonce, req->nonce, sizeof(out->nonce));
    out->pcr_bank = req->plan.pcr_bank;
    out->pcr_select = req->plan.pcr_select;
    out->ima_offset = req->ima_offset;
    out->agent_offset = req->agent_offset;
}

/* ---- Results ---------------------------------------------------------------- */

const char *tvd_round_step_name(TvdRoundStep step)
{
    static const char *const names[] = {
        [TVD_ROUND_STEP_NONE] = "passed",
        [TVD_ROUND_STEP_NONCE] = "nonce",
        [TVD_ROUND_STEP_PCR_VALUES] = "pcr-values",
        [TVD_ROUND_STEP_QUOTE] = "quote",
        [TVD_ROUND_STEP_CONTINUITY] = "continuity",
        [TVD_ROUND_STEP_EVIDENCE] = "evidence",
        [TVD_ROUND_STEP_LOGS] = "logs",
        [TVD_ROUND_STEP_POLICY] = "policy",
    };

    return (guint)step < G_N_ELEMENTS(names) ? names[step] : "unknown";
}

TvdCause tvd_round_cause_of_violation(TvdPolicyViolation violation)
{
    switch (violation) {
    case TVD_POLICY_OK:
        return TVD_CAUSE_ATTESTED;
    case TVD_POLICY_V_AGENT_VERSION:
        return TVD_CAUSE_POLICY_AGENT_VERSION;
    case TVD_POLICY_V_PCR_MISSING:
        return TVD_CAUSE_POLICY_PCR_MISSING;
    case TVD_POLICY_V_PCR_MISMATCH:
        return TVD_CAUSE_POLICY_PCR_MISMATCH;
    case TVD_POLICY_V_DIGEST_MISMATCH:
        return TVD_CAUSE_POLICY_DIGEST_MISMATCH;
    case TVD_POLICY_V_UNKNOWN_DIGEST:
        return TVD_CAUSE_POLICY_UNKNOWN_DIGEST;
    case TVD_POLICY_V_REQUIRED_MISSING:
        return TVD_CAUSE_POLICY_REQUIRED_MISSING;
    case TVD_POLICY_V_BAD_PATH:
        return TVD_CAUSE_POLICY_BAD_PATH;
    }
    return TVD_CAUSE_POLICY_UNKNOWN_DIGEST;
}

/* A failed round: the policy's action (quarantine without a policy). */
G_GNUC_PRINTF(5, 6)
static gboolean fail(TvdRoundResult *out, const TvdPolicy *policy,
                     TvdRoundStep step, TvdCause cause, const char *fmt, ...)
{
    TvdPolicyOnFailure action = policy ? tvd_policy_data(policy)->on_failure
                                       : TVD_POLICY_ON_FAILURE_QUARANTINE;
    va_list ap;

    va_start(ap, fmt);
    tvd_verdict_setv(&out->verdict,
                     action == TVD_POLICY_ON_FAILURE_REVOKE
                     ? TVD_STATE_REVOKED : TVD_STATE_QUARANTINED,
                     cause, fmt, ap);
    va_end(ap);
    out->stop = action == TVD_POLICY_ON_FAILURE_STOP;
    out->failed_step = step;
    return FALSE;
}

static gboolean fail_error(TvdRoundResult *out, const TvdPolicy *policy,
                           TvdRoundStep step, const GError *err)
{
    return fail(out, policy, step, tvd_cause_from_verify_error(err->code),
                "%s", err->message);
}

static const char *kind_name(TvdLogKind kind)
{
    return kind == TVD_LOG_IMA_NG ? "IMA" : "agent";
}

/* ---- Steps 2-4: PCR values, quote, continuity ------------------------------- */

static gboolean check_pcr_values(const TvdRoundRequest *req,
                                 const TvdRoundInput *in, TvdRoundResult *out,
                                 GByteArray *values)
{
    const TvdMsgEvidence *ev = in->evidence;
    guint16 bank = req->plan.pcr_bank;
    gsize size = tvd_tpm_hash_size(bank);
    guint32 want = req->plan.pcr_select, seen = 0;

    if (ev->pcr_bank != bank) {
        return fail(out, in->policy, TVD_ROUND_STEP_PCR_VALUES,
                    TVD_CAUSE_PCR_SELECTION_MISMATCH, "evidence of bank "
                    "0x%04x, bank 0x%04x was requested", ev->pcr_bank, bank);
    }
    for (guint i = 0; i < ev->n_pcrs && i < TVD_MSG_PCR_COUNT; i++) {
        guint idx = ev->pcrs[i].index;
        gsize len = 0;
        const guint8 *d = ev->pcrs[i].digest
                          ? g_bytes_get_data(ev->pcrs[i].digest, &len) : NULL;

        if (idx >= TVD_POLICY_PCR_COUNT || !(want & (1u << idx))) {
            return fail(out, in->policy, TVD_ROUND_STEP_PCR_VALUES,
                        TVD_CAUSE_PCR_VALUES, "a value for PCR %u, which was "
                        "not requested (selection 0x%06x)", idx, want);
        }
        if (seen & (1u << idx)) {
            return fail(out, in->policy, TVD_ROUND_STEP_PCR_VALUES,
                        TVD_CAUSE_PCR_VALUES, "PCR %u has two values", idx);
        }
        if (len != size) {
            return fail(out, in->policy, TVD_ROUND_STEP_PCR_VALUES,
                        TVD_CAUSE_PCR_VALUES, "PCR %u value of %zu bytes, the "
                        "bank's are %zu", idx, len, size);
        }
        seen |= 1u << idx;
        memcpy(out->pcrs[idx], d, size);
    }
    if (seen != want) {
        guint missing = (guint)g_bit_nth_lsf(want & ~seen, -1);

        return fail(out, in->policy, TVD_ROUND_STEP_PCR_VALUES,
                    TVD_CAUSE_PCR_VALUES, "no value for the requested PCR %u",
                    missing);
    }
    /* What the quote's digest covers: ascending PCR index. */
    for (guint i = 0; i < TVD_POLICY_PCR_COUNT; i++) {
        if (want & (1u << i)) {
            g_byte_array_append(values, out->pcrs[i], (guint)size);
        }
    }
    out->pcr_bank = bank;
    out->pcr_mask = want;
    return TRUE;
}

/* The qualifying data of a quote whose signature has been verified. */
static gboolean quoted_nonce(GBytes *attest, guint8 out[TVD_NONCE_LEN])
{
    TPMS_ATTEST a = { 0 };
    size_t off = 0;
    gsize len;
    const guint8 *d = g_bytes_get_data(attest, &len);

    if (Tss2_MU_TPMS_ATTEST_Unmarshal(d, len, &off, &a) != TSS2_RC_SUCCESS ||
        a.extraData.size != TVD_NONCE_LEN) {
        return FALSE;
    }
    memcpy(out, a.extraData.buffer, TVD_NONCE_LEN);
    return TRUE;
}

static gboolean check_quote(const TvdRoundRequest *req,
                            const TvdRoundInput *in, GByteArray *values,
                            TvdRoundResult *out)
{
    const TvdMsgEvidence *ev = in->evidence;
    g_autoptr(GError) err = NULL;
    TvdQuoteExpect expect = {
        .nonce = req->nonce,
        .nonce_len = TVD_NONCE_LEN,
        .pcr_bank = req->plan.pcr_bank,
        .pcr_select = req->plan.pcr_select,
        .pcr_values = values->data,
        .pcr_values_len = values->len,
    };
    gsize alen = 0, slen = 0;
    const guint8 *a = ev->attest ? g_bytes_get_data(ev->attest, &alen) : NULL;
    const guint8 *s = ev->signature
                      ? g_bytes_get_data(ev->signature, &slen) : NULL;
    guint8 quoted[TVD_NONCE_LEN];
    g_autoptr(GError) nerr = NULL;

    if (tvd_quote_verify(in->ak, a ? a : (const guint8 *)"", alen,
                         s ? s : (const guint8 *)"", slen, &expect,
                         &out->quote, &err)) {
        out->quote_verified = TRUE;
        return TRUE;
    }
    /*
     * An authentic quote over another nonce: the store says whether it is
     * a replay of an earlier round (nonce-reused), a nonce never issued or
     * expired, or one issued for another VM.
     */
    if (g_error_matches(err, TVD_VERIFY_ERROR,
                        TVD_VERIFY_ERROR_NONCE_MISMATCH) &&
        quoted_nonce(ev->attest, quoted) &&
        !tvd_nonce_store_consume(in->nonces, in->owner, quoted,
                                 sizeof(quoted), &nerr)) {
        return fail(out, in->policy, TVD_ROUND_STEP_QUOTE,
                    tvd_cause_from_verify_error(nerr->code), "the quote "
                    "answers another request: %s", nerr->message);
    }
    return fail_error(out, in->policy, TVD_ROUND_STEP_QUOTE, err);
}

static gboolean check_continuity(TvdRoundState *state,
                                 const TvdRoundInput *in, TvdRoundResult *out)
{
    out->continuity = tvd_quote_info_continuity(
        tvd_round_state_last_quote(state), &out->quote);
    if (out->continuity == TVD_TPM_RESET ||
        out->continuity == TVD_TPM_ROLLED_BACK) {
        return fail(out, in->policy, TVD_ROUND_STEP_CONTINUITY,
                    TVD_CAUSE_TPM_RESET, "the TPM was %s since the last "
                    "round of this binding (resetCount %u -> %u, "
                    "restartCount %u -> %u, clock %" G_GUINT64_FORMAT
                    " -> %" G_GUINT64_FORMAT ")",
                    out->continuity == TVD_TPM_RESET ? "reset"
                                                     : "rolled back",
                    state->last_quote.reset_count, out->quote.reset_count,
                    state->last_quote.restart_count,
                    out->quote.restart_count, state->last_quote.clock,
                    out->quote.clock);
    }
    state->last_quote = out->quote;
    state->have_quote = TRUE;
    return TRUE;
}

/* ---- Step 5: the evidence the policy requires ------------------------------- */

static const TvdMsgLogChunk *chunk_of(const TvdMsgEvidence *ev,
                                      TvdLogKind kind)
{
    for (guint i = 0; i < ev->n_logs && i < TVD_MSG_LOGS_MAX; i++) {
        if (ev->logs[i].kind == kind) {
            return &ev->logs[i];
        }
    }
    return NULL;
}

static gboolean check_required(const TvdRoundRequest *req,
                               const TvdRoundInput *in, TvdRoundResult *out)
{
    const TvdPolicyEvidencePlan *plan = &req->plan;

    if (plan->ima && !chunk_of(in->evidence, TVD_LOG_IMA_NG)) {
        return fail(out, in->policy, TVD_ROUND_STEP_EVIDENCE,
                    TVD_CAUSE_EVIDENCE_MISSING, "%s, and the evidence has "
                    "no IMA log (PCR %u)",
                    plan->ima_required ? "the policy requires the IMA log"
                                       : "the agent offered its IMA log",
                    TVD_POLICY_IMA_PCR);
    }
    if (plan->agent_list) {
        if (in->agent_pcr != plan->agent_pcr) {
            return fail(out, in->policy, TVD_ROUND_STEP_EVIDENCE,
                        TVD_CAUSE_MEASUREMENT_PCR, "the agent extends PCR "
                        "%u, the policy requires PCR %u", in->agent_pcr,
                        plan->agent_pcr);
        }
        if (!chunk_of(in->evidence, TVD_LOG_AGENT_LIST)) {
            return fail(out, in->policy, TVD_ROUND_STEP_EVIDENCE,
                        TVD_CAUSE_EVIDENCE_MISSING, "%s, and the evidence "
                        "has no agent list (PCR %u)",
                        plan->agent_list_required
                        ? "the policy requires the agent's list"
                        : "the agent offered its list", plan->agent_pcr);
        }
    }
    return TRUE;
}

/* ---- Step 6: the logs ----------------------------------------------------------- */

/* What a log's round proves, kept apart until every log is proven. */
typedef struct {
    TvdImaReplay *replay;
    GArray *measurements;           /* new ones */
    guint used;
    gboolean set_boot_aggregate;
    char boot_aggregate_alg[16];
    guint8 boot_aggregate[64];
    gsize boot_aggregate_len;
} Staged;

static void staged_clear(Staged *st)
{
    g_clear_pointer(&st->replay, tvd_ima_replay_free);
    g_clear_pointer(&st->measurements, g_array_unref);
}

static gsize entries_bytes(const GPtrArray *entries)
{
    gsize n = 0;

    for (guint i = 0; entries && i < entries->len; i++) {
        n += g_bytes_get_size(entries->pdata[i]);
    }
    return n;
}

static const char *bank_hash_name(TPM2_ALG_ID bank)
{
    switch (bank) {
    case TPM2_ALG_SHA1:
        return "sha1";
    case TPM2_ALG_SHA256:
        return "sha256";
    case TPM2_ALG_SHA384:
        return "sha384";
    case TPM2_ALG_SHA512:
        return "sha512";
    default:
        return "?";
    }
}

/* The boot_aggregate record (proven now or in an earlier round) against
 * the quoted PCRs 0-9: the kernel's ima_calc_boot_aggregate. */
static gboolean check_boot_aggregate(const LogState *l, const Staged *st,
                                     const TvdRoundRequest *req,
                                     const TvdRoundInput *in,
                                     TvdRoundResult *out)
{
    TPM2_ALG_ID bank = req->plan.pcr_bank;
    gsize size = tvd_tpm_hash_size(bank);
    const char *alg = st->set_boot_aggregate ? st->boot_aggregate_alg
                                             : l->boot_aggregate_alg;
    const guint8 *logged = st->set_boot_aggregate ? st->boot_aggregate
                                                  : l->boot_aggregate;
    gsize logged_len = st->set_boot_aggregate ? st->boot_aggregate_len
                                              : l->boot_aggregate_len;
    guint8 pcrs[10 * 64], want[64];
    g_autoptr(GError) err = NULL;

    if (!st->set_boot_aggregate && !l->have_boot_aggregate) {
        return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                    TVD_CAUSE_BOOT_AGGREGATE, "the IMA log has no "
                    "boot_aggregate record yet");
    }
    if (strcmp(alg, bank_hash_name(bank)) != 0) {
        return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                    TVD_CAUSE_BOOT_AGGREGATE, "boot_aggregate is a %s digest, "
                    "the quote is of the %s bank", alg, bank_hash_name(bank));
    }
    for (guint i = 0; i < 10; i++) {
        memcpy(pcrs + i * size, out->pcrs[i], size);
    }
    if (!tvd_ima_boot_aggregate(bank, pcrs, 10 * size, want, &err)) {
        return fail_error(out, in->policy, TVD_ROUND_STEP_LOGS, err);
    }
    if (logged_len != size || memcmp(logged, want, size) != 0) {
        return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                    TVD_CAUSE_BOOT_AGGREGATE, "boot_aggregate of the IMA log "
                    "is not the hash of the quoted PCRs 0-9");
    }
    return TRUE;
}

/* Parses, checks and replays one log; fills @st. */
static gboolean replay_log(TvdRoundState *state, const TvdRoundRequest *req,
                           const TvdRoundInput *in, TvdLogKind kind,
                           Staged *st, TvdRoundResult *out)
{
    const TvdPolicyEvidencePlan *plan = &req->plan;
    LogState *l = &state->logs[kind];
    const TvdMsgLogChunk *c = chunk_of(in->evidence, kind);
    GPtrArray *more = in->chunk_entries[kind];
    guint pcr = kind == TVD_LOG_IMA_NG ? TVD_POLICY_IMA_PCR : plan->agent_pcr;
    gsize size = tvd_tpm_hash_size(plan->pcr_bank);
    g_autoptr(GPtrArray) parsed = g_ptr_array_new_with_free_func(
        (GDestroyNotify)tvd_ima_entry_free);
    TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    g_autoptr(GError) err = NULL;
    guint n_chunk = c->entries ? c->entries->len : 0;
    guint n = n_chunk + (more ? more->len : 0);

    st->replay = l->replay ? tvd_ima_replay_copy(l->replay)
                           : tvd_ima_replay_new(plan->pcr_bank, pcr, &err);
    if (!st->replay) {
        return fail_error(out, in->policy, TVD_ROUND_STEP_LOGS, err);
    }
    st->measurements = measurements_new();
    for (guint i = 0; i < n; i++) {
        GBytes *b = i < n_chunk ? c->entries->pdata[i]
                                : more->pdata[i - n_chunk];
        gsize len;
        const guint8 *d = g_bytes_get_data(b, &len);
        TvdImaEntry *e = tvd_ima_entry_parse(d, len, &limits, &err);

        if (!e) {
            return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                        tvd_cause_from_verify_error(err->code), "%s log "
                        "entry %" G_GUINT64_FORMAT ": %s", kind_name(kind),
                        c->offset + i, err->message);
        }
        g_ptr_array_add(parsed, e);
        /* Counted but not extended, it could still satisfy the policy. */
        if (e->pcr != pcr) {
            return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                        TVD_CAUSE_LOG_PCR_MISMATCH, "%s log entry %"
                        G_GUINT64_FORMAT " is for PCR %u, the log is "
                        "replayed into PCR %u", kind_name(kind),
                        c->offset + i, e->pcr, pcr);
        }
    }
    if (!tvd_ima_replay_match(st->replay, c->offset, parsed, out->pcrs[pcr],
                              size, &st->used, &err)) {
        return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                    tvd_cause_from_verify_error(err->code), "%s log: %s",
                    kind_name(kind), err->message);
    }
    for (guint i = 0; i < st->used; i++) {
        const TvdImaEntry *e = parsed->pdata[i];
        guint64 index = c->offset + i;
        gboolean is_boot = kind == TVD_LOG_IMA_NG && index == 0;
        Measurement m = { 0 };

        if (e->violation) {
            if (!plan->ima_violations_allowed) {
                return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                            TVD_CAUSE_IMA_VIOLATION, "%s log entry %"
                            G_GUINT64_FORMAT " is a violation (%s): the file "
                            "read is not the one measured",
                            kind_name(kind), index, e->path);
            }
            continue;
        }
        /* Kept whatever the policy says now: a later policy may
         * reference it. */
        if (is_boot && !g_strcmp0(e->path, "boot_aggregate")) {
            st->set_boot_aggregate = TRUE;
            g_strlcpy(st->boot_aggregate_alg, e->digest_alg,
                      sizeof(st->boot_aggregate_alg));
            memcpy(st->boot_aggregate, e->digest, e->digest_len);
            st->boot_aggregate_len = e->digest_len;
        } else if (is_boot && plan->boot_aggregate) {
            return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                        TVD_CAUSE_BOOT_AGGREGATE, "the IMA log does not "
                        "start with boot_aggregate");
        }
        /*
         * The boot_aggregate record (IMA index 0) is no file: the policy
         * sees it apart. Anywhere else that name is a file's (the kernel
         * logs a bare name when it cannot build a path): judged like any.
         */
        if (!e->path || (is_boot && !g_strcmp0(e->path, "boot_aggregate"))) {
            continue;
        }
        if (g_strcmp0(e->digest_type, "ima") || g_strcmp0(e->digest_alg,
                                                          "sha256") ||
            e->digest_len != 32) {
            return fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                        TVD_CAUSE_UNSUPPORTED, "%s is measured with %s:%s, "
                        "the policy needs a sha256 file digest (boot the "
                        "guest with ima_hash=sha256)", e->path,
                        e->digest_type, e->digest_alg);
        }
        m.path = g_strdup(e->path);
        memcpy(m.sha256, e->digest, 32);
        g_array_append_val(st->measurements, m);
    }
    if (kind == TVD_LOG_IMA_NG && plan->boot_aggregate) {
        return check_boot_aggregate(l, st, req, in, out);
    }
    return TRUE;
}

static gboolean check_logs(TvdRoundState *state, const TvdRoundRequest *req,
                           const TvdRoundInput *in, TvdRoundResult *out)
{
    static const TvdLogKind kinds[] = { TVD_LOG_IMA_NG, TVD_LOG_AGENT_LIST };
    gsize cap = in->max_log_bytes ? in->max_log_bytes
                                  : TVD_ROUND_LOG_BYTES_DEFAULT;
    gsize bytes = 0;
    Staged staged[TVD_ROUND_LOG_KINDS] = { { 0 } };
    gboolean ok = TRUE;

    for (guint i = 0; i < in->evidence->n_logs && i < TVD_MSG_LOGS_MAX; i++) {
        bytes += entries_bytes(in->evidence->logs[i].entries);
    }
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        bytes += entries_bytes(in->chunk_entries[k]);
    }
    if (bytes > cap) {
        return fail(out, in->policy, TVD_ROUND_STEP_LOGS, TVD_CAUSE_LOG_LIMIT,
                    "%zu bytes of log records in one round, the cap is %zu",
                    bytes, cap);
    }
    for (guint i = 0; i < G_N_ELEMENTS(kinds) && ok; i++) {
        gboolean wanted = kinds[i] == TVD_LOG_IMA_NG ? req->plan.ima
                                                     : req->plan.agent_list;

        if (wanted) {
            ok = replay_log(state, req, in, kinds[i], &staged[kinds[i]], out);
        }
    }
    /*
     * What a binding keeps grows with every round it proves: bounded, or
     * one guest could grow the supervisor's memory and every later round's
     * policy work without end.
     */
    if (ok) {
        gsize kept = 0, cap_m = in->max_measurements
                                ? in->max_measurements
                                : TVD_ROUND_MEASUREMENTS_MAX;

        for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
            kept += state->logs[k].measurements
                    ? state->logs[k].measurements->len : 0;
            kept += staged[k].measurements ? staged[k].measurements->len : 0;
        }
        if (kept > cap_m) {
            ok = fail(out, in->policy, TVD_ROUND_STEP_LOGS,
                      TVD_CAUSE_LOG_LIMIT, "%zu measurements proven in this "
                      "binding, the cap is %zu", kept, cap_m);
        }
    }
    /* Every log is proven: the binding keeps what they prove. */
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        Staged *st = &staged[k];
        LogState *l = &state->logs[k];

        if (ok && st->replay) {
            g_clear_pointer(&l->replay, tvd_ima_replay_free);
            l->replay = g_steal_pointer(&st->replay);
            for (guint i = 0; i < st->measurements->len; i++) {
                Measurement *m = &g_array_index(st->measurements,
                                                Measurement, i);
                Measurement keep = { g_steal_pointer(&m->path), { 0 } };

                memcpy(keep.sha256, m->sha256, 32);
                g_array_append_val(l->measurements, keep);
            }
            if (st->set_boot_aggregate) {
                l->have_boot_aggregate = TRUE;
                memcpy(l->boot_aggregate_alg, st->boot_aggregate_alg,
                       sizeof(l->boot_aggregate_alg));
                memcpy(l->boot_aggregate, st->boot_aggregate,
                       sizeof(l->boot_aggregate));
                l->boot_aggregate_len = st->boot_aggregate_len;
            }
            out->entries_accepted[k] = st->used;
        }
        staged_clear(st);
    }
    return ok;
}

/* ---- Step 7: the policy ---------------------------------------------------------- */

static gboolean check_policy(TvdRoundState *state, const TvdRoundInput *in,
                             TvdRoundResult *out)
{
    g_auto(TvdPolicyResult) result = { 0 };
    g_autofree TvdPolicyMeasurement *ms = NULL;
    const LogState *ima = &state->logs[TVD_LOG_IMA_NG];
    TvdPolicyEvidence pe = { 0 };
    guint n = 0;

    if (!in->policy) {
        return fail(out, NULL, TVD_ROUND_STEP_POLICY,
                    TVD_CAUSE_UNKNOWN_DOMAIN, "no policy for the VM's domain");
    }
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        n += state->logs[k].measurements->len;
    }
    ms = g_new0(TvdPolicyMeasurement, n + 2);
    n = 0;
    /* boot_aggregate, checked against the quoted PCRs in step 6, is
     * judged only by a policy that references it. */
    if (tvd_policy_data(in->policy)->boot_aggregate_referenced &&
        ima->have_boot_aggregate &&
        ima->boot_aggregate_len == 32 &&
        !strcmp(ima->boot_aggregate_alg, "sha256")) {
        ms[n].path = "boot_aggregate";
        memcpy(ms[n].sha256, ima->boot_aggregate, 32);
        n++;
    }
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        GArray *a = state->logs[k].measurements;

        for (guint i = 0; i < a->len; i++) {
            Measurement *m = &g_array_index(a, Measurement, i);

            ms[n].path = m->path;
            memcpy(ms[n].sha256, m->sha256, 32);
            n++;
        }
    }
    pe.entries = ms;
    pe.n_entries = n;
    pe.agent_version = in->agent_version;
    /* The policy's PCR values are of the SHA-256 bank. */
    if (out->pcr_bank == TPM2_ALG_SHA256) {
        pe.pcr_mask = out->pcr_mask;
        for (guint i = 0; i < TVD_POLICY_PCR_COUNT; i++) {
            memcpy(pe.pcrs[i], out->pcrs[i], 32);
        }
    }
    out->n_measurements = n;
    if (tvd_policy_evaluate(in->policy, &pe, &result) != TVD_POLICY_ALLOWED) {
        const char *r = result.reason ? result.reason : "policy violation";
        gboolean printable = strlen(r) < sizeof(out->verdict.detail);

        fail(out, in->policy, TVD_ROUND_STEP_POLICY,
             tvd_round_cause_of_violation(result.violation), "%s", r);
        /* The policy's reason is printable ASCII with the guest's bytes
         * already escaped: kept as it is, not escaped twice. */
        for (const char *p = r; *p && printable; p++) {
            printable = *p >= 0x20 && *p < 0x7f;
        }
        if (printable) {
            g_strlcpy(out->verdict.detail, r, sizeof(out->verdict.detail));
        }
        return FALSE;
    }
    return TRUE;
}

/* ---- The round ----------------------------------------------------------------- */

gboolean tvd_round_verify(TvdRoundState *state, const TvdRoundRequest *req,
                          const TvdRoundInput *in, TvdRoundResult *out)
{
    g_autoptr(GByteArray) values = g_byte_array_new();
    g_autoptr(GError) err = NULL;

    memset(out, 0, sizeof(*out));
    g_return_val_if_fail(state && req && in && in->evidence && in->ak &&
                         in->nonces, FALSE);

    /* 1. The nonce first: a replayed or foreign quote stops here or at 3. */
    if (!tvd_nonce_store_consume(in->nonces, in->owner, req->nonce,
                                 TVD_NONCE_LEN, &err)) {
        return fail_error(out, in->policy, TVD_ROUND_STEP_NONCE, err);
    }
    if (!check_pcr_values(req, in, out, values) ||
        !check_quote(req, in, values, out) ||
        !check_continuity(state, in, out) ||
        !check_required(req, in, out) ||
        !check_logs(state, req, in, out)) {
        return FALSE;
    }
    out->evidence_valid = TRUE;
    if (!check_policy(state, in, out)) {
        return FALSE;
    }
    tvd_verdict_set(&out->verdict, TVD_STATE_ADMITTED, TVD_CAUSE_ATTESTED,
                    "attested: evidence matches the domain policy");
    out->failed_step = TVD_ROUND_STEP_NONE;
    return TRUE;
}
