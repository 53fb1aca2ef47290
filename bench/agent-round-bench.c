/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The agent's side of attestation, timed:
 *
 * 1. One attestation round as tvd-agent does it (agent.c on_attest_request):
 *    measure a directory into the agent list (SHA-256 of each file, an
 *    ima-ng record and a PCR extend for each new digest), quote PCRs 0-15
 *    with a fresh nonce through the agent's TPM layer on a real swtpm, and
 *    encode the EVIDENCE message (PCR values, the new records) into a frame.
 *    Split into TPM time (extends and the quote, as the TPM layer returns
 *    them) and agent time (the rest). The first round measures every file;
 *    the next ones find one changed file each.
 *
 * 2. The transfer of a 100,000-entry IMA log: ima-ng records chunked as the
 *    agent does (tvd_pending_log_fill_chunk of guest-agent/log-chunk.c: a mailbox half less 4 KiB of room per
 *    message), each LOG_CHUNK encoded into a frame, then decoded as the
 *    supervisor does (tvd_frame_decode, tvd_msg_decode), for a 32 KiB half
 *    (the default 64 KiB mailbox) and a 1 MiB half. Without the device: the
 *    device's own relay cost is bench/run-mailbox-bench's.
 *
 *   agent-round-bench [--rounds N] [--files N] [--entries N] [--tcti CONF]
 *                     [--no-tpm]
 *
 * Without --tcti it provisions and starts its own swtpm. Prints figures;
 * asserts nothing about time (docs/agent.md records them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "agent-tpm.h"
#include "frame.h"
#include "log-chunk.h"
#include "measure.h"
#include "message.h"
#include "tpm-test-util.h"

#define AGENT_PCR       13u
#define MSG_OVERHEAD    4096u           /* agent.c */
#define MAX_ROUNDS      200

static double now_ms(void)
{
    return (double)g_get_monotonic_time() / 1000.0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(const double *v, guint n)
{
    double tmp[MAX_ROUNDS];

    memcpy(tmp, v, n * sizeof(double));
    qsort(tmp, n, sizeof(double), cmp_double);
    return n ? tmp[n / 2] : 0;
}

/* ---- agent.c's chunking ------------------------------------------------------ */


static gsize budget_of(gsize half)
{
    return half > MSG_OVERHEAD * 2 ? half - MSG_OVERHEAD : half / 2;
}

/* ---- 1. one round ---------------------------------------------------------- */

typedef struct {
    TvdAgentTpm *tpm;
    double tpm_ms;
} Ctx;

static gboolean timed_extend(guint32 pcr, const guint8 digest[32],
                             void *opaque, GError **error)
{
    Ctx *c = opaque;
    double t0 = now_ms();
    gboolean ok = tvd_agent_tpm_pcr_extend(c->tpm, pcr, digest, 32, error);

    c->tpm_ms += now_ms() - t0;
    return ok;
}

static gboolean make_files(const char *dir, guint n, gsize size,
                           GError **error)
{
    g_autofree guint8 *buf = g_malloc(size);

    for (guint i = 0; i < n; i++) {
        g_autofree char *p = g_strdup_printf("%s/file-%04u", dir, i);

        RAND_bytes(buf, size);
        if (!g_file_set_contents(p, (const char *)buf, size, error)) {
            return FALSE;
        }
    }
    return TRUE;
}

static int run_rounds(TvdAgentTpm *tpm, guint rounds, guint files)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("tvd-agent-round-XXXXXX", &error);
    g_autoptr(TvdAgentList) list = tvd_agent_list_new(AGENT_PCR, NULL);
    g_autoptr(GBytes) ak_pub = NULL, ak_name = NULL;
    double total[MAX_ROUNDS], tpm_ms[MAX_ROUNDS], agent[MAX_ROUNDS];
    double quote_ms[MAX_ROUNDS], measure_ms[MAX_ROUNDS], encode_ms[MAX_ROUNDS];
    gsize frame_bytes[MAX_ROUNDS];
    guint added[MAX_ROUNDS];
    guint64 sent = 0;
    const gsize half = 32 * 1024;

    if (!dir || !make_files(dir, files, 16 * 1024, &error) ||
        !tvd_agent_tpm_ensure_ak(tpm, TVD_AGENT_TPM_ALG_RSA, &ak_pub,
                                 &ak_name, &error)) {
        g_printerr("setup: %s\n", error->message);
        return 1;
    }
    for (guint r = 0; r < rounds; r++) {
        g_auto(TvdAgentTpmQuote) q = { 0 };
        TvdMsg msg = { .type = TVD_MSG_EVIDENCE };
        TvdMsgEvidence *ev = &msg.u.evidence;
        TvdPendingLog log = { TVD_LOG_AGENT_LIST, sent, NULL, 0 };
        g_autoptr(GBytes) payload = NULL, frame = NULL;
        Ctx c = { tpm, 0 };
        guint8 nonce[32];
        const guint8 *vals;
        double t0, t1, t2, t3;
        int n;

        if (r > 0) {
            g_autofree char *p = g_strdup_printf("%s/file-%04u", dir,
                                                 r % files);
            g_autofree char *text = g_strdup_printf("changed in round %u", r);

            g_file_set_contents(p, text, -1, NULL);
        }
        RAND_bytes(nonce, sizeof(nonce));
        t0 = now_ms();
        n = tvd_agent_list_measure(list, dir, timed_extend, &c, &error);
        t1 = now_ms();
        if (n < 0 || !tvd_agent_tpm_quote(tpm, TVD_AGENT_TPM_ALG_RSA, 0xffff,
                                          nonce, sizeof(nonce), &q, &error)) {
            g_printerr("round %u: %s\n", r, error->message);
            return 1;
        }
        t2 = now_ms();
        ev->attest = q.attest;
        ev->signature = q.signature;
        ev->pcr_bank = TVD_TPM_ALG_SHA256;
        vals = g_bytes_get_data(q.pcr_values, NULL);
        for (guint i = 0; i < 16; i++) {
            ev->pcrs[i].index = i;
            ev->pcrs[i].digest = g_bytes_new(vals + 32 * i, 32);
        }
        ev->n_pcrs = 16;
        log.entries = tvd_agent_list_since(list, sent);
        tvd_pending_log_fill_chunk(&log, &ev->logs[0], budget_of(half));
        ev->n_logs = 1;
        payload = tvd_msg_encode(&msg, &error);
        frame = payload ? tvd_frame_encode_bytes(TVD_FRAME_AGENT, r + 1,
                                                 payload, &error) : NULL;
        t3 = now_ms();
        if (!frame) {
            g_printerr("evidence: %s\n", error->message);
            return 1;
        }
        sent += ev->logs[0].entries->len;
        frame_bytes[r] = g_bytes_get_size(frame);
        added[r] = n;
        measure_ms[r] = t1 - t0;
        quote_ms[r] = t2 - t1;
        encode_ms[r] = t3 - t2;
        total[r] = t3 - t0;
        tpm_ms[r] = c.tpm_ms + quote_ms[r];
        agent[r] = total[r] - tpm_ms[r];
        for (guint i = 0; i < ev->n_pcrs; i++) {
            g_bytes_unref(ev->pcrs[i].digest);
        }
        g_ptr_array_unref(ev->logs[0].entries);
        g_ptr_array_unref(log.entries);
    }
    printf("\n1. attestation round (%u files of 16 KiB, RSA AK, PCRs 0-15)\n",
           files);
    printf("%-24s %6s %9s %9s %9s %9s %9s %9s %8s\n", "round", "new",
           "total", "TPM", "agent", "measure", "quote", "encode", "frame B");
    printf("%-24s %6u %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %8zu\n",
           "first (all files new)", added[0], total[0], tpm_ms[0], agent[0],
           measure_ms[0], quote_ms[0], encode_ms[0], frame_bytes[0]);
    if (rounds > 1) {
        printf("%-24s %6u %9.2f %9.2f %9.2f %9.2f %9.2f %9.2f %8zu\n",
               "next (1 changed), median", added[1],
               median(total + 1, rounds - 1), median(tpm_ms + 1, rounds - 1),
               median(agent + 1, rounds - 1),
               median(measure_ms + 1, rounds - 1),
               median(quote_ms + 1, rounds - 1),
               median(encode_ms + 1, rounds - 1), frame_bytes[1]);
    }
    printf("(ms; TPM = the extends of new records + the quote; agent = file "
           "hashing, records, evidence encoding)\n");
    tpm_test_rmtree(dir);
    return 0;
}

/* ---- 2. a 100,000-entry IMA log ------------------------------------------------- */

static int run_log(guint n_entries, gsize half)
{
    g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) frames = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_autoptr(GError) error = NULL;
    TvdPendingLog log = { TVD_LOG_IMA_NG, 0, NULL, 0 };
    guint64 bytes = 0, frame_bytes = 0, got = 0;
    gsize max_frame = 0;
    double t0, t1, t2;

    for (guint i = 0; i < n_entries; i++) {
        g_autofree char *path = g_strdup_printf(
            "/usr/lib/x86_64-linux-gnu/guest-%06u/libexample-%u.so.1", i / 64,
            i);
        guint8 d[32] = { 0 }, ext[32];
        GBytes *rec;

        memcpy(d, &i, sizeof(i));
        rec = tvd_measure_record(10, path, d, ext);
        bytes += g_bytes_get_size(rec);
        g_ptr_array_add(entries, rec);
    }
    log.entries = entries;

    t0 = now_ms();
    while (log.next < log.entries->len) {
        TvdMsg chunk = { .type = TVD_MSG_LOG_CHUNK };
        g_autoptr(GBytes) payload = NULL;
        GBytes *frame;

        tvd_pending_log_fill_chunk(&log, &chunk.u.log_chunk, budget_of(half));
        payload = tvd_msg_encode(&chunk, &error);
        g_ptr_array_unref(chunk.u.log_chunk.entries);
        frame = payload ? tvd_frame_encode_bytes(TVD_FRAME_AGENT,
                                                 frames->len + 1, payload,
                                                 &error) : NULL;
        if (!frame) {
            g_printerr("encode: %s\n", error->message);
            return 1;
        }
        max_frame = MAX(max_frame, g_bytes_get_size(frame));
        frame_bytes += g_bytes_get_size(frame);
        g_ptr_array_add(frames, frame);
    }
    t1 = now_ms();
    for (guint i = 0; i < frames->len; i++) {
        struct tvd_frame_header hdr;
        g_autoptr(GBytes) payload = NULL;
        gsize len;
        const void *f = g_bytes_get_data(frames->pdata[i], &len);
        TvdMsg msg;

        if (!tvd_frame_decode(f, len, half - TVD_FRAME_HEADER_SIZE, &hdr,
                              &payload, &error) ||
            !tvd_msg_decode(payload, &msg, &error)) {
            g_printerr("decode: %s\n", error->message);
            return 1;
        }
        if (msg.u.log_chunk.offset != got) {
            g_printerr("chunk %u at offset %" G_GUINT64_FORMAT ", expected %"
                       G_GUINT64_FORMAT "\n", i, msg.u.log_chunk.offset, got);
            return 1;
        }
        got += msg.u.log_chunk.entries->len;
        tvd_msg_clear(&msg);
    }
    t2 = now_ms();
    if (got != n_entries || max_frame > half) {
        g_printerr("decoded %" G_GUINT64_FORMAT " of %u entries, largest "
                   "frame %zu for a half of %zu\n", got, n_entries,
                   max_frame, half);
        return 1;
    }
    printf("%7zu KiB %7u %8u %10.1f %10.1f %10.1f %10.0f %9.1f\n",
           half / 1024, frames->len, n_entries, t1 - t0, t2 - t1, t2 - t0,
           n_entries / ((t2 - t0) / 1000.0),
           (double)frame_bytes / 1048576.0);
    (void)bytes;
    return 0;
}

