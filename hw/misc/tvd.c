/*
 * tvd: Trusted Virtual Domain paravirtual device
 *
 * A register window and a mailbox for the guest's tvd-agent, a chardev to
 * the host's tvd-supervisor, a read-only linkage to the VM's TPM backend and
 * a gate on the VM's NIC link. QEMU relays the agent's frames without
 * parsing their payloads and holds only the membership state it enforces.
 * The ABI lives in include/hw/misc/tvd.h and docs/device.md.
 *
 * Copyright (c) 2026 The tvd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/queue.h"
#include "qemu/units.h"
#include "qemu/uuid.h"
#include "qapi/error.h"
#include "qapi/qapi-commands-net.h"
#include "qapi/qapi-types-tpm.h"
#include "qapi/qapi-visit-tpm.h"
#include "chardev/char-fe.h"
#include "chardev/char-socket.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/qdev-properties-system.h"
#include "migration/vmstate.h"
#include "net/net.h"
#include "system/runstate.h"
#include "system/system.h"
#include "system/tpm_backend.h"
#include "hw/misc/tvd.h"
#include "trace.h"

#define TYPE_TVD "tvd"
OBJECT_DECLARE_SIMPLE_TYPE(TvdState, TVD)

typedef struct TvdH2GFrame {
    QSIMPLEQ_ENTRY(TvdH2GFrame) next;
    uint32_t len;
    uint8_t data[];
} TvdH2GFrame;

struct TvdState {
    PCIDevice parent_obj;

    MemoryRegion regs;
    MemoryRegion mbox;
    uint8_t *mbox_ptr;
    CharBackend chr;
    QEMUBH *reset_bh;
    VMChangeStateEntry *vm_state;

    /* properties */
    char *netdev_id;
    char *tpmdev_id;
    char *domain;
    char *vm_id;
    char *fail_mode_str;
    uint32_t mbox_size;

    /* derived at realize */
    uint32_t features;
    uint32_t fail_mode;
    char *tpm_type;
    char *tpm_path;

    /* guest-visible state, migrated */
    uint32_t state;
    uint32_t reason;
    uint32_t epoch;
    uint32_t int_status;
    uint32_t int_mask;
    uint32_t g2h_len;
    uint32_t h2g_len;
    uint32_t h2g_dropped;
    uint32_t guest_errors;
    uint32_t host_errors;
    uint32_t last_error;
    uint32_t g2h_frames;
    uint32_t h2g_frames;
    bool link_enabled;
    uint32_t mig_dropped;       /* queued frames lost by migration */

    /* connection state, never migrated */
    bool connected;
    bool confirmed;             /* state set over the current connection */
    bool link_up;
    bool migrated_unreported;
    bool powered_on;            /* the power-on reset has happened */
    /* a guest reset while disconnected, not yet acknowledged by a supervisor */
    bool reset_unreported;
    uint32_t resets;            /* guest resets since realize */
    uint8_t instance[16];       /* random at realize: this process */
    bool migrated_unapplied;    /* gate and INT_STATE due when the VM runs */
    uint32_t reported_errors;   /* bitmask of error codes reported */
    uint32_t tx_seq;

    /* device -> supervisor: bounded buffer, written without blocking */
    GByteArray *tx;
    uint32_t tx_off;            /* bytes of tx already written */
    uint64_t tx_queued_total;   /* bytes ever queued on this connection */
    uint64_t tx_written_total;  /* bytes ever written on this connection */
    uint64_t g2h_end;           /* tx_queued_total after the relayed frame */
    bool g2h_busy;
    guint tx_watch;

    /* supervisor -> device: frame reassembly */
    uint8_t rx_hdr[TVD_FRAME_HEADER_SIZE];
    uint32_t rx_hdr_have;
    uint32_t rx_type;
    uint32_t rx_need;           /* payload bytes still to come */
    uint8_t *rx_buf;            /* header + payload when kept, else NULL */
    uint32_t rx_buf_have;
    bool rx_dead;               /* stream out of sync, reset pending */

    /* host -> guest queue, beyond the frame presented in the mailbox */
    QSIMPLEQ_HEAD(, TvdH2GFrame) h2g_queue;
    uint32_t h2g_queued;
    uint64_t h2g_queued_bytes;
};

static inline uint32_t tvd_half(TvdState *s)
{
    return TVD_MBOX_HALF(s->mbox_size);
}

/* ---- interrupts --------------------------------------------------------- */

static void tvd_update_intx(TvdState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!msix_enabled(pdev)) {
        pci_set_irq(pdev, (s->int_status & s->int_mask) != 0);
    }
}

/* Send an MSI-X message if any of @bits is pending and enabled. */
static void tvd_notify(TvdState *s, uint32_t bits)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    trace_tvd_irq(s->int_status, s->int_mask, msix_enabled(pdev));
    if (msix_enabled(pdev)) {
        if (bits & s->int_status & s->int_mask) {
            msix_notify(pdev, 0);
        }
    } else {
        tvd_update_intx(s);
    }
}

static void tvd_raise(TvdState *s, uint32_t bits)
{
    uint32_t fresh = bits & ~s->int_status;

    s->int_status |= bits;
    tvd_notify(s, fresh);
}

/* ---- the NIC link gate -------------------------------------------------- */

