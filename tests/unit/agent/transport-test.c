/*
 * The agent's transport (guest-agent/transport.c) over a fake sysfs tree.
 *
 * This is the fast fake layer: bus/pci/devices/<addr>/ in a temporary
 * directory, with resource0 and resource2 as regular files of the BARs'
 * sizes (mmap of a regular file behaves as the BAR mapping does, minus the
 * device's side effects), so it checks what the agent reads and writes and
 * where, not what a device does with it. The real device path (QEMU's tvd
 * device, sysfs, uio) is the end-to-end test's.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "transport.h"

#define ADDR        "0000:00:04.0"
#define MBOX_SIZE   (64u * 1024)

typedef struct {
    char *root;                 /* the fake /sys */
    char *dev;                  /* .../bus/pci/devices/ADDR */
} Fixture;

static void put_file(const char *dir, const char *name, const void *data,
                     gsize len)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *p = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(p, data, len, &err));
    g_assert_no_error(err);
}

static char *path_of(Fixture *f, const char *name)
{
    return g_build_filename(f->dev, name, NULL);
}

static guint32 reg_get(Fixture *f, guint reg)
{
    g_autofree char *p = path_of(f, "resource0");
    int fd = open(p, O_RDONLY);
    guint8 b[4];

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, b, 4, reg), ==, 4);
    close(fd);
    return tvd_get_le32(b);
}

static void reg_set(Fixture *f, guint reg, guint32 v)
{
    g_autofree char *p = path_of(f, "resource0");
    int fd = open(p, O_WRONLY);
    guint8 b[4];

    tvd_put_le32(b, v);
    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, b, 4, reg), ==, 4);
    close(fd);
}

static void mbox_write(Fixture *f, gsize off, const void *data, gsize len)
{
    g_autofree char *p = path_of(f, "resource2");
    int fd = open(p, O_WRONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pwrite(fd, data, len, off), ==, (gssize)len);
    close(fd);
}

static guint8 *mbox_read(Fixture *f, gsize off, gsize len)
{
    g_autofree char *p = path_of(f, "resource2");
    guint8 *buf = g_malloc0(len);
    int fd = open(p, O_RDONLY);

    g_assert_cmpint(fd, >=, 0);
    g_assert_cmpint(pread(fd, buf, len, off), ==, (gssize)len);
    close(fd);
    return buf;
}

/* A device the way the tvd device looks in sysfs, and a decoy next to it. */
static void make_device(const char *bus, const char *addr, const char *vendor,
                        const char *device, char **out_dir)
{
    g_autofree char *dir = g_build_filename(bus, addr, NULL);
    g_autofree guint8 *regs = g_malloc0(TVD_REGS_SIZE);
    g_autofree guint8 *mbox = g_malloc0(MBOX_SIZE);
    guint8 config[256] = { 0 };

    g_assert_cmpint(g_mkdir_with_parents(dir, 0700), ==, 0);
    put_file(dir, "vendor", vendor, strlen(vendor));
    put_file(dir, "device", device, strlen(device));
    put_file(dir, "enable", "0\n", 2);
    tvd_put_le16(config + 0x04, 0x0406);     /* memory, master, INTx off */
    put_file(dir, "config", config, sizeof(config));
    tvd_put_le32(regs + TVD_REG_MAGIC, TVD_MAGIC);
    tvd_put_le32(regs + TVD_REG_VERSION, TVD_ABI_VERSION);
    tvd_put_le32(regs + TVD_REG_MBOX_SIZE, MBOX_SIZE);
    put_file(dir, "resource0", regs, TVD_REGS_SIZE);
    put_file(dir, "resource2", mbox, MBOX_SIZE);
    if (out_dir) {
        *out_dir = g_steal_pointer(&dir);
    }
}

static void setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *bus = NULL;

    f->root = g_dir_make_tmp("tvd-sysfs-XXXXXX", &err);
    g_assert_no_error(err);
    bus = g_build_filename(f->root, "bus/pci/devices", NULL);
    make_device(bus, "0000:00:02.0", "0x1234\n", "0x1111\n", NULL);
    make_device(bus, ADDR, "0x1af4\n", "0x10f0\n", &f->dev);
    make_device(bus, "0000:00:05.0", "0x1af4\n", "0x1000\n", NULL);
}

