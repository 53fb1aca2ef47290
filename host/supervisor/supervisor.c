/*
 * tvd-supervisor core: see supervisor.h.
 *
 * Each VM the supervisor launches gets its own listening socket; the VM's
 * tvd device connects to it (reconnecting by itself), so a connection on
 * that socket is that VM's by construction. VMs started by others connect
 * to the shared adoption socket and are identified by their device hello
 * and the peer's credentials.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor.h"

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include "admission.h"
#include "api.h"
#include "audit.h"
#include "domains.h"
#include "frame.h"
#include "json-util.h"
#include "launcher.h"
#include "message.h"
#include "store.h"
#include "vtpm.h"

G_DEFINE_QUARK(tvd-supervisor-error-quark, tvd_supervisor_error)

#define TVD_NAME_MAX    48

struct TvdVm {
    TvdSupervisor *sup;
    char *name;
    char *vm_id;
    char *domain;
    char *role;
    guint32 state;
    guint32 reason_code;
    char *reason;
    gint64 since_us;            /* wall clock of the last transition */
    gboolean adopted;

    /* launch */
    char *kernel;
    char *initrd;
    char *append;
    guint memory_mib;
    char *dir;                  /* state: vTPM, console log, record */
    char *sock_path;
    GSocketService *service;    /* this VM's device socket */
    GSubprocess *qemu;
    GSubprocess *swtpm;
    pid_t qemu_pid;
    guint pid_watch;            /* QEMU of an earlier supervisor run */
    gboolean running;
    GBytes *ek_cert;

    TvdAdmission *adm;

    /* device */
    TvdDeviceConn *conn;
    struct tvd_device_hello hello;
    gboolean have_hello;
    guint32 device_status;
    guint32 device_epoch;
};

struct TvdSupervisor {
    TvdSupervisorConfig *cfg;
    GHashTable *vms;            /* name -> TvdVm */
    GSocketService *adopt;
    GList *adopt_pending;       /* TvdDeviceConn without a hello yet */
    char *ca_root;
    TvdDomains *domains;
    TvdAdmissionShared shared;  /* nonces, CA, default timings */
    TvdStore *store;            /* VM records under /vms/ */
    TvdAuditLog *audit;

    /* metrics */
    guint64 verdicts;
    GHashTable *failures;       /* reason class -> count (GUINT_TO_POINTER) */
    TvdPromHistogram latency;   /* request to verdict, seconds */
};

#define VM_KEY_PREFIX   "/vms/"

static const char *const state_names[] = {
    [TVD_STATE_PENDING] = "PENDING",
    [TVD_STATE_ADMITTED] = "ADMITTED",
    [TVD_STATE_QUARANTINED] = "QUARANTINED",
    [TVD_STATE_REVOKED] = "REVOKED",
};

const char *tvd_state_name(guint32 state)
{
    if (state >= G_N_ELEMENTS(state_names) || !state_names[state]) {
        return "UNKNOWN";
    }
    return state_names[state];
}

/* ---- VM records --------------------------------------------------------- */

static gboolean name_is_valid(const char *name)
{
    gsize len = name ? strlen(name) : 0;

    if (len == 0 || len > TVD_NAME_MAX || name[0] == '-' || name[0] == '.') {
        return FALSE;
    }
    for (const char *p = name; *p; p++) {
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.') {
            return FALSE;
        }
    }
    return TRUE;
}

static void vm_free(TvdVm *vm)
{
    tvd_admission_free(vm->adm);
    if (vm->pid_watch) {
        g_source_remove(vm->pid_watch);
    }
    tvd_device_conn_free(vm->conn);
    if (vm->service) {
        g_socket_service_stop(vm->service);
        g_socket_listener_close(G_SOCKET_LISTENER(vm->service));
        g_object_unref(vm->service);
    }
    g_clear_object(&vm->qemu);
    g_clear_object(&vm->swtpm);
    g_clear_pointer(&vm->ek_cert, g_bytes_unref);
    g_free(vm->name);
    g_free(vm->vm_id);
    g_free(vm->domain);
    g_free(vm->role);
    g_free(vm->reason);
    g_free(vm->kernel);
    g_free(vm->initrd);
    g_free(vm->append);
    g_free(vm->dir);
    g_free(vm->sock_path);
    g_free(vm);
}

static void vm_set_str(char **dst, const char *src)
{
    g_free(*dst);
    *dst = g_strdup(src);
}

