/*
 * tvd domain policy: parsing, evaluation of evidence, detached signatures.
 *
 * A domain policy is a JSON document ("tvd_policy": 1) described field by
 * field in docs/policy.md. tvd_policy_parse() checks it completely (strict
 * JSON, no unknown fields, caps on every size and count) and answers an
 * immutable, reference-counted TvdPolicy, or a GError in TVD_POLICY_ERROR
 * whose message names the source, the line and column and the JSON path of
 * the offending field:
 *
 *     blue.json:14:19: network.rules[2].ports[0]: port 70000 is out of range 1..65535
 *
 * The supervisor verifies a policy's detached signature against its trust
 * store of administrator keys (tvd_policy_trust_store_verify()), parses it,
 * and evaluates verified evidence with tvd_policy_evaluate().
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_POLICY_H
#define TVD_POLICY_H

#include <stdint.h>
#include <glib.h>

G_BEGIN_DECLS

#define TVD_POLICY_ERROR (tvd_policy_error_quark())
GQuark tvd_policy_error_quark(void);

typedef enum {
    TVD_POLICY_ERROR_SYNTAX,        /* not strict JSON (RFC 8259), or too deep */
    TVD_POLICY_ERROR_TOO_LARGE,     /* a size or count cap is exceeded */
    TVD_POLICY_ERROR_UNKNOWN_FIELD, /* a member the format does not define */
    TVD_POLICY_ERROR_MISSING_FIELD, /* a required member is absent */
    TVD_POLICY_ERROR_TYPE,          /* a member has the wrong JSON type */
    TVD_POLICY_ERROR_VALUE,         /* a value is out of range or malformed */
    TVD_POLICY_ERROR_VERSION,       /* "tvd_policy" is not a supported version */
    TVD_POLICY_ERROR_UPDATE,        /* an update that may not replace the old policy */
    TVD_POLICY_ERROR_SIGNATURE,     /* signature file malformed or not valid */
    TVD_POLICY_ERROR_UNKNOWN_KEY,   /* no trusted key has the signature's key id */
    TVD_POLICY_ERROR_KEY,           /* a key file is unusable (type, permissions) */
    TVD_POLICY_ERROR_IO,            /* reading or writing a file failed */
} TvdPolicyError;

/* ---- Format version and caps (docs/policy.md, "Caps") ---------------------- */

#define TVD_POLICY_FORMAT_VERSION       1
#define TVD_POLICY_MAX_BYTES            (8u * 1024 * 1024)  /* policy file */
#define TVD_POLICY_MAX_DEPTH            8u      /* nesting of objects and arrays */
#define TVD_POLICY_MAX_STRING           4096u   /* bytes of any string, decoded */
#define TVD_POLICY_MAX_DESCRIPTION      1024u   /* bytes of a description */
#define TVD_POLICY_MAX_PATH             4095u   /* bytes of a measured path */
#define TVD_POLICY_MAX_REFERENCES       4096u   /* membership.reference_digests */
#define TVD_POLICY_MAX_REF_DIGESTS      16u     /* digests per reference path */
#define TVD_POLICY_MAX_ALLOWLIST        65536u  /* membership.ima_allowlist */
#define TVD_POLICY_MAX_EXCLUDES         256u    /* membership.excludes */
#define TVD_POLICY_MAX_GLOB             256u    /* bytes of an exclude glob */
#define TVD_POLICY_MAX_PCR_VALUES       8u      /* accepted values per PCR */
#define TVD_POLICY_MAX_ROLES            64u     /* network.roles */
#define TVD_POLICY_MAX_RULES            1024u   /* network.rules */
#define TVD_POLICY_MAX_PORTS            64u     /* ports entries per rule */
#define TVD_POLICY_NAME_MAX             63u     /* domain name: one DNS label */
#define TVD_POLICY_ROLE_MAX             32u     /* role name */
#define TVD_POLICY_DOMAIN_ID_MAX        16777215u /* 24-bit VXLAN VNI */
#define TVD_POLICY_PCR_COUNT            24u     /* PCR indices 0..23 */
#define TVD_POLICY_MEASUREMENT_PCR_MIN  11u     /* agent list PCR, see docs */
#define TVD_POLICY_MEASUREMENT_PCR_MAX  15u
#define TVD_POLICY_MEASUREMENT_PCR_DEFAULT 13u
#define TVD_POLICY_INTERVAL_MIN_MS      100u
#define TVD_POLICY_INTERVAL_MAX_MS      (24u * 3600 * 1000)
#define TVD_POLICY_DEADLINE_MAX_MS      (48u * 3600 * 1000)
#define TVD_POLICY_INTERVAL_DEFAULT_MS  60000u
#define TVD_POLICY_IMA_PCR              10u     /* where the kernel extends IMA */
#define TVD_POLICY_BANK_SHA256          0x000bu /* TPM_ALG_ID of the PCR banks */
#define TVD_POLICY_BANK_SHA384          0x000cu
#define TVD_POLICY_BANK_SHA512          0x000du
#define TVD_POLICY_SERIAL_MAX           G_GUINT64_CONSTANT(9007199254740991) /* 2^53-1 */

