/*
 * QTest for the tvd (Trusted Virtual Domain) PCI device
 *
 * The test plays both sides of the device: the guest through libqos PCI
 * accesses, and the host's supervisor through a unix socket that QEMU's
 * chardev connects to. The ABI under test is include/hw/misc/tvd.h and
 * docs/device.md.
 *
 * Copyright (c) 2026 The tvd authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <glib/gstdio.h>
#include "qemu/bswap.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "qobject/qdict.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/tvd.h"

/* Nothing the test waits for may take longer than this. */
#define TIMEOUT_MS          10000

/* Where the devices sit on the i440fx bus */
#define ISA_SLOT            1
#define TVD_SLOT            4
#define NIC_SLOT            5
#define HOTPLUG_SLOT        6

/* The ISA IRQ (= IOAPIC pin) the test routes every PCI INTx line to */
#define INTX_IRQ            11
#define PIIX_PIRQCA         0x60

/* e1000 */
#define E1000_STATUS        0x8
#define E1000_STATUS_LU     (1u << 1)

/* Guest RAM the MSI-X vector is pointed at */
#define MSI_ADDR            0x100000
#define MSI_DATA            0x4d534958u

#define HELLO_SIZE          ((uint32_t)sizeof(struct tvd_device_hello))
#define STRINGS_END         offsetof(struct tvd_device_hello, resets)
#define HELLO_U32(t, f) \
    ldl_le_p((t)->hello + offsetof(struct tvd_device_hello, f))
#define HELLO_STR(t, f) \
    ((const char *)(t)->hello + offsetof(struct tvd_device_hello, f))

typedef struct Frame {
    uint8_t type;
    uint32_t len;               /* payload bytes */
    uint32_t seq;
    uint8_t *data;              /* header and payload, as received */
} Frame;

typedef struct Tvd {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar regs;
    QPCIBar mbox;
    uint64_t mbox_size;
    int slot;

    QPCIDevice *nic;
    QPCIBar nic_bar;

    /* the fake supervisor */
    char *dir;
    char *path;
    int lfd;
    int fd;
    uint32_t dev_seq;           /* last device-originated sequence number */
    uint32_t ev_status;         /* status field of the last event */
    uint8_t hello[sizeof(struct tvd_device_hello)];
} Tvd;

/* ---- frames ------------------------------------------------------------ */

static uint8_t *frame_new(uint8_t type, const void *payload, uint32_t plen,
                          uint32_t seq)
{
    uint8_t *f = g_malloc0(TVD_FRAME_HEADER_SIZE + plen);

    stl_le_p(f, TVD_FRAME_MAGIC);
    f[4] = TVD_FRAME_VERSION;
    f[5] = type;
    stw_le_p(f + 6, 0);
    stl_le_p(f + 8, plen);
    stl_le_p(f + 12, seq);
    if (payload && plen) {
        memcpy(f + TVD_FRAME_HEADER_SIZE, payload, plen);
    }
    return f;
}

static uint8_t *random_bytes(uint32_t len)
{
    uint8_t *p = g_malloc(len ? len : 1);
    uint32_t i;

    for (i = 0; i < len; i++) {
        p[i] = g_test_rand_int();
    }
    return p;
}

/* An AGENT frame with a random payload of @plen bytes */
static uint8_t *agent_frame(uint32_t plen, uint32_t seq)
{
    g_autofree uint8_t *payload = random_bytes(plen);

    return frame_new(TVD_FRAME_AGENT, payload, plen, seq);
}

static void frame_clear(Frame *f)
{
    g_free(f->data);
    memset(f, 0, sizeof(*f));
}

/* ---- the fake supervisor ----------------------------------------------- */

static bool fd_wait(int fd, short events, gint64 end)
{
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = events };
        gint64 now = g_get_monotonic_time();
        int ms = now >= end ? 0 : (int)((end - now + 999) / 1000);
        int r = poll(&pfd, 1, ms);

        if (r > 0) {
            return true;
        }
        if (r == 0) {
            return false;
        }
        g_assert_cmpint(errno, ==, EINTR);
    }
}

static gint64 deadline_ms(int ms)
{
    return g_get_monotonic_time() + (gint64)ms * 1000;
}

/* Close-on-exec: QEMU must not inherit the listener and keep it alive. */
static void sup_listen(Tvd *t)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };

    g_assert_cmpuint(strlen(t->path), <, sizeof(addr.sun_path));
    memcpy(addr.sun_path, t->path, strlen(t->path) + 1);
    unlink(t->path);
    t->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_assert_cmpint(t->lfd, >=, 0);
    g_assert_cmpint(bind(t->lfd, (struct sockaddr *)&addr, sizeof(addr)),
                    ==, 0);
    g_assert_cmpint(listen(t->lfd, 4), ==, 0);
}

/* Close the connection and stop listening: QEMU cannot reconnect. */
static void sup_drop(Tvd *t)
{
    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    if (t->lfd >= 0) {
        close(t->lfd);
        t->lfd = -1;
    }
}

static void sup_accept(Tvd *t)
{
    bool ready;

    if (t->fd >= 0) {
        close(t->fd);
        t->fd = -1;
    }
    ready = fd_wait(t->lfd, POLLIN, deadline_ms(TIMEOUT_MS));
    if (!ready) {
        g_test_message("supervisor: QEMU did not connect within %d ms",
                       TIMEOUT_MS);
    }
    g_assert_true(ready);
    t->fd = accept4(t->lfd, NULL, NULL, SOCK_CLOEXEC);
    g_assert_cmpint(t->fd, >=, 0);
    t->dev_seq = 0;
}

/* Read exactly @len bytes; false on end of stream or connection reset. */
static bool sup_read_full(Tvd *t, void *buf, size_t len, int timeout_ms)
{
    gint64 end = deadline_ms(timeout_ms);
    uint8_t *p = buf;

    while (len) {
        bool ready = fd_wait(t->fd, POLLIN, end);
        ssize_t n;

        if (!ready) {
            g_test_message("supervisor: timed out reading from QEMU");
        }
        g_assert_true(ready);
        n = recv(t->fd, p, len, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET)) {
            return false;
        }
        if (n < 0) {
            g_assert_cmpint(errno, ==, EINTR);
            continue;
        }
        p += n;
        len -= n;
        end = deadline_ms(timeout_ms);  /* the timeout is on progress */
    }
    return true;
}

static void sup_write(Tvd *t, const void *buf, size_t len)
{
    gint64 end = deadline_ms(TIMEOUT_MS);
    const uint8_t *p = buf;

    while (len) {
        bool ready = fd_wait(t->fd, POLLOUT, end);
        ssize_t n;

        if (!ready) {
            g_test_message("supervisor: timed out writing to QEMU");
        }
        g_assert_true(ready);
        n = send(t->fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            g_assert_cmpint(errno, ==, EINTR);
            continue;
        }
        p += n;
        len -= n;
        end = deadline_ms(TIMEOUT_MS);  /* the timeout is on progress */
    }
}

static void sup_send(Tvd *t, uint8_t type, const void *payload,
                     uint32_t plen, uint32_t seq)
{
    g_autofree uint8_t *f = frame_new(type, payload, plen, seq);

    sup_write(t, f, TVD_FRAME_HEADER_SIZE + plen);
}

static void sup_send_u32x2(Tvd *t, uint8_t type, uint32_t a, uint32_t b)
{
    uint8_t p[8];

    stl_le_p(p, a);
    stl_le_p(p + 4, b);
    sup_send(t, type, p, sizeof(p), 0);
}

/*
 * Receive one frame; false on end of stream. The header is checked, and
 * the device's own frames must be numbered 1, 2, ... per connection.
 */
static bool sup_recv_timeout(Tvd *t, Frame *f, int timeout_ms)
{
    uint8_t hdr[TVD_FRAME_HEADER_SIZE];

    memset(f, 0, sizeof(*f));
    if (!sup_read_full(t, hdr, sizeof(hdr), timeout_ms)) {
        return false;
    }
    g_assert_cmphex(ldl_le_p(hdr), ==, TVD_FRAME_MAGIC);
    g_assert_cmpuint(hdr[4], ==, TVD_FRAME_VERSION);
    g_assert_cmphex(lduw_le_p(hdr + 6), ==, 0);
    f->type = hdr[5];
    f->len = ldl_le_p(hdr + 8);
    f->seq = ldl_le_p(hdr + 12);
    g_assert_cmpuint(f->len, <=, TVD_FRAME_MAX_PAYLOAD);
    f->data = g_malloc(TVD_FRAME_HEADER_SIZE + f->len);
    memcpy(f->data, hdr, sizeof(hdr));
    if (!sup_read_full(t, f->data + TVD_FRAME_HEADER_SIZE, f->len,
                       timeout_ms)) {
        frame_clear(f);
        return false;
    }
    switch (f->type) {
    case TVD_FRAME_DEVICE_HELLO:
        g_assert_cmpuint(f->seq, ==, 1);
        g_assert_cmpuint(f->len, ==, HELLO_SIZE);
        t->dev_seq = 1;
        break;
    case TVD_FRAME_DEVICE_EVENT:
        g_assert_cmpuint(f->seq, ==, t->dev_seq + 1);
        g_assert_cmpuint(f->len, ==, sizeof(struct tvd_device_event));
        /* the STATUS register when the event was sent: connected */
        t->ev_status = ldl_le_p(f->data + TVD_FRAME_HEADER_SIZE +
                                offsetof(struct tvd_device_event, status));
        g_assert_cmphex(t->ev_status & ~(TVD_STATUS_SUPERVISOR |
                        TVD_STATUS_LINK_UP | TVD_STATUS_G2H_BUSY |
                        TVD_STATUS_CONFIRMED), ==, 0);
        g_assert_cmphex(t->ev_status & TVD_STATUS_SUPERVISOR, ==,
                        TVD_STATUS_SUPERVISOR);
        t->dev_seq = f->seq;
        break;
    case TVD_FRAME_AGENT:
        break;
    default:
        g_test_message("supervisor: unexpected frame type 0x%x", f->type);
        g_assert_not_reached();
    }
    return true;
}

static bool sup_recv(Tvd *t, Frame *f)
{
    return sup_recv_timeout(t, f, TIMEOUT_MS);
}

static uint32_t ev_u32(const Frame *f, int i)
{
    return ldl_le_p(f->data + TVD_FRAME_HEADER_SIZE + 4 * i);
}

/*
 * Receive frames until one of @type (and, for events, of @event when it
 * is not 0) arrives; the others are skipped.
 */
static void sup_expect(Tvd *t, uint8_t type, uint32_t event, Frame *f)
{
    for (;;) {
        bool ok = sup_recv(t, f);

        if (!ok) {
            g_test_message("supervisor: connection closed while waiting for "
                           "frame type 0x%x", type);
        }
        g_assert_true(ok);
        if (f->type == type &&
            (type != TVD_FRAME_DEVICE_EVENT || !event ||
             ev_u32(f, 0) == event)) {
            return;
        }
        frame_clear(f);
    }
}

/* Receive frames for @ms; fail if one of @type arrives. */
static void sup_expect_none(Tvd *t, uint8_t type, int ms)
{
    gint64 end = deadline_ms(ms);
    Frame f;

    while (fd_wait(t->fd, POLLIN, end)) {
        g_assert_true(sup_recv(t, &f));
        if (f.type == type) {
            g_test_message("supervisor: unexpected frame type 0x%x", type);
        }
        g_assert_cmpuint(f.type, !=, type);
        frame_clear(&f);
    }
}

/* Receive frames for @ms; fail if an event @event arrives. */
static void sup_expect_no_event(Tvd *t, uint32_t event, int ms)
{
    gint64 end = deadline_ms(ms);
    Frame f;

    while (fd_wait(t->fd, POLLIN, end)) {
        g_assert_true(sup_recv(t, &f));
        if (f.type == TVD_FRAME_DEVICE_EVENT) {
            g_assert_cmpuint(ev_u32(&f, 0), !=, event);
        }
        frame_clear(&f);
    }
}

/* Expect end of stream, skipping whatever is still buffered. */
static void sup_expect_eof(Tvd *t)
{
    Frame f;

    while (sup_recv(t, &f)) {
        frame_clear(&f);
    }
}

static void sup_hello(Tvd *t)
{
    Frame f;

    sup_expect(t, TVD_FRAME_DEVICE_HELLO, 0, &f);
    memcpy(t->hello, f.data + TVD_FRAME_HEADER_SIZE, HELLO_SIZE);
    frame_clear(&f);
}

/* SET_STATE, and wait for the device's STATE_APPLIED; returns its epoch. */
static uint32_t sup_set_state(Tvd *t, uint32_t state, uint32_t reason)
{
    Frame f;
    uint32_t epoch;

    sup_send_u32x2(t, TVD_FRAME_SET_STATE, state, reason);
    sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_STATE_APPLIED, &f);
    g_assert_cmpuint(ev_u32(&f, 1), ==, state);
    epoch = ev_u32(&f, 2);
    frame_clear(&f);
    return epoch;
}

/* ---- the guest --------------------------------------------------------- */

static uint32_t rd(Tvd *t, uint32_t off)
{
    return qpci_io_readl(t->dev, t->regs, off);
}

