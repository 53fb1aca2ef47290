/*
 * The verifier against an independent peer: a real swtpm driven by
 * tpm2-tools 5.x.
 *
 *  - MakeCredential: our credential for the AK's name, encrypted to an RSA
 *    or ECC EK that tpm2_createek made, must come back out of
 *    tpm2_activatecredential; a wrong name or a flipped byte must not.
 *  - Quotes: tpm2_quote by RSA and ECC AKs verify, tampered ones fail with
 *    the right reason.
 *  - IMA: a log built the way the kernel writes it, extended into PCR 10 of
 *    both banks the way the kernel extends it, replays to the quoted value.
 *
 * Each test starts its own swtpm on 127.0.0.1 (TCP, two ports) in a fresh
 * state directory and stops it afterwards; the swtpm dies with the test
 * (PR_SET_PDEATHSIG) and writes its stderr to swtpm.err there. Without swtpm or tpm2-tools the
 * tests are skipped with the reason.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "verifier.h"
#include "round.h"
#include "synth.h"

#define ERR(e, code) g_assert_error(e, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_##code)

static const char *const tools[] = {
    "swtpm", "tpm2_createek", "tpm2_createak", "tpm2_activatecredential",
    "tpm2_startauthsession", "tpm2_policysecret", "tpm2_flushcontext",
    "tpm2_quote", "tpm2_pcrextend", "tpm2_pcrread", "tpm2_nvread",
    "tpm2_createprimary", "tpm2_create", "tpm2_load",
};

typedef struct {
    char *dir;
    GPid pid;
    int port;
    char **env;
    gboolean up;
} Tpm;

/*
 * In the swtpm child: die with the test. A failing assertion aborts the
 * test; a swtpm that outlived it would hold meson's pipes open and turn the
 * failure into a timeout. (Its stderr goes to a file for the same reason.)
 */
static void
die_with_parent(gpointer data)
{
    pid_t parent = *(pid_t *)data;

    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent) {
        _exit(127);
    }
}

/* Binds (@bind_it) or connects to 127.0.0.1:@port; TRUE if that works. */
static gboolean
port_try(int port, gboolean bind_it)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    gboolean ok;

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = fd >= 0 && (bind_it ? bind(fd, (struct sockaddr *)&a, sizeof(a))
                            : connect(fd, (struct sockaddr *)&a, sizeof(a))) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

static gboolean
port_free(int port)
{
    return port_try(port, TRUE);
}

static gboolean
port_open(int port)
{
    return port_try(port, FALSE);
}

/* swtpm_setup with swtpm_localca, as the supervisor provisions a vTPM:
 * EK certificates in NV, the CA in DIR/ca. FALSE (test skipped) when the
 * tools are missing. */
static gboolean
provision(Tpm *t)
{
    g_autofree char *setup = g_find_program_in_path("swtpm_setup");
    g_autofree char *localca = g_find_program_in_path("swtpm_localca");
    g_autofree char *ca = g_build_filename(t->dir, "ca", NULL);
    g_autofree char *conf = g_build_filename(t->dir, "setup.conf", NULL);
    g_autofree char *caconf = g_build_filename(t->dir, "localca.conf", NULL);
    g_autofree char *caopts = g_build_filename(t->dir, "localca.options",
                                               NULL);
    g_autofree char *text = NULL;
    g_autofree char *err = NULL;
    g_autoptr(GError) error = NULL;
    int status = -1;
    const char *argv[] = { "swtpm_setup", "--tpm2", "--tpmstate", t->dir,
                           "--create-ek-cert", "--config", conf,
                           "--overwrite", NULL };

    if (!setup || !localca) {
        g_test_skip("swtpm_setup or swtpm_localca is not installed");
        return FALSE;
    }
    g_assert_cmpint(g_mkdir(ca, 0700), ==, 0);
    text = g_strdup_printf("create_certs_tool = %s\n"
                           "create_certs_tool_config = %s\n"
                           "create_certs_tool_options = %s\n",
                           localca, caconf, caopts);
    g_assert_true(g_file_set_contents(conf, text, -1, NULL));
    g_free(text);
    text = g_strdup_printf("statedir = %s\nsigningkey = %s/signkey.pem\n"
                           "issuercert = %s/issuercert.pem\n"
                           "certserial = %s/certserial\n", ca, ca, ca, ca);
    g_assert_true(g_file_set_contents(caconf, text, -1, NULL));
    g_assert_true(g_file_set_contents(caopts,
                                      "--platform-manufacturer tvd\n"
                                      "--platform-version 1\n"
                                      "--platform-model vm\n", -1, NULL));
    g_assert_true(g_spawn_sync(t->dir, (char **)argv, NULL,
                               G_SPAWN_SEARCH_PATH |
                                   G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, &err, &status, &error));
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("swtpm_setup: %s", err);
    }
    g_assert_true(g_spawn_check_wait_status(status, NULL));
    return TRUE;
}

