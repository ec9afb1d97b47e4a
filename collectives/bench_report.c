/*
 * collectives/bench_report.c - what `dure bench` shows of a measurement:
 * nccl-tests' text table, the JSON results (common/json) and the busbw plot
 * (common/gnuplot). See bench.h.
 */
#include <stdio.h>

#include "collectives/bench.h"
#include "common/gnuplot.h"
#include "common/json.h"

static const char *type_name(enum comm_dtype dt)
{
    return dt == COMM_BF16 ? "bfloat16" : "float";
}

static const char *op_name(const struct bench_spec *s)
{
    if (!s->coll->reduces) {
        return "none";
    }
    return s->op == COMM_AVG ? "avg" : "sum";
}

static int root_of(const struct bench_spec *s)
{
    return s->coll->coll == COMM_BROADCAST ? s->root : -1;
}

void bench_summarize(const struct bench_report *r, const struct bench_point *p, int n,
                     struct bench_summary *s)
{
    double sum = 0, sum_peer = 0;
    *s = (struct bench_summary){0};
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < r->nv; k++) {
            s->wrong += p[i].v[k].wrong;
        }
        if (r->compare) {
            sum += p[i].v[0].busbw_gbs;
            sum_peer += p[i].v[1].busbw_gbs;
        } else {
            double all = 0;
            for (int k = 0; k < r->nv; k++) {
                all += p[i].v[k].busbw_gbs;
            }
            sum += all / r->nv;
        }
    }
    s->avg_busbw = n ? sum / n : 0;
    s->avg_busbw_peer = n ? sum_peer / n : 0;
}

/* ---------------------------------------------------------------- the table */

void bench_print_header(FILE *out, const struct bench_report *r)
{
    const struct bench_spec *s = r->spec;
    char table[256], seg[16];
    comm_algo_table_text(r->comm, table, sizeof table);
    comm_ring_segment_text(r->comm, seg, sizeof seg);
    fprintf(out,
            "# dure bench %s: %d ranks on %d node(s), backend %s, algo %s (table %s, ring "
            "segment %s)%s\n",
            s->coll->name, comm_size(r->comm), comm_node_count(r->comm),
            comm_backend_name(comm_backend(r->comm)), comm_algo_name(r->algo), table, seg,
            r->deterministic ? ", deterministic" : "");
    if (r->topology) {
        fprintf(out, "# topology: %s\n", r->topology);
    }
    fprintf(out, "# dure's buffers: %s%s\n", r->heap ? "heap (malloc)" : "comm_mem_alloc",
            r->compare ? "; MPI native's: heap (malloc)" : "");
    fprintf(out,
            "# type %s, op %s, root %d; %d iters x %d reps (median of rep means), warmup %d, "
            "check %d\n#\n",
            type_name(s->dtype), op_name(s), root_of(s), s->iters, s->reps, s->warmup, s->check);
    if (r->compare) {
        fprintf(out,
                "# %10s  %12s  %8s  %6s  %6s  %6s          dure (in-place)          "
                "     MPI native (in-place)       %6s  %7s  %6s\n",
                "", "", "", "", "", "", "", "memcpy", "");
        fprintf(out,
                "# %10s  %12s  %8s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  "
                "%6s  %7s  %6s\n",
                "size", "count", "type", "redop", "root", "algo", "time", "algbw", "busbw",
                "#wrong", "time", "algbw", "busbw", "#wrong", "ratio", "bw", "busbw/");
        fprintf(out,
                "# %10s  %12s  %8s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s  "
                "%6s  %7s  %6s\n",
                "(B)", "(elements)", "", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)",
                "(GB/s)", "(GB/s)", "", "", "(GB/s)", "memcpy");
        return;
    }
    fprintf(out,
            "# %10s  %12s  %8s  %6s  %6s           out-of-place                       "
            "in-place          \n",
            "", "", "", "", "");
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n",
            "size", "count", "type", "redop", "root", "time", "algbw", "busbw", "#wrong", "time",
            "algbw", "busbw", "#wrong");
    fprintf(out, "# %10s  %12s  %8s  %6s  %6s  %7s  %6s  %6s  %6s  %7s  %6s  %6s  %6s\n", "(B)",
            "(elements)", "", "", "", "(us)", "(GB/s)", "(GB/s)", "", "(us)", "(GB/s)", "(GB/s)",
            "");
}

