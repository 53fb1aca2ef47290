/*
 * The admission path end to end, without a guest kernel: the supervisor
 * core in-process (a trusted administrator key, a signed domain policy), a
 * real QEMU running the tvd device with -accel qtest whose chardev connects
 * to the supervisor's adoption socket, and a test driver that plays the
 * guest agent by speaking QEMU's qtest protocol: it programs the device's
 * BARs through PCI configuration space and moves every frame through the
 * device's real mailbox. The agent's TPM is a real swtpm provisioned by the
 * supervisor's own vTPM CA, used through the guest agent's TPM library.
 *
 * A good agent is admitted and the device opens the link; a tampered quote,
 * a replayed quote, a wrong AK, an EK from a foreign CA, PCR values that do
 * not match the quote, a file the policy does not know, malformed and
 * oversize messages are each rejected with their precise reason, nothing
 * crashes, and the supervisor admits a good agent afterwards.
 *
 * Needs TVD_QEMU (scripts/build-qemu), swtpm, swtpm_setup, swtpm_localca.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib/gstdio.h>
#include <openssl/evp.h>

#include "adm-harness.h"
#include "audit.h"
#include "frame.h"

#define VM          "vm1"
#define DOMAIN      "blue"

typedef struct {
    char *dir;
    TvdSupervisor *sup;
    HarnessSwtpm *tpm;
    HarnessAgent *agent;
    HarnessLink *link;
} Fixture;

static const char *qemu_binary(void)
{
    const char *q = g_getenv("TVD_QEMU");

    return q && g_file_test(q, G_FILE_TEST_IS_EXECUTABLE) ? q : NULL;
}

static gboolean prerequisites(void)
{
    static const char *const progs[] = {
        "swtpm", "swtpm_setup", "swtpm_localca", NULL,
    };

    if (!qemu_binary()) {
        g_test_skip("TVD_QEMU does not name the QEMU built by "
                    "scripts/build-qemu: no QEMU to run the tvd device");
        g_printerr("# SKIP: set TVD_QEMU (scripts/run-tests does)\n");
        return FALSE;
    }
    for (guint i = 0; progs[i]; i++) {
        if (!harness_have(progs[i])) {
            g_autofree char *why = g_strdup_printf("%s is not installed "
                                                   "(swtpm, swtpm-tools)",
                                                   progs[i]);

            g_test_skip(why);
            g_printerr("# SKIP: %s\n", why);
            return FALSE;
        }
    }
    return TRUE;
}

static TvdVm *vm_of(Fixture *f)
{
    return tvd_supervisor_vm_find(f->sup, VM);
}

static gboolean adopted(gpointer data)
{
    Fixture *f = data;

    return vm_of(f) && tvd_vm_connected(vm_of(f));
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *conf = NULL;
    g_auto(GStrv) timings = NULL;
    guint8 digest[32];

    if (!prerequisites()) {
        return;
    }
    f->dir = g_dir_make_tmp("tvd-adm-XXXXXX", &err);
    g_assert_no_error(err);
    /* Re-attestation every second only where a test waits for round 2:
     * elsewhere a round must not start behind the test's back. */
    /* "INTERVAL" or "INTERVAL/DEADLINE" (policy durations). */
    timings = g_strsplit(data ? data : "1h", "/", 2);
    f->sup = harness_supervisor_new_timed(f->dir, DOMAIN, timings[0],
                                          timings[1] ? timings[1] : "48h",
                                          &err);
    g_assert_no_error(err);
    /* The VM's vTPM: EK certificate from the supervisor's own vTPM CA. */
    conf = harness_supervisor_setup_conf(f->sup);
    f->tpm = harness_swtpm_new(conf, &err);
    g_assert_no_error(err);
    f->agent = harness_agent_new(harness_swtpm_tcti(f->tpm), &err);
    g_assert_no_error(err);
    harness_agent_digest(digest);
    g_assert_true(harness_agent_measure(f->agent, HARNESS_AGENT_PATH, digest,
                                        &err));
    g_assert_no_error(err);
    f->link = harness_qtest_link_new(qemu_binary(), f->dir,
                                     tvd_supervisor_config(f->sup)->adopt_socket,
                                     VM, DOMAIN, 0, &err);
    g_assert_no_error(err);
    g_assert_true(harness_wait(adopted, f, 30000));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_PENDING);
    /* The operator binds the adopted VM to its vTPM's EK. */
    g_assert_true(tvd_supervisor_vm_register_ek(f->sup, VM, f->agent->ek_cert,
                                                &err));
    g_assert_no_error(err);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    g_clear_pointer(&f->link, harness_link_free);
    g_clear_pointer(&f->agent, harness_agent_free);
    g_clear_pointer(&f->tpm, harness_swtpm_free);
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    if (f->dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
    }
}

