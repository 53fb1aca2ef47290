/*
 * tvd verifier: the Linux IMA binary runtime measurement log and its replay.
 *
 * One record of binary_runtime_measurements (integers in the guest's byte
 * order: little-endian for the x86_64 and arm64 guests tvd runs; the
 * framing is common/evidence.h):
 *
 *   u32 pcr | template digest | u32 name_len | char name[name_len]
 *   | u32 data_len | u8 data[data_len]
 *
 * The template digest is SHA-1 of data (20 bytes) in the classic log; in
 * the per-bank logs of recent kernels (binary_runtime_measurements_<hash>)
 * it has the bank's size and is H_bank(data), or the SHA-1 zero-padded
 * when the kernel has no implementation of that hash. Data is a sequence
 * of fields, each u32 len || bytes, as the template names them: d-ng
 * ("<algo>:" NUL digest) or d-ngv2 ("<ima|verity>:<algo>:" NUL digest),
 * n-ng (path or event name with its NUL), then sig, buf, or the modsig and
 * EVM fields. A violation is logged with an all-zero template digest and
 * extended as all-0xff. The kernel extends the SHA-1 bank with the template
 * hash and every other bank with H_bank(data) (ima_calc_field_array_hash,
 * Linux 5.8 and later) or, without that hash, the padded SHA-1; the tvd
 * agent does the same for its own list.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"
#include "evidence.h"

#include <string.h>
#include <openssl/crypto.h>

void
tvd_ima_entry_free(TvdImaEntry *entry)
{
    if (!entry) {
        return;
    }
    g_clear_pointer(&entry->template_data, g_bytes_unref);
    g_clear_pointer(&entry->sig, g_bytes_unref);
    g_clear_pointer(&entry->buf, g_bytes_unref);
    g_free(entry->path);
    g_free(entry);
}

typedef enum { PARSE_OK, PARSE_MORE, PARSE_ERROR } ParseResult;

static ParseResult
fail(GError **error, int code, const char *what, gsize off)
{
    g_set_error(error, TVD_VERIFY_ERROR, code, "IMA record at byte %zu: %s",
                off, what);
    return PARSE_ERROR;
}

/* What a template field is to the verifier. */
typedef enum {
    FIELD_D_NG,         /* "<algo>:" NUL digest */
    FIELD_D_NGV2,       /* "<type>:<algo>:" NUL digest (type ima or verity) */
    FIELD_N_NG,         /* path or event name, NUL-terminated */
    FIELD_SIG,          /* the file's signature, may be empty */
    FIELD_BUF,          /* the measured buffer, may be empty */
    FIELD_OPAQUE,       /* kept in the template data, not interpreted */
} FieldKind;

#define TEMPLATE_FIELDS_MAX 9u

/* The kernel's built-in templates (ima_template.c) that carry a d-ng or
 * d-ngv2 file digest and an n-ng name; "ima" (legacy 'd|n') hashes
 * differently and is refused. */
static const struct {
    const char *name;
    guint n_fields;
    FieldKind fields[TEMPLATE_FIELDS_MAX];
} templates[] = {
    { "ima-ng", 2, { FIELD_D_NG, FIELD_N_NG } },
    { "ima-sig", 3, { FIELD_D_NG, FIELD_N_NG, FIELD_SIG } },
    { "ima-buf", 3, { FIELD_D_NG, FIELD_N_NG, FIELD_BUF } },
    { "ima-ngv2", 2, { FIELD_D_NGV2, FIELD_N_NG } },
    { "ima-sigv2", 3, { FIELD_D_NGV2, FIELD_N_NG, FIELD_SIG } },
    /* d-ng|n-ng|sig|d-modsig|modsig */
    { "ima-modsig", 5, { FIELD_D_NG, FIELD_N_NG, FIELD_SIG, FIELD_OPAQUE,
                         FIELD_OPAQUE } },
    /* d-ng|n-ng|evmsig|xattrnames|xattrlengths|xattrvalues|iuid|igid|imode */
    { "evm-sig", 9, { FIELD_D_NG, FIELD_N_NG, FIELD_OPAQUE, FIELD_OPAQUE,
                      FIELD_OPAQUE, FIELD_OPAQUE, FIELD_OPAQUE, FIELD_OPAQUE,
                      FIELD_OPAQUE } },
};

/* A name of letters, digits, '-' and '_' of 1..@max - 1 bytes. */
static gboolean
copy_token(const guint8 *p, gsize len, char *out, gsize max)
{
    if (len == 0 || len >= max) {
        return FALSE;
    }
    for (gsize i = 0; i < len; i++) {
        if (!g_ascii_isalnum(p[i]) && p[i] != '-' && p[i] != '_') {
            return FALSE;
        }
    }
    memcpy(out, p, len);
    out[len] = '\0';
    return TRUE;
}

