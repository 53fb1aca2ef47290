/*
 * tvd verifier: the Linux IMA binary runtime measurement log and its replay.
 *
 * One record of binary_runtime_measurements (integers in the guest's byte
 * order: little-endian for the x86_64 and arm64 guests tvd runs):
 *
 *   u32 pcr | u8 template_hash[20] | u32 name_len | char name[name_len]
 *   | u32 data_len | u8 data[data_len]
 *
 * For the ima-ng, ima-sig and ima-buf templates, data is a sequence of
 * fields, each u32 len || bytes: d-ng ("<algo>:" NUL digest), n-ng (path or
 * event name with its NUL) and, for ima-sig, sig (possibly empty), for
 * ima-buf, buf (the measured buffer, e.g. a kexec command line or a key). The template hash is SHA-1 over
 * data; a violation is logged with an all-zero template hash and extended
 * as all-0xff. The kernel extends the SHA-1 bank with the template hash and
 * every other bank with H_bank(data) (ima_calc_field_array_hash, Linux 5.8
 * and later); the tvd agent does the same for its own list.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

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

static guint32
get_le32(const guint8 *p)
{
    return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 |
           (guint32)p[3] << 24;
}

typedef enum { PARSE_OK, PARSE_MORE, PARSE_ERROR } ParseResult;

static ParseResult
fail(GError **error, int code, const char *what, gsize off)
{
    g_set_error(error, TVD_VERIFY_ERROR, code, "IMA record at byte %zu: %s",
                off, what);
    return PARSE_ERROR;
}

/* The fields of ima-ng / ima-sig / ima-buf template data. */
static gboolean
parse_fields(TvdImaEntry *e, const guint8 *d, gsize len, gboolean third,
             const TvdImaLimits *limits, GError **error)
{
    gsize off = 0, n_fields = third ? 3 : 2;

    for (gsize f = 0; f < n_fields; f++) {
        guint32 flen;
        const guint8 *p;

        if (len < off || len - off < 4) {
            goto malformed;
        }
        flen = get_le32(d + off);
        off += 4;
        if (len - off < flen) {
            goto malformed;
        }
        p = d + off;
        off += flen;
        if (f == 0) {
            /* d-ng: "<algo>:" NUL digest */
            const guint8 *nul = memchr(p, 0, flen);
            gsize alen;

            if (!nul || nul == p || nul[-1] != ':') {
                goto malformed;
            }
            alen = (gsize)(nul - p) - 1;
            if (alen == 0 || alen >= sizeof(e->digest_alg)) {
                goto malformed;
            }
            for (gsize i = 0; i < alen; i++) {
                if (!g_ascii_isalnum(p[i]) && p[i] != '-' && p[i] != '_') {
                    goto malformed;
                }
            }
            memcpy(e->digest_alg, p, alen);
            e->digest_alg[alen] = '\0';
            e->digest_len = flen - (gsize)(nul - p) - 1;
            if (e->digest_len == 0 || e->digest_len > sizeof(e->digest)) {
                goto malformed;
            }
            memcpy(e->digest, nul + 1, e->digest_len);
        } else if (f == 1) {
            /* n-ng: path with its NUL, none inside */
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
        } else if (flen > 0) {
            /* ima-sig: the file's signature; ima-buf: the buffer measured */
            if (strcmp(e->template_name, "ima-buf") == 0) {
                e->buf = g_bytes_new(p, flen);
            } else {
                e->sig = g_bytes_new(p, flen);
            }
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

static ParseResult
parse_one(const guint8 *buf, gsize len, gsize *poff,
          const TvdImaLimits *limits, TvdImaEntry **out, GError **error)
{
    g_autoptr(TvdImaEntry) e = g_new0(TvdImaEntry, 1);
    gsize off = *poff, start = *poff;
    guint32 name_len, data_len;
    static const guint8 zero[TVD_IMA_SHA1_LEN];
    guint8 sha1[TVD_IMA_SHA1_LEN];
    const guint8 *data;

    if (len < off || len - off < 4 + TVD_IMA_SHA1_LEN + 4) {
        return PARSE_MORE;
    }
    e->pcr = get_le32(buf + off);
    memcpy(e->template_hash, buf + off + 4, TVD_IMA_SHA1_LEN);
    name_len = get_le32(buf + off + 4 + TVD_IMA_SHA1_LEN);
    off += 4 + TVD_IMA_SHA1_LEN + 4;
    if (e->pcr > 23) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED, "PCR above 23",
                    start);
    }
    if (name_len == 0 || name_len > limits->max_name_len ||
        name_len > TVD_IMA_TEMPLATE_NAME_MAX) {
        return fail(error, TVD_VERIFY_ERROR_LOG_LIMIT,
                    "template name length out of bounds", start);
    }
    if (len - off < name_len + 4) {
        return PARSE_MORE;
    }
    memcpy(e->template_name, buf + off, name_len);
    e->template_name[name_len] = '\0';
    off += name_len;
    data_len = get_le32(buf + off);
    off += 4;
    if (data_len > limits->max_data_len) {
        return fail(error, TVD_VERIFY_ERROR_LOG_LIMIT,
                    "template data longer than the cap", start);
    }
    if (len - off < data_len) {
        return PARSE_MORE;
    }
    data = buf + off;
    off += data_len;

    if (strlen(e->template_name) != name_len) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED,
                    "NUL in template name", start);
    }
    if (strcmp(e->template_name, "ima-ng") != 0 &&
        strcmp(e->template_name, "ima-sig") != 0 &&
        strcmp(e->template_name, "ima-buf") != 0) {
        return fail(error, TVD_VERIFY_ERROR_LOG_MALFORMED,
                    "template is not ima-ng, ima-sig or ima-buf", start);
    }
    if (!parse_fields(e, data, data_len,
                      strcmp(e->template_name, "ima-ng") != 0, limits,
                      error)) {
        return PARSE_ERROR;
    }
    e->template_data = g_bytes_new(data, data_len);
    e->violation = memcmp(e->template_hash, zero, sizeof(zero)) == 0;
    if (!e->violation) {
        if (!tvd_hash(TPM2_ALG_SHA1, data, data_len, NULL, 0, sha1, error)) {
            return PARSE_ERROR;
        }
        if (memcmp(sha1, e->template_hash, sizeof(sha1)) != 0) {
            return fail(error, TVD_VERIFY_ERROR_LOG_TEMPLATE_HASH,
                        "template hash is not SHA-1 of the template data",
                        start);
        }
    }
    *poff = off;
    *out = g_steal_pointer(&e);
    return PARSE_OK;
}

