/*
 * The REST API's backend (api/api.h) served by this supervisor.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_SUPERVISOR_API_BACKEND_H
#define TVD_SUPERVISOR_API_BACKEND_H

#include "api.h"

G_BEGIN_DECLS

/* The context of every call is the TvdSupervisor. */
extern const TvdApiBackend tvd_supervisor_api_backend;

G_END_DECLS

#endif /* TVD_SUPERVISOR_API_BACKEND_H */