/* Packed agent version, the packing of TVD_AGENT_VERSION in common/message.h. */
#define TVD_POLICY_AGENT_VERSION(maj, min, pat) \
    ((guint32)(((maj) & 0xff) << 16 | ((min) & 0xff) << 8 | ((pat) & 0xff)))

/* ---- The policy model (read only; every pointer belongs to the policy) ---- */

typedef enum {
    TVD_POLICY_ON_FAILURE_QUARANTINE = 1,
    TVD_POLICY_ON_FAILURE_REVOKE     = 2,
    TVD_POLICY_ON_FAILURE_STOP       = 3,
} TvdPolicyOnFailure;

typedef enum {
    TVD_POLICY_ENCRYPTION_NONE       = 1,
    TVD_POLICY_ENCRYPTION_WIREGUARD  = 2,
} TvdPolicyEncryption;

typedef enum {
    TVD_POLICY_PROTO_ANY  = 0,
    TVD_POLICY_PROTO_TCP  = 6,
    TVD_POLICY_PROTO_UDP  = 17,
    TVD_POLICY_PROTO_ICMP = 1,          /* ICMP and ICMPv6 */
} TvdPolicyProtocol;

/* membership.evidence: whether a piece of evidence must be sent. */
typedef enum {
    TVD_POLICY_EVIDENCE_OPTIONAL = 0,   /* judged when the agent offers it */
    TVD_POLICY_EVIDENCE_REQUIRED = 1,   /* missing is a rejection */
} TvdPolicyEvidenceNeed;

typedef struct {
    char *path;                         /* absolute path */
    guint n_digests;
    guint8 (*digests)[32];              /* accepted SHA-256 digests */
    gboolean required;                  /* must appear in the measurements */
} TvdPolicyReference;

typedef struct {
    guint16 first, last;                /* inclusive, 1..65535, first <= last */
} TvdPolicyPortRange;

typedef struct {
    char *from;                         /* role name or "*" */
    char *to;                           /* role name or "*" */
    TvdPolicyProtocol protocol;
    guint n_ports;                      /* 0 = every port (tcp/udp) */
    TvdPolicyPortRange *ports;
} TvdPolicyRule;

/* Host properties (docs/policy.md, "Properties"), as a bit set. */
typedef enum {
    TVD_POLICY_PROP_CONFINEMENT  = 1u << 0,
    TVD_POLICY_PROP_INTEGRITY    = 1u << 1,
    TVD_POLICY_PROP_SECURE_IO    = 1u << 2,
    TVD_POLICY_PROP_RESET        = 1u << 3,
    TVD_POLICY_PROP_AVAILABILITY = 1u << 4,
    TVD_POLICY_PROP_AUDITING     = 1u << 5,
} TvdPolicyProperty;
#define TVD_POLICY_PROP_ALL 0x3fu

