/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tvd-agent: the guest's TPM through tpm2-tss ESYS. See agent-tpm.h for
 * the interface and docs/agent-tpm.md for the design.
 */
#define G_LOG_DOMAIN "tvd-agent-tpm"

#include "agent-tpm.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tcti_device.h>
#include <tss2/tss2_tctildr.h>

/*
 * ESYS already resubmits a command that got RETRY/YIELDED/TESTING up to
 * five times back to back; on top of that we wait 2, 4, 8 ... 256 ms
 * between further rounds (about half a second in all) before giving up.
 */
#define RETRY_ROUNDS         8
#define RETRY_FIRST_DELAY_US 2000
/* Quote and PCR read are redone when an extend slips in between. */
#define PCR_RACE_ATTEMPTS    4

struct TvdAgentTpm {
    ESYS_CONTEXT *esys;
    TSS2_TCTI_CONTEXT *tcti;
    gboolean own_tcti;
    gboolean tcti_via_ldr;  /* else: our own device TCTI allocation */
    guint32 ak_handle_rsa;
    guint32 ak_handle_ecc;
};

/* A key loaded for one call: transient ones are flushed, persistent closed. */
typedef struct {
    ESYS_TR tr;
    gboolean transient;
    TPM2B_PUBLIC *pub; /* Esys-allocated */
} TpmKey;

#define TPM_KEY_INIT { ESYS_TR_NONE, FALSE, NULL }

G_DEFINE_QUARK(tvd-agent-tpm-error-quark, tvd_agent_tpm_error)

/* TCG EK Credential Profile, template L-1: PolicyA (PolicySecret(EH)), SHA-256 */
static const guint8 ek_policy_l1[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d,
    0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64,
    0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

/* Template H-3 (ECC P-384): PolicyB, SHA-384 */
static const guint8 ek_policy_h3[48] = {
    0xb2, 0x6e, 0x7d, 0x28, 0xd1, 0x1a, 0x50, 0xbc, 0x53, 0xd8, 0x82, 0xbc,
    0xf5, 0xfd, 0x3a, 0x1a, 0x07, 0x41, 0x48, 0xbb, 0x35, 0xd3, 0xb4, 0xe4,
    0xcb, 0x1c, 0x0a, 0xd9, 0xbd, 0xe4, 0x19, 0xca, 0xcb, 0x47, 0xba, 0x09,
    0x69, 0x96, 0x46, 0x15, 0x0f, 0x9f, 0xc0, 0x00, 0xf3, 0xf8, 0x0e, 0x12,
};

#define AK_ATTRIBUTES (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
                       TPMA_OBJECT_SENSITIVEDATAORIGIN | \
                       TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | \
                       TPMA_OBJECT_SIGN_ENCRYPT)

const char *
tvd_agent_tpm_alg_name(TvdAgentTpmAlg alg)
{
    switch (alg) {
    case TVD_AGENT_TPM_ALG_RSA:
        return "rsa";
    case TVD_AGENT_TPM_ALG_ECC:
        return "ecc";
    }
    return "?";
}

static gboolean
alg_valid(TvdAgentTpmAlg alg, GError **error)
{
    if (alg == TVD_AGENT_TPM_ALG_RSA || alg == TVD_AGENT_TPM_ALG_ECC) {
        return TRUE;
    }
    g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                "unknown key algorithm %d", (int)alg);
    return FALSE;
}

/* ---- response codes, retries ------------------------------------------ */

static gboolean
rc_is_transient(TSS2_RC rc)
{
    /* ESYS hands TPM response codes through unchanged (TPM layer is 0). */
    return rc == TPM2_RC_RETRY || rc == TPM2_RC_YIELDED ||
           rc == TPM2_RC_TESTING;
}

/* TRUE: sleep done, call again. */
static gboolean
tpm_retry(TSS2_RC rc, guint *round)
{
    if (!rc_is_transient(rc) || *round >= RETRY_ROUNDS) {
        return FALSE;
    }
    g_debug("TPM busy (%s), retry %u", Tss2_RC_Decode(rc), *round + 1);
    g_usleep((gulong)RETRY_FIRST_DELAY_US << *round);
    (*round)++;
    return TRUE;
}

#define TPM_CALL(rc, expr) \
    do { \
        guint round_ = 0; \
        do { \
            (rc) = (expr); \
        } while (tpm_retry((rc), &round_)); \
    } while (0)

static gboolean
set_tpm_error(GError **error, TSS2_RC rc, const char *what)
{
    if (rc_is_transient(rc)) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_BUSY,
                    "%s: TPM still busy after %u retries: %s (0x%08x)",
                    what, RETRY_ROUNDS, Tss2_RC_Decode(rc), rc);
    } else {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED,
                    "%s: %s (0x%08x)", what, Tss2_RC_Decode(rc), rc);
    }
    return FALSE;
}

/* ---- handle hygiene ---------------------------------------------------- */

static void
flush_handle(TvdAgentTpm *tpm, ESYS_TR *tr)
{
    TSS2_RC rc;

    if (*tr == ESYS_TR_NONE || *tr == ESYS_TR_PASSWORD) {
        *tr = ESYS_TR_NONE;
        return;
    }
    TPM_CALL(rc, Esys_FlushContext(tpm->esys, *tr));
    if (rc != TSS2_RC_SUCCESS) {
        g_warning("TPM2_FlushContext: %s (0x%08x)", Tss2_RC_Decode(rc), rc);
        /* The handle is gone for ESYS either way: don't leak its metadata. */
        Esys_TR_Close(tpm->esys, tr);
    }
    *tr = ESYS_TR_NONE;
}

static void
key_release(TvdAgentTpm *tpm, TpmKey *key)
{
    if (key->tr != ESYS_TR_NONE) {
        if (key->transient) {
            flush_handle(tpm, &key->tr);
        } else {
            Esys_TR_Close(tpm->esys, &key->tr);
        }
    }
    key->tr = ESYS_TR_NONE;
    Esys_Free(key->pub);
    key->pub = NULL;
}

/* Is @handle (persistent object or NV index) present in the TPM? */
static gboolean
handle_exists(TvdAgentTpm *tpm, TPM2_HANDLE handle, gboolean *exists,
              GError **error)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    TSS2_RC rc;

    TPM_CALL(rc, Esys_GetCapability(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, TPM2_CAP_HANDLES, handle,
                                     1, &more, &cap));
    if (rc != TSS2_RC_SUCCESS) {
        return set_tpm_error(error, rc, "TPM2_GetCapability(handles)");
    }
    *exists = cap->data.handles.count >= 1 &&
              cap->data.handles.handle[0] == handle;
    Esys_Free(cap);
    return TRUE;
}