static void wr(Tvd *t, uint32_t off, uint32_t val)
{
    qpci_io_writel(t->dev, t->regs, off, val);
}

/* Poll a register until (value & @mask) == @want; returns the value. */
static uint32_t wait_reg(Tvd *t, uint32_t off, uint32_t mask, uint32_t want)
{
    gint64 end = deadline_ms(TIMEOUT_MS);
    uint32_t val;

    for (;;) {
        val = rd(t, off);
        if ((val & mask) == want || g_get_monotonic_time() > end) {
            break;
        }
        g_usleep(500);
    }
    if ((val & mask) != want) {
        g_test_message("register 0x%x: 0x%x, waited for 0x%x under mask 0x%x",
                       off, val, want, mask);
    }
    g_assert_cmphex(val & mask, ==, want);
    return val;
}

/* Poll a register for @ms; true if (value & @mask) == @want in time. */
static bool poll_reg(Tvd *t, uint32_t off, uint32_t mask, uint32_t want,
                     int ms)
{
    gint64 end = deadline_ms(ms);

    for (;;) {
        if ((rd(t, off) & mask) == want) {
            return true;
        }
        if (g_get_monotonic_time() > end) {
            return false;
        }
        g_usleep(500);
    }
}

static void mbox_write(Tvd *t, uint64_t off, const void *buf, size_t len)
{
    qtest_bufwrite(t->qts, t->mbox.addr + off, buf, len);
}

static void mbox_read(Tvd *t, uint64_t off, void *buf, size_t len)
{
    qtest_bufread(t->qts, t->mbox.addr + off, buf, len);
}

/* Place @len bytes at the start of the G2H half and ring the doorbell. */
static void g2h_send(Tvd *t, const uint8_t *frame, uint32_t len)
{
    mbox_write(t, TVD_MBOX_G2H_OFFSET(t->mbox_size), frame, len);
    wr(t, TVD_REG_G2H_LEN, len);
    wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
}

/* Expect the next G2H frame to be rejected with @err. */
static void g2h_expect_error(Tvd *t, const uint8_t *frame, uint32_t buflen,
                             uint32_t g2h_len, uint32_t err)
{
    uint32_t errors = rd(t, TVD_REG_GUEST_ERRORS);
    uint32_t frames = rd(t, TVD_REG_G2H_FRAMES);

    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    if (buflen) {
        mbox_write(t, 0, frame, buflen);
    }
    wr(t, TVD_REG_G2H_LEN, g2h_len);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_LEN), ==, g2h_len);
    wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, err);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors + 1);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, frames);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY, ==, 0);
    /* dropped at once: the half is free again, and the error is flagged */
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) &
                    (TVD_INT_G2H_DONE | TVD_INT_ERROR), ==,
                    TVD_INT_G2H_DONE | TVD_INT_ERROR);
}

static void tvd_map(Tvd *t)
{
    if (!t->dev) {
        t->dev = qpci_device_find(t->bus, QPCI_DEVFN(t->slot, 0));
        g_assert_nonnull(t->dev);
    }
    qpci_device_enable(t->dev);
    t->regs = qpci_iomap(t->dev, TVD_BAR_REGS, NULL);
    t->mbox = qpci_iomap(t->dev, TVD_BAR_MAILBOX, &t->mbox_size);
    if (t->nic) {
        qpci_device_enable(t->nic);
        t->nic_bar = qpci_iomap(t->nic, 0, NULL);
    }
}

/* The e1000's own view of its link, after autonegotiation had its time */
static bool nic_link_up(Tvd *t)
{
    qtest_clock_step(t->qts, 1000 * 1000 * 1000);
    return qpci_io_readl(t->nic, t->nic_bar, E1000_STATUS) & E1000_STATUS_LU;
}

static Tvd *tvd_new(void)
{
    Tvd *t = g_new0(Tvd, 1);

    t->dir = g_dir_make_tmp("tvd-test-XXXXXX", NULL);
    g_assert_nonnull(t->dir);
    t->path = g_build_filename(t->dir, "sup.sock", NULL);
    t->lfd = -1;
    t->fd = -1;
    t->slot = TVD_SLOT;
    sup_listen(t);
    return t;
}

/*
 * Start QEMU with the supervisor chardev, @before, the tvd device with
 * @dev_opts, and @after; map the device and take the supervisor
 * connection and its hello.
 */
static Tvd *tvd_launch(const char *before, const char *dev_opts,
                       const char *after)
{
    Tvd *t = tvd_new();

    t->qts = qtest_initf("-nodefaults -machine pc "
                         "-chardev socket,id=sup,path=%s,reconnect-ms=100 "
                         "%s -device tvd,id=tvd0,chardev=sup,addr=%02x.0%s %s",
                         t->path, before ? before : "", TVD_SLOT,
                         dev_opts ? dev_opts : "", after ? after : "");
    t->bus = qpci_new_pc(t->qts, NULL);
    if ((before && strstr(before, "e1000")) ||
        (after && strstr(after, "e1000"))) {
        t->nic = qpci_device_find(t->bus, QPCI_DEVFN(NIC_SLOT, 0));
        g_assert_nonnull(t->nic);
    }
    return t;
}

static Tvd *tvd_start_full(const char *before, const char *dev_opts,
                           const char *after)
{
    Tvd *t = tvd_launch(before, dev_opts, after);

    tvd_map(t);
    sup_accept(t);
    sup_hello(t);
    return t;
}

static Tvd *tvd_start(const char *dev_opts, const char *before)
{
    return tvd_start_full(before, dev_opts, NULL);
}

#define NIC_ARGS "-netdev user,id=n0 -device e1000,netdev=n0,romfile=," \
                 "addr=05.0"

static void tvd_stop(Tvd *t)
{
    g_free(t->nic);
    g_free(t->dev);
    qpci_free_pc(t->bus);
    qtest_quit(t->qts);
    sup_drop(t);
    unlink(t->path);
    g_rmdir(t->dir);
    g_free(t->path);
    g_free(t->dir);
    g_free(t);
}

/* Route every PIIX PIRQ line to INTX_IRQ and watch the IOAPIC. */
static void intx_setup(Tvd *t)
{
    QPCIDevice *isa = qpci_device_find(t->bus, QPCI_DEVFN(ISA_SLOT, 0));
    int i;

    g_assert_nonnull(isa);
    for (i = 0; i < 4; i++) {
        qpci_config_writeb(isa, PIIX_PIRQCA + i, INTX_IRQ);
    }
    g_free(isa);
    qtest_irq_intercept_in(t->qts, "ioapic");
}

/* ---- 1. identity ------------------------------------------------------- */

static void check_identity(Tvd *t, uint32_t features, uint32_t mbox_size,
                           uint32_t fail_mode)
{
    QPCIDevice *d = t->dev;
    uint64_t size;
    uint8_t cap;

    g_assert_cmphex(qpci_config_readw(d, PCI_VENDOR_ID), ==,
                    TVD_PCI_VENDOR_ID);
    g_assert_cmphex(qpci_config_readw(d, PCI_DEVICE_ID), ==,
                    TVD_PCI_DEVICE_ID);
    g_assert_cmphex(qpci_config_readb(d, PCI_REVISION_ID), ==,
                    TVD_PCI_REVISION);
    g_assert_cmphex(qpci_config_readw(d, PCI_CLASS_DEVICE), ==,
                    TVD_PCI_CLASS);
    g_assert_cmphex(qpci_config_readb(d, PCI_INTERRUPT_PIN), ==, 1);
    cap = qpci_find_capability(d, PCI_CAP_ID_MSIX, 0);
    g_assert_cmphex(cap, !=, 0);
    g_assert_cmpuint(qpci_msix_table_size(d), ==, TVD_MSIX_VECTORS);
    g_assert_cmphex(qpci_config_readl(d, cap + PCI_MSIX_TABLE) &
                    PCI_MSIX_FLAGS_BIRMASK, ==, TVD_BAR_MSIX);
    /* BAR2: 64-bit prefetchable memory of mailbox-size bytes */
    g_assert_cmphex(qpci_config_readl(d, PCI_BASE_ADDRESS_2) &
                    ~PCI_BASE_ADDRESS_MEM_MASK, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_64 |
                    PCI_BASE_ADDRESS_MEM_PREFETCH);
    g_assert_cmpuint(t->mbox_size, ==, mbox_size);
    t->regs = qpci_iomap(d, TVD_BAR_REGS, &size);
    g_assert_cmpuint(size, ==, TVD_REGS_SIZE);

    g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
    g_assert_cmpuint(rd(t, TVD_REG_VERSION), ==, TVD_ABI_VERSION);
    g_assert_cmphex(rd(t, TVD_REG_FEATURES), ==, features);
    g_assert_cmpuint(rd(t, TVD_REG_MBOX_SIZE), ==, mbox_size);
    g_assert_cmpuint(rd(t, TVD_REG_FAIL_MODE), ==, fail_mode);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_PENDING);
    /* powered on, not reset by the guest */
    g_assert_cmpuint(rd(t, TVD_REG_REASON), ==, TVD_REASON_AWAITING);
    g_assert_cmphex(rd(t, TVD_REG_INT_MASK), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_NONE);
    /* connected, link down, idle, nothing confirmed yet */
    wait_reg(t, TVD_REG_STATUS, ~0u, TVD_STATUS_SUPERVISOR);
    /* the device also tells the supervisor the truth */
    g_assert_cmphex(HELLO_U32(t, features), ==, features);
    g_assert_cmpuint(HELLO_U32(t, mailbox_size), ==, mbox_size);
    g_assert_cmpuint(HELLO_U32(t, fail_mode), ==, fail_mode);
    g_assert_cmpuint(HELLO_U32(t, reason), ==, TVD_REASON_AWAITING);
}

static void test_identity(void)
{
    Tvd *t = tvd_start(NULL, NULL);

    check_identity(t, TVD_FEAT_MSIX | TVD_FEAT_H2G_QUEUE,
                   TVD_MBOX_SIZE_DEFAULT, TVD_FAIL_CLOSED);
    tvd_stop(t);
}

static void test_identity_options(void)
{
    Tvd *t = tvd_start(",netdev=n0,fail-mode=open,mailbox-size=4096",
                       NIC_ARGS);

    check_identity(t, TVD_FEAT_MSIX | TVD_FEAT_H2G_QUEUE | TVD_FEAT_NET_GATE,
                   TVD_MBOX_SIZE_MIN, TVD_FAIL_OPEN);
    tvd_stop(t);
    t = tvd_start(",mailbox-size=16777216", NULL);
    check_identity(t, TVD_FEAT_MSIX | TVD_FEAT_H2G_QUEUE,
                   TVD_MBOX_SIZE_MAX, TVD_FAIL_CLOSED);
    tvd_stop(t);
}

/* ---- a swtpm for the TPM linkage --------------------------------------- */

typedef struct Swtpm {
    GPid pid;
    char *dir;
    char *ctrl;
} Swtpm;

static bool swtpm_start(Swtpm *s)
{
    g_autofree char *swtpm = g_find_program_in_path("swtpm");
    g_autofree char *state = NULL;
    g_autofree char *ctrl_arg = NULL;
    g_autofree char *state_arg = NULL;
    g_autoptr(GError) err = NULL;
    gint64 end;

    if (!swtpm) {
        g_test_skip("TPM linkage not tested: swtpm is not installed (QEMU's "
                    "emulator tpmdev needs a running swtpm at startup)");
        return false;
    }
    s->dir = g_dir_make_tmp("tvd-swtpm-XXXXXX", NULL);
    g_assert_nonnull(s->dir);
    s->ctrl = g_build_filename(s->dir, "ctrl.sock", NULL);
    state = g_build_filename(s->dir, "state", NULL);
    g_assert_cmpint(g_mkdir(state, 0700), ==, 0);
    ctrl_arg = g_strdup_printf("type=unixio,path=%s", s->ctrl);
    state_arg = g_strdup_printf("dir=%s", state);
    {
        char *argv[] = {
            swtpm, (char *)"socket", (char *)"--tpm2",
            (char *)"--tpmstate", state_arg, (char *)"--ctrl", ctrl_arg,
            (char *)"--flags", (char *)"not-need-init", NULL
        };

        if (!g_spawn_async(NULL, argv, NULL, G_SPAWN_DO_NOT_REAP_CHILD |
                           G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, &s->pid,
                           &err)) {
            g_test_message("cannot start swtpm: %s", err->message);
            g_test_skip("TPM linkage not tested: swtpm does not start");
            return false;
        }
    }
    end = deadline_ms(TIMEOUT_MS);
    while (!g_file_test(s->ctrl, G_FILE_TEST_EXISTS)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(10000);
    }
    return true;
}

