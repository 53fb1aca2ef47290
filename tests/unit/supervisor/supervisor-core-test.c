/*
 * The fast layer of the supervisor core: the real core (admission,
 * supervisor, device connection, audit log) in-process, a fake device on
 * the adoption socket speaking the frame protocol, a real swtpm provisioned
 * by the supervisor's vTPM CA, and the agent's side played with the guest
 * agent's TPM library (tests/integration/supervisor/adm-harness.h). No QEMU:
 * each case takes a second or two.
 *
 *  - a good agent is admitted, and the state pushed to the device follows
 *    the verdict (the fake device applies SET_STATE as the device does and
 *    reports the link; PENDING, ADMITTED, QUARANTINED, REVOKED, readmitted);
 *  - the adopted VM is bound to the EK registered for it: an EK certificate
 *    from a CA the host does not trust cannot be registered and its EK is
 *    not bound; a trusted certificate of another TPM's EK registered for
 *    the VM leaves this agent unbound (ek-not-bound at the hello);
 *  - a quote replayed in the next round (nonce-reused), a PCR digest that
 *    does not match the quote, a tampered quote are rejected;
 *  - the supervisor's audit log verifies, and a record changed in its
 *    database is found.
 *
 * Without swtpm (swtpm, swtpm-tools) every case is skipped with the reason.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <signal.h>

#include "audit.h"
#include "core-fixture.h"

/* ---- cases ------------------------------------------------------------------ */

static void test_admit_and_gate(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    if (!f->sup) {
        return;
    }
    /* Adopted and PENDING: the device confirmed it, the link is down. */
    g_assert_true(harness_wait(core_link_down, f, CORE_WAIT_MS));
    core_admit_good(f);

    /* Revoked by the operator: the device takes the link down. */
    g_assert_true(tvd_supervisor_vm_revoke(f->sup, CORE_VM, "test", &err));
    g_assert_no_error(err);
    g_assert_cmpint(tvd_vm_state(core_vm(f)), ==, TVD_STATE_REVOKED);
    g_assert_true(harness_wait(core_link_down, f, CORE_WAIT_MS));

    /* Readmitted: attested again, link up again. */
    g_assert_true(tvd_supervisor_vm_readmit(f->sup, CORE_VM, &err));
    g_assert_no_error(err);
    core_admit_good(f);
}

static gboolean link_broken(gpointer data)
{
    return harness_link_broken(((CoreFixture *)data)->link);
}

/*
 * An agent frame larger than the device's mailbox half (a 64 KiB mailbox
 * here) cannot come from a tvd device: the connection is closed before
 * the payload is decoded. One that fits is decoded (and, being junk, only
 * refused as a message).
 */
static void test_agent_frame_over_mailbox(CoreFixture *f, gconstpointer data)
{
    gsize fits = 32 * 1024 - 16;
    g_autofree guint8 *junk = g_malloc0(fits + 1);
    g_autoptr(GBytes) ok = g_bytes_new(junk, fits);
    g_autoptr(GBytes) big = g_bytes_new(junk, fits + 1);

    if (!f->sup) {
        return;
    }
    g_assert_true(harness_wait(core_link_down, f, CORE_WAIT_MS));
    g_test_expect_message("tvd-admission", G_LOG_LEVEL_WARNING,
                          "*malformed agent message*");
    core_send(f, ok);
    harness_wait(link_broken, f, 1000);
    g_test_assert_expected_messages();
    g_assert_false(harness_link_broken(f->link));
    g_assert_true(tvd_vm_connected(core_vm(f)));
    core_send(f, big);
    g_assert_true(harness_wait(link_broken, f, CORE_WAIT_MS));
    g_assert_cmpint(tvd_vm_state(core_vm(f)), ==, TVD_STATE_PENDING);
}

static gboolean is_quarantined(gpointer data)
{
    return tvd_vm_state(core_vm(data)) == TVD_STATE_QUARANTINED;
}

/*
 * Verified evidence whose ADMITTED record cannot be written: the host
 * fails closed to QUARANTINED (store-failure), and the agent is not told
 * it was admitted.
 */
static void test_store_failure_not_told_admitted(CoreFixture *f,
                                                 gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) evidence = NULL;
    g_autoptr(GBytes) next = NULL;
    GLogLevelFlags fatal;
    TvdMsg ev;

    if (!f->sup) {
        return;
    }
    request = core_bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    evidence = core_encode(&ev);
    tvd_msg_clear(&ev);
    tvd_supervisor_fail_store_writes(f->sup, TRUE);
    /* The failed write is warned about: not fatal here. */
    fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
    core_send(f, evidence);
    g_assert_true(harness_wait(is_quarantined, f, CORE_WAIT_MS));
    g_log_set_always_fatal(fatal);
    g_assert_cmpint(tvd_vm_cause(core_vm(f)), ==, TVD_CAUSE_STORE_FAILURE);
    g_assert_true(harness_wait(core_link_down, f, CORE_WAIT_MS));
    tvd_supervisor_fail_store_writes(f->sup, FALSE);
    /* Nothing for the agent but, later, the next round's request. */
    next = harness_link_recv(f->link, 500, &err);
    if (next) {
        TvdMsg msg;

        g_assert_true(tvd_msg_decode(next, &msg, NULL));
        g_assert_cmpuint(msg.type, !=, TVD_MSG_MEMBERSHIP);
        tvd_msg_clear(&msg);
    }
}

