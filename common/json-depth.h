/*
 * A nesting-depth check of JSON text, run before a JSON parser sees it:
 * json-glib's parser recurses once per level, so 100,000 '[' in a request
 * body overflow its stack. Linear, no allocation, strings and escapes
 * skipped; it checks nothing else (the parser does).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_COMMON_JSON_DEPTH_H
#define TVD_COMMON_JSON_DEPTH_H

#include <glib.h>

G_BEGIN_DECLS

/* Deep enough for every document tvd reads or writes. */
#define TVD_JSON_DEPTH_MAX  32u

/*
 * TRUE when no array or object in @data (@len bytes) is nested deeper than
 * @max_depth levels (the root counts as one). Else FALSE, with the byte
 * offset of the first bracket too deep in *@offset (when not NULL).
 */
gboolean tvd_json_depth_ok(const char *data, gsize len, guint max_depth,
                           gsize *offset);

G_END_DECLS

#endif /* TVD_COMMON_JSON_DEPTH_H */