static void swtpm_stop(Swtpm *s)
{
    g_autofree char *state = NULL;

    if (s->pid) {
        kill(s->pid, SIGTERM);
        waitpid(s->pid, NULL, 0);
        g_spawn_close_pid(s->pid);
    }
    if (s->dir) {
        g_autoptr(GDir) d = NULL;
        const char *name;

        state = g_build_filename(s->dir, "state", NULL);
        d = g_dir_open(state, 0, NULL);
        while (d && (name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(state, name, NULL);

            unlink(p);
        }
        g_rmdir(state);
        unlink(s->ctrl);
        g_rmdir(s->dir);
    }
    g_free(s->ctrl);
    g_free(s->dir);
}

static void test_identity_tpm(void)
{
    Swtpm sw = { 0 };
    g_autofree char *before = NULL;
    Tvd *t;

    if (!swtpm_start(&sw)) {
        swtpm_stop(&sw);
        return;
    }
    before = g_strdup_printf("-chardev socket,id=tpmchr,path=%s "
                             "-tpmdev emulator,id=tpm0,chardev=tpmchr "
                             "-device tpm-tis,tpmdev=tpm0", sw.ctrl);
    t = tvd_start(",tpmdev=tpm0", before);
    check_identity(t, TVD_FEAT_MSIX | TVD_FEAT_H2G_QUEUE | TVD_FEAT_TPM_LINK,
                   TVD_MBOX_SIZE_DEFAULT, TVD_FAIL_CLOSED);
    g_assert_cmpstr(HELLO_STR(t, tpmdev_id), ==, "tpm0");
    g_assert_cmpstr(HELLO_STR(t, tpm_type), ==, "emulator");
    g_assert_cmpstr(HELLO_STR(t, tpm_path), ==, sw.ctrl);
    tvd_stop(t);
    swtpm_stop(&sw);
}

/* Bad properties are refused with an error; QEMU keeps running. */
static void test_realize_errors(void)
{
    static const char *const bad[][2] = {
        { "{'driver':'tvd','id':'x','addr':'06.0'}", "chardev" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'mailbox-size':3000}", "mailbox-size" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'mailbox-size':65537}", "mailbox-size" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'mailbox-size':33554432}", "mailbox-size" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'netdev':'nope'}", "netdev" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'tpmdev':'nope'}", "tpmdev" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'fail-mode':'ajar'}", "fail-mode" },
        { "{'driver':'tvd','id':'x','chardev':'c2','addr':'06.0',"
          "'domain':'0123456789012345678901234567890123456789"
          "012345678901234567890123'}", "domain" },
    };
    Tvd *t = tvd_start(NULL, "-chardev null,id=c2");
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autofree char *cmd =
            g_strdup_printf("{'execute':'device_add','arguments':%s}",
                            bad[i][0]);
        QDict *rsp, *err;
        const char *desc;

        qtest_qmp_send_raw(t->qts, "%s", cmd);
        rsp = qtest_qmp_receive(t->qts);
        err = qdict_get_qdict(rsp, "error");

        g_assert_nonnull(err);
        desc = qdict_get_str(err, "desc");
        if (!strstr(desc, bad[i][1])) {
            g_test_message("device_add %s: %s", bad[i][0], desc);
        }
        g_assert_nonnull(strstr(desc, bad[i][1]));
        qobject_unref(rsp);
    }
    g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
    tvd_stop(t);
}

/* ---- 2. device hello --------------------------------------------------- */

static void check_hello_common(Tvd *t)
{
    uint32_t status = HELLO_U32(t, status);
    size_t off;

    g_assert_cmpuint(HELLO_U32(t, abi_version), ==, TVD_ABI_VERSION);
    g_assert_cmphex(HELLO_U32(t, features), ==, rd(t, TVD_REG_FEATURES));
    g_assert_cmpuint(HELLO_U32(t, mailbox_size), ==, t->mbox_size);
    g_assert_cmpuint(HELLO_U32(t, state), ==, TVD_STATE_PENDING);
    g_assert_cmpuint(HELLO_U32(t, state), ==, rd(t, TVD_REG_STATE));
    g_assert_cmpuint(HELLO_U32(t, reason), ==, rd(t, TVD_REG_REASON));
    g_assert_cmpuint(HELLO_U32(t, epoch), ==, rd(t, TVD_REG_EPOCH));
    g_assert_cmpuint(HELLO_U32(t, fail_mode), ==, rd(t, TVD_REG_FAIL_MODE));
    g_assert_cmphex(status & TVD_STATUS_SUPERVISOR, ==, TVD_STATUS_SUPERVISOR);
    g_assert_cmphex(status & (TVD_STATUS_LINK_UP | TVD_STATUS_CONFIRMED |
                              TVD_STATUS_G2H_BUSY), ==, 0);
    /*
     * strings are NUL-padded to the end of their fields (the integers and
     * the instance after tpm_path are not strings)
     */
    for (off = offsetof(struct tvd_device_hello, vm_id); off < STRINGS_END;
         off++) {
        size_t base = offsetof(struct tvd_device_hello, vm_id);
        size_t field_end = off < offsetof(struct tvd_device_hello, tpm_path) ?
            base + ((off - base) / TVD_ID_LEN + 1) * TVD_ID_LEN : STRINGS_END;

        if (!t->hello[off]) {
            while (off + 1 < field_end) {
                g_assert_cmphex(t->hello[++off], ==, 0);
            }
        }
    }
}

static void test_hello(void)
{
    Tvd *t = tvd_start(",netdev=n0,domain=blue,vm-id=vm-0042",
                       "-name guest-one " NIC_ARGS);

    check_hello_common(t);
    g_assert_cmpstr(HELLO_STR(t, vm_id), ==, "vm-0042");
    g_assert_cmpstr(HELLO_STR(t, name), ==, "guest-one");
    g_assert_cmpstr(HELLO_STR(t, domain), ==, "blue");
    g_assert_cmpstr(HELLO_STR(t, netdev_id), ==, "n0");
    g_assert_cmpstr(HELLO_STR(t, tpmdev_id), ==, "");
    g_assert_cmpstr(HELLO_STR(t, tpm_type), ==, "");
    g_assert_cmpstr(HELLO_STR(t, tpm_path), ==, "");
    g_assert_cmphex(HELLO_U32(t, features) & TVD_FEAT_NET_GATE, ==,
                    TVD_FEAT_NET_GATE);
    tvd_stop(t);
}

static void test_hello_uuid(void)
{
    static const char uuid[] = "6f2c1a3e-0b1d-4c7a-9e55-3d2f8a9b0c11";
    g_autofree char *before = g_strdup_printf("-uuid %s", uuid);
    Tvd *t = tvd_start(",mailbox-size=131072", before);

    check_hello_common(t);
    g_assert_cmpstr(HELLO_STR(t, vm_id), ==, uuid);
    g_assert_cmpstr(HELLO_STR(t, name), ==, "");
    g_assert_cmpstr(HELLO_STR(t, domain), ==, "");
    g_assert_cmpstr(HELLO_STR(t, netdev_id), ==, "");
    g_assert_cmpuint(HELLO_U32(t, mailbox_size), ==, 131072);
    g_assert_cmphex(HELLO_U32(t, features) & TVD_FEAT_NET_GATE, ==, 0);
    tvd_stop(t);

    /* an explicit vm-id wins over -uuid; no -uuid, no vm-id: empty */
    t = tvd_start(",vm-id=mine,domain=red", before);
    g_assert_cmpstr(HELLO_STR(t, vm_id), ==, "mine");
    g_assert_cmpstr(HELLO_STR(t, domain), ==, "red");
    tvd_stop(t);
    t = tvd_start(NULL, NULL);
    g_assert_cmpstr(HELLO_STR(t, vm_id), ==, "");
    tvd_stop(t);
}

/* ---- 3. guest -> host relay -------------------------------------------- */

static void relay_sizes(Tvd *t)
{
    uint32_t half = TVD_MBOX_HALF(t->mbox_size);
    uint32_t sizes[] = { 0, 1, 7, 100, 4096, half / 2, half - 17,
                         half - TVD_FRAME_HEADER_SIZE };
    uint32_t frames = rd(t, TVD_REG_G2H_FRAMES);
    uint32_t errors = rd(t, TVD_REG_GUEST_ERRORS);
    size_t i;

    for (i = 0; i < G_N_ELEMENTS(sizes); i++) {
        uint32_t len = TVD_FRAME_HEADER_SIZE + sizes[i];
        uint32_t seq = g_test_rand_int();
        g_autofree uint8_t *f = NULL;
        Frame got;

        if (len > half) {
            continue;
        }
        f = agent_frame(sizes[i], seq);
        wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
        wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
        g2h_send(t, f, len);
        sup_expect(t, TVD_FRAME_AGENT, 0, &got);
        g_assert_cmpuint(got.len, ==, sizes[i]);
        g_assert_cmpuint(got.seq, ==, seq);
        g_assert_true(memcmp(got.data, f, len) == 0);
        frame_clear(&got);
        wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
        wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_G2H_DONE, TVD_INT_G2H_DONE);
        g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, ++frames);
        g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors);
    }
    /* nothing more than those frames came out */
    sup_expect_none(t, TVD_FRAME_AGENT, 200);
}

static void test_g2h_relay(void)
{
    Tvd *t = tvd_start(NULL, NULL);

    relay_sizes(t);
    tvd_stop(t);
    t = tvd_start(",mailbox-size=1048576", NULL);
    relay_sizes(t);
    tvd_stop(t);
    t = tvd_start(",mailbox-size=4096", NULL);
    relay_sizes(t);
    tvd_stop(t);
}

/* A doorbell without a supervisor fails with NO_SUPERVISOR. */
static void test_g2h_no_supervisor(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    g_autofree uint8_t *f = agent_frame(32, 1);

    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    mbox_write(t, 0, f, TVD_FRAME_HEADER_SIZE + 32);
    wr(t, TVD_REG_G2H_LEN, TVD_FRAME_HEADER_SIZE + 32);
    wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_NO_SUPERVISOR);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 1);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, 0);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY, ==, 0);
    tvd_stop(t);
}

/* ---- 4. host -> guest queue -------------------------------------------- */

static void h2g_expect(Tvd *t, const uint8_t *frame, uint32_t len)
{
    g_autofree uint8_t *got = g_malloc(len);

    wait_reg(t, TVD_REG_H2G_LEN, ~0u, len);
    mbox_read(t, TVD_MBOX_H2G_OFFSET(t->mbox_size), got, len);
    g_assert_true(memcmp(got, frame, len) == 0);
}

static void test_h2g_queue(void)
{
    enum { N = 6 };
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t half = TVD_MBOX_HALF(t->mbox_size);
    uint32_t plen[N] = { 0, 1, 333, 4000, half - 32,
                         half - TVD_FRAME_HEADER_SIZE };
    uint8_t *f[N];
    uint32_t errors;
    int i;

    for (i = 0; i < N; i++) {
        f[i] = agent_frame(plen[i], 1000 + i);
        sup_write(t, f[i], TVD_FRAME_HEADER_SIZE + plen[i]);
    }
    wait_reg(t, TVD_REG_H2G_PENDING, ~0u, N);
    for (i = 0; i < N; i++) {
        h2g_expect(t, f[i], TVD_FRAME_HEADER_SIZE + plen[i]);
        g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, N - i);
        g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_H2G, ==,
                        TVD_INT_H2G);
        wr(t, TVD_REG_INT_STATUS, TVD_INT_H2G);
        g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_H2G, ==, 0);
        g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, i);
        wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
        g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, i + 1);
        g_free(f[i]);
    }
    g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, 0);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_H2G, ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_DROPPED), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);

    /* an ACK with no frame, or with a bad value, is a guest error */
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_BAD_DOORBELL);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 1);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, N);
    f[0] = agent_frame(8, 7);
    sup_write(t, f[0], TVD_FRAME_HEADER_SIZE + 8);
    h2g_expect(t, f[0], TVD_FRAME_HEADER_SIZE + 8);
    g_free(f[0]);
    errors = rd(t, TVD_REG_GUEST_ERRORS);
    wr(t, TVD_REG_H2G_ACK, 2);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors + 1);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==, TVD_FRAME_HEADER_SIZE + 8);
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==, 0);
    tvd_stop(t);
}

/* The largest mailbox carries frames larger than the queue's byte limit. */
static void test_big_frames(void)
{
    Tvd *t = tvd_start(",mailbox-size=16777216", NULL);
    uint32_t half = TVD_MBOX_HALF(t->mbox_size);
    uint32_t plen = half - TVD_FRAME_HEADER_SIZE;
    g_autofree uint8_t *f = agent_frame(plen, 21);
    g_autofree uint8_t *got = g_malloc(4096);
    Frame rx;

    g_assert_cmpuint(half, >, TVD_H2G_QUEUE_BYTES);
    /* host -> guest: presented at once, nothing dropped */
    sup_write(t, f, half);
    wait_reg(t, TVD_REG_H2G_LEN, ~0u, half);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_DROPPED), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    mbox_read(t, half, got, 4096);
    g_assert_true(memcmp(got, f, 4096) == 0);
    mbox_read(t, 2 * half - 4096, got, 4096);
    g_assert_true(memcmp(got, f + half - 4096, 4096) == 0);
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, 1);

    /* guest -> host: a whole half */
    g2h_send(t, f, half);
    sup_expect(t, TVD_FRAME_AGENT, 0, &rx);
    g_assert_cmpuint(rx.len, ==, plen);
    g_assert_true(memcmp(rx.data, f, half) == 0);
    frame_clear(&rx);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, 1);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);
    tvd_stop(t);
}