static bool tvd_link_wanted(TvdState *s)
{
    return s->state == TVD_STATE_ADMITTED && s->link_enabled &&
           (s->confirmed || s->fail_mode == TVD_FAIL_OPEN);
}

static void tvd_set_link(TvdState *s, bool up)
{
    Error *err = NULL;

    s->link_up = up;
    if (!s->netdev_id || !qemu_find_netdev(s->netdev_id)) {
        /* No netdev, or it is already gone while QEMU shuts down. */
        return;
    }
    trace_tvd_link(s->netdev_id, up);
    qmp_set_link(s->netdev_id, up, &err);
    if (err) {
        /* The netdev was removed behind our back: nothing left to gate. */
        warn_report_err(err);
        s->link_up = false;
    }
}

static void tvd_apply_link(TvdState *s)
{
    tvd_set_link(s, tvd_link_wanted(s));
}

/* ---- device -> supervisor ----------------------------------------------- */

static gboolean tvd_tx_writable(void *do_not_use, GIOCondition cond,
                                void *opaque);

static void tvd_tx_flush(TvdState *s)
{
    while (s->tx_off < s->tx->len) {
        int n = qemu_chr_fe_write(&s->chr, s->tx->data + s->tx_off,
                                  s->tx->len - s->tx_off);
        if (n <= 0) {
            break;
        }
        s->tx_off += n;
        s->tx_written_total += n;
    }
    if (s->tx_off == s->tx->len) {
        g_byte_array_set_size(s->tx, 0);
        s->tx_off = 0;
    } else if (s->tx_off > s->tx->len / 2) {
        /* Compact so that the buffer's bound stays meaningful. */
        g_byte_array_remove_range(s->tx, 0, s->tx_off);
        s->tx_off = 0;
    }
    if (s->g2h_busy && s->tx_written_total >= s->g2h_end) {
        s->g2h_busy = false;
        tvd_raise(s, TVD_INT_G2H_DONE);
    }
    if (s->tx->len && !s->tx_watch && s->connected) {
        s->tx_watch = qemu_chr_fe_add_watch(&s->chr, G_IO_OUT | G_IO_HUP,
                                            tvd_tx_writable, s);
    }
}

static gboolean tvd_tx_writable(void *do_not_use, GIOCondition cond,
                                void *opaque)
{
    TvdState *s = opaque;

    s->tx_watch = 0;
    tvd_tx_flush(s);
    return G_SOURCE_REMOVE;
}

static void tvd_put_header(uint8_t *p, uint8_t type, uint32_t len,
                           uint32_t seq)
{
    stl_le_p(p, TVD_FRAME_MAGIC);
    p[4] = TVD_FRAME_VERSION;
    p[5] = type;
    stw_le_p(p + 6, 0);
    stl_le_p(p + 8, len);
    stl_le_p(p + 12, seq);
}

/* Queue a device-originated control frame; false if the buffer is full. */
static bool tvd_send_control(TvdState *s, uint8_t type, const void *payload,
                             uint32_t len)
{
    uint8_t hdr[TVD_FRAME_HEADER_SIZE];

    if (!s->connected) {
        return false;
    }
    if (s->tx->len - s->tx_off + sizeof(hdr) + len > TVD_TX_BUFFER_MAX) {
        s->host_errors++;
        trace_tvd_host_error(TVD_ERR_H2G_OVERFLOW, s->host_errors);
        return false;
    }
    tvd_put_header(hdr, type, len, ++s->tx_seq);
    g_byte_array_append(s->tx, hdr, sizeof(hdr));
    g_byte_array_append(s->tx, payload, len);
    s->tx_queued_total += sizeof(hdr) + len;
    tvd_tx_flush(s);
    return true;
}

static uint32_t tvd_status(TvdState *s)
{
    return (s->connected ? TVD_STATUS_SUPERVISOR : 0) |
           (s->link_up ? TVD_STATUS_LINK_UP : 0) |
           (s->g2h_busy ? TVD_STATUS_G2H_BUSY : 0) |
           (s->confirmed ? TVD_STATUS_CONFIRMED : 0);
}

static void tvd_send_event(TvdState *s, uint32_t event, uint32_t arg0,
                           uint32_t arg1)
{
    uint8_t ev[sizeof(struct tvd_device_event)];

    stl_le_p(ev, event);
    stl_le_p(ev + 4, arg0);
    stl_le_p(ev + 8, arg1);
    /* The status lets the supervisor see that the link gate took effect. */
    stl_le_p(ev + 12, tvd_status(s));
    tvd_send_control(s, TVD_FRAME_DEVICE_EVENT, ev, sizeof(ev));
}

static void tvd_put_string(uint8_t *dst, size_t size, const char *src)
{
    memset(dst, 0, size);
    if (src) {
        memcpy(dst, src, MIN(strlen(src), size - 1));
    }
}

