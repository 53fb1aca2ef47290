/*
 * tvd agent<->supervisor messages: the payload of TVD_FRAME_AGENT frames.
 *
 * Every message is one GVariant in normal form, little-endian, inside an
 * envelope of type TVD_MSG_ENVELOPE_TYPE:
 *
 *   (qqv)   q  protocol version (TVD_MSG_PROTOCOL_VERSION)
 *           q  message type (TvdMsgType)
 *           v  body, of the one type string the message type defines
 *
 * docs/protocol.md documents each body field by field, the caps below, the
 * versioning rules and the admission sequence. Decoders take untrusted
 * bytes: they check the size cap, normal form, the envelope and body types,
 * then every size, count and value; errors name the field. Encoders apply
 * the same checks, so a sender never emits what a receiver rejects.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_COMMON_MESSAGE_H
#define TVD_COMMON_MESSAGE_H

#include <stdint.h>
#include <glib.h>

#include "hw/misc/tvd.h"

G_BEGIN_DECLS

#define TVD_MSG_ERROR (tvd_msg_error_quark())
GQuark tvd_msg_error_quark(void);

typedef enum {
    TVD_MSG_ERROR_TOO_LARGE,        /* whole message above TVD_MSG_SIZE_MAX */
    TVD_MSG_ERROR_NOT_NORMAL,       /* not a GVariant in normal form */
    TVD_MSG_ERROR_BAD_TYPE,         /* envelope or body of the wrong type */
    TVD_MSG_ERROR_VERSION,          /* protocol version not supported */
    TVD_MSG_ERROR_UNKNOWN_MESSAGE,  /* message type not defined */
    TVD_MSG_ERROR_UNEXPECTED,       /* defined, but not the one expected */
    TVD_MSG_ERROR_FIELD_SIZE,       /* byte or string field size off caps */
    TVD_MSG_ERROR_FIELD_COUNT,      /* array count off caps */
    TVD_MSG_ERROR_FIELD_VALUE,      /* value out of range or inconsistent */
    TVD_MSG_ERROR_FIELD_STRING,     /* string with forbidden characters */
} TvdMsgError;

/* ---- Envelope and versioning -------------------------------------------- */

#define TVD_MSG_ENVELOPE_TYPE       "(qqv)"
#define TVD_MSG_PROTOCOL_VERSION    1u

/* Whole serialized message: what a TVD_FRAME_AGENT payload may hold. */
#define TVD_MSG_SIZE_MAX            TVD_FRAME_MAX_PAYLOAD

typedef enum {
    TVD_MSG_AGENT_HELLO             = 1,    /* agent -> supervisor */
    TVD_MSG_CREDENTIAL_CHALLENGE    = 2,    /* supervisor -> agent */
    TVD_MSG_CREDENTIAL_RESPONSE     = 3,    /* agent -> supervisor */
    TVD_MSG_ATTEST_REQUEST          = 4,    /* supervisor -> agent */
    TVD_MSG_EVIDENCE                = 5,    /* agent -> supervisor */
    TVD_MSG_LOG_CHUNK               = 6,    /* agent -> supervisor */
    TVD_MSG_MEMBERSHIP              = 7,    /* supervisor -> agent */
    TVD_MSG_ERROR_REPORT            = 8,    /* both ways */
} TvdMsgType;
#define TVD_MSG_TYPE_MAX            TVD_MSG_ERROR_REPORT

/* Body type strings, one per message type. */
#define TVD_MSG_AGENT_HELLO_TYPE            "(usyayayayayyyt)"
#define TVD_MSG_CREDENTIAL_CHALLENGE_TYPE   "(ayay)"
#define TVD_MSG_CREDENTIAL_RESPONSE_TYPE    "(ay)"
#define TVD_MSG_ATTEST_REQUEST_TYPE         "(ayquttas)"
#define TVD_MSG_LOG_CHUNK_TYPE              "(ytbay)"
#define TVD_MSG_EVIDENCE_TYPE               "(ayayqa(yay)a" \
                                            TVD_MSG_LOG_CHUNK_TYPE ")"