typedef struct {
    /* top level */
    guint64 serial;                     /* increases with every update */
    char *description;                  /* may be NULL */

    /* domain */
    char *name;                         /* DNS label */
    guint32 id;                         /* 1..16777215, the VXLAN VNI */

    /* membership */
    guint32 min_agent_version;          /* packed; 0 = any */
    guint32 pcr_mask;                   /* bit i: PCR i has required values */
    guint n_pcr_values[TVD_POLICY_PCR_COUNT];
    guint8 (*pcr_values[TVD_POLICY_PCR_COUNT])[32];
    guint n_references;                 /* sorted by path, paths unique */
    TvdPolicyReference *references;
    guint n_allowlist;                  /* sorted, unique */
    guint8 (*allowlist)[32];
    guint n_excludes;
    char **excludes;                    /* globs, see docs */
    gboolean unlisted_allowed;          /* "unlisted": "allow" */
    /* membership.evidence (see docs/policy.md, "Required evidence") */
    TvdPolicyEvidenceNeed ima;          /* IMA log in PCR 10 (default optional) */
    TvdPolicyEvidenceNeed agent_list;   /* agent's list in measurement_pcr
                                         * (default required) */
    guint16 pcr_bank;                   /* TVD_POLICY_BANK_*, default SHA-256 */
    gboolean ima_violations_allowed;    /* "ima_violations": "allow" */
    gboolean boot_aggregate_referenced; /* a reference_digests path is
                                         * "boot_aggregate" */

    /* attestation */
    guint32 interval_ms;
    guint32 deadline_ms;                /* > interval_ms */
    TvdPolicyOnFailure on_failure;
    guint8 measurement_pcr;             /* 11..15 */

    /* network */
    guint8 subnet_family;               /* 4 or 6 */
    guint8 subnet_addr[16];             /* network address, host bits zero */
    guint8 subnet_prefix;
    TvdPolicyEncryption encryption;
    guint n_roles;
    char **roles;                       /* NULL-terminated too */
    char *default_role;                 /* NULL = a VM must name its role */
    gboolean intra_default_allow;       /* "intra_default": "allow" */
    guint n_rules;
    TvdPolicyRule *rules;

    /* properties */
    guint32 properties;                 /* TvdPolicyProperty bits required */
    guint32 max_vcpus;                  /* 0 = no limit */
    guint64 max_memory_mib;             /* 0 = no limit */
    guint32 max_members_per_host;       /* 0 = no limit */
} TvdPolicyData;

typedef struct _TvdPolicy TvdPolicy;

/* Where a parse error is (line and column 1-based; 0 = unknown). */
typedef struct {
    char *path;                         /* JSON path, "" = the document */
    guint line;
    guint column;
} TvdPolicyErrorLocation;

void tvd_policy_error_location_clear(TvdPolicyErrorLocation *loc);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TvdPolicyErrorLocation, tvd_policy_error_location_clear)

/*
 * Parses and checks a policy document. @source names it in messages (a file
 * name; NULL = "policy"). On failure, @loc (optional) receives the location.
 */
TvdPolicy *tvd_policy_parse(const void *data, gsize len, const char *source,
                            TvdPolicyErrorLocation *loc, GError **error);
TvdPolicy *tvd_policy_parse_bytes(GBytes *bytes, const char *source,
                                  TvdPolicyErrorLocation *loc, GError **error);
/* Reads at most TVD_POLICY_MAX_BYTES + 1 bytes of @path and parses them. */
TvdPolicy *tvd_policy_load_file(const char *path, TvdPolicyErrorLocation *loc,
                                GError **error);

TvdPolicy *tvd_policy_ref(TvdPolicy *policy);
void tvd_policy_unref(TvdPolicy *policy);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdPolicy, tvd_policy_unref)

