/*
 * JSON nesting-depth check: see json-depth.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "json-depth.h"

/*
 * json-glib's scanner also takes what strict JSON does not: 'single-quoted'
 * strings (no escapes) and comments. A quote inside one of those must not
 * start a string here, or the brackets after it would go uncounted. Where
 * this scan and the parser could disagree, this one counts more brackets,
 * never fewer.
 */
gboolean tvd_json_depth_ok(const char *data, gsize len, guint max_depth,
                           gsize *offset)
{
    guint depth = 0;

    for (gsize i = 0; i < len; i++) {
        char c = data[i];

        switch (c) {
        case '"':
            /* An escaped byte cannot end the string. */
            for (i++; i < len && data[i] != '"'; i++) {
                if (data[i] == '\\') {
                    i++;
                }
            }
            break;
        case '\'':
            for (i++; i < len && data[i] != '\''; i++) {
            }
            break;
        case '/':
            if (i + 1 < len && data[i + 1] == '*') {
                for (i += 2; i + 1 < len &&
                     !(data[i] == '*' && data[i + 1] == '/'); i++) {
                }
                i++;
            } else if (i + 1 < len && data[i + 1] == '/') {
                for (i += 2; i < len && data[i] != '\n'; i++) {
                }
            }
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