static void tvd_send_hello(TvdState *s)
{
    uint8_t h[sizeof(struct tvd_device_hello)];

    stl_le_p(h + offsetof(struct tvd_device_hello, abi_version),
             TVD_ABI_VERSION);
    stl_le_p(h + offsetof(struct tvd_device_hello, features), s->features);
    stl_le_p(h + offsetof(struct tvd_device_hello, mailbox_size),
             s->mbox_size);
    stl_le_p(h + offsetof(struct tvd_device_hello, state), s->state);
    stl_le_p(h + offsetof(struct tvd_device_hello, reason), s->reason);
    stl_le_p(h + offsetof(struct tvd_device_hello, epoch), s->epoch);
    stl_le_p(h + offsetof(struct tvd_device_hello, fail_mode), s->fail_mode);
    stl_le_p(h + offsetof(struct tvd_device_hello, status), tvd_status(s));
    tvd_put_string(h + offsetof(struct tvd_device_hello, vm_id), TVD_ID_LEN,
                   s->vm_id);
    tvd_put_string(h + offsetof(struct tvd_device_hello, name), TVD_ID_LEN,
                   qemu_name);
    tvd_put_string(h + offsetof(struct tvd_device_hello, domain), TVD_ID_LEN,
                   s->domain);
    tvd_put_string(h + offsetof(struct tvd_device_hello, netdev_id),
                   TVD_ID_LEN, s->netdev_id);
    tvd_put_string(h + offsetof(struct tvd_device_hello, tpmdev_id),
                   TVD_ID_LEN, s->tpmdev_id);
    tvd_put_string(h + offsetof(struct tvd_device_hello, tpm_type),
                   TVD_ID_LEN, s->tpm_type);
    tvd_put_string(h + offsetof(struct tvd_device_hello, tpm_path),
                   TVD_PATH_LEN, s->tpm_path);
    stl_le_p(h + offsetof(struct tvd_device_hello, resets), s->resets);
    stl_le_p(h + offsetof(struct tvd_device_hello, flags),
             s->reset_unreported ? TVD_HELLO_RESET_UNREPORTED : 0);
    memcpy(h + offsetof(struct tvd_device_hello, instance), s->instance,
           sizeof(s->instance));
    tvd_send_control(s, TVD_FRAME_DEVICE_HELLO, h, sizeof(h));
}

/* ---- errors ------------------------------------------------------------- */

static void tvd_guest_error(TvdState *s, uint32_t code, const char *what)
{
    s->guest_errors++;
    s->last_error = code;
    trace_tvd_guest_error(code, s->guest_errors);
    qemu_log_mask(LOG_GUEST_ERROR, "tvd: %s\n", what);
    tvd_raise(s, TVD_INT_ERROR);
    /*
     * Tell the supervisor once per code and connection: a guest must not
     * be able to flood the host with events.
     */
    if (code < 32 && !(s->reported_errors & (1u << code))) {
        s->reported_errors |= 1u << code;
        tvd_send_event(s, TVD_EVENT_GUEST_ERROR, code, s->guest_errors);
    }
}

static void tvd_host_error(TvdState *s, uint32_t code)
{
    s->host_errors++;
    s->last_error = code;
    trace_tvd_host_error(code, s->host_errors);
    tvd_raise(s, TVD_INT_ERROR);
}

/* ---- host -> guest queue ------------------------------------------------ */

static void tvd_h2g_present(TvdState *s)
{
    TvdH2GFrame *f;

    if (s->h2g_len || QSIMPLEQ_EMPTY(&s->h2g_queue)) {
        return;
    }
    f = QSIMPLEQ_FIRST(&s->h2g_queue);
    QSIMPLEQ_REMOVE_HEAD(&s->h2g_queue, next);
    s->h2g_queued--;
    s->h2g_queued_bytes -= f->len;
    memcpy(s->mbox_ptr + TVD_MBOX_H2G_OFFSET(s->mbox_size), f->data, f->len);
    s->h2g_len = f->len;
    trace_tvd_h2g_frame(f->len, s->h2g_queued);
    g_free(f);
    tvd_raise(s, TVD_INT_H2G);
}

static void tvd_h2g_clear(TvdState *s)
{
    TvdH2GFrame *f;

    while ((f = QSIMPLEQ_FIRST(&s->h2g_queue))) {
        QSIMPLEQ_REMOVE_HEAD(&s->h2g_queue, next);
        g_free(f);
    }
    s->h2g_queued = 0;
    s->h2g_queued_bytes = 0;
}

/* Takes ownership of @data (header + payload). */
static void tvd_h2g_push(TvdState *s, uint8_t *data, uint32_t len)
{
    TvdH2GFrame *f;

    /*
     * The limits are on frames waiting beyond the presented one: a frame
     * that is presented at once (nothing in the H2G half) is never
     * dropped, however large.
     */
    if (s->h2g_len && (s->h2g_queued >= TVD_H2G_QUEUE_MAX ||
                       s->h2g_queued_bytes + len > TVD_H2G_QUEUE_BYTES)) {
        g_free(data);
        s->h2g_dropped++;
        tvd_host_error(s, TVD_ERR_H2G_OVERFLOW);
        tvd_send_event(s, TVD_EVENT_H2G_DROPPED, s->h2g_dropped, 0);
        return;
    }
    f = g_malloc(sizeof(*f) + len);
    f->len = len;
    memcpy(f->data, data, len);
    g_free(data);
    QSIMPLEQ_INSERT_TAIL(&s->h2g_queue, f, next);
    s->h2g_queued++;
    s->h2g_queued_bytes += len;
    tvd_h2g_present(s);
}

/* ---- supervisor -> device ----------------------------------------------- */

