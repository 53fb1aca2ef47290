/*
 * Agent<->supervisor messages (common/message.c): golden vectors both ways
 * for every message, and rejection of truncated, oversize, mistyped,
 * non-normal, over-cap and badly stringed input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>

#include "message.h"
#include "codec-vectors.h"

/* ---- Comparison ------------------------------------------------------------ */

static void assert_bytes_equal(GBytes *a, GBytes *b)
{
    gsize na = 0, nb = 0;
    const void *pa = a ? g_bytes_get_data(a, &na) : NULL;
    const void *pb = b ? g_bytes_get_data(b, &nb) : NULL;

    g_assert_cmpmem(pa, na, pb, nb);
}

static void assert_chunk_equal(const TvdMsgLogChunk *a,
                               const TvdMsgLogChunk *b)
{
    guint i;

    g_assert_cmpuint(a->kind, ==, b->kind);
    g_assert_cmpuint(a->offset, ==, b->offset);
    g_assert_cmpint(!!a->more, ==, !!b->more);
    g_assert_cmpuint(a->entries->len, ==, b->entries->len);
    for (i = 0; i < a->entries->len; i++) {
        assert_bytes_equal(g_ptr_array_index(a->entries, i),
                           g_ptr_array_index(b->entries, i));
    }
}

static void assert_msg_equal(const TvdMsg *a, const TvdMsg *b)
{
    guint i;

    g_assert_cmpuint(a->type, ==, b->type);
    switch (a->type) {
    case TVD_MSG_AGENT_HELLO: {
        const TvdMsgAgentHello *x = &a->u.agent_hello, *y = &b->u.agent_hello;

        g_assert_cmpuint(x->agent_version, ==, y->agent_version);
        g_assert_cmpstr(x->boot_id, ==, y->boot_id);
        g_assert_cmpuint(x->ek_type, ==, y->ek_type);
        assert_bytes_equal(x->ek_cert, y->ek_cert);
        assert_bytes_equal(x->ek_public, y->ek_public);
        assert_bytes_equal(x->ak_public, y->ak_public);
        assert_bytes_equal(x->ak_name, y->ak_name);
        g_assert_cmpuint(x->ak_alg, ==, y->ak_alg);
        g_assert_cmpuint(x->agent_pcr, ==, y->agent_pcr);
        g_assert_cmpuint(x->capabilities, ==, y->capabilities);
        break;
    }
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        assert_bytes_equal(a->u.credential_challenge.credential_blob,
                           b->u.credential_challenge.credential_blob);
        assert_bytes_equal(a->u.credential_challenge.encrypted_secret,
                           b->u.credential_challenge.encrypted_secret);
        break;
    case TVD_MSG_CREDENTIAL_RESPONSE:
        assert_bytes_equal(a->u.credential_response.secret,
                           b->u.credential_response.secret);
        break;
    case TVD_MSG_ATTEST_REQUEST: {
        const TvdMsgAttestRequest *x = &a->u.attest_request;
        const TvdMsgAttestRequest *y = &b->u.attest_request;

        g_assert_cmpmem(x->nonce, sizeof(x->nonce), y->nonce,
                        sizeof(y->nonce));
        g_assert_cmpuint(x->pcr_bank, ==, y->pcr_bank);
        g_assert_cmphex(x->pcr_select, ==, y->pcr_select);
        g_assert_cmpuint(x->ima_offset, ==, y->ima_offset);
        g_assert_cmpuint(x->agent_offset, ==, y->agent_offset);
        g_assert_true(g_strv_equal((const char *const *)x->paths,
                                   (const char *const *)y->paths));
        break;
    }
    case TVD_MSG_EVIDENCE: {
        const TvdMsgEvidence *x = &a->u.evidence, *y = &b->u.evidence;

        assert_bytes_equal(x->attest, y->attest);
        assert_bytes_equal(x->signature, y->signature);
        g_assert_cmpuint(x->pcr_bank, ==, y->pcr_bank);
        g_assert_cmpuint(x->n_pcrs, ==, y->n_pcrs);
        for (i = 0; i < x->n_pcrs; i++) {
            g_assert_cmpuint(x->pcrs[i].index, ==, y->pcrs[i].index);
            assert_bytes_equal(x->pcrs[i].digest, y->pcrs[i].digest);
        }
        g_assert_cmpuint(x->n_logs, ==, y->n_logs);
        for (i = 0; i < x->n_logs; i++) {
            assert_chunk_equal(&x->logs[i], &y->logs[i]);
        }
        break;
    }
    case TVD_MSG_LOG_CHUNK:
        assert_chunk_equal(&a->u.log_chunk, &b->u.log_chunk);
        break;
    case TVD_MSG_MEMBERSHIP:
        g_assert_cmpuint(a->u.membership.state, ==, b->u.membership.state);
        g_assert_cmpuint(a->u.membership.reason, ==, b->u.membership.reason);
        g_assert_cmpstr(a->u.membership.reason_text, ==,
                        b->u.membership.reason_text);
        g_assert_cmpuint(a->u.membership.epoch, ==, b->u.membership.epoch);
        g_assert_cmpuint(a->u.membership.deadline_s, ==,
                         b->u.membership.deadline_s);
        break;
    case TVD_MSG_ERROR_REPORT:
        g_assert_cmpuint(a->u.error_report.code, ==, b->u.error_report.code);
        g_assert_cmpuint(a->u.error_report.ref_type, ==,
                         b->u.error_report.ref_type);
        g_assert_cmpstr(a->u.error_report.text, ==, b->u.error_report.text);
        break;
    default:
        g_assert_not_reached();
    }
}