/* d-ng ("sha256:" NUL digest) or d-ngv2 ("ima:sha256:" NUL digest). */
static gboolean
parse_digest_field(TvdImaEntry *e, const guint8 *p, guint32 flen, gboolean v2)
{
    const guint8 *nul = memchr(p, 0, flen);
    const guint8 *alg = p;
    gsize head;

    if (!nul || nul == p || nul[-1] != ':') {
        return FALSE;
    }
    head = (gsize)(nul - p) - 1;            /* without the last ':' */
    if (v2) {
        const guint8 *colon = memchr(p, ':', head);

        if (!colon || !copy_token(p, (gsize)(colon - p), e->digest_type,
                                  sizeof(e->digest_type)) ||
            (strcmp(e->digest_type, "ima") != 0 &&
             strcmp(e->digest_type, "verity") != 0)) {
            return FALSE;
        }
        alg = colon + 1;
        head -= (gsize)(alg - p);
    } else {
        memcpy(e->digest_type, "ima", 4);
    }
    if (!copy_token(alg, head, e->digest_alg, sizeof(e->digest_alg))) {
        return FALSE;
    }
    e->digest_len = flen - (gsize)(nul - p) - 1;
    if (e->digest_len == 0 || e->digest_len > sizeof(e->digest)) {
        return FALSE;
    }
    memcpy(e->digest, nul + 1, e->digest_len);
    return TRUE;
}

/* The fields of the template data, as the template names them. */
static gboolean
parse_fields(TvdImaEntry *e, guint t, const guint8 *d, gsize len,
             const TvdImaLimits *limits, GError **error)
{
    gsize off = 0;

    for (guint f = 0; f < templates[t].n_fields; f++) {
        guint32 flen;
        const guint8 *p;

        if (len < off || len - off < 4) {
            goto malformed;
        }
        flen = tvd_get_le32(d + off);
        off += 4;
        if (len - off < flen) {
            goto malformed;
        }
        p = d + off;
        off += flen;
        switch (templates[t].fields[f]) {
        case FIELD_D_NG:
        case FIELD_D_NGV2:
            if (!parse_digest_field(e, p, flen,
                                    templates[t].fields[f] == FIELD_D_NGV2)) {
                goto malformed;
            }
            break;
        case FIELD_N_NG:
            /* path with its NUL, none inside */
            if (flen == 0 || flen > limits->max_path_len) {
                g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_LIMIT,
                            "IMA path of %u bytes (1..%u)", flen,
                            limits->max_path_len);
                return FALSE;
            }
            if (p[flen - 1] != 0 || memchr(p, 0, flen - 1)) {
                goto malformed;
            }
            e->path = g_strndup((const char *)p, flen - 1);
            break;
        case FIELD_SIG:
            e->sig = flen ? g_bytes_new(p, flen) : NULL;
            break;
        case FIELD_BUF:
            e->buf = flen ? g_bytes_new(p, flen) : NULL;
            break;
        case FIELD_OPAQUE:
            break;
        }
    }
    if (off != len) {
        goto malformed;
    }
    return TRUE;

malformed:
    g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_MALFORMED,
                "IMA template data of %s does not parse", e->template_name);
    return FALSE;
}

/*
 * Checks the record's template digest against its data: the SHA-1 log
 * holds SHA-1(data); a per-bank log holds H_bank(data), or, from a kernel
 * that has no implementation of the bank's hash, SHA-1(data) zero-padded
 * to the bank's size (ima_calc_field_array_hash). All zero: a violation.
 */
static ParseResult
check_template_digest(TvdImaEntry *e, const guint8 *data, gsize data_len,
                      gsize start, GError **error)
{
    guint8 h[64];
    gboolean zero = TRUE;

    for (gsize i = 0; i < e->template_digest_len; i++) {
        zero = zero && e->template_digest[i] == 0;
    }
    e->violation = zero;
    if (zero) {
        return PARSE_OK;                /* template_hash stays zero */
    }
    if (!tvd_hash(TPM2_ALG_SHA1, data, data_len, NULL, 0, e->template_hash,
                  error)) {
        return PARSE_ERROR;
    }
    if (e->template_alg == TPM2_ALG_SHA1) {
        if (memcmp(e->template_hash, e->template_digest,
                   TVD_IMA_SHA1_LEN) != 0) {
            return fail(error, TVD_VERIFY_ERROR_LOG_TEMPLATE_HASH,
                        "template hash is not SHA-1 of the template data",
                        start);
        }
        return PARSE_OK;
    }
    if (!tvd_hash(e->template_alg, data, data_len, NULL, 0, h, error)) {
        return PARSE_ERROR;
    }
    if (memcmp(h, e->template_digest, e->template_digest_len) == 0) {
        return PARSE_OK;
    }
    memset(h, 0, sizeof(h));
    memcpy(h, e->template_hash, TVD_IMA_SHA1_LEN);
    if (memcmp(h, e->template_digest, e->template_digest_len) == 0) {
        e->template_sha1_padded = TRUE;
        return PARSE_OK;
    }
    return fail(error, TVD_VERIFY_ERROR_LOG_TEMPLATE_HASH,
                "template digest is neither the bank's hash nor the padded "
                "SHA-1 of the template data", start);
}