/* The parsed fields. */
const TvdPolicyData *tvd_policy_data(const TvdPolicy *policy);
/* The exact bytes that were parsed (what a signature covers). */
GBytes *tvd_policy_get_bytes(const TvdPolicy *policy);
/* SHA-256 of the exact bytes, and as "sha256:<64 hex>". */
const guint8 *tvd_policy_get_digest(const TvdPolicy *policy);
const char *tvd_policy_get_digest_string(const TvdPolicy *policy);
/*
 * SHA-256 of the canonical form: the parsed model with defaults applied,
 * lists sorted, serialized in a fixed order. Two files that differ only in
 * layout, member order or defaults spelled out have the same canonical
 * digest. "sha256:<hex>".
 */
const char *tvd_policy_get_canonical_digest(const TvdPolicy *policy);
/* Same, over the membership requirements only (what evaluation reads). */
const char *tvd_policy_get_membership_digest(const TvdPolicy *policy);

gboolean tvd_policy_has_role(const TvdPolicy *policy, const char *role);
const char *tvd_policy_on_failure_name(TvdPolicyOnFailure action);

/* ---- Updates ---------------------------------------------------------------- */

typedef enum {
    TVD_POLICY_CHANGE_MEMBERSHIP  = 1u << 0,   /* members must be re-evaluated */
    TVD_POLICY_CHANGE_ATTESTATION = 1u << 1,   /* interval, deadline, action, PCR */
    TVD_POLICY_CHANGE_NETWORK     = 1u << 2,   /* subnet, encryption, roles, rules */
    TVD_POLICY_CHANGE_PROPERTIES  = 1u << 3,   /* required host properties, limits */
    TVD_POLICY_CHANGE_OTHER       = 1u << 4,   /* serial, description */
} TvdPolicyChange;

/* Which parts differ between two policies (0 = same canonical form). */
guint32 tvd_policy_diff(const TvdPolicy *old_policy, const TvdPolicy *new_policy);
/*
 * TRUE when @new_policy changes what a VM must prove to be a member (the
 * membership section or the agent measurement PCR): every member must then
 * be re-evaluated against @new_policy.
 */
gboolean tvd_policy_membership_changed(const TvdPolicy *old_policy,
                                       const TvdPolicy *new_policy);
/*
 * Checks that @new_policy may replace @old_policy: same domain name and id,
 * and a strictly greater serial (no rollback to an older signed policy).
 */
gboolean tvd_policy_check_update(const TvdPolicy *old_policy,
                                 const TvdPolicy *new_policy, GError **error);

/* ---- What evidence to ask for ------------------------------------------------ */

/*
 * What a round must request and verify, from the policy's requirements,
 * never from what the agent claims: the agent's offers only add optional
 * evidence. A required piece the agent does not send is a rejection
 * (evidence-missing).
 */
typedef struct {
    guint16 pcr_bank;                   /* TVD_POLICY_BANK_* */
    guint32 pcr_select;                 /* bit i: quote PCR i */
    gboolean ima;                       /* verify the IMA log (PCR 10) */
    gboolean ima_required;
    gboolean agent_list;                /* verify the agent's list (agent_pcr) */
    gboolean agent_list_required;
    guint8 agent_pcr;                   /* the policy's measurement_pcr */
    gboolean boot_aggregate;            /* PCR 0..9 quoted, boot_aggregate
                                         * checked against them */
    gboolean ima_violations_allowed;
} TvdPolicyEvidencePlan;

/*
 * The plan for @policy (NULL: the defaults of a policy without
 * membership.evidence) given what the agent offers (its hello's
 * capabilities): @offers_ima, @offers_agent_list.
 */
void tvd_policy_evidence_plan(const TvdPolicy *policy, gboolean offers_ima,
                              gboolean offers_agent_list,
                              TvdPolicyEvidencePlan *out);

/* ---- Evaluation of verified evidence -------------------------------------- */

