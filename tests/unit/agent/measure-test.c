/*
 * The agent's measurements (guest-agent/measure.c) checked against the
 * supervisor's own reader: records made by the agent parse with the
 * verifier's tvd_ima_entry_parse and replay with tvd_ima_replay to the PCR
 * value the agent extended; the IMA log splitter on a real Linux 6.1 log;
 * the agent list over a temporary directory, its persistence, and an
 * extend that fails.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <string.h>

#include "measure.h"
#include "verifier.h"

#define AGENT_PCR 13u
#define FAKE_TPM_ERROR (g_quark_from_static_string("fake-tpm"))

static void sha256(const void *data, gsize len, guint8 out[32])
{
    unsigned int n;

    g_assert_true(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL));
    g_assert_cmpuint(n, ==, 32);
}

/* What a TPM does on PCR_Extend: pcr = SHA-256(pcr || digest). */
static void extend_sim(guint8 pcr[32], const guint8 digest[32])
{
    guint8 buf[64];

    memcpy(buf, pcr, 32);
    memcpy(buf + 32, digest, 32);
    sha256(buf, sizeof(buf), pcr);
}

/* A fake TPM: one PCR, every extend counted. */
typedef struct {
    guint8 pcr[32];
    guint calls;
    gboolean fail;
} FakePcr;

static gboolean fake_extend(guint32 pcr, const guint8 digest[32],
                            void *opaque, GError **error)
{
    FakePcr *f = opaque;

    g_assert_cmpuint(pcr, ==, AGENT_PCR);
    if (f->fail) {
        g_set_error(error, FAKE_TPM_ERROR, 1,
                    "the TPM said no");
        return FALSE;
    }
    extend_sim(f->pcr, digest);
    f->calls++;
    return TRUE;
}

static GPtrArray *parse_all(GPtrArray *records)
{
    const TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    GPtrArray *entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)tvd_ima_entry_free);

    for (guint i = 0; i < records->len; i++) {
        g_autoptr(GError) err = NULL;
        gsize len;
        const guint8 *r = g_bytes_get_data(records->pdata[i], &len);
        TvdImaEntry *e = tvd_ima_entry_parse(r, len, &limits, &err);

        g_assert_no_error(err);
        g_assert_nonnull(e);
        g_ptr_array_add(entries, e);
    }
    return entries;
}

/* The verifier's replay of @records from 0 must land on @pcr. */
static void assert_replays_to(GPtrArray *records, const guint8 pcr[32])
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) entries = parse_all(records);
    g_autoptr(TvdImaReplay) replay = tvd_ima_replay_new(TPM2_ALG_SHA256,
                                                        AGENT_PCR, &err);
    guint used = 0;
    gsize vlen;
    const guint8 *v;

    g_assert_no_error(err);
    g_assert_true(tvd_ima_replay_match(replay, 0, entries, pcr, 32, &used,
                                       &err));
    g_assert_no_error(err);
    /* The shortest matching prefix: all of it, since every record moves
     * the PCR (or none, for an empty list and a zero PCR). */
    g_assert_cmpuint(used, ==, records->len);
    v = tvd_ima_replay_value(replay, &vlen);
    g_assert_cmpmem(v, vlen, pcr, 32);
}

/* ---- tvd_measure_record ----------------------------------------------------- */

