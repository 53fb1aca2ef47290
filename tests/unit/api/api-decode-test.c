/*
 * The API's decoders and helpers called directly: request bodies, strict
 * base64, query integers, names, error mapping, the Prometheus writers and
 * tvdctl's Prometheus parser.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-api-test"

#include "api.h"
#include "tvdctl.h"

#include <math.h>
#include <string.h>

static void test_error_map(void)
{
    static const struct {
        int code;
        guint status;
        const char *name;
    } map[] = {
        { TVD_API_ERROR_INTERNAL, 500, "internal" },
        { TVD_API_ERROR_INVALID, 400, "invalid" },
        { TVD_API_ERROR_NOT_FOUND, 404, "not_found" },
        { TVD_API_ERROR_CONFLICT, 409, "conflict" },
        { TVD_API_ERROR_FORBIDDEN, 403, "forbidden" },
        { TVD_API_ERROR_TOO_LARGE, 413, "too_large" },
        { TVD_API_ERROR_LENGTH_REQUIRED, 411, "length_required" },
        { TVD_API_ERROR_METHOD, 405, "method_not_allowed" },
        { TVD_API_ERROR_MEDIA_TYPE, 415, "unsupported_media_type" },
        { TVD_API_ERROR_NOT_IMPLEMENTED, 501, "not_implemented" },
        { TVD_API_ERROR_UNAVAILABLE, 503, "unavailable" },
    };

    for (size_t i = 0; i < G_N_ELEMENTS(map); i++) {
        g_assert_cmpuint(tvd_api_error_http_status(map[i].code), ==,
                         map[i].status);
        g_assert_cmpstr(tvd_api_error_code_name(map[i].code), ==,
                        map[i].name);
        g_assert_cmpint(tvd_api_error_code_from_name(map[i].name), ==,
                        map[i].code);
    }
    g_assert_cmpuint(tvd_api_error_http_status(-1), ==, 500);
    g_assert_cmpuint(tvd_api_error_http_status(999), ==, 500);
    g_assert_cmpstr(tvd_api_error_code_name(999), ==, "internal");
    g_assert_cmpint(tvd_api_error_code_from_name("nope"), ==, -1);
    g_assert_cmpint(tvd_api_error_code_from_name(NULL), ==, -1);
}

static void test_names(void)
{
    g_autofree char *longest = g_strnfill(TVD_API_MAX_NAME, 'a');
    g_autofree char *too_long = g_strnfill(TVD_API_MAX_NAME + 1, 'a');

    g_assert_true(tvd_api_name_is_valid("web1"));
    g_assert_true(tvd_api_name_is_valid("a.b_c-d"));
    g_assert_true(tvd_api_name_is_valid("9"));
    g_assert_true(tvd_api_name_is_valid(longest));
    g_assert_false(tvd_api_name_is_valid(too_long));
    g_assert_false(tvd_api_name_is_valid(""));
    g_assert_false(tvd_api_name_is_valid(NULL));
    g_assert_false(tvd_api_name_is_valid(".hidden"));
    g_assert_false(tvd_api_name_is_valid("-x"));
    g_assert_false(tvd_api_name_is_valid("a/b"));
    g_assert_false(tvd_api_name_is_valid("a b"));
    g_assert_false(tvd_api_name_is_valid("é"));
}

static void test_parse_uint(void)
{
    g_autoptr(GError) error = NULL;
    guint64 v = 7;

    g_assert_true(tvd_api_parse_uint("n", "0", 10, &v, &error));
    g_assert_cmpuint(v, ==, 0);
    g_assert_true(tvd_api_parse_uint("n", "10", 10, &v, &error));
    g_assert_cmpuint(v, ==, 10);
    g_assert_true(tvd_api_parse_uint("n", "18446744073709551615",
                                     G_MAXUINT64, &v, &error));
    g_assert_cmpuint(v, ==, G_MAXUINT64);
    g_assert_no_error(error);

    for (const char *const *bad = (const char *const[]){
             "", "11", "-1", "+1", " 1", "1 ", "0x1", "1e3",
             "18446744073709551616", NULL };
         *bad; bad++) {
        guint64 max = strcmp(*bad, "18446744073709551616") == 0 ? G_MAXUINT64
                                                                : 10;

        g_assert_false(tvd_api_parse_uint("n", *bad, max, &v, &error));
        g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
        g_assert_true(g_str_has_prefix(error->message, "n: "));
        g_clear_error(&error);
    }
}

static void test_base64(void)
{
    static const struct {
        const char *text;
        const char *plain;      /* NULL: must be refused */
    } cases[] = {
        { "Zm9v", "foo" },
        { "Zm8=", "fo" },
        { "Zg==", "f" },
        { "Zm9vYmFy", "foobar" },
        { "", "" },
        { "Zm9", NULL },        /* length */
        { "Zm9v\n", NULL },     /* whitespace */
        { "Zm=v", NULL },       /* padding inside */
        { "Z===", NULL },
        { "Zh==", NULL },       /* non-canonical: bits under the padding */
        { "Zm9=", NULL },
        { "Zm9-", NULL },       /* URL alphabet */
        { "====", NULL },
    };
    g_autoptr(GError) error = NULL;

    for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(GBytes) b = tvd_api_base64_decode("f", cases[i].text, 64,
                                                    &error);

        g_test_message("base64 '%s'", cases[i].text);
        if (cases[i].plain) {
            g_assert_no_error(error);
            g_assert_cmpmem(g_bytes_get_data(b, NULL), g_bytes_get_size(b),
                            cases[i].plain, strlen(cases[i].plain));
        } else {
            g_assert_null(b);
            g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
            g_assert_true(g_str_has_prefix(error->message, "f: "));
            g_clear_error(&error);
        }
    }
    /* The cap is on decoded bytes. */
    g_assert_null(tvd_api_base64_decode("f", "Zm9vYmFy", 5, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
}

static void test_vm_spec(void)
{
    static const char good[] =
        "{\"name\":\"web1\",\"domain\":\"blue\",\"kernel\":\"/k\","
        "\"initrd\":\"/i\",\"memory\":null,\"role\":null}";
    static const char full[] =
        "{\"role\":\"db\",\"memory\":16,\"append\":\"ro\",\"initrd\":\"/i\","
        "\"kernel\":\"/k\",\"domain\":\"blue\",\"name\":\"db1\"}";
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdApiVmSpec) a = NULL;
    g_autoptr(TvdApiVmSpec) b = NULL;

    a = tvd_api_decode_vm_spec(good, strlen(good), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(a->name, ==, "web1");
    g_assert_null(a->role);
    g_assert_null(a->append);
    g_assert_cmpuint(a->memory_mib, ==, 0);

    b = tvd_api_decode_vm_spec(full, strlen(full), &error);
    g_assert_no_error(error);
    g_assert_cmpstr(b->role, ==, "db");
    g_assert_cmpstr(b->append, ==, "ro");
    g_assert_cmpuint(b->memory_mib, ==, 16);

    /* Not NUL-terminated: only @len bytes are read. */
    g_assert_null(tvd_api_decode_vm_spec(good, strlen(good) - 1, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(tvd_api_decode_vm_spec("", 0, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
}

static void test_string_caps(void)
{
    g_autofree char *path = g_strnfill(TVD_API_MAX_PATH, 'k');
    g_autofree char *body = NULL;
    g_autoptr(GError) error = NULL;
    TvdApiVmSpec *spec;

    path[0] = '/';
    body = g_strdup_printf("{\"name\":\"a\",\"domain\":\"b\",\"kernel\":"
                           "\"%s\",\"initrd\":\"/i\"}", path);
    spec = tvd_api_decode_vm_spec(body, strlen(body), &error);
    g_assert_no_error(error);
    tvd_api_vm_spec_free(spec);
    g_free(body);
    body = g_strdup_printf("{\"name\":\"a\",\"domain\":\"b\",\"kernel\":"
                           "\"%sk\",\"initrd\":\"/i\"}", path);
    g_assert_null(tvd_api_decode_vm_spec(body, strlen(body), &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    g_assert_true(g_str_has_prefix(error->message, "kernel: longer than"));
}

static void test_domain_spec(void)
{
    static const char body[] =
        "{\"name\":\"blue\",\"policy\":\"e30=\",\"signature\":\"c2ln\"}";
    static const char nameless[] = "{\"policy\":\"e30=\",\"signature\":\"c2ln\"}";
    g_autoptr(GError) error = NULL;
    g_autoptr(TvdApiDomainSpec) s = NULL;
    g_autoptr(TvdApiDomainSpec) u = NULL;

    s = tvd_api_decode_domain_spec(body, strlen(body), TRUE, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(s->name, ==, "blue");
    g_assert_cmpmem(g_bytes_get_data(s->policy, NULL),
                    g_bytes_get_size(s->policy), "{}", 2);
    g_assert_cmpmem(g_bytes_get_data(s->signature, NULL),
                    g_bytes_get_size(s->signature), "sig", 3);

    u = tvd_api_decode_domain_spec(nameless, strlen(nameless), FALSE, &error);
    g_assert_no_error(error);
    g_assert_null(u->name);
    g_assert_null(tvd_api_decode_domain_spec(nameless, strlen(nameless), TRUE,
                                             &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    g_assert_true(g_str_has_prefix(error->message, "name: required"));
}

static void test_revoke(void)
{
    g_autoptr(GError) error = NULL;
    char *reason = (char *)"x";

    g_assert_true(tvd_api_decode_revoke("", 0, &reason, &error));
    g_assert_null(reason);
    g_assert_true(tvd_api_decode_revoke("{}", 2, &reason, &error));
    g_assert_null(reason);
    g_assert_true(tvd_api_decode_revoke("{\"reason\":\"r\"}", 14, &reason,
                                        &error));
    g_assert_cmpstr(reason, ==, "r");
    g_free(reason);
    g_assert_false(tvd_api_decode_revoke("[]", 2, &reason, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
}

static void test_register_ek(void)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) cert = NULL;
    const char *good = "{\"ek_cert\":\"MAEC\"}";

    cert = tvd_api_decode_register_ek(good, strlen(good), &error);
    g_assert_no_error(error);
    g_assert_cmpmem(g_bytes_get_data(cert, NULL), g_bytes_get_size(cert),
                    "\x30\x01\x02", 3);
    g_assert_null(tvd_api_decode_register_ek("{}", 2, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(tvd_api_decode_register_ek("{\"ek_cert\":\"MAE\"}", 15,
                                             &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_null(tvd_api_decode_register_ek(
        "{\"ek_cert\":\"MAEC\",\"x\":1}", 22, &error));
    g_assert_error(error, TVD_API_ERROR, TVD_API_ERROR_INVALID);
}

static void test_prom_writer(void)
{
    g_autoptr(GString) out = g_string_new(NULL);
    static const double bounds[] = { 0.1, 1 };
    const char *labels[] = { "a", "x\"y", "b", "1\\2\n", NULL };
    const char *hl[] = { "kind", "rsa", NULL };
    TvdPromHistogram h;

    tvd_prom_family(out, "m", "counter", "help\\me\nplease");
    tvd_prom_sample(out, "m", NULL, 0.1);
    tvd_prom_sample(out, "m", labels, 3);
    tvd_prom_sample(out, "m", NULL, NAN);
    tvd_prom_sample(out, "m", NULL, -INFINITY);
    tvd_prom_sample(out, "m", NULL, 1e21);
    tvd_prom_histogram_init(&h, bounds, G_N_ELEMENTS(bounds));
    tvd_prom_histogram_observe(&h, 0.1);    /* le is inclusive */
    tvd_prom_histogram_observe(&h, 0.5);
    tvd_prom_histogram_observe(&h, 7);
    tvd_prom_histogram_write(&h, out, "h", hl);
    g_assert_cmpstr(out->str, ==,
                    "# HELP m help\\\\me\\nplease\n"
                    "# TYPE m counter\n"
                    "m 0.1\n"
                    "m{a=\"x\\\"y\",b=\"1\\\\2\\n\"} 3\n"
                    "m NaN\n"
                    "m -Inf\n"
                    "m 1e+21\n"
                    "h_bucket{kind=\"rsa\",le=\"0.1\"} 1\n"
                    "h_bucket{kind=\"rsa\",le=\"1\"} 2\n"
                    "h_bucket{kind=\"rsa\",le=\"+Inf\"} 3\n"
                    "h_sum{kind=\"rsa\"} 7.6\n"
                    "h_count{kind=\"rsa\"} 3\n");
}

static void test_prom_parser(void)
{
    static const char text[] =
        "# HELP a_total Things.\\nMore.\n"
        "# TYPE a_total counter\n"
        "a_total{x=\"1\",y=\"q\\\"\\\\\\n\"} 5 1700000000000\n"
        "\n"
        "# a plain comment\n"
        "# TYPE h histogram\n"
        "h_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1.5\n"
        "h_count 2\n"
        "loose{} NaN\n"
        "  spaced   7  \n";
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) doc = tvdctl_prom_parse(text, strlen(text), &error);
    JsonArray *fams;
    JsonObject *a, *s0, *labels;

    g_assert_no_error(error);
    fams = json_object_get_array_member(json_node_get_object(doc), "metrics");
    g_assert_cmpuint(json_array_get_length(fams), ==, 4);
    a = json_array_get_object_element(fams, 0);
    g_assert_cmpstr(json_object_get_string_member(a, "help"), ==,
                    "Things.\nMore.");
    s0 = json_array_get_object_element(
        json_object_get_array_member(a, "samples"), 0);
    labels = json_object_get_object_member(s0, "labels");
    g_assert_cmpstr(json_object_get_string_member(labels, "y"), ==,
                    "q\"\\\n");
    g_assert_cmpint(json_object_get_int_member(s0, "timestamp"), ==,
                    1700000000000);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(
                         json_array_get_object_element(fams, 1), "samples")),
                     ==, 3);
    s0 = json_array_get_object_element(json_object_get_array_member(
        json_array_get_object_element(fams, 2), "samples"), 0);
    g_assert_cmpstr(json_object_get_string_member(s0, "value"), ==, "NaN");

    for (const char *const *bad = (const char *const[]){
             "9bad 1\n", "m{x=1} 2\n", "m{x=\"1} 2\n", "m{x=\"\\q\"} 2\n",
             "m 1 2 3\n", "m one\n", "m\n", "m{x=\"1\",x=\"2\"} 1\n",
             "# TYPE m sideways\n", "m 1 12x\n", "m{x=\"1\"y=\"2\"} 1\n",
             NULL };
         *bad; bad++) {
        g_autoptr(JsonNode) n = tvdctl_prom_parse(*bad, strlen(*bad), &error);

        g_test_message("bad: %s", *bad);
        g_assert_null(n);
        g_assert_error(error, TVDCTL_ERROR, TVDCTL_ERROR_PARSE);
        g_assert_true(g_str_has_prefix(error->message, "metrics line 1: "));
        g_clear_error(&error);
    }
    g_assert_null(tvdctl_prom_parse("m 1\0", 4, &error));
    g_assert_error(error, TVDCTL_ERROR, TVDCTL_ERROR_PARSE);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/api/decode/error-map", test_error_map);
    g_test_add_func("/api/decode/names", test_names);
    g_test_add_func("/api/decode/parse-uint", test_parse_uint);
    g_test_add_func("/api/decode/base64", test_base64);
    g_test_add_func("/api/decode/vm-spec", test_vm_spec);
    g_test_add_func("/api/decode/register-ek", test_register_ek);
    g_test_add_func("/api/decode/string-caps", test_string_caps);
    g_test_add_func("/api/decode/domain-spec", test_domain_spec);
    g_test_add_func("/api/decode/revoke", test_revoke);
    g_test_add_func("/api/prom/writer", test_prom_writer);
    g_test_add_func("/api/prom/parser", test_prom_parser);
    return g_test_run();
}
