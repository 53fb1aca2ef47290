/*
 * The round verifier (round.h): one test per cause it gives, the rounds of
 * one binding (incremental logs, the TPM's clock), and a table of the check
 * order (two faults at once: the earlier step's cause wins). Evidence is
 * made by a simulated guest: synthetic quotes signed by a software AK
 * (synth.c), IMA records extended into its PCRs as the kernel does.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>
#include <openssl/evp.h>

#include "round.h"
#include "synth.h"
#include "evidence.h"

#define OWNER "vm-a"

typedef struct {
    TvdSynthKey *key;
    TvdAkKey *ak;
    TvdNonceStore *nonces;
    gint64 now;
    TvdRoundState *state;
    TvdPolicy *policy;
    guint8 agent_pcr;
    guint64 caps;
    /* the guest */
    guint8 pcr[24][32];
    GPtrArray *ima;                 /* GBytes records; NULL = no IMA */
    GPtrArray *list;                /* the agent's list */
    guint64 clock;
    guint32 reset_count;
    guint32 restart_count;
    /* this round */
    TvdRoundRequest req;
    TvdMsgEvidence ev;
    GPtrArray *more[TVD_ROUND_LOG_KINDS];
    gsize max_log_bytes;
    gsize max_measurements;
    TvdRoundResult res;
} Fx;

/* One AK for every test: RSA key generation is the slow part. */
static TvdSynthKey *shared_key;

static gint64 fx_clock(gpointer data)
{
    return *(gint64 *)data;
}

static char *policy_text(const char *membership)
{
    return g_strdup_printf(
        "{\"tvd_policy\": 1, \"serial\": 1,"
        " \"domain\": {\"name\": \"blue\", \"id\": 1},"
        " \"membership\": {%s},"
        " \"attestation\": {\"measurement_pcr\": 13},"
        " \"network\": {\"subnet\": \"10.0.0.0/24\", \"roles\": [\"a\"]}}",
        membership);
}

static void fx_policy(Fx *fx, const char *membership)
{
    g_autofree char *text = policy_text(membership);
    g_autoptr(GError) error = NULL;

    g_clear_pointer(&fx->policy, tvd_policy_unref);
    fx->policy = tvd_policy_parse(text, strlen(text), "round.json", NULL,
                                  &error);
    g_assert_no_error(error);
}

/* The guest extends PCR @pcr with the SHA-256 of @rec's template data. */
static void extend(Fx *fx, guint pcr, GBytes *rec)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdImaEntry) e = tvd_ima_entry_parse(
        g_bytes_get_data(rec, NULL), g_bytes_get_size(rec), NULL, &error);
    guint8 buf[64], m[32];
    gsize len;
    const guint8 *d;

    g_assert_no_error(error);
    if (e->violation) {
        memset(m, 0xff, sizeof(m));
    } else {
        d = g_bytes_get_data(e->template_data, &len);
        EVP_Digest(d, len, m, NULL, EVP_sha256(), NULL);
    }
    memcpy(buf, fx->pcr[pcr], 32);
    memcpy(buf + 32, m, 32);
    EVP_Digest(buf, 64, fx->pcr[pcr], NULL, EVP_sha256(), NULL);
}

/* A file measured by IMA (into @pcr, normally 10) or by the agent. */
static GBytes *measure(Fx *fx, GPtrArray *log, guint pcr, const char *path,
                       guint8 fill, gboolean violation)
{
    guint8 digest[32];
    GBytes *rec;

    memset(digest, fill, sizeof(digest));
    rec = tvd_synth_ima_record(pcr, path, digest, violation);
    extend(fx, pcr, rec);
    g_ptr_array_add(log, rec);
    return rec;
}

/* Firmware and boot loader values, and IMA's first record over them. */
static void boot(Fx *fx)
{
    guint8 agg[32];

    for (guint i = 0; i < 10; i++) {
        memset(fx->pcr[i], (int)(0x10 + i), 32);
    }
    EVP_Digest(fx->pcr, 10 * 32, agg, NULL, EVP_sha256(), NULL);
    {
        g_autoptr(GBytes) rec = tvd_synth_ima_record(10, "boot_aggregate",
                                                     agg, FALSE);

        extend(fx, 10, rec);
        g_ptr_array_add(fx->ima, g_bytes_ref(rec));
    }
}

static void fx_setup(Fx *fx, gconstpointer data)
{
    memset(fx, 0, sizeof(*fx));
    fx->key = shared_key;
    fx->ak = tvd_ak_key_new_from_public(g_bytes_get_data(fx->key->public,
                                                         NULL),
                                        g_bytes_get_size(fx->key->public),
                                        NULL);
    g_assert_nonnull(fx->ak);
    fx->now = 1000000;
    fx->nonces = tvd_nonce_store_new(64, 10 * G_USEC_PER_SEC);
    tvd_nonce_store_set_clock(fx->nonces, fx_clock, &fx->now);
    fx->state = tvd_round_state_new();
    fx->agent_pcr = 13;
    fx->caps = TVD_CAP_IMA | TVD_CAP_AGENT_LIST | TVD_CAP_PCR_SHA256;
    fx->ima = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    fx->list = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    fx->clock = 5000;
    fx->reset_count = 3;
    fx->restart_count = 0;
    fx_policy(fx, "\"unlisted\": \"allow\"");
    boot(fx);
    measure(fx, fx->ima, 10, "/init", 0x01, FALSE);
    measure(fx, fx->ima, 10, "/bin/busybox", 0x02, FALSE);
    measure(fx, fx->list, 13, "/usr/bin/tvd-agent", 0x03, FALSE);
}

