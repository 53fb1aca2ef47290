/*
 * tvd store: the embedded SQLite backend (one host). See store.h and
 * docs/store.md.
 *
 * Schema (version 1, in PRAGMA user_version; PRAGMA application_id marks
 * the file as a tvd store):
 *   meta(name PRIMARY KEY, value)   "revision", "compact_revision"
 *   kv(key PRIMARY KEY, value, create_rev, mod_rev, version, lease)
 *   events(rev, seq, key, type, value, PRIMARY KEY(rev, seq))
 *   leases(id PRIMARY KEY, ttl, granted_us)
 * A transaction is one SQLite write transaction (BEGIN IMMEDIATE) that
 * bumps meta.revision once, writes kv and appends one events row per change.
 * Watches read the events table, so a watch resumes from any revision that
 * was not compacted and sees other processes' writes by polling
 * meta.revision.
 *
 * Durability: WAL with synchronous=FULL, i.e. an fsync of the WAL at every
 * commit. NORMAL would only risk the last commits on power loss, but a lost
 * revocation could readmit a VM after a crash; the cost is measured by
 * bench/store-bench.c and is far below the rate of membership changes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-store"

#include "store-backend.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#define APPLICATION_ID 0x54564453   /* "TVDS" */
#define WATCH_BATCH 256             /* events read per dispatch */

enum {
    STMT_BEGIN_IMMEDIATE,
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_META_GET,
    STMT_META_SET,
    STMT_GET,
    STMT_LIST_ALL,
    STMT_LIST_RANGE,
    STMT_LIST_FROM,
    STMT_PUT,
    STMT_DELETE,
    STMT_EVENT_ADD,
    STMT_EVENTS_ALL,
    STMT_EVENTS_RANGE,
    STMT_EVENTS_FROM,
    STMT_EVENTS_COMPACT,
    STMT_LEASE_ADD,
    STMT_LEASE_GET,
    STMT_LEASE_DELETE,
    STMT_LEASE_KEYS,
    N_STMTS
};

static const char *const stmt_sql[N_STMTS] = {
    [STMT_BEGIN_IMMEDIATE] = "BEGIN IMMEDIATE",
    [STMT_BEGIN] = "BEGIN",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_META_GET] = "SELECT value FROM meta WHERE name = ?1",
    [STMT_META_SET] = "INSERT INTO meta(name, value) VALUES (?1, ?2) "
                      "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
    [STMT_GET] = "SELECT key, value, create_rev, mod_rev, version, lease "
                 "FROM kv WHERE key = ?1",
    [STMT_LIST_ALL] = "SELECT key, value, create_rev, mod_rev, version, lease "
                      "FROM kv ORDER BY key",
    [STMT_LIST_RANGE] = "SELECT key, value, create_rev, mod_rev, version, lease "
                        "FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key",
    [STMT_LIST_FROM] = "SELECT key, value, create_rev, mod_rev, version, lease "
                       "FROM kv WHERE key >= ?1 ORDER BY key",
    [STMT_PUT] = "INSERT INTO kv(key, value, create_rev, mod_rev, version, lease) "
                 "VALUES (?1, ?2, ?3, ?3, 1, ?4) ON CONFLICT(key) DO UPDATE SET "
                 "value = excluded.value, mod_rev = excluded.mod_rev, "
                 "version = version + 1, lease = excluded.lease",
    [STMT_DELETE] = "DELETE FROM kv WHERE key = ?1",
    [STMT_EVENT_ADD] = "INSERT INTO events(rev, seq, key, type, value) "
                       "VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_EVENTS_ALL] = "SELECT rev, seq, key, type, value FROM events "
                        "WHERE (rev, seq) >= (?1, ?2) ORDER BY rev, seq LIMIT ?3",
    [STMT_EVENTS_RANGE] = "SELECT rev, seq, key, type, value FROM events "
                          "WHERE (rev, seq) >= (?1, ?2) AND key >= ?4 AND key < ?5 "
                          "ORDER BY rev, seq LIMIT ?3",
    [STMT_EVENTS_FROM] = "SELECT rev, seq, key, type, value FROM events "
                         "WHERE (rev, seq) >= (?1, ?2) AND key >= ?4 "
                         "ORDER BY rev, seq LIMIT ?3",
    [STMT_EVENTS_COMPACT] = "DELETE FROM events WHERE rev < ?1",
    [STMT_LEASE_ADD] = "INSERT INTO leases(ttl, granted_us) VALUES (?1, ?2)",
    [STMT_LEASE_GET] = "SELECT id FROM leases WHERE id = ?1",
    [STMT_LEASE_DELETE] = "DELETE FROM leases WHERE id = ?1",
    [STMT_LEASE_KEYS] = "SELECT key FROM kv WHERE lease = ?1 ORDER BY key",
};

