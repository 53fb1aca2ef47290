/*
 * Frame codec (common/frame.c): header, whole frames, the stream
 * reassembler and the control frames, against the golden vectors of
 * codec-vectors.h, both directions, plus rejection of bad input.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <glib.h>

#include "frame.h"
#include "codec-vectors.h"

static void assert_hello_equal(const struct tvd_device_hello *a,
                               const struct tvd_device_hello *b)
{
    /* Fields one by one (struct padding is not compared: there is none,
     * but memcmp would hide which field differs). */
    g_assert_cmpuint(a->abi_version, ==, b->abi_version);
    g_assert_cmphex(a->features, ==, b->features);
    g_assert_cmpuint(a->mailbox_size, ==, b->mailbox_size);
    g_assert_cmpuint(a->state, ==, b->state);
    g_assert_cmpuint(a->reason, ==, b->reason);
    g_assert_cmpuint(a->epoch, ==, b->epoch);
    g_assert_cmpuint(a->fail_mode, ==, b->fail_mode);
    g_assert_cmphex(a->status, ==, b->status);
    g_assert_cmpuint(a->resets, ==, b->resets);
    g_assert_cmphex(a->flags, ==, b->flags);
    g_assert_cmpmem(a->instance, sizeof(a->instance), b->instance,
                    sizeof(b->instance));
    g_assert_cmpmem(a->vm_id, sizeof(a->vm_id), b->vm_id, sizeof(b->vm_id));
    g_assert_cmpmem(a->name, sizeof(a->name), b->name, sizeof(b->name));
    g_assert_cmpmem(a->domain, sizeof(a->domain), b->domain,
                    sizeof(b->domain));
    g_assert_cmpmem(a->netdev_id, sizeof(a->netdev_id), b->netdev_id,
                    sizeof(b->netdev_id));
    g_assert_cmpmem(a->tpmdev_id, sizeof(a->tpmdev_id), b->tpmdev_id,
                    sizeof(b->tpmdev_id));
    g_assert_cmpmem(a->tpm_type, sizeof(a->tpm_type), b->tpm_type,
                    sizeof(b->tpm_type));
    g_assert_cmpmem(a->tpm_path, sizeof(a->tpm_path), b->tpm_path,
                    sizeof(b->tpm_path));
}

/* The whole hello frame: header + payload. */
static GBytes *hello_frame(void)
{
    guint8 *buf = g_malloc(TVD_FRAME_HEADER_SIZE + TVD_DEVICE_HELLO_SIZE);

    memcpy(buf, vec_hello_header, sizeof(vec_hello_header));
    vec_device_hello_payload(buf + TVD_FRAME_HEADER_SIZE);
    return g_bytes_new_take(buf, TVD_FRAME_HEADER_SIZE +
                            TVD_DEVICE_HELLO_SIZE);
}

/* ---- Header ----------------------------------------------------------------- */

static void test_header_golden(void)
{
    struct tvd_frame_header h = {
        .magic = TVD_FRAME_MAGIC, .version = TVD_FRAME_VERSION,
        .type = TVD_FRAME_SET_STATE, .flags = 0, .length = 8,
        .seq = VEC_SET_STATE_SEQ,
    };
    struct tvd_frame_header d;
    g_autoptr(GError) error = NULL;
    guint8 out[TVD_FRAME_HEADER_SIZE];

    tvd_frame_header_encode(&h, out);
    g_assert_cmpmem(out, sizeof(out), vec_frame_set_state,
                    TVD_FRAME_HEADER_SIZE);
    g_assert_true(tvd_frame_header_decode(vec_frame_set_state,
                                          sizeof(vec_frame_set_state),
                                          TVD_FRAME_MAX_PAYLOAD, &d, &error));
    g_assert_no_error(error);
    g_assert_cmphex(d.magic, ==, TVD_FRAME_MAGIC);
    g_assert_cmpuint(d.version, ==, 1);
    g_assert_cmpuint(d.type, ==, TVD_FRAME_SET_STATE);
    g_assert_cmpuint(d.flags, ==, 0);
    g_assert_cmpuint(d.length, ==, 8);
    g_assert_cmpuint(d.seq, ==, 7);

    /* The seq of the set-link vector exercises all four bytes. */
    g_assert_true(tvd_frame_header_decode(vec_frame_set_link,
                                          sizeof(vec_frame_set_link), 8, &d,
                                          &error));
    g_assert_cmphex(d.seq, ==, VEC_SET_LINK_SEQ);
}

