/* fleet.c: fleet wisdom in a diagnosis (issue 15). What other cells of the
 * mesh learned ("for incidents like this, this typed action fixed it k of n
 * times", weighted by the origins' trust) is one more source of evidence,
 * after the cell's own memory: the hook's candidates become evidence lines,
 * and, when no remembered case of this cell's healed the incident, those at
 * least [brain] wisdom_threshold heavy are proposed first, as heal's typed
 * actions through heal's policy like every proposal of the brain. When such
 * an action's outcome is known the hook's outcome callback hears it, so the
 * cell moves the origin's trust. Pure: no I/O, any thread. docs/brain.md
 * "Fleet wisdom". */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "brain/brain_int.h"

static bool has_text(const json_t *a, const char *t)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (json_is_string(v) && !strcmp(json_string_value(v), t))
            return true;
    }
    return false;
}

/* What the cell's own close cases say about action: "own_memory" (healed
 * by it), "failed_here" (tried, did not heal), "own_fix" (healed by
 * another fix), or NULL (they say nothing). */
static const char *own_word(const brain_case_hit *hits, int nhits, const char *action)
{
    const char *word = NULL;
    for (int i = 0; i < nhits; i++) {
        const brain_case_hit *h = &hits[i];
        if (h->similarity < BRAIN_CASE_CLOSE)
            continue;
        if (h->fixed > 0 && has_text(h->fixed_by, action))
            return "own_memory";
        if (has_text(h->failed_by, action))
            word = "failed_here";
        else if (h->fixed > 0 && !word)
            word = "own_fix";
    }
    return word;
}

/* Only heal's typed actions that make sense on another machine: no pid (the
 * origin's processes), no program (playbooks run a local file), no alert (a
 * local webhook; it fixes nothing), no genome change. */
static bool proposable(const char *action, const char *service)
{
    heal_action a;
    char err[256];
    if (!*action || strstr(action, " pid ") || heal_action_parse_text(action, service, &a, err, sizeof err) != 0)
        return false;
    return a.kind != HEAL_ACT_PLAYBOOK && a.kind != HEAL_ACT_ALERT && a.kind != HEAL_ACT_GENOME &&
           a.kind != HEAL_ACT_SIGNAL_PID && a.kind != HEAL_ACT_RENICE_PID;
}

static bool preparatory(const char *a)
{
    return !strncmp(a, "restore ", 8) || !strncmp(a, "clean ", 6) || !strncmp(a, "sysctl ", 7);
}

static void drop_action(json_t *actions, const char *text)
{
    for (size_t i = 0; i < json_array_size(actions);) {
        const char *t = json_string_value(json_object_get(json_array_get(actions, i), "action"));
        if (t && !strcmp(t, text))
            json_array_remove(actions, i);
        else
            i++;
    }
}

/* Puts the proposed candidates first: preparing actions (restore, clean,
 * sysctl) before the others, so that one attempt carries them together. */
static void propose(json_t *diag, json_t *cands, const char *service)
{
    json_t *actions = json_object_get(diag, "proposed_actions");
    if (!json_is_array(actions)) {
        actions = json_array();
        json_object_set_new(diag, "proposed_actions", actions);
    }
    size_t at = 0;
    for (int pass = 0; pass < 2; pass++) {
        size_t i;
        json_t *c;
        json_array_foreach(cands, i, c) {
            const char *t = json_string_value(json_object_get(c, "action"));
            if (strcmp(json_string_value(json_object_get(c, "use")), "proposed") != 0 || preparatory(t) != (pass == 0))
                continue;
            drop_action(actions, t);
            char why[200];
            int cells = (int)json_integer_value(json_object_get(c, "origins"));
            snprintf(why, sizeof why, "fleet wisdom: fixed %lld of %lld similar incidents on %d other cell%s (weight %.2f)",
                     (long long)json_integer_value(json_object_get(c, "k")),
                     (long long)json_integer_value(json_object_get(c, "n")), cells, cells == 1 ? "" : "s",
                     json_real_value(json_object_get(c, "weight")));
            json_array_insert_new(actions, at++,
                                  json_pack("{s:s, s:s, s:s, s:s}", "action", t, "service", service, "why", why, "by",
                                            "wisdom"));
        }
    }
}

