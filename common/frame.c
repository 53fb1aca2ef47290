/*
 * tvd frame codec. See frame.h and docs/protocol.md.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-frame"

#include "frame.h"

#include <string.h>

G_DEFINE_QUARK(tvd-frame-error-quark, tvd_frame_error)

/* Compile-time proof that the wire sizes are the ABI's struct sizes. */
G_STATIC_ASSERT(sizeof(struct tvd_frame_header) == TVD_FRAME_HEADER_SIZE);
G_STATIC_ASSERT(sizeof(struct tvd_device_hello) == TVD_DEVICE_HELLO_SIZE);
G_STATIC_ASSERT(sizeof(struct tvd_device_event) == TVD_DEVICE_EVENT_SIZE);
G_STATIC_ASSERT(sizeof(struct tvd_set_state) == TVD_SET_STATE_SIZE);
G_STATIC_ASSERT(sizeof(struct tvd_set_link) == TVD_SET_LINK_SIZE);

/* ---- Header ------------------------------------------------------------- */

gboolean tvd_frame_type_is_known(uint32_t type)
{
    switch (type) {
    case TVD_FRAME_DEVICE_HELLO:
    case TVD_FRAME_DEVICE_EVENT:
    case TVD_FRAME_SET_STATE:
    case TVD_FRAME_SET_LINK:
    case TVD_FRAME_AGENT:
        return TRUE;
    default:
        return FALSE;
    }
}

const char *tvd_frame_type_name(uint32_t type)
{
    switch (type) {
    case TVD_FRAME_DEVICE_HELLO:
        return "DEVICE_HELLO";
    case TVD_FRAME_DEVICE_EVENT:
        return "DEVICE_EVENT";
    case TVD_FRAME_SET_STATE:
        return "SET_STATE";
    case TVD_FRAME_SET_LINK:
        return "SET_LINK";
    case TVD_FRAME_AGENT:
        return "AGENT";
    default:
        return "unknown";
    }
}

void tvd_frame_header_encode(const struct tvd_frame_header *hdr,
                             uint8_t out[TVD_FRAME_HEADER_SIZE])
{
    tvd_put_le32(out + 0, hdr->magic);
    out[4] = hdr->version;
    out[5] = hdr->type;
    tvd_put_le16(out + 6, hdr->flags);
    tvd_put_le32(out + 8, hdr->length);
    tvd_put_le32(out + 12, hdr->seq);
}

gboolean tvd_frame_header_decode(const void *buf, size_t size,
                                 uint32_t max_payload,
                                 struct tvd_frame_header *hdr,
                                 GError **error)
{
    const uint8_t *p = buf;
    struct tvd_frame_header h;

    if (max_payload > TVD_FRAME_MAX_PAYLOAD) {
        max_payload = TVD_FRAME_MAX_PAYLOAD;
    }
    if (size < TVD_FRAME_HEADER_SIZE) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TRUNCATED,
                    "frame header: %zu bytes, need %u", size,
                    TVD_FRAME_HEADER_SIZE);
        return FALSE;
    }
    h.magic = tvd_get_le32(p + 0);
    h.version = p[4];
    h.type = p[5];
    h.flags = tvd_get_le16(p + 6);
    h.length = tvd_get_le32(p + 8);
    h.seq = tvd_get_le32(p + 12);

    if (h.magic != TVD_FRAME_MAGIC) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_MAGIC,
                    "frame header: magic 0x%08" G_GINT32_MODIFIER "x, "
                    "expected 0x%08x", h.magic, TVD_FRAME_MAGIC);
        return FALSE;
    }
    if (h.version != TVD_FRAME_VERSION) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VERSION,
                    "frame header: version %u, expected %u", h.version,
                    TVD_FRAME_VERSION);
        return FALSE;
    }
    if (h.flags != 0) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_FLAGS,
                    "frame header: flags 0x%04x, reserved bits must be 0",
                    h.flags);
        return FALSE;
    }
    if (h.length > max_payload) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TOO_LONG,
                    "frame header: length %" G_GUINT32_FORMAT
                    " above the cap of %" G_GUINT32_FORMAT,
                    h.length, max_payload);
        return FALSE;
    }
    /* From here on the header is well-formed: hand it out even if the
     * type is unknown, so a stream reader can skip the frame. */
    *hdr = h;
    if (!tvd_frame_type_is_known(h.type)) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_UNKNOWN_TYPE,
                    "frame header: unknown type 0x%02x", h.type);
        return FALSE;
    }
    return TRUE;
}