static void test_record_parses_and_replays(void)
{
    static const char *const paths[] = {
        "/usr/bin/tvd-agent", "/proc/sys/kernel/random/boot_id",
        "/opt/app/a file with spaces", "/",
    };
    const TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    guint8 pcr[32] = { 0 };

    for (guint i = 0; i < G_N_ELEMENTS(paths); i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(TvdImaEntry) e = NULL;
        guint8 file_digest[32], extend[32], expect[32], sha1[20];
        gsize len, dlen;
        const guint8 *r, *data;
        unsigned int n;
        GBytes *rec;

        sha256(paths[i], strlen(paths[i]), file_digest);
        rec = tvd_measure_record(AGENT_PCR, paths[i], file_digest, extend);
        g_ptr_array_add(records, rec);
        r = g_bytes_get_data(rec, &len);
        e = tvd_ima_entry_parse(r, len, &limits, &err);
        g_assert_no_error(err);
        g_assert_nonnull(e);
        g_assert_cmpuint(e->pcr, ==, AGENT_PCR);
        g_assert_cmpstr(e->template_name, ==, "ima-ng");
        g_assert_cmpstr(e->digest_alg, ==, "sha256");
        g_assert_cmpmem(e->digest, e->digest_len, file_digest, 32);
        g_assert_cmpstr(e->path, ==, paths[i]);
        g_assert_false(e->violation);
        g_assert_null(e->sig);
        /* The template hash is SHA-1 of the template data, and what the
         * agent extends into the SHA-256 bank is SHA-256 of it. */
        data = g_bytes_get_data(e->template_data, &dlen);
        g_assert_true(EVP_Digest(data, dlen, sha1, &n, EVP_sha1(), NULL));
        g_assert_cmpmem(e->template_hash, 20, sha1, 20);
        sha256(data, dlen, expect);
        g_assert_cmpmem(extend, 32, expect, 32);
        extend_sim(pcr, extend);
    }
    assert_replays_to(records, pcr);
}

/* A replay with one record left out does not reach the same value. */
static void test_record_replay_detects_gap(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) records = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(TvdImaReplay) replay = NULL;
    guint8 pcr[32] = { 0 };

    for (guint i = 0; i < 3; i++) {
        g_autofree char *path = g_strdup_printf("/f%u", i);
        guint8 d[32] = { (guint8)i }, ext[32];

        g_ptr_array_add(records, tvd_measure_record(AGENT_PCR, path, d, ext));
        extend_sim(pcr, ext);
    }
    g_ptr_array_remove_index(records, 1);
    entries = parse_all(records);
    replay = tvd_ima_replay_new(TPM2_ALG_SHA256, AGENT_PCR, &err);
    g_assert_false(tvd_ima_replay_match(replay, 0, entries, pcr, 32, NULL,
                                        &err));
    g_assert_error(err, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_REPLAY_MISMATCH);
}

/* ---- tvd_measure_split_log on a real kernel log --------------------------- */

typedef struct {
    guint8 *log;
    gsize len;
    guint count;                /* records, as the verifier counts them */
    GPtrArray *bounds;          /* record i spans bounds[i]..bounds[i+1] */
} RealLog;

