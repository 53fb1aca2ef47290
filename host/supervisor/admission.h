/*
 * Admission and re-attestation of one VM (ARCHITECTURE.md §6): agent hello
 * → vTPM linkage of the EK → MakeCredential / ActivateCredential binds the
 * AK → attest request (fresh nonce, PCR selection, log offsets) → evidence
 * (quote, PCR values, incremental logs) → verification and the domain
 * policy's verdict → membership notice; again every interval, with a
 * deadline. Every rejection carries a precise reason.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_ADMISSION_H
#define TVD_SUPERVISOR_ADMISSION_H

#include <glib.h>

#include "hw/misc/tvd.h"
#include "policy.h"
#include "verifier.h"

G_BEGIN_DECLS

typedef struct TvdAdmission TvdAdmission;

/* What the admission needs from the VM it works for. */
typedef struct {
    /* Sends a message payload to the agent (TVD_FRAME_AGENT). */
    gboolean (*send)(void *vm, GBytes *payload, GError **error);
    /*
     * A verdict: the state to move to, the reason code and text. @stop asks
     * to stop the VM (the policy's "stop" action).
     */
    void (*verdict)(void *vm, enum tvd_state state, guint32 code,
                    const char *reason, gboolean stop);
    /* The VM's current state (REVOKED VMs are not attested). */
    enum tvd_state (*state)(void *vm);
    /* The policy of the VM's domain; NULL when the domain is unknown. */
    TvdPolicy *(*policy)(void *vm);
    /*
     * The EK certificate (DER) of @ek_type (TvdEkType) provisioned for this
     * VM's vTPM; NULL for adopted VMs, whose agent must send its own.
     */
    GBytes *(*ek_cert)(void *vm, guint8 ek_type);
    const char *(*name)(void *vm);
} TvdAdmissionHost;

/* Shared by every VM of a supervisor. */
typedef struct {
    TvdNonceStore *nonces;
    GBytes *ca_pem;                 /* certificates EK certificates chain to */
    guint default_interval_ms;
    guint default_deadline_ms;
} TvdAdmissionShared;

TvdAdmission *tvd_admission_new(const TvdAdmissionHost *host, void *vm,
                                const TvdAdmissionShared *shared);
void tvd_admission_free(TvdAdmission *adm);

/* A TVD_FRAME_AGENT payload from the VM's agent. */
void tvd_admission_agent_frame(TvdAdmission *adm, GBytes *payload);
/* The device went away or was reset: the AK binding is gone. */
void tvd_admission_reset(TvdAdmission *adm);
/* Start a round now (policy update, readmission); no-op without an AK. */
void tvd_admission_reattest(TvdAdmission *adm);

/* Counters for metrics. */
typedef struct {
    guint64 rounds;                 /* evidence verified */
    guint64 failures;               /* rounds that ended in a rejection */
    gint64 last_round_us;           /* hello or request to verdict, last round */
} TvdAdmissionStats;
const TvdAdmissionStats *tvd_admission_stats(const TvdAdmission *adm);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAdmission, tvd_admission_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_ADMISSION_H */