/* ---- Helpers ----------------------------------------------------------------- */

/* Serializes an envelope around @body without any of the encoder's checks. */
static GBytes *raw_message(guint16 version, guint16 type, GVariant *body)
{
    g_autoptr(GVariant) env =
        g_variant_ref_sink(g_variant_new("(qqv)", version, type, body));

    return g_variant_get_data_as_bytes(env);
}

static void assert_decode_fails(GBytes *payload, gint code,
                                const char *needle)
{
    g_autoptr(GError) error = NULL;
    TvdMsg msg;

    g_assert_false(tvd_msg_decode(payload, &msg, &error));
    g_assert_error(error, TVD_MSG_ERROR, code);
    if (needle && !strstr(error->message, needle)) {
        g_printerr("# got \"%s\", want \"%s\"\n", error->message, needle);
    }
    if (needle) {
        g_assert_nonnull(strstr(error->message, needle));
    }
    /* A failed decode leaves the message cleared. */
    g_assert_cmpuint(msg.type, ==, 0);
}

/* Encoder rejects @m with @code (and the same fields in a raw envelope
 * are rejected by the decoder: tested per case below). */
static void assert_encode_fails(TvdMsg *m, gint code,
                                const char *needle)
{
    g_autoptr(GError) error = NULL;
    GBytes *b = tvd_msg_encode(m, &error);

    g_assert_null(b);
    g_assert_error(error, TVD_MSG_ERROR, code);
    if (needle) {
        g_assert_nonnull(strstr(error->message, needle));
    }
}

/* The body variant of a valid message: for hand-made invalid variants. */
static GVariant *body_of(const TvdMsgVector *v)
{
    g_autoptr(GBytes) b = g_bytes_new_static(v->bytes, v->len);
    g_autoptr(GVariant) env =
        g_variant_ref_sink(g_variant_new_from_bytes(
                               G_VARIANT_TYPE(TVD_MSG_ENVELOPE_TYPE), b,
                               FALSE));
    GVariant *body;

    g_variant_get(env, "(qqv)", NULL, NULL, &body);
    return body;
}

/* ---- Golden vectors -------------------------------------------------------- */

static void test_encode(gconstpointer data)
{
    const TvdMsgVector *v = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) out = NULL;
    TvdMsg m;

    v->build(&m);
    out = tvd_msg_encode(&m, &error);
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out),
                    v->bytes, v->len);
    tvd_msg_clear(&m);
}

static void test_decode(gconstpointer data)
{
    const TvdMsgVector *v = data;
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) in = g_bytes_new(v->bytes, v->len);
    g_autoptr(GBytes) again = NULL;
    TvdMsg expected, got;

    v->build(&expected);
    g_assert_true(tvd_msg_decode(in, &got, &error));
    g_assert_no_error(error);
    assert_msg_equal(&got, &expected);
    /* And back: decode then encode is the identity on normal form. */
    again = tvd_msg_encode(&got, &error);
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(again, in));
    tvd_msg_clear(&got);
    tvd_msg_clear(&expected);
}

static void test_body_types(void)
{
    guint t;

    g_assert_cmpstr(tvd_msg_body_type(TVD_MSG_EVIDENCE), ==,
                    "(ayayqa(yay)a(ytbay))");
    g_assert_null(tvd_msg_body_type(0));
    g_assert_null(tvd_msg_body_type(TVD_MSG_TYPE_MAX + 1));
    for (t = 1; t <= TVD_MSG_TYPE_MAX; t++) {
        g_assert_true(g_variant_type_string_is_valid(tvd_msg_body_type(t)));
        g_assert_cmpstr(tvd_msg_type_name(t), !=, "unknown");
    }
    g_assert_cmpuint(G_N_ELEMENTS(vec_messages), ==, TVD_MSG_TYPE_MAX);
}

