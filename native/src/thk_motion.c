/* Receiver-side motion (docs/motion.md): FOMM's relative motion against the anchor, the Jacobian
 * transfer and movement-scale adaptation, in float32 in the order sdk/models/motion.py evaluates
 * them (compile with -ffp-contract=off: no fused multiply-add). */
#include "thk.h"

#include <math.h>
#include <string.h>

/* Andrew's monotone chain over indices sorted by (x, y); the shoelace area of the hull, float64. */
int thk_hull_area(const float *points, uint32_t k, double *area) {
    if (!points || !area || k > THK_MAX_KP) return THK_E_ARGUMENT;
    if (k < 3) return THK_E_DEGENERATE_HULL;
    uint8_t order[THK_MAX_KP], hull[2 * THK_MAX_KP + 1];
    for (uint32_t i = 0; i < k; i++) order[i] = (uint8_t)i;
    for (uint32_t i = 1; i < k; i++) {  /* insertion sort: once per avatar or anchor */
        uint8_t v = order[i];
        uint32_t j = i;
        while (j > 0 && (points[2 * order[j - 1]] > points[2 * v] ||
                         (points[2 * order[j - 1]] == points[2 * v] && points[2 * order[j - 1] + 1] > points[2 * v + 1]))) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = v;
    }
#define CROSS(o, a, b) (((double)points[2 * (a)] - points[2 * (o)]) * ((double)points[2 * (b) + 1] - points[2 * (o) + 1]) - \
                        ((double)points[2 * (a) + 1] - points[2 * (o) + 1]) * ((double)points[2 * (b)] - points[2 * (o)]))
    uint32_t n = 0;
    for (uint32_t i = 0; i < k; i++) {
        while (n >= 2 && CROSS(hull[n - 2], hull[n - 1], order[i]) <= 0) n--;
        hull[n++] = order[i];
    }
    for (uint32_t i = k - 1, lower = n + 1; i-- > 0;) {
        while (n >= lower && CROSS(hull[n - 2], hull[n - 1], order[i]) <= 0) n--;
        hull[n++] = order[i];
    }
#undef CROSS
    double twice = 0;
    for (uint32_t i = 0; i + 1 < n; i++) {
        double x0 = points[2 * hull[i]], y0 = points[2 * hull[i] + 1];
        double x1 = points[2 * hull[i + 1]], y1 = points[2 * hull[i + 1] + 1];
        twice += x0 * y1 - x1 * y0;
    }
    *area = fabs(twice) / 2;
    return *area > 0 ? THK_OK : THK_E_DEGENERATE_HULL;
}

int thk_movement_scale(double source_area, double anchor_area, float *scale) {
    if (!scale) return THK_E_ARGUMENT;
    float source = (float)source_area, anchor = (float)anchor_area;
    if (!(anchor > 0) || !(source > 0)) return THK_E_DEGENERATE_HULL;
    *scale = sqrtf(source / anchor);
    return THK_OK;
}

static void mul2(const float *x, const float *y, float *out) {
    float r[4];
    r[0] = x[0] * y[0] + x[1] * y[2];
    r[1] = x[0] * y[1] + x[1] * y[3];
    r[2] = x[2] * y[0] + x[3] * y[2];
    r[3] = x[2] * y[1] + x[3] * y[3];
    memcpy(out, r, sizeof r);
}

int thk_relative_motion(uint32_t k, const float *driving, const float *driving_jac, const float *anchor,
                        const float *anchor_jac, const float *source, const float *source_jac, float scale,
                        int use_jacobian, float *value, float *jacobian) {
    static const float IDENTITY[4] = {1, 0, 0, 1};
    if (!driving || !anchor || !source || !source_jac || !value || !jacobian || k > THK_MAX_KP) return THK_E_ARGUMENT;
    if (use_jacobian) {  /* check first: nothing is written for a singular anchor */
        for (uint32_t i = 0; anchor_jac && i < k; i++) {
            const float *m = anchor_jac + 4 * i;
            if (m[0] * m[3] - m[1] * m[2] == 0) return THK_E_SINGULAR;
        }
    }
    for (uint32_t i = 0; i < 2 * k; i++) {
        float moved = driving[i] - anchor[i];
        moved = moved * scale;
        value[i] = source[i] + moved;
    }
    for (uint32_t i = 0; i < k; i++) {
        if (!use_jacobian) { memcpy(jacobian + 4 * i, source_jac + 4 * i, 4 * sizeof(float)); continue; }
        const float *a = anchor_jac ? anchor_jac + 4 * i : IDENTITY;
        const float *d = driving_jac ? driving_jac + 4 * i : IDENTITY;
        float det = a[0] * a[3] - a[1] * a[2];
        float inverse[4] = {a[3] / det, -a[1] / det, -a[2] / det, a[0] / det};
        float transfer[4];
        mul2(d, inverse, transfer);
        mul2(transfer, source_jac + 4 * i, jacobian + 4 * i);
    }
    return THK_OK;
}