void tvd_vm_to_json(const TvdVm *vm, JsonBuilder *b)
{
    g_autoptr(GDateTime) since = g_date_time_new_from_unix_utc(
        vm->since_us / G_USEC_PER_SEC);
    g_autofree char *since_s = since ? g_date_time_format_iso8601(since) : NULL;

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "name");
    json_builder_add_string_value(b, vm->name);
    json_builder_set_member_name(b, "vm_id");
    json_builder_add_string_value(b, vm->vm_id ? vm->vm_id : "");
    json_builder_set_member_name(b, "domain");
    json_builder_add_string_value(b, vm->domain ? vm->domain : "");
    json_builder_set_member_name(b, "role");
    json_builder_add_string_value(b, vm->role ? vm->role : "");
    json_builder_set_member_name(b, "state");
    json_builder_add_string_value(b, tvd_state_name(vm->state));
    json_builder_set_member_name(b, "reason_code");
    json_builder_add_int_value(b, vm->reason_code);
    json_builder_set_member_name(b, "reason");
    json_builder_add_string_value(b, vm->reason ? vm->reason : "");
    json_builder_set_member_name(b, "since");
    json_builder_add_string_value(b, since_s ? since_s : "");
    json_builder_set_member_name(b, "adopted");
    json_builder_add_boolean_value(b, vm->adopted);
    json_builder_set_member_name(b, "running");
    json_builder_add_boolean_value(b, vm->running);
    json_builder_set_member_name(b, "connected");
    json_builder_add_boolean_value(b, vm->conn != NULL);
    json_builder_set_member_name(b, "link_up");
    json_builder_add_boolean_value(b, vm->conn &&
                                   (vm->device_status & TVD_STATUS_LINK_UP));
    json_builder_set_member_name(b, "qemu_pid");
    json_builder_add_int_value(b, vm->qemu_pid);
    if (!vm->adopted && !strcmp(vm->sup->cfg->nic, "tap")) {
        g_autofree char *tap = tvd_launcher_tap_name(vm->name);

        json_builder_set_member_name(b, "tap");
        json_builder_add_string_value(b, tap);
    }
    if (!vm->adopted) {
        json_builder_set_member_name(b, "kernel");
        json_builder_add_string_value(b, vm->kernel ? vm->kernel : "");
        json_builder_set_member_name(b, "initrd");
        json_builder_add_string_value(b, vm->initrd ? vm->initrd : "");
        json_builder_set_member_name(b, "append");
        json_builder_add_string_value(b, vm->append ? vm->append : "");
        json_builder_set_member_name(b, "memory");
        json_builder_add_int_value(b, vm->memory_mib);
    }
    json_builder_end_object(b);
}

static const TvdAdmissionHost admission_host;

/* Every VM starts here: the record and its admission state machine. */
static TvdVm *vm_new(TvdSupervisor *sup, const char *name)
{
    TvdVm *vm = g_new0(TvdVm, 1);

    vm->sup = sup;
    vm->name = g_strdup(name);
    vm->adm = tvd_admission_new(&admission_host, vm, &sup->shared);
    g_hash_table_insert(sup->vms, vm->name, vm);
    return vm;
}

static JsonNode *vm_record(const TvdVm *vm)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    tvd_vm_to_json(vm, b);
    return json_builder_get_root(b);
}

/*
 * The VM's record in the store, written before a new state is pushed to
 * the device: a supervisor killed at any point restarts with every state.
 */
static void vm_save(TvdVm *vm)
{
    g_autoptr(JsonGenerator) gen = json_generator_new();
    g_autoptr(JsonNode) root = vm_record(vm);
    g_autofree char *key = g_strconcat(VM_KEY_PREFIX, vm->name, NULL);
    g_autofree char *text = NULL;
    g_autoptr(GError) err = NULL;

    if (!vm->sup->store) {
        return;
    }
    json_generator_set_root(gen, root);
    text = json_generator_to_data(gen, NULL);
    if (!tvd_store_put_string(vm->sup->store, key, text, NULL, &err)) {
        g_critical("%s: cannot save the VM record: %s", vm->name,
                   err->message);
    }
}

static void audit(TvdSupervisor *sup, const char *actor, const char *vm,
                  const char *domain, const char *event, const char *reason)
{
    g_autoptr(GError) err = NULL;

    if (sup->audit && !tvd_audit_append(sup->audit, actor, vm, domain, event,
                                        reason, NULL, NULL, &err)) {
        g_critical("audit log: %s", err->message);
    }
}

/* ---- transitions -------------------------------------------------------- */

static void vm_push_state(TvdVm *vm)
{
    g_autoptr(GError) err = NULL;

    if (!vm->conn || !vm->have_hello) {
        return;
    }
    if (!tvd_device_conn_set_state(vm->conn, vm->state, vm->reason_code,
                                   &err)) {
        g_warning("%s: cannot push %s to the device: %s", vm->name,
                  tvd_state_name(vm->state), err->message);
    }
}

void tvd_vm_transition(TvdVm *vm, enum tvd_state state, guint32 code,
                       const char *reason, const char *actor)
{
    guint32 old = vm->state;

    vm->state = state;
    vm->reason_code = code;
    vm_set_str(&vm->reason, reason);
    vm->since_us = g_get_real_time();
    g_message("%s: %s -> %s by %s: %s", vm->name, tvd_state_name(old),
              tvd_state_name(state), actor, reason ? reason : "");
    /* Recorded first, then the device: the link gate follows at once. */
    vm_save(vm);
    vm_push_state(vm);
    {
        g_autofree char *event = g_ascii_strdown(tvd_state_name(state), -1);

        audit(vm->sup, actor, vm->name, vm->domain, event, reason);
    }
}

