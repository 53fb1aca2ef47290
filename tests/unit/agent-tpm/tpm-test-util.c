/* SPDX-License-Identifier: GPL-2.0-or-later */
#define G_LOG_DOMAIN "tvd-tpm-test"

#include "tpm-test-util.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>

#include <glib/gstdio.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>

#define UTIL_ERROR g_quark_from_static_string("tvd-tpm-test-util")

static gboolean
fail(GError **error, const char *msg)
{
    g_set_error_literal(error, UTIL_ERROR, 1, msg);
    return FALSE;
}

static gboolean
unmarshal_public(GBytes *b, TPM2B_PUBLIC *pub, GError **error)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(b, &len);
    size_t off = 0;

    memset(pub, 0, sizeof(*pub));
    if (!d || Tss2_MU_TPM2B_PUBLIC_Unmarshal(d, len, &off, pub) !=
        TSS2_RC_SUCCESS || off != len) {
        return fail(error, "not one TPM2B_PUBLIC");
    }
    return TRUE;
}

EVP_PKEY *
tpm_test_pkey_from_public(GBytes *tpm2b_public, GError **error)
{
    TPM2B_PUBLIC pub;
    const TPMT_PUBLIC *p = &pub.publicArea;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    EVP_PKEY *pkey = NULL;
    BIGNUM *n = NULL, *e = NULL;
    guint8 point[1 + 2 * 66];
    const char *type;

    if (!unmarshal_public(tpm2b_public, &pub, error)) {
        OSSL_PARAM_BLD_free(bld);
        return NULL;
    }
    if (p->type == TPM2_ALG_RSA) {
        type = "RSA";
        n = BN_bin2bn(p->unique.rsa.buffer, p->unique.rsa.size, NULL);
        e = BN_new();
        BN_set_word(e, p->parameters.rsaDetail.exponent ?
                    p->parameters.rsaDetail.exponent : 65537);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n);
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e);
    } else if (p->type == TPM2_ALG_ECC &&
               p->unique.ecc.x.size <= 66 && p->unique.ecc.y.size <= 66) {
        const char *group = p->parameters.eccDetail.curveID ==
                            TPM2_ECC_NIST_P256 ? "prime256v1" : "secp384r1";

        type = "EC";
        point[0] = 0x04;
        memcpy(point + 1, p->unique.ecc.x.buffer, p->unique.ecc.x.size);
        memcpy(point + 1 + p->unique.ecc.x.size, p->unique.ecc.y.buffer,
               p->unique.ecc.y.size);
        OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                        group, 0);
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                         1 + p->unique.ecc.x.size +
                                         p->unique.ecc.y.size);
    } else {
        OSSL_PARAM_BLD_free(bld);
        fail(error, "unsupported key type");
        return NULL;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        pkey = NULL;
        fail(error, "OpenSSL rejected the public key");
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return pkey;
}