static void tvd_apply_state(TvdState *s, uint32_t state, uint32_t reason)
{
    s->state = state;
    s->reason = reason;
    s->confirmed = true;
    /* The supervisor has seen the hello that reported the reset. */
    s->reset_unreported = false;
    s->epoch++;
    trace_tvd_set_state(state, reason, s->epoch);
    tvd_apply_link(s);
    tvd_raise(s, TVD_INT_STATE);
    tvd_send_event(s, TVD_EVENT_STATE_APPLIED, state, s->epoch);
}

static void tvd_handle_control(TvdState *s, uint32_t type,
                               const uint8_t *p, uint32_t len)
{
    switch (type) {
    case TVD_FRAME_SET_STATE: {
        uint32_t state = ldl_le_p(p);

        if (len != sizeof(struct tvd_set_state) ||
            state < TVD_STATE_PENDING || state > TVD_STATE_MAX) {
            tvd_host_error(s, TVD_ERR_HOST_PAYLOAD);
            return;
        }
        tvd_apply_state(s, state, ldl_le_p(p + 4));
        break;
    }
    case TVD_FRAME_SET_LINK: {
        uint32_t enable = ldl_le_p(p);

        if (len != sizeof(struct tvd_set_link) || enable > 1 ||
            ldl_le_p(p + 4) != 0) {
            tvd_host_error(s, TVD_ERR_HOST_PAYLOAD);
            return;
        }
        s->link_enabled = enable;
        tvd_apply_link(s);
        break;
    }
    default:
        g_assert_not_reached();
    }
}

static void tvd_rx_reset(TvdState *s)
{
    g_free(s->rx_buf);
    s->rx_buf = NULL;
    s->rx_buf_have = 0;
    s->rx_hdr_have = 0;
    s->rx_need = 0;
    s->rx_type = 0;
}

static void tvd_reset_bh(void *opaque)
{
    TvdState *s = opaque;

    qemu_chr_fe_disconnect(&s->chr);
}

/* A header is complete: decide whether to keep, skip or give up. */
static void tvd_rx_header(TvdState *s)
{
    const uint8_t *h = s->rx_hdr;
    uint32_t len = ldl_le_p(h + 8);
    uint32_t type = h[5];
    bool keep = false;

    if (ldl_le_p(h) != TVD_FRAME_MAGIC || h[4] != TVD_FRAME_VERSION ||
        lduw_le_p(h + 6) != 0 || len > TVD_FRAME_MAX_PAYLOAD) {
        /* Out of sync: nothing later on this stream can be trusted. */
        tvd_host_error(s, TVD_ERR_HOST_FRAME);
        s->rx_dead = true;
        qemu_bh_schedule(s->reset_bh);
        return;
    }
    switch (type) {
    case TVD_FRAME_SET_STATE:
    case TVD_FRAME_SET_LINK:
        keep = len == 8;
        if (!keep) {
            tvd_host_error(s, TVD_ERR_HOST_PAYLOAD);
        }
        break;
    case TVD_FRAME_AGENT:
        keep = TVD_FRAME_HEADER_SIZE + len <= tvd_half(s);
        if (!keep) {
            tvd_host_error(s, TVD_ERR_HOST_PAYLOAD);
        }
        break;
    default:
        tvd_host_error(s, TVD_ERR_HOST_TYPE);
        break;
    }
    s->rx_type = type;
    s->rx_need = len;
    if (keep) {
        s->rx_buf = g_malloc(TVD_FRAME_HEADER_SIZE + len);
        memcpy(s->rx_buf, h, TVD_FRAME_HEADER_SIZE);
        s->rx_buf_have = TVD_FRAME_HEADER_SIZE;
    }
}

static void tvd_rx_complete(TvdState *s)
{
    uint8_t *buf = s->rx_buf;
    uint32_t len = s->rx_buf_have;

    s->rx_buf = NULL;
    if (buf) {
        if (s->rx_type == TVD_FRAME_AGENT) {
            tvd_h2g_push(s, buf, len);
            buf = NULL;
        } else {
            tvd_handle_control(s, s->rx_type, buf + TVD_FRAME_HEADER_SIZE,
                               len - TVD_FRAME_HEADER_SIZE);
        }
    }
    g_free(buf);
    tvd_rx_reset(s);
}

static int tvd_chr_can_receive(void *opaque)
{
    /*
     * Always read, so that a state push is never stuck behind agent
     * frames for a slow guest: overflow is dropped and counted instead.
     */
    return 64 * KiB;
}

static void tvd_chr_receive(void *opaque, const uint8_t *buf, int size)
{
    TvdState *s = opaque;

    while (size > 0 && !s->rx_dead) {
        if (s->rx_hdr_have < TVD_FRAME_HEADER_SIZE) {
            uint32_t n = MIN(TVD_FRAME_HEADER_SIZE - s->rx_hdr_have,
                             (uint32_t)size);

            memcpy(s->rx_hdr + s->rx_hdr_have, buf, n);
            s->rx_hdr_have += n;
            buf += n;
            size -= n;
            if (s->rx_hdr_have < TVD_FRAME_HEADER_SIZE) {
                return;
            }
            tvd_rx_header(s);
            if (s->rx_dead) {
                return;
            }
        } else {
            uint32_t n = MIN(s->rx_need, (uint32_t)size);

            if (s->rx_buf) {
                memcpy(s->rx_buf + s->rx_buf_have, buf, n);
                s->rx_buf_have += n;
            }
            s->rx_need -= n;
            buf += n;
            size -= n;
        }
        if (s->rx_hdr_have == TVD_FRAME_HEADER_SIZE && s->rx_need == 0) {
            tvd_rx_complete(s);
        }
    }
}