static void fx_clear_round(Fx *fx)
{
    tvd_msg_evidence_clear(&fx->ev);
    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        g_clear_pointer(&fx->more[k], g_ptr_array_unref);
    }
}

static void fx_teardown(Fx *fx, gconstpointer data)
{
    fx_clear_round(fx);
    tvd_ak_key_free(fx->ak);
    tvd_nonce_store_free(fx->nonces);
    tvd_round_state_free(fx->state);
    g_clear_pointer(&fx->policy, tvd_policy_unref);
    g_clear_pointer(&fx->ima, g_ptr_array_unref);
    g_ptr_array_unref(fx->list);
}

static void fx_request(Fx *fx)
{
    g_autoptr(GError) error = NULL;

    fx_clear_round(fx);
    g_assert_true(tvd_round_request_new(&fx->req, fx->state, fx->policy,
                                        fx->caps, fx->nonces, OWNER, &error));
    g_assert_no_error(error);
}

static GPtrArray *since(GPtrArray *log, guint64 offset)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);

    for (guint i = (guint)offset; log && i < log->len; i++) {
        g_ptr_array_add(a, g_bytes_ref(log->pdata[i]));
    }
    return a;
}

/* (Re)signs a quote of @select over @nonce with the PCR values now. */
static void fx_quote(Fx *fx, const guint8 *nonce, guint32 select)
{
    g_autoptr(GByteArray) values = g_byte_array_new();

    for (guint i = 0; i < 24; i++) {
        if (select & (1u << i)) {
            g_byte_array_append(values, fx->pcr[i], 32);
        }
    }
    g_clear_pointer(&fx->ev.attest, g_bytes_unref);
    g_clear_pointer(&fx->ev.signature, g_bytes_unref);
    fx->ev.attest = tvd_synth_attest_clock(
        TPM2_ST_ATTEST_QUOTE, nonce, TVD_NONCE_LEN, TPM2_ALG_SHA256, select,
        values->data, values->len, fx->clock, fx->reset_count,
        fx->restart_count);
    fx->ev.signature = tvd_synth_sign(fx->key, fx->ev.attest);
}

/* What an honest agent answers: a quote over the request, the values of
 * the selection, its logs from the requested offsets. */
static void fx_answer(Fx *fx)
{
    TvdMsgEvidence *ev = &fx->ev;
    guint32 select = fx->req.plan.pcr_select;

    fx->clock += 1000;
    fx_quote(fx, fx->req.nonce, select);
    ev->pcr_bank = TVD_TPM_ALG_SHA256;
    for (guint i = 0; i < 24; i++) {
        if (select & (1u << i)) {
            ev->pcrs[ev->n_pcrs].index = (guint8)i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(fx->pcr[i], 32);
            ev->n_pcrs++;
        }
    }
    if (fx->ima) {
        ev->logs[ev->n_logs].kind = TVD_LOG_IMA_NG;
        ev->logs[ev->n_logs].offset = fx->req.ima_offset;
        ev->logs[ev->n_logs].entries = since(fx->ima, fx->req.ima_offset);
        ev->n_logs++;
    }
    ev->logs[ev->n_logs].kind = TVD_LOG_AGENT_LIST;
    ev->logs[ev->n_logs].offset = fx->req.agent_offset;
    ev->logs[ev->n_logs].entries = since(fx->list, fx->req.agent_offset);
    ev->n_logs++;
}

static gboolean fx_verify(Fx *fx)
{
    TvdRoundInput in = {
        .policy = fx->policy,
        .ak = fx->ak,
        .agent_pcr = fx->agent_pcr,
        .agent_version = TVD_AGENT_VERSION(1, 0, 0),
        .nonces = fx->nonces,
        .owner = OWNER,
        .evidence = &fx->ev,
        .max_log_bytes = fx->max_log_bytes,
        .max_measurements = fx->max_measurements,
    };

    for (guint k = 0; k < TVD_ROUND_LOG_KINDS; k++) {
        in.chunk_entries[k] = fx->more[k];
    }
    return tvd_round_verify(fx->state, &fx->req, &in, &fx->res);
}

/* A whole honest round. */
static gboolean fx_round(Fx *fx)
{
    fx_request(fx);
    fx_answer(fx);
    return fx_verify(fx);
}

/* Flips bit 0 of byte @at (from the end when negative) of *@b. */
static void flip(GBytes **b, gssize at)
{
    gsize len = g_bytes_get_size(*b);
    guint8 *d = g_memdup2(g_bytes_get_data(*b, NULL), len);

    d[at < 0 ? (gssize)len + at : at] ^= 1;
    g_bytes_unref(*b);
    *b = g_bytes_new_take(d, len);
}

static TvdMsgLogChunk *chunk(Fx *fx, TvdLogKind kind)
{
    for (guint i = 0; i < fx->ev.n_logs; i++) {
        if (fx->ev.logs[i].kind == kind) {
            return &fx->ev.logs[i];
        }
    }
    g_assert_not_reached();
    return NULL;
}

#define ASSERT_FAILS(fx, CAUSE, STEP)                                       \
    G_STMT_START {                                                          \
        g_assert_false(fx_verify(fx));                                      \
        g_test_message("%s: %s", tvd_cause_name((fx)->res.verdict.cause),   \
                       (fx)->res.verdict.detail);                           \
        g_assert_cmpstr(tvd_cause_name((fx)->res.verdict.cause), ==,        \
                        tvd_cause_name(CAUSE));                             \
        g_assert_cmpstr(tvd_round_step_name((fx)->res.failed_step), ==,     \
                        tvd_round_step_name(STEP));                         \
    } G_STMT_END