static void test_h2g_overflow(void)
{
    const uint32_t total = 1 + TVD_H2G_QUEUE_MAX + 5;
    const uint32_t kept = 1 + TVD_H2G_QUEUE_MAX;
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t i, last_drop = 0;
    uint8_t buf[TVD_FRAME_HEADER_SIZE + 4];
    Frame ev;

    for (i = 0; i < total; i++) {
        uint8_t payload[4];

        stl_le_p(payload, i);
        sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), i);
    }
    wait_reg(t, TVD_REG_H2G_DROPPED, ~0u, total - kept);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, kept);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, total - kept);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_H2G_OVERFLOW);
    /* nothing is lost silently: one event per dropped frame */
    while (last_drop < total - kept) {
        sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_H2G_DROPPED, &ev);
        g_assert_cmpuint(ev_u32(&ev, 1), ==, last_drop + 1);
        g_assert_cmpuint(ev_u32(&ev, 2), ==, 0);
        last_drop = ev_u32(&ev, 1);
        frame_clear(&ev);
    }
    /* the frames kept are the first ones, in order */
    for (i = 0; i < kept; i++) {
        wait_reg(t, TVD_REG_H2G_LEN, ~0u, sizeof(buf));
        g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, kept - i);
        mbox_read(t, TVD_MBOX_H2G_OFFSET(t->mbox_size), buf, sizeof(buf));
        g_assert_cmpuint(ldl_le_p(buf + 12), ==, i);
        g_assert_cmpuint(ldl_le_p(buf + TVD_FRAME_HEADER_SIZE), ==, i);
        wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    }
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, kept);
    /* room again */
    sup_send(t, TVD_FRAME_AGENT, buf + TVD_FRAME_HEADER_SIZE, 4, 99);
    wait_reg(t, TVD_REG_H2G_PENDING, ~0u, 1);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_DROPPED), ==, total - kept);
    tvd_stop(t);
}

static void test_irq_intx(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint8_t payload[4] = { 1, 2, 3, 4 };

    intx_setup(t);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* pending but masked: no interrupt */
    sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 1);
    wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_H2G, TVD_INT_H2G);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* enabling the cause asserts the line, W1C deasserts it */
    wr(t, TVD_REG_INT_MASK, TVD_INT_ALL);
    g_assert_cmphex(rd(t, TVD_REG_INT_MASK), ==, TVD_INT_ALL);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    wr(t, TVD_REG_INT_STATUS, rd(t, TVD_REG_INT_STATUS));
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, 0);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* the next frame after the ACK raises it again */
    sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 2);
    wait_reg(t, TVD_REG_H2G_PENDING, ~0u, 2);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, TVD_INT_H2G);

    /* masking it lowers the line though the cause stays pending */
    wr(t, TVD_REG_INT_MASK, TVD_INT_ALL & ~TVD_INT_H2G);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, TVD_INT_H2G);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_H2G);

    /* an error raises INT_ERROR */
    qpci_io_readw(t->dev, t->regs, TVD_REG_MAGIC);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, TVD_INT_ERROR);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ERROR);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* a state push raises INT_STATE */
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, TVD_INT_STATE);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_STATE);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* a reset clears status and mask */
    wr(t, TVD_REG_H2G_ACK, 5);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    qtest_system_reset(t->qts);
    tvd_map(t);
    g_assert_cmphex(rd(t, TVD_REG_INT_MASK), ==, 0);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS), ==, 0);
    tvd_stop(t);
}

static void msix_setup_vector(Tvd *t, bool masked)
{
    QPCIDevice *d = t->dev;
    uint64_t e = d->msix_table_off;

    qpci_io_writel(d, d->msix_table_bar, e + PCI_MSIX_ENTRY_LOWER_ADDR,
                   MSI_ADDR);
    qpci_io_writel(d, d->msix_table_bar, e + PCI_MSIX_ENTRY_UPPER_ADDR, 0);
    qpci_io_writel(d, d->msix_table_bar, e + PCI_MSIX_ENTRY_DATA, MSI_DATA);
    qpci_io_writel(d, d->msix_table_bar, e + PCI_MSIX_ENTRY_VECTOR_CTRL,
                   masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
}

static void test_irq_msix(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint8_t payload[4] = { 1, 2, 3, 4 };

    intx_setup(t);
    qpci_msix_enable(t->dev);
    msix_setup_vector(t, true);
    qtest_writel(t->qts, MSI_ADDR, 0);
    wr(t, TVD_REG_INT_MASK, TVD_INT_H2G | TVD_INT_G2H_DONE);
    g_assert_false(qpci_msix_pending(t->dev, 0));

    /* vector masked: the message is held pending */
    sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 1);
    wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_H2G, TVD_INT_H2G);
    g_assert_true(qpci_msix_pending(t->dev, 0));
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, 0);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));

    /* unmasking delivers it */
    msix_setup_vector(t, false);
    g_assert_false(qpci_msix_pending(t->dev, 0));
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    qtest_writel(t->qts, MSI_ADDR, 0);

    /* the next cause sends a fresh message */
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, 0);
    sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 2);
    wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_H2G, TVD_INT_H2G);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    qtest_writel(t->qts, MSI_ADDR, 0);

    /* a G2H completion too */
    {
        g_autofree uint8_t *f = agent_frame(64, 3);
        Frame got;

        g2h_send(t, f, TVD_FRAME_HEADER_SIZE + 64);
        sup_expect(t, TVD_FRAME_AGENT, 0, &got);
        frame_clear(&got);
        wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_G2H_DONE, TVD_INT_G2H_DONE);
        g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
        qtest_writel(t->qts, MSI_ADDR, 0);
    }

    /* a disabled cause sends nothing */
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    qpci_io_readb(t->dev, t->regs, 0);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_ERROR, ==,
                    TVD_INT_ERROR);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, 0);
    /* ...until it is enabled while pending */
    wr(t, TVD_REG_INT_MASK, TVD_INT_ALL);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    qtest_writel(t->qts, MSI_ADDR, 0);
    /* clearing one cause while another is pending re-sends */
    sup_set_state(t, TVD_STATE_ADMITTED, 0);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    qtest_writel(t->qts, MSI_ADDR, 0);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_STATE);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    qtest_writel(t->qts, MSI_ADDR, 0);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, 0);
    /* with MSI-X on, INTx stays quiet */
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));
    tvd_stop(t);
}

/* Turning MSI-X off hands pending causes back to INTx. */
static void test_irq_msix_off(void)
{
    Tvd *t = tvd_start(NULL, NULL);

    intx_setup(t);
    qpci_msix_enable(t->dev);
    msix_setup_vector(t, false);
    qtest_writel(t->qts, MSI_ADDR, 0);
    wr(t, TVD_REG_INT_MASK, TVD_INT_ALL);
    g_assert_cmphex(qtest_readl(t->qts, MSI_ADDR), ==, MSI_DATA);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));
    qpci_msix_disable(t->dev);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & rd(t, TVD_REG_INT_MASK), !=,
                    0);
    g_assert_true(qtest_get_irq(t->qts, INTX_IRQ));
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    g_assert_false(qtest_get_irq(t->qts, INTX_IRQ));
    tvd_stop(t);
}

/* ---- 5. state pushes --------------------------------------------------- */

static void test_set_state(void)
{
    static const uint32_t seq[][2] = {
        { TVD_STATE_ADMITTED, TVD_REASON_ATTESTED },
        { TVD_STATE_QUARANTINED, TVD_REASON_POLICY },
        { TVD_STATE_ADMITTED, TVD_REASON_SUPERVISOR_BASE + 7 },
        { TVD_STATE_ADMITTED, TVD_REASON_ADMIN },
        { TVD_STATE_REVOKED, TVD_REASON_EVIDENCE },
        { TVD_STATE_PENDING, TVD_REASON_AWAITING },
        { TVD_STATE_REVOKED, 0xffffffffu },
    };
    Tvd *t = tvd_start(NULL, NULL);
    size_t i;

    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, TVD_STATUS_SUPERVISOR);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_CONFIRMED, ==, 0);
    for (i = 0; i < G_N_ELEMENTS(seq); i++) {
        uint32_t epoch = rd(t, TVD_REG_EPOCH);
        uint32_t applied;

        wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
        applied = sup_set_state(t, seq[i][0], seq[i][1]);
        g_assert_cmpuint(applied, ==, epoch + 1);
        g_assert_cmpuint(rd(t, TVD_REG_EPOCH), ==, epoch + 1);
        g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, seq[i][0]);
        g_assert_cmphex(rd(t, TVD_REG_REASON), ==, seq[i][1]);
        g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_STATE, ==,
                        TVD_INT_STATE);
        g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_CONFIRMED, ==,
                        TVD_STATUS_CONFIRMED);
        /* no netdev to gate, but the gate's decision shows */
        g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_LINK_UP, ==,
                        seq[i][0] == TVD_STATE_ADMITTED ?
                        TVD_STATUS_LINK_UP : 0);
    }
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);

    /* a guest reset sends the device back to PENDING and tells the host */
    {
        uint32_t epoch = rd(t, TVD_REG_EPOCH);
        Frame ev;

        qtest_system_reset(t->qts);
        tvd_map(t);
        sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_RESET, &ev);
        g_assert_cmpuint(ev_u32(&ev, 1), ==, epoch + 1);
        frame_clear(&ev);
        g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_PENDING);
        g_assert_cmpuint(rd(t, TVD_REG_REASON), ==,
                         TVD_REASON_DEVICE_RESET);
        g_assert_cmpuint(rd(t, TVD_REG_EPOCH), ==, epoch + 1);
    }
    tvd_stop(t);
}

/* ---- 6. the NIC link as the guest sees it ------------------------------ */

static void check_link(Tvd *t, bool up)
{
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_LINK_UP, ==,
                    up ? TVD_STATUS_LINK_UP : 0);
    g_assert_cmpint(nic_link_up(t), ==, up);
}

static void test_link_gate(void)
{
    Tvd *t = tvd_start(",netdev=n0", NIC_ARGS);
    Frame ev;

    check_link(t, false);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    /* the event tells the supervisor that the gate took effect */
    g_assert_cmphex(t->ev_status & TVD_STATUS_LINK_UP, ==, TVD_STATUS_LINK_UP);
    check_link(t, true);
    sup_set_state(t, TVD_STATE_QUARANTINED, TVD_REASON_POLICY);
    g_assert_cmphex(t->ev_status & TVD_STATUS_LINK_UP, ==, 0);
    check_link(t, false);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ADMIN);
    check_link(t, true);
    sup_set_state(t, TVD_STATE_REVOKED, TVD_REASON_POLICY);
    check_link(t, false);
    sup_set_state(t, TVD_STATE_PENDING, TVD_REASON_AWAITING);
    check_link(t, false);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);

    /* SET_LINK(0) holds it down while admitted; SET_LINK(1) releases it */
    sup_send_u32x2(t, TVD_FRAME_SET_LINK, 0, 0);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_LINK_UP, 0);
    check_link(t, false);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_ADMITTED);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, false);
    sup_send_u32x2(t, TVD_FRAME_SET_LINK, 1, 0);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_LINK_UP, TVD_STATUS_LINK_UP);
    check_link(t, true);

    /* a system reset takes the link down with the state */
    qtest_system_reset(t->qts);
    tvd_map(t);
    sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_RESET, &ev);
    frame_clear(&ev);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_PENDING);
    check_link(t, false);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    tvd_stop(t);
}

/* The same with the NIC created after the device: still gated. */
static void test_link_nic_after(void)
{
    Tvd *t = tvd_start_full("-netdev user,id=n0", ",netdev=n0",
                            "-device e1000,netdev=n0,romfile=,addr=05.0");

    check_link(t, false);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);
    sup_set_state(t, TVD_STATE_QUARANTINED, TVD_REASON_POLICY);
    check_link(t, false);
    tvd_stop(t);
}

/* ---- 7. supervisor disconnect ------------------------------------------ */

static void disconnect_test(bool open)
{
    Tvd *t = tvd_start(open ? ",netdev=n0,fail-mode=open" : ",netdev=n0",
                       NIC_ARGS);
    uint32_t epoch;

    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    epoch = rd(t, TVD_REG_EPOCH);

    /* the supervisor goes away and stays away */
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_CONFIRMED, ==, 0);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) &
                    (TVD_INT_SUPERVISOR | TVD_INT_STATE), ==,
                    TVD_INT_SUPERVISOR | TVD_INT_STATE);
    g_assert_cmpuint(rd(t, TVD_REG_EPOCH), >, epoch);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_ADMITTED);
    check_link(t, open);
    /* a while later, nothing changed */
    g_usleep(300 * 1000);
    check_link(t, open);

    /* it comes back: a new hello, with the state held */
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    epoch = rd(t, TVD_REG_EPOCH);
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmpuint(HELLO_U32(t, state), ==, TVD_STATE_ADMITTED);
    g_assert_cmphex(HELLO_U32(t, status) & TVD_STATUS_CONFIRMED, ==, 0);
    g_assert_cmphex(HELLO_U32(t, status) & TVD_STATUS_SUPERVISOR, ==,
                    TVD_STATUS_SUPERVISOR);
    g_assert_cmpuint(HELLO_U32(t, epoch), >, epoch);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, TVD_STATUS_SUPERVISOR);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_SUPERVISOR, ==,
                    TVD_INT_SUPERVISOR);
    /* closed: down until the new connection confirms the state */
    g_usleep(200 * 1000);
    check_link(t, open);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_CONFIRMED, ==, 0);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_CONFIRMED, ==,
                    TVD_STATUS_CONFIRMED);
    check_link(t, true);
    /* the new connection carries frames both ways */
    relay_sizes(t);
    tvd_stop(t);
}

