/*
 * Launching a VM: its vTPM (provisioned, then started) and its QEMU,
 * waiting for its device's hello, and following that QEMU until it exits,
 * whether our child or (after a supervisor restart) not.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "launcher.h"
#include "vtpm.h"

/*
 * The device connects when QEMU has set up its machine, before the guest
 * runs: a VM still silent after hello_timeout_s has a QEMU stuck before
 * that (or a device that cannot reach us). It stays PENDING, its link
 * down, with a reason that says so and the accelerator it was given.
 */
static gboolean on_hello_timeout(gpointer data)
{
    TvdVm *vm = data;
    const TvdSupervisorConfig *cfg = vm->sup->cfg;
    TvdVerdict v;

    vm->hello_timer = 0;
    if (vm->have_hello || !vm->running) {
        return G_SOURCE_REMOVE;
    }
    tvd_metrics_launch_failure(vm->sup, TVD_CAUSE_NO_DEVICE_HELLO);
    tvd_verdict_set(&v, TVD_STATE_PENDING, TVD_CAUSE_NO_DEVICE_HELLO,
                    "no device hello in %u s after launch (accel %s)",
                    cfg->hello_timeout_s, cfg->accel);
    g_warning("%s: %s: %s; see %s/qemu.log", vm->name,
              tvd_cause_name(v.cause), v.detail, vm->dir);
    /* An operator's decision in the meantime stands. */
    if (vm->state == TVD_STATE_PENDING) {
        tvd_vm_transition(vm, &v, "supervisor");
    }
    return G_SOURCE_REMOVE;
}

void tvd_vm_hello_timer_cancel(TvdVm *vm)
{
    g_clear_handle_id(&vm->hello_timer, g_source_remove);
}

gboolean tvd_vm_hello_arrived(TvdVm *vm)
{
    TvdVerdict v;

    tvd_vm_hello_timer_cancel(vm);
    if (vm->state != TVD_STATE_PENDING ||
        vm->cause != TVD_CAUSE_NO_DEVICE_HELLO) {
        return FALSE;
    }
    tvd_verdict_set(&v, TVD_STATE_PENDING, TVD_CAUSE_AWAITING,
                    "starting (the device hello came after the launch "
                    "timeout)");
    tvd_vm_transition(vm, &v, "device");
    return TRUE;
}

static void vm_exited(GObject *src, GAsyncResult *res, gpointer data)
{
    TvdVm *vm = data;
    GSubprocess *p = G_SUBPROCESS(src);

    g_subprocess_wait_finish(p, res, NULL);
    if (vm->qemu != p) {
        return;     /* an earlier run of this VM */
    }
    g_message("%s: QEMU exited (%s %d)", vm->name,
              g_subprocess_get_if_signaled(p) ? "signal" : "status",
              g_subprocess_get_if_signaled(p) ? g_subprocess_get_term_sig(p)
                                              : g_subprocess_get_exit_status(p));
    vm->running = FALSE;
    vm->qemu_pid = 0;
    tvd_vm_hello_timer_cancel(vm);
    g_clear_object(&vm->qemu);
    if (vm->swtpm) {
        /* A vTPM outlives its VM only by mistake. */
        g_subprocess_send_signal(vm->swtpm, SIGTERM);
        g_clear_object(&vm->swtpm);
    }
    tvd_vm_detach_conn(vm);
    tvd_vm_record_or_fail(vm);
}

