/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A TCTI onto an in-process libtpms TPM 2.0 (tests and benchmarks only).
 */
#define G_LOG_DOMAIN "tvd-tcti-libtpms"

#include "tcti-libtpms.h"

#include <string.h>

#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_memory.h>

#define TCTI_LIBTPMS_MAGIC 0x7476642d6c74706dULL /* "tvd-ltpm" */
#define TPM_HEADER_SIZE    10

typedef struct {
    TSS2_TCTI_CONTEXT_COMMON_V2 common;
    gboolean have_response;
    unsigned char *resp;       /* libtpms-allocated, reused */
    uint32_t resp_len;
    uint32_t resp_buf_size;
    guint8 injected[TPM_HEADER_SIZE];
    gboolean use_injected;
    guint32 inject_cc;
    guint32 inject_rc;
    guint inject_count;
    guint commands;
} TctiLibtpms;

G_DEFINE_QUARK(tvd-tcti-libtpms-error-quark, tvd_tcti_libtpms_error)

/* libtpms is process-global: one TPM, its NV blobs kept here by name. */
static gboolean tpm_running;
static GHashTable *nv_blobs; /* char * -> GBytes */

static TPM_RESULT
nv_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT
nv_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
        const char *name)
{
    GBytes *blob = nv_blobs ? g_hash_table_lookup(nv_blobs, name) : NULL;
    gsize len;
    const guint8 *src;

    (void)tpm_number;
    if (!blob) {
        /* "Nothing stored yet": libtpms then manufactures a fresh TPM. */
        return TPM_RETRY;
    }
    src = g_bytes_get_data(blob, &len);
    if (TPM_Malloc(data, (uint32_t)len) != TPM_SUCCESS) {
        return TPM_FAIL;
    }
    memcpy(*data, src, len);
    *length = (uint32_t)len;
    return TPM_SUCCESS;
}

static TPM_RESULT
nv_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
         const char *name)
{
    (void)tpm_number;
    if (!nv_blobs) {
        nv_blobs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                         (GDestroyNotify)g_bytes_unref);
    }
    g_hash_table_replace(nv_blobs, g_strdup(name), g_bytes_new(data, length));
    return TPM_SUCCESS;
}

static TPM_RESULT
nv_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
    gboolean removed = nv_blobs && g_hash_table_remove(nv_blobs, name);

    (void)tpm_number;
    return (must_exist && !removed) ? TPM_BAD_PARAMETER : TPM_SUCCESS;
}

static TPM_RESULT
io_init(void)
{
    return TPM_SUCCESS;
}

static TPM_RESULT
io_locality(TPM_MODIFIER_INDICATOR *locality, uint32_t tpm_number)
{
    (void)tpm_number;
    *locality = 0;
    return TPM_SUCCESS;
}

static TPM_RESULT
io_physical_presence(TPM_BOOL *pp, uint32_t tpm_number)
{
    (void)tpm_number;
    *pp = FALSE;
    return TPM_SUCCESS;
}

static TctiLibtpms *
tcti_cast(TSS2_TCTI_CONTEXT *ctx)
{
    TctiLibtpms *t = (TctiLibtpms *)ctx;

    if (!t || t->common.v1.magic != TCTI_LIBTPMS_MAGIC) {
        return NULL;
    }
    return t;
}

