/*
 * The names of the membership states (enum tvd_state): one table for the
 * supervisor, its store and API, tvdctl and the guest agent.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_COMMON_STATE_NAME_H
#define TVD_COMMON_STATE_NAME_H

#include <glib.h>

G_BEGIN_DECLS

/* "PENDING", "ADMITTED", ...; "UNKNOWN" for a value out of range. */
const char *tvd_state_name(guint32 state);
/* The state named @name (as tvd_state_name() gives it); FALSE if none. */
gboolean tvd_state_from_name(const char *name, guint32 *state);

G_END_DECLS

#endif /* TVD_COMMON_STATE_NAME_H */