static void header_fails(const guint8 *buf, size_t size, uint32_t cap,
                         gint code, const char *needle)
{
    g_autoptr(GError) error = NULL;
    struct tvd_frame_header d;

    g_assert_false(tvd_frame_header_decode(buf, size, cap, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, code);
    g_assert_nonnull(strstr(error->message, needle));
}

static void test_header_reject(void)
{
    guint8 b[TVD_FRAME_HEADER_SIZE];
    g_autoptr(GError) error = NULL;
    struct tvd_frame_header d;

    header_fails(vec_frame_set_state, 15, 64, TVD_FRAME_ERROR_TRUNCATED,
                 "15 bytes");
    header_fails(vec_frame_set_state, 0, 64, TVD_FRAME_ERROR_TRUNCATED,
                 "0 bytes");

    memcpy(b, vec_frame_set_state, sizeof(b));
    b[3] = 0x47;                                /* "TVDG" */
    header_fails(b, sizeof(b), 64, TVD_FRAME_ERROR_BAD_MAGIC, "0x47445654");

    memcpy(b, vec_frame_set_state, sizeof(b));
    b[4] = 2;
    header_fails(b, sizeof(b), 64, TVD_FRAME_ERROR_BAD_VERSION, "version 2");

    memcpy(b, vec_frame_set_state, sizeof(b));
    b[7] = 0x80;
    header_fails(b, sizeof(b), 64, TVD_FRAME_ERROR_BAD_FLAGS, "0x8000");

    /* Length above the caller's cap, and above the absolute maximum. */
    header_fails(vec_frame_set_state, 16, 7, TVD_FRAME_ERROR_TOO_LONG,
                 "length 8 above the cap of 7");
    memcpy(b, vec_frame_set_state, sizeof(b));
    tvd_put_le32(b + 8, TVD_FRAME_MAX_PAYLOAD + 1);
    header_fails(b, sizeof(b), G_MAXUINT32, TVD_FRAME_ERROR_TOO_LONG,
                 "above the cap of 8388592");
    tvd_put_le32(b + 8, TVD_FRAME_MAX_PAYLOAD);
    g_assert_true(tvd_frame_header_decode(b, sizeof(b), G_MAXUINT32, &d,
                                          &error));
    g_assert_no_error(error);

    /* Unknown type: an error, but the header is handed out for skipping. */
    memcpy(b, vec_frame_set_state, sizeof(b));
    b[5] = 0x7f;
    memset(&d, 0, sizeof(d));
    g_assert_false(tvd_frame_header_decode(b, sizeof(b), 64, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_UNKNOWN_TYPE);
    g_assert_cmpuint(d.type, ==, 0x7f);
    g_assert_cmpuint(d.length, ==, 8);
}

static void test_frame_encode(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) f = NULL;
    g_autoptr(GBytes) f2 = NULL;
    g_autoptr(GBytes) payload = NULL;
    g_autoptr(GBytes) empty = NULL;
    struct tvd_frame_header h;

    f = tvd_frame_encode(TVD_FRAME_SET_STATE, VEC_SET_STATE_SEQ,
                         vec_frame_set_state + TVD_FRAME_HEADER_SIZE, 8,
                         &error);
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(f, NULL), g_bytes_get_size(f),
                    vec_frame_set_state, sizeof(vec_frame_set_state));

    g_assert_true(tvd_frame_decode(vec_frame_set_state,
                                   sizeof(vec_frame_set_state), 64, &h,
                                   &payload, &error));
    g_assert_cmpuint(h.seq, ==, VEC_SET_STATE_SEQ);
    g_assert_cmpmem(g_bytes_get_data(payload, NULL),
                    g_bytes_get_size(payload),
                    vec_frame_set_state + TVD_FRAME_HEADER_SIZE, 8);

    /* Empty payload, GBytes variant. */
    f2 = tvd_frame_encode_bytes(TVD_FRAME_AGENT, 9, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(f2), ==, TVD_FRAME_HEADER_SIZE);
    g_assert_true(tvd_frame_decode(g_bytes_get_data(f2, NULL), 16, 0, &h,
                                   &empty, &error));
    g_assert_cmpuint(g_bytes_get_size(empty), ==, 0);

    /* Whole-frame length must match exactly. */
    g_assert_false(tvd_frame_decode(vec_frame_set_state, 23, 64, &h,
                                    &payload, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TRUNCATED);
    g_clear_error(&error);
    {
        guint8 longer[sizeof(vec_frame_set_state) + 1] = { 0 };

        memcpy(longer, vec_frame_set_state, sizeof(vec_frame_set_state));
        g_assert_false(tvd_frame_decode(longer, sizeof(longer), 64, &h,
                                        &payload, &error));
        g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_SIZE);
        g_clear_error(&error);
    }

    /* Encoders refuse what no receiver would take. */
    g_assert_null(tvd_frame_encode(0x7f, 1, NULL, 0, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_UNKNOWN_TYPE);
    g_clear_error(&error);
    g_assert_null(tvd_frame_encode(TVD_FRAME_AGENT, 1, vec_frame_set_state,
                                   (size_t)TVD_FRAME_MAX_PAYLOAD + 1,
                                   &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TOO_LONG);

    g_assert_cmpstr(tvd_frame_type_name(TVD_FRAME_AGENT), ==, "AGENT");
    g_assert_cmpstr(tvd_frame_type_name(0x99), ==, "unknown");
}

/* ---- Stream reassembler ---------------------------------------------------------- */

/* hello + event + set_state + agent(response message) as one stream. */
static GByteArray *golden_stream(void)
{
    GByteArray *s = g_byte_array_new();
    g_autoptr(GBytes) hello = hello_frame();
    g_autoptr(GBytes) agent =
        tvd_frame_encode(TVD_FRAME_AGENT, 3, vec_msg_credential_response,
                         sizeof(vec_msg_credential_response), NULL);

    g_byte_array_append(s, g_bytes_get_data(hello, NULL),
                        g_bytes_get_size(hello));
    g_byte_array_append(s, vec_frame_device_event,
                        sizeof(vec_frame_device_event));
    g_byte_array_append(s, vec_frame_set_state, sizeof(vec_frame_set_state));
    g_byte_array_append(s, g_bytes_get_data(agent, NULL),
                        g_bytes_get_size(agent));
    return s;
}

static void check_stream_frames(TvdFrameReader *r)
{
    static const guint8 types[] = { TVD_FRAME_DEVICE_HELLO,
                                    TVD_FRAME_DEVICE_EVENT,
                                    TVD_FRAME_SET_STATE, TVD_FRAME_AGENT };
    static const guint32 seqs[] = { 1, 2, 7, 3 };
    static const guint32 lens[] = { 696, 16, 8,
                                    sizeof(vec_msg_credential_response) };
    guint i;

    for (i = 0; i < G_N_ELEMENTS(types); i++) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GBytes) payload = NULL;
        struct tvd_frame_header h;

        g_assert_cmpint(tvd_frame_reader_next(r, &h, &payload, &error), ==,
                        TVD_FRAME_READER_FRAME);
        g_assert_no_error(error);
        g_assert_cmpuint(h.type, ==, types[i]);
        g_assert_cmpuint(h.seq, ==, seqs[i]);
        g_assert_cmpuint(h.length, ==, lens[i]);
        g_assert_cmpuint(g_bytes_get_size(payload), ==, lens[i]);
    }
}