int main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(TpmTestSwtpm) swtpm = NULL;
    g_autoptr(TvdAgentTpm) tpm = NULL;
    const char *tcti = NULL;
    gboolean no_tpm = FALSE;
    guint rounds = 10, files = 100, n_entries = 100000;
    int ret = 0;

    for (int i = 1; i < argc; i++) {
        /* (CLAMP evaluates its argument more than once) */
        int n = i + 1 < argc ? atoi(argv[i + 1]) : 0;

        if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = (guint)CLAMP(n, 1, MAX_ROUNDS);
            i++;
        } else if (strcmp(argv[i], "--files") == 0 && i + 1 < argc) {
            files = (guint)CLAMP(n, 1, 4000);
            i++;
        } else if (strcmp(argv[i], "--entries") == 0 && i + 1 < argc) {
            n_entries = (guint)CLAMP(n, 1, 10000000);
            i++;
        } else if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc) {
            tcti = argv[++i];
        } else if (strcmp(argv[i], "--no-tpm") == 0) {
            no_tpm = TRUE;
        } else {
            g_printerr("usage: %s [--rounds N] [--files N] [--entries N] "
                       "[--tcti CONF] [--no-tpm]\n", argv[0]);
            return 2;
        }
    }
    g_setenv("TSS2_LOG", "all+none", FALSE);

    if (!no_tpm && !tcti) {
        const char *why = NULL;

        swtpm = tpm_test_swtpm_new(&why, &error);
        if (!swtpm && why) {
            printf("agent-round-bench: round skipped, %s missing\n", why);
            no_tpm = TRUE;
        } else if (!swtpm || !tpm_test_swtpm_start(swtpm, &error)) {
            g_printerr("swtpm: %s\n", error->message);
            return 1;
        } else {
            tcti = tpm_test_swtpm_tcti(swtpm);
        }
    }
    if (!no_tpm) {
        TvdAgentTpmConfig config = { .tcti = tcti };

        tpm = tvd_agent_tpm_new(&config, &error);
        if (!tpm) {
            g_printerr("TPM: %s\n", error->message);
            return 1;
        }
        printf("TPM: %s%s\n", tcti,
               swtpm ? " (swtpm started by the bench)" : "");
        ret = run_rounds(tpm, rounds, files);
        g_clear_pointer(&tpm, tvd_agent_tpm_free);
    }

    printf("\n2. IMA log of %u ima-ng entries in LOG_CHUNK frames "
           "(encode = chunk + message + frame; decode = frame + message)\n",
           n_entries);
    printf("%11s %7s %8s %10s %10s %10s %10s %9s\n", "half", "frames",
           "entries", "encode ms", "decode ms", "total ms", "entries/s",
           "MiB");
    ret |= run_log(n_entries, 32 * 1024);
    ret |= run_log(n_entries, 1024 * 1024);
    return ret;
}