/* ---- Passing rounds ------------------------------------------------------- */

static void test_attested(Fx *fx, gconstpointer data)
{
    g_assert_true(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpint(fx->res.verdict.cause, ==, TVD_CAUSE_ATTESTED);
    g_assert_cmpint(fx->res.failed_step, ==, TVD_ROUND_STEP_NONE);
    g_assert_true(fx->res.evidence_valid && fx->res.quote_verified);
    g_assert_cmpint(fx->res.continuity, ==, TVD_TPM_FIRST_QUOTE);
    g_assert_cmpuint(fx->res.quote.reset_count, ==, 3);
    g_assert_cmphex(fx->res.pcr_mask, ==, 1u << 10 | 1u << 13);
    g_assert_cmpmem(fx->res.pcrs[13], 32, fx->pcr[13], 32);
    g_assert_cmpuint(fx->res.entries_accepted[TVD_LOG_IMA_NG], ==, 3);
    g_assert_cmpuint(fx->res.entries_accepted[TVD_LOG_AGENT_LIST], ==, 1);
    /* /init, busybox, the agent (boot_aggregate is not referenced) */
    g_assert_cmpuint(fx->res.n_measurements, ==, 3);
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state, TVD_LOG_IMA_NG),
                     ==, 3);
    g_assert_cmpuint(fx->req.plan.pcr_bank, ==, TVD_TPM_ALG_SHA256);
}

/* Rounds of one binding: only new entries travel; the state carries the
 * replay; entries logged after the quote wait for the next round. */
static void test_incremental(Fx *fx, gconstpointer data)
{
    TvdMsgAttestRequest msg;

    g_assert_true(fx_round(fx));
    measure(fx, fx->ima, 10, "/usr/bin/new", 0x05, FALSE);
    measure(fx, fx->list, 13, "/etc/tvd/agent.conf", 0x06, FALSE);
    fx_request(fx);
    tvd_round_request_to_msg(&fx->req, &msg);
    g_assert_cmpuint(msg.ima_offset, ==, 3);
    g_assert_cmpuint(msg.agent_offset, ==, 1);
    g_assert_cmphex(msg.pcr_select, ==, fx->req.plan.pcr_select);
    g_assert_cmpmem(msg.nonce, 32, fx->req.nonce, 32);
    fx_answer(fx);
    /* a file measured after the quote, sent as a LOG_CHUNK */
    fx->more[TVD_LOG_IMA_NG] = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_ptr_array_add(fx->more[TVD_LOG_IMA_NG],
                    g_bytes_ref(measure(fx, fx->ima, 10, "/late", 0x07,
                                        FALSE)));
    g_assert_true(fx_verify(fx));
    g_assert_cmpint(fx->res.continuity, ==, TVD_TPM_SAME_BOOT);
    g_assert_cmpuint(fx->res.entries_accepted[TVD_LOG_IMA_NG], ==, 1);
    g_assert_cmpuint(fx->res.entries_accepted[TVD_LOG_AGENT_LIST], ==, 1);
    g_assert_cmpuint(fx->res.n_measurements, ==, 5);
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state, TVD_LOG_IMA_NG),
                     ==, 4);
    /* the third round picks "/late" up */
    g_assert_true(fx_round(fx));
    g_assert_cmpuint(fx->res.entries_accepted[TVD_LOG_IMA_NG], ==, 1);
    /* a TPM Resume keeps the binding */
    fx->restart_count++;
    g_assert_true(fx_round(fx));
    g_assert_cmpint(fx->res.continuity, ==, TVD_TPM_RESUMED);
}

/* ---- Step 1: the nonce -------------------------------------------------------- */

static void test_nonce_expired(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    fx->now += 11 * G_USEC_PER_SEC;
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_EXPIRED, TVD_ROUND_STEP_NONCE);
    g_assert_false(fx->res.quote_verified);
}

static void test_nonce_reused(Fx *fx, gconstpointer data)
{
    g_assert_true(fx_round(fx));
    /* the same request and answer again */
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_REUSED, TVD_ROUND_STEP_NONCE);
}

static void test_nonce_unknown(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    fx->req.nonce[0] ^= 1;              /* never issued */
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_UNKNOWN, TVD_ROUND_STEP_NONCE);
}

/* ---- Step 3: a quote over another nonce ------------------------------------ */

/* A quote of an earlier round replayed: its nonce was consumed then. */
static void test_quote_replayed(Fx *fx, gconstpointer data)
{
    g_autoptr(GBytes) old_attest = NULL, old_sig = NULL;

    g_assert_true(fx_round(fx));
    old_attest = g_bytes_ref(fx->ev.attest);
    old_sig = g_bytes_ref(fx->ev.signature);
    fx_request(fx);
    fx_answer(fx);
    g_bytes_unref(fx->ev.attest);
    g_bytes_unref(fx->ev.signature);
    fx->ev.attest = g_bytes_ref(old_attest);
    fx->ev.signature = g_bytes_ref(old_sig);
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_REUSED, TVD_ROUND_STEP_QUOTE);
}

static void test_quote_foreign_nonce(Fx *fx, gconstpointer data)
{
    guint8 other[TVD_NONCE_LEN];

    g_assert_true(tvd_nonce_store_issue(fx->nonces, "vm-b", other, NULL));
    fx_request(fx);
    fx_answer(fx);
    fx_quote(fx, other, fx->req.plan.pcr_select);
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_OWNER, TVD_ROUND_STEP_QUOTE);
}

