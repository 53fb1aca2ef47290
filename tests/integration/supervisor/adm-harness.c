/*
 * Admission test and benchmark harness: see adm-harness.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "adm-harness.h"

#include <errno.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "frame.h"
#include "measure.h"
#include "policy.h"

#define HARNESS_ERROR (g_quark_from_static_string("adm-harness"))

void harness_agent_digest(guint8 out[32])
{
    static const char what[] = "the tvd-agent binary of the admission test";

    EVP_Digest(what, sizeof(what) - 1, out, NULL, EVP_sha256(), NULL);
}

gboolean harness_wait(HarnessCond cond, gpointer data, guint timeout_ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (!cond(data)) {
        if (g_get_monotonic_time() > end) {
            return FALSE;
        }
        if (!g_main_context_iteration(NULL, FALSE)) {
            g_usleep(500);
        }
    }
    return TRUE;
}

gboolean harness_have(const char *prog)
{
    g_autofree char *p = g_find_program_in_path(prog);

    return p != NULL;
}

static void die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static gboolean run(const char *const *argv, const char *log, GError **error)
{
    g_autoptr(GSubprocessLauncher) l =
        g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_autoptr(GSubprocess) p = NULL;

    g_subprocess_launcher_set_stdout_file_path(l, log);
    p = g_subprocess_launcher_spawnv(l, argv, error);
    if (!p || !g_subprocess_wait_check(p, NULL, error)) {
        g_autofree char *text = NULL;

        if (g_file_get_contents(log, &text, NULL, NULL)) {
            g_prefix_error(error, "%s (log: %s): ", argv[0], text);
        }
        return FALSE;
    }
    return TRUE;
}

/* ---- supervisor ------------------------------------------------------------ */

TvdSupervisor *harness_supervisor_new(const char *dir, const char *domain,
                                      const char *interval, GError **error)
{
    return harness_supervisor_new_timed(dir, domain, interval, "48h", error);
}

TvdSupervisor *harness_supervisor_new_timed(const char *dir,
                                            const char *domain,
                                            const char *interval,
                                            const char *deadline,
                                            GError **error)
{
    g_autofree char *conf = g_strdup_printf("[supervisor]\nstate_dir=%s\n",
                                            dir);
    g_autoptr(TvdSupervisor) sup = NULL;
    TvdSupervisorConfig *cfg;
    g_autofree char *key = g_build_filename(dir, "admin.key", NULL);
    g_autofree char *pub = NULL;
    g_autofree char *policy = NULL;
    g_autofree char *sig = NULL;
    g_autofree char *hex = NULL;
    g_autoptr(GBytes) pb = NULL;
    g_autoptr(GBytes) sb = NULL;
    guint8 digest[32];

    cfg = tvd_config_load_data(conf, strlen(conf), error);
    if (!cfg) {
        return NULL;
    }
    if (g_mkdir_with_parents(cfg->trusted_keys_dir, 0700) != 0) {
        g_set_error(error, HARNESS_ERROR, 1, "mkdir %s: %s",
                    cfg->trusted_keys_dir, g_strerror(errno));
        tvd_config_free(cfg);
        return NULL;
    }
    pub = g_build_filename(cfg->trusted_keys_dir, "admin.pem", NULL);
    sup = tvd_supervisor_new(cfg);
    if (!tvd_policy_keygen(TVD_POLICY_KEY_ED25519, key, pub, NULL, error) ||
        !tvd_supervisor_start(sup, error)) {
        return NULL;
    }
    harness_agent_digest(digest);
    hex = g_malloc(65);
    for (guint i = 0; i < 32; i++) {
        g_snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    policy = g_strdup_printf(
        "{\"tvd_policy\": 1, \"serial\": 1,\n"
        " \"domain\": {\"name\": \"%s\", \"id\": 100},\n"
        " \"membership\": {\"min_agent_version\": \"0.1\",\n"
        "   \"reference_digests\": [{\"path\": \"%s\", \"sha256\": \"%s\",\n"
        "                            \"required\": true}],\n"
        "   \"unlisted\": \"deny\"},\n"
        " \"attestation\": {\"interval\": \"%s\", \"deadline\": \"%s\",\n"
        "   \"on_failure\": \"quarantine\", \"measurement_pcr\": %u},\n"
        " \"network\": {\"subnet\": \"10.100.0.0/24\", \"encryption\": \"none\",\n"
        "   \"roles\": [\"web\"], \"default_role\": \"web\"},\n"
        " \"properties\": {\"secure_io\": false}}\n",
        domain, HARNESS_AGENT_PATH, hex, interval, deadline,
        HARNESS_AGENT_PCR);
    sig = tvd_policy_sign(policy, strlen(policy), key, error);
    if (!sig) {
        return NULL;
    }
    pb = g_bytes_new(policy, strlen(policy));
    sb = g_bytes_new(sig, strlen(sig));
    if (!tvd_supervisor_domain_create(sup, pb, sb, NULL, error)) {
        return NULL;
    }
    return g_steal_pointer(&sup);
}

TvdSupervisor *harness_supervisor_restart(const char *dir, GError **error)
{
    g_autofree char *conf = g_strdup_printf("[supervisor]\nstate_dir=%s\n",
                                            dir);
    TvdSupervisorConfig *cfg = tvd_config_load_data(conf, strlen(conf), error);
    g_autoptr(TvdSupervisor) sup = NULL;

    if (!cfg) {
        return NULL;
    }
    sup = tvd_supervisor_new(cfg);
    if (!tvd_supervisor_start(sup, error)) {
        return NULL;
    }
    return g_steal_pointer(&sup);
}

char *harness_supervisor_setup_conf(TvdSupervisor *sup)
{
    return g_build_filename(tvd_supervisor_config(sup)->state_dir, "vtpm-ca",
                            "swtpm_setup.conf", NULL);
}

/* ---- swtpm ------------------------------------------------------------------- */

struct HarnessSwtpm {
    char *dir;
    char *sock;
    char *tcti;
    GSubprocess *proc;
};

static void rmtree(const char *dir)
{
    g_autoptr(GDir) d = dir ? g_dir_open(dir, 0, NULL) : NULL;
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(dir, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) &&
            !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rmtree(p);
        } else {
            g_unlink(p);
        }
    }
    if (dir) {
        g_rmdir(dir);
    }
}

