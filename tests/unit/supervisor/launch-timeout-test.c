/*
 * A launched VM whose tvd device never says hello: the supervisor core
 * in-process, a real vTPM (swtpm_setup, swtpm) and, for QEMU, a script that
 * stays alive but never connects (as a guest hung under a broken KVM does).
 * After [qemu] hello_timeout_s the VM stays PENDING with the reason
 * "no-device-hello: ...", in its record, the audit log and a metric; a
 * hello that comes later, or in time, is not held against it. The test
 * plays the device's hello itself on the VM's socket; nothing boots.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#include "audit.h"
#include "frame.h"
#include "supervisor.h"

typedef struct {
    char *dir;
    TvdSupervisor *sup;
    GSocketConnection *device;  /* the test playing the VM's device */
} Fixture;

static gboolean prerequisites(void)
{
    static const char *const tools[] = { "swtpm", "swtpm_setup",
                                         "swtpm_localca", "python3" };

    for (gsize i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *path = g_find_program_in_path(tools[i]);

        if (!path) {
            g_autofree char *why = g_strdup_printf(
                "%s is not in PATH (swtpm-tools, python3)", tools[i]);

            g_test_skip(why);
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * Children of the supervisor that die with the test, so a failed assertion
 * leaves nothing running (a swtpm that outlived us would hold the test's
 * output open). PR_SET_PDEATHSIG survives the exec.
 */
static const char die_with_parent[] =
    "#!/usr/bin/env python3\n"
    "import ctypes, os, socket, sys, time\n"
    "ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL\n";

static char *write_script(const char *dir, const char *name, const char *body)
{
    char *path = g_build_filename(dir, name, NULL);
    g_autofree char *text = g_strconcat(die_with_parent, body, NULL);
    g_autoptr(GError) err = NULL;

    g_file_set_contents(path, text, -1, &err);
    g_assert_no_error(err);
    g_assert_cmpint(g_chmod(path, 0755), ==, 0);
    return path;
}

/* A QEMU that starts and stays, but whose device never connects. */
static const char silent_qemu[] = "time.sleep(120)\n";
/* The real swtpm. */
static const char swtpm[] = "os.execvp('swtpm', ['swtpm'] + sys.argv[1:])\n";

static void fixture_setup(Fixture *f, gconstpointer data)
{
    guint timeout_s = GPOINTER_TO_UINT(data);
    g_autofree char *qemu = NULL;
    g_autofree char *tpm = NULL;
    g_autofree char *conf = NULL;
    g_autoptr(GError) err = NULL;
    TvdSupervisorConfig *cfg;

    if (!prerequisites()) {
        return;
    }
    f->dir = g_dir_make_tmp("tvd-launch-XXXXXX", &err);
    g_assert_no_error(err);
    qemu = write_script(f->dir, "silent-qemu", silent_qemu);
    tpm = write_script(f->dir, "swtpm", swtpm);
    conf = g_strdup_printf("[supervisor]\nstate_dir=%s/state\n"
                           "[qemu]\nbinary=%s\naccel=kvm\n"
                           "hello_timeout_s=%u\n"
                           "[vtpm]\nswtpm=%s\n"
                           "[network]\nnic=user\n", f->dir, qemu, timeout_s,
                           tpm);
    cfg = tvd_config_load_data(conf, strlen(conf), &err);
    g_assert_no_error(err);
    f->sup = tvd_supervisor_new(cfg);
    g_assert_true(tvd_supervisor_start(f->sup, &err));
    g_assert_no_error(err);
}

static gboolean vm_running(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);
    g_autoptr(JsonBuilder) b = json_builder_new();
    g_autoptr(JsonNode) root = NULL;

    if (!vm) {
        return FALSE;
    }
    tvd_vm_to_json(vm, b);
    root = json_builder_get_root(b);
    return json_object_get_boolean_member(json_node_get_object(root),
                                          "running");
}

static void fixture_teardown(Fixture *f, gconstpointer data)
{
    if (f->device) {
        g_io_stream_close(G_IO_STREAM(f->device), NULL, NULL);
        g_clear_object(&f->device);
    }
    if (f->sup && vm_running(f->sup, "vm1")) {
        gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        /* Its exit also ends its swtpm. */
        g_assert_true(tvd_supervisor_vm_stop(f->sup, "vm1", NULL));
        while (vm_running(f->sup, "vm1") && g_get_monotonic_time() < end) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
        g_assert_false(vm_running(f->sup, "vm1"));
    }
    g_clear_pointer(&f->sup, tvd_supervisor_free);
    if (f->dir) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", f->dir);

        g_assert_cmpint(system(cmd), ==, 0);
        g_free(f->dir);
    }
}

static TvdVm *start_vm(Fixture *f)
{
    TvdVmSpec spec = {
        .name = "vm1",
        .domain = "blue",
        .kernel = "/nonexistent/vmlinuz",   /* the fake QEMU reads nothing */
        .initrd = "/nonexistent/initrd.img",
    };
    g_autoptr(GError) err = NULL;
    TvdVm *vm = tvd_supervisor_vm_start(f->sup, &spec, &err);

    g_assert_no_error(err);
    g_assert_nonnull(vm);
    return vm;
}

/*
 * Run the main loop for @seconds, or until the reason starts with
 * @reason_prefix (nullable: the whole time).
 */
static gboolean run_until_reason(TvdVm *vm, const char *reason_prefix,
                                 double seconds)
{
    gint64 end = g_get_monotonic_time() + (gint64)(seconds * G_USEC_PER_SEC);

    while (g_get_monotonic_time() < end) {
        if (reason_prefix && g_str_has_prefix(tvd_vm_reason(vm),
                                              reason_prefix)) {
            return TRUE;
        }
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    return reason_prefix && g_str_has_prefix(tvd_vm_reason(vm), reason_prefix);
}

/* Connect to the VM's own socket and send the hello its device would. */
static void send_device_hello(Fixture *f, TvdVm *vm)
{
    g_autofree char *path = g_strdup_printf("%s/state/run/vm-%s.sock",
                                            f->dir, tvd_vm_name(vm));
    g_autoptr(GSocketClient) client = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    struct tvd_device_hello h = {
        .abi_version = TVD_ABI_VERSION,
        .mailbox_size = TVD_MBOX_SIZE_MIN,
        .state = TVD_STATE_PENDING,
        .fail_mode = TVD_FAIL_CLOSED,
    };
    uint8_t payload[TVD_DEVICE_HELLO_SIZE];
    g_autoptr(GBytes) frame = NULL;
    g_autoptr(GError) err = NULL;
    gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    g_strlcpy(h.name, tvd_vm_name(vm), sizeof(h.name));
    g_strlcpy(h.domain, "blue", sizeof(h.domain));
    g_assert_true(tvd_device_hello_encode(&h, payload, &err));
    g_assert_no_error(err);
    frame = tvd_frame_encode(TVD_FRAME_DEVICE_HELLO, 1, payload,
                             sizeof(payload), &err);
    g_assert_no_error(err);
    f->device = g_socket_client_connect(client, G_SOCKET_CONNECTABLE(addr),
                                        NULL, &err);
    g_assert_no_error(err);
    g_assert_true(g_output_stream_write_all(
        g_io_stream_get_output_stream(G_IO_STREAM(f->device)),
        g_bytes_get_data(frame, NULL), g_bytes_get_size(frame), NULL, NULL,
        &err));
    g_assert_no_error(err);
    while (!tvd_vm_connected(vm) && g_get_monotonic_time() < end) {
        g_main_context_iteration(NULL, FALSE);
        g_usleep(1000);
    }
    g_assert_true(tvd_vm_connected(vm));
}

static char *metrics(Fixture *f)
{
    GString *out = g_string_new(NULL);

    tvd_supervisor_metrics(f->sup, out);
    return g_string_free(out, FALSE);
}

static char *audit_export(Fixture *f)
{
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
    g_autoptr(GError) err = NULL;

    g_assert_true(tvd_audit_export(tvd_supervisor_audit(f->sup), 1, out, NULL,
                                   &err));
    g_assert_no_error(err);
    g_assert_true(g_output_stream_write_all(out, "", 1, NULL, NULL, &err));
    g_assert_true(g_output_stream_close(out, NULL, &err));
    return g_memory_output_stream_steal_data(G_MEMORY_OUTPUT_STREAM(out));
}

static JsonObject *vm_json(TvdVm *vm, JsonNode **keep)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    tvd_vm_to_json(vm, b);
    *keep = json_builder_get_root(b);
    return json_node_get_object(*keep);
}

static const char no_hello_reason[] =
    "no-device-hello: no device hello in 1 s after launch (accel kvm)";

static void test_no_hello(Fixture *f, gconstpointer data)
{
    TvdVm *vm;
    gint64 t0;
    double waited;
    g_autofree char *m = NULL;
    g_autofree char *log = NULL;
    g_autoptr(JsonNode) keep = NULL;
    JsonObject *o;

    if (!f->sup) {
        return;
    }
    vm = start_vm(f);
    t0 = g_get_monotonic_time();
    g_assert_cmpstr(tvd_vm_reason(vm), ==, "awaiting-attestation: starting");
    g_test_expect_message("tvd-supervisor", G_LOG_LEVEL_WARNING,
                          "vm1: no-device-hello: no device hello in 1 s after "
                          "launch (accel kvm); see */vms/vm1/qemu.log");
    g_assert_true(run_until_reason(vm, "no-device-hello:", 15));
    g_test_assert_expected_messages();
    waited = (g_get_monotonic_time() - t0) / 1e6;
    g_test_message("the reason came %.1f s after the launch", waited);
    g_assert_cmpfloat(waited, >=, 0.9);

    /* Not admitted: PENDING, link down, with the reason the operator sees. */
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_PENDING);
    g_assert_cmpstr(tvd_vm_reason(vm), ==, no_hello_reason);
    o = vm_json(vm, &keep);
    g_assert_cmpstr(json_object_get_string_member(o, "state"), ==, "PENDING");
    g_assert_cmpstr(json_object_get_string_member(o, "reason"), ==,
                    no_hello_reason);
    g_assert_cmpstr(json_object_get_string_member(o, "cause"), ==,
                    "no-device-hello");
    g_assert_cmpint(json_object_get_int_member(o, "reason_code"), ==,
                    TVD_REASON_DEADLINE);
    g_assert_true(json_object_get_boolean_member(o, "running"));
    g_assert_false(json_object_get_boolean_member(o, "link_up"));

    log = audit_export(f);
    g_assert_nonnull(strstr(log, "\"vm\":\"vm1\""));
    g_assert_nonnull(strstr(log, no_hello_reason));
    g_assert_nonnull(strstr(log, "\"cause\":\"no-device-hello\""));
    g_assert_nonnull(strstr(log, "\"actor\":\"supervisor\""));
    m = metrics(f);
    g_assert_nonnull(strstr(m, "\ntvd_vm_launch_failures_total"
                               "{reason=\"no-device-hello\"} 1\n"));

    /* It fires once per launch. */
    run_until_reason(vm, NULL, 1.5);
    g_clear_pointer(&m, g_free);
    m = metrics(f);
    g_assert_nonnull(strstr(m, "{reason=\"no-device-hello\"} 1\n"));

    /* A device that says hello late is not held to it. */
    send_device_hello(f, vm);
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_PENDING);
    g_assert_cmpstr(tvd_vm_reason(vm), ==,
                    "awaiting-attestation: starting (the device hello came "
                    "after the launch timeout)");
}

