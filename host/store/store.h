/*
 * tvd store: a small revisioned key-value store in etcd's model.
 *
 * Every change to the store gets a revision from one store-wide counter that
 * only grows. A transaction (several puts and deletes applied atomically)
 * takes exactly one revision; every key it changes then has that revision as
 * its mod_revision. A key remembers the revision it was created at
 * (create_revision) and how many times it was written since (version).
 * Watchers receive PUT and DELETE events in revision order, and can resume
 * from any revision that has not been compacted away.
 *
 * Backends plug in through the vtable of store-backend.h: the embedded SQLite
 * backend (store-sqlite.c) serves one host; an etcd v3 backend (JSON gateway)
 * serves several with the same calls and the same semantics.
 *
 * Keys are non-empty UTF-8 strings without NUL of at most TVD_STORE_MAX_KEY
 * bytes, ordered bytewise (like etcd). By convention they look like paths
 * ("/members/<domain>/<vm>"). Values are opaque bytes of at most
 * TVD_STORE_MAX_VALUE bytes.
 *
 * Thread safety: a TvdStore may be used from several threads; calls are
 * serialised inside. Watch callbacks run in the thread-default main context
 * of the thread that called tvd_store_watch(). As with any GLib object, the
 * last reference must not be dropped while another thread may still call
 * in, and that includes watches dispatching in other threads' contexts:
 * unwatch those first (watches in the thread that drops the last reference
 * are handled, even from inside their own callback).
 *
 * docs/store.md describes the design.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_STORE_H
#define TVD_HOST_STORE_H

#include <glib.h>

G_BEGIN_DECLS

#define TVD_STORE_ERROR (tvd_store_error_quark())
GQuark tvd_store_error_quark(void);

typedef enum {
    TVD_STORE_ERROR_NOT_FOUND,    /* the key does not exist */
    TVD_STORE_ERROR_CONFLICT,     /* a compare-and-swap condition failed */
    TVD_STORE_ERROR_IO,           /* the backend could not read or write */
    TVD_STORE_ERROR_CORRUPT,      /* stored data is inconsistent/not ours */
    TVD_STORE_ERROR_SCHEMA,       /* store made by a newer, unknown schema */
    TVD_STORE_ERROR_INVALID,      /* bad argument: key, size, txn shape */
    TVD_STORE_ERROR_COMPACTED,    /* watch start revision was compacted */
    TVD_STORE_ERROR_UNSUPPORTED,  /* the backend lacks this operation */
} TvdStoreError;

/* Caps (checked on every call; the etcd defaults are of the same order). */
#define TVD_STORE_MAX_KEY        4096u        /* bytes */
#define TVD_STORE_MAX_VALUE      (1024u * 1024u)
#define TVD_STORE_MAX_TXN_OPS    128u         /* etcd's --max-txn-ops */

/* Expected revision for a compare: the key must not exist. */
#define TVD_STORE_REV_ABSENT     ((gint64)0)
/* Expected revision for a compare: the key must exist (any revision). */
#define TVD_STORE_REV_EXISTS     ((gint64)-1)

typedef struct _TvdStore TvdStore;

/* One key with its value and revisions (as etcd's mvccpb.KeyValue). */
typedef struct {
    char *key;
    GBytes *value;
    gint64 create_revision;
    gint64 mod_revision;
    gint64 version;     /* writes since creation, 1 after the first put */
    gint64 lease;       /* lease id the key is attached to, 0 for none */
} TvdStoreEntry;

void tvd_store_entry_free(TvdStoreEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdStoreEntry, tvd_store_entry_free)

typedef enum {
    TVD_STORE_EVENT_PUT = 1,
    TVD_STORE_EVENT_DELETE = 2,
    /*
     * Last event of a watch whose position was compacted away before it
     * could be delivered (only rev is set: the compaction revision). The
     * watch is cancelled after it; re-list and watch again.
     */
    TVD_STORE_EVENT_COMPACTED = 3,
} TvdStoreEventType;

typedef struct {
    TvdStoreEventType type;
    gint64 revision;    /* revision of the transaction that made it */
    const char *key;    /* NULL for COMPACTED */
    GBytes *value;      /* the new value for PUT, NULL otherwise */
} TvdStoreEvent;

/*
 * Called once per event, in revision order (within one revision in the
 * order the transaction listed its operations). @event is valid only for
 * the call. The callback may call any store function, including
 * tvd_store_unwatch() of its own watch and tvd_store_unref().
 */
typedef void (*TvdStoreWatchFunc)(TvdStore *store, const TvdStoreEvent *event,
                                  gpointer user_data);

TvdStore *tvd_store_ref(TvdStore *store);
/* The last unref cancels all watches (their destroy notifies run) and closes. */
void tvd_store_unref(TvdStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdStore, tvd_store_unref)

/* TRUE when @key is a valid key (see above); INVALID error otherwise. */
gboolean tvd_store_key_is_valid(const char *key, GError **error);

/* "sqlite", "etcd", ... */
const char *tvd_store_backend_name(TvdStore *store);

/* The store's current revision (0 for a store never written). */
gboolean tvd_store_revision(TvdStore *store, gint64 *out_rev, GError **error);

/* ---- Single-key operations ----------------------------------------------- */

/* TVD_STORE_ERROR_NOT_FOUND when @key does not exist. */
TvdStoreEntry *tvd_store_get(TvdStore *store, const char *key, GError **error);

/* Creates or replaces @key. @out_rev (nullable) gets the new revision. */
gboolean tvd_store_put(TvdStore *store, const char *key, GBytes *value,
                       gint64 *out_rev, GError **error);
/* Convenience: the value is the bytes of the NUL-terminated @value. */
gboolean tvd_store_put_string(TvdStore *store, const char *key,
                              const char *value, gint64 *out_rev,
                              GError **error);

