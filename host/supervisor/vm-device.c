/*
 * A VM's device connection: the device's hello, events and the agent's
 * frames, and the socket a launched VM's device connects to.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>

void tvd_vm_detach_conn(TvdVm *vm)
{
    tvd_admission_reset(vm->adm);
    g_clear_pointer(&vm->conn, tvd_device_conn_free);
    vm->have_hello = FALSE;
    vm->device_status = 0;
}

/*
 * What the hello says about the QEMU process and the guest since the last
 * one we heard: a new process (another instance, or another pid than the
 * one we know) or a guest reset while nobody listened means the VM is not
 * the one whose evidence admitted it.
 */
static gboolean hello_breaks_continuity(TvdVm *vm, TvdDeviceConn *conn,
                                        const struct tvd_device_hello *h,
                                        TvdVerdict *why)
{
    pid_t peer = tvd_device_conn_peer_pid(conn);

    if (vm->have_instance &&
        memcmp(vm->device_instance, h->instance, sizeof(h->instance)) != 0) {
        tvd_verdict_set(why, TVD_STATE_PENDING, TVD_CAUSE_NEW_QEMU_PROCESS,
                        "another QEMU process (pid %d) under this name",
                        (int)peer);
        return TRUE;
    }
    if (vm->qemu_pid > 0 && peer > 0 && peer != vm->qemu_pid) {
        tvd_verdict_set(why, TVD_STATE_PENDING, TVD_CAUSE_NEW_QEMU_PROCESS,
                        "the device is in pid %d, not in pid %d", (int)peer,
                        (int)vm->qemu_pid);
        return TRUE;
    }
    if (h->flags & TVD_HELLO_RESET_UNREPORTED) {
        tvd_verdict_set(why, TVD_STATE_PENDING, TVD_CAUSE_GUEST_RESET,
                        "the guest was reset while no supervisor was "
                        "connected (%u resets in all)", h->resets);
        return TRUE;
    }
    return FALSE;
}

static void on_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                     void *opaque)
{
    TvdVm *vm = opaque;
    TvdVerdict why;
    gboolean broken = hello_breaks_continuity(vm, conn, h, &why);

    vm->hello = *h;
    vm->have_hello = TRUE;
    vm->device_status = h->status;
    vm->device_epoch = h->epoch;
    memcpy(vm->device_instance, h->instance, sizeof(h->instance));
    vm->have_instance = TRUE;
    if (vm->adopted && tvd_device_conn_peer_pid(conn) > 0) {
        vm->qemu_pid = tvd_device_conn_peer_pid(conn);
        vm->running = TRUE;
    }
    if (h->vm_id[0]) {
        tvd_vm_set_str(&vm->vm_id, h->vm_id);
    }
    if (!vm->domain && h->domain[0]) {
        tvd_vm_set_str(&vm->domain, h->domain);
    }
    g_message("%s: device hello (vm-id %s, domain %s, device state %s, "
              "qemu pid %d, %u resets%s)", vm->name, h->vm_id, h->domain,
              tvd_state_name(h->state), (int)tvd_device_conn_peer_pid(conn),
              h->resets, h->flags & TVD_HELLO_RESET_UNREPORTED
                         ? ", one unreported" : "");
    /* A new connection: the agent says hello again and is bound anew. */
    tvd_admission_reset(vm->adm);
    /*
     * The device gets the state we hold, never the one it remembers: the
     * supervisor is the authority (in fail-mode closed the link stays down
     * until this push). A member keeps its state over a plain reconnect
     * (a supervisor restart: no flap) while its deadline, which runs from
     * its last verified evidence, lasts; a new QEMU process or a reset we
     * did not see makes it PENDING, link down, until fresh evidence. A
     * late first hello takes back the launch timeout's reason, which
     * pushes the state itself.
     */
    if (broken && vm->state == TVD_STATE_ADMITTED) {
        tvd_vm_hello_timer_cancel(vm);
        tvd_vm_transition(vm, &why, "device");
    } else if (!tvd_vm_hello_arrived(vm)) {
        tvd_vm_record_or_fail(vm);
        tvd_vm_push_state(vm);
    }
}

