/*
 * JSON helpers shared by the supervisor's modules.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_JSON_UTIL_H
#define TVD_SUPERVISOR_JSON_UTIL_H

#include <json-glib/json-glib.h>

/* The string member @name of @o, NULL when absent or of another type. */
static inline const char *tvd_json_string_member(JsonObject *o,
                                                 const char *name)
{
    JsonNode *n = json_object_get_member(o, name);

    return n && JSON_NODE_HOLDS_VALUE(n) &&
           json_node_get_value_type(n) == G_TYPE_STRING
           ? json_node_get_string(n) : NULL;
}

#endif /* TVD_SUPERVISOR_JSON_UTIL_H */