static void real_log_load(RealLog *rl)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *path = g_test_build_filename(G_TEST_DIST, "..",
                                                  "verifier", "data",
                                                  "ima-ng-linux-6.1.bin",
                                                  NULL);
    g_autoptr(GPtrArray) entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)tvd_ima_entry_free);
    const TvdImaLimits limits = TVD_IMA_LIMITS_DEFAULT;
    gsize consumed = 0, off = 0;

    g_assert_true(g_file_get_contents(path, (char **)&rl->log, &rl->len,
                                      &err));
    g_assert_no_error(err);
    g_assert_true(tvd_ima_log_parse(rl->log, rl->len, &limits, FALSE,
                                    entries, &consumed, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(consumed, ==, rl->len);
    rl->count = entries->len;
    g_assert_cmpuint(rl->count, >=, 6);
    /* Record bounds from the verifier's parse, not from the splitter. */
    rl->bounds = g_ptr_array_new();
    for (guint i = 0; i < entries->len; i++) {
        TvdImaEntry *e = entries->pdata[i];

        g_ptr_array_add(rl->bounds, GSIZE_TO_POINTER(off));
        off += 4 + 20 + 4 + strlen(e->template_name) + 4 +
               g_bytes_get_size(e->template_data);
    }
    g_assert_cmpuint(off, ==, rl->len);
    g_ptr_array_add(rl->bounds, GSIZE_TO_POINTER(off));
}

static void real_log_clear(RealLog *rl)
{
    g_free(rl->log);
    g_ptr_array_unref(rl->bounds);
}

static gsize bound(const RealLog *rl, guint i)
{
    return GPOINTER_TO_SIZE(rl->bounds->pdata[i]);
}

static void test_split_real_log(void)
{
    RealLog rl;
    const guint64 offsets[] = { 0, 1, 2, 5 };

    real_log_load(&rl);
    for (guint k = 0; k < G_N_ELEMENTS(offsets) + 2; k++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) recs = NULL;
        guint64 off = k < G_N_ELEMENTS(offsets) ? offsets[k]
                      : k == G_N_ELEMENTS(offsets) ? rl.count - 1 : rl.count;

        recs = tvd_measure_split_log(rl.log, rl.len, off, G_MAXUINT, &err);
        g_assert_no_error(err);
        g_assert_nonnull(recs);
        g_assert_cmpuint(recs->len, ==, rl.count - off);
        for (guint i = 0; i < recs->len; i++) {
            gsize s = bound(&rl, off + i), e = bound(&rl, off + i + 1);

            g_assert_cmpmem(g_bytes_get_data(recs->pdata[i], NULL),
                            g_bytes_get_size(recs->pdata[i]),
                            rl.log + s, e - s);
        }
    }
    /* Past the end: nothing, no error. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) recs = tvd_measure_split_log(
            rl.log, rl.len, rl.count + 100, G_MAXUINT, &err);

        g_assert_no_error(err);
        g_assert_cmpuint(recs->len, ==, 0);
    }
    /* max_records caps a round. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) recs = tvd_measure_split_log(rl.log, rl.len, 1,
                                                          3, &err);

        g_assert_no_error(err);
        g_assert_cmpuint(recs->len, ==, 3);
        g_assert_cmpmem(g_bytes_get_data(recs->pdata[0], NULL),
                        g_bytes_get_size(recs->pdata[0]),
                        rl.log + bound(&rl, 1), bound(&rl, 2) - bound(&rl, 1));
    }
    real_log_clear(&rl);
}

/* The kernel's file may be read while it grows: every prefix gives the whole
 * records in it and never an error. */
static void test_split_truncated(void)
{
    RealLog rl;
    guint whole = 0;

    real_log_load(&rl);
    /* Every byte boundary of the first three records, then a stride. */
    for (gsize cut = 0; cut <= rl.len; cut += cut < bound(&rl, 3) ? 1 : 97) {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *copy = g_memdup2(rl.log, cut ? cut : 1);
        g_autoptr(GPtrArray) recs = tvd_measure_split_log(copy, cut, 0,
                                                          G_MAXUINT, &err);

        while (whole < rl.count && bound(&rl, whole + 1) <= cut) {
            whole++;
        }
        while (whole > 0 && bound(&rl, whole) > cut) {
            whole--;
        }
        g_assert_no_error(err);
        g_assert_nonnull(recs);
        g_assert_cmpuint(recs->len, ==, whole);
    }
    real_log_clear(&rl);
}

static void put_le32(guint8 *p, guint32 v)
{
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static void test_split_bad_lengths(void)
{
    g_autoptr(GBytes) rec = NULL;
    guint8 d[32] = { 1 }, ext[32];
    gsize len;
    g_autofree guint8 *buf = NULL;
    const guint32 bad_data_lens[] = { 64 * 1024 + 1, 0x7fffffff, 0xffffffff };

    rec = tvd_measure_record(AGENT_PCR, "/x", d, ext);
    len = g_bytes_get_size(rec);
    buf = g_memdup2(g_bytes_get_data(rec, NULL), len);

    /* Template name longer than the kernel allows (255): an error. */
    {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(buf, len);

        put_le32(b + 24, 256);
        g_assert_null(tvd_measure_split_log(b, len, 0, G_MAXUINT, &err));
        g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    }
    {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(buf, len);

        put_le32(b + 24, 0xffffffff);
        g_assert_null(tvd_measure_split_log(b, len, 0, G_MAXUINT, &err));
        g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    }
    /* Template data above the cap: an error, never a read past the end. */
    for (guint i = 0; i < G_N_ELEMENTS(bad_data_lens); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(buf, len);

        put_le32(b + 34, bad_data_lens[i]);
        g_assert_null(tvd_measure_split_log(b, len, 0, G_MAXUINT, &err));
        g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_INVAL);
    }
    /* A name length that runs past the end: a record still being written. */
    {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(buf, len);
        g_autoptr(GPtrArray) recs = NULL;

        put_le32(b + 24, 200);
        recs = tvd_measure_split_log(b, len, 0, G_MAXUINT, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(recs->len, ==, 0);
    }
    /* A data length one too long: the same. */
    {
        g_autoptr(GError) err = NULL;
        g_autofree guint8 *b = g_memdup2(buf, len);
        g_autoptr(GPtrArray) recs = NULL;

        put_le32(b + 34, len - 38 + 1);
        recs = tvd_measure_split_log(b, len, 0, G_MAXUINT, &err);
        g_assert_no_error(err);
        g_assert_cmpuint(recs->len, ==, 0);
    }
    /* Empty input. */
    {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) recs = tvd_measure_split_log(buf, 0, 0,
                                                          G_MAXUINT, &err);

        g_assert_no_error(err);
        g_assert_cmpuint(recs->len, ==, 0);
    }
}

/* ---- the agent list --------------------------------------------------------- */

typedef struct {
    char *dir;                  /* measured */
    char *state;                /* the list's state file */
    char *top;
} ListFixture;

static void write_file(const char *dir, const char *name, const char *text)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *p = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(p, text, -1, &err));
    g_assert_no_error(err);
}