/* An ESYS_TR for an existing persistent object, with its public area. */
static gboolean
key_from_persistent(TvdAgentTpm *tpm, TPM2_HANDLE handle, TpmKey *key,
                    TPM2B_NAME **name, GError **error)
{
    TSS2_RC rc;

    TPM_CALL(rc, Esys_TR_FromTPMPublic(tpm->esys, handle, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE, &key->tr));
    if (rc != TSS2_RC_SUCCESS) {
        key->tr = ESYS_TR_NONE;
        g_autofree char *what = g_strdup_printf("TPM2_ReadPublic(0x%08x)",
                                                handle);
        return set_tpm_error(error, rc, what);
    }
    key->transient = FALSE;
    TPM_CALL(rc, Esys_ReadPublic(tpm->esys, key->tr, ESYS_TR_NONE,
                                 ESYS_TR_NONE, ESYS_TR_NONE, &key->pub, name,
                                 NULL));
    if (rc != TSS2_RC_SUCCESS) {
        g_autofree char *what = g_strdup_printf("TPM2_ReadPublic(0x%08x)",
                                                handle);
        key_release(tpm, key);
        return set_tpm_error(error, rc, what);
    }
    return TRUE;
}

/* ---- byte helpers ------------------------------------------------------ */

static GBytes *
marshal_public(const TPM2B_PUBLIC *pub)
{
    guint8 buf[sizeof(TPM2B_PUBLIC)];
    size_t off = 0;

    if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, buf, sizeof(buf), &off) !=
        TSS2_RC_SUCCESS) {
        return NULL;
    }
    return g_bytes_new(buf, off);
}

static void
secure_free(gpointer data)
{
    guint8 *p = data;
    gsize len;

    /* The length is stored in front of the data (see secure_bytes_new). */
    memcpy(&len, p - sizeof(gsize), sizeof(gsize));
    OPENSSL_cleanse(p - sizeof(gsize), len + sizeof(gsize));
    g_free(p - sizeof(gsize));
}

/* A GBytes whose memory is wiped on release. */
static GBytes *
secure_bytes_new(const guint8 *data, gsize len)
{
    guint8 *mem = g_malloc(sizeof(gsize) + len + 1);

    memcpy(mem, &len, sizeof(gsize));
    if (len > 0) {
        memcpy(mem + sizeof(gsize), data, len);
    }
    return g_bytes_new_with_free_func(mem + sizeof(gsize), len, secure_free,
                                      mem + sizeof(gsize));
}

static gboolean
pcr_mask_valid(guint32 mask, GError **error)
{
    if (mask == 0 || (mask & ~TVD_AGENT_TPM_PCR_ALL) != 0) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "PCR selection 0x%08x: must be non-empty, PCRs 0-23",
                    mask);
        return FALSE;
    }
    return TRUE;
}

static void
pcr_selection_from_mask(guint32 mask, TPML_PCR_SELECTION *sel)
{
    memset(sel, 0, sizeof(*sel));
    sel->count = 1;
    sel->pcrSelections[0].hash = TPM2_ALG_SHA256;
    sel->pcrSelections[0].sizeofSelect = 3;
    sel->pcrSelections[0].pcrSelect[0] = mask & 0xff;
    sel->pcrSelections[0].pcrSelect[1] = (mask >> 8) & 0xff;
    sel->pcrSelections[0].pcrSelect[2] = (mask >> 16) & 0xff;
}

/* ---- open / close ------------------------------------------------------ */

static gboolean
config_handles(TvdAgentTpm *tpm, const TvdAgentTpmConfig *config,
               GError **error)
{
    tpm->ak_handle_rsa = config && config->ak_handle_rsa ?
                         config->ak_handle_rsa :
                         TVD_AGENT_TPM_DEFAULT_AK_HANDLE_RSA;
    tpm->ak_handle_ecc = config && config->ak_handle_ecc ?
                         config->ak_handle_ecc :
                         TVD_AGENT_TPM_DEFAULT_AK_HANDLE_ECC;
    for (guint i = 0; i < 2; i++) {
        guint32 h = i == 0 ? tpm->ak_handle_rsa : tpm->ak_handle_ecc;

        if (h < 0x81000000u || h > 0x817fffffu) {
            g_set_error(error, TVD_AGENT_TPM_ERROR,
                        TVD_AGENT_TPM_ERROR_INVALID,
                        "AK handle 0x%08x is not an owner persistent handle "
                        "(0x81000000-0x817fffff)", h);
            return FALSE;
        }
    }
    if (tpm->ak_handle_rsa == tpm->ak_handle_ecc) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "the RSA and ECC AKs need distinct handles");
        return FALSE;
    }
    return TRUE;
}

/* On failure the TCTI stays the caller's. */
static TvdAgentTpm *
tpm_open(const TvdAgentTpmConfig *config, TSS2_TCTI_CONTEXT *tcti,
         gboolean own_tcti, gboolean via_ldr, GError **error)
{
    g_autoptr(TvdAgentTpm) tpm = g_new0(TvdAgentTpm, 1);
    TSS2_RC rc;

    tpm->tcti = tcti;
    if (!config_handles(tpm, config, error)) {
        return NULL;
    }
    rc = Esys_Initialize(&tpm->esys, tcti, NULL);
    if (rc != TSS2_RC_SUCCESS) {
        tpm->esys = NULL;
        set_tpm_error(error, rc, "Esys_Initialize");
        return NULL;
    }
    tpm->own_tcti = own_tcti;
    tpm->tcti_via_ldr = via_ldr;
    return g_steal_pointer(&tpm);
}

/*
 * "device[:path]" is opened with the device TCTI linked in, not through
 * the loader's dlopen(), so a minimal initramfs needs only the libraries
 * the agent links (ldd shows them all). Everything else goes through
 * Tss2_TctiLdr_Initialize.
 */
static TSS2_TCTI_CONTEXT *
tcti_open(const char *conf, gboolean *via_ldr, GError **error)
{
    TSS2_TCTI_CONTEXT *tcti = NULL;
    TSS2_RC rc;

    if (g_str_equal(conf, "device") || g_str_has_prefix(conf, "device:")) {
        const char *path = conf[6] == ':' && conf[7] ? conf + 7 :
                           "/dev/tpmrm0";
        size_t size = 0;

        rc = Tss2_Tcti_Device_Init(NULL, &size, path);
        if (rc == TSS2_RC_SUCCESS) {
            tcti = g_malloc0(size);
            rc = Tss2_Tcti_Device_Init(tcti, &size, path);
            if (rc != TSS2_RC_SUCCESS) {
                g_clear_pointer(&tcti, g_free);
            }
        }
        *via_ldr = FALSE;
    } else {
        rc = Tss2_TctiLdr_Initialize(conf, &tcti);
        *via_ldr = TRUE;
    }
    if (rc != TSS2_RC_SUCCESS) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_TCTI,
                    "cannot open TCTI \"%s\": %s (0x%08x)", conf,
                    Tss2_RC_Decode(rc), rc);
        return NULL;
    }
    return tcti;
}

