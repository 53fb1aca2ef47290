/*
 * tvd supervisor API: the versioned REST/JSON API (libsoup-3, json-glib)
 * that tvdctl and other tools use, and the Prometheus /metrics endpoint.
 *
 * This library owns HTTP: listening (unix socket, optional TCP with mutual
 * TLS), routing, body limits, JSON decoding and type checks of every
 * request field, error mapping and the access log. The supervisor core owns
 * the operations: it fills in a TvdApiBackend vtable and the server calls
 * it with requests that are already decoded and checked.
 *
 * Contract for the backend functions:
 *  - they run on the main context the server was started on, synchronously;
 *  - on success they return TRUE and write exactly one complete JSON value
 *    (the response document, an object) into @out; the shapes are fixed
 *    in docs/api.md, which is the contract with tvdctl;
 *  - on failure they return FALSE with a GError. Errors in TVD_API_ERROR
 *    map to HTTP statuses (see TvdApiError); errors of any other domain
 *    are answered 500 "internal" with their message;
 *  - a NULL function pointer is answered 501 "not_implemented".
 *
 * Routes (all under /v1 except /metrics; docs/api.md has examples):
 *   GET  /v1/health                      health
 *   GET  /v1/vms                         vm_list
 *   POST /v1/vms              (VmSpec)   vm_start           -> 201
 *   GET  /v1/vms/NAME                    vm_show
 *   POST /v1/vms/NAME/stop               vm_stop
 *   POST /v1/vms/NAME/revoke  (Revoke)   vm_revoke
 *   POST /v1/vms/NAME/readmit            vm_readmit
 *   POST /v1/vms/NAME/ek                 vm_register_ek
 *   GET  /v1/domains                     domain_list
 *   POST /v1/domains          (Domain)   domain_create      -> 201
 *   GET  /v1/domains/NAME                domain_show
 *   PUT  /v1/domains/NAME     (Domain)   domain_update
 *   GET  /v1/audit?since=N&limit=M       audit_list
 *   GET  /v1/audit/verify                audit_verify
 *   GET  /metrics                        metrics (text format 0.0.4)
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_API_H
#define TVD_API_H

#include <stdint.h>
#include <gio/gio.h>
#include <json-glib/json-glib.h>

G_BEGIN_DECLS

#define TVD_API_VERSION "v1"

/* ---- Errors -------------------------------------------------------------- */

#define TVD_API_ERROR (tvd_api_error_quark())
GQuark tvd_api_error_quark(void);

/*
 * The error domain of the API and of its backends. Each code has an HTTP
 * status and a stable string for the JSON error body
 * {"error": {"code": "<string>", "message": "..."}}.
 */
typedef enum {
    TVD_API_ERROR_INTERNAL,         /* 500 "internal" */
    TVD_API_ERROR_INVALID,          /* 400 "invalid": bad request/field */
    TVD_API_ERROR_NOT_FOUND,        /* 404 "not_found" */
    TVD_API_ERROR_CONFLICT,         /* 409 "conflict": exists / wrong state */
    TVD_API_ERROR_FORBIDDEN,        /* 403 "forbidden" */
    TVD_API_ERROR_TOO_LARGE,        /* 413 "too_large": body over the cap */
    TVD_API_ERROR_LENGTH_REQUIRED,  /* 411 "length_required" */
    TVD_API_ERROR_METHOD,           /* 405 "method_not_allowed" */
    TVD_API_ERROR_MEDIA_TYPE,       /* 415 "unsupported_media_type" */
    TVD_API_ERROR_NOT_IMPLEMENTED,  /* 501 "not_implemented" */
    TVD_API_ERROR_UNAVAILABLE,      /* 503 "unavailable": try again later */
} TvdApiError;

/* HTTP status of @code (500 for codes out of range). */
guint tvd_api_error_http_status(int code);
/* Stable string of @code ("internal" for codes out of range). */
const char *tvd_api_error_code_name(int code);
/* The TvdApiError whose string is @name, -1 when unknown. */
int tvd_api_error_code_from_name(const char *name);

/* ---- Limits -------------------------------------------------------------- */

