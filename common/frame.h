/*
 * tvd frame codec: the 16-byte frame header of include/hw/misc/tvd.h, an
 * incremental stream reassembler for the device<->supervisor chardev, and
 * the fixed-size control frames (device hello, device event, set state,
 * set link).
 *
 * Everything here is explicit little-endian byte by byte: no struct is ever
 * copied to or from the wire, so host byte order and padding do not matter.
 * Every decoder takes untrusted bytes and never aborts: it answers FALSE
 * with a GError in TVD_FRAME_ERROR that names the offending field.
 *
 * docs/protocol.md describes the wire format; docs/device.md the device.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_COMMON_FRAME_H
#define TVD_COMMON_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <glib.h>

#include "hw/misc/tvd.h"

G_BEGIN_DECLS

#define TVD_FRAME_ERROR (tvd_frame_error_quark())
GQuark tvd_frame_error_quark(void);

typedef enum {
    TVD_FRAME_ERROR_TRUNCATED,      /* fewer bytes than the field needs */
    TVD_FRAME_ERROR_BAD_MAGIC,      /* header magic is not TVD_FRAME_MAGIC */
    TVD_FRAME_ERROR_BAD_VERSION,    /* header or ABI version unsupported */
    TVD_FRAME_ERROR_BAD_FLAGS,      /* reserved header flags not zero */
    TVD_FRAME_ERROR_TOO_LONG,       /* length above the caller's cap */
    TVD_FRAME_ERROR_UNKNOWN_TYPE,   /* type not in enum tvd_frame_type */
    TVD_FRAME_ERROR_WRONG_TYPE,     /* known type, but not the one expected */
    TVD_FRAME_ERROR_BAD_SIZE,       /* control payload size is not exact */
    TVD_FRAME_ERROR_BAD_VALUE,      /* a field holds a value out of range */
    TVD_FRAME_ERROR_BAD_STRING,     /* NUL-padded string field invalid */
    TVD_FRAME_ERROR_OUT_OF_SYNC,    /* stream reader lost the frame boundary */
} TvdFrameError;

/* Wire sizes of the control payloads (the structs of tvd.h, packed). */
#define TVD_DEVICE_HELLO_SIZE   696u
#define TVD_DEVICE_EVENT_SIZE   16u
#define TVD_SET_STATE_SIZE      8u
#define TVD_SET_LINK_SIZE       8u

/* ---- Header ------------------------------------------------------------- */

/* TRUE for the types of enum tvd_frame_type. */
gboolean tvd_frame_type_is_known(uint32_t type);
/* Name of a frame type ("DEVICE_HELLO", ...), "unknown" otherwise. */
const char *tvd_frame_type_name(uint32_t type);

/* Writes @hdr (all fields as given) little-endian into @out. */
void tvd_frame_header_encode(const struct tvd_frame_header *hdr,
                             uint8_t out[TVD_FRAME_HEADER_SIZE]);

/*
 * Decodes and validates the header at the start of @buf: magic, version,
 * flags zero, length <= @max_payload (the caller's cap, at most
 * TVD_FRAME_MAX_PAYLOAD: larger caps are clamped), then type known.
 *
 * On TVD_FRAME_ERROR_UNKNOWN_TYPE, and only then, @hdr is filled in anyway:
 * the frame is well-formed and the stream in sync, so a reader may skip
 * hdr->length payload bytes. Any other error means the bytes are not a
 * frame header (on a stream: out of sync).
 */
gboolean tvd_frame_header_decode(const void *buf, size_t size,
                                 uint32_t max_payload,
                                 struct tvd_frame_header *hdr,
                                 GError **error);

/*
 * A complete frame (header + payload) of @type with sequence @seq.
 * @payload may be NULL when @len is 0. @len must be at most
 * TVD_FRAME_MAX_PAYLOAD (checked: NULL and an error otherwise).
 */
GBytes *tvd_frame_encode(uint8_t type, uint32_t seq, const void *payload,
                         size_t len, GError **error);
/* As tvd_frame_encode() with a GBytes payload (NULL = empty). */
GBytes *tvd_frame_encode_bytes(uint8_t type, uint32_t seq, GBytes *payload,
                               GError **error);

