/*
 * Splitting a log into LOG_CHUNK-sized pieces that fit the mailbox: the
 * agent's evidence carries the first chunk of each log, LOG_CHUNK messages
 * the rest (docs/protocol.md).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_AGENT_LOG_CHUNK_H
#define TVD_AGENT_LOG_CHUNK_H

#include <glib.h>

#include "message.h"

G_BEGIN_DECLS

/* A log being sent: its records from @offset on, and how far it got. */
typedef struct {
    TvdLogKind kind;
    guint64 offset;         /* log index of entries[0] */
    GPtrArray *entries;     /* GBytes, one ima-ng record each */
    guint next;             /* first entry not sent yet */
} TvdPendingLog;

/*
 * Fills @chunk (kind, offset, entries borrowed from @log, more) with the
 * next entries of @log whose encoded size stays within @budget bytes (at
 * least one entry, so a log always makes progress). Free chunk->entries
 * with g_ptr_array_unref: it does not own the GBytes.
 */
void tvd_pending_log_fill_chunk(TvdPendingLog *log, TvdMsgLogChunk *chunk,
                                gsize budget);

G_END_DECLS

#endif /* TVD_AGENT_LOG_CHUNK_H */
