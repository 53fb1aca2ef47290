/*
 * Golden byte vectors of the tvd wire formats: frames, control frames and
 * agent<->supervisor messages, each commented field by field, with the C
 * value each one encodes. Shared by tests/unit/frame-test.c,
 * tests/unit/message-test.c and the fuzz seed generator
 * (tests/fuzz/gen-corpus.c).
 *
 * GVariant layout reminders (docs/protocol.md has the full story):
 * - a tuple lays its members out in order, each at its type's alignment
 *   (y 1, q 2, u 4, t 8, b 1, s/ay 1, a(...) and (...) their largest
 *   member's), and appends one framing offset per variable-size member
 *   except the last, in reverse order: the end of that member, relative to
 *   the tuple start, 1 byte wide while the tuple is under 256 bytes;
 * - an array of variable-size elements ends with the end offset of every
 *   element, in order; an array of bytes (ay) is just the bytes;
 * - log records travel back to back in one ay: u32 pcr, 20-byte digest,
 *   u32 name length, name, u32 data length, data (all little-endian);
 * - a variant (v) is its value's bytes, a 0 byte, then its type string.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_TESTS_CODEC_VECTORS_H
#define TVD_TESTS_CODEC_VECTORS_H

#include <string.h>
#include <glib.h>

#include "frame.h"
#include "message.h"

/* ======================================================================= */
/* Frames                                                                  */
/* ======================================================================= */

/* SET_STATE frame, seq 7: ADMITTED because ATTESTED. */
static const guint8 vec_frame_set_state[] = {
    0x54, 0x56, 0x44, 0x46,     /* magic 0x46445654 "TVDF" LE */
    0x01,                       /* version 1 */
    0x10,                       /* type SET_STATE */
    0x00, 0x00,                 /* flags 0 */
    0x08, 0x00, 0x00, 0x00,     /* length 8 */
    0x07, 0x00, 0x00, 0x00,     /* seq 7 */
    0x02, 0x00, 0x00, 0x00,     /* state ADMITTED (2) */
    0x02, 0x00, 0x00, 0x00,     /* reason ATTESTED (2) */
};
#define VEC_SET_STATE_SEQ 7
static const struct tvd_set_state vec_set_state = {
    .state = TVD_STATE_ADMITTED, .reason = TVD_REASON_ATTESTED,
};

/* SET_LINK frame, seq 0x01020304: link disabled. */
static const guint8 vec_frame_set_link[] = {
    0x54, 0x56, 0x44, 0x46,     /* magic */
    0x01,                       /* version 1 */
    0x11,                       /* type SET_LINK */
    0x00, 0x00,                 /* flags 0 */
    0x08, 0x00, 0x00, 0x00,     /* length 8 */
    0x04, 0x03, 0x02, 0x01,     /* seq 0x01020304 */
    0x00, 0x00, 0x00, 0x00,     /* enable 0 */
    0x00, 0x00, 0x00, 0x00,     /* reserved 0 */
};
#define VEC_SET_LINK_SEQ 0x01020304u
static const struct tvd_set_link vec_set_link = { .enable = 0, .reserved = 0 };

/* DEVICE_EVENT frame, seq 2: STATE_APPLIED state 2 epoch 5. */
static const guint8 vec_frame_device_event[] = {
    0x54, 0x56, 0x44, 0x46,     /* magic */
    0x01,                       /* version 1 */
    0x02,                       /* type DEVICE_EVENT */
    0x00, 0x00,                 /* flags 0 */
    0x10, 0x00, 0x00, 0x00,     /* length 16 */
    0x02, 0x00, 0x00, 0x00,     /* seq 2 */
    0x02, 0x00, 0x00, 0x00,     /* event STATE_APPLIED (2) */
    0x02, 0x00, 0x00, 0x00,     /* arg0: state ADMITTED */
    0x05, 0x00, 0x00, 0x00,     /* arg1: epoch 5 */
    0x0b, 0x00, 0x00, 0x00,     /* status SUPERVISOR|LINK_UP|CONFIRMED */
};
#define VEC_DEVICE_EVENT_SEQ 2
static const struct tvd_device_event vec_device_event = {
    .event = TVD_EVENT_STATE_APPLIED, .arg0 = 2, .arg1 = 5,
    .status = TVD_STATUS_SUPERVISOR | TVD_STATUS_LINK_UP |
              TVD_STATUS_CONFIRMED,
};

