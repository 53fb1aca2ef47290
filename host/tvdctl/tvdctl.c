/*
 * tvdctl main: global options, the table of command groups, and usage
 * generated from the tables (after wireguard-tools' wg.c).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvdctl"

#include "tvdctl.h"

#include <locale.h>
#include <stdio.h>
#include <string.h>

#ifndef TVD_VERSION
#define TVD_VERSION "unknown"
#endif

static const TvdctlGroup groups[] = {
    { "vm", "virtual machines and their membership", tvdctl_vm_verbs },
    { "domain", "trusted virtual domains and their policies",
      tvdctl_domain_verbs },
    { "audit", "the hash-chained audit log", tvdctl_audit_verbs },
    { "metrics", "the supervisor's Prometheus metrics",
      tvdctl_metrics_verbs },
    { "health", "whether the supervisor is up", tvdctl_health_verbs },
};

static const struct {
    int code;
    const char *meaning;
} exit_codes[] = {
    { TVDCTL_EXIT_OK, "success" },
    { TVDCTL_EXIT_USAGE, "usage error" },
    { TVDCTL_EXIT_NOT_FOUND, "no such VM, domain or resource" },
    { TVDCTL_EXIT_INVALID, "request refused as invalid" },
    { TVDCTL_EXIT_CONFLICT, "conflict: exists already or wrong state" },
    { TVDCTL_EXIT_CONNECT, "cannot connect to the supervisor" },
    { TVDCTL_EXIT_SERVER, "server error or bad answer" },
    { TVDCTL_EXIT_FORBIDDEN, "forbidden" },
    { TVDCTL_EXIT_VERIFY, "the audit log does not verify" },
    { TVDCTL_EXIT_LOCAL, "a local file or offline operation failed" },
    { TVDCTL_EXIT_UNSUPPORTED, "not built in or not implemented" },
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: tvdctl [--socket PATH | --url https://HOST:PORT "
               "--tls-cert FILE --tls-key FILE [--tls-ca FILE]]\n"
               "              COMMAND [OPTIONS] [--json]\n\n"
               "Commands:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(groups); i++) {
        for (const TvdctlVerb *v = groups[i].verbs; v->fn; v++) {
            g_autofree char *cmd =
                g_strjoin(" ", groups[i].name, v->verb ? v->verb : "", NULL);

            g_strchomp(cmd);
            fprintf(f, "  %-14s %s\n", cmd, v->summary);
            if (v->synopsis && v->synopsis[0]) {
                fprintf(f, "  %-14s   %s %s\n", "", cmd, v->synopsis);
            }
        }
    }
    fprintf(f, "\nEvery command takes --json (the API's JSON on stdout) and "
               "--socket PATH.\nThe socket defaults to $TVD_SOCKET, else "
               TVDCTL_DEFAULT_SOCKET ".\n--url (or $TVD_URL) talks to the "
               "supervisor's TCP listener with mutual TLS instead.\n\n"
               "Exit codes:\n");
    for (size_t i = 0; i < G_N_ELEMENTS(exit_codes); i++) {
        fprintf(f, "  %2d  %s\n", exit_codes[i].code, exit_codes[i].meaning);
    }
}

static void group_usage(FILE *f, const TvdctlGroup *grp)
{
    fprintf(f, "Usage: tvdctl %s VERB ... (%s)\n\nVerbs:\n", grp->name,
            grp->summary);
    for (const TvdctlVerb *v = grp->verbs; v->fn; v++) {
        fprintf(f, "  %s %s %s\n      %s\n", grp->name, v->verb ? v->verb : "",
                v->synopsis ? v->synopsis : "", v->summary);
    }
}

#if defined(__SANITIZE_ADDRESS__)
#define TVDCTL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TVDCTL_ASAN 1
#endif
#endif

/*
 * Sanitized builds only: TLS handshakes ran on GLib's pool threads, which
 * hold dynamic TLS of the dlopen()ed GnuTLS module. LeakSanitizer (clang
 * 14) crashes on such live threads at exit with glibc >= 2.35. A pool
 * thread leaves its pool half a second after its last task; with no unused
 * threads allowed it then exits. Production builds exit at once.
 */