void brain_fleet_merge(json_t *diag, const json_t *features, const char *service_kind, const brain_case_hit *hits,
                       int nhits, const brain_wisdom_cand *c, int nc, double threshold)
{
    if (!diag || nc == 0) /* the fleet had nothing to say (or this cell is in no mesh): no "wisdom" key */
        return;
    json_t *w = json_pack("{s:f, s:s, s:O}", "threshold", threshold, "service_kind", service_kind ? service_kind : "",
                          "features", features ? (json_t *)features : json_null());
    if (!w)
        return;
    json_object_set_new(diag, "wisdom", w);
    if (nc < 0) {
        char why[96];
        snprintf(why, sizeof why, "the fleet's wisdom could not be read (error %d)", nc);
        json_object_set_new(w, "error", json_string(why));
        return;
    }
    const char *fault = json_string_value(json_object_get(diag, "fault_type"));
    const char *service = json_string_value(json_object_get(diag, "component"));
    service = service ? service : "";
    bool healthy = fault && !strcmp(fault, "none");
    json_t *cands = json_array(), *evidence = json_object_get(diag, "evidence");
    json_object_set_new(w, "candidates", cands);
    bool any = false;
    for (int i = 0; i < nc; i++) {
        char action[sizeof c[i].action];
        memcpy(action, c[i].action, sizeof action);
        action[sizeof action - 1] = 0;
        double weight = c[i].weight;
        if (!*action || !isfinite(weight))
            continue;
        weight = weight < 0 ? 0 : weight > 1 ? 1 : weight;
        int origins = c[i].origins > 0 ? c[i].origins : 0;
        const char *use = own_word(hits, nhits, action);
        if (!use && weight < threshold)
            use = "below_threshold";
        if (!use && !proposable(action, service))
            use = "not_an_action";
        if (!use)
            use = healthy ? "evidence" : "proposed";
        any = any || !strcmp(use, "proposed");
        weight = round(weight * 1000) / 1000;
        json_array_append_new(cands, json_pack("{s:s, s:f, s:I, s:I, s:i, s:s}", "action", action, "weight", weight,
                                               "k", (json_int_t)c[i].k, "n", (json_int_t)c[i].n, "origins", origins,
                                               "use", use));
        if (json_is_array(evidence)) {
            char text[400];
            snprintf(text, sizeof text, "fleet wisdom: '%.127s' fixed %u of %u similar incidents on %d other cell%s "
                     "(weight %.2f): %s", action, c[i].k, c[i].n, origins, origins == 1 ? "" : "s", weight,
                     !strcmp(use, "proposed")          ? "proposed"
                     : !strcmp(use, "own_memory")      ? "this cell's memory agrees"
                     : !strcmp(use, "failed_here")     ? "it did not heal a similar incident here"
                     : !strcmp(use, "own_fix")         ? "this cell's own fix comes first"
                     : !strcmp(use, "below_threshold") ? "below the threshold"
                     : !strcmp(use, "not_an_action")   ? "not an action the fleet may propose"
                                                       : "evidence only");
            for (char *p = text; *p; p++)
                if ((unsigned char)*p < 0x20)
                    *p = ' ';
            json_array_append_new(evidence, json_pack("{s:s, s:s, s:s, s:f, s:I, s:I, s:i}", "kind", "wisdom", "text",
                                                      text, "action", action, "weight", weight, "k",
                                                      (json_int_t)c[i].k, "n", (json_int_t)c[i].n, "cells", origins));
        }
    }
    if (any)
        propose(diag, cands, service);
}

int brain_fleet_outcome(const json_t *diag, const json_t *attempt, bool worked, brain_wisdom_outcome_fn outcome,
                        void *ud)
{
    const json_t *w = json_object_get(diag, "wisdom");
    const json_t *features = json_object_get(w, "features");
    int calls = 0;
    size_t i, j;
    json_t *t, *c;
    json_array_foreach(attempt, i, t) {
        const char *text = json_string_value(t);
        if (!text)
            continue;
        bool proposed = false, fleet = false;
        json_array_foreach(json_object_get(w, "candidates"), j, c) {
            const char *a = json_string_value(json_object_get(c, "action"));
            const char *use = json_string_value(json_object_get(c, "use"));
            proposed = proposed || (a && use && !strcmp(a, text) && !strcmp(use, "proposed"));
        }
        json_array_foreach(json_object_get(diag, "proposed_actions"), j, c) {
            const char *a = json_string_value(json_object_get(c, "action"));
            const char *by = json_string_value(json_object_get(c, "by"));
            fleet = fleet || (a && by && !strcmp(a, text) && !strcmp(by, "wisdom"));
        }
        bool before = false; /* an action twice in one attempt is heard once */
        for (size_t k = 0; k < i; k++)
            before = before || json_equal(json_array_get(attempt, k), t);
        if (proposed && fleet && !before) {
            if (outcome)
                outcome(ud, text, features, worked);
            calls++;
        }
    }
    return calls;
}
