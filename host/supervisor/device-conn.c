/*
 * A connection to a tvd device: see device-conn.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-device"

#include "device-conn.h"

#include "frame.h"

#define READ_CHUNK          (64 * 1024)
/* Bytes queued for one device before the connection is declared stuck. */
#define WRITE_QUEUE_MAX     (16u * 1024 * 1024)

struct TvdDeviceConn {
    gint refs;
    GSocketConnection *sc;
    GCancellable *cancel;
    const TvdDeviceConnOps *ops;
    void *opaque;
    TvdFrameReader *reader;
    guint8 *buf;
    GQueue out;             /* GBytes waiting to be written */
    gsize out_bytes;
    gboolean writing;
    gboolean closed;
    gboolean have_hello;
    gsize agent_max;        /* payload of a frame its G2H half can hold */
    guint32 seq;
    pid_t pid;
    uid_t uid;
};

static TvdDeviceConn *conn_ref(TvdDeviceConn *conn)
{
    g_atomic_int_inc(&conn->refs);
    return conn;
}

static void conn_unref(TvdDeviceConn *conn)
{
    if (!g_atomic_int_dec_and_test(&conn->refs)) {
        return;
    }
    g_queue_clear_full(&conn->out, (GDestroyNotify)g_bytes_unref);
    tvd_frame_reader_free(conn->reader);
    g_clear_object(&conn->sc);
    g_clear_object(&conn->cancel);
    g_free(conn->buf);
    g_free(conn);
}

/* Report the end once, then stop everything. */
static void conn_fail(TvdDeviceConn *conn, const char *why)
{
    if (conn->closed) {
        return;
    }
    conn->closed = TRUE;
    g_cancellable_cancel(conn->cancel);
    g_io_stream_close(G_IO_STREAM(conn->sc), NULL, NULL);
    if (conn->ops->closed) {
        conn->ops->closed(conn, why, conn->opaque);
    }
}

static void conn_handle_frame(TvdDeviceConn *conn,
                              const struct tvd_frame_header *hdr,
                              GBytes *payload)
{
    g_autoptr(GError) err = NULL;
    gsize len;
    const void *data = g_bytes_get_data(payload, &len);

    switch (hdr->type) {
    case TVD_FRAME_DEVICE_HELLO: {
        struct tvd_device_hello hello;

        if (!tvd_device_hello_decode(data, len, &hello, &err)) {
            conn_fail(conn, err->message);
            return;
        }
        conn->have_hello = TRUE;
        conn->agent_max = TVD_MBOX_HALF(hello.mailbox_size) -
                          TVD_FRAME_HEADER_SIZE;
        if (conn->ops->hello) {
            conn->ops->hello(conn, &hello, conn->opaque);
        }
        break;
    }
    case TVD_FRAME_DEVICE_EVENT: {
        struct tvd_device_event ev;

        if (!conn->have_hello) {
            conn_fail(conn, "device event before the device hello");
            return;
        }
        if (!tvd_device_event_decode(data, len, &ev, &err)) {
            g_warning("dropping a device event: %s", err->message);
            return;
        }
        if (conn->ops->event) {
            conn->ops->event(conn, &ev, conn->opaque);
        }
        break;
    }
    case TVD_FRAME_AGENT:
        if (!conn->have_hello) {
            conn_fail(conn, "agent frame before the device hello");
            return;
        }
        /*
         * The device relays one mailbox half at a time: a larger frame is
         * not from a tvd device, and decoding it (GVariant's normal-form
         * check walks every byte) would hold the main loop for every VM.
         */
        if (len > conn->agent_max) {
            g_autofree char *why = g_strdup_printf(
                "an agent frame of %" G_GSIZE_FORMAT " bytes, more than the "
                "device's mailbox half holds (%" G_GSIZE_FORMAT ")", len,
                conn->agent_max);

            conn_fail(conn, why);
            return;
        }
        if (conn->ops->agent) {
            conn->ops->agent(conn, payload, conn->opaque);
        }
        break;
    default:
        /* In sync, but not for us: a newer device or a confused one. */
        g_debug("dropping a %s frame from a device",
                tvd_frame_type_name(hdr->type));
        break;
    }
}

static void conn_read_done(GObject *src, GAsyncResult *res, gpointer data);

static void conn_read_more(TvdDeviceConn *conn)
{
    g_input_stream_read_async(g_io_stream_get_input_stream(G_IO_STREAM(conn->sc)),
                              conn->buf, READ_CHUNK, G_PRIORITY_DEFAULT,
                              conn->cancel, conn_read_done, conn_ref(conn));
}

static void conn_read_done(GObject *src, GAsyncResult *res, gpointer data)
{
    TvdDeviceConn *conn = data;
    g_autoptr(GError) err = NULL;
    gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &err);

    if (conn->closed) {
        conn_unref(conn);
        return;
    }
    if (n <= 0) {
        conn_fail(conn, n == 0 ? "device closed the connection" : err->message);
        conn_unref(conn);
        return;
    }
    tvd_frame_reader_feed(conn->reader, conn->buf, n);
    while (!conn->closed) {
        struct tvd_frame_header hdr;
        g_autoptr(GBytes) payload = NULL;
        g_autoptr(GError) ferr = NULL;
        TvdFrameReaderStatus st = tvd_frame_reader_next(conn->reader, &hdr,
                                                        &payload, &ferr);

        if (st == TVD_FRAME_READER_NEED_MORE) {
            break;
        }
        if (st == TVD_FRAME_READER_ERROR) {
            conn_fail(conn, ferr ? ferr->message : "frame stream out of sync");
            break;
        }
        conn_handle_frame(conn, &hdr, payload);
    }
    if (!conn->closed) {
        conn_read_more(conn);
    }
    conn_unref(conn);
}

