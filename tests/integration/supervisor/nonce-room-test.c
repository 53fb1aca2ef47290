/*
 * The shared nonce store a guest cannot fill for the others (attack 5):
 * the admission keeps one live nonce per VM (tvd_nonce_store_revoke_owner
 * before each request and at unbind) and lets live nonces push out the
 * consumed ones the store remembers (tvd_nonce_store_make_room). A guest
 * that cycles hellos and rounds as fast as it can leaves every other VM's
 * next round a nonce.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <glib.h>

#include "verifier.h"

#define STORE_MAX   8u

/* What the admission does before each request of @owner. */
static gboolean request(TvdNonceStore *s, const char *owner,
                        guint8 nonce[TVD_NONCE_LEN], GError **error)
{
    tvd_nonce_store_revoke_owner(s, owner);
    tvd_nonce_store_make_room(s);
    return tvd_nonce_store_issue(s, owner, nonce, error);
}

static void test_guest_cannot_fill(void)
{
    g_autoptr(TvdNonceStore) s = tvd_nonce_store_new(STORE_MAX,
                                                     600 * G_USEC_PER_SEC);
    g_autoptr(GError) err = NULL;
    guint8 n[TVD_NONCE_LEN];
    guint8 victim[TVD_NONCE_LEN];

    /* The attacker: many requests, answered or not, far above the store. */
    for (guint i = 0; i < 10 * STORE_MAX; i++) {
        g_assert_true(request(s, "attacker", n, &err));
        g_assert_no_error(err);
        if (i % 2) {
            g_assert_true(tvd_nonce_store_consume(s, "attacker", n, sizeof(n),
                                                  &err));
            g_assert_no_error(err);
        }
    }
    g_assert_cmpuint(tvd_nonce_store_size(s), <=, STORE_MAX);
    /* The victim's round still gets its nonce, and it verifies. */
    g_assert_true(request(s, "victim", victim, &err));
    g_assert_no_error(err);
    g_assert_true(tvd_nonce_store_consume(s, "victim", victim, sizeof(victim),
                                          &err));
    g_assert_no_error(err);
}

static void test_revoke_owner(void)
{
    g_autoptr(TvdNonceStore) s = tvd_nonce_store_new(STORE_MAX,
                                                     600 * G_USEC_PER_SEC);
    g_autoptr(GError) err = NULL;
    guint8 used[TVD_NONCE_LEN];
    guint8 live[TVD_NONCE_LEN];
    guint8 other[TVD_NONCE_LEN];

    g_assert_true(tvd_nonce_store_issue(s, "a", used, &err));
    g_assert_true(tvd_nonce_store_consume(s, "a", used, sizeof(used), &err));
    g_assert_true(tvd_nonce_store_issue(s, "a", live, &err));
    g_assert_true(tvd_nonce_store_issue(s, "b", other, &err));
    /* Only a's unconsumed nonce goes: the replay of a consumed one is still
     * named a replay, b's nonce still answers. */
    g_assert_cmpuint(tvd_nonce_store_revoke_owner(s, "a"), ==, 1);
    g_assert_false(tvd_nonce_store_consume(s, "a", live, sizeof(live), &err));
    g_assert_error(err, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_UNKNOWN);
    g_clear_error(&err);
    g_assert_false(tvd_nonce_store_consume(s, "a", used, sizeof(used), &err));
    g_assert_error(err, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_REUSED);
    g_clear_error(&err);
    g_assert_true(tvd_nonce_store_consume(s, "b", other, sizeof(other), &err));
    g_assert_no_error(err);
}

/* Without the admission's discipline the same attacker starves the store:
 * what the two functions are for. */
static void test_plain_issue_fills(void)
{
    g_autoptr(TvdNonceStore) s = tvd_nonce_store_new(STORE_MAX,
                                                     600 * G_USEC_PER_SEC);
    g_autoptr(GError) err = NULL;
    guint8 n[TVD_NONCE_LEN];

    for (guint i = 0; i < STORE_MAX; i++) {
        g_assert_true(tvd_nonce_store_issue(s, "attacker", n, &err));
    }
    g_assert_false(tvd_nonce_store_issue(s, "victim", n, &err));
    g_assert_error(err, TVD_VERIFY_ERROR, TVD_VERIFY_ERROR_NONCE_STORE_FULL);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/supervisor/nonces/guest-cannot-fill",
                    test_guest_cannot_fill);
    g_test_add_func("/supervisor/nonces/revoke-owner", test_revoke_owner);
    g_test_add_func("/supervisor/nonces/plain-issue-fills",
                    test_plain_issue_fills);
    return g_test_run();
}
