/*
 * libFuzzer target: the round verifier on guest-controlled evidence. The
 * input's records (IMA binary records, framed as the protocol carries
 * them) become the IMA log of a simulated guest whose PCR 10 is extended
 * with them the kernel's way, so that the fuzzer reaches the log checks
 * and the policy behind an authentic quote (ECC P-256 AK, signed per
 * input). The first byte mutates the rest of the evidence:
 *
 *   bit 0  PCR value 0 gets the index in byte 1
 *   bit 1  the evidence names another bank (byte 2)
 *   bit 2  the quote is over a nonce that was not asked for
 *   bit 3  the IMA chunk starts at offset byte 2
 *   bit 4  the records after the first go in a LOG_CHUNK
 *   bit 5  a second round on the same binding
 *   bit 6  IMA violations allowed by the policy
 *   bit 7  a byte cap of 512
 *
 * Whatever the input, the result must be a known cause with a printable
 * detail within its bound.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <glib.h>
#include <openssl/evp.h>

#include "round.h"
#include "synth.h"
#include "evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_RECORDS 64u

static TvdSynthKey *key;
static TvdAkKey *ak;
static TvdPolicy *policies[2];

static void setup(void)
{
    static const char *const membership[2] = {
        "\"unlisted\": \"allow\", \"evidence\": {\"ima\": \"required\"}",
        "\"unlisted\": \"allow\", \"evidence\": {\"ima\": \"required\", "
        "\"ima_violations\": \"allow\"}",
    };

    if (key) {
        return;
    }
    key = tvd_synth_ak_new(TPM2_ALG_ECC, TPM2_ALG_ECDSA, 0);
    ak = tvd_ak_key_new_from_public(g_bytes_get_data(key->public, NULL),
                                    g_bytes_get_size(key->public), NULL);
    for (int i = 0; i < 2; i++) {
        g_autofree char *t = g_strdup_printf(
            "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"f\","
            " \"id\": 1}, \"membership\": {%s}, \"network\": {\"subnet\": "
            "\"10.0.0.0/24\", \"roles\": [\"a\"]}}", membership[i]);

        policies[i] = tvd_policy_parse(t, strlen(t), NULL, NULL, NULL);
        g_assert(policies[i]);
    }
}

/* Extends @pcr with what the kernel extends for the record at @rec. */
static void extend(guint8 pcr[32], const TvdImaRecordView *v)
{
    guint8 m[32], buf[64];
    gboolean zero = TRUE;

    for (guint i = 0; i < 20; i++) {
        zero = zero && v->digest[i] == 0;
    }
    if (zero) {
        memset(m, 0xff, sizeof(m));
    } else {
        EVP_Digest(v->data, v->data_len, m, NULL, EVP_sha256(), NULL);
    }
    memcpy(buf, pcr, 32);
    memcpy(buf + 32, m, 32);
    EVP_Digest(buf, 64, pcr, NULL, EVP_sha256(), NULL);
}

static void check_result(const TvdRoundResult *res)
{
    g_assert(strcmp(tvd_cause_name(res->verdict.cause), "unknown") != 0);
    g_assert(strlen(res->verdict.detail) < TVD_CAUSE_DETAIL_MAX);
    for (const char *p = res->verdict.detail; *p; p++) {
        g_assert(*p >= 0x20 && *p < 0x7f);
    }
}