static void test_quote_unknown_nonce(Fx *fx, gconstpointer data)
{
    guint8 made_up[TVD_NONCE_LEN];

    memset(made_up, 0x5a, sizeof(made_up));
    fx_request(fx);
    fx_answer(fx);
    fx_quote(fx, made_up, fx->req.plan.pcr_select);
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_UNKNOWN, TVD_ROUND_STEP_QUOTE);
}

/* Over a nonce of this VM that is still outstanding: just the wrong one. */
static void test_quote_other_own_nonce(Fx *fx, gconstpointer data)
{
    guint8 mine[TVD_NONCE_LEN];

    g_assert_true(tvd_nonce_store_issue(fx->nonces, OWNER, mine, NULL));
    fx_request(fx);
    fx_answer(fx);
    fx_quote(fx, mine, fx->req.plan.pcr_select);
    ASSERT_FAILS(fx, TVD_CAUSE_NONCE_MISMATCH, TVD_ROUND_STEP_QUOTE);
}

/* The AK signed something that is not a quote (a certify structure). */
static void test_not_a_quote(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    g_bytes_unref(fx->ev.attest);
    g_bytes_unref(fx->ev.signature);
    fx->ev.attest = tvd_synth_attest(TPM2_ST_ATTEST_CERTIFY, fx->req.nonce,
                                     TVD_NONCE_LEN, TPM2_ALG_SHA256, 0, NULL,
                                     0);
    fx->ev.signature = tvd_synth_sign(fx->key, fx->ev.attest);
    ASSERT_FAILS(fx, TVD_CAUSE_NOT_A_QUOTE, TVD_ROUND_STEP_QUOTE);
}

/* A round that cannot get a nonce is not started. */
static void test_nonce_store_full(Fx *fx, gconstpointer data)
{
    g_autoptr(TvdNonceStore) small = tvd_nonce_store_new(1, G_USEC_PER_SEC);
    g_autoptr(GError) error = NULL;
    TvdRoundRequest req;

    g_assert_true(tvd_round_request_new(&req, fx->state, fx->policy, fx->caps,
                                        small, OWNER, &error));
    g_assert_false(tvd_round_request_new(&req, fx->state, fx->policy,
                                         fx->caps, small, OWNER, &error));
    g_assert_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_STORE_FULL);
    g_assert_cmpint(tvd_cause_from_verify_error(error->code), ==,
                    TVD_CAUSE_NONCE_STORE_FULL);
}

static void test_bad_signature(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    flip(&fx->ev.signature, -1);
    ASSERT_FAILS(fx, TVD_CAUSE_BAD_SIGNATURE, TVD_ROUND_STEP_QUOTE);
}

static void test_signature_malformed(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    g_bytes_unref(fx->ev.signature);
    fx->ev.signature = g_bytes_new("\x00\x14", 2);
    ASSERT_FAILS(fx, TVD_CAUSE_MALFORMED, TVD_ROUND_STEP_QUOTE);
}

/* The quote selects other PCRs than requested (values sent as asked). */
static void test_quote_selection(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    fx_quote(fx, fx->req.nonce, fx->req.plan.pcr_select | 1u << 7);
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_SELECTION_MISMATCH, TVD_ROUND_STEP_QUOTE);
}

/* A value sent is not the one quoted. */
static void test_pcr_digest(Fx *fx, gconstpointer data)
{
    guint8 v[32];

    fx_request(fx);
    fx_answer(fx);
    memset(v, 0x77, sizeof(v));
    g_bytes_unref(fx->ev.pcrs[0].digest);
    fx->ev.pcrs[0].digest = g_bytes_new(v, 32);
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_DIGEST_MISMATCH, TVD_ROUND_STEP_QUOTE);
}

/* ---- Step 2: PCR values by index ------------------------------------------- */

static void test_pcr_bank(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    fx->ev.pcr_bank = TVD_TPM_ALG_SHA1;
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_SELECTION_MISMATCH,
                 TVD_ROUND_STEP_PCR_VALUES);
}

/* Values that hash right but name the wrong PCRs: the indices are
 * checked, not just the concatenation. */
static void test_pcr_values_by_index(Fx *fx, gconstpointer data)
{
    TvdMsgPcrValue t;

    fx_request(fx);
    fx_answer(fx);
    /* a value for an index that was not requested */
    fx->ev.pcrs[1].index = 11;
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_VALUES, TVD_ROUND_STEP_PCR_VALUES);

    fx_request(fx);
    fx_answer(fx);
    /* a duplicate */
    fx->ev.pcrs[1].index = fx->ev.pcrs[0].index;
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_VALUES, TVD_ROUND_STEP_PCR_VALUES);

    fx_request(fx);
    fx_answer(fx);
    /* indices swapped: the concatenation in message order is still what
     * was quoted, but PCR 10 would be judged with PCR 13's value */
    fx->ev.pcrs[0].index = 13;
    fx->ev.pcrs[1].index = 10;
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_DIGEST_MISMATCH, TVD_ROUND_STEP_QUOTE);

    fx_request(fx);
    fx_answer(fx);
    /* the right pairs in another order are the same evidence */
    t = fx->ev.pcrs[0];
    fx->ev.pcrs[0] = fx->ev.pcrs[1];
    fx->ev.pcrs[1] = t;
    g_assert_true(fx_verify(fx));

    fx_request(fx);
    fx_answer(fx);
    /* one missing */
    g_clear_pointer(&fx->ev.pcrs[1].digest, g_bytes_unref);
    fx->ev.n_pcrs = 1;
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_VALUES, TVD_ROUND_STEP_PCR_VALUES);

    fx_request(fx);
    fx_answer(fx);
    /* a short value */
    g_bytes_unref(fx->ev.pcrs[0].digest);
    fx->ev.pcrs[0].digest = g_bytes_new(fx->pcr[10], 20);
    ASSERT_FAILS(fx, TVD_CAUSE_PCR_VALUES, TVD_ROUND_STEP_PCR_VALUES);
}