/* An swtpm_setup.conf of a CA in @dir/ca: one the supervisor never saw. */
static char *own_ca_conf(const char *dir, GError **error)
{
    g_autofree char *ca = g_build_filename(dir, "ca", NULL);
    g_autofree char *setup = g_build_filename(dir, "swtpm_setup.conf", NULL);
    g_autofree char *localca = g_build_filename(dir, "swtpm-localca.conf",
                                                NULL);
    g_autofree char *opts = g_build_filename(dir, "swtpm-localca.options",
                                             NULL);
    g_autofree char *t1 = g_strdup_printf(
        "create_certs_tool = swtpm_localca\n"
        "create_certs_tool_config = %s\ncreate_certs_tool_options = %s\n"
        "active_pcr_banks = sha256\n", localca, opts);
    g_autofree char *t2 = g_strdup_printf(
        "statedir = %s\nsigningkey = %s/signkey.pem\n"
        "issuercert = %s/issuercert.pem\ncertserial = %s/certserial\n",
        ca, ca, ca, ca);

    if (g_mkdir(ca, 0700) != 0) {
        g_set_error(error, HARNESS_ERROR, 1, "mkdir %s: %s", ca,
                    g_strerror(errno));
        return NULL;
    }
    if (!g_file_set_contents(setup, t1, -1, error) ||
        !g_file_set_contents(localca, t2, -1, error) ||
        !g_file_set_contents(opts, "--platform-manufacturer other\n"
                             "--platform-version 1\n"
                             "--platform-model foreign\n", -1, error)) {
        return NULL;
    }
    return g_steal_pointer(&setup);
}

