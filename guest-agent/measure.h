/*
 * What the agent measures (docs/agent.md): the Linux IMA runtime log when
 * the kernel keeps one, and the agent's own list of files, as binary
 * ima-ng records (the format the verifier replays), each extended into a
 * non-resettable PCR of the SHA-256 bank.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_AGENT_MEASURE_H
#define TVD_AGENT_MEASURE_H

#include <glib.h>

G_BEGIN_DECLS

#define TVD_IMA_LOG_PATH \
    "/sys/kernel/security/ima/binary_runtime_measurements"

/*
 * Splits a binary IMA log (ima-ng records, little-endian) into records,
 * starting at record @offset. A truncated last record is left out. Answers
 * an array of GBytes (one per record) or NULL with an error.
 */
GPtrArray *tvd_measure_split_log(const guint8 *log, gsize len, guint64 offset,
                                 guint max_records, GError **error);

/* One ima-ng record of a file digest: what the agent list holds. */
GBytes *tvd_measure_record(guint32 pcr, const char *path,
                           const guint8 sha256[32], guint8 extend[32]);

/* SHA-256 of a file's contents, streamed. */
gboolean tvd_measure_file(const char *path, guint8 sha256[32], GError **error);

/* The agent's own list, persisted so an agent restart keeps it. */
typedef struct TvdAgentList TvdAgentList;

/* Loads @state_path when it exists (records of an earlier run). */
TvdAgentList *tvd_agent_list_new(guint32 pcr, const char *state_path);
void tvd_agent_list_free(TvdAgentList *list);
guint32 tvd_agent_list_pcr(TvdAgentList *list);
guint64 tvd_agent_list_count(TvdAgentList *list);
/* Records from @offset on (GBytes, borrowed by the array's copy). */
GPtrArray *tvd_agent_list_since(TvdAgentList *list, guint64 offset);

/*
 * Measures @path (a file, or every regular file under a directory, sorted)
 * and appends a record for each file whose digest is new for that path;
 * @extend is called with the SHA-256 to extend for each new record, before
 * the record is kept (so the PCR never lags the list). Answers how many
 * records were added, or -1 with an error.
 */
typedef gboolean (*TvdExtendFunc)(guint32 pcr, const guint8 digest[32],
                                  void *opaque, GError **error);
int tvd_agent_list_measure(TvdAgentList *list, const char *path,
                           TvdExtendFunc extend, void *opaque,
                           GError **error);
/* Measures a value that is not a file (e.g. the boot id) under @name. */
int tvd_agent_list_measure_data(TvdAgentList *list, const char *name,
                                const void *data, gsize len,
                                TvdExtendFunc extend, void *opaque,
                                GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAgentList, tvd_agent_list_free)

G_END_DECLS

#endif /* TVD_AGENT_MEASURE_H */