/*
 * DEVICE_HELLO payload (696 bytes): the 32 bytes of integers below, then
 * seven NUL-padded strings at fixed offsets, then resets, flags and the
 * 16-byte instance (vec_hello_tail), zeros everywhere else;
 * vec_device_hello_payload() assembles it. Frame header: seq 1, length 696.
 */
static const guint8 vec_hello_header[] = {
    0x54, 0x56, 0x44, 0x46,     /* magic */
    0x01,                       /* version 1 */
    0x01,                       /* type DEVICE_HELLO */
    0x00, 0x00,                 /* flags 0 */
    0xb8, 0x02, 0x00, 0x00,     /* length 696 */
    0x01, 0x00, 0x00, 0x00,     /* seq 1 */
};
static const guint8 vec_hello_ints[32] = {
    0x01, 0x00, 0x00, 0x00,     /*  0 abi_version 1 */
    0x0e, 0x00, 0x00, 0x00,     /*  4 features NET_GATE|TPM_LINK|H2G_QUEUE */
    0x00, 0x00, 0x01, 0x00,     /*  8 mailbox_size 65536 */
    0x01, 0x00, 0x00, 0x00,     /* 12 state PENDING */
    0x07, 0x00, 0x00, 0x00,     /* 16 reason DEVICE_RESET */
    0x2a, 0x00, 0x00, 0x00,     /* 20 epoch 42 */
    0x00, 0x00, 0x00, 0x00,     /* 24 fail_mode CLOSED */
    0x01, 0x00, 0x00, 0x00,     /* 28 status SUPERVISOR */
};
static const struct {
    size_t off;
    const char *s;
} vec_hello_strings[] = {
    { 32,  "5f1c2a7e-0d4b-4c8a-9e61-3b7f2d90a4c5" },  /* vm_id */
    { 96,  "web-1" },                                  /* name */
    { 160, "blue" },                                   /* domain */
    { 224, "net0" },                                   /* netdev_id */
    { 288, "tpm0" },                                   /* tpmdev_id */
    { 352, "emulator" },                               /* tpm_type */
    { 416, "/run/tvd/vm1.swtpm" },                     /* tpm_path */
};
static const guint8 vec_hello_tail[24] = {
    0x03, 0x00, 0x00, 0x00,     /* 672 resets 3 */
    0x01, 0x00, 0x00, 0x00,     /* 676 flags RESET_UNREPORTED */
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,     /* 680 instance */
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
};
#define VEC_DEVICE_HELLO_SEQ 1

static inline void vec_device_hello_payload(guint8 out[TVD_DEVICE_HELLO_SIZE])
{
    size_t i;

    memset(out, 0, TVD_DEVICE_HELLO_SIZE);
    memcpy(out, vec_hello_ints, sizeof(vec_hello_ints));
    for (i = 0; i < G_N_ELEMENTS(vec_hello_strings); i++) {
        memcpy(out + vec_hello_strings[i].off, vec_hello_strings[i].s,
               strlen(vec_hello_strings[i].s));
    }
    memcpy(out + 672, vec_hello_tail, sizeof(vec_hello_tail));
}

static inline void vec_device_hello(struct tvd_device_hello *h)
{
    memset(h, 0, sizeof(*h));
    h->abi_version = TVD_ABI_VERSION;
    h->features = TVD_FEAT_NET_GATE | TVD_FEAT_TPM_LINK | TVD_FEAT_H2G_QUEUE;
    h->mailbox_size = 65536;
    h->state = TVD_STATE_PENDING;
    h->reason = TVD_REASON_DEVICE_RESET;
    h->epoch = 42;
    h->fail_mode = TVD_FAIL_CLOSED;
    h->status = TVD_STATUS_SUPERVISOR;
    strcpy(h->vm_id, "5f1c2a7e-0d4b-4c8a-9e61-3b7f2d90a4c5");
    strcpy(h->name, "web-1");
    strcpy(h->domain, "blue");
    strcpy(h->netdev_id, "net0");
    strcpy(h->tpmdev_id, "tpm0");
    strcpy(h->tpm_type, "emulator");
    strcpy(h->tpm_path, "/run/tvd/vm1.swtpm");
    h->resets = 3;
    h->flags = TVD_HELLO_RESET_UNREPORTED;
    for (size_t i = 0; i < sizeof(h->instance); i++) {
        h->instance[i] = (guint8)(0x10 + i);
    }
}

