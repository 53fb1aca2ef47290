/*
 * tvd store: what a backend implements. Only backends include this file.
 *
 * A backend allocates a struct that starts with a TvdStore, fills in the
 * vtable and calls tvd_store_init(). store.c validates every argument
 * (key syntax, sizes, transaction shape) before calling the vtable, so a
 * backend sees only well-formed requests.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_HOST_STORE_BACKEND_H
#define TVD_HOST_STORE_BACKEND_H

#include "store.h"

G_BEGIN_DECLS

typedef enum {
    TVD_STORE_OP_PUT,
    TVD_STORE_OP_DELETE,
    TVD_STORE_OP_DELETE_PREFIX,
} TvdStoreOpType;

typedef struct {
    TvdStoreOpType type;
    char *key;          /* the key, or the prefix for DELETE_PREFIX */
    GBytes *value;      /* PUT only */
    gint64 lease;       /* PUT only */
} TvdStoreOp;

typedef struct {
    char *key;
    gint64 expected_rev;
} TvdStoreCompare;

struct _TvdStoreTxn {
    GArray *compares;   /* of TvdStoreCompare */
    GArray *ops;        /* of TvdStoreOp */
    GError *build_error; /* first invalid argument given to a txn_* call */
};

typedef struct {
    const char *name;
    gboolean (*revision)(TvdStore *store, gint64 *out_rev, GError **error);
    /* NULL + NOT_FOUND when missing. */
    TvdStoreEntry *(*get)(TvdStore *store, const char *key, GError **error);
    GPtrArray *(*list)(TvdStore *store, const char *prefix, gint64 *out_rev,
                       GError **error);
    /*
     * On CONFLICT, *out_actual_rev is the failing key's mod_revision (0 if
     * absent) and the message names the key.
     */
    gboolean (*txn_commit)(TvdStore *store, const TvdStoreTxn *txn,
                           gint64 *out_rev, gint64 *out_actual_rev,
                           GError **error);
    guint (*watch)(TvdStore *store, const char *prefix, gint64 from_rev,
                   GMainContext *context, TvdStoreWatchFunc func,
                   gpointer user_data, GDestroyNotify destroy, GError **error);
    void (*unwatch)(TvdStore *store, guint watch_id);
    gboolean (*compact)(TvdStore *store, gint64 rev, GError **error);
    /* Leases: any of these may be NULL (UNSUPPORTED). */
    gboolean (*lease_grant)(TvdStore *store, gint64 ttl, gint64 *out_lease,
                            GError **error);
    gboolean (*lease_keepalive)(TvdStore *store, gint64 lease, GError **error);
    gboolean (*lease_revoke)(TvdStore *store, gint64 lease, GError **error);
    /* Cancels watches and frees the backend's struct. */
    void (*finalize)(TvdStore *store);
} TvdStoreBackend;

struct _TvdStore {
    const TvdStoreBackend *backend;
    gint ref_count;
};

void tvd_store_init(TvdStore *store, const TvdStoreBackend *backend);

/* Validation helper the backends may reuse. */
/*
 * The smallest key greater than every key starting with @prefix (etcd's
 * "range_end"), or NULL when there is none (prefix "" or all 0xff bytes).
 */
char *tvd_store_prefix_end(const char *prefix);

G_END_DECLS

#endif /* TVD_HOST_STORE_BACKEND_H */