#define TVD_MSG_MEMBERSHIP_TYPE             "(uusuu)"
#define TVD_MSG_ERROR_REPORT_TYPE           "(uqs)"

/* ---- Caps and value sets --------------------------------------------------- */

#define TVD_MSG_BOOT_ID_LEN         36u     /* UUID text, as /proc/sys/kernel/random/boot_id */
#define TVD_MSG_EK_CERT_MAX         4096u   /* EK certificate, DER */
#define TVD_MSG_TPM2B_PUBLIC_MAX    1024u   /* TPM2B_PUBLIC, marshalled (EK and AK) */
#define TVD_MSG_NAME_MIN            22u     /* TPM2B_NAME contents: nameAlg + SHA-1 */
#define TVD_MSG_NAME_MAX            66u     /* nameAlg + SHA-512 */
#define TVD_MSG_CRED_BLOB_MAX       512u    /* TPM2B_ID_OBJECT, marshalled */
#define TVD_MSG_ENC_SECRET_MAX      1024u   /* TPM2B_ENCRYPTED_SECRET, marshalled */
#define TVD_MSG_SECRET_MAX          64u     /* TPM2B_DIGEST contents */
#define TVD_MSG_NONCE_LEN           32u     /* exactly */
#define TVD_MSG_PCR_COUNT           24u     /* PCR indices 0..23 */
#define TVD_MSG_AGENT_PCR_MAX       15u     /* agent list PCR: not resettable */
#define TVD_MSG_PATHS_MAX           64u     /* extra paths per attest request */
#define TVD_MSG_PATH_MAX            4095u   /* bytes per path (PATH_MAX - 1) */
#define TVD_MSG_ATTEST_MAX          2048u   /* TPMS_ATTEST, marshalled */
#define TVD_MSG_SIGNATURE_MAX       1024u   /* TPMT_SIGNATURE, marshalled */
#define TVD_MSG_LOGS_MAX            2u      /* log chunks per evidence: one per kind */
#define TVD_MSG_LOG_ENTRIES_MAX     65536u  /* entries per chunk */
#define TVD_MSG_LOG_ENTRY_MAX       8192u   /* bytes per entry (one record) */
#define TVD_MSG_LOG_RECORD_MIN      32u     /* pcr, digest, name and data lengths */
#define TVD_MSG_LOG_NAME_MAX        255u    /* template name bytes (TCG_EVENT_NAME_LEN_MAX) */
#define TVD_MSG_TEXT_MAX            256u    /* reason and error texts, bytes */

/* TPM_ALG_ID of the PCR banks a request may select. */
#define TVD_TPM_ALG_SHA1            0x0004u
#define TVD_TPM_ALG_SHA256          0x000bu
#define TVD_TPM_ALG_SHA384          0x000cu
#define TVD_TPM_ALG_SHA512          0x000du

typedef enum {
    TVD_EK_RSA                      = 1,    /* RSA-2048 EK (NV 0x01c00002) */
    TVD_EK_ECC                      = 2,    /* ECC EK (NV 0x01c00016 / template) */
} TvdEkType;

typedef enum {
    TVD_AK_RSA2048_RSASSA_SHA256    = 1,
    TVD_AK_ECC_P256_ECDSA_SHA256    = 2,
} TvdAkAlg;

/* Agent capabilities (agent hello); unknown bits are ignored. */
#define TVD_CAP_IMA                 (G_GUINT64_CONSTANT(1) << 0)  /* IMA log readable */
#define TVD_CAP_AGENT_LIST          (G_GUINT64_CONSTANT(1) << 1)  /* own list in agent_pcr */
#define TVD_CAP_PCR_SHA1            (G_GUINT64_CONSTANT(1) << 2)  /* banks the TPM has */
#define TVD_CAP_PCR_SHA256          (G_GUINT64_CONSTANT(1) << 3)
#define TVD_CAP_PCR_SHA384          (G_GUINT64_CONSTANT(1) << 4)
#define TVD_CAP_PCR_SHA512          (G_GUINT64_CONSTANT(1) << 5)
#define TVD_CAP_HOOK                (G_GUINT64_CONSTANT(1) << 6)  /* runs a membership hook */

