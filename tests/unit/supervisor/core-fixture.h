/*
 * The fixture of the supervisor core's fast layer (supervisor-core-test.c,
 * supervisor-api-test.c): the real core in-process with a signed domain
 * policy, a real swtpm provisioned by its vTPM CA, the agent played with
 * the guest agent's TPM library, and a fake device adopted through the
 * adoption socket (tests/integration/supervisor/adm-harness.h). No QEMU.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_CORE_FIXTURE_H
#define TVD_CORE_FIXTURE_H

#include "adm-harness.h"

G_BEGIN_DECLS

#define CORE_VM         "vm1"
#define CORE_DOMAIN     "blue"
#define CORE_WAIT_MS    30000

typedef struct {
    char *dir;
    TvdSupervisor *sup;
    HarnessSwtpm *tpm;
    HarnessAgent *agent;
    HarnessLink *link;
} CoreFixture;

/* @data: the re-attestation interval ("1s"), NULL for one hour. Skips the
 * case (f->sup stays NULL) when swtpm or swtpm-tools are missing. */
void core_fixture_setup(CoreFixture *f, gconstpointer data);
void core_fixture_teardown(CoreFixture *f, gconstpointer data);

TvdVm *core_vm(CoreFixture *f);
/* The device confirmed the last state pushed, and its link is up / down. */
gboolean core_link_up(gpointer data);
gboolean core_link_down(gpointer data);

void core_send(CoreFixture *f, GBytes *payload);
/* The next message of @type for the agent (payload). */
GBytes *core_expect(CoreFixture *f, guint16 type);
/* Hello and credential activation; returns the first ATTEST_REQUEST. */
GBytes *core_bind_agent(CoreFixture *f);
GBytes *core_encode(TvdMsg *msg);
/* A copy of @b with bit 0 of byte @at flipped. */
GBytes *core_flip(GBytes *b, gsize at);
/* The MEMBERSHIP answer @state, the VM's reason starting with @reason, and
 * the device's link following the verdict. */
void core_expect_verdict(CoreFixture *f, guint32 state, const char *reason);
/* The fixture's good agent: admitted, link up. */
void core_admit_good(CoreFixture *f);
/* Changes the last audit record whose JSON holds "@event" directly in the
 * supervisor's database; returns its seq. */
gint64 core_tamper_audit(CoreFixture *f, const char *event);

G_END_DECLS

#endif /* TVD_CORE_FIXTURE_H */