/* TVD_STORE_ERROR_NOT_FOUND when @key does not exist. */
gboolean tvd_store_delete(TvdStore *store, const char *key, gint64 *out_rev,
                          GError **error);

/*
 * Compare-and-swap: writes @value (or deletes @key when @value is NULL) only
 * if @key's mod_revision equals @expected_rev; TVD_STORE_REV_ABSENT means
 * "only if the key does not exist". TVD_STORE_ERROR_CONFLICT otherwise, with
 * the actual revision in the message and in @out_actual_rev (nullable).
 */
gboolean tvd_store_cas(TvdStore *store, const char *key,
                       gint64 expected_rev, GBytes *value,
                       gint64 *out_rev, gint64 *out_actual_rev,
                       GError **error);

/*
 * All keys starting with @prefix ("" for all), sorted bytewise, as a
 * GPtrArray of TvdStoreEntry (owned). @out_rev (nullable): the revision the
 * listing reflects; a watch from out_rev + 1 misses nothing after it.
 */
GPtrArray *tvd_store_list(TvdStore *store, const char *prefix,
                          gint64 *out_rev, GError **error);

/* ---- Transactions ---------------------------------------------------------- */

/*
 * A transaction: compares, then operations. Commit checks every compare and
 * applies every operation atomically under one new revision, or applies
 * nothing. A key may appear in at most one put/delete of a transaction.
 * Deleting a key that does not exist is a no-op (no event); a transaction
 * that changes nothing does not consume a revision.
 */
typedef struct _TvdStoreTxn TvdStoreTxn;

TvdStoreTxn *tvd_store_txn_new(void);
void tvd_store_txn_free(TvdStoreTxn *txn);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdStoreTxn, tvd_store_txn_free)

/* Condition: mod_revision of @key == @expected_rev (or the REV_ constants). */
void tvd_store_txn_compare(TvdStoreTxn *txn, const char *key,
                           gint64 expected_rev);
void tvd_store_txn_put(TvdStoreTxn *txn, const char *key, GBytes *value);
/* As txn_put, attaching @key to @lease (0 for none; see tvd_store_lease_grant). */
void tvd_store_txn_put_lease(TvdStoreTxn *txn, const char *key, GBytes *value,
                             gint64 lease);
void tvd_store_txn_delete(TvdStoreTxn *txn, const char *key);
/* Deletes every key starting with @prefix (which must not be empty). */
void tvd_store_txn_delete_prefix(TvdStoreTxn *txn, const char *prefix);

/*
 * Commits @txn. On a failed compare: TVD_STORE_ERROR_CONFLICT naming the
 * first failing key, and nothing is written. @out_rev (nullable) gets the
 * transaction's revision (the current one if it changed nothing).
 */
gboolean tvd_store_txn_commit(TvdStore *store, TvdStoreTxn *txn,
                              gint64 *out_rev, GError **error);

/* ---- Watches --------------------------------------------------------------- */

/*
 * Watches every key starting with @prefix ("" for all). Events from
 * @from_rev on (inclusive) are delivered; 0 means "from the next change".
 * Returns a watch id > 0, or 0 with TVD_STORE_ERROR_COMPACTED when events
 * at @from_rev are no longer kept. @destroy (nullable) runs on @user_data
 * when the watch ends.
 */
guint tvd_store_watch(TvdStore *store, const char *prefix, gint64 from_rev,
                      TvdStoreWatchFunc func, gpointer user_data,
                      GDestroyNotify destroy, GError **error);
void tvd_store_unwatch(TvdStore *store, guint watch_id);

/*
 * Forgets history before @rev: watches can no longer start before it.
 * Current keys are not affected.
 */
gboolean tvd_store_compact(TvdStore *store, gint64 rev, GError **error);

/* ---- Leases (etcd backend; the SQLite backend stores ids but never expires) */

/* TVD_STORE_ERROR_UNSUPPORTED when the backend has no leases. */
gboolean tvd_store_lease_grant(TvdStore *store, gint64 ttl_seconds,
                               gint64 *out_lease, GError **error);
gboolean tvd_store_lease_keepalive(TvdStore *store, gint64 lease,
                                   GError **error);
/* Deletes every key attached to @lease (one revision), then the lease. */
gboolean tvd_store_lease_revoke(TvdStore *store, gint64 lease, GError **error);

/* ---- The SQLite backend (store-sqlite.c) ------------------------------------- */

typedef struct {
    /*
     * Watches also poll the revision counter at this interval to see
     * writes made by other processes (other TvdStore objects on the same
     * file). 0: only writes through this TvdStore wake watches.
     */
    guint poll_interval_ms;
    /* How long a writer waits for another one's lock. 0: 5000 ms. */
    guint busy_timeout_ms;
    /*
     * PRAGMA synchronous=NORMAL instead of FULL: no fsync per commit, so
     * the last commits before a power loss (not a process crash) may be
     * lost, though the file stays consistent. For tests and benchmarks;
     * the supervisor keeps the default (docs/store.md, "Durability").
     */
    gboolean sync_normal;
} TvdStoreSqliteOptions;

/* Current schema version of the SQLite store (PRAGMA user_version). */
#define TVD_STORE_SQLITE_SCHEMA_VERSION 1

/*
 * Opens (creating with mode 0600 if missing) the SQLite store at @path.
 * @options may be NULL for the defaults. Fails with TVD_STORE_ERROR_SCHEMA
 * for a file written by a newer schema, TVD_STORE_ERROR_CORRUPT for a
 * database that is not a tvd store.
 */
TvdStore *tvd_store_sqlite_open(const char *path,
                                const TvdStoreSqliteOptions *options,
                                GError **error);

G_END_DECLS

#endif /* TVD_HOST_STORE_H */