GBytes *
tpm_test_name_of_public(GBytes *tpm2b_public, GError **error)
{
    TPM2B_PUBLIC pub;
    guint8 buf[sizeof(TPMT_PUBLIC)];
    guint8 name[2 + EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t off = 0;
    const EVP_MD *md;

    if (!unmarshal_public(tpm2b_public, &pub, error)) {
        return NULL;
    }
    switch (pub.publicArea.nameAlg) {
    case TPM2_ALG_SHA256:
        md = EVP_sha256();
        break;
    case TPM2_ALG_SHA384:
        md = EVP_sha384();
        break;
    default:
        fail(error, "unsupported nameAlg");
        return NULL;
    }
    if (Tss2_MU_TPMT_PUBLIC_Marshal(&pub.publicArea, buf, sizeof(buf), &off) !=
        TSS2_RC_SUCCESS ||
        !EVP_Digest(buf, off, name + 2, &md_len, md, NULL)) {
        fail(error, "cannot hash the public area");
        return NULL;
    }
    name[0] = pub.publicArea.nameAlg >> 8;
    name[1] = pub.publicArea.nameAlg & 0xff;
    return g_bytes_new(name, 2 + md_len);
}

gboolean
tpm_test_verify_signature(GBytes *ak_public, GBytes *attest,
                          GBytes *signature, GError **error)
{
    TPMT_SIGNATURE sig;
    gsize len;
    const guint8 *d = g_bytes_get_data(signature, &len);
    size_t off = 0;
    EVP_PKEY *pkey;
    EVP_MD_CTX *mctx;
    guint8 *der = NULL;
    const guint8 *s;
    int der_len = 0;
    size_t s_len;
    int r;

    memset(&sig, 0, sizeof(sig));
    if (!d || Tss2_MU_TPMT_SIGNATURE_Unmarshal(d, len, &off, &sig) !=
        TSS2_RC_SUCCESS || off != len) {
        return fail(error, "not one TPMT_SIGNATURE");
    }
    if (sig.sigAlg == TPM2_ALG_RSASSA &&
        sig.signature.rsassa.hash == TPM2_ALG_SHA256) {
        s = sig.signature.rsassa.sig.buffer;
        s_len = sig.signature.rsassa.sig.size;
    } else if (sig.sigAlg == TPM2_ALG_ECDSA &&
               sig.signature.ecdsa.hash == TPM2_ALG_SHA256) {
        ECDSA_SIG *es = ECDSA_SIG_new();

        ECDSA_SIG_set0(es,
                       BN_bin2bn(sig.signature.ecdsa.signatureR.buffer,
                                 sig.signature.ecdsa.signatureR.size, NULL),
                       BN_bin2bn(sig.signature.ecdsa.signatureS.buffer,
                                 sig.signature.ecdsa.signatureS.size, NULL));
        der_len = i2d_ECDSA_SIG(es, &der);
        ECDSA_SIG_free(es);
        if (der_len <= 0) {
            return fail(error, "cannot encode the ECDSA signature");
        }
        s = der;
        s_len = (size_t)der_len;
    } else {
        return fail(error, "unexpected signature scheme");
    }
    pkey = tpm_test_pkey_from_public(ak_public, error);
    if (!pkey) {
        OPENSSL_free(der);
        return FALSE;
    }
    mctx = EVP_MD_CTX_new();
    r = EVP_DigestVerifyInit(mctx, NULL, EVP_sha256(), NULL, pkey);
    if (r == 1) {
        r = EVP_DigestVerify(mctx, s, s_len, g_bytes_get_data(attest, NULL),
                             g_bytes_get_size(attest));
    }
    EVP_MD_CTX_free(mctx);
    EVP_PKEY_free(pkey);
    OPENSSL_free(der);
    if (r != 1) {
        return fail(error, "the signature does not verify");
    }
    return TRUE;
}

static guint
count_handles(ESYS_CONTEXT *esys, guint32 first, GError **error)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    guint n = 0;
    TSS2_RC rc;

    rc = Esys_GetCapability(esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                            TPM2_CAP_HANDLES, first, TPM2_MAX_CAP_HANDLES,
                            &more, &cap);
    if (rc != TSS2_RC_SUCCESS) {
        g_set_error(error, UTIL_ERROR, 4, "GetCapability: %s",
                    Tss2_RC_Decode(rc));
        return G_MAXUINT;
    }
    for (guint i = 0; i < cap->data.handles.count; i++) {
        if ((cap->data.handles.handle[i] >> 24) == (first >> 24)) {
            n++;
        }
    }
    Esys_Free(cap);
    return n;
}

gboolean
tpm_test_count_loaded(TSS2_TCTI_CONTEXT *tcti, guint *transients,
                      guint *sessions, GError **error)
{
    ESYS_CONTEXT *esys = NULL;
    guint hmac, policy;
    TSS2_RC rc;

    rc = Esys_Initialize(&esys, tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        g_set_error(error, UTIL_ERROR, 4, "Esys_Initialize: %s",
                    Tss2_RC_Decode(rc));
        return FALSE;
    }
    /* Literal handle ranges: tss2's TPM2_HR_* macros shift a signed int. */
    *transients = count_handles(esys, 0x80000000u, error);
    hmac = *transients == G_MAXUINT ? G_MAXUINT :
           count_handles(esys, 0x02000000u, error);
    policy = hmac == G_MAXUINT ? G_MAXUINT :
             count_handles(esys, 0x03000000u, error);
    Esys_Finalize(&esys);
    if (policy == G_MAXUINT) {
        return FALSE;
    }
    *sessions = hmac + policy;
    return TRUE;
}

