/*
 * The fixture of the supervisor core's fast layer (core-fixture.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "core-fixture.h"

#include <string.h>
#include <sqlite3.h>

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

TvdVm *core_vm(CoreFixture *f)
{
    return tvd_supervisor_vm_find(f->sup, CORE_VM);
}

static gboolean adopted(gpointer data)
{
    CoreFixture *f = data;

    return core_vm(f) && tvd_vm_connected(core_vm(f));
}

/* The device confirmed the last state pushed and its link is up / down. */
gboolean core_link_up(gpointer data)
{
    CoreFixture *f = data;
    guint32 st = tvd_vm_device_status(core_vm(f));

    return (st & TVD_STATUS_CONFIRMED) && (st & TVD_STATUS_LINK_UP);
}

gboolean core_link_down(gpointer data)
{
    CoreFixture *f = data;
    guint32 st = tvd_vm_device_status(core_vm(f));

    return (st & TVD_STATUS_CONFIRMED) && !(st & TVD_STATUS_LINK_UP);
}

void core_fixture_setup(CoreFixture *f, gconstpointer data)
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
    f->sup = harness_supervisor_new(f->dir, CORE_DOMAIN, data ? data : "1h", &err);
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
                                    CORE_VM, CORE_DOMAIN, &err);
    g_assert_no_error(err);
    g_assert_true(harness_wait(adopted, f, CORE_WAIT_MS));
    g_assert_cmpint(tvd_vm_state(core_vm(f)), ==, TVD_STATE_PENDING);
    /* The operator binds the adopted VM to its vTPM's EK. */
    g_assert_true(tvd_supervisor_vm_register_ek(f->sup, CORE_VM,
                                                f->agent->ek_cert, &err));
    g_assert_no_error(err);
}

void core_fixture_teardown(CoreFixture *f, gconstpointer data)
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

void core_send(CoreFixture *f, GBytes *payload)
{
    g_autoptr(GError) err = NULL;

    g_assert_true(harness_link_send(f->link, payload, &err));
    g_assert_no_error(err);
}

GBytes *core_expect(CoreFixture *f, guint16 type)
{
    g_autoptr(GError) err = NULL;
    GBytes *payload = NULL;
    TvdMsg msg;

    if (!harness_link_recv_msg(f->link, type, &msg, &payload, CORE_WAIT_MS, &err)) {
        g_error("waiting for %s: %s", tvd_msg_type_name(type), err->message);
    }
    tvd_msg_clear(&msg);
    return payload;
}

GBytes *core_bind_agent(CoreFixture *f)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) hello = harness_agent_hello(f->agent);
    g_autoptr(GBytes) challenge = NULL;
    g_autoptr(GBytes) response = NULL;

    core_send(f, hello);
    challenge = core_expect(f, TVD_MSG_CREDENTIAL_CHALLENGE);
    response = harness_agent_activate(f->agent, challenge, &err);
    g_assert_no_error(err);
    core_send(f, response);
    return core_expect(f, TVD_MSG_ATTEST_REQUEST);
}

GBytes *core_encode(TvdMsg *msg)
{
    g_autoptr(GError) err = NULL;
    GBytes *b = tvd_msg_encode(msg, &err);

    g_assert_no_error(err);
    return b;
}

GBytes *core_flip(GBytes *b, gsize at)
{
    gsize len;
    guint8 *d = g_bytes_unref_to_data(g_bytes_ref(b), &len);

    g_assert_cmpuint(at, <, len);
    d[at] ^= 0x01;
    return g_bytes_new_take(d, len);
}

void core_expect_verdict(CoreFixture *f, guint32 state, const char *reason)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GBytes) payload = NULL;
    TvdMsg msg;

    /* The very next message: a supervisor that let the step through
     * answers with the next step of the protocol instead (fail at once,
     * not after a timeout). */
    payload = harness_link_recv(f->link, CORE_WAIT_MS, &err);
    g_assert_no_error(err);
    g_assert_nonnull(payload);
    g_assert_true(tvd_msg_decode(payload, &msg, &err));
    g_assert_no_error(err);
    if (msg.type != TVD_MSG_MEMBERSHIP) {
        g_test_message("expected MEMBERSHIP (%s), the supervisor sent %s",
                       reason, tvd_msg_type_name(msg.type));
    }
    g_assert_cmpuint(msg.type, ==, TVD_MSG_MEMBERSHIP);
    g_test_message("verdict: %s: %s", tvd_state_name(tvd_vm_state(core_vm(f))),
                   tvd_vm_reason(core_vm(f)));
    g_assert_cmpuint(msg.u.membership.state, ==, state);
    tvd_msg_clear(&msg);
    g_assert_cmpint(tvd_vm_state(core_vm(f)), ==, state);
    g_assert_true(g_str_has_prefix(tvd_vm_reason(core_vm(f)), reason));
    /* The gate follows the verdict at the device. */
    g_assert_true(harness_wait(state == TVD_STATE_ADMITTED ? core_link_up
                                                           : core_link_down,
                               f, CORE_WAIT_MS));
}

void core_admit_good(CoreFixture *f)
{
    g_autoptr(GError) err = NULL;
    guint32 state = 0;

    g_assert_true(harness_admit(f->agent, f->link, &state, &err));
    g_assert_no_error(err);
    g_assert_cmpuint(state, ==, TVD_STATE_ADMITTED);
    g_assert_cmpint(tvd_vm_state(core_vm(f)), ==, TVD_STATE_ADMITTED);
    g_assert_true(g_str_has_prefix(tvd_vm_reason(core_vm(f)), "attested"));
    g_assert_true(harness_wait(core_link_up, f, CORE_WAIT_MS));
}

/* Changes one record of the supervisor's audit database behind its back
 * (the append-only trigger is a guard against mistakes, not attackers);
 * returns the seq changed. */
gint64 core_tamper_audit(CoreFixture *f, const char *event)
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