/* ---- Step 4: the TPM's continuity -------------------------------------------- */

static void test_tpm_reset(Fx *fx, gconstpointer data)
{
    g_assert_true(fx_round(fx));
    fx->reset_count++;
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_TPM_RESET, TVD_ROUND_STEP_CONTINUITY);
    g_assert_true(fx->res.quote_verified);
    g_assert_cmpint(fx->res.continuity, ==, TVD_TPM_RESET);
    g_assert_cmpuint(fx->res.quote.reset_count, ==, 4);
    /* the binding is void: the next round too, until a new state */
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_TPM_RESET, TVD_ROUND_STEP_CONTINUITY);
}

static void test_tpm_rolled_back(Fx *fx, gconstpointer data)
{
    g_assert_true(fx_round(fx));
    fx->clock -= 5000;                  /* an older vTPM state file */
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_TPM_RESET, TVD_ROUND_STEP_CONTINUITY);
    g_assert_cmpint(fx->res.continuity, ==, TVD_TPM_ROLLED_BACK);
}

static void test_continuity_helper(void)
{
    TvdQuoteInfo a = { .clock = 100, .reset_count = 2, .restart_count = 1 };
    TvdQuoteInfo b = a;

    g_assert_cmpint(tvd_quote_info_continuity(NULL, &a), ==,
                    TVD_TPM_FIRST_QUOTE);
    b.clock = 200;
    g_assert_cmpint(tvd_quote_info_continuity(&a, &b), ==, TVD_TPM_SAME_BOOT);
    b.restart_count = 2;
    g_assert_cmpint(tvd_quote_info_continuity(&a, &b), ==, TVD_TPM_RESUMED);
    b.reset_count = 3;
    b.restart_count = 0;
    b.clock = 1;
    g_assert_cmpint(tvd_quote_info_continuity(&a, &b), ==, TVD_TPM_RESET);
    b = a;
    b.restart_count = 0;
    g_assert_cmpint(tvd_quote_info_continuity(&a, &b), ==,
                    TVD_TPM_ROLLED_BACK);
    b = a;
    b.clock = 99;
    g_assert_cmpint(tvd_quote_info_continuity(&a, &b), ==,
                    TVD_TPM_ROLLED_BACK);
    g_assert_cmpstr(tvd_tpm_continuity_name(TVD_TPM_RESUMED), ==, "resumed");
}

/* ---- Step 5: required evidence ----------------------------------------------- */

/* A root guest that hides IMA: the policy asks for it anyway. */
static void test_ima_hidden(Fx *fx, gconstpointer data)
{
    fx_policy(fx, "\"unlisted\": \"allow\", \"evidence\": {\"ima\": "
                  "\"required\"}");
    fx->caps &= ~TVD_CAP_IMA;
    g_clear_pointer(&fx->ima, g_ptr_array_unref);
    fx_request(fx);
    g_assert_true(fx->req.plan.pcr_select & (1u << 10));
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_EVIDENCE_MISSING, TVD_ROUND_STEP_EVIDENCE);
}

/* Offered but not sent. */
static void test_ima_offered_not_sent(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    tvd_msg_log_chunk_clear(&fx->ev.logs[0]);
    fx->ev.logs[0] = fx->ev.logs[1];
    memset(&fx->ev.logs[1], 0, sizeof(fx->ev.logs[1]));
    fx->ev.n_logs = 1;
    ASSERT_FAILS(fx, TVD_CAUSE_EVIDENCE_MISSING, TVD_ROUND_STEP_EVIDENCE);
}

static void test_agent_list_missing(Fx *fx, gconstpointer data)
{
    fx->caps &= ~TVD_CAP_AGENT_LIST;    /* the default policy requires it */
    fx_request(fx);
    g_assert_true(fx->req.plan.pcr_select & (1u << 13));
    fx_answer(fx);
    tvd_msg_log_chunk_clear(&fx->ev.logs[1]);
    fx->ev.n_logs = 1;
    ASSERT_FAILS(fx, TVD_CAUSE_EVIDENCE_MISSING, TVD_ROUND_STEP_EVIDENCE);
}

static void test_measurement_pcr(Fx *fx, gconstpointer data)
{
    fx->agent_pcr = 14;
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_MEASUREMENT_PCR, TVD_ROUND_STEP_EVIDENCE);
    g_assert_cmpint(tvd_cause_class(fx->res.verdict.cause), ==,
                    TVD_REASON_POLICY);
}

/* ---- Step 6: the logs ----------------------------------------------------------- */

static void test_log_limit(Fx *fx, gconstpointer data)
{
    fx->max_log_bytes = 200;
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_LIMIT, TVD_ROUND_STEP_LOGS);
}

/* What a binding proves over its rounds is bounded too: past the cap a
 * round fails and the binding keeps nothing more. */
static void test_measurements_limit(Fx *fx, gconstpointer data)
{
    fx->max_measurements = 4;
    g_assert_true(fx_round(fx));
    g_assert_cmpuint(fx->res.n_measurements, ==, 3);
    measure(fx, fx->ima, 10, "/bin/a", 0x21, FALSE);
    g_assert_true(fx_round(fx));
    measure(fx, fx->ima, 10, "/bin/b", 0x22, FALSE);
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_LIMIT, TVD_ROUND_STEP_LOGS);
    /* Nothing was kept: the log is asked again from the same offset. */
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state, TVD_LOG_IMA_NG),
                     ==, 4);
}