static gboolean can_connect(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gboolean ok;

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

HarnessSwtpm *harness_swtpm_new(const char *setup_conf, GError **error)
{
    g_autoptr(HarnessSwtpm) s = g_new0(HarnessSwtpm, 1);
    g_autofree char *own = NULL;
    g_autofree char *state = NULL;
    g_autofree char *log = NULL;
    g_autofree char *state_arg = NULL;
    g_autofree char *server = NULL;
    g_autofree char *ctrl = NULL;
    g_autofree char *ctrl_path = NULL;
    g_autofree char *swtpm_log = NULL;
    g_autoptr(GSubprocessLauncher) l = NULL;

    s->dir = g_dir_make_tmp("tvd-adm-tpm-XXXXXX", error);
    if (!s->dir) {
        return NULL;
    }
    if (!setup_conf) {
        own = own_ca_conf(s->dir, error);
        if (!own) {
            return NULL;
        }
        setup_conf = own;
    }
    state = g_build_filename(s->dir, "state", NULL);
    log = g_build_filename(s->dir, "setup.log", NULL);
    g_mkdir(state, 0700);
    {
        const char *argv[] = {
            "swtpm_setup", "--tpm2", "--tpm-state", state, "--create-ek-cert",
            "--config", setup_conf, "--logfile", log, NULL,
        };

        if (!run(argv, log, error)) {
            return NULL;
        }
    }
    s->sock = g_build_filename(s->dir, "swtpm.sock", NULL);
    s->tcti = g_strdup_printf("swtpm:path=%s", s->sock);
    state_arg = g_strdup_printf("dir=%s", state);
    server = g_strdup_printf("type=unixio,path=%s", s->sock);
    ctrl_path = g_strdup_printf("%s.ctrl", s->sock);
    ctrl = g_strdup_printf("type=unixio,path=%s", ctrl_path);
    swtpm_log = g_build_filename(s->dir, "swtpm.log", NULL);
    {
        const char *argv[] = {
            "swtpm", "socket", "--tpm2", "--tpmstate", state_arg, "--server",
            server, "--ctrl", ctrl, "--flags", "not-need-init,startup-clear",
            NULL,
        };

        l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_subprocess_launcher_set_stdout_file_path(l, swtpm_log);
        g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
        s->proc = g_subprocess_launcher_spawnv(l, argv, error);
        if (!s->proc) {
            return NULL;
        }
    }
    /* Ready when both sockets accept a connection. */
    for (guint i = 0; i < 1000; i++) {
        if (can_connect(s->sock) && can_connect(ctrl_path)) {
            return g_steal_pointer(&s);
        }
        g_usleep(10000);
    }
    g_set_error(error, HARNESS_ERROR, 1, "swtpm did not create %s", s->sock);
    return NULL;
}

const char *harness_swtpm_tcti(HarnessSwtpm *s)
{
    return s->tcti;
}

void harness_swtpm_free(HarnessSwtpm *s)
{
    if (!s) {
        return;
    }
    if (s->proc) {
        g_subprocess_send_signal(s->proc, SIGTERM);
        g_subprocess_wait(s->proc, NULL, NULL);
        g_object_unref(s->proc);
    }
    rmtree(s->dir);
    g_free(s->dir);
    g_free(s->sock);
    g_free(s->tcti);
    g_free(s);
}

/* ---- the agent ------------------------------------------------------------- */

HarnessAgent *harness_agent_new(const char *tcti, GError **error)
{
    g_autoptr(HarnessAgent) a = g_new0(HarnessAgent, 1);
    TvdAgentTpmConfig cfg = { .tcti = tcti };
    gint64 t0 = g_get_monotonic_time();

    a->list = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    a->tpm = tvd_agent_tpm_new(&cfg, error);
    if (!a->tpm ||
        !tvd_agent_tpm_get_ek(a->tpm, TVD_AGENT_TPM_ALG_RSA, &a->ek_public,
                              &a->ek_cert, error) ||
        !tvd_agent_tpm_ensure_ak(a->tpm, TVD_AGENT_TPM_ALG_RSA, &a->ak_public,
                                 &a->ak_name, error)) {
        return NULL;
    }
    a->tpm_us += g_get_monotonic_time() - t0;
    return g_steal_pointer(&a);
}

void harness_agent_free(HarnessAgent *a)
{
    if (!a) {
        return;
    }
    g_clear_pointer(&a->tpm, tvd_agent_tpm_free);
    g_clear_pointer(&a->ek_public, g_bytes_unref);
    g_clear_pointer(&a->ek_cert, g_bytes_unref);
    g_clear_pointer(&a->ak_public, g_bytes_unref);
    g_clear_pointer(&a->ak_name, g_bytes_unref);
    g_ptr_array_unref(a->list);
    g_free(a);
}

gboolean harness_agent_measure(HarnessAgent *a, const char *path,
                               const guint8 sha256[32], GError **error)
{
    guint8 extend[32];
    GBytes *rec = tvd_measure_record(HARNESS_AGENT_PCR, path, sha256, extend);
    gint64 t0 = g_get_monotonic_time();
    gboolean ok = tvd_agent_tpm_pcr_extend(a->tpm, HARNESS_AGENT_PCR, extend,
                                           32, error);

    a->tpm_us += g_get_monotonic_time() - t0;
    if (!ok) {
        g_bytes_unref(rec);
        return FALSE;
    }
    g_ptr_array_add(a->list, rec);
    return TRUE;
}

GBytes *harness_agent_hello(HarnessAgent *a)
{
    TvdMsg msg = { .type = TVD_MSG_AGENT_HELLO };
    TvdMsgAgentHello *h = &msg.u.agent_hello;
    g_autoptr(GError) err = NULL;
    GBytes *b;

    h->agent_version = TVD_AGENT_VERSION(0, 1, 0);
    g_strlcpy(h->boot_id, "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
              sizeof(h->boot_id));
    h->ek_type = TVD_EK_RSA;
    h->ek_cert = a->ek_cert;
    h->ek_public = a->ek_public;
    h->ak_public = a->ak_public;
    h->ak_name = a->ak_name;
    h->ak_alg = TVD_AK_RSA2048_RSASSA_SHA256;
    h->agent_pcr = HARNESS_AGENT_PCR;
    h->capabilities = TVD_CAP_AGENT_LIST | TVD_CAP_PCR_SHA256;
    b = tvd_msg_encode(&msg, &err);
    g_assert_no_error(err);
    return b;
}

GBytes *harness_agent_activate(HarnessAgent *a, GBytes *challenge,
                               GError **error)
{
    TvdMsgCredentialChallenge c = { 0 };
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_RESPONSE };
    g_autoptr(GBytes) secret = NULL;
    gint64 t0;

    if (!tvd_msg_credential_challenge_decode(challenge, &c, error)) {
        return NULL;
    }
    t0 = g_get_monotonic_time();
    secret = tvd_agent_tpm_activate_credential(a->tpm, TVD_AGENT_TPM_ALG_RSA,
                                               TVD_AGENT_TPM_ALG_RSA,
                                               c.credential_blob,
                                               c.encrypted_secret, error);
    a->tpm_us += g_get_monotonic_time() - t0;
    tvd_msg_credential_challenge_clear(&c);
    if (!secret) {
        return NULL;
    }
    msg.u.credential_response.secret = secret;
    return tvd_msg_encode(&msg, error);
}