static void on_event(TvdDeviceConn *conn, const struct tvd_device_event *ev,
                     void *opaque)
{
    TvdVm *vm = opaque;

    vm->device_status = ev->status;
    switch (ev->event) {
    case TVD_EVENT_STATE_APPLIED:
        vm->device_epoch = ev->arg1;
        g_debug("%s: device applied %s at epoch %u (link %s)", vm->name,
                tvd_state_name(ev->arg0), ev->arg1,
                ev->status & TVD_STATUS_LINK_UP ? "up" : "down");
        break;
    case TVD_EVENT_RESET:
        tvd_admission_reset(vm->adm);
        /* A rebooted guest must prove itself again. */
        if (vm->state == TVD_STATE_ADMITTED) {
            TvdVerdict v;

            tvd_verdict_set(&v, TVD_STATE_PENDING, TVD_CAUSE_GUEST_RESET,
                            "re-attestation required");
            tvd_vm_transition(vm, &v, "device");
        } else {
            tvd_vm_push_state(vm);
        }
        break;
    case TVD_EVENT_MIGRATED:
        if (vm->state == TVD_STATE_ADMITTED) {
            TvdVerdict v;

            tvd_verdict_set(&v, TVD_STATE_PENDING, TVD_CAUSE_MIGRATED,
                            "re-attestation required");
            tvd_vm_transition(vm, &v, "device");
        }
        break;
    case TVD_EVENT_H2G_DROPPED:
        g_warning("%s: the device dropped a frame for the agent (%u in all)",
                  vm->name, ev->arg0);
        break;
    case TVD_EVENT_GUEST_ERROR:
        g_warning("%s: the guest misused the device (error %u, %u in all)",
                  vm->name, ev->arg0, ev->arg1);
        break;
    default:
        g_debug("%s: device event %u", vm->name, ev->event);
        break;
    }
}

static void on_agent(TvdDeviceConn *conn, GBytes *payload, void *opaque)
{
    TvdVm *vm = opaque;

    tvd_admission_agent_frame(vm->adm, payload);
}

static void on_closed(TvdDeviceConn *conn, const char *why, void *opaque)
{
    TvdVm *vm = opaque;

    g_message("%s: device connection closed: %s", vm->name, why);
    if (vm->conn == conn) {
        /* Safe inside its own callback: the reader holds a reference. */
        tvd_vm_detach_conn(vm);
    }
}

static const TvdDeviceConnOps vm_conn_ops = {
    .hello = on_hello,
    .event = on_event,
    .agent = on_agent,
    .closed = on_closed,
};

static gboolean on_vm_incoming(GSocketService *service,
                               GSocketConnection *sc, GObject *src,
                               gpointer data)
{
    TvdVm *vm = data;

    if (vm->conn) {
        /* The device reconnected before we saw the old one go. */
        tvd_vm_detach_conn(vm);
    }
    vm->conn = tvd_device_conn_new(sc, &vm_conn_ops, vm);
    return TRUE;
}

GSocketService *tvd_supervisor_listen_unix(const char *path, GCallback cb,
                                           gpointer data, GError **error)
{
    g_autoptr(GSocketService) service = g_socket_service_new();
    g_autoptr(GSocketAddress) addr = NULL;

    g_unlink(path);
    addr = g_unix_socket_address_new(path);
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), addr,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL,
                                       error)) {
        return NULL;
    }
    /* Only the supervisor's user (and QEMU running as it) may connect. */
    if (g_chmod(path, 0600) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot restrict %s: %s", path, g_strerror(errno));
        return NULL;
    }
    g_signal_connect(service, "incoming", cb, data);
    g_socket_service_start(service);
    return g_steal_pointer(&service);
}

gboolean tvd_vm_listen(TvdVm *vm, GError **error)
{
    vm->service = tvd_supervisor_listen_unix(vm->sock_path,
                                             G_CALLBACK(on_vm_incoming), vm,
                                             error);
    return vm->service != NULL;
}

void tvd_vm_attach_conn(TvdVm *vm, TvdDeviceConn *conn,
                        const struct tvd_device_hello *h)
{
    if (vm->conn) {
        tvd_vm_detach_conn(vm);
    }
    vm->conn = conn;
    /* From now on the connection reports to the VM. */
    tvd_device_conn_set_ops(conn, &vm_conn_ops, vm);
    on_hello(conn, h, vm);
}