GBytes *tvd_frame_encode(uint8_t type, uint32_t seq, const void *payload,
                         size_t len, GError **error)
{
    struct tvd_frame_header hdr = {
        .magic = TVD_FRAME_MAGIC,
        .version = TVD_FRAME_VERSION,
        .type = type,
        .flags = 0,
        .seq = seq,
    };
    uint8_t *buf;

    if (len > TVD_FRAME_MAX_PAYLOAD) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TOO_LONG,
                    "frame payload: %zu bytes above the cap of %u", len,
                    TVD_FRAME_MAX_PAYLOAD);
        return NULL;
    }
    if (!tvd_frame_type_is_known(type)) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_UNKNOWN_TYPE,
                    "frame: unknown type 0x%02x", type);
        return NULL;
    }
    hdr.length = (uint32_t)len;
    buf = g_malloc(TVD_FRAME_HEADER_SIZE + len);
    tvd_frame_header_encode(&hdr, buf);
    if (len) {
        memcpy(buf + TVD_FRAME_HEADER_SIZE, payload, len);
    }
    return g_bytes_new_take(buf, TVD_FRAME_HEADER_SIZE + len);
}

GBytes *tvd_frame_encode_bytes(uint8_t type, uint32_t seq, GBytes *payload,
                               GError **error)
{
    const void *data = NULL;
    size_t len = 0;

    if (payload) {
        data = g_bytes_get_data(payload, &len);
    }
    return tvd_frame_encode(type, seq, data, len, error);
}

gboolean tvd_frame_decode(const void *buf, size_t size, uint32_t max_payload,
                          struct tvd_frame_header *hdr, GBytes **payload,
                          GError **error)
{
    struct tvd_frame_header h;

    if (!tvd_frame_header_decode(buf, size, max_payload, &h, error)) {
        return FALSE;
    }
    if (size - TVD_FRAME_HEADER_SIZE != h.length) {
        g_set_error(error, TVD_FRAME_ERROR,
                    size - TVD_FRAME_HEADER_SIZE < h.length ?
                    TVD_FRAME_ERROR_TRUNCATED : TVD_FRAME_ERROR_BAD_SIZE,
                    "frame: header length %" G_GUINT32_FORMAT " but %zu "
                    "payload bytes", h.length, size - TVD_FRAME_HEADER_SIZE);
        return FALSE;
    }
    *hdr = h;
    *payload = g_bytes_new((const uint8_t *)buf + TVD_FRAME_HEADER_SIZE,
                           h.length);
    return TRUE;
}

/* ---- Stream reassembler --------------------------------------------------- */

struct TvdFrameReader {
    GByteArray *buf;
    size_t off;             /* bytes of buf already consumed */
    uint32_t max_payload;
    gboolean broken;        /* out of sync until reset */
    char *broken_why;
};

TvdFrameReader *tvd_frame_reader_new(uint32_t max_payload)
{
    TvdFrameReader *r = g_new0(TvdFrameReader, 1);

    r->buf = g_byte_array_new();
    r->max_payload = MIN(max_payload, TVD_FRAME_MAX_PAYLOAD);
    return r;
}

void tvd_frame_reader_free(TvdFrameReader *reader)
{
    if (!reader) {
        return;
    }
    g_byte_array_unref(reader->buf);
    g_free(reader->broken_why);
    g_free(reader);
}

void tvd_frame_reader_reset(TvdFrameReader *reader)
{
    g_byte_array_set_size(reader->buf, 0);
    reader->off = 0;
    reader->broken = FALSE;
    g_clear_pointer(&reader->broken_why, g_free);
}

size_t tvd_frame_reader_buffered(const TvdFrameReader *reader)
{
    return reader->buf->len - reader->off;
}

void tvd_frame_reader_feed(TvdFrameReader *reader, const void *data,
                           size_t len)
{
    if (reader->broken || len == 0) {
        return;
    }
    /* Drop what was consumed before growing, so the buffer stays small. */
    if (reader->off > 0) {
        g_byte_array_remove_range(reader->buf, 0, (guint)reader->off);
        reader->off = 0;
    }
    /* GByteArray lengths are guint: feed huge inputs in pieces. */
    while (len > 0) {
        guint n = (guint)MIN(len, (size_t)G_MAXINT / 2);

        g_byte_array_append(reader->buf, data, n);
        data = (const uint8_t *)data + n;
        len -= n;
    }
}

