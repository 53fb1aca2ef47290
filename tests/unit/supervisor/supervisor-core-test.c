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
 *  - an EK certificate from a CA the host does not trust, and a trusted
 *    certificate of another TPM's EK, are rejected at the hello;
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
#include <string.h>
#include <glib/gstdio.h>
#include <sqlite3.h>

#include "adm-harness.h"
#include "audit.h"
#include "frame.h"

#define VM          "vm1"
#define DOMAIN      "blue"
#define WAIT_MS     30000

typedef struct {
    char *dir;
    TvdSupervisor *sup;
    HarnessSwtpm *tpm;
    HarnessAgent *agent;
    HarnessLink *link;
} Fixture;

static gboolean prerequisites(void)
{
    static const char *const progs[] = {
        "swtpm", "swtpm_setup", "swtpm_localca", NULL,
    };

    for (guint i = 0; progs[i]; i++) {
        if (!harness_have(progs[i])) {
            g_autofree char *why = g_strdup_printf("%s is not installed "
                                                   "(swtpm, swtpm-tools)",
                                                   progs[i]);

            g_test_skip(why);
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

/* The device confirmed the last state pushed and its link is up / down. */
static gboolean link_up(gpointer data)
{
    Fixture *f = data;
    guint32 st = tvd_vm_device_status(vm_of(f));

    return (st & TVD_STATUS_CONFIRMED) && (st & TVD_STATUS_LINK_UP);
}

static gboolean link_down(gpointer data)
{
    Fixture *f = data;
    guint32 st = tvd_vm_device_status(vm_of(f));

    return (st & TVD_STATUS_CONFIRMED) && !(st & TVD_STATUS_LINK_UP);
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *conf = NULL;
    guint8 digest[32];

    if (!prerequisites()) {
        return;
    }
    f->dir = g_dir_make_tmp("tvd-core-XXXXXX", &err);
    g_assert_no_error(err);
    /* Re-attestation every second only where a case waits for round 2. */
    f->sup = harness_supervisor_new(f->dir, DOMAIN, data ? data : "1h", &err);
    g_assert_no_error(err);
    conf = harness_supervisor_setup_conf(f->sup);
    f->tpm = harness_swtpm_new(conf, &err);
    g_assert_no_error(err);
    f->agent = harness_agent_new(harness_swtpm_tcti(f->tpm), &err);
    g_assert_no_error(err);
    harness_agent_digest(digest);
    g_assert_true(harness_agent_measure(f->agent, HARNESS_AGENT_PATH, digest,
                                        &err));
    g_assert_no_error(err);
    f->link = harness_fake_link_new(tvd_supervisor_config(f->sup)->adopt_socket,
                                    VM, DOMAIN, &err);
    g_assert_no_error(err);
    g_assert_true(harness_wait(adopted, f, WAIT_MS));
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_PENDING);
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

/* ---- steps ------------------------------------------------------------------ */

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

    if (!harness_link_recv_msg(f->link, type, &msg, &payload, WAIT_MS, &err)) {
        g_error("waiting for %s: %s", tvd_msg_type_name(type), err->message);
    }
    tvd_msg_clear(&msg);
    return payload;
}

/* Hello and credential activation; returns the first ATTEST_REQUEST. */
static GBytes *bind_agent(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) hello = harness_agent_hello(f->agent);
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;

    send_payload(f, hello);
    challenge = expect(f, TVD_MSG_CREDENTIAL_CHALLENGE);
    response = harness_agent_activate(f->agent, challenge, &err);
    g_assert_no_error(err);
    send_payload(f, response);
    return expect(f, TVD_MSG_ATTEST_REQUEST);
}

static GBytes *encode(TvdMsg *msg)
{
    g_autoptr(GError) err = NULL;
    GBytes *b = tvd_msg_encode(msg, &err);

    g_assert_no_error(err);
    return b;
}

static GBytes *flip(GBytes *b, gsize at)
{
    gsize len;
    guint8 *d = g_bytes_unref_to_data(g_bytes_ref(b), &len);

    g_assert_cmpuint(at, <, len);
    d[at] ^= 0x01;
    return g_bytes_new_take(d, len);
}

/* The MEMBERSHIP answer to the agent, and the supervisor's record. */
static void expect_verdict(Fixture *f, guint32 state, const char *reason)
{
    g_autoptr(GError) err = NULL;
    TvdMsg msg;

    g_assert_true(harness_link_recv_msg(f->link, TVD_MSG_MEMBERSHIP, &msg,
                                        NULL, WAIT_MS, &err));
    g_assert_no_error(err);
    g_test_message("verdict: %s: %s", tvd_state_name(tvd_vm_state(vm_of(f))),
                   tvd_vm_reason(vm_of(f)));
    g_assert_cmpuint(msg.u.membership.state, ==, state);
    tvd_msg_clear(&msg);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, state);
    g_assert_true(g_str_has_prefix(tvd_vm_reason(vm_of(f)), reason));
    /* The gate follows the verdict at the device. */
    g_assert_true(harness_wait(state == TVD_STATE_ADMITTED ? link_up : link_down,
                               f, WAIT_MS));
}

