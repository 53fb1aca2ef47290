/*
 * tvd-supervisor core: the VMs of this host, their devices, vTPMs and QEMU
 * processes, and their membership states. Every transition is pushed to the
 * VM's device at once (link gate) and recorded with its reason and time.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_H
#define TVD_SUPERVISOR_H

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "cause.h"
#include "config.h"
#include "device-conn.h"
#include "hw/misc/tvd.h"
#include "state-name.h"

G_BEGIN_DECLS

#define TVD_SUPERVISOR_ERROR (tvd_supervisor_error_quark())
GQuark tvd_supervisor_error_quark(void);

typedef enum {
    TVD_SUPERVISOR_ERROR_NOT_FOUND,
    TVD_SUPERVISOR_ERROR_INVALID,
    TVD_SUPERVISOR_ERROR_CONFLICT,
    TVD_SUPERVISOR_ERROR_FAILED,
} TvdSupervisorError;

typedef struct TvdSupervisor TvdSupervisor;
typedef struct TvdVm TvdVm;

/* What `tvdctl vm start` asks for. */
typedef struct {
    const char *name;
    const char *domain;
    const char *role;
    const char *kernel;
    const char *initrd;
    const char *append;
    guint memory_mib;       /* 0: the configured default */
} TvdVmSpec;

/* Takes ownership of @cfg. */
TvdSupervisor *tvd_supervisor_new(TvdSupervisorConfig *cfg);
void tvd_supervisor_free(TvdSupervisor *sup);
/* Creates directories and the vTPM CA, opens the adoption socket. */
gboolean tvd_supervisor_start(TvdSupervisor *sup, GError **error);
const TvdSupervisorConfig *tvd_supervisor_config(TvdSupervisor *sup);

TvdVm *tvd_supervisor_vm_start(TvdSupervisor *sup, const TvdVmSpec *spec,
                               GError **error);
gboolean tvd_supervisor_vm_stop(TvdSupervisor *sup, const char *name,
                                GError **error);
TvdVm *tvd_supervisor_vm_find(TvdSupervisor *sup, const char *name);
/* VMs sorted by name; the list is the caller's, the VMs are not. */
GList *tvd_supervisor_vm_list(TvdSupervisor *sup);

/* Operator decisions. */
gboolean tvd_supervisor_vm_revoke(TvdSupervisor *sup, const char *name,
                                  const char *reason, GError **error);
gboolean tvd_supervisor_vm_readmit(TvdSupervisor *sup, const char *name,
                                   GError **error);
/*
 * Binds the adopted VM @name to the EK of @ek_cert (DER, chaining to the
 * host's vTPM CA): only an agent whose EK is that certificate's key is
 * admitted. An adopted VM without a registered EK is never admitted. An
 * unknown @name is registered ahead of its device (a PENDING adopted VM).
 */
gboolean tvd_supervisor_vm_register_ek(TvdSupervisor *sup, const char *name,
                                       GBytes *ek_cert, GError **error);

/*
 * Move @vm to the verdict's state with its cause and detail: recorded,
 * pushed to the device when one is connected, audited. REVOKED is final:
 * only readmit leaves it.
 */
void tvd_vm_transition(TvdVm *vm, const TvdVerdict *verdict,
                       const char *actor);
/*
 * Evidence of @vm was verified now: the membership deadline runs again
 * from this moment (persisted). The admission calls this with each
 * ADMITTED verdict, and nothing else moves the deadline.
 */
void tvd_vm_evidence_verified(TvdVm *vm);

/* Domains: signed policies (domains.h). */
typedef struct TvdDomains TvdDomains;
gboolean tvd_supervisor_domain_create(TvdSupervisor *sup, GBytes *policy,
                                      GBytes *sig, char **name,
                                      GError **error);
gboolean tvd_supervisor_domain_update(TvdSupervisor *sup, const char *name,
                                      GBytes *policy, GBytes *sig,
                                      GError **error);
TvdDomains *tvd_supervisor_domains(TvdSupervisor *sup);
/* The hash-chained audit log of every decision (host/store/audit.h). */
typedef struct _TvdAuditLog TvdAuditLog;
TvdAuditLog *tvd_supervisor_audit(TvdSupervisor *sup);
/* Tests: make every VM record write fail (a full or broken store). */
void tvd_supervisor_fail_store_writes(TvdSupervisor *sup, gboolean fail);
/* Prometheus text exposition of the supervisor's metrics. */
void tvd_supervisor_metrics(TvdSupervisor *sup, GString *out);

const char *tvd_vm_name(const TvdVm *vm);
enum tvd_state tvd_vm_state(const TvdVm *vm);
/* "cause: detail" (or just the cause), as the API shows it. */
const char *tvd_vm_reason(const TvdVm *vm);
TvdCause tvd_vm_cause(const TvdVm *vm);
const char *tvd_vm_detail(const TvdVm *vm);
/* Wall clock (µs) of the last verified evidence, 0 if none. */
gint64 tvd_vm_last_verified(const TvdVm *vm);
/* Wall clock (µs) by which an ADMITTED VM needs new evidence, else 0. */
gint64 tvd_vm_deadline(const TvdVm *vm);
gboolean tvd_vm_connected(const TvdVm *vm);
/* The device's STATUS word as last reported (TVD_STATUS_*). */
guint32 tvd_vm_device_status(const TvdVm *vm);
/* Appends the VM as a JSON object to @b. */
void tvd_vm_to_json(const TvdVm *vm, JsonBuilder *b);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdSupervisor, tvd_supervisor_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_H */
