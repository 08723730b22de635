/* engine_metric.c: METRIC conditions ("if gpu.temperature > 85 ...") over a
 * family of series: the rule's labels (none, some or all) select every
 * series of the family whose labels include them; the set is found once and
 * grown by the new series alone when the store's series count changes (the
 * store is never copied whole nor sorted on the loop), and each evaluation
 * reads the last value of those series alone. The condition holds when any
 * of them satisfies it; the one that decides is named in the incident. */
#include "heal/engine_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the set ---------------------------------------------------------------------------- */

void eng_metric_set_free(eng_metric_set *set)
{
    free(set->ids);
    free(set->labels);
    set->ids = NULL;
    set->labels = NULL;
    set->n = set->cap = 0;
    set->nseries = -1;
    set->next_id = 0;
}

/* Adds to set the matching series the store got since it was last looked
 * at (ids from set->next_id on), each in its place by labels: only the new
 * series are copied, and nothing is sorted. */
static int set_update(mem_t *m, eng_metric_set *set, const heal_resource *res, int count)
{
    mem_series_info *nw;
    size_t n;
    int next;
    int rc = mem_series_since(m, set->next_id, &nw, &n, &next);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(nw[i].name, res->metric) || !mem_labels_subset(nw[i].labels, res->labels))
            continue;
        if (set->n == set->cap) {
            int cap = set->cap ? 2 * set->cap : 4;
            int *ids = realloc(set->ids, sizeof *ids * (size_t)cap);
            if (ids)
                set->ids = ids;
            const char **labels = ids ? realloc(set->labels, sizeof *labels * (size_t)cap) : NULL;
            if (!labels) {
                free(nw);
                return -ENOMEM; /* next_id unchanged: looked at again next time */
            }
            set->labels = labels;
            set->cap = cap;
        }
        int at = set->n;
        while (at > 0 && strcmp(set->labels[at - 1], nw[i].labels) > 0)
            at--;
        memmove(set->ids + at + 1, set->ids + at, sizeof *set->ids * (size_t)(set->n - at));
        memmove(set->labels + at + 1, set->labels + at, sizeof *set->labels * (size_t)(set->n - at));
        set->ids[at] = nw[i].id;
        set->labels[at] = nw[i].labels;
        set->n++;
    }
    free(nw);
    set->next_id = next;
    set->nseries = count;
    return 0;
}

/* Whether v should replace the current choice (see eng_metric_hit). */
static bool better(heal_cmp op, double threshold, double v, double cur)
{
    switch (op) {
    case HEAL_CMP_GT:
    case HEAL_CMP_GE: return v > cur;
    case HEAL_CMP_LT:
    case HEAL_CMP_LE: return v < cur;
    default: return !heal_cmp_eval(op, cur, threshold) && heal_cmp_eval(op, v, threshold);
    }
}

int eng_metric_eval(mem_t *m, eng_metric_set *set, const heal_resource *res, eng_metric_hit *hit)
{
    *hit = (eng_metric_hit){.id = -1, .labels = NULL, .value = NAN, .matched = 0};
    if (!m)
        return -EINVAL;
    int count = mem_series_count(m);
    if (count != set->nseries) {
        int rc = set_update(m, set, res, count);
        if (rc)
            return rc;
    }
    hit->matched = set->n;
    for (int i = 0; i < set->n; i++) {
        double v;
        int64_t ts;
        if (mem_series_last(m, set->ids[i], &v, &ts) || isnan(v))
            continue;
        if (hit->id < 0 || better(res->op, res->threshold, v, hit->value)) {
            hit->id = set->ids[i];
            hit->labels = set->labels[i];
            hit->value = v;
        }
    }
    return 0;
}

/* ---- naming the series ------------------------------------------------------------------- */

void eng_metric_detail(json_t *detail, const char *metric, const eng_metric_hit *hit)
{
    if (!detail)
        return;
    json_object_set_new(detail, "matched", json_integer(hit->matched));
    if (hit->id < 0)
        return;
    char key[512];
    snprintf(key, sizeof key, "%s%s%s%s", metric, hit->labels[0] ? "{" : "", hit->labels, hit->labels[0] ? "}" : "");
    json_object_set_new(detail, "series", json_string(key));
    json_object_set_new(detail, "labels", mem_labels_json(hit->labels));
}

void eng_metric_what(char *text, size_t n, const json_t *detail)
{
    const char *series = json_string_value(json_object_get(detail, "series"));
    size_t len = strlen(text);
    if (!series || len >= n)
        return;
    snprintf(text + len, n - len, " [%s = %g]", series, json_number_value(json_object_get(detail, "value")));
}