static void rmtree(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR)) {
            rmtree(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(path);
}

static void teardown(Fixture *f, gconstpointer data)
{
    rmtree(f->root);
    g_free(f->root);
    g_free(f->dev);
}

static void test_open(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdTransport) t = tvd_transport_open(f->root, NULL, TRUE, &err);
    g_autofree char *enable = path_of(f, "enable");
    g_autofree char *text = NULL;

    g_assert_no_error(err);
    g_assert_nonnull(t);
    g_assert_cmpstr(tvd_transport_address(t), ==, ADDR);
    g_assert_cmpuint(tvd_transport_half_size(t), ==, MBOX_SIZE / 2);
    g_assert_cmphex(tvd_transport_read_reg(t, TVD_REG_MAGIC), ==, TVD_MAGIC);
    /* No uio_pci_generic under this root: polled. */
    g_assert_cmpint(tvd_transport_irq_fd(t), ==, -1);
    /* Memory decoding turned on, every interrupt cause unmasked. */
    g_assert_true(g_file_get_contents(enable, &text, NULL, NULL));
    /* (a regular file keeps the old newline after the "1") */
    g_assert_true(g_str_has_prefix(text, "1"));
    g_assert_cmphex(reg_get(f, TVD_REG_INT_MASK), ==, TVD_INT_ALL);
    g_clear_pointer(&t, tvd_transport_close);
    /* Closing masks them again. */
    g_assert_cmphex(reg_get(f, TVD_REG_INT_MASK), ==, 0);

    /* By address, too. */
    t = tvd_transport_open(f->root, ADDR, FALSE, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(tvd_transport_address(t), ==, ADDR);
}

static void test_open_errors(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdTransport) t = NULL;
    g_autofree char *empty = g_build_filename(f->root, "empty", NULL);
    g_autofree char *emptybus = g_build_filename(empty, "bus/pci/devices",
                                                 NULL);

    /* Another device named: not ours. */
    t = tvd_transport_open(f->root, "0000:00:02.0", FALSE, &err);
    g_assert_null(t);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_NO_DEVICE);
    g_clear_error(&err);
    t = tvd_transport_open(f->root, "0000:00:09.0", FALSE, &err);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_NO_DEVICE);
    g_clear_error(&err);

    /* No tvd device at all. */
    g_assert_cmpint(g_mkdir_with_parents(emptybus, 0700), ==, 0);
    t = tvd_transport_open(empty, NULL, FALSE, &err);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_NO_DEVICE);
    g_clear_error(&err);
    /* No PCI bus. */
    t = tvd_transport_open("/nonexistent-sysfs", NULL, FALSE, &err);
    g_assert_null(t);
    g_assert_nonnull(err);
    g_clear_error(&err);

    /* Wrong magic, wrong ABI version: ABI errors. */
    reg_set(f, TVD_REG_MAGIC, 0x12345678);
    t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_assert_null(t);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI);
    g_clear_error(&err);
    reg_set(f, TVD_REG_MAGIC, TVD_MAGIC);
    reg_set(f, TVD_REG_VERSION, TVD_ABI_VERSION + 1);
    t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI);
    g_clear_error(&err);
    reg_set(f, TVD_REG_VERSION, TVD_ABI_VERSION);

    /* A mailbox size the BAR cannot hold, or below the minimum. */
    reg_set(f, TVD_REG_MBOX_SIZE, MBOX_SIZE * 2);
    t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI);
    g_clear_error(&err);
    reg_set(f, TVD_REG_MBOX_SIZE, TVD_MBOX_SIZE_MIN - 4);
    t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI);
    g_clear_error(&err);
    /* A smaller mailbox than the BAR is fine: the halves follow MBOX_SIZE. */
    reg_set(f, TVD_REG_MBOX_SIZE, MBOX_SIZE / 2);
    t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(tvd_transport_half_size(t), ==, MBOX_SIZE / 4);
    g_clear_pointer(&t, tvd_transport_close);
    reg_set(f, TVD_REG_MBOX_SIZE, MBOX_SIZE);

    /* A register BAR too small for the registers. */
    {
        g_autofree char *r0 = path_of(f, "resource0");

        g_assert_cmpint(truncate(r0, 64), ==, 0);
        t = tvd_transport_open(f->root, NULL, FALSE, &err);
        g_assert_null(t);
        g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_ABI);
        g_clear_error(&err);
        /* Missing altogether. */
        g_assert_cmpint(g_unlink(r0), ==, 0);
        t = tvd_transport_open(f->root, NULL, FALSE, &err);
        g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_IO);
    }
}