/* ---- device callbacks --------------------------------------------------- */

static void vm_detach_conn(TvdVm *vm)
{
    tvd_admission_reset(vm->adm);
    g_clear_pointer(&vm->conn, tvd_device_conn_free);
    vm->have_hello = FALSE;
    vm->device_status = 0;
}

static void on_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                     void *opaque)
{
    TvdVm *vm = opaque;

    vm->hello = *h;
    vm->have_hello = TRUE;
    vm->device_status = h->status;
    vm->device_epoch = h->epoch;
    if (h->vm_id[0]) {
        vm_set_str(&vm->vm_id, h->vm_id);
    }
    if (!vm->domain && h->domain[0]) {
        vm_set_str(&vm->domain, h->domain);
    }
    g_message("%s: device hello (vm-id %s, domain %s, device state %s, "
              "qemu pid %d)", vm->name, h->vm_id, h->domain,
              tvd_state_name(h->state), (int)tvd_device_conn_peer_pid(conn));
    /* A new connection: the agent says hello again and is bound anew. */
    tvd_admission_reset(vm->adm);
    /*
     * A reconnecting device gets the state we hold, whatever it remembers:
     * the supervisor is the authority (and in fail-mode closed the link
     * stays down until this push).
     */
    vm_push_state(vm);
}

static void on_event(TvdDeviceConn *conn, const struct tvd_device_event *ev,
                     void *opaque)
{
    TvdVm *vm = opaque;

    vm->device_status = ev->status;
    switch (ev->event) {
    case TVD_EVENT_STATE_APPLIED:
        vm->device_epoch = ev->arg1;
        g_debug("%s: device applied %s at epoch %u (link %s)", vm->name,
                tvd_state_name(ev->arg0), ev->arg1,
                ev->status & TVD_STATUS_LINK_UP ? "up" : "down");
        break;
    case TVD_EVENT_RESET:
        tvd_admission_reset(vm->adm);
        /* A rebooted guest must prove itself again. */
        if (vm->state == TVD_STATE_ADMITTED) {
            tvd_vm_transition(vm, TVD_STATE_PENDING, TVD_REASON_DEVICE_RESET,
                              "guest reset: re-attestation required", "device");
        } else {
            vm_push_state(vm);
        }
        break;
    case TVD_EVENT_MIGRATED:
        if (vm->state == TVD_STATE_ADMITTED) {
            tvd_vm_transition(vm, TVD_STATE_PENDING, TVD_REASON_MIGRATED,
                              "arrived by migration: re-attestation required",
                              "device");
        }
        break;
    case TVD_EVENT_H2G_DROPPED:
        g_warning("%s: the device dropped a frame for the agent (%u in all)",
                  vm->name, ev->arg0);
        break;
    case TVD_EVENT_GUEST_ERROR:
        g_warning("%s: the guest misused the device (error %u, %u in all)",
                  vm->name, ev->arg0, ev->arg1);
        break;
    default:
        g_debug("%s: device event %u", vm->name, ev->event);
        break;
    }
}

static void on_agent(TvdDeviceConn *conn, GBytes *payload, void *opaque)
{
    TvdVm *vm = opaque;

    tvd_admission_agent_frame(vm->adm, payload);
}

static void on_closed(TvdDeviceConn *conn, const char *why, void *opaque)
{
    TvdVm *vm = opaque;

    g_message("%s: device connection closed: %s", vm->name, why);
    if (vm->conn == conn) {
        /* Safe inside its own callback: the reader holds a reference. */
        vm_detach_conn(vm);
    }
}

static const TvdDeviceConnOps vm_conn_ops = {
    .hello = on_hello,
    .event = on_event,
    .agent = on_agent,
    .closed = on_closed,
};

static gboolean on_vm_incoming(GSocketService *service,
                               GSocketConnection *sc, GObject *src,
                               gpointer data)
{
    TvdVm *vm = data;

    if (vm->conn) {
        /* The device reconnected before we saw the old one go. */
        vm_detach_conn(vm);
    }
    vm->conn = tvd_device_conn_new(sc, &vm_conn_ops, vm);
    return TRUE;
}

static GSocketService *listen_unix(const char *path, GCallback cb,
                                   gpointer data, GError **error)
{
    g_autoptr(GSocketService) service = g_socket_service_new();
    g_autoptr(GSocketAddress) addr = NULL;

    g_unlink(path);
    addr = g_unix_socket_address_new(path);
    if (!g_socket_listener_add_address(G_SOCKET_LISTENER(service), addr,
                                       G_SOCKET_TYPE_STREAM,
                                       G_SOCKET_PROTOCOL_DEFAULT, NULL, NULL,
                                       error)) {
        return NULL;
    }
    /* Only the supervisor's user (and QEMU running as it) may connect. */
    if (g_chmod(path, 0600) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot restrict %s: %s", path, g_strerror(errno));
        return NULL;
    }
    g_signal_connect(service, "incoming", cb, data);
    g_socket_service_start(service);
    return g_steal_pointer(&service);
}

/* ---- adoption ------------------------------------------------------------- */

