/*
 * The supervisor core against real QEMU processes running the tvd device:
 * adoption through the shared socket, state pushes that gate the NIC link
 * (as the device reports it), revocation, readmission, a killed QEMU, and a
 * supervisor restart that keeps every membership state.
 *
 * QEMU comes from TVD_QEMU (scripts/run-tests sets it from
 * scripts/build-qemu); swtpm_setup from swtpm-tools makes the vTPM CA.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib/gstdio.h>
#include <signal.h>

#include "supervisor.h"
#include "store.h"

typedef struct {
    char *dir;
    TvdSupervisor *sup;
    GPtrArray *qemus;       /* GSubprocess */
} Fixture;

static const char *qemu_binary(void)
{
    const char *q = g_getenv("TVD_QEMU");

    return q && g_file_test(q, G_FILE_TEST_IS_EXECUTABLE) ? q : NULL;
}

static gboolean prerequisites(void)
{
    g_autofree char *setup = g_find_program_in_path("swtpm_setup");

    if (!qemu_binary()) {
        g_test_skip("TVD_QEMU does not name the QEMU built by "
                    "scripts/build-qemu");
        return FALSE;
    }
    if (!setup) {
        g_test_skip("swtpm_setup (swtpm-tools) is not installed");
        return FALSE;
    }
    return TRUE;
}

static TvdSupervisor *start_supervisor(const char *dir)
{
    g_autofree char *conf = g_strdup_printf("[supervisor]\nstate_dir=%s\n"
                                            "[qemu]\nbinary=%s\naccel=tcg\n",
                                            dir, qemu_binary());
    g_autoptr(GError) err = NULL;
    TvdSupervisorConfig *cfg = tvd_config_load_data(conf, strlen(conf), &err);
    TvdSupervisor *sup;

    g_assert_no_error(err);
    sup = tvd_supervisor_new(cfg);
    g_assert_true(tvd_supervisor_start(sup, &err));
    g_assert_no_error(err);
    return sup;
}

static void fixture_setup(Fixture *f, gconstpointer data)
{
    f->qemus = g_ptr_array_new_with_free_func(g_object_unref);
    if (!prerequisites()) {
        return;
    }
    f->dir = g_dir_make_tmp("tvd-sup-XXXXXX", NULL);
    g_assert_nonnull(f->dir);
    f->sup = start_supervisor(f->dir);
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    for (guint i = 0; i < f->qemus->len; i++) {
        g_subprocess_force_exit(f->qemus->pdata[i]);
        g_subprocess_wait(f->qemus->pdata[i], NULL, NULL);
    }
    g_ptr_array_unref(f->qemus);
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    if (f->dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf %s", f->dir);

        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
    }
}

/* A VM started by "someone else": only the tvd device knows the supervisor. */
static GSubprocess *start_adopted_qemu(Fixture *f, const char *name,
                                       const char *domain)
{
    const TvdSupervisorConfig *cfg = tvd_supervisor_config(f->sup);
    g_autofree char *chr = g_strdup_printf("socket,id=sup,path=%s,"
                                           "reconnect-ms=100",
                                           cfg->adopt_socket);
    g_autofree char *dev = g_strdup_printf("tvd,chardev=sup,netdev=n0,"
                                           "domain=%s", domain);
    g_autoptr(GError) err = NULL;
    GSubprocess *p = g_subprocess_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE, &err,
                                      qemu_binary(), "-machine", "pc",
                                      "-accel", "tcg", "-nodefaults",
                                      "-display", "none", "-S",
                                      "-name", name, "-chardev", chr,
                                      "-netdev", "user,id=n0",
                                      "-device", "e1000,netdev=n0,romfile=",
                                      "-device", dev, NULL);

    g_assert_no_error(err);
    g_ptr_array_add(f->qemus, p);
    return p;
}

typedef gboolean (*Cond)(TvdSupervisor *sup, const char *name);

