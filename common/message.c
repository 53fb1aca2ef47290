/*
 * tvd agent<->supervisor messages. See message.h and docs/protocol.md.
 *
 * Decoding is in three steps, each of which may fail with a precise error:
 * (1) size cap, normal form and GVariant types of envelope and body;
 * (2) extraction into the C struct, checking every array count against its
 *     cap before anything is allocated for it;
 * (3) the same value checks the encoder runs before it serializes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-message"

#include "message.h"
#include "evidence.h"

#include <stdarg.h>
#include <string.h>

G_DEFINE_QUARK(tvd-msg-error-quark, tvd_msg_error)

/* ---- Names and types ------------------------------------------------------ */

static const struct {
    const char *name;
    const char *type;
} msg_info[TVD_MSG_TYPE_MAX + 1] = {
    [TVD_MSG_AGENT_HELLO] = { "AGENT_HELLO", TVD_MSG_AGENT_HELLO_TYPE },
    [TVD_MSG_CREDENTIAL_CHALLENGE] = { "CREDENTIAL_CHALLENGE",
                                       TVD_MSG_CREDENTIAL_CHALLENGE_TYPE },
    [TVD_MSG_CREDENTIAL_RESPONSE] = { "CREDENTIAL_RESPONSE",
                                      TVD_MSG_CREDENTIAL_RESPONSE_TYPE },
    [TVD_MSG_ATTEST_REQUEST] = { "ATTEST_REQUEST",
                                 TVD_MSG_ATTEST_REQUEST_TYPE },
    [TVD_MSG_EVIDENCE] = { "EVIDENCE", TVD_MSG_EVIDENCE_TYPE },
    [TVD_MSG_LOG_CHUNK] = { "LOG_CHUNK", TVD_MSG_LOG_CHUNK_TYPE },
    [TVD_MSG_MEMBERSHIP] = { "MEMBERSHIP", TVD_MSG_MEMBERSHIP_TYPE },
    [TVD_MSG_ERROR_REPORT] = { "ERROR", TVD_MSG_ERROR_REPORT_TYPE },
};

const char *tvd_msg_type_name(guint type)
{
    if (type == 0 || type > TVD_MSG_TYPE_MAX) {
        return "unknown";
    }
    return msg_info[type].name;
}

const char *tvd_msg_body_type(guint type)
{
    if (type == 0 || type > TVD_MSG_TYPE_MAX) {
        return NULL;
    }
    return msg_info[type].type;
}

gsize tvd_msg_pcr_bank_digest_size(guint16 bank)
{
    switch (bank) {
    case TVD_TPM_ALG_SHA1:
        return 20;
    case TVD_TPM_ALG_SHA256:
        return 32;
    case TVD_TPM_ALG_SHA384:
        return 48;
    case TVD_TPM_ALG_SHA512:
        return 64;
    default:
        return 0;
    }
}

/* ---- Field checks (shared by encoders and decoders) ------------------------ */

static void field_error(GError **error, TvdMsgError code, const char *msg,
                        const char *field, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void field_error(GError **error, TvdMsgError code, const char *msg,
                        const char *field, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, TVD_MSG_ERROR, code, "%s.%s: %s", msg, field, text);
}

static gboolean check_bytes(const char *msg, const char *field, GBytes *b,
                            gsize min, gsize max, GError **error)
{
    gsize n = b ? g_bytes_get_size(b) : 0;

    if (n < min || n > max) {
        if (min == max) {
            field_error(error, TVD_MSG_ERROR_FIELD_SIZE, msg, field,
                        "%" G_GSIZE_FORMAT " bytes, must be %" G_GSIZE_FORMAT,
                        n, min);
        } else {
            field_error(error, TVD_MSG_ERROR_FIELD_SIZE, msg, field,
                        "%" G_GSIZE_FORMAT " bytes, allowed %" G_GSIZE_FORMAT
                        "..%" G_GSIZE_FORMAT, n, min, max);
        }
        return FALSE;
    }
    return TRUE;
}