static void test_log_malformed(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    g_ptr_array_add(chunk(fx, TVD_LOG_IMA_NG)->entries,
                    g_bytes_new("\x0a\x00\x00\x00", 4));
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_MALFORMED, TVD_ROUND_STEP_LOGS);
}

static void test_log_template_hash(Fx *fx, gconstpointer data)
{
    GPtrArray *e;

    fx_request(fx);
    fx_answer(fx);
    e = chunk(fx, TVD_LOG_IMA_NG)->entries;
    flip((GBytes **)&e->pdata[1], 4);
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_TEMPLATE_HASH, TVD_ROUND_STEP_LOGS);
}

/* An entry for PCR 11 in the IMA log: counted, not extended, and would
 * have been judged by the policy. */
static void test_log_pcr_mismatch(Fx *fx, gconstpointer data)
{
    measure(fx, fx->ima, 11, "/usr/bin/required", 0x09, FALSE);
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_PCR_MISMATCH, TVD_ROUND_STEP_LOGS);
}

static void test_log_offset(Fx *fx, gconstpointer data)
{
    fx_request(fx);
    fx_answer(fx);
    chunk(fx, TVD_LOG_AGENT_LIST)->offset = 5;
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_OFFSET, TVD_ROUND_STEP_LOGS);
}

static void test_log_replay(Fx *fx, gconstpointer data)
{
    GPtrArray *e;

    fx_request(fx);
    fx_answer(fx);
    e = chunk(fx, TVD_LOG_IMA_NG)->entries;
    g_ptr_array_remove_index(e, 1);     /* hide /init */
    ASSERT_FAILS(fx, TVD_CAUSE_LOG_REPLAY_MISMATCH, TVD_ROUND_STEP_LOGS);
    /* a failed round leaves the binding's replay as it was */
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state, TVD_LOG_IMA_NG),
                     ==, 0);
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state,
                                                TVD_LOG_AGENT_LIST), ==, 0);
}

static void test_ima_violation(Fx *fx, gconstpointer data)
{
    measure(fx, fx->ima, 10, "/var/log/app.log", 0x0a, TRUE);
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_IMA_VIOLATION, TVD_ROUND_STEP_LOGS);

    fx_policy(fx, "\"unlisted\": \"allow\", \"evidence\": "
                  "{\"ima_violations\": \"allow\"}");
    g_assert_true(fx_round(fx));
    /* the violation is not a measurement */
    g_assert_cmpuint(fx->res.n_measurements, ==, 3);
}

static void test_unsupported_digest(Fx *fx, gconstpointer data)
{
    g_autoptr(GByteArray) d = g_byte_array_new();
    g_autoptr(GBytes) rec = NULL;
    guint8 sha1[20];

    memset(sha1, 0x31, sizeof(sha1));
    tvd_ima_ng_data_append(d, "sha1", sha1, 20, "/bin/old");
    rec = tvd_synth_ima_record_data(TPM2_ALG_SHA1, FALSE, 10, "ima-ng",
                                    d->data, d->len, FALSE);
    extend(fx, 10, rec);
    g_ptr_array_add(fx->ima, g_bytes_ref(rec));
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_UNSUPPORTED, TVD_ROUND_STEP_LOGS);
}

#define BOOT_POLICY(digest)                                                 \
    "\"unlisted\": \"allow\", \"evidence\": {\"ima\": \"required\"},"       \
    " \"reference_digests\": [{\"path\": \"boot_aggregate\", \"sha256\": \"" \
    digest "\", \"required\": true}]"

static void boot_policy(Fx *fx)
{
    const TvdImaEntry *e;
    g_autoptr(TvdImaEntry) first = tvd_ima_entry_parse(
        g_bytes_get_data(fx->ima->pdata[0], NULL),
        g_bytes_get_size(fx->ima->pdata[0]), NULL, NULL);
    char hex[65];
    g_autofree char *m = NULL;

    e = first;
    for (guint i = 0; i < 32; i++) {
        g_snprintf(hex + 2 * i, 3, "%02x", e->digest[i]);
    }
    m = g_strdup_printf(BOOT_POLICY("%s"), hex);
    fx_policy(fx, m);
}

/* boot_aggregate against the quoted PCRs 0-9, then the reference. */
static void test_boot_aggregate(Fx *fx, gconstpointer data)
{
    boot_policy(fx);
    g_assert_true(fx_round(fx));
    g_assert_cmphex(fx->res.pcr_mask, ==, 0x3ffu | 1u << 10 | 1u << 13);
    /* boot_aggregate is judged: 4 measurements */
    g_assert_cmpuint(fx->res.n_measurements, ==, 4);
    /* later rounds recheck it against PCRs 0-9 quoted again */
    g_assert_true(fx_round(fx));
    fx->pcr[8][0] ^= 1;                 /* the boot loader changed since */
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_BOOT_AGGREGATE, TVD_ROUND_STEP_LOGS);
}

/* A policy that starts referencing boot_aggregate on a running binding:
 * the record proven in the first round is checked and judged. */
static void test_boot_aggregate_later(Fx *fx, gconstpointer data)
{
    g_assert_true(fx_round(fx));
    g_assert_cmpuint(fx->res.n_measurements, ==, 3);
    boot_policy(fx);
    g_assert_true(fx_round(fx));
    g_assert_cmpuint(fx->res.n_measurements, ==, 4);
    /* with another reference digest, the policy says no */
    fx_policy(fx, BOOT_POLICY("00000000000000000000000000000000"
                              "00000000000000000000000000000000"));
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==,
                    TVD_CAUSE_POLICY_DIGEST_MISMATCH);
}

