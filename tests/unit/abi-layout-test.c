/*
 * The device ABI header (include/hw/misc/tvd.h): self-contained C11 and
 * laid out exactly as docs/device.md documents it. The device encodes the
 * structs field by field, so a layout drift here would silently break the
 * agent and the supervisor, which map them directly.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "hw/misc/tvd.h" /* first: proves the header needs nothing else */

#include <stddef.h>
#include <glib.h>

static void test_header_layout(void)
{
    g_assert_cmpuint(sizeof(struct tvd_frame_header), ==, TVD_FRAME_HEADER_SIZE);
    g_assert_cmpuint(offsetof(struct tvd_frame_header, version), ==, 4);
    g_assert_cmpuint(offsetof(struct tvd_frame_header, type), ==, 5);
    g_assert_cmpuint(offsetof(struct tvd_frame_header, flags), ==, 6);
    g_assert_cmpuint(offsetof(struct tvd_frame_header, length), ==, 8);
    g_assert_cmpuint(offsetof(struct tvd_frame_header, seq), ==, 12);
}

static void test_hello_layout(void)
{
    g_assert_cmpuint(sizeof(struct tvd_device_hello), ==, 696);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, resets), ==, 672);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, flags), ==, 676);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, instance), ==, 680);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, status), ==, 28);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, vm_id), ==, 32);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, name), ==, 96);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, domain), ==, 160);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, netdev_id), ==, 224);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, tpmdev_id), ==, 288);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, tpm_type), ==, 352);
    g_assert_cmpuint(offsetof(struct tvd_device_hello, tpm_path), ==, 416);
}

static void test_control_layout(void)
{
    g_assert_cmpuint(sizeof(struct tvd_device_event), ==, 16);
    g_assert_cmpuint(sizeof(struct tvd_set_state), ==, 8);
    g_assert_cmpuint(sizeof(struct tvd_set_link), ==, 8);
}

static void test_limits(void)
{
    /* Both halves of the smallest and largest mailbox hold a header. */
    g_assert_cmpuint(TVD_MBOX_HALF(TVD_MBOX_SIZE_MIN), >, TVD_FRAME_HEADER_SIZE);
    g_assert_cmpuint(TVD_FRAME_HEADER_SIZE + TVD_FRAME_MAX_PAYLOAD, ==,
                     TVD_MBOX_HALF(TVD_MBOX_SIZE_MAX));
    g_assert_cmpuint(TVD_MBOX_SIZE_DEFAULT & (TVD_MBOX_SIZE_DEFAULT - 1), ==, 0);
    g_assert_cmpuint(TVD_REG_COUNT * 4, <=, TVD_REGS_SIZE);
    /* The transmit buffer fits the largest relayed frame plus control frames. */
    g_assert_cmpuint(TVD_TX_BUFFER_MAX, >,
                     TVD_FRAME_HEADER_SIZE + TVD_FRAME_MAX_PAYLOAD);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/abi/frame-header", test_header_layout);
    g_test_add_func("/abi/device-hello", test_hello_layout);
    g_test_add_func("/abi/control-frames", test_control_layout);
    g_test_add_func("/abi/limits", test_limits);
    return g_test_run();
}