static void test_reader_whole(void)
{
    g_autoptr(TvdFrameReader) r = tvd_frame_reader_new(TVD_FRAME_MAX_PAYLOAD);
    g_autoptr(GByteArray) s = golden_stream();
    struct tvd_frame_header h;
    GBytes *p = NULL;

    tvd_frame_reader_feed(r, s->data, s->len);
    check_stream_frames(r);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, NULL), ==,
                    TVD_FRAME_READER_NEED_MORE);
    g_assert_cmpuint(tvd_frame_reader_buffered(r), ==, 0);
}

/* Byte by byte, and in every split of 7 bytes: same frames. */
static void test_reader_pieces(void)
{
    g_autoptr(GByteArray) s = golden_stream();
    gsize step;

    for (step = 1; step <= 7; step += 6) {
        g_autoptr(TvdFrameReader) r = tvd_frame_reader_new(1024);
        GPtrArray *frames = g_ptr_array_new_with_free_func(
            (GDestroyNotify)g_bytes_unref);
        gsize off;

        for (off = 0; off < s->len; off += step) {
            struct tvd_frame_header h;
            GBytes *p;

            tvd_frame_reader_feed(r, s->data + off, MIN(step, s->len - off));
            while (tvd_frame_reader_next(r, &h, &p, NULL) ==
                   TVD_FRAME_READER_FRAME) {
                g_ptr_array_add(frames, p);
            }
            /* Never more than one partial frame buffered. */
            g_assert_cmpuint(tvd_frame_reader_buffered(r), <,
                             TVD_FRAME_HEADER_SIZE + 696);
        }
        g_assert_cmpuint(frames->len, ==, 4);
        g_assert_cmpuint(g_bytes_get_size(g_ptr_array_index(frames, 0)), ==,
                         696);
        g_ptr_array_unref(frames);
    }
}

