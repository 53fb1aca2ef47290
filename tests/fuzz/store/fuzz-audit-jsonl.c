/*
 * libFuzzer target: the audit log's decoders of outside input, i.e. an
 * exported audit log (JSON lines) verified offline with
 * tvd_audit_verify_jsonl(), an anchor value, and one record line.
 *
 * Input: byte 0 picks the mode; 0 = the rest is a JSON-lines export;
 * 1 = first line of the rest is the anchor, the others the export.
 * In both modes the first line is also decoded as a record, and a record
 * that decodes must round-trip: to_json(from_json(x)) decodes to the same
 * canonical bytes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "audit.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const char *line, size_t len)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdAuditRecord) rec = tvd_audit_record_from_json(line, len, &err);
    if (!rec) {
        g_assert_nonnull(err);
        return;
    }
    g_autoptr(GBytes) c1 = tvd_audit_record_canonical(rec, &err);
    if (!c1) {
        return;     /* e.g. a float in details: decodes, has no canonical form */
    }
    g_autofree char *out = tvd_audit_record_to_json(rec, &err);
    g_assert_nonnull(out);
    g_autoptr(TvdAuditRecord) back = tvd_audit_record_from_json(out,
                                                                strlen(out),
                                                                &err);
    g_assert_nonnull(back);
    g_autoptr(GBytes) c2 = tvd_audit_record_canonical(back, &err);
    g_assert_nonnull(c2);
    g_assert_true(g_bytes_equal(c1, c2));
    g_assert_true(memcmp(rec->hash, back->hash, TVD_AUDIT_HASH_SIZE) == 0);
    g_assert_true(memcmp(rec->prev, back->prev, TVD_AUDIT_HASH_SIZE) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gboolean quiet;
    if (!quiet) {
        g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
        quiet = TRUE;
    }
    if (size < 1) {
        return 0;
    }
    int mode = data[0] & 1;
    const char *rest = (const char *)data + 1;
    size_t len = size - 1;
    const char *nl = memchr(rest, '\n', len);
    size_t first = nl ? (size_t)(nl - rest) : len;

    roundtrip(rest, first);

    TvdAuditReport report;
    g_autoptr(GError) err = NULL;
    if (mode == 0) {
        g_assert_true(tvd_audit_verify_jsonl(rest, len, NULL, &report, &err));
    } else {
        g_autofree char *anchor = g_strndup(rest, first);
        size_t skip = nl ? first + 1 : len;
        if (!tvd_audit_verify_jsonl(rest + skip, len - skip, anchor, &report,
                                    &err)) {
            g_assert_nonnull(err);
            return 0;
        }
    }
    g_assert_true(report.fault != TVD_AUDIT_OK || report.why == NULL);
    g_assert_true(report.fault == TVD_AUDIT_OK || report.why != NULL);
    tvd_audit_report_clear(&report);
    return 0;
}