/* ---- steps ---------------------------------------------------------------- */

static void send_payload(Fixture *f, GBytes *payload)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(harness_link_send(f->link, payload, &err));
    g_assert_no_error(err);
}

static GBytes *expect(Fixture *f, guint16 type)
{
    g_autoptr(GError) err = NULL;
    GBytes *payload = NULL;
    TvdMsg msg;

    if (!harness_link_recv_msg(f->link, type, &msg, &payload, 30000, &err)) {
        g_error("waiting for %s: %s", tvd_msg_type_name(type), err->message);
    }
    tvd_msg_clear(&msg);
    return payload;
}

/* Hello and credential activation; answers the first ATTEST_REQUEST. */
static GBytes *bind_agent(Fixture *f, HarnessAgent *a)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) hello = harness_agent_hello(a);
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;

    send_payload(f, hello);
    challenge = expect(f, TVD_MSG_CREDENTIAL_CHALLENGE);
    response = harness_agent_activate(a, challenge, &err);
    g_assert_no_error(err);
    send_payload(f, response);
    return expect(f, TVD_MSG_ATTEST_REQUEST);
}

static void evidence_for(Fixture *f, HarnessAgent *a, GBytes *request,
                         TvdMsg *ev)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(harness_agent_evidence(a, request, ev, &err));
    g_assert_no_error(err);
}

static GBytes *encode(TvdMsg *msg)
{
    g_autoptr(GError) err = NULL;
    GBytes *b = tvd_msg_encode(msg, &err);

    g_assert_no_error(err);
    return b;
}

/* The MEMBERSHIP answer, and the supervisor's record of the VM: its state,
 * its cause (by name) and a part of its detail. */
static void expect_verdict(Fixture *f, guint32 state, const char *cause,
                           const char *detail)
{
    g_autoptr(GError) err = NULL;
    TvdMsg msg;
    TvdVm *vm = vm_of(f);

    g_assert_true(harness_link_recv_msg(f->link, TVD_MSG_MEMBERSHIP, &msg,
                                        NULL, 30000, &err));
    g_assert_no_error(err);
    g_test_message("verdict: %s: %s", tvd_state_name(tvd_vm_state(vm)),
                   tvd_vm_reason(vm));
    g_assert_cmpuint(msg.u.membership.state, ==, state);
    tvd_msg_clear(&msg);
    g_assert_cmpint(tvd_vm_state(vm), ==, state);
    if (cause) {
        g_assert_cmpstr(tvd_cause_name(tvd_vm_cause(vm)), ==, cause);
    }
    if (detail) {
        g_assert_nonnull(strstr(tvd_vm_detail(vm), detail));
    }
}

static gboolean link_up(gpointer data)
{
    Fixture *f = data;

    return tvd_vm_connected(vm_of(f)) &&
           (tvd_vm_device_status(vm_of(f)) & TVD_STATUS_LINK_UP);
}

static gboolean link_down_confirmed(gpointer data)
{
    Fixture *f = data;
    guint32 st = tvd_vm_device_status(vm_of(f));

    return tvd_vm_connected(vm_of(f)) && (st & TVD_STATUS_CONFIRMED) &&
           !(st & TVD_STATUS_LINK_UP);
}

