/*
 * tvd verifier test kit: a software agent (see synth-agent.h).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-verifier"

#include "synth-agent.h"
#include "evidence.h"
#include "verifier-priv.h"

#include <string.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

/* PolicySecret(TPM_RH_ENDORSEMENT): the EK template's authPolicy. */
static const guint8 ek_auth_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc,
    0x8d, 0x46, 0xa5, 0xd7, 0x24, 0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52,
    0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};
static const char identity_label[] = "IDENTITY";

#define PCRS        24u
#define SEED_LEN    32u     /* SHA-256, the EK's nameAlg */

struct TvdSynthAgent {
    EVP_PKEY *ek;
    GBytes *ek_public;
    GBytes *ek_cert;
    TvdSynthKey *ak;
    GBytes *ak_name;
    guint8 agent_pcr;
    guint8 pcr[PCRS][32];
    GPtrArray *list;
    guint64 clock;
};

/* ---- CA ------------------------------------------------------------------ */

static gboolean ssl_fail(GError **error, const char *what)
{
    return tvd_crypto_fail(error, what);
}

static gboolean set_serial(X509 *x)
{
    guint8 b[16];
    BIGNUM *bn;
    gboolean ok;

    if (RAND_bytes(b, sizeof(b)) != 1) {
        return FALSE;
    }
    b[0] &= 0x7f;
    bn = BN_bin2bn(b, sizeof(b), NULL);
    ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok;
}

static gboolean add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    gboolean ok;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    ok = ext && X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

gboolean tvd_synth_ca_new(const char *common_name, EVP_PKEY **key,
                          X509 **cert, GError **error)
{
    EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    X509 *x = X509_new();
    X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
    gboolean ok;

    ok = k && x && X509_set_version(x, 2) && set_serial(x) &&
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                    (const guint8 *)common_name, -1, -1, 0) &&
         X509_set_issuer_name(x, n) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) &&
         X509_set_pubkey(x, k) &&
         add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
         add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         add_ext(x, x, NID_subject_key_identifier, "hash") &&
         X509_sign(x, k, EVP_sha256()) > 0;
    if (!ok) {
        EVP_PKEY_free(k);
        X509_free(x);
        return ssl_fail(error, "self-signed CA");
    }
    *key = k;
    *cert = x;
    return TRUE;
}

gboolean tvd_synth_ca_load(const char *key_pem, const char *cert_pem,
                           EVP_PKEY **key, X509 **cert, GError **error)
{
    BIO *kb = BIO_new_file(key_pem, "r");
    BIO *cb = BIO_new_file(cert_pem, "r");
    EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
    X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;

    BIO_free(kb);
    BIO_free(cb);
    if (!k || !x) {
        g_set_error(error, G_FILE_ERROR, G_FILE_ERROR_INVAL,
                    "cannot read the CA's %s from %s", k ? "certificate"
                                                         : "signing key",
                    k ? cert_pem : key_pem);
        EVP_PKEY_free(k);
        X509_free(x);
        return FALSE;
    }
    *key = k;
    *cert = x;
    return TRUE;
}

/* ---- the agent ------------------------------------------------------------ */

/* The TPM2B_PUBLIC a TPM makes from the EK template for @ek. */
static GBytes *ek_public_of(EVP_PKEY *ek)
{
    g_autoptr(GBytes) plain = tvd_synth_public(ek, TVD_SYNTH_EK_ATTRIBUTES,
                                               TPM2_ALG_NULL, TRUE);
    TPM2B_PUBLIC pub;
    guint8 buf[1024];
    size_t off = 0;

    memset(&pub, 0, sizeof(pub));
    g_assert(Tss2_MU_TPM2B_PUBLIC_Unmarshal(g_bytes_get_data(plain, NULL),
                                            g_bytes_get_size(plain), &off,
                                            &pub) == TSS2_RC_SUCCESS);
    pub.publicArea.authPolicy.size = sizeof(ek_auth_policy);
    memcpy(pub.publicArea.authPolicy.buffer, ek_auth_policy,
           sizeof(ek_auth_policy));
    off = 0;
    g_assert(Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, buf, sizeof(buf), &off) ==
             TSS2_RC_SUCCESS);
    return g_bytes_new(buf, off);
}