static void
tcti_close(TSS2_TCTI_CONTEXT *tcti, gboolean via_ldr)
{
    if (via_ldr) {
        Tss2_TctiLdr_Finalize(&tcti);
    } else {
        Tss2_Tcti_Finalize(tcti);
        g_free(tcti);
    }
}

TvdAgentTpm *
tvd_agent_tpm_new(const TvdAgentTpmConfig *config, GError **error)
{
    const char *conf = config && config->tcti ? config->tcti :
                       TVD_AGENT_TPM_DEFAULT_TCTI;
    TSS2_TCTI_CONTEXT *tcti;
    gboolean via_ldr = TRUE;
    TvdAgentTpm *tpm;

    tcti = tcti_open(conf, &via_ldr, error);
    if (!tcti) {
        return NULL;
    }
    tpm = tpm_open(config, tcti, TRUE, via_ldr, error);
    if (!tpm) {
        tcti_close(tcti, via_ldr);
    }
    return tpm;
}

TvdAgentTpm *
tvd_agent_tpm_new_with_tcti(const TvdAgentTpmConfig *config,
                            TSS2_TCTI_CONTEXT *tcti, GError **error)
{
    g_return_val_if_fail(tcti != NULL, NULL);
    return tpm_open(config, tcti, FALSE, FALSE, error);
}

void
tvd_agent_tpm_free(TvdAgentTpm *tpm)
{
    if (!tpm) {
        return;
    }
    if (tpm->esys) {
        Esys_Finalize(&tpm->esys);
    }
    if (tpm->own_tcti && tpm->tcti) {
        tcti_close(tpm->tcti, tpm->tcti_via_ldr);
    }
    g_free(tpm);
}

/* ---- EK ------------------------------------------------------------------ */

static void
ek_template(TvdAgentTpmAlg alg, TPM2B_PUBLIC *t)
{
    TPMT_PUBLIC *p = &t->publicArea;

    memset(t, 0, sizeof(*t));
    p->objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                          TPMA_OBJECT_SENSITIVEDATAORIGIN |
                          TPMA_OBJECT_ADMINWITHPOLICY |
                          TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
    if (alg == TVD_AGENT_TPM_ALG_RSA) {
        /* L-1: RSA 2048, AES-128-CFB, PolicyA (SHA-256), 256 zero bytes unique */
        p->type = TPM2_ALG_RSA;
        p->nameAlg = TPM2_ALG_SHA256;
        p->authPolicy.size = sizeof(ek_policy_l1);
        memcpy(p->authPolicy.buffer, ek_policy_l1, sizeof(ek_policy_l1));
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.rsaDetail.symmetric.keyBits.aes = 128;
        p->parameters.rsaDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
        p->unique.rsa.size = 256;
    } else {
        /*
         * H-3: ECC NIST P-384, SHA-384 name, AES-256-CFB, PolicyB
         * (SHA-384), userWithAuth, empty unique. This is what swtpm_setup
         * makes for its ECC EK and certifies at 0x01c00016.
         */
        p->type = TPM2_ALG_ECC;
        p->nameAlg = TPM2_ALG_SHA384;
        p->objectAttributes |= TPMA_OBJECT_USERWITHAUTH;
        p->authPolicy.size = sizeof(ek_policy_h3);
        memcpy(p->authPolicy.buffer, ek_policy_h3, sizeof(ek_policy_h3));
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
        p->parameters.eccDetail.symmetric.keyBits.aes = 256;
        p->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P384;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
        p->unique.ecc.x.size = 0;
        p->unique.ecc.y.size = 0;
    }
}

static gboolean
ek_load(TvdAgentTpm *tpm, TvdAgentTpmAlg alg, TpmKey *ek, GError **error)
{
    TPM2_HANDLE handle = alg == TVD_AGENT_TPM_ALG_RSA ?
                         TVD_AGENT_TPM_EK_HANDLE_RSA :
                         TVD_AGENT_TPM_EK_HANDLE_ECC;
    TPM2_ALG_ID type = alg == TVD_AGENT_TPM_ALG_RSA ? TPM2_ALG_RSA :
                       TPM2_ALG_ECC;
    TPM2B_SENSITIVE_CREATE sensitive = { 0 };
    TPM2B_DATA outside = { 0 };
    TPML_PCR_SELECTION creation_pcr = { 0 };
    TPM2B_PUBLIC template;
    TPM2B_CREATION_DATA *creation_data = NULL;
    TPM2B_DIGEST *creation_hash = NULL;
    TPMT_TK_CREATION *creation_ticket = NULL;
    gboolean exists;
    TSS2_RC rc;

    if (!handle_exists(tpm, handle, &exists, error)) {
        return FALSE;
    }
    if (exists) {
        if (!key_from_persistent(tpm, handle, ek, NULL, error)) {
            return FALSE;
        }
        if (ek->pub->publicArea.type != type ||
            !(ek->pub->publicArea.objectAttributes & TPMA_OBJECT_RESTRICTED) ||
            !(ek->pub->publicArea.objectAttributes & TPMA_OBJECT_DECRYPT)) {
            key_release(tpm, ek);
            g_set_error(error, TVD_AGENT_TPM_ERROR,
                        TVD_AGENT_TPM_ERROR_MISMATCH,
                        "the object at 0x%08x is not an %s EK", handle,
                        tvd_agent_tpm_alg_name(alg));
            return FALSE;
        }
        return TRUE;
    }

    ek_template(alg, &template);
    TPM_CALL(rc, Esys_CreatePrimary(tpm->esys, ESYS_TR_RH_ENDORSEMENT,
                                    ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &sensitive, &template,
                                    &outside, &creation_pcr, &ek->tr,
                                    &ek->pub, &creation_data, &creation_hash,
                                    &creation_ticket));
    Esys_Free(creation_data);
    Esys_Free(creation_hash);
    Esys_Free(creation_ticket);
    if (rc != TSS2_RC_SUCCESS) {
        ek->tr = ESYS_TR_NONE;
        ek->pub = NULL;
        return set_tpm_error(error, rc, "TPM2_CreatePrimary(EK)");
    }
    ek->transient = TRUE;
    return TRUE;
}

/*
 * The session that authorizes the EK in the USER role (Create, Load,
 * ActivateCredential). An EK whose template sets userWithAuth (the
 * high-range templates, such as swtpm's ECC P-384 EK) is used with its
 * empty authValue: a plain password session. Otherwise (template L-1) its
 * policy is PolicySecret(TPM_RH_ENDORSEMENT): a policy session that
 * satisfies it, checked against the EK's authPolicy before use.
 * The caller flushes *session (flush_handle ignores ESYS_TR_PASSWORD).
 */