gboolean harness_agent_evidence(HarnessAgent *a, GBytes *request,
                                TvdMsg *evidence, GError **error)
{
    TvdMsgAttestRequest r = { 0 };
    g_auto(TvdAgentTpmQuote) q = { 0 };
    TvdMsgEvidence *ev;
    const guint8 *vals;
    guint idx = 0;
    gint64 t0;
    gboolean ok;

    memset(evidence, 0, sizeof(*evidence));
    if (!tvd_msg_attest_request_decode(request, &r, error)) {
        return FALSE;
    }
    t0 = g_get_monotonic_time();
    ok = tvd_agent_tpm_quote(a->tpm, TVD_AGENT_TPM_ALG_RSA, r.pcr_select,
                             r.nonce, sizeof(r.nonce), &q, error);
    a->tpm_us += g_get_monotonic_time() - t0;
    if (!ok) {
        tvd_msg_attest_request_clear(&r);
        return FALSE;
    }
    evidence->type = TVD_MSG_EVIDENCE;
    ev = &evidence->u.evidence;
    ev->attest = g_bytes_ref(q.attest);
    ev->signature = g_bytes_ref(q.signature);
    ev->pcr_bank = TVD_TPM_ALG_SHA256;
    vals = g_bytes_get_data(q.pcr_values, NULL);
    for (guint i = 0; i < 24; i++) {
        if (q.pcr_mask & (1u << i)) {
            ev->pcrs[ev->n_pcrs].index = i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(vals + 32 * idx++, 32);
            ev->n_pcrs++;
        }
    }
    ev->n_logs = 1;
    ev->logs[0].kind = TVD_LOG_AGENT_LIST;
    ev->logs[0].offset = r.agent_offset;
    ev->logs[0].entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    for (guint64 i = r.agent_offset; i < a->list->len; i++) {
        g_ptr_array_add(ev->logs[0].entries, g_bytes_ref(a->list->pdata[i]));
    }
    tvd_msg_attest_request_clear(&r);
    return TRUE;
}

/* ---- links ----------------------------------------------------------------- */

typedef enum { LINK_QTEST, LINK_FAKE } LinkKind;

struct HarnessLink {
    LinkKind kind;
    guint32 seq;
    GQueue in;                  /* GBytes AGENT payloads for the agent */

    /* qtest */
    GSubprocess *qemu;
    int qfd;
    GString *line;
    char *qmp_path;             /* QMP socket, for a system reset */
    guint64 bar0;
    guint64 bar2;
    guint32 half;

    /* fake device */
    int fd;
    guint watch;
    TvdFrameReader *reader;
    guint32 state;
    guint32 epoch;
    guint32 status;
    gboolean broken;
};

/* ---- qtest ---- */

#define BAR0_ADDR   0xe0000000ull
#define BAR2_ADDR   0xe1000000ull
#define TVD_DEVFN   (4u << 3)