gboolean
tpm_test_evict(TSS2_TCTI_CONTEXT *tcti, guint32 handle, GError **error)
{
    ESYS_CONTEXT *esys = NULL;
    ESYS_TR obj = ESYS_TR_NONE, out = ESYS_TR_NONE;
    TSS2_RC rc;

    rc = Esys_Initialize(&esys, tcti, NULL);
    if (rc == TSS2_RC_SUCCESS) {
        rc = Esys_TR_FromTPMPublic(esys, handle, ESYS_TR_NONE, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &obj);
    }
    if (rc == TSS2_RC_SUCCESS) {
        rc = Esys_EvictControl(esys, ESYS_TR_RH_OWNER, obj, ESYS_TR_PASSWORD,
                               ESYS_TR_NONE, ESYS_TR_NONE, handle, &out);
    }
    if (esys) {
        Esys_Finalize(&esys);
    }
    if (rc != TSS2_RC_SUCCESS) {
        g_set_error(error, UTIL_ERROR, 5, "evict 0x%08x: %s", handle,
                    Tss2_RC_Decode(rc));
        return FALSE;
    }
    return TRUE;
}

gboolean
tpm_test_have(const char *prog)
{
    g_autofree char *path = g_find_program_in_path(prog);

    return path != NULL;
}

gboolean
tpm_test_run(const char *const *argv, GError **error)
{
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    g_autofree char *cmd = g_strjoinv(" ", (char **)argv);
    int status = 0;

    if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                      NULL, &out, &err, &status, error)) {
        return FALSE;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_set_error(error, UTIL_ERROR, 2, "%s failed: %s%s", cmd, out, err);
        return FALSE;
    }
    return TRUE;
}

static gboolean
write_bytes(const char *path, GBytes *b, GError **error)
{
    return g_file_set_contents(path, g_bytes_get_data(b, NULL),
                               (gssize)g_bytes_get_size(b), error);
}

gboolean
tpm_test_makecredential(const char *dir, GBytes *ek_public, GBytes *ak_name,
                        GBytes *secret, GBytes **blob, GBytes **enc_secret,
                        GError **error)
{
    g_autofree char *ek_path = g_build_filename(dir, "mc-ek.pub", NULL);
    g_autofree char *secret_path = g_build_filename(dir, "mc-secret", NULL);
    g_autofree char *out_path = g_build_filename(dir, "mc-blob", NULL);
    g_autofree char *name_hex = NULL;
    g_autofree guint8 *data = NULL;
    TPM2B_ID_OBJECT id;
    TPM2B_ENCRYPTED_SECRET es;
    gsize len = 0, name_len, start;
    const guint8 *name = g_bytes_get_data(ak_name, &name_len);
    size_t off = 8;
    GString *hex = g_string_new(NULL);

    for (gsize i = 0; i < name_len; i++) {
        g_string_append_printf(hex, "%02x", name[i]);
    }
    name_hex = g_string_free(hex, FALSE);
    if (!write_bytes(ek_path, ek_public, error) ||
        !write_bytes(secret_path, secret, error)) {
        return FALSE;
    }
    const char *argv[] = {
        "tpm2_makecredential", "--tcti=none", "-u", ek_path, "-s",
        secret_path, "-n", name_hex, "-o", out_path, NULL,
    };
    if (!tpm_test_run(argv, error) ||
        !g_file_get_contents(out_path, (char **)&data, &len, error)) {
        return FALSE;
    }
    /* tpm2-tools file: magic 0xBADCC0DE, version 1, then the two TPM2Bs. */
    if (len < 8 || memcmp(data, "\xba\xdc\xc0\xde\x00\x00\x00\x01", 8) != 0) {
        return fail(error, "unexpected tpm2_makecredential output header");
    }
    start = off;
    if (Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(data, len, &off, &id) !=
        TSS2_RC_SUCCESS) {
        return fail(error, "bad TPM2B_ID_OBJECT in the credential file");
    }
    *blob = g_bytes_new(data + start, off - start);
    start = off;
    if (Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(data, len, &off, &es) !=
        TSS2_RC_SUCCESS || off != len) {
        g_clear_pointer(blob, g_bytes_unref);
        return fail(error, "bad TPM2B_ENCRYPTED_SECRET in the credential file");
    }
    *enc_secret = g_bytes_new(data + start, off - start);
    return TRUE;
}

