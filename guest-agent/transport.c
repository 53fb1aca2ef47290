/*
 * The agent's transport: see transport.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-transport"

#include "transport.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

G_DEFINE_QUARK(tvd-transport-error-quark, tvd_transport_error)

#define PCI_COMMAND             0x04
#define PCI_COMMAND_INTX_DISABLE 0x400

struct TvdTransport {
    char *dev_dir;              /* /sys/bus/pci/devices/<addr> */
    char *addr;
    volatile uint32_t *regs;
    size_t regs_map_size;
    uint8_t *mbox;
    size_t mbox_size;           /* MBOX_SIZE: what the halves split */
    size_t mbox_map_size;       /* the BAR as mapped */
    int config_fd;
    int uio_fd;
};

static gboolean read_hex(const char *path, unsigned long *out)
{
    g_autofree char *text = NULL;
    char *end;

    if (!g_file_get_contents(path, &text, NULL, NULL)) {
        return FALSE;
    }
    errno = 0;
    *out = strtoul(text, &end, 16);
    return errno == 0 && end != text;
}

static gboolean is_tvd(const char *dev_dir)
{
    g_autofree char *v = g_build_filename(dev_dir, "vendor", NULL);
    g_autofree char *d = g_build_filename(dev_dir, "device", NULL);
    unsigned long vendor, device;

    return read_hex(v, &vendor) && read_hex(d, &device) &&
           vendor == TVD_PCI_VENDOR_ID && device == TVD_PCI_DEVICE_ID;
}

static char *find_device(const char *sysfs_root, const char *pci_addr,
                         GError **error)
{
    g_autofree char *bus = g_build_filename(sysfs_root, "bus/pci/devices",
                                            NULL);
    g_autoptr(GDir) d = NULL;
    g_autoptr(GPtrArray) found = g_ptr_array_new_with_free_func(g_free);
    const char *name;

    if (pci_addr) {
        char *dir = g_build_filename(bus, pci_addr, NULL);

        if (!is_tvd(dir)) {
            g_set_error(error, TVD_TRANSPORT_ERROR,
                        TVD_TRANSPORT_ERROR_NO_DEVICE,
                        "%s is not a tvd device (%04x:%04x)", pci_addr,
                        TVD_PCI_VENDOR_ID, TVD_PCI_DEVICE_ID);
            g_free(dir);
            return NULL;
        }
        return dir;
    }
    d = g_dir_open(bus, 0, error);
    if (!d) {
        return NULL;
    }
    while ((name = g_dir_read_name(d))) {
        g_autofree char *dir = g_build_filename(bus, name, NULL);

        if (is_tvd(dir)) {
            g_ptr_array_add(found, g_steal_pointer(&dir));
        }
    }
    if (found->len == 0) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_NO_DEVICE,
                    "no tvd device (PCI %04x:%04x) in %s", TVD_PCI_VENDOR_ID,
                    TVD_PCI_DEVICE_ID, bus);
        return NULL;
    }
    if (found->len > 1) {
        g_warning("%u tvd devices: using the first; name one to choose",
                  found->len);
    }
    return g_strdup(found->pdata[0]);
}

static void *map_bar(const char *dev_dir, int bar, size_t *size,
                     GError **error)
{
    g_autofree char *path = g_strdup_printf("%s/resource%d", dev_dir, bar);
    int fd = open(path, O_RDWR | O_SYNC | O_CLOEXEC);
    struct stat st;
    void *p;

    if (fd < 0) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_IO,
                    "cannot open %s: %s", path, g_strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || st.st_size <= 0) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_IO,
                    "cannot size %s", path);
        close(fd);
        return NULL;
    }
    p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_IO,
                    "cannot map %s: %s", path, g_strerror(errno));
        return NULL;
    }
    *size = st.st_size;
    return p;
}

static void write_sysfs(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    if (fd >= 0) {
        /* EEXIST and friends are fine: someone did it before us. */
        if (write(fd, text, strlen(text)) < 0) {
            g_debug("%s: %s", path, g_strerror(errno));
        }
        close(fd);
    }
}

