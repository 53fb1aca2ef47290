/*
 * What the parts of the supervisor core share: the VM and supervisor
 * structures and the functions one part offers the others. Private to
 * host/supervisor; supervisor.h is the interface.
 *
 *   vm.c            a VM: creation, transitions, operator decisions
 *   vm-deadline.c   the VM's membership deadline
 *   vm-ek.c         the EK bound to the VM (registered for adopted VMs)
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
#include "cause.h"
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
    TvdCause cause;             /* why it is in that state */
    char *detail;               /* escaped and bounded (TvdVerdict) */
    char *reason;               /* "cause: detail", as shown */
    gint64 since_us;            /* wall clock of the last transition */
    gboolean adopted;

    /*
     * The membership deadline: an ADMITTED VM must bring verified evidence
     * again by last_verified + interval + deadline. Only an ADMITTED
     * verdict on verified evidence moves last_verified (persisted).
     */
    gint64 last_verified_us;    /* wall clock, 0: never */
    guint deadline_id;

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
    guint hello_timer;          /* launched, its device has not said hello */

    TvdAdmission *adm;

    /* device */
    guint8 device_instance[16];  /* of the QEMU process last heard (hello) */
    gboolean have_instance;     /* persisted with the record */
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
    guint64 failures[TVD_CAUSE_COUNT_]; /* rejections by cause */
    gboolean fail_store_writes; /* tests: every VM record write fails */
    guint64 no_device_hello;    /* launches whose device never said hello */
    TvdPromHistogram latency;   /* request to verdict, seconds */
};

/* vm.c */
TvdVm *tvd_vm_new(TvdSupervisor *sup, const char *name);
void tvd_vm_free(TvdVm *vm);
void tvd_vm_set_str(char **dst, const char *src);
/*
 * Saves the VM's record; when that fails, a member is taken out of
 * membership (QUARANTINED, store-failure) and its device told: a state that
 * is not durable must not keep a link up. Returns whether it was saved.
 */
gboolean tvd_vm_record_or_fail(TvdVm *vm);
/* State, cause, detail and reason from @v, nothing else (no record). */
void tvd_vm_set_verdict(TvdVm *vm, const TvdVerdict *v);
/* ISO 8601 of a wall-clock time, NULL for 0. */
char *tvd_vm_time_string(gint64 wall_us);
/* The VM named @name, or NULL with a NOT_FOUND error. */
TvdVm *tvd_vm_lookup(TvdSupervisor *sup, const char *name, GError **error);
/* Pushes the VM's state to its device, if one has said hello. */
void tvd_vm_push_state(TvdVm *vm);
/*
 * Appends a decision to the audit log, with the verdict's cause, class and
 * detail when there is one; FALSE (logged) if the log refused it.
 */
gboolean tvd_supervisor_audit_event(TvdSupervisor *sup, const char *actor,
                                    const char *vm, const char *domain,
                                    const char *event, const char *reason,
                                    const TvdVerdict *verdict);

/* vm-deadline.c */
/* Arms the deadline timer while the VM is ADMITTED, else disarms it. */
void tvd_vm_deadline_update(TvdVm *vm);

/* vm-record.c */
/* Writes the VM's record; a failure is the caller's to handle (fail closed:
 * tvd_vm_record_or_fail). */
gboolean tvd_vm_save(TvdVm *vm, GError **error);
/* Every VM record in the store, back as VMs (their QEMUs followed). */
gboolean tvd_vm_restore_all(TvdSupervisor *sup, GError **error);

/* vm-ek.c */
/* Where an adopted VM's registered EK certificate (DER) is kept. */
char *tvd_vm_registered_ek_path(const TvdVm *vm);

/* vm-admission.c */
extern const TvdAdmissionHost tvd_vm_admission_host;

/* launch.c */
/* Follows a QEMU that is not our child (started before a restart). */
gboolean tvd_vm_watch_pid(TvdVm *vm);
/*
 * The device of @vm said hello: no launch timeout any more. TRUE when that
 * took back a "no-device-hello" reason (the state was pushed then).
 */
gboolean tvd_vm_hello_arrived(TvdVm *vm);
/* No hello is awaited any more (QEMU exited, the VM goes). */
void tvd_vm_hello_timer_cancel(TvdVm *vm);

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
void tvd_metrics_verdict(TvdVm *vm, const TvdVerdict *verdict);
/* A launch that failed before any verdict (TVD_CAUSE_NO_DEVICE_HELLO). */
void tvd_metrics_launch_failure(TvdSupervisor *sup, TvdCause cause);

G_END_DECLS

#endif /* TVD_SUPERVISOR_PRIVATE_H */