static void test_hello_in_time(Fixture *f, gconstpointer data)
{
    TvdVm *vm;
    g_autofree char *m = NULL;

    if (!f->sup) {
        return;
    }
    vm = start_vm(f);
    send_device_hello(f, vm);
    /* Past the 2 s timeout: nothing changes. */
    g_assert_false(run_until_reason(vm, "no-device-hello:", 3));
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_PENDING);
    g_assert_cmpstr(tvd_vm_reason(vm), ==, "awaiting-attestation: starting");
    m = metrics(f);
    g_assert_nonnull(strstr(m, "\ntvd_vm_launch_failures_total"
                               "{reason=\"no-device-hello\"} 0\n"));
}

/* A stopped, revoked VM is not started again: readmit lifts a revocation. */
static void test_revoked_not_started(Fixture *f, gconstpointer data)
{
    TvdVmSpec spec = {
        .name = "vm1",
        .domain = "blue",
        .kernel = "/nonexistent/vmlinuz",
        .initrd = "/nonexistent/initrd.img",
    };
    g_autoptr(GError) err = NULL;
    TvdVm *vm;

    if (!f->sup) {
        return;
    }
    vm = start_vm(f);
    g_assert_true(tvd_supervisor_vm_stop(f->sup, "vm1", &err));
    g_assert_no_error(err);
    {
        gint64 end = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        while (vm_running(f->sup, "vm1") && g_get_monotonic_time() < end) {
            g_main_context_iteration(NULL, FALSE);
            g_usleep(1000);
        }
        g_assert_false(vm_running(f->sup, "vm1"));
    }
    g_assert_true(tvd_supervisor_vm_revoke(f->sup, "vm1", "test", &err));
    g_assert_no_error(err);
    g_assert_null(tvd_supervisor_vm_start(f->sup, &spec, &err));
    g_assert_error(err, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "readmit"));
    g_assert_cmpint(tvd_vm_state(vm), ==, TVD_STATE_REVOKED);
}