/* ======================================================================= */
/* Messages: each vector is a whole TVD_FRAME_AGENT payload.                */
/* Envelope (qqv): version at 0, type at 2, 4 bytes of padding, the body    */
/* at 8 (v aligns to 8), a 0 byte, the body's type string. Offsets in the   */
/* comments are relative to the body (envelope offset 8).                   */
/* ======================================================================= */

/* AGENT_HELLO, body (usyayayayayyyt) of 93 bytes. */
static const guint8 vec_msg_agent_hello[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x01, 0x00,                 /* envelope: type AGENT_HELLO */
    0x00, 0x00, 0x00, 0x00,     /* padding to the variant's alignment */
    0x00, 0x01, 0x00, 0x00,     /*  0 u agent_version 0x000100 (0.1.0) */
    /*  4 s boot_id "7c2e4f40-5b1a-4e8e-9d3c-2a6f0b1c8d9e" + NUL, to 41 */
    0x37, 0x63, 0x32, 0x65, 0x34, 0x66, 0x34, 0x30, 0x2d,
    0x35, 0x62, 0x31, 0x61, 0x2d, 0x34, 0x65, 0x38, 0x65, 0x2d,
    0x39, 0x64, 0x33, 0x63, 0x2d, 0x32, 0x61, 0x36, 0x66, 0x30, 0x62, 0x31,
    0x63, 0x38, 0x64, 0x39, 0x65, 0x00,
    0x01,                       /* 41 y ek_type RSA */
    0x30, 0x03, 0x02, 0x01, 0x01, /* 42 ay ek_cert (5 bytes of "DER"), to 47 */
                                /* 47 ay ek_public: empty, to 47 */
    0x00, 0x02, 0x00, 0x01,     /* 47 ay ak_public (4 bytes), to 51 */
    0x00, 0x04,                 /* 51 ay ak_name: nameAlg SHA-1 ... */
    0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
    0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41,
                                /*    ... + 20 digest bytes "A", to 73 */
    0x01,                       /* 73 y ak_alg RSA2048_RSASSA_SHA256 */
    0x0b,                       /* 74 y agent_pcr 11 */
    0x00, 0x00, 0x00, 0x00, 0x00, /* 75 padding to 80 for the uint64 */
    0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                /* 80 t capabilities IMA|AGENT_LIST|SHA256 */
    0x49,                       /* 88 framing: ak_name ends at 73 */
    0x33,                       /* 89 framing: ak_public ends at 51 */
    0x2f,                       /* 90 framing: ek_public ends at 47 */
    0x2f,                       /* 91 framing: ek_cert ends at 47 */
    0x29,                       /* 92 framing: boot_id ends at 41 */
    0x00,                       /* variant: separator */
    '(', 'u', 's', 'y', 'a', 'y', 'a', 'y', 'a', 'y', 'a', 'y', 'y', 'y',
    't', ')',                   /* variant: body type string */
};

static inline void vec_agent_hello(TvdMsg *m)
{
    TvdMsgAgentHello *h = &m->u.agent_hello;

    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_AGENT_HELLO;
    h->agent_version = TVD_AGENT_VERSION(0, 1, 0);
    strcpy(h->boot_id, "7c2e4f40-5b1a-4e8e-9d3c-2a6f0b1c8d9e");
    h->ek_type = TVD_EK_RSA;
    h->ek_cert = g_bytes_new("\x30\x03\x02\x01\x01", 5);
    h->ek_public = g_bytes_new(NULL, 0);
    h->ak_public = g_bytes_new("\x00\x02\x00\x01", 4);
    h->ak_name = g_bytes_new("\x00\x04" "AAAAAAAAAAAAAAAAAAAA", 22);
    h->ak_alg = TVD_AK_RSA2048_RSASSA_SHA256;
    h->agent_pcr = 11;
    h->capabilities = TVD_CAP_IMA | TVD_CAP_AGENT_LIST | TVD_CAP_PCR_SHA256;
}

/* CREDENTIAL_CHALLENGE, body (ayay) of 10 bytes. */
static const guint8 vec_msg_credential_challenge[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x02, 0x00,                 /* envelope: type CREDENTIAL_CHALLENGE */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0x00, 0x02, 0xaa, 0xbb,     /*  0 ay credential_blob, to 4 */
    0x00, 0x03, 0xcc, 0xdd, 0xee, /* 4 ay encrypted_secret, to 9 (last) */
    0x04,                       /*  9 framing: credential_blob ends at 4 */
    0x00,                       /* variant: separator */
    '(', 'a', 'y', 'a', 'y', ')',
};