static const char schema_sql[] =
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) "
    "  WITHOUT ROWID;"
    "CREATE TABLE kv(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
    "  create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL,"
    "  version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0)"
    "  WITHOUT ROWID;"
    "CREATE INDEX kv_lease ON kv(lease) WHERE lease != 0;"
    "CREATE TABLE events(rev INTEGER NOT NULL, seq INTEGER NOT NULL,"
    "  key TEXT NOT NULL, type INTEGER NOT NULL, value BLOB,"
    "  PRIMARY KEY(rev, seq)) WITHOUT ROWID;"
    "CREATE TABLE leases(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  ttl INTEGER NOT NULL, granted_us INTEGER NOT NULL);"
    "INSERT INTO meta(name, value) VALUES ('revision', 0),"
    "  ('compact_revision', 0);"
    "PRAGMA application_id = 1414939731;"   /* APPLICATION_ID */
    "PRAGMA user_version = 1;";

G_STATIC_ASSERT(APPLICATION_ID == 1414939731);
G_STATIC_ASSERT(TVD_STORE_SQLITE_SCHEMA_VERSION == 1);

typedef struct _SqliteStore SqliteStore;

typedef struct {
    GSource source;
    SqliteStore *store;     /* not a reference; valid while attached */
    guint id;
    char *prefix;
    char *prefix_end;       /* NULL: no upper bound */
    gint64 next_rev;        /* cursor: next (rev, seq) to deliver */
    gint64 next_seq;
    guint poll_ms;
    TvdStoreWatchFunc func;
    gpointer user_data;
    GDestroyNotify destroy;
} Watcher;

struct _SqliteStore {
    TvdStore parent;
    GMutex lock;            /* db, stmts, watchers, next_watch_id */
    sqlite3 *db;
    sqlite3_stmt *stmts[N_STMTS];
    char *path;
    GHashTable *watchers;   /* id -> Watcher* (a source reference) */
    guint next_watch_id;
    guint poll_ms;
};

/* ---- SQLite helpers ---------------------------------------------------------- */

static int io_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_FORMAT:
        return TVD_STORE_ERROR_CORRUPT;
    default:
        return TVD_STORE_ERROR_IO;
    }
}

static gboolean db_fail(SqliteStore *s, int rc, const char *what,
                        GError **error)
{
    g_set_error(error, TVD_STORE_ERROR, io_code(rc), "%s: %s: %s (%d)",
                s->path, what, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc),
                rc);
    return FALSE;
}

/* The cached statement @id, reset and with no bindings; NULL on error. */
static sqlite3_stmt *stmt(SqliteStore *s, int id, GError **error)
{
    if (!s->stmts[id]) {
        int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1,
                                    SQLITE_PREPARE_PERSISTENT,
                                    &s->stmts[id], NULL);
        if (rc != SQLITE_OK) {
            db_fail(s, rc, "prepare", error);
            return NULL;
        }
    }
    sqlite3_stmt *st = s->stmts[id];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Runs a statement that returns no rows (or ignores them). */
static gboolean step_done(SqliteStore *s, sqlite3_stmt *st, const char *what,
                          GError **error)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return db_fail(s, rc, what, error);
    }
    return TRUE;
}

static gboolean exec_stmt(SqliteStore *s, int id, GError **error)
{
    sqlite3_stmt *st = stmt(s, id, error);
    return st && step_done(s, st, stmt_sql[id], error);
}

static void rollback(SqliteStore *s)
{
    if (!sqlite3_get_autocommit(s->db)) {
        g_autoptr(GError) err = NULL;
        if (!exec_stmt(s, STMT_ROLLBACK, &err)) {
            g_warning("%s", err->message);
        }
    }
}

static gboolean meta_get(SqliteStore *s, const char *name, gint64 *out,
                         GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_META_GET, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
        return TRUE;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT,
                    "%s: meta row '%s' is missing", s->path, name);
        return FALSE;
    }
    return db_fail(s, rc, "read meta", error);
}

static gboolean meta_set(SqliteStore *s, const char *name, gint64 value,
                         GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_META_SET, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    return step_done(s, st, "write meta", error);
}

static void bind_prefix(sqlite3_stmt *st, int idx, const char *text)
{
    /* Explicit length: a prefix end need not be valid UTF-8. */
    sqlite3_bind_text(st, idx, text, (int)strlen(text), SQLITE_TRANSIENT);
}

static GBytes *column_bytes(sqlite3_stmt *st, int col)
{
    const void *blob = sqlite3_column_blob(st, col);
    int len = sqlite3_column_bytes(st, col);
    return g_bytes_new(len > 0 ? blob : NULL, (gsize)MAX(len, 0));
}

