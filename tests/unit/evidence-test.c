/*
 * The evidence framing of common/ (evidence.h): one IMA record framed back
 * from its encoding, field by field, and every status a malformed or
 * oversized record gets, at every truncation.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>

#include "evidence.h"

static void test_roundtrip(void)
{
    static const guint8 digest[4] = { 0xde, 0xad, 0xbe, 0xef };
    guint8 th[20];
    g_autoptr(GByteArray) data = g_byte_array_new();
    g_autoptr(GBytes) rec = NULL;
    TvdImaRecordView v;
    const guint8 *p;
    gsize len;

    memset(th, 0x5a, sizeof(th));
    tvd_ima_ng_data_append(data, "sha256", digest, sizeof(digest), "/bin/sh");
    /* d-ng: u32 len | "sha256:" NUL | digest; n-ng: u32 len | path NUL */
    g_assert_cmpuint(data->len, ==, 4 + 8 + 4 + 4 + 8);
    g_assert_cmpuint(tvd_get_le32(data->data), ==, 12);
    g_assert_cmpmem(data->data + 4, 8, "sha256:\0", 8);
    g_assert_cmpmem(data->data + 12, 4, digest, 4);
    g_assert_cmpuint(tvd_get_le32(data->data + 16), ==, 8);
    g_assert_cmpstr((const char *)data->data + 20, ==, "/bin/sh");

    rec = tvd_ima_record_encode(10, th, sizeof(th), "ima-ng", data->data,
                                data->len);
    p = g_bytes_get_data(rec, &len);
    g_assert_cmpuint(len, ==, 4 + 20 + 4 + 6 + 4 + data->len);
    g_assert_cmpint(tvd_ima_record_frame(p, len, 20, 255, 8192, &v), ==,
                    TVD_IMA_RECORD_OK);
    g_assert_cmpuint(v.pcr, ==, 10);
    g_assert_cmpmem(v.digest, 20, th, 20);
    g_assert_cmpmem(v.name, v.name_len, "ima-ng", 6);
    g_assert_cmpmem(v.data, v.data_len, data->data, data->len);
    g_assert_cmpuint(v.length, ==, len);

    /* every truncation is TRUNCATED, never a read past the end */
    for (gsize n = 0; n < len; n++) {
        g_autofree guint8 *cut = g_memdup2(p, n);

        g_assert_cmpint(tvd_ima_record_frame(cut, n, 20, 255, 8192, &v), ==,
                        TVD_IMA_RECORD_TRUNCATED);
    }
    /* caps, checked before the lengths are used */
    g_assert_cmpint(tvd_ima_record_frame(p, len, 20, 5, 8192, &v), ==,
                    TVD_IMA_RECORD_NAME_TOO_LONG);
    g_assert_cmpint(tvd_ima_record_frame(p, len, 20, 255, 10, &v), ==,
                    TVD_IMA_RECORD_DATA_TOO_LONG);
    /* read as a per-bank record of 32-byte digests, it does not frame */
    g_assert_cmpint(tvd_ima_record_frame(p, len, 32, 255, 8192, &v), !=,
                    TVD_IMA_RECORD_OK);
}

static void test_huge_lengths(void)
{
    guint8 rec[4 + 20 + 4 + 4];

    memset(rec, 0, sizeof(rec));
    memset(rec + 24, 0xff, 4);          /* name length 2^32 - 1 */
    g_assert_cmpint(tvd_ima_record_frame(rec, sizeof(rec), 20, G_MAXUINT32,
                                         G_MAXUINT32, &(TvdImaRecordView){ 0 }),
                    ==, TVD_IMA_RECORD_TRUNCATED);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/evidence/roundtrip", test_roundtrip);
    g_test_add_func("/evidence/huge-lengths", test_huge_lengths);
    return g_test_run();
}