static inline void vec_credential_challenge(TvdMsg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_CREDENTIAL_CHALLENGE;
    m->u.credential_challenge.credential_blob =
        g_bytes_new("\x00\x02\xaa\xbb", 4);
    m->u.credential_challenge.encrypted_secret =
        g_bytes_new("\x00\x03\xcc\xdd\xee", 5);
}

/* CREDENTIAL_RESPONSE, body (ay) of 4 bytes. */
static const guint8 vec_msg_credential_response[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x03, 0x00,                 /* envelope: type CREDENTIAL_RESPONSE */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0x53, 0x45, 0x43, 0x21,     /*  0 ay secret "SEC!" (last: no framing) */
    0x00,                       /* variant: separator */
    '(', 'a', 'y', ')',
};

static inline void vec_credential_response(TvdMsg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_CREDENTIAL_RESPONSE;
    m->u.credential_response.secret = g_bytes_new("SEC!", 4);
}

/* ATTEST_REQUEST, body (ayquttas) of 77 bytes. */
static const guint8 vec_msg_attest_request[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x04, 0x00,                 /* envelope: type ATTEST_REQUEST */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    /*  0 ay nonce, 32 bytes 0x00..0x1f, to 32 */
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
    0x0b, 0x00,                 /* 32 q pcr_bank SHA-256 (0x000b) */
    0x00, 0x00,                 /* 34 padding */
    0x01, 0x0c, 0x00, 0x00,     /* 36 u pcr_select PCRs 0, 10, 11 */
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 40 t ima_offset 5 */
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 48 t agent_offset 2 */
    /* 56 as paths (last member), 20 bytes: */
    '/', 'e', 't', 'c', '/', 't', 'v', 'd', 0x00,   /*   [0] ends at 9 */
    '/', 'o', 'p', 't', '/', 'a', 'p', 'p', 0x00,   /*   [1] ends at 18 */
    0x09, 0x12,                 /*    array framing: 9, 18 */
    0x20,                       /* 76 framing: nonce ends at 32 */
    0x00,                       /* variant: separator */
    '(', 'a', 'y', 'q', 'u', 't', 't', 'a', 's', ')',
};

static inline void vec_attest_request(TvdMsg *m)
{
    TvdMsgAttestRequest *r = &m->u.attest_request;
    int i;

    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_ATTEST_REQUEST;
    for (i = 0; i < 32; i++) {
        r->nonce[i] = (guint8)i;
    }
    r->pcr_bank = TVD_TPM_ALG_SHA256;
    r->pcr_select = (1u << 0) | (1u << 10) | (1u << 11);
    r->ima_offset = 5;
    r->agent_offset = 2;
    r->paths = g_new0(char *, 3);
    r->paths[0] = g_strdup("/etc/tvd");
    r->paths[1] = g_strdup("/opt/app");
}

/* EVIDENCE, body (ayayqa(yay)a(ytbay)) of 206 bytes. */
static const guint8 vec_msg_evidence[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x05, 0x00,                 /* envelope: type EVIDENCE */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0xff, 0x54, 0x43, 0x47,     /*  0 ay attest (TPM_GENERATED_VALUE), to 4 */
    0x00, 0x14, 0x00, 0x0b,     /*  4 ay signature (RSASSA, SHA-256), to 8 */
    0x04, 0x00,                 /*  8 q pcr_bank SHA-1 (0x0004) */
    /* 10 a(yay) pcrs, 44 bytes, to 54: */
    0x00,                       /*   [0] y index 0 */
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
    0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                /*   [0] ay digest, 20 bytes; ends at 21 */
    0x0a,                       /*   [1] y index 10 */
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
    0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
                                /*   [1] ay digest, 20 bytes; ends at 42 */
    0x15, 0x2a,                 /*   array framing: 21, 42 */
    0x00, 0x00,                 /* 54 padding to 56 (the chunks hold a t) */
    /* 56 a(ytbay) logs (last member), 147 bytes, to 203: */
    0x01,                       /*   [0] y kind IMA_NG */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* padding */
    0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* [0] t offset 5 */
    0x00,                       /*   [0] b more FALSE */
                                /*   [0] ay records, 78 bytes: */
    0x0a, 0x00, 0x00, 0x00,     /*     record 0: pcr 10 */
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
                                /*     template digest */
    0x06, 0x00, 0x00, 0x00,     /*     name length 6 */
    'i', 'm', 'a', '-', 'n', 'g', /*   name */
    0x02, 0x00, 0x00, 0x00,     /*     data length 2 */
    'd', '1',                   /*     data (40 bytes in all) */
    0x0a, 0x00, 0x00, 0x00,     /*     record 1: pcr 10 */
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
                                /*     template digest */
    0x06, 0x00, 0x00, 0x00,     /*     name length 6 */
    'i', 'm', 'a', '-', 'n', 'g', /*   name */
    0x00, 0x00, 0x00, 0x00,     /*     data length 0 (38 bytes); [0] ends at 95 */
    0x00,                       /*   padding to 96 */
    0x02,                       /*   [1] y kind AGENT_LIST */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* padding */
    0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* [1] t offset 2 */
    0x01,                       /*   [1] b more TRUE */
                                /*   [1] ay records, 32 bytes: */
    0x0b, 0x00, 0x00, 0x00,     /*     record 0: pcr 11 */
    0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
    0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03, 0x03,
                                /*     template digest */
    0x00, 0x00, 0x00, 0x00,     /*     name length 0 */
    0x00, 0x00, 0x00, 0x00,     /*     data length 0; [1] ends at 145 */
    0x5f, 0x91,                 /*   array framing: 95, 145 */
    0x36,                       /* 203 framing: pcrs end at 54 */
    0x08,                       /* 204 framing: signature ends at 8 */
    0x04,                       /* 205 framing: attest ends at 4 */
    0x00,                       /* variant: separator */
    '(', 'a', 'y', 'a', 'y', 'q', 'a', '(', 'y', 'a', 'y', ')',
    'a', '(', 'y', 't', 'b', 'a', 'y', ')', ')',
};

