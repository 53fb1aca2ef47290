/*
 * tvd store: the backend-independent half. Validates every argument, builds
 * transactions and forwards to the backend's vtable. See store.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-store"

#include "store-backend.h"

#include <string.h>

G_DEFINE_QUARK(tvd-store-error-quark, tvd_store_error)

void tvd_store_entry_free(TvdStoreEntry *entry)
{
    if (!entry) {
        return;
    }
    g_free(entry->key);
    g_clear_pointer(&entry->value, g_bytes_unref);
    g_free(entry);
}

void tvd_store_init(TvdStore *store, const TvdStoreBackend *backend)
{
    store->backend = backend;
    store->ref_count = 1;
}

TvdStore *tvd_store_ref(TvdStore *store)
{
    g_return_val_if_fail(store != NULL, NULL);
    g_atomic_int_inc(&store->ref_count);
    return store;
}

void tvd_store_unref(TvdStore *store)
{
    if (!store) {
        return;
    }
    if (g_atomic_int_dec_and_test(&store->ref_count)) {
        store->backend->finalize(store);
    }
}

const char *tvd_store_backend_name(TvdStore *store)
{
    return store->backend->name;
}

/* ---- Validation ----------------------------------------------------------- */

gboolean tvd_store_key_is_valid(const char *key, GError **error)
{
    if (!key || key[0] == '\0') {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "empty key");
        return FALSE;
    }
    size_t len = strnlen(key, TVD_STORE_MAX_KEY + 1);
    if (len > TVD_STORE_MAX_KEY) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "key longer than %u bytes", TVD_STORE_MAX_KEY);
        return FALSE;
    }
    if (!g_utf8_validate(key, (gssize)len, NULL)) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "key is not valid UTF-8");
        return FALSE;
    }
    return TRUE;
}

static gboolean prefix_is_valid(const char *prefix, GError **error)
{
    if (!prefix) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "prefix is NULL");
        return FALSE;
    }
    if (prefix[0] == '\0') {
        return TRUE;
    }
    return tvd_store_key_is_valid(prefix, error);
}

static gboolean value_is_valid(GBytes *value, GError **error)
{
    if (!value) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "value is NULL");
        return FALSE;
    }
    if (g_bytes_get_size(value) > TVD_STORE_MAX_VALUE) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "value of %zu bytes is above the cap of %u",
                    g_bytes_get_size(value), TVD_STORE_MAX_VALUE);
        return FALSE;
    }
    return TRUE;
}

char *tvd_store_prefix_end(const char *prefix)
{
    size_t len = strlen(prefix);
    while (len > 0 && (guint8)prefix[len - 1] == 0xff) {
        len--;
    }
    if (len == 0) {
        return NULL;
    }
    char *end = g_strndup(prefix, len);
    end[len - 1] = (char)((guint8)end[len - 1] + 1);
    return end;
}

/* ---- Single-key operations -------------------------------------------------- */

gboolean tvd_store_revision(TvdStore *store, gint64 *out_rev, GError **error)
{
    gint64 rev = 0;
    if (!store->backend->revision(store, &rev, error)) {
        return FALSE;
    }
    if (out_rev) {
        *out_rev = rev;
    }
    return TRUE;
}

TvdStoreEntry *tvd_store_get(TvdStore *store, const char *key, GError **error)
{
    if (!tvd_store_key_is_valid(key, error)) {
        return NULL;
    }
    return store->backend->get(store, key, error);
}

GPtrArray *tvd_store_list(TvdStore *store, const char *prefix,
                          gint64 *out_rev, GError **error)
{
    if (!prefix_is_valid(prefix, error)) {
        return NULL;
    }
    gint64 rev = 0;
    GPtrArray *list = store->backend->list(store, prefix, &rev, error);
    if (list && out_rev) {
        *out_rev = rev;
    }
    return list;
}

gboolean tvd_store_put(TvdStore *store, const char *key, GBytes *value,
                       gint64 *out_rev, GError **error)
{
    g_autoptr(TvdStoreTxn) txn = tvd_store_txn_new();
    tvd_store_txn_put(txn, key, value);
    return tvd_store_txn_commit(store, txn, out_rev, error);
}

gboolean tvd_store_put_string(TvdStore *store, const char *key,
                              const char *value, gint64 *out_rev,
                              GError **error)
{
    g_autoptr(GBytes) bytes = g_bytes_new(value, strlen(value));
    return tvd_store_put(store, key, bytes, out_rev, error);
}