static gboolean
ek_session(TvdAgentTpm *tpm, const TpmKey *ek, ESYS_TR *session,
           GError **error)
{
    const TPMT_PUBLIC *pub = &ek->pub->publicArea;
    TPMT_SYM_DEF symmetric = { .algorithm = TPM2_ALG_NULL };
    TPM2B_TIMEOUT *timeout = NULL;
    TPMT_TK_AUTH *ticket = NULL;
    TPM2B_DIGEST *digest = NULL;
    gboolean match;
    TSS2_RC rc;

    *session = ESYS_TR_NONE;
    if (pub->objectAttributes & TPMA_OBJECT_USERWITHAUTH) {
        *session = ESYS_TR_PASSWORD;
        return TRUE;
    }
    TPM_CALL(rc, Esys_StartAuthSession(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE,
                                       ESYS_TR_NONE, NULL, TPM2_SE_POLICY,
                                       &symmetric, pub->nameAlg, session));
    if (rc != TSS2_RC_SUCCESS) {
        *session = ESYS_TR_NONE;
        return set_tpm_error(error, rc, "TPM2_StartAuthSession(policy)");
    }
    /* Keep it after use: we flush it ourselves on every path. */
    rc = Esys_TRSess_SetAttributes(tpm->esys, *session,
                                   TPMA_SESSION_CONTINUESESSION, 0xff);
    if (rc != TSS2_RC_SUCCESS) {
        flush_handle(tpm, session);
        return set_tpm_error(error, rc, "Esys_TRSess_SetAttributes");
    }
    TPM_CALL(rc, Esys_PolicySecret(tpm->esys, ESYS_TR_RH_ENDORSEMENT,
                                   *session, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, NULL, NULL, NULL, 0,
                                   &timeout, &ticket));
    Esys_Free(timeout);
    Esys_Free(ticket);
    if (rc != TSS2_RC_SUCCESS) {
        flush_handle(tpm, session);
        return set_tpm_error(error, rc, "TPM2_PolicySecret(endorsement)");
    }
    TPM_CALL(rc, Esys_PolicyGetDigest(tpm->esys, *session, ESYS_TR_NONE,
                                      ESYS_TR_NONE, ESYS_TR_NONE, &digest));
    if (rc != TSS2_RC_SUCCESS) {
        flush_handle(tpm, session);
        return set_tpm_error(error, rc, "TPM2_PolicyGetDigest");
    }
    match = digest->size == pub->authPolicy.size &&
            memcmp(digest->buffer, pub->authPolicy.buffer, digest->size) == 0;
    Esys_Free(digest);
    if (!match) {
        flush_handle(tpm, session);
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "the EK's authPolicy is not PolicySecret(endorsement) "
                    "and the EK has no userWithAuth: cannot authorize it");
        return FALSE;
    }
    return TRUE;
}

/* Does the certificate carry the EK's public key? */
static gboolean
ek_matches_cert(const TPMT_PUBLIC *pub, const guint8 *der, gsize der_len,
                gsize *cert_len, GError **error)
{
    const unsigned char *p = der;
    X509 *cert;
    EVP_PKEY *key;
    BIGNUM *a = NULL, *b = NULL;
    gboolean ok = FALSE;
    const char *why = "its key type differs";

    cert = d2i_X509(NULL, &p, (long)der_len);
    if (!cert) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "the EK certificate in NV is not a DER X.509 certificate");
        return FALSE;
    }
    *cert_len = (gsize)(p - der);
    key = X509_get0_pubkey(cert);
    if (key && pub->type == TPM2_ALG_RSA && EVP_PKEY_is_a(key, "RSA")) {
        guint8 n[512];
        guint32 e = pub->parameters.rsaDetail.exponent ?
                    pub->parameters.rsaDetail.exponent : 65537;
        gsize n_len = pub->unique.rsa.size;

        why = "its RSA modulus or exponent differs";
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &a) &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &b) &&
            n_len > 0 && n_len <= sizeof(n) &&
            BN_bn2binpad(a, n, (int)n_len) == (int)n_len &&
            memcmp(n, pub->unique.rsa.buffer, n_len) == 0 &&
            BN_is_word(b, e)) {
            ok = TRUE;
        }
    } else if (key && pub->type == TPM2_ALG_ECC && EVP_PKEY_is_a(key, "EC")) {
        char group[64] = "";
        const char *want;
        gsize coord;
        guint8 x[66], y[66];

        switch (pub->parameters.eccDetail.curveID) {
        case TPM2_ECC_NIST_P256:
            want = "prime256v1";
            coord = 32;
            break;
        case TPM2_ECC_NIST_P384:
            want = "secp384r1";
            coord = 48;
            break;
        default:
            want = "?";
            coord = 0;
            break;
        }
        why = "its curve or point differs";
        if (coord > 0 &&
            EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                           group, sizeof(group), NULL) &&
            strcmp(group, want) == 0 &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &a) &&
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &b) &&
            BN_bn2binpad(a, x, (int)coord) == (int)coord &&
            BN_bn2binpad(b, y, (int)coord) == (int)coord &&
            pub->unique.ecc.x.size == coord &&
            pub->unique.ecc.y.size == coord &&
            memcmp(x, pub->unique.ecc.x.buffer, coord) == 0 &&
            memcmp(y, pub->unique.ecc.y.buffer, coord) == 0) {
            ok = TRUE;
        }
    }
    BN_free(a);
    BN_free(b);
    X509_free(cert);
    if (!ok) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "the EK certificate does not certify the TPM's EK: %s",
                    why);
    }
    return ok;
}

static gboolean
nv_buffer_max(TvdAgentTpm *tpm, guint16 *max, GError **error)
{
    TPMS_CAPABILITY_DATA *cap = NULL;
    TPMI_YES_NO more;
    TSS2_RC rc;

    TPM_CALL(rc, Esys_GetCapability(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE,
                                     ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
                                     TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap));
    if (rc != TSS2_RC_SUCCESS) {
        return set_tpm_error(error, rc, "TPM2_GetCapability(NV_BUFFER_MAX)");
    }
    *max = 512; /* the minimum any TPM must do */
    if (cap->data.tpmProperties.count >= 1 &&
        cap->data.tpmProperties.tpmProperty[0].property ==
        TPM2_PT_NV_BUFFER_MAX &&
        cap->data.tpmProperties.tpmProperty[0].value > 0) {
        *max = (guint16)MIN(cap->data.tpmProperties.tpmProperty[0].value,
                            sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer));
    }
    Esys_Free(cap);
    return TRUE;
}

