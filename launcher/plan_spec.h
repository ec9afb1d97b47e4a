/*
 * launcher/plan_spec.h - the capacity plan's job (plan/plan.h) from a job
 * spec, shared by `dure plan` and `dure preflight`'s memory check.
 */
#ifndef DURE_LAUNCHER_PLAN_SPEC_H
#define DURE_LAUNCHER_PLAN_SPEC_H

#include "common/status.h"
#include "jobs/jobspec.h"
#include "plan/plan.h"

/*
 * plan_job_from_spec (plan/plan.h) for `ranks` ranks, `per_node` per node,
 * with model.channels = 0 in the spec read from data.path's first file (an
 * unreadable file fails naming the key to set instead).
 */
dure_status_t plan_job_of_spec(const struct dure_jobspec *spec, int ranks, int per_node,
                               struct plan_job *job);

#endif