/* A good agent after whatever came before: admitted, link up. */
static void admit_good(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    guint32 state = 0;

    g_assert_true(harness_admit(f->agent, f->link, &state, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_ADMITTED);
    g_assert_cmpint(tvd_vm_cause(vm_of(f)), ==, TVD_CAUSE_ATTESTED);
    g_assert_true(harness_wait(link_up, f, 30000));
    /* What the guest sees in the device's registers. */
    g_assert_cmpuint(harness_link_reg(f->link, TVD_REG_STATE), ==,
                     TVD_STATE_ADMITTED);
    g_assert_true(harness_link_reg(f->link, TVD_REG_STATUS) &
                  TVD_STATUS_LINK_UP);
}

static GBytes *flip(GBytes *b, gsize at)
{
    gsize len;
    guint8 *d = g_memdup2(g_bytes_get_data(b, &len), g_bytes_get_size(b));

    g_assert_cmpuint(at, <, len);
    d[at] ^= 0x01;
    return g_bytes_new_take(d, len);
}

/* ---- cases ------------------------------------------------------------------ */

static void test_admitted(Fixture *f, gconstpointer data)
{
    if (!f->sup) {
        return;
    }
    /* Pending: the supervisor confirmed the state, the link stays down. */
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    g_assert_false(harness_link_reg(f->link, TVD_REG_STATUS) &
                   TVD_STATUS_LINK_UP);
    admit_good(f);
}

static void test_tampered_quote(Fixture *f, gconstpointer data)
{
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f, f->agent);
    evidence_for(f, f->agent, request, &ev);
    /* One bit of the signed TPMS_ATTEST (inside its extraData). */
    bad = flip(ev.u.evidence.attest, 20);
    g_bytes_unref(ev.u.evidence.attest);
    ev.u.evidence.attest = bad;
    payload = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, payload);
    expect_verdict(f, TVD_STATE_QUARANTINED, "bad-signature", NULL);
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    admit_good(f);
}

static void test_replayed_nonce(Fixture *f, gconstpointer data)
{
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) first = NULL;
    g_autoptr(GBytes) again = NULL;
    TvdMsg ev;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f, f->agent);
    evidence_for(f, f->agent, request, &ev);
    first = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, first);
    expect_verdict(f, TVD_STATE_ADMITTED, "attested", NULL);
    /* The next round (interval 1 s here) gets the previous round's quote. */
    again = expect(f, TVD_MSG_ATTEST_REQUEST);
    send_payload(f, first);
    expect_verdict(f, TVD_STATE_QUARANTINED, "nonce-reused", NULL);
}

static void test_wrong_ak(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) other_public = NULL;
    g_autoptr(GBytes) other_name = NULL;
    g_autoptr(GBytes) hello = NULL;
    g_autoptr(GBytes) challenge = NULL;
    GBytes *good_name;
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_RESPONSE };
    guint8 wrong[32];

    if (!f->sup) {
        return;
    }
    /* The AK public area of one key with the name of another (the ECC AK
     * of the same TPM): MakeCredential would bind the wrong object. */
    g_assert_true(tvd_agent_tpm_ensure_ak(f->agent->tpm, TVD_AGENT_TPM_ALG_ECC,
                                          &other_public, &other_name, &err));
    g_assert_no_error(err);
    good_name = f->agent->ak_name;
    f->agent->ak_name = other_name;
    hello = harness_agent_hello(f->agent);
    f->agent->ak_name = good_name;
    send_payload(f, hello);
    expect_verdict(f, TVD_STATE_QUARANTINED, "name-mismatch", "ak");

    /* A credential response that is not what ActivateCredential gives. */
    g_clear_pointer(&hello, g_bytes_unref);
    hello = harness_agent_hello(f->agent);
    send_payload(f, hello);
    challenge = expect(f, TVD_MSG_CREDENTIAL_CHALLENGE);
    memset(wrong, 0x5a, sizeof(wrong));
    msg.u.credential_response.secret = g_bytes_new(wrong, sizeof(wrong));
    {
        g_autoptr(GBytes) p = encode(&msg);

        send_payload(f, p);
    }
    g_bytes_unref(msg.u.credential_response.secret);
    expect_verdict(f, TVD_STATE_QUARANTINED, "credential-mismatch", NULL);
    admit_good(f);
}