static void test_reader_unknown_type(void)
{
    g_autoptr(TvdFrameReader) r = tvd_frame_reader_new(64);
    guint8 f[sizeof(vec_frame_set_state)];
    g_autoptr(GBytes) p1 = NULL;
    g_autoptr(GBytes) p2 = NULL;
    struct tvd_frame_header h;

    memcpy(f, vec_frame_set_state, sizeof(f));
    f[5] = 0x55;
    tvd_frame_reader_feed(r, f, sizeof(f));
    tvd_frame_reader_feed(r, vec_frame_set_link, sizeof(vec_frame_set_link));
    /* The unknown frame comes out whole (in sync), then the next one. */
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p1, NULL), ==,
                    TVD_FRAME_READER_FRAME);
    g_assert_cmpuint(h.type, ==, 0x55);
    g_assert_false(tvd_frame_type_is_known(h.type));
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p2, NULL), ==,
                    TVD_FRAME_READER_FRAME);
    g_assert_cmpuint(h.type, ==, TVD_FRAME_SET_LINK);
}

static void test_reader_out_of_sync(void)
{
    g_autoptr(TvdFrameReader) r = tvd_frame_reader_new(64);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) p = NULL;
    guint8 big[TVD_FRAME_HEADER_SIZE];
    struct tvd_frame_header h;

    /* A good frame, then garbage: the good one comes out first. */
    tvd_frame_reader_feed(r, vec_frame_set_link, sizeof(vec_frame_set_link));
    tvd_frame_reader_feed(r, "garbage-garbage-garbage", 23);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_FRAME);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_ERROR);
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_OUT_OF_SYNC);
    g_assert_nonnull(strstr(error->message, "magic"));
    g_clear_error(&error);
    /* Stays broken, discards input, until reset. */
    tvd_frame_reader_feed(r, vec_frame_set_link, sizeof(vec_frame_set_link));
    g_assert_cmpuint(tvd_frame_reader_buffered(r), ==, 0);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_ERROR);
    g_clear_error(&error);
    tvd_frame_reader_reset(r);
    tvd_frame_reader_feed(r, vec_frame_set_link, sizeof(vec_frame_set_link));
    g_clear_pointer(&p, g_bytes_unref);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_FRAME);
    g_assert_no_error(error);

    /* An oversize length is caught from the header alone. */
    memcpy(big, vec_frame_set_link, sizeof(big));
    tvd_put_le32(big + 8, 65);
    tvd_frame_reader_feed(r, big, sizeof(big));
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_ERROR);
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_OUT_OF_SYNC);
    g_assert_nonnull(strstr(error->message, "above the cap of 64"));
    g_clear_error(&error);

    /* A half header is just "need more". */
    tvd_frame_reader_reset(r);
    tvd_frame_reader_feed(r, vec_frame_set_link, 15);
    g_assert_cmpint(tvd_frame_reader_next(r, &h, &p, &error), ==,
                    TVD_FRAME_READER_NEED_MORE);
    g_assert_cmpuint(tvd_frame_reader_buffered(r), ==, 15);
}

