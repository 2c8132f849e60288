"""Reference values for the metric tests, computed the way the MOOD organisers' evalresults.py does.

Usage (all arrays are raw little-endian binary files):
  sklearn_reference.py sample SCORES.f64 LABELS.u8   -> JSON {"ap": ..., "auroc": ...} on stdout
  sklearn_reference.py pixel  PREDS.f32  LABELS.u8   -> same, predictions read as float16 then clipped to [0, 1]
  sklearn_reference.py float16 VALUES.f32 OUT.u16    -> numpy's astype(np.float16) bit patterns
"""
import json
import sys
import warnings

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score


def metrics(scores, labels):
    result = {"ap": None, "auroc": None}
    if labels.any():
        result["ap"] = float(average_precision_score(labels, scores))
    if labels.any() and not labels.all():
        result["auroc"] = float(roc_auc_score(labels, scores))
    return result


def main(argv):
    mode = argv[1]
    if mode == "float16":
        values = np.fromfile(argv[2], dtype="<f4")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # overflow to inf is what we test
            values.astype(np.float16).view("<u2").tofile(argv[3])
        return
    labels = np.rint(np.fromfile(argv[3], dtype=np.uint8)).astype(int)
    if mode == "sample":
        scores = np.clip(np.fromfile(argv[2], dtype="<f8"), 0.0, 1.0)
    elif mode == "pixel":
        scores = np.clip(np.fromfile(argv[2], dtype="<f4").astype(np.float16), 0.0, 1.0)
    else:
        raise SystemExit(f"unknown mode {mode}")
    print(json.dumps(metrics(scores, labels)))


if __name__ == "__main__":
    main(sys.argv)