static void test_boot_aggregate_forged(Fx *fx, gconstpointer data)
{
    /* PCRs 0-9 not the ones boot_aggregate was computed over */
    fx->pcr[3][0] ^= 1;
    boot_policy(fx);
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_BOOT_AGGREGATE, TVD_ROUND_STEP_LOGS);
}

/*
 * A file measured under the name "boot_aggregate" after IMA index 0 (the
 * kernel logs a bare name when the path is too long or unreachable) is a
 * file: the policy judges it, it is not skipped as the boot record is.
 */
static void test_boot_aggregate_name_later(Fx *fx, gconstpointer data)
{
    measure(fx, fx->ima, 10, "boot_aggregate", 0x0b, FALSE);
    g_assert_true(fx_round(fx));
    g_assert_cmpuint(fx->res.n_measurements, ==, 4);
    /* With the true boot_aggregate referenced, the impostor's digest is
     * another: a mismatch, not a pass. */
    boot_policy(fx);
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==,
                    TVD_CAUSE_POLICY_DIGEST_MISMATCH);
}

/* ---- Step 7: the policy --------------------------------------------------------- */

static void test_unknown_domain(Fx *fx, gconstpointer data)
{
    g_clear_pointer(&fx->policy, tvd_policy_unref);
    fx_request(fx);
    fx_answer(fx);
    ASSERT_FAILS(fx, TVD_CAUSE_UNKNOWN_DOMAIN, TVD_ROUND_STEP_POLICY);
    g_assert_true(fx->res.evidence_valid);
    g_assert_cmpint(fx->res.verdict.state, ==, TVD_STATE_QUARANTINED);
}

static void test_policy_violations(Fx *fx, gconstpointer data)
{
    fx_policy(fx, "\"unlisted\": \"deny\"");
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==,
                    TVD_CAUSE_POLICY_UNKNOWN_DIGEST);
    g_assert_cmpint(fx->res.failed_step, ==, TVD_ROUND_STEP_POLICY);
    /* the evidence was valid: its entries are proven */
    g_assert_cmpuint(tvd_round_state_log_offset(fx->state, TVD_LOG_IMA_NG),
                     ==, 3);

    fx_policy(fx, "\"unlisted\": \"allow\", \"min_agent_version\": \"2.0\"");
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==, TVD_CAUSE_POLICY_AGENT_VERSION);

    fx_policy(fx, "\"unlisted\": \"allow\", \"reference_digests\": "
                  "[{\"path\": \"/etc/missing\", \"sha256\": \""
                  "0000000000000000000000000000000000000000000000000000000000000000"
                  "\", \"required\": true}]");
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==,
                    TVD_CAUSE_POLICY_REQUIRED_MISSING);

    /* a pinned PCR is quoted and compared */
    fx_policy(fx, "\"unlisted\": \"allow\", \"pcrs\": {\"4\": \""
                  "0000000000000000000000000000000000000000000000000000000000000000"
                  "\"}");
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.cause, ==, TVD_CAUSE_POLICY_PCR_MISMATCH);
    g_assert_true(fx->res.pcr_mask & (1u << 4));

    /* on_failure revoke: the verdict's state */
    fx_policy(fx, "\"unlisted\": \"deny\"");
    {
        g_autofree char *t = g_strdup_printf(
            "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"b\","
            " \"id\": 1}, \"membership\": {}, \"attestation\": "
            "{\"on_failure\": \"revoke\"}, \"network\": {\"subnet\": "
            "\"10.0.0.0/24\", \"roles\": [\"a\"]}}");

        tvd_policy_unref(fx->policy);
        fx->policy = tvd_policy_parse(t, strlen(t), NULL, NULL, NULL);
    }
    g_assert_false(fx_round(fx));
    g_assert_cmpint(fx->res.verdict.state, ==, TVD_STATE_REVOKED);
}

/* The detail carries guest text escaped. */
static void test_detail_escaped(Fx *fx, gconstpointer data)
{
    fx_policy(fx, "\"unlisted\": \"deny\"");
    fx->caps &= ~TVD_CAP_IMA;
    g_clear_pointer(&fx->ima, g_ptr_array_unref);
    g_ptr_array_set_size(fx->list, 0);
    memset(fx->pcr[13], 0, 32);
    measure(fx, fx->list, 13, "/tmp/\x1b[31mred", 0x0b, FALSE);
    g_assert_false(fx_round(fx));
    g_assert_nonnull(strstr(fx->res.verdict.detail, "\\x1b[31mred"));
    g_assert_null(strchr(fx->res.verdict.detail, 0x1b));
}

/* ---- The order of the checks ------------------------------------------------- */

/* One fault per step; a round with two fails at the earlier one. */
typedef enum {
    F_NONCE,            /* step 1: the request's nonce expired */
    F_BANK,             /* step 2: evidence of another bank */
    F_SIGNATURE,        /* step 3 */
    F_RESET,            /* step 4: resetCount changed */
    F_NO_AGENT_LIST,    /* step 5 */
    F_LOG_PCR,          /* step 6 */
    F_POLICY,           /* step 7: an unknown digest */
    N_FAULTS
} Fault;