/* UTF-8 text of at most @max bytes without control characters. */
static gboolean check_text(const char *msg, const char *field, const char *s,
                           gsize max, GError **error)
{
    gsize n = s ? strlen(s) : 0;
    const char *p;

    if (n > max) {
        field_error(error, TVD_MSG_ERROR_FIELD_SIZE, msg, field,
                    "%" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT,
                    n, max);
        return FALSE;
    }
    if (!s) {
        return TRUE;
    }
    if (!g_utf8_validate(s, (gssize)n, NULL)) {
        field_error(error, TVD_MSG_ERROR_FIELD_STRING, msg, field,
                    "not valid UTF-8");
        return FALSE;
    }
    for (p = s; *p; p = g_utf8_next_char(p)) {
        if (g_unichar_iscntrl(g_utf8_get_char(p))) {
            field_error(error, TVD_MSG_ERROR_FIELD_STRING, msg, field,
                        "control character at byte %" G_GSIZE_FORMAT,
                        (gsize)(p - s));
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * Length of the binary IMA record at @off of @p (@size bytes), or 0 with an
 * error naming entries[@index] when the bytes there are not a whole record
 * within caps.
 */
static gsize record_length(const char *msg, guint index, const guint8 *p,
                           gsize size, gsize off, GError **error)
{
    gsize avail = p && size > off ? size - off : 0;
    TvdImaRecordView v;
    TvdImaRecordStatus st = tvd_ima_record_frame(
        avail ? p + off : (const guint8 *)"", avail, TVD_IMA_RECORD_SHA1_LEN,
        TVD_MSG_LOG_NAME_MAX, TVD_MSG_LOG_ENTRY_MAX, &v);
    gsize len;

    if (st == TVD_IMA_RECORD_TRUNCATED &&
        avail < TVD_MSG_LOG_RECORD_MIN - 4) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: %" G_GSIZE_FORMAT " bytes, shorter than "
                    "a record header", msg, index, avail);
        return 0;
    }
    if (st == TVD_IMA_RECORD_NAME_TOO_LONG) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: template name of %u bytes, at most %u",
                    msg, index, v.name_len, TVD_MSG_LOG_NAME_MAX);
        return 0;
    }
    if (st == TVD_IMA_RECORD_TRUNCATED &&
        avail - (TVD_MSG_LOG_RECORD_MIN - 4) < (gsize)v.name_len + 4) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: record truncated in its template name",
                    msg, index);
        return 0;
    }
    if (st == TVD_IMA_RECORD_DATA_TOO_LONG) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: template data of %u bytes, above the "
                    "entry cap of %u", msg, index, v.data_len,
                    TVD_MSG_LOG_ENTRY_MAX);
        return 0;
    }
    len = TVD_MSG_LOG_RECORD_MIN + v.name_len + v.data_len;
    if (len > TVD_MSG_LOG_ENTRY_MAX) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: record of %" G_GSIZE_FORMAT
                    " bytes, at most %u", msg, index, len,
                    TVD_MSG_LOG_ENTRY_MAX);
        return 0;
    }
    if (st == TVD_IMA_RECORD_TRUNCATED) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                    "%s.entries[%u]: record of %" G_GSIZE_FORMAT
                    " bytes truncated to %" G_GSIZE_FORMAT, msg, index, len,
                    avail);
        return 0;
    }
    return len;
}

static gboolean check_log_chunk(const char *msg, const TvdMsgLogChunk *c,
                                GError **error)
{
    guint n = c->entries ? c->entries->len : 0;
    guint i;

    if (c->kind != TVD_LOG_IMA_NG && c->kind != TVD_LOG_AGENT_LIST) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "kind",
                    "unknown log kind %u", c->kind);
        return FALSE;
    }
    if (n > TVD_MSG_LOG_ENTRIES_MAX) {
        field_error(error, TVD_MSG_ERROR_FIELD_COUNT, msg, "entries",
                    "%u entries, at most %u", n, TVD_MSG_LOG_ENTRIES_MAX);
        return FALSE;
    }
    if (c->offset > G_MAXUINT64 - n) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "offset",
                    "%" G_GUINT64_FORMAT " + %u entries overflows",
                    c->offset, n);
        return FALSE;
    }
    if (c->more && n == 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "more",
                    "set on a chunk without entries");
        return FALSE;
    }
    /* Each entry must be exactly one record. */
    for (i = 0; i < n; i++) {
        GBytes *e = g_ptr_array_index(c->entries, i);
        gsize sz = 0;
        const guint8 *p = e ? g_bytes_get_data(e, &sz) : NULL;
        gsize len = record_length(msg, i, p, sz, 0, error);

        if (len == 0) {
            return FALSE;
        }
        if (len != sz) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                        "%s.entries[%u]: %" G_GSIZE_FORMAT " bytes, but its "
                        "record is %" G_GSIZE_FORMAT, msg, i, sz, len);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean check_agent_hello(const TvdMsgAgentHello *m, GError **error)
{
    const char *msg = "AGENT_HELLO";
    gboolean has_cert = m->ek_cert && g_bytes_get_size(m->ek_cert) > 0;
    gboolean has_pub = m->ek_public && g_bytes_get_size(m->ek_public) > 0;

    if (m->agent_version == 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "agent_version",
                    "must not be 0");
        return FALSE;
    }
    if (strnlen(m->boot_id, sizeof(m->boot_id)) != TVD_MSG_BOOT_ID_LEN ||
        !g_uuid_string_is_valid(m->boot_id)) {
        field_error(error, TVD_MSG_ERROR_FIELD_STRING, msg, "boot_id",
                    "not a UUID string");
        return FALSE;
    }
    if (m->ek_type != TVD_EK_RSA && m->ek_type != TVD_EK_ECC) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "ek_type",
                    "unknown EK type %u", m->ek_type);
        return FALSE;
    }
    if (!check_bytes(msg, "ek_cert", m->ek_cert, 0, TVD_MSG_EK_CERT_MAX,
                     error) ||
        !check_bytes(msg, "ek_public", m->ek_public, 0,
                     TVD_MSG_TPM2B_PUBLIC_MAX, error)) {
        return FALSE;
    }
    if (!has_cert && !has_pub) {
        field_error(error, TVD_MSG_ERROR_FIELD_SIZE, msg, "ek_public",
                    "empty, and so is ek_cert: one is required");
        return FALSE;
    }
    if (!check_bytes(msg, "ak_public", m->ak_public, 1,
                     TVD_MSG_TPM2B_PUBLIC_MAX, error) ||
        !check_bytes(msg, "ak_name", m->ak_name, TVD_MSG_NAME_MIN,
                     TVD_MSG_NAME_MAX, error)) {
        return FALSE;
    }
    if (m->ak_alg != TVD_AK_RSA2048_RSASSA_SHA256 &&
        m->ak_alg != TVD_AK_ECC_P256_ECDSA_SHA256) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "ak_alg",
                    "unknown AK algorithm %u", m->ak_alg);
        return FALSE;
    }
    if (m->agent_pcr > TVD_MSG_AGENT_PCR_MAX) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "agent_pcr",
                    "PCR %u is resettable, must be 0..%u", m->agent_pcr,
                    TVD_MSG_AGENT_PCR_MAX);
        return FALSE;
    }
    return TRUE;
}