static void test_typed(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) in = g_bytes_new_static(vec_msg_membership,
                                              sizeof(vec_msg_membership));
    g_autoptr(GBytes) out = NULL;
    TvdMsgMembership mb;
    TvdMsgAgentHello hello;

    g_assert_true(tvd_msg_membership_decode(in, &mb, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(mb.state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpstr(mb.reason_text, ==, "attested");
    out = tvd_msg_membership_encode(&mb, &error);
    g_assert_no_error(error);
    g_assert_true(g_bytes_equal(in, out));
    tvd_msg_membership_clear(&mb);

    /* A valid message of another type. */
    g_assert_false(tvd_msg_agent_hello_decode(in, &hello, &error));
    g_assert_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_UNEXPECTED);
    g_assert_nonnull(strstr(error->message, "got MEMBERSHIP"));
    g_assert_null(hello.ak_public);
}

/* ---- Rejections: framing ------------------------------------------------------- */

/* Every proper prefix of every vector is rejected, and nothing crashes. */
static void test_truncated(void)
{
    gsize i, n;

    for (i = 0; i < G_N_ELEMENTS(vec_messages); i++) {
        for (n = 0; n < vec_messages[i].len; n++) {
            g_autoptr(GBytes) b = g_bytes_new(vec_messages[i].bytes, n);
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_false(tvd_msg_decode(b, &m, &error));
            g_assert_nonnull(error);
        }
    }
}

static void test_oversize(void)
{
    g_autoptr(GBytes) big = NULL;
    guint8 *buf = g_malloc0(TVD_MSG_SIZE_MAX + 1);

    memcpy(buf, vec_msg_credential_response,
           sizeof(vec_msg_credential_response));
    big = g_bytes_new_take(buf, TVD_MSG_SIZE_MAX + 1);
    assert_decode_fails(big, TVD_MSG_ERROR_TOO_LARGE, "at most");
}

static void test_oversize_encode(void)
{
    TvdMsg m = { .type = TVD_MSG_LOG_CHUNK };
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    g_autofree char *data = g_strnfill(TVD_MSG_LOG_ENTRY_MAX - 38, 'x');
    g_autoptr(GBytes) entry = vec_record(10, 0, "ima-ng", data);
    guint i;

    /* 1100 records of 8 KiB: each within caps, 9 MB in all. */
    g_assert_cmpuint(g_bytes_get_size(entry), ==, TVD_MSG_LOG_ENTRY_MAX);
    for (i = 0; i < 1100; i++) {
        g_ptr_array_add(entries, g_bytes_ref(entry));
    }
    m.u.log_chunk.kind = TVD_LOG_IMA_NG;
    m.u.log_chunk.entries = entries;
    assert_encode_fails(&m, TVD_MSG_ERROR_TOO_LARGE, "serialized");
}

static void test_not_normal(void)
{
    guint8 buf[sizeof(vec_msg_membership)];
    g_autoptr(GBytes) b1 = NULL;
    g_autoptr(GBytes) b2 = NULL;
    g_autoptr(GBytes) b3 = NULL;

    /* Non-zero padding between the envelope's q and v. */
    memcpy(buf, vec_msg_membership, sizeof(buf));
    buf[5] = 0x01;
    b1 = g_bytes_new(buf, sizeof(buf));
    assert_decode_fails(b1, TVD_MSG_ERROR_NOT_NORMAL, "normal form");

    /* Framing offset of reason_text pointing past its NUL. */
    memcpy(buf, vec_msg_membership, sizeof(buf));
    buf[8 + 28] = 0x12;
    b2 = g_bytes_new(buf, sizeof(buf));
    assert_decode_fails(b2, TVD_MSG_ERROR_NOT_NORMAL, NULL);

    /* Garbage. */
    b3 = g_bytes_new_static("\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    assert_decode_fails(b3, TVD_MSG_ERROR_NOT_NORMAL, NULL);
}

static void test_bad_envelope(void)
{
    g_autoptr(GBytes) v2 = NULL;
    g_autoptr(GBytes) unknown = NULL;
    g_autoptr(GBytes) zero = NULL;
    g_autoptr(GBytes) wrong = NULL;
    g_autoptr(GBytes) other = NULL;
    g_autoptr(GVariant) other_env = NULL;

    v2 = raw_message(2, TVD_MSG_MEMBERSHIP, body_of(&vec_messages[6]));
    assert_decode_fails(v2, TVD_MSG_ERROR_VERSION, "version 2");
    unknown = raw_message(1, 99, g_variant_new("(u)", 1));
    assert_decode_fails(unknown, TVD_MSG_ERROR_UNKNOWN_MESSAGE, "99");
    zero = raw_message(1, 0, g_variant_new("(u)", 1));
    assert_decode_fails(zero, TVD_MSG_ERROR_UNKNOWN_MESSAGE, NULL);
    /* A membership body sent as an agent hello. */
    wrong = raw_message(1, TVD_MSG_AGENT_HELLO, body_of(&vec_messages[6]));
    assert_decode_fails(wrong, TVD_MSG_ERROR_BAD_TYPE,
                        "body of type (uusuu), expected (usyayayayayyyt)");
    /* An envelope of another shape: (qqs) with the same leading bytes. */
    other_env = g_variant_ref_sink(g_variant_new("(qqs)", 1, 7, "attested"));
    other = g_variant_get_data_as_bytes(other_env);
    assert_decode_fails(other, TVD_MSG_ERROR_NOT_NORMAL, NULL);
}

/* ---- Rejections: fields -------------------------------------------------------- */

/* A hello body with every field given, for the field tests. */
static GBytes *raw_hello(const char *boot_id, guint8 ek_type, gsize cert,
                         gsize pub, gsize ak_pub, gsize name, guint8 alg,
                         guint8 pcr)
{
    g_autofree guint8 *z = g_malloc0(8192);

#define AY(n) g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, z, n, 1)
    return raw_message(1, TVD_MSG_AGENT_HELLO,
                       g_variant_new("(usy@ay@ay@ay@ayyyt)", 0x100u, boot_id,
                                     ek_type, AY(cert), AY(pub), AY(ak_pub),
                                     AY(name), alg, pcr,
                                     (guint64)0));
#undef AY
}

static void test_hello_fields(void)
{
    static const char *uuid = "7c2e4f40-5b1a-4e8e-9d3c-2a6f0b1c8d9e";
    struct {
        GBytes *b;
        TvdMsgError code;
        const char *needle;
    } cases[] = {
        { raw_hello(uuid, 1, 5, 0, 4, 22, 1, 11), 0, NULL }, /* valid */
        { raw_hello("7c2e4f40", 1, 5, 0, 4, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "AGENT_HELLO.boot_id" },
        { raw_hello("7c2e4f40-5b1a-4e8e-9d3c-2a6f0b1c8d9g", 1, 5, 0, 4, 22,
                    1, 11), TVD_MSG_ERROR_FIELD_STRING, "boot_id" },
        { raw_hello(uuid, 3, 5, 0, 4, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_VALUE, "ek_type" },
        { raw_hello(uuid, 1, TVD_MSG_EK_CERT_MAX + 1, 0, 4, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "ek_cert: 4097 bytes" },
        { raw_hello(uuid, 1, 0, TVD_MSG_TPM2B_PUBLIC_MAX + 1, 4, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "ek_public" },
        { raw_hello(uuid, 1, 0, 0, 4, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "one is required" },
        { raw_hello(uuid, 2, 0, 300, 4, 22, 1, 11), 0, NULL }, /* valid */
        { raw_hello(uuid, 1, 5, 0, 0, 22, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "ak_public: 0 bytes" },
        { raw_hello(uuid, 1, 5, 0, 4, 21, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "ak_name: 21 bytes, allowed 22..66" },
        { raw_hello(uuid, 1, 5, 0, 4, 67, 1, 11),
          TVD_MSG_ERROR_FIELD_SIZE, "ak_name: 67" },
        { raw_hello(uuid, 1, 5, 0, 4, 22, 9, 11),
          TVD_MSG_ERROR_FIELD_VALUE, "ak_alg" },
        { raw_hello(uuid, 1, 5, 0, 4, 22, 2, 16),
          TVD_MSG_ERROR_FIELD_VALUE, "agent_pcr" },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].needle) {
            assert_decode_fails(cases[i].b, cases[i].code, cases[i].needle);
        } else {
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_true(tvd_msg_decode(cases[i].b, &m, &error));
            g_assert_no_error(error);
            tvd_msg_clear(&m);
        }
        g_bytes_unref(cases[i].b);
    }
}

static void test_hello_encode_checks(void)
{
    TvdMsg m;

    vec_agent_hello(&m);
    g_clear_pointer(&m.u.agent_hello.ek_cert, g_bytes_unref);
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_SIZE, "one is required");
    tvd_msg_clear(&m);

    vec_agent_hello(&m);
    m.u.agent_hello.agent_version = 0;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "agent_version");
    tvd_msg_clear(&m);

    vec_agent_hello(&m);
    memset(m.u.agent_hello.boot_id, 'x', TVD_MSG_BOOT_ID_LEN);
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_STRING, "boot_id");
    tvd_msg_clear(&m);

    m.type = 0;
    assert_encode_fails(&m, TVD_MSG_ERROR_UNKNOWN_MESSAGE, NULL);
}

static void test_credential_fields(void)
{
    g_autofree guint8 *z = g_malloc0(2048);
    g_autoptr(GBytes) b1 = NULL;
    g_autoptr(GBytes) b2 = NULL;
    g_autoptr(GBytes) b3 = NULL;
    g_autoptr(GBytes) b4 = NULL;

#define AY(n) g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, z, n, 1)
    b1 = raw_message(1, TVD_MSG_CREDENTIAL_CHALLENGE,
                     g_variant_new("(@ay@ay)", AY(TVD_MSG_CRED_BLOB_MAX + 1),
                                   AY(4)));
    assert_decode_fails(b1, TVD_MSG_ERROR_FIELD_SIZE,
                        "CREDENTIAL_CHALLENGE.credential_blob: 513 bytes");
    b2 = raw_message(1, TVD_MSG_CREDENTIAL_CHALLENGE,
                     g_variant_new("(@ay@ay)", AY(4), AY(0)));
    assert_decode_fails(b2, TVD_MSG_ERROR_FIELD_SIZE, "encrypted_secret");
    b3 = raw_message(1, TVD_MSG_CREDENTIAL_RESPONSE,
                     g_variant_new("(@ay)", AY(TVD_MSG_SECRET_MAX + 1)));
    assert_decode_fails(b3, TVD_MSG_ERROR_FIELD_SIZE,
                        "CREDENTIAL_RESPONSE.secret: 65 bytes");
    b4 = raw_message(1, TVD_MSG_CREDENTIAL_RESPONSE,
                     g_variant_new("(@ay)", AY(0)));
    assert_decode_fails(b4, TVD_MSG_ERROR_FIELD_SIZE, "secret: 0 bytes");
#undef AY
}

static GBytes *raw_request(gsize nonce, guint16 bank, guint32 select,
                           const char *const *paths)
{
    guint8 z[64] = { 0 };

    return raw_message(1, TVD_MSG_ATTEST_REQUEST,
                       g_variant_new("(@ayqutt^as)",
                                     g_variant_new_fixed_array(
                                         G_VARIANT_TYPE_BYTE, z, nonce, 1),
                                     bank, select, (guint64)0, (guint64)0,
                                     paths));
}

static void test_request_fields(void)
{
    static const char *const ok[] = { "/bin", NULL };
    static const char *const relative[] = { "/bin", "etc/passwd", NULL };
    static const char *const control[] = { "/bin\n/fake", NULL };
    static const char *const empty[] = { "", NULL };
    g_autofree char *long_path = g_strnfill(TVD_MSG_PATH_MAX + 1, 'a');
    const char *too_long[] = { long_path, NULL };
    const char *many[TVD_MSG_PATHS_MAX + 2];
    struct {
        GBytes *b;
        TvdMsgError code;
        const char *needle;
    } cases[] = {
        { raw_request(31, TVD_TPM_ALG_SHA256, 1, ok),
          TVD_MSG_ERROR_FIELD_SIZE, "ATTEST_REQUEST.nonce: 31 bytes" },
        { raw_request(33, TVD_TPM_ALG_SHA256, 1, ok),
          TVD_MSG_ERROR_FIELD_SIZE, "nonce: 33 bytes, must be 32" },
        { raw_request(32, 0x0010, 1, ok),
          TVD_MSG_ERROR_FIELD_VALUE, "pcr_bank" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 0, ok),
          TVD_MSG_ERROR_FIELD_VALUE, "pcr_select" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 1u << 24, ok),
          TVD_MSG_ERROR_FIELD_VALUE, "pcr_select" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 1, relative),
          TVD_MSG_ERROR_FIELD_STRING, "paths[1]: not an absolute path" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 1, control),
          TVD_MSG_ERROR_FIELD_STRING, "paths[0]: control character" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 1, empty),
          TVD_MSG_ERROR_FIELD_STRING, "paths[0]" },
        { raw_request(32, TVD_TPM_ALG_SHA256, 1, too_long),
          TVD_MSG_ERROR_FIELD_SIZE, "paths[0]: 4096 bytes" },
        { NULL, TVD_MSG_ERROR_FIELD_COUNT, "paths: 65 paths, at most 64" },
    };
    guint i;

    for (i = 0; i < TVD_MSG_PATHS_MAX + 1; i++) {
        many[i] = "/x";
    }
    many[i] = NULL;
    cases[G_N_ELEMENTS(cases) - 1].b =
        raw_request(32, TVD_TPM_ALG_SHA256, 1, many);
    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        assert_decode_fails(cases[i].b, cases[i].code, cases[i].needle);
        g_bytes_unref(cases[i].b);
    }
}