/* ---- swtpm --------------------------------------------------------------- */

struct TpmTestSwtpm {
    char *dir;
    char *state;
    char *sock;
    char *tcti;
    GSubprocess *proc;
};

void
tpm_test_rmtree(const char *dir)
{
    g_autoptr(GDir) d = NULL;
    const char *name;

    if (!dir) {
        return;
    }
    d = g_dir_open(dir, 0, NULL);
    if (d) {
        while ((name = g_dir_read_name(d))) {
            g_autofree char *p = g_build_filename(dir, name, NULL);

            if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
                !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
                tpm_test_rmtree(p);
            } else {
                g_unlink(p);
            }
        }
    }
    g_rmdir(dir);
}

TpmTestSwtpm *
tpm_test_swtpm_new(const char **why, GError **error)
{
    static const char *const needed[] = {
        "swtpm", "swtpm_setup", "swtpm_localca", NULL,
    };
    g_autoptr(TpmTestSwtpm) s = NULL;
    g_autofree char *setup_conf = NULL;
    g_autofree char *ca_conf = NULL;
    g_autofree char *ca_opts = NULL;
    g_autofree char *ca_dir = NULL;
    g_autofree char *log = NULL;
    g_autofree char *text = NULL;

    *why = NULL;
    for (guint i = 0; needed[i]; i++) {
        if (!tpm_test_have(needed[i])) {
            *why = needed[i];
            return NULL;
        }
    }
    s = g_new0(TpmTestSwtpm, 1);
    s->dir = g_dir_make_tmp("tvd-agent-tpm-XXXXXX", error);
    if (!s->dir) {
        return NULL;
    }
    s->state = g_build_filename(s->dir, "state", NULL);
    s->sock = g_build_filename(s->dir, "swtpm.sock", NULL);
    s->tcti = g_strdup_printf("swtpm:path=%s", s->sock);
    ca_dir = g_build_filename(s->dir, "ca", NULL);
    setup_conf = g_build_filename(s->dir, "swtpm_setup.conf", NULL);
    ca_conf = g_build_filename(s->dir, "swtpm-localca.conf", NULL);
    ca_opts = g_build_filename(s->dir, "swtpm-localca.options", NULL);
    log = g_build_filename(s->dir, "swtpm_setup.log", NULL);
    if (g_mkdir(s->state, 0700) != 0 || g_mkdir(ca_dir, 0700) != 0) {
        g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno),
                    "mkdir in %s: %s", s->dir, g_strerror(errno));
        return NULL;
    }
    text = g_strdup_printf("create_certs_tool = %s\n"
                           "create_certs_tool_config = %s\n"
                           "create_certs_tool_options = %s\n"
                           "active_pcr_banks = sha256\n",
                           "swtpm_localca", ca_conf, ca_opts);
    if (!g_file_set_contents(setup_conf, text, -1, error)) {
        return NULL;
    }
    g_free(text);
    text = g_strdup_printf("statedir = %s\n"
                           "signingkey = %s/signkey.pem\n"
                           "issuercert = %s/issuercert.pem\n"
                           "certserial = %s/certserial\n",
                           ca_dir, ca_dir, ca_dir, ca_dir);
    if (!g_file_set_contents(ca_conf, text, -1, error) ||
        !g_file_set_contents(ca_opts,
                             "--platform-manufacturer tvd\n"
                             "--platform-version 2.1\n"
                             "--platform-model tvd-test\n", -1, error)) {
        return NULL;
    }
    const char *argv[] = {
        "swtpm_setup", "--tpm2", "--tpm-state", s->state, "--create-ek-cert",
        "--config", setup_conf, "--logfile", log, NULL,
    };
    if (!tpm_test_run(argv, error)) {
        g_autofree char *logtext = NULL;

        if (g_file_get_contents(log, &logtext, NULL, NULL)) {
            g_prefix_error(error, "swtpm_setup log:\n%s\n", logtext);
        }
        return NULL;
    }
    return g_steal_pointer(&s);
}