static void test_disconnect_closed(void)
{
    disconnect_test(false);
}

static void test_disconnect_open(void)
{
    disconnect_test(true);
}

/*
 * A guest reset while no supervisor listens is latched: the next hello
 * says so (flag and count) until a supervisor's SET_STATE acknowledges it;
 * the instance stays that of this QEMU process.
 */
static void test_reset_latched(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint8_t instance[16];
    uint32_t flags = offsetof(struct tvd_device_hello, flags);
    uint32_t resets = offsetof(struct tvd_device_hello, resets);

    memcpy(instance, t->hello + offsetof(struct tvd_device_hello, instance),
           sizeof(instance));
    g_assert_cmpuint(ldl_le_p(t->hello + flags), ==, 0);
    g_assert_cmpuint(ldl_le_p(t->hello + resets), ==, 0);
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);

    /* the supervisor goes away; the guest reboots meanwhile */
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    qtest_system_reset(t->qts);
    tvd_map(t);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_PENDING);

    /* a supervisor comes back: the hello reports the reset */
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmphex(ldl_le_p(t->hello + flags), ==,
                    TVD_HELLO_RESET_UNREPORTED);
    g_assert_cmpuint(ldl_le_p(t->hello + resets), ==, 1);
    g_assert_cmpmem(t->hello + offsetof(struct tvd_device_hello, instance),
                    sizeof(instance), instance, sizeof(instance));

    /* gone again before acknowledging: still reported */
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmphex(ldl_le_p(t->hello + flags), ==,
                    TVD_HELLO_RESET_UNREPORTED);

    /* acknowledged by a SET_STATE: the next hello is clean */
    sup_set_state(t, TVD_STATE_PENDING, TVD_REASON_DEVICE_RESET);
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmphex(ldl_le_p(t->hello + flags), ==, 0);
    g_assert_cmpuint(ldl_le_p(t->hello + resets), ==, 1);

    /* a reset while connected is an event, not latched */
    qtest_system_reset(t->qts);
    tvd_map(t);
    {
        Frame ev;

        sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_RESET, &ev);
        frame_clear(&ev);
    }
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmphex(ldl_le_p(t->hello + flags), ==, 0);
    g_assert_cmpuint(ldl_le_p(t->hello + resets), ==, 2);
    tvd_stop(t);
}

/* ---- migration --------------------------------------------------------- */

/* The status of query-migrate, or of query-status */
static const char *qmp_status(QTestState *qts, bool migrate)
{
    static char status[64];
    QDict *rsp = migrate ?
        qtest_qmp_assert_success_ref(qts, "{'execute':'query-migrate'}") :
        qtest_qmp_assert_success_ref(qts, "{'execute':'query-status'}");

    g_strlcpy(status, qdict_haskey(rsp, "status") ?
              qdict_get_str(rsp, "status") : "", sizeof(status));
    qobject_unref(rsp);
    return status;
}

static void wait_status(QTestState *qts, bool migrate, const char *want)
{
    gint64 end = deadline_ms(3 * TIMEOUT_MS);
    const char *st;

    while (strcmp((st = qmp_status(qts, migrate)), want) != 0) {
        g_assert_cmpstr(st, !=, "failed");
        if (g_get_monotonic_time() > end) {
            g_test_message("%s: still '%s', waited for '%s'",
                           migrate ? "migration" : "run state", st, want);
        }
        g_assert_cmpint(g_get_monotonic_time(), <=, end);
        g_usleep(10 * 1000);
    }
}

static void migration_test(bool nic_first, bool late_supervisor)
{
    static const uint32_t kept[] = {
        TVD_REG_REASON, TVD_REG_GUEST_ERRORS, TVD_REG_HOST_ERRORS,
        TVD_REG_LAST_ERROR, TVD_REG_G2H_FRAMES, TVD_REG_H2G_FRAMES,
        TVD_REG_INT_MASK, TVD_REG_FAIL_MODE, TVD_REG_MBOX_SIZE,
    };
    const char *nic = "-device e1000,netdev=n0,romfile=,addr=05.0";
    const char *before = nic_first ? NIC_ARGS : "-netdev user,id=n0";
    const char *after = nic_first ? "" : nic;
    Tvd *src = tvd_start_full(before, ",netdev=n0", after);
    g_autofree char *uri = g_strdup_printf("file:%s/mig", src->dir);
    g_autofree char *incoming = g_strdup_printf("%s -incoming defer", after);
    g_autofree uint8_t *f[3] = { NULL };
    uint32_t val[G_N_ELEMENTS(kept)], epoch, dropped, int_status;
    Tvd *dst;
    Frame ev;
    size_t i;

    sup_set_state(src, TVD_STATE_ADMITTED, TVD_REASON_SUPERVISOR_BASE + 1);
    check_link(src, true);
    wr(src, TVD_REG_INT_MASK, TVD_INT_H2G | TVD_INT_STATE);
    qpci_io_readb(src->dev, src->regs, 0);
    /* one frame presented to the guest, two queued behind it */
    for (i = 0; i < 3; i++) {
        f[i] = agent_frame(100 + i, 10 + i);
        sup_write(src, f[i], TVD_FRAME_HEADER_SIZE + 100 + i);
    }
    wait_reg(src, TVD_REG_H2G_PENDING, ~0u, 3);
    /* one relayed the other way */
    g2h_send(src, f[1], TVD_FRAME_HEADER_SIZE + 101);
    sup_expect(src, TVD_FRAME_AGENT, 0, &ev);
    frame_clear(&ev);
    wait_reg(src, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
    for (i = 0; i < G_N_ELEMENTS(kept); i++) {
        val[i] = rd(src, kept[i]);
    }
    epoch = rd(src, TVD_REG_EPOCH);
    dropped = rd(src, TVD_REG_H2G_DROPPED);
    wr(src, TVD_REG_INT_STATUS, TVD_INT_STATE);
    int_status = rd(src, TVD_REG_INT_STATUS);
    g_assert_cmphex(int_status & TVD_INT_STATE, ==, 0);

    qtest_qmp_assert_success(src->qts,
                             "{'execute':'migrate','arguments':{'uri':%s}}",
                             uri);
    wait_status(src->qts, true, "completed");

    /*
     * The target host, with its own supervisor connected before the state
     * arrives, or only after
     */
    dst = tvd_launch(before, ",netdev=n0", incoming);
    if (late_supervisor) {
        /* gone before the state arrives (the registers are the target's) */
        sup_drop(dst);
        tvd_map(dst);
        wait_reg(dst, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, 0);
    } else {
        sup_accept(dst);
        sup_hello(dst);
    }
    qtest_qmp_assert_success(dst->qts, "{'execute':'migrate-incoming',"
                             "'arguments':{'uri':%s}}", uri);
    wait_status(dst->qts, false, "running");
    if (late_supervisor) {
        sup_listen(dst);
        sup_accept(dst);
        sup_hello(dst);
        g_assert_cmpuint(HELLO_U32(dst, state), ==, TVD_STATE_ADMITTED);
        /* the new connection bumped the epoch once more */
        epoch++;
    }
    sup_expect(dst, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_MIGRATED, &ev);
    g_assert_cmpuint(ev_u32(&ev, 1), ==, TVD_STATE_ADMITTED);
    g_assert_cmphex(ev_u32(&ev, 3) & (TVD_STATUS_CONFIRMED |
                                      TVD_STATUS_LINK_UP), ==, 0);
    tvd_map(dst);

    g_assert_cmpuint(rd(dst, TVD_REG_STATE), ==, TVD_STATE_ADMITTED);
    g_assert_cmpuint(ev_u32(&ev, 2), ==, epoch + 1);
    g_assert_cmpuint(rd(dst, TVD_REG_EPOCH), ==, epoch + 1);
    frame_clear(&ev);
    for (i = 0; i < G_N_ELEMENTS(kept); i++) {
        g_assert_cmphex(rd(dst, kept[i]), ==, val[i]);
    }
    /* pending causes came along; the new epoch is one more */
    g_assert_cmphex(rd(dst, TVD_REG_INT_STATUS), ==,
                    int_status | TVD_INT_STATE);
    /* the presented frame came along, the queued ones are counted lost */
    g_assert_cmpuint(rd(dst, TVD_REG_H2G_DROPPED), ==, dropped + 2);
    g_assert_cmpuint(rd(dst, TVD_REG_H2G_PENDING), ==, 1);
    h2g_expect(dst, f[0], TVD_FRAME_HEADER_SIZE + 100);
    /* unconfirmed on the new host: the link stays down until it is */
    g_assert_cmphex(rd(dst, TVD_REG_STATUS) & (TVD_STATUS_SUPERVISOR |
                    TVD_STATUS_CONFIRMED | TVD_STATUS_LINK_UP), ==,
                    TVD_STATUS_SUPERVISOR);
    check_link(dst, false);
    g_usleep(200 * 1000);
    check_link(dst, false);
    sup_set_state(dst, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(dst, true);

    /* and the mailbox works on the target */
    wr(dst, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmpuint(rd(dst, TVD_REG_H2G_LEN), ==, 0);
    g_assert_cmpuint(rd(dst, TVD_REG_H2G_PENDING), ==, 0);
    relay_sizes(dst);
    sup_write(dst, f[2], TVD_FRAME_HEADER_SIZE + 102);
    h2g_expect(dst, f[2], TVD_FRAME_HEADER_SIZE + 102);
    tvd_stop(dst);
    tvd_stop(src);
}

static void test_migration(void)
{
    migration_test(true, false);
}

/* The NIC's own post_load must not undo the gate. */
static void test_migration_nic_after(void)
{
    migration_test(false, false);
}

/* MIGRATED follows the hello of a supervisor that connects later. */
static void test_migration_late_supervisor(void)
{
    migration_test(false, true);
}

/* ---- 8. hot-plug and hot-unplug ---------------------------------------- */

static void test_hotplug(void)
{
    Tvd *t = tvd_new();
    uint8_t payload[64] = { 0 };
    g_autofree uint8_t *partial = frame_new(TVD_FRAME_AGENT, payload,
                                            sizeof(payload), 3);
    int round;

    t->qts = qtest_initf("-nodefaults -machine pc "
                         "-chardev socket,id=sup,path=%s,reconnect-ms=100 "
                         "%s", t->path, NIC_ARGS);
    t->bus = qpci_new_pc(t->qts, NULL);
    t->slot = HOTPLUG_SLOT;
    t->nic = qpci_device_find(t->bus, QPCI_DEVFN(NIC_SLOT, 0));
    g_assert_nonnull(t->nic);
    for (round = 0; round < 3; round++) {
        qtest_qmp_device_add(t->qts, "tvd", "tvd1",
                             "{'chardev':'sup','netdev':'n0',"
                             "'addr':'06.0'}");
        tvd_map(t);
        sup_accept(t);
        sup_hello(t);
        g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
        g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_PENDING);
        /* plugging a device in is no guest reset */
        g_assert_cmpuint(rd(t, TVD_REG_REASON), ==, TVD_REASON_AWAITING);
        sup_expect_no_event(t, TVD_EVENT_RESET, 200);
        wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR,
                 TVD_STATUS_SUPERVISOR);
        check_link(t, false);
        sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
        check_link(t, true);
        /* leave work in every queue: frames for the guest... */
        sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 1);
        sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 2);
        wait_reg(t, TVD_REG_H2G_PENDING, ~0u, 2);
        /*
         * ...and one half received: sent in one piece behind a state
         * push (the same state, another reason), so that the reason
         * register shows when the device has read the half frame; a
         * sleep would not on a loaded machine
         */
        {
            uint8_t st_payload[8];
            size_t st_len = TVD_FRAME_HEADER_SIZE + sizeof(st_payload);
            size_t half_len = TVD_FRAME_HEADER_SIZE + sizeof(payload) / 2;
            g_autofree uint8_t *st = NULL;
            g_autofree uint8_t *both = g_malloc(st_len + half_len);

            stl_le_p(st_payload, TVD_STATE_ADMITTED);
            stl_le_p(st_payload + 4, 0x5a5a);
            st = frame_new(TVD_FRAME_SET_STATE, st_payload,
                           sizeof(st_payload), 90 + round);
            memcpy(both, st, st_len);
            memcpy(both + st_len, partial, half_len);
            sup_write(t, both, st_len + half_len);
            wait_reg(t, TVD_REG_REASON, ~0u, 0x5a5a);
        }
        qpci_unplug_acpi_device_test(t->qts, "tvd1", HOTPLUG_SLOT);
        g_free(t->dev);
        t->dev = NULL;
        /* QEMU is alive and the link was left down */
        g_assert_cmpint(nic_link_up(t), ==, false);
        qobject_unref(qtest_qmp_assert_success_ref(t->qts,
                      "{'execute':'query-status'}"));
        /* the stream is mid-frame: the next device gets a fresh one */
        close(t->fd);
        t->fd = -1;
    }
    tvd_stop(t);
}

static uint32_t g2h_fill(Tvd *t, uint32_t len);