/* Bind uio_pci_generic and open /dev/uioN; -1 if that is not possible. */
static int open_uio(const char *sysfs_root, TvdTransport *t)
{
    g_autofree char *drv = g_build_filename(sysfs_root,
                                            "bus/pci/drivers/uio_pci_generic",
                                            NULL);
    g_autofree char *uio_dir = g_build_filename(t->dev_dir, "uio", NULL);
    g_autoptr(GDir) d = NULL;
    const char *name;

    if (!g_file_test(drv, G_FILE_TEST_IS_DIR)) {
        return -1;
    }
    if (!g_file_test(uio_dir, G_FILE_TEST_IS_DIR)) {
        g_autofree char *new_id = g_build_filename(drv, "new_id", NULL);
        g_autofree char *bind = g_build_filename(drv, "bind", NULL);
        g_autofree char *id = g_strdup_printf("%04x %04x", TVD_PCI_VENDOR_ID,
                                              TVD_PCI_DEVICE_ID);

        write_sysfs(new_id, id);
        write_sysfs(bind, t->addr);
    }
    d = g_dir_open(uio_dir, 0, NULL);
    while (d && (name = g_dir_read_name(d))) {
        if (g_str_has_prefix(name, "uio")) {
            g_autofree char *dev = g_strdup_printf("/dev/%s", name);

            return open(dev, O_RDWR | O_CLOEXEC);
        }
    }
    return -1;
}

TvdTransport *tvd_transport_open(const char *sysfs_root, const char *pci_addr,
                                 gboolean use_uio, GError **error)
{
    g_autoptr(TvdTransport) t = g_new0(TvdTransport, 1);
    g_autofree char *enable = NULL;
    g_autofree char *config = NULL;
    uint32_t magic, version, mbox_size;

    t->config_fd = -1;
    t->uio_fd = -1;
    t->dev_dir = find_device(sysfs_root, pci_addr, error);
    if (!t->dev_dir) {
        return NULL;
    }
    t->addr = g_path_get_basename(t->dev_dir);
    /* Without a driver the device's memory decoding is off. */
    enable = g_build_filename(t->dev_dir, "enable", NULL);
    write_sysfs(enable, "1");
    if (use_uio) {
        t->uio_fd = open_uio(sysfs_root, t);
    }
    config = g_build_filename(t->dev_dir, "config", NULL);
    t->config_fd = open(config, O_RDWR | O_CLOEXEC);
    t->regs = map_bar(t->dev_dir, TVD_BAR_REGS, &t->regs_map_size, error);
    if (!t->regs) {
        return NULL;
    }
    if (t->regs_map_size < TVD_REGS_SIZE) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI,
                    "register BAR of %zu bytes is too small",
                    t->regs_map_size);
        return NULL;
    }
    magic = tvd_transport_read_reg(t, TVD_REG_MAGIC);
    version = tvd_transport_read_reg(t, TVD_REG_VERSION);
    if (magic != TVD_MAGIC || version != TVD_ABI_VERSION) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI,
                    "device %s: magic 0x%08x version %u, expected 0x%08x "
                    "version %u", t->addr, magic, version, TVD_MAGIC,
                    TVD_ABI_VERSION);
        return NULL;
    }
    t->mbox = map_bar(t->dev_dir, TVD_BAR_MAILBOX, &t->mbox_map_size,
                      error);
    if (!t->mbox) {
        return NULL;
    }
    mbox_size = tvd_transport_read_reg(t, TVD_REG_MBOX_SIZE);
    if (mbox_size > t->mbox_map_size || mbox_size < TVD_MBOX_SIZE_MIN) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI,
                    "mailbox of %u bytes does not fit its BAR (%zu)",
                    mbox_size, t->mbox_map_size);
        return NULL;
    }
    t->mbox_size = mbox_size;
    t->regs[TVD_REG_INT_MASK / 4] = TVD_INT_ALL;
    if (t->uio_fd >= 0) {
        tvd_transport_ack_irq(t);
    }
    g_debug("tvd device %s: mailbox %zu bytes, interrupts %s", t->addr,
            t->mbox_size, t->uio_fd >= 0 ? "through uio" : "polled");
    return g_steal_pointer(&t);
}

