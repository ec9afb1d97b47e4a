/*
 * jobs/jobspec_priv.h - what the job-spec files share among themselves:
 * value conversion per key type, provenance of each value, canonical text.
 * Not for use outside jobs/.
 */
#ifndef DURE_JOBS_JOBSPEC_PRIV_H
#define DURE_JOBS_JOBSPEC_PRIV_H

#include "jobs/jobspec.h"
#include "common/strbuf.h"

/* Where a key's current value came from. */
enum jobspec_src {
    JOBSPEC_SRC_UNSET,   /* required and not given (yet) */
    JOBSPEC_SRC_DEFAULT, /* the table's default */
    JOBSPEC_SRC_DERIVED, /* computed from other keys (run.dir, ...) */
    JOBSPEC_SRC_FILE,    /* the spec file, at .line */
    JOBSPEC_SRC_SET,     /* a --set override or jobspec_set() */
    JOBSPEC_SRC_SWEEP,   /* a [sweep] task's value */
};

struct jobspec_origin {
    enum jobspec_src src;
    int line; /* JOBSPEC_SRC_FILE: 1-based line in spec->origin */
};

struct jobspec_state {
    size_t nkeys;
    struct jobspec_origin key[]; /* (nkeys), indexed like jobspec_keys() */
};

/* Storage big enough for any key type's field (sweep values are checked in one). */
union jobspec_scratch {
    int i;
    uint64_t u;
    double d;
    bool b;
    char *s;
    struct jobspec_list l;
};

/* Index of `key` in the table. */
size_t jobspec_key_index(const struct jobspec_key *key);

/* The field `key` fills in `spec`. */
void *jobspec_field(struct dure_jobspec *spec, const struct jobspec_key *key);
const void *jobspec_field_const(const struct dure_jobspec *spec,
                                const struct jobspec_key *key);

/*
 * Convert `text` (already trimmed) for `key` and store it in `field`,
 * releasing what the field held. Checks type, bounds, allowed values,
 * characters and the key's check function. `where` prefixes messages.
 * On failure the field is unchanged.
 */
dure_status_t jobspec_value_parse(const struct jobspec_key *key, const char *text,
                                  const char *where, void *field);

/* Free what a STRING or LIST field owns and zero it; other types: no-op. */
void jobspec_value_release(const struct jobspec_key *key, void *field);

/* Deep-copy a field's value from `src` to `dst` (dst must be released). */
dure_status_t jobspec_value_copy(const struct jobspec_key *key, const void *src,
                                 void *dst);

/* Append the canonical text of a field's value (what the INI dump writes). */
void jobspec_value_append(struct strbuf *sb, const struct jobspec_key *key,
                          const void *field);

/*
 * A text a key can hold: no control characters, and (when it must survive an
 * INI round trip) no leading/trailing blanks and no ';' after a blank, which
 * libinih reads as a comment. Logs with `where` and returns DURE_ERR_ARG.
 */
dure_status_t jobspec_text_check(const char *what, const char *text, const char *where);

/*
 * Split `text` on commas into `out` (items trimmed of blanks; empty text =
 * empty list; an empty item is an error naming `where` and `what`).
 */
dure_status_t jobspec_list_parse(const char *text, const char *where, const char *what,
                                 struct jobspec_list *out);
void jobspec_list_release(struct jobspec_list *list);

/* "run.name": the key's full name, into buf. */
void jobspec_key_fullname(const struct jobspec_key *key, char *buf, size_t size);

/*
 * Seconds in a Slurm time limit ("30", "1:00:00", "2-12", "2-12:30:00",
 * "UNLIMITED"); -1 for unlimited. DURE_ERR_ARG if malformed (not logged).
 */
dure_status_t jobspec_slurm_time_parse(const char *text, long *seconds);

/* The best match for a misspelled name among `names` (NULL-terminated), or NULL. */
const char *jobspec_suggest(const char *name, const char *const *names);

/* "default", "job.ini:12", "--set", "sweep" or "derived": where o's value came from. */
void jobspec_origin_append(struct strbuf *sb, const struct dure_jobspec *spec,
                           const struct jobspec_origin *o);

/* ------------------------------------------------------------ [data.NAME] */
/* (jobs/jobspec_data.c) */

/* Is `section` "data.NAME" with a valid NAME? *name (may be NULL) points at NAME. */
int jobspec_dataset_section(const char *section, const char **name);

/* The field of dataset key `key` in d. */
void *jobspec_dataset_field(struct jobspec_dataset *d, const struct jobspec_key *key);
const void *jobspec_dataset_field_const(const struct jobspec_dataset *d,
                                        const struct jobspec_key *key);

/* The dataset key `kname` (of [data.dname]), or an error at `where` that
 * lists the keys and suggests the nearest. */
dure_status_t jobspec_dataset_key_lookup(const char *dname, const char *kname,
                                         const char *where, const struct jobspec_key **out);

/*
 * Set key `kname` of dataset `dname` from `text` (checked as for any key;
 * `where` prefixes messages). create: a dataset not there yet is added with
 * its defaults (from a file section or --set); otherwise it must exist (a
 * [sweep] line). A key set twice in the file is an error.
 */
dure_status_t jobspec_dataset_assign(struct dure_jobspec *spec, const char *dname,
                                     const char *kname, const char *text, const char *where,
                                     enum jobspec_src src, int line, int create);

void jobspec_mixture_free(struct jobspec_mixture *m);
/* dst (empty) becomes a deep copy of src. */
dure_status_t jobspec_mixture_copy(struct jobspec_mixture *dst,
                                   const struct jobspec_mixture *src);
/* Rules of the datasets: each has a path; data.path and [data.NAME]
 * sections do not both name datasets. */
dure_status_t jobspec_mixture_validate(const struct dure_jobspec *spec, const char *label);
/* The [data.NAME] sections as INI text; "data.NAME.key=value" lines for the
 * hash (result_only: JOBSPEC_F_RESULT keys); table rows (values padded to
 * wval). */
void jobspec_mixture_append_ini(struct strbuf *sb, const struct dure_jobspec *spec);
void jobspec_mixture_append_hash(struct strbuf *sb, const struct dure_jobspec *spec,
                                 int result_only);
void jobspec_mixture_append_table(struct strbuf *sb, const struct dure_jobspec *spec,
                                  int wval);

#endif
