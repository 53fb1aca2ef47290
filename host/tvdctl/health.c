/*
 * tvdctl health: is the supervisor up and answering.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"

static int health(TvdctlGlobal *g, int argc, char **argv)
{
    if (!tvdctl_parse(g, "health", "", "Ask the supervisor how it is.", NULL,
                      &argc, &argv)) {
        return TVDCTL_EXIT_USAGE;
    }
    if (argc != 1) {
        return tvdctl_fail(TVDCTL_EXIT_USAGE, "health takes no arguments");
    }
    return tvdctl_show(g, "GET", "/v1/health", NULL);
}

const TvdctlVerb tvdctl_health_verbs[] = {
    { NULL, "", "check that the supervisor answers", health },
    { NULL, NULL, NULL, NULL },
};
