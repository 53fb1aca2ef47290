/*
 * tvd-agent: the lifecycle (docs/agent.md has the diagram).
 *
 *   WAIT_DEVICE -> WAIT_SUPERVISOR -> HELLO_SENT -> BOUND <-> ATTESTING
 *        ^              ^                                      |
 *        |              +-------- supervisor went away --------+
 *
 * The agent answers the supervisor: a credential challenge with
 * ActivateCredential, an attest request with a quote and the logs since the
 * offsets asked for; it reports membership changes (and runs a hook).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_AGENT_H
#define TVD_AGENT_H

#include <glib.h>

G_BEGIN_DECLS

typedef struct {
    char *sysfs_root;       /* "/sys" */
    char *device;           /* PCI address, NULL = find it */
    char *tcti;             /* NULL = /dev/tpmrm0 */
    char *ek_alg;           /* "rsa" or "ecc" */
    char *ak_alg;           /* "rsa" or "ecc" */
    guint pcr;              /* PCR of the agent's own list */
    char **measure;         /* files and directories to measure */
    char *hook;             /* command run on membership changes, or NULL */
    char *state_dir;        /* the list survives agent restarts here */
    char *ima_log;          /* IMA binary log path */
    guint poll_ms;          /* register polling without interrupts */
    gboolean no_uio;        /* never bind uio_pci_generic */
    gboolean once;          /* one round, print what was sent, exit */
} TvdAgentConfig;

/* Runs the agent until it is told to stop; the exit status. */
int tvd_agent_run(const TvdAgentConfig *cfg);

G_END_DECLS

#endif /* TVD_AGENT_H */