static char *qt_cmd(HarnessLink *l, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static char *qt_cmd(HarnessLink *l, const char *fmt, ...)
{
    g_autofree char *cmd = NULL;
    va_list ap;
    gsize off = 0;
    gsize len;

    va_start(ap, fmt);
    cmd = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    len = strlen(cmd);
    while (off < len) {
        ssize_t n = write(l->qfd, cmd + off, len - off);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        g_assert_cmpint(n, >, 0);
        off += n;
    }
    for (;;) {
        char *nl = memchr(l->line->str, '\n', l->line->len);
        char buf[65536];
        ssize_t n;

        if (nl) {
            g_autofree char *ans = g_strndup(l->line->str,
                                             nl - l->line->str);

            g_string_erase(l->line, 0, nl - l->line->str + 1);
            if (g_str_has_prefix(ans, "IRQ")) {
                continue;
            }
            if (!g_str_has_prefix(ans, "OK")) {
                g_error("qtest: '%s' answered '%s'", g_strchomp(cmd), ans);
            }
            return g_steal_pointer(&ans);
        }
        n = read(l->qfd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            g_error("qtest: QEMU went away during '%s'", g_strchomp(cmd));
        }
        g_string_append_len(l->line, buf, n);
    }
}

static guint64 qt_value(const char *ans)
{
    return g_ascii_strtoull(ans + 3, NULL, 0);
}

static guint32 pci_cfg_read(HarnessLink *l, guint reg)
{
    g_free(qt_cmd(l, "outl 0xcf8 0x%x\n", 0x80000000u | (TVD_DEVFN << 8) | reg));
    {
        g_autofree char *a = qt_cmd(l, "inl 0xcfc\n");

        return qt_value(a);
    }
}

static void pci_cfg_write(HarnessLink *l, guint reg, guint32 val)
{
    g_free(qt_cmd(l, "outl 0xcf8 0x%x\n", 0x80000000u | (TVD_DEVFN << 8) | reg));
    g_free(qt_cmd(l, "outl 0xcfc 0x%x\n", val));
}

guint32 harness_link_reg(HarnessLink *l, guint32 reg)
{
    if (l->kind == LINK_FAKE) {
        return reg == TVD_REG_STATE ? l->state
             : reg == TVD_REG_STATUS ? l->status : 0;
    }
    {
        g_autofree char *a = qt_cmd(l, "readl 0x%" G_GINT64_MODIFIER "x\n",
                                    l->bar0 + reg);

        return qt_value(a);
    }
}

static void reg_write(HarnessLink *l, guint32 reg, guint32 val)
{
    g_free(qt_cmd(l, "writel 0x%" G_GINT64_MODIFIER "x 0x%x\n", l->bar0 + reg,
                  val));
}

static int listen_unix(const char *path, GError **error)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
    g_unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 1) != 0) {
        g_set_error(error, HARNESS_ERROR, 1, "listen on %s: %s", path,
                    g_strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* The guest's side: find the device, place its BARs, enable decoding. */
static gboolean map_device(HarnessLink *l, GError **error)
{
    guint32 id = pci_cfg_read(l, 0x00);

    if (id != ((guint32)TVD_PCI_DEVICE_ID << 16 | TVD_PCI_VENDOR_ID)) {
        g_set_error(error, HARNESS_ERROR, 1, "no tvd device at 00:04.0 "
                    "(id %08x)", id);
        return FALSE;
    }
    pci_cfg_write(l, 0x10, (guint32)BAR0_ADDR);
    pci_cfg_write(l, 0x18, (guint32)BAR2_ADDR);
    pci_cfg_write(l, 0x1c, (guint32)(BAR2_ADDR >> 32));
    pci_cfg_write(l, 0x04, 0x0006);     /* memory space, bus master */
    l->bar0 = BAR0_ADDR;
    l->bar2 = BAR2_ADDR;
    if (harness_link_reg(l, TVD_REG_MAGIC) != TVD_MAGIC) {
        g_set_error(error, HARNESS_ERROR, 1, "BAR0 does not decode");
        return FALSE;
    }
    l->half = harness_link_reg(l, TVD_REG_MBOX_SIZE) / 2;
    return TRUE;
}

/* One QMP command on a fresh connection; its answer must be a return. */
static gboolean qmp_command(const char *path, const char *command,
                            GError **error)
{
    g_autoptr(GSocketClient) c = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    g_autoptr(GSocketConnection) sc = NULL;
    g_autoptr(GDataInputStream) in = NULL;
    GOutputStream *out;
    const char *cmds[] = { "{\"execute\": \"qmp_capabilities\"}\n", command };

    sc = g_socket_client_connect(c, G_SOCKET_CONNECTABLE(addr), NULL, error);
    if (!sc) {
        return FALSE;
    }
    in = g_data_input_stream_new(
        g_io_stream_get_input_stream(G_IO_STREAM(sc)));
    out = g_io_stream_get_output_stream(G_IO_STREAM(sc));
    g_free(g_data_input_stream_read_line(in, NULL, NULL, error)); /* greeting */
    for (guint i = 0; i < G_N_ELEMENTS(cmds); i++) {
        if (!g_output_stream_write_all(out, cmds[i], strlen(cmds[i]), NULL,
                                       NULL, error)) {
            return FALSE;
        }
        for (;;) {
            g_autofree char *line = g_data_input_stream_read_line(in, NULL,
                                                                  NULL, error);

            if (!line) {
                g_prefix_error(error, "QMP %s: ", cmds[i]);
                return FALSE;
            }
            if (strstr(line, "\"return\"")) {
                break;
            }
            if (strstr(line, "\"error\"")) {
                g_set_error(error, HARNESS_ERROR, 1, "QMP %s: %s", cmds[i],
                            line);
                return FALSE;
            }
        }
    }
    return TRUE;
}

gboolean harness_link_system_reset(HarnessLink *l, GError **error)
{
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    g_return_val_if_fail(l->kind == LINK_QTEST, FALSE);
    if (!qmp_command(l->qmp_path, "{\"execute\": \"system_reset\"}\n",
                     error)) {
        return FALSE;
    }
    /* The reset clears the PCI command register: then map again. */
    while (pci_cfg_read(l, 0x04) & 0x0002) {
        if (g_get_monotonic_time() > end) {
            g_set_error(error, HARNESS_ERROR, 1, "the system reset did not "
                        "happen within 10 s");
            return FALSE;
        }
        g_usleep(10 * 1000);
    }
    return map_device(l, error);
}

HarnessLink *harness_qtest_link_new(const char *qemu, const char *dir,
                                    const char *adopt_socket,
                                    const char *name, const char *domain,
                                    guint32 mailbox_size, GError **error)
{
    g_autoptr(HarnessLink) l = g_new0(HarnessLink, 1);
    g_autofree char *qsock = g_strdup_printf("%s/qtest-%s.sock", dir, name);
    g_autofree char *qarg = g_strdup_printf("unix:%s", qsock);
    g_autofree char *chr = g_strdup_printf("socket,id=sup,path=%s,"
                                           "reconnect-ms=100", adopt_socket);
    g_autofree char *dev = NULL;
    g_autofree char *log = g_strdup_printf("%s/qemu-%s.log", dir, name);
    g_autofree char *qmp = NULL;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    struct pollfd pfd;
    int lfd;

    l->kind = LINK_QTEST;
    l->qmp_path = g_strdup_printf("%s/qmp-%s.sock", dir, name);
    qmp = g_strdup_printf("unix:%s,server=on,wait=off", l->qmp_path);
    l->qfd = -1;
    l->fd = -1;
    l->line = g_string_new(NULL);
    g_queue_init(&l->in);
    dev = mailbox_size
          ? g_strdup_printf("tvd,chardev=sup,netdev=n0,domain=%s,addr=04.0,"
                            "mailbox-size=%u", domain, mailbox_size)
          : g_strdup_printf("tvd,chardev=sup,netdev=n0,domain=%s,addr=04.0",
                            domain);
    lfd = listen_unix(qsock, error);
    if (lfd < 0) {
        return NULL;
    }
    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
    g_subprocess_launcher_set_stdout_file_path(launcher, log);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL,
                                          NULL);
    {
        const char *argv[] = {
            qemu, "-machine", "pc", "-accel", "qtest", "-qtest", qarg,
            "-display", "none", "-nodefaults", "-name", name,
            "-qmp", qmp, "-chardev", chr, "-netdev", "user,id=n0",
            "-device", "e1000,netdev=n0,romfile=,addr=05.0", "-device", dev,
            NULL,
        };

        l->qemu = g_subprocess_launcher_spawnv(launcher, argv, error);
    }
    if (!l->qemu) {
        close(lfd);
        return NULL;
    }
    pfd.fd = lfd;
    pfd.events = POLLIN;
    if (poll(&pfd, 1, 30000) != 1) {
        g_set_error(error, HARNESS_ERROR, 1, "QEMU did not connect to %s "
                    "(see %s)", qsock, log);
        close(lfd);
        return NULL;
    }
    l->qfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    close(lfd);
    g_unlink(qsock);
    if (l->qfd < 0) {
        g_set_error(error, HARNESS_ERROR, 1, "accept: %s", g_strerror(errno));
        return NULL;
    }
    if (!map_device(l, error)) {
        return NULL;
    }
    return g_steal_pointer(&l);
}

static gboolean qt_send_raw(HarnessLink *l, const void *frame, gsize len,
                            GError **error)
{
    gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    gsize put = MIN(len, (gsize)l->half);
    g_autofree char *b64 = g_base64_encode(frame, put);

    while (harness_link_reg(l, TVD_REG_STATUS) & TVD_STATUS_G2H_BUSY) {
        if (g_get_monotonic_time() > end) {
            g_set_error(error, HARNESS_ERROR, 1, "G2H stays busy");
            return FALSE;
        }
        g_main_context_iteration(NULL, FALSE);
        g_usleep(200);
    }
    g_free(qt_cmd(l, "b64write 0x%" G_GINT64_MODIFIER "x %" G_GSIZE_FORMAT
                  " %s\n", l->bar2, put, b64));
    reg_write(l, TVD_REG_G2H_LEN, (guint32)len);
    reg_write(l, TVD_REG_G2H_DOORBELL, TVD_DOORBELL_SEND);
    return TRUE;
}

static GBytes *qt_take(HarnessLink *l, GError **error)
{
    guint32 len = harness_link_reg(l, TVD_REG_H2G_LEN);
    g_autofree char *ans = NULL;
    g_autofree guint8 *data = NULL;
    gsize n;
    struct tvd_frame_header hdr;
    GBytes *payload = NULL;

    if (len == 0) {
        return NULL;
    }
    ans = qt_cmd(l, "b64read 0x%" G_GINT64_MODIFIER "x %u\n",
                 l->bar2 + l->half, len);
    data = g_base64_decode(ans + 3, &n);
    reg_write(l, TVD_REG_H2G_ACK, 1);
    if (!tvd_frame_decode(data, n, TVD_FRAME_MAX_PAYLOAD, &hdr, &payload,
                          error)) {
        return NULL;
    }
    return payload;
}

/* ---- fake device ---- */

static gboolean fake_write(HarnessLink *l, GBytes *frame, GError **error)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(frame, &len);
    gsize off = 0;

    while (off < len) {
        ssize_t n = send(l->fd, d + off, len - off, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = { .fd = l->fd, .events = POLLOUT };

            g_main_context_iteration(NULL, FALSE);
            poll(&p, 1, 1);
            continue;
        }
        if (n < 0) {
            g_set_error(error, HARNESS_ERROR, 1, "send: %s", g_strerror(errno));
            return FALSE;
        }
        off += n;
    }
    return TRUE;
}