/* Reads NV index @index whole; *data NULL when it does not exist. */
static gboolean
nv_read_all(TvdAgentTpm *tpm, TPM2_HANDLE index, GBytes **data,
            GError **error)
{
    g_autoptr(GByteArray) out = NULL;
    TPM2B_NV_PUBLIC *nv_pub = NULL;
    ESYS_TR nv = ESYS_TR_NONE;
    ESYS_TR auth;
    gboolean exists;
    guint16 chunk, size;
    TPMA_NV attrs;
    TSS2_RC rc;

    *data = NULL;
    if (!handle_exists(tpm, index, &exists, error)) {
        return FALSE;
    }
    if (!exists) {
        return TRUE;
    }
    if (!nv_buffer_max(tpm, &chunk, error)) {
        return FALSE;
    }
    TPM_CALL(rc, Esys_TR_FromTPMPublic(tpm->esys, index, ESYS_TR_NONE,
                                       ESYS_TR_NONE, ESYS_TR_NONE, &nv));
    if (rc != TSS2_RC_SUCCESS) {
        return set_tpm_error(error, rc, "TPM2_NV_ReadPublic");
    }
    TPM_CALL(rc, Esys_NV_ReadPublic(tpm->esys, nv, ESYS_TR_NONE, ESYS_TR_NONE,
                                    ESYS_TR_NONE, &nv_pub, NULL));
    if (rc != TSS2_RC_SUCCESS) {
        Esys_TR_Close(tpm->esys, &nv);
        return set_tpm_error(error, rc, "TPM2_NV_ReadPublic");
    }
    size = nv_pub->nvPublic.dataSize;
    attrs = nv_pub->nvPublic.attributes;
    Esys_Free(nv_pub);
    if (size > TVD_AGENT_TPM_MAX_CERT || !(attrs & TPMA_NV_WRITTEN)) {
        Esys_TR_Close(tpm->esys, &nv);
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "NV index 0x%08x: %s", index,
                    size > TVD_AGENT_TPM_MAX_CERT ? "too large" :
                    "never written");
        return FALSE;
    }
    /* EK cert indices are readable with their own (empty) auth or the owner's. */
    auth = (attrs & TPMA_NV_AUTHREAD) ? nv : ESYS_TR_RH_OWNER;

    out = g_byte_array_sized_new(size);
    while (out->len < size) {
        TPM2B_MAX_NV_BUFFER *part = NULL;
        guint16 n = MIN(chunk, (guint16)(size - out->len));

        TPM_CALL(rc, Esys_NV_Read(tpm->esys, auth, nv, ESYS_TR_PASSWORD,
                                  ESYS_TR_NONE, ESYS_TR_NONE, n,
                                  (guint16)out->len, &part));
        if (rc != TSS2_RC_SUCCESS) {
            Esys_TR_Close(tpm->esys, &nv);
            return set_tpm_error(error, rc, "TPM2_NV_Read");
        }
        if (part->size == 0 || part->size > n) {
            Esys_Free(part);
            Esys_TR_Close(tpm->esys, &nv);
            g_set_error(error, TVD_AGENT_TPM_ERROR,
                        TVD_AGENT_TPM_ERROR_MISMATCH,
                        "TPM2_NV_Read returned %u bytes for %u", part->size, n);
            return FALSE;
        }
        g_byte_array_append(out, part->buffer, part->size);
        Esys_Free(part);
    }
    Esys_TR_Close(tpm->esys, &nv);
    *data = g_byte_array_free_to_bytes(g_steal_pointer(&out));
    return TRUE;
}

gboolean
tvd_agent_tpm_get_ek(TvdAgentTpm *tpm, TvdAgentTpmAlg alg,
                     GBytes **ek_public, GBytes **ek_cert, GError **error)
{
    TpmKey ek = TPM_KEY_INIT;
    g_autoptr(GBytes) cert = NULL;
    g_autoptr(GBytes) pub = NULL;

    g_return_val_if_fail(tpm && ek_public && ek_cert, FALSE);
    *ek_public = NULL;
    *ek_cert = NULL;
    if (!alg_valid(alg, error)) {
        return FALSE;
    }
    if (!nv_read_all(tpm, alg == TVD_AGENT_TPM_ALG_RSA ?
                     TVD_AGENT_TPM_EK_CERT_NV_RSA :
                     TVD_AGENT_TPM_EK_CERT_NV_ECC, &cert, error)) {
        return FALSE;
    }
    if (!ek_load(tpm, alg, &ek, error)) {
        return FALSE;
    }
    pub = marshal_public(ek.pub);
    if (cert) {
        gsize der_len = 0;

        if (!ek_matches_cert(&ek.pub->publicArea,
                             g_bytes_get_data(cert, NULL),
                             g_bytes_get_size(cert), &der_len, error)) {
            key_release(tpm, &ek);
            return FALSE;
        }
        if (der_len < g_bytes_get_size(cert)) {
            /* NV may be padded after the DER structure. */
            GBytes *trimmed = g_bytes_new_from_bytes(cert, 0, der_len);

            g_bytes_unref(cert);
            cert = trimmed;
        }
    }
    key_release(tpm, &ek);
    if (!pub) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED,
                    "cannot marshal the EK public area");
        return FALSE;
    }
    *ek_public = g_steal_pointer(&pub);
    *ek_cert = g_steal_pointer(&cert);
    return TRUE;
}

/* ---- AK ------------------------------------------------------------------ */

static void
ak_template(TvdAgentTpmAlg alg, TPM2B_PUBLIC *t)
{
    TPMT_PUBLIC *p = &t->publicArea;

    memset(t, 0, sizeof(*t));
    p->nameAlg = TPM2_ALG_SHA256;
    p->objectAttributes = AK_ATTRIBUTES;
    if (alg == TVD_AGENT_TPM_ALG_RSA) {
        p->type = TPM2_ALG_RSA;
        p->parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
        p->parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.rsaDetail.keyBits = 2048;
        p->parameters.rsaDetail.exponent = 0;
    } else {
        p->type = TPM2_ALG_ECC;
        p->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
        p->parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
        p->parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
        p->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
        p->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    }
}

static gboolean
ak_public_ok(TvdAgentTpmAlg alg, const TPMT_PUBLIC *p)
{
    if (p->nameAlg != TPM2_ALG_SHA256 ||
        (p->objectAttributes & AK_ATTRIBUTES) != AK_ATTRIBUTES ||
        (p->objectAttributes & TPMA_OBJECT_DECRYPT)) {
        return FALSE;
    }
    if (alg == TVD_AGENT_TPM_ALG_RSA) {
        return p->type == TPM2_ALG_RSA &&
               p->parameters.rsaDetail.scheme.scheme == TPM2_ALG_RSASSA &&
               p->parameters.rsaDetail.scheme.details.rsassa.hashAlg ==
               TPM2_ALG_SHA256 &&
               p->parameters.rsaDetail.keyBits == 2048;
    }
    return p->type == TPM2_ALG_ECC &&
           p->parameters.eccDetail.scheme.scheme == TPM2_ALG_ECDSA &&
           p->parameters.eccDetail.scheme.details.ecdsa.hashAlg ==
           TPM2_ALG_SHA256 &&
           p->parameters.eccDetail.curveID == TPM2_ECC_NIST_P256;
}

static guint32
ak_handle(TvdAgentTpm *tpm, TvdAgentTpmAlg alg)
{
    return alg == TVD_AGENT_TPM_ALG_RSA ? tpm->ak_handle_rsa :
           tpm->ak_handle_ecc;
}

