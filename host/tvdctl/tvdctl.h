/*
 * tvdctl: the administrator's CLI of tvd-supervisor.
 *
 * A table of command groups (vm, domain, audit, metrics, health), each a
 * table of verbs in its own file; usage is generated from the tables. Every
 * verb has the same skeleton: options, inputs, call, outputs. Every verb
 * takes --json (the API's JSON document on stdout, also for errors) and
 * otherwise prints a human table. docs/tvdctl.md lists the verbs.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVDCTL_H
#define TVDCTL_H

#include <glib.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define TVDCTL_DEFAULT_SOCKET "/run/tvd/supervisor.sock"

#define TVDCTL_ERROR (tvdctl_error_quark())
GQuark tvdctl_error_quark(void);

typedef enum {
    TVDCTL_ERROR_PARSE,     /* a server answer could not be parsed */
} TvdctlError;

/* Exit codes (documented in docs/tvdctl.md and `tvdctl --help`). */
typedef enum {
    TVDCTL_EXIT_OK = 0,
    TVDCTL_EXIT_USAGE = 1,        /* bad command line */
    TVDCTL_EXIT_NOT_FOUND = 2,    /* no such VM, domain, resource (404) */
    TVDCTL_EXIT_INVALID = 3,      /* the request was refused as invalid
                                     (400, 411, 413, 415) */
    TVDCTL_EXIT_CONFLICT = 4,     /* exists already / wrong state (409) */
    TVDCTL_EXIT_CONNECT = 5,      /* cannot reach the supervisor */
    TVDCTL_EXIT_SERVER = 6,       /* server error (5xx) or bad response */
    TVDCTL_EXIT_FORBIDDEN = 7,    /* refused (403) */
    TVDCTL_EXIT_VERIFY = 8,       /* audit log does not verify */
    TVDCTL_EXIT_LOCAL = 9,        /* a local file or offline operation
                                     failed */
    TVDCTL_EXIT_UNSUPPORTED = 10, /* not built into tvdctl, or not
                                     implemented by the supervisor (501) */
} TvdctlExit;

/* Options every verb has. */
typedef struct {
    char *socket_path;
    /* TCP with mutual TLS instead of the socket: https://HOST:PORT, the
     * client certificate and key (PEM) and the CA of the server's. */
    char *url;
    char *cert;
    char *key;
    char *cacert;
    gboolean json;
} TvdctlGlobal;

typedef int (*TvdctlVerbFn)(TvdctlGlobal *g, int argc, char **argv);

typedef struct {
    const char *verb;       /* NULL: the group is the verb ("audit") */
    const char *synopsis;   /* arguments, for usage */
    const char *summary;
    TvdctlVerbFn fn;
} TvdctlVerb;

typedef struct {
    const char *name;
    const char *summary;
    const TvdctlVerb *verbs;  /* terminated by an entry with fn NULL */
} TvdctlGroup;

extern const TvdctlVerb tvdctl_vm_verbs[];
extern const TvdctlVerb tvdctl_domain_verbs[];
extern const TvdctlVerb tvdctl_audit_verbs[];
extern const TvdctlVerb tvdctl_metrics_verbs[];
extern const TvdctlVerb tvdctl_health_verbs[];

/* ---- Shared helpers (util.c) ---------------------------------------------- */

/*
 * Parses the options of one verb: @entries plus --json and --socket, with
 * "tvdctl GROUP VERB SYNOPSIS" as the usage line. Leaves the positional
 * arguments in *argc and *argv (argv[0] is the verb). FALSE after printing the
 * error and the usage.
 */
gboolean tvdctl_parse(TvdctlGlobal *g, const char *cmd, const char *synopsis,
                      const char *summary, const GOptionEntry *entries,
                      int *argc, char ***argv);

/* Prints "tvdctl: MESSAGE" to stderr and returns @code. */
int tvdctl_fail(int code, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Exit code of an HTTP status (200..299 -> OK). */
int tvdctl_exit_of_status(guint status);

/*
 * One API call over the unix socket. @body (may be NULL) is sent as JSON.
 * On a 2xx answer returns OK and *result (if non-NULL) gets the parsed
 * document (*raw the bytes). Otherwise prints the error (with --json also
 * the error document on stdout) and returns the exit code.
 */
int tvdctl_call(TvdctlGlobal *g, const char *method, const char *path,
                JsonNode *body, JsonNode **result);
/* The same for a non-JSON answer (/metrics): *text gets the body. */
int tvdctl_call_text(TvdctlGlobal *g, const char *path, GBytes **text);

/* Prints @node as compact JSON and a newline on stdout. */
void tvdctl_print_json(JsonNode *node);
/* Prints {"error": {"code": @code, "message": @message}} on stdout. */
void tvdctl_print_error_json(const char *code, const char *message);
/* Prints an object as aligned "key: value" lines. */
void tvdctl_print_object(JsonObject *obj);

typedef struct {
    const char *header;
    const char *member;
} TvdctlColumn;

/* Prints the objects of @array as a table of @columns (NULL-terminated). */
void tvdctl_print_table(JsonArray *array, const TvdctlColumn *columns);

/* A member as display text: strings as they are, other scalars printed,
 * null or absent "-", objects and arrays as compact JSON. */
char *tvdctl_member_text(JsonObject *obj, const char *member);

/* Calls @path and prints the document: --json raw, else as an object. */
int tvdctl_show(TvdctlGlobal *g, const char *method, const char *path,
                JsonNode *body);

/* "NAME" argument check: exactly one, a valid name. */
gboolean tvdctl_one_name(int argc, char **argv, const char *what,
                         const char **name);

/* ---- Prometheus text parser (prom.c), for `metrics --json` ------------- */

/*
 * Parses Prometheus text exposition (0.0.4) into
 * {"metrics": [{"name": ..., "type": ..., "help": ...,
 *               "samples": [{"name": ..., "labels": {...}, "value": ...}]}]}
 * Values that are not finite are strings ("NaN", "+Inf", "-Inf").
 * Untrusted input: never aborts; a malformed line is an error naming it.
 */
JsonNode *tvdctl_prom_parse(const char *text, gsize len, GError **error);

G_END_DECLS

#endif /* TVDCTL_H */