static void rmtree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rmtree(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(path);
}

static void list_setup(ListFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *sub = NULL;

    f->top = g_dir_make_tmp("tvd-measure-XXXXXX", &err);
    g_assert_no_error(err);
    f->dir = g_build_filename(f->top, "app", NULL);
    f->state = g_build_filename(f->top, "agent-list.bin", NULL);
    sub = g_build_filename(f->dir, "sub", NULL);
    g_assert_cmpint(g_mkdir_with_parents(sub, 0700), ==, 0);
    write_file(f->dir, "b", "bee\n");
    write_file(f->dir, "a", "ay\n");
    write_file(sub, "c", "sea\n");
}

static void list_teardown(ListFixture *f, gconstpointer data)
{
    rmtree(f->top);
    g_free(f->top);
    g_free(f->dir);
    g_free(f->state);
}

static GPtrArray *list_entries(TvdAgentList *list)
{
    g_autoptr(GPtrArray) recs = tvd_agent_list_since(list, 0);

    return parse_all(recs);
}

static void test_list_measure(ListFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAgentList) list = tvd_agent_list_new(AGENT_PCR, NULL);
    g_autoptr(GPtrArray) entries = NULL;
    g_autoptr(GPtrArray) recs = NULL;
    g_autoptr(GPtrArray) tail = NULL;
    g_autofree char *b = g_build_filename(f->dir, "b", NULL);
    FakePcr fp = { .calls = 0 };
    guint8 digest[32];

    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, 3);
    g_assert_no_error(err);
    g_assert_cmpuint(fp.calls, ==, 3);
    g_assert_cmpuint(tvd_agent_list_count(list), ==, 3);
    entries = list_entries(list);
    /* Sorted by path, the subdirectory's file included. */
    g_assert_true(g_str_has_suffix(((TvdImaEntry *)entries->pdata[0])->path,
                                   "/app/a"));
    g_assert_true(g_str_has_suffix(((TvdImaEntry *)entries->pdata[1])->path,
                                   "/app/b"));
    g_assert_true(g_str_has_suffix(((TvdImaEntry *)entries->pdata[2])->path,
                                   "/app/sub/c"));
    sha256("bee\n", 4, digest);
    g_assert_cmpmem(((TvdImaEntry *)entries->pdata[1])->digest, 32, digest,
                    32);
    recs = tvd_agent_list_since(list, 0);
    assert_replays_to(recs, fp.pcr);

    /* Unchanged: no record, no extend. */
    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, 0);
    g_assert_cmpuint(fp.calls, ==, 3);

    /* One file changes: exactly one new record, for that file. */
    write_file(f->dir, "b", "bumblebee\n");
    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, 1);
    g_assert_no_error(err);
    g_assert_cmpuint(tvd_agent_list_count(list), ==, 4);
    tail = tvd_agent_list_since(list, 3);
    g_assert_cmpuint(tail->len, ==, 1);
    g_clear_pointer(&entries, g_ptr_array_unref);
    entries = parse_all(tail);
    g_assert_cmpstr(((TvdImaEntry *)entries->pdata[0])->path, ==, b);
    g_clear_pointer(&recs, g_ptr_array_unref);
    recs = tvd_agent_list_since(list, 0);
    assert_replays_to(recs, fp.pcr);

    /* A single file, and data under a name. */
    g_assert_cmpint(tvd_agent_list_measure(list, b, fake_extend, &fp, &err),
                    ==, 0);
    g_assert_cmpint(tvd_agent_list_measure_data(list, "/boot-id", "x", 1,
                                                fake_extend, &fp, &err),
                    ==, 1);
    g_assert_cmpint(tvd_agent_list_measure_data(list, "/boot-id", "x", 1,
                                                fake_extend, &fp, &err),
                    ==, 0);
    g_assert_cmpuint(tvd_agent_list_count(list), ==, 5);

    /* A missing path is an error and adds nothing. */
    {
        g_autofree char *nope = g_build_filename(f->dir, "nope", NULL);

        g_assert_cmpint(tvd_agent_list_measure(list, nope, fake_extend, &fp,
                                               &err), ==, -1);
        g_assert_error(err, G_FILE_ERROR, G_FILE_ERROR_NOENT);
        g_assert_cmpuint(tvd_agent_list_count(list), ==, 5);
    }
    /* since() past the end is empty. */
    g_clear_pointer(&tail, g_ptr_array_unref);
    tail = tvd_agent_list_since(list, 99);
    g_assert_cmpuint(tail->len, ==, 0);
}

