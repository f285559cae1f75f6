/**
 * Classification metrics over predicted class probabilities: loss, accuracy and ROC AUC
 * (binary, and macro one-vs-rest for more classes). Pure functions; edges compute them
 * locally and only the aggregate numbers ever leave the site.
 */

export interface ClassificationMetrics {
  /** Mean cross-entropy of the true class. */
  loss: number;
  accuracy: number;
  /** Binary AUC for 2 classes, macro one-vs-rest AUC otherwise; NaN when undefined (one class only). */
  auc: number;
  numExamples: number;
}

/**
 * @param probs row-major [n, classes] probabilities
 * @param labels n integer labels in [0, classes)
 */
export function classificationMetrics(probs: Float32Array, labels: Int32Array, classes: number): ClassificationMetrics {
  const n = labels.length;
  if (probs.length !== n * classes) throw new RangeError(`metrics: ${probs.length} probabilities for ${n} labels x ${classes} classes`);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const row = i * classes;
    let best = 0;
    for (let c = 1; c < classes; c++) if (probs[row + c] > probs[row + best]) best = c;
    if (best === labels[i]) correct++;
    loss -= Math.log(Math.max(probs[row + labels[i]], 1e-12));
  }
  let auc: number;
  if (classes === 2) {
    auc = rocAuc(column(probs, classes, 1), labels.map((l) => (l === 1 ? 1 : 0)));
  } else {
    const perClass: number[] = [];
    for (let c = 0; c < classes; c++) {
      const a = rocAuc(column(probs, classes, c), labels.map((l) => (l === c ? 1 : 0)));
      if (!Number.isNaN(a)) perClass.push(a);
    }
    auc = perClass.length ? perClass.reduce((a, b) => a + b, 0) / perClass.length : NaN;
  }
  return { loss: n ? loss / n : NaN, accuracy: n ? correct / n : NaN, auc, numExamples: n };
}

/**
 * ROC AUC as the Mann-Whitney U statistic with average ranks for ties (equals the trapezoidal
 * area under the ROC curve, as scikit-learn computes it). NaN when only one class is present.
 */
export function rocAuc(scores: ArrayLike<number>, positives: ArrayLike<number>): number {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let nPos = 0;
  let i = 0;
  while (i < n) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) {
      if (positives[order[k]] === 1) {
        rankSumPos += avgRank;
        nPos++;
      }
    }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

function column(probs: Float32Array, classes: number, c: number): Float32Array {
  const n = probs.length / classes;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = probs[i * classes + c];
  return out;
}