static void conn_write_next(TvdDeviceConn *conn);

static void conn_write_done(GObject *src, GAsyncResult *res, gpointer data)
{
    TvdDeviceConn *conn = data;
    g_autoptr(GError) err = NULL;
    gssize n = g_output_stream_write_bytes_finish(G_OUTPUT_STREAM(src), res,
                                                  &err);

    conn->writing = FALSE;
    if (conn->closed) {
        conn_unref(conn);
        return;
    }
    if (n < 0) {
        conn_fail(conn, err->message);
        conn_unref(conn);
        return;
    }
    {
        GBytes *head = g_queue_pop_head(&conn->out);
        gsize len = g_bytes_get_size(head);

        conn->out_bytes -= n;
        if ((gsize)n < len) {
            /* Partial write: keep the rest at the head. */
            g_queue_push_head(&conn->out,
                              g_bytes_new_from_bytes(head, n, len - n));
        }
        g_bytes_unref(head);
    }
    conn_write_next(conn);
    conn_unref(conn);
}

static void conn_write_next(TvdDeviceConn *conn)
{
    GBytes *head;

    if (conn->writing || conn->closed) {
        return;
    }
    head = g_queue_peek_head(&conn->out);
    if (!head) {
        return;
    }
    conn->writing = TRUE;
    g_output_stream_write_bytes_async(
        g_io_stream_get_output_stream(G_IO_STREAM(conn->sc)), head,
        G_PRIORITY_DEFAULT, conn->cancel, conn_write_done, conn_ref(conn));
}

static gboolean conn_send(TvdDeviceConn *conn, guint8 type, const void *body,
                          gsize len, GError **error)
{
    GBytes *frame;

    if (conn->closed) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CLOSED,
                    "the device connection is closed");
        return FALSE;
    }
    if (conn->out_bytes + len > WRITE_QUEUE_MAX) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK,
                    "the device does not read: %" G_GSIZE_FORMAT
                    " bytes already queued", conn->out_bytes);
        return FALSE;
    }
    frame = tvd_frame_encode(type, ++conn->seq, body, len, error);
    if (!frame) {
        return FALSE;
    }
    conn->out_bytes += g_bytes_get_size(frame);
    g_queue_push_tail(&conn->out, frame);
    conn_write_next(conn);
    return TRUE;
}

gboolean tvd_device_conn_set_state(TvdDeviceConn *conn, uint32_t state,
                                   uint32_t reason, GError **error)
{
    struct tvd_set_state st = { .state = state, .reason = reason };
    guint8 body[TVD_SET_STATE_SIZE];

    if (!tvd_set_state_encode(&st, body, error)) {
        return FALSE;
    }
    return conn_send(conn, TVD_FRAME_SET_STATE, body, sizeof(body), error);
}

gboolean tvd_device_conn_send_agent(TvdDeviceConn *conn, GBytes *payload,
                                    GError **error)
{
    gsize len;
    const void *data = g_bytes_get_data(payload, &len);

    return conn_send(conn, TVD_FRAME_AGENT, data, len, error);
}

void tvd_device_conn_set_ops(TvdDeviceConn *conn, const TvdDeviceConnOps *ops,
                             void *opaque)
{
    conn->ops = ops;
    conn->opaque = opaque;
}

pid_t tvd_device_conn_peer_pid(TvdDeviceConn *conn)
{
    return conn->pid;
}

uid_t tvd_device_conn_peer_uid(TvdDeviceConn *conn)
{
    return conn->uid;
}

TvdDeviceConn *tvd_device_conn_new(GSocketConnection *sc,
                                   const TvdDeviceConnOps *ops, void *opaque)
{
    TvdDeviceConn *conn = g_new0(TvdDeviceConn, 1);
    g_autoptr(GCredentials) cred = NULL;

    conn->refs = 1;
    conn->sc = g_object_ref(sc);
    conn->cancel = g_cancellable_new();
    conn->ops = ops;
    conn->opaque = opaque;
    conn->reader = tvd_frame_reader_new(TVD_FRAME_MAX_PAYLOAD);
    conn->buf = g_malloc(READ_CHUNK);
    conn->pid = -1;
    conn->uid = (uid_t)-1;
    g_queue_init(&conn->out);
    cred = g_socket_get_credentials(g_socket_connection_get_socket(sc), NULL);
    if (cred) {
        conn->pid = g_credentials_get_unix_pid(cred, NULL);
        conn->uid = g_credentials_get_unix_user(cred, NULL);
    }
    conn_read_more(conn);
    return conn;
}

void tvd_device_conn_free(TvdDeviceConn *conn)
{
    if (!conn) {
        return;
    }
    if (!conn->closed) {
        conn->closed = TRUE;
        g_cancellable_cancel(conn->cancel);
        g_io_stream_close(G_IO_STREAM(conn->sc), NULL, NULL);
    }
    conn_unref(conn);
}