static void quiesce_tls_threads(void)
{
#ifdef TVDCTL_ASAN
    g_thread_pool_set_max_unused_threads(0);
    g_usleep(700 * 1000);
    g_thread_pool_stop_unused_threads();
    g_usleep(50 * 1000);
#endif
}

static void global_clear(TvdctlGlobal *g)
{
    g_clear_pointer(&g->socket_path, g_free);
    g_clear_pointer(&g->url, g_free);
    g_clear_pointer(&g->cert, g_free);
    g_clear_pointer(&g->key, g_free);
    g_clear_pointer(&g->cacert, g_free);
}

/* "--name VALUE" or "--name=VALUE" at argv[*i] into *out. */
static gboolean global_string(int argc, char **argv, int *i, const char *name,
                              char **out)
{
    size_t n = strlen(name);

    if (strcmp(argv[*i], name) == 0 && *i + 1 < argc) {
        g_free(*out);
        *out = g_strdup(argv[++*i]);
        return TRUE;
    }
    if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=') {
        g_free(*out);
        *out = g_strdup(argv[*i] + n + 1);
        return TRUE;
    }
    return FALSE;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TvdctlGlobal, global_clear)

int main(int argc, char **argv)
{
    g_auto(TvdctlGlobal) g = { 0 };
    const TvdctlGroup *grp = NULL;
    const TvdctlVerb *verb = NULL;
    const char *env;
    int i = 1, rc;

    setlocale(LC_ALL, "");
    env = g_getenv("TVD_SOCKET");
    g.socket_path = g_strdup(env && env[0] ? env : TVDCTL_DEFAULT_SOCKET);
    env = g_getenv("TVD_URL");
    g.url = env && env[0] ? g_strdup(env) : NULL;

    /* Global options come before the command. */
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return TVDCTL_EXIT_OK;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("tvdctl %s (API %s)\n", TVD_VERSION, "v1");
            return TVDCTL_EXIT_OK;
        } else if (global_string(argc, argv, &i, "--socket", &g.socket_path) ||
                   global_string(argc, argv, &i, "--url", &g.url) ||
                   global_string(argc, argv, &i, "--tls-cert", &g.cert) ||
                   global_string(argc, argv, &i, "--tls-key", &g.key) ||
                   global_string(argc, argv, &i, "--tls-ca", &g.cacert)) {
            continue;
        } else {
            fprintf(stderr, "tvdctl: unknown option %s\n\n", argv[i]);
            usage(stderr);
            return TVDCTL_EXIT_USAGE;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return TVDCTL_EXIT_USAGE;
    }
    for (size_t k = 0; k < G_N_ELEMENTS(groups); k++) {
        if (strcmp(groups[k].name, argv[i]) == 0) {
            grp = &groups[k];
        }
    }
    if (!grp) {
        fprintf(stderr, "tvdctl: unknown command '%s'\n\n", argv[i]);
        usage(stderr);
        return TVDCTL_EXIT_USAGE;
    }
    if (grp->verbs[0].verb == NULL) {
        /* The group is the verb: "tvdctl audit --since 3". */
        verb = &grp->verbs[0];
    } else if (i + 1 < argc) {
        for (const TvdctlVerb *v = grp->verbs; v->fn; v++) {
            if (strcmp(v->verb, argv[i + 1]) == 0) {
                verb = v;
            }
        }
        if (!verb && (strcmp(argv[i + 1], "--help") == 0 ||
                      strcmp(argv[i + 1], "-h") == 0)) {
            group_usage(stdout, grp);
            return TVDCTL_EXIT_OK;
        }
        if (!verb) {
            fprintf(stderr, "tvdctl: unknown verb '%s %s'\n\n", grp->name,
                    argv[i + 1]);
        }
        i++;
    }
    if (!verb) {
        group_usage(stderr, grp);
        return TVDCTL_EXIT_USAGE;
    }
    rc = verb->fn(&g, argc - i, argv + i);
    if (g.url) {
        quiesce_tls_threads();
    }
    return rc;
}
