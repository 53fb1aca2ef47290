/*
 * Unit tests of the audit log: canonical form (golden bytes), the chain
 * checked with an independent SHA-256 (GLib's GChecksum), the anchor in a
 * real SQLite store, verification after tampering directly in SQLite
 * (altered, deleted, reordered, rewritten, truncated records), exports and
 * their offline verification, and the secrets rule.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "audit.h"

#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>
#include <sqlite3.h>

typedef struct {
    char *dir;
    char *log_path;
    char *store_path;
    TvdStore *store;
    TvdAuditLog *log;
} Fixture;

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    (void)data;
    f->dir = g_dir_make_tmp("tvd-audit-XXXXXX", &err);
    g_assert_no_error(err);
    f->log_path = g_build_filename(f->dir, "audit.db", NULL);
    f->store_path = g_build_filename(f->dir, "store.db", NULL);
    f->store = tvd_store_sqlite_open(f->store_path, NULL, &err);
    g_assert_no_error(err);
    f->log = tvd_audit_open(f->log_path, f->store, NULL, &err);
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    (void)data;
    g_clear_pointer(&f->log, tvd_audit_close);
    g_clear_pointer(&f->store, tvd_store_unref);
    g_autoptr(GDir) d = g_dir_open(f->dir, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(f->dir, name, NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
    g_free(f->log_path);
    g_free(f->store_path);
}

/* Appends n records: seq i has event "admit", vm "vm<i>". */
static void append_n(Fixture *f, int n)
{
    for (int i = 0; i < n; i++) {
        g_autoptr(GError) err = NULL;
        g_autoptr(JsonObject) det = json_object_new();
        g_autofree char *vm = g_strdup_printf("vm%d", i + 1);
        json_object_set_int_member(det, "attempt", i);
        json_object_set_string_member(det, "pcr_digest", "ab12");
        gint64 seq = 0;
        g_assert_true(tvd_audit_append(f->log, "supervisor", vm, "blue",
                                       "admit", "quote verified", det, &seq,
                                       &err));
        g_assert_no_error(err);
    }
}

static void sql(const char *path, const char *statement)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    if (sqlite3_exec(db, statement, NULL, NULL, &msg) != SQLITE_OK) {
        g_error("%s: %s", statement, msg);
    }
    sqlite3_close(db);
}

/* Tampering as an attacker with file access would: triggers off first. */
static void tamper(Fixture *f, const char *statement)
{
    g_autofree char *s = g_strconcat("DROP TRIGGER IF EXISTS audit_no_update;"
                                     "DROP TRIGGER IF EXISTS audit_no_delete;",
                                     statement, NULL);
    sql(f->log_path, s);
}

static void verify(Fixture *f, TvdAuditReport *r)
{
    g_autoptr(GError) err = NULL;
    g_assert_true(tvd_audit_verify(f->log, r, &err));
    g_assert_no_error(err);
    if (r->fault) {
        g_test_message("verify: %s at %" G_GINT64_FORMAT ": %s",
                       tvd_audit_fault_name(r->fault), r->bad_seq, r->why);
    }
}

/* ---- Canonical form ------------------------------------------------------------ */