static void tvd_connection_lost(TvdState *s)
{
    if (s->tx_watch) {
        g_source_remove(s->tx_watch);
        s->tx_watch = 0;
    }
    g_byte_array_set_size(s->tx, 0);
    s->tx_off = 0;
    s->tx_queued_total = 0;
    s->tx_written_total = 0;
    if (s->g2h_busy) {
        /* The frame in flight is gone with the connection. */
        s->g2h_busy = false;
        tvd_raise(s, TVD_INT_G2H_DONE);
    }
    tvd_rx_reset(s);
    s->rx_dead = false;
    s->confirmed = false;
}

static void tvd_chr_event(void *opaque, QEMUChrEvent event)
{
    TvdState *s = opaque;

    trace_tvd_chr_event(event);
    switch (event) {
    case CHR_EVENT_OPENED:
        if (s->connected) {
            tvd_connection_lost(s);
        }
        s->connected = true;
        s->tx_seq = 0;
        s->reported_errors = 0;
        s->epoch++;
        tvd_send_hello(s);
        if (s->migrated_unreported) {
            s->migrated_unreported = false;
            tvd_send_event(s, TVD_EVENT_MIGRATED, s->state, s->epoch);
        }
        tvd_apply_link(s);
        tvd_raise(s, TVD_INT_SUPERVISOR | TVD_INT_STATE);
        break;
    case CHR_EVENT_CLOSED:
        if (!s->connected) {
            break;
        }
        s->connected = false;
        tvd_connection_lost(s);
        s->epoch++;
        tvd_apply_link(s);
        tvd_raise(s, TVD_INT_SUPERVISOR | TVD_INT_STATE);
        break;
    default:
        break;
    }
}

/* ---- guest -> host ------------------------------------------------------ */

static void tvd_g2h_doorbell(TvdState *s, uint32_t val)
{
    uint32_t len = s->g2h_len;
    size_t start;
    uint8_t *f;

    if (val != TVD_DOORBELL_SEND) {
        tvd_guest_error(s, TVD_ERR_BAD_DOORBELL, "bad G2H doorbell value");
        return;
    }
    if (s->g2h_busy) {
        tvd_guest_error(s, TVD_ERR_BUSY, "G2H doorbell while busy");
        return;
    }
    if (!s->connected) {
        tvd_guest_error(s, TVD_ERR_NO_SUPERVISOR,
                        "G2H doorbell without a supervisor");
        return;
    }
    if (len < TVD_FRAME_HEADER_SIZE || len > tvd_half(s)) {
        tvd_guest_error(s, TVD_ERR_BAD_LENGTH, "bad G2H length");
        tvd_raise(s, TVD_INT_G2H_DONE);
        return;
    }
    if (s->tx->len - s->tx_off + len > TVD_TX_BUFFER_MAX) {
        tvd_guest_error(s, TVD_ERR_BUSY, "G2H doorbell while host busy");
        return;
    }

    /*
     * Copy the frame out of guest memory first, then look at the copy:
     * the guest cannot change what was checked.
     */
    start = s->tx->len;
    g_byte_array_set_size(s->tx, start + len);
    f = s->tx->data + start;
    memcpy(f, s->mbox_ptr + TVD_MBOX_G2H_OFFSET(s->mbox_size), len);
    if (ldl_le_p(f) != TVD_FRAME_MAGIC || f[4] != TVD_FRAME_VERSION ||
        f[5] != TVD_FRAME_AGENT || lduw_le_p(f + 6) != 0) {
        g_byte_array_set_size(s->tx, start);
        tvd_guest_error(s, TVD_ERR_BAD_FRAME, "bad G2H frame header");
        tvd_raise(s, TVD_INT_G2H_DONE);
        return;
    }
    if (ldl_le_p(f + 8) != len - TVD_FRAME_HEADER_SIZE) {
        /* G2H_LEN is not header + payload length: a bad length (3) */
        g_byte_array_set_size(s->tx, start);
        tvd_guest_error(s, TVD_ERR_BAD_LENGTH,
                        "G2H length does not match the frame header");
        tvd_raise(s, TVD_INT_G2H_DONE);
        return;
    }
    trace_tvd_g2h_frame(len, ldl_le_p(f + 12));
    s->tx_queued_total += len;
    s->g2h_end = s->tx_queued_total;
    s->g2h_busy = true;
    s->g2h_frames++;
    tvd_tx_flush(s);
}

static void tvd_h2g_ack(TvdState *s, uint32_t val)
{
    if (val != TVD_DOORBELL_ACK || !s->h2g_len) {
        tvd_guest_error(s, TVD_ERR_BAD_DOORBELL, "bad H2G acknowledge");
        return;
    }
    s->h2g_len = 0;
    s->h2g_frames++;
    trace_tvd_h2g_ack(s->h2g_queued);
    tvd_h2g_present(s);
}

/* ---- registers ---------------------------------------------------------- */

