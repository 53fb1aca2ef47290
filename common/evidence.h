/*
 * What the agent writes and the verifier reads of TPM evidence, shared so
 * that both sides frame it the same way: little-endian integers and the
 * binary IMA measurement record (the kernel's binary_runtime_measurements
 * format, which the agent's own list uses too).
 *
 * One record, integers little-endian (the x86_64 and arm64 guests):
 *
 *   u32 pcr | template digest (20 bytes: SHA-1; a per-bank log: the bank's
 *   size) | u32 name_len | name | u32 data_len | data
 *
 * ima-ng template data: u32 len | "<algo>:" NUL digest (d-ng)
 *                       u32 len | path NUL          (n-ng)
 *
 * No hashing here: callers compute template digests with OpenSSL.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_COMMON_EVIDENCE_H
#define TVD_COMMON_EVIDENCE_H

#include <glib.h>

G_BEGIN_DECLS

#define TVD_IMA_RECORD_SHA1_LEN     20u     /* template hash of the SHA-1 log */
#define TVD_IMA_RECORD_DIGEST_MAX   64u     /* template digest of a per-bank log */

static inline guint32
tvd_get_le32(const guint8 *p)
{
    return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 |
           (guint32)p[3] << 24;
}

static inline void
tvd_append_le32(GByteArray *a, guint32 v)
{
    guint8 b[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16),
                    (guint8)(v >> 24) };

    g_byte_array_append(a, b, 4);
}

/* The header of one record at the start of @p (@avail bytes). */
typedef struct {
    guint32 pcr;
    const guint8 *digest;           /* @digest_len bytes */
    guint32 name_len;
    const guint8 *name;             /* not NUL-terminated */
    guint32 data_len;
    const guint8 *data;
    gsize length;                   /* of the whole record */
} TvdImaRecordView;

typedef enum {
    TVD_IMA_RECORD_OK,
    TVD_IMA_RECORD_TRUNCATED,       /* @avail ends inside the record */
    TVD_IMA_RECORD_NAME_TOO_LONG,   /* name_len above @name_max */
    TVD_IMA_RECORD_DATA_TOO_LONG,   /* data_len above @data_max */
} TvdImaRecordStatus;

/*
 * Frames the record at @p: header fields, where the name and the data are
 * and its whole length. The lengths are checked against the caps before
 * they are used, and against @avail without overflow. Nothing is copied.
 */
TvdImaRecordStatus tvd_ima_record_frame(const guint8 *p, gsize avail,
                                        gsize digest_len, guint32 name_max,
                                        guint32 data_max,
                                        TvdImaRecordView *out);

/* Appends ima-ng template data: d-ng ("@algo:" NUL @digest) and n-ng
 * (@path with its NUL). */
void tvd_ima_ng_data_append(GByteArray *data, const char *algo,
                            const guint8 *digest, gsize digest_len,
                            const char *path);

/* One record: @pcr, the template digest, template @name, @data. */
GBytes *tvd_ima_record_encode(guint32 pcr, const guint8 *digest,
                              gsize digest_len, const char *name,
                              const guint8 *data, gsize data_len);

G_END_DECLS

#endif /* TVD_COMMON_EVIDENCE_H */