static TSS2_RC
tcti_transmit(TSS2_TCTI_CONTEXT *ctx, size_t size, const uint8_t *command)
{
    TctiLibtpms *t = tcti_cast(ctx);
    g_autofree unsigned char *copy = NULL;
    guint32 cc, hdr_size;
    TPM_RESULT res;

    if (!t) {
        return TSS2_TCTI_RC_BAD_CONTEXT;
    }
    if (!command) {
        return TSS2_TCTI_RC_BAD_REFERENCE;
    }
    if (t->have_response) {
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    }
    if (size < TPM_HEADER_SIZE || size > UINT32_MAX) {
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    hdr_size = (guint32)command[2] << 24 | (guint32)command[3] << 16 |
               (guint32)command[4] << 8 | command[5];
    if (hdr_size != size) {
        return TSS2_TCTI_RC_BAD_VALUE;
    }
    cc = (guint32)command[6] << 24 | (guint32)command[7] << 16 |
         (guint32)command[8] << 8 | command[9];
    t->commands++;
    if (t->inject_count > 0 && (t->inject_cc == 0 || t->inject_cc == cc)) {
        static const guint8 header[6] = { 0x80, 0x01, 0, 0, 0, 10 };

        t->inject_count--;
        memcpy(t->injected, header, sizeof(header));
        t->injected[6] = t->inject_rc >> 24;
        t->injected[7] = t->inject_rc >> 16;
        t->injected[8] = t->inject_rc >> 8;
        t->injected[9] = t->inject_rc;
        t->use_injected = TRUE;
        t->have_response = TRUE;
        return TSS2_RC_SUCCESS;
    }
    /* TPMLIB_Process wants a writable command buffer. */
    copy = g_memdup2(command, size);
    res = TPMLIB_Process(&t->resp, &t->resp_len, &t->resp_buf_size, copy,
                         (uint32_t)size);
    if (res != TPM_SUCCESS || t->resp_len < TPM_HEADER_SIZE) {
        g_warning("TPMLIB_Process failed: 0x%x", res);
        return TSS2_TCTI_RC_IO_ERROR;
    }
    t->use_injected = FALSE;
    t->have_response = TRUE;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC
tcti_receive(TSS2_TCTI_CONTEXT *ctx, size_t *size, uint8_t *response,
             int32_t timeout)
{
    TctiLibtpms *t = tcti_cast(ctx);
    const guint8 *src;
    size_t len;

    (void)timeout;
    if (!t) {
        return TSS2_TCTI_RC_BAD_CONTEXT;
    }
    if (!size) {
        return TSS2_TCTI_RC_BAD_REFERENCE;
    }
    if (!t->have_response) {
        return TSS2_TCTI_RC_BAD_SEQUENCE;
    }
    src = t->use_injected ? t->injected : t->resp;
    len = t->use_injected ? TPM_HEADER_SIZE : t->resp_len;
    if (!response) {
        *size = len;
        return TSS2_RC_SUCCESS;
    }
    if (*size < len) {
        *size = len;
        return TSS2_TCTI_RC_INSUFFICIENT_BUFFER;
    }
    memcpy(response, src, len);
    *size = len;
    t->have_response = FALSE;
    return TSS2_RC_SUCCESS;
}

static TSS2_RC
tcti_cancel(TSS2_TCTI_CONTEXT *ctx)
{
    (void)ctx;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC
tcti_get_poll_handles(TSS2_TCTI_CONTEXT *ctx, TSS2_TCTI_POLL_HANDLE *handles,
                      size_t *num_handles)
{
    (void)ctx;
    (void)handles;
    (void)num_handles;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

static TSS2_RC
tcti_set_locality(TSS2_TCTI_CONTEXT *ctx, uint8_t locality)
{
    (void)ctx;
    return locality == 0 ? TSS2_RC_SUCCESS : TSS2_TCTI_RC_BAD_VALUE;
}

static TSS2_RC
tcti_make_sticky(TSS2_TCTI_CONTEXT *ctx, TPM2_HANDLE *handle, uint8_t sticky)
{
    (void)ctx;
    (void)handle;
    (void)sticky;
    return TSS2_TCTI_RC_NOT_IMPLEMENTED;
}

/* Sends a raw command through libtpms; returns the response code. */
static guint32
raw_command(TctiLibtpms *t, const guint8 *cmd, size_t len)
{
    guint8 rsp[TPM_HEADER_SIZE + 64];
    size_t rsp_len = sizeof(rsp);

    if (tcti_transmit((TSS2_TCTI_CONTEXT *)t, len, cmd) != TSS2_RC_SUCCESS ||
        tcti_receive((TSS2_TCTI_CONTEXT *)t, &rsp_len, rsp, -1) !=
        TSS2_RC_SUCCESS || rsp_len < TPM_HEADER_SIZE) {
        return 0xffffffffu;
    }
    return (guint32)rsp[6] << 24 | (guint32)rsp[7] << 16 |
           (guint32)rsp[8] << 8 | rsp[9];
}

static void
tcti_finalize(TSS2_TCTI_CONTEXT *ctx)
{
    static const guint8 shutdown[] = {
        0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x45, 0x00, 0x00,
    };
    TctiLibtpms *t = tcti_cast(ctx);

    if (!t) {
        return;
    }
    t->inject_count = 0;
    t->have_response = FALSE;
    raw_command(t, shutdown, sizeof(shutdown));
    TPMLIB_Terminate();
    TPM_Free(t->resp);
    t->resp = NULL;
    t->common.v1.magic = 0;
    tpm_running = FALSE;
}

TSS2_TCTI_CONTEXT *
tvd_tcti_libtpms_new(gboolean fresh, GError **error)
{
    static const guint8 startup[] = {
        0x80, 0x01, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x00, 0x01, 0x44, 0x00, 0x00,
    };
    static struct libtpms_callbacks callbacks = {
        .sizeOfStruct = sizeof(struct libtpms_callbacks),
        .tpm_nvram_init = nv_init,
        .tpm_nvram_loaddata = nv_load,
        .tpm_nvram_storedata = nv_store,
        .tpm_nvram_deletename = nv_delete,
        .tpm_io_init = io_init,
        .tpm_io_getlocality = io_locality,
        .tpm_io_getphysicalpresence = io_physical_presence,
    };
    TctiLibtpms *t;
    TPM_RESULT res;
    guint32 rc;

    if (tpm_running) {
        g_set_error(error, TVD_TCTI_LIBTPMS_ERROR, 1,
                    "libtpms runs one TPM per process and it is in use");
        return NULL;
    }
    if (fresh && nv_blobs) {
        g_hash_table_remove_all(nv_blobs);
    }
    res = TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2);
    if (res == TPM_SUCCESS) {
        res = TPMLIB_RegisterCallbacks(&callbacks);
    }
    if (res == TPM_SUCCESS) {
        res = TPMLIB_MainInit();
    }
    if (res != TPM_SUCCESS) {
        g_set_error(error, TVD_TCTI_LIBTPMS_ERROR, 2,
                    "libtpms initialization failed: 0x%x", res);
        return NULL;
    }
    tpm_running = TRUE;

    t = g_new0(TctiLibtpms, 1);
    t->common.v1.magic = TCTI_LIBTPMS_MAGIC;
    t->common.v1.version = 2;
    t->common.v1.transmit = tcti_transmit;
    t->common.v1.receive = tcti_receive;
    t->common.v1.finalize = tcti_finalize;
    t->common.v1.cancel = tcti_cancel;
    t->common.v1.getPollHandles = tcti_get_poll_handles;
    t->common.v1.setLocality = tcti_set_locality;
    t->common.makeSticky = tcti_make_sticky;

    rc = raw_command(t, startup, sizeof(startup));
    if (rc != 0) {
        g_set_error(error, TVD_TCTI_LIBTPMS_ERROR, 3,
                    "TPM2_Startup(CLEAR) failed: 0x%x", rc);
        tcti_finalize((TSS2_TCTI_CONTEXT *)t);
        g_free(t);
        return NULL;
    }
    t->commands = 0;
    return (TSS2_TCTI_CONTEXT *)t;
}

void
tvd_tcti_libtpms_free(TSS2_TCTI_CONTEXT *tcti)
{
    if (!tcti) {
        return;
    }
    tcti_finalize(tcti);
    g_free(tcti);
}

void
tvd_tcti_libtpms_inject(TSS2_TCTI_CONTEXT *tcti, guint32 cc, guint32 rc,
                        guint count)
{
    TctiLibtpms *t = tcti_cast(tcti);

    g_return_if_fail(t != NULL);
    t->inject_cc = cc;
    t->inject_rc = rc;
    t->inject_count = count;
}

guint
tvd_tcti_libtpms_commands(TSS2_TCTI_CONTEXT *tcti)
{
    TctiLibtpms *t = tcti_cast(tcti);

    g_return_val_if_fail(t != NULL, 0);
    return t->commands;
}
