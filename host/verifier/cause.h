/*
 * Why a VM is in its membership state: one enum for every cause the
 * verifier, the policy and the supervisor give, each with a stable name
 * (store, API, audit, metrics labels) and the class the device shows
 * (enum tvd_reason in the device ABI). A verdict carries a cause and a
 * bounded, escaped detail from where it is made to where it is shown, so
 * nothing is formatted as text and parsed back.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_VERIFIER_CAUSE_H
#define TVD_VERIFIER_CAUSE_H

#include <glib.h>

#include "hw/misc/tvd.h"

G_BEGIN_DECLS

/*
 * Append only within a section, never renumber: the names are stored in
 * VM records and the audit log (the numbers are not, but stay stable too).
 */
typedef enum {
    TVD_CAUSE_NONE = 0,

    /* no failure (class AWAITING / ATTESTED) */
    TVD_CAUSE_AWAITING,             /* "awaiting-attestation" */
    TVD_CAUSE_ATTESTED,             /* "attested" */

    /* the evidence is invalid (class EVIDENCE): TvdVerifyError, in order */
    TVD_CAUSE_MALFORMED,            /* "malformed" */
    TVD_CAUSE_UNSUPPORTED,          /* "unsupported-algorithm" */
    TVD_CAUSE_NAME_MISMATCH,        /* "name-mismatch" */
    TVD_CAUSE_AK_ATTRIBUTES,        /* "ak-attributes" */
    TVD_CAUSE_EK_ATTRIBUTES,        /* "ek-attributes" */
    TVD_CAUSE_SIGNATURE_SCHEME,     /* "signature-scheme-mismatch" */
    TVD_CAUSE_BAD_SIGNATURE,        /* "bad-signature" */
    TVD_CAUSE_NOT_TPM_GENERATED,    /* "not-tpm-generated" */
    TVD_CAUSE_NOT_A_QUOTE,          /* "not-a-quote" */
    TVD_CAUSE_NONCE_MISMATCH,       /* "nonce-mismatch" */
    TVD_CAUSE_PCR_SELECTION_MISMATCH, /* "pcr-selection-mismatch" */
    TVD_CAUSE_PCR_VALUES,           /* "pcr-values-incomplete" */
    TVD_CAUSE_PCR_DIGEST_MISMATCH,  /* "pcr-digest-mismatch" */
    TVD_CAUSE_NONCE_UNKNOWN,        /* "nonce-unknown" */
    TVD_CAUSE_NONCE_REUSED,         /* "nonce-reused" */
    TVD_CAUSE_NONCE_EXPIRED,        /* "nonce-expired" */
    TVD_CAUSE_NONCE_OWNER,          /* "nonce-wrong-owner" */
    TVD_CAUSE_NONCE_STORE_FULL,     /* "nonce-store-full" */
    TVD_CAUSE_EK_CERT_INVALID,      /* "ek-cert-invalid" */
    TVD_CAUSE_EK_CERT_UNTRUSTED,    /* "ek-cert-untrusted" */
    TVD_CAUSE_EK_KEY_MISMATCH,      /* "ek-key-mismatch" */
    TVD_CAUSE_LOG_MALFORMED,        /* "log-malformed" */
    TVD_CAUSE_LOG_LIMIT,            /* "log-limit" */
    TVD_CAUSE_LOG_TEMPLATE_HASH,    /* "log-template-hash-mismatch" */
    TVD_CAUSE_LOG_OFFSET,           /* "log-offset" */
    TVD_CAUSE_LOG_REPLAY_MISMATCH,  /* "log-replay-mismatch" */
    TVD_CAUSE_CRYPTO,               /* "crypto-failure" (host-side) */

    /* the evidence is invalid (class EVIDENCE): found by the round */
    TVD_CAUSE_EK_PUBLIC_MISSING,    /* "ek-public-missing" */
    TVD_CAUSE_EK_CERT_MISSING,      /* "ek-cert-missing" */
    TVD_CAUSE_EK_NOT_BOUND,         /* "ek-not-bound": not the EK provisioned
                                     * or registered for this VM */
    TVD_CAUSE_CREDENTIAL_MISMATCH,  /* "credential-mismatch" */
    TVD_CAUSE_EVIDENCE_MISSING,     /* "evidence-missing": the policy requires
                                     * evidence the agent did not send */
    TVD_CAUSE_LOG_PCR_MISMATCH,     /* "log-pcr-mismatch": an entry for a PCR
                                     * other than the replayed one */
    TVD_CAUSE_IMA_VIOLATION,        /* "ima-violation" */
    TVD_CAUSE_MESSAGE_MALFORMED,    /* "message-malformed" */
    TVD_CAUSE_AGENT_ERROR,          /* "agent-error" */
    TVD_CAUSE_RATE_LIMITED,         /* "rate-limited" */
    TVD_CAUSE_TPM_RESET,            /* "tpm-reset": the TPM was reset or its
                                     * state rolled back within a binding */

    /* the evidence violates the policy (class POLICY): TvdPolicyViolation */
    TVD_CAUSE_POLICY_AGENT_VERSION, /* "agent-version" */
    TVD_CAUSE_POLICY_PCR_MISSING,   /* "pcr-missing" */
    TVD_CAUSE_POLICY_PCR_MISMATCH,  /* "pcr-mismatch" */
    TVD_CAUSE_POLICY_DIGEST_MISMATCH, /* "digest-mismatch" */
    TVD_CAUSE_POLICY_UNKNOWN_DIGEST, /* "unknown-digest" */
    TVD_CAUSE_POLICY_REQUIRED_MISSING, /* "required-missing" */
    TVD_CAUSE_POLICY_BAD_PATH,      /* "bad-path" */
    TVD_CAUSE_UNKNOWN_DOMAIN,       /* "unknown-domain" */
    TVD_CAUSE_MEASUREMENT_PCR,      /* "measurement-pcr" */
    TVD_CAUSE_BOOT_AGGREGATE,       /* "boot-aggregate-mismatch" */

    /* time ran out (class DEADLINE) */
    TVD_CAUSE_DEADLINE_MISSED,      /* "deadline-missed" */
    TVD_CAUSE_NO_DEVICE_HELLO,      /* "no-device-hello" */

    /* an operator decided (class ADMIN) */
    TVD_CAUSE_OPERATOR_REVOKE,      /* "operator-revoke" */
    TVD_CAUSE_OPERATOR_READMIT,     /* "operator-readmit" */

    /* the device reported (class DEVICE_RESET / MIGRATED) */
    TVD_CAUSE_GUEST_RESET,          /* "guest-reset" */
    TVD_CAUSE_NEW_QEMU_PROCESS,     /* "new-qemu-process" */
    TVD_CAUSE_MIGRATED,             /* "migrated" */

    /* the host failed; the VM is kept in the safe state (class EVIDENCE) */
    TVD_CAUSE_STORE_FAILURE,        /* "store-failure" */
    TVD_CAUSE_AUDIT_FAILURE,        /* "audit-failure" */
    TVD_CAUSE_QEMU_EXITED,          /* "qemu-exited" */

    TVD_CAUSE_COUNT_                /* not a cause */
} TvdCause;