static gboolean check_credential_challenge(const TvdMsgCredentialChallenge *m,
                                           GError **error)
{
    const char *msg = "CREDENTIAL_CHALLENGE";

    return check_bytes(msg, "credential_blob", m->credential_blob, 1,
                       TVD_MSG_CRED_BLOB_MAX, error) &&
           check_bytes(msg, "encrypted_secret", m->encrypted_secret, 1,
                       TVD_MSG_ENC_SECRET_MAX, error);
}

static gboolean check_credential_response(const TvdMsgCredentialResponse *m,
                                          GError **error)
{
    return check_bytes("CREDENTIAL_RESPONSE", "secret", m->secret, 1,
                       TVD_MSG_SECRET_MAX, error);
}

static gboolean check_attest_request(const TvdMsgAttestRequest *m,
                                     GError **error)
{
    const char *msg = "ATTEST_REQUEST";
    guint n = m->paths ? g_strv_length(m->paths) : 0;
    guint i;

    if (tvd_msg_pcr_bank_digest_size(m->pcr_bank) == 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "pcr_bank",
                    "unknown bank 0x%04x", m->pcr_bank);
        return FALSE;
    }
    if (m->pcr_select == 0 || (m->pcr_select >> TVD_MSG_PCR_COUNT) != 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "pcr_select",
                    "0x%08x selects no PCR or one above 23", m->pcr_select);
        return FALSE;
    }
    if (n > TVD_MSG_PATHS_MAX) {
        field_error(error, TVD_MSG_ERROR_FIELD_COUNT, msg, "paths",
                    "%u paths, at most %u", n, TVD_MSG_PATHS_MAX);
        return FALSE;
    }
    for (i = 0; i < n; i++) {
        g_autofree char *field = g_strdup_printf("paths[%u]", i);

        if (!check_text(msg, field, m->paths[i], TVD_MSG_PATH_MAX, error)) {
            return FALSE;
        }
        if (m->paths[i][0] != '/') {
            field_error(error, TVD_MSG_ERROR_FIELD_STRING, msg, field,
                        "not an absolute path");
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean check_evidence(const TvdMsgEvidence *m, GError **error)
{
    const char *msg = "EVIDENCE";
    gsize dsize = tvd_msg_pcr_bank_digest_size(m->pcr_bank);
    guint i;

    if (!check_bytes(msg, "attest", m->attest, 1, TVD_MSG_ATTEST_MAX,
                     error) ||
        !check_bytes(msg, "signature", m->signature, 1,
                     TVD_MSG_SIGNATURE_MAX, error)) {
        return FALSE;
    }
    if (dsize == 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "pcr_bank",
                    "unknown bank 0x%04x", m->pcr_bank);
        return FALSE;
    }
    if (m->n_pcrs == 0 || m->n_pcrs > TVD_MSG_PCR_COUNT) {
        field_error(error, TVD_MSG_ERROR_FIELD_COUNT, msg, "pcrs",
                    "%u values, allowed 1..%u", m->n_pcrs,
                    TVD_MSG_PCR_COUNT);
        return FALSE;
    }
    for (i = 0; i < m->n_pcrs; i++) {
        g_autofree char *field = g_strdup_printf("pcrs[%u]", i);

        if (m->pcrs[i].index >= TVD_MSG_PCR_COUNT ||
            (i > 0 && m->pcrs[i].index <= m->pcrs[i - 1].index)) {
            field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, field,
                        "index %u not below 24 and above the previous",
                        m->pcrs[i].index);
            return FALSE;
        }
        if (!check_bytes(msg, field, m->pcrs[i].digest, dsize, dsize,
                         error)) {
            return FALSE;
        }
    }
    if (m->n_logs > TVD_MSG_LOGS_MAX) {
        field_error(error, TVD_MSG_ERROR_FIELD_COUNT, msg, "logs",
                    "%u chunks, at most %u", m->n_logs, TVD_MSG_LOGS_MAX);
        return FALSE;
    }
    for (i = 0; i < m->n_logs; i++) {
        g_autofree char *field = g_strdup_printf("%s.logs[%u]", msg, i);

        if (!check_log_chunk(field, &m->logs[i], error)) {
            return FALSE;
        }
        if (i > 0 && m->logs[i].kind <= m->logs[i - 1].kind) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_VALUE,
                        "%s.kind: %u repeated or not ascending", field,
                        m->logs[i].kind);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean check_membership(const TvdMsgMembership *m, GError **error)
{
    const char *msg = "MEMBERSHIP";

    if (m->state < TVD_STATE_PENDING || m->state > TVD_STATE_MAX) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "state",
                    "%u is not a membership state", m->state);
        return FALSE;
    }
    return check_text(msg, "reason_text", m->reason_text, TVD_MSG_TEXT_MAX,
                      error);
}

