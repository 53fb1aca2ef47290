/*
 * The agent's side of the tvd device (docs/device.md): finds the device in
 * sysfs, maps its register and mailbox BARs, sends and receives frames, and
 * gets interrupts through uio_pci_generic when it can (polling otherwise).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_AGENT_TRANSPORT_H
#define TVD_AGENT_TRANSPORT_H

#include <glib.h>
#include <stdint.h>

#include "hw/misc/tvd.h"

G_BEGIN_DECLS

#define TVD_TRANSPORT_ERROR (tvd_transport_error_quark())
GQuark tvd_transport_error_quark(void);

typedef enum {
    TVD_TRANSPORT_ERROR_NO_DEVICE,  /* no tvd device in sysfs */
    TVD_TRANSPORT_ERROR_IO,         /* sysfs or mmap failed */
    TVD_TRANSPORT_ERROR_ABI,        /* magic or ABI version mismatch */
    TVD_TRANSPORT_ERROR_TIMEOUT,    /* device stayed busy */
    TVD_TRANSPORT_ERROR_REJECTED,   /* the device counted an error */
    TVD_TRANSPORT_ERROR_TOO_LARGE,  /* frame larger than a mailbox half */
} TvdTransportError;

typedef struct TvdTransport TvdTransport;

/*
 * Opens the device at @pci_addr ("0000:00:04.0"), or the first tvd device
 * when NULL. @sysfs_root is "/sys" except in tests. @use_uio binds
 * uio_pci_generic when it is available.
 */
TvdTransport *tvd_transport_open(const char *sysfs_root, const char *pci_addr,
                                 gboolean use_uio, GError **error);
void tvd_transport_close(TvdTransport *t);

const char *tvd_transport_address(TvdTransport *t);
uint32_t tvd_transport_read_reg(TvdTransport *t, enum tvd_reg reg);
uint32_t tvd_transport_half_size(TvdTransport *t);

/*
 * The fd to poll for interrupts (readable: call tvd_transport_ack_irq), or
 * -1 when the agent has to poll the registers.
 */
int tvd_transport_irq_fd(TvdTransport *t);
/* Consumes the interrupt, clears INT_STATUS, re-arms INTx; returns causes. */
uint32_t tvd_transport_ack_irq(TvdTransport *t);

/* Sends one frame (header + payload); waits up to @timeout_ms for room. */
gboolean tvd_transport_send(TvdTransport *t, const void *frame, size_t len,
                            int timeout_ms, GError **error);
/* Takes the frame waiting in the H2G half and acknowledges it; NULL if none. */
GBytes *tvd_transport_take(TvdTransport *t);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdTransport, tvd_transport_close)

G_END_DECLS

#endif /* TVD_AGENT_TRANSPORT_H */