typedef struct {
    TvdSupervisor *sup;
    TvdDeviceConn *conn;
} AdoptCtx;

static void adopt_closed(TvdDeviceConn *conn, const char *why, void *opaque)
{
    AdoptCtx *ctx = opaque;

    g_message("an unidentified device left: %s", why);
    ctx->sup->adopt_pending = g_list_remove(ctx->sup->adopt_pending, ctx);
    /* Safe inside its own callback: the reader holds a reference. */
    tvd_device_conn_free(conn);
    g_free(ctx);
}

static void adopt_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                        void *opaque);

static const TvdDeviceConnOps adopt_ops = {
    .hello = adopt_hello,
    .closed = adopt_closed,
};

/*
 * A device on the shared socket names itself: by -name when it has one,
 * else by its vm-id. The peer's pid is recorded, so the VM can be told
 * apart from another one that claims the same name later.
 */
static void adopt_hello(TvdDeviceConn *conn, const struct tvd_device_hello *h,
                        void *opaque)
{
    AdoptCtx *ctx = opaque;
    TvdSupervisor *sup = ctx->sup;
    const char *name = h->name[0] ? h->name : h->vm_id;
    TvdVm *vm;

    sup->adopt_pending = g_list_remove(sup->adopt_pending, ctx);
    if (!name_is_valid(name)) {
        g_warning("refusing a device with no usable name (name '%s', "
                  "vm-id '%s')", h->name, h->vm_id);
        adopt_closed(conn, "no usable name", ctx);
        return;
    }
    vm = g_hash_table_lookup(sup->vms, name);
    if (vm && !vm->adopted) {
        g_warning("refusing an adopted device named %s: a launched VM has "
                  "that name", name);
        adopt_closed(conn, "name taken", ctx);
        return;
    }
    if (!vm) {
        vm = vm_new(sup, name);
        vm->adopted = TRUE;
        vm->state = TVD_STATE_PENDING;
        vm->reason_code = TVD_REASON_AWAITING;
        vm->reason = g_strdup("adopted: awaiting attestation");
        vm->since_us = g_get_real_time();
        vm->dir = g_build_filename(sup->cfg->state_dir, "vms", name, NULL);
        g_mkdir_with_parents(vm->dir, 0700);
        g_message("%s: adopted (qemu pid %d, uid %d)", name,
                  (int)tvd_device_conn_peer_pid(conn),
                  (int)tvd_device_conn_peer_uid(conn));
    }
    if (vm->conn) {
        vm_detach_conn(vm);
    }
    vm->conn = conn;
    vm->qemu_pid = tvd_device_conn_peer_pid(conn);
    vm->running = TRUE;
    g_free(ctx);
    /* From now on the connection reports to the VM. */
    tvd_device_conn_set_ops(conn, &vm_conn_ops, vm);
    on_hello(conn, h, vm);
}

static gboolean on_adopt_incoming(GSocketService *service,
                                  GSocketConnection *sc, GObject *src,
                                  gpointer data)
{
    TvdSupervisor *sup = data;
    AdoptCtx *ctx = g_new0(AdoptCtx, 1);

    ctx->sup = sup;
    ctx->conn = tvd_device_conn_new(sc, &adopt_ops, ctx);
    sup->adopt_pending = g_list_prepend(sup->adopt_pending, ctx);
    return TRUE;
}

/* ---- lifecycle of launched VMs ------------------------------------------ */

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
    g_clear_object(&vm->qemu);
    if (vm->swtpm) {
        /* A vTPM outlives its VM only by mistake. */
        g_subprocess_send_signal(vm->swtpm, SIGTERM);
        g_clear_object(&vm->swtpm);
    }
    vm_detach_conn(vm);
    vm_save(vm);
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

    if (!name_is_valid(spec->name)) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_INVALID,
                    "invalid VM name '%s': 1-%d of [A-Za-z0-9._-], not "
                    "starting with '-' or '.'", spec->name ? spec->name : "",
                    TVD_NAME_MAX);
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
    if (!vm) {
        vm = vm_new(sup, spec->name);
        vm->dir = g_build_filename(sup->cfg->state_dir, "vms", spec->name,
                                   NULL);
        vm->sock_path = g_strdup_printf("%s/vm-%s.sock", sup->cfg->run_dir,
                                        spec->name);
    }
    vm_set_str(&vm->domain, spec->domain);
    vm_set_str(&vm->role, spec->role);
    vm_set_str(&vm->kernel, spec->kernel);
    vm_set_str(&vm->initrd, spec->initrd);
    vm_set_str(&vm->append, spec->append);
    vm->memory_mib = spec->memory_mib ? spec->memory_mib
                                      : sup->cfg->default_memory_mib;
    if (!vm->vm_id) {
        vm->vm_id = g_uuid_string_random();
    }
    vm->state = TVD_STATE_PENDING;
    vm->reason_code = TVD_REASON_AWAITING;
    vm_set_str(&vm->reason, "starting: awaiting attestation");
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
    if (!vm->service) {
        vm->service = listen_unix(vm->sock_path, G_CALLBACK(on_vm_incoming),
                                  vm, error);
        if (!vm->service) {
            return NULL;
        }
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
    g_message("%s: started in domain %s (qemu pid %d)", vm->name, vm->domain,
              (int)vm->qemu_pid);
    vm_save(vm);
    return vm;
}

