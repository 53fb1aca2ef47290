/*
 * tvd domain policy: administrator keys, detached signatures, trust store.
 * See policy.h and docs/policy.md ("Signatures").
 *
 * Keys are Ed25519 (PureEdDSA: EVP_DigestSign with no digest) or ECDSA
 * P-256 with SHA-256 (DER signature). A key id is the SHA-256 of the key's
 * SubjectPublicKeyInfo DER. A signature covers the exact policy bytes.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy"

#include "policy.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define SIG_BEGIN   "-----BEGIN TVD POLICY SIGNATURE-----"
#define SIG_END     "-----END TVD POLICY SIGNATURE-----"
#define SIG_VERSION "1"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_PKEY, EVP_PKEY_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EVP_MD_CTX, EVP_MD_CTX_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(BIO, BIO_free)

/* ---- Helpers ------------------------------------------------------------------ */

static void set_ossl_error(GError **error, TvdPolicyError code, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "unknown OpenSSL error";

    if (e) {
        ERR_error_string_n(e, buf, sizeof(buf));
    }
    ERR_clear_error();
    g_set_error(error, TVD_POLICY_ERROR, code, "%s: %s", what, buf);
}

static const char *key_type_name(TvdPolicyKeyType t)
{
    return t == TVD_POLICY_KEY_ED25519 ? "ed25519" : "ecdsa-p256-sha256";
}

/* The key's type, or 0 if tvd does not accept it. */
static TvdPolicyKeyType key_type_of(EVP_PKEY *pkey)
{
    char group[64];
    size_t glen = 0;

    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_ED25519) {
        return TVD_POLICY_KEY_ED25519;
    }
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
        EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) == 1 &&
        (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)) {
        return TVD_POLICY_KEY_ECDSA_P256;
    }
    return 0;
}

static gboolean key_id(EVP_PKEY *pkey, guint8 out[TVD_POLICY_KEY_ID_LEN])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    unsigned int n = 0;
    gboolean ok;

    if (len <= 0) {
        return FALSE;
    }
    ok = EVP_Digest(der, (size_t)len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
    OPENSSL_free(der);
    return ok;
}

static char *id_string(const guint8 id[32])
{
    GString *s = g_string_new("sha256:");

    for (int i = 0; i < 32; i++) {
        g_string_append_printf(s, "%02x", id[i]);
    }
    return g_string_free(s, FALSE);
}

static gboolean parse_id(const char *s, guint8 out[32])
{
    if (!g_str_has_prefix(s, "sha256:") || strlen(s) != 7 + 64) {
        return FALSE;
    }
    s += 7;
    for (int i = 0; i < 32; i++) {
        int hi = g_ascii_xdigit_value(s[2 * i]);
        int lo = g_ascii_xdigit_value(s[2 * i + 1]);

        if (hi < 0 || lo < 0 || g_ascii_isupper(s[2 * i]) || g_ascii_isupper(s[2 * i + 1])) {
            return FALSE;
        }
        out[i] = (guint8)(hi << 4 | lo);
    }
    return TRUE;
}

static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;                                  /* never prompt */
}

/*
 * Reads a small file through an fd opened without following symlinks.
 * @private_key: the file must be owned by us with no group/other bits.
 */
