/*
 * Test and benchmark harness for the admission path: an in-process
 * supervisor with a trusted administrator key and a signed domain policy,
 * a real swtpm provisioned by the supervisor's vTPM CA (or by a CA of its
 * own), an agent played with the guest agent's TPM library, and two ways to
 * reach the supervisor: a real QEMU running the tvd device driven through
 * the qtest protocol (the guest's side of the mailbox), or a fake device on
 * the adoption socket speaking the frame protocol (docs/device.md).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_ADM_HARNESS_H
#define TVD_ADM_HARNESS_H

#include <gio/gio.h>

#include "agent-tpm.h"
#include "message.h"
#include "supervisor.h"

G_BEGIN_DECLS

#define HARNESS_AGENT_PCR   13u
#define HARNESS_AGENT_PATH  "/usr/bin/tvd-agent"

/* The digest the harness policy requires for HARNESS_AGENT_PATH. */
void harness_agent_digest(guint8 out[32]);

/* Run the default main context until @cond holds, at most @timeout_ms. */
typedef gboolean (*HarnessCond)(gpointer data);
gboolean harness_wait(HarnessCond cond, gpointer data, guint timeout_ms);

/* ---- supervisor ------------------------------------------------------------ */

/*
 * A supervisor on @dir (state) with an Ed25519 administrator key in its
 * trust store, and domain @domain created from a policy signed by it:
 * the agent list in PCR 13 must hold HARNESS_AGENT_PATH with
 * harness_agent_digest(), anything else unlisted is denied; re-attestation
 * every @interval (a policy duration, "1s").
 */
TvdSupervisor *harness_supervisor_new(const char *dir, const char *domain,
                                      const char *interval, GError **error);
/* The same with the policy's attestation deadline (harness_supervisor_new:
 * "48h"). */
TvdSupervisor *harness_supervisor_new_timed(const char *dir,
                                            const char *domain,
                                            const char *interval,
                                            const char *deadline,
                                            GError **error);
/* A supervisor started again on the state of an earlier one in @dir. */
TvdSupervisor *harness_supervisor_restart(const char *dir, GError **error);
/* <dir>/vtpm-ca/swtpm_setup.conf: provisions EKs the supervisor trusts. */
char *harness_supervisor_setup_conf(TvdSupervisor *sup);

/* ---- swtpm ------------------------------------------------------------------- */

typedef struct HarnessSwtpm HarnessSwtpm;

/*
 * A swtpm with an RSA EK and its certificate, made by swtpm_setup with
 * @setup_conf (NULL: a CA of its own under the swtpm's directory, one the
 * supervisor does not trust). Started; NULL + error when a program is
 * missing or fails.
 */
HarnessSwtpm *harness_swtpm_new(const char *setup_conf, GError **error);
const char *harness_swtpm_tcti(HarnessSwtpm *s);
void harness_swtpm_free(HarnessSwtpm *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarnessSwtpm, harness_swtpm_free)

/* Is the program on PATH? */
gboolean harness_have(const char *prog);

/* ---- the agent's side ----------------------------------------------------- */

typedef struct {
    TvdAgentTpm *tpm;
    GBytes *ek_public;
    GBytes *ek_cert;
    GBytes *ak_public;
    GBytes *ak_name;
    GPtrArray *list;            /* agent list records (GBytes) */
    gint64 tpm_us;              /* time spent in TPM commands */
    /* harness_admit(): send to answer, per exchange (supervisor and
     * transport only): hello -> challenge, response -> attest request,
     * evidence -> membership; summed over calls. */
    gint64 wait_us[3];
} HarnessAgent;

HarnessAgent *harness_agent_new(const char *tcti, GError **error);
void harness_agent_free(HarnessAgent *a);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarnessAgent, harness_agent_free)

/* Measures @path with @sha256 into the list and extends PCR 13. */
gboolean harness_agent_measure(HarnessAgent *a, const char *path,
                               const guint8 sha256[32], GError **error);
/* An AGENT_HELLO payload. */
GBytes *harness_agent_hello(HarnessAgent *a);
/* CREDENTIAL_CHALLENGE payload in, CREDENTIAL_RESPONSE payload out. */
GBytes *harness_agent_activate(HarnessAgent *a, GBytes *challenge,
                               GError **error);
/* ATTEST_REQUEST payload in, decoded EVIDENCE out (tvd_msg_clear it). */
gboolean harness_agent_evidence(HarnessAgent *a, GBytes *request,
                                TvdMsg *evidence, GError **error);

/* ---- links: what carries the agent's frames ------------------------------- */

typedef struct HarnessLink HarnessLink;

/*
 * A real QEMU (@qemu) with -accel qtest and -device tvd whose chardev
 * connects to @adopt_socket; the harness plays the guest through qtest,
 * programming BAR0/BAR2 itself. @name becomes -name (the adopted VM's
 * name). @mailbox_size 0 = the device's default.
 */
HarnessLink *harness_qtest_link_new(const char *qemu, const char *dir,
                                    const char *adopt_socket,
                                    const char *name, const char *domain,
                                    guint32 mailbox_size, GError **error);
/* A fake device on the adoption socket (frames per docs/device.md). */
HarnessLink *harness_fake_link_new(const char *adopt_socket, const char *name,
                                   const char *domain, GError **error);
void harness_link_free(HarnessLink *l);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HarnessLink, harness_link_free)

/* Sends one AGENT frame with @payload. */
gboolean harness_link_send(HarnessLink *l, GBytes *payload, GError **error);
/* Sends raw bytes as the whole frame (qtest: into the G2H half). */
gboolean harness_link_send_raw(HarnessLink *l, const void *frame, gsize len,
                               GError **error);
/* The next AGENT payload for the agent, running the main loop meanwhile. */
GBytes *harness_link_recv(HarnessLink *l, guint timeout_ms, GError **error);
/* Like recv, but skips messages until one of @type; decoded into @msg. */
gboolean harness_link_recv_msg(HarnessLink *l, guint16 type, TvdMsg *msg,
                               GBytes **payload, guint timeout_ms,
                               GError **error);
/*
 * qtest links: a guest reset (QMP system_reset), then the device mapped
 * again as before.
 */
gboolean harness_link_system_reset(HarnessLink *l, GError **error);
/* qtest links: a device register (TVD_REG_*); 0 for fake links. */
guint32 harness_link_reg(HarnessLink *l, guint32 reg);

/*
 * The whole admission of @a over @l: hello, challenge, evidence, and the
 * MEMBERSHIP answer. *@state gets the membership state announced.
 */
gboolean harness_admit(HarnessAgent *a, HarnessLink *l, guint32 *state,
                       GError **error);

/* ---- many agents on one main loop (bench/flood-bench) --------------------- */

/* Fake links: the next AGENT payload already received, or NULL at once
 * (the main loop is not run). */
GBytes *harness_link_take(HarnessLink *l);
/* Fake links: the supervisor closed the connection (or sent a frame that
 * does not decode). */
gboolean harness_link_broken(HarnessLink *l);

G_END_DECLS

#endif /* TVD_ADM_HARNESS_H */