/* The VM named @name, or NULL with a NOT_FOUND error. */
static TvdVm *vm_lookup(TvdSupervisor *sup, const char *name, GError **error)
{
    TvdVm *vm = tvd_supervisor_vm_find(sup, name);

    if (!vm) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_NOT_FOUND,
                    "no VM named %s", name);
    }
    return vm;
}

gboolean tvd_supervisor_vm_stop(TvdSupervisor *sup, const char *name,
                                GError **error)
{
    TvdVm *vm = vm_lookup(sup, name, error);

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

TvdVm *tvd_supervisor_vm_find(TvdSupervisor *sup, const char *name)
{
    return name ? g_hash_table_lookup(sup->vms, name) : NULL;
}

static gint vm_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(((const TvdVm *)a)->name, ((const TvdVm *)b)->name);
}

GList *tvd_supervisor_vm_list(TvdSupervisor *sup)
{
    return g_list_sort(g_hash_table_get_values(sup->vms), vm_cmp);
}

gboolean tvd_supervisor_vm_revoke(TvdSupervisor *sup, const char *name,
                                  const char *reason, GError **error)
{
    TvdVm *vm = vm_lookup(sup, name, error);
    g_autofree char *why = NULL;

    if (!vm) {
        return FALSE;
    }
    why = g_strdup_printf("revoked by the operator%s%s",
                          reason && *reason ? ": " : "",
                          reason && *reason ? reason : "");
    tvd_vm_transition(vm, TVD_STATE_REVOKED, TVD_REASON_ADMIN, why, "operator");
    return TRUE;
}

gboolean tvd_supervisor_vm_readmit(TvdSupervisor *sup, const char *name,
                                   GError **error)
{
    TvdVm *vm = vm_lookup(sup, name, error);

    if (!vm) {
        return FALSE;
    }
    if (vm->state != TVD_STATE_REVOKED && vm->state != TVD_STATE_QUARANTINED) {
        g_set_error(error, TVD_SUPERVISOR_ERROR, TVD_SUPERVISOR_ERROR_CONFLICT,
                    "VM %s is %s: only a revoked or quarantined VM can be "
                    "readmitted", name, tvd_state_name(vm->state));
        return FALSE;
    }
    /* Readmission means a fresh attestation, never a free pass. */
    tvd_vm_transition(vm, TVD_STATE_PENDING, TVD_REASON_ADMIN,
                      "readmitted by the operator: awaiting attestation",
                      "operator");
    tvd_admission_reattest(vm->adm);
    return TRUE;
}

const char *tvd_vm_name(const TvdVm *vm)
{
    return vm->name;
}

enum tvd_state tvd_vm_state(const TvdVm *vm)
{
    return vm->state;
}

const char *tvd_vm_reason(const TvdVm *vm)
{
    return vm->reason;
}

gboolean tvd_vm_connected(const TvdVm *vm)
{
    return vm->conn != NULL && vm->have_hello;
}

guint32 tvd_vm_device_status(const TvdVm *vm)
{
    return vm->device_status;
}

/* ---- restart: VM records and their running QEMUs ------------------------ */

static guint32 state_from_name(const char *name)
{
    for (guint32 i = 0; i < G_N_ELEMENTS(state_names); i++) {
        if (state_names[i] && !g_strcmp0(state_names[i], name)) {
            return i;
        }
    }
    return 0;
}

static gboolean on_pid_exit(gint fd, GIOCondition cond, gpointer data)
{
    TvdVm *vm = data;

    g_message("%s: QEMU (pid %d) exited", vm->name, (int)vm->qemu_pid);
    vm->pid_watch = 0;
    vm->running = FALSE;
    vm->qemu_pid = 0;
    vm_detach_conn(vm);
    vm_save(vm);
    close(fd);
    return G_SOURCE_REMOVE;
}

/* Follow a QEMU that is not our child (started before a restart). */
static gboolean vm_watch_pid(TvdVm *vm)
{
    int fd = syscall(SYS_pidfd_open, vm->qemu_pid, 0);

    if (fd < 0) {
        return FALSE;
    }
    vm->pid_watch = g_unix_fd_add(fd, G_IO_IN, on_pid_exit, vm);
    return TRUE;
}

