/*
 * The round verifier: one attestation round of one binding judged in one
 * call, in a fixed order, to one typed result (docs/verifier.md, "The
 * round verifier"):
 *
 *   1. nonce         the request's nonce is consumed from the nonce store
 *   2. pcr-values    the evidence's PCR values match the requested bank
 *                    and selection index by index
 *   3. quote         signature, magic, type, nonce (a quote over another
 *                    nonce: the store says reused / unknown / wrong owner),
 *                    selection, PCR digest
 *   4. continuity    the TPM was not reset or rolled back since the
 *                    binding's last round
 *   5. evidence      what the policy requires was sent; the agent's PCR is
 *                    the policy's measurement PCR
 *   6. logs          per-round byte cap, records parse, each in the
 *                    replayed PCR, IMA violations as the policy says,
 *                    incremental replay to the quoted PCR, boot_aggregate
 *                    against the quoted PCRs 0-9
 *   7. policy        tvd_policy_evaluate() on the proven measurements
 *
 * Pure: no main loop, timers or I/O; the nonce store is the only shared
 * object it touches. The caller keeps one TvdRoundState per binding (one
 * AK bound by MakeCredential) and drops it when the binding ends.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_VERIFIER_ROUND_H
#define TVD_HOST_VERIFIER_ROUND_H

#include <glib.h>

#include "verifier.h"
#include "cause.h"
#include "message.h"
#include "policy.h"

G_BEGIN_DECLS

/* Log bytes (records of the evidence and the LOG_CHUNKs) one round may
 * bring, unless the caller sets another cap. */
#define TVD_ROUND_LOG_BYTES_DEFAULT (64u * 1024 * 1024)
/* Measurements one binding may prove over all its rounds (a real guest's
 * IMA log holds thousands), unless the caller sets another cap. */
#define TVD_ROUND_MEASUREMENTS_MAX  (256u * 1024)
/* Arrays indexed by TvdLogKind (1 and 2; 0 unused). */
#define TVD_ROUND_LOG_KINDS         3u

/* What one binding keeps between its rounds: the replay of each log, the
 * measurements proven so far, the last verified quote's clock info. */
typedef struct TvdRoundState TvdRoundState;

TvdRoundState *tvd_round_state_new(void);
void tvd_round_state_free(TvdRoundState *state);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdRoundState, tvd_round_state_free)
/* Log entries of @kind already proven: the offset to request. */
guint64 tvd_round_state_log_offset(const TvdRoundState *state,
                                   TvdLogKind kind);
/* The clock info of the binding's last verified quote, NULL before. */
const TvdQuoteInfo *tvd_round_state_last_quote(const TvdRoundState *state);

/* One round's request: what to send in ATTEST_REQUEST and what the
 * answer is judged against. */
typedef struct {
    guint8 nonce[TVD_NONCE_LEN];
    TvdPolicyEvidencePlan plan;     /* bank, PCR selection, logs */
    guint64 ima_offset;
    guint64 agent_offset;
} TvdRoundRequest;

/*
 * Prepares the next round of @state: the plan from @policy (NULL: the
 * defaults) and the agent's hello capabilities @agent_caps (TVD_CAP_*:
 * they only add optional evidence), the log offsets from @state (a log
 * whose PCR or bank the plan changed starts again from 0), and a nonce
 * issued by @nonces for @owner. Fails only when the store cannot issue
 * (nonce-store-full, crypto-failure).
 */
gboolean tvd_round_request_new(TvdRoundRequest *req, TvdRoundState *state,
                               const TvdPolicy *policy, guint64 agent_caps,
                               TvdNonceStore *nonces, const char *owner,
                               GError **error);
/* The ATTEST_REQUEST body of @req (paths left NULL). */
void tvd_round_request_to_msg(const TvdRoundRequest *req,
                              TvdMsgAttestRequest *out);

/* The answer to one request. Nothing is kept after the call. */
typedef struct {
    const TvdPolicy *policy;        /* the domain's now; NULL: unknown domain */
    TvdAkKey *ak;                   /* the binding's AK */
    guint8 agent_pcr;               /* from the agent hello */
    guint32 agent_version;          /* from the agent hello */
    TvdNonceStore *nonces;          /* that issued the request's nonce */
    const char *owner;              /* it was issued for */
    const TvdMsgEvidence *evidence;
    /* Records (GBytes) of the LOG_CHUNK messages that followed the
     * evidence, by TvdLogKind, in order; NULL = none. */
    GPtrArray *chunk_entries[TVD_ROUND_LOG_KINDS];
    gsize max_log_bytes;            /* 0: TVD_ROUND_LOG_BYTES_DEFAULT */
    gsize max_measurements;         /* 0: TVD_ROUND_MEASUREMENTS_MAX */
} TvdRoundInput;

/* The steps, in the order they run. */
typedef enum {
    TVD_ROUND_STEP_NONE = 0,        /* the round passed */
    TVD_ROUND_STEP_NONCE,
    TVD_ROUND_STEP_PCR_VALUES,
    TVD_ROUND_STEP_QUOTE,
    TVD_ROUND_STEP_CONTINUITY,
    TVD_ROUND_STEP_EVIDENCE,
    TVD_ROUND_STEP_LOGS,
    TVD_ROUND_STEP_POLICY,
} TvdRoundStep;

/* "passed", "nonce", "pcr-values", "quote", ... */
const char *tvd_round_step_name(TvdRoundStep step);

typedef struct {
    /* ADMITTED + TVD_CAUSE_ATTESTED, or the policy's on_failure state
     * (QUARANTINED without a policy) + the first failure's cause; the
     * detail is escaped and bounded. */
    TvdVerdict verdict;
    gboolean stop;                  /* on_failure "stop" */
    TvdRoundStep failed_step;       /* TVD_ROUND_STEP_NONE when passed */
    /* From step 3 on (quote verified): */
    gboolean quote_verified;
    TvdQuoteInfo quote;             /* clock, resetCount, restartCount, ... */
    TvdTpmContinuity continuity;    /* against the binding's last round */
    guint16 pcr_bank;
    guint32 pcr_mask;               /* PCRs proven by the quote */
    guint8 pcrs[TVD_POLICY_PCR_COUNT][64];
    /* From step 6 on (logs replayed; the state has them): */
    guint64 entries_accepted[TVD_ROUND_LOG_KINDS]; /* this round, by kind */
    guint n_measurements;           /* judged by the policy (all rounds) */
    gboolean evidence_valid;        /* steps 1-6 passed */
} TvdRoundResult;

/*
 * Runs the steps above on @in against @req; fills @out and answers TRUE
 * when the round passed. @state advances (log replay, measurements, last
 * quote) once the evidence is proven valid (steps 1-6), even when the
 * policy then rejects it: what was proven stays proven. A failure at
 * TVD_ROUND_STEP_CONTINUITY (tpm-reset) voids the binding: @state keeps
 * the earlier quote, so every later round fails the same way until the
 * caller ends the binding (frees @state, waits for a new agent hello).
 */
gboolean tvd_round_verify(TvdRoundState *state, const TvdRoundRequest *req,
                          const TvdRoundInput *in, TvdRoundResult *out);

/* The cause of a policy violation (tvd_policy_evaluate). */
TvdCause tvd_round_cause_of_violation(TvdPolicyViolation violation);

G_END_DECLS

#endif /* TVD_HOST_VERIFIER_ROUND_H */