/* The persistent AK; an error if it is missing or not one of ours. */
static gboolean
ak_load(TvdAgentTpm *tpm, TvdAgentTpmAlg alg, TpmKey *ak, TPM2B_NAME **name,
        GError **error)
{
    guint32 handle = ak_handle(tpm, alg);
    gboolean exists;

    if (!handle_exists(tpm, handle, &exists, error)) {
        return FALSE;
    }
    if (!exists) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED,
                    "no %s AK at 0x%08x (tvd_agent_tpm_ensure_ak creates it)",
                    tvd_agent_tpm_alg_name(alg), handle);
        return FALSE;
    }
    if (!key_from_persistent(tpm, handle, ak, name, error)) {
        return FALSE;
    }
    if (!ak_public_ok(alg, &ak->pub->publicArea)) {
        key_release(tpm, ak);
        if (name) {
            Esys_Free(*name);
            *name = NULL;
        }
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "the object at 0x%08x is not a tvd %s AK; not touching it",
                    handle, tvd_agent_tpm_alg_name(alg));
        return FALSE;
    }
    return TRUE;
}

/* Creates the AK under the EK of the same algorithm and persists it. */
static gboolean
ak_create(TvdAgentTpm *tpm, TvdAgentTpmAlg alg, GError **error)
{
    TpmKey ek = TPM_KEY_INIT;
    ESYS_TR session = ESYS_TR_NONE;
    ESYS_TR ak = ESYS_TR_NONE;
    ESYS_TR persistent = ESYS_TR_NONE;
    TPM2B_SENSITIVE_CREATE sensitive = { 0 };
    TPM2B_DATA outside = { 0 };
    TPML_PCR_SELECTION creation_pcr = { 0 };
    TPM2B_PUBLIC template;
    TPM2B_PRIVATE *out_private = NULL;
    TPM2B_PUBLIC *out_public = NULL;
    TPM2B_CREATION_DATA *creation_data = NULL;
    TPM2B_DIGEST *creation_hash = NULL;
    TPMT_TK_CREATION *creation_ticket = NULL;
    gboolean ok = FALSE;
    TSS2_RC rc;

    if (!ek_load(tpm, alg, &ek, error)) {
        return FALSE;
    }
    if (!ek_session(tpm, &ek, &session, error)) {
        goto out;
    }
    ak_template(alg, &template);
    TPM_CALL(rc, Esys_Create(tpm->esys, ek.tr, session, ESYS_TR_NONE,
                             ESYS_TR_NONE, &sensitive, &template, &outside,
                             &creation_pcr, &out_private, &out_public,
                             &creation_data, &creation_hash,
                             &creation_ticket));
    flush_handle(tpm, &session);
    Esys_Free(creation_data);
    Esys_Free(creation_hash);
    Esys_Free(creation_ticket);
    if (rc != TSS2_RC_SUCCESS) {
        set_tpm_error(error, rc, "TPM2_Create(AK)");
        goto out;
    }
    if (!ek_session(tpm, &ek, &session, error)) {
        goto out;
    }
    TPM_CALL(rc, Esys_Load(tpm->esys, ek.tr, session, ESYS_TR_NONE,
                           ESYS_TR_NONE, out_private, out_public, &ak));
    flush_handle(tpm, &session);
    if (rc != TSS2_RC_SUCCESS) {
        ak = ESYS_TR_NONE;
        set_tpm_error(error, rc, "TPM2_Load(AK)");
        goto out;
    }
    TPM_CALL(rc, Esys_EvictControl(tpm->esys, ESYS_TR_RH_OWNER, ak,
                                   ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, ak_handle(tpm, alg),
                                   &persistent));
    if (rc != TSS2_RC_SUCCESS) {
        set_tpm_error(error, rc, "TPM2_EvictControl(AK)");
        goto out;
    }
    Esys_TR_Close(tpm->esys, &persistent);
    g_info("created the %s AK at 0x%08x", tvd_agent_tpm_alg_name(alg),
           ak_handle(tpm, alg));
    ok = TRUE;
out:
    flush_handle(tpm, &ak);
    flush_handle(tpm, &session);
    Esys_Free(out_private);
    Esys_Free(out_public);
    key_release(tpm, &ek);
    return ok;
}

gboolean
tvd_agent_tpm_ensure_ak(TvdAgentTpm *tpm, TvdAgentTpmAlg alg,
                        GBytes **ak_public, GBytes **ak_name, GError **error)
{
    TpmKey ak = TPM_KEY_INIT;
    TPM2B_NAME *name = NULL;
    gboolean exists;

    g_return_val_if_fail(tpm && ak_public && ak_name, FALSE);
    *ak_public = NULL;
    *ak_name = NULL;
    if (!alg_valid(alg, error)) {
        return FALSE;
    }
    if (!handle_exists(tpm, ak_handle(tpm, alg), &exists, error)) {
        return FALSE;
    }
    if (!exists && !ak_create(tpm, alg, error)) {
        return FALSE;
    }
    if (!ak_load(tpm, alg, &ak, &name, error)) {
        return FALSE;
    }
    *ak_public = marshal_public(ak.pub);
    *ak_name = g_bytes_new(name->name, name->size);
    Esys_Free(name);
    key_release(tpm, &ak);
    if (!*ak_public) {
        g_clear_pointer(ak_name, g_bytes_unref);
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED,
                    "cannot marshal the AK public area");
        return FALSE;
    }
    return TRUE;
}

/* ---- ActivateCredential ---------------------------------------------------- */

GBytes *
tvd_agent_tpm_activate_credential(TvdAgentTpm *tpm, TvdAgentTpmAlg ek_alg,
                                  TvdAgentTpmAlg ak_alg,
                                  GBytes *credential_blob,
                                  GBytes *encrypted_secret, GError **error)
{
    TPM2B_ID_OBJECT blob = { 0 };
    TPM2B_ENCRYPTED_SECRET secret = { 0 };
    TPM2B_DIGEST *cert_info = NULL;
    TpmKey ek = TPM_KEY_INIT;
    TpmKey ak = TPM_KEY_INIT;
    ESYS_TR session = ESYS_TR_NONE;
    GBytes *result = NULL;
    const guint8 *data;
    gsize len;
    size_t off;
    TSS2_RC rc;

    g_return_val_if_fail(tpm && credential_blob && encrypted_secret, NULL);
    if (!alg_valid(ek_alg, error) || !alg_valid(ak_alg, error)) {
        return NULL;
    }
    data = g_bytes_get_data(credential_blob, &len);
    off = 0;
    if (!data || Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(data, len, &off, &blob) !=
        TSS2_RC_SUCCESS || off != len || blob.size == 0) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "the credential blob is not one TPM2B_ID_OBJECT");
        return NULL;
    }
    data = g_bytes_get_data(encrypted_secret, &len);
    off = 0;
    if (!data ||
        Tss2_MU_TPM2B_ENCRYPTED_SECRET_Unmarshal(data, len, &off, &secret) !=
        TSS2_RC_SUCCESS || off != len || secret.size == 0) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "the encrypted secret is not one TPM2B_ENCRYPTED_SECRET");
        return NULL;
    }

    if (!ak_load(tpm, ak_alg, &ak, NULL, error)) {
        return NULL;
    }
    if (!ek_load(tpm, ek_alg, &ek, error)) {
        goto out;
    }
    if (!ek_session(tpm, &ek, &session, error)) {
        goto out;
    }
    /* AK: ADMIN role, no adminWithPolicy, empty authValue: password. */
    TPM_CALL(rc, Esys_ActivateCredential(tpm->esys, ak.tr, ek.tr,
                                         ESYS_TR_PASSWORD, session,
                                         ESYS_TR_NONE, &blob, &secret,
                                         &cert_info));
    if (rc != TSS2_RC_SUCCESS) {
        set_tpm_error(error, rc, "TPM2_ActivateCredential");
        goto out;
    }
    result = secure_bytes_new(cert_info->buffer, cert_info->size);
    OPENSSL_cleanse(cert_info, sizeof(*cert_info));
    Esys_Free(cert_info);