static void vm_restore(TvdSupervisor *sup, TvdStoreEntry *entry)
{
    g_autoptr(JsonParser) parser = json_parser_new();
    g_autoptr(GError) err = NULL;
    JsonObject *o;
    const char *name;
    TvdVm *vm;
    GDateTime *since;
    gsize len;
    const char *data = g_bytes_get_data(entry->value, &len);

    if (!json_parser_load_from_data(parser, data, len, &err) ||
        !JSON_NODE_HOLDS_OBJECT(json_parser_get_root(parser))) {
        g_warning("ignoring the unreadable VM record %s: %s", entry->key,
                  err ? err->message : "not an object");
        return;
    }
    o = json_node_get_object(json_parser_get_root(parser));
    name = tvd_json_string_member(o, "name");
    if (!name_is_valid(name) || g_hash_table_contains(sup->vms, name) ||
        !state_from_name(tvd_json_string_member(o, "state"))) {
        g_warning("ignoring the invalid VM record %s", entry->key);
        return;
    }
    vm = vm_new(sup, name);
    vm->dir = g_build_filename(sup->cfg->state_dir, "vms", name, NULL);
    vm->vm_id = g_strdup(tvd_json_string_member(o, "vm_id"));
    vm->domain = g_strdup(tvd_json_string_member(o, "domain"));
    vm->role = g_strdup(tvd_json_string_member(o, "role"));
    vm->state = state_from_name(tvd_json_string_member(o, "state"));
    vm->reason_code = json_object_get_int_member_with_default(o, "reason_code",
                                                              0);
    vm->reason = g_strdup(tvd_json_string_member(o, "reason"));
    since = g_date_time_new_from_iso8601(tvd_json_string_member(o, "since") ?
                                         tvd_json_string_member(o, "since") : "", NULL);
    vm->since_us = since ? g_date_time_to_unix(since) * G_USEC_PER_SEC
                         : g_get_real_time();
    g_clear_pointer(&since, g_date_time_unref);
    vm->adopted = json_object_get_boolean_member_with_default(o, "adopted",
                                                              FALSE);
    vm->kernel = g_strdup(tvd_json_string_member(o, "kernel"));
    vm->initrd = g_strdup(tvd_json_string_member(o, "initrd"));
    vm->append = g_strdup(tvd_json_string_member(o, "append"));
    vm->memory_mib = json_object_get_int_member_with_default(o, "memory", 0);
    vm->qemu_pid = json_object_get_int_member_with_default(o, "qemu_pid", 0);
    if (!vm->adopted) {
        vm->sock_path = g_strdup_printf("%s/vm-%s.sock", sup->cfg->run_dir,
                                        vm->name);
        vm->service = listen_unix(vm->sock_path, G_CALLBACK(on_vm_incoming),
                                  vm, &err);
        if (!vm->service) {
            g_warning("%s: cannot listen again: %s", vm->name, err->message);
        }
    }
    vm->running = vm->qemu_pid > 0 && vm_watch_pid(vm);
    if (!vm->running) {
        vm->qemu_pid = 0;
    }
    g_message("%s: restored %s (%s)%s", vm->name, tvd_state_name(vm->state),
              vm->reason ? vm->reason : "",
              vm->running ? ", QEMU still running" : "");
}

static gboolean restore_all(TvdSupervisor *sup, GError **error)
{
    g_autoptr(GPtrArray) entries = tvd_store_list(sup->store, VM_KEY_PREFIX,
                                                  NULL, error);

    if (!entries) {
        return FALSE;
    }
    for (guint i = 0; i < entries->len; i++) {
        vm_restore(sup, entries->pdata[i]);
    }
    return TRUE;
}

/* ---- what the admission needs from a VM ------------------------------------ */

static gboolean adm_send(void *opaque, GBytes *payload, GError **error)
{
    TvdVm *vm = opaque;

    if (!vm->conn) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_CONNECTED,
                    "the device is not connected");
        return FALSE;
    }
    return tvd_device_conn_send_agent(vm->conn, payload, error);
}

static void adm_verdict(void *opaque, enum tvd_state state, guint32 code,
                        const char *reason, gboolean stop)
{
    TvdVm *vm = opaque;

    const TvdAdmissionStats *st = tvd_admission_stats(vm->adm);

    vm->sup->verdicts++;
    if (st->last_round_us > 0) {
        tvd_prom_histogram_observe(&vm->sup->latency,
                                   st->last_round_us / 1e6);
    }
    if (state != TVD_STATE_ADMITTED) {
        /* "nonce-reused: ..." counts as nonce-reused. */
        g_autofree char *cls = g_strndup(reason, strcspn(reason, ":"));
        gpointer n = g_hash_table_lookup(vm->sup->failures, cls);

        g_hash_table_insert(vm->sup->failures, g_steal_pointer(&cls),
                            GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
    }
    /* A revoked VM stays revoked until the operator readmits it. */
    if (vm->state == TVD_STATE_REVOKED && state != TVD_STATE_REVOKED) {
        return;
    }
    if (vm->state != state || vm->reason_code != code ||
        g_strcmp0(vm->reason, reason)) {
        tvd_vm_transition(vm, state, code, reason, "verifier");
    }
    if (stop && vm->running) {
        tvd_supervisor_vm_stop(vm->sup, vm->name, NULL);
    }
}

static enum tvd_state adm_state(void *opaque)
{
    return ((TvdVm *)opaque)->state;
}

static TvdPolicy *adm_policy(void *opaque)
{
    TvdVm *vm = opaque;

    return tvd_domains_get(vm->sup->domains, vm->domain);
}

static GBytes *adm_ek_cert(void *opaque, guint8 ek_type)
{
    TvdVm *vm = opaque;
    g_autofree char *path = NULL;
    g_autofree char *data = NULL;
    gsize len;

    if (vm->adopted || !vm->dir) {
        return NULL;
    }
    path = g_build_filename(vm->dir, "vtpm", ek_type == TVD_EK_ECC
                            ? "ek-ecc.der" : "ek-rsa.der", NULL);
    if (!g_file_get_contents(path, &data, &len, NULL)) {
        /* Launched but without that certificate: nothing can match. */
        return g_bytes_new_static("", 0);
    }
    return g_bytes_new_take(g_steal_pointer(&data), len);
}

static const char *adm_name(void *opaque)
{
    return ((TvdVm *)opaque)->name;
}

static const TvdAdmissionHost admission_host = {
    .send = adm_send,
    .verdict = adm_verdict,
    .state = adm_state,
    .policy = adm_policy,
    .ek_cert = adm_ek_cert,
    .name = adm_name,
};

/* A domain's requirements changed: every member proves itself again. */
static void on_domain_changed(const char *name, void *opaque)
{
    TvdSupervisor *sup = opaque;
    GHashTableIter it;
    TvdVm *vm;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        if (!g_strcmp0(vm->domain, name)) {
            tvd_admission_reattest(vm->adm);
        }
    }
}