TvdFrameReaderStatus tvd_frame_reader_next(TvdFrameReader *reader,
                                           struct tvd_frame_header *hdr,
                                           GBytes **payload,
                                           GError **error)
{
    g_autoptr(GError) local = NULL;
    struct tvd_frame_header h;
    size_t avail = reader->buf->len - reader->off;
    const uint8_t *p = reader->buf->data + reader->off;

    if (reader->broken) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_OUT_OF_SYNC,
                    "stream out of sync: %s", reader->broken_why);
        return TVD_FRAME_READER_ERROR;
    }
    if (avail < TVD_FRAME_HEADER_SIZE) {
        return TVD_FRAME_READER_NEED_MORE;
    }
    if (!tvd_frame_header_decode(p, avail, reader->max_payload, &h, &local) &&
        !g_error_matches(local, TVD_FRAME_ERROR,
                         TVD_FRAME_ERROR_UNKNOWN_TYPE)) {
        reader->broken = TRUE;
        reader->broken_why = g_strdup(local->message);
        g_byte_array_set_size(reader->buf, 0);
        reader->off = 0;
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_OUT_OF_SYNC,
                    "stream out of sync: %s", local->message);
        return TVD_FRAME_READER_ERROR;
    }
    if (avail - TVD_FRAME_HEADER_SIZE < h.length) {
        return TVD_FRAME_READER_NEED_MORE;
    }
    *hdr = h;
    *payload = g_bytes_new(p + TVD_FRAME_HEADER_SIZE, h.length);
    reader->off += TVD_FRAME_HEADER_SIZE + (size_t)h.length;
    if (reader->off == reader->buf->len) {
        g_byte_array_set_size(reader->buf, 0);
        reader->off = 0;
    }
    return TVD_FRAME_READER_FRAME;
}

/* ---- Control frames ------------------------------------------------------- */

static gboolean check_payload_size(const char *what, size_t size,
                                   size_t expected, GError **error)
{
    if (size != expected) {
        g_set_error(error, TVD_FRAME_ERROR,
                    size < expected ? TVD_FRAME_ERROR_TRUNCATED :
                    TVD_FRAME_ERROR_BAD_SIZE,
                    "%s: payload of %zu bytes, expected %zu", what, size,
                    expected);
        return FALSE;
    }
    return TRUE;
}

/*
 * A NUL-padded string field of @n bytes at @off of a @size-byte buffer:
 * printable ASCII, then a NUL inside the field, then only NULs.
 */
static gboolean check_string(const char *what, const char *field,
                             const uint8_t *buf, size_t size, size_t off,
                             size_t n, GError **error)
{
    size_t i, len;

    if (size < off || size - off < n) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_TRUNCATED,
                    "%s.%s: field out of bounds", what, field);
        return FALSE;
    }
    for (len = 0; len < n && buf[off + len] != 0; len++) {
        if (buf[off + len] < 0x20 || buf[off + len] > 0x7e) {
            g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING,
                        "%s.%s: byte 0x%02x at %zu is not printable ASCII",
                        what, field, buf[off + len], len);
            return FALSE;
        }
    }
    if (len == n) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING,
                    "%s.%s: not NUL-terminated within its %zu bytes",
                    what, field, n);
        return FALSE;
    }
    for (i = len; i < n; i++) {
        if (buf[off + i] != 0) {
            g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING,
                        "%s.%s: padding byte at %zu is not NUL", what, field,
                        i);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean tvd_frame_set_string(char *field, size_t field_size, const char *src,
                              GError **error)
{
    size_t len = src ? strlen(src) : 0;

    if (len >= field_size) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_STRING,
                    "string of %zu bytes does not fit a %zu-byte field",
                    len, field_size);
        return FALSE;
    }
    memset(field, 0, field_size);
    if (len) {
        memcpy(field, src, len);
    }
    return check_string("string", "value", (const uint8_t *)field, field_size,
                        0, field_size, error);
}

/* The string fields of the hello, in wire order. */
static const struct {
    const char *name;
    size_t off;
    size_t len;
} hello_strings[] = {
#define HS(f) { #f, offsetof(struct tvd_device_hello, f), \
                sizeof(((struct tvd_device_hello *)0)->f) }
    HS(vm_id), HS(name), HS(domain), HS(netdev_id), HS(tpmdev_id),
    HS(tpm_type), HS(tpm_path),
#undef HS
};

