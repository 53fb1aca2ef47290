/*
 * tvd verifier: single-use nonces with expiry.
 *
 * Each nonce is 32 bytes from RAND_bytes, bound to an owner (the VM it was
 * sent to) and valid for a fixed time. Consuming marks it used: the entry
 * stays as a tombstone until its expiry so that a replay is reported as
 * "nonce-reused" rather than "nonce-unknown". The table is capped; expired
 * entries are pruned on every issue and consume.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "verifier.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

typedef struct {
    guint8 nonce[TVD_NONCE_LEN];
    char *owner;
    gint64 expires;
    gboolean used;
} NonceEntry;

struct TvdNonceStore {
    GHashTable *table;              /* GBytes nonce -> NonceEntry */
    guint max;
    gint64 ttl;
    TvdClockFunc clock;
    gpointer clock_data;
};

static void
entry_free(gpointer p)
{
    NonceEntry *e = p;

    g_free(e->owner);
    g_free(e);
}

static gint64
default_clock(gpointer user_data)
{
    (void)user_data;
    return g_get_monotonic_time();
}

TvdNonceStore *
tvd_nonce_store_new(guint max_outstanding, gint64 ttl_us)
{
    TvdNonceStore *store = g_new0(TvdNonceStore, 1);

    store->table = g_hash_table_new_full(g_bytes_hash, g_bytes_equal,
                                         (GDestroyNotify)g_bytes_unref,
                                         entry_free);
    store->max = max_outstanding ? max_outstanding : 1;
    store->ttl = ttl_us > 0 ? ttl_us : 1;
    store->clock = default_clock;
    return store;
}

void
tvd_nonce_store_free(TvdNonceStore *store)
{
    if (!store) {
        return;
    }
    g_hash_table_destroy(store->table);
    g_free(store);
}

void
tvd_nonce_store_set_clock(TvdNonceStore *store, TvdClockFunc func,
                          gpointer user_data)
{
    store->clock = func ? func : default_clock;
    store->clock_data = user_data;
}

static gboolean
expired(gpointer key, gpointer value, gpointer user_data)
{
    const NonceEntry *e = value;

    (void)key;
    return e->expires <= *(const gint64 *)user_data;
}

guint
tvd_nonce_store_prune(TvdNonceStore *store)
{
    gint64 now = store->clock(store->clock_data);

    return g_hash_table_foreach_remove(store->table, expired, &now);
}

guint
tvd_nonce_store_size(TvdNonceStore *store)
{
    return g_hash_table_size(store->table);
}

gboolean
tvd_nonce_store_issue(TvdNonceStore *store, const char *owner,
                      guint8 nonce[TVD_NONCE_LEN], GError **error)
{
    NonceEntry *e;
    GBytes *key;

    tvd_nonce_store_prune(store);
    if (g_hash_table_size(store->table) >= store->max) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_STORE_FULL,
                    "%u nonces outstanding", store->max);
        return FALSE;
    }
    e = g_new0(NonceEntry, 1);
    do {
        if (RAND_bytes(e->nonce, TVD_NONCE_LEN) != 1) {
            entry_free(e);
            return tvd_crypto_fail(error, "RAND_bytes");
        }
        key = g_bytes_new(e->nonce, TVD_NONCE_LEN);
        if (!g_hash_table_contains(store->table, key)) {
            break;
        }
        g_bytes_unref(key);  /* 2^-256: never, but never insert twice */
    } while (TRUE);
    e->owner = g_strdup(owner ? owner : "");
    e->expires = store->clock(store->clock_data) + store->ttl;
    memcpy(nonce, e->nonce, TVD_NONCE_LEN);
    g_hash_table_insert(store->table, key, e);
    return TRUE;
}

gboolean
tvd_nonce_store_consume(TvdNonceStore *store, const char *owner,
                        const guint8 *nonce, gsize nonce_len, GError **error)
{
    g_autoptr(GBytes) key = NULL;
    NonceEntry *e;
    gint64 now = store->clock(store->clock_data);

    if (nonce_len != TVD_NONCE_LEN) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_UNKNOWN,
                    "nonce of %zu bytes (%u expected)", nonce_len,
                    TVD_NONCE_LEN);
        return FALSE;
    }
    key = g_bytes_new(nonce, nonce_len);
    e = g_hash_table_lookup(store->table, key);
    if (!e || CRYPTO_memcmp(e->nonce, nonce, TVD_NONCE_LEN) != 0) {
        tvd_nonce_store_prune(store);
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_UNKNOWN,
                    "nonce was not issued, or is long gone");
        return FALSE;
    }
    if (e->expires <= now) {
        tvd_nonce_store_prune(store);
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_EXPIRED,
                    "nonce expired");
        return FALSE;
    }
    if (e->used) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_REUSED,
                    "nonce already used");
        return FALSE;
    }
    if (g_strcmp0(e->owner, owner ? owner : "") != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_OWNER,
                    "nonce was issued for another VM");
        return FALSE;
    }
    e->used = TRUE;
    tvd_nonce_store_prune(store);
    return TRUE;
}

/* ---- per-owner quotas (the supervisor's VMs) ------------------------------ */

static gboolean
is_used(gpointer key, gpointer value, gpointer user_data)
{
    (void)key;
    (void)user_data;
    return ((const NonceEntry *)value)->used;
}

guint
tvd_nonce_store_make_room(TvdNonceStore *store)
{
    tvd_nonce_store_prune(store);
    if (g_hash_table_size(store->table) < store->max) {
        return 0;
    }
    /* Consumed nonces are only remembered to name a replay precisely (a
     * forgotten one is refused as unknown): live ones come first. */
    return g_hash_table_foreach_remove(store->table, is_used, NULL);
}

static gboolean
outstanding_of(gpointer key, gpointer value, gpointer user_data)
{
    const NonceEntry *e = value;

    (void)key;
    return !e->used && g_strcmp0(e->owner, user_data) == 0;
}

guint
tvd_nonce_store_revoke_owner(TvdNonceStore *store, const char *owner)
{
    return g_hash_table_foreach_remove(store->table, outstanding_of,
                                       (gpointer)(owner ? owner : ""));
}