static TvdStoreEntry *row_entry(sqlite3_stmt *st)
{
    TvdStoreEntry *e = g_new0(TvdStoreEntry, 1);
    e->key = g_strndup((const char *)sqlite3_column_text(st, 0),
                       (gsize)sqlite3_column_bytes(st, 0));
    e->value = column_bytes(st, 1);
    e->create_revision = sqlite3_column_int64(st, 2);
    e->mod_revision = sqlite3_column_int64(st, 3);
    e->version = sqlite3_column_int64(st, 4);
    e->lease = sqlite3_column_int64(st, 5);
    return e;
}

/* ---- Reads ----------------------------------------------------------------------- */

static gboolean sqlite_revision(TvdStore *store, gint64 *out_rev,
                                GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    g_mutex_lock(&s->lock);
    gboolean ok = meta_get(s, "revision", out_rev, error);
    g_mutex_unlock(&s->lock);
    return ok;
}

/* Reads @key's entry inside the current transaction; *out NULL if absent. */
static gboolean get_locked(SqliteStore *s, const char *key,
                           TvdStoreEntry **out, GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_GET, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *out = rc == SQLITE_ROW ? row_entry(st) : NULL;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        return db_fail(s, rc, "get", error);
    }
    return TRUE;
}

static TvdStoreEntry *sqlite_get(TvdStore *store, const char *key,
                                 GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    TvdStoreEntry *e = NULL;
    g_mutex_lock(&s->lock);
    gboolean ok = get_locked(s, key, &e, error);
    g_mutex_unlock(&s->lock);
    if (ok && !e) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND,
                    "no key '%s'", key);
    }
    return e;
}

/* Selects the kv rows under @prefix into the statement; caller steps it. */
static sqlite3_stmt *list_stmt(SqliteStore *s, const char *prefix,
                               GError **error)
{
    sqlite3_stmt *st;
    if (prefix[0] == '\0') {
        return stmt(s, STMT_LIST_ALL, error);
    }
    g_autofree char *end = tvd_store_prefix_end(prefix);
    st = stmt(s, end ? STMT_LIST_RANGE : STMT_LIST_FROM, error);
    if (st) {
        bind_prefix(st, 1, prefix);
        if (end) {
            bind_prefix(st, 2, end);
        }
    }
    return st;
}

static GPtrArray *sqlite_list(TvdStore *store, const char *prefix,
                              gint64 *out_rev, GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    g_autoptr(GPtrArray) list =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_store_entry_free);
    gboolean ok = FALSE;
    int rc = SQLITE_OK;

    g_mutex_lock(&s->lock);
    /* One read transaction: the rows and the revision agree. */
    if (!exec_stmt(s, STMT_BEGIN, error)) {
        goto out;
    }
    sqlite3_stmt *st = list_stmt(s, prefix, error);
    if (!st) {
        goto out;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        g_ptr_array_add(list, row_entry(st));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        db_fail(s, rc, "list", error);
        goto out;
    }
    ok = meta_get(s, "revision", out_rev, error) &&
         exec_stmt(s, STMT_COMMIT, error);
out:
    if (!ok) {
        rollback(s);
    }
    g_mutex_unlock(&s->lock);
    return ok ? g_steal_pointer(&list) : NULL;
}

/* ---- Writes ------------------------------------------------------------------------- */

static gboolean add_event(SqliteStore *s, gint64 rev, gint64 seq,
                          const char *key, TvdStoreEventType type,
                          GBytes *value, GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_EVENT_ADD, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_int64(st, 1, rev);
    sqlite3_bind_int64(st, 2, seq);
    sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, (int)type);
    if (value) {
        gsize len;
        const void *data = g_bytes_get_data(value, &len);
        sqlite3_bind_blob64(st, 5, len ? data : "", len, SQLITE_STATIC);
    } else {
        sqlite3_bind_null(st, 5);
    }
    return step_done(s, st, "append event", error);
}

static gboolean do_put(SqliteStore *s, gint64 rev, gint64 *seq,
                       const TvdStoreOp *op, GError **error)
{
    if (op->lease != 0) {
        sqlite3_stmt *lst = stmt(s, STMT_LEASE_GET, error);
        if (!lst) {
            return FALSE;
        }
        sqlite3_bind_int64(lst, 1, op->lease);
        int rc = sqlite3_step(lst);
        sqlite3_reset(lst);
        if (rc == SQLITE_DONE) {
            g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND,
                        "no lease %" G_GINT64_FORMAT, op->lease);
            return FALSE;
        }
        if (rc != SQLITE_ROW) {
            return db_fail(s, rc, "lease lookup", error);
        }
    }
    sqlite3_stmt *st = stmt(s, STMT_PUT, error);
    if (!st) {
        return FALSE;
    }
    gsize len;
    const void *data = g_bytes_get_data(op->value, &len);
    sqlite3_bind_text(st, 1, op->key, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 2, len ? data : "", len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, rev);
    sqlite3_bind_int64(st, 4, op->lease);
    if (!step_done(s, st, "put", error)) {
        return FALSE;
    }
    return add_event(s, rev, (*seq)++, op->key, TVD_STORE_EVENT_PUT,
                     op->value, error);
}

