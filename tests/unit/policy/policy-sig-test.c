/*
 * Administrator keys, detached policy signatures and the trust store, with
 * real OpenSSL, including the openssl command line as an independent peer.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "policy.h"
#include "policy-test-base.h"

typedef struct {
    char *dir;                  /* private temporary directory */
    char *trust;                /* trust store: ed.pem and ec.pem */
    char *ed_key, *ed_pub, *ec_key, *ec_pub, *other_key, *other_pub;
    char *ed_id, *ec_id;
    char *policy;               /* the base policy text */
} Keys;

static void keys_setup(Keys *k, gconstpointer unused)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *ed_copy = NULL;
    g_autofree char *ec_copy = NULL;
    g_autofree char *pem = NULL;
    gsize len;

    (void)unused;
    k->dir = g_dir_make_tmp("tvd-policy-sig-XXXXXX", &error);
    g_assert_no_error(error);
    k->trust = g_build_filename(k->dir, "trust", NULL);
    g_assert_cmpint(g_mkdir(k->trust, 0755), ==, 0);
    k->ed_key = g_build_filename(k->dir, "ed.key", NULL);
    k->ed_pub = g_build_filename(k->dir, "ed.pub", NULL);
    k->ec_key = g_build_filename(k->dir, "ec.key", NULL);
    k->ec_pub = g_build_filename(k->dir, "ec.pub", NULL);
    k->other_key = g_build_filename(k->dir, "other.key", NULL);
    k->other_pub = g_build_filename(k->dir, "other.pub", NULL);
    g_assert_true(tvd_policy_keygen(TVD_POLICY_KEY_ED25519, k->ed_key, k->ed_pub, &k->ed_id,
                                    &error));
    g_assert_no_error(error);
    g_assert_true(tvd_policy_keygen(TVD_POLICY_KEY_ECDSA_P256, k->ec_key, k->ec_pub,
                                    &k->ec_id, &error));
    g_assert_no_error(error);
    g_assert_true(tvd_policy_keygen(TVD_POLICY_KEY_ED25519, k->other_key, k->other_pub, NULL,
                                    &error));
    g_assert_no_error(error);
    /* the trust store knows ed and ec, not other */
    g_assert_true(g_file_get_contents(k->ed_pub, &pem, &len, NULL));
    ed_copy = g_build_filename(k->trust, "alice.pem", NULL);
    g_assert_true(g_file_set_contents_full(ed_copy, pem, (gssize)len,
                                           G_FILE_SET_CONTENTS_NONE, 0644, NULL));
    g_clear_pointer(&pem, g_free);
    g_assert_true(g_file_get_contents(k->ec_pub, &pem, &len, NULL));
    ec_copy = g_build_filename(k->trust, "bob.pem", NULL);
    g_assert_true(g_file_set_contents_full(ec_copy, pem, (gssize)len,
                                           G_FILE_SET_CONTENTS_NONE, 0644, NULL));
    k->policy = base_policy_with(0, NULL);
}

static void rm_rf(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, name, NULL);

        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK)) {
            rm_rf(p);
        } else {
            g_unlink(p);
        }
    }
    g_rmdir(path);
}

static void keys_teardown(Keys *k, gconstpointer unused)
{
    (void)unused;
    rm_rf(k->dir);
    g_free(k->dir);
    g_free(k->trust);
    g_free(k->ed_key);
    g_free(k->ed_pub);
    g_free(k->ec_key);
    g_free(k->ec_pub);
    g_free(k->other_key);
    g_free(k->other_pub);
    g_free(k->ed_id);
    g_free(k->ec_id);
    g_free(k->policy);
}

static TvdPolicyTrustStore *load_trust(const Keys *k)
{
    g_autoptr(GError) error = NULL;
    TvdPolicyTrustStore *s = tvd_policy_trust_store_load(k->trust, &error);

    g_assert_no_error(error);
    g_assert_cmpuint(tvd_policy_trust_store_size(s), ==, 2);
    return s;
}