static void test_send(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdTransport) t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_autoptr(GBytes) frame = NULL;
    g_autofree guint8 *big = g_malloc0(MBOX_SIZE);
    g_autofree guint8 *got = NULL;
    static const char payload[] = "hello, supervisor";
    const guint8 *fd;
    gsize flen;

    g_assert_no_error(err);
    frame = tvd_frame_encode(TVD_FRAME_AGENT, 1, payload, sizeof(payload),
                             &err);
    fd = g_bytes_get_data(frame, &flen);
    g_assert_true(tvd_transport_send(t, fd, flen, 100, &err));
    g_assert_no_error(err);
    /* The frame at the start of the G2H half, then its length, then the
     * doorbell. */
    got = mbox_read(f, TVD_MBOX_G2H_OFFSET(MBOX_SIZE), flen);
    g_assert_cmpmem(got, flen, fd, flen);
    g_assert_cmpuint(reg_get(f, TVD_REG_G2H_LEN), ==, flen);
    g_assert_cmpuint(reg_get(f, TVD_REG_G2H_DOORBELL), ==,
                     TVD_DOORBELL_SEND);

    /* Exactly a half fits; one byte more does not, nor less than a header. */
    reg_set(f, TVD_REG_G2H_LEN, 0);
    g_assert_true(tvd_transport_send(t, big, MBOX_SIZE / 2, 100, &err));
    g_assert_cmpuint(reg_get(f, TVD_REG_G2H_LEN), ==, MBOX_SIZE / 2);
    reg_set(f, TVD_REG_G2H_LEN, 0);
    g_assert_false(tvd_transport_send(t, big, MBOX_SIZE / 2 + 1, 100, &err));
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_TOO_LARGE);
    g_clear_error(&err);
    g_assert_false(tvd_transport_send(t, big, TVD_FRAME_HEADER_SIZE - 1, 100,
                                      &err));
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_TOO_LARGE);
    g_clear_error(&err);
    /* Nothing was written for the refused frames. */
    g_assert_cmpuint(reg_get(f, TVD_REG_G2H_LEN), ==, 0);

    /* The device still relaying the last frame: a timeout, nothing sent. */
    reg_set(f, TVD_REG_STATUS, TVD_STATUS_G2H_BUSY);
    g_assert_false(tvd_transport_send(t, fd, flen, 20, &err));
    g_assert_error(err, TVD_TRANSPORT_ERROR, TVD_TRANSPORT_ERROR_TIMEOUT);
    g_assert_cmpuint(reg_get(f, TVD_REG_G2H_LEN), ==, 0);
}

static void test_take(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdTransport) t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_autoptr(GBytes) frame = NULL;
    g_autoptr(GBytes) got = NULL;
    static const char payload[] = "hello, agent";
    const guint8 *fd;
    gsize flen;

    g_assert_no_error(err);
    /* Nothing waiting: NULL and no acknowledgement. */
    g_assert_null(tvd_transport_take(t));
    g_assert_cmpuint(reg_get(f, TVD_REG_H2G_ACK), ==, 0);

    frame = tvd_frame_encode(TVD_FRAME_AGENT, 9, payload, sizeof(payload),
                             &err);
    fd = g_bytes_get_data(frame, &flen);
    mbox_write(f, TVD_MBOX_H2G_OFFSET(MBOX_SIZE), fd, flen);
    reg_set(f, TVD_REG_H2G_LEN, flen);
    got = tvd_transport_take(t);
    g_assert_nonnull(got);
    g_assert_true(g_bytes_equal(got, frame));
    g_assert_cmpuint(reg_get(f, TVD_REG_H2G_ACK), ==, TVD_DOORBELL_ACK);

    /* A length past the half (a broken device): dropped, acknowledged,
     * never read past the mailbox. */
    reg_set(f, TVD_REG_H2G_ACK, 0);
    reg_set(f, TVD_REG_H2G_LEN, MBOX_SIZE / 2 + 1);
    g_assert_null(tvd_transport_take(t));
    g_assert_cmpuint(reg_get(f, TVD_REG_H2G_ACK), ==, TVD_DOORBELL_ACK);
    reg_set(f, TVD_REG_H2G_LEN, 0xffffffff);
    g_assert_null(tvd_transport_take(t));
    /* A whole half is a valid length. */
    reg_set(f, TVD_REG_H2G_LEN, MBOX_SIZE / 2);
    g_clear_pointer(&got, g_bytes_unref);
    got = tvd_transport_take(t);
    g_assert_cmpuint(g_bytes_get_size(got), ==, MBOX_SIZE / 2);
}

/* Polled: ack_irq reads INT_STATUS, writes the causes back (RW1C) and
 * re-enables INTx in the command register. */
static void test_ack_irq(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdTransport) t = tvd_transport_open(f->root, NULL, FALSE, &err);
    g_autofree char *cfg = path_of(f, "config");
    g_autofree char *text = NULL;
    gsize len;

    g_assert_no_error(err);
    reg_set(f, TVD_REG_INT_STATUS, TVD_INT_H2G | TVD_INT_STATE);
    g_assert_cmphex(tvd_transport_ack_irq(t), ==,
                    TVD_INT_H2G | TVD_INT_STATE);
    g_assert_cmphex(reg_get(f, TVD_REG_INT_STATUS), ==,
                    TVD_INT_H2G | TVD_INT_STATE);
    g_assert_true(g_file_get_contents(cfg, &text, &len, NULL));
    g_assert_cmpuint(len, ==, 256);
    g_assert_cmphex(tvd_get_le16((const guint8 *)text + 0x04), ==, 0x0006);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

#define ADD(name, fn) \
    g_test_add("/agent/transport/" name, Fixture, NULL, setup, fn, teardown)
    ADD("open", test_open);
    ADD("open-errors", test_open_errors);
    ADD("send", test_send);
    ADD("take", test_take);
    ADD("ack-irq", test_ack_irq);
#undef ADD
    return g_test_run();
}