/* The uint32 fields of the hello, in wire order, at offsets 0..28. */
#define HELLO_U32_COUNT 8

static void hello_u32s(const struct tvd_device_hello *h, uint32_t v[])
{
    v[0] = h->abi_version;
    v[1] = h->features;
    v[2] = h->mailbox_size;
    v[3] = h->state;
    v[4] = h->reason;
    v[5] = h->epoch;
    v[6] = h->fail_mode;
    v[7] = h->status;
}

/* Value checks shared by the hello encoder and decoder. */
static gboolean hello_check_values(const uint32_t v[HELLO_U32_COUNT],
                                   GError **error)
{
    uint32_t mbox = v[2];

    if (v[0] != TVD_ABI_VERSION) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VERSION,
                    "device hello.abi_version: %" G_GUINT32_FORMAT
                    ", expected %u", v[0], TVD_ABI_VERSION);
        return FALSE;
    }
    if (mbox < TVD_MBOX_SIZE_MIN || mbox > TVD_MBOX_SIZE_MAX ||
        (mbox & (mbox - 1)) != 0) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "device hello.mailbox_size: %" G_GUINT32_FORMAT
                    " is not a power of two in [%u, %u]", mbox,
                    TVD_MBOX_SIZE_MIN, TVD_MBOX_SIZE_MAX);
        return FALSE;
    }
    if (v[3] < TVD_STATE_PENDING || v[3] > TVD_STATE_MAX) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "device hello.state: %" G_GUINT32_FORMAT
                    " is not a membership state", v[3]);
        return FALSE;
    }
    if (v[6] != TVD_FAIL_CLOSED && v[6] != TVD_FAIL_OPEN) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "device hello.fail_mode: %" G_GUINT32_FORMAT
                    " is neither closed (0) nor open (1)", v[6]);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_device_hello_encode(const struct tvd_device_hello *hello,
                                 uint8_t out[TVD_DEVICE_HELLO_SIZE],
                                 GError **error)
{
    uint32_t v[HELLO_U32_COUNT];
    size_t i;

    hello_u32s(hello, v);
    if (!hello_check_values(v, error)) {
        return FALSE;
    }
    for (i = 0; i < HELLO_U32_COUNT; i++) {
        tvd_put_le32(out + 4 * i, v[i]);
    }
    tvd_put_le32(out + offsetof(struct tvd_device_hello, resets),
                 hello->resets);
    tvd_put_le32(out + offsetof(struct tvd_device_hello, flags), hello->flags);
    memcpy(out + offsetof(struct tvd_device_hello, instance), hello->instance,
           sizeof(hello->instance));
    for (i = 0; i < G_N_ELEMENTS(hello_strings); i++) {
        memcpy(out + hello_strings[i].off,
               (const uint8_t *)hello + hello_strings[i].off,
               hello_strings[i].len);
        if (!check_string("device hello", hello_strings[i].name, out,
                          TVD_DEVICE_HELLO_SIZE, hello_strings[i].off,
                          hello_strings[i].len, error)) {
            return FALSE;
        }
    }
    return TRUE;
}

gboolean tvd_device_hello_decode(const void *buf, size_t size,
                                 struct tvd_device_hello *hello,
                                 GError **error)
{
    const uint8_t *p = buf;
    struct tvd_device_hello h;
    uint32_t v[HELLO_U32_COUNT];
    size_t i;

    if (!check_payload_size("device hello", size, TVD_DEVICE_HELLO_SIZE,
                            error)) {
        return FALSE;
    }
    for (i = 0; i < HELLO_U32_COUNT; i++) {
        v[i] = tvd_get_le32(p + 4 * i);
    }
    if (!hello_check_values(v, error)) {
        return FALSE;
    }
    memset(&h, 0, sizeof(h));
    h.abi_version = v[0];
    h.features = v[1];
    h.mailbox_size = v[2];
    h.state = v[3];
    h.reason = v[4];
    h.epoch = v[5];
    h.fail_mode = v[6];
    h.status = v[7];
    /* No flag is rejected: a newer device may define more. */
    h.resets = tvd_get_le32(p + offsetof(struct tvd_device_hello, resets));
    h.flags = tvd_get_le32(p + offsetof(struct tvd_device_hello, flags));
    memcpy(h.instance, p + offsetof(struct tvd_device_hello, instance),
           sizeof(h.instance));
    for (i = 0; i < G_N_ELEMENTS(hello_strings); i++) {
        if (!check_string("device hello", hello_strings[i].name, p, size,
                          hello_strings[i].off, hello_strings[i].len,
                          error)) {
            return FALSE;
        }
        memcpy((uint8_t *)&h + hello_strings[i].off, p + hello_strings[i].off,
               hello_strings[i].len);
    }
    *hello = h;
    return TRUE;
}