/*
 * Decodes one complete frame held entirely in @buf (a mailbox half: exactly
 * header + length bytes, nothing after it). @payload receives a copy.
 */
gboolean tvd_frame_decode(const void *buf, size_t size, uint32_t max_payload,
                          struct tvd_frame_header *hdr, GBytes **payload,
                          GError **error);

/* ---- Stream reassembler --------------------------------------------------- */

/*
 * Feeds chardev bytes in, takes complete frames out. Call
 * tvd_frame_reader_next() until it answers NEED_MORE after every feed: then
 * the reader never holds more than one partial frame plus the last feed.
 *
 * Headers are checked as soon as their 16 bytes are in, so a bad magic or an
 * oversize length is caught without waiting for the payload. Frames of an
 * unknown type are returned like any other (in sync, the caller decides).
 * After OUT_OF_SYNC the reader stays in error and discards everything fed
 * until tvd_frame_reader_reset() (the connection should be reset).
 */
typedef struct TvdFrameReader TvdFrameReader;

typedef enum {
    TVD_FRAME_READER_ERROR = -1,    /* out of sync: reset the connection */
    TVD_FRAME_READER_NEED_MORE = 0, /* no complete frame buffered */
    TVD_FRAME_READER_FRAME = 1,     /* *hdr and *payload set */
} TvdFrameReaderStatus;

TvdFrameReader *tvd_frame_reader_new(uint32_t max_payload);
void tvd_frame_reader_free(TvdFrameReader *reader);
void tvd_frame_reader_reset(TvdFrameReader *reader);
void tvd_frame_reader_feed(TvdFrameReader *reader, const void *data,
                           size_t len);
TvdFrameReaderStatus tvd_frame_reader_next(TvdFrameReader *reader,
                                           struct tvd_frame_header *hdr,
                                           GBytes **payload,
                                           GError **error);
/* Bytes buffered (partial frame), for tests and metrics. */
size_t tvd_frame_reader_buffered(const TvdFrameReader *reader);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdFrameReader, tvd_frame_reader_free)

/* ---- Control frames ------------------------------------------------------- */

/*
 * Encoders write exactly TVD_*_SIZE bytes into @out and check the values they
 * write (strings NUL-terminated inside their field, printable ASCII,
 * zero-padded; enums in range; reserved fields zero), so a sender never
 * emits what a receiver rejects. Decoders take a payload of exactly
 * TVD_*_SIZE bytes and apply the same checks.
 */
gboolean tvd_device_hello_encode(const struct tvd_device_hello *hello,
                                 uint8_t out[TVD_DEVICE_HELLO_SIZE],
                                 GError **error);
gboolean tvd_device_hello_decode(const void *buf, size_t size,
                                 struct tvd_device_hello *hello,
                                 GError **error);

gboolean tvd_device_event_encode(const struct tvd_device_event *ev,
                                 uint8_t out[TVD_DEVICE_EVENT_SIZE],
                                 GError **error);
gboolean tvd_device_event_decode(const void *buf, size_t size,
                                 struct tvd_device_event *ev,
                                 GError **error);

gboolean tvd_set_state_encode(const struct tvd_set_state *st,
                              uint8_t out[TVD_SET_STATE_SIZE],
                              GError **error);
gboolean tvd_set_state_decode(const void *buf, size_t size,
                              struct tvd_set_state *st, GError **error);

gboolean tvd_set_link_encode(const struct tvd_set_link *link,
                             uint8_t out[TVD_SET_LINK_SIZE],
                             GError **error);
gboolean tvd_set_link_decode(const void *buf, size_t size,
                             struct tvd_set_link *link, GError **error);

/*
 * Copies @src into a NUL-padded field of @field_size bytes, checking it fits
 * with its NUL and is printable ASCII. @src NULL gives an empty field.
 */
gboolean tvd_frame_set_string(char *field, size_t field_size, const char *src,
                              GError **error);

/* ---- Little-endian helpers ---------------------------------------------- */

static inline uint16_t tvd_get_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t tvd_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) |
           ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void tvd_put_le16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void tvd_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

G_END_DECLS

#endif /* TVD_COMMON_FRAME_H */
