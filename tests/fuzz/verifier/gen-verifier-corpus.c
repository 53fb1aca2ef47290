/*
 * Writes seed inputs for the verifier's fuzz targets into DIR/<target>/:
 * synthetic quotes and signatures (RSA and ECC), TPM public areas of AKs
 * and EKs, and an IMA log with ima-ng records. Usage: gen-verifier-corpus DIR
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>
#include <glib.h>
#include <glib/gstdio.h>

#include "verifier.h"
#include "synth.h"
#include "evidence.h"

static void
seed(const char *dir, const char *target, const char *name, guint8 prefix,
     gboolean use_prefix, GBytes *b)
{
    g_autofree char *d = g_build_filename(dir, target, NULL);
    g_autofree char *p = g_build_filename(d, name, NULL);
    g_autoptr(GByteArray) a = g_byte_array_new();

    g_mkdir_with_parents(d, 0755);
    if (use_prefix) {
        g_byte_array_append(a, &prefix, 1);
    }
    g_byte_array_append(a, g_bytes_get_data(b, NULL),
                        (guint)g_bytes_get_size(b));
    g_assert(g_file_set_contents(p, (const char *)a->data, a->len, NULL));
}

int
main(int argc, char **argv)
{
    guint8 nonce[32], pcrs[64] = { 0 }, digest[32];
    g_autoptr(GByteArray) log = g_byte_array_new();

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    for (gsize i = 0; i < sizeof(nonce); i++) {
        nonce[i] = (guint8)i;
    }
    for (int i = 0; i < 2; i++) {
        g_autoptr(TvdSynthKey) k = tvd_synth_ak_new(
            i ? TPM2_ALG_ECC : TPM2_ALG_RSA,
            i ? TPM2_ALG_ECDSA : TPM2_ALG_RSASSA, 0);
        g_autoptr(GBytes) at = tvd_synth_attest(
            TPM2_ST_ATTEST_QUOTE, nonce, 32, TPM2_ALG_SHA256,
            (1u << 0) | (1u << 10), pcrs, sizeof(pcrs));
        g_autoptr(GBytes) sig = tvd_synth_sign(k, at);
        g_autoptr(GBytes) ek = tvd_synth_public(
            k->key, TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                        TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT,
            TPM2_ALG_NULL, TRUE);

        seed(argv[1], "fuzz-verifier-attest", i ? "attest-ecc" : "attest-rsa",
             0, TRUE, at);
        seed(argv[1], "fuzz-verifier-attest", i ? "sig-ecc" : "sig-rsa",
             i ? 3 : 1, TRUE, sig);
        seed(argv[1], "fuzz-verifier-tpm-public", i ? "ak-ecc" : "ak-rsa", 0,
             FALSE, k->public);
        seed(argv[1], "fuzz-verifier-tpm-public", i ? "ek-ecc" : "ek-rsa", 0,
             FALSE, ek);
    }
    memset(digest, 0x11, sizeof(digest));
    for (int i = 0; i < 4; i++) {
        g_autofree char *path = g_strdup_printf("/usr/bin/p%d", i);
        g_autoptr(GBytes) r = tvd_synth_ima_record(
            10, i ? path : "boot_aggregate", digest, i == 3);

        g_byte_array_append(log, g_bytes_get_data(r, NULL),
                            (guint)g_bytes_get_size(r));
    }
    {
        g_autoptr(GBytes) b = g_bytes_new(log->data, log->len);

        seed(argv[1], "fuzz-verifier-ima-log", "log", 0, TRUE, b);
        seed(argv[1], "fuzz-verifier-ima-log", "log-partial", 1, TRUE, b);
    }
    /* The round: three flag bytes, then the log (flags 0: honest; 0x20: a
     * second round; 0x10: the rest in a LOG_CHUNK). */
    for (int k = 0; k < 3; k++) {
        static const guint8 flags[3] = { 0x00, 0x20, 0x10 };
        g_autoptr(GByteArray) in = g_byte_array_new();
        g_autoptr(GBytes) b = NULL;
        guint8 head[3] = { flags[k], 0, 0 };

        g_byte_array_append(in, head, sizeof(head));
        g_byte_array_append(in, log->data, log->len);
        b = g_bytes_new(in->data, in->len);
        seed(argv[1], "fuzz-verifier-round", k == 0 ? "honest"
                                             : k == 1 ? "two-rounds"
                                                      : "log-chunk",
             0, FALSE, b);
    }
    /* Per-bank logs (SHA-256; SHA-384 with padded SHA-1 digests) and the
     * templates with d-ngv2 and extra fields, for prefix bits 2-3. */
    for (int k = 0; k < 2; k++) {
        g_autoptr(GByteArray) plog = g_byte_array_new();
        g_autoptr(GBytes) b = NULL;

        for (int i = 0; i < 3; i++) {
            g_autoptr(GByteArray) d = g_byte_array_new();
            g_autofree char *path = g_strdup_printf("/usr/lib/l%d.so", i);
            g_autoptr(GBytes) r = NULL;

            tvd_ima_ng_data_append(d, "sha256", digest, 32, path);
            r = tvd_synth_ima_record_data(k ? TPM2_ALG_SHA384
                                            : TPM2_ALG_SHA256,
                                          k == 1, 10, "ima-ng", d->data,
                                          d->len, i == 2);
            g_byte_array_append(plog, g_bytes_get_data(r, NULL),
                                (guint)g_bytes_get_size(r));
        }
        b = g_bytes_new(plog->data, plog->len);
        seed(argv[1], "fuzz-verifier-ima-log", k ? "bank-sha384-padded"
                                                 : "bank-sha256",
             (guint8)((k ? 2 : 1) << 2), TRUE, b);
    }
    {
        static const char type_alg[] = "verity:sha256:";
        g_autoptr(GByteArray) d = g_byte_array_new();
        g_autoptr(GBytes) r = NULL;

        tvd_append_le32(d, sizeof(type_alg) + 32);
        g_byte_array_append(d, (const guint8 *)type_alg, sizeof(type_alg));
        g_byte_array_append(d, digest, 32);
        tvd_append_le32(d, 3);
        g_byte_array_append(d, (const guint8 *)"/x", 3);
        tvd_append_le32(d, 2);
        g_byte_array_append(d, (const guint8 *)"sg", 2);
        r = tvd_synth_ima_record_data(TPM2_ALG_SHA1, FALSE, 10, "ima-sigv2",
                                      d->data, d->len, FALSE);
        seed(argv[1], "fuzz-verifier-ima-log", "ima-sigv2", 0, TRUE, r);
    }
    return 0;
}