/*
 * Log kinds: both carry binary IMA records as in the kernel's
 * binary_runtime_measurements, little-endian (docs/protocol.md):
 *   u32 pcr, 20-byte template digest, u32 name length (<= 255), name,
 *   u32 data length, data.
 * On the wire a chunk's records are one byte string, back to back; the
 * decoder splits it at the record boundaries.
 */
typedef enum {
    TVD_LOG_IMA_NG                  = 1,    /* the kernel's IMA runtime log */
    TVD_LOG_AGENT_LIST              = 2,    /* the agent's own list */
} TvdLogKind;

/* Error codes of TVD_MSG_ERROR_REPORT; unknown codes are accepted. */
typedef enum {
    TVD_MSG_ERR_MALFORMED           = 1,    /* message did not decode */
    TVD_MSG_ERR_VERSION             = 2,    /* protocol version not supported */
    TVD_MSG_ERR_UNKNOWN_MESSAGE     = 3,    /* message type not supported */
    TVD_MSG_ERR_UNEXPECTED          = 4,    /* message out of sequence */
    TVD_MSG_ERR_TPM                 = 5,    /* TPM command failed */
    TVD_MSG_ERR_MEASUREMENT         = 6,    /* log or file unreadable */
    TVD_MSG_ERR_INTERNAL            = 7,
    TVD_MSG_ERR_BUSY                = 8,    /* request while one is running */
} TvdMsgErrCode;

/* Packs an agent version as 0x00MMmmpp. */
#define TVD_AGENT_VERSION(maj, min, pat) \
    ((guint32)(((maj) & 0xff) << 16 | ((min) & 0xff) << 8 | ((pat) & 0xff)))

/* ---- Message bodies ------------------------------------------------------ */

/*
 * Byte fields are GBytes: NULL means empty when encoding; a decoder sets
 * every one (possibly empty), referencing the decoded buffer.
 */

typedef struct {
    guint32 agent_version;              /* TVD_AGENT_VERSION(), non-zero */
    char boot_id[TVD_MSG_BOOT_ID_LEN + 1]; /* UUID text */
    guint8 ek_type;                     /* TvdEkType */
    GBytes *ek_cert;                    /* DER, may be empty ... */
    GBytes *ek_public;                  /* TPM2B_PUBLIC ... but not both */
    GBytes *ak_public;                  /* TPM2B_PUBLIC, required */
    GBytes *ak_name;                    /* TPM2B_NAME contents */
    guint8 ak_alg;                      /* TvdAkAlg */
    guint8 agent_pcr;                   /* PCR of the agent's own list */
    guint64 capabilities;               /* TVD_CAP_* */
} TvdMsgAgentHello;

typedef struct {
    GBytes *credential_blob;            /* TPM2B_ID_OBJECT from MakeCredential */
    GBytes *encrypted_secret;           /* TPM2B_ENCRYPTED_SECRET */
} TvdMsgCredentialChallenge;

typedef struct {
    GBytes *secret;                     /* from ActivateCredential, 1..64 bytes */
} TvdMsgCredentialResponse;

typedef struct {
    guint8 nonce[TVD_MSG_NONCE_LEN];    /* fresh, single-use: quote qualifying data */
    guint16 pcr_bank;                   /* TVD_TPM_ALG_* */
    guint32 pcr_select;                 /* bit i = PCR i; non-zero, bits 24..31 zero */
    guint64 ima_offset;                 /* IMA entries the supervisor already has */
    guint64 agent_offset;               /* agent list entries it already has */
    char **paths;                       /* extra absolute paths to measure, NULL = none */
} TvdMsgAttestRequest;

typedef struct {
    guint8 kind;                        /* TvdLogKind */
    guint64 offset;                     /* index of entries[0] in the whole log */
    gboolean more;                      /* LOG_CHUNK messages of this kind follow */
    GPtrArray *entries;                 /* of GBytes, one record each; NULL = none.
                                         * Decoded entries reference the received
                                         * buffer: copy them to keep them long. */
} TvdMsgLogChunk;