static const struct {
    TvdCause cause;
    TvdRoundStep step;
} fault_expect[N_FAULTS] = {
    [F_NONCE] = { TVD_CAUSE_NONCE_EXPIRED, TVD_ROUND_STEP_NONCE },
    [F_BANK] = { TVD_CAUSE_PCR_SELECTION_MISMATCH, TVD_ROUND_STEP_PCR_VALUES },
    [F_SIGNATURE] = { TVD_CAUSE_BAD_SIGNATURE, TVD_ROUND_STEP_QUOTE },
    [F_RESET] = { TVD_CAUSE_TPM_RESET, TVD_ROUND_STEP_CONTINUITY },
    [F_NO_AGENT_LIST] = { TVD_CAUSE_EVIDENCE_MISSING, TVD_ROUND_STEP_EVIDENCE },
    [F_LOG_PCR] = { TVD_CAUSE_LOG_PCR_MISMATCH, TVD_ROUND_STEP_LOGS },
    [F_POLICY] = { TVD_CAUSE_POLICY_UNKNOWN_DIGEST, TVD_ROUND_STEP_POLICY },
};

static void run_faults(guint32 faults, TvdCause *cause, TvdRoundStep *step)
{
    Fx fx;

    fx_setup(&fx, NULL);
    g_assert_true(fx_round(&fx));       /* a first round: the last quote */
    if (faults & (1u << F_RESET)) {
        fx.reset_count++;
    }
    if (faults & (1u << F_LOG_PCR)) {
        measure(&fx, fx.ima, 11, "/x", 0x0c, FALSE);
    }
    if (faults & (1u << F_POLICY)) {
        fx_policy(&fx, "\"unlisted\": \"deny\"");
    }
    fx_request(&fx);
    fx_answer(&fx);
    if (faults & (1u << F_NONCE)) {
        fx.now += 11 * G_USEC_PER_SEC;
    }
    if (faults & (1u << F_BANK)) {
        fx.ev.pcr_bank = TVD_TPM_ALG_SHA384;
    }
    if (faults & (1u << F_SIGNATURE)) {
        flip(&fx.ev.signature, -1);
    }
    if (faults & (1u << F_NO_AGENT_LIST)) {
        tvd_msg_log_chunk_clear(&fx.ev.logs[1]);
        fx.ev.n_logs = 1;
    }
    g_assert_false(fx_verify(&fx));
    *cause = fx.res.verdict.cause;
    *step = fx.res.failed_step;
    fx_teardown(&fx, NULL);
}

static void test_order(void)
{
    for (guint a = 0; a < N_FAULTS; a++) {
        for (guint b = a; b < N_FAULTS; b++) {
            TvdCause cause;
            TvdRoundStep step;

            run_faults(1u << a | 1u << b, &cause, &step);
            g_test_message("faults %u+%u: %s at %s", a, b,
                           tvd_cause_name(cause), tvd_round_step_name(step));
            g_assert_cmpstr(tvd_cause_name(cause), ==,
                            tvd_cause_name(fault_expect[a].cause));
            g_assert_cmpint(step, ==, fault_expect[a].step);
        }
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    shared_key = tvd_synth_ak_new(TPM2_ALG_RSA, TPM2_ALG_RSASSA, 0);
#define T(path, fn) g_test_add("/round/" path, Fx, NULL, fx_setup, fn, fx_teardown)
    T("attested", test_attested);
    T("incremental", test_incremental);
    T("nonce/expired", test_nonce_expired);
    T("nonce/reused", test_nonce_reused);
    T("nonce/unknown", test_nonce_unknown);
    T("pcr-values/bank", test_pcr_bank);
    T("pcr-values/by-index", test_pcr_values_by_index);
    T("quote/replayed", test_quote_replayed);
    T("quote/foreign-nonce", test_quote_foreign_nonce);
    T("quote/unknown-nonce", test_quote_unknown_nonce);
    T("quote/other-own-nonce", test_quote_other_own_nonce);
    T("quote/bad-signature", test_bad_signature);
    T("quote/not-a-quote", test_not_a_quote);
    T("nonce/store-full", test_nonce_store_full);
    T("quote/malformed", test_signature_malformed);
    T("quote/selection", test_quote_selection);
    T("quote/pcr-digest", test_pcr_digest);
    T("continuity/reset", test_tpm_reset);
    T("continuity/rolled-back", test_tpm_rolled_back);
    g_test_add_func("/round/continuity/helper", test_continuity_helper);
    T("evidence/ima-hidden", test_ima_hidden);
    T("evidence/ima-offered-not-sent", test_ima_offered_not_sent);
    T("evidence/agent-list-missing", test_agent_list_missing);
    T("evidence/measurement-pcr", test_measurement_pcr);
    T("logs/limit", test_log_limit);
    T("logs/measurements-limit", test_measurements_limit);
    T("logs/malformed", test_log_malformed);
    T("logs/template-hash", test_log_template_hash);
    T("logs/pcr-mismatch", test_log_pcr_mismatch);
    T("logs/offset", test_log_offset);
    T("logs/replay", test_log_replay);
    T("logs/ima-violation", test_ima_violation);
    T("logs/unsupported-digest", test_unsupported_digest);
    T("logs/boot-aggregate", test_boot_aggregate);
    T("logs/boot-aggregate-forged", test_boot_aggregate_forged);
    T("logs/boot-aggregate-later", test_boot_aggregate_later);
    T("logs/boot-aggregate-name-later", test_boot_aggregate_name_later);
    T("policy/unknown-domain", test_unknown_domain);
    T("policy/violations", test_policy_violations);
    T("policy/detail-escaped", test_detail_escaped);
#undef T
    g_test_add_func("/round/order", test_order);
    return g_test_run();
}