static void test_canonical_golden(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAuditRecord) rec = g_new0(TvdAuditRecord, 1);
    g_autoptr(JsonParser) p = json_parser_new();

    g_assert_true(json_parser_load_from_data(p,
        "{ \"z\": [1, -2, true, null, \"q\\\"\\\\\\n\\u0001\"],"
        "  \"a\": { \"y\": false, \"b\": \"\xc3\xa9\" } }", -1, &err));
    rec->seq = 7;
    rec->time = g_strdup("2026-11-22T20:06:00.000042Z");
    rec->actor = g_strdup("tvdctl:alice");
    rec->vm = g_strdup("web-1");
    rec->domain = NULL;
    rec->event = g_strdup("revoke");
    rec->reason = g_strdup("operator \"said\" so");
    rec->details = json_node_copy(json_parser_get_root(p));

    g_autoptr(GBytes) c = tvd_audit_record_canonical(rec, &err);
    g_assert_no_error(err);
    /* Member names sorted, no whitespace, minimal escapes, UTF-8 as is. */
    const char want[] =
        "{\"actor\":\"tvdctl:alice\","
        "\"details\":{\"a\":{\"b\":\"\xc3\xa9\",\"y\":false},"
        "\"z\":[1,-2,true,null,\"q\\\"\\\\\\n\\u0001\"]},"
        "\"domain\":null,\"event\":\"revoke\","
        "\"reason\":\"operator \\\"said\\\" so\",\"seq\":7,"
        "\"time\":\"2026-11-22T20:06:00.000042Z\",\"vm\":\"web-1\"}";
    gsize n;
    const char *d = g_bytes_get_data(c, &n);
    g_assert_cmpmem(d, n, want, strlen(want));

    /* The export line round-trips through the decoder to the same bytes. */
    memset(rec->hash, 0xab, sizeof(rec->hash));
    g_autofree char *line = tvd_audit_record_to_json(rec, &err);
    g_assert_no_error(err);
    g_autoptr(TvdAuditRecord) back = tvd_audit_record_from_json(line,
                                                                strlen(line),
                                                                &err);
    g_assert_no_error(err);
    g_autoptr(GBytes) c2 = tvd_audit_record_canonical(back, &err);
    g_assert_true(g_bytes_equal(c, c2));
    g_assert_cmpmem(back->hash, 32, rec->hash, 32);

    /* Floats have no canonical form here. */
    g_autoptr(JsonParser) p2 = json_parser_new();
    g_assert_true(json_parser_load_from_data(p2, "{\"f\":1.5}", -1, &err));
    json_node_unref(rec->details);
    rec->details = json_node_copy(json_parser_get_root(p2));
    g_assert_null(tvd_audit_record_canonical(rec, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED);
}