void bench_print_row(FILE *out, const struct bench_report *r, const struct bench_point *p)
{
    const struct bench_spec *s = r->spec;
    fprintf(out, "  %10zu  %12zu  %8s  %6s  %6d", p->bytes, p->count, type_name(s->dtype),
            op_name(s), root_of(s));
    if (r->compare) {
        fprintf(out, "  %6s", comm_algo_name(p->v[0].algo));
    }
    for (int k = 0; k < r->nv; k++) {
        fprintf(out, "  %7.2f  %6.2f  %6.2f  %6ld", p->v[k].sec * 1e6, p->v[k].algbw_gbs,
                p->v[k].busbw_gbs, p->v[k].wrong);
    }
    if (r->compare) {
        fprintf(out, "  %6.2f  %7.2f  %6.2f", p->v[0].busbw_gbs / p->v[1].busbw_gbs,
                p->memcpy_gbs, p->v[0].busbw_gbs / p->memcpy_gbs);
    }
    fprintf(out, "\n");
    fflush(out);
}

void bench_print_footer(FILE *out, const struct bench_report *r, const struct bench_summary *s)
{
    fprintf(out, "# Out of bounds values : %ld %s\n", s->wrong, s->wrong ? "FAILED" : "OK");
    fprintf(out, "# Avg bus bandwidth    : %g \n", s->avg_busbw);
    if (r->compare) {
        fprintf(out, "# Avg bus bandwidth of MPI native : %g (dure / native %.2f)\n",
                s->avg_busbw_peer,
                s->avg_busbw_peer > 0 ? s->avg_busbw / s->avg_busbw_peer : 0.0);
    }
    fprintf(out, "#\n");
    fflush(out);
}

/* ---------------------------------------------------------------- JSON */

dure_status_t bench_write_json(const char *path, const struct bench_report *r,
                               const struct bench_point *p, int n, const struct bench_summary *s)
{
    dure_status_t st = DURE_OK;
    const struct bench_spec *sp = r->spec;
    struct json_writer w;
    char table[256], key[96];
    FILE *f = NULL;

    DURE_SYS_TRY((f = fopen(path, "w")) != NULL, "cannot write --json '%s'", path);
    comm_algo_table_text(r->comm, table, sizeof table);
    json_writer_init(&w, f, 0);
    json_begin_object(&w);
    json_key(&w, "collective");
    json_string(&w, sp->coll->name);
    json_key(&w, "nranks");
    json_int(&w, comm_size(r->comm));
    json_key(&w, "nodes");
    json_int(&w, comm_node_count(r->comm));
    json_key(&w, "backend");
    json_string(&w, comm_backend_name(comm_backend(r->comm)));
    json_key(&w, "algo");
    json_string(&w, comm_algo_name(r->algo));
    json_key(&w, "table");
    json_string(&w, table);
    json_key(&w, "ring_segment_bytes");
    json_int(&w, (int64_t)comm_ring_segment(r->comm));
    json_key(&w, "deterministic");
    json_bool(&w, r->deterministic);
    json_key(&w, "type");
    json_string(&w, type_name(sp->dtype));
    json_key(&w, "op");
    json_string(&w, op_name(sp));
    json_key(&w, "iters");
    json_int(&w, sp->iters);
    json_key(&w, "reps");
    json_int(&w, sp->reps);
    json_key(&w, "warmup");
    json_int(&w, sp->warmup);
    json_key(&w, "compare");
    json_bool(&w, r->compare);
    json_key(&w, "bus_factor");
    json_double(&w, sp->coll->bus_factor(comm_size(r->comm)));
    json_key(&w, "results");
    json_begin_array(&w);
    for (int i = 0; i < n; i++) {
        json_begin_object(&w);
        json_key(&w, "size");
        json_uint(&w, p[i].bytes);
        json_key(&w, "count");
        json_uint(&w, p[i].count);
        json_key(&w, "algo");
        json_string(&w, comm_algo_name(p[i].v[0].algo));
        for (int k = 0; k < r->nv; k++) {
            json_key(&w, r->variant_names[k]);
            json_begin_object(&w);
            json_key(&w, "time_us");
            json_double(&w, p[i].v[k].sec * 1e6);
            json_key(&w, "algbw_gbs");
            json_double(&w, p[i].v[k].algbw_gbs);
            json_key(&w, "busbw_gbs");
            json_double(&w, p[i].v[k].busbw_gbs);
            json_key(&w, "wrong");
            json_int(&w, p[i].v[k].wrong);
            json_end_object(&w);
        }
        if (sp->memcpy_peer) {
            json_key(&w, "memcpy_gbs");
            json_double(&w, p[i].memcpy_gbs);
        }
        json_end_object(&w);
    }
    json_end_array(&w);
    json_key(&w, "avg_busbw_gbs");
    json_double(&w, s->avg_busbw);
    if (r->compare) {
        snprintf(key, sizeof key, "avg_busbw_%s_gbs", r->variant_names[1]);
        json_key(&w, key);
        json_double(&w, s->avg_busbw_peer);
    }
    json_key(&w, "wrong");
    json_int(&w, s->wrong);
    json_end_object(&w);
    fputc('\n', f);
    DURE_TRY(json_writer_finish(&w, path));
    DURE_SYS_TRY(fclose(f) == 0, "cannot write --json '%s'", path);
    f = NULL;
out:
    if (f) {
        fclose(f);
    }
    return st;
}