/* Stable short name; "unknown" for a value out of range. */
const char *tvd_cause_name(TvdCause cause);
/* The cause of a name tvd_cause_name() gave; FALSE if there is none. */
gboolean tvd_cause_from_name(const char *name, TvdCause *out);
/* What the device's REASON register shows for it. */
enum tvd_reason tvd_cause_class(TvdCause cause);
/* Stable short name of a class ("evidence", "policy", ...). */
const char *tvd_reason_class_name(enum tvd_reason cls);
/* A TvdVerifyError code (verifier.h) as a cause; MALFORMED if unknown. */
TvdCause tvd_cause_from_verify_error(int code);

/* Bytes of a detail, NUL included. */
#define TVD_CAUSE_DETAIL_MAX    256u

/*
 * A membership decision: the state, its cause and a detail that is
 * printable ASCII (anything else, and '\\', escaped as \xNN) and at most
 * TVD_CAUSE_DETAIL_MAX - 1 bytes (cut with "..."), so guest-controlled
 * text can be logged, stored, shown and audited as it is.
 */
typedef struct {
    enum tvd_state state;
    TvdCause cause;
    char detail[TVD_CAUSE_DETAIL_MAX];
} TvdVerdict;

/* Fills @v; the formatted detail is escaped and bounded. */
void tvd_verdict_set(TvdVerdict *v, enum tvd_state state, TvdCause cause,
                     const char *fmt, ...) G_GNUC_PRINTF(4, 5);
void tvd_verdict_setv(TvdVerdict *v, enum tvd_state state, TvdCause cause,
                      const char *fmt, va_list ap) G_GNUC_PRINTF(4, 0);

/*
 * Escapes @len bytes of @in (or up to its NUL with @len -1) into @out of
 * @out_size bytes, as for a verdict's detail. Returns @out.
 */
char *tvd_escape_bounded(const char *in, gssize len, char *out,
                         gsize out_size);

G_END_DECLS

#endif /* TVD_VERIFIER_CAUSE_H */