void tvd_transport_close(TvdTransport *t)
{
    if (!t) {
        return;
    }
    if (t->regs) {
        if (t->regs_map_size >= TVD_REGS_SIZE) {
            t->regs[TVD_REG_INT_MASK / 4] = 0;
        }
        munmap((void *)t->regs, t->regs_map_size);
    }
    if (t->mbox) {
        munmap(t->mbox, t->mbox_map_size);
    }
    if (t->uio_fd >= 0) {
        close(t->uio_fd);
    }
    if (t->config_fd >= 0) {
        close(t->config_fd);
    }
    g_free(t->dev_dir);
    g_free(t->addr);
    g_free(t);
}

const char *tvd_transport_address(TvdTransport *t)
{
    return t->addr;
}

uint32_t tvd_transport_read_reg(TvdTransport *t, enum tvd_reg reg)
{
    return t->regs[reg / 4];
}

uint32_t tvd_transport_half_size(TvdTransport *t)
{
    return TVD_MBOX_HALF(t->mbox_size);
}

int tvd_transport_irq_fd(TvdTransport *t)
{
    return t->uio_fd;
}

uint32_t tvd_transport_ack_irq(TvdTransport *t)
{
    uint32_t causes;
    uint32_t count;
    uint16_t cmd;

    if (t->uio_fd >= 0 && read(t->uio_fd, &count, sizeof(count)) < 0 &&
        errno != EAGAIN) {
        g_debug("uio read: %s", g_strerror(errno));
    }
    causes = t->regs[TVD_REG_INT_STATUS / 4];
    t->regs[TVD_REG_INT_STATUS / 4] = causes;
    /* uio_pci_generic masks INTx on each interrupt: unmask it again. */
    if (t->config_fd >= 0 &&
        pread(t->config_fd, &cmd, sizeof(cmd), PCI_COMMAND) == sizeof(cmd) &&
        (cmd & PCI_COMMAND_INTX_DISABLE)) {
        cmd &= ~PCI_COMMAND_INTX_DISABLE;
        if (pwrite(t->config_fd, &cmd, sizeof(cmd), PCI_COMMAND) !=
            sizeof(cmd)) {
            g_debug("cannot re-arm INTx: %s", g_strerror(errno));
        }
    }
    return causes;
}

gboolean tvd_transport_send(TvdTransport *t, const void *frame, size_t len,
                            int timeout_ms, GError **error)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
    uint32_t errors_before;

    if (len < TVD_FRAME_HEADER_SIZE || len > tvd_transport_half_size(t)) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_TOO_LARGE,
                    "frame of %zu bytes does not fit a mailbox half of %u",
                    len, tvd_transport_half_size(t));
        return FALSE;
    }
    while (t->regs[TVD_REG_STATUS / 4] & TVD_STATUS_G2H_BUSY) {
        if (g_get_monotonic_time() > end) {
            g_set_error(error, TVD_TRANSPORT_ERROR,
                        TVD_TRANSPORT_ERROR_TIMEOUT,
                        "the device stayed busy for %d ms", timeout_ms);
            return FALSE;
        }
        g_usleep(200);
    }
    memcpy(t->mbox + TVD_MBOX_G2H_OFFSET(t->mbox_size), frame, len);
    errors_before = t->regs[TVD_REG_GUEST_ERRORS / 4];
    t->regs[TVD_REG_G2H_LEN / 4] = len;
    t->regs[TVD_REG_G2H_DOORBELL / 4] = TVD_DOORBELL_SEND;
    if (t->regs[TVD_REG_GUEST_ERRORS / 4] != errors_before) {
        g_set_error(error, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_REJECTED,
                    "the device rejected the frame (error %u)",
                    t->regs[TVD_REG_LAST_ERROR / 4]);
        return FALSE;
    }
    return TRUE;
}

GBytes *tvd_transport_take(TvdTransport *t)
{
    uint32_t len = t->regs[TVD_REG_H2G_LEN / 4];
    GBytes *frame;

    if (len == 0) {
        return NULL;
    }
    if (len > tvd_transport_half_size(t)) {
        /* Cannot happen with a sane device: drop it rather than overread. */
        t->regs[TVD_REG_H2G_ACK / 4] = TVD_DOORBELL_ACK;
        return NULL;
    }
    frame = g_bytes_new(t->mbox + TVD_MBOX_H2G_OFFSET(t->mbox_size), len);
    t->regs[TVD_REG_H2G_ACK / 4] = TVD_DOORBELL_ACK;
    return frame;
}
