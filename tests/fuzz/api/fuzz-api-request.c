/*
 * libFuzzer target: the API's decoders of outside input (request bodies of
 * POST /v1/vms, POST|PUT /v1/domains, POST .../revoke; query integers;
 * strict base64; names). Each must answer a value or a TVD_API_ERROR, never
 * crash, leak or read past @size (the input is not NUL-terminated).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "api.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* GLib's criticals and warnings must not abort a fuzz run... but the
 * decoders emit none: any log at all is a finding. */
static void fail_on_log(const char *domain, GLogLevelFlags level,
                        const char *message, gpointer user)
{
    (void)domain;
    (void)level;
    (void)user;
    g_error("unexpected log from a decoder: %s", message);
}

static void check_error(GError *error)
{
    if (!error || error->domain != TVD_API_ERROR ||
        error->code != TVD_API_ERROR_INVALID) {
        g_error("decoder failed without an INVALID TVD_API_ERROR");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gboolean init;
    g_autoptr(GError) error = NULL;
    g_autofree char *text = NULL;
    TvdApiVmSpec *vm;
    TvdApiDomainSpec *dom;
    char *reason = NULL;
    guint64 v;

    if (!init) {
        g_log_set_default_handler(fail_on_log, NULL);
        init = TRUE;
    }

    vm = tvd_api_decode_vm_spec(data, size, &error);
    if (vm) {
        /* What a decoder accepts holds what docs/api.md promises. */
        g_assert(tvd_api_name_is_valid(vm->name));
        g_assert(tvd_api_name_is_valid(vm->domain));
        g_assert(g_path_is_absolute(vm->kernel));
        g_assert(g_path_is_absolute(vm->initrd));
        g_assert(!vm->role || tvd_api_name_is_valid(vm->role));
        g_assert(vm->memory_mib == 0 ||
                 (vm->memory_mib >= TVD_API_MIN_MEMORY_MIB &&
                  vm->memory_mib <= TVD_API_MAX_MEMORY_MIB));
        tvd_api_vm_spec_free(vm);
    } else {
        check_error(error);
    }
    g_clear_error(&error);

    for (int require_name = 0; require_name < 2; require_name++) {
        dom = tvd_api_decode_domain_spec(data, size, require_name, &error);
        if (dom) {
            g_assert(dom->policy && dom->signature);
            g_assert(g_bytes_get_size(dom->policy) <= TVD_API_MAX_POLICY);
            g_assert(!require_name || tvd_api_name_is_valid(dom->name));
            tvd_api_domain_spec_free(dom);
        } else {
            check_error(error);
        }
        g_clear_error(&error);
    }

    if (tvd_api_decode_revoke(data, size, &reason, &error)) {
        g_assert(!reason || strlen(reason) <= TVD_API_MAX_REASON);
        g_free(reason);
    } else {
        check_error(error);
    }
    g_clear_error(&error);

    /* The string decoders take NUL-terminated text (query values, JSON
     * strings): feed them the input up to its first NUL. */
    text = g_strndup((const char *)data, size);
    if (!tvd_api_parse_uint("q", text, TVD_API_AUDIT_MAX_LIMIT, &v, &error)) {
        check_error(error);
    } else {
        g_assert(v <= TVD_API_AUDIT_MAX_LIMIT);
    }
    g_clear_error(&error);
    {
        g_autoptr(GBytes) b = tvd_api_base64_decode("b", text, 4096, &error);

        if (b) {
            /* Canonical: encoding it again gives the input back. */
            g_autofree char *again = g_base64_encode(
                g_bytes_get_data(b, NULL), g_bytes_get_size(b));

            g_assert(strcmp(again, text) == 0);
        } else {
            check_error(error);
        }
    }
    (void)tvd_api_name_is_valid(text);
    return 0;
}