static ParseResult
parse_one(TPM2_ALG_ID template_alg, const guint8 *buf, gsize len, gsize *poff,
          const TvdImaLimits *limits, TvdImaEntry **out, GError **error)
{
    g_autoptr(TvdImaEntry) e = g_new0(TvdImaEntry, 1);
    gsize start = *poff;
    gsize hlen = tvd_tpm_hash_size(template_alg);
    guint32 name_max = MIN(limits->max_name_len, TVD_IMA_TEMPLATE_NAME_MAX);
    TvdImaRecordView v;
    const guint8 *data;
    guint32 name_len, data_len;
    guint t;
    ParseResult r;

    if (len < start) {
        return PARSE_MORE;
    }
    switch (tvd_ima_record_frame(buf + start, len - start, hlen, name_max,
                                 limits->max_data_len, &v)) {
    case TVD_IMA_RECORD_TRUNCATED:
        return PARSE_MORE;
    case TVD_IMA_RECORD_NAME_TOO_LONG:
        return fail(error, TVD_VERIFY_ERROR_LOG_LIMIT,
                    "template name length out of bounds", start);
    case TVD_IMA_RECORD_DATA_TOO_LONG:
        return fail(error, TVD_VERIFY_ERROR_LOG_LIMIT,
                    "template data longer than the cap", start);
    case TVD_IMA_RECORD_OK:
        break;
    }
    e->pcr = v.pcr;
    e->template_alg = template_alg;
    e->template_digest_len = hlen;
    memcpy(e->template_digest, v.digest, hlen);
    name_len = v.name_len;
    data_len = v.data_len;
    data = v.data;
    if (e->pcr > 23) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED, "PCR above 23",
                    start);
    }
    if (name_len == 0) {
        return fail(error, TVD_VERIFY_ERROR_LOG_LIMIT,
                    "template name length out of bounds", start);
    }
    memcpy(e->template_name, v.name, name_len);
    e->template_name[name_len] = '\0';

    if (strlen(e->template_name) != name_len) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED,
                    "NUL in template name", start);
    }
    for (t = 0; t < G_N_ELEMENTS(templates); t++) {
        if (strcmp(e->template_name, templates[t].name) == 0) {
            break;
        }
    }
    if (t == G_N_ELEMENTS(templates)) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED,
                    "template is not ima-ng, ima-sig, ima-buf, ima-ngv2, "
                    "ima-sigv2, ima-modsig or evm-sig", start);
    }
    if (!parse_fields(e, t, data, data_len, limits, error)) {
        return PARSE_ERROR;
    }
    e->template_data = g_bytes_new(data, data_len);
    r = check_template_digest(e, data, data_len, start, error);
    if (r != PARSE_OK) {
        return r;
    }
    *poff = start + v.length;
    *out = g_steal_pointer(&e);
    return PARSE_OK;
}

/* A log of SHA-1 template hashes, or of the hash of a supported bank. */
static gboolean
check_template_alg(TPM2_ALG_ID alg, GError **error)
{
    if (!tvd_tpm_hash_size(alg)) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "IMA log of template hash 0x%04x", alg);
        return FALSE;
    }
    return TRUE;
}

TvdImaEntry *
tvd_ima_entry_parse(const guint8 *buf, gsize len, const TvdImaLimits *limits,
                    GError **error)
{
    return tvd_ima_entry_parse_bank(TPM2_ALG_SHA1, buf, len, limits, error);
}