static void
tpm_setup(Tpm *t, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    (void)data;
    memset(t, 0, sizeof(*t));
    for (gsize i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *p = g_find_program_in_path(tools[i]);

        if (!p) {
            g_autofree char *msg = g_strdup_printf("%s is not installed",
                                                   tools[i]);
            g_test_skip(msg);
            return;
        }
    }
    t->dir = g_dir_make_tmp("tvd-verifier-swtpm-XXXXXX", &error);
    g_assert_no_error(error);
    if (data && !provision(t)) {
        return;
    }
    for (int attempt = 0; attempt < 20 && !t->up; attempt++) {
        g_autofree char *state = g_strdup_printf("dir=%s", t->dir);
        g_autofree char *server = NULL, *ctrl = NULL;
        g_autofree char *tcti = NULL;
        g_autofree char *err_path = NULL;
        pid_t parent = getpid();
        gboolean ok;
        int err_fd;
        const char *argv[] = {
            "swtpm", "socket", "--tpm2", "--tpmstate", state, "--server", NULL,
            "--ctrl", NULL, "--flags", "not-need-init,startup-clear", NULL,
        };

        t->port = g_random_int_range(20000, 60000);
        if (!port_free(t->port) || !port_free(t->port + 1)) {
            continue;
        }
        server = g_strdup_printf("type=tcp,port=%d,bindaddr=127.0.0.1",
                                 t->port);
        ctrl = g_strdup_printf("type=tcp,port=%d,bindaddr=127.0.0.1",
                               t->port + 1);
        argv[6] = server;
        argv[8] = ctrl;
        err_path = g_build_filename(t->dir, "swtpm.err", NULL);
        err_fd = g_open(err_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                        0600);
        g_assert_cmpint(err_fd, >=, 0);
        ok = g_spawn_async_with_fds(t->dir, (char **)argv, NULL,
                                    G_SPAWN_SEARCH_PATH |
                                        G_SPAWN_DO_NOT_REAP_CHILD |
                                        G_SPAWN_STDOUT_TO_DEV_NULL,
                                    die_with_parent, &parent, &t->pid,
                                    -1, -1, err_fd, &error);
        close(err_fd);
        g_assert_no_error(error);
        g_assert_true(ok);
        for (int i = 0; i < 200; i++) {
            int status;

            if (port_open(t->port)) {
                t->up = TRUE;
                break;
            }
            if (waitpid(t->pid, &status, WNOHANG) == t->pid) {
                t->pid = 0;     /* lost the port race: try another */
                break;
            }
            g_usleep(25000);
        }
        if (!t->up && t->pid) {
            kill(t->pid, SIGTERM);
            waitpid(t->pid, NULL, 0);
            t->pid = 0;
        }
        if (t->up) {
            tcti = g_strdup_printf("swtpm:host=127.0.0.1,port=%d", t->port);
            t->env = g_environ_setenv(g_get_environ(), "TPM2TOOLS_TCTI", tcti,
                                      TRUE);
        }
    }
    g_assert_true(t->up);
}

static void
rm_rf(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *n;

    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, n, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_rf(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(dir);
}

static void
tpm_teardown(Tpm *t, gconstpointer data)
{
    (void)data;
    if (t->pid) {
        kill(t->pid, SIGTERM);
        waitpid(t->pid, NULL, 0);
        g_spawn_close_pid(t->pid);
    }
    if (t->dir) {
        rm_rf(t->dir);
    }
    g_free(t->dir);
    g_strfreev(t->env);
}

/* Runs a tpm2 tool in the state directory; TRUE on exit status 0. */
static gboolean
run(Tpm *t, const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *err = NULL;
    int status = -1;

    g_assert_true(g_spawn_sync(t->dir, (char **)argv, t->env,
                               G_SPAWN_SEARCH_PATH |
                                   G_SPAWN_STDOUT_TO_DEV_NULL,
                               NULL, NULL, NULL, &err, &status, &error));
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("%s failed: %s", argv[0], err);
        return FALSE;
    }
    return TRUE;
}

#define RUN(t, ...) run(t, (const char *const[]){ __VA_ARGS__, NULL })

/* No resource manager: flush what each tool left loaded. */
static void
flush(Tpm *t)
{
    g_assert_true(RUN(t, "tpm2_flushcontext", "-t"));
    g_assert_true(RUN(t, "tpm2_flushcontext", "-s"));
}

static GBytes *
slurp(Tpm *t, const char *name)
{
    g_autofree char *p = g_build_filename(t->dir, name, NULL);
    g_autoptr(GError) error = NULL;
    char *data;
    gsize len;

    g_assert_true(g_file_get_contents(p, &data, &len, &error));
    return g_bytes_new_take(data, len);
}

static void
spit(Tpm *t, const char *name, const void *data, gsize len)
{
    g_autofree char *p = g_build_filename(t->dir, name, NULL);
    g_autoptr(GError) error = NULL;

    g_assert_true(g_file_set_contents(p, data, (gssize)len, &error));
}

static char *
hex(const guint8 *d, gsize len)
{
    GString *s = g_string_new(NULL);

    for (gsize i = 0; i < len; i++) {
        g_string_append_printf(s, "%02x", d[i]);
    }
    return g_string_free(s, FALSE);
}

/* EK (-G @alg) and an AK under it; parses both and checks the AK's name
 * against the one the TPM computed. */