/* A test that aborts must not leave its swtpm behind. */
static void
die_with_parent(gpointer data)
{
    (void)data;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

gboolean
tpm_test_swtpm_start(TpmTestSwtpm *s, GError **error)
{
    g_autofree char *state_arg = g_strdup_printf("dir=%s", s->state);
    g_autofree char *server = g_strdup_printf("type=unixio,path=%s", s->sock);
    g_autofree char *ctrl = g_strdup_printf("type=unixio,path=%s.ctrl",
                                            s->sock);
    g_autofree char *ctrl_path = g_strdup_printf("%s.ctrl", s->sock);
    const char *argv[] = {
        "swtpm", "socket", "--tpm2", "--tpmstate", state_arg, "--server",
        server, "--ctrl", ctrl, "--flags", "not-need-init,startup-clear",
        NULL,
    };

    g_autofree char *log = g_build_filename(s->dir, "swtpm.log", NULL);
    g_autoptr(GSubprocessLauncher) launcher = NULL;

    g_return_val_if_fail(s->proc == NULL, FALSE);
    g_unlink(s->sock);
    g_unlink(ctrl_path);
    /* Its chatter goes to a log, not into our TAP stream. */
    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path(launcher, log);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL,
                                          NULL);
    s->proc = g_subprocess_launcher_spawnv(launcher, argv, error);
    if (!s->proc) {
        return FALSE;
    }
    for (guint i = 0; i < 500; i++) {
        if (g_file_test(s->sock, G_FILE_TEST_EXISTS) &&
            g_file_test(ctrl_path, G_FILE_TEST_EXISTS)) {
            return TRUE;
        }
        g_usleep(10000);
    }
    tpm_test_swtpm_stop(s);
    g_set_error(error, UTIL_ERROR, 3, "swtpm did not create %s", s->sock);
    return FALSE;
}

void
tpm_test_swtpm_stop(TpmTestSwtpm *s)
{
    if (!s->proc) {
        return;
    }
    g_subprocess_send_signal(s->proc, SIGTERM);
    g_subprocess_wait(s->proc, NULL, NULL);
    g_clear_object(&s->proc);
}

const char *
tpm_test_swtpm_tcti(TpmTestSwtpm *s)
{
    return s->tcti;
}

const char *
tpm_test_swtpm_dir(TpmTestSwtpm *s)
{
    return s->dir;
}

void
tpm_test_swtpm_free(TpmTestSwtpm *s)
{
    if (!s) {
        return;
    }
    tpm_test_swtpm_stop(s);
    tpm_test_rmtree(s->dir);
    g_free(s->dir);
    g_free(s->state);
    g_free(s->sock);
    g_free(s->tcti);
    g_free(s);
}

void
tpm_test_assert_clean(TSS2_TCTI_CONTEXT *tcti)
{
    g_autoptr(GError) error = NULL;
    guint transients = 99, sessions = 99;

    g_assert_true(tpm_test_count_loaded(tcti, &transients, &sessions,
                                        &error));
    g_assert_no_error(error);
    g_assert_cmpuint(transients, ==, 0);
    g_assert_cmpuint(sessions, ==, 0);
}
