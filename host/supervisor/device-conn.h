/*
 * One connection between the supervisor and a tvd device in a QEMU process:
 * reads frames off the chardev stream (common/frame.h), decodes the device's
 * control frames, hands the agent's frames up opaquely, and writes frames
 * back without ever blocking the main loop.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_DEVICE_CONN_H
#define TVD_SUPERVISOR_DEVICE_CONN_H

#include <gio/gio.h>
#include <sys/types.h>

#include "hw/misc/tvd.h"

G_BEGIN_DECLS

typedef struct TvdDeviceConn TvdDeviceConn;

typedef struct {
    /* The device announced itself (first frame of every connection). */
    void (*hello)(TvdDeviceConn *conn, const struct tvd_device_hello *hello,
                  void *opaque);
    void (*event)(TvdDeviceConn *conn, const struct tvd_device_event *ev,
                  void *opaque);
    /* An AGENT frame's payload, not yet looked at. */
    void (*agent)(TvdDeviceConn *conn, GBytes *payload, void *opaque);
    /* The connection is gone (EOF, error, or a protocol violation). */
    void (*closed)(TvdDeviceConn *conn, const char *why, void *opaque);
} TvdDeviceConnOps;

/* Takes a reference on @sc; starts reading at once. */
TvdDeviceConn *tvd_device_conn_new(GSocketConnection *sc,
                                   const TvdDeviceConnOps *ops, void *opaque);
/* Hands the connection's callbacks to a new owner. */
void tvd_device_conn_set_ops(TvdDeviceConn *conn, const TvdDeviceConnOps *ops,
                             void *opaque);
/* Closes the socket; no callback runs after this returns. */
void tvd_device_conn_free(TvdDeviceConn *conn);

/* Credentials of the peer (the QEMU process), -1 when unknown. */
pid_t tvd_device_conn_peer_pid(TvdDeviceConn *conn);
uid_t tvd_device_conn_peer_uid(TvdDeviceConn *conn);

/* Queue frames to the device; they go out as the socket accepts them. */
gboolean tvd_device_conn_set_state(TvdDeviceConn *conn, uint32_t state,
                                   uint32_t reason, GError **error);
gboolean tvd_device_conn_send_agent(TvdDeviceConn *conn, GBytes *payload,
                                    GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdDeviceConn, tvd_device_conn_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_DEVICE_CONN_H */