static guint8 *read_key_file(const char *path, gboolean private_key, gsize *len,
                             GError **error)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    guint8 *buf;
    gsize got = 0;

    if (fd < 0) {
        int e = errno;

        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO, "%s: %s", path,
                    g_strerror(e));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: not a regular file", path);
        return NULL;
    }
    if (private_key && ((st.st_mode & 077) != 0 || st.st_uid != geteuid())) {
        close(fd);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: private key has mode %04o and owner %u; it must be owned by "
                    "uid %u with no group or other permissions (chmod 600)", path,
                    (guint)(st.st_mode & 07777), (guint)st.st_uid, (guint)geteuid());
        return NULL;
    }
    if (!private_key && (st.st_mode & 022) != 0) {
        close(fd);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: writable by group or others (mode %04o)", path,
                    (guint)(st.st_mode & 07777));
        return NULL;
    }
    if (st.st_size > (off_t)TVD_POLICY_KEY_FILE_MAX) {
        close(fd);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: larger than %u bytes", path, TVD_POLICY_KEY_FILE_MAX);
        return NULL;
    }
    buf = g_malloc(TVD_POLICY_KEY_FILE_MAX + 1);
    while (got <= TVD_POLICY_KEY_FILE_MAX) {
        ssize_t n = read(fd, buf + got, TVD_POLICY_KEY_FILE_MAX + 1 - got);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            break;
        }
        got += (gsize)n;
    }
    close(fd);
    if (got > TVD_POLICY_KEY_FILE_MAX) {
        OPENSSL_cleanse(buf, TVD_POLICY_KEY_FILE_MAX + 1);
        g_free(buf);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: larger than %u bytes", path, TVD_POLICY_KEY_FILE_MAX);
        return NULL;
    }
    *len = got;
    return buf;
}

static void free_secret(guint8 *buf)
{
    if (buf) {
        OPENSSL_cleanse(buf, TVD_POLICY_KEY_FILE_MAX + 1);
        g_free(buf);
    }
}

static EVP_PKEY *load_private_key(const char *path, GError **error)
{
    gsize len = 0;
    guint8 *buf = read_key_file(path, TRUE, &len, error);
    g_autoptr(BIO) bio = NULL;
    EVP_PKEY *pkey;

    if (!buf) {
        return NULL;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    pkey = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
    free_secret(buf);
    if (!pkey) {
        g_autofree char *what = g_strdup_printf("%s: not an unencrypted PEM private key",
                                                path);

        set_ossl_error(error, TVD_POLICY_ERROR_KEY, what);
        return NULL;
    }
    if (!key_type_of(pkey)) {
        EVP_PKEY_free(pkey);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: key is neither Ed25519 nor ECDSA P-256", path);
        return NULL;
    }
    return pkey;
}

/* ---- Signature file -------------------------------------------------------- */

G_GNUC_PRINTF(3, 4)
static gboolean sig_fail(GError **error, guint line, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE,
                "signature file line %u: %s", line, msg);
    return FALSE;
}