#define TVD_API_MAX_BODY            (1024u * 1024u) /* default body cap */
#define TVD_API_MAX_NAME            64u     /* VM, domain and role names */
#define TVD_API_MAX_PATH            4096u   /* kernel, initrd */
#define TVD_API_MAX_APPEND          4096u   /* kernel command line */
#define TVD_API_MAX_REASON          512u    /* revoke reason */
#define TVD_API_MIN_MEMORY_MIB      16u
#define TVD_API_MAX_MEMORY_MIB      (1024u * 1024u)
/* A policy may hold a large IMA allowlist: the policy library's own cap
 * (TVD_POLICY_MAX_BYTES) applies, and the domain routes accept bodies up to
 * TVD_API_MAX_DOMAIN_BODY whatever the configured cap. */
#define TVD_API_MAX_POLICY          (8u * 1024u * 1024u)    /* decoded bytes */
#define TVD_API_MAX_SIGNATURE       (16u * 1024u)           /* decoded bytes */
#define TVD_API_MAX_EK_CERT         4096u                   /* decoded bytes */
#define TVD_API_MAX_DOMAIN_BODY     (12u * 1024u * 1024u)
#define TVD_API_AUDIT_DEFAULT_LIMIT 100u
#define TVD_API_AUDIT_MAX_LIMIT     1000u

/* ---- Decoded requests ------------------------------------------------------ */

/*
 * POST /v1/vms. Strings are UTF-8; kernel and initrd are absolute paths on
 * the supervisor's host. Optional fields are NULL / 0 when absent.
 */
typedef struct {
    char *name;         /* required, a name (see tvd_api_name_is_valid) */
    char *domain;       /* required, a name */
    char *kernel;       /* required, absolute path */
    char *initrd;       /* required, absolute path */
    char *append;       /* optional kernel command line */
    guint64 memory_mib; /* optional, 0 = the supervisor's default */
    char *role;         /* optional, a name */
} TvdApiVmSpec;

/* POST /v1/domains and PUT /v1/domains/NAME. */
typedef struct {
    char *name;         /* required for create; optional for update, must
                           then equal the NAME of the URL */
    GBytes *policy;     /* the policy file's exact bytes (JSON, base64 on
                           the wire) */
    GBytes *signature;  /* the detached signature's bytes (base64) */
} TvdApiDomainSpec;

void tvd_api_vm_spec_free(TvdApiVmSpec *spec);
void tvd_api_domain_spec_free(TvdApiDomainSpec *spec);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdApiVmSpec, tvd_api_vm_spec_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdApiDomainSpec, tvd_api_domain_spec_free)

/*
 * Request decoders. They take untrusted bytes (any length, not
 * NUL-terminated, possibly not UTF-8), never abort, reject unknown members
 * and answer TVD_API_ERROR_INVALID with a message that starts with the
 * offending field's name ("memory: must be an integer").
 */
TvdApiVmSpec *tvd_api_decode_vm_spec(const void *data, size_t len,
                                     GError **error);
TvdApiDomainSpec *tvd_api_decode_domain_spec(const void *data, size_t len,
                                             gboolean require_name,
                                             GError **error);
/* Body of POST .../revoke: {"reason": "..."} or empty; *reason NULL if none. */
/* Body {"ek_cert": base64 of a DER certificate} of POST .../ek. */
GBytes *tvd_api_decode_register_ek(const void *data, size_t len,
                                   GError **error);
gboolean tvd_api_decode_revoke(const void *data, size_t len, char **reason,
                               GError **error);
/* An unsigned decimal query parameter: digits only, no sign, <= @max. */
gboolean tvd_api_parse_uint(const char *field, const char *text, guint64 max,
                            guint64 *out, GError **error);

/* [A-Za-z0-9][A-Za-z0-9._-]{0,63}: VM, domain and role names. */
gboolean tvd_api_name_is_valid(const char *name);

/* Strict RFC 4648 base64 (padding required, no whitespace), up to @max
 * decoded bytes. */
GBytes *tvd_api_base64_decode(const char *field, const char *text,
                              size_t max, GError **error);

/* ---- Backend --------------------------------------------------------------- */