gboolean tvd_store_delete(TvdStore *store, const char *key, gint64 *out_rev,
                          GError **error)
{
    g_autoptr(TvdStoreTxn) txn = tvd_store_txn_new();
    g_autoptr(GError) local = NULL;

    tvd_store_txn_compare(txn, key, TVD_STORE_REV_EXISTS);
    tvd_store_txn_delete(txn, key);
    if (!tvd_store_txn_commit(store, txn, out_rev, &local)) {
        if (g_error_matches(local, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT)) {
            g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND,
                        "no key '%s'", key);
        } else {
            g_propagate_error(error, g_steal_pointer(&local));
        }
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_store_cas(TvdStore *store, const char *key,
                       gint64 expected_rev, GBytes *value,
                       gint64 *out_rev, gint64 *out_actual_rev,
                       GError **error)
{
    g_autoptr(TvdStoreTxn) txn = tvd_store_txn_new();

    if (expected_rev < 0) {
        g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "expected revision %" G_GINT64_FORMAT " is negative",
                    expected_rev);
        return FALSE;
    }
    tvd_store_txn_compare(txn, key, expected_rev);
    if (value) {
        tvd_store_txn_put(txn, key, value);
    } else {
        tvd_store_txn_delete(txn, key);
    }
    if (txn->build_error) {
        g_propagate_error(error, g_steal_pointer(&txn->build_error));
        return FALSE;
    }
    gint64 actual = 0;
    gboolean ok = store->backend->txn_commit(store, txn, out_rev, &actual,
                                             error);
    if (!ok && out_actual_rev) {
        *out_actual_rev = actual;
    }
    return ok;
}

/* ---- Transactions ------------------------------------------------------------ */

static void compare_clear(gpointer p)
{
    TvdStoreCompare *c = p;
    g_free(c->key);
}

static void op_clear(gpointer p)
{
    TvdStoreOp *op = p;
    g_free(op->key);
    g_clear_pointer(&op->value, g_bytes_unref);
}

TvdStoreTxn *tvd_store_txn_new(void)
{
    TvdStoreTxn *txn = g_new0(TvdStoreTxn, 1);
    txn->compares = g_array_new(FALSE, TRUE, sizeof(TvdStoreCompare));
    g_array_set_clear_func(txn->compares, compare_clear);
    txn->ops = g_array_new(FALSE, TRUE, sizeof(TvdStoreOp));
    g_array_set_clear_func(txn->ops, op_clear);
    return txn;
}

void tvd_store_txn_free(TvdStoreTxn *txn)
{
    if (!txn) {
        return;
    }
    g_array_unref(txn->compares);
    g_array_unref(txn->ops);
    g_clear_error(&txn->build_error);
    g_free(txn);
}

/* Records the first bad argument; commit reports it. */
static gboolean txn_check(TvdStoreTxn *txn, gboolean ok, GError *err)
{
    if (!ok && !txn->build_error) {
        txn->build_error = err;
    } else if (err) {
        g_error_free(err);
    }
    return ok;
}

static gboolean txn_valid_key(TvdStoreTxn *txn, const char *key)
{
    GError *err = NULL;
    gboolean ok = tvd_store_key_is_valid(key, &err);
    return txn_check(txn, ok, err);
}

static gboolean txn_valid_value(TvdStoreTxn *txn, GBytes *value)
{
    GError *err = NULL;
    gboolean ok = value_is_valid(value, &err);
    return txn_check(txn, ok, err);
}

static gboolean txn_room(TvdStoreTxn *txn)
{
    GError *err = NULL;
    gboolean ok = txn->compares->len + txn->ops->len < TVD_STORE_MAX_TXN_OPS;
    if (!ok) {
        g_set_error(&err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "transaction has more than %u compares and operations",
                    TVD_STORE_MAX_TXN_OPS);
    }
    return txn_check(txn, ok, err);
}

void tvd_store_txn_compare(TvdStoreTxn *txn, const char *key,
                           gint64 expected_rev)
{
    GError *err = NULL;
    if (!txn_room(txn) || !txn_valid_key(txn, key)) {
        return;
    }
    if (expected_rev < TVD_STORE_REV_EXISTS) {
        g_set_error(&err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "bad expected revision %" G_GINT64_FORMAT, expected_rev);
        txn_check(txn, FALSE, err);
        return;
    }
    TvdStoreCompare c = { g_strdup(key), expected_rev };
    g_array_append_val(txn->compares, c);
}

static gboolean txn_key_unused(TvdStoreTxn *txn, const char *key)
{
    for (guint i = 0; i < txn->ops->len; i++) {
        const TvdStoreOp *op = &g_array_index(txn->ops, TvdStoreOp, i);
        if (op->type != TVD_STORE_OP_DELETE_PREFIX && !strcmp(op->key, key)) {
            GError *err = NULL;
            g_set_error(&err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                        "key '%s' appears twice in one transaction", key);
            return txn_check(txn, FALSE, err);
        }
    }
    return TRUE;
}