TvdImaEntry *
tvd_ima_entry_parse_bank(TPM2_ALG_ID template_alg, const guint8 *buf,
                         gsize len, const TvdImaLimits *limits,
                         GError **error)
{
    static const TvdImaLimits defaults = TVD_IMA_LIMITS_DEFAULT;
    TvdImaEntry *e = NULL;
    gsize off = 0;

    if (!check_template_alg(template_alg, error)) {
        return NULL;
    }
    switch (parse_one(template_alg, buf, len, &off,
                      limits ? limits : &defaults, &e, error)) {
    case PARSE_OK:
        if (off == len) {
            return e;
        }
        tvd_ima_entry_free(e);
        fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED,
             "bytes after the record", off);
        return NULL;
    case PARSE_MORE:
        fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED, "record truncated", 0);
        return NULL;
    default:
        return NULL;
    }
}

gboolean
tvd_ima_log_parse(const guint8 *buf, gsize len, const TvdImaLimits *limits,
                  gboolean allow_partial, GPtrArray *entries, gsize *consumed,
                  GError **error)
{
    return tvd_ima_log_parse_bank(TPM2_ALG_SHA1, buf, len, limits,
                                  allow_partial, entries, consumed, error);
}

gboolean
tvd_ima_log_parse_bank(TPM2_ALG_ID template_alg, const guint8 *buf, gsize len,
                       const TvdImaLimits *limits, gboolean allow_partial,
                       GPtrArray *entries, gsize *consumed, GError **error)
{
    static const TvdImaLimits defaults = TVD_IMA_LIMITS_DEFAULT;
    g_autoptr(GPtrArray) parsed =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    gsize off = 0;

    if (!check_template_alg(template_alg, error)) {
        return FALSE;
    }
    if (!limits) {
        limits = &defaults;
    }
    while (off < len) {
        TvdImaEntry *e = NULL;
        ParseResult r;

        if (parsed->len >= limits->max_entries) {
            if (allow_partial) {
                break;
            }
            g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_LIMIT,
                        "more than %u IMA records", limits->max_entries);
            return FALSE;
        }
        r = parse_one(template_alg, buf, len, &off, limits, &e, error);
        if (r == PARSE_ERROR) {
            return FALSE;
        }
        if (r == PARSE_MORE) {
            if (allow_partial) {
                break;
            }
            fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED, "record truncated",
                 off);
            return FALSE;
        }
        g_ptr_array_add(parsed, e);
    }
    /* Success: hand the records over in order. */
    g_ptr_array_set_free_func(parsed, NULL);
    for (guint i = 0; i < parsed->len; i++) {
        g_ptr_array_add(entries, g_ptr_array_index(parsed, i));
    }
    if (consumed) {
        *consumed = off;
    }
    return TRUE;
}

gboolean
tvd_ima_boot_aggregate(TPM2_ALG_ID bank, const guint8 *pcrs, gsize pcrs_len,
                       guint8 *out, GError **error)
{
    gsize size = tvd_tpm_hash_size(bank);

    if (!size || pcrs_len != 10 * size) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                    "boot aggregate needs PCR 0..9 of bank 0x%04x", bank);
        return FALSE;
    }
    /* ima_calc_boot_aggregate_tfm: PCR 0-7, and 8-9 for non-SHA-1 banks. */
    return tvd_hash(bank, pcrs, (bank == TPM2_ALG_SHA1 ? 8 : 10) * size, NULL,
                    0, out, error);
}

struct TvdImaReplay {
    TPM2_ALG_ID bank;
    gsize size;
    guint pcr;
    guint64 count;
    TvdImaExtendRule rule;
    guint8 value[64];
};

TvdImaReplay *
tvd_ima_replay_new(TPM2_ALG_ID bank, guint pcr, GError **error)
{
    TvdImaReplay *r;

    if (!tvd_tpm_hash_size(bank) || pcr > 23) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "replay of PCR %u of bank 0x%04x not supported", pcr, bank);
        return NULL;
    }
    r = g_new0(TvdImaReplay, 1);
    r->bank = bank;
    r->size = tvd_tpm_hash_size(bank);
    r->pcr = pcr;
    r->rule = TVD_IMA_EXTEND_AUTO;
    return r;
}

TvdImaReplay *
tvd_ima_replay_copy(const TvdImaReplay *replay)
{
    return g_memdup2(replay, sizeof(*replay));
}

void
tvd_ima_replay_free(TvdImaReplay *replay)
{
    g_free(replay);
}

guint64
tvd_ima_replay_count(const TvdImaReplay *replay)
{
    return replay->count;
}

const guint8 *
tvd_ima_replay_value(const TvdImaReplay *replay, gsize *len)
{
    *len = replay->size;
    return replay->value;
}

TPM2_ALG_ID
tvd_ima_replay_bank(const TvdImaReplay *replay)
{
    return replay->bank;
}

guint
tvd_ima_replay_pcr(const TvdImaReplay *replay)
{
    return replay->pcr;
}