/* The EK certificate: the EK's key, issued by the CA (DER). */
static GBytes *ek_cert_of(EVP_PKEY *ek, EVP_PKEY *ca_key, X509 *ca_cert,
                          GError **error)
{
    X509 *x = X509_new();
    X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
    guint8 *der = NULL;
    int len = -1;
    gboolean ok;
    GBytes *out;

    ok = x && X509_set_version(x, 2) && set_serial(x) &&
         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                    (const guint8 *)"tvd software EK", -1,
                                    -1, 0) &&
         X509_set_issuer_name(x, X509_get_subject_name(ca_cert)) &&
         X509_gmtime_adj(X509_getm_notBefore(x), -3600) &&
         X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365) &&
         X509_set_pubkey(x, ek) &&
         add_ext(x, ca_cert, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(x, ca_cert, NID_key_usage, "critical,keyEncipherment") &&
         add_ext(x, ca_cert, NID_authority_key_identifier, "keyid") &&
         X509_sign(x, ca_key, EVP_sha256()) > 0 &&
         (len = i2d_X509(x, &der)) > 0;
    X509_free(x);
    if (!ok) {
        OPENSSL_free(der);
        ssl_fail(error, "EK certificate");
        return NULL;
    }
    out = g_bytes_new(der, (gsize)len);
    OPENSSL_free(der);
    return out;
}

TvdSynthAgent *tvd_synth_agent_new(EVP_PKEY *ca_key, X509 *ca_cert,
                                   guint8 agent_pcr, GError **error)
{
    g_autoptr(TvdSynthAgent) a = g_new0(TvdSynthAgent, 1);
    g_autoptr(TvdTpmPublic) ak = NULL;
    const guint8 *name;
    gsize name_len;

    g_return_val_if_fail(agent_pcr < PCRS, NULL);
    a->agent_pcr = agent_pcr;
    a->clock = 10000;
    a->list = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
    a->ek = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (!a->ek) {
        ssl_fail(error, "EK key generation");
        return NULL;
    }
    a->ek_public = ek_public_of(a->ek);
    a->ek_cert = ek_cert_of(a->ek, ca_key, ca_cert, error);
    if (!a->ek_cert) {
        return NULL;
    }
    a->ak = tvd_synth_ak_new(TPM2_ALG_RSA, TPM2_ALG_RSASSA, 0);
    ak = tvd_tpm_public_parse(g_bytes_get_data(a->ak->public, NULL),
                              g_bytes_get_size(a->ak->public), error);
    if (!ak) {
        return NULL;
    }
    name = tvd_tpm_public_name(ak, &name_len);
    a->ak_name = g_bytes_new(name, name_len);
    return g_steal_pointer(&a);
}

void tvd_synth_agent_free(TvdSynthAgent *a)
{
    if (!a) {
        return;
    }
    EVP_PKEY_free(a->ek);
    g_clear_pointer(&a->ek_public, g_bytes_unref);
    g_clear_pointer(&a->ek_cert, g_bytes_unref);
    g_clear_pointer(&a->ak, tvd_synth_key_free);
    g_clear_pointer(&a->ak_name, g_bytes_unref);
    g_clear_pointer(&a->list, g_ptr_array_unref);
    g_free(a);
}

GBytes *tvd_synth_agent_ek_public(TvdSynthAgent *a)
{
    return a->ek_public;
}

GBytes *tvd_synth_agent_ek_cert(TvdSynthAgent *a)
{
    return a->ek_cert;
}

GBytes *tvd_synth_agent_ak_public(TvdSynthAgent *a)
{
    return a->ak->public;
}

GBytes *tvd_synth_agent_ak_name(TvdSynthAgent *a)
{
    return a->ak_name;
}

const TvdSynthKey *tvd_synth_agent_ak(TvdSynthAgent *a)
{
    return a->ak;
}

/* ---- ActivateCredential ----------------------------------------------------- */

static gboolean malformed(GError **error, const char *what)
{
    g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_MALFORMED,
                "ActivateCredential: %s", what);
    return FALSE;
}