static gboolean check_error_report(const TvdMsgErrorReport *m, GError **error)
{
    const char *msg = "ERROR";

    if (m->code == 0) {
        field_error(error, TVD_MSG_ERROR_FIELD_VALUE, msg, "code",
                    "must not be 0");
        return FALSE;
    }
    return check_text(msg, "text", m->text, TVD_MSG_TEXT_MAX, error);
}

static gboolean check_msg(const TvdMsg *msg, GError **error)
{
    switch (msg->type) {
    case TVD_MSG_AGENT_HELLO:
        return check_agent_hello(&msg->u.agent_hello, error);
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        return check_credential_challenge(&msg->u.credential_challenge, error);
    case TVD_MSG_CREDENTIAL_RESPONSE:
        return check_credential_response(&msg->u.credential_response, error);
    case TVD_MSG_ATTEST_REQUEST:
        return check_attest_request(&msg->u.attest_request, error);
    case TVD_MSG_EVIDENCE:
        return check_evidence(&msg->u.evidence, error);
    case TVD_MSG_LOG_CHUNK:
        return check_log_chunk("LOG_CHUNK", &msg->u.log_chunk, error);
    case TVD_MSG_MEMBERSHIP:
        return check_membership(&msg->u.membership, error);
    case TVD_MSG_ERROR_REPORT:
        return check_error_report(&msg->u.error_report, error);
    default:
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_UNKNOWN_MESSAGE,
                    "message type %u is not defined", msg->type);
        return FALSE;
    }
}

/* ---- Encoding ----------------------------------------------------------- */

static GVariant *bytes_value(GBytes *b)
{
    if (!b) {
        return g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, NULL, 0, 1);
    }
    return g_variant_new_from_bytes(G_VARIANT_TYPE_BYTESTRING, b, TRUE);
}

static GVariant *log_chunk_value(const TvdMsgLogChunk *c)
{
    GByteArray *blob = g_byte_array_new();
    guint i;

    for (i = 0; c->entries && i < c->entries->len; i++) {
        gsize n;
        const guint8 *p = g_bytes_get_data(g_ptr_array_index(c->entries, i),
                                           &n);

        g_byte_array_append(blob, p, (guint)n);
    }
    return g_variant_new("(ytb@ay)", c->kind, (guint64)c->offset,
                         c->more ? TRUE : FALSE,
                         g_variant_new_from_bytes(
                             G_VARIANT_TYPE_BYTESTRING,
                             g_byte_array_free_to_bytes(blob), TRUE));
}