/* The good agent of the fixture: admitted, link up. */
static void admit_good(Fixture *f)
{
    g_autoptr(GError) err = NULL;
    guint32 state = 0;

    g_assert_true(harness_admit(f->agent, f->link, &state, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_ADMITTED);
    g_assert_true(g_str_has_prefix(tvd_vm_reason(vm_of(f)), "attested"));
    g_assert_true(harness_wait(link_up, f, WAIT_MS));
}

/* ---- cases ------------------------------------------------------------------ */

static void test_admit_and_gate(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;

    if (!f->sup) {
        return;
    }
    /* Adopted and PENDING: the device confirmed it, the link is down. */
    g_assert_true(harness_wait(link_down, f, WAIT_MS));
    admit_good(f);

    /* Revoked by the operator: the device takes the link down. */
    g_assert_true(tvd_supervisor_vm_revoke(f->sup, VM, "test", &err));
    g_assert_no_error(err);
    g_assert_cmpint(tvd_vm_state(vm_of(f)), ==, TVD_STATE_REVOKED);
    g_assert_true(harness_wait(link_down, f, WAIT_MS));

    /* Readmitted: attested again, link up again. */
    g_assert_true(tvd_supervisor_vm_readmit(f->sup, VM, &err));
    g_assert_no_error(err);
    admit_good(f);
}

static void test_ek_untrusted_ca(Fixture *f, gconstpointer data)
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
    hello = harness_agent_hello(agent);
    send_payload(f, hello);
    expect_verdict(f, TVD_STATE_QUARANTINED, "ek-cert-untrusted");
    admit_good(f);
}

static void test_ek_cert_of_another_tpm(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *conf = NULL;
    g_autoptr(HarnessSwtpm) other = NULL;
    g_autoptr(HarnessAgent) other_agent = NULL;
    g_autoptr(GBytes) hello = NULL;
    GBytes *own_cert;

    if (!f->sup) {
        return;
    }
    /* A certificate the host's CA did issue, but for another TPM's EK:
     * the chain is good, the key is not this agent's. */
    conf = harness_supervisor_setup_conf(f->sup);
    other = harness_swtpm_new(conf, &err);
    g_assert_no_error(err);
    other_agent = harness_agent_new(harness_swtpm_tcti(other), &err);
    g_assert_no_error(err);
    g_assert_false(g_bytes_equal(other_agent->ek_cert, f->agent->ek_cert));
    own_cert = f->agent->ek_cert;
    f->agent->ek_cert = other_agent->ek_cert;
    hello = harness_agent_hello(f->agent);
    f->agent->ek_cert = own_cert;
    send_payload(f, hello);
    expect_verdict(f, TVD_STATE_QUARANTINED, "ek-key-mismatch");
    admit_good(f);
}

static void test_replayed_nonce(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) first = NULL;
    g_autoptr(GBytes) again = NULL;
    TvdMsg ev;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    first = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, first);
    expect_verdict(f, TVD_STATE_ADMITTED, "attested");
    /* The next round (interval 1 s here) gets the previous round's quote. */
    again = expect(f, TVD_MSG_ATTEST_REQUEST);
    send_payload(f, first);
    expect_verdict(f, TVD_STATE_QUARANTINED, "nonce-reused");
}

