/*
 * The names of the membership states: see state-name.h.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "state-name.h"

#include <string.h>

#include "hw/misc/tvd.h"

static const char *const state_names[] = {
    [TVD_STATE_PENDING] = "PENDING",
    [TVD_STATE_ADMITTED] = "ADMITTED",
    [TVD_STATE_QUARANTINED] = "QUARANTINED",
    [TVD_STATE_REVOKED] = "REVOKED",
};

const char *tvd_state_name(guint32 state)
{
    if (state >= G_N_ELEMENTS(state_names) || !state_names[state]) {
        return "UNKNOWN";
    }
    return state_names[state];
}

gboolean tvd_state_from_name(const char *name, guint32 *state)
{
    for (guint32 i = 0; name && i < G_N_ELEMENTS(state_names); i++) {
        if (state_names[i] && !strcmp(state_names[i], name)) {
            *state = i;
            return TRUE;
        }
    }
    return FALSE;
}
