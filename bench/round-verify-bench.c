/*
 * round-verify-bench: whole attestation rounds per second through the
 * round verifier (tvd_round_verify: nonce, PCR values, quote, continuity,
 * required evidence, log replay, policy) on one core, for RSA-2048
 * (RSASSA-SHA256) and ECC P-256 (ECDSA-SHA256) AKs, with an IMA log of
 * 1,000 entries:
 *
 *   first round     a new binding: all 1,000 IMA entries and the agent's
 *                   list parsed, replayed and judged
 *   incremental     a binding that holds the 1,000 entries: each round
 *                   brings one new IMA entry; the policy judges them all
 *                   (an allowlist of every digest, unlisted denied)
 *
 * Only tvd_round_verify is timed (CPU time of the thread): making the
 * guest's quote (an OpenSSL signature) is outside the clock. Quotes are
 * synthetic (synth.c), so no TPM is needed. Prints figures; asserts no
 * timing. Usage: round-verify-bench [ROUNDS] (default 200).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <glib.h>
#include <openssl/evp.h>

#include "round.h"
#include "synth.h"
#include "evidence.h"

#define IMA_ENTRIES 1000u
#define OWNER       "bench-vm"

typedef struct {
    TvdSynthKey *key;
    TvdAkKey *ak;
    TvdNonceStore *nonces;
    TvdPolicy *policy;
    guint8 pcr[24][32];
    GPtrArray *ima;
    GPtrArray *list;
    guint64 clock;
} Guest;

static gint64 thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (gint64)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The record of file @n measured into @pcr; its digest joins @allow. */
static GBytes *record(guint pcr, guint n, GString *allow)
{
    g_autofree char *path = g_strdup_printf("/usr/lib/bench/file-%05u", n);
    g_autoptr(GByteArray) data = g_byte_array_new();
    guint8 digest[32];

    memset(digest, 0, sizeof(digest));
    memcpy(digest, &n, sizeof(n));
    digest[31] = (guint8)pcr;
    tvd_ima_ng_data_append(data, "sha256", digest, 32, path);
    g_string_append_printf(allow, "%s\"", allow->len > 1 ? ", " : "");
    for (int i = 0; i < 32; i++) {
        g_string_append_printf(allow, "%02x", digest[i]);
    }
    g_string_append_c(allow, '"');
    return tvd_synth_ima_record_data(TPM2_ALG_SHA1, FALSE, pcr, "ima-ng",
                                     data->data, data->len, FALSE);
}

/* The guest logs @rec and extends its PCR as the kernel does. */
static void add(Guest *g, GPtrArray *log, GBytes *rec)
{
    g_autoptr(TvdImaEntry) e = tvd_ima_entry_parse(
        g_bytes_get_data(rec, NULL), g_bytes_get_size(rec), NULL, NULL);
    gsize dl;
    const guint8 *td = g_bytes_get_data(e->template_data, &dl);
    guint8 m[32], buf[64];

    EVP_Digest(td, dl, m, NULL, EVP_sha256(), NULL);
    memcpy(buf, g->pcr[e->pcr], 32);
    memcpy(buf + 32, m, 32);
    EVP_Digest(buf, 64, g->pcr[e->pcr], NULL, EVP_sha256(), NULL);
    g_ptr_array_add(log, g_bytes_ref(rec));
}

static GPtrArray *since(GPtrArray *log, guint64 offset)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);

    for (guint i = (guint)offset; i < log->len; i++) {
        g_ptr_array_add(a, g_bytes_ref(log->pdata[i]));
    }
    return a;
}

/* The agent's answer to @req (quote signed: not timed). */
static void answer(Guest *g, const TvdRoundRequest *req, TvdMsgEvidence *ev)
{
    g_autoptr(GByteArray) values = g_byte_array_new();
    guint32 select = req->plan.pcr_select;

    memset(ev, 0, sizeof(*ev));
    g->clock += 1000;
    for (guint i = 0; i < 24; i++) {
        if (select & (1u << i)) {
            g_byte_array_append(values, g->pcr[i], 32);
            ev->pcrs[ev->n_pcrs].index = (guint8)i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(g->pcr[i], 32);
            ev->n_pcrs++;
        }
    }
    ev->attest = tvd_synth_attest_clock(TPM2_ST_ATTEST_QUOTE, req->nonce,
                                        TVD_NONCE_LEN, TPM2_ALG_SHA256,
                                        select, values->data, values->len,
                                        g->clock, 1, 0);
    ev->signature = tvd_synth_sign(g->key, ev->attest);
    ev->pcr_bank = TVD_TPM_ALG_SHA256;
    ev->logs[0].kind = TVD_LOG_IMA_NG;
    ev->logs[0].offset = req->ima_offset;
    ev->logs[0].entries = since(g->ima, req->ima_offset);
    ev->logs[1].kind = TVD_LOG_AGENT_LIST;
    ev->logs[1].offset = req->agent_offset;
    ev->logs[1].entries = since(g->list, req->agent_offset);
    ev->n_logs = 2;
}

