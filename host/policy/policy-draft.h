/*
 * Drafting a domain policy for an image (tvd-policy-tool draft): reference
 * digests per path, read from an image manifest (scripts/build-guest-image
 * writes one) or hashed from a directory tree, with excludes for what
 * changes at run time and the attestation defaults. The draft is unsigned:
 * an administrator reviews it, then signs it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_POLICY_DRAFT_H
#define TVD_POLICY_DRAFT_H

#include <glib.h>

G_BEGIN_DECLS

/* Path -> lowercase hex SHA-256 of the image's regular files. */
typedef GHashTable TvdDraftDigests;

/*
 * The digests of a manifest: every line that reads "HEX  /PATH" (64 hex
 * digits, two spaces, an absolute path; leading spaces allowed, as
 * sha256sum prints them) counts, whatever section it is in; other lines are
 * ignored. A manifest without any such line is an error, as is a path
 * given twice with different digests.
 */
TvdDraftDigests *tvd_draft_digests_from_manifest(const char *path,
                                                 GError **error);

/* The digests of every regular file under @root (symbolic links are not
 * followed), named by their path inside @root ("/usr/bin/tvd-agent"). */
TvdDraftDigests *tvd_draft_digests_from_tree(const char *root, GError **error);

typedef struct {
    const char *name;       /* domain.name */
    guint id;               /* domain.id */
    const char *subnet;     /* network.subnet; NULL: 10.(id/256).(id%256).0/24 */
    const char *role;       /* network's one role and default_role */
    const char *source;     /* the manifest or directory, for the description */
} TvdDraftOptions;

/* The run-time paths the draft excludes, NULL-terminated. */
extern const char *const tvd_draft_excludes[];

/*
 * The policy text (pretty JSON, a newline at the end): a reference for each
 * path not under an exclude, sorted by path; /usr/bin/tvd-agent required
 * when present. *n_skipped (optional) counts the paths left out because an
 * exclude covers them. Fails when there are more paths than a policy may
 * reference.
 */
char *tvd_draft_policy(TvdDraftDigests *digests, const TvdDraftOptions *opts,
                       guint *n_skipped, GError **error);

G_END_DECLS

#endif /* TVD_POLICY_DRAFT_H */