/* One binary IMA record: pcr, 20 digest bytes of @fill, name, data. */
static inline GBytes *vec_record(guint32 pcr, guint8 fill, const char *name,
                                 const char *data)
{
    GByteArray *r = g_byte_array_new();
    guint8 u[4];
    guint8 digest[20];

    tvd_put_le32(u, pcr);
    g_byte_array_append(r, u, 4);
    memset(digest, fill, sizeof(digest));
    g_byte_array_append(r, digest, sizeof(digest));
    tvd_put_le32(u, (guint32)strlen(name));
    g_byte_array_append(r, u, 4);
    g_byte_array_append(r, (const guint8 *)name, (guint)strlen(name));
    tvd_put_le32(u, (guint32)strlen(data));
    g_byte_array_append(r, u, 4);
    g_byte_array_append(r, (const guint8 *)data, (guint)strlen(data));
    return g_byte_array_free_to_bytes(r);
}

static inline GPtrArray *vec_entries(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
}

static inline void vec_evidence(TvdMsg *m)
{
    TvdMsgEvidence *ev = &m->u.evidence;
    guint8 d[20];

    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_EVIDENCE;
    ev->attest = g_bytes_new("\xff\x54\x43\x47", 4);
    ev->signature = g_bytes_new("\x00\x14\x00\x0b", 4);
    ev->pcr_bank = TVD_TPM_ALG_SHA1;
    ev->n_pcrs = 2;
    ev->pcrs[0].index = 0;
    memset(d, 0x11, sizeof(d));
    ev->pcrs[0].digest = g_bytes_new(d, sizeof(d));
    ev->pcrs[1].index = 10;
    memset(d, 0xaa, sizeof(d));
    ev->pcrs[1].digest = g_bytes_new(d, sizeof(d));
    ev->n_logs = 2;
    ev->logs[0].kind = TVD_LOG_IMA_NG;
    ev->logs[0].offset = 5;
    ev->logs[0].more = FALSE;
    ev->logs[0].entries = vec_entries();
    g_ptr_array_add(ev->logs[0].entries, vec_record(10, 0x01, "ima-ng", "d1"));
    g_ptr_array_add(ev->logs[0].entries, vec_record(10, 0x02, "ima-ng", ""));
    ev->logs[1].kind = TVD_LOG_AGENT_LIST;
    ev->logs[1].offset = 2;
    ev->logs[1].more = TRUE;
    ev->logs[1].entries = vec_entries();
    g_ptr_array_add(ev->logs[1].entries, vec_record(11, 0x03, "", ""));
}

