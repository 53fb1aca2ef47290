/*
 * tvd: Trusted Virtual Domain paravirtual device, the device ABI.
 *
 * This header is the single source of truth for the register map, the
 * frame format and the limits shared by the QEMU device model, its qtests,
 * the guest agent and the host supervisor. It is self-contained on purpose
 * (only <stdint.h>), so all of them include the very same file.
 *
 * docs/device.md describes the behaviour behind every number here.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_MISC_TVD_H
#define HW_MISC_TVD_H

#include <stdint.h>

/* ---- PCI identity ---------------------------------------------------- */

#define TVD_PCI_VENDOR_ID       0x1af4  /* Red Hat / virtio range */
#define TVD_PCI_DEVICE_ID       0x10f0  /* experimental, free in QEMU */
#define TVD_PCI_REVISION        0x01
#define TVD_PCI_CLASS           0xff00  /* "unassigned class": other */

#define TVD_BAR_REGS            0       /* 4 KiB of 32-bit registers */
#define TVD_BAR_MSIX            1       /* MSI-X table and PBA */
#define TVD_BAR_MAILBOX         2       /* mailbox RAM */

#define TVD_REGS_SIZE           0x1000
#define TVD_MSIX_VECTORS        1       /* every cause shares vector 0 */

/* ---- Register map (BAR0), little-endian, 32-bit aligned accesses ------- */

#define TVD_MAGIC               0x31445654u /* "TVD1" */
#define TVD_ABI_VERSION         1u

enum tvd_reg {
    TVD_REG_MAGIC           = 0x00, /* RO  TVD_MAGIC */
    TVD_REG_VERSION         = 0x04, /* RO  TVD_ABI_VERSION */
    TVD_REG_FEATURES        = 0x08, /* RO  TVD_FEAT_* */
    TVD_REG_STATE           = 0x0c, /* RO  enum tvd_state */
    TVD_REG_REASON          = 0x10, /* RO  enum tvd_reason (or >= 0x1000) */
    TVD_REG_EPOCH           = 0x14, /* RO  bumped on every pushed change */
    TVD_REG_MBOX_SIZE       = 0x18, /* RO  size of BAR2 in bytes */
    TVD_REG_STATUS          = 0x1c, /* RO  TVD_STATUS_* */
    TVD_REG_G2H_LEN         = 0x20, /* RW  bytes of the frame in the G2H half */
    TVD_REG_G2H_DOORBELL    = 0x24, /* WO  write TVD_DOORBELL_SEND */
    TVD_REG_H2G_LEN         = 0x28, /* RO  H2G frame bytes, 0 if none */
    TVD_REG_H2G_ACK         = 0x2c, /* WO  write 1: H2G frame consumed */
    TVD_REG_H2G_PENDING     = 0x30, /* RO  frames queued, incl. current */
    TVD_REG_H2G_DROPPED     = 0x34, /* RO  frames dropped: queue full */
    TVD_REG_INT_STATUS      = 0x38, /* RW1C TVD_INT_* */
    TVD_REG_INT_MASK        = 0x3c, /* RW  TVD_INT_* enabled (1 = enabled) */
    TVD_REG_GUEST_ERRORS    = 0x40, /* RO  bad guest accesses and frames */
    TVD_REG_HOST_ERRORS     = 0x44, /* RO  bad supervisor frames */
    TVD_REG_LAST_ERROR      = 0x48, /* RO  enum tvd_error of the last error */
    TVD_REG_G2H_FRAMES      = 0x4c, /* RO  frames relayed guest -> host */
    TVD_REG_H2G_FRAMES      = 0x50, /* RO  frames delivered host -> guest */
    TVD_REG_FAIL_MODE       = 0x54, /* RO  enum tvd_fail_mode */
};
#define TVD_REG_COUNT           ((TVD_REG_FAIL_MODE / 4) + 1)

/* TVD_REG_FEATURES */
#define TVD_FEAT_MSIX           (1u << 0)   /* MSI-X capability present */
#define TVD_FEAT_NET_GATE       (1u << 1)   /* a netdev is gated */
#define TVD_FEAT_TPM_LINK       (1u << 2)   /* a TPM backend is linked */
#define TVD_FEAT_H2G_QUEUE      (1u << 3)   /* host->guest queue with ACK */

/* TVD_REG_STATUS */
#define TVD_STATUS_SUPERVISOR   (1u << 0)   /* supervisor connected */
#define TVD_STATUS_LINK_UP      (1u << 1)   /* gated NIC link is up */
#define TVD_STATUS_G2H_BUSY     (1u << 2)   /* G2H frame not yet relayed */
#define TVD_STATUS_CONFIRMED    (1u << 3)   /* state set by this connection */

/* Doorbell values (any other value is a guest error) */
#define TVD_DOORBELL_SEND       1u
#define TVD_DOORBELL_ACK        1u