static void test_decoder_rejects(void)
{
#define GOOD_LINE \
        "{\"actor\":\"a\",\"details\":{},\"domain\":null,\"event\":\"e\"," \
        "\"hash\":\"%s\",\"prev\":\"%s\",\"reason\":null,\"seq\":%s," \
        "\"time\":\"%s\",\"vm\":null%s}"
    const char *h = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const char *t = "2026-11-22T20:06:00.123456Z";
    struct {
        const char *hash, *seq, *time, *extra;
    } cases[] = {
        { h, "1", t, "" },                                  /* valid */
        { "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff",
          "1", t, "" },                                     /* uppercase */
        { "0011", "1", t, "" },                             /* short hash */
        { h, "0", t, "" },                                  /* seq 0 */
        { h, "\"1\"", t, "" },                              /* seq string */
        { h, "1.0", t, "" },                                /* seq float */
        { h, "1", "2026-11-22T20:06:00Z", "" },             /* no micros */
        { h, "1", "2026-13-22T20:06:00.123456Z", "" },      /* month 13 */
        { h, "1", t, ",\"extra\":1" },                      /* unknown member */
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GError) err = NULL;
        g_autofree char *line = g_strdup_printf(GOOD_LINE, cases[i].hash, h,
                                                cases[i].seq, cases[i].time,
                                                cases[i].extra);
        g_autoptr(TvdAuditRecord) r = tvd_audit_record_from_json(line,
                                                                 strlen(line),
                                                                 &err);
        if (i == 0) {
            g_assert_no_error(err);
            g_assert_nonnull(r);
        } else {
            g_assert_null(r);
            g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED);
        }
    }
    /* Deep nesting is refused before the (recursive) parser sees it. */
    g_autoptr(GString) deep = g_string_new("{\"details\":");
    for (int i = 0; i < 100000; i++) {
        g_string_append_c(deep, '[');
    }
    g_autoptr(GError) err = NULL;
    g_assert_null(tvd_audit_record_from_json(deep->str, deep->len, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED);
    g_clear_error(&err);
    /* Not an object, a NUL inside, invalid UTF-8. */
    g_assert_null(tvd_audit_record_from_json("[1]", 3, &err));
    g_clear_error(&err);
    g_assert_null(tvd_audit_record_from_json("{\"a\":\0}", 7, &err));
    g_clear_error(&err);
    g_assert_null(tvd_audit_record_from_json("{\"\xff\":1}", 7, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED);
}

/*
 * An export made by an independent implementation (Python's json and
 * hashlib: sort_keys, compact separators, SHA-256 over prev || record)
 * verifies, anchor included; the same file seeds the fuzzer.
 */
static void test_golden_export(void)
{
    static const char jsonl[] =
    "{\"actor\":\"supervisor\",\"details\":{\"attempt\":0,\"pcr_digest\":\"ab12\"},\"domain\":\"blue\",\"event\":\"admit\",\"hash\":\"b583e6123f4eeaf87a2576af67e72cfda9283f7b2f378fc3f1a4578a1643ea67\",\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"reason\":\"quote verified\",\"seq\":1,\"time\":\"2026-11-22T20:06:00.123456Z\",\"vm\":\"vm1\"}\n"
    "{\"actor\":\"tvdctl:alice\",\"details\":{\"by\":\"operator\",\"list\":[1,true,null,\"x\"]},\"domain\":\"blue\",\"event\":\"revoke\",\"hash\":\"f3cf42c7afc634e4bdf91b0f163c1058d7dc11f447d1fc0ddeb90519aea7743d\",\"prev\":\"b583e6123f4eeaf87a2576af67e72cfda9283f7b2f378fc3f1a4578a1643ea67\",\"reason\":\"operator said \\\"so\\\"\",\"seq\":2,\"time\":\"2026-11-22T20:06:01.000001Z\",\"vm\":\"vm1\"}\n"
    "{\"actor\":\"supervisor\",\"details\":{},\"domain\":null,\"event\":\"start\",\"hash\":\"da4241c50eb45816d297c57591979a94b50a0f1e32acc029b4eaeb7e1b7e582c\",\"prev\":\"f3cf42c7afc634e4bdf91b0f163c1058d7dc11f447d1fc0ddeb90519aea7743d\",\"reason\":null,\"seq\":3,\"time\":\"2026-11-22T20:07:00.000000Z\",\"vm\":null}\n";
    static const char anchor[] =
        "{\"hash\":\"da4241c50eb45816d297c57591979a94b50a0f1e32acc029b4eaeb7e1b7e582c\",\"seq\":3}";
    TvdAuditReport r;
    g_autoptr(GError) err = NULL;

    g_assert_true(tvd_audit_verify_jsonl(jsonl, strlen(jsonl), anchor, &r,
                                         &err));
    g_assert_no_error(err);
    g_assert_cmpstr(tvd_audit_fault_name(r.fault), ==, "ok");
    g_assert_cmpint(r.records, ==, 3);
    g_assert_cmpint(r.anchor_seq, ==, 3);
    tvd_audit_report_clear(&r);
}

/* ---- Append, chain, anchor ---------------------------------------------------------- */

static char *export_all(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
    g_assert_true(tvd_audit_export(f->log, 1, out, NULL, &err));
    g_assert_no_error(err);
    g_assert_true(g_output_stream_write_all(out, "", 1, NULL, NULL, NULL));
    g_assert_true(g_output_stream_close(out, NULL, NULL));
    return g_memory_output_stream_steal_data(G_MEMORY_OUTPUT_STREAM(out));
}

static char *anchor_value(Fixture *f)
{
    g_autoptr(TvdStoreEntry) e = tvd_store_get(f->store, TVD_AUDIT_DEFAULT_ANCHOR,
                                               NULL);
    g_assert_nonnull(e);
    gsize n;
    const char *d = g_bytes_get_data(e->value, &n);
    return g_strndup(d, n);
}

static void test_append_verify(Fixture *f, gconstpointer data)
{
    TvdAuditReport r;
    g_autoptr(GError) err = NULL;
    struct stat st;
    (void)data;

    /* An empty log verifies. */
    verify(f, &r);
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(r.records, ==, 0);
    tvd_audit_report_clear(&r);

    append_n(f, 5);
    g_assert_true(tvd_audit_append(f->log, "supervisor", NULL, NULL, "start",
                                   NULL, NULL, NULL, &err));
    verify(f, &r);
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(r.records, ==, 6);
    g_assert_cmpint(r.head_seq, ==, 6);
    g_assert_cmpint(r.anchor_seq, ==, 6);
    g_assert_null(r.why);
    g_assert_cmpint(stat(f->log_path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0600);

    /* The anchor names the head. */
    g_autofree char *anchor = anchor_value(f);
    g_autoptr(GString) want = g_string_new("{\"hash\":\"");
    for (int i = 0; i < 32; i++) {
        g_string_append_printf(want, "%02x", r.head_hash[i]);
    }
    g_string_append(want, "\",\"seq\":6}");
    g_assert_cmpstr(anchor, ==, want->str);
    tvd_audit_report_clear(&r);

    /* The chain, recomputed with another SHA-256 implementation. */
    g_autofree char *jsonl = export_all(f);
    g_auto(GStrv) lines = g_strsplit(jsonl, "\n", -1);
    g_assert_cmpuint(g_strv_length(lines), ==, 7);   /* 6 + trailing "" */
    guint8 prev[32] = { 0 };
    for (int i = 0; i < 6; i++) {
        g_autoptr(TvdAuditRecord) rec =
            tvd_audit_record_from_json(lines[i], strlen(lines[i]), &err);
        g_assert_no_error(err);
        g_assert_cmpint(rec->seq, ==, i + 1);
        g_assert_cmpmem(rec->prev, 32, prev, 32);
        g_autoptr(GBytes) c = tvd_audit_record_canonical(rec, &err);
        g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
        g_checksum_update(sum, prev, 32);
        g_checksum_update(sum, g_bytes_get_data(c, NULL), g_bytes_get_size(c));
        gsize n = 32;
        g_checksum_get_digest(sum, prev, &n);
        g_assert_cmpmem(rec->hash, 32, prev, 32);
        g_assert_true(g_str_has_suffix(rec->time, "Z"));
        g_assert_cmpuint(strlen(rec->time), ==, 27);
    }

    /* The export verifies offline, with and without the anchor. */
    g_assert_true(tvd_audit_verify_jsonl(jsonl, strlen(jsonl), anchor, &r,
                                         &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(r.records, ==, 6);
    tvd_audit_report_clear(&r);
    g_assert_true(tvd_audit_verify_jsonl(jsonl, strlen(jsonl), NULL, &r,
                                         &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    tvd_audit_report_clear(&r);
    g_assert_false(tvd_audit_verify_jsonl(jsonl, strlen(jsonl), "{}", &r,
                                          &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_MALFORMED);
    g_clear_error(&err);

    /* Reopening continues the chain. */
    g_clear_pointer(&f->log, tvd_audit_close);
    f->log = tvd_audit_open(f->log_path, f->store, NULL, &err);
    g_assert_no_error(err);
    append_n(f, 1);
    verify(f, &r);
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(r.records, ==, 7);
    tvd_audit_report_clear(&r);

    /* The log refuses ordinary UPDATE/DELETE (a guard against mistakes). */
    sqlite3 *db = NULL;
    g_assert_cmpint(sqlite3_open(f->log_path, &db), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "DELETE FROM audit WHERE seq = 1", NULL,
                                 NULL, NULL), !=, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "UPDATE audit SET seq = 99 WHERE seq = 1",
                                 NULL, NULL, NULL), !=, SQLITE_OK);
    sqlite3_close(db);
}

static void test_rules(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdAuditReport r;
    (void)data;

    const char *bad_names[] = { "secret", "ak_private_key", "Password",
                                "bearer_token", "seed" };
    for (gsize i = 0; i < G_N_ELEMENTS(bad_names); i++) {
        g_autoptr(JsonObject) det = json_object_new();
        g_autoptr(JsonObject) inner = json_object_new();
        json_object_set_string_member(inner, bad_names[i], "x");
        json_object_set_object_member(det, "nested", g_steal_pointer(&inner));
        g_assert_false(tvd_audit_append(f->log, "supervisor", NULL, NULL,
                                        "admit", NULL, det, NULL, &err));
        g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_SECRET);
        g_clear_error(&err);
    }
    g_assert_false(tvd_audit_append(f->log, "", NULL, NULL, "admit", NULL,
                                    NULL, NULL, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID);
    g_clear_error(&err);
    g_assert_false(tvd_audit_append(f->log, "s", NULL, NULL, NULL, NULL,
                                    NULL, NULL, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID);
    g_clear_error(&err);
    g_autoptr(JsonObject) fl = json_object_new();
    json_object_set_double_member(fl, "latency", 1.5);
    g_assert_false(tvd_audit_append(f->log, "s", NULL, NULL, "e", NULL, fl,
                                    NULL, &err));
    g_assert_error(err, TVD_AUDIT_ERROR, TVD_AUDIT_ERROR_INVALID);
    g_clear_error(&err);

    /* None of those left a record. */
    verify(f, &r);
    g_assert_cmpint(r.records, ==, 0);
    tvd_audit_report_clear(&r);
}

/* ---- Tampering ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *sql;            /* run on the log after 6 appends */
    TvdAuditFault fault;
    gint64 seq;
} Tamper;

static const Tamper tampers[] = {
    /* A record's content altered, its hash left alone. */
    { "alter", "UPDATE audit SET record = replace(record, '\"vm3\"', '\"vm9\"')"
               " WHERE seq = 3", TVD_AUDIT_HASH_MISMATCH, 3 },
    /* A record deleted. */
    { "delete", "DELETE FROM audit WHERE seq = 4", TVD_AUDIT_GAP, 4 },
    /* Two records swapped (each keeps its own content and hashes). */
    { "reorder", "UPDATE audit SET seq = 100 WHERE seq = 2;"
                 "UPDATE audit SET seq = 2 WHERE seq = 3;"
                 "UPDATE audit SET seq = 3 WHERE seq = 100",
      TVD_AUDIT_REORDERED, 2 },
    /* A record rewritten with a correct hash of its own: the next record's
     * link names it. */
    { "rewrite", NULL, TVD_AUDIT_PREV_MISMATCH, 2 },
    /* The last record rewritten consistently: only the anchor can tell. */
    { "rewrite-last", NULL, TVD_AUDIT_ANCHOR_MISMATCH, 6 },
    /* The tail cut off. */
    { "truncate", "DELETE FROM audit WHERE seq >= 5", TVD_AUDIT_TRUNCATED, 5 },
    /* Bytes that are no longer a record. */
    { "garbage", "UPDATE audit SET record = X'00FF' WHERE seq = 1",
      TVD_AUDIT_MALFORMED, 1 },
    /* Valid JSON but not in canonical form. */
    { "noncanonical", "UPDATE audit SET record = replace(record, '{\"actor\"',"
                      " '{ \"actor\"') WHERE seq = 5", TVD_AUDIT_MALFORMED, 5 },
};

/* Rewrites record @seq's vm and recomputes its hash (prev kept). */
static void rewrite_with_hash(Fixture *f, gint64 seq)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    g_assert_cmpint(sqlite3_open(f->log_path, &db), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(db, "DROP TRIGGER audit_no_update", NULL, NULL,
                                 NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_prepare_v2(db, "SELECT prev, record FROM audit "
                                       "WHERE seq = ?", -1, &st, NULL), ==,
                    SQLITE_OK);
    sqlite3_bind_int64(st, 1, seq);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    guint8 prev[32];
    memcpy(prev, sqlite3_column_blob(st, 0), 32);
    g_autofree char *old = g_strndup(sqlite3_column_blob(st, 1),
                                     (gsize)sqlite3_column_bytes(st, 1));
    sqlite3_finalize(st);
    g_autofree char *vm = g_strdup_printf("\"vm%" G_GINT64_FORMAT "\"", seq);
    g_auto(GStrv) parts = g_strsplit(old, vm, 2);
    g_assert_cmpuint(g_strv_length(parts), ==, 2);
    g_autofree char *rec = g_strjoinv("\"evil\"", parts);
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_checksum_update(sum, prev, 32);
    g_checksum_update(sum, (const guchar *)rec, strlen(rec));
    guint8 hash[32];
    gsize n = 32;
    g_checksum_get_digest(sum, hash, &n);
    g_assert_cmpint(sqlite3_prepare_v2(db, "UPDATE audit SET record = ?, "
                                       "hash = ? WHERE seq = ?", -1, &st,
                                       NULL), ==, SQLITE_OK);
    sqlite3_bind_blob(st, 1, rec, (int)strlen(rec), SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, seq);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_tamper(Fixture *f, gconstpointer data)
{
    const Tamper *t = data;
    TvdAuditReport r;

    append_n(f, 6);
    if (t->sql) {
        tamper(f, t->sql);
    } else {
        rewrite_with_hash(f, t->seq);
    }
    verify(f, &r);
    g_assert_cmpstr(tvd_audit_fault_name(r.fault), ==,
                    tvd_audit_fault_name(t->fault));
    g_assert_cmpint(r.bad_seq, ==, t->seq);
    g_assert_nonnull(r.why);
    tvd_audit_report_clear(&r);
}

/* The same faults found in an exported file. */
static void test_tamper_jsonl(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdAuditReport r;
    (void)data;

    append_n(f, 5);
    g_autofree char *anchor = anchor_value(f);
    g_autofree char *jsonl = export_all(f);
    g_auto(GStrv) lines = g_strsplit(jsonl, "\n", -1);

    /* Altered content in line 2. */
    g_autofree char *l2 = g_strdup(lines[1]);
    char *p = strstr(lines[1], "\"vm2\"");
    g_assert_nonnull(p);
    p[3] = '7';
    g_autofree char *altered = g_strjoinv("\n", lines);
    g_assert_true(tvd_audit_verify_jsonl(altered, strlen(altered), anchor, &r,
                                         &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_HASH_MISMATCH);
    g_assert_cmpint(r.bad_seq, ==, 2);
    tvd_audit_report_clear(&r);
    g_free(lines[1]);
    lines[1] = g_steal_pointer(&l2);

    /* Line 3 dropped. */
    g_autoptr(GString) dropped = g_string_new(NULL);
    for (int i = 0; lines[i] && lines[i][0]; i++) {
        if (i != 2) {
            g_string_append_printf(dropped, "%s\n", lines[i]);
        }
    }
    g_assert_true(tvd_audit_verify_jsonl(dropped->str, dropped->len, anchor,
                                         &r, &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_GAP);
    g_assert_cmpint(r.bad_seq, ==, 3);
    tvd_audit_report_clear(&r);

    /* Lines 3 and 4 swapped. */
    g_autofree char *swapped = g_strdup_printf("%s\n%s\n%s\n%s\n%s\n", lines[0],
                                               lines[1], lines[3], lines[2],
                                               lines[4]);
    g_assert_true(tvd_audit_verify_jsonl(swapped, strlen(swapped), anchor, &r,
                                         &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_REORDERED);   /* 4 where 3 was */
    g_assert_cmpint(r.bad_seq, ==, 3);
    tvd_audit_report_clear(&r);

    /* Line 1 twice: the second copy is out of place. */
    g_autofree char *dup = g_strdup_printf("%s\n%s\n", lines[0], lines[0]);
    g_assert_true(tvd_audit_verify_jsonl(dup, strlen(dup), NULL, &r, &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_REORDERED);
    g_assert_cmpint(r.bad_seq, ==, 2);
    tvd_audit_report_clear(&r);

    /* The last line cut: the anchor notices. */
    g_autofree char *cut = g_strdup_printf("%s\n%s\n%s\n%s\n", lines[0],
                                           lines[1], lines[2], lines[3]);
    g_assert_true(tvd_audit_verify_jsonl(cut, strlen(cut), anchor, &r, &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_TRUNCATED);
    g_assert_cmpint(r.bad_seq, ==, 5);
    tvd_audit_report_clear(&r);

    /* A line of garbage. */
    g_autofree char *junk = g_strdup_printf("%s\nnot json\n", lines[0]);
    g_assert_true(tvd_audit_verify_jsonl(junk, strlen(junk), NULL, &r, &err));
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_MALFORMED);
    g_assert_cmpint(r.bad_seq, ==, 2);
    tvd_audit_report_clear(&r);
}

static void test_anchor_never_backwards(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    (void)data;

    /* A second log object on the same files (another process) appends. */
    g_autoptr(TvdAuditLog) other = tvd_audit_open(f->log_path, f->store, NULL,
                                                  &err);
    g_assert_no_error(err);
    append_n(f, 2);
    g_assert_true(tvd_audit_append(other, "supervisor", NULL, NULL, "x", NULL,
                                   NULL, NULL, &err));
    g_autofree char *a3 = anchor_value(f);
    g_assert_nonnull(strstr(a3, "\"seq\":3}"));
    /* A late sync from the first object does not move it back. */
    g_assert_true(tvd_audit_sync_anchor(f->log, &err));
    g_autofree char *again = anchor_value(f);
    g_assert_cmpstr(again, ==, a3);

    TvdAuditReport r;
    verify(f, &r);
    g_assert_cmpint(r.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(r.records, ==, 3);
    tvd_audit_report_clear(&r);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add_func("/audit/canonical-golden", test_canonical_golden);
    g_test_add_func("/audit/decoder-rejects", test_decoder_rejects);
    g_test_add_func("/audit/golden-export", test_golden_export);
    g_test_add("/audit/append-verify", Fixture, NULL, fixture_setup,
               test_append_verify, fixture_teardown);
    g_test_add("/audit/rules", Fixture, NULL, fixture_setup, test_rules,
               fixture_teardown);
    for (gsize i = 0; i < G_N_ELEMENTS(tampers); i++) {
        g_autofree char *name = g_strdup_printf("/audit/tamper/%s",
                                                tampers[i].name);
        g_test_add(name, Fixture, &tampers[i], fixture_setup, test_tamper,
                   fixture_teardown);
    }
    g_test_add("/audit/tamper-jsonl", Fixture, NULL, fixture_setup,
               test_tamper_jsonl, fixture_teardown);
    g_test_add("/audit/anchor-never-backwards", Fixture, NULL, fixture_setup,
               test_anchor_never_backwards, fixture_teardown);
    return g_test_run();
}
