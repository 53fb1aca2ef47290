/*
 * Causes of membership states and verdicts: see cause.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "cause.h"

#include <stdio.h>
#include <string.h>

#include "verifier.h"

static const struct {
    const char *name;
    enum tvd_reason cls;
} causes[TVD_CAUSE_COUNT_] = {
    [TVD_CAUSE_NONE] = { "none", TVD_REASON_NONE },
    [TVD_CAUSE_AWAITING] = { "awaiting-attestation", TVD_REASON_AWAITING },
    [TVD_CAUSE_ATTESTED] = { "attested", TVD_REASON_ATTESTED },

    [TVD_CAUSE_MALFORMED] = { "malformed", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_UNSUPPORTED] = { "unsupported-algorithm", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NAME_MISMATCH] = { "name-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_AK_ATTRIBUTES] = { "ak-attributes", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_ATTRIBUTES] = { "ek-attributes", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_SIGNATURE_SCHEME] = { "signature-scheme-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_BAD_SIGNATURE] = { "bad-signature", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NOT_TPM_GENERATED] = { "not-tpm-generated", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NOT_A_QUOTE] = { "not-a-quote", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_MISMATCH] = { "nonce-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_PCR_SELECTION_MISMATCH] = { "pcr-selection-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_PCR_VALUES] = { "pcr-values-incomplete", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_PCR_DIGEST_MISMATCH] = { "pcr-digest-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_UNKNOWN] = { "nonce-unknown", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_REUSED] = { "nonce-reused", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_EXPIRED] = { "nonce-expired", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_OWNER] = { "nonce-wrong-owner", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_NONCE_STORE_FULL] = { "nonce-store-full", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_CERT_INVALID] = { "ek-cert-invalid", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_CERT_UNTRUSTED] = { "ek-cert-untrusted", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_KEY_MISMATCH] = { "ek-key-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_MALFORMED] = { "log-malformed", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_LIMIT] = { "log-limit", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_TEMPLATE_HASH] = { "log-template-hash-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_OFFSET] = { "log-offset", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_REPLAY_MISMATCH] = { "log-replay-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_CRYPTO] = { "crypto-failure", TVD_REASON_EVIDENCE },

    [TVD_CAUSE_EK_PUBLIC_MISSING] = { "ek-public-missing", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_CERT_MISSING] = { "ek-cert-missing", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EK_NOT_BOUND] = { "ek-not-bound", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_CREDENTIAL_MISMATCH] = { "credential-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_EVIDENCE_MISSING] = { "evidence-missing", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_LOG_PCR_MISMATCH] = { "log-pcr-mismatch", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_IMA_VIOLATION] = { "ima-violation", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_MESSAGE_MALFORMED] = { "message-malformed", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_AGENT_ERROR] = { "agent-error", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_RATE_LIMITED] = { "rate-limited", TVD_REASON_EVIDENCE },
    [TVD_CAUSE_TPM_RESET] = { "tpm-reset", TVD_REASON_EVIDENCE },

    [TVD_CAUSE_POLICY_AGENT_VERSION] = { "agent-version", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_PCR_MISSING] = { "pcr-missing", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_PCR_MISMATCH] = { "pcr-mismatch", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_DIGEST_MISMATCH] = { "digest-mismatch", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_UNKNOWN_DIGEST] = { "unknown-digest", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_REQUIRED_MISSING] = { "required-missing", TVD_REASON_POLICY },
    [TVD_CAUSE_POLICY_BAD_PATH] = { "bad-path", TVD_REASON_POLICY },
    [TVD_CAUSE_UNKNOWN_DOMAIN] = { "unknown-domain", TVD_REASON_POLICY },
    [TVD_CAUSE_MEASUREMENT_PCR] = { "measurement-pcr", TVD_REASON_POLICY },
    [TVD_CAUSE_BOOT_AGGREGATE] = { "boot-aggregate-mismatch", TVD_REASON_POLICY },

    [TVD_CAUSE_DEADLINE_MISSED] = { "deadline-missed", TVD_REASON_DEADLINE },
    [TVD_CAUSE_NO_DEVICE_HELLO] = { "no-device-hello", TVD_REASON_DEADLINE },

    [TVD_CAUSE_OPERATOR_REVOKE] = { "operator-revoke", TVD_REASON_ADMIN },
    [TVD_CAUSE_OPERATOR_READMIT] = { "operator-readmit", TVD_REASON_ADMIN },

    [TVD_CAUSE_GUEST_RESET] = { "guest-reset", TVD_REASON_DEVICE_RESET },
    [TVD_CAUSE_NEW_QEMU_PROCESS] = { "new-qemu-process", TVD_REASON_DEVICE_RESET },
    [TVD_CAUSE_MIGRATED] = { "migrated", TVD_REASON_MIGRATED },

    [TVD_CAUSE_STORE_FAILURE] = { "store-failure", TVD_REASON_SUPERVISOR_BASE },
    [TVD_CAUSE_AUDIT_FAILURE] = { "audit-failure", TVD_REASON_SUPERVISOR_BASE },
    [TVD_CAUSE_QEMU_EXITED] = { "qemu-exited", TVD_REASON_SUPERVISOR_BASE },
};

/* Every TvdVerifyError maps onto the cause of the same rank. */
G_STATIC_ASSERT(TVD_CAUSE_CRYPTO - TVD_CAUSE_MALFORMED ==
                TVD_VERIFY_ERROR_CRYPTO - TVD_VERIFY_ERROR_MALFORMED);
