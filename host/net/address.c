/*
 * tvd-net: the address allocator (address.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "address.h"

/* Attempts before giving up when other writers keep winning the race. */
#define ASSIGN_ATTEMPTS 32

static gboolean name_valid(const char *what, const char *name, GError **error)
{
    if (!name || !*name || strlen(name) > 255 || strchr(name, '/') ||
        !g_utf8_validate(name, -1, NULL)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "%s name '%s' is empty, too long or has a '/'", what,
                    name ? name : "(null)");
        return FALSE;
    }
    return TRUE;
}

static guint32 u32_of(const guint8 a[4])
{
    return (guint32)a[0] << 24 | (guint32)a[1] << 16 | (guint32)a[2] << 8 | a[3];
}

static void u32_to(guint32 v, guint8 out[4])
{
    out[0] = (guint8)(v >> 24);
    out[1] = (guint8)(v >> 16);
    out[2] = (guint8)(v >> 8);
    out[3] = (guint8)v;
}

static char *text_of(guint32 v)
{
    return g_strdup_printf("%u.%u.%u.%u", v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff,
                           v & 0xff);
}

/* Strict dotted quad ("10.0.0.5", no leading zeros, no junk). */
static gboolean parse_ipv4(const char *s, gsize len, guint32 *out)
{
    guint32 v = 0;
    guint parts = 0;
    gsize i = 0;

    while (parts < 4) {
        guint part = 0;
        gsize start = i;

        while (i < len && g_ascii_isdigit(s[i]) && i - start < 3) {
            part = part * 10 + (guint)(s[i++] - '0');
        }
        if (i == start || part > 255 || (i - start > 1 && s[start] == '0')) {
            return FALSE;
        }
        v = v << 8 | part;
        if (++parts < 4) {
            if (i >= len || s[i++] != '.') {
                return FALSE;
            }
        }
    }
    *out = v;
    return i == len;
}

static char *vm_key(const char *domain, const char *vm)
{
    return g_strdup_printf(TVD_NET_ADDRESS_PREFIX "%s/vm/%s", domain, vm);
}

static char *ip_key(const char *domain, guint32 addr)
{
    g_autofree char *text = text_of(addr);

    return g_strdup_printf(TVD_NET_ADDRESS_PREFIX "%s/ip/%s", domain, text);
}

/* The VM's entry and its parsed address; FALSE with NOT_FOUND when absent. */
static TvdStoreEntry *read_vm(TvdStore *store, const char *domain, const char *vm,
                              guint32 *addr, GError **error)
{
    g_autofree char *key = vm_key(domain, vm);
    g_autoptr(GError) local = NULL;
    g_autoptr(TvdStoreEntry) entry = tvd_store_get(store, key, &local);
    gsize len = 0;
    const char *data;

    if (!entry) {
        g_set_error(error, TVD_NET_ERROR,
                    g_error_matches(local, TVD_STORE_ERROR, TVD_STORE_ERROR_NOT_FOUND) ?
                    TVD_NET_ERROR_NOT_FOUND : TVD_NET_ERROR_STORE,
                    "%s: %s", key, local->message);
        return NULL;
    }
    data = g_bytes_get_data(entry->value, &len);
    if (!data || !parse_ipv4(data, len, addr)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_STORE,
                    "%s does not hold an IPv4 address", key);
        return NULL;
    }
    return g_steal_pointer(&entry);
}

gboolean tvd_net_address_lookup(TvdStore *store, const char *domain, const char *vm,
                                guint8 out[4], GError **error)
{
    g_autoptr(TvdStoreEntry) entry = NULL;
    guint32 addr = 0;

    if (!name_valid("domain", domain, error) || !name_valid("VM", vm, error)) {
        return FALSE;
    }
    entry = read_vm(store, domain, vm, &addr, error);
    if (!entry) {
        return FALSE;
    }
    u32_to(addr, out);
    return TRUE;
}

/* The addresses in use in @domain, as a hash set of guint32. */
static GHashTable *used_addresses(TvdStore *store, const char *domain, GError **error)
{
    g_autofree char *prefix = g_strdup_printf(TVD_NET_ADDRESS_PREFIX "%s/ip/", domain);
    g_autoptr(GPtrArray) entries = tvd_store_list(store, prefix, NULL, error);
    GHashTable *used;

    if (!entries) {
        return NULL;
    }
    used = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < entries->len; i++) {
        const TvdStoreEntry *entry = g_ptr_array_index(entries, i);
        const char *text = entry->key + strlen(prefix);
        guint32 addr;

        if (parse_ipv4(text, strlen(text), &addr)) {
            g_hash_table_add(used, GUINT_TO_POINTER(addr));
        }
    }
    return used;
}