/* ---- Control frames -------------------------------------------------------------- */

static void test_hello_golden(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) frame = hello_frame();
    g_autoptr(GBytes) encoded = NULL;
    const guint8 *expected = g_bytes_get_data(frame, NULL);
    struct tvd_device_hello h, d;
    guint8 out[TVD_DEVICE_HELLO_SIZE];

    vec_device_hello(&h);
    g_assert_true(tvd_device_hello_encode(&h, out, &error));
    g_assert_no_error(error);
    g_assert_cmpmem(out, sizeof(out), expected + TVD_FRAME_HEADER_SIZE,
                    TVD_DEVICE_HELLO_SIZE);
    encoded = tvd_frame_encode(TVD_FRAME_DEVICE_HELLO, VEC_DEVICE_HELLO_SEQ,
                               out, sizeof(out), &error);
    g_assert_true(g_bytes_equal(encoded, frame));

    g_assert_true(tvd_device_hello_decode(expected + TVD_FRAME_HEADER_SIZE,
                                          TVD_DEVICE_HELLO_SIZE, &d, &error));
    g_assert_no_error(error);
    assert_hello_equal(&d, &h);
}

static void hello_fails(const guint8 *p, size_t size, gint code,
                        const char *needle)
{
    g_autoptr(GError) error = NULL;
    struct tvd_device_hello d;

    g_assert_false(tvd_device_hello_decode(p, size, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, code);
    g_assert_nonnull(strstr(error->message, needle));
}

static void test_hello_reject(void)
{
    guint8 good[TVD_DEVICE_HELLO_SIZE + 1], b[TVD_DEVICE_HELLO_SIZE + 1];
    g_autoptr(GError) error = NULL;
    struct tvd_device_hello h;
    guint8 out[TVD_DEVICE_HELLO_SIZE];

    vec_device_hello_payload(good);
    good[TVD_DEVICE_HELLO_SIZE] = 0;

    hello_fails(good, TVD_DEVICE_HELLO_SIZE - 1, TVD_FRAME_ERROR_TRUNCATED,
                "695 bytes, expected 696");
    hello_fails(good, TVD_DEVICE_HELLO_SIZE + 1, TVD_FRAME_ERROR_BAD_SIZE,
                "697 bytes");
    hello_fails(good, 0, TVD_FRAME_ERROR_TRUNCATED, "0 bytes");

#define MUTATE(off, val) (memcpy(b, good, sizeof(b)), b[off] = (val), b)
    hello_fails(MUTATE(0, 2), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VERSION, "abi_version: 2");
    hello_fails(MUTATE(8, 1), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "mailbox_size: 65537");
    hello_fails(MUTATE(10, 0), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "mailbox_size: 0");
    hello_fails(MUTATE(11, 2), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "mailbox_size");
    hello_fails(MUTATE(12, 0), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "state: 0");
    hello_fails(MUTATE(12, 5), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "state: 5");
    hello_fails(MUTATE(24, 2), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_VALUE, "fail_mode: 2");
    /* vm_id: a control character, then a byte above ASCII. */
    hello_fails(MUTATE(33, '\n'), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_STRING, "vm_id: byte 0x0a at 1");
    hello_fails(MUTATE(96, 0xc3), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_STRING, "name: byte 0xc3 at 0");
    /* domain: garbage after the terminating NUL. */
    hello_fails(MUTATE(160 + 10, 'x'), TVD_DEVICE_HELLO_SIZE,
                TVD_FRAME_ERROR_BAD_STRING, "domain: padding byte at 10");
    /* tpm_path filling all 256 bytes: no NUL inside the field. */
    memcpy(b, good, sizeof(b));
    memset(b + 416, 'p', 256);
    hello_fails(b, TVD_DEVICE_HELLO_SIZE, TVD_FRAME_ERROR_BAD_STRING,
                "tpm_path: not NUL-terminated within its 256 bytes");
    /* tpm_type: 63 characters and the NUL is the longest allowed. */
    memcpy(b, good, sizeof(b));
    memset(b + 352, 't', 63);
    g_assert_true(tvd_device_hello_decode(b, TVD_DEVICE_HELLO_SIZE, &h,
                                          &error));
    g_assert_no_error(error);
    /* Reason and epoch take any value; status and features too. */
    memcpy(b, good, sizeof(b));
    memset(b + 16, 0xff, 8);
    memset(b + 28, 0xff, 4);
    memset(b + 4, 0xff, 4);
    g_assert_true(tvd_device_hello_decode(b, TVD_DEVICE_HELLO_SIZE, &h,
                                          &error));
    g_assert_no_error(error);
#undef MUTATE

    /* The encoder checks the same. */
    vec_device_hello(&h);
    memset(h.vm_id, 'v', sizeof(h.vm_id));
    g_assert_false(tvd_device_hello_encode(&h, out, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING);
    g_clear_error(&error);
    vec_device_hello(&h);
    h.mailbox_size = 3000;
    g_assert_false(tvd_device_hello_encode(&h, out, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_clear_error(&error);
}

static void test_set_string(void)
{
    g_autoptr(GError) error = NULL;
    char field[8];

    memset(field, 'z', sizeof(field));
    g_assert_true(tvd_frame_set_string(field, sizeof(field), "abc", &error));
    g_assert_cmpmem(field, sizeof(field), "abc\0\0\0\0\0", 8);
    g_assert_true(tvd_frame_set_string(field, sizeof(field), NULL, &error));
    g_assert_cmpmem(field, sizeof(field), "\0\0\0\0\0\0\0\0", 8);
    g_assert_true(tvd_frame_set_string(field, sizeof(field), "1234567",
                                       &error));
    g_assert_false(tvd_frame_set_string(field, sizeof(field), "12345678",
                                        &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING);
    g_clear_error(&error);
    g_assert_false(tvd_frame_set_string(field, sizeof(field), "a\tb",
                                        &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING);
}

static void test_event_golden(void)
{
    g_autoptr(GError) error = NULL;
    struct tvd_device_event d;
    guint8 out[TVD_DEVICE_EVENT_SIZE];
    const guint8 *p = vec_frame_device_event + TVD_FRAME_HEADER_SIZE;
    g_autoptr(GBytes) f = NULL;

    g_assert_true(tvd_device_event_encode(&vec_device_event, out, &error));
    g_assert_cmpmem(out, sizeof(out), p, TVD_DEVICE_EVENT_SIZE);
    f = tvd_frame_encode(TVD_FRAME_DEVICE_EVENT, VEC_DEVICE_EVENT_SEQ, out,
                         sizeof(out), &error);
    g_assert_cmpmem(g_bytes_get_data(f, NULL), g_bytes_get_size(f),
                    vec_frame_device_event, sizeof(vec_frame_device_event));

    g_assert_true(tvd_device_event_decode(p, TVD_DEVICE_EVENT_SIZE, &d,
                                          &error));
    g_assert_no_error(error);
    g_assert_cmpuint(d.event, ==, TVD_EVENT_STATE_APPLIED);
    g_assert_cmpuint(d.arg0, ==, 2);
    g_assert_cmpuint(d.arg1, ==, 5);
    g_assert_cmphex(d.status, ==, 0x0b);
}

static void test_event_reject(void)
{
    g_autoptr(GError) error = NULL;
    struct tvd_device_event d, e = vec_device_event;
    guint8 b[TVD_DEVICE_EVENT_SIZE + 1] = { 0 };
    guint8 out[TVD_DEVICE_EVENT_SIZE];

    memcpy(b, vec_frame_device_event + TVD_FRAME_HEADER_SIZE,
           TVD_DEVICE_EVENT_SIZE);
    g_assert_false(tvd_device_event_decode(b, 15, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TRUNCATED);
    g_clear_error(&error);
    g_assert_false(tvd_device_event_decode(b, 17, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_SIZE);
    g_clear_error(&error);
    b[0] = 0;
    g_assert_false(tvd_device_event_decode(b, 16, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_assert_nonnull(strstr(error->message, "event.event: unknown event 0"));
    g_clear_error(&error);
    b[0] = 6;
    g_assert_false(tvd_device_event_decode(b, 16, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_clear_error(&error);
    e.event = 0;
    g_assert_false(tvd_device_event_encode(&e, out, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
}

static void test_set_state_golden(void)
{
    g_autoptr(GError) error = NULL;
    struct tvd_set_state d, bad = { .state = 0 };
    guint8 out[TVD_SET_STATE_SIZE];
    const guint8 *p = vec_frame_set_state + TVD_FRAME_HEADER_SIZE;
    guint8 b[TVD_SET_STATE_SIZE];

    g_assert_true(tvd_set_state_encode(&vec_set_state, out, &error));
    g_assert_cmpmem(out, sizeof(out), p, TVD_SET_STATE_SIZE);
    g_assert_true(tvd_set_state_decode(p, TVD_SET_STATE_SIZE, &d, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(d.state, ==, vec_set_state.state);
    g_assert_cmpuint(d.reason, ==, vec_set_state.reason);

    g_assert_false(tvd_set_state_decode(p, 7, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TRUNCATED);
    g_clear_error(&error);
    memcpy(b, p, sizeof(b));
    b[0] = 5;
    g_assert_false(tvd_set_state_decode(b, sizeof(b), &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_assert_nonnull(strstr(error->message, "set state.state: 5"));
    g_clear_error(&error);
    g_assert_false(tvd_set_state_encode(&bad, out, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
}

static void test_set_link_golden(void)
{
    g_autoptr(GError) error = NULL;
    struct tvd_set_link d, bad = { .enable = 1, .reserved = 4 };
    guint8 out[TVD_SET_LINK_SIZE];
    const guint8 *p = vec_frame_set_link + TVD_FRAME_HEADER_SIZE;
    guint8 b[TVD_SET_LINK_SIZE];

    g_assert_true(tvd_set_link_encode(&vec_set_link, out, &error));
    g_assert_cmpmem(out, sizeof(out), p, TVD_SET_LINK_SIZE);
    g_assert_true(tvd_set_link_decode(p, TVD_SET_LINK_SIZE, &d, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(d.enable, ==, 0);
    g_assert_cmpuint(d.reserved, ==, 0);

    memcpy(b, p, sizeof(b));
    b[0] = 2;
    g_assert_false(tvd_set_link_decode(b, sizeof(b), &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_assert_nonnull(strstr(error->message, "set link.enable: 2"));
    g_clear_error(&error);
    memcpy(b, p, sizeof(b));
    b[7] = 1;
    g_assert_false(tvd_set_link_decode(b, sizeof(b), &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
    g_assert_nonnull(strstr(error->message, "reserved"));
    g_clear_error(&error);
    g_assert_false(tvd_set_link_decode(b, 9, &d, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_SIZE);
    g_clear_error(&error);
    g_assert_false(tvd_set_link_encode(&bad, out, &error));
    g_assert_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/frame/header/golden", test_header_golden);
    g_test_add_func("/frame/header/reject", test_header_reject);
    g_test_add_func("/frame/whole", test_frame_encode);
    g_test_add_func("/frame/reader/whole", test_reader_whole);
    g_test_add_func("/frame/reader/pieces", test_reader_pieces);
    g_test_add_func("/frame/reader/unknown-type", test_reader_unknown_type);
    g_test_add_func("/frame/reader/out-of-sync", test_reader_out_of_sync);
    g_test_add_func("/frame/hello/golden", test_hello_golden);
    g_test_add_func("/frame/hello/reject", test_hello_reject);
    g_test_add_func("/frame/hello/set-string", test_set_string);
    g_test_add_func("/frame/event/golden", test_event_golden);
    g_test_add_func("/frame/event/reject", test_event_reject);
    g_test_add_func("/frame/set-state", test_set_state_golden);
    g_test_add_func("/frame/set-link", test_set_link_golden);
    return g_test_run();
}