static void
make_keys(Tpm *t, const char *alg, TvdTpmPublic **ek, TvdTpmPublic **ak)
{
    g_autoptr(GBytes) ek_pub = NULL, ak_pub = NULL, ak_name = NULL;
    g_autoptr(GError) error = NULL;
    gboolean rsa = strcmp(alg, "rsa") == 0;

    g_assert_true(RUN(t, "tpm2_createek", "-G", alg, "-c", "ek.ctx", "-u",
                      "ek.pub", "-f", "tss"));
    flush(t);
    g_assert_true(RUN(t, "tpm2_createak", "-C", "ek.ctx", "-c", "ak.ctx",
                      "-G", alg, "-g", "sha256", "-s",
                      rsa ? "rsassa" : "ecdsa", "-u", "ak.pub", "-n",
                      "ak.name", "-f", "tss"));
    flush(t);
    ek_pub = slurp(t, "ek.pub");
    ak_pub = slurp(t, "ak.pub");
    ak_name = slurp(t, "ak.name");
    *ek = tvd_tpm_public_parse(g_bytes_get_data(ek_pub, NULL),
                               g_bytes_get_size(ek_pub), &error);
    g_assert_no_error(error);
    g_assert_true(tvd_tpm_public_check_ek(*ek, &error));
    g_assert_no_error(error);
    *ak = tvd_tpm_public_parse(g_bytes_get_data(ak_pub, NULL),
                               g_bytes_get_size(ak_pub), &error);
    g_assert_no_error(error);
    g_assert_true(tvd_tpm_public_check_ak(*ak, &error));
    /* our name computation against the TPM's */
    g_assert_true(tvd_tpm_public_check_name(*ak,
                                            g_bytes_get_data(ak_name, NULL),
                                            g_bytes_get_size(ak_name),
                                            &error));
    g_assert_no_error(error);
}

/* Writes tpm2-tools' credential file and runs ActivateCredential with the
 * EK's policy session; returns the recovered secret or NULL. */