static void hotplug_add(Tvd *t, bool accept)
{
    qtest_qmp_device_add(t->qts, "tvd", "tvd1",
                         "{'chardev':'sup','addr':'06.0'}");
    tvd_map(t);
    if (accept) {
        sup_accept(t);
    }
    sup_hello(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, TVD_STATUS_SUPERVISOR);
}

static void hotplug_del(Tvd *t)
{
    qpci_unplug_acpi_device_test(t->qts, "tvd1", HOTPLUG_SLOT);
    g_free(t->dev);
    t->dev = NULL;
}

/*
 * Unplugged between frames, the device leaves the connection to the next
 * one; unplugged in the middle of a frame, either way, it closes the
 * connection, so that the supervisor never sees a stream out of step.
 */
static void test_unplug_mid_frame(void)
{
    Tvd *t = tvd_new();
    uint8_t payload[64] = { 0 };
    g_autofree uint8_t *f = NULL;
    uint32_t len;

    t->qts = qtest_initf("-nodefaults -machine pc "
                         "-chardev socket,id=sup,path=%s,reconnect-ms=100",
                         t->path);
    t->bus = qpci_new_pc(t->qts, NULL);
    t->slot = HOTPLUG_SLOT;

    /* between frames: the connection stays */
    hotplug_add(t, true);
    sup_set_state(t, TVD_STATE_ADMITTED, 0);
    hotplug_del(t);
    g_assert_false(fd_wait(t->fd, POLLIN, deadline_ms(300)));
    hotplug_add(t, false);

    /* a frame half written to the supervisor */
    len = TVD_MBOX_HALF(t->mbox_size);
    f = agent_frame(len - TVD_FRAME_HEADER_SIZE, 5);
    mbox_write(t, 0, f, len);
    g2h_fill(t, len);
    hotplug_del(t);
    sup_expect_eof(t);
    hotplug_add(t, true);

    /*
     * A frame half received from the supervisor: sent in one piece with
     * a state push, so that the state shows when the device has read it
     */
    {
        g_autofree uint8_t *both = g_malloc(TVD_FRAME_HEADER_SIZE + 8 +
                                            TVD_FRAME_HEADER_SIZE + 7);
        g_autofree uint8_t *st = NULL;
        uint8_t p[8];

        stl_le_p(p, TVD_STATE_QUARANTINED);
        stl_le_p(p + 4, 0);
        st = frame_new(TVD_FRAME_SET_STATE, p, sizeof(p), 9);
        memcpy(both, st, TVD_FRAME_HEADER_SIZE + 8);
        memcpy(both + TVD_FRAME_HEADER_SIZE + 8, f,
               TVD_FRAME_HEADER_SIZE + 7);
        sup_write(t, both, 2 * TVD_FRAME_HEADER_SIZE + 15);
        wait_reg(t, TVD_REG_STATE, ~0u, TVD_STATE_QUARANTINED);
    }
    hotplug_del(t);
    sup_expect_eof(t);
    hotplug_add(t, true);

    /* the fresh connection works */
    sup_send(t, TVD_FRAME_AGENT, payload, sizeof(payload), 1);
    wait_reg(t, TVD_REG_H2G_LEN, ~0u, TVD_FRAME_HEADER_SIZE + sizeof(payload));
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    tvd_stop(t);
}

/* ---- 9. bad guest input ------------------------------------------------ */

static void test_guest_bad_frames(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t half = TVD_MBOX_HALF(t->mbox_size);
    g_autofree uint8_t *f = agent_frame(100, 5);
    g_autofree uint8_t *bad = g_malloc(TVD_FRAME_HEADER_SIZE + 100);
    uint32_t len = TVD_FRAME_HEADER_SIZE + 100;
    Frame ev;

    /* lengths */
    g2h_expect_error(t, f, len, 0, TVD_ERR_BAD_LENGTH);
    sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_GUEST_ERROR, &ev);
    g_assert_cmpuint(ev_u32(&ev, 1), ==, TVD_ERR_BAD_LENGTH);
    g_assert_cmpuint(ev_u32(&ev, 2), ==, 1);
    frame_clear(&ev);
    g2h_expect_error(t, NULL, 0, 1, TVD_ERR_BAD_LENGTH);
    g2h_expect_error(t, NULL, 0, TVD_FRAME_HEADER_SIZE - 1,
                     TVD_ERR_BAD_LENGTH);
    g2h_expect_error(t, NULL, 0, half + 1, TVD_ERR_BAD_LENGTH);
    g2h_expect_error(t, NULL, 0, 0xffffffffu, TVD_ERR_BAD_LENGTH);
    /* G2H_LEN and the header's length disagree */
    g2h_expect_error(t, NULL, 0, len - 1, TVD_ERR_BAD_LENGTH);
    g2h_expect_error(t, NULL, 0, len + 1, TVD_ERR_BAD_LENGTH);
    g2h_expect_error(t, NULL, 0, TVD_FRAME_HEADER_SIZE, TVD_ERR_BAD_LENGTH);

    /* headers */
    memcpy(bad, f, len);
    stl_le_p(bad, 0x12345678);
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    memcpy(bad, f, len);
    bad[4] = TVD_FRAME_VERSION + 1;
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    memcpy(bad, f, len);
    bad[5] = TVD_FRAME_SET_STATE;
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    bad[5] = TVD_FRAME_DEVICE_HELLO;
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    bad[5] = 0xff;
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    memcpy(bad, f, len);
    stw_le_p(bad + 6, 0x8000);
    g2h_expect_error(t, bad, len, len, TVD_ERR_BAD_FRAME);
    sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_GUEST_ERROR, &ev);
    g_assert_cmpuint(ev_u32(&ev, 1), ==, TVD_ERR_BAD_FRAME);
    frame_clear(&ev);

    /* doorbell values */
    {
        uint32_t errors = rd(t, TVD_REG_GUEST_ERRORS);

        mbox_write(t, 0, f, len);
        wr(t, TVD_REG_G2H_LEN, len);
        wr(t, TVD_REG_G2H_DOORBELL, 0);
        wr(t, TVD_REG_G2H_DOORBELL, 2);
        wr(t, TVD_REG_G2H_DOORBELL, 0xffffffffu);
        g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors + 3);
        g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_BAD_DOORBELL);
        g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, 0);
    }

    /* none of that went out; a good frame still does, unchanged */
    g2h_send(t, f, len);
    sup_expect(t, TVD_FRAME_AGENT, 0, &ev);
    g_assert_cmpuint(TVD_FRAME_HEADER_SIZE + ev.len, ==, len);
    g_assert_true(memcmp(ev.data, f, len) == 0);
    frame_clear(&ev);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, 1);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    tvd_stop(t);
}

/*
 * Send the frame already in the G2H half again and again until the
 * supervisor, which does not read, lets the device's writes stall;
 * returns the number of frames relayed, the one in flight included.
 * A send that is still busy after G2H_STALL_MS counts as stalled: a
 * margin no loaded machine comes near for one frame, paid once (the
 * sends before the stall return as soon as they complete).
 */
#define G2H_STALL_MS 3000
static uint32_t g2h_fill(Tvd *t, uint32_t len)
{
    uint32_t n;

    wr(t, TVD_REG_G2H_LEN, len);
    for (n = 1; n <= 4096; n++) {
        wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
        if (!poll_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0,
                      G2H_STALL_MS)) {
            return n;
        }
    }
    g_test_message("the device never stalled on a supervisor not reading");
    g_assert_not_reached();
}

/* Read @n copies of @f, then expect the device to be idle again. */
static void g2h_drain(Tvd *t, const uint8_t *f, uint32_t len, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        Frame got;

        sup_expect(t, TVD_FRAME_AGENT, 0, &got);
        g_assert_cmpuint(TVD_FRAME_HEADER_SIZE + got.len, ==, len);
        g_assert_true(memcmp(got.data, f, len) == 0);
        frame_clear(&got);
    }
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
    wait_reg(t, TVD_REG_INT_STATUS, TVD_INT_G2H_DONE, TVD_INT_G2H_DONE);
    sup_expect_none(t, TVD_FRAME_AGENT, 200);
}

static void test_guest_busy(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t len = TVD_MBOX_HALF(t->mbox_size);
    g_autofree uint8_t *f = agent_frame(len - TVD_FRAME_HEADER_SIZE, 77);
    g_autofree uint8_t *junk = random_bytes(len);
    uint32_t n, errors;

    mbox_write(t, 0, f, len);
    n = g2h_fill(t, len);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, n);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);

    /* the guest scribbles over the half and rings again: refused */
    mbox_write(t, 0, junk, len);
    errors = rd(t, TVD_REG_GUEST_ERRORS);
    wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_BUSY);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors + 1);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY, ==,
                    TVD_STATUS_G2H_BUSY);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_G2H_DONE, ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, n);
    /* ...and a bad length while busy does not disturb the frame either */
    wr(t, TVD_REG_G2H_LEN, 3);
    wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_BUSY);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_G2H_DONE, ==, 0);

    /* the frame in flight was a copy: it arrives intact */
    g2h_drain(t, f, len, n);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, n);
    tvd_stop(t);
}

static void test_guest_bad_access(void)
{
    static const uint32_t ro[] = {
        TVD_REG_MAGIC, TVD_REG_VERSION, TVD_REG_FEATURES, TVD_REG_STATE,
        TVD_REG_REASON, TVD_REG_EPOCH, TVD_REG_MBOX_SIZE, TVD_REG_STATUS,
        TVD_REG_H2G_LEN, TVD_REG_H2G_PENDING, TVD_REG_H2G_DROPPED,
        TVD_REG_GUEST_ERRORS, TVD_REG_HOST_ERRORS, TVD_REG_LAST_ERROR,
        TVD_REG_G2H_FRAMES, TVD_REG_H2G_FRAMES, TVD_REG_FAIL_MODE,
        TVD_REG_FAIL_MODE + 4, 0x100, TVD_REGS_SIZE - 4,
    };
    Tvd *t = tvd_start(NULL, NULL);
    QPCIDevice *d = t->dev;
    uint32_t errors = 0, before[G_N_ELEMENTS(ro)];
    size_t i;

#define EXPECT_ERROR(code) do { \
        errors++; \
        g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors); \
        g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, (code)); \
    } while (0)

    /* narrow, wide and unaligned reads return 0 */
    g_assert_cmphex(qpci_io_readb(d, t->regs, TVD_REG_MAGIC), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(qpci_io_readw(d, t->regs, TVD_REG_MAGIC), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(qpci_io_readq(d, t->regs, TVD_REG_MAGIC), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(qpci_io_readl(d, t->regs, TVD_REG_MAGIC + 1), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(qpci_io_readl(d, t->regs, TVD_REG_VERSION + 2), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(qpci_io_readw(d, t->regs, TVD_REG_STATE + 1), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    /* reads outside the map */
    g_assert_cmphex(rd(t, 0x100), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_REGISTER);
    g_assert_cmphex(rd(t, TVD_REGS_SIZE - 4), ==, 0);
    EXPECT_ERROR(TVD_ERR_BAD_REGISTER);
    /* write-only registers read as 0, and that is fine */
    g_assert_cmphex(rd(t, TVD_REG_G2H_DOORBELL), ==, 0);
    g_assert_cmphex(rd(t, TVD_REG_H2G_ACK), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors);

    /* narrow, wide and unaligned writes are ignored */
    qpci_io_writeb(d, t->regs, TVD_REG_INT_MASK, 0x1f);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    qpci_io_writew(d, t->regs, TVD_REG_INT_MASK, 0x1f);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    qpci_io_writeq(d, t->regs, TVD_REG_INT_MASK, 0x1f);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    qpci_io_writel(d, t->regs, TVD_REG_INT_MASK + 1, 0x1f);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(rd(t, TVD_REG_INT_MASK), ==, 0);
    qpci_io_writeb(d, t->regs, TVD_REG_G2H_LEN + 3, 0x10);
    EXPECT_ERROR(TVD_ERR_BAD_ACCESS);
    g_assert_cmphex(rd(t, TVD_REG_G2H_LEN), ==, 0);

    /* writes to read-only registers and outside the map change nothing */
    for (i = 0; i < G_N_ELEMENTS(ro); i++) {
        before[i] = rd(t, ro[i]);
        if (ro[i] >= TVD_REG_FAIL_MODE + 4) {
            errors++;       /* that read was an error already */
        }
    }
    for (i = 0; i < G_N_ELEMENTS(ro); i++) {
        wr(t, ro[i], 0xa5a5a5a5);
        EXPECT_ERROR(TVD_ERR_BAD_REGISTER);
    }
    for (i = 0; i < G_N_ELEMENTS(ro); i++) {
        uint32_t now = rd(t, ro[i]);

        if (ro[i] >= TVD_REG_FAIL_MODE + 4) {
            errors++;
            continue;
        }
        switch (ro[i]) {
        case TVD_REG_GUEST_ERRORS:
        case TVD_REG_LAST_ERROR:
        case TVD_REG_INT_STATUS:
            break;
        default:
            g_assert_cmphex(now, ==, before[i]);
        }
    }
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors);
    g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);

    /* INT_MASK keeps only the defined causes */
    wr(t, TVD_REG_INT_MASK, 0xffffffffu);
    g_assert_cmphex(rd(t, TVD_REG_INT_MASK), ==, TVD_INT_ALL);
    wr(t, TVD_REG_INT_MASK, 0);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, errors);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_ERROR, ==,
                    TVD_INT_ERROR);
#undef EXPECT_ERROR
    tvd_stop(t);
}

static void test_guest_random(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    QPCIDevice *d = t->dev;
    uint32_t errors = 0, i;
    g_autofree uint8_t *f = agent_frame(40, 9);
    Frame got;

    for (i = 0; i < 5000; i++) {
        uint32_t r = g_test_rand_int();
        unsigned size = 1u << (r & 3);
        uint64_t off = g_test_rand_int_range(0, TVD_REGS_SIZE - 8);
        uint32_t val = g_test_rand_int();
        bool write = r & 4;

        /* mostly the defined registers */
        if (r & 8) {
            off = off % (TVD_REG_COUNT * 4 + 8);
        }
        if (size != 4 || (off & 3)) {
            errors++;
        }
        if (write) {
            switch (size) {
            case 1:
                qpci_io_writeb(d, t->regs, off, val);
                break;
            case 2:
                qpci_io_writew(d, t->regs, off, val);
                break;
            case 4:
                qpci_io_writel(d, t->regs, off, val);
                break;
            default:
                qpci_io_writeq(d, t->regs, off,
                               ((uint64_t)g_test_rand_int() << 32) | val);
                break;
            }
        } else {
            switch (size) {
            case 1:
                qpci_io_readb(d, t->regs, off);
                break;
            case 2:
                qpci_io_readw(d, t->regs, off);
                break;
            case 4:
                qpci_io_readl(d, t->regs, off);
                break;
            default:
                qpci_io_readq(d, t->regs, off);
                break;
            }
        }
    }
    /* QEMU answers and counted at least the bad-width accesses */
    g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), >=, errors);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), !=, TVD_ERR_NONE);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), <=, TVD_ERR_BAD_DOORBELL);
    qobject_unref(qtest_qmp_assert_success_ref(t->qts,
                  "{'execute':'query-status'}"));
    /* the supervisor heard of each kind of error once, not thousands */
    {
        gint64 end = deadline_ms(300);
        uint32_t seen = 0;
        Frame ev;

        while (fd_wait(t->fd, POLLIN, end)) {
            g_assert_true(sup_recv(t, &ev));
            if (ev.type == TVD_FRAME_DEVICE_EVENT &&
                ev_u32(&ev, 0) == TVD_EVENT_GUEST_ERROR) {
                uint32_t code = ev_u32(&ev, 1);

                g_assert_cmpuint(code, <, 32);
                g_assert_cmphex(seen & (1u << code), ==, 0);
                seen |= 1u << code;
            }
            frame_clear(&ev);
        }
        g_assert_cmphex(seen & (1u << TVD_ERR_BAD_ACCESS), !=, 0);
    }
    /* and still works */
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
    while (rd(t, TVD_REG_H2G_LEN)) {
        wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    }
    g2h_send(t, f, TVD_FRAME_HEADER_SIZE + 40);
    sup_expect(t, TVD_FRAME_AGENT, 0, &got);
    g_assert_true(memcmp(got.data, f, TVD_FRAME_HEADER_SIZE + 40) == 0);
    frame_clear(&got);
    sup_set_state(t, TVD_STATE_ADMITTED, 0);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_ADMITTED);
    tvd_stop(t);
}