/* One round: request, answer, verify; answers the verify's CPU ns. */
static gint64 round_once(Guest *g, TvdRoundState *state)
{
    TvdRoundRequest req;
    TvdMsgEvidence ev;
    TvdRoundResult res;
    TvdRoundInput in = {
        .policy = g->policy, .ak = g->ak, .agent_pcr = 13,
        .agent_version = TVD_AGENT_VERSION(1, 0, 0), .nonces = g->nonces,
        .owner = OWNER, .evidence = &ev,
    };
    gint64 t0, t1;

    if (!tvd_round_request_new(&req, state, g->policy,
                               TVD_CAP_IMA | TVD_CAP_AGENT_LIST, g->nonces,
                               OWNER, NULL)) {
        g_error("no nonce");
    }
    answer(g, &req, &ev);
    t0 = thread_cpu_ns();
    if (!tvd_round_verify(state, &req, &in, &res)) {
        g_error("round failed: %s: %s", tvd_cause_name(res.verdict.cause),
                res.verdict.detail);
    }
    t1 = thread_cpu_ns();
    tvd_msg_evidence_clear(&ev);
    return t1 - t0;
}

static void run(const char *label, TPM2_ALG_ID type, TPM2_ALG_ID scheme,
                guint rounds)
{
    Guest g = { 0 };
    g_autoptr(GString) allow = g_string_new("[");
    g_autofree char *text = NULL;
    g_autoptr(TvdRoundState) warm = tvd_round_state_new();
    g_autoptr(GPtrArray) pending = NULL;
    gint64 first_ns = 0, inc_ns = 0;
    guint first_rounds = MAX(rounds / 10, 5);

    g.key = tvd_synth_ak_new(type, scheme, 0);
    g.ak = tvd_ak_key_new_from_public(g_bytes_get_data(g.key->public, NULL),
                                      g_bytes_get_size(g.key->public), NULL);
    g.nonces = tvd_nonce_store_new(4096, 600 * G_USEC_PER_SEC);
    g.ima = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g.list = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    pending = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    for (guint i = 0; i < IMA_ENTRIES + rounds; i++) {
        g_ptr_array_add(pending, record(10, i, allow));
    }
    {
        g_autoptr(GBytes) agent = record(13, 100000, allow);

        add(&g, g.list, agent);
    }
    g_string_append_c(allow, ']');
    text = g_strdup_printf(
        "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"b\", "
        "\"id\": 1}, \"membership\": {\"ima_allowlist\": %s, \"unlisted\": "
        "\"deny\", \"evidence\": {\"ima\": \"required\"}}, \"network\": "
        "{\"subnet\": \"10.0.0.0/24\", \"roles\": [\"a\"]}}", allow->str);
    g.policy = tvd_policy_parse(text, strlen(text), "bench", NULL, NULL);
    g_assert_nonnull(g.policy);

    for (guint i = 0; i < IMA_ENTRIES; i++) {
        add(&g, g.ima, pending->pdata[i]);
    }
    for (guint i = 0; i < first_rounds; i++) {
        g_autoptr(TvdRoundState) s = tvd_round_state_new();

        first_ns += round_once(&g, s);
    }
    first_ns += round_once(&g, warm);
    /* then one more entry per round, as the guest goes on */
    for (guint i = 0; i < rounds; i++) {
        add(&g, g.ima, pending->pdata[IMA_ENTRIES + i]);
        inc_ns += round_once(&g, warm);
    }
    printf("%-24s first round (%u entries): %8.1f rounds/s (%6.2f ms)   "
           "incremental (+1 of %u): %8.1f rounds/s (%6.3f ms)\n", label,
           IMA_ENTRIES, (first_rounds + 1) * 1e9 / (double)first_ns,
           (double)first_ns / (first_rounds + 1) / 1e6, IMA_ENTRIES,
           rounds * 1e9 / (double)inc_ns, (double)inc_ns / rounds / 1e6);
    fflush(stdout);
    tvd_policy_unref(g.policy);
    g_ptr_array_unref(g.ima);
    g_ptr_array_unref(g.list);
    tvd_nonce_store_free(g.nonces);
    tvd_ak_key_free(g.ak);
    tvd_synth_key_free(g.key);
}

int main(int argc, char **argv)
{
    guint rounds = argc > 1 ? (guint)atoi(argv[1]) : 200;

    if (rounds == 0) {
        fprintf(stderr, "usage: round-verify-bench [ROUNDS]\n");
        return 2;
    }
    printf("round-verify-bench: %u incremental rounds per AK, CPU time of "
           "tvd_round_verify only\n", rounds);
    run("RSA-2048 RSASSA-SHA256", TPM2_ALG_RSA, TPM2_ALG_RSASSA, rounds);
    run("ECC P-256 ECDSA-SHA256", TPM2_ALG_ECC, TPM2_ALG_ECDSA, rounds);
    return 0;
}