static uint64_t tvd_reg_read(void *opaque, hwaddr addr, unsigned size)
{
    TvdState *s = opaque;
    uint64_t val = 0;

    if (size != 4 || (addr & 3)) {
        tvd_guest_error(s, TVD_ERR_BAD_ACCESS, "bad register read size");
        return 0;
    }
    switch (addr) {
    case TVD_REG_MAGIC:
        val = TVD_MAGIC;
        break;
    case TVD_REG_VERSION:
        val = TVD_ABI_VERSION;
        break;
    case TVD_REG_FEATURES:
        val = s->features;
        break;
    case TVD_REG_STATE:
        val = s->state;
        break;
    case TVD_REG_REASON:
        val = s->reason;
        break;
    case TVD_REG_EPOCH:
        val = s->epoch;
        break;
    case TVD_REG_MBOX_SIZE:
        val = s->mbox_size;
        break;
    case TVD_REG_STATUS:
        val = tvd_status(s);
        break;
    case TVD_REG_G2H_LEN:
        val = s->g2h_len;
        break;
    case TVD_REG_H2G_LEN:
        val = s->h2g_len;
        break;
    case TVD_REG_H2G_PENDING:
        val = s->h2g_queued + (s->h2g_len ? 1 : 0);
        break;
    case TVD_REG_H2G_DROPPED:
        val = s->h2g_dropped;
        break;
    case TVD_REG_INT_STATUS:
        val = s->int_status;
        break;
    case TVD_REG_INT_MASK:
        val = s->int_mask;
        break;
    case TVD_REG_GUEST_ERRORS:
        val = s->guest_errors;
        break;
    case TVD_REG_HOST_ERRORS:
        val = s->host_errors;
        break;
    case TVD_REG_LAST_ERROR:
        val = s->last_error;
        break;
    case TVD_REG_G2H_FRAMES:
        val = s->g2h_frames;
        break;
    case TVD_REG_H2G_FRAMES:
        val = s->h2g_frames;
        break;
    case TVD_REG_FAIL_MODE:
        val = s->fail_mode;
        break;
    case TVD_REG_G2H_DOORBELL:
    case TVD_REG_H2G_ACK:
        break;  /* write-only: reads as 0 */
    default:
        tvd_guest_error(s, TVD_ERR_BAD_REGISTER, "read of unknown register");
        break;
    }
    trace_tvd_reg_read(addr, val, size);
    return val;
}

static void tvd_reg_write(void *opaque, hwaddr addr, uint64_t val64,
                          unsigned size)
{
    TvdState *s = opaque;
    uint32_t val = val64;

    trace_tvd_reg_write(addr, val64, size);
    if (size != 4 || (addr & 3)) {
        tvd_guest_error(s, TVD_ERR_BAD_ACCESS, "bad register write size");
        return;
    }
    switch (addr) {
    case TVD_REG_G2H_LEN:
        s->g2h_len = val;
        break;
    case TVD_REG_G2H_DOORBELL:
        tvd_g2h_doorbell(s, val);
        break;
    case TVD_REG_H2G_ACK:
        tvd_h2g_ack(s, val);
        break;
    case TVD_REG_INT_STATUS:
        s->int_status &= ~val;
        /* Anything still pending gets a fresh message. */
        tvd_notify(s, s->int_status);
        break;
    case TVD_REG_INT_MASK: {
        uint32_t enabled = val & ~s->int_mask;

        s->int_mask = val & TVD_INT_ALL;
        tvd_notify(s, enabled);
        break;
    }
    default:
        tvd_guest_error(s, TVD_ERR_BAD_REGISTER,
                        "write to read-only or unknown register");
        break;
    }
}

