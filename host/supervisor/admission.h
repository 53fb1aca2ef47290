/*
 * Admission and re-attestation of one VM (docs/architecture.md): agent hello
 * → vTPM linkage of the EK → MakeCredential / ActivateCredential binds the
 * AK → attest request (fresh nonce, PCR selection, log offsets) → evidence
 * (quote, PCR values, incremental logs) → verification and the domain
 * policy's verdict → membership notice; again every interval. Every
 * rejection is a typed verdict (cause.h).
 *
 * One explicit state machine: a phase, events (agent messages, timers, the
 * device going away) and one table of what each event does in each phase
 * (docs/supervisor.md draws it). The admission does not own the membership
 * deadline: the VM does (only verified evidence moves it); the admission's
 * own timer only bounds how long one request waits for its answer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_ADMISSION_H
#define TVD_SUPERVISOR_ADMISSION_H

#include <glib.h>

#include "cause.h"
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
     * A verdict: state, cause and escaped detail. @verified: an ADMITTED
     * verdict on evidence verified just now (the only thing that moves the
     * VM's membership deadline). @stop asks to stop the VM (the policy's
     * "stop" action).
     */
    void (*verdict)(void *vm, const TvdVerdict *verdict, gboolean verified,
                    gboolean stop);
    /* The VM's current state (REVOKED VMs are not attested). */
    enum tvd_state (*state)(void *vm);
    /* The policy of the VM's domain; NULL when the domain is unknown. */
    TvdPolicy *(*policy)(void *vm);
    /*
     * The EK certificate (DER) of @ek_type (TvdEkType) bound to this VM:
     * the one provisioned for a launched VM's vTPM (empty if that type was
     * not provisioned), the one the operator registered for an adopted VM;
     * NULL when none is bound (the hello is refused: ek-not-bound).
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
/*
 * The VM's membership deadline passed without verified evidence: the
 * policy's failure action with cause deadline-missed (and the agent told).
 */
void tvd_admission_deadline_missed(TvdAdmission *adm, const char *detail);
/* The policy's interval and deadline for this VM (defaults without one). */
guint tvd_admission_interval_ms(TvdAdmission *adm);
guint tvd_admission_deadline_ms(TvdAdmission *adm);

/* Counters for metrics. */
typedef struct {
    guint64 rounds;                 /* evidence verified */
    guint64 failures;               /* rounds that ended in a rejection */
    gint64 last_round_us;           /* hello or request to verdict, last round */
    guint64 hellos_limited;         /* agent hellos dropped by the rate limit */
} TvdAdmissionStats;
const TvdAdmissionStats *tvd_admission_stats(const TvdAdmission *adm);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdAdmission, tvd_admission_free)

G_END_DECLS

#endif /* TVD_SUPERVISOR_ADMISSION_H */
