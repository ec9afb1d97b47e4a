/* common/benchline.c - see benchline.h. */
#include "common/benchline.h"

double dure_bench_load_average(void)
{
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) {
            l = -1;
        }
        fclose(f);
    }
    return l;
}

double dure_bench_ratio(const struct dure_bench_figure *f)
{
    return f->peer_value != 0 ? f->value / f->peer_value : 0.0;
}

void dure_bench_print(FILE *out, const struct dure_bench_figure *f)
{
    fprintf(out, "bench: %s: %.4g %s (%s: %.4g %s, ratio %.2f)\n", f->name, f->value, f->unit,
            f->peer, f->peer_value, f->peer_unit, dure_bench_ratio(f));
    fflush(out);
}

void dure_bench_json_begin(struct json_writer *w, const struct dure_bench_figure *f)
{
    json_begin_object(w);
    json_key(w, "name");
    json_string(w, f->name);
    json_key(w, "value");
    json_number(w, f->value, 6);
    json_key(w, "unit");
    json_string(w, f->unit);
    json_key(w, "peer");
    json_string(w, f->peer);
    json_key(w, "peer_value");
    json_number(w, f->peer_value, 6);
    json_key(w, "peer_unit");
    json_string(w, f->peer_unit);
    json_key(w, "ratio");
    json_number(w, dure_bench_ratio(f), 4);
}