static const MemoryRegionOps tvd_reg_ops = {
    .read = tvd_reg_read,
    .write = tvd_reg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* Accept every access so that bad ones are counted, not lost. */
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/* ---- TPM linkage -------------------------------------------------------- */

static bool tvd_link_tpm(TvdState *s, Error **errp)
{
    TPMBackend *be = qemu_find_tpm_be(s->tpmdev_id);
    TpmTypeOptions *opts;

    if (!be) {
        error_setg(errp, "tvd: tpmdev '%s' not found", s->tpmdev_id);
        return false;
    }
    opts = TPM_BACKEND_GET_CLASS(be)->get_tpm_options(be);
    if (!opts) {
        error_setg(errp, "tvd: tpmdev '%s' has no options", s->tpmdev_id);
        return false;
    }
    s->tpm_type = g_strdup(TpmType_str(opts->type));
    if (opts->type == TPM_TYPE_EMULATOR && opts->u.emulator.data) {
        Chardev *chr = qemu_chr_find(opts->u.emulator.data->chardev);

        if (chr && object_dynamic_cast(OBJECT(chr), TYPE_CHARDEV_SOCKET)) {
            SocketChardev *sc = SOCKET_CHARDEV(chr);

            if (sc->addr && sc->addr->type == SOCKET_ADDRESS_TYPE_UNIX) {
                s->tpm_path = g_strdup(sc->addr->u.q_unix.path);
            }
        }
    } else if (opts->type == TPM_TYPE_PASSTHROUGH &&
               opts->u.passthrough.data) {
        s->tpm_path = g_strdup(opts->u.passthrough.data->path);
    }
    qapi_free_TpmTypeOptions(opts);
    s->features |= TVD_FEAT_TPM_LINK;
    return true;
}

/* ---- lifecycle ---------------------------------------------------------- */

/*
 * After an incoming migration, devices loaded after this one may have set
 * their link again (a NIC's post_load infers its link from its registers):
 * apply the gate, and signal the new epoch, once the VM runs.
 */
static void tvd_vm_state_change(void *opaque, bool running, RunState state)
{
    TvdState *s = opaque;

    if (running && s->migrated_unapplied) {
        s->migrated_unapplied = false;
        tvd_apply_link(s);
        tvd_notify(s, TVD_INT_STATE);
    }
}

static bool tvd_check_string(const char *name, const char *val, Error **errp)
{
    if (val && strlen(val) >= TVD_ID_LEN) {
        error_setg(errp, "tvd: %s is longer than %d bytes", name,
                   TVD_ID_LEN - 1);
        return false;
    }
    return true;
}

static void tvd_realize(PCIDevice *pdev, Error **errp)
{
    TvdState *s = TVD(pdev);

    if (!qemu_chr_fe_backend_connected(&s->chr)) {
        error_setg(errp, "tvd: 'chardev' is required (the supervisor socket)");
        return;
    }
    if (s->mbox_size < TVD_MBOX_SIZE_MIN || s->mbox_size > TVD_MBOX_SIZE_MAX ||
        !is_power_of_2(s->mbox_size)) {
        error_setg(errp, "tvd: mailbox-size %" PRIu32 " must be a power of "
                   "two from %u to %u", s->mbox_size, TVD_MBOX_SIZE_MIN,
                   TVD_MBOX_SIZE_MAX);
        return;
    }
    if (!s->fail_mode_str || !strcmp(s->fail_mode_str, "closed")) {
        s->fail_mode = TVD_FAIL_CLOSED;
    } else if (!strcmp(s->fail_mode_str, "open")) {
        s->fail_mode = TVD_FAIL_OPEN;
    } else {
        error_setg(errp, "tvd: fail-mode must be 'closed' or 'open', not '%s'",
                   s->fail_mode_str);
        return;
    }
    if (!s->vm_id && qemu_uuid_set) {
        s->vm_id = qemu_uuid_unparse_strdup(&qemu_uuid);
    }
    if (!tvd_check_string("vm-id", s->vm_id, errp) ||
        !tvd_check_string("domain", s->domain, errp) ||
        !tvd_check_string("netdev", s->netdev_id, errp) ||
        !tvd_check_string("tpmdev", s->tpmdev_id, errp)) {
        return;
    }
    s->features = TVD_FEAT_H2G_QUEUE;
    if (s->netdev_id) {
        if (!qemu_find_netdev(s->netdev_id)) {
            error_setg(errp, "tvd: netdev '%s' not found", s->netdev_id);
            return;
        }
        s->features |= TVD_FEAT_NET_GATE;
    }
    if (s->tpmdev_id && !tvd_link_tpm(s, errp)) {
        return;
    }

    memory_region_init_io(&s->regs, OBJECT(s), &tvd_reg_ops, s, "tvd-regs",
                          TVD_REGS_SIZE);
    pci_register_bar(pdev, TVD_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    if (!memory_region_init_ram(&s->mbox, OBJECT(s), "tvd-mailbox",
                                s->mbox_size, errp)) {
        return;
    }
    s->mbox_ptr = memory_region_get_ram_ptr(&s->mbox);
    memset(s->mbox_ptr, 0, s->mbox_size);
    pci_register_bar(pdev, TVD_BAR_MAILBOX,
                     PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_PREFETCH |
                     PCI_BASE_ADDRESS_MEM_TYPE_64, &s->mbox);

    pdev->config[PCI_INTERRUPT_PIN] = 1;
    if (msix_init_exclusive_bar(pdev, TVD_MSIX_VECTORS, TVD_BAR_MSIX,
                                NULL) == 0) {
        msix_vector_use(pdev, 0);
        s->features |= TVD_FEAT_MSIX;
    }

    s->tx = g_byte_array_new();
    QSIMPLEQ_INIT(&s->h2g_queue);
    for (size_t i = 0; i < sizeof(s->instance); i += 4) {
        stl_le_p(s->instance + i, g_random_int());
    }
    s->vm_state = qemu_add_vm_change_state_handler(tvd_vm_state_change, s);
    s->reset_bh = qemu_bh_new_guarded(tvd_reset_bh, s,
                                      &DEVICE(pdev)->mem_reentrancy_guard);
    s->state = TVD_STATE_PENDING;
    s->reason = TVD_REASON_AWAITING;
    s->link_enabled = true;
    /* The link is held down from the start: nothing flows before ADMITTED. */
    tvd_apply_link(s);
    qemu_chr_fe_set_handlers(&s->chr, tvd_chr_can_receive, tvd_chr_receive,
                             tvd_chr_event, NULL, s, NULL, true);
}

static void tvd_write_config(PCIDevice *pdev, uint32_t addr, uint32_t val,
                             int len)
{
    bool msix_was_enabled = msix_enabled(pdev);

    pci_default_write_config(pdev, addr, val, len);
    if (msix_was_enabled && !msix_enabled(pdev)) {
        /* Causes still pending go back to the INTx line. */
        tvd_update_intx(TVD(pdev));
    }
}

static void tvd_exit(PCIDevice *pdev)
{
    TvdState *s = TVD(pdev);

    /*
     * In the middle of a frame, either way, the stream would be out of
     * step for the next frontend of the chardev: close the connection.
     */
    if (s->connected &&
        (s->tx->len > s->tx_off || s->rx_hdr_have || s->rx_dead)) {
        qemu_chr_fe_disconnect(&s->chr);
    }
    qemu_chr_fe_deinit(&s->chr, false);
    if (s->tx_watch) {
        g_source_remove(s->tx_watch);
        s->tx_watch = 0;
    }
    /* Without its gatekeeper the VM keeps no network. */
    if (s->netdev_id && qemu_find_netdev(s->netdev_id)) {
        tvd_set_link(s, false);
    }
    qemu_del_vm_change_state_handler(s->vm_state);
    qemu_bh_delete(s->reset_bh);
    tvd_h2g_clear(s);
    tvd_rx_reset(s);
    g_byte_array_unref(s->tx);
    msix_uninit_exclusive_bar(pdev);
    g_free(s->tpm_type);
    g_free(s->tpm_path);
}

static void tvd_reset(DeviceState *dev)
{
    TvdState *s = TVD(dev);
    /* The first reset after realize powers the device on (boot, hot-plug) */
    bool power_on = !s->powered_on;

    s->powered_on = true;
    s->state = TVD_STATE_PENDING;
    s->reason = power_on ? TVD_REASON_AWAITING : TVD_REASON_DEVICE_RESET;
    s->epoch++;
    s->int_status = 0;
    s->int_mask = 0;
    s->g2h_len = 0;
    s->h2g_len = 0;
    tvd_h2g_clear(s);
    tvd_update_intx(s);
    tvd_apply_link(s);
    if (!power_on) {
        s->resets++;
        if (s->connected) {
            tvd_send_event(s, TVD_EVENT_RESET, s->epoch, 0);
        } else {
            /* Latched: the next hello says so, whoever listens then. */
            s->reset_unreported = true;
        }
    }
}

static int tvd_pre_save(void *opaque)
{
    TvdState *s = opaque;

    s->mig_dropped = s->h2g_queued;
    return 0;
}

static int tvd_post_load(void *opaque, int version_id)
{
    TvdState *s = opaque;

    if (s->state < TVD_STATE_PENDING || s->state > TVD_STATE_MAX ||
        s->h2g_len > tvd_half(s)) {
        return -EINVAL;
    }
    s->h2g_dropped += s->mig_dropped;
    s->mig_dropped = 0;
    s->confirmed = false;
    s->epoch++;
    s->int_status |= TVD_INT_STATE;
    s->migrated_unapplied = true;
    tvd_apply_link(s);
    if (s->connected) {
        tvd_send_event(s, TVD_EVENT_MIGRATED, s->state, s->epoch);
    } else {
        s->migrated_unreported = true;
    }
    tvd_update_intx(s);
    return 0;
}

static const VMStateDescription vmstate_tvd = {
    .name = "tvd",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = tvd_pre_save,
    .post_load = tvd_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, TvdState),
        VMSTATE_MSIX(parent_obj, TvdState),
        VMSTATE_UINT32(state, TvdState),
        VMSTATE_UINT32(reason, TvdState),
        VMSTATE_UINT32(epoch, TvdState),
        VMSTATE_UINT32(int_status, TvdState),
        VMSTATE_UINT32(int_mask, TvdState),
        VMSTATE_UINT32(g2h_len, TvdState),
        VMSTATE_UINT32(h2g_len, TvdState),
        VMSTATE_UINT32(h2g_dropped, TvdState),
        VMSTATE_UINT32(guest_errors, TvdState),
        VMSTATE_UINT32(host_errors, TvdState),
        VMSTATE_UINT32(last_error, TvdState),
        VMSTATE_UINT32(g2h_frames, TvdState),
        VMSTATE_UINT32(h2g_frames, TvdState),
        VMSTATE_BOOL(link_enabled, TvdState),
        VMSTATE_UINT32(mig_dropped, TvdState),
        VMSTATE_END_OF_LIST()
    },
};