TvdImaEntry *
tvd_ima_entry_parse(const guint8 *buf, gsize len, const TvdImaLimits *limits,
                    GError **error)
{
    static const TvdImaLimits defaults = TVD_IMA_LIMITS_DEFAULT;
    TvdImaEntry *e = NULL;
    gsize off = 0;

    switch (parse_one(buf, len, &off, limits ? limits : &defaults, &e,
                      error)) {
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
    static const TvdImaLimits defaults = TVD_IMA_LIMITS_DEFAULT;
    g_autoptr(GPtrArray) parsed =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    gsize off = 0;

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
        r = parse_one(buf, len, &off, limits, &e, error);
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
    return r;
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

gboolean
tvd_ima_replay_match(TvdImaReplay *replay, guint64 offset, GPtrArray *entries,
                     const guint8 *quoted, gsize quoted_len, guint *used,
                     GError **error)
{
    guint8 value[64], m[64];
    guint n = entries ? entries->len : 0;

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
    memcpy(value, replay->value, sizeof(value));
    for (guint i = 0; i <= n; i++) {
        const TvdImaEntry *e;

        if (memcmp(value, quoted, replay->size) == 0) {
            memcpy(replay->value, value, sizeof(value));
            replay->count += i;
            if (used) {
                *used = i;
            }
            return TRUE;
        }
        if (i == n) {
            break;
        }
        e = g_ptr_array_index(entries, i);
        if (e->pcr != replay->pcr) {
            continue;
        }
        if (e->violation) {
            memset(m, 0xff, replay->size);
        } else if (replay->bank == TPM2_ALG_SHA1) {
            memcpy(m, e->template_hash, TVD_IMA_SHA1_LEN);
        } else {
            gsize dlen;
            const guint8 *d = g_bytes_get_data(e->template_data, &dlen);

            if (!tvd_hash(replay->bank, d, dlen, NULL, 0, m, error)) {
                return FALSE;
            }
        }
        if (!tvd_hash(replay->bank, value, replay->size, m, replay->size,
                      value, error)) {
            return FALSE;
        }
    }
    g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_LOG_REPLAY_MISMATCH,
                "replay of %u entries from %" G_GUINT64_FORMAT " does not reach "
                "the quoted PCR %u", n, offset, replay->pcr);
    return FALSE;
}
