/*
 * Strict JSON checker and position locator for policy documents (internal).
 *
 * json-glib builds the tree, but it accepts extensions (comments, a
 * "var = " prefix, duplicate members, unbounded nesting) and keeps no
 * positions. This checker runs first over the same bytes: RFC 8259 only,
 * UTF-8 only, no NUL anywhere (not even as \u0000), no duplicate member
 * names, a nesting cap, integer literals of at most 16 digits. When a
 * semantic check fails later, tvd_policy_json_locate() walks the bytes
 * again to find where the value at a JSON path starts.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_POLICY_JSON_H
#define TVD_POLICY_JSON_H

#include <glib.h>

#include "policy.h"

G_BEGIN_DECLS

/* Appends one path component: ".name" (or "name" at the root) when @key is
 * an identifier, ["..."] otherwise; "[i]" for an index. */
void tvd_policy_json_path_key(GString *path, const char *key);
void tvd_policy_json_path_index(GString *path, guint index);

/*
 * Checks @data (@len bytes). On failure: FALSE, @error in TVD_POLICY_ERROR
 * (SYNTAX or TOO_LARGE) without position text, and @loc filled with the
 * path being read and the line/column of the offending byte.
 */
gboolean tvd_policy_json_check(const char *data, gsize len,
                               TvdPolicyErrorLocation *loc, GError **error);

/*
 * Finds @path in @data, which passed tvd_policy_json_check(). For an object
 * member, the position of its name; for an array element, of its value.
 * Answers FALSE (and 0/0) if there is no such path.
 */
gboolean tvd_policy_json_locate(const char *data, gsize len, const char *path,
                                guint *line, guint *column);

G_END_DECLS

#endif /* TVD_POLICY_JSON_H */