static gboolean delete_key(SqliteStore *s, gint64 rev, gint64 *seq,
                           const char *key, GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_DELETE, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (!step_done(s, st, "delete", error)) {
        return FALSE;
    }
    if (sqlite3_changes(s->db) == 0) {
        return TRUE;    /* absent: no-op, no event */
    }
    return add_event(s, rev, (*seq)++, key, TVD_STORE_EVENT_DELETE, NULL,
                     error);
}

/* The keys of a prefix or a lease, collected before deleting them. */
static gboolean collect_keys(SqliteStore *s, sqlite3_stmt *st, GPtrArray *keys,
                             GError **error)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        g_ptr_array_add(keys, g_strndup((const char *)sqlite3_column_text(st, 0),
                                        (gsize)sqlite3_column_bytes(st, 0)));
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        return db_fail(s, rc, "collect keys", error);
    }
    return TRUE;
}

static gboolean delete_keys(SqliteStore *s, gint64 rev, gint64 *seq,
                            GPtrArray *keys, GError **error)
{
    for (guint i = 0; i < keys->len; i++) {
        if (!delete_key(s, rev, seq, keys->pdata[i], error)) {
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean do_delete_prefix(SqliteStore *s, gint64 rev, gint64 *seq,
                                 const char *prefix, GError **error)
{
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    sqlite3_stmt *st = list_stmt(s, prefix, error);
    return st && collect_keys(s, st, keys, error) &&
           delete_keys(s, rev, seq, keys, error);
}

static void wake_watchers_locked(SqliteStore *s)
{
    GHashTableIter it;
    gpointer w;
    g_hash_table_iter_init(&it, s->watchers);
    while (g_hash_table_iter_next(&it, NULL, &w)) {
        g_source_set_ready_time(w, 0);
    }
}

static gboolean check_compares(SqliteStore *s, const TvdStoreTxn *txn,
                               gint64 *out_actual_rev, GError **error)
{
    for (guint i = 0; i < txn->compares->len; i++) {
        const TvdStoreCompare *c =
            &g_array_index(txn->compares, TvdStoreCompare, i);
        g_autoptr(TvdStoreEntry) e = NULL;
        if (!get_locked(s, c->key, &e, error)) {
            return FALSE;
        }
        gint64 actual = e ? e->mod_revision : 0;
        gboolean ok = c->expected_rev == TVD_STORE_REV_EXISTS ? e != NULL
                                                              : actual == c->expected_rev;
        if (!ok) {
            *out_actual_rev = actual;
            if (c->expected_rev == TVD_STORE_REV_EXISTS) {
                g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT,
                            "conflict on '%s': the key does not exist", c->key);
            } else {
                g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT,
                            "conflict on '%s': mod_revision is %" G_GINT64_FORMAT
                            ", expected %" G_GINT64_FORMAT,
                            c->key, actual, c->expected_rev);
            }
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean sqlite_txn_commit(TvdStore *store, const TvdStoreTxn *txn,
                                  gint64 *out_rev, gint64 *out_actual_rev,
                                  GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    gboolean ok = FALSE;
    gint64 cur = 0, seq = 0;

    g_mutex_lock(&s->lock);
    if (!exec_stmt(s, STMT_BEGIN_IMMEDIATE, error) ||
        !meta_get(s, "revision", &cur, error) ||
        !check_compares(s, txn, out_actual_rev, error)) {
        goto out;
    }
    gint64 rev = cur + 1;
    for (guint i = 0; i < txn->ops->len; i++) {
        const TvdStoreOp *op = &g_array_index(txn->ops, TvdStoreOp, i);
        gboolean step;
        switch (op->type) {
        case TVD_STORE_OP_PUT:
            step = do_put(s, rev, &seq, op, error);
            break;
        case TVD_STORE_OP_DELETE:
            step = delete_key(s, rev, &seq, op->key, error);
            break;
        case TVD_STORE_OP_DELETE_PREFIX:
        default:
            step = do_delete_prefix(s, rev, &seq, op->key, error);
            break;
        }
        if (!step) {
            goto out;
        }
    }
    if (seq == 0) {
        /* Nothing changed: no revision consumed. */
        ok = exec_stmt(s, STMT_ROLLBACK, error);
        if (ok && out_rev) {
            *out_rev = cur;
        }
        goto out;
    }
    if (!meta_set(s, "revision", rev, error) ||
        !exec_stmt(s, STMT_COMMIT, error)) {
        goto out;
    }
    ok = TRUE;
    if (out_rev) {
        *out_rev = rev;
    }
    wake_watchers_locked(s);
out:
    if (!ok) {
        rollback(s);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

static gboolean sqlite_compact(TvdStore *store, gint64 rev, GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    gboolean ok = FALSE;
    gint64 cur = 0, old = 0;

    g_mutex_lock(&s->lock);
    if (!exec_stmt(s, STMT_BEGIN_IMMEDIATE, error) ||
        !meta_get(s, "revision", &cur, error) ||
        !meta_get(s, "compact_revision", &old, error)) {
        goto out;
    }
    if (rev > cur) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "cannot compact to %" G_GINT64_FORMAT ", beyond the "
                    "current revision %" G_GINT64_FORMAT, rev, cur);
        goto out;
    }
    if (rev > old) {
        sqlite3_stmt *st = stmt(s, STMT_EVENTS_COMPACT, error);
        if (!st) {
            goto out;
        }
        sqlite3_bind_int64(st, 1, rev);
        if (!step_done(s, st, "compact", error) ||
            !meta_set(s, "compact_revision", rev, error)) {
            goto out;
        }
    }
    ok = exec_stmt(s, STMT_COMMIT, error);
    if (ok) {
        wake_watchers_locked(s);
    }
out:
    if (!ok) {
        rollback(s);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

/* ---- Leases ---------------------------------------------------------------------------- */

static gboolean sqlite_lease_grant(TvdStore *store, gint64 ttl,
                                   gint64 *out_lease, GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    gboolean ok = FALSE;
    g_mutex_lock(&s->lock);
    sqlite3_stmt *st = stmt(s, STMT_LEASE_ADD, error);
    if (st) {
        sqlite3_bind_int64(st, 1, ttl);
        sqlite3_bind_int64(st, 2, g_get_real_time());
        ok = step_done(s, st, "grant lease", error);
        if (ok && out_lease) {
            *out_lease = sqlite3_last_insert_rowid(s->db);
        }
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

static gboolean lease_exists_locked(SqliteStore *s, gint64 lease,
                                    GError **error)
{
    sqlite3_stmt *st = stmt(s, STMT_LEASE_GET, error);
    if (!st) {
        return FALSE;
    }
    sqlite3_bind_int64(st, 1, lease);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) {
        return TRUE;
    }
    if (rc == SQLITE_DONE) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND,
                    "no lease %" G_GINT64_FORMAT, lease);
        return FALSE;
    }
    return db_fail(s, rc, "lease lookup", error);
}

/* The SQLite backend never expires leases: keepalive only checks the id. */
static gboolean sqlite_lease_keepalive(TvdStore *store, gint64 lease,
                                       GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    g_mutex_lock(&s->lock);
    gboolean ok = lease_exists_locked(s, lease, error);
    g_mutex_unlock(&s->lock);
    return ok;
}

static gboolean sqlite_lease_revoke(TvdStore *store, gint64 lease,
                                    GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    g_autoptr(GPtrArray) keys = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = FALSE;
    gint64 cur = 0, seq = 0;

    g_mutex_lock(&s->lock);
    if (!exec_stmt(s, STMT_BEGIN_IMMEDIATE, error) ||
        !lease_exists_locked(s, lease, error) ||
        !meta_get(s, "revision", &cur, error)) {
        goto out;
    }
    sqlite3_stmt *st = stmt(s, STMT_LEASE_KEYS, error);
    if (!st) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, lease);
    if (!collect_keys(s, st, keys, error) ||
        !delete_keys(s, cur + 1, &seq, keys, error)) {
        goto out;
    }
    st = stmt(s, STMT_LEASE_DELETE, error);
    if (!st) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, lease);
    if (!step_done(s, st, "revoke lease", error) ||
        (seq > 0 && !meta_set(s, "revision", cur + 1, error)) ||
        !exec_stmt(s, STMT_COMMIT, error)) {
        goto out;
    }
    ok = TRUE;
    if (seq > 0) {
        wake_watchers_locked(s);
    }
out:
    if (!ok) {
        rollback(s);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

/* ---- Watches ---------------------------------------------------------------------------- */

typedef struct {
    TvdStoreEventType type;
    gint64 rev;
    gint64 seq;
    char *key;
    GBytes *value;
} PendingEvent;

static void pending_clear(gpointer p)
{
    PendingEvent *e = p;
    g_free(e->key);
    g_clear_pointer(&e->value, g_bytes_unref);
}

/*
 * Reads up to WATCH_BATCH events at or after the watcher's cursor in one
 * read transaction. *out_current is the store revision at that moment and
 * *out_compacted the compaction revision.
 */
static gboolean read_events(SqliteStore *s, Watcher *w, GArray *events,
                            gint64 *out_current, gint64 *out_compacted,
                            GError **error)
{
    gboolean ok = FALSE;
    int rc = SQLITE_OK;

    g_mutex_lock(&s->lock);
    if (!exec_stmt(s, STMT_BEGIN, error) ||
        !meta_get(s, "revision", out_current, error) ||
        !meta_get(s, "compact_revision", out_compacted, error)) {
        goto out;
    }
    if (w->next_rev < *out_compacted) {
        ok = exec_stmt(s, STMT_COMMIT, error);
        goto out;
    }
    int id = w->prefix[0] == '\0' ? STMT_EVENTS_ALL
             : w->prefix_end ? STMT_EVENTS_RANGE : STMT_EVENTS_FROM;
    sqlite3_stmt *st = stmt(s, id, error);
    if (!st) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, w->next_rev);
    sqlite3_bind_int64(st, 2, w->next_seq);
    sqlite3_bind_int(st, 3, WATCH_BATCH);
    if (id != STMT_EVENTS_ALL) {
        bind_prefix(st, 4, w->prefix);
    }
    if (id == STMT_EVENTS_RANGE) {
        bind_prefix(st, 5, w->prefix_end);
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        PendingEvent e = {
            .rev = sqlite3_column_int64(st, 0),
            .seq = sqlite3_column_int64(st, 1),
            .key = g_strndup((const char *)sqlite3_column_text(st, 2),
                             (gsize)sqlite3_column_bytes(st, 2)),
            .type = (TvdStoreEventType)sqlite3_column_int(st, 3),
        };
        if (e.type == TVD_STORE_EVENT_PUT) {
            e.value = column_bytes(st, 4);
        } else if (e.type != TVD_STORE_EVENT_DELETE) {
            g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT,
                        "%s: event %" G_GINT64_FORMAT ".%" G_GINT64_FORMAT
                        " has unknown type %d", s->path, e.rev, e.seq,
                        (int)e.type);
            pending_clear(&e);
            sqlite3_reset(st);
            goto out;
        }
        g_array_append_val(events, e);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        db_fail(s, rc, "read events", error);
        goto out;
    }
    ok = exec_stmt(s, STMT_COMMIT, error);
out:
    if (!ok) {
        rollback(s);
    }
    g_mutex_unlock(&s->lock);
    return ok;
}

/* Destroys outside the lock: the destroy notify may call into the store. */
static void watcher_remove(SqliteStore *s, guint id)
{
    gpointer src = NULL;
    g_mutex_lock(&s->lock);
    if (s->watchers) {
        g_hash_table_steal_extended(s->watchers, GUINT_TO_POINTER(id), NULL,
                                    &src);
    }
    g_mutex_unlock(&s->lock);
    if (src) {
        g_source_destroy(src);
        g_source_unref(src);
    }
}

/*
 * Sets the next poll unless a commit has made the source ready meanwhile:
 * under the lock that commits hold while they wake watches, so no wake-up
 * is overwritten.
 */
static void schedule_poll(SqliteStore *s, GSource *source, guint ms)
{
    g_mutex_lock(&s->lock);
    if (g_source_get_ready_time(source) == -1) {
        g_source_set_ready_time(source, g_get_monotonic_time() +
                                (gint64)ms * 1000);
    }
    g_mutex_unlock(&s->lock);
}

static gboolean watcher_dispatch(GSource *source, GSourceFunc cb,
                                 gpointer data)
{
    Watcher *w = (Watcher *)source;
    SqliteStore *s = w->store;
    g_autoptr(GArray) events = g_array_new(FALSE, TRUE, sizeof(PendingEvent));
    g_autoptr(GError) err = NULL;
    gint64 current = 0, compacted = 0;

    (void)cb;
    (void)data;
    g_source_set_ready_time(source, -1);
    g_array_set_clear_func(events, pending_clear);

    /* Keep the store alive while callbacks may drop the caller's ref. */
    tvd_store_ref(&s->parent);
    if (!read_events(s, w, events, &current, &compacted, &err)) {
        g_warning("watch %u: %s; retrying", w->id, err->message);
        schedule_poll(s, source, MAX(w->poll_ms, 1000u));
        goto out;
    }
    if (w->next_rev < compacted) {
        TvdStoreEvent ev = { TVD_STORE_EVENT_COMPACTED, compacted, NULL, NULL };
        guint id = w->id;
        w->func(&s->parent, &ev, w->user_data);
        watcher_remove(s, id);
        goto out;
    }
    for (guint i = 0; i < events->len; i++) {
        const PendingEvent *e = &g_array_index(events, PendingEvent, i);
        TvdStoreEvent ev = { e->type, e->rev, e->key, e->value };
        w->next_rev = e->rev;
        w->next_seq = e->seq + 1;
        w->func(&s->parent, &ev, w->user_data);
        if (g_source_is_destroyed(source)) {
            goto out;
        }
    }
    if (events->len == WATCH_BATCH) {
        g_source_set_ready_time(source, 0);     /* more to read */
    } else {
        if (current + 1 > w->next_rev) {
            w->next_rev = current + 1;
            w->next_seq = 0;
        }
        if (w->poll_ms) {
            schedule_poll(s, source, w->poll_ms);
        }
    }
out:
    tvd_store_unref(&s->parent);
    return G_SOURCE_CONTINUE;
}

static void watcher_finalize(GSource *source)
{
    Watcher *w = (Watcher *)source;
    if (w->destroy) {
        w->destroy(w->user_data);
    }
    g_free(w->prefix);
    g_free(w->prefix_end);
}

static GSourceFuncs watcher_funcs = {
    .dispatch = watcher_dispatch,
    .finalize = watcher_finalize,
};

static guint sqlite_watch(TvdStore *store, const char *prefix, gint64 from_rev,
                          GMainContext *context, TvdStoreWatchFunc func,
                          gpointer user_data, GDestroyNotify destroy,
                          GError **error)
{
    SqliteStore *s = (SqliteStore *)store;
    gint64 cur = 0, compacted = 0;
    guint id = 0;

    g_mutex_lock(&s->lock);
    if (!exec_stmt(s, STMT_BEGIN, error) ||
        !meta_get(s, "revision", &cur, error) ||
        !meta_get(s, "compact_revision", &compacted, error) ||
        !exec_stmt(s, STMT_COMMIT, error)) {
        rollback(s);
        goto out;
    }
    if (from_rev == 0) {
        from_rev = cur + 1;
    }
    if (from_rev < compacted) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_COMPACTED,
                    "revision %" G_GINT64_FORMAT " was compacted (history "
                    "starts at %" G_GINT64_FORMAT ")", from_rev, compacted);
        goto out;
    }
    Watcher *w = (Watcher *)g_source_new(&watcher_funcs, sizeof(Watcher));
    g_source_set_static_name(&w->source, "tvd-store watch");
    w->store = s;
    w->prefix = g_strdup(prefix);
    w->prefix_end = prefix[0] ? tvd_store_prefix_end(prefix) : NULL;
    w->next_rev = from_rev;
    w->next_seq = 0;
    w->poll_ms = s->poll_ms;
    w->func = func;
    w->user_data = user_data;
    w->destroy = destroy;
    /* Ready at once when there is history to replay, else on next change. */
    if (from_rev <= cur) {
        g_source_set_ready_time(&w->source, 0);
    } else if (w->poll_ms) {
        g_source_set_ready_time(&w->source, g_get_monotonic_time() +
                                (gint64)w->poll_ms * 1000);
    }
    do {
        id = ++s->next_watch_id;
    } while (id == 0 || g_hash_table_contains(s->watchers, GUINT_TO_POINTER(id)));
    w->id = id;
    g_hash_table_insert(s->watchers, GUINT_TO_POINTER(id), w);
    g_source_attach(&w->source, context);
out:
    g_mutex_unlock(&s->lock);
    return id;
}

static void sqlite_unwatch(TvdStore *store, guint watch_id)
{
    watcher_remove((SqliteStore *)store, watch_id);
}

/* ---- Open and close ------------------------------------------------------------------- */

static void watcher_unref(gpointer p)
{
    GSource *src = p;
    g_source_destroy(src);
    g_source_unref(src);
}

static void sqlite_finalize(TvdStore *store)
{
    SqliteStore *s = (SqliteStore *)store;

    g_mutex_lock(&s->lock);
    g_autoptr(GHashTable) watchers = g_steal_pointer(&s->watchers);
    g_mutex_unlock(&s->lock);
    g_clear_pointer(&watchers, g_hash_table_unref);

    for (int i = 0; i < N_STMTS; i++) {
        sqlite3_finalize(s->stmts[i]);
    }
    if (s->db) {
        int rc = sqlite3_close(s->db);
        if (rc != SQLITE_OK) {
            g_warning("%s: close: %s", s->path, sqlite3_errstr(rc));
        }
    }
    g_mutex_clear(&s->lock);
    g_free(s->path);
    g_free(s);
}

static const TvdStoreBackend sqlite_backend = {
    .name = "sqlite",
    .revision = sqlite_revision,
    .get = sqlite_get,
    .list = sqlite_list,
    .txn_commit = sqlite_txn_commit,
    .watch = sqlite_watch,
    .unwatch = sqlite_unwatch,
    .compact = sqlite_compact,
    .lease_grant = sqlite_lease_grant,
    .lease_keepalive = sqlite_lease_keepalive,
    .lease_revoke = sqlite_lease_revoke,
    .finalize = sqlite_finalize,
};

static gboolean pragma_int(SqliteStore *s, const char *sql, gint64 *out,
                           GError **error)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            *out = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, sql, error);
    }
    return TRUE;
}