TvdVm *tvd_supervisor_vm_start(TvdSupervisor *sup, const TvdVmSpec *spec,
                               GError **error)
{
    TvdVm *vm;
    g_autofree char *tpm_dir = NULL;
    g_autofree char *tpm_sock = NULL;
    g_auto(GStrv) argv = NULL;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autofree char *log_path = NULL;
    TvdVerdict pending;

    if (!tvd_api_name_is_valid(spec->name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "invalid VM name '%s': 1-%d of [A-Za-z0-9._-], not "
                    "starting with '-' or '.'", spec->name ? spec->name : "",
                    TVD_API_MAX_NAME);
        return NULL;
    }
    if (!spec->kernel || !spec->initrd) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "a kernel and an initrd are required");
        return NULL;
    }
    if (!spec->domain || !*spec->domain) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "a domain is required");
        return NULL;
    }
    vm = g_hash_table_lookup(sup->vms, spec->name);
    if (vm && vm->running) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s is already running", spec->name);
        return NULL;
    }
    /* A revocation is lifted by readmit only, never by a new start. */
    if (vm && vm->state == TVD_STATE_REVOKED) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s is revoked: readmit it first (tvdctl vm readmit %s)",
                    spec->name, spec->name);
        return NULL;
    }
    if (vm && vm->adopted) {
        /* Launched from now on: bound to the vTPM provisioned below, not
         * to an EK registered while it was adopted. */
        g_autofree char *registered = tvd_vm_registered_ek_path(vm);

        g_unlink(registered);
        vm->adopted = FALSE;
        vm->have_instance = FALSE;
        vm->qemu_pid = 0;
        if (!vm->sock_path) {
            vm->sock_path = g_strdup_printf("%s/vm-%s.sock", sup->cfg->run_dir,
                                            spec->name);
        }
    }
    if (!vm) {
        vm = tvd_vm_new(sup, spec->name);
        vm->dir = g_build_filename(sup->cfg->state_dir, "vms", spec->name,
                                   NULL);
        vm->sock_path = g_strdup_printf("%s/vm-%s.sock", sup->cfg->run_dir,
                                        spec->name);
    }
    tvd_vm_set_str(&vm->domain, spec->domain);
    tvd_vm_set_str(&vm->role, spec->role);
    tvd_vm_set_str(&vm->kernel, spec->kernel);
    tvd_vm_set_str(&vm->initrd, spec->initrd);
    tvd_vm_set_str(&vm->append, spec->append);
    vm->memory_mib = spec->memory_mib ? spec->memory_mib
                                      : sup->cfg->default_memory_mib;
    if (!vm->vm_id) {
        vm->vm_id = g_uuid_string_random();
    }
    tvd_verdict_set(&pending, TVD_STATE_PENDING, TVD_CAUSE_AWAITING,
                    "starting");
    tvd_vm_set_verdict(vm, &pending);
    vm->since_us = g_get_real_time();

    tpm_dir = g_build_filename(vm->dir, "vtpm", NULL);
    tpm_sock = g_strdup_printf("%s/swtpm-%s.sock", sup->cfg->run_dir,
                               spec->name);
    if (g_mkdir_with_parents(tpm_dir, 0700) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create %s: %s", tpm_dir, g_strerror(errno));
        return NULL;
    }
    g_clear_pointer(&vm->ek_cert, g_bytes_unref);
    if (!tvd_vtpm_provision(sup->cfg, tpm_dir, vm->name, &vm->ek_cert,
                            error)) {
        return NULL;
    }
    if (!vm->service && !tvd_vm_listen(vm, error)) {
        return NULL;
    }
    vm->swtpm = tvd_vtpm_start(sup->cfg, tpm_dir, tpm_sock, error);
    if (!vm->swtpm) {
        return NULL;
    }

    argv = tvd_launcher_qemu_argv(sup->cfg, vm->name, vm->vm_id, vm->domain,
                                  vm->kernel, vm->initrd, vm->append,
                                  vm->memory_mib, vm->sock_path, tpm_sock,
                                  vm->dir);
    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDIN_INHERIT);
    log_path = g_build_filename(vm->dir, "qemu.log", NULL);
    g_subprocess_launcher_set_stdout_file_path(launcher, log_path);
    g_subprocess_launcher_set_stderr_file_path(launcher, log_path);
    vm->qemu = g_subprocess_launcher_spawnv(launcher,
                                            (const char *const *)argv, error);
    if (!vm->qemu) {
        g_subprocess_send_signal(vm->swtpm, SIGTERM);
        g_clear_object(&vm->swtpm);
        return NULL;
    }
    vm->qemu_pid = atoi(g_subprocess_get_identifier(vm->qemu));
    vm->running = TRUE;
    g_subprocess_wait_async(vm->qemu, NULL, vm_exited, vm);
    tvd_vm_hello_timer_cancel(vm);
    if (!vm->have_hello) {
        /* Not g_timeout_add_seconds(): its first tick may come early. */
        vm->hello_timer = g_timeout_add(sup->cfg->hello_timeout_s * 1000u,
                                        on_hello_timeout, vm);
    }
    g_message("%s: started in domain %s (qemu pid %d)", vm->name, vm->domain,
              (int)vm->qemu_pid);
    tvd_vm_record_or_fail(vm);
    return vm;
}

gboolean tvd_supervisor_vm_stop(TvdSupervisor *sup, const char *name,
                                GError **error)
{
    TvdVm *vm = tvd_vm_lookup(sup, name, error);

    if (!vm) {
        return FALSE;
    }
    if (!vm->running) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s is not running", name);
        return FALSE;
    }
    if (vm->qemu) {
        g_subprocess_send_signal(vm->qemu, SIGTERM);
    } else if (vm->qemu_pid > 0) {
        kill(vm->qemu_pid, SIGTERM);
    }
    g_message("%s: stop requested", vm->name);
    return TRUE;
}

static gboolean on_pid_exit(gint fd, GIOCondition cond, gpointer data)
{
    TvdVm *vm = data;

    g_message("%s: QEMU (pid %d) exited", vm->name, (int)vm->qemu_pid);
    vm->pid_watch = 0;
    vm->running = FALSE;
    vm->qemu_pid = 0;
    tvd_vm_hello_timer_cancel(vm);
    tvd_vm_detach_conn(vm);
    tvd_vm_record_or_fail(vm);
    close(fd);
    return G_SOURCE_REMOVE;
}

gboolean tvd_vm_watch_pid(TvdVm *vm)
{
    int fd = syscall(SYS_pidfd_open, vm->qemu_pid, 0);

    if (fd < 0) {
        return FALSE;
    }
    vm->pid_watch = g_unix_fd_add(fd, G_IO_IN, on_pid_exit, vm);
    return TRUE;
}