static void test_keygen(Keys *k, gconstpointer unused)
{
    struct stat st;
    g_autoptr(GError) error = NULL;
    g_autofree char *id = NULL;

    (void)unused;
    g_assert_cmpint(stat(k->ed_key, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpint(stat(k->ec_key, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0600);
    g_assert_cmpint(stat(k->ed_pub, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 07777, ==, 0644);
    g_assert_true(g_str_has_prefix(k->ed_id, "sha256:"));
    g_assert_cmpuint(strlen(k->ed_id), ==, 71);
    /* the id of the private and of the public key file is the same */
    id = tvd_policy_key_id_of_file(k->ed_pub, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(id, ==, k->ed_id);
    g_clear_pointer(&id, g_free);
    id = tvd_policy_key_id_of_file(k->ec_key, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(id, ==, k->ec_id);
    /* never overwrites */
    g_assert_false(tvd_policy_keygen(TVD_POLICY_KEY_ED25519, k->ed_key,
                                     k->other_pub, NULL, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO);
}

static void sign_verify(Keys *k, const char *key, const char *want_name, const char *alg)
{
    g_autoptr(TvdPolicyTrustStore) s = load_trust(k);
    g_autoptr(GError) error = NULL;
    g_autofree char *sig = tvd_policy_sign(k->policy, strlen(k->policy), key, &error);
    g_autofree char *name = NULL;
    g_autofree char *alg_line = g_strdup_printf("Algorithm: %s\n", alg);

    g_assert_no_error(error);
    g_assert_true(g_str_has_prefix(sig, "-----BEGIN TVD POLICY SIGNATURE-----\n"));
    g_assert_nonnull(strstr(sig, alg_line));
    g_assert_true(tvd_policy_trust_store_verify(s, k->policy, strlen(k->policy), sig,
                                                strlen(sig), &name, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(name, ==, want_name);
}

static void test_sign_ed25519(Keys *k, gconstpointer unused)
{
    (void)unused;
    sign_verify(k, k->ed_key, "alice", "ed25519");
}

static void test_sign_ecdsa(Keys *k, gconstpointer unused)
{
    (void)unused;
    sign_verify(k, k->ec_key, "bob", "ecdsa-p256-sha256");
}

static void expect_reject(const Keys *k, const char *data, gsize len, const char *sig,
                          TvdPolicyError code, const char *needle)
{
    g_autoptr(TvdPolicyTrustStore) s = load_trust(k);
    g_autoptr(GError) error = NULL;

    g_assert_false(tvd_policy_trust_store_verify(s, data, len, sig, strlen(sig), NULL,
                                                 &error));
    g_test_message("rejected: %s", error->message);
    g_assert_error(error, TVD_POLICY_ERROR, (gint)code);
    g_assert_nonnull(strstr(error->message, needle));
}

static char *sign(const Keys *k, const char *key, const char *data)
{
    g_autoptr(GError) error = NULL;
    char *sig = tvd_policy_sign(data, strlen(data), key, &error);

    g_assert_no_error(error);
    return sig;
}

/* Drops the Policy-Digest header so the signature check itself must fail. */
static char *without_digest(const char *sig)
{
    g_auto(GStrv) lines = g_strsplit(sig, "\n", -1);
    GString *out = g_string_new(NULL);

    for (guint i = 0; lines[i]; i++) {
        if (!g_str_has_prefix(lines[i], "Policy-Digest: ")) {
            g_string_append(out, lines[i]);
            if (lines[i + 1]) {
                g_string_append_c(out, '\n');
            }
        }
    }
    return g_string_free(out, FALSE);
}

static void test_tampered_policy(Keys *k, gconstpointer unused)
{
    const char *keys[] = { k->ed_key, k->ec_key };

    (void)unused;
    for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *sig = sign(k, keys[i], k->policy);
        g_autofree char *bare = without_digest(sig);
        g_autofree char *tampered = g_strdup(k->policy);

        /* one byte: serial 7 -> 8 */
        *strstr(tampered, "\"serial\": 7") = '\'';
        expect_reject(k, tampered, strlen(tampered), sig, TVD_POLICY_ERROR_SIGNATURE,
                      "signature is for policy sha256:");
        expect_reject(k, tampered, strlen(tampered), bare, TVD_POLICY_ERROR_SIGNATURE,
                      "does not verify");
        /* a trailing byte too */
        expect_reject(k, k->policy, strlen(k->policy) - 1, bare, TVD_POLICY_ERROR_SIGNATURE,
                      "does not verify");
        /* and the untampered bytes still pass without the digest header */
        {
            g_autoptr(TvdPolicyTrustStore) s = load_trust(k);

            g_assert_true(tvd_policy_trust_store_verify(s, k->policy, strlen(k->policy),
                                                        bare, strlen(bare), NULL, NULL));
        }
    }
}

static void test_tampered_signature(Keys *k, gconstpointer unused)
{
    g_autofree char *sig = sign(k, k->ed_key, k->policy);
    TvdPolicySignature decoded;
    g_autofree char *again = NULL;

    (void)unused;
    g_assert_true(tvd_policy_signature_decode(sig, strlen(sig), &decoded, NULL));
    decoded.sig[10] ^= 0x01;
    again = tvd_policy_signature_encode(&decoded);
    expect_reject(k, k->policy, strlen(k->policy), again, TVD_POLICY_ERROR_SIGNATURE,
                  "does not verify");
}

static void test_unknown_key(Keys *k, gconstpointer unused)
{
    g_autofree char *sig = sign(k, k->other_key, k->policy);

    (void)unused;
    expect_reject(k, k->policy, strlen(k->policy), sig, TVD_POLICY_ERROR_UNKNOWN_KEY,
                  "not in the trust store");
}

/* Signed by "other" but claiming to be alice's: alice's key must not verify it. */
static void test_wrong_key(Keys *k, gconstpointer unused)
{
    g_autofree char *sig = sign(k, k->other_key, k->policy);
    g_autofree char *ed_sig = sign(k, k->ed_key, k->policy);
    TvdPolicySignature s, ed;
    g_autofree char *forged = NULL;
    g_autofree char *ec_claim = NULL;

    (void)unused;
    g_assert_true(tvd_policy_signature_decode(sig, strlen(sig), &s, NULL));
    g_assert_true(tvd_policy_signature_decode(ed_sig, strlen(ed_sig), &ed, NULL));
    memcpy(s.key_id, ed.key_id, sizeof(s.key_id));
    forged = tvd_policy_signature_encode(&s);
    expect_reject(k, k->policy, strlen(k->policy), forged, TVD_POLICY_ERROR_SIGNATURE,
                  "by key alice does not verify");
    /* an Ed25519 signature that names the P-256 key */
    ec_claim = tvd_policy_sign(k->policy, strlen(k->policy), k->ec_key, NULL);
    g_assert_true(tvd_policy_signature_decode(ec_claim, strlen(ec_claim), &s, NULL));
    memcpy(ed.key_id, s.key_id, sizeof(ed.key_id));
    g_free(forged);
    forged = tvd_policy_signature_encode(&ed);
    expect_reject(k, k->policy, strlen(k->policy), forged, TVD_POLICY_ERROR_SIGNATURE,
                  "but key bob is ecdsa-p256-sha256");
}

static void test_key_permissions(Keys *k, gconstpointer unused)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *sig = NULL;
    g_autofree char *link = g_build_filename(k->dir, "link.key", NULL);

    (void)unused;
    g_assert_cmpint(chmod(k->ed_key, 0640), ==, 0);
    g_assert_null(tvd_policy_sign(k->policy, strlen(k->policy), k->ed_key, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, "chmod 600"));
    g_clear_error(&error);
    g_assert_cmpint(chmod(k->ed_key, 0604), ==, 0);
    g_assert_null(tvd_policy_sign(k->policy, strlen(k->policy), k->ed_key, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_clear_error(&error);
    /* read-only for the owner is fine */
    g_assert_cmpint(chmod(k->ed_key, 0400), ==, 0);
    sig = tvd_policy_sign(k->policy, strlen(k->policy), k->ed_key, &error);
    g_assert_no_error(error);
    g_assert_nonnull(sig);
    /* a symlink is not followed */
    g_assert_cmpint(symlink(k->ed_key, link), ==, 0);
    g_assert_null(tvd_policy_sign(k->policy, strlen(k->policy), link, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_IO);
    g_clear_error(&error);
    /* a public key cannot sign */
    g_assert_cmpint(chmod(k->ed_pub, 0600), ==, 0);
    g_assert_null(tvd_policy_sign(k->policy, strlen(k->policy), k->ed_pub, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
}

static void test_trust_store_checks(Keys *k, gconstpointer unused)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *bad = g_build_filename(k->trust, "broken.pem", NULL);
    g_autofree char *ignored = g_build_filename(k->trust, "README", NULL);
    g_autoptr(TvdPolicyTrustStore) s = NULL;

    (void)unused;
    g_assert_true(g_file_set_contents(ignored, "not a key", -1, NULL));
    g_assert_cmpint(chmod(ignored, 0644), ==, 0);
    s = load_trust(k);                          /* only *.pem files count */
    g_assert_cmpint(chmod(k->trust, 0775), ==, 0);
    g_assert_null(tvd_policy_trust_store_load(k->trust, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_clear_error(&error);
    g_assert_cmpint(chmod(k->trust, 0755), ==, 0);
    g_assert_true(g_file_set_contents(bad, "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                      "-----END PUBLIC KEY-----\n", -1, NULL));
    g_assert_cmpint(chmod(bad, 0644), ==, 0);
    g_assert_null(tvd_policy_trust_store_load(k->trust, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, "broken"));
    g_clear_error(&error);
    g_assert_cmpint(chmod(bad, 0666), ==, 0);
    g_assert_null(tvd_policy_trust_store_load(k->trust, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_assert_nonnull(strstr(error->message, "writable"));
}

/* An RSA key is not an administrator key. */
static void test_rsa_refused(Keys *k, gconstpointer unused)
{
    g_autofree char *openssl = g_find_program_in_path("openssl");
    g_autofree char *rsa = g_build_filename(k->dir, "rsa.key", NULL);
    g_autofree char *rsa_pub = g_build_filename(k->dir, "rsa.pub", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *pem = NULL;
    g_autoptr(TvdPolicyTrustStore) s = tvd_policy_trust_store_new();
    int status = -1;

    (void)unused;
    if (!openssl) {
        g_test_skip("openssl command not found");
        return;
    }
    {
        const char *gen[] = { openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt",
                              "rsa_keygen_bits:1024", "-out", rsa, NULL };
        const char *pub[] = { openssl, "pkey", "-in", rsa, "-pubout", "-out", rsa_pub, NULL };

        g_assert_true(g_spawn_sync(NULL, (char **)gen, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                                   NULL, NULL, NULL, NULL, &status, &error));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        g_assert_true(g_spawn_sync(NULL, (char **)pub, NULL, G_SPAWN_STDERR_TO_DEV_NULL,
                                   NULL, NULL, NULL, NULL, &status, &error));
        g_assert_true(g_spawn_check_wait_status(status, NULL));
    }
    g_assert_cmpint(chmod(rsa, 0600), ==, 0);
    g_assert_null(tvd_policy_sign(k->policy, strlen(k->policy), rsa, &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
    g_clear_error(&error);
    g_assert_true(g_file_get_contents(rsa_pub, &pem, NULL, NULL));
    g_assert_false(tvd_policy_trust_store_add_pem(s, pem, strlen(pem), "rsa", &error));
    g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_KEY);
}

/* ---- The openssl command line as an independent peer ------------------------- */

static gboolean run(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = -1;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL,
                               &out, &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_test_message("%s failed: %s%s", argv[1], out, err);
        return FALSE;
    }
    return TRUE;
}

static void write_raw_signature(const char *sig, const char *path)
{
    TvdPolicySignature s;

    g_assert_true(tvd_policy_signature_decode(sig, strlen(sig), &s, NULL));
    g_assert_true(g_file_set_contents(path, (const char *)s.sig, (gssize)s.sig_len, NULL));
}

static void test_openssl_peer(Keys *k, gconstpointer unused)
{
    g_autofree char *openssl = g_find_program_in_path("openssl");
    g_autofree char *policy = g_build_filename(k->dir, "p.json", NULL);
    g_autofree char *raw = g_build_filename(k->dir, "raw.sig", NULL);
    g_autofree char *ed_sig = NULL;
    g_autofree char *ec_sig = NULL;

    (void)unused;
    if (!openssl) {
        g_test_skip("openssl command not found");
        return;
    }
    g_assert_true(g_file_set_contents(policy, k->policy, -1, NULL));

    /* our signatures, verified by openssl */
    ed_sig = sign(k, k->ed_key, k->policy);
    write_raw_signature(ed_sig, raw);
    {
        const char *argv[] = { openssl, "pkeyutl", "-verify", "-pubin", "-inkey", k->ed_pub,
                               "-rawin", "-in", policy, "-sigfile", raw, NULL };

        g_assert_true(run(argv));
    }
    ec_sig = sign(k, k->ec_key, k->policy);
    write_raw_signature(ec_sig, raw);
    {
        const char *argv[] = { openssl, "dgst", "-sha256", "-verify", k->ec_pub,
                               "-signature", raw, policy, NULL };

        g_assert_true(run(argv));
    }
    /* our key id is SHA-256 over the DER SubjectPublicKeyInfo openssl writes */
    {
        g_autofree char *der = g_build_filename(k->dir, "pub.der", NULL);
        const char *argv[] = { openssl, "pkey", "-pubin", "-in", k->ec_pub, "-outform", "DER",
                               "-out", der, NULL };
        g_autofree char *data = NULL;
        gsize len = 0;
        g_autofree char *sum = NULL;
        g_autofree char *id = NULL;

        g_assert_true(run(argv));
        g_assert_true(g_file_get_contents(der, &data, &len, NULL));
        sum = g_compute_checksum_for_data(G_CHECKSUM_SHA256, (const guchar *)data, len);
        id = g_strconcat("sha256:", sum, NULL);
        g_assert_cmpstr(id, ==, k->ec_id);
    }
    /* openssl's keys and signatures, verified by us */
    {
        const char *types[][2] = { { "ED25519", NULL }, { "EC", "ec_paramgen_curve:P-256" } };

        for (guint i = 0; i < G_N_ELEMENTS(types); i++) {
            g_autofree char *key = g_strdup_printf("%s/ossl%u.key", k->dir, i);
            g_autofree char *pub = g_strdup_printf("%s/trust/ossl%u.pem", k->dir, i);
            g_autofree char *rawsig = NULL;
            gsize rawlen = 0;
            g_autoptr(GError) error = NULL;
            g_autoptr(TvdPolicyTrustStore) s = NULL;
            g_autofree char *name = NULL;
            g_autofree char *armored = NULL;
            g_autofree char *id = NULL;
            TvdPolicySignature sig;
            const char *gen_ed[] = { openssl, "genpkey", "-algorithm", types[i][0],
                                     "-out", key, NULL };
            const char *gen_ec[] = { openssl, "genpkey", "-algorithm", types[i][0],
                                     "-pkeyopt", types[i][1], "-out", key, NULL };
            const char *pubout[] = { openssl, "pkey", "-in", key, "-pubout", "-out", pub, NULL };
            const char *sign_ed[] = { openssl, "pkeyutl", "-sign", "-inkey", key, "-rawin",
                                      "-in", policy, "-out", raw, NULL };
            const char *sign_ec[] = { openssl, "dgst", "-sha256", "-sign", key, "-out", raw,
                                      policy, NULL };

            g_assert_true(run(i == 0 ? gen_ed : gen_ec));
            g_assert_true(run(pubout));
            g_assert_cmpint(chmod(pub, 0644), ==, 0);
            g_assert_true(run(i == 0 ? sign_ed : sign_ec));
            g_assert_true(g_file_get_contents(raw, &rawsig, &rawlen, NULL));
            g_assert_cmpuint(rawlen, <=, sizeof(sig.sig));
            memset(&sig, 0, sizeof(sig));
            sig.key_type = i == 0 ? TVD_POLICY_KEY_ED25519 : TVD_POLICY_KEY_ECDSA_P256;
            id = tvd_policy_key_id_of_file(pub, &error);
            g_assert_no_error(error);
            for (guint j = 0; j < 32; j++) {
                sig.key_id[j] = (guint8)g_ascii_strtoull((char[]){ id[7 + 2 * j],
                                                                   id[8 + 2 * j], 0 },
                                                         NULL, 16);
            }
            memcpy(sig.sig, rawsig, rawlen);
            sig.sig_len = rawlen;
            armored = tvd_policy_signature_encode(&sig);
            s = tvd_policy_trust_store_load(k->trust, &error);
            g_assert_no_error(error);
            g_assert_true(tvd_policy_trust_store_verify(s, k->policy, strlen(k->policy),
                                                        armored, strlen(armored), &name,
                                                        &error));
            g_assert_no_error(error);
            g_assert_cmpstr(name, ==, i == 0 ? "ossl0" : "ossl1");
        }
    }
}

/* ---- Signature file decoder ---------------------------------------------------- */

static void test_decode(void)
{
    static const char good[] =
        "-----BEGIN TVD POLICY SIGNATURE-----\n"
        "Version: 1\n"
        "Algorithm: ed25519\n"
        "Key-Id: sha256:" HA "\n"
        "\n"
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
        "AAAAAAAAAAAAAAAAAAAAAA==\n"
        "-----END TVD POLICY SIGNATURE-----\n";
    static const struct {
        const char *from, *to, *needle;
    } bad[] = {
        { "-----BEGIN TVD POLICY SIGNATURE-----", "-----BEGIN PGP SIGNATURE-----",
          "line 1: expected" },
        { "Version: 1", "Version: 2", "line 2: unsupported version" },
        { "Algorithm: ed25519", "Algorithm: rsa", "line 3: algorithm must be" },
        { "Key-Id: sha256:aaaa", "Key-Id: sha256:AAAA", "line 4: Key-Id must be" },
        { "Key-Id: sha256:" HA "\n", "Key-Id: sha256:" HA "\nKey-Id: sha256:" HA "\n",
          "line 5: unknown or repeated header \"Key-Id\"" },
        { "Version: 1\n", "Version: 1\nComment: hi\n", "line 3: unknown or repeated" },
        { "Version: 1\n", "", "line 4: headers Version, Algorithm and Key-Id are required" },
        { "AAAA==\n", "AAA=A=\n", "padding inside" },
        { "AAAA==\n", "AAAB==\n", "not canonical base64" },
        { "AAAA==\n", "AAAAAAAA==\n", "64 bytes, not 67" },
        { "AAAA==\n", "AA*A==\n", "invalid base64 character" },
        { "AAAA==\n", "AAAA=\n", "bad base64 length" },
        { "-----END TVD POLICY SIGNATURE-----\n", "", "missing \"-----END" },
        { "-----END TVD POLICY SIGNATURE-----\n",
          "-----END TVD POLICY SIGNATURE-----\nmore\n", "line 9: data after" },
    };
    TvdPolicySignature sig;
    g_autoptr(GError) error = NULL;

    g_assert_true(tvd_policy_signature_decode(good, sizeof(good) - 1, &sig, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(sig.sig_len, ==, 64);
    g_assert_cmpint(sig.key_type, ==, TVD_POLICY_KEY_ED25519);
    g_assert_false(sig.has_digest);
    g_assert_cmpuint(sig.key_id[0], ==, 0xaa);
    /* round trip */
    {
        g_autofree char *again = tvd_policy_signature_encode(&sig);

        g_assert_cmpstr(again, ==, good);
    }
    /* CRLF line ends and leading blank lines are accepted */
    {
        g_auto(GStrv) parts = g_strsplit(good, "\n", -1);
        g_autofree char *joined = g_strjoinv("\r\n", parts);
        g_autofree char *crlf = g_strconcat("\n", joined, NULL);

        g_assert_true(tvd_policy_signature_decode(crlf, strlen(crlf), &sig, NULL));
    }
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        const char *at = strstr(good, bad[i].from);
        g_autofree char *text = NULL;

        g_assert_nonnull(at);
        text = g_strdup_printf("%.*s%s%s", (int)(at - good), good, bad[i].to,
                               at + strlen(bad[i].from));
        g_assert_false(tvd_policy_signature_decode(text, strlen(text), &sig, &error));
        g_test_message("case %u: %s", i, error->message);
        g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE);
        g_assert_nonnull(strstr(error->message, bad[i].needle));
        g_clear_error(&error);
    }
    /* caps: size and NUL */
    {
        g_autofree char *big = g_strnfill(TVD_POLICY_SIG_FILE_MAX + 1, '\n');

        g_assert_false(tvd_policy_signature_decode(big, strlen(big), &sig, &error));
        g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE);
        g_clear_error(&error);
        g_assert_false(tvd_policy_signature_decode("\0", 1, &sig, &error));
        g_assert_error(error, TVD_POLICY_ERROR, TVD_POLICY_ERROR_SIGNATURE);
    }
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define ADD(name, fn) g_test_add("/policy/sig/" name, Keys, NULL, keys_setup, fn, keys_teardown)
    ADD("keygen", test_keygen);
    ADD("sign-ed25519", test_sign_ed25519);
    ADD("sign-ecdsa-p256", test_sign_ecdsa);
    ADD("tampered-policy", test_tampered_policy);
    ADD("tampered-signature", test_tampered_signature);
    ADD("unknown-key", test_unknown_key);
    ADD("wrong-key", test_wrong_key);
    ADD("key-permissions", test_key_permissions);
    ADD("trust-store-checks", test_trust_store_checks);
    ADD("rsa-refused", test_rsa_refused);
    ADD("openssl-peer", test_openssl_peer);
#undef ADD
    g_test_add_func("/policy/sig/decode", test_decode);
    return g_test_run();
}