static void test_wrong_ek(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HarnessSwtpm) foreign = NULL;
    g_autoptr(HarnessAgent) agent = NULL;
    g_autoptr(GBytes) hello = NULL;

    if (!f->sup) {
        return;
    }
    /* A TPM whose EK certificate comes from a CA the host never trusted. */
    foreign = harness_swtpm_new(NULL, &err);
    g_assert_no_error(err);
    agent = harness_agent_new(harness_swtpm_tcti(foreign), &err);
    g_assert_no_error(err);
    g_assert_nonnull(agent->ek_cert);
    /* It cannot be registered for the VM, and is not the EK bound to it. */
    g_assert_false(tvd_supervisor_vm_register_ek(f->sup, VM, agent->ek_cert,
                                                 &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID);
    g_assert_nonnull(strstr(err->message, "does not chain"));
    g_clear_error(&err);
    hello = harness_agent_hello(agent);
    send_payload(f, hello);
    expect_verdict(f, TVD_STATE_QUARANTINED, "ek-not-bound", NULL);
    admit_good(f);
}

static void test_pcr_mismatch(Fixture *f, gconstpointer data)
{
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f, f->agent);
    evidence_for(f, f->agent, request, &ev);
    g_assert_cmpuint(ev.u.evidence.n_pcrs, >=, 1);
    bad = flip(ev.u.evidence.pcrs[0].digest, 31);
    g_bytes_unref(ev.u.evidence.pcrs[0].digest);
    ev.u.evidence.pcrs[0].digest = bad;
    payload = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, payload);
    expect_verdict(f, TVD_STATE_QUARANTINED, "pcr-digest-mismatch", NULL);
    admit_good(f);
}

static void test_unknown_digest(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    static const char evil[] = "not in any policy";
    guint8 digest[32];
    guint32 state = 0;

    if (!f->sup) {
        return;
    }
    EVP_Digest(evil, sizeof(evil) - 1, digest, NULL, EVP_sha256(), NULL);
    g_assert_true(harness_agent_measure(f->agent, "/usr/bin/evil", digest,
                                        &err));
    g_assert_no_error(err);
    g_assert_true(harness_admit(f->agent, f->link, &state, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state, ==, TVD_STATE_QUARANTINED);
    g_assert_cmpint(tvd_vm_cause(vm_of(f)), ==,
                    TVD_CAUSE_POLICY_UNKNOWN_DIGEST);
    g_assert_nonnull(strstr(tvd_vm_detail(vm_of(f)), "/usr/bin/evil"));
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
}

/* An EVIDENCE whose attest is twice TVD_MSG_ATTEST_MAX: a valid GVariant
 * in normal form, but over the message's caps. */
static GBytes *oversize_evidence(void)
{
    g_autofree guint8 *big = g_malloc0(2 * TVD_MSG_ATTEST_MAX);
    guint8 zeros[32] = { 0 };
    GVariantBuilder pcrs;
    GVariantBuilder logs;
    GVariant *body;
    g_autoptr(GVariant) env = NULL;

    g_variant_builder_init(&pcrs, G_VARIANT_TYPE("a(yay)"));
    g_variant_builder_add(&pcrs, "(y@ay)", (guint8)HARNESS_AGENT_PCR,
                          g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, zeros,
                                                    32, 1));
    g_variant_builder_init(&logs, G_VARIANT_TYPE("a(ytbay)"));
    body = g_variant_new("(@ay@ayqa(yay)a(ytbay))",
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, big,
                                                   2 * TVD_MSG_ATTEST_MAX, 1),
                         g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE, zeros,
                                                   32, 1),
                         (guint16)TVD_TPM_ALG_SHA256, &pcrs, &logs);
    env = g_variant_ref_sink(g_variant_new("(qqv)",
                                           (guint16)TVD_MSG_PROTOCOL_VERSION,
                                           (guint16)TVD_MSG_EVIDENCE, body));
    return g_variant_get_data_as_bytes(env);
}

