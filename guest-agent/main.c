/*
 * tvd-agent: proves the guest's state to the host's tvd-supervisor through
 * the tvd device and the guest's TPM.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-agent"

#include <locale.h>
#include <stdio.h>

#include "agent.h"

#define DEFAULT_CONFIG  "/etc/tvd/agent.conf"

static gboolean load_config(const char *path, TvdAgentConfig *cfg,
                            gboolean required, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) err = NULL;
    char *s;

    if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, &err)) {
        if (!required && g_error_matches(err, G_FILE_ERROR,
                                         G_FILE_ERROR_NOENT)) {
            return TRUE;
        }
        g_propagate_prefixed_error(error, g_steal_pointer(&err), "%s: ", path);
        return FALSE;
    }
#define TAKE(key, field)                                                  \
    if ((s = g_key_file_get_string(kf, "agent", key, NULL))) {            \
        g_free(cfg->field);                                               \
        cfg->field = s;                                                   \
    }
    TAKE("device", device);
    TAKE("tcti", tcti);
    TAKE("ek", ek_alg);
    TAKE("ak", ak_alg);
    TAKE("hook", hook);
    TAKE("state_dir", state_dir);
    TAKE("ima_log", ima_log);
#undef TAKE
    if (g_key_file_has_key(kf, "agent", "pcr", NULL)) {
        cfg->pcr = g_key_file_get_integer(kf, "agent", "pcr", NULL);
    }
    if (g_key_file_has_key(kf, "agent", "poll_ms", NULL)) {
        cfg->poll_ms = g_key_file_get_integer(kf, "agent", "poll_ms", NULL);
    }
    if (g_key_file_has_key(kf, "agent", "measure", NULL)) {
        g_strfreev(cfg->measure);
        cfg->measure = g_key_file_get_string_list(kf, "agent", "measure",
                                                  NULL, NULL);
    }
    return TRUE;
}

int main(int argc, char **argv)
{
    TvdAgentConfig cfg = {
        .sysfs_root = g_strdup("/sys"),
        .ek_alg = g_strdup("rsa"),
        .ak_alg = g_strdup("rsa"),
        .pcr = 13,
        .state_dir = g_strdup("/run/tvd-agent"),
        .ima_log = g_strdup("/sys/kernel/security/ima/"
                            "binary_runtime_measurements"),
        .poll_ms = 20,
    };
    g_autofree char *config = NULL;
    g_auto(GStrv) measure = NULL;
    g_autofree char *device = NULL;
    g_autofree char *tcti = NULL;
    g_autofree char *hook = NULL;
    g_autofree char *ak = NULL;
    g_autofree char *ek = NULL;
    gint pcr = -1;
    gboolean once = FALSE;
    gboolean no_uio = FALSE;
    gboolean verbose = FALSE;
    GOptionEntry entries[] = {
        { "config", 'c', 0, G_OPTION_ARG_FILENAME, &config,
          "configuration file (default " DEFAULT_CONFIG " if present)",
          "FILE" },
        { "device", 'd', 0, G_OPTION_ARG_STRING, &device,
          "PCI address of the tvd device (default: find it)", "ADDR" },
        { "tcti", 't', 0, G_OPTION_ARG_STRING, &tcti,
          "TPM TCTI (default device:/dev/tpmrm0)", "TCTI" },
        { "ek", 0, 0, G_OPTION_ARG_STRING, &ek, "EK type: rsa or ecc", "ALG" },
        { "ak", 0, 0, G_OPTION_ARG_STRING, &ak, "AK type: rsa or ecc", "ALG" },
        { "pcr", 'p', 0, G_OPTION_ARG_INT, &pcr,
          "PCR of the agent's own list (default 13)", "N" },
        { "measure", 'm', 0, G_OPTION_ARG_FILENAME_ARRAY, &measure,
          "file or directory to measure (repeatable)", "PATH" },
        { "hook", 0, 0, G_OPTION_ARG_STRING, &hook,
          "command run on membership changes (TVD_STATE, TVD_REASON set)",
          "CMD" },
        { "no-uio", 0, 0, G_OPTION_ARG_NONE, &no_uio,
          "poll the registers instead of binding uio_pci_generic", NULL },
        { "once", '1', 0, G_OPTION_ARG_NONE, &once,
          "one attestation round; print what was sent; exit 0 if admitted",
          NULL },
        { "verbose", 'v', 0, G_OPTION_ARG_NONE, &verbose, "debug messages",
          NULL },
        G_OPTION_ENTRY_NULL
    };
    g_autoptr(GOptionContext) ctx = g_option_context_new(
        "- the tvd guest agent");
    g_autoptr(GError) err = NULL;
    int rc;

    setlocale(LC_ALL, "");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &err)) {
        fprintf(stderr, "tvd-agent: %s\n", err->message);
        return 2;
    }
    if (verbose) {
        g_setenv("G_MESSAGES_DEBUG", "all", TRUE);
    }
    if (!load_config(config ? config : DEFAULT_CONFIG, &cfg, config != NULL,
                     &err)) {
        fprintf(stderr, "tvd-agent: %s\n", err->message);
        return 2;
    }
    /* The command line wins over the file. */
    if (device) {
        g_free(cfg.device);
        cfg.device = g_steal_pointer(&device);
    }
    if (tcti) {
        g_free(cfg.tcti);
        cfg.tcti = g_steal_pointer(&tcti);
    }
    if (ek) {
        g_free(cfg.ek_alg);
        cfg.ek_alg = g_steal_pointer(&ek);
    }
    if (ak) {
        g_free(cfg.ak_alg);
        cfg.ak_alg = g_steal_pointer(&ak);
    }
    if (hook) {
        g_free(cfg.hook);
        cfg.hook = g_steal_pointer(&hook);
    }
    if (measure) {
        g_strfreev(cfg.measure);
        cfg.measure = g_steal_pointer(&measure);
    }
    if (pcr >= 0) {
        cfg.pcr = pcr;
    }
    cfg.once = once;
    cfg.no_uio = no_uio;
    if (cfg.pcr < 11 || cfg.pcr > 15) {
        fprintf(stderr, "tvd-agent: the agent's PCR must be 11..15 (not "
                "resettable, not used by firmware or IMA)\n");
        return 2;
    }
    rc = tvd_agent_run(&cfg);
    g_free(cfg.sysfs_root);
    g_free(cfg.device);
    g_free(cfg.tcti);
    g_free(cfg.ek_alg);
    g_free(cfg.ak_alg);
    g_free(cfg.hook);
    g_free(cfg.state_dir);
    g_free(cfg.ima_log);
    g_strfreev(cfg.measure);
    return rc;
}