static GBytes *read_bytes(const char *path)
{
    g_autoptr(GError) err = NULL;
    char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, &err)) {
        return g_bytes_new(NULL, 0);
    }
    return g_bytes_new_take(data, len);
}

static void test_list_persistence(ListFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAgentList) first = tvd_agent_list_new(AGENT_PCR, f->state);
    g_autoptr(TvdAgentList) second = NULL;
    g_autoptr(TvdAgentList) third = NULL;
    g_autoptr(GPtrArray) r1 = NULL;
    g_autoptr(GPtrArray) r2 = NULL;
    g_autoptr(GPtrArray) r3 = NULL;
    FakePcr fp = { .calls = 0 };

    g_assert_cmpuint(tvd_agent_list_count(first), ==, 0);
    g_assert_cmpint(tvd_agent_list_measure(first, f->dir, fake_extend, &fp,
                                           &err), ==, 3);
    g_assert_cmpint(tvd_agent_list_measure_data(first, "/boot-id", "b1", 2,
                                                fake_extend, &fp, &err),
                    ==, 1);
    g_assert_no_error(err);
    r1 = tvd_agent_list_since(first, 0);
    {
        GStatBuf st;

        g_assert_cmpint(g_stat(f->state, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0600);
    }

    /* An agent restart: the same records, and unchanged files (and the same
     * boot id) are not measured again (the PCR already holds them). */
    second = tvd_agent_list_new(AGENT_PCR, f->state);
    g_assert_cmpuint(tvd_agent_list_count(second), ==, 4);
    r2 = tvd_agent_list_since(second, 0);
    for (guint i = 0; i < r1->len; i++) {
        g_assert_true(g_bytes_equal(r1->pdata[i], r2->pdata[i]));
    }
    g_assert_cmpint(tvd_agent_list_measure(second, f->dir, fake_extend, &fp,
                                           &err), ==, 0);
    g_assert_cmpint(tvd_agent_list_measure_data(second, "/boot-id", "b1", 2,
                                                fake_extend, &fp, &err),
                    ==, 0);
    g_assert_cmpuint(fp.calls, ==, 4);

    /* A change after the restart is a new record, kept for the next one. */
    write_file(f->dir, "a", "changed\n");
    g_assert_cmpint(tvd_agent_list_measure(second, f->dir, fake_extend, &fp,
                                           &err), ==, 1);
    g_assert_no_error(err);
    third = tvd_agent_list_new(AGENT_PCR, f->state);
    g_assert_cmpuint(tvd_agent_list_count(third), ==, 5);
    r3 = tvd_agent_list_since(third, 0);
    assert_replays_to(r3, fp.pcr);
    g_assert_cmpint(tvd_agent_list_measure(third, f->dir, fake_extend, &fp,
                                           &err), ==, 0);
}

/* A state file cut short (a crash during a write) resumes with the whole
 * records in it. */