static void one_round(TvdRoundState *state, TvdNonceStore *nonces,
                      guint8 flags, const uint8_t *data, GPtrArray *records,
                      guint8 pcrs[24][32], GBytes *agent)
{
    TvdRoundRequest req;
    TvdMsgEvidence ev = { 0 };
    TvdRoundResult res;
    TvdRoundInput in = {
        .policy = policies[(flags >> 6) & 1], .ak = ak, .agent_pcr = 13,
        .agent_version = 0x010000, .nonces = nonces, .owner = "vm",
        .evidence = &ev, .max_log_bytes = (flags & 0x80) ? 512 : 0,
    };
    g_autoptr(GByteArray) values = g_byte_array_new();
    g_autoptr(GPtrArray) more = NULL;
    guint8 nonce[TVD_NONCE_LEN];
    guint32 select;
    guint64 offset;

    if (!tvd_round_request_new(&req, state, in.policy,
                               TVD_CAP_IMA | TVD_CAP_AGENT_LIST, nonces, "vm",
                               NULL)) {
        return;
    }
    select = req.plan.pcr_select;
    for (guint i = 0; i < 24; i++) {
        if (select & (1u << i)) {
            g_byte_array_append(values, pcrs[i], 32);
            ev.pcrs[ev.n_pcrs].index = (guint8)i;
            ev.pcrs[ev.n_pcrs].digest = g_bytes_new(pcrs[i], 32);
            ev.n_pcrs++;
        }
    }
    if ((flags & 1) && ev.n_pcrs) {
        ev.pcrs[0].index = data[1];
    }
    ev.pcr_bank = (flags & 2) ? data[2] : TVD_TPM_ALG_SHA256;
    memcpy(nonce, req.nonce, sizeof(nonce));
    if (flags & 4) {
        nonce[0] ^= 1;
    }
    ev.attest = tvd_synth_attest_clock(TPM2_ST_ATTEST_QUOTE, nonce,
                                       sizeof(nonce), TPM2_ALG_SHA256,
                                       select, values->data, values->len,
                                       1000, 1, 0);
    ev.signature = tvd_synth_sign(key, ev.attest);
    offset = (flags & 8) ? data[2] : req.ima_offset;
    ev.logs[0].kind = TVD_LOG_IMA_NG;
    ev.logs[0].offset = offset;
    ev.logs[0].entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    for (guint i = (guint)req.ima_offset; i < records->len; i++) {
        if ((flags & 16) && i > req.ima_offset) {
            if (!more) {
                more = g_ptr_array_new_with_free_func(
                    (GDestroyNotify)g_bytes_unref);
            }
            g_ptr_array_add(more, g_bytes_ref(records->pdata[i]));
        } else {
            g_ptr_array_add(ev.logs[0].entries,
                            g_bytes_ref(records->pdata[i]));
        }
    }
    ev.logs[1].kind = TVD_LOG_AGENT_LIST;
    ev.logs[1].offset = req.agent_offset;
    ev.logs[1].entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    if (req.agent_offset == 0) {
        g_ptr_array_add(ev.logs[1].entries, g_bytes_ref(agent));
    }
    ev.n_logs = 2;
    in.chunk_entries[TVD_LOG_IMA_NG] = more;
    tvd_round_verify(state, &req, &in, &res);
    check_result(&res);
    tvd_msg_evidence_clear(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) records = NULL;
    g_autoptr(TvdRoundState) state = NULL;
    g_autoptr(TvdNonceStore) nonces = NULL;
    g_autoptr(GByteArray) adata = g_byte_array_new();
    g_autoptr(GBytes) agent = NULL;
    guint8 pcrs[24][32], digest[32], th[20] = { 1 };
    gsize off = 3;

    if (size < 3) {
        return 0;
    }
    setup();
    memset(pcrs, 0, sizeof(pcrs));
    records = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    while (off < size && records->len < MAX_RECORDS) {
        TvdImaRecordView v;

        if (tvd_ima_record_frame(data + off, size - off, 20, 255, 8192,
                                 &v) != TVD_IMA_RECORD_OK) {
            break;
        }
        if (v.pcr == 10) {
            extend(pcrs[10], &v);
        }
        g_ptr_array_add(records, g_bytes_new(data + off, v.length));
        off += v.length;
    }
    /* the agent's list: one honest record in PCR 13 */
    memset(digest, 0x42, sizeof(digest));
    tvd_ima_ng_data_append(adata, "sha256", digest, 32, "/usr/bin/agent");
    {
        TvdImaRecordView v;

        EVP_Digest(adata->data, adata->len, th, NULL, EVP_sha1(), NULL);
        agent = tvd_ima_record_encode(13, th, 20, "ima-ng", adata->data,
                                      adata->len);
        g_assert(tvd_ima_record_frame(g_bytes_get_data(agent, NULL),
                                      g_bytes_get_size(agent), 20, 255, 8192,
                                      &v) == TVD_IMA_RECORD_OK);
        extend(pcrs[13], &v);
    }
    state = tvd_round_state_new();
    nonces = tvd_nonce_store_new(16, G_USEC_PER_SEC * 60);
    one_round(state, nonces, data[0], data, records, pcrs, agent);
    if (data[0] & 32) {
        one_round(state, nonces, data[0] & ~(4 | 8), data, records, pcrs,
                  agent);
    }
    return 0;
}