static void test_ek_untrusted_ca(CoreFixture *f, gconstpointer data)
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
    /* It cannot be registered, and its hello is not the bound EK. */
    g_assert_false(tvd_supervisor_vm_register_ek(f->sup, CORE_VM,
                                                 agent->ek_cert, &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID);
    g_clear_error(&err);
    hello = harness_agent_hello(agent);
    core_send(f, hello);
    core_expect_verdict(f, TVD_STATE_QUARANTINED, "ek-not-bound");
    core_admit_good(f);
}

static void test_ek_cert_of_another_tpm(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *conf = NULL;
    g_autoptr(HarnessSwtpm) other = NULL;
    g_autoptr(HarnessAgent) other_agent = NULL;
    g_autoptr(GBytes) hello = NULL;

    if (!f->sup) {
        return;
    }
    /* A certificate the host's CA did issue, but for another TPM's EK:
     * the chain is good, the key is not this agent's. Sent by the agent it
     * is not believed; registered for the VM, this agent is not bound. */
    conf = harness_supervisor_setup_conf(f->sup);
    other = harness_swtpm_new(conf, &err);
    g_assert_no_error(err);
    other_agent = harness_agent_new(harness_swtpm_tcti(other), &err);
    g_assert_no_error(err);
    g_assert_false(g_bytes_equal(other_agent->ek_cert, f->agent->ek_cert));
    g_assert_true(tvd_supervisor_vm_register_ek(f->sup, CORE_VM,
                                                other_agent->ek_cert, &err));
    g_assert_no_error(err);
    hello = harness_agent_hello(f->agent);
    core_send(f, hello);
    core_expect_verdict(f, TVD_STATE_QUARANTINED, "ek-not-bound");
    g_assert_true(tvd_supervisor_vm_register_ek(f->sup, CORE_VM,
                                                f->agent->ek_cert, &err));
    g_assert_no_error(err);
    core_admit_good(f);
}

static void test_replayed_nonce(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) first = NULL;
    g_autoptr(GBytes) again = NULL;
    TvdMsg ev;

    if (!f->sup) {
        return;
    }
    request = core_bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    first = core_encode(&ev);
    tvd_msg_clear(&ev);
    core_send(f, first);
    core_expect_verdict(f, TVD_STATE_ADMITTED, "attested");
    /* The next round (interval 1 s here) gets the previous round's quote. */
    again = core_expect(f, TVD_MSG_ATTEST_REQUEST);
    core_send(f, first);
    core_expect_verdict(f, TVD_STATE_QUARANTINED, "nonce-reused");
}

static void test_pcr_digest_mismatch(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = core_bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    /* A PCR value the quote's digest does not cover. */
    g_assert_cmpuint(ev.u.evidence.n_pcrs, >=, 1);
    bad = core_flip(ev.u.evidence.pcrs[0].digest, 31);
    g_bytes_unref(ev.u.evidence.pcrs[0].digest);
    ev.u.evidence.pcrs[0].digest = bad;
    payload = core_encode(&ev);
    tvd_msg_clear(&ev);
    core_send(f, payload);
    core_expect_verdict(f, TVD_STATE_QUARANTINED, "pcr-digest-mismatch");
    core_admit_good(f);
}

static void test_tampered_quote(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = core_bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    /* One bit of the signed TPMS_ATTEST (inside its extraData). */
    bad = core_flip(ev.u.evidence.attest, 20);
    g_bytes_unref(ev.u.evidence.attest);
    ev.u.evidence.attest = bad;
    payload = core_encode(&ev);
    tvd_msg_clear(&ev);
    core_send(f, payload);
    core_expect_verdict(f, TVD_STATE_QUARANTINED, "bad-signature");
    core_admit_good(f);
}

static void test_audit_chain(CoreFixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdAuditReport report = { 0 };
    gint64 seq;

    if (!f->sup) {
        return;
    }
    core_admit_good(f);
    /* Every record so far, from the supervisor's start to the admission. */
    g_assert_true(tvd_audit_verify(tvd_supervisor_audit(f->sup), &report,
                                   &err));
    g_assert_no_error(err);
    g_assert_cmpint(report.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(report.records, >=, 2);
    g_assert_cmpint(report.anchor_seq, >, 0);
    tvd_audit_report_clear(&report);

    seq = core_tamper_audit(f, "admitted");
    g_assert_true(tvd_audit_verify(tvd_supervisor_audit(f->sup), &report,
                                   &err));
    g_assert_no_error(err);
    g_test_message("after tampering with seq %" G_GINT64_FORMAT ": %s: %s",
                   seq, tvd_audit_fault_name(report.fault), report.why);
    g_assert_cmpint(report.fault, !=, TVD_AUDIT_OK);
    g_assert_cmpint(report.bad_seq, ==, seq);
    tvd_audit_report_clear(&report);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    signal(SIGPIPE, SIG_IGN);
#define ADD_I(path, interval, fn) \
    g_test_add("/supervisor/core/" path, CoreFixture, interval, \
               core_fixture_setup, fn, core_fixture_teardown)
#define ADD(path, fn) ADD_I(path, NULL, fn)
    ADD("admit-and-gate", test_admit_and_gate);
    ADD("agent-frame-over-mailbox", test_agent_frame_over_mailbox);
    ADD("store-failure-not-told-admitted", test_store_failure_not_told_admitted);
    ADD("ek-untrusted-ca", test_ek_untrusted_ca);
    ADD("ek-cert-of-another-tpm", test_ek_cert_of_another_tpm);
    ADD_I("replayed-nonce", "1s", test_replayed_nonce);
    ADD("pcr-digest-mismatch", test_pcr_digest_mismatch);
    ADD("tampered-quote", test_tampered_quote);
    ADD("audit-chain", test_audit_chain);
    return g_test_run();
}