static void test_malformed(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) garbage = NULL;
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) big = NULL;
    g_autofree guint8 *frame = NULL;
    guint8 junk[200];
    guint32 errors;
    guint32 half;

    if (!f->sup) {
        return;
    }
    for (guint i = 0; i < sizeof(junk); i++) {
        junk[i] = (guint8)(i * 37 + 11);
    }
    garbage = g_bytes_new(junk, sizeof(junk));

    /* Before any hello: the message is dropped, the VM stays as it was. */
    send_payload(f, garbage);
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_PENDING);

    /* While a credential response is awaited: quarantined, "malformed". */
    {
        g_autoptr(GBytes) hello = harness_agent_hello(f->agent);

        send_payload(f, hello);
    }
    challenge = expect(f, TVD_MSG_CREDENTIAL_CHALLENGE);
    send_payload(f, garbage);
    expect_verdict(f, TVD_STATE_QUARANTINED, "message-malformed", NULL);

    /* An oversize field while evidence is awaited. */
    request = bind_agent(f, f->agent);
    big = oversize_evidence();
    send_payload(f, big);
    expect_verdict(f, TVD_STATE_QUARANTINED, "message-malformed", "attest");

    /* Frames the device itself refuses never reach the supervisor: one
     * longer than the mailbox half, one with a bad magic. */
    half = harness_link_reg(f->link, TVD_REG_MBOX_SIZE) / 2;
    errors = harness_link_reg(f->link, TVD_REG_GUEST_ERRORS);
    frame = g_malloc0(half);
    tvd_put_le32(frame, TVD_FRAME_MAGIC);
    frame[4] = TVD_FRAME_VERSION;
    frame[5] = TVD_FRAME_AGENT;
    tvd_put_le32(frame + 8, half);              /* 16 + half > half */
    g_assert_true(harness_link_send_raw(f->link, frame, 16 + (gsize)half,
                                        &err));
    g_assert_no_error(err);
    g_assert_cmpuint(harness_link_reg(f->link, TVD_REG_GUEST_ERRORS), ==,
                     errors + 1);
    g_assert_cmpuint(harness_link_reg(f->link, TVD_REG_LAST_ERROR), ==,
                     TVD_ERR_BAD_LENGTH);
    tvd_put_le32(frame, 0xdeadbeef);
    tvd_put_le32(frame + 8, 16);
    g_assert_true(harness_link_send_raw(f->link, frame, 32, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(harness_link_reg(f->link, TVD_REG_GUEST_ERRORS), ==,
                     errors + 2);
    g_assert_cmpuint(harness_link_reg(f->link, TVD_REG_LAST_ERROR), ==,
                     TVD_ERR_BAD_FRAME);

    /* Nothing crashed: the same VM is admitted by a good agent. */
    admit_good(f);
}

/*
 * The fast layer: a fake device on the adoption socket sends what a
 * device never would (an oversize frame header, garbage on the stream);
 * the supervisor drops that connection and keeps serving the real VM.
 */
static void test_fake_device_oversize(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    const char *adopt;
    g_autoptr(HarnessLink) fake = NULL;
    g_autoptr(HarnessLink) fake2 = NULL;
    guint8 hdr[16] = { 0 };
    guint8 junk[64];

    if (!f->sup) {
        return;
    }
    adopt = tvd_supervisor_config(f->sup)->adopt_socket;
    fake = harness_fake_link_new(adopt, "fake1", DOMAIN, &err);
    g_assert_no_error(err);
    tvd_put_le32(hdr, TVD_FRAME_MAGIC);
    hdr[4] = TVD_FRAME_VERSION;
    hdr[5] = TVD_FRAME_AGENT;
    tvd_put_le32(hdr + 8, 0xfffffff0u);         /* beyond any cap */
    g_assert_true(harness_link_send_raw(fake, hdr, sizeof(hdr), &err));
    g_assert_no_error(err);
    g_assert_null(harness_link_recv(fake, 30000, &err));
    g_assert_nonnull(err);
    g_assert_nonnull(strstr(err->message, "closed"));
    g_clear_error(&err);
    g_assert_nonnull(tvd_supervisor_vm_find(f->sup, "fake1"));
    g_assert_false(tvd_vm_connected(tvd_supervisor_vm_find(f->sup, "fake1")));

    fake2 = harness_fake_link_new(adopt, "fake2", DOMAIN, &err);
    g_assert_no_error(err);
    memset(junk, 0xa5, sizeof(junk));
    g_assert_true(harness_link_send_raw(fake2, junk, sizeof(junk), &err));
    g_assert_null(harness_link_recv(fake2, 30000, &err));
    g_assert_nonnull(err);
    g_clear_error(&err);

    admit_good(f);
}

/*
 * The supervisor dies in the middle of a re-attestation round and starts
 * again on its state: the VM is still ADMITTED, its device reconnects and
 * gets that state pushed (link up again), and the agent, asked for a fresh
 * hello, is admitted by the new supervisor.
 */
static void test_restart_mid_admission(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    request = expect(f, TVD_MSG_ATTEST_REQUEST);    /* round 2, unanswered */
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    f->sup = harness_supervisor_restart(f->dir, &err);
    g_assert_no_error(err);
    g_assert_nonnull(vm_of(f));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_ADMITTED);
    g_assert_true(harness_wait(adopted, f, 30000));
    g_assert_true(harness_wait(link_up, f, 30000));
    admit_good(f);
}