typedef struct {
    const char *path;                   /* as measured (IMA "n-ng" field) */
    guint8 sha256[32];                  /* file data digest */
} TvdPolicyMeasurement;

/*
 * Evidence the verifier has already checked (quote signature, nonce, PCR
 * digest, log replay): the policy only compares it with its requirements.
 */
typedef struct {
    const TvdPolicyMeasurement *entries;
    gsize n_entries;
    guint32 pcr_mask;                   /* bit i: pcrs[i] holds PCR i (SHA-256 bank) */
    guint8 pcrs[TVD_POLICY_PCR_COUNT][32];
    guint32 agent_version;              /* packed, TVD_POLICY_AGENT_VERSION() */
} TvdPolicyEvidence;

typedef enum {
    TVD_POLICY_ALLOWED   = 0,
    TVD_POLICY_VIOLATION = 1,
} TvdPolicyVerdict;

typedef enum {
    TVD_POLICY_OK = 0,
    TVD_POLICY_V_AGENT_VERSION,         /* agent older than min_agent_version */
    TVD_POLICY_V_PCR_MISSING,           /* a required PCR is not in the evidence */
    TVD_POLICY_V_PCR_MISMATCH,          /* a required PCR has another value */
    TVD_POLICY_V_DIGEST_MISMATCH,       /* a reference path with another digest */
    TVD_POLICY_V_UNKNOWN_DIGEST,        /* an unlisted path whose digest is not allowed */
    TVD_POLICY_V_REQUIRED_MISSING,      /* a required reference path was not measured */
    TVD_POLICY_V_BAD_PATH,              /* a measured path that is empty or too long */
} TvdPolicyViolation;

typedef struct {
    TvdPolicyVerdict verdict;
    TvdPolicyViolation violation;       /* the first violation found */
    char *reason;                       /* e.g. "unknown digest for /usr/bin/evil: sha256:ab12...";
                                         * printable ASCII, at most 255 bytes; NULL if allowed */
    char *item;                         /* offending path, "PCR 10" or "agent version" */
    guint n_violations;                 /* all violations found */
    gsize n_ignored;                    /* entries skipped by excludes */
} TvdPolicyResult;

void tvd_policy_result_clear(TvdPolicyResult *result);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TvdPolicyResult, tvd_policy_result_clear)

/*
 * Compares @evidence with the membership requirements of @policy, in this
 * order: agent version, PCRs (ascending), measured entries (log order;
 * excludes first), required paths. @result is overwritten.
 */
TvdPolicyVerdict tvd_policy_evaluate(const TvdPolicy *policy,
                                     const TvdPolicyEvidence *evidence,
                                     TvdPolicyResult *result);

/* Short name of a violation ("unknown-digest", ...), for metrics labels. */
const char *tvd_policy_violation_name(TvdPolicyViolation violation);

/* Exclude glob match (docs/policy.md, "Excludes"); exported for tests. */
gboolean tvd_policy_glob_match(const char *pattern, const char *path);
/* For "did you mean": the name of @known (NULL-terminated) nearest to @name
 * at an edit distance of 1 or 2, or NULL. Also used for configuration keys. */
const char *tvd_policy_suggest(const char *name, const char *const *known);

/* "1.2.3" / "1.2" / "1" to packed; FALSE if malformed or a part > 255. */
gboolean tvd_policy_parse_version(const char *text, guint32 *out);

/* ---- Host properties and resource limits ----------------------------------- */

/*
 * TRUE if a host that provides @host_properties (TvdPolicyProperty bits) may
 * carry the domain; otherwise FALSE and @reason names the missing properties.
 */
gboolean tvd_policy_host_can_carry(const TvdPolicy *policy, guint32 host_properties,
                                   char **reason);
/* TRUE if a VM of this size may start as the (@members_on_host + 1)-th member. */
gboolean tvd_policy_check_vm_limits(const TvdPolicy *policy, guint32 vcpus,
                                    guint64 memory_mib, guint32 members_on_host,
                                    char **reason);

