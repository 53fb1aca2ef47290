/*
 * Log chunks: see log-chunk.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "log-chunk.h"

/* GVariant framing of one record in a chunk, an upper bound. */
#define ENTRY_OVERHEAD  8u

void tvd_pending_log_fill_chunk(TvdPendingLog *log, TvdMsgLogChunk *chunk,
                                gsize budget)
{
    gsize used = 0;

    chunk->kind = log->kind;
    chunk->offset = log->offset + log->next;
    chunk->entries = g_ptr_array_new();
    while (log->next < log->entries->len &&
           chunk->entries->len < TVD_MSG_LOG_ENTRIES_MAX) {
        GBytes *e = log->entries->pdata[log->next];
        gsize need = g_bytes_get_size(e) + ENTRY_OVERHEAD;

        if (used + need > budget && chunk->entries->len > 0) {
            break;
        }
        used += need;
        g_ptr_array_add(chunk->entries, e);
        log->next++;
    }
    chunk->more = log->next < log->entries->len;
}
