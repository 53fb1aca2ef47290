/*
 * The base policy of the policy unit tests, one member per line so that a
 * test can replace line N and know where the error must be reported.
 * Digests: PCR 0 = aa.., /usr/bin/agent = bb.., /etc/conf = cc.. or dd..,
 * allowlist = ee..
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef TVD_POLICY_TEST_BASE_H
#define TVD_POLICY_TEST_BASE_H

#include <glib.h>
#include <string.h>

#define HA "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define HB "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define HC "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
#define HD "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
#define HE "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"

/* base_lines[0] is line 1 */
static const char *const base_lines[] = {
    /*  1 */ "{",
    /*  2 */ "  \"tvd_policy\": 1,",
    /*  3 */ "  \"serial\": 7,",
    /*  4 */ "  \"domain\": { \"name\": \"blue\", \"id\": 100 },",
    /*  5 */ "  \"membership\": {",
    /*  6 */ "    \"min_agent_version\": \"1.0\",",
    /*  7 */ "    \"pcrs\": { \"0\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" },",
    /*  8 */ "    \"reference_digests\": [",
    /*  9 */ "      { \"path\": \"/usr/bin/agent\", \"sha256\": \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\", \"required\": true },",
    /* 10 */ "      { \"path\": \"/etc/conf\", \"sha256\": [\"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\", \"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\"] }",
    /* 11 */ "    ],",
    /* 12 */ "    \"ima_allowlist\": [\"eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\"],",
    /* 13 */ "    \"excludes\": [\"/tmp/**\", \"/var/*.log\"],",
    /* 14 */ "    \"unlisted\": \"deny\"",
    /* 15 */ "  },",
    /* 16 */ "  \"attestation\": { \"interval\": \"1s\", \"deadline\": \"3s\", \"on_failure\": \"quarantine\", \"measurement_pcr\": 13 },",
    /* 17 */ "  \"network\": {",
    /* 18 */ "    \"subnet\": \"10.1.0.0/24\",",
    /* 19 */ "    \"encryption\": \"wireguard\",",
    /* 20 */ "    \"roles\": [\"web\", \"db\"],",
    /* 21 */ "    \"default_role\": \"web\",",
    /* 22 */ "    \"intra_default\": \"deny\",",
    /* 23 */ "    \"rules\": [",
    /* 24 */ "      { \"from\": \"web\", \"to\": \"db\", \"protocol\": \"tcp\", \"ports\": [5432] },",
    /* 25 */ "      { \"from\": \"*\", \"to\": \"*\", \"protocol\": \"icmp\" },",
    /* 26 */ "      { \"from\": \"db\", \"to\": \"web\", \"protocol\": \"udp\", \"ports\": [\"1000-2000\", 53] }",
    /* 27 */ "    ]",
    /* 28 */ "  },",
    /* 29 */ "  \"properties\": { \"confinement\": true, \"integrity\": true, \"secure_io\": true, \"reset\": true, \"auditing\": true,",
    /* 30 */ "    \"availability\": { \"max_vcpus\": 2, \"max_memory_mib\": 1024, \"max_members_per_host\": 4 } }",
    /* 31 */ "}",
};

#define BASE_LINES G_N_ELEMENTS(base_lines)

/* The base policy with line @line (1-based; 0 = none) replaced by @text. */
static inline char *base_policy_with(guint line, const char *text)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < BASE_LINES; i++) {
        g_string_append(s, i + 1 == line ? text : base_lines[i]);
        g_string_append_c(s, '\n');
    }
    return g_string_free(s, FALSE);
}

/* 64 times @c. */
static inline char *hex64(char c)
{
    char *s = g_malloc(65);

    memset(s, c, 64);
    s[64] = '\0';
    return s;
}

#endif /* TVD_POLICY_TEST_BASE_H */