static GBytes *
activate(Tpm *t, GBytes *id_object, GBytes *enc_secret)
{
    static const guint8 header[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
    g_autoptr(GByteArray) file = g_byte_array_new();
    gboolean ok;

    g_byte_array_append(file, header, sizeof(header));
    g_byte_array_append(file, g_bytes_get_data(id_object, NULL),
                        (guint)g_bytes_get_size(id_object));
    g_byte_array_append(file, g_bytes_get_data(enc_secret, NULL),
                        (guint)g_bytes_get_size(enc_secret));
    spit(t, "cred.bin", file->data, file->len);
    g_unlink("secret.out");
    g_assert_true(RUN(t, "tpm2_startauthsession", "--policy-session", "-S",
                      "session.ctx"));
    g_assert_true(RUN(t, "tpm2_policysecret", "-S", "session.ctx", "-c",
                      "0x4000000B"));
    ok = RUN(t, "tpm2_activatecredential", "-c", "ak.ctx", "-C", "ek.ctx",
             "-i", "cred.bin", "-o", "secret.out", "-P",
             "session:session.ctx");
    flush(t);
    return ok ? slurp(t, "secret.out") : NULL;
}

static void
check_credential(Tpm *t, const char *alg)
{
    g_autoptr(TvdTpmPublic) ek = NULL, ak = NULL;
    g_autoptr(GError) error = NULL;
    guint8 secret[32], name_copy[TVD_TPM_NAME_MAX];
    const guint8 *name;
    gsize name_len;

    if (!t->up) {
        return;
    }
    make_keys(t, alg, &ek, &ak);
    name = tvd_tpm_public_name(ak, &name_len);
    g_assert_cmpint(RAND_bytes(secret, sizeof(secret)), ==, 1);

    for (gsize len = 16; len <= 32; len += 16) {
        g_autoptr(GBytes) id = NULL, enc = NULL, out = NULL;

        g_assert_true(tvd_make_credential(ek, name, name_len, secret, len,
                                          &id, &enc, &error));
        g_assert_no_error(error);
        out = activate(t, id, enc);
        g_assert_nonnull(out);
        g_assert_cmpmem(g_bytes_get_data(out, NULL), g_bytes_get_size(out),
                        secret, len);
    }

    /* made for another name: the TPM's integrity check fails */
    {
        g_autoptr(GBytes) id = NULL, enc = NULL;

        memcpy(name_copy, name, name_len);
        name_copy[name_len - 1] ^= 0x01;
        g_assert_true(tvd_make_credential(ek, name_copy, name_len, secret, 32,
                                          &id, &enc, &error));
        g_assert_null(activate(t, id, enc));
    }
    /* a flipped byte in the encrypted identity / the seed */
    {
        g_autoptr(GBytes) id = NULL, enc = NULL, bad = NULL;
        gsize len;
        const guint8 *src;
        guint8 *d;

        g_assert_true(tvd_make_credential(ek, name, name_len, secret, 32, &id,
                                          &enc, &error));
        src = g_bytes_get_data(id, &len);
        d = g_memdup2(src, len);
        d[len - 1] ^= 0x01;
        bad = g_bytes_new_take(d, len);
        g_assert_null(activate(t, bad, enc));
        g_clear_pointer(&bad, g_bytes_unref);
        src = g_bytes_get_data(enc, &len);
        d = g_memdup2(src, len);
        d[len / 2] ^= 0x01;
        bad = g_bytes_new_take(d, len);
        g_assert_null(activate(t, id, bad));
    }
    /* caps: empty credential, one longer than the nameAlg digest */
    {
        g_autoptr(GBytes) id = NULL, enc = NULL;
        guint8 big[33] = { 0 };

        g_assert_false(tvd_make_credential(ek, name, name_len, big, 33, &id,
                                           &enc, &error));
        ERR(error, MALFORMED);
        g_clear_error(&error);
        g_assert_false(tvd_make_credential(ek, name, name_len, big, 0, &id,
                                           &enc, &error));
        ERR(error, MALFORMED);
        g_clear_error(&error);
        g_assert_false(tvd_make_credential(ek, name, 5, big, 8, &id, &enc,
                                           &error));
        ERR(error, MALFORMED);
        g_clear_error(&error);
        /* the AK is no EK */
        g_assert_false(tvd_make_credential(ak, name, name_len, big, 8, &id,
                                           &enc, &error));
        ERR(error, EK_ATTRIBUTES);
    }
}

/* The ECC EK of swtpm_setup's certificate is NIST P-384 with SHA-384 and
 * AES-256 (TCG template H-2), whose PolicyOR policy tpm2-tools cannot
 * satisfy; the crypto is the same for a primary key of the same type and
 * algorithms in the endorsement hierarchy with password authorisation, so
 * that is what proves MakeCredential for P-384 / SHA-384 / AES-256. */
static void
test_credential_ecc384(Tpm *t, gconstpointer data)
{
    static const guint8 header[8] = { 0xba, 0xdc, 0xc0, 0xde, 0, 0, 0, 1 };
    g_autoptr(GBytes) ek_pub = NULL, ak_name = NULL;
    g_autoptr(TvdTpmPublic) ek = NULL;
    g_autoptr(GError) error = NULL;
    guint8 secret[48];
    gsize name_len;
    const guint8 *name;

    (void)data;
    if (!t->up) {
        return;
    }
    g_assert_true(RUN(t, "tpm2_createprimary", "-C", "e", "-G",
                      "ecc384:aes256cfb", "-g", "sha384", "-a",
                      "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
                      "restricted|decrypt", "-c", "ek.ctx", "-o", "ek.pub",
                      "-f", "tss"));
    flush(t);
    g_assert_true(RUN(t, "tpm2_create", "-C", "ek.ctx", "-G",
                      "ecc256:ecdsa-sha256:null", "-g", "sha256", "-a",
                      "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|"
                      "restricted|sign", "-u", "ak.pub", "-r", "ak.priv"));
    flush(t);
    g_assert_true(RUN(t, "tpm2_load", "-C", "ek.ctx", "-u", "ak.pub", "-r",
                      "ak.priv", "-c", "ak.ctx", "-n", "ak.name"));
    flush(t);
    ek_pub = slurp(t, "ek.pub");
    ak_name = slurp(t, "ak.name");
    ek = tvd_tpm_public_parse(g_bytes_get_data(ek_pub, NULL),
                              g_bytes_get_size(ek_pub), &error);
    g_assert_no_error(error);
    g_assert_cmpuint(tvd_tpm_public_area(ek)->nameAlg, ==, TPM2_ALG_SHA384);
    name = g_bytes_get_data(ak_name, &name_len);
    g_assert_cmpint(RAND_bytes(secret, sizeof(secret)), ==, 1);

    for (int good = 1; good >= 0; good--) {
        g_autoptr(GBytes) id = NULL, enc = NULL, out = NULL;
        g_autoptr(GByteArray) file = g_byte_array_new();
        g_autofree guint8 *bad_name = g_memdup2(name, name_len);
        gboolean ok;

        bad_name[name_len - 1] ^= (guint8)!good;
        g_assert_true(tvd_make_credential(ek, bad_name, name_len, secret,
                                          sizeof(secret), &id, &enc, &error));
        g_assert_no_error(error);
        g_byte_array_append(file, header, sizeof(header));
        g_byte_array_append(file, g_bytes_get_data(id, NULL),
                            (guint)g_bytes_get_size(id));
        g_byte_array_append(file, g_bytes_get_data(enc, NULL),
                            (guint)g_bytes_get_size(enc));
        spit(t, "cred.bin", file->data, file->len);
        ok = RUN(t, "tpm2_activatecredential", "-c", "ak.ctx", "-C", "ek.ctx",
                 "-i", "cred.bin", "-o", "secret.out");
        flush(t);
        g_assert_cmpint(ok, ==, good);
        if (good) {
            out = slurp(t, "secret.out");
            g_assert_cmpmem(g_bytes_get_data(out, NULL),
                            g_bytes_get_size(out), secret, sizeof(secret));
        }
    }
}

static void
test_credential_rsa(Tpm *t, gconstpointer data)
{
    (void)data;
    check_credential(t, "rsa");
}

static void
test_credential_ecc(Tpm *t, gconstpointer data)
{
    (void)data;
    check_credential(t, "ecc");
}

static void
extend(Tpm *t, guint pcr, const char *bank, const guint8 *d, gsize len)
{
    g_autofree char *h = hex(d, len);
    g_autofree char *arg = g_strdup_printf("%u:%s=%s", pcr, bank, h);

    g_assert_true(RUN(t, "tpm2_pcrextend", arg));
}

static gboolean
quote(Tpm *t, const char *sel, const guint8 *nonce)
{
    g_autofree char *q = hex(nonce, 32);
    gboolean ok = RUN(t, "tpm2_quote", "-c", "ak.ctx", "-l", sel, "-q", q,
                      "-m", "quote.msg", "-s", "quote.sig", "-g", "sha256");

    flush(t);
    return ok && RUN(t, "tpm2_pcrread", sel, "-o", "pcrs.bin");
}

static gboolean
verify_files(TvdAkKey *ak, GBytes *attest, GBytes *sig, const guint8 *nonce,
             TPM2_ALG_ID bank, guint32 select, GBytes *pcrs, GError **error)
{
    TvdQuoteExpect e = { nonce, 32, bank, select,
                         g_bytes_get_data(pcrs, NULL), g_bytes_get_size(pcrs) };

    return tvd_quote_verify(ak, g_bytes_get_data(attest, NULL),
                            g_bytes_get_size(attest),
                            g_bytes_get_data(sig, NULL),
                            g_bytes_get_size(sig), &e, NULL, error);
}

static GBytes *
flip(GBytes *b, gsize i)
{
    gsize len;
    const guint8 *src = g_bytes_get_data(b, &len);
    guint8 *d = g_memdup2(src, len);

    d[i] ^= 0x01;
    return g_bytes_new_take(d, len);
}

static void
check_quote(Tpm *t, const char *alg)
{
    g_autoptr(TvdTpmPublic) ek = NULL, ak_pub = NULL;
    g_autoptr(TvdAkKey) ak = NULL;
    g_autoptr(GBytes) attest = NULL, sig = NULL, pcrs = NULL;
    g_autoptr(GBytes) bad = NULL;
    g_autoptr(GError) error = NULL;
    guint8 nonce[32], d[32];
    const guint32 select = (1u << 0) | (1u << 12) | (1u << 13);
    g_autoptr(TvdSynthKey) other = tvd_synth_ak_new(
        strcmp(alg, "rsa") == 0 ? TPM2_ALG_RSA : TPM2_ALG_ECC,
        strcmp(alg, "rsa") == 0 ? TPM2_ALG_RSASSA : TPM2_ALG_ECDSA, 0);
    g_autoptr(TvdAkKey) other_ak = NULL;

    if (!t->up) {
        return;
    }
    make_keys(t, alg, &ek, &ak_pub);
    ak = tvd_ak_key_new(ak_pub, &error);
    g_assert_no_error(error);
    memset(d, 0x5a, sizeof(d));
    extend(t, 12, "sha256", d, 32);
    extend(t, 13, "sha256", d, 32);
    extend(t, 13, "sha256", d, 32);
    g_assert_cmpint(RAND_bytes(nonce, 32), ==, 1);
    g_assert_true(quote(t, "sha256:0,12,13", nonce));
    attest = slurp(t, "quote.msg");
    sig = slurp(t, "quote.sig");
    pcrs = slurp(t, "pcrs.bin");
    g_assert_cmpuint(g_bytes_get_size(pcrs), ==, 3 * 32);

    g_assert_true(verify_files(ak, attest, sig, nonce, TPM2_ALG_SHA256,
                               select, pcrs, &error));
    g_assert_no_error(error);

    bad = flip(attest, g_bytes_get_size(attest) / 2);
    g_assert_false(verify_files(ak, bad, sig, nonce, TPM2_ALG_SHA256, select,
                                pcrs, &error));
    ERR(error, BAD_SIGNATURE);
    g_clear_error(&error);
    g_clear_pointer(&bad, g_bytes_unref);
    bad = flip(sig, g_bytes_get_size(sig) - 3);
    g_assert_false(verify_files(ak, attest, bad, nonce, TPM2_ALG_SHA256,
                                select, pcrs, &error));
    ERR(error, BAD_SIGNATURE);
    g_clear_error(&error);
    g_clear_pointer(&bad, g_bytes_unref);
    bad = flip(pcrs, 40);
    g_assert_false(verify_files(ak, attest, sig, nonce, TPM2_ALG_SHA256,
                                select, bad, &error));
    ERR(error, PCR_DIGEST_MISMATCH);
    g_clear_error(&error);
    nonce[0] ^= 0x01;
    g_assert_false(verify_files(ak, attest, sig, nonce, TPM2_ALG_SHA256,
                                select, pcrs, &error));
    ERR(error, NONCE_MISMATCH);
    g_clear_error(&error);
    nonce[0] ^= 0x01;
    g_assert_false(verify_files(ak, attest, sig, nonce, TPM2_ALG_SHA256,
                                select & ~1u, pcrs, &error));
    ERR(error, PCR_SELECTION_MISMATCH);
    g_clear_error(&error);
    other_ak = tvd_ak_key_new_from_public(g_bytes_get_data(other->public, NULL),
                                          g_bytes_get_size(other->public),
                                          &error);
    g_assert_no_error(error);
    g_assert_false(verify_files(other_ak, attest, sig, nonce, TPM2_ALG_SHA256,
                                select, pcrs, &error));
    ERR(error, BAD_SIGNATURE);
    g_clear_error(&error);
    /* and the good one still passes after the failures */
    g_assert_true(verify_files(ak, attest, sig, nonce, TPM2_ALG_SHA256,
                               select, pcrs, &error));
}

static void
test_quote_rsa(Tpm *t, gconstpointer data)
{
    (void)data;
    check_quote(t, "rsa");
}

static void
test_quote_ecc(Tpm *t, gconstpointer data)
{
    (void)data;
    check_quote(t, "ecc");
}

/* A log written the kernel's way, extended the kernel's way into PCR 10 of
 * the SHA-1 (template hash) and SHA-256 (H(template data)) banks, quoted by
 * the TPM, replayed by the verifier. */
static void
test_ima_replay(Tpm *t, gconstpointer data)
{
    g_autoptr(TvdTpmPublic) ek = NULL, ak_pub = NULL;
    g_autoptr(TvdAkKey) ak = NULL;
    g_autoptr(GByteArray) log = g_byte_array_new();
    g_autoptr(GPtrArray) entries =
        g_ptr_array_new_with_free_func((GDestroyNotify)tvd_ima_entry_free);
    g_autoptr(GError) error = NULL;
    guint8 digest[32], nonce[32];
    const guint n = 6;

    (void)data;
    if (!t->up) {
        return;
    }
    make_keys(t, "ecc", &ek, &ak_pub);
    ak = tvd_ak_key_new(ak_pub, &error);
    g_assert_no_error(error);
    for (guint i = 0; i < n; i++) {
        g_autofree char *path = g_strdup_printf("/usr/bin/prog%u", i);
        g_autoptr(GBytes) r = NULL;
        g_autoptr(TvdImaEntry) e = NULL;
        guint8 h[32];
        gsize dlen;
        const guint8 *dd;

        memset(digest, (int)i, sizeof(digest));
        r = tvd_synth_ima_record(10, i == 0 ? "boot_aggregate" : path, digest,
                                 i == 4);
        e = tvd_ima_entry_parse(g_bytes_get_data(r, NULL),
                                g_bytes_get_size(r), NULL, &error);
        g_assert_no_error(error);
        dd = g_bytes_get_data(e->template_data, &dlen);
        EVP_Digest(dd, dlen, h, NULL, EVP_sha256(), NULL);
        if (e->violation) {
            memset(h, 0xff, sizeof(h));
            extend(t, 10, "sha1", h, 20);
        } else {
            extend(t, 10, "sha1", e->template_hash, 20);
        }
        extend(t, 10, "sha256", h, 32);
        g_byte_array_append(log, g_bytes_get_data(r, NULL),
                            (guint)g_bytes_get_size(r));
    }
    g_assert_true(tvd_ima_log_parse(log->data, log->len, NULL, FALSE, entries,
                                    NULL, &error));
    g_assert_cmpuint(entries->len, ==, n);

    for (int b = 0; b < 2; b++) {
        TPM2_ALG_ID bank = b ? TPM2_ALG_SHA1 : TPM2_ALG_SHA256;
        g_autoptr(GBytes) attest = NULL, sig = NULL, pcrs = NULL;
        g_autoptr(TvdImaReplay) replay = tvd_ima_replay_new(bank, 10, &error);
        guint used = 0;

        g_assert_cmpint(RAND_bytes(nonce, 32), ==, 1);
        g_assert_true(quote(t, b ? "sha1:10" : "sha256:10", nonce));
        attest = slurp(t, "quote.msg");
        sig = slurp(t, "quote.sig");
        pcrs = slurp(t, "pcrs.bin");
        g_assert_true(verify_files(ak, attest, sig, nonce, bank, 1u << 10,
                                   pcrs, &error));
        g_assert_no_error(error);
        g_assert_true(tvd_ima_replay_match(replay, 0, entries,
                                           g_bytes_get_data(pcrs, NULL),
                                           g_bytes_get_size(pcrs), &used,
                                           &error));
        g_assert_no_error(error);
        g_assert_cmpuint(used, ==, n);
    }
}

/* ---- The round verifier on a real TPM's evidence ------------------------- */

/* A record logged by the guest and extended into the SHA-256 bank. */
static GBytes *
guest_measure(Tpm *t, guint pcr, const char *path, guint8 fill)
{
    guint8 digest[32], h[32];
    GBytes *r;
    g_autoptr(TvdImaEntry) e = NULL;
    gsize dlen;
    const guint8 *dd;

    memset(digest, fill, sizeof(digest));
    r = tvd_synth_ima_record(pcr, path, digest, FALSE);
    e = tvd_ima_entry_parse(g_bytes_get_data(r, NULL), g_bytes_get_size(r),
                            NULL, NULL);
    g_assert_nonnull(e);
    dd = g_bytes_get_data(e->template_data, &dlen);
    EVP_Digest(dd, dlen, h, NULL, EVP_sha256(), NULL);
    extend(t, pcr, "sha256", h, 32);
    return r;
}

/* The agent's answer to @req from tpm2_quote and tpm2_pcrread output. */
static void
guest_answer(Tpm *t, const TvdRoundRequest *req, GPtrArray *ima,
             GPtrArray *list, TvdMsgEvidence *ev)
{
    g_autoptr(GBytes) pcrs = NULL;
    const guint8 *v;
    guint n = 0;

    memset(ev, 0, sizeof(*ev));
    g_assert_cmphex(req->plan.pcr_select, ==, 1u << 10 | 1u << 13);
    g_assert_true(quote(t, "sha256:10,13", req->nonce));
    ev->attest = slurp(t, "quote.msg");
    ev->signature = slurp(t, "quote.sig");
    pcrs = slurp(t, "pcrs.bin");
    g_assert_cmpuint(g_bytes_get_size(pcrs), ==, 64);
    v = g_bytes_get_data(pcrs, NULL);
    ev->pcr_bank = TPM2_ALG_SHA256;
    for (guint i = 0; i < 24; i++) {
        if (req->plan.pcr_select & (1u << i)) {
            ev->pcrs[ev->n_pcrs].index = (guint8)i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(v + 32 * n++, 32);
            ev->n_pcrs++;
        }
    }
    for (guint k = 0; k < 2; k++) {
        GPtrArray *log = k ? list : ima;
        guint64 off = k ? req->agent_offset : req->ima_offset;

        ev->logs[k].kind = k ? TVD_LOG_AGENT_LIST : TVD_LOG_IMA_NG;
        ev->logs[k].offset = off;
        ev->logs[k].entries = g_ptr_array_new_with_free_func(
            (GDestroyNotify)g_bytes_unref);
        for (guint i = (guint)off; i < log->len; i++) {
            g_ptr_array_add(ev->logs[k].entries, g_bytes_ref(log->pdata[i]));
        }
    }
    ev->n_logs = 2;
}

/* Rounds of one binding on swtpm quotes: attested, PCR values given to
 * the wrong indices (the concatenation the TPM quoted, in message order)
 * refused, attested again on the same TPM boot. */
static void
test_round(Tpm *t, gconstpointer data)
{
    static const char text[] =
        "{\"tvd_policy\": 1, \"serial\": 1, \"domain\": {\"name\": \"s\", "
        "\"id\": 1}, \"membership\": {\"unlisted\": \"allow\", \"evidence\": "
        "{\"ima\": \"required\"}}, \"network\": {\"subnet\": \"10.0.0.0/24\","
        " \"roles\": [\"a\"]}}";
    g_autoptr(TvdTpmPublic) ek = NULL, ak_pub = NULL;
    g_autoptr(TvdAkKey) ak = NULL;
    g_autoptr(TvdPolicy) policy = NULL;
    g_autoptr(TvdRoundState) state = tvd_round_state_new();
    g_autoptr(TvdNonceStore) nonces = tvd_nonce_store_new(16,
                                                          60 * G_USEC_PER_SEC);
    g_autoptr(GPtrArray) ima = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_autoptr(GPtrArray) list = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    g_autoptr(GError) error = NULL;
    TvdRoundRequest req;
    TvdMsgEvidence ev;
    TvdRoundResult res;
    TvdRoundInput in = { 0 };
    TvdQuoteInfo first;

    (void)data;
    if (!t->up) {
        return;
    }
    make_keys(t, "ecc", &ek, &ak_pub);
    ak = tvd_ak_key_new(ak_pub, &error);
    g_assert_no_error(error);
    policy = tvd_policy_parse(text, strlen(text), NULL, NULL, &error);
    g_assert_no_error(error);
    g_ptr_array_add(ima, guest_measure(t, 10, "/init", 1));
    g_ptr_array_add(ima, guest_measure(t, 10, "/bin/busybox", 2));
    g_ptr_array_add(list, guest_measure(t, 13, "/usr/bin/tvd-agent", 3));
    in.policy = policy;
    in.ak = ak;
    in.agent_pcr = 13;
    in.agent_version = 0x010000;
    in.nonces = nonces;
    in.owner = "vm";
    in.evidence = &ev;

    g_assert_true(tvd_round_request_new(&req, state, policy,
                                        (1u << 0) | (1u << 1), nonces, "vm",
                                        &error));
    guest_answer(t, &req, ima, list, &ev);
    g_assert_true(tvd_round_verify(state, &req, &in, &res));
    tvd_msg_evidence_clear(&ev);
    g_assert_cmpint(res.verdict.cause, ==, TVD_CAUSE_ATTESTED);
    g_assert_cmpint(res.continuity, ==, TVD_TPM_FIRST_QUOTE);
    first = res.quote;

    g_ptr_array_add(ima, guest_measure(t, 10, "/sbin/init", 4));
    g_assert_true(tvd_round_request_new(&req, state, policy,
                                        (1u << 0) | (1u << 1), nonces, "vm",
                                        &error));
    g_assert_cmpuint(req.ima_offset, ==, 2);
    guest_answer(t, &req, ima, list, &ev);
    ev.pcrs[0].index = 13;
    ev.pcrs[1].index = 10;
    g_assert_false(tvd_round_verify(state, &req, &in, &res));
    g_assert_cmpint(res.verdict.cause, ==, TVD_CAUSE_PCR_DIGEST_MISMATCH);
    tvd_msg_evidence_clear(&ev);

    g_assert_true(tvd_round_request_new(&req, state, policy,
                                        (1u << 0) | (1u << 1), nonces, "vm",
                                        &error));
    guest_answer(t, &req, ima, list, &ev);
    g_assert_true(tvd_round_verify(state, &req, &in, &res));
    tvd_msg_evidence_clear(&ev);
    g_assert_cmpint(res.continuity, ==, TVD_TPM_SAME_BOOT);
    g_assert_cmpuint(res.quote.reset_count, ==, first.reset_count);
    g_assert_cmpuint(res.quote.clock, >=, first.clock);
    g_assert_cmpuint(res.entries_accepted[TVD_LOG_IMA_NG], ==, 1);
}

static GBytes *
nv_cert(Tpm *t, const char *index, const char *file)
{
    g_assert_true(RUN(t, "tpm2_nvread", index, "-o", file));
    return slurp(t, file);
}

static TvdTpmPublic *
create_ek(Tpm *t, const char *alg)
{
    g_autoptr(GBytes) pub = NULL;
    g_autoptr(GError) error = NULL;
    TvdTpmPublic *ek;

    g_assert_true(RUN(t, "tpm2_createek", "-G", alg, "-c", "ek.ctx", "-u",
                      "ek.pub", "-f", "tss"));
    flush(t);
    pub = slurp(t, "ek.pub");
    ek = tvd_tpm_public_parse(g_bytes_get_data(pub, NULL),
                              g_bytes_get_size(pub), &error);
    g_assert_no_error(error);
    g_assert_true(tvd_tpm_public_check_ek(ek, &error));
    g_assert_no_error(error);
    return ek;
}

/* The EK certificates swtpm_localca put in NV chain to its CA and carry the
 * EKs tpm2_createek derives; the RSA certificate does not fit the ECC EK,
 * and a look-alike CA is not trusted. */
static void
test_ek_cert(Tpm *t, gconstpointer data)
{
    g_autoptr(GBytes) rsa_cert = NULL, ecc_cert = NULL;
    g_autoptr(GBytes) issuer = NULL, root = NULL, fake = NULL;
    g_autoptr(GByteArray) bundle = g_byte_array_new();
    g_autoptr(TvdTpmPublic) ek_rsa = NULL, ek_ecc = NULL;
    g_autoptr(GError) error = NULL;
    const guint8 *rc, *ec, *is;
    gsize rl, el, il;

    (void)data;
    if (!t->up) {
        return;
    }
    rsa_cert = nv_cert(t, "0x01c00002", "ek-rsa.der");
    ecc_cert = nv_cert(t, "0x01c00016", "ek-ecc.der");
    issuer = slurp(t, "ca/issuercert.pem");
    root = slurp(t, "ca/swtpm-localca-rootca-cert.pem");
    ek_rsa = create_ek(t, "rsa");
    ek_ecc = create_ek(t, "ecc384");
    rc = g_bytes_get_data(rsa_cert, &rl);
    ec = g_bytes_get_data(ecc_cert, &el);
    is = g_bytes_get_data(issuer, &il);

    /* the intermediate alone, and the bundle of intermediate and root */
    g_assert_true(tvd_ek_cert_verify(rc, rl, is, il,
                                     tvd_tpm_public_pkey(ek_rsa), &error));
    g_assert_no_error(error);
    g_assert_true(tvd_ek_cert_verify(ec, el, is, il,
                                     tvd_tpm_public_pkey(ek_ecc), &error));
    g_assert_no_error(error);
    g_byte_array_append(bundle, is, (guint)il);
    g_byte_array_append(bundle, g_bytes_get_data(root, NULL),
                        (guint)g_bytes_get_size(root));
    g_assert_true(tvd_ek_cert_verify(rc, rl, bundle->data, bundle->len,
                                     tvd_tpm_public_pkey(ek_rsa), &error));
    g_assert_no_error(error);

    g_assert_false(tvd_ek_cert_verify(rc, rl, is, il,
                                      tvd_tpm_public_pkey(ek_ecc), &error));
    ERR(error, EK_KEY_MISMATCH);
    g_clear_error(&error);

    /* a self-signed CA with the same name, made by openssl */
    if (RUN(t, "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", "fake.key",
            "-out", "fake.pem", "-subj", "/CN=swtpm-localca", "-days", "1")) {
        fake = slurp(t, "fake.pem");
        g_assert_false(tvd_ek_cert_verify(rc, rl, g_bytes_get_data(fake, NULL),
                                          g_bytes_get_size(fake),
                                          tvd_tpm_public_pkey(ek_rsa),
                                          &error));
        ERR(error, EK_CERT_UNTRUSTED);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/verifier/swtpm/credential/rsa", Tpm, NULL, tpm_setup,
               test_credential_rsa, tpm_teardown);
    g_test_add("/verifier/swtpm/credential/ecc", Tpm, NULL, tpm_setup,
               test_credential_ecc, tpm_teardown);
    g_test_add("/verifier/swtpm/credential/ecc384", Tpm, NULL, tpm_setup,
               test_credential_ecc384, tpm_teardown);
    g_test_add("/verifier/swtpm/quote/rsa", Tpm, NULL, tpm_setup,
               test_quote_rsa, tpm_teardown);
    g_test_add("/verifier/swtpm/quote/ecc", Tpm, NULL, tpm_setup,
               test_quote_ecc, tpm_teardown);
    g_test_add("/verifier/swtpm/ima-replay", Tpm, NULL, tpm_setup,
               test_ima_replay, tpm_teardown);
    g_test_add("/verifier/swtpm/round", Tpm, NULL, tpm_setup, test_round,
               tpm_teardown);
    g_test_add("/verifier/swtpm/ek-cert", Tpm, "provision", tpm_setup,
               test_ek_cert, tpm_teardown);
    return g_test_run();
}