/* ---- 10. bad supervisor input ------------------------------------------ */

/* A broken stream: the device resets the connection and says hello again. */
static void expect_stream_reset(Tvd *t, const uint8_t *hdr)
{
    uint32_t errors = rd(t, TVD_REG_HOST_ERRORS);
    uint32_t epoch = rd(t, TVD_REG_EPOCH);

    sup_write(t, hdr, TVD_FRAME_HEADER_SIZE);
    sup_expect_eof(t);
    sup_accept(t);
    sup_hello(t);
    g_assert_cmpuint(HELLO_U32(t, epoch), >, epoch);
    g_assert_cmphex(HELLO_U32(t, status) & TVD_STATUS_CONFIRMED, ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, errors + 1);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, TVD_ERR_HOST_FRAME);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR, TVD_STATUS_SUPERVISOR);
}

static void test_host_bad_stream(void)
{
    Tvd *t = tvd_start(",netdev=n0", NIC_ARGS);
    g_autofree uint8_t *h = frame_new(TVD_FRAME_SET_STATE, NULL, 8, 1);

    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);

    stl_le_p(h, 0xdeadbeef);                    /* magic */
    expect_stream_reset(t, h);
    /* the reset lost the confirmation: closed mode holds the link down */
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_ADMITTED);
    check_link(t, false);
    /* the new connection works */
    sup_set_state(t, TVD_STATE_ADMITTED, TVD_REASON_ATTESTED);
    check_link(t, true);

    stl_le_p(h, TVD_FRAME_MAGIC);
    h[4] = 0;                                   /* version */
    expect_stream_reset(t, h);
    h[4] = TVD_FRAME_VERSION;
    stw_le_p(h + 6, 1);                         /* flags */
    expect_stream_reset(t, h);
    stw_le_p(h + 6, 0);
    stl_le_p(h + 8, TVD_FRAME_MAX_PAYLOAD + 1); /* length */
    expect_stream_reset(t, h);
    stl_le_p(h + 8, 0xffffffffu);
    h[5] = TVD_FRAME_AGENT;
    expect_stream_reset(t, h);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 5);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);
    sup_set_state(t, TVD_STATE_QUARANTINED, TVD_REASON_POLICY);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, TVD_STATE_QUARANTINED);
    tvd_stop(t);
}

/* A frame the device drops; the connection stays. */
static void expect_dropped(Tvd *t, const uint8_t *frame, uint32_t len,
                           uint32_t err)
{
    uint32_t errors = rd(t, TVD_REG_HOST_ERRORS);
    uint32_t state = rd(t, TVD_REG_STATE);
    uint32_t reason = rd(t, TVD_REG_REASON);
    uint32_t epoch = rd(t, TVD_REG_EPOCH);

    sup_write(t, frame, len);
    wait_reg(t, TVD_REG_HOST_ERRORS, ~0u, errors + 1);
    g_assert_cmpuint(rd(t, TVD_REG_LAST_ERROR), ==, err);
    g_assert_cmpuint(rd(t, TVD_REG_STATE), ==, state);
    g_assert_cmpuint(rd(t, TVD_REG_REASON), ==, reason);
    g_assert_cmpuint(rd(t, TVD_REG_EPOCH), ==, epoch);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==, 0);
    /* same connection: the next frame is understood, no new hello */
    sup_send_u32x2(t, TVD_FRAME_SET_STATE, state == TVD_STATE_ADMITTED ?
                   TVD_STATE_QUARANTINED : TVD_STATE_ADMITTED, epoch);
    {
        Frame f;

        g_assert_true(sup_recv(t, &f));
        while (f.type == TVD_FRAME_DEVICE_EVENT &&
               ev_u32(&f, 0) == TVD_EVENT_GUEST_ERROR) {
            frame_clear(&f);
            g_assert_true(sup_recv(t, &f));
        }
        g_assert_cmpuint(f.type, ==, TVD_FRAME_DEVICE_EVENT);
        g_assert_cmpuint(ev_u32(&f, 0), ==, TVD_EVENT_STATE_APPLIED);
        g_assert_cmpuint(ev_u32(&f, 2), ==, epoch + 1);
        frame_clear(&f);
    }
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, errors + 1);
}

static void test_host_bad_frames(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t half = TVD_MBOX_HALF(t->mbox_size);
    uint8_t p[16];
    uint8_t *f;

    /* unknown and wrong-direction types are skipped whole */
    memset(p, 0, sizeof(p));
    f = frame_new(0x7f, NULL, 0, 1);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE, TVD_ERR_HOST_TYPE);
    g_free(f);
    {
        /* a payload that looks like a (broken) header must not matter */
        g_autofree uint8_t *inner = frame_new(TVD_FRAME_SET_STATE, NULL, 8, 0);

        stl_le_p(inner, 0xdeadbeef);
        f = frame_new(0x42, inner, 24, 2);
        expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 24, TVD_ERR_HOST_TYPE);
        g_free(f);
    }
    f = frame_new(TVD_FRAME_DEVICE_HELLO, NULL, HELLO_SIZE, 3);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + HELLO_SIZE,
                   TVD_ERR_HOST_TYPE);
    g_free(f);
    f = frame_new(TVD_FRAME_DEVICE_EVENT, NULL, 16, 4);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 16, TVD_ERR_HOST_TYPE);
    g_free(f);
    {
        /* a big one, to be skipped across several reads */
        f = frame_new(0x99, NULL, 300000, 5);
        expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 300000,
                       TVD_ERR_HOST_TYPE);
        g_free(f);
    }

    /* bad SET_STATE / SET_LINK payloads */
    stl_le_p(p, 0);
    stl_le_p(p + 4, 0);
    f = frame_new(TVD_FRAME_SET_STATE, p, 8, 6);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 8, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    stl_le_p(p, TVD_STATE_MAX + 1);
    f = frame_new(TVD_FRAME_SET_STATE, p, 8, 7);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 8, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    stl_le_p(p, 9);
    f = frame_new(TVD_FRAME_SET_STATE, p, 8, 7);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 8, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    stl_le_p(p, TVD_STATE_ADMITTED);
    f = frame_new(TVD_FRAME_SET_STATE, p, 4, 8);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 4, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    f = frame_new(TVD_FRAME_SET_STATE, p, 12, 9);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 12, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    stl_le_p(p, 2);
    f = frame_new(TVD_FRAME_SET_LINK, p, 8, 10);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 8, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    stl_le_p(p, 1);
    stl_le_p(p + 4, 1);
    f = frame_new(TVD_FRAME_SET_LINK, p, 8, 11);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE + 8, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    f = frame_new(TVD_FRAME_SET_LINK, p, 0, 12);
    expect_dropped(t, f, TVD_FRAME_HEADER_SIZE, TVD_ERR_HOST_PAYLOAD);
    g_free(f);

    /* an AGENT frame larger than the H2G half */
    f = agent_frame(half - TVD_FRAME_HEADER_SIZE + 1, 13);
    expect_dropped(t, f, half + 1, TVD_ERR_HOST_PAYLOAD);
    g_free(f);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, 0);
    /* one that just fits is delivered */
    f = agent_frame(half - TVD_FRAME_HEADER_SIZE, 14);
    sup_write(t, f, half);
    h2g_expect(t, f, half);
    g_free(f);

    /* a frame split in pieces is put together */
    stl_le_p(p, TVD_STATE_REVOKED);
    stl_le_p(p + 4, 0x1234);
    f = frame_new(TVD_FRAME_SET_STATE, p, 8, 15);
    {
        static const int cut[] = { 0, 1, 5, 15, 16, 17, 24 };
        size_t i;

        for (i = 1; i < G_N_ELEMENTS(cut); i++) {
            sup_write(t, f + cut[i - 1], cut[i] - cut[i - 1]);
            g_usleep(20 * 1000);
        }
    }
    g_free(f);
    wait_reg(t, TVD_REG_STATE, ~0u, TVD_STATE_REVOKED);
    g_assert_cmphex(rd(t, TVD_REG_REASON), ==, 0x1234);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);
    tvd_stop(t);
}

/* A supervisor that stops reading stalls only the guest's sends. */
static void test_host_stalled(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t len = TVD_MBOX_HALF(t->mbox_size);
    g_autofree uint8_t *f = agent_frame(len - TVD_FRAME_HEADER_SIZE, 3);
    g_autofree uint8_t *h2g = agent_frame(64, 4);
    gint64 start;
    uint32_t n, reads = 0;

    mbox_write(t, 0, f, len);
    n = g2h_fill(t, len);
    g_test_message("%u frames of %u bytes until the device stalled", n, len);
    g_assert_cmpuint(n, >, 1);

    /* QEMU keeps answering the guest and QMP */
    start = g_get_monotonic_time();
    while (g_get_monotonic_time() - start < 500 * 1000 || reads < 3) {
        g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
        g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY, ==,
                        TVD_STATUS_G2H_BUSY);
        reads++;
    }
    qobject_unref(qtest_qmp_assert_success_ref(t->qts,
                  "{'execute':'query-status'}"));
    /* ...and keeps reading the supervisor */
    sup_send_u32x2(t, TVD_FRAME_SET_STATE, TVD_STATE_ADMITTED, 1);
    wait_reg(t, TVD_REG_STATE, ~0u, TVD_STATE_ADMITTED);
    sup_write(t, h2g, TVD_FRAME_HEADER_SIZE + 64);
    h2g_expect(t, h2g, TVD_FRAME_HEADER_SIZE + 64);
    wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
    g_assert_cmphex(rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY, ==,
                    TVD_STATUS_G2H_BUSY);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, n);

    /* once it reads again, everything arrives and the guest may go on */
    g2h_drain(t, f, len, n);
    g2h_send(t, f, len);
    g2h_drain(t, f, len, 1);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, n + 1);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    tvd_stop(t);
}

/*
 * A supervisor that floods the device and does not read: the events the
 * device owes it are bounded, the excess is counted, the stream stays whole.
 */