out:
    flush_handle(tpm, &session);
    key_release(tpm, &ek);
    key_release(tpm, &ak);
    return result;
}

/* ---- PCRs -------------------------------------------------------------------- */

gboolean
tvd_agent_tpm_pcr_extend(TvdAgentTpm *tpm, guint pcr, const guint8 *digest,
                         gsize digest_len, GError **error)
{
    TPML_DIGEST_VALUES values = { 0 };
    TSS2_RC rc;

    g_return_val_if_fail(tpm && digest, FALSE);
    if (pcr >= TVD_AGENT_TPM_NUM_PCRS ||
        digest_len != TVD_AGENT_TPM_DIGEST_SIZE) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "PCR extend: PCR %u (0-23), digest of %zu bytes (32)",
                    pcr, (size_t)digest_len);
        return FALSE;
    }
    values.count = 1;
    values.digests[0].hashAlg = TPM2_ALG_SHA256;
    memcpy(values.digests[0].digest.sha256, digest, TVD_AGENT_TPM_DIGEST_SIZE);
    TPM_CALL(rc, Esys_PCR_Extend(tpm->esys, ESYS_TR_PCR0 + pcr,
                                 ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                 &values));
    if (rc != TSS2_RC_SUCCESS) {
        g_autofree char *what = g_strdup_printf("TPM2_PCR_Extend(%u)", pcr);
        return set_tpm_error(error, rc, what);
    }
    return TRUE;
}

/* One attempt; *raced when the update counter moved between chunks. */
static gboolean
pcr_read_once(TvdAgentTpm *tpm, guint32 mask,
              guint8 values[TVD_AGENT_TPM_NUM_PCRS][TVD_AGENT_TPM_DIGEST_SIZE],
              guint32 *counter, gboolean *raced, GError **error)
{
    guint32 remaining = mask;
    gboolean first = TRUE;

    *raced = FALSE;
    while (remaining) {
        TPML_PCR_SELECTION sel;
        TPML_PCR_SELECTION *sel_out = NULL;
        TPML_DIGEST *digests = NULL;
        guint32 update = 0, got = 0;
        guint d = 0;
        TSS2_RC rc;

        pcr_selection_from_mask(remaining, &sel);
        TPM_CALL(rc, Esys_PCR_Read(tpm->esys, ESYS_TR_NONE, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &sel, &update, &sel_out,
                                   &digests));
        if (rc != TSS2_RC_SUCCESS) {
            return set_tpm_error(error, rc, "TPM2_PCR_Read");
        }
        if (first) {
            *counter = update;
            first = FALSE;
        } else if (update != *counter) {
            Esys_Free(sel_out);
            Esys_Free(digests);
            *raced = TRUE;
            return TRUE;
        }
        for (guint s = 0; s < sel_out->count; s++) {
            const TPMS_PCR_SELECTION *ps = &sel_out->pcrSelections[s];

            if (ps->hash != TPM2_ALG_SHA256) {
                continue;
            }
            for (guint i = 0; i < ps->sizeofSelect * 8u &&
                 i < TVD_AGENT_TPM_NUM_PCRS; i++) {
                if (!(ps->pcrSelect[i / 8] & (1u << (i % 8)))) {
                    continue;
                }
                if (!(remaining & (1u << i)) || d >= digests->count ||
                    digests->digests[d].size != TVD_AGENT_TPM_DIGEST_SIZE) {
                    Esys_Free(sel_out);
                    Esys_Free(digests);
                    g_set_error(error, TVD_AGENT_TPM_ERROR,
                                TVD_AGENT_TPM_ERROR_MISMATCH,
                                "TPM2_PCR_Read answered for PCR %u, "
                                "which was not asked or has no digest", i);
                    return FALSE;
                }
                memcpy(values[i], digests->digests[d].buffer,
                       TVD_AGENT_TPM_DIGEST_SIZE);
                d++;
                got |= 1u << i;
            }
        }
        Esys_Free(sel_out);
        Esys_Free(digests);
        if (got == 0) {
            g_set_error(error, TVD_AGENT_TPM_ERROR,
                        TVD_AGENT_TPM_ERROR_MISMATCH,
                        "TPM2_PCR_Read returned none of PCRs 0x%06x "
                        "(is the SHA-256 bank active?)", remaining);
            return FALSE;
        }
        remaining &= ~got;
    }
    return TRUE;
}

static gboolean
pcr_read_values(TvdAgentTpm *tpm, guint32 mask, GBytes **out,
                guint32 *update_counter, GError **error)
{
    guint8 values[TVD_AGENT_TPM_NUM_PCRS][TVD_AGENT_TPM_DIGEST_SIZE];
    GByteArray *arr;
    guint32 counter = 0;
    gboolean raced = TRUE;

    for (guint attempt = 0; raced && attempt < PCR_RACE_ATTEMPTS; attempt++) {
        if (!pcr_read_once(tpm, mask, values, &counter, &raced, error)) {
            return FALSE;
        }
    }
    if (raced) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_BUSY,
                    "PCRs kept changing during %u reads", PCR_RACE_ATTEMPTS);
        return FALSE;
    }
    arr = g_byte_array_new();
    for (guint i = 0; i < TVD_AGENT_TPM_NUM_PCRS; i++) {
        if (mask & (1u << i)) {
            g_byte_array_append(arr, values[i], TVD_AGENT_TPM_DIGEST_SIZE);
        }
    }
    *out = g_byte_array_free_to_bytes(arr);
    if (update_counter) {
        *update_counter = counter;
    }
    return TRUE;
}

gboolean
tvd_agent_tpm_pcr_read(TvdAgentTpm *tpm, guint32 pcr_mask, GBytes **values,
                       guint32 *update_counter, GError **error)
{
    g_return_val_if_fail(tpm && values, FALSE);
    *values = NULL;
    if (!pcr_mask_valid(pcr_mask, error)) {
        return FALSE;
    }
    return pcr_read_values(tpm, pcr_mask, values, update_counter, error);
}