G_STATIC_ASSERT(TVD_VERIFY_ERROR_LAST == TVD_VERIFY_ERROR_CRYPTO);

const char *tvd_cause_name(TvdCause cause)
{
    if ((guint)cause >= TVD_CAUSE_COUNT_ || !causes[cause].name) {
        return "unknown";
    }
    return causes[cause].name;
}

gboolean tvd_cause_from_name(const char *name, TvdCause *out)
{
    for (guint i = 0; name && i < TVD_CAUSE_COUNT_; i++) {
        if (causes[i].name && !strcmp(causes[i].name, name)) {
            *out = (TvdCause)i;
            return TRUE;
        }
    }
    return FALSE;
}

enum tvd_reason tvd_cause_class(TvdCause cause)
{
    if ((guint)cause >= TVD_CAUSE_COUNT_) {
        return TVD_REASON_NONE;
    }
    return causes[cause].cls;
}

const char *tvd_reason_class_name(enum tvd_reason cls)
{
    switch (cls) {
    case TVD_REASON_NONE: return "none";
    case TVD_REASON_AWAITING: return "awaiting";
    case TVD_REASON_ATTESTED: return "attested";
    case TVD_REASON_POLICY: return "policy";
    case TVD_REASON_EVIDENCE: return "evidence";
    case TVD_REASON_DEADLINE: return "deadline";
    case TVD_REASON_ADMIN: return "admin";
    case TVD_REASON_DEVICE_RESET: return "device-reset";
    case TVD_REASON_MIGRATED: return "migrated";
    }
    return (guint32)cls >= TVD_REASON_SUPERVISOR_BASE ? "host" : "unknown";
}

TvdCause tvd_cause_from_verify_error(int code)
{
    if (code < TVD_VERIFY_ERROR_MALFORMED || code > TVD_VERIFY_ERROR_LAST) {
        return TVD_CAUSE_MALFORMED;
    }
    return (TvdCause)(TVD_CAUSE_MALFORMED + (code - TVD_VERIFY_ERROR_MALFORMED));
}

static gboolean plain_byte(guchar c)
{
    return c >= 0x20 && c < 0x7f && c != '\\';
}

char *tvd_escape_bounded(const char *in, gssize len, char *out,
                         gsize out_size)
{
    static const char cut[] = "...";
    gsize n = len < 0 ? (in ? strlen(in) : 0) : (gsize)len;
    gsize whole = 0, room = out_size - 1, o = 0;

    g_return_val_if_fail(out_size > sizeof(cut), out);
    for (gsize i = 0; i < n; i++) {
        whole += plain_byte((guchar)in[i]) ? 1 : 4;
    }
    /* Too long: keep what fits before the cut mark, escapes whole. */
    if (whole > room) {
        room -= sizeof(cut) - 1;
    }
    for (gsize i = 0; i < n; i++) {
        guchar c = (guchar)in[i];

        if (o + (plain_byte(c) ? 1 : 4) > room) {
            break;
        }
        if (plain_byte(c)) {
            out[o++] = (char)c;
        } else {
            snprintf(out + o, 5, "\\x%02x", c);
            o += 4;
        }
    }
    if (whole > out_size - 1) {
        memcpy(out + o, cut, sizeof(cut) - 1);
        o += sizeof(cut) - 1;
    }
    out[o] = '\0';
    return out;
}

void tvd_verdict_setv(TvdVerdict *v, enum tvd_state state, TvdCause cause,
                      const char *fmt, va_list ap)
{
    g_autofree char *text = fmt ? g_strdup_vprintf(fmt, ap) : NULL;

    v->state = state;
    v->cause = cause;
    tvd_escape_bounded(text ? text : "", -1, v->detail, sizeof(v->detail));
}

void tvd_verdict_set(TvdVerdict *v, enum tvd_state state, TvdCause cause,
                     const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    tvd_verdict_setv(v, state, cause, fmt, ap);
    va_end(ap);
}