/* Interrupt causes, TVD_REG_INT_STATUS / TVD_REG_INT_MASK */
#define TVD_INT_H2G             (1u << 0)   /* a frame waits in the H2G half */
#define TVD_INT_G2H_DONE        (1u << 1)   /* G2H half free again */
#define TVD_INT_STATE           (1u << 2)   /* state, reason or epoch changed */
#define TVD_INT_SUPERVISOR      (1u << 3)   /* supervisor (dis)connected */
#define TVD_INT_ERROR           (1u << 4)   /* an error was counted */
#define TVD_INT_ALL             0x1fu

/* Membership states as the device holds them */
enum tvd_state {
    TVD_STATE_PENDING       = 1,    /* not yet admitted: link held down */
    TVD_STATE_ADMITTED      = 2,    /* member: link may be up */
    TVD_STATE_QUARANTINED   = 3,    /* cut off, may be readmitted */
    TVD_STATE_REVOKED       = 4,    /* cut off for good */
};
#define TVD_STATE_MAX           TVD_STATE_REVOKED

/*
 * Reasons carried with a state. Values below 0x1000 are defined here;
 * values from 0x1000 up belong to the supervisor's policy layer.
 */
enum tvd_reason {
    TVD_REASON_NONE             = 0,
    TVD_REASON_AWAITING         = 1,    /* waiting for attestation */
    TVD_REASON_ATTESTED         = 2,    /* evidence verified */
    TVD_REASON_POLICY           = 3,    /* evidence violates the policy */
    TVD_REASON_EVIDENCE         = 4,    /* evidence invalid */
    TVD_REASON_DEADLINE         = 5,    /* attestation deadline missed */
    TVD_REASON_ADMIN            = 6,    /* operator decision */
    TVD_REASON_DEVICE_RESET     = 7,    /* guest reset the VM */
    TVD_REASON_MIGRATED         = 8,    /* incoming migration */
};
#define TVD_REASON_SUPERVISOR_BASE  0x1000u

enum tvd_fail_mode {
    TVD_FAIL_CLOSED         = 0,    /* link down while the supervisor is away */
    TVD_FAIL_OPEN           = 1,    /* link kept as it was */
};

/* TVD_REG_LAST_ERROR */
enum tvd_error {
    TVD_ERR_NONE            = 0,
    TVD_ERR_BAD_ACCESS      = 1,    /* unaligned or not 32 bits wide */
    TVD_ERR_BAD_REGISTER    = 2,    /* write to read-only or unknown register */
    TVD_ERR_BAD_LENGTH      = 3,    /* G2H_LEN zero, short or too large */
    TVD_ERR_BUSY            = 4,    /* doorbell while G2H busy */
    TVD_ERR_BAD_FRAME       = 5,    /* G2H frame header invalid */
    TVD_ERR_NO_SUPERVISOR   = 6,    /* doorbell while disconnected */
    TVD_ERR_BAD_DOORBELL    = 7,    /* doorbell/ack not 1, or no frame */
    TVD_ERR_HOST_FRAME      = 8,    /* bad host frame: connection reset */
    TVD_ERR_HOST_TYPE       = 9,    /* host frame of unknown type */
    TVD_ERR_HOST_PAYLOAD    = 10,   /* supervisor payload invalid: dropped */
    TVD_ERR_H2G_OVERFLOW    = 11,   /* H2G queue full: frame dropped */
};

/* ---- Mailbox (BAR2) --------------------------------------------------- */

/*
 * BAR2 is RAM of mailbox-size bytes, a power of two. The lower half is the
 * guest->host (G2H) half, the upper half the host->guest (H2G) half. Each
 * holds at most one frame (header + payload) at offset 0 of its half.
 */
#define TVD_MBOX_SIZE_DEFAULT   (64u * 1024)
#define TVD_MBOX_SIZE_MIN       (4u * 1024)
#define TVD_MBOX_SIZE_MAX       (16u * 1024 * 1024)
#define TVD_MBOX_G2H_OFFSET(sz) 0u
#define TVD_MBOX_H2G_OFFSET(sz) ((sz) / 2)
#define TVD_MBOX_HALF(sz)       ((sz) / 2)

/* ---- Frames ------------------------------------------------------------ */

/*
 * Every frame, on the chardev stream and in the mailbox:
 *
 *   offset size field
 *   0      4    magic    TVD_FRAME_MAGIC
 *   4      1    version  TVD_FRAME_VERSION
 *   5      1    type     enum tvd_frame_type
 *   6      2    flags    0 (reserved, must be zero)
 *   8      4    length   payload bytes following the header
 *   12     4    seq      sender's sequence number (not interpreted by QEMU)
 *   16     ...  payload
 *
 * All fields little-endian.
 */