/* Run the main loop until @cond holds; fail after 30 s. */
static void wait_for(TvdSupervisor *sup, const char *name, Cond cond,
                     const char *what)
{
    gint64 end = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    while (!cond(sup, name)) {
        if (g_get_monotonic_time() > end) {
            g_error("timed out waiting for %s of %s", what, name);
        }
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
}

static gboolean is_connected(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    return vm && tvd_vm_connected(vm);
}

static gboolean is_gone(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    return vm && !tvd_vm_connected(vm);
}

static gboolean link_up(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    return vm && tvd_vm_connected(vm) &&
           (tvd_vm_device_status(vm) & TVD_STATUS_LINK_UP);
}

static gboolean link_down_confirmed(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);
    guint32 st = vm ? tvd_vm_device_status(vm) : 0;

    return vm && tvd_vm_connected(vm) && (st & TVD_STATUS_CONFIRMED) &&
           !(st & TVD_STATUS_LINK_UP);
}

/* Stands for a verified round: the deadline runs from now. */
static void admit(TvdVm *vm)
{
    TvdVerdict v;

    tvd_verdict_set(&v, TVD_STATE_ADMITTED, TVD_CAUSE_ATTESTED, "test admits");
    tvd_vm_evidence_verified(vm);
    tvd_vm_transition(vm, &v, "test");
}

static void test_adopt_and_gate(Fixture *f, gconstpointer data)
{
    TvdVm *vm;
    g_autoptr(GError) err = NULL;

    if (!f->sup) {
        return;
    }
    start_adopted_qemu(f, "web1", "blue");
    wait_for(f->sup, "web1", is_connected, "adoption");
    vm = tvd_supervisor_vm_find(f->sup, "web1");
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_PENDING);
    /* Pending: the supervisor pushed its state, the link stays down. */
    wait_for(f->sup, "web1", link_down_confirmed, "confirmed link down");

    admit(vm);
    wait_for(f->sup, "web1", link_up, "link up");

    g_assert_true(tvd_supervisor_vm_revoke(f->sup, "web1", "compromised",
                                           &err));
    g_assert_no_error(err);
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_REVOKED);
    g_assert_nonnull(strstr(tvd_vm_reason(vm), "compromised"));
    wait_for(f->sup, "web1", link_down_confirmed, "link down after revoke");

    /* Readmission asks for a new attestation: PENDING, link still down. */
    g_assert_true(tvd_supervisor_vm_readmit(f->sup, "web1", &err));
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_PENDING);
    g_assert_false(tvd_supervisor_vm_readmit(f->sup, "web1", &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT);
    g_clear_error(&err);
    g_assert_false(tvd_supervisor_vm_revoke(f->sup, "nope", NULL, &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_NOT_FOUND);
}

static void test_qemu_killed(Fixture *f, gconstpointer data)
{
    GSubprocess *q;

    if (!f->sup) {
        return;
    }
    q = start_adopted_qemu(f, "db1", "red");
    wait_for(f->sup, "db1", is_connected, "adoption");
    g_subprocess_send_signal(q, SIGKILL);
    wait_for(f->sup, "db1", is_gone, "disconnection");
    g_assert_false(tvd_vm_connected(tvd_supervisor_vm_find(f->sup, "db1")));
}

static void test_restart_keeps_state(Fixture *f, gconstpointer data)
{
    TvdVm *vm;
    TvdVerdict v;

    if (!f->sup) {
        return;
    }
    start_adopted_qemu(f, "app1", "blue");
    start_adopted_qemu(f, "app2", "blue");
    wait_for(f->sup, "app1", is_connected, "adoption");
    wait_for(f->sup, "app2", is_connected, "adoption");
    admit(tvd_supervisor_vm_find(f->sup, "app1"));
    tvd_verdict_set(&v, TVD_STATE_QUARANTINED, TVD_CAUSE_POLICY_UNKNOWN_DIGEST,
                    "unknown digest for /bin/evil");
    tvd_vm_transition(tvd_supervisor_vm_find(f->sup, "app2"), &v, "test");
    wait_for(f->sup, "app1", link_up, "link up");

    /* The supervisor dies; the VMs keep running and reconnect. */
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    f->sup = start_supervisor(f->dir);
    vm = tvd_supervisor_vm_find(f->sup, "app2");
    g_assert_nonnull(vm);
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_QUARANTINED);
    g_assert_cmpint(tvd_vm_cause(vm), ==, TVD_CAUSE_POLICY_UNKNOWN_DIGEST);
    g_assert_cmpstr(tvd_vm_detail(vm), ==, "unknown digest for /bin/evil");
    g_assert_cmpstr(tvd_vm_reason(vm), ==,
                    "unknown-digest: unknown digest for /bin/evil");
    g_assert_cmpint(tvd_vm_state(tvd_supervisor_vm_find(f->sup, "app1")), ==,
                    TVD_STATE_ADMITTED);
    wait_for(f->sup, "app1", link_up, "link up after the restart");
    wait_for(f->sup, "app2", link_down_confirmed, "app2 kept down");
}