static GVariant *body_value(const TvdMsg *msg)
{
    static const char *const no_paths[] = { NULL };

    switch (msg->type) {
    case TVD_MSG_AGENT_HELLO: {
        const TvdMsgAgentHello *m = &msg->u.agent_hello;

        return g_variant_new("(usy@ay@ay@ay@ayyyt)", m->agent_version,
                             m->boot_id, m->ek_type, bytes_value(m->ek_cert),
                             bytes_value(m->ek_public),
                             bytes_value(m->ak_public),
                             bytes_value(m->ak_name), m->ak_alg,
                             m->agent_pcr, (guint64)m->capabilities);
    }
    case TVD_MSG_CREDENTIAL_CHALLENGE: {
        const TvdMsgCredentialChallenge *m = &msg->u.credential_challenge;

        return g_variant_new("(@ay@ay)", bytes_value(m->credential_blob),
                             bytes_value(m->encrypted_secret));
    }
    case TVD_MSG_CREDENTIAL_RESPONSE:
        return g_variant_new("(@ay)",
                             bytes_value(msg->u.credential_response.secret));
    case TVD_MSG_ATTEST_REQUEST: {
        const TvdMsgAttestRequest *m = &msg->u.attest_request;

        return g_variant_new("(@ayqutt@as)",
                             g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
                                                       m->nonce,
                                                       TVD_MSG_NONCE_LEN, 1),
                             m->pcr_bank, m->pcr_select,
                             (guint64)m->ima_offset, (guint64)m->agent_offset,
                             g_variant_new_strv(m->paths ?
                                                (const char *const *)m->paths :
                                                no_paths, -1));
    }
    case TVD_MSG_EVIDENCE: {
        const TvdMsgEvidence *m = &msg->u.evidence;
        GVariantBuilder pcrs, logs;
        guint i;

        g_variant_builder_init(&pcrs, G_VARIANT_TYPE("a(yay)"));
        for (i = 0; i < m->n_pcrs; i++) {
            g_variant_builder_add(&pcrs, "(y@ay)", m->pcrs[i].index,
                                  bytes_value(m->pcrs[i].digest));
        }
        g_variant_builder_init(&logs, G_VARIANT_TYPE("a" TVD_MSG_LOG_CHUNK_TYPE));
        for (i = 0; i < m->n_logs; i++) {
            g_variant_builder_add_value(&logs, log_chunk_value(&m->logs[i]));
        }
        return g_variant_new("(@ay@ayq@a(yay)@a" TVD_MSG_LOG_CHUNK_TYPE ")",
                             bytes_value(m->attest),
                             bytes_value(m->signature), m->pcr_bank,
                             g_variant_builder_end(&pcrs),
                             g_variant_builder_end(&logs));
    }
    case TVD_MSG_LOG_CHUNK:
        return log_chunk_value(&msg->u.log_chunk);
    case TVD_MSG_MEMBERSHIP: {
        const TvdMsgMembership *m = &msg->u.membership;

        return g_variant_new("(uusuu)", m->state, m->reason,
                             m->reason_text ? m->reason_text : "", m->epoch,
                             m->deadline_s);
    }
    case TVD_MSG_ERROR_REPORT: {
        const TvdMsgErrorReport *m = &msg->u.error_report;

        return g_variant_new("(uqs)", m->code, m->ref_type,
                             m->text ? m->text : "");
    }
    default:
        g_assert_not_reached();
    }
}

GBytes *tvd_msg_encode(const TvdMsg *msg, GError **error)
{
    g_autoptr(GVariant) env = NULL;
    GBytes *out;

    if (!check_msg(msg, error)) {
        return NULL;
    }
    env = g_variant_ref_sink(g_variant_new("(qqv)",
                                           (guint16)TVD_MSG_PROTOCOL_VERSION,
                                           msg->type, body_value(msg)));
    if (G_BYTE_ORDER == G_BIG_ENDIAN) {
        GVariant *swapped = g_variant_byteswap(env);

        g_variant_unref(env);
        env = swapped;
    }
    out = g_variant_get_data_as_bytes(env);
    if (g_bytes_get_size(out) > TVD_MSG_SIZE_MAX) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_TOO_LARGE,
                    "%s: %" G_GSIZE_FORMAT " bytes serialized, at most %u",
                    tvd_msg_type_name(msg->type), g_bytes_get_size(out),
                    TVD_MSG_SIZE_MAX);
        g_bytes_unref(out);
        return NULL;
    }
    return out;
}

/* ---- Decoding ----------------------------------------------------------- */

static GBytes *child_bytes(GVariant *tuple, gsize i)
{
    g_autoptr(GVariant) c = g_variant_get_child_value(tuple, i);

    return g_variant_get_data_as_bytes(c);
}

static gboolean take_log_chunk(const char *msg, GVariant *v,
                               TvdMsgLogChunk *c, GError **error)
{
    g_autoptr(GVariant) records = NULL;
    g_autoptr(GBytes) blob = NULL;
    const guint8 *p;
    gboolean more;
    gsize size, off = 0;

    g_variant_get(v, "(ytb@ay)", &c->kind, &c->offset, &more, &records);
    c->more = more;
    blob = g_variant_get_data_as_bytes(records);
    p = g_bytes_get_data(blob, &size);
    c->entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    while (off < size) {
        gsize len;

        if (c->entries->len == TVD_MSG_LOG_ENTRIES_MAX) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_COUNT,
                        "%s.entries: more than %u entries", msg,
                        TVD_MSG_LOG_ENTRIES_MAX);
            return FALSE;
        }
        len = record_length(msg, c->entries->len, p, size, off, error);
        if (len == 0) {
            return FALSE;
        }
        g_ptr_array_add(c->entries, g_bytes_new_from_bytes(blob, off, len));
        off += len;
    }
    return TRUE;
}