static guint count_members(const char *name, void *opaque)
{
    TvdSupervisor *sup = opaque;
    GHashTableIter it;
    TvdVm *vm;
    guint n = 0;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        n += !g_strcmp0(vm->domain, name);
    }
    return n;
}

gboolean tvd_supervisor_domain_create(TvdSupervisor *sup, GBytes *policy,
                                      GBytes *sig, char **name,
                                      GError **error)
{
    g_autofree char *created = NULL;

    if (!tvd_domains_create(sup->domains, policy, sig, &created, error)) {
        return FALSE;
    }
    audit(sup, "operator", NULL, created, "domain-create",
          tvd_policy_get_digest_string(tvd_domains_get(sup->domains,
                                                       created)));
    if (name) {
        *name = g_steal_pointer(&created);
    }
    return TRUE;
}

gboolean tvd_supervisor_domain_update(TvdSupervisor *sup, const char *name,
                                      GBytes *policy, GBytes *sig,
                                      GError **error)
{
    if (!tvd_domains_update(sup->domains, name, policy, sig, error)) {
        return FALSE;
    }
    audit(sup, "operator", NULL, name, "domain-update",
          tvd_policy_get_digest_string(tvd_domains_get(sup->domains, name)));
    return TRUE;
}

void tvd_supervisor_metrics(TvdSupervisor *sup, GString *out)
{
    guint by_state[TVD_STATE_MAX + 1] = { 0 };
    guint connected = 0;
    guint running = 0;
    guint64 rounds = 0;
    GHashTableIter it;
    gpointer key;
    gpointer val;
    TvdVm *vm;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        const TvdAdmissionStats *st = tvd_admission_stats(vm->adm);

        if (vm->state <= TVD_STATE_MAX) {
            by_state[vm->state]++;
        }
        connected += tvd_vm_connected(vm);
        running += vm->running;
        rounds += st->rounds;
    }
    tvd_prom_family(out, "tvd_members", "gauge", "VMs by membership state");
    for (guint s = TVD_STATE_PENDING; s <= TVD_STATE_MAX; s++) {
        const char *labels[] = { "state", tvd_state_name(s), NULL };

        tvd_prom_sample(out, "tvd_members", labels, by_state[s]);
    }
    tvd_prom_family(out, "tvd_vms_running", "gauge", "VMs whose QEMU runs");
    tvd_prom_sample(out, "tvd_vms_running", NULL, running);
    tvd_prom_family(out, "tvd_devices_connected", "gauge",
                    "tvd devices connected to this supervisor");
    tvd_prom_sample(out, "tvd_devices_connected", NULL, connected);
    tvd_prom_family(out, "tvd_attestations_total", "counter",
                    "evidence rounds verified");
    tvd_prom_sample(out, "tvd_attestations_total", NULL, rounds);
    tvd_prom_family(out, "tvd_attestation_failures_total", "counter",
                    "rounds that ended in a rejection, by reason");
    g_hash_table_iter_init(&it, sup->failures);
    while (g_hash_table_iter_next(&it, &key, &val)) {
        const char *labels[] = { "reason", key, NULL };

        tvd_prom_sample(out, "tvd_attestation_failures_total", labels,
                        GPOINTER_TO_UINT(val));
    }
    tvd_prom_family(out, "tvd_verdict_seconds", "histogram",
                    "time from attestation request (or agent hello) to "
                    "verdict");
    tvd_prom_histogram_write(&sup->latency, out, "tvd_verdict_seconds", NULL);
}

TvdAuditLog *tvd_supervisor_audit(TvdSupervisor *sup)
{
    return sup->audit;
}

TvdDomains *tvd_supervisor_domains(TvdSupervisor *sup)
{
    return sup->domains;
}