/* ---- Quote --------------------------------------------------------------------- */

void
tvd_agent_tpm_quote_clear(TvdAgentTpmQuote *quote)
{
    g_clear_pointer(&quote->attest, g_bytes_unref);
    g_clear_pointer(&quote->signature, g_bytes_unref);
    g_clear_pointer(&quote->pcr_values, g_bytes_unref);
    quote->pcr_mask = 0;
}

/*
 * Checks that @attest is a quote of @mask with @nonce; *digest_ok tells
 * whether its pcrDigest is the SHA-256 of @values.
 */
static gboolean
check_attest(const TPM2B_ATTEST *attest, guint32 mask, const guint8 *nonce,
             gsize nonce_len, GBytes *values, gboolean *digest_ok,
             GError **error)
{
    TPMS_ATTEST a;
    size_t off = 0;
    const TPMS_QUOTE_INFO *q = &a.attested.quote;
    guint32 quoted = 0;
    guint8 md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const char *why = NULL;

    if (Tss2_MU_TPMS_ATTEST_Unmarshal(attest->attestationData, attest->size,
                                      &off, &a) != TSS2_RC_SUCCESS ||
        off != attest->size) {
        why = "it does not unmarshal";
    } else if (a.magic != TPM2_GENERATED_VALUE) {
        why = "its magic is not TPM_GENERATED_VALUE";
    } else if (a.type != TPM2_ST_ATTEST_QUOTE) {
        why = "it is not a quote";
    } else if (a.extraData.size != nonce_len ||
               memcmp(a.extraData.buffer, nonce, nonce_len) != 0) {
        why = "its qualifying data is not the nonce";
    }
    if (!why) {
        if (q->pcrSelect.count != 1 ||
            q->pcrSelect.pcrSelections[0].hash != TPM2_ALG_SHA256) {
            why = "it is not over the SHA-256 bank alone";
        } else {
            const TPMS_PCR_SELECTION *ps = &q->pcrSelect.pcrSelections[0];

            for (guint i = 0; i < ps->sizeofSelect * 8u; i++) {
                if (ps->pcrSelect[i / 8] & (1u << (i % 8))) {
                    quoted |= i < 32 ? 1u << i : 0;
                    if (i >= TVD_AGENT_TPM_NUM_PCRS) {
                        why = "it selects PCRs beyond 23";
                    }
                }
            }
            if (!why && quoted != mask) {
                why = "its PCR selection differs from the request";
            }
        }
    }
    if (why) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_MISMATCH,
                    "the TPM's attestation is wrong: %s", why);
        return FALSE;
    }
    if (!EVP_Digest(g_bytes_get_data(values, NULL), g_bytes_get_size(values),
                    md, &md_len, EVP_sha256(), NULL)) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_FAILED,
                    "SHA-256 failed");
        return FALSE;
    }
    *digest_ok = q->pcrDigest.size == md_len &&
                 memcmp(q->pcrDigest.buffer, md, md_len) == 0;
    return TRUE;
}

gboolean
tvd_agent_tpm_quote(TvdAgentTpm *tpm, TvdAgentTpmAlg ak_alg, guint32 pcr_mask,
                    const guint8 *nonce, gsize nonce_len,
                    TvdAgentTpmQuote *quote, GError **error)
{
    TpmKey ak = TPM_KEY_INIT;
    TPML_PCR_SELECTION sel;
    TPM2B_DATA qualifying = { 0 };
    TPMT_SIG_SCHEME scheme = { .scheme = TPM2_ALG_NULL };
    gboolean ok = FALSE;

    g_return_val_if_fail(tpm && quote, FALSE);
    tvd_agent_tpm_quote_clear(quote);
    if (!alg_valid(ak_alg, error) || !pcr_mask_valid(pcr_mask, error)) {
        return FALSE;
    }
    if (!nonce || nonce_len == 0 || nonce_len > TVD_AGENT_TPM_MAX_NONCE ||
        nonce_len > sizeof(qualifying.buffer)) {
        g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_INVALID,
                    "the nonce must have 1 to %u bytes, not %zu",
                    TVD_AGENT_TPM_MAX_NONCE, (size_t)nonce_len);
        return FALSE;
    }
    qualifying.size = (UINT16)nonce_len;
    memcpy(qualifying.buffer, nonce, nonce_len);
    pcr_selection_from_mask(pcr_mask, &sel);

    if (!ak_load(tpm, ak_alg, &ak, NULL, error)) {
        return FALSE;
    }
    for (guint attempt = 0; attempt < PCR_RACE_ATTEMPTS; attempt++) {
        g_autoptr(GBytes) values = NULL;
        TPM2B_ATTEST *attest = NULL;
        TPMT_SIGNATURE *sig = NULL;
        guint8 sig_buf[sizeof(TPMT_SIGNATURE)];
        size_t sig_len = 0;
        gboolean digest_ok = FALSE;
        TSS2_RC rc;

        if (!pcr_read_values(tpm, pcr_mask, &values, NULL, error)) {
            goto out;
        }
        TPM_CALL(rc, Esys_Quote(tpm->esys, ak.tr, ESYS_TR_PASSWORD,
                                ESYS_TR_NONE, ESYS_TR_NONE, &qualifying,
                                &scheme, &sel, &attest, &sig));
        if (rc != TSS2_RC_SUCCESS) {
            set_tpm_error(error, rc, "TPM2_Quote");
            goto out;
        }
        if (!check_attest(attest, pcr_mask, nonce, nonce_len, values,
                          &digest_ok, error) ||
            Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sig_buf, sizeof(sig_buf),
                                           &sig_len) != TSS2_RC_SUCCESS) {
            if (error && !*error) {
                g_set_error(error, TVD_AGENT_TPM_ERROR,
                            TVD_AGENT_TPM_ERROR_FAILED,
                            "cannot marshal the quote's signature");
            }
            Esys_Free(attest);
            Esys_Free(sig);
            goto out;
        }
        if (digest_ok) {
            quote->attest = g_bytes_new(attest->attestationData, attest->size);
            quote->signature = g_bytes_new(sig_buf, sig_len);
            quote->pcr_values = g_steal_pointer(&values);
            quote->pcr_mask = pcr_mask;
            ok = TRUE;
        } else {
            g_debug("a PCR changed between read and quote; again");
        }
        Esys_Free(attest);
        Esys_Free(sig);
        if (ok) {
            goto out;
        }
    }
    g_set_error(error, TVD_AGENT_TPM_ERROR, TVD_AGENT_TPM_ERROR_BUSY,
                "PCRs kept changing between read and quote (%u tries)",
                PCR_RACE_ATTEMPTS);
out:
    key_release(tpm, &ak);
    return ok;
}