/* The seed: RSA-OAEP(SHA-256, "IDENTITY\0") with the EK's private key. */
static gboolean decrypt_seed(TvdSynthAgent *a, GBytes *encrypted_secret,
                             guint8 seed[SEED_LEN], GError **error)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(encrypted_secret, &len);
    EVP_PKEY_CTX *ctx;
    guint8 *label;
    guint8 out[512];
    size_t out_len = sizeof(out);
    gboolean ok;

    if (len < 2 || (gsize)((d[0] << 8) | d[1]) != len - 2) {
        return malformed(error, "encrypted secret is not a TPM2B");
    }
    ctx = EVP_PKEY_CTX_new_from_pkey(NULL, a->ek, NULL);
    label = OPENSSL_memdup(identity_label, sizeof(identity_label));
    ok = ctx && label && EVP_PKEY_decrypt_init(ctx) > 0 &&
         EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) > 0 &&
         EVP_PKEY_CTX_set_rsa_oaep_md_name(ctx, "SHA256", NULL) > 0 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md_name(ctx, "SHA256", NULL) > 0 &&
         EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label,
                                          sizeof(identity_label)) > 0;
    if (ok) {
        label = NULL;
        ok = EVP_PKEY_decrypt(ctx, out, &out_len, d + 2, len - 2) > 0 &&
             out_len == SEED_LEN;
    }
    OPENSSL_free(label);
    EVP_PKEY_CTX_free(ctx);
    if (ok) {
        memcpy(seed, out, SEED_LEN);
    }
    OPENSSL_cleanse(out, sizeof(out));
    return ok ? TRUE : malformed(error, "the seed does not decrypt with the EK");
}

static gboolean aes_cfb_decrypt(const guint8 key[16], const guint8 *in,
                                gsize len, guint8 *out, GError **error)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    static const guint8 iv[16];
    int l1 = 0, l2 = 0;
    gboolean ok;

    ok = ctx && EVP_DecryptInit_ex2(ctx, EVP_aes_128_cfb128(), key, iv,
                                    NULL) &&
         EVP_DecryptUpdate(ctx, out, &l1, in, (int)len) &&
         EVP_DecryptFinal_ex(ctx, out + l1, &l2) && (gsize)(l1 + l2) == len;
    EVP_CIPHER_CTX_free(ctx);
    return ok ? TRUE : ssl_fail(error, "AES-128-CFB");
}

GBytes *tvd_synth_agent_activate(TvdSynthAgent *a, GBytes *id_object,
                                 GBytes *encrypted_secret, GError **error)
{
    gsize len;
    const guint8 *d = g_bytes_get_data(id_object, &len);
    gsize name_len;
    const guint8 *name = g_bytes_get_data(a->ak_name, &name_len);
    guint8 seed[SEED_LEN], hmac_key[32], sym_key[16];
    guint8 mac[EVP_MAX_MD_SIZE];
    size_t mac_len = 0;
    guint8 plain[2 + 64];
    const guint8 *enc;
    gsize enc_len;
    gsize hmac_size;
    g_autofree guint8 *mac_in = NULL;
    GBytes *secret = NULL;

    /* TPM2B_ID_OBJECT { TPM2B_DIGEST integrityHMAC, encIdentity } */
    if (len < 4 || (gsize)((d[0] << 8) | d[1]) != len - 2) {
        malformed(error, "credential blob is not a TPM2B");
        return NULL;
    }
    hmac_size = (gsize)((d[2] << 8) | d[3]);
    if (hmac_size != 32 || len < 4 + hmac_size + 2 + 1 ||
        len - 4 - hmac_size > sizeof(plain)) {
        malformed(error, "credential blob sizes");
        return NULL;
    }
    enc = d + 4 + hmac_size;
    enc_len = len - 4 - hmac_size;
    if (!decrypt_seed(a, encrypted_secret, seed, error)) {
        return NULL;
    }
    /* Integrity first: nothing is decrypted under a forged HMAC. */
    mac_in = g_malloc(enc_len + name_len);
    memcpy(mac_in, enc, enc_len);
    memcpy(mac_in + enc_len, name, name_len);
    if (!tvd_kdfa(TPM2_ALG_SHA256, seed, SEED_LEN, "INTEGRITY", NULL, 0, NULL,
                  0, 256, hmac_key, error)) {
        goto out;
    }
    if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_key,
                   sizeof(hmac_key), mac_in, enc_len + name_len, mac,
                   sizeof(mac), &mac_len) || mac_len != hmac_size) {
        ssl_fail(error, "integrity HMAC");
        goto out;
    }
    if (CRYPTO_memcmp(mac, d + 4, hmac_size) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_BAD_SIGNATURE,
                    "ActivateCredential: the integrity HMAC does not match "
                    "(TPM_RC_INTEGRITY)");
        goto out;
    }
    if (!tvd_kdfa(TPM2_ALG_SHA256, seed, SEED_LEN, "STORAGE", name, name_len,
                  NULL, 0, 128, sym_key, error) ||
        !aes_cfb_decrypt(sym_key, enc, enc_len, plain, error)) {
        goto out;
    }
    /* encIdentity is a TPM2B_DIGEST: the credential. */
    if ((gsize)((plain[0] << 8) | plain[1]) != enc_len - 2) {
        malformed(error, "credential size");
        goto out;
    }
    secret = g_bytes_new(plain + 2, enc_len - 2);