static void test_pcr_digest_mismatch(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    /* A PCR value the quote's digest does not cover. */
    g_assert_cmpuint(ev.u.evidence.n_pcrs, >=, 1);
    bad = flip(ev.u.evidence.pcrs[0].digest, 31);
    g_bytes_unref(ev.u.evidence.pcrs[0].digest);
    ev.u.evidence.pcrs[0].digest = bad;
    payload = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, payload);
    expect_verdict(f, TVD_STATE_QUARANTINED, "pcr-digest-mismatch");
    admit_good(f);
}

static void test_tampered_quote(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) request = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg ev;
    GBytes *bad;

    if (!f->sup) {
        return;
    }
    request = bind_agent(f);
    g_assert_true(harness_agent_evidence(f->agent, request, &ev, &err));
    g_assert_no_error(err);
    /* One bit of the signed TPMS_ATTEST (inside its extraData). */
    bad = flip(ev.u.evidence.attest, 20);
    g_bytes_unref(ev.u.evidence.attest);
    ev.u.evidence.attest = bad;
    payload = encode(&ev);
    tvd_msg_clear(&ev);
    send_payload(f, payload);
    expect_verdict(f, TVD_STATE_QUARANTINED, "bad-signature");
    admit_good(f);
}

/* Changes one record of the supervisor's audit database behind its back
 * (the append-only trigger is a guard against mistakes, not attackers);
 * returns the seq changed. */
static gint64 tamper_audit_record(Fixture *f, const char *event)
{
    g_autofree char *path = g_build_filename(f->dir, "audit.db", NULL);
    g_autofree char *sql = NULL;
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    gint64 seq;

    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    sql = g_strdup_printf("SELECT max(seq) FROM audit WHERE "
                          "instr(CAST(record AS TEXT), '\"%s\"') > 0", event);
    g_assert_cmpint(sqlite3_prepare_v2(db, sql, -1, &st, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_step(st), ==, SQLITE_ROW);
    seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    g_assert_cmpint(seq, >, 0);
    g_clear_pointer(&sql, g_free);
    sql = g_strdup_printf("DROP TRIGGER audit_no_update;"
                          "UPDATE audit SET record = CAST(replace(CAST(record "
                          "AS TEXT), '\"%s\"', '\"%s-x\"') AS BLOB) "
                          "WHERE seq = %" G_GINT64_FORMAT ";",
                          event, event, seq);
    g_assert_cmpint(sqlite3_exec(db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_changes(db), ==, 1);
    sqlite3_close(db);
    return seq;
}

static void test_audit_chain(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    TvdAuditReport report = { 0 };
    gint64 seq;

    if (!f->sup) {
        return;
    }
    admit_good(f);
    /* Every record so far, from the supervisor's start to the admission. */
    g_assert_true(tvd_audit_verify(tvd_supervisor_audit(f->sup), &report,
                                   &err));
    g_assert_no_error(err);
    g_assert_cmpint(report.fault, ==, TVD_AUDIT_OK);
    g_assert_cmpint(report.records, >=, 2);
    g_assert_cmpint(report.anchor_seq, >, 0);
    tvd_audit_report_clear(&report);

    seq = tamper_audit_record(f, "admitted");
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
    g_test_add("/supervisor/core/" path, Fixture, interval, fixture_setup, \
               fn, fixture_teardown)
#define ADD(path, fn) ADD_I(path, NULL, fn)
    ADD("admit-and-gate", test_admit_and_gate);
    ADD("ek-untrusted-ca", test_ek_untrusted_ca);
    ADD("ek-cert-of-another-tpm", test_ek_cert_of_another_tpm);
    ADD_I("replayed-nonce", "1s", test_replayed_nonce);
    ADD("pcr-digest-mismatch", test_pcr_digest_mismatch);
    ADD("tampered-quote", test_tampered_quote);
    ADD("audit-chain", test_audit_chain);
    return g_test_run();
}