/* Runs the main loop for @ms, dropping what the supervisor sends. */
static void drain(Fixture *f, guint ms)
{
    gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;

    while (g_get_monotonic_time() < end) {
        g_autoptr(GError) err = NULL;
        GBytes *b = harness_link_recv(
            f->link, MAX((end - g_get_monotonic_time()) / 1000, 1), &err);

        g_clear_pointer(&b, g_bytes_unref);
    }
}

/*
 * Attack: an admitted guest re-sends a valid AGENT_HELLO every second and
 * never answers a challenge or a request. The hellos must not postpone the
 * deadline: with interval 1 s and deadline 3 s it is quarantined with
 * deadline-missed within 4 s (+ margin) of its last verified evidence, and
 * its link goes down.
 */
static void test_hello_does_not_postpone(Fixture *f, gconstpointer data)
{
    gint64 admitted;
    gint64 took;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    admitted = g_get_monotonic_time();
    while (tvd_vm_state(vm_of(f)) == TVD_STATE_ADMITTED &&
           g_get_monotonic_time() - admitted < 20 * G_USEC_PER_SEC) {
        g_autoptr(GBytes) hello = harness_agent_hello(f->agent);

        send_payload(f, hello);
        drain(f, 1000);
    }
    took = g_get_monotonic_time() - admitted;
    g_test_message("quarantined %.1f s after the last verified evidence",
                   took / 1e6);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_QUARANTINED);
    g_assert_cmpstr(tvd_cause_name(tvd_vm_cause(vm_of(f))), ==,
                    "deadline-missed");
    /* interval + deadline, plus a hello's second and a loaded machine */
    g_assert_cmpint(took, <=, (1 + 3 + 3) * G_USEC_PER_SEC);
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
}

static gboolean disconnected(gpointer data)
{
    Fixture *f = data;

    return vm_of(f) && !tvd_vm_connected(vm_of(f));
}

static gboolean left_admitted(gpointer data)
{
    Fixture *f = data;

    return vm_of(f) && tvd_vm_state(vm_of(f)) != TVD_STATE_ADMITTED;
}

/*
 * Attack: the VM's QEMU is replaced by another process under the same name
 * (an adopted VM). The new device's hello must not get the stored ADMITTED:
 * PENDING with cause new-qemu-process, link down, until fresh evidence.
 */
static void test_new_qemu_process(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    g_clear_pointer(&f->link, harness_link_free);
    g_assert_true(harness_wait(disconnected, f, 30000));
    f->link = harness_qtest_link_new(qemu_binary(), f->dir,
                                     tvd_supervisor_config(f->sup)->adopt_socket,
                                     VM, DOMAIN, 0, &err);
    g_assert_no_error(err);
    g_assert_true(harness_wait(adopted, f, 30000));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_PENDING);
    g_assert_cmpstr(tvd_cause_name(tvd_vm_cause(vm_of(f))), ==,
                    "new-qemu-process");
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    g_assert_false(harness_link_reg(f->link, TVD_REG_STATUS) &
                   TVD_STATUS_LINK_UP);
    /* Fresh evidence admits it again. */
    admit_good(f);
}

/*
 * Attack: the guest is reset while the supervisor is away (the device can
 * send no RESET event then). The device latches it and says so in its next
 * hello: PENDING with cause guest-reset, link down.
 */