/* ---- Signatures ------------------------------------------------------------- */

typedef enum {
    TVD_POLICY_KEY_ED25519    = 1,
    TVD_POLICY_KEY_ECDSA_P256 = 2,      /* ECDSA P-256 with SHA-256 */
} TvdPolicyKeyType;

#define TVD_POLICY_KEY_ID_LEN       32u     /* SHA-256 of SubjectPublicKeyInfo DER */
#define TVD_POLICY_SIG_FILE_MAX     4096u   /* bytes of a signature file */
#define TVD_POLICY_SIG_MAX          72u     /* DER ECDSA P-256; Ed25519 is 64 */
#define TVD_POLICY_TRUST_KEYS_MAX   256u    /* keys in a trust store */
#define TVD_POLICY_KEY_FILE_MAX     16384u  /* bytes of a PEM key file */

/* A decoded signature file. */
typedef struct {
    TvdPolicyKeyType key_type;
    guint8 key_id[TVD_POLICY_KEY_ID_LEN];
    gboolean has_digest;
    guint8 policy_digest[32];           /* SHA-256 of the signed bytes (header) */
    guint8 sig[TVD_POLICY_SIG_MAX];
    gsize sig_len;
} TvdPolicySignature;

/* Decodes the armored signature file format of docs/policy.md. */
gboolean tvd_policy_signature_decode(const void *data, gsize len,
                                     TvdPolicySignature *sig, GError **error);
/* Encodes @sig as a signature file (NUL-terminated text). */
char *tvd_policy_signature_encode(const TvdPolicySignature *sig);

/*
 * Generates an administrator key pair: the private key (PKCS#8 PEM) is
 * created 0600 with O_EXCL, the public key (SubjectPublicKeyInfo PEM) 0644.
 * Neither file may exist. @key_id_out (optional) gets "sha256:<hex>".
 */
gboolean tvd_policy_keygen(TvdPolicyKeyType type, const char *private_path,
                           const char *public_path, char **key_id_out,
                           GError **error);

/*
 * Signs @data (the exact policy bytes) with the private key in
 * @private_path, which must be a regular file owned by the caller with no
 * group or other permission bits (0600 or 0400). Answers the signature file.
 */
char *tvd_policy_sign(const void *data, gsize len, const char *private_path,
                      GError **error);

/* "sha256:<hex>" key id of a PEM public or private key file. */
char *tvd_policy_key_id_of_file(const char *path, GError **error);

typedef struct _TvdPolicyTrustStore TvdPolicyTrustStore;

/*
 * Loads every "*.pem" file of @dir as an administrator public key. The
 * directory and the files must not be writable by group or others. A file
 * that is not an Ed25519 or P-256 public key is an error.
 */
TvdPolicyTrustStore *tvd_policy_trust_store_load(const char *dir, GError **error);
TvdPolicyTrustStore *tvd_policy_trust_store_new(void);
/* Adds one PEM public key (for callers that keep keys elsewhere). */
gboolean tvd_policy_trust_store_add_pem(TvdPolicyTrustStore *store,
                                        const void *pem, gsize len,
                                        const char *name, GError **error);
guint tvd_policy_trust_store_size(const TvdPolicyTrustStore *store);
void tvd_policy_trust_store_free(TvdPolicyTrustStore *store);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdPolicyTrustStore, tvd_policy_trust_store_free)

/*
 * Verifies the signature file @sig_data over the exact bytes @data with the
 * trusted key whose id the signature names. @key_name_out (optional) gets
 * the name of that key (its file name without ".pem").
 */
gboolean tvd_policy_trust_store_verify(const TvdPolicyTrustStore *store,
                                       const void *data, gsize len,
                                       const void *sig_data, gsize sig_len,
                                       char **key_name_out, GError **error);

G_END_DECLS

#endif /* TVD_POLICY_H */