void
tvd_ima_replay_set_rule(TvdImaReplay *replay, TvdImaExtendRule rule)
{
    replay->rule = rule;
}

TvdImaExtendRule
tvd_ima_replay_rule(const TvdImaReplay *replay)
{
    return replay->rule;
}

/* What the kernel extended into @bank for @e, by @rule. */
static gboolean
extend_value(const TvdImaEntry *e, TPM2_ALG_ID bank, gsize size,
             TvdImaExtendRule rule, guint8 *m, GError **error)
{
    gsize dlen;
    const guint8 *d;

    if (e->violation) {
        memset(m, 0xff, size);          /* ima_init_digests */
        return TRUE;
    }
    if (e->template_alg == bank) {
        memcpy(m, e->template_digest, size);   /* checked when parsed */
        return TRUE;
    }
    if (bank == TPM2_ALG_SHA1 || rule == TVD_IMA_EXTEND_SHA1_PADDED) {
        memset(m, 0, size);
        memcpy(m, e->template_hash, TVD_IMA_SHA1_LEN);
        return TRUE;
    }
    d = g_bytes_get_data(e->template_data, &dlen);
    return tvd_hash(bank, d, dlen, NULL, 0, m, error);
}

/* The shortest prefix of @entries after which the PCR is @quoted, with
 * @rule; -1 if none (or an error is set). */
static gssize
replay_prefix(const TvdImaReplay *replay, TvdImaExtendRule rule,
              GPtrArray *entries, const guint8 *quoted, guint8 *value,
              GError **error)
{
    guint n = entries ? entries->len : 0;
    guint8 m[64];

    memcpy(value, replay->value, sizeof(replay->value));
    for (guint i = 0; i <= n; i++) {
        const TvdImaEntry *e;

        if (memcmp(value, quoted, replay->size) == 0) {
            return (gssize)i;
        }
        if (i == n) {
            break;
        }
        e = g_ptr_array_index(entries, i);
        if (e->pcr != replay->pcr) {
            continue;
        }
        if (!extend_value(e, replay->bank, replay->size, rule, m, error) ||
            !tvd_hash(replay->bank, value, replay->size, m, replay->size,
                      value, error)) {
            return -1;
        }
    }
    return -1;
}

gboolean
tvd_ima_replay_match(TvdImaReplay *replay, guint64 offset, GPtrArray *entries,
                     const guint8 *quoted, gsize quoted_len, guint *used,
                     GError **error)
{
    guint8 value[64];
    guint n = entries ? entries->len : 0;
    TvdImaExtendRule rule = replay->rule == TVD_IMA_EXTEND_AUTO
                            ? TVD_IMA_EXTEND_BANK_HASH : replay->rule;
    GError *local = NULL;
    gssize got;

    if (offset != replay->count) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_OFFSET,
                    "entries start at %" G_GUINT64_FORMAT ", the replay is at "
                    "%" G_GUINT64_FORMAT, offset, replay->count);
        return FALSE;
    }
    if (quoted_len != replay->size) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_PCR_VALUES,
                    "quoted PCR of %zu bytes for a %zu-byte bank", quoted_len,
                    replay->size);
        return FALSE;
    }
    got = replay_prefix(replay, rule, entries, quoted, value, &local);
    /* Not decided yet: a kernel without the bank's hash (padded SHA-1). */
    if (got < 0 && !local && replay->rule == TVD_IMA_EXTEND_AUTO &&
        replay->bank != TPM2_ALG_SHA1) {
        rule = TVD_IMA_EXTEND_SHA1_PADDED;
        got = replay_prefix(replay, rule, entries, quoted, value, &local);
    }
    if (local) {
        g_propagate_error(error, local);
        return FALSE;
    }
    if (got < 0) {
        g_set_error(error, TVD_VERIFY_ERROR,
                    TVD_VERIFY_ERROR_LOG_REPLAY_MISMATCH,
                    "replay of %u entries from %" G_GUINT64_FORMAT " does not "
                    "reach the quoted PCR %u", n, offset, replay->pcr);
        return FALSE;
    }
    memcpy(replay->value, value, sizeof(value));
    replay->count += (guint64)got;
    /* The first entry whose extension depends on the rule decides it. */
    for (gssize i = 0; i < got && replay->rule == TVD_IMA_EXTEND_AUTO; i++) {
        const TvdImaEntry *e = g_ptr_array_index(entries, (guint)i);

        if (e->pcr == replay->pcr && !e->violation &&
            e->template_alg != replay->bank &&
            replay->bank != TPM2_ALG_SHA1) {
            replay->rule = rule;
        }
    }
    if (used) {
        *used = (guint)got;
    }
    return TRUE;
}