static void test_host_event_flood(void)
{
    const uint32_t kept = 1 + TVD_H2G_QUEUE_MAX;
    const uint32_t extra = TVD_TX_BUFFER_MAX /
        (TVD_FRAME_HEADER_SIZE + sizeof(struct tvd_device_event)) + 16384;
    Tvd *t = tvd_start(NULL, NULL);
    g_autofree uint8_t *flood = g_malloc((kept + extra) *
                                         TVD_FRAME_HEADER_SIZE);
    uint32_t i, events = 0, last = 0, errors;
    Frame ev;

    for (i = 0; i < kept + extra; i++) {
        g_autofree uint8_t *f = frame_new(TVD_FRAME_AGENT, NULL, 0, i);

        memcpy(flood + i * TVD_FRAME_HEADER_SIZE, f, TVD_FRAME_HEADER_SIZE);
    }
    sup_write(t, flood, (kept + extra) * TVD_FRAME_HEADER_SIZE);
    for (;;) {
        uint32_t dropped = rd(t, TVD_REG_H2G_DROPPED);
        gint64 end = deadline_ms(TIMEOUT_MS);

        if (dropped == extra) {
            break;
        }
        while (rd(t, TVD_REG_H2G_DROPPED) == dropped) {
            /* no progress for that long: stuck */
            g_assert_cmpint(g_get_monotonic_time(), <, end);
            g_usleep(1000);
        }
    }
    g_assert_cmpuint(rd(t, TVD_REG_H2G_PENDING), ==, kept);
    errors = rd(t, TVD_REG_HOST_ERRORS);
    /* every drop is an error, and some of the events did not fit */
    g_assert_cmpuint(errors, >, extra);
    g_assert_cmpuint(errors, <, 2 * extra);
    g_assert_cmphex(rd(t, TVD_REG_MAGIC), ==, TVD_MAGIC);

    /*
     * What did fit arrives whole and in order: one event per drop, less
     * the events counted as lost
     */
    while (events < extra - (errors - extra)) {
        sup_expect(t, TVD_FRAME_DEVICE_EVENT, TVD_EVENT_H2G_DROPPED, &ev);
        g_assert_cmpuint(ev_u32(&ev, 1), >, last);
        last = ev_u32(&ev, 1);
        events++;
        frame_clear(&ev);
    }
    sup_expect_no_event(t, TVD_EVENT_H2G_DROPPED, 300);
    /* and the connection still works */
    sup_set_state(t, TVD_STATE_ADMITTED, 0);
    tvd_stop(t);
}

/* A supervisor that goes away with a frame in flight frees the guest. */
static void test_host_gone_busy(void)
{
    Tvd *t = tvd_start(NULL, NULL);
    uint32_t len = TVD_MBOX_HALF(t->mbox_size);
    g_autofree uint8_t *f = agent_frame(len - TVD_FRAME_HEADER_SIZE, 3);

    mbox_write(t, 0, f, len);
    g2h_fill(t, len);
    wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    sup_drop(t);
    wait_reg(t, TVD_REG_STATUS, TVD_STATUS_SUPERVISOR | TVD_STATUS_G2H_BUSY,
             0);
    g_assert_cmphex(rd(t, TVD_REG_INT_STATUS) & TVD_INT_G2H_DONE, ==,
                    TVD_INT_G2H_DONE);
    sup_listen(t);
    sup_accept(t);
    sup_hello(t);
    g2h_send(t, f, len);
    g2h_drain(t, f, len, 1);
    tvd_stop(t);
}

/* ---- benchmark (TVD_BENCH=1) ------------------------------------------ */

/*
 * Every guest access here is a qtest command, a round trip over a unix
 * socket: the figures are those of the relay as seen through qtest, an
 * upper bound on what a guest with direct MMIO sees, not its speed.
 */

#define BENCH_RTT_FRAMES    2000
#define BENCH_FRAME         (32 * 1024)
#define BENCH_BYTES         (64 * 1024 * 1024)

static int cmp_gint64(gconstpointer a, gconstpointer b)
{
    gint64 x = *(const gint64 *)a, y = *(const gint64 *)b;

    return x < y ? -1 : x > y;
}

static void bench_report(const char *name, const char *fmt, ...)
    G_GNUC_PRINTF(2, 3);

static void bench_report(const char *name, const char *fmt, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_test_message("tvd-bench: %s %s", name, msg);
}

/* Guest doorbell -> supervisor -> AGENT back -> guest sees H2G_LEN. */
static void test_bench_roundtrip(void)
{
    const uint32_t plen = 64;
    Tvd *t = tvd_start(NULL, NULL);
    g_autofree uint8_t *req = agent_frame(plen, 1);
    g_autofree uint8_t *rsp = agent_frame(plen, 2);
    g_autofree gint64 *us = g_new(gint64, BENCH_RTT_FRAMES);
    gint64 sum = 0;
    uint32_t i;

    mbox_write(t, 0, req, TVD_FRAME_HEADER_SIZE + plen);
    wr(t, TVD_REG_G2H_LEN, TVD_FRAME_HEADER_SIZE + plen);
    for (i = 0; i < BENCH_RTT_FRAMES; i++) {
        gint64 start;
        Frame f;

        wait_reg(t, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY, 0);
        start = g_get_monotonic_time();
        wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
        sup_expect(t, TVD_FRAME_AGENT, 0, &f);
        frame_clear(&f);
        sup_write(t, rsp, TVD_FRAME_HEADER_SIZE + plen);
        while (!(rd(t, TVD_REG_INT_STATUS) & TVD_INT_H2G)) {
            /* spin: the guest polls */
        }
        g_assert_cmpuint(rd(t, TVD_REG_H2G_LEN), ==,
                         TVD_FRAME_HEADER_SIZE + plen);
        us[i] = g_get_monotonic_time() - start;
        sum += us[i];
        wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
        wr(t, TVD_REG_INT_STATUS, TVD_INT_ALL);
    }
    qsort(us, BENCH_RTT_FRAMES, sizeof(*us), cmp_gint64);
    bench_report("roundtrip", "frames=%u payload=%u mean_us=%.1f p50_us=%"
                 PRId64 " p99_us=%" PRId64 " min_us=%" PRId64
                 " max_us=%" PRId64, BENCH_RTT_FRAMES, plen,
                 (double)sum / BENCH_RTT_FRAMES, us[BENCH_RTT_FRAMES / 2],
                 us[BENCH_RTT_FRAMES * 99 / 100], us[0],
                 us[BENCH_RTT_FRAMES - 1]);
    g_assert_cmpuint(rd(t, TVD_REG_G2H_FRAMES), ==, BENCH_RTT_FRAMES);
    g_assert_cmpuint(rd(t, TVD_REG_H2G_FRAMES), ==, BENCH_RTT_FRAMES);
    tvd_stop(t);
}

static double mb_per_s(uint64_t bytes, gint64 us)
{
    return us ? (double)bytes / us : 0;     /* bytes/us == MB/s */
}

/* Guest -> host, 32 KiB frames; with and without refilling the mailbox. */
static void bench_g2h(Tvd *t, bool refill)
{
    const uint32_t n = BENCH_BYTES / BENCH_FRAME / (refill ? 8 : 1);
    g_autofree uint8_t *f = agent_frame(BENCH_FRAME - TVD_FRAME_HEADER_SIZE,
                                        1);
    g_autofree uint8_t *buf = g_malloc(BENCH_FRAME);
    gint64 start;
    uint32_t i;

    mbox_write(t, 0, f, BENCH_FRAME);
    wr(t, TVD_REG_G2H_LEN, BENCH_FRAME);
    start = g_get_monotonic_time();
    for (i = 0; i < n; i++) {
        if (refill) {
            mbox_write(t, 0, f, BENCH_FRAME);
        }
        wr(t, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
        g_assert_true(sup_read_full(t, buf, BENCH_FRAME, TIMEOUT_MS));
        while (rd(t, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY) {
            /* the frame is with the supervisor: this is short */
        }
    }
    bench_report(refill ? "g2h-with-mailbox-write" : "g2h-doorbell-only",
                 "frames=%u frame_bytes=%u MB_per_s=%.1f", n, BENCH_FRAME,
                 mb_per_s((uint64_t)n * BENCH_FRAME,
                          g_get_monotonic_time() - start));
    g_assert_true(memcmp(buf, f, BENCH_FRAME) == 0);
}

/* Host -> guest, 32 KiB frames, up to 32 queued; ACK (and read) each. */
static void bench_h2g(Tvd *t, bool read)
{
    const uint32_t n = BENCH_BYTES / BENCH_FRAME / (read ? 8 : 1);
    g_autofree uint8_t *f = agent_frame(BENCH_FRAME - TVD_FRAME_HEADER_SIZE,
                                        1);
    g_autofree uint8_t *buf = g_malloc(BENCH_FRAME);
    uint32_t sent = 0, acked = 0, dropped = rd(t, TVD_REG_H2G_DROPPED);
    gint64 start = g_get_monotonic_time();

    while (acked < n) {
        while (sent < n && sent - acked < 32) {
            sup_write(t, f, BENCH_FRAME);
            sent++;
        }
        while (!rd(t, TVD_REG_H2G_LEN)) {
            /* the guest polls */
        }
        if (read) {
            mbox_read(t, TVD_MBOX_H2G_OFFSET(t->mbox_size), buf,
                      BENCH_FRAME);
        }
        wr(t, TVD_REG_H2G_ACK, TVD_DOORBELL_ACK);
        acked++;
    }
    bench_report(read ? "h2g-with-mailbox-read" : "h2g-ack-only",
                 "frames=%u frame_bytes=%u MB_per_s=%.1f", n, BENCH_FRAME,
                 mb_per_s((uint64_t)n * BENCH_FRAME,
                          g_get_monotonic_time() - start));
    g_assert_cmpuint(rd(t, TVD_REG_H2G_DROPPED), ==, dropped);
    if (read) {
        g_assert_true(memcmp(buf, f, BENCH_FRAME) == 0);
    }
}

static void test_bench_throughput(void)
{
    Tvd *t = tvd_start(NULL, NULL);

    bench_g2h(t, false);
    bench_g2h(t, true);
    bench_h2g(t, false);
    bench_h2g(t, true);
    g_assert_cmpuint(rd(t, TVD_REG_GUEST_ERRORS), ==, 0);
    g_assert_cmpuint(rd(t, TVD_REG_HOST_ERRORS), ==, 0);
    tvd_stop(t);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    qtest_add_func("/tvd/identity/basic", test_identity);
    qtest_add_func("/tvd/identity/options", test_identity_options);
    qtest_add_func("/tvd/identity/tpm", test_identity_tpm);
    qtest_add_func("/tvd/identity/realize-errors", test_realize_errors);
    qtest_add_func("/tvd/hello/strings", test_hello);
    qtest_add_func("/tvd/hello/uuid", test_hello_uuid);
    qtest_add_func("/tvd/g2h/relay", test_g2h_relay);
    qtest_add_func("/tvd/g2h/no-supervisor", test_g2h_no_supervisor);
    qtest_add_func("/tvd/h2g/queue", test_h2g_queue);
    qtest_add_func("/tvd/h2g/overflow", test_h2g_overflow);
    qtest_add_func("/tvd/h2g/big-frames", test_big_frames);
    qtest_add_func("/tvd/irq/intx", test_irq_intx);
    qtest_add_func("/tvd/irq/msix", test_irq_msix);
    qtest_add_func("/tvd/irq/msix-off", test_irq_msix_off);
    qtest_add_func("/tvd/state/set-state", test_set_state);
    qtest_add_func("/tvd/link/gate", test_link_gate);
    qtest_add_func("/tvd/link/nic-after", test_link_nic_after);
    qtest_add_func("/tvd/supervisor/disconnect-closed",
                   test_disconnect_closed);
    qtest_add_func("/tvd/supervisor/disconnect-open", test_disconnect_open);
    qtest_add_func("/tvd/supervisor/reset-latched", test_reset_latched);
    qtest_add_func("/tvd/hotplug/unplug", test_hotplug);
    qtest_add_func("/tvd/hotplug/unplug-mid-frame", test_unplug_mid_frame);
    qtest_add_func("/tvd/migration/basic", test_migration);
    qtest_add_func("/tvd/migration/nic-after", test_migration_nic_after);
    qtest_add_func("/tvd/migration/late-supervisor",
                   test_migration_late_supervisor);
    qtest_add_func("/tvd/guest/bad-frames", test_guest_bad_frames);
    qtest_add_func("/tvd/guest/busy", test_guest_busy);
    qtest_add_func("/tvd/guest/bad-access", test_guest_bad_access);
    qtest_add_func("/tvd/guest/random", test_guest_random);
    qtest_add_func("/tvd/host/bad-stream", test_host_bad_stream);
    qtest_add_func("/tvd/host/bad-frames", test_host_bad_frames);
    qtest_add_func("/tvd/host/stalled", test_host_stalled);
    qtest_add_func("/tvd/host/gone-busy", test_host_gone_busy);
    qtest_add_func("/tvd/host/event-flood", test_host_event_flood);
    if (g_strcmp0(g_getenv("TVD_BENCH"), "1") == 0) {
        qtest_add_func("/tvd/bench/roundtrip", test_bench_roundtrip);
        qtest_add_func("/tvd/bench/throughput", test_bench_throughput);
    }

    return g_test_run();
}