gboolean tvd_policy_signature_decode(const void *data, gsize len,
                                     TvdPolicySignature *sig, GError **error)
{
    const char *p = data;
    g_autoptr(GString) b64 = g_string_new(NULL);
    g_autofree guchar *raw = NULL;
    g_autofree char *again = NULL;
    gsize off = 0, raw_len = 0;
    guint line = 0;
    enum { BEGIN, HEADERS, BODY, END } state = BEGIN;
    gboolean have_version = FALSE, have_alg = FALSE, have_id = FALSE;

    memset(sig, 0, sizeof(*sig));
    if (len > TVD_POLICY_SIG_FILE_MAX) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE,
                    "signature file of %zu bytes, at most %u", len, TVD_POLICY_SIG_FILE_MAX);
        return FALSE;
    }
    if (memchr(p, '\0', len)) {
        return sig_fail(error, 0, "NUL byte");
    }
    while (off < len) {
        const char *nl = memchr(p + off, '\n', len - off);
        gsize end = nl ? (gsize)(nl - p) : len;
        g_autofree char *l = g_strndup(p + off, end - off);
        gsize ll = strlen(l);

        off = nl ? end + 1 : len;
        line++;
        if (ll > 0 && l[ll - 1] == '\r') {
            l[--ll] = '\0';
        }
        switch (state) {
        case BEGIN:
            if (ll == 0) {
                continue;
            }
            if (strcmp(l, SIG_BEGIN) != 0) {
                return sig_fail(error, line, "expected \"%s\"", SIG_BEGIN);
            }
            state = HEADERS;
            break;
        case HEADERS: {
            const char *colon = strstr(l, ": ");
            g_autofree char *name = NULL;
            const char *value;

            if (ll == 0) {
                if (!have_version || !have_alg || !have_id) {
                    return sig_fail(error, line,
                                    "headers Version, Algorithm and Key-Id are required");
                }
                state = BODY;
                break;
            }
            if (!colon) {
                return sig_fail(error, line, "expected a header \"Name: value\"");
            }
            name = g_strndup(l, (gsize)(colon - l));
            value = colon + 2;
            if (strcmp(name, "Version") == 0 && !have_version) {
                if (strcmp(value, SIG_VERSION) != 0) {
                    return sig_fail(error, line, "unsupported version");
                }
                have_version = TRUE;
            } else if (strcmp(name, "Algorithm") == 0 && !have_alg) {
                if (strcmp(value, "ed25519") == 0) {
                    sig->key_type = TVD_POLICY_KEY_ED25519;
                } else if (strcmp(value, "ecdsa-p256-sha256") == 0) {
                    sig->key_type = TVD_POLICY_KEY_ECDSA_P256;
                } else {
                    return sig_fail(error, line,
                                    "algorithm must be ed25519 or ecdsa-p256-sha256");
                }
                have_alg = TRUE;
            } else if (strcmp(name, "Key-Id") == 0 && !have_id) {
                if (!parse_id(value, sig->key_id)) {
                    return sig_fail(error, line, "Key-Id must be sha256:<64 lowercase hex>");
                }
                have_id = TRUE;
            } else if (strcmp(name, "Policy-Digest") == 0 && !sig->has_digest) {
                if (!parse_id(value, sig->policy_digest)) {
                    return sig_fail(error, line,
                                    "Policy-Digest must be sha256:<64 lowercase hex>");
                }
                sig->has_digest = TRUE;
            } else {
                return sig_fail(error, line, "unknown or repeated header \"%s\"", name);
            }
            break;
        }
        case BODY:
            if (strcmp(l, SIG_END) == 0) {
                state = END;
                break;
            }
            if (ll == 0 || ll > 76) {
                return sig_fail(error, line, "base64 lines are 1..76 characters");
            }
            for (gsize i = 0; i < ll; i++) {
                if (!g_ascii_isalnum(l[i]) && l[i] != '+' && l[i] != '/' && l[i] != '=') {
                    return sig_fail(error, line, "invalid base64 character");
                }
            }
            g_string_append(b64, l);
            break;
        case END:
            if (ll != 0) {
                return sig_fail(error, line, "data after \"%s\"", SIG_END);
            }
            break;
        }
    }
    if (state != END) {
        return sig_fail(error, line, "missing \"%s\"", SIG_END);
    }
    /* Canonical base64 only: padding at the end, re-encoding gives the same. */
    if (b64->len == 0 || b64->len % 4 != 0 || b64->len > 4 * ((TVD_POLICY_SIG_MAX + 2) / 3)) {
        return sig_fail(error, line, "signature has a bad base64 length");
    }
    {
        const char *eq = strchr(b64->str, '=');

        if (eq && (gsize)(eq - b64->str) < b64->len - 2) {
            return sig_fail(error, line, "base64 padding inside the data");
        }
        if (eq && eq[1] && eq[1] != '=') {
            return sig_fail(error, line, "base64 padding inside the data");
        }
    }
    raw = g_base64_decode(b64->str, &raw_len);
    again = g_base64_encode(raw, raw_len);
    if (strcmp(again, b64->str) != 0 || raw_len == 0 || raw_len > TVD_POLICY_SIG_MAX) {
        return sig_fail(error, line, "signature is not canonical base64 of 1..%u bytes",
                        TVD_POLICY_SIG_MAX);
    }
    if (sig->key_type == TVD_POLICY_KEY_ED25519 && raw_len != 64) {
        return sig_fail(error, line, "an Ed25519 signature has 64 bytes, not %zu", raw_len);
    }
    if (sig->key_type == TVD_POLICY_KEY_ECDSA_P256 && raw_len < 8) {
        return sig_fail(error, line, "ECDSA signature too short");
    }
    memcpy(sig->sig, raw, raw_len);
    sig->sig_len = raw_len;
    return TRUE;
}

