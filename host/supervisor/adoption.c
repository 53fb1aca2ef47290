/*
 * Adoption: VMs started by others connect to the shared adoption socket
 * and are identified by their device hello and the peer's credentials.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include <glib/gstdio.h>

typedef struct {
    TvdSupervisor *sup;
    TvdDeviceConn *conn;
} AdoptCtx;

static void adopt_closed(TvdDeviceConn *conn, const char *why, void *opaque)
{
    AdoptCtx *ctx = opaque;

    g_message("an unidentified device left: %s", why);
    ctx->sup->adopt_pending = g_list_remove(ctx->sup->adopt_pending, ctx);
    /* Safe inside its own callback: the reader holds a reference. */
    tvd_device_conn_free(conn);
    g_free(ctx);
}

static void adopt_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                        void *opaque);

static const TvdDeviceConnOps adopt_ops = {
    .hello = adopt_hello,
    .closed = adopt_closed,
};

/*
 * A device on the shared socket names itself: by -name when it has one,
 * else by its vm-id. The peer's pid is recorded, so the VM can be told
 * apart from another one that claims the same name later.
 */
static void adopt_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                        void *opaque)
{
    AdoptCtx *ctx = opaque;
    TvdSupervisor *sup = ctx->sup;
    const char *name = h->name[0] ? h->name : h->vm_id;
    TvdVm *vm;
    TvdVerdict pending;

    sup->adopt_pending = g_list_remove(sup->adopt_pending, ctx);
    if (!tvd_api_name_is_valid(name)) {
        g_warning("refusing a device with no usable name (name '%s', "
                  "vm-id '%s')", h->name, h->vm_id);
        adopt_closed(conn, "no usable name", ctx);
        return;
    }
    vm = g_hash_table_lookup(sup->vms, name);
    if (vm && !vm->adopted) {
        g_warning("refusing an adopted device named %s: a launched VM has "
                  "that name", name);
        adopt_closed(conn, "name taken", ctx);
        return;
    }
    if (!vm) {
        vm = tvd_vm_new(sup, name);
        vm->adopted = TRUE;
        tvd_verdict_set(&pending, TVD_STATE_PENDING, TVD_CAUSE_AWAITING,
                        "adopted");
        tvd_vm_set_verdict(vm, &pending);
        vm->since_us = g_get_real_time();
        vm->dir = g_build_filename(sup->cfg->state_dir, "vms", name, NULL);
        g_mkdir_with_parents(vm->dir, 0700);
        g_message("%s: adopted (qemu pid %d, uid %d)", name,
                  (int)tvd_device_conn_peer_pid(conn),
                  (int)tvd_device_conn_peer_uid(conn));
    }
    g_free(ctx);
    tvd_vm_attach_conn(vm, conn, h);
}

static gboolean on_adopt_incoming(GSocketService *service,
                                  GSocketConnection *sc, GObject *src,
                                  gpointer data)
{
    TvdSupervisor *sup = data;
    AdoptCtx *ctx = g_new0(AdoptCtx, 1);

    ctx->sup = sup;
    ctx->conn = tvd_device_conn_new(sc, &adopt_ops, ctx);
    sup->adopt_pending = g_list_prepend(sup->adopt_pending, ctx);
    return TRUE;
}

gboolean tvd_adoption_start(TvdSupervisor *sup, GError **error)
{
    sup->adopt = tvd_supervisor_listen_unix(sup->cfg->adopt_socket,
                                            G_CALLBACK(on_adopt_incoming),
                                            sup, error);
    return sup->adopt != NULL;
}

void tvd_adoption_stop(TvdSupervisor *sup)
{
    if (sup->adopt) {
        g_socket_service_stop(sup->adopt);
        g_socket_listener_close(G_SOCKET_LISTENER(sup->adopt));
        g_clear_object(&sup->adopt);
    }
    while (sup->adopt_pending) {
        AdoptCtx *ctx = sup->adopt_pending->data;

        sup->adopt_pending = g_list_delete_link(sup->adopt_pending,
                                                sup->adopt_pending);
        tvd_device_conn_free(ctx->conn);
        g_free(ctx);
    }
}