static GVariant *pcr_value(guint8 index, gsize len)
{
    guint8 z[64] = { 0 };

    return g_variant_new("(y@ay)", index,
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, z,
                                                   len, 1));
}

/* A chunk of @n records, each "ima-ng" with @data_len bytes of data. */
static GVariant *chunk_value(guint8 kind, guint64 offset, gboolean more,
                             guint n, gsize data_len)
{
    g_autoptr(GByteArray) blob = g_byte_array_new();
    g_autofree char *data = g_strnfill(data_len, 'd');
    guint i;

    for (i = 0; i < n; i++) {
        g_autoptr(GBytes) r = vec_record(10, 0x5a, "ima-ng", data);

        g_byte_array_append(blob, g_bytes_get_data(r, NULL),
                            (guint)g_bytes_get_size(r));
    }
    return g_variant_new("(ytb@ay)", kind, offset, more,
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
                                                   blob->data, blob->len, 1));
}

/* A chunk whose records are @len raw bytes. */
static GBytes *raw_chunk(const guint8 *blob, gsize len)
{
    return raw_message(1, TVD_MSG_LOG_CHUNK,
                       g_variant_new("(ytb@ay)", 1, (guint64)0, FALSE,
                                     g_variant_new_fixed_array(
                                         G_VARIANT_TYPE_BYTE, blob, len, 1)));
}