char *tvd_policy_signature_encode(const TvdPolicySignature *sig)
{
    GString *s = g_string_new(SIG_BEGIN "\nVersion: " SIG_VERSION "\n");
    g_autofree char *id = id_string(sig->key_id);
    g_autofree char *b64 = g_base64_encode(sig->sig, sig->sig_len);
    gsize n = strlen(b64);

    g_string_append_printf(s, "Algorithm: %s\nKey-Id: %s\n", key_type_name(sig->key_type), id);
    if (sig->has_digest) {
        g_autofree char *dg = id_string(sig->policy_digest);

        g_string_append_printf(s, "Policy-Digest: %s\n", dg);
    }
    g_string_append_c(s, '\n');
    for (gsize i = 0; i < n; i += 64) {
        g_string_append_len(s, b64 + i, (gssize)MIN(64, n - i));
        g_string_append_c(s, '\n');
    }
    g_string_append(s, SIG_END "\n");
    return g_string_free(s, FALSE);
}

/* ---- Keys and signing --------------------------------------------------------- */

static gboolean write_new_file(const char *path, mode_t mode, BIO *mem, GError **error)
{
    char *data = NULL;
    long len = BIO_get_mem_data(mem, &data);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    gsize done = 0;

    if (fd < 0) {
        int e = errno;

        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO, "%s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (fchmod(fd, mode) != 0) {                /* the umask may have cleared bits */
        goto fail;
    }
    while (done < (gsize)len) {
        ssize_t n = write(fd, data + done, (gsize)len - done);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            goto fail;
        }
        done += (gsize)n;
    }
    if (fsync(fd) != 0) {
        goto fail;
    }
    close(fd);
    return TRUE;
fail:
    {
        int e = errno;

        close(fd);
        unlink(path);
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO, "%s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
}

gboolean tvd_policy_keygen(TvdPolicyKeyType type, const char *private_path,
                           const char *public_path, char **key_id_out, GError **error)
{
    g_autoptr(EVP_PKEY) pkey = NULL;
    g_autoptr(BIO) priv = BIO_new(BIO_s_secmem());
    g_autoptr(BIO) pub = BIO_new(BIO_s_mem());
    guint8 id[32];

    if (type == TVD_POLICY_KEY_ED25519) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else if (type == TVD_POLICY_KEY_ECDSA_P256) {
        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    } else {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY, "unknown key type %d",
                    (int)type);
        return FALSE;
    }
    if (!pkey || !priv || !pub || !key_id(pkey, id) ||
        !PEM_write_bio_PrivateKey(priv, pkey, NULL, NULL, 0, NULL, NULL) ||
        !PEM_write_bio_PUBKEY(pub, pkey)) {
        set_ossl_error(error, TVD_POLICY_ERROR_KEY, "key generation failed");
        return FALSE;
    }
    if (!write_new_file(private_path, 0600, priv, error)) {
        return FALSE;
    }
    if (!write_new_file(public_path, 0644, pub, error)) {
        unlink(private_path);
        return FALSE;
    }
    if (key_id_out) {
        *key_id_out = id_string(id);
    }
    return TRUE;
}

char *tvd_policy_sign(const void *data, gsize len, const char *private_path,
                      GError **error)
{
    g_autoptr(EVP_PKEY) pkey = load_private_key(private_path, error);
    g_autoptr(EVP_MD_CTX) ctx = NULL;
    TvdPolicySignature sig;
    size_t sig_len = sizeof(sig.sig);
    unsigned int n = 0;

    if (!pkey) {
        return NULL;
    }
    memset(&sig, 0, sizeof(sig));
    sig.key_type = key_type_of(pkey);
    ctx = EVP_MD_CTX_new();
    if (!ctx || !key_id(pkey, sig.key_id) ||
        EVP_DigestSignInit(ctx, NULL,
                           sig.key_type == TVD_POLICY_KEY_ED25519 ? NULL : EVP_sha256(),
                           NULL, pkey) != 1 ||
        EVP_DigestSign(ctx, sig.sig, &sig_len, data, len) != 1 ||
        EVP_Digest(data, len, sig.policy_digest, &n, EVP_sha256(), NULL) != 1) {
        set_ossl_error(error, TVD_POLICY_ERROR_KEY, "signing failed");
        return NULL;
    }
    sig.sig_len = sig_len;
    sig.has_digest = TRUE;
    return tvd_policy_signature_encode(&sig);
}