static void test_list_truncated_state(ListFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAgentList) first = tvd_agent_list_new(AGENT_PCR, f->state);
    g_autoptr(TvdAgentList) second = NULL;
    g_autoptr(GBytes) state = NULL;
    FakePcr fp = { .calls = 0 };

    g_assert_cmpint(tvd_agent_list_measure(first, f->dir, fake_extend, &fp,
                                           &err), ==, 3);
    state = read_bytes(f->state);
    g_assert_true(g_file_set_contents(f->state,
                                      g_bytes_get_data(state, NULL),
                                      g_bytes_get_size(state) - 5, &err));
    second = tvd_agent_list_new(AGENT_PCR, f->state);
    g_assert_cmpuint(tvd_agent_list_count(second), ==, 2);

    /* The cut record is trimmed, so what follows is read in step. */
    g_assert_cmpint(tvd_agent_list_measure(second, f->dir, fake_extend, &fp,
                                           &err), ==, 1);
    g_assert_no_error(err);
    {
        g_autoptr(TvdAgentList) third = tvd_agent_list_new(AGENT_PCR,
                                                           f->state);
        g_autoptr(GPtrArray) r2 = tvd_agent_list_since(second, 0);
        g_autoptr(GPtrArray) r3 = tvd_agent_list_since(third, 0);

        g_assert_cmpuint(r3->len, ==, 3);
        for (guint i = 0; i < r3->len; i++) {
            g_assert_true(g_bytes_equal(r2->pdata[i], r3->pdata[i]));
        }
    }
}

static void test_list_extend_fails(ListFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAgentList) list = tvd_agent_list_new(AGENT_PCR, f->state);
    g_autoptr(TvdAgentList) again = NULL;
    g_autoptr(GBytes) before = NULL;
    g_autoptr(GBytes) after = NULL;
    FakePcr fp = { .calls = 0 };

    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, 3);
    before = read_bytes(f->state);
    write_file(f->dir, "b", "changed\n");

    fp.fail = TRUE;
    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, -1);
    g_assert_error(err, FAKE_TPM_ERROR, 1);
    g_clear_error(&err);
    g_assert_cmpint(tvd_agent_list_measure_data(list, "/boot-id", "x", 1,
                                                fake_extend, &fp, &err),
                    ==, -1);
    g_clear_error(&err);
    /* Nothing kept: not in memory, not on disk. */
    g_assert_cmpuint(tvd_agent_list_count(list), ==, 3);
    after = read_bytes(f->state);
    g_assert_true(g_bytes_equal(before, after));

    /* The next round (the TPM back) records the change. */
    fp.fail = FALSE;
    g_assert_cmpint(tvd_agent_list_measure(list, f->dir, fake_extend, &fp,
                                           &err), ==, 1);
    g_assert_no_error(err);
    again = tvd_agent_list_new(AGENT_PCR, f->state);
    g_assert_cmpuint(tvd_agent_list_count(again), ==, 4);
    {
        g_autoptr(GPtrArray) recs = tvd_agent_list_since(list, 0);

        assert_replays_to(recs, fp.pcr);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_log_set_always_fatal(G_LOG_LEVEL_CRITICAL);

    g_test_add_func("/agent/measure/record", test_record_parses_and_replays);
    g_test_add_func("/agent/measure/record-gap",
                    test_record_replay_detects_gap);
    g_test_add_func("/agent/measure/split/real-log", test_split_real_log);
    g_test_add_func("/agent/measure/split/truncated", test_split_truncated);
    g_test_add_func("/agent/measure/split/bad-lengths",
                    test_split_bad_lengths);
    g_test_add("/agent/measure/list/measure", ListFixture, NULL, list_setup,
               test_list_measure, list_teardown);
    g_test_add("/agent/measure/list/persistence", ListFixture, NULL,
               list_setup, test_list_persistence, list_teardown);
    g_test_add("/agent/measure/list/truncated-state", ListFixture, NULL,
               list_setup, test_list_truncated_state, list_teardown);
    g_test_add("/agent/measure/list/extend-fails", ListFixture, NULL,
               list_setup, test_list_extend_fails, list_teardown);
    return g_test_run();
}