static GBytes *raw_evidence(guint16 bank, GVariant *pcrs, GVariant *logs)
{
    return raw_message(1, TVD_MSG_EVIDENCE,
                       g_variant_new("(@ay@ayq@a(yay)@a(ytbay))",
                                     g_variant_new_fixed_array(
                                         G_VARIANT_TYPE_BYTE, "ATST", 4, 1),
                                     g_variant_new_fixed_array(
                                         G_VARIANT_TYPE_BYTE, "SIG", 3, 1),
                                     bank, pcrs, logs));
}

static GVariant *pcr_array(guint n, const guint8 *idx, gsize len)
{
    GVariantBuilder b;
    guint i;

    g_variant_builder_init(&b, G_VARIANT_TYPE("a(yay)"));
    for (i = 0; i < n; i++) {
        g_variant_builder_add_value(&b, pcr_value(idx ? idx[i] : (guint8)i,
                                                  len));
    }
    return g_variant_builder_end(&b);
}

static GVariant *chunk_array(guint n, const guint8 *kinds)
{
    GVariantBuilder b;
    guint i;

    g_variant_builder_init(&b, G_VARIANT_TYPE("a(ytbay)"));
    for (i = 0; i < n; i++) {
        g_variant_builder_add_value(&b, chunk_value(kinds[i], 0, FALSE, 1,
                                                    10));
    }
    return g_variant_builder_end(&b);
}

