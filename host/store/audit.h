/*
 * tvd audit log: append-only and hash-chained.
 *
 * Each record is (seq, time, actor, vm, domain, event, reason, details),
 * serialised canonically (docs/store.md, "Audit log"): a JSON object with
 * members sorted bytewise by name, no whitespace, integers only, minimal
 * string escapes. Its hash is SHA-256(prev_hash || canonical bytes), with
 * prev_hash of record 1 being 32 zero bytes. The log lives in its own SQLite
 * file (one per host); after each append the head (seq and hash) is written
 * to the store under an anchor key (default "/audit/head"), which the
 * cluster store keeps, so that a rewritten or truncated local log no longer
 * matches its anchor.
 *
 * RULE: no secret ever goes into an audit record: no key material, no
 * credential blobs or seeds, no nonces before they are spent, no passwords or
 * tokens. Record what was decided and why, and public identifiers (key
 * fingerprints, EK certificate hashes, PCR digests). As a safety net append
 * rejects details whose member names look like secrets (see audit.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_AUDIT_H
#define TVD_HOST_AUDIT_H

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "store.h"

G_BEGIN_DECLS

#define TVD_AUDIT_ERROR (tvd_audit_error_quark())
GQuark tvd_audit_error_quark(void);

typedef enum {
    TVD_AUDIT_ERROR_IO,           /* the log file could not be read/written */
    TVD_AUDIT_ERROR_INVALID,      /* bad argument to append */
    TVD_AUDIT_ERROR_SECRET,       /* details look like they hold a secret */
    TVD_AUDIT_ERROR_MALFORMED,    /* a record or line does not decode */
    TVD_AUDIT_ERROR_SCHEMA,       /* log file made by a newer schema */
} TvdAuditError;

#define TVD_AUDIT_HASH_SIZE       32u
#define TVD_AUDIT_DEFAULT_ANCHOR  "/audit/head"
/* Caps on what one record may hold (bytes). */
#define TVD_AUDIT_MAX_NAME        256u      /* actor, vm, domain, event */
#define TVD_AUDIT_MAX_REASON      4096u
#define TVD_AUDIT_MAX_RECORD      65536u    /* canonical bytes, whole record */
#define TVD_AUDIT_MAX_DEPTH       16u       /* nesting of details */

typedef struct {
    gint64 seq;             /* 1, 2, 3, ... */
    char *time;             /* UTC, "2026-11-22T20:06:00.123456Z" */
    char *actor;            /* who decided: "supervisor", "tvdctl:alice" */
    char *vm;               /* nullable */
    char *domain;           /* nullable */
    char *event;            /* "admit", "quarantine", "revoke", ... */
    char *reason;           /* nullable */
    JsonNode *details;      /* an object (empty when none) */
    guint8 prev[TVD_AUDIT_HASH_SIZE];
    guint8 hash[TVD_AUDIT_HASH_SIZE];
} TvdAuditRecord;

void tvd_audit_record_free(TvdAuditRecord *rec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAuditRecord, tvd_audit_record_free)

/* Canonical bytes of @rec (what is hashed). NULL + MALFORMED if a field
 * cannot be serialised (a non-integer number in details, depth, size). */
GBytes *tvd_audit_record_canonical(const TvdAuditRecord *rec, GError **error);

/*
 * Decodes one exported JSON line (canonical record plus "hash" and "prev"
 * as lowercase hex). Strict: every member present with its type, nothing
 * else, caps enforced. The hash is NOT checked here (verify does that).
 */
TvdAuditRecord *tvd_audit_record_from_json(const char *line, gsize len,
                                           GError **error);
/* The exported JSON line of @rec, without a newline. */
char *tvd_audit_record_to_json(const TvdAuditRecord *rec, GError **error);

typedef enum {
    TVD_AUDIT_OK = 0,
    TVD_AUDIT_MALFORMED,        /* record does not decode or is not canonical */
    TVD_AUDIT_HASH_MISMATCH,    /* content does not hash to the stored hash */
    TVD_AUDIT_PREV_MISMATCH,    /* prev is not the previous record's hash */
    TVD_AUDIT_GAP,              /* a sequence number is missing */
    TVD_AUDIT_REORDERED,        /* a record sits at another record's place */
    TVD_AUDIT_TRUNCATED,        /* log ends before the anchor's seq */
    TVD_AUDIT_ANCHOR_MISMATCH,  /* record at the anchor's seq has another hash */
} TvdAuditFault;

const char *tvd_audit_fault_name(TvdAuditFault fault);

typedef struct {
    TvdAuditFault fault;
    gint64 records;             /* records that verified before the fault */
    gint64 bad_seq;             /* seq named by the fault, 0 when OK */
    char *why;                  /* human-readable, NULL when OK */
    gint64 head_seq;            /* last verified record */
    guint8 head_hash[TVD_AUDIT_HASH_SIZE];
    gint64 anchor_seq;          /* 0: no anchor was checked */
} TvdAuditReport;

void tvd_audit_report_clear(TvdAuditReport *report);

typedef struct _TvdAuditLog TvdAuditLog;

/*
 * Opens (creating, 0600) the audit log at @path. @anchor_store (nullable,
 * referenced) receives the head under @anchor_key (NULL: the default).
 */
TvdAuditLog *tvd_audit_open(const char *path, TvdStore *anchor_store,
                            const char *anchor_key, GError **error);
void tvd_audit_close(TvdAuditLog *log);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAuditLog, tvd_audit_close)

/*
 * Appends a record stamped with the current UTC time. @vm, @domain,
 * @reason and @details may be NULL. @out_seq (nullable) gets its seq.
 * The record is durable when this returns TRUE; the anchor is then moved
 * forward (a failure to write the anchor is logged, not returned: the
 * next append or tvd_audit_sync_anchor() catches up).
 */
gboolean tvd_audit_append(TvdAuditLog *log, const char *actor,
                          const char *vm, const char *domain,
                          const char *event, const char *reason,
                          JsonObject *details, gint64 *out_seq,
                          GError **error);

/* Writes the current head to the anchor (never moves it backwards). */
gboolean tvd_audit_sync_anchor(TvdAuditLog *log, GError **error);

/*
 * Walks the whole chain and, if the log has an anchor store, checks the
 * anchor. TRUE when the walk ran (the result is in @report, which the caller
 * clears); FALSE only when the log could not be read.
 */
gboolean tvd_audit_verify(TvdAuditLog *log, TvdAuditReport *report,
                          GError **error);

/*
 * Writes records with seq >= @from_seq as JSON lines to @out. A stored
 * record that no longer decodes stops the export with
 * TVD_AUDIT_ERROR_MALFORMED naming its seq (run tvd_audit_verify).
 */
gboolean tvd_audit_export(TvdAuditLog *log, gint64 from_seq,
                          GOutputStream *out, GCancellable *cancellable,
                          GError **error);

/*
 * Verifies an export (JSON lines, from seq 1) offline. @anchor_json
 * (nullable) is the anchor value ({"hash":"..","seq":N}). A line that does
 * not decode is reported as TVD_AUDIT_MALFORMED with the seq it should have
 * had. Returns FALSE only for an unusable @anchor_json.
 */
gboolean tvd_audit_verify_jsonl(const char *data, gsize len,
                                const char *anchor_json,
                                TvdAuditReport *report, GError **error);

G_END_DECLS

#endif /* TVD_HOST_AUDIT_H */
