/*
 * The supervisor's metrics: VMs by state, verdicts, failures by reason,
 * verdict latency, launches that failed; written in the Prometheus text
 * exposition.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#define G_LOG_DOMAIN "tvd-supervisor"

#include "supervisor-private.h"

void tvd_metrics_init(TvdSupervisor *sup)
{
    static const double bounds[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                     0.5, 1, 2.5, 5, 10 };

    tvd_prom_histogram_init(&sup->latency, bounds, G_N_ELEMENTS(bounds));
}

void tvd_metrics_verdict(TvdVm *vm, const TvdVerdict *v)
{
    const TvdAdmissionStats *st = tvd_admission_stats(vm->adm);

    vm->sup->verdicts++;
    if (st->last_round_us > 0) {
        tvd_prom_histogram_observe(&vm->sup->latency,
                                   st->last_round_us / 1e6);
    }
    if (v->state != TVD_STATE_ADMITTED && (guint)v->cause < TVD_CAUSE_COUNT_) {
        vm->sup->failures[v->cause]++;
    }
}

void tvd_metrics_launch_failure(TvdSupervisor *sup, TvdCause cause)
{
    if (cause == TVD_CAUSE_NO_DEVICE_HELLO) {
        sup->no_device_hello++;
    }
}

void tvd_supervisor_metrics(TvdSupervisor *sup, GString *out)
{
    guint by_state[TVD_STATE_MAX + 1] = { 0 };
    guint connected = 0;
    guint running = 0;
    guint64 rounds = 0;
    GHashTableIter it;
    TvdVm *vm;

    g_hash_table_iter_init(&it, sup->vms);
    while (g_hash_table_iter_next(&it, NULL, (gpointer *)&vm)) {
        const TvdAdmissionStats *st = tvd_admission_stats(vm->adm);

        if (vm->state <= TVD_STATE_MAX) {
            by_state[vm->state]++;
        }
        connected += tvd_vm_connected(vm);
        running += vm->running;
        rounds += st->rounds;
    }
    tvd_prom_family(out, "tvd_members", "gauge", "VMs by membership state");
    for (guint s = TVD_STATE_PENDING; s <= TVD_STATE_MAX; s++) {
        const char *labels[] = { "state", tvd_state_name(s), NULL };

        tvd_prom_sample(out, "tvd_members", labels, by_state[s]);
    }
    tvd_prom_family(out, "tvd_vms_running", "gauge", "VMs whose QEMU runs");
    tvd_prom_sample(out, "tvd_vms_running", NULL, running);
    tvd_prom_family(out, "tvd_devices_connected", "gauge",
                    "tvd devices connected to this supervisor");
    tvd_prom_sample(out, "tvd_devices_connected", NULL, connected);
    tvd_prom_family(out, "tvd_attestations_total", "counter",
                    "evidence rounds verified");
    tvd_prom_sample(out, "tvd_attestations_total", NULL, rounds);
    tvd_prom_family(out, "tvd_attestation_failures_total", "counter",
                    "rounds that ended in a rejection, by cause");
    for (guint c = 0; c < TVD_CAUSE_COUNT_; c++) {
        const char *labels[] = { "reason", tvd_cause_name(c), NULL };

        if (sup->failures[c]) {
            tvd_prom_sample(out, "tvd_attestation_failures_total", labels,
                            sup->failures[c]);
        }
    }
    tvd_prom_family(out, "tvd_vm_launch_failures_total", "counter",
                    "launched VMs that failed before any verdict, by reason");
    {
        const char *labels[] = {
            "reason", tvd_cause_name(TVD_CAUSE_NO_DEVICE_HELLO), NULL
        };

        tvd_prom_sample(out, "tvd_vm_launch_failures_total", labels,
                        sup->no_device_hello);
    }
    tvd_prom_family(out, "tvd_verdict_seconds", "histogram",
                    "time from attestation request (or agent hello) to "
                    "verdict");
    tvd_prom_histogram_write(&sup->latency, out, "tvd_verdict_seconds", NULL);
}