static void test_evidence_fields(void)
{
    static const guint8 dup_idx[] = { 0, 4, 4 };
    static const guint8 down_idx[] = { 5, 4 };
    static const guint8 big_idx[] = { 24 };
    static const guint8 k12[] = { 1, 2 }, k21[] = { 2, 1 }, k11[] = { 1, 1 };
    static const guint8 k3[] = { 3 }, k123[] = { 1, 2, 1 };
    struct {
        GBytes *b;
        TvdMsgError code;
        const char *needle;
    } cases[] = {
        { raw_evidence(TVD_TPM_ALG_SHA256, pcr_array(2, NULL, 32),
                       chunk_array(2, k12)), 0, NULL },   /* valid */
        { raw_evidence(TVD_TPM_ALG_SHA256, pcr_array(0, NULL, 32),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_COUNT, "EVIDENCE.pcrs: 0 values" },
        { raw_evidence(TVD_TPM_ALG_SHA256, pcr_array(25, NULL, 32),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_COUNT, "EVIDENCE.pcrs: 25 values" },
        { raw_evidence(TVD_TPM_ALG_SHA256, pcr_array(2, NULL, 20),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_SIZE, "pcrs[0]: 20 bytes, must be 32" },
        { raw_evidence(0x0005, pcr_array(2, NULL, 32), chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_VALUE, "pcr_bank" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(3, dup_idx, 20),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_VALUE, "pcrs[2]: index 4" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(2, down_idx, 20),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_VALUE, "pcrs[1]" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(1, big_idx, 20),
                       chunk_array(0, k12)),
          TVD_MSG_ERROR_FIELD_VALUE, "pcrs[0]: index 24" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(1, NULL, 20),
                       chunk_array(2, k21)),
          TVD_MSG_ERROR_FIELD_VALUE, "EVIDENCE.logs[1].kind: 1 repeated" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(1, NULL, 20),
                       chunk_array(2, k11)),
          TVD_MSG_ERROR_FIELD_VALUE, "logs[1].kind" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(1, NULL, 20),
                       chunk_array(1, k3)),
          TVD_MSG_ERROR_FIELD_VALUE, "EVIDENCE.logs[0].kind: unknown" },
        { raw_evidence(TVD_TPM_ALG_SHA1, pcr_array(1, NULL, 20),
                       chunk_array(3, k123)),
          TVD_MSG_ERROR_FIELD_COUNT, "EVIDENCE.logs: 3 chunks" },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].needle) {
            assert_decode_fails(cases[i].b, cases[i].code, cases[i].needle);
        } else {
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_true(tvd_msg_decode(cases[i].b, &m, &error));
            g_assert_no_error(error);
            tvd_msg_clear(&m);
        }
        g_bytes_unref(cases[i].b);
    }
}

