/*
 * JSON nesting-depth check: see json-depth.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "json-depth.h"

gboolean tvd_json_depth_ok(const char *data, gsize len, guint max_depth,
                           gsize *offset)
{
    gboolean in_string = FALSE;
    guint depth = 0;

    for (gsize i = 0; i < len; i++) {
        char c = data[i];

        if (in_string) {
            if (c == '\\') {
                i++;            /* the escaped byte cannot end the string */
            } else if (c == '"') {
                in_string = FALSE;
            }
            continue;
        }
        switch (c) {
        case '"':
            in_string = TRUE;
            break;
        case '[':
        case '{':
            if (++depth > max_depth) {
                if (offset) {
                    *offset = i;
                }
                return FALSE;
            }
            break;
        case ']':
        case '}':
            /* Unbalanced closers are the parser's to report. */
            if (depth > 0) {
                depth--;
            }
            break;
        default:
            break;
        }
    }
    return TRUE;
}