typedef struct {
    guint8 index;                       /* 0..23, strictly increasing */
    GBytes *digest;                     /* digest size of the bank */
} TvdMsgPcrValue;

typedef struct {
    GBytes *attest;                     /* TPMS_ATTEST from TPM2_Quote */
    GBytes *signature;                  /* TPMT_SIGNATURE */
    guint16 pcr_bank;                   /* bank of pcrs[] */
    guint n_pcrs;
    TvdMsgPcrValue pcrs[TVD_MSG_PCR_COUNT];
    guint n_logs;
    TvdMsgLogChunk logs[TVD_MSG_LOGS_MAX]; /* distinct kinds, ascending */
} TvdMsgEvidence;

typedef struct {
    guint32 state;                      /* enum tvd_state */
    guint32 reason;                     /* enum tvd_reason or supervisor code */
    char *reason_text;                  /* NULL = empty */
    guint32 epoch;                      /* supervisor's membership epoch */
    guint32 deadline_s;                 /* seconds to the next attestation deadline, 0 = none */
} TvdMsgMembership;

typedef struct {
    guint32 code;                       /* TvdMsgErrCode, non-zero */
    guint16 ref_type;                   /* message type it answers, 0 = none */
    char *text;                         /* NULL = empty */
} TvdMsgErrorReport;

/* Any message: the type says which member of the union is valid. */
typedef struct {
    guint16 type;                       /* TvdMsgType */
    union {
        TvdMsgAgentHello agent_hello;
        TvdMsgCredentialChallenge credential_challenge;
        TvdMsgCredentialResponse credential_response;
        TvdMsgAttestRequest attest_request;
        TvdMsgEvidence evidence;
        TvdMsgLogChunk log_chunk;
        TvdMsgMembership membership;
        TvdMsgErrorReport error_report;
    } u;
} TvdMsg;

/* ---- API ------------------------------------------------------------------ */

/* "AGENT_HELLO", ..., or "unknown". */
const char *tvd_msg_type_name(guint type);
/* The body type string of a message type, NULL for an unknown one. */
const char *tvd_msg_body_type(guint type);

/* Serialized envelope (normal form, little-endian); NULL + error if invalid. */
GBytes *tvd_msg_encode(const TvdMsg *msg, GError **error);
/*
 * Decodes a TVD_FRAME_AGENT payload into @msg (cleared first; on failure it
 * is left cleared). Free with tvd_msg_clear().
 */
gboolean tvd_msg_decode(GBytes *payload, TvdMsg *msg, GError **error);
void tvd_msg_clear(TvdMsg *msg);

/*
 * Typed encoders and decoders. A typed decoder fails with
 * TVD_MSG_ERROR_UNEXPECTED when the payload holds another (valid) message.
 */
#define TVD_MSG_DECLARE(Name, name)                                         \
    GBytes *tvd_msg_##name##_encode(const TvdMsg##Name *m, GError **error); \
    gboolean tvd_msg_##name##_decode(GBytes *payload, TvdMsg##Name *m,     \
                                     GError **error);                      \
    void tvd_msg_##name##_clear(TvdMsg##Name *m);

TVD_MSG_DECLARE(AgentHello, agent_hello)
TVD_MSG_DECLARE(CredentialChallenge, credential_challenge)
TVD_MSG_DECLARE(CredentialResponse, credential_response)
TVD_MSG_DECLARE(AttestRequest, attest_request)
TVD_MSG_DECLARE(Evidence, evidence)
TVD_MSG_DECLARE(LogChunk, log_chunk)
TVD_MSG_DECLARE(Membership, membership)
TVD_MSG_DECLARE(ErrorReport, error_report)

#undef TVD_MSG_DECLARE

/* Digest size of a PCR bank (TVD_TPM_ALG_*), 0 for any other value. */
gsize tvd_msg_pcr_bank_digest_size(guint16 bank);

G_END_DECLS

#endif /* TVD_COMMON_MESSAGE_H */