void tvd_store_txn_put_lease(TvdStoreTxn *txn, const char *key, GBytes *value,
                             gint64 lease)
{
    GError *err = NULL;
    if (!txn_room(txn) || !txn_valid_key(txn, key) ||
        !txn_valid_value(txn, value) || !txn_key_unused(txn, key)) {
        return;
    }
    if (lease < 0) {
        g_set_error(&err, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                    "negative lease id");
        txn_check(txn, FALSE, err);
        return;
    }
    TvdStoreOp op = { TVD_STORE_OP_PUT, g_strdup(key), g_bytes_ref(value),
                      lease };
    g_array_append_val(txn->ops, op);
}

void tvd_store_txn_put(TvdStoreTxn *txn, const char *key, GBytes *value)
{
    tvd_store_txn_put_lease(txn, key, value, 0);
}

void tvd_store_txn_delete(TvdStoreTxn *txn, const char *key)
{
    if (!txn_room(txn) || !txn_valid_key(txn, key) ||
        !txn_key_unused(txn, key)) {
        return;
    }
    TvdStoreOp op = { TVD_STORE_OP_DELETE, g_strdup(key), NULL, 0 };
    g_array_append_val(txn->ops, op);
}

void tvd_store_txn_delete_prefix(TvdStoreTxn *txn, const char *prefix)
{
    if (!txn_room(txn) || !txn_valid_key(txn, prefix)) {
        return;
    }
    TvdStoreOp op = { TVD_STORE_OP_DELETE_PREFIX, g_strdup(prefix), NULL, 0 };
    g_array_append_val(txn->ops, op);
}

gboolean tvd_store_txn_commit(TvdStore *store, TvdStoreTxn *txn,
                              gint64 *out_rev, GError **error)
{
    if (txn->build_error) {
        g_propagate_error(error, g_error_copy(txn->build_error));
        return FALSE;
    }
    gint64 actual = 0;
    return store->backend->txn_commit(store, txn, out_rev, &actual, error);
}

/* ---- Watches and the rest ------------------------------------------------------ */

guint tvd_store_watch(TvdStore *store, const char *prefix, gint64 from_rev,
                      TvdStoreWatchFunc func, gpointer user_data,
                      GDestroyNotify destroy, GError **error)
{
    if (!prefix_is_valid(prefix, error)) {
        return 0;
    }
    if (!func || from_rev < 0) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "watch needs a callback and a revision >= 0");
        return 0;
    }
    g_autoptr(GMainContext) ctx = g_main_context_ref_thread_default();
    return store->backend->watch(store, prefix, from_rev, ctx, func,
                                 user_data, destroy, error);
}

void tvd_store_unwatch(TvdStore *store, guint watch_id)
{
    if (watch_id != 0) {
        store->backend->unwatch(store, watch_id);
    }
}

gboolean tvd_store_compact(TvdStore *store, gint64 rev, GError **error)
{
    if (rev < 0) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "negative compaction revision");
        return FALSE;
    }
    return store->backend->compact(store, rev, error);
}

static gboolean unsupported(TvdStore *store, const char *what, GError **error)
{
    g_set_error(error, TVD_STORE_ERROR, TVD_STORE_ERROR_UNSUPPORTED,
                "the %s backend has no %s", store->backend->name, what);
    return FALSE;
}

gboolean tvd_store_lease_grant(TvdStore *store, gint64 ttl_seconds,
                               gint64 *out_lease, GError **error)
{
    if (!store->backend->lease_grant) {
        return unsupported(store, "leases", error);
    }
    if (ttl_seconds <= 0) {
        g_set_error_literal(error, TVD_STORE_ERROR, TVD_STORE_ERROR_INVALID,
                            "lease TTL must be positive");
        return FALSE;
    }
    return store->backend->lease_grant(store, ttl_seconds, out_lease, error);
}

gboolean tvd_store_lease_keepalive(TvdStore *store, gint64 lease,
                                   GError **error)
{
    if (!store->backend->lease_keepalive) {
        return unsupported(store, "leases", error);
    }
    return store->backend->lease_keepalive(store, lease, error);
}

gboolean tvd_store_lease_revoke(TvdStore *store, gint64 lease, GError **error)
{
    if (!store->backend->lease_revoke) {
        return unsupported(store, "leases", error);
    }
    return store->backend->lease_revoke(store, lease, error);
}