/*
 * A durable write that fails, fails closed: an admitted VM whose record
 * cannot be written (its next verified evidence) leaves membership with
 * cause store-failure, and its device takes the link down.
 */
static void test_store_failure_fails_closed(Fixture *f, gconstpointer data)
{
    TvdVm *vm;

    if (!f->sup) {
        return;
    }
    start_adopted_qemu(f, "st1", "blue");
    wait_for(f->sup, "st1", is_connected, "adoption");
    vm = tvd_supervisor_vm_find(f->sup, "st1");
    admit(vm);
    wait_for(f->sup, "st1", link_up, "link up");

    tvd_supervisor_fail_store_writes(f->sup, TRUE);
    g_test_expect_message("tvd-supervisor", G_LOG_LEVEL_WARNING,
                          "st1: store-failure: *; the VM is QUARANTINED");
    tvd_vm_evidence_verified(vm);
    g_test_assert_expected_messages();
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_QUARANTINED);
    g_assert_cmpint(tvd_vm_cause(vm), ==, TVD_CAUSE_STORE_FAILURE);
    g_assert_nonnull(strstr(tvd_vm_detail(vm), "cannot be written"));
    wait_for(f->sup, "st1", link_down_confirmed, "link down");
    tvd_supervisor_fail_store_writes(f->sup, FALSE);
}

/*
 * A VM record that cannot be read stops the start with an error naming it:
 * skipping it would bring a revoked VM back as a fresh PENDING one. (No
 * QEMU needed.)
 */
static void test_unreadable_record_stops_start(void)
{
    g_autofree char *dir = g_dir_make_tmp("tvd-sup-XXXXXX", NULL);
    g_autofree char *conf = g_strdup_printf("[supervisor]\nstate_dir=%s\n",
                                            dir);
    g_autofree char *db = g_build_filename(dir, "store.db", NULL);
    g_autofree char *cmd = g_strdup_printf("rm -rf %s", dir);
    g_autoptr(GError) err = NULL;
    TvdSupervisor *sup;

    /* A first start makes the state directory and the store. */
    sup = tvd_supervisor_new(tvd_config_load_data(conf, strlen(conf), &err));
    g_assert_no_error(err);
    g_assert_true(tvd_supervisor_start(sup, &err));
    g_assert_no_error(err);
    tvd_supervisor_free(sup);
    {
        g_autoptr(TvdStore) store = tvd_store_sqlite_open(db, NULL, &err);

        g_assert_no_error(err);
        g_assert_true(tvd_store_put_string(store, "/vms/gone",
                                           "{\"name\": \"gone\", \"state\": ",
                                           NULL, &err));
        g_assert_no_error(err);
    }
    sup = tvd_supervisor_new(tvd_config_load_data(conf, strlen(conf), &err));
    g_assert_no_error(err);
    g_assert_false(tvd_supervisor_start(sup, &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_FAILED);
    g_assert_nonnull(strstr(err->message, "/vms/gone"));
    g_assert_null(tvd_supervisor_vm_find(sup, "gone"));
    tvd_supervisor_free(sup);
    g_assert_cmpint(system(cmd), ==, 0);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add("/supervisor/device/adopt-and-gate", Fixture, NULL,
               fixture_setup, test_adopt_and_gate, fixture_teardown);
    g_test_add("/supervisor/device/qemu-killed", Fixture, NULL,
               fixture_setup, test_qemu_killed, fixture_teardown);
    g_test_add("/supervisor/device/restart-keeps-state", Fixture, NULL,
               fixture_setup, test_restart_keeps_state, fixture_teardown);
    g_test_add_func("/supervisor/device/unreadable-record-stops-start",
                    test_unreadable_record_stops_start);
    g_test_add("/supervisor/device/store-failure-fails-closed", Fixture, NULL,
               fixture_setup, test_store_failure_fails_closed,
               fixture_teardown);
    return g_test_run();
}