typedef struct {
    gboolean (*health)(void *ctx, JsonBuilder *out, GError **error);

    gboolean (*vm_list)(void *ctx, JsonBuilder *out, GError **error);
    gboolean (*vm_show)(void *ctx, const char *name, JsonBuilder *out,
                        GError **error);
    gboolean (*vm_start)(void *ctx, const TvdApiVmSpec *spec,
                         JsonBuilder *out, GError **error);
    gboolean (*vm_stop)(void *ctx, const char *name, JsonBuilder *out,
                        GError **error);
    /* @reason may be NULL (none given). */
    gboolean (*vm_revoke)(void *ctx, const char *name, const char *reason,
                          JsonBuilder *out, GError **error);
    gboolean (*vm_readmit)(void *ctx, const char *name, JsonBuilder *out,
                           GError **error);

    gboolean (*domain_create)(void *ctx, const TvdApiDomainSpec *spec,
                              JsonBuilder *out, GError **error);
    gboolean (*domain_list)(void *ctx, JsonBuilder *out, GError **error);
    gboolean (*domain_show)(void *ctx, const char *name, JsonBuilder *out,
                            GError **error);
    gboolean (*domain_update)(void *ctx, const char *name,
                              const TvdApiDomainSpec *spec,
                              JsonBuilder *out, GError **error);

    /* Entries with seq >= @since, at most @limit (1..AUDIT_MAX_LIMIT). */
    gboolean (*audit_list)(void *ctx, guint64 since, guint limit,
                           JsonBuilder *out, GError **error);
    gboolean (*audit_verify)(void *ctx, JsonBuilder *out, GError **error);

    /* Appends Prometheus text exposition (format 0.0.4) to @out; the API
     * server appends its own tvd_api_* families after it. */
    gboolean (*metrics)(void *ctx, GString *out, GError **error);

    /* Binds an adopted VM to the EK of @ek_cert (DER). */
    gboolean (*vm_register_ek)(void *ctx, const char *name, GBytes *ek_cert,
                               JsonBuilder *out, GError **error);
} TvdApiBackend;

/* ---- Server ------------------------------------------------------------------ */

typedef struct {
    /* Unix socket path (required). Its parent directory is created 0750
     * when missing; the socket is 0660; a stale socket at the path is
     * replaced, any other file there is an error. */
    const char *socket_path;

    /* Optional TCP listener with mutual TLS: all three or none. Client
     * certificates are requested and required; a client whose certificate
     * does not chain to @tls_client_ca is refused during the handshake. */
    GInetSocketAddress *tcp_address;    /* port 0 = any free port */
    GTlsCertificate *tls_certificate;   /* server cert + private key */
    GTlsDatabase *tls_client_ca;        /* CA(s) for client certs */

    size_t max_body;                    /* 0 = TVD_API_MAX_BODY; the domain
                                           routes allow at least
                                           TVD_API_MAX_DOMAIN_BODY */
} TvdApiServerConfig;

typedef struct TvdApiServer TvdApiServer;

/*
 * Creates the server, binds and starts listening on the thread-default main
 * context. @backend must outlive the server; @ctx is passed to every call.
 */
TvdApiServer *tvd_api_server_new(const TvdApiServerConfig *config,
                                 const TvdApiBackend *backend, void *ctx,
                                 GError **error);
/* Stops listening, unlinks the socket and frees. NULL is fine. */
void tvd_api_server_free(TvdApiServer *server);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TvdApiServer, tvd_api_server_free)

/* The bound TCP port (after port 0), 0 without TCP. */
guint16 tvd_api_server_get_tcp_port(TvdApiServer *server);

/* ---- Prometheus text exposition helpers (for the backend's metrics) -------- */

/* "# HELP name help\n# TYPE name type\n"; help is escaped. */
void tvd_prom_family(GString *out, const char *name, const char *type,
                     const char *help);
/*
 * One sample line: name{k1="v1",k2="v2"} value\n. @labels is a
 * NULL-terminated array of alternating keys and values (NULL = no labels);
 * values are escaped (backslash, double quote, newline).
 */
void tvd_prom_sample(GString *out, const char *name,
                     const char *const *labels, double value);

/*
 * A histogram with fixed upper bounds (seconds, ascending), e.g. for
 * latencies. tvd_prom_histogram_write() emits the _bucket (cumulative, with
 * le="+Inf"), _sum and _count lines; the family header is the caller's.
 */
#define TVD_PROM_MAX_BUCKETS 16
typedef struct {
    double bounds[TVD_PROM_MAX_BUCKETS];
    guint64 counts[TVD_PROM_MAX_BUCKETS + 1]; /* last: above every bound */
    guint n_bounds;
    double sum;
    guint64 count;
} TvdPromHistogram;

void tvd_prom_histogram_init(TvdPromHistogram *h, const double *bounds,
                             guint n_bounds);
void tvd_prom_histogram_observe(TvdPromHistogram *h, double value);
void tvd_prom_histogram_write(const TvdPromHistogram *h, GString *out,
                              const char *name, const char *const *labels);

G_END_DECLS

#endif /* TVD_API_H */