static gboolean take_body(GVariant *body, TvdMsg *msg, GError **error)
{
    switch (msg->type) {
    case TVD_MSG_AGENT_HELLO: {
        TvdMsgAgentHello *m = &msg->u.agent_hello;
        const char *boot_id;

        g_variant_get_child(body, 0, "u", &m->agent_version);
        g_variant_get_child(body, 1, "&s", &boot_id);
        g_variant_get_child(body, 2, "y", &m->ek_type);
        m->ek_cert = child_bytes(body, 3);
        m->ek_public = child_bytes(body, 4);
        m->ak_public = child_bytes(body, 5);
        m->ak_name = child_bytes(body, 6);
        g_variant_get_child(body, 7, "y", &m->ak_alg);
        g_variant_get_child(body, 8, "y", &m->agent_pcr);
        g_variant_get_child(body, 9, "t", &m->capabilities);
        if (strlen(boot_id) != TVD_MSG_BOOT_ID_LEN) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                        "AGENT_HELLO.boot_id: %" G_GSIZE_FORMAT
                        " bytes, must be %u", strlen(boot_id),
                        TVD_MSG_BOOT_ID_LEN);
            return FALSE;
        }
        memcpy(m->boot_id, boot_id, TVD_MSG_BOOT_ID_LEN + 1);
        return TRUE;
    }
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        msg->u.credential_challenge.credential_blob = child_bytes(body, 0);
        msg->u.credential_challenge.encrypted_secret = child_bytes(body, 1);
        return TRUE;
    case TVD_MSG_CREDENTIAL_RESPONSE:
        msg->u.credential_response.secret = child_bytes(body, 0);
        return TRUE;
    case TVD_MSG_ATTEST_REQUEST: {
        TvdMsgAttestRequest *m = &msg->u.attest_request;
        g_autoptr(GVariant) nonce = g_variant_get_child_value(body, 0);
        g_autoptr(GVariant) paths = g_variant_get_child_value(body, 5);
        gsize n = g_variant_n_children(paths);

        if (g_variant_get_size(nonce) != TVD_MSG_NONCE_LEN) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_SIZE,
                        "ATTEST_REQUEST.nonce: %" G_GSIZE_FORMAT
                        " bytes, must be %u", g_variant_get_size(nonce),
                        TVD_MSG_NONCE_LEN);
            return FALSE;
        }
        memcpy(m->nonce, g_variant_get_data(nonce), TVD_MSG_NONCE_LEN);
        g_variant_get_child(body, 1, "q", &m->pcr_bank);
        g_variant_get_child(body, 2, "u", &m->pcr_select);
        g_variant_get_child(body, 3, "t", &m->ima_offset);
        g_variant_get_child(body, 4, "t", &m->agent_offset);
        if (n > TVD_MSG_PATHS_MAX) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_COUNT,
                        "ATTEST_REQUEST.paths: %" G_GSIZE_FORMAT
                        " paths, at most %u", n, TVD_MSG_PATHS_MAX);
            return FALSE;
        }
        m->paths = g_variant_dup_strv(paths, NULL);
        return TRUE;
    }
    case TVD_MSG_EVIDENCE: {
        TvdMsgEvidence *m = &msg->u.evidence;
        g_autoptr(GVariant) pcrs = g_variant_get_child_value(body, 3);
        g_autoptr(GVariant) logs = g_variant_get_child_value(body, 4);
        gsize n_pcrs = g_variant_n_children(pcrs);
        gsize n_logs = g_variant_n_children(logs);
        gsize i;

        m->attest = child_bytes(body, 0);
        m->signature = child_bytes(body, 1);
        g_variant_get_child(body, 2, "q", &m->pcr_bank);
        if (n_pcrs > TVD_MSG_PCR_COUNT) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_COUNT,
                        "EVIDENCE.pcrs: %" G_GSIZE_FORMAT
                        " values, allowed 1..%u", n_pcrs, TVD_MSG_PCR_COUNT);
            return FALSE;
        }
        for (i = 0; i < n_pcrs; i++) {
            g_autoptr(GVariant) pv = g_variant_get_child_value(pcrs, i);

            g_variant_get_child(pv, 0, "y", &m->pcrs[i].index);
            m->pcrs[i].digest = child_bytes(pv, 1);
            m->n_pcrs++;
        }
        if (n_logs > TVD_MSG_LOGS_MAX) {
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_FIELD_COUNT,
                        "EVIDENCE.logs: %" G_GSIZE_FORMAT
                        " chunks, at most %u", n_logs, TVD_MSG_LOGS_MAX);
            return FALSE;
        }
        for (i = 0; i < n_logs; i++) {
            g_autoptr(GVariant) lv = g_variant_get_child_value(logs, i);
            g_autofree char *field =
                g_strdup_printf("EVIDENCE.logs[%" G_GSIZE_FORMAT "]", i);

            m->n_logs++;
            if (!take_log_chunk(field, lv, &m->logs[i], error)) {
                return FALSE;
            }
        }
        return TRUE;
    }
    case TVD_MSG_LOG_CHUNK:
        return take_log_chunk("LOG_CHUNK", body, &msg->u.log_chunk, error);
    case TVD_MSG_MEMBERSHIP: {
        TvdMsgMembership *m = &msg->u.membership;

        g_variant_get(body, "(uusuu)", &m->state, &m->reason,
                      &m->reason_text, &m->epoch, &m->deadline_s);
        return TRUE;
    }
    case TVD_MSG_ERROR_REPORT: {
        TvdMsgErrorReport *m = &msg->u.error_report;

        g_variant_get(body, "(uqs)", &m->code, &m->ref_type, &m->text);
        return TRUE;
    }
    default:
        g_assert_not_reached();
    }
}