/* ---- the supervisor ------------------------------------------------------- */

TvdSupervisor *tvd_supervisor_new(TvdSupervisorConfig *cfg)
{
    TvdSupervisor *sup = g_new0(TvdSupervisor, 1);

    g_autofree char *domains = g_build_filename(cfg->state_dir, "domains",
                                                NULL);

    sup->cfg = cfg;
    sup->vms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                     (GDestroyNotify)vm_free);
    sup->domains = tvd_domains_new(domains, cfg->trusted_keys_dir,
                                   on_domain_changed, count_members, sup);
    /* Enough outstanding nonces for every VM twice; each lives a deadline. */
    sup->shared.nonces = tvd_nonce_store_new(16384,
                                             (gint64)cfg->deadline_s * 2 *
                                             G_USEC_PER_SEC + 60 * G_USEC_PER_SEC);
    sup->shared.default_interval_ms = cfg->interval_s * 1000;
    sup->failures = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                          NULL);
    {
        static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5, 1, 2.5, 5, 10 };

        tvd_prom_histogram_init(&sup->latency, bounds, G_N_ELEMENTS(bounds));
    }
    sup->shared.default_deadline_ms = cfg->deadline_s * 1000;
    return sup;
}

const TvdSupervisorConfig *tvd_supervisor_config(TvdSupervisor *sup)
{
    return sup->cfg;
}

static gboolean make_dir(const char *path, int mode, GError **error)
{
    if (g_mkdir_with_parents(path, mode) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno),
                    "cannot create %s: %s", path, g_strerror(errno));
        return FALSE;
    }
    return TRUE;
}

gboolean tvd_supervisor_start(TvdSupervisor *sup, GError **error)
{
    g_autofree char *vms = g_build_filename(sup->cfg->state_dir, "vms", NULL);

    if (!make_dir(sup->cfg->state_dir, 0700, error) ||
        !make_dir(sup->cfg->run_dir, 0700, error) ||
        !make_dir(vms, 0700, error)) {
        return FALSE;
    }
    sup->ca_root = tvd_vtpm_ca_ensure(sup->cfg, error);
    if (!sup->ca_root) {
        return FALSE;
    }
    {
        /*
         * swtpm_localca signs EK certificates with its intermediate
         * (issuercert.pem), not with the root: the verifier needs both to
         * build the chain (each is a trust anchor, see tvd_ek_cert_verify).
         */
        g_autofree char *ca_dir = g_path_get_dirname(sup->ca_root);
        g_autofree char *issuer = g_build_filename(ca_dir, "issuercert.pem",
                                                   NULL);
        g_autofree char *pem = NULL;
        g_autofree char *issuer_pem = NULL;
        char *both;

        if (!g_file_get_contents(sup->ca_root, &pem, NULL, error) ||
            !g_file_get_contents(issuer, &issuer_pem, NULL, error)) {
            return FALSE;
        }
        both = g_strconcat(pem, "\n", issuer_pem, NULL);
        sup->shared.ca_pem = g_bytes_new_take(both, strlen(both));
    }
    if (!tvd_domains_load(sup->domains, error)) {
        return FALSE;
    }
    {
        g_autofree char *db = g_build_filename(sup->cfg->state_dir,
                                               "store.db", NULL);
        g_autofree char *log = g_build_filename(sup->cfg->state_dir,
                                                "audit.db", NULL);

        sup->store = tvd_store_sqlite_open(db, NULL, error);
        if (!sup->store) {
            return FALSE;
        }
        sup->audit = tvd_audit_open(log, sup->store, NULL, error);
        if (!sup->audit) {
            return FALSE;
        }
    }
    if (!restore_all(sup, error)) {
        return FALSE;
    }
    audit(sup, "supervisor", NULL, NULL, "start", NULL);
    sup->adopt = listen_unix(sup->cfg->adopt_socket,
                             G_CALLBACK(on_adopt_incoming), sup, error);
    return sup->adopt != NULL;
}

void tvd_supervisor_free(TvdSupervisor *sup)
{
    if (!sup) {
        return;
    }
    if (sup->adopt) {
        g_socket_service_stop(sup->adopt);
        g_socket_listener_close(G_SOCKET_LISTENER(sup->adopt));
        g_object_unref(sup->adopt);
    }
    while (sup->adopt_pending) {
        AdoptCtx *ctx = sup->adopt_pending->data;

        sup->adopt_pending = g_list_delete_link(sup->adopt_pending,
                                                sup->adopt_pending);
        tvd_device_conn_free(ctx->conn);
        g_free(ctx);
    }
    g_hash_table_destroy(sup->vms);
    g_clear_pointer(&sup->audit, tvd_audit_close);
    g_clear_pointer(&sup->store, tvd_store_unref);
    g_hash_table_destroy(sup->failures);
    tvd_domains_free(sup->domains);
    tvd_nonce_store_free(sup->shared.nonces);
    g_clear_pointer(&sup->shared.ca_pem, g_bytes_unref);
    g_free(sup->ca_root);
    tvd_config_free(sup->cfg);
    g_free(sup);
}
