/*
 * QTest for the tvd device (placeholder while the full suite is written)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "libqtest.h"
#include "libqos/pci-pc.h"
#include "hw/pci/pci_regs.h"
#include "hw/misc/tvd.h"

static void test_identity(void)
{
    QTestState *qts = qtest_init("-chardev file,id=sup,path=/dev/null "
                                 "-device tvd,chardev=sup,addr=04.0");
    QPCIBus *bus = qpci_new_pc(qts, NULL);
    QPCIDevice *dev = qpci_device_find(bus, QPCI_DEVFN(4, 0));
    QPCIBar bar;

    g_assert_nonnull(dev);
    g_assert_cmphex(qpci_config_readw(dev, PCI_VENDOR_ID), ==,
                    TVD_PCI_VENDOR_ID);
    qpci_device_enable(dev);
    bar = qpci_iomap(dev, TVD_BAR_REGS, NULL);
    g_assert_cmphex(qpci_io_readl(dev, bar, TVD_REG_MAGIC), ==, TVD_MAGIC);
    g_free(dev);
    qpci_free_pc(bus);
    qtest_quit(qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/tvd/identity", test_identity);
    return g_test_run();
}