out:
    OPENSSL_cleanse(seed, sizeof(seed));
    OPENSSL_cleanse(hmac_key, sizeof(hmac_key));
    OPENSSL_cleanse(sym_key, sizeof(sym_key));
    OPENSSL_cleanse(plain, sizeof(plain));
    return secret;
}

/* ---- PCRs, the list, quotes ---------------------------------------------------- */

void tvd_synth_agent_extend(TvdSynthAgent *a, guint pcr,
                            const guint8 digest[32])
{
    guint8 buf[64];

    g_return_if_fail(pcr < PCRS);
    memcpy(buf, a->pcr[pcr], 32);
    memcpy(buf + 32, digest, 32);
    EVP_Digest(buf, sizeof(buf), a->pcr[pcr], NULL, EVP_sha256(), NULL);
}

const guint8 *tvd_synth_agent_pcr(TvdSynthAgent *a, guint pcr)
{
    g_return_val_if_fail(pcr < PCRS, NULL);
    return a->pcr[pcr];
}

void tvd_synth_agent_measure(TvdSynthAgent *a, const char *path,
                             const guint8 sha256[32])
{
    g_autoptr(GByteArray) data = g_byte_array_new();
    guint8 extend[32];

    /* The guest agent's record: ima-ng, its template data's SHA-256 is
     * what the SHA-256 bank gets. */
    tvd_ima_ng_data_append(data, "sha256", sha256, 32, path);
    EVP_Digest(data->data, data->len, extend, NULL, EVP_sha256(), NULL);
    tvd_synth_agent_extend(a, a->agent_pcr, extend);
    g_ptr_array_add(a->list, tvd_synth_ima_record(a->agent_pcr, path, sha256,
                                                  FALSE));
}

GPtrArray *tvd_synth_agent_list(TvdSynthAgent *a)
{
    return a->list;
}

void tvd_synth_agent_quote(TvdSynthAgent *a, const guint8 *nonce,
                           gsize nonce_len, guint32 select, GBytes **attest,
                           GBytes **signature, GBytes **pcr_values)
{
    g_autoptr(GByteArray) values = g_byte_array_new();

    for (guint i = 0; i < PCRS; i++) {
        if (select & (1u << i)) {
            g_byte_array_append(values, a->pcr[i], 32);
        }
    }
    a->clock += 1000;
    *attest = tvd_synth_attest_clock(TPM2_ST_ATTEST_QUOTE, nonce, nonce_len,
                                     TPM2_ALG_SHA256, select, values->data,
                                     values->len, a->clock, 1, 0);
    *signature = tvd_synth_sign(a->ak, *attest);
    *pcr_values = g_bytes_new(values->data, values->len);
}

/* ---- messages ------------------------------------------------------------------- */

