/* common/gnuplot.c - see gnuplot.h. */
#include "common/gnuplot.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

dure_status_t gnuplot_begin(struct gnuplot *g)
{
    dure_status_t st = DURE_OK;
    memset(g, 0, sizeof *g);
    snprintf(g->dir, sizeof g->dir, "/tmp/dure-plot.XXXXXX");
    if (!mkdtemp(g->dir)) {
        g->dir[0] = '\0';
        DURE_SYS_TRY(0, "cannot make a temporary directory for gnuplot");
    }
    g->script = open_memstream(&g->text, &g->len);
    DURE_SYS_TRY(g->script != NULL, "cannot start a gnuplot script");
out:
    return st;
}

dure_status_t gnuplot_data(struct gnuplot *g, const char *name, FILE **f, const char **path)
{
    dure_status_t st = DURE_OK;
    char *p = NULL;
    *f = NULL;
    DURE_CHECK(g->ndata < GNUPLOT_MAX_FILES, DURE_ERR_INTERNAL,
               "gnuplot: more than %d data files", GNUPLOT_MAX_FILES);
    DURE_SYS_TRY(asprintf(&p, "%s/%s", g->dir, name) >= 0, "gnuplot data file name");
    g->data[g->ndata++] = p;
    DURE_SYS_TRY((*f = fopen(p, "w")) != NULL, "cannot write %s", p);
    *path = p;
out:
    return st;
}

dure_status_t gnuplot_data_close(struct gnuplot *g, FILE *f)
{
    dure_status_t st = DURE_OK;
    int bad = ferror(f);
    DURE_SYS_TRY(fclose(f) == 0 && !bad, "cannot write gnuplot data in %s", g->dir);
out:
    return st;
}

void gnuplot_output(struct gnuplot *g, const char *path)
{
    if (g->noutput < GNUPLOT_MAX_FILES) {
        g->output[g->noutput++] = path;
    }
    unlink(path);
    gnuplot_printf(g, "set output ");
    gnuplot_quote(g, path);
    gnuplot_printf(g, "\n");
}

void gnuplot_printf(struct gnuplot *g, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(g->script, fmt, ap);
    va_end(ap);
}

void gnuplot_quote(struct gnuplot *g, const char *s)
{
    fputc('\'', g->script);
    for (; *s; s++) {
        if (*s == '\'') {
            fputc('\'', g->script);
        }
        fputc(*s, g->script);
    }
    fputc('\'', g->script);
}

dure_status_t gnuplot_run(struct gnuplot *g, const char *what)
{
    dure_status_t st = DURE_OK;
    FILE *gp = NULL;
    int bad = ferror(g->script) != 0;
    /* Closing the memory stream makes text and len final. */
    bad |= fclose(g->script) != 0;
    g->script = NULL;
    DURE_CHECK(!bad, DURE_ERR_NOMEM, "cannot build the gnuplot script for %s", what);
    fflush(NULL);
    gp = popen("exec gnuplot >/dev/null", "w");
    DURE_SYS_TRY(gp != NULL, "cannot start gnuplot");
    size_t wrote = fwrite(g->text, 1, g->len, gp);
    int rc = pclose(gp);
    gp = NULL;
    DURE_SYS_TRY(rc != -1, "cannot wait for gnuplot");
    DURE_CHECK(wrote == g->len && WIFEXITED(rc) && WEXITSTATUS(rc) == 0, DURE_ERR_IO,
               "gnuplot failed (%s %d) drawing %s%s", WIFEXITED(rc) ? "exit" : "signal",
               WIFEXITED(rc) ? WEXITSTATUS(rc) : WTERMSIG(rc), what,
               WIFEXITED(rc) && WEXITSTATUS(rc) == 127 ? ": is gnuplot installed?" : "");
    for (int i = 0; i < g->noutput; i++) {
        struct stat sb;
        DURE_CHECK(stat(g->output[i], &sb) == 0 && sb.st_size > 0, DURE_ERR_IO,
                   "gnuplot could not write %s", g->output[i]);
    }
out:
    return st;
}

void gnuplot_end(struct gnuplot *g)
{
    if (g->script) {
        fclose(g->script);
        g->script = NULL;
    }
    for (int i = 0; i < g->ndata; i++) {
        unlink(g->data[i]);
        free(g->data[i]);
    }
    g->ndata = 0;
    if (g->dir[0]) {
        rmdir(g->dir);
        g->dir[0] = '\0';
    }
    free(g->text);
    g->text = NULL;
}