gboolean tvd_msg_decode(GBytes *payload, TvdMsg *msg, GError **error)
{
    g_autoptr(GVariant) env = NULL;
    g_autoptr(GVariant) body = NULL;
    gsize size = g_bytes_get_size(payload);
    guint16 version, type;
    const char *body_type;

    memset(msg, 0, sizeof(*msg));
    if (size > TVD_MSG_SIZE_MAX) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_TOO_LARGE,
                    "message: %" G_GSIZE_FORMAT " bytes, at most %u", size,
                    TVD_MSG_SIZE_MAX);
        return FALSE;
    }
    env = g_variant_ref_sink(
        g_variant_new_from_bytes(G_VARIANT_TYPE(TVD_MSG_ENVELOPE_TYPE),
                                 payload, FALSE));
    if (!g_variant_is_normal_form(env)) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_NOT_NORMAL,
                    "message: not a " TVD_MSG_ENVELOPE_TYPE
                    " GVariant in normal form (%" G_GSIZE_FORMAT " bytes)",
                    size);
        return FALSE;
    }
    if (G_BYTE_ORDER == G_BIG_ENDIAN) {
        GVariant *swapped = g_variant_byteswap(env);

        g_variant_unref(env);
        env = swapped;
    }
    g_variant_get(env, "(qqv)", &version, &type, &body);
    if (version != TVD_MSG_PROTOCOL_VERSION) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_VERSION,
                    "message: protocol version %u, supported %u", version,
                    TVD_MSG_PROTOCOL_VERSION);
        return FALSE;
    }
    body_type = tvd_msg_body_type(type);
    if (!body_type) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_UNKNOWN_MESSAGE,
                    "message: type %u is not defined", type);
        return FALSE;
    }
    if (!g_variant_is_of_type(body, G_VARIANT_TYPE(body_type))) {
        g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_BAD_TYPE,
                    "%s: body of type %s, expected %s",
                    tvd_msg_type_name(type), g_variant_get_type_string(body),
                    body_type);
        return FALSE;
    }
    msg->type = type;
    if (!take_body(body, msg, error) || !check_msg(msg, error)) {
        tvd_msg_clear(msg);
        return FALSE;
    }
    return TRUE;
}

/* ---- Clearing ----------------------------------------------------------- */

void tvd_msg_agent_hello_clear(TvdMsgAgentHello *m)
{
    g_clear_pointer(&m->ek_cert, g_bytes_unref);
    g_clear_pointer(&m->ek_public, g_bytes_unref);
    g_clear_pointer(&m->ak_public, g_bytes_unref);
    g_clear_pointer(&m->ak_name, g_bytes_unref);
    memset(m, 0, sizeof(*m));
}

void tvd_msg_credential_challenge_clear(TvdMsgCredentialChallenge *m)
{
    g_clear_pointer(&m->credential_blob, g_bytes_unref);
    g_clear_pointer(&m->encrypted_secret, g_bytes_unref);
}

void tvd_msg_credential_response_clear(TvdMsgCredentialResponse *m)
{
    g_clear_pointer(&m->secret, g_bytes_unref);
}

void tvd_msg_attest_request_clear(TvdMsgAttestRequest *m)
{
    g_clear_pointer(&m->paths, g_strfreev);
    memset(m, 0, sizeof(*m));
}

void tvd_msg_log_chunk_clear(TvdMsgLogChunk *m)
{
    g_clear_pointer(&m->entries, g_ptr_array_unref);
    memset(m, 0, sizeof(*m));
}