/* status is the STATUS register as sent: no bit is rejected, so a newer
 * device may define more. */
static gboolean event_check(const struct tvd_device_event *ev, GError **error)
{
    if (ev->event < TVD_EVENT_RESET || ev->event > TVD_EVENT_GUEST_ERROR) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "device event.event: unknown event %" G_GUINT32_FORMAT,
                    ev->event);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_device_event_encode(const struct tvd_device_event *ev,
                                 uint8_t out[TVD_DEVICE_EVENT_SIZE],
                                 GError **error)
{
    if (!event_check(ev, error)) {
        return FALSE;
    }
    tvd_put_le32(out + 0, ev->event);
    tvd_put_le32(out + 4, ev->arg0);
    tvd_put_le32(out + 8, ev->arg1);
    tvd_put_le32(out + 12, ev->status);
    return TRUE;
}

gboolean tvd_device_event_decode(const void *buf, size_t size,
                                 struct tvd_device_event *ev,
                                 GError **error)
{
    const uint8_t *p = buf;
    struct tvd_device_event e;

    if (!check_payload_size("device event", size, TVD_DEVICE_EVENT_SIZE,
                            error)) {
        return FALSE;
    }
    e.event = tvd_get_le32(p + 0);
    e.arg0 = tvd_get_le32(p + 4);
    e.arg1 = tvd_get_le32(p + 8);
    e.status = tvd_get_le32(p + 12);
    if (!event_check(&e, error)) {
        return FALSE;
    }
    *ev = e;
    return TRUE;
}

static gboolean set_state_check(const struct tvd_set_state *st,
                                GError **error)
{
    if (st->state < TVD_STATE_PENDING || st->state > TVD_STATE_MAX) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "set state.state: %" G_GUINT32_FORMAT
                    " is not a membership state", st->state);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_set_state_encode(const struct tvd_set_state *st,
                              uint8_t out[TVD_SET_STATE_SIZE],
                              GError **error)
{
    if (!set_state_check(st, error)) {
        return FALSE;
    }
    tvd_put_le32(out + 0, st->state);
    tvd_put_le32(out + 4, st->reason);
    return TRUE;
}

gboolean tvd_set_state_decode(const void *buf, size_t size,
                              struct tvd_set_state *st, GError **error)
{
    const uint8_t *p = buf;
    struct tvd_set_state s;

    if (!check_payload_size("set state", size, TVD_SET_STATE_SIZE, error)) {
        return FALSE;
    }
    s.state = tvd_get_le32(p + 0);
    s.reason = tvd_get_le32(p + 4);
    if (!set_state_check(&s, error)) {
        return FALSE;
    }
    *st = s;
    return TRUE;
}

static gboolean set_link_check(const struct tvd_set_link *link,
                               GError **error)
{
    if (link->enable > 1) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "set link.enable: %" G_GUINT32_FORMAT ", must be 0 or 1",
                    link->enable);
        return FALSE;
    }
    if (link->reserved != 0) {
        g_set_error(error, TVD_FRAME_ERROR, TVD_FRAME_ERROR_BAD_VALUE,
                    "set link.reserved: 0x%08" G_GINT32_MODIFIER
                    "x, must be 0", link->reserved);
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_set_link_encode(const struct tvd_set_link *link,
                             uint8_t out[TVD_SET_LINK_SIZE],
                             GError **error)
{
    if (!set_link_check(link, error)) {
        return FALSE;
    }
    tvd_put_le32(out + 0, link->enable);
    tvd_put_le32(out + 4, link->reserved);
    return TRUE;
}

gboolean tvd_set_link_decode(const void *buf, size_t size,
                             struct tvd_set_link *link, GError **error)
{
    const uint8_t *p = buf;
    struct tvd_set_link l;

    if (!check_payload_size("set link", size, TVD_SET_LINK_SIZE, error)) {
        return FALSE;
    }
    l.enable = tvd_get_le32(p + 0);
    l.reserved = tvd_get_le32(p + 4);
    if (!set_link_check(&l, error)) {
        return FALSE;
    }
    *link = l;
    return TRUE;
}