static void test_config(void)
{
    static const char *const bad[] = {
        "[qemu]\nhello_timeout_s=0\n",
        "[qemu]\nhello_timeout_s=3601\n",
        "[qemu]\nhello_timeout_s=ten\n",
    };
    g_autoptr(GError) err = NULL;
    g_autoptr(TvdSupervisorConfig) cfg = tvd_config_load_data("", 0, &err);

    g_assert_no_error(err);
    g_assert_cmpuint(cfg->hello_timeout_s, ==, 60);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) e = NULL;
        g_autoptr(TvdSupervisorConfig) c = tvd_config_load_data(bad[i], -1, &e);

        g_assert_null(c);
        g_assert_error(e, TVD_CONFIG_ERROR, TVD_CONFIG_ERROR_INVALID);
        g_assert_nonnull(strstr(e->message, "[qemu] hello_timeout_s"));
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/supervisor/launch/hello-timeout-config", test_config);
    g_test_add("/supervisor/launch/no-device-hello", Fixture,
               GUINT_TO_POINTER(1), fixture_setup, test_no_hello,
               fixture_teardown);
    g_test_add("/supervisor/launch/revoked-not-started", Fixture,
               GUINT_TO_POINTER(60), fixture_setup, test_revoked_not_started,
               fixture_teardown);
    g_test_add("/supervisor/launch/hello-in-time", Fixture,
               GUINT_TO_POINTER(2), fixture_setup, test_hello_in_time,
               fixture_teardown);
    return g_test_run();
}
