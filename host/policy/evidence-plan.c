/*
 * tvd domain policy: what evidence a round must request and verify, from
 * the policy's requirements (membership.evidence, pcrs, boot_aggregate
 * references). See policy.h and docs/policy.md, "Required evidence".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-policy"

#include "policy.h"

#include <string.h>

void tvd_policy_evidence_plan(const TvdPolicy *policy, gboolean offers_ima,
                              gboolean offers_agent_list,
                              TvdPolicyEvidencePlan *out)
{
    const TvdPolicyData *d = policy ? tvd_policy_data(policy) : NULL;
    TvdPolicyEvidenceNeed ima = d ? d->ima : TVD_POLICY_EVIDENCE_OPTIONAL;
    TvdPolicyEvidenceNeed list = d ? d->agent_list
                                   : TVD_POLICY_EVIDENCE_REQUIRED;

    memset(out, 0, sizeof(*out));
    out->pcr_bank = d ? d->pcr_bank : TVD_POLICY_BANK_SHA256;
    out->agent_pcr = d ? d->measurement_pcr
                       : TVD_POLICY_MEASUREMENT_PCR_DEFAULT;
    out->ima_required = ima == TVD_POLICY_EVIDENCE_REQUIRED;
    out->ima = out->ima_required || offers_ima;
    out->agent_list_required = list == TVD_POLICY_EVIDENCE_REQUIRED;
    out->agent_list = out->agent_list_required || offers_agent_list;
    out->boot_aggregate = d && d->boot_aggregate_referenced;
    out->ima_violations_allowed = d && d->ima_violations_allowed;

    out->pcr_select = d ? d->pcr_mask : 0;
    if (out->ima) {
        out->pcr_select |= 1u << TVD_POLICY_IMA_PCR;
    }
    if (out->agent_list) {
        out->pcr_select |= 1u << out->agent_pcr;
    }
    if (out->boot_aggregate) {
        out->pcr_select |= 0x3ffu;              /* PCR 0..9 */
    }
    /* A quote over nothing proves nothing: at least the agent's PCR. */
    if (!out->pcr_select) {
        out->pcr_select = 1u << out->agent_pcr;
    }
}
