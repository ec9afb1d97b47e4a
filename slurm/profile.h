/*
 * slurm/profile.h - named site environment profiles: sets of NCCL/UCX/MPI
 * variables that suit one cluster's network, chosen by slurm.profile.
 *
 * Profiles live in one INI file, a section per profile (a name of letters,
 * digits, '_', '-' and '.', at most 64), a variable per line:
 *     [ib-hdr]
 *     NCCL_IB_HCA = mlx5
 * Found at $DURE_PROFILES when set (a site's own file), else slurm/profiles.ini
 * next to the dure build (<dir of the dure executable>/../slurm/profiles.ini).
 */
#ifndef DURE_SLURM_PROFILE_H
#define DURE_SLURM_PROFILE_H

#include <stddef.h>

#include "common/status.h"
#include "jobs/jobspec.h"

/* The profile file to use (see above) into buf. DURE_ERR_IO if not found. */
dure_status_t slurm_profiles_path(char *buf, size_t size);

/*
 * The variables of profile `name` from `file` (NULL: slurm_profiles_path())
 * in file order, into *out (owned by the caller: jobspec_env_free). An
 * unknown name is DURE_ERR_ARG, naming the file and the profiles it has.
 */
dure_status_t slurm_profile_load(const char *name, const char *file,
                                 struct jobspec_env *out);

/* The names of all profiles in `file` (NULL: default) into buf, as "a, b, c". */
dure_status_t slurm_profile_names(const char *file, char *buf, size_t size);

#endif