static const Property tvd_properties[] = {
    DEFINE_PROP_CHR("chardev", TvdState, chr),
    DEFINE_PROP_STRING("netdev", TvdState, netdev_id),
    DEFINE_PROP_STRING("tpmdev", TvdState, tpmdev_id),
    DEFINE_PROP_STRING("domain", TvdState, domain),
    DEFINE_PROP_STRING("vm-id", TvdState, vm_id),
    DEFINE_PROP_UINT32("mailbox-size", TvdState, mbox_size,
                       TVD_MBOX_SIZE_DEFAULT),
    DEFINE_PROP_STRING("fail-mode", TvdState, fail_mode_str),
};

static void tvd_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = tvd_realize;
    k->exit = tvd_exit;
    k->config_write = tvd_write_config;
    k->vendor_id = TVD_PCI_VENDOR_ID;
    k->device_id = TVD_PCI_DEVICE_ID;
    k->revision = TVD_PCI_REVISION;
    k->class_id = TVD_PCI_CLASS;
    dc->desc = "Trusted Virtual Domain membership device";
    dc->hotpluggable = true;
    dc->vmsd = &vmstate_tvd;
    device_class_set_legacy_reset(dc, tvd_reset);
    device_class_set_props(dc, tvd_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo tvd_info = {
    .name = TYPE_TVD,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(TvdState),
    .class_init = tvd_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_CONVENTIONAL_PCI_DEVICE },
        { }
    },
};

static void tvd_register_types(void)
{
    type_register_static(&tvd_info);
}

type_init(tvd_register_types)