char *tvd_policy_key_id_of_file(const char *path, GError **error)
{
    gsize len = 0;
    guint8 *buf = read_key_file(path, FALSE, &len, error);
    g_autoptr(BIO) bio = NULL;
    g_autoptr(EVP_PKEY) pkey = NULL;
    guint8 id[32];

    if (!buf) {
        return NULL;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
    if (!pkey && bio) {
        ERR_clear_error();
        BIO_reset(bio);
        pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    }
    free_secret(buf);
    if (!pkey || !key_type_of(pkey) || !key_id(pkey, id)) {
        ERR_clear_error();
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: not an Ed25519 or P-256 PEM key", path);
        return NULL;
    }
    return id_string(id);
}

/* ---- Trust store ----------------------------------------------------------------- */

typedef struct {
    char *name;
    EVP_PKEY *pkey;
    TvdPolicyKeyType type;
    guint8 id[TVD_POLICY_KEY_ID_LEN];
} TrustedKey;

struct _TvdPolicyTrustStore {
    GPtrArray *keys;                            /* of TrustedKey */
};

static void trusted_key_free(gpointer p)
{
    TrustedKey *k = p;

    g_free(k->name);
    EVP_PKEY_free(k->pkey);
    g_free(k);
}

TvdPolicyTrustStore *tvd_policy_trust_store_new(void)
{
    TvdPolicyTrustStore *s = g_new0(TvdPolicyTrustStore, 1);

    s->keys = g_ptr_array_new_with_free_func(trusted_key_free);
    return s;
}

void tvd_policy_trust_store_free(TvdPolicyTrustStore *store)
{
    if (store) {
        g_ptr_array_unref(store->keys);
        g_free(store);
    }
}

guint tvd_policy_trust_store_size(const TvdPolicyTrustStore *store)
{
    return store->keys->len;
}

gboolean tvd_policy_trust_store_add_pem(TvdPolicyTrustStore *store, const void *pem,
                                        gsize len, const char *name, GError **error)
{
    g_autoptr(BIO) bio = NULL;
    TrustedKey *k;
    EVP_PKEY *pkey;

    if (store->keys->len >= TVD_POLICY_TRUST_KEYS_MAX) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_TOO_LARGE,
                    "trust store holds at most %u keys", TVD_POLICY_TRUST_KEYS_MAX);
        return FALSE;
    }
    if (len > TVD_POLICY_KEY_FILE_MAX) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: larger than %u bytes", name, TVD_POLICY_KEY_FILE_MAX);
        return FALSE;
    }
    bio = BIO_new_mem_buf(pem, (int)len);
    pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL) : NULL;
    if (!pkey) {
        g_autofree char *what = g_strdup_printf("%s: not a PEM public key", name);

        set_ossl_error(error, TVD_POLICY_ERROR_KEY, what);
        return FALSE;
    }
    k = g_new0(TrustedKey, 1);
    k->pkey = pkey;
    k->name = g_strdup(name);
    k->type = key_type_of(pkey);
    if (!k->type || !key_id(pkey, k->id)) {
        trusted_key_free(k);
        ERR_clear_error();
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: key is neither Ed25519 nor ECDSA P-256", name);
        return FALSE;
    }
    g_ptr_array_add(store->keys, k);
    return TRUE;
}