static void test_reset_while_away(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    g_assert_true(harness_link_system_reset(f->link, &err));
    g_assert_no_error(err);
    f->sup = harness_supervisor_restart(f->dir, &err);
    g_assert_no_error(err);
    g_assert_true(harness_wait(adopted, f, 30000));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_PENDING);
    g_assert_cmpstr(tvd_cause_name(tvd_vm_cause(vm_of(f))), ==,
                    "guest-reset");
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    admit_good(f);
}

/*
 * A supervisor restart keeps a member ADMITTED (no flap: its device gets
 * the state back, link up), but its deadline keeps running from its last
 * verified evidence: without new evidence it is quarantined by
 * last_verified + interval + deadline, not that long after the restart.
 */
static void test_restart_deadline_runs(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    gint64 admitted;
    gint64 took;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    admitted = g_get_monotonic_time();
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    g_usleep(G_USEC_PER_SEC);
    f->sup = harness_supervisor_restart(f->dir, &err);
    g_assert_no_error(err);
    if (g_get_monotonic_time() - admitted < 4 * G_USEC_PER_SEC) {
        g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_ADMITTED);
        g_assert_true(harness_wait(adopted, f, 30000));
    }
    g_assert_true(harness_wait(left_admitted, f, 30000));
    took = g_get_monotonic_time() - admitted;
    g_test_message("quarantined %.1f s after the last verified evidence",
                   took / 1e6);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_QUARANTINED);
    g_assert_cmpstr(tvd_cause_name(tvd_vm_cause(vm_of(f))), ==,
                    "deadline-missed");
    g_assert_cmpint(took, <=, (1 + 5 + 3) * G_USEC_PER_SEC);
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
}

/*
 * Attack (cuckoo): two adopted VMs, each bound to its own vTPM's EK, both
 * certificates from the host's CA. The guest of vm1 relays its attestation
 * to vm2's vTPM: vm2's EK, AK and certificate in vm1's hello. Refused with
 * ek-not-bound (a certificate under the CA is not enough).
 */
static void test_relay_to_other_vtpm(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *conf = NULL;
    g_autoptr(HarnessSwtpm) tpm2 = NULL;
    g_autoptr(HarnessAgent) agent2 = NULL;
    g_autoptr(HarnessLink) link2 = NULL;
    g_autoptr(GBytes) hello = NULL;

    if (!f->sup) {
        return;
    }
    conf = harness_supervisor_setup_conf(f->sup);
    tpm2 = harness_swtpm_new(conf, &err);
    g_assert_no_error(err);
    agent2 = harness_agent_new(harness_swtpm_tcti(tpm2), &err);
    g_assert_no_error(err);
    link2 = harness_fake_link_new(tvd_supervisor_config(f->sup)->adopt_socket,
                                  "vm2", DOMAIN, &err);
    g_assert_no_error(err);
    while (!tvd_supervisor_vm_find(f->sup, "vm2")) {
        g_main_context_iteration(NULL, TRUE);
    }
    g_assert_true(tvd_supervisor_vm_register_ek(f->sup, "vm2",
                                                agent2->ek_cert, &err));
    g_assert_no_error(err);
    /* vm1's guest presents vm2's vTPM. */
    hello = harness_agent_hello(agent2);
    send_payload(f, hello);
    expect_verdict(f, TVD_STATE_QUARANTINED, "ek-not-bound", NULL);
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    /* vm1's own vTPM is still admitted. */
    admit_good(f);
}

/*
 * Attack: guest bytes in a rejection reason. A measured path of invalid
 * UTF-8 ends in the verdict's detail: escaped (\\xNN), so the VM record
 * is valid JSON, the audit entry is taken and verifies, and a restarted
 * supervisor restores the VM as it was (not as a fresh PENDING one).
 */