void tvd_msg_evidence_clear(TvdMsgEvidence *m)
{
    guint i;

    g_clear_pointer(&m->attest, g_bytes_unref);
    g_clear_pointer(&m->signature, g_bytes_unref);
    for (i = 0; i < m->n_pcrs && i < TVD_MSG_PCR_COUNT; i++) {
        g_clear_pointer(&m->pcrs[i].digest, g_bytes_unref);
    }
    for (i = 0; i < m->n_logs && i < TVD_MSG_LOGS_MAX; i++) {
        tvd_msg_log_chunk_clear(&m->logs[i]);
    }
    memset(m, 0, sizeof(*m));
}

void tvd_msg_membership_clear(TvdMsgMembership *m)
{
    g_clear_pointer(&m->reason_text, g_free);
    memset(m, 0, sizeof(*m));
}

void tvd_msg_error_report_clear(TvdMsgErrorReport *m)
{
    g_clear_pointer(&m->text, g_free);
    memset(m, 0, sizeof(*m));
}

void tvd_msg_clear(TvdMsg *msg)
{
    switch (msg->type) {
    case TVD_MSG_AGENT_HELLO:
        tvd_msg_agent_hello_clear(&msg->u.agent_hello);
        break;
    case TVD_MSG_CREDENTIAL_CHALLENGE:
        tvd_msg_credential_challenge_clear(&msg->u.credential_challenge);
        break;
    case TVD_MSG_CREDENTIAL_RESPONSE:
        tvd_msg_credential_response_clear(&msg->u.credential_response);
        break;
    case TVD_MSG_ATTEST_REQUEST:
        tvd_msg_attest_request_clear(&msg->u.attest_request);
        break;
    case TVD_MSG_EVIDENCE:
        tvd_msg_evidence_clear(&msg->u.evidence);
        break;
    case TVD_MSG_LOG_CHUNK:
        tvd_msg_log_chunk_clear(&msg->u.log_chunk);
        break;
    case TVD_MSG_MEMBERSHIP:
        tvd_msg_membership_clear(&msg->u.membership);
        break;
    case TVD_MSG_ERROR_REPORT:
        tvd_msg_error_report_clear(&msg->u.error_report);
        break;
    default:
        break;
    }
    memset(msg, 0, sizeof(*msg));
}

/* ---- Typed wrappers --------------------------------------------------------- */

/*
 * The typed encoder copies the body struct into a TvdMsg by value (it only
 * reads it); the typed decoder moves the decoded body out of the TvdMsg.
 */
#define TVD_MSG_DEFINE(Name, name, TYPE)                                    \
    GBytes *tvd_msg_##name##_encode(const TvdMsg##Name *m, GError **error)  \
    {                                                                       \
        TvdMsg msg = { .type = TYPE };                                      \
                                                                            \
        msg.u.name = *m;                                                    \
        return tvd_msg_encode(&msg, error);                                 \
    }                                                                       \
                                                                            \
    gboolean tvd_msg_##name##_decode(GBytes *payload, TvdMsg##Name *m,     \
                                     GError **error)                        \
    {                                                                       \
        TvdMsg msg;                                                         \
                                                                            \
        memset(m, 0, sizeof(*m));                                           \
        if (!tvd_msg_decode(payload, &msg, error)) {                        \
            return FALSE;                                                   \
        }                                                                   \
        if (msg.type != TYPE) {                                             \
            g_set_error(error, TVD_MSG_ERROR, TVD_MSG_ERROR_UNEXPECTED,     \
                        "message: got %s, expected %s",                     \
                        tvd_msg_type_name(msg.type),                        \
                        tvd_msg_type_name(TYPE));                           \
            tvd_msg_clear(&msg);                                            \
            return FALSE;                                                   \
        }                                                                   \
        *m = msg.u.name;                                                    \
        return TRUE;                                                        \
    }

TVD_MSG_DEFINE(AgentHello, agent_hello, TVD_MSG_AGENT_HELLO)
TVD_MSG_DEFINE(CredentialChallenge, credential_challenge,
               TVD_MSG_CREDENTIAL_CHALLENGE)
TVD_MSG_DEFINE(CredentialResponse, credential_response,
               TVD_MSG_CREDENTIAL_RESPONSE)
TVD_MSG_DEFINE(AttestRequest, attest_request, TVD_MSG_ATTEST_REQUEST)
TVD_MSG_DEFINE(Evidence, evidence, TVD_MSG_EVIDENCE)
TVD_MSG_DEFINE(LogChunk, log_chunk, TVD_MSG_LOG_CHUNK)
TVD_MSG_DEFINE(Membership, membership, TVD_MSG_MEMBERSHIP)
TVD_MSG_DEFINE(ErrorReport, error_report, TVD_MSG_ERROR_REPORT)