/* ---------------------------------------------------------------- plot */

dure_status_t bench_write_plot(const char *path, const struct bench_report *r,
                               const struct bench_point *p, int n)
{
    dure_status_t st = DURE_OK;
    struct gnuplot g;
    FILE *d = NULL;
    const char *data = NULL;
    char title[160];

    DURE_TRY(gnuplot_begin(&g));
    DURE_TRY(gnuplot_data(&g, "busbw.dat", &d, &data));
    for (int i = 0; i < n; i++) {
        fprintf(d, "%zu", p[i].bytes);
        for (int k = 0; k < r->nv; k++) {
            fprintf(d, " %.6g", p[i].v[k].busbw_gbs);
        }
        fprintf(d, " %.6g\n", p[i].memcpy_gbs);
    }
    st = gnuplot_data_close(&g, d);
    d = NULL;
    DURE_TRY(st);
    snprintf(title, sizeof title, "dure bench %s, %d ranks, backend %s", r->spec->coll->name,
             comm_size(r->comm), comm_backend_name(comm_backend(r->comm)));
    gnuplot_printf(&g, "set terminal pngcairo size 900,560 noenhanced\n");
    gnuplot_output(&g, path);
    gnuplot_printf(&g, "set title ");
    gnuplot_quote(&g, title);
    gnuplot_printf(&g, "\nset logscale x 2\nset format x '%%.0b%%B'\n"
                       "set xlabel 'size (bytes)'\nset ylabel 'bus bandwidth (GB/s)'\n"
                       "set key top left\nset grid\nplot ");
    for (int k = 0; k < r->nv; k++) {
        gnuplot_printf(&g, "%s", k ? ", " : "");
        gnuplot_quote(&g, data);
        gnuplot_printf(&g, " using 1:%d with linespoints title ", k + 2);
        gnuplot_quote(&g, r->variant_titles[k]);
    }
    if (r->spec->memcpy_peer) {
        gnuplot_printf(&g, ", ");
        gnuplot_quote(&g, data);
        gnuplot_printf(&g, " using 1:%d with lines dashtype 2 title 'memcpy, 1 core'",
                       r->nv + 2);
    }
    gnuplot_printf(&g, "\n");
    DURE_TRY(gnuplot_run(&g, path));
out:
    if (d) {
        fclose(d);
    }
    gnuplot_end(&g);
    return st;
}