static gboolean pragma_text_is(SqliteStore *s, const char *sql,
                               const char *want, GError **error)
{
    sqlite3_stmt *st = NULL;
    gboolean ok = FALSE;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *got = (const char *)sqlite3_column_text(st, 0);
        ok = got && g_ascii_strcasecmp(got, want) == 0;
        if (!ok) {
            g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_IO,
                        "%s: '%s' gave '%s', wanted '%s'", s->path, sql,
                        got ? got : "(null)", want);
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        return db_fail(s, rc, sql, error);
    }
    return ok;
}

static gboolean exec_sql(SqliteStore *s, const char *sql, GError **error)
{
    char *msg = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        g_set_error(error, TVD_STORE_ERROR, io_code(rc), "%s: %s",
                    s->path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return FALSE;
    }
    return TRUE;
}

/* Creates the schema in a fresh file, or checks an existing one. */
static gboolean init_schema(SqliteStore *s, GError **error)
{
    gint64 app_id = 0, version = 0, tables = 0;

    if (!exec_sql(s, "BEGIN IMMEDIATE", error)) {
        return FALSE;
    }
    if (!pragma_int(s, "PRAGMA application_id", &app_id, error) ||
        !pragma_int(s, "PRAGMA user_version", &version, error) ||
        !pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables, error)) {
        goto fail;
    }
    if (app_id == 0 && version == 0 && tables == 0) {
        if (!exec_sql(s, schema_sql, error)) {
            goto fail;
        }
        return exec_sql(s, "COMMIT", error);
    }
    if (app_id != APPLICATION_ID) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT,
                    "%s: not a tvd store (application_id 0x%08" G_GINT64_MODIFIER
                    "x)", s->path, app_id);
        goto fail;
    }
    if (version > TVD_STORE_SQLITE_SCHEMA_VERSION) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_SCHEMA,
                    "%s: store schema version %" G_GINT64_FORMAT " is newer "
                    "than this build understands (%d): upgrade tvd, or "
                    "restore a backup made by this version", s->path, version,
                    TVD_STORE_SQLITE_SCHEMA_VERSION);
        goto fail;
    }
    if (version < 1) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_CORRUPT,
                    "%s: store schema version %" G_GINT64_FORMAT " is invalid",
                    s->path, version);
        goto fail;
    }
    return exec_sql(s, "COMMIT", error);