static void test_log_chunk_fields(void)
{
    /* Record 0 is a whole minimal record; the damage is in record 1. */
    guint8 rec[2 * 40 + 300];
    guint8 *r1 = rec + 32;
    struct {
        GBytes *b;
        gint code;
        const char *needle;
    } cases[] = {
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, FALSE, 0, 1)), 0, NULL },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, TRUE, 0, 1)),
          TVD_MSG_ERROR_FIELD_VALUE, "LOG_CHUNK.more" },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(0, 0, FALSE, 1, 1)),
          TVD_MSG_ERROR_FIELD_VALUE, "LOG_CHUNK.kind" },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(2, G_MAXUINT64, FALSE, 1, 1)),
          TVD_MSG_ERROR_FIELD_VALUE, "LOG_CHUNK.offset" },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(2, G_MAXUINT64 - 1, FALSE, 1, 1)), 0, NULL },
        /* The largest record: 38 + 8154 = 8192 bytes; one more is too many. */
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, FALSE, 2, TVD_MSG_LOG_ENTRY_MAX - 38)),
          0, NULL },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, FALSE, 1, TVD_MSG_LOG_ENTRY_MAX - 37)),
          TVD_MSG_ERROR_FIELD_SIZE,
          "LOG_CHUNK.entries[0]: record of 8193 bytes, at most 8192" },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, TRUE, TVD_MSG_LOG_ENTRIES_MAX, 0)),
          0, NULL },
        { raw_message(1, TVD_MSG_LOG_CHUNK,
                      chunk_value(1, 0, FALSE, TVD_MSG_LOG_ENTRIES_MAX + 1,
                                  0)),
          TVD_MSG_ERROR_FIELD_COUNT, "LOG_CHUNK.entries: more than 65536" },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].needle) {
            assert_decode_fails(cases[i].b, cases[i].code, cases[i].needle);
        } else {
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_true(tvd_msg_decode(cases[i].b, &m, &error));
            g_assert_no_error(error);
            tvd_msg_clear(&m);
        }
        g_bytes_unref(cases[i].b);
    }

    /* Damaged records, each in record 1 behind a good record 0. */
    memset(rec, 0, sizeof(rec));
    rec[0] = 10;
    {
        g_autoptr(GBytes) b = NULL;

        /* Header cut short: 27 bytes after record 0. */
        b = raw_chunk(rec, 32 + 27);
        assert_decode_fails(b, TVD_MSG_ERROR_FIELD_SIZE,
                            "LOG_CHUNK.entries[1]: 27 bytes, shorter than "
                            "a record header");
        g_clear_pointer(&b, g_bytes_unref);

        /* Template name longer than the kernel allows. */
        tvd_put_le32(r1 + 24, 256);
        b = raw_chunk(rec, sizeof(rec));
        assert_decode_fails(b, TVD_MSG_ERROR_FIELD_SIZE,
                            "entries[1]: template name of 256 bytes");
        g_clear_pointer(&b, g_bytes_unref);

        /* Name running past the end. */
        tvd_put_le32(r1 + 24, 10);
        b = raw_chunk(rec, 32 + 28 + 12);
        assert_decode_fails(b, TVD_MSG_ERROR_FIELD_SIZE,
                            "entries[1]: record truncated in its template");
        g_clear_pointer(&b, g_bytes_unref);

        /* Data length of 4 GiB - 1: no overflow, just too large. */
        tvd_put_le32(r1 + 24, 0);
        tvd_put_le32(r1 + 28, G_MAXUINT32);
        b = raw_chunk(rec, sizeof(rec));
        assert_decode_fails(b, TVD_MSG_ERROR_FIELD_SIZE,
                            "entries[1]: template data of 4294967295 bytes");
        g_clear_pointer(&b, g_bytes_unref);

        /* Data running past the end. */
        tvd_put_le32(r1 + 28, 340);
        b = raw_chunk(rec, sizeof(rec));
        assert_decode_fails(b, TVD_MSG_ERROR_FIELD_SIZE,
                            "entries[1]: record of 372 bytes truncated to 348");
        g_clear_pointer(&b, g_bytes_unref);

        /* And exactly fitting: two records. */
        tvd_put_le32(r1 + 28, sizeof(rec) - 64);
        b = raw_chunk(rec, sizeof(rec));
        {
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_true(tvd_msg_decode(b, &m, &error));
            g_assert_no_error(error);
            g_assert_cmpuint(m.u.log_chunk.entries->len, ==, 2);
            g_assert_cmpuint(g_bytes_get_size(
                                 g_ptr_array_index(m.u.log_chunk.entries,
                                                   1)), ==, sizeof(rec) - 32);
            tvd_msg_clear(&m);
        }
    }
}

static void test_text_fields(void)
{
    g_autofree char *long_text = g_strnfill(TVD_MSG_TEXT_MAX + 1, 't');
    g_autofree char *max_text = g_strnfill(TVD_MSG_TEXT_MAX, 't');
    struct {
        GBytes *b;
        TvdMsgError code;
        const char *needle;
    } cases[] = {
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 0, 0, "", 0, 0)),
          TVD_MSG_ERROR_FIELD_VALUE, "MEMBERSHIP.state: 0" },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 5, 0, "", 0, 0)),
          TVD_MSG_ERROR_FIELD_VALUE, "MEMBERSHIP.state: 5" },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 3, 0x1001, long_text, 0, 0)),
          TVD_MSG_ERROR_FIELD_SIZE, "reason_text: 257 bytes" },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 3, 0x1001, max_text, 0, 0)),
          0, NULL },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 3, 4, "bad\033[2J", 0, 0)),
          TVD_MSG_ERROR_FIELD_STRING, "reason_text: control character" },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 3, 4, "C1 \xc2\x9b here", 0,
                                    0)),
          TVD_MSG_ERROR_FIELD_STRING, "at byte 3" },
        { raw_message(1, TVD_MSG_MEMBERSHIP,
                      g_variant_new("(uusuu)", 3, 4, "d\xc3\xa9j\xc3\xa0 vu",
                                    0, 0)),
          0, NULL },
        { raw_message(1, TVD_MSG_ERROR_REPORT,
                      g_variant_new("(uqs)", 0, 0, "x")),
          TVD_MSG_ERROR_FIELD_VALUE, "ERROR.code" },
        { raw_message(1, TVD_MSG_ERROR_REPORT,
                      g_variant_new("(uqs)", 1, 0, "line\nbreak")),
          TVD_MSG_ERROR_FIELD_STRING, "ERROR.text" },
        { raw_message(1, TVD_MSG_ERROR_REPORT,
                      g_variant_new("(uqs)", 77, 0, "")), 0, NULL },
    };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(cases); i++) {
        if (cases[i].needle) {
            assert_decode_fails(cases[i].b, cases[i].code, cases[i].needle);
        } else {
            g_autoptr(GError) error = NULL;
            TvdMsg m;

            g_assert_true(tvd_msg_decode(cases[i].b, &m, &error));
            g_assert_no_error(error);
            tvd_msg_clear(&m);
        }
        g_bytes_unref(cases[i].b);
    }
}