static gboolean fake_send(HarnessLink *l, guint8 type, const void *body,
                          gsize len, GError **error)
{
    g_autoptr(GBytes) f = tvd_frame_encode(type, ++l->seq, body, len, error);

    return f && fake_write(l, f, error);
}

static void fake_frame(HarnessLink *l, const struct tvd_frame_header *hdr,
                       GBytes *payload)
{
    gsize len;
    const void *d = g_bytes_get_data(payload, &len);

    switch (hdr->type) {
    case TVD_FRAME_SET_STATE: {
        struct tvd_set_state st;
        struct tvd_device_event ev = { .event = TVD_EVENT_STATE_APPLIED };
        guint8 body[TVD_DEVICE_EVENT_SIZE];

        if (!tvd_set_state_decode(d, len, &st, NULL)) {
            return;
        }
        /* The gate of docs/device.md, fail-mode closed, link enabled. */
        l->state = st.state;
        l->epoch++;
        l->status = TVD_STATUS_SUPERVISOR | TVD_STATUS_CONFIRMED |
                    (st.state == TVD_STATE_ADMITTED ? TVD_STATUS_LINK_UP : 0);
        ev.arg0 = st.state;
        ev.arg1 = l->epoch;
        ev.status = l->status;
        if (tvd_device_event_encode(&ev, body, NULL)) {
            fake_send(l, TVD_FRAME_DEVICE_EVENT, body, sizeof(body), NULL);
        }
        break;
    }
    case TVD_FRAME_AGENT:
        g_queue_push_tail(&l->in, g_bytes_ref(payload));
        break;
    default:
        break;
    }
}