gboolean tvd_net_address_assign(TvdStore *store, const char *domain,
                                const guint8 subnet[4], guint8 prefix,
                                const char *vm, guint8 out[4], GError **error)
{
    guint32 mask, net;

    if (!name_valid("domain", domain, error) || !name_valid("VM", vm, error)) {
        return FALSE;
    }
    mask = prefix >= 8 && prefix <= 30 ? 0xffffffffu << (32 - prefix) : 0;
    net = u32_of(subnet);
    if (!mask || (net & ~mask)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_INVALID,
                    "%u.%u.%u.%u/%u is not a /8../30 network with its host bits zero",
                    subnet[0], subnet[1], subnet[2], subnet[3], prefix);
        return FALSE;
    }

    for (guint attempt = 0; attempt < ASSIGN_ATTEMPTS; attempt++) {
        g_autoptr(GError) local = NULL;
        g_autoptr(TvdStoreEntry) current = NULL;
        g_autoptr(GHashTable) used = NULL;
        g_autoptr(TvdStoreTxn) txn = NULL;
        g_autofree char *vkey = vm_key(domain, vm);
        g_autofree char *ikey = NULL;
        g_autofree char *text = NULL;
        g_autoptr(GBytes) vval = NULL;
        g_autoptr(GBytes) ival = NULL;
        guint32 old = 0;
        guint32 pick = 0;

        current = read_vm(store, domain, vm, &old, &local);
        if (current && (old & mask) == net) {
            u32_to(old, out);
            return TRUE;
        }
        if (!current && !g_error_matches(local, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return FALSE;
        }
        g_clear_error(&local);
        used = used_addresses(store, domain, error);
        if (!used) {
            return FALSE;
        }
        for (guint32 host = 1; host < ~mask; host++) {
            if (!g_hash_table_contains(used, GUINT_TO_POINTER(net | host))) {
                pick = net | host;
                break;
            }
        }
        if (!pick) {
            g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_EXHAUSTED,
                        "domain %s: every address of %u.%u.%u.%u/%u is taken", domain,
                        subnet[0], subnet[1], subnet[2], subnet[3], prefix);
            return FALSE;
        }

        ikey = ip_key(domain, pick);
        text = text_of(pick);
        txn = tvd_store_txn_new();
        tvd_store_txn_compare(txn, vkey, current ? current->mod_revision
                                                 : TVD_STORE_REV_ABSENT);
        tvd_store_txn_compare(txn, ikey, TVD_STORE_REV_ABSENT);
        if (current) {
            /* The subnet changed: the old address goes with the new one's write. */
            g_autofree char *old_key = ip_key(domain, old);

            tvd_store_txn_delete(txn, old_key);
        }
        vval = g_bytes_new(text, strlen(text));
        ival = g_bytes_new(vm, strlen(vm));
        tvd_store_txn_put(txn, vkey, vval);
        tvd_store_txn_put(txn, ikey, ival);
        if (tvd_store_txn_commit(store, txn, NULL, &local)) {
            u32_to(pick, out);
            return TRUE;
        }
        if (!g_error_matches(local, TVD_STORE_ERROR, TVD_STORE_ERROR_CONFLICT)) {
            g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_STORE,
                        "assigning %s to %s: %s", text, vm, local->message);
            return FALSE;
        }
        /* Another writer took the address or the VM: look again. */
    }
    g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_STORE,
                "assigning an address to %s: %u attempts lost to other writers", vm,
                ASSIGN_ATTEMPTS);
    return FALSE;
}

gboolean tvd_net_address_release(TvdStore *store, const char *domain, const char *vm,
                                 GError **error)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(TvdStoreEntry) entry = NULL;
    g_autoptr(TvdStoreTxn) txn = NULL;
    g_autofree char *vkey = NULL;
    g_autofree char *ikey = NULL;
    guint32 addr = 0;

    if (!name_valid("domain", domain, error) || !name_valid("VM", vm, error)) {
        return FALSE;
    }
    entry = read_vm(store, domain, vm, &addr, &local);
    if (!entry) {
        if (g_error_matches(local, TVD_NET_ERROR, TVD_NET_ERROR_NOT_FOUND)) {
            return TRUE;
        }
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    vkey = vm_key(domain, vm);
    ikey = ip_key(domain, addr);
    txn = tvd_store_txn_new();
    tvd_store_txn_compare(txn, vkey, entry->mod_revision);
    tvd_store_txn_delete(txn, vkey);
    tvd_store_txn_delete(txn, ikey);
    if (!tvd_store_txn_commit(store, txn, NULL, &local)) {
        g_set_error(error, TVD_NET_ERROR, TVD_NET_ERROR_STORE, "releasing %s's address: %s",
                    vm, local->message);
        return FALSE;
    }
    return TRUE;
}