static void test_encode_checks(void)
{
    TvdMsg m;
    char *bad_utf8 = g_strdup("\xff\xfe");

    /* Every encoder applies the decoder's checks. */
    vec_membership(&m);
    g_free(m.u.membership.reason_text);
    m.u.membership.reason_text = bad_utf8;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_STRING, "not valid UTF-8");
    tvd_msg_clear(&m);

    vec_attest_request(&m);
    m.u.attest_request.pcr_select = 0;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "pcr_select");
    tvd_msg_clear(&m);

    vec_evidence(&m);
    m.u.evidence.pcrs[1].index = 0;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "pcrs[1]");
    tvd_msg_clear(&m);

    vec_evidence(&m);
    m.u.evidence.logs[1].kind = TVD_LOG_IMA_NG;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "repeated");
    tvd_msg_clear(&m);

    vec_log_chunk(&m);
    g_ptr_array_set_size(m.u.log_chunk.entries, 0);
    m.u.log_chunk.more = TRUE;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "more");
    tvd_msg_clear(&m);

    /* Log entries must be exactly one record each. */
    vec_log_chunk(&m);
    g_ptr_array_add(m.u.log_chunk.entries, g_bytes_new("xyz", 3));
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_SIZE,
                        "LOG_CHUNK.entries[1]: 3 bytes, shorter than");
    tvd_msg_clear(&m);

    vec_log_chunk(&m);
    {
        GBytes *r = g_ptr_array_index(m.u.log_chunk.entries, 0);
        g_autoptr(GByteArray) longer = g_byte_array_new();

        g_byte_array_append(longer, g_bytes_get_data(r, NULL),
                            (guint)g_bytes_get_size(r));
        g_byte_array_append(longer, (const guint8 *)"!", 1);
        g_ptr_array_add(m.u.log_chunk.entries,
                        g_bytes_new(longer->data, longer->len));
    }
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_SIZE,
                        "entries[1]: 42 bytes, but its record is 41");
    tvd_msg_clear(&m);

    vec_credential_response(&m);
    g_clear_pointer(&m.u.credential_response.secret, g_bytes_unref);
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_SIZE, "secret");
    tvd_msg_clear(&m);

    vec_error_report(&m);
    m.u.error_report.code = 0;
    assert_encode_fails(&m, TVD_MSG_ERROR_FIELD_VALUE, "code");
    tvd_msg_clear(&m);
}

/* NULL byte fields, paths and entries encode as empty. */
static void test_encode_defaults(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) b = NULL;
    TvdMsg m = { .type = TVD_MSG_LOG_CHUNK };
    TvdMsg d;

    m.u.log_chunk.kind = TVD_LOG_AGENT_LIST;
    b = tvd_msg_encode(&m, &error);
    g_assert_no_error(error);
    g_assert_true(tvd_msg_decode(b, &d, &error));
    g_assert_cmpuint(d.u.log_chunk.entries->len, ==, 0);
    tvd_msg_clear(&d);
    g_clear_pointer(&b, g_bytes_unref);

    vec_attest_request(&m);
    g_clear_pointer(&m.u.attest_request.paths, g_strfreev);
    b = tvd_msg_encode(&m, &error);
    g_assert_no_error(error);
    g_assert_true(tvd_msg_decode(b, &d, &error));
    g_assert_nonnull(d.u.attest_request.paths);
    g_assert_null(d.u.attest_request.paths[0]);
    tvd_msg_clear(&d);
    tvd_msg_clear(&m);
}

int main(int argc, char **argv)
{
    guint i;

    g_test_init(&argc, &argv, NULL);
    for (i = 0; i < G_N_ELEMENTS(vec_messages); i++) {
        g_autofree char *enc = g_strdup_printf("/message/golden/%s/encode",
                                               vec_messages[i].name);
        g_autofree char *dec = g_strdup_printf("/message/golden/%s/decode",
                                               vec_messages[i].name);

        g_test_add_data_func(enc, &vec_messages[i], test_encode);
        g_test_add_data_func(dec, &vec_messages[i], test_decode);
    }
    g_test_add_func("/message/body-types", test_body_types);
    g_test_add_func("/message/typed", test_typed);
    g_test_add_func("/message/reject/truncated", test_truncated);
    g_test_add_func("/message/reject/oversize", test_oversize);
    g_test_add_func("/message/reject/oversize-encode", test_oversize_encode);
    g_test_add_func("/message/reject/not-normal", test_not_normal);
    g_test_add_func("/message/reject/envelope", test_bad_envelope);
    g_test_add_func("/message/reject/agent-hello", test_hello_fields);
    g_test_add_func("/message/reject/agent-hello-encode",
                    test_hello_encode_checks);
    g_test_add_func("/message/reject/credential", test_credential_fields);
    g_test_add_func("/message/reject/attest-request", test_request_fields);
    g_test_add_func("/message/reject/evidence", test_evidence_fields);
    g_test_add_func("/message/reject/log-chunk", test_log_chunk_fields);
    g_test_add_func("/message/reject/text", test_text_fields);
    g_test_add_func("/message/reject/encode", test_encode_checks);
    g_test_add_func("/message/encode-defaults", test_encode_defaults);
    return g_test_run();
}
