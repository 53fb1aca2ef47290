/*
 * Measurements: see measure.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-measure"

#include "measure.h"
#include "evidence.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IMA_SHA1_LEN        20u
#define RECORD_MAX          (64u * 1024)
/* Files under one measured directory: a bound on what a guest can ask. */
#define DIR_FILES_MAX       4096u

GPtrArray *tvd_measure_split_log(const guint8 *log, gsize len, guint64 offset,
                                 guint max_records, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    gsize off = 0;
    guint64 index = 0;

    while (off < len && out->len < max_records) {
        TvdImaRecordView v;
        TvdImaRecordStatus st = tvd_ima_record_frame(log + off, len - off,
                                                     IMA_SHA1_LEN, 255,
                                                     RECORD_MAX, &v);

        if (st == TVD_IMA_RECORD_NAME_TOO_LONG) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "IMA record %" G_GUINT64_FORMAT ": template name "
                        "of %u bytes", index, v.name_len);
            return NULL;
        }
        if (st == TVD_IMA_RECORD_DATA_TOO_LONG) {
            g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                        "IMA record %" G_GUINT64_FORMAT ": template data of "
                        "%u bytes", index, v.data_len);
            return NULL;
        }
        if (st == TVD_IMA_RECORD_TRUNCATED) {
            break;
        }
        if (index >= offset) {
            g_ptr_array_add(out, g_bytes_new(log + off, v.length));
        }
        off += v.length;
        index++;
    }
    return g_steal_pointer(&out);
}

static void sha(const EVP_MD *md, const void *data, gsize len, guint8 *out)
{
    unsigned int n;

    EVP_Digest(data, len, out, &n, md, NULL);
}

GBytes *tvd_measure_record(guint32 pcr, const char *path,
                           const guint8 sha256[32], guint8 extend[32])
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    guint8 hash[IMA_SHA1_LEN];

    /* d-ng: "sha256:" NUL digest; n-ng: path with its NUL. */
    tvd_ima_ng_data_append(data, "sha256", sha256, 32, path);
    sha(EVP_sha1(), data->data, data->len, hash);
    sha(EVP_sha256(), data->data, data->len, extend);
    return tvd_ima_record_encode(pcr, hash, sizeof(hash), "ima-ng",
                                 data->data, data->len);
}

gboolean tvd_measure_file(const char *path, guint8 sha256[32], GError **error)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    EVP_MD_CTX *ctx;
    guint8 buf[64 * 1024];
    ssize_t n;
    unsigned int len;

    if (fd < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot open %s: %s", path, g_strerror(errno));
        return FALSE;
    }
    ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
    }
    close(fd);
    if (n < 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot read %s: %s", path, g_strerror(errno));
        EVP_MD_CTX_free(ctx);
        return FALSE;
    }
    EVP_DigestFinal_ex(ctx, sha256, &len);
    EVP_MD_CTX_free(ctx);
    return TRUE;
}

/* ---- the agent's own list -------------------------------------------------- */

struct TvdAgentList {
    guint32 pcr;
    char *state_path;
    GPtrArray *records;         /* GBytes */
    GHashTable *last;           /* path -> last digest (32 bytes) */
};

static void remember(TvdAgentList *list, const char *path,
                     const guint8 sha256[32])
{
    g_hash_table_replace(list->last, g_strdup(path), g_memdup2(sha256, 32));
}

TvdAgentList *tvd_agent_list_new(guint32 pcr, const char *state_path)
{
    TvdAgentList *list = g_new0(TvdAgentList, 1);
    g_autofree char *data = NULL;
    gsize len;

    list->pcr = pcr;
    list->state_path = g_strdup(state_path);
    list->records = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    list->last = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       g_free);
    if (state_path && g_file_get_contents(state_path, &data, &len, NULL)) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) recs = tvd_measure_split_log(
            (const guint8 *)data, len, 0, G_MAXUINT, &err);

        gsize whole = 0;

        for (guint i = 0; recs && i < recs->len; i++) {
            gsize rlen;
            const guint8 *r = g_bytes_get_data(recs->pdata[i], &rlen);
            /* pcr 4, hash 20, name 4+6, data len 4, d-ng 4+8+32, n-ng 4+... */
            gsize dng = 4 + IMA_SHA1_LEN + 4 + 6 + 4;

            /* Our own records: the path ends the record with its NUL. */
            if (rlen > dng + 4 + 8 + 32 + 4 && r[rlen - 1] == '\0') {
                const char *p = (const char *)r + dng + 4 + 8 + 32 + 4;

                remember(list, p, r + dng + 4 + 8);
            }
            g_ptr_array_add(list->records, g_bytes_ref(recs->pdata[i]));
            whole += rlen;
        }
        /* A record cut short by a crash: drop it, or every record appended
         * after it would be read out of step. */
        if (recs && whole < len && truncate(state_path, whole) != 0) {
            g_warning("cannot trim %s: %s", state_path, g_strerror(errno));
        }
        g_message("resumed the agent list: %u records", list->records->len);
    }
    return list;
}