GBytes *tvd_synth_agent_hello(TvdSynthAgent *a)
{
    TvdMsg msg = { .type = TVD_MSG_AGENT_HELLO };
    TvdMsgAgentHello *h = &msg.u.agent_hello;

    h->agent_version = TVD_AGENT_VERSION(0, 1, 0);
    g_strlcpy(h->boot_id, "0b5e1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
              sizeof(h->boot_id));
    h->ek_type = TVD_EK_RSA;
    h->ek_cert = a->ek_cert;
    h->ek_public = a->ek_public;
    h->ak_public = a->ak->public;
    h->ak_name = a->ak_name;
    h->ak_alg = TVD_AK_RSA2048_RSASSA_SHA256;
    h->agent_pcr = a->agent_pcr;
    h->capabilities = TVD_CAP_AGENT_LIST | TVD_CAP_PCR_SHA256;
    return tvd_msg_encode(&msg, NULL);
}

GBytes *tvd_synth_agent_answer_challenge(TvdSynthAgent *a, GBytes *challenge,
                                         GError **error)
{
    TvdMsgCredentialChallenge c = { 0 };
    TvdMsg msg = { .type = TVD_MSG_CREDENTIAL_RESPONSE };
    g_autoptr(GBytes) secret = NULL;

    if (!tvd_msg_credential_challenge_decode(challenge, &c, error)) {
        return NULL;
    }
    secret = tvd_synth_agent_activate(a, c.credential_blob,
                                      c.encrypted_secret, error);
    tvd_msg_credential_challenge_clear(&c);
    if (!secret) {
        return NULL;
    }
    msg.u.credential_response.secret = secret;
    return tvd_msg_encode(&msg, error);
}

gboolean tvd_synth_agent_evidence(TvdSynthAgent *a,
                                  const TvdMsgAttestRequest *req,
                                  TvdMsgEvidence *ev, GError **error)
{
    g_autoptr(GBytes) values = NULL;
    const guint8 *v;
    guint idx = 0;

    memset(ev, 0, sizeof(*ev));
    if (req->pcr_bank != TVD_TPM_ALG_SHA256 || req->pcr_select == 0 ||
        (req->pcr_select >> PCRS) != 0) {
        g_set_error(error, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_UNSUPPORTED,
                    "the software agent quotes the SHA-256 bank only "
                    "(asked bank 0x%04x, PCRs 0x%06x)", req->pcr_bank,
                    req->pcr_select);
        return FALSE;
    }
    tvd_synth_agent_quote(a, req->nonce, sizeof(req->nonce), req->pcr_select,
                          &ev->attest, &ev->signature, &values);
    ev->pcr_bank = TVD_TPM_ALG_SHA256;
    v = g_bytes_get_data(values, NULL);
    for (guint i = 0; i < PCRS; i++) {
        if (req->pcr_select & (1u << i)) {
            ev->pcrs[ev->n_pcrs].index = (guint8)i;
            ev->pcrs[ev->n_pcrs].digest = g_bytes_new(v + 32 * idx++, 32);
            ev->n_pcrs++;
        }
    }
    ev->n_logs = 1;
    ev->logs[0].kind = TVD_LOG_AGENT_LIST;
    ev->logs[0].offset = req->agent_offset;
    ev->logs[0].entries = g_ptr_array_new_with_free_func(
        (GDestroyNotify)g_bytes_unref);
    for (guint64 i = req->agent_offset; i < a->list->len; i++) {
        g_ptr_array_add(ev->logs[0].entries, g_bytes_ref(a->list->pdata[i]));
    }
    return TRUE;
}

GBytes *tvd_synth_agent_answer_request(TvdSynthAgent *a, GBytes *request,
                                       GError **error)
{
    TvdMsgAttestRequest r = { 0 };
    TvdMsg msg = { .type = TVD_MSG_EVIDENCE };
    GBytes *out = NULL;

    if (!tvd_msg_attest_request_decode(request, &r, error)) {
        return NULL;
    }
    if (tvd_synth_agent_evidence(a, &r, &msg.u.evidence, error)) {
        out = tvd_msg_encode(&msg, error);
    }
    tvd_msg_evidence_clear(&msg.u.evidence);
    tvd_msg_attest_request_clear(&r);
    return out;
}