fail:
    exec_sql(s, "ROLLBACK", NULL);
    return FALSE;
}

/* Creates @path 0600 if missing; tightens an existing file to 0600. */
static gboolean create_private(const char *path, GError **error)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_IO,
                    "%s: %s", path, g_strerror(e));
        return FALSE;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        g_message("%s: mode %04o is too open; setting 0600", path,
                  (unsigned)(st.st_mode & 07777));
        if (fchmod(fd, 0600) != 0) {
            int e = errno;
            g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_IO,
                        "%s: chmod 0600: %s", path, g_strerror(e));
            close(fd);
            return FALSE;
        }
    }
    close(fd);
    return TRUE;
}

TvdStore *tvd_store_sqlite_open(const char *path,
                                const TvdStoreSqliteOptions *options,
                                GError **error)
{
    g_return_val_if_fail(path != NULL, NULL);

    if (!create_private(path, error)) {
        return NULL;
    }
    SqliteStore *s = g_new0(SqliteStore, 1);
    tvd_store_init(&s->parent, &sqlite_backend);
    g_mutex_init(&s->lock);
    s->path = g_strdup(path);
    s->watchers = g_hash_table_new_full(NULL, NULL, NULL, watcher_unref);
    s->poll_ms = options ? options->poll_interval_ms : 0;
    guint busy = options && options->busy_timeout_ms ? options->busy_timeout_ms
                                                      : 5000;
    g_autoptr(TvdStore) store = &s->parent;

    int rc = sqlite3_open_v2(path, &s->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                             SQLITE_OPEN_EXRESCODE, NULL);
    if (rc != SQLITE_OK) {
        db_fail(s, rc, "open", error);
        return NULL;
    }
    sqlite3_busy_timeout(s->db, (int)MIN(busy, (guint)G_MAXINT));
    if (!pragma_text_is(s, "PRAGMA journal_mode=WAL", "wal", error) ||
        !exec_sql(s, options && options->sync_normal ? "PRAGMA synchronous=NORMAL"
                                                     : "PRAGMA synchronous=FULL",
                  error) ||
        !exec_sql(s, "PRAGMA foreign_keys=OFF", error) ||
        !init_schema(s, error)) {
        return NULL;
    }
    return g_steal_pointer(&store);
}
