"""Ensembles: average the members' softmax outputs, measure how sure and how united they are.

Per example: the ensemble's confidence is its mean max-probability (the averaged softmax's top
value); disagreement is the fraction of members whose own prediction differs from the
ensemble's. The examples with the most disagreement are listed, as the course notes do.
"""

from __future__ import annotations

import numpy as np


def aggregate(member_probs: list[np.ndarray], y: np.ndarray, class_names: list[str] | None = None,
              top: int = 10) -> dict:
    """Summary of an ensemble on a test set.

    Arguments:
        member_probs: one (N, K) array of class probabilities per member.
        y: (N,) true class indices.
    Returns a JSON-ready dict: member accuracies, the averaged-softmax accuracy, confidence
    and disagreement statistics, and the ``top`` examples the members disagree on most.
    """
    probs = np.stack([np.asarray(p, dtype=np.float64) for p in member_probs])  # (M, N, K)
    y = np.asarray(y).astype(np.int64)
    members = probs.argmax(axis=2)  # (M, N)
    mean = probs.mean(axis=0)  # (N, K)
    ensemble = mean.argmax(axis=1)
    confidence = mean.max(axis=1)
    disagreement = (members != ensemble[None, :]).mean(axis=0)
    member_acc = (members == y[None, :]).mean(axis=1)
    correct = ensemble == y
    names = list(class_names) if class_names else None

    def label(i: int):
        return names[i] if names and i < len(names) else int(i)

    order = np.lexsort((confidence, -disagreement))[:top]
    examples = []
    for i in order:
        examples.append({
            "index": int(i),
            "true": label(int(y[i])),
            "ensemble": label(int(ensemble[i])),
            "ensemble_probability": float(confidence[i]),
            "disagreement": float(disagreement[i]),
            "members": [{"predicted": label(int(members[m, i])), "probability": float(probs[m, i, members[m, i]])}
                        for m in range(len(probs))],
        })
    return {
        "members": len(probs),
        "test_examples": int(len(y)),
        "member_test_accuracy": [float(a) for a in member_acc],
        "member_test_accuracy_mean": float(member_acc.mean()),
        "member_test_accuracy_std": float(member_acc.std()),
        "ensemble_test_accuracy": float(correct.mean()),
        "gain_over_mean_member": float(correct.mean() - member_acc.mean()),
        "confidence": {
            "mean_max_probability": float(confidence.mean()),
            "mean_max_probability_correct": float(confidence[correct].mean()) if correct.any() else None,
            "mean_max_probability_wrong": float(confidence[~correct].mean()) if (~correct).any() else None,
            "mean_disagreement": float(disagreement.mean()),
            "unanimous_fraction": float((disagreement == 0).mean()),
            "accuracy_when_unanimous": float(correct[disagreement == 0].mean()) if (disagreement == 0).any() else None,
            "accuracy_when_split": float(correct[disagreement > 0].mean()) if (disagreement > 0).any() else None,
        },
        "most_disagreed": examples,
    }
