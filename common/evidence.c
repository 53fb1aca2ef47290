/*
 * Evidence framing shared by the agent and the verifier: see evidence.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "evidence.h"

#include <string.h>

TvdImaRecordStatus tvd_ima_record_frame(const guint8 *p, gsize avail,
                                        gsize digest_len, guint32 name_max,
                                        guint32 data_max,
                                        TvdImaRecordView *out)
{
    gsize off;

    memset(out, 0, sizeof(*out));
    /* pcr, digest, name length */
    if (avail < 4 + digest_len + 4) {
        return TVD_IMA_RECORD_TRUNCATED;
    }
    out->pcr = tvd_get_le32(p);
    out->digest = p + 4;
    out->name_len = tvd_get_le32(p + 4 + digest_len);
    off = 4 + digest_len + 4;
    if (out->name_len > name_max) {
        return TVD_IMA_RECORD_NAME_TOO_LONG;
    }
    if (avail - off < (gsize)out->name_len + 4) {
        return TVD_IMA_RECORD_TRUNCATED;
    }
    out->name = p + off;
    off += out->name_len;
    out->data_len = tvd_get_le32(p + off);
    off += 4;
    if (out->data_len > data_max) {
        return TVD_IMA_RECORD_DATA_TOO_LONG;
    }
    if (avail - off < out->data_len) {
        return TVD_IMA_RECORD_TRUNCATED;
    }
    out->data = p + off;
    out->length = off + out->data_len;
    return TVD_IMA_RECORD_OK;
}

void tvd_ima_ng_data_append(GByteArray *data, const char *algo,
                            const guint8 *digest, gsize digest_len,
                            const char *path)
{
    gsize alen = strlen(algo), plen = strlen(path) + 1;

    tvd_append_le32(data, (guint32)(alen + 2 + digest_len));
    g_byte_array_append(data, (const guint8 *)algo, (guint)alen);
    g_byte_array_append(data, (const guint8 *)":", 2);     /* ':' and NUL */
    g_byte_array_append(data, digest, (guint)digest_len);
    tvd_append_le32(data, (guint32)plen);
    g_byte_array_append(data, (const guint8 *)path, (guint)plen);
}

GBytes *tvd_ima_record_encode(guint32 pcr, const guint8 *digest,
                              gsize digest_len, const char *name,
                              const guint8 *data, gsize data_len)
{
    GByteArray *rec = g_byte_array_sized_new(
        (guint)(4 + digest_len + 4 + strlen(name) + 4 + data_len));

    tvd_append_le32(rec, pcr);
    g_byte_array_append(rec, digest, (guint)digest_len);
    tvd_append_le32(rec, (guint32)strlen(name));
    g_byte_array_append(rec, (const guint8 *)name, (guint)strlen(name));
    tvd_append_le32(rec, (guint32)data_len);
    g_byte_array_append(rec, data, (guint)data_len);
    return g_byte_array_free_to_bytes(rec);
}
