/*
 * What the parts of the supervisor core share: the VM and supervisor
 * structures and the functions one part offers the others. Private to
 * host/supervisor; supervisor.h is the interface.
 *
 *   vm.c            a VM: creation, transitions, operator decisions
 *   vm-record.c     the VM's record in the store (not the API's JSON)
 *   vm-admission.c  what the admission state machine needs from a VM
 *   launch.c        launching a VM: its vTPM and QEMU, stopping it
 *   adoption.c      VMs started by others, on the adoption socket
 *   vm-device.c     the VM's device connection and its callbacks
 *   metrics.c       counters and the Prometheus exposition
 *   supervisor.c    start-up, restore, domains, shutdown
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_PRIVATE_H
#define TVD_SUPERVISOR_PRIVATE_H

#include "supervisor.h"

#include "admission.h"
#include "api.h"
#include "audit.h"
#include "domains.h"
#include "store.h"

G_BEGIN_DECLS

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
    GList *adopt_pending;       /* AdoptCtx of devices without a hello yet */
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

/* vm.c */
TvdVm *tvd_vm_new(TvdSupervisor *sup, const char *name);
void tvd_vm_free(TvdVm *vm);
void tvd_vm_set_str(char **dst, const char *src);
/* The VM named @name, or NULL with a NOT_FOUND error. */
TvdVm *tvd_vm_lookup(TvdSupervisor *sup, const char *name, GError **error);
/* Pushes the VM's state to its device, if one has said hello. */
void tvd_vm_push_state(TvdVm *vm);
/* Appends a decision to the audit log (logged if that fails). */
void tvd_supervisor_audit_event(TvdSupervisor *sup, const char *actor,
                                const char *vm, const char *domain,
                                const char *event, const char *reason);

/* vm-record.c */
void tvd_vm_save(TvdVm *vm);
/* Every VM record in the store, back as VMs (their QEMUs followed). */
gboolean tvd_vm_restore_all(TvdSupervisor *sup, GError **error);

/* vm-admission.c */
extern const TvdAdmissionHost tvd_vm_admission_host;

/* launch.c */
/* Follows a QEMU that is not our child (started before a restart). */
gboolean tvd_vm_watch_pid(TvdVm *vm);

/* adoption.c */
gboolean tvd_adoption_start(TvdSupervisor *sup, GError **error);
void tvd_adoption_stop(TvdSupervisor *sup);

/* vm-device.c */
/* Listens on the VM's own device socket (launched VMs). */
gboolean tvd_vm_listen(TvdVm *vm, GError **error);
/* A listening socket only the supervisor's user may connect to. */
GSocketService *tvd_supervisor_listen_unix(const char *path, GCallback cb,
                                           gpointer data, GError **error);
/* @conn, which said @h, is now @vm's device connection. */
void tvd_vm_attach_conn(TvdVm *vm, TvdDeviceConn *conn,
                        const struct tvd_device_hello *h);
void tvd_vm_detach_conn(TvdVm *vm);

/* metrics.c */
void tvd_metrics_init(TvdSupervisor *sup);
void tvd_metrics_free(TvdSupervisor *sup);
void tvd_metrics_verdict(TvdVm *vm, enum tvd_state state, const char *reason);

G_END_DECLS

#endif /* TVD_SUPERVISOR_PRIVATE_H */