void tvd_agent_list_free(TvdAgentList *list)
{
    if (!list) {
        return;
    }
    g_ptr_array_unref(list->records);
    g_hash_table_destroy(list->last);
    g_free(list->state_path);
    g_free(list);
}

guint32 tvd_agent_list_pcr(TvdAgentList *list)
{
    return list->pcr;
}

guint64 tvd_agent_list_count(TvdAgentList *list)
{
    return list->records->len;
}

GPtrArray *tvd_agent_list_since(TvdAgentList *list, guint64 offset)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);

    for (guint64 i = offset; i < list->records->len; i++) {
        g_ptr_array_add(out, g_bytes_ref(list->records->pdata[i]));
    }
    return out;
}

static void persist(TvdAgentList *list, GBytes *rec)
{
    int fd;

    if (!list->state_path) {
        return;
    }
    fd = open(list->state_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
              0600);
    if (fd < 0 ||
        write(fd, g_bytes_get_data(rec, NULL), g_bytes_get_size(rec)) !=
        (ssize_t)g_bytes_get_size(rec)) {
        g_warning("cannot keep the agent list in %s: %s", list->state_path,
                  g_strerror(errno));
    }
    if (fd >= 0) {
        close(fd);
    }
}

static int add(TvdAgentList *list, const char *path, const guint8 sha256[32],
               TvdExtendFunc extend, void *opaque, GError **error)
{
    const guint8 *last = g_hash_table_lookup(list->last, path);
    guint8 digest[32];
    GBytes *rec;

    if (last && !memcmp(last, sha256, 32)) {
        return 0;
    }
    rec = tvd_measure_record(list->pcr, path, sha256, digest);
    /* The PCR first: a record never stands without its extend. */
    if (!extend(list->pcr, digest, opaque, error)) {
        g_bytes_unref(rec);
        return -1;
    }
    g_ptr_array_add(list->records, rec);
    remember(list, path, sha256);
    persist(list, rec);
    return 1;
}

static gint str_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Regular files under @dir, sorted, without following symlinks. */
static void collect(const char *dir, GPtrArray *files, guint depth)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)) && files->len < DIR_FILES_MAX) {
        g_autofree char *p = g_build_filename(dir, name, NULL);
        struct stat st;

        if (lstat(p, &st) != 0) {
            continue;
        }
        if (S_ISREG(st.st_mode)) {
            g_ptr_array_add(files, g_steal_pointer(&p));
        } else if (S_ISDIR(st.st_mode) && depth < 16) {
            collect(p, files, depth + 1);
        }
    }
}

int tvd_agent_list_measure(TvdAgentList *list, const char *path,
                           TvdExtendFunc extend, void *opaque,
                           GError **error)
{
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    struct stat st;
    int added = 0;

    if (lstat(path, &st) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "cannot measure %s: %s", path, g_strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        collect(path, files, 0);
        g_ptr_array_sort(files, str_cmp);
    } else {
        g_ptr_array_add(files, g_strdup(path));
    }
    for (guint i = 0; i < files->len; i++) {
        guint8 digest[32];
        int n;

        if (!tvd_measure_file(files->pdata[i], digest, error)) {
            return -1;
        }
        n = add(list, files->pdata[i], digest, extend, opaque, error);
        if (n < 0) {
            return -1;
        }
        added += n;
    }
    return added;
}

int tvd_agent_list_measure_data(TvdAgentList *list, const char *name,
                                const void *data, gsize len,
                                TvdExtendFunc extend, void *opaque,
                                GError **error)
{
    guint8 digest[32];

    sha(EVP_sha256(), data, len, digest);
    return add(list, name, digest, extend, opaque, error);
}