/* g_ptr_array_sort() passes pointers to the elements. */
static gint cmp_names(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

TvdPolicyTrustStore *tvd_policy_trust_store_load(const char *dir, GError **error)
{
    g_autoptr(TvdPolicyTrustStore) store = tvd_policy_trust_store_new();
    g_autoptr(GDir) d = NULL;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    struct stat st;

    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO,
                    "%s: not a directory", dir);
        return NULL;
    }
    if (st.st_mode & 022) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY,
                    "%s: trust store writable by group or others (mode %04o)", dir,
                    (guint)(st.st_mode & 07777));
        return NULL;
    }
    d = g_dir_open(dir, 0, error);
    if (!d) {
        return NULL;
    }
    while ((name = g_dir_read_name(d))) {
        if (g_str_has_suffix(name, ".pem") && name[0] != '.') {
            g_ptr_array_add(names, g_strdup(name));
        }
    }
    g_ptr_array_sort(names, cmp_names);
    for (guint i = 0; i < names->len; i++) {
        g_autofree char *path = g_build_filename(dir, names->pdata[i], NULL);
        g_autofree char *key_name = g_strndup(names->pdata[i],
                                              strlen(names->pdata[i]) - 4);
        gsize len = 0;
        g_autofree guint8 *buf = read_key_file(path, FALSE, &len, error);

        if (!buf || !tvd_policy_trust_store_add_pem(store, buf, len, key_name, error)) {
            if (error && *error) {
                g_prefix_error(error, "trust store %s: ", dir);
            }
            return NULL;
        }
    }
    return g_steal_pointer(&store);
}

gboolean tvd_policy_trust_store_verify(const TvdPolicyTrustStore *store, const void *data,
                                       gsize len, const void *sig_data, gsize sig_len,
                                       char **key_name_out, GError **error)
{
    TvdPolicySignature sig;
    const TrustedKey *key = NULL;
    g_autoptr(EVP_MD_CTX) ctx = NULL;
    guint8 digest[32];
    unsigned int n = 0;

    if (!tvd_policy_signature_decode(sig_data, sig_len, &sig, error)) {
        return FALSE;
    }
    for (guint i = 0; i < store->keys->len; i++) {
        const TrustedKey *k = store->keys->pdata[i];

        if (CRYPTO_memcmp(k->id, sig.key_id, sizeof(k->id)) == 0) {
            key = k;
            break;
        }
    }
    if (!key) {
        g_autofree char *id = id_string(sig.key_id);

        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_UNKNOWN_KEY,
                    "signed by key %s, which is not in the trust store", id);
        return FALSE;
    }
    if (key->type != sig.key_type) {
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE,
                    "signature says %s, but key %s is %s", key_type_name(sig.key_type),
                    key->name, key_type_name(key->type));
        return FALSE;
    }
    if (EVP_Digest(data, len, digest, &n, EVP_sha256(), NULL) != 1) {
        set_ossl_error(error, TVD_POLICY_ERROR_SIGNATURE, "SHA-256");
        return FALSE;
    }
    if (sig.has_digest && CRYPTO_memcmp(digest, sig.policy_digest, 32) != 0) {
        g_autofree char *want = id_string(sig.policy_digest);
        g_autofree char *got = id_string(digest);

        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE,
                    "signature is for policy %s, this policy is %s", want, got);
        return FALSE;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit(ctx, NULL,
                                     key->type == TVD_POLICY_KEY_ED25519 ? NULL : EVP_sha256(),
                                     NULL, key->pkey) != 1) {
        set_ossl_error(error, TVD_POLICY_ERROR_SIGNATURE, "verification setup failed");
        return FALSE;
    }
    if (EVP_DigestVerify(ctx, sig.sig, sig.sig_len, data, len) != 1) {
        ERR_clear_error();
        g_set_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE,
                    "signature by key %s does not verify over these policy bytes",
                    key->name);
        return FALSE;
    }
    if (key_name_out) {
        *key_name_out = g_strdup(key->name);
    }
    return TRUE;
}