static gboolean fake_readable(gint fd, GIOCondition cond, gpointer data)
{
    HarnessLink *l = data;
    guint8 buf[65536];

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            return G_SOURCE_CONTINUE;
        }
        if (n <= 0) {
            l->broken = TRUE;
            l->watch = 0;
            return G_SOURCE_REMOVE;
        }
        tvd_frame_reader_feed(l->reader, buf, n);
        for (;;) {
            struct tvd_frame_header hdr;
            g_autoptr(GBytes) payload = NULL;
            TvdFrameReaderStatus st = tvd_frame_reader_next(l->reader, &hdr,
                                                            &payload, NULL);

            if (st == TVD_FRAME_READER_ERROR) {
                l->broken = TRUE;
                l->watch = 0;
                return G_SOURCE_REMOVE;
            }
            if (st == TVD_FRAME_READER_NEED_MORE) {
                break;
            }
            fake_frame(l, &hdr, payload);
        }
    }
}

HarnessLink *harness_fake_link_new(const char *adopt_socket, const char *name,
                                   const char *domain, GError **error)
{
    g_autoptr(HarnessLink) l = g_new0(HarnessLink, 1);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct tvd_device_hello h = { 0 };
    guint8 body[TVD_DEVICE_HELLO_SIZE];

    l->kind = LINK_FAKE;
    l->qfd = -1;
    g_queue_init(&l->in);
    l->reader = tvd_frame_reader_new(TVD_FRAME_MAX_PAYLOAD);
    l->state = TVD_STATE_PENDING;
    l->status = TVD_STATUS_SUPERVISOR;
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    g_strlcpy(sa.sun_path, adopt_socket, sizeof(sa.sun_path));
    if (l->fd < 0 || connect(l->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        g_set_error(error, HARNESS_ERROR, 1, "connect %s: %s", adopt_socket,
                    g_strerror(errno));
        return NULL;
    }
    h.abi_version = TVD_ABI_VERSION;
    h.mailbox_size = 64 * 1024;
    h.state = TVD_STATE_PENDING;
    h.reason = TVD_REASON_AWAITING;
    h.fail_mode = TVD_FAIL_CLOSED;
    h.status = l->status;
    if (!tvd_frame_set_string(h.vm_id, sizeof(h.vm_id), name, error) ||
        !tvd_frame_set_string(h.name, sizeof(h.name), name, error) ||
        !tvd_frame_set_string(h.domain, sizeof(h.domain), domain, error) ||
        !tvd_device_hello_encode(&h, body, error) ||
        !fake_send(l, TVD_FRAME_DEVICE_HELLO, body, sizeof(body), error)) {
        return NULL;
    }
    l->watch = g_unix_fd_add(l->fd, G_IO_IN | G_IO_HUP | G_IO_ERR,
                             fake_readable, l);
    return g_steal_pointer(&l);
}

void harness_link_free(HarnessLink *l)
{
    if (!l) {
        return;
    }
    if (l->qemu) {
        g_subprocess_force_exit(l->qemu);
        g_subprocess_wait(l->qemu, NULL, NULL);
        g_object_unref(l->qemu);
    }
    if (l->qfd >= 0) {
        close(l->qfd);
    }
    if (l->watch) {
        g_source_remove(l->watch);
    }
    if (l->fd >= 0) {
        close(l->fd);
    }
    g_clear_pointer(&l->reader, tvd_frame_reader_free);
    if (l->line) {
        g_string_free(l->line, TRUE);
    }
    g_free(l->qmp_path);
    g_queue_clear_full(&l->in, (GDestroyNotify)g_bytes_unref);
    g_free(l);
}

/* ---- both ---- */

gboolean harness_link_send_raw(HarnessLink *l, const void *frame, gsize len,
                               GError **error)
{
    if (l->kind == LINK_QTEST) {
        return qt_send_raw(l, frame, len, error);
    }
    {
        g_autoptr(GBytes) b = g_bytes_new(frame, len);

        return fake_write(l, b, error);
    }
}

gboolean harness_link_send(HarnessLink *l, GBytes *payload, GError **error)
{
    g_autoptr(GBytes) f = tvd_frame_encode_bytes(TVD_FRAME_AGENT, ++l->seq,
                                                 payload, error);

    if (!f) {
        return FALSE;
    }
    return harness_link_send_raw(l, g_bytes_get_data(f, NULL),
                                 g_bytes_get_size(f), error);
}

static gboolean on_timeout(gpointer data)
{
    *(gboolean *)data = TRUE;
    return G_SOURCE_REMOVE;
}

GBytes *harness_link_recv(HarnessLink *l, guint timeout_ms, GError **error)
{
    if (l->kind == LINK_QTEST) {
        gint64 end = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

        for (;;) {
            GError *err = NULL;
            GBytes *p;

            while (g_main_context_iteration(NULL, FALSE)) {
            }
            p = qt_take(l, &err);
            if (p || err) {
                if (err) {
                    g_propagate_error(error, err);
                }
                return p;
            }
            if (g_get_monotonic_time() > end) {
                break;
            }
            g_usleep(300);
        }
    } else {
        gboolean timed_out = FALSE;
        guint t = g_timeout_add(timeout_ms, on_timeout, &timed_out);

        while (g_queue_is_empty(&l->in) && !timed_out && !l->broken) {
            g_main_context_iteration(NULL, TRUE);
        }
        if (!timed_out) {
            g_source_remove(t);
        }
        if (!g_queue_is_empty(&l->in)) {
            return g_queue_pop_head(&l->in);
        }
        if (l->broken) {
            g_set_error(error, HARNESS_ERROR, 2, "the supervisor closed the "
                        "connection");
            return NULL;
        }
    }
    g_set_error(error, HARNESS_ERROR, 3, "no message for the agent within "
                "%u ms", timeout_ms);
    return NULL;
}

gboolean harness_link_recv_msg(HarnessLink *l, guint16 type, TvdMsg *msg,
                               GBytes **payload, guint timeout_ms,
                               GError **error)
{
    for (;;) {
        g_autoptr(GBytes) p = harness_link_recv(l, timeout_ms, error);

        if (!p || !tvd_msg_decode(p, msg, error)) {
            return FALSE;
        }
        if (msg->type == type) {
            if (payload) {
                *payload = g_steal_pointer(&p);
            }
            return TRUE;
        }
        tvd_msg_clear(msg);
    }
}

gboolean harness_admit(HarnessAgent *a, HarnessLink *l, guint32 *state,
                       GError **error)
{
    g_autoptr(GBytes) hello = harness_agent_hello(a);
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) evidence = NULL;
    TvdMsg msg;
    TvdMsg ev;
    gint64 t0 = g_get_monotonic_time();

    if (!harness_link_send(l, hello, error) ||
        !harness_link_recv_msg(l, TVD_MSG_CREDENTIAL_CHALLENGE, &msg,
                               &challenge, 30000, error)) {
        return FALSE;
    }
    a->wait_us[0] += g_get_monotonic_time() - t0;
    tvd_msg_clear(&msg);
    response = harness_agent_activate(a, challenge, error);
    t0 = g_get_monotonic_time();
    if (!response || !harness_link_send(l, response, error) ||
        !harness_link_recv_msg(l, TVD_MSG_ATTEST_REQUEST, &msg, &request,
                               30000, error)) {
        return FALSE;
    }
    a->wait_us[1] += g_get_monotonic_time() - t0;
    tvd_msg_clear(&msg);
    if (!harness_agent_evidence(a, request, &ev, error)) {
        return FALSE;
    }
    evidence = tvd_msg_encode(&ev, error);
    tvd_msg_clear(&ev);
    t0 = g_get_monotonic_time();
    if (!evidence || !harness_link_send(l, evidence, error) ||
        !harness_link_recv_msg(l, TVD_MSG_MEMBERSHIP, &msg, NULL, 30000,
                               error)) {
        return FALSE;
    }
    a->wait_us[2] += g_get_monotonic_time() - t0;
    *state = msg.u.membership.state;
    tvd_msg_clear(&msg);
    return TRUE;
}

/* ---- many agents on one main loop ------------------------------------------- */

GBytes *harness_link_take(HarnessLink *l)
{
    return g_queue_pop_head(&l->in);
}

gboolean harness_link_broken(HarnessLink *l)
{
    return l->broken;
}