static void test_invalid_utf8_path(Fixture *f, gconstpointer data)
{
    static const char evil[] = "echo evil\n";
    g_autoptr(GError) err = NULL;
    TvdAuditReport report = { 0 };
    guint8 digest[32];
    guint32 state = 0;

    if (!f->sup) {
        return;
    }
    EVP_Digest(evil, sizeof(evil) - 1, digest, NULL, EVP_sha256(), NULL);
    g_assert_true(harness_agent_measure(f->agent, "/usr/bin/ev\xff\xfeil\x01",
                                        digest, &err));
    g_assert_no_error(err);
    g_assert_true(harness_admit(f->agent, f->link, &state, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state, ==, TVD_STATE_QUARANTINED);
    g_test_message("detail: %s", tvd_vm_detail(vm_of(f)));
    g_assert_nonnull(strstr(tvd_vm_detail(vm_of(f)), "ev\\xff\\xfeil\\x01"));
    g_assert_true(harness_wait(link_down_confirmed, f, 30000));
    g_assert_true(tvd_audit_verify(tvd_supervisor_audit(f->sup), &report,
                                   &err));
    g_assert_no_error(err);
    g_assert_cmpint(report.fault, ==, TVD_AUDIT_OK);
    tvd_audit_report_clear(&report);

    g_clear_pointer(&f->sup, tvd_supervisor_free);
    f->sup = harness_supervisor_restart(f->dir, &err);
    g_assert_no_error(err);
    g_assert_nonnull(vm_of(f));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_QUARANTINED);
    g_assert_nonnull(strstr(tvd_vm_detail(vm_of(f)), "ev\\xff\\xfeil\\x01"));
}

/*
 * Attack: hellos at line rate, each an EK and AK check. A VM gets 4 at once
 * and then one per second: of 12 hellos sent back to back, 4 (5 if a second
 * passed) are answered with a challenge, the rest dropped.
 */
static void test_hello_rate_limit(Fixture *f, gconstpointer data)
{
    g_autoptr(GBytes) hello = NULL;
    gint64 start;
    gint64 end;
    guint challenges = 0;

    if (!f->sup) {
        return;
    }
    hello = harness_agent_hello(f->agent);
    start = g_get_monotonic_time();
    for (guint i = 0; i < 12; i++) {
        send_payload(f, hello);
    }
    end = g_get_monotonic_time() + G_USEC_PER_SEC;
    while (g_get_monotonic_time() < end) {
        g_autoptr(GError) err = NULL;
        g_autoptr(GBytes) b = harness_link_recv(
            f->link, MAX((end - g_get_monotonic_time()) / 1000, 1), &err);
        TvdMsg msg;

        if (b && tvd_msg_decode(b, &msg, NULL)) {
            challenges += msg.type == TVD_MSG_CREDENTIAL_CHALLENGE;
            tvd_msg_clear(&msg);
        }
    }
    g_test_message("%u challenges for 12 hellos in %.2f s", challenges,
                   (g_get_monotonic_time() - start) / 1e6);
    g_assert_cmpuint(challenges, >=, 4);
    g_assert_cmpuint(challenges, <=,
                     4 + (g_get_monotonic_time() - start) / G_USEC_PER_SEC);
    /* The VM is none the worse: a good agent is admitted. */
    admit_good(f);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    /* The supervisor warns about what the bad agents send (that is the
     * point); criticals stay fatal. */
    g_log_set_always_fatal(G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL);
#define ADD_I(path, interval, fn) \
    g_test_add("/supervisor/admission/" path, Fixture, interval, \
               fixture_setup, fn, fixture_teardown)
#define ADD(path, fn) ADD_I(path, NULL, fn)
    ADD("admitted", test_admitted);
    ADD("tampered-quote", test_tampered_quote);
    ADD_I("replayed-nonce", "1s", test_replayed_nonce);
    ADD("wrong-ak", test_wrong_ak);
    ADD("wrong-ek", test_wrong_ek);
    ADD("pcr-mismatch", test_pcr_mismatch);
    ADD("unknown-digest", test_unknown_digest);
    ADD("malformed-and-oversize", test_malformed);
    ADD("fake-device-oversize", test_fake_device_oversize);
    ADD_I("restart-mid-admission", "1s", test_restart_mid_admission);
    ADD_I("hello-does-not-postpone", "1s/3s", test_hello_does_not_postpone);
    ADD("new-qemu-process", test_new_qemu_process);
    ADD("relay-to-other-vtpm", test_relay_to_other_vtpm);
    ADD("invalid-utf8-path", test_invalid_utf8_path);
    ADD("hello-rate-limit", test_hello_rate_limit);
    ADD("reset-while-away", test_reset_while_away);
    ADD_I("restart-deadline-runs", "1s/5s", test_restart_deadline_runs);
#undef ADD
#undef ADD_I
    return g_test_run();
}