#define TVD_FRAME_MAGIC         0x46445654u /* "TVDF" */
#define TVD_FRAME_VERSION       1u
#define TVD_FRAME_HEADER_SIZE   16u
/* Largest payload on the stream: a full H2G/G2H half of the largest mailbox */
#define TVD_FRAME_MAX_PAYLOAD   (TVD_MBOX_SIZE_MAX / 2 - TVD_FRAME_HEADER_SIZE)

struct tvd_frame_header {
    uint32_t magic;
    uint8_t version;
    uint8_t type;
    uint16_t flags;
    uint32_t length;
    uint32_t seq;
};

enum tvd_frame_type {
    /* device -> supervisor control frames */
    TVD_FRAME_DEVICE_HELLO  = 0x01, /* struct tvd_device_hello */
    TVD_FRAME_DEVICE_EVENT  = 0x02, /* struct tvd_device_event */
    /* supervisor -> device control frames */
    TVD_FRAME_SET_STATE     = 0x10, /* struct tvd_set_state */
    TVD_FRAME_SET_LINK      = 0x11, /* struct tvd_set_link */
    /* agent <-> supervisor, relayed opaquely both ways */
    TVD_FRAME_AGENT         = 0x20, /* payload owned by the agent protocol */
};

#define TVD_ID_LEN              64  /* NUL-padded identifier fields */
#define TVD_PATH_LEN            256 /* NUL-padded path fields */

/* TVD_FRAME_DEVICE_HELLO, sent on every (re)connect of the chardev. */
struct tvd_device_hello {
    uint32_t abi_version;           /* TVD_ABI_VERSION */
    uint32_t features;              /* TVD_FEAT_* */
    uint32_t mailbox_size;
    uint32_t state;                 /* enum tvd_state held by the device */
    uint32_t reason;
    uint32_t epoch;
    uint32_t fail_mode;             /* enum tvd_fail_mode */
    uint32_t status;                /* TVD_STATUS_* */
    char vm_id[TVD_ID_LEN];         /* UUID string (vm-id or -uuid) */
    char name[TVD_ID_LEN];          /* -name, may be empty */
    char domain[TVD_ID_LEN];        /* requested TVD, may be empty */
    char netdev_id[TVD_ID_LEN];     /* gated netdev, may be empty */
    char tpmdev_id[TVD_ID_LEN];     /* linked TPM backend, may be empty */
    char tpm_type[TVD_ID_LEN];      /* "emulator", "passthrough" or empty */
    char tpm_path[TVD_PATH_LEN];    /* swtpm socket or TPM device path */
    /*
     * What happened while no supervisor listened (since the hello grew
     * from 672 to 696 bytes; the guest-visible ABI did not change).
     * resets: guest resets since the device was realized (the power-on
     * one excluded); instance: random at realize, so another QEMU process
     * has another value.
     */
    uint32_t resets;
    uint32_t flags;                 /* TVD_HELLO_* */
    uint8_t instance[16];
};

/* tvd_device_hello.flags */
/*
 * A guest reset happened while no supervisor was connected; cleared by the
 * next SET_STATE.
 */
#define TVD_HELLO_RESET_UNREPORTED (1u << 0)
#define TVD_HELLO_FLAGS_KNOWN   TVD_HELLO_RESET_UNREPORTED

/* TVD_FRAME_DEVICE_EVENT */
enum tvd_event {
    TVD_EVENT_RESET         = 1,    /* guest reset: state is PENDING again */
    TVD_EVENT_STATE_APPLIED = 2,    /* arg0 = state, arg1 = epoch */
    TVD_EVENT_H2G_DROPPED   = 3,    /* arg0 = total dropped frames */
    TVD_EVENT_MIGRATED      = 4,    /* device state arrived by migration */
    TVD_EVENT_GUEST_ERROR   = 5,    /* arg0 = enum tvd_error, arg1 = total */
};

struct tvd_device_event {
    uint32_t event;                 /* enum tvd_event */
    uint32_t arg0;
    uint32_t arg1;
    uint32_t status;                /* TVD_STATUS_* when the event was sent */
};

/* TVD_FRAME_SET_STATE: new membership state; the link follows it. */
struct tvd_set_state {
    uint32_t state;                 /* enum tvd_state */
    uint32_t reason;                /* enum tvd_reason or supervisor code */
};

/* TVD_FRAME_SET_LINK: extra lock; link up only if ADMITTED and enabled */
struct tvd_set_link {
    uint32_t enable;                /* 0 or 1 */
    uint32_t reserved;              /* zero */
};

/* ---- Limits ------------------------------------------------------------- */

/* Frames and bytes waiting for the guest, beyond the one presented */
#define TVD_H2G_QUEUE_MAX       64u
#define TVD_H2G_QUEUE_BYTES     (4u * 1024 * 1024)
/* Bytes waiting for the supervisor: the largest frame plus control frames */
#define TVD_TX_BUFFER_MAX       (TVD_FRAME_HEADER_SIZE + \
                                 TVD_FRAME_MAX_PAYLOAD + 64u * 1024)

#endif /* HW_MISC_TVD_H */