/* LOG_CHUNK, body (ytbay) of 58 bytes. */
static const guint8 vec_msg_log_chunk[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x06, 0x00,                 /* envelope: type LOG_CHUNK */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0x01,                       /*  0 y kind IMA_NG */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 1 padding to 8 */
    0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 8 t offset 7 */
    0x00,                       /* 16 b more FALSE */
                                /* 17 ay records (last member), 41 bytes: */
    0x0a, 0x00, 0x00, 0x00,     /*    record 0: pcr 10 */
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
    0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04,
                                /*    template digest */
    0x06, 0x00, 0x00, 0x00,     /*    name length 6 */
    'i', 'm', 'a', '-', 'n', 'g', /*  name */
    0x03, 0x00, 0x00, 0x00,     /*    data length 3 */
    'x', 'y', 'z',              /*    data */
    0x00,                       /* variant: separator */
    '(', 'y', 't', 'b', 'a', 'y', ')',
};

static inline void vec_log_chunk(TvdMsg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_LOG_CHUNK;
    m->u.log_chunk.kind = TVD_LOG_IMA_NG;
    m->u.log_chunk.offset = 7;
    m->u.log_chunk.more = FALSE;
    m->u.log_chunk.entries = vec_entries();
    g_ptr_array_add(m->u.log_chunk.entries,
                    vec_record(10, 0x04, "ima-ng", "xyz"));
}

/* MEMBERSHIP, body (uusuu) of 29 bytes. */
static const guint8 vec_msg_membership[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x07, 0x00,                 /* envelope: type MEMBERSHIP */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0x02, 0x00, 0x00, 0x00,     /*  0 u state ADMITTED */
    0x02, 0x00, 0x00, 0x00,     /*  4 u reason ATTESTED */
    'a', 't', 't', 'e', 's', 't', 'e', 'd', 0x00, /* 8 s reason_text, to 17 */
    0x00, 0x00, 0x00,           /* 17 padding to 20 */
    0x03, 0x00, 0x00, 0x00,     /* 20 u epoch 3 */
    0x3c, 0x00, 0x00, 0x00,     /* 24 u deadline_s 60 */
    0x11,                       /* 28 framing: reason_text ends at 17 */
    0x00,                       /* variant: separator */
    '(', 'u', 'u', 's', 'u', 'u', ')',
};

static inline void vec_membership(TvdMsg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_MEMBERSHIP;
    m->u.membership.state = TVD_STATE_ADMITTED;
    m->u.membership.reason = TVD_REASON_ATTESTED;
    m->u.membership.reason_text = g_strdup("attested");
    m->u.membership.epoch = 3;
    m->u.membership.deadline_s = 60;
}

/* ERROR, body (uqs) of 19 bytes. */
static const guint8 vec_msg_error_report[] = {
    0x01, 0x00,                 /* envelope: protocol version 1 */
    0x08, 0x00,                 /* envelope: type ERROR */
    0x00, 0x00, 0x00, 0x00,     /* padding */
    0x05, 0x00, 0x00, 0x00,     /*  0 u code TPM (5) */
    0x04, 0x00,                 /*  4 q ref_type ATTEST_REQUEST */
    'q', 'u', 'o', 't', 'e', ' ', 'f', 'a', 'i', 'l', 'e', 'd', 0x00,
                                /*  6 s text (last member), to 19 */
    0x00,                       /* variant: separator */
    '(', 'u', 'q', 's', ')',
};

static inline void vec_error_report(TvdMsg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = TVD_MSG_ERROR_REPORT;
    m->u.error_report.code = TVD_MSG_ERR_TPM;
    m->u.error_report.ref_type = TVD_MSG_ATTEST_REQUEST;
    m->u.error_report.text = g_strdup("quote failed");
}

/* Every message vector with the builder of the value it encodes. */
typedef struct {
    const char *name;
    guint16 type;
    const guint8 *bytes;
    gsize len;
    void (*build)(TvdMsg *m);
} TvdMsgVector;

#define VEC(n, t, f) { n, t, vec_msg_##f, sizeof(vec_msg_##f), vec_##f }
static const TvdMsgVector vec_messages[] = {
    VEC("agent-hello", TVD_MSG_AGENT_HELLO, agent_hello),
    VEC("credential-challenge", TVD_MSG_CREDENTIAL_CHALLENGE,
        credential_challenge),
    VEC("credential-response", TVD_MSG_CREDENTIAL_RESPONSE,
        credential_response),
    VEC("attest-request", TVD_MSG_ATTEST_REQUEST, attest_request),
    VEC("evidence", TVD_MSG_EVIDENCE, evidence),
    VEC("log-chunk", TVD_MSG_LOG_CHUNK, log_chunk),
    VEC("membership", TVD_MSG_MEMBERSHIP, membership),
    VEC("error", TVD_MSG_ERROR_REPORT, error_report),
};
#undef VEC

#endif /* TVD_TESTS_CODEC_VECTORS_H */
