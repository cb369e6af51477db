r"""Reading out the Diehl & Cook network: label assignment and classification.

After (or during) unsupervised training, learning is frozen and a labelled set is presented.
Each excitatory neuron is **assigned** the class for which its mean spike count is highest
(Diehl & Cook 2015, "Training, Classification"):

.. math::

    a_j = \arg\max_c \frac{1}{|N_c|} \sum_{n \in N_c} s_{nj},

where :math:`s_{nj}` is neuron :math:`j`'s spike count for example :math:`n` and :math:`N_c` the
examples of class :math:`c`. An example is **classified** as the class whose assigned neurons
have the highest mean count,

.. math::

    \hat y_n = \arg\max_c \frac{1}{|A_c|} \sum_{j \in A_c} s_{nj},\qquad A_c = \{j : a_j = c\}.

As in the original code, a neuron that never fired for the assignment set stays unassigned
(class ``-1``) and is ignored by the classification; classes without assigned neurons score 0;
ties go to the lowest class index (the original keeps the first class with a strictly higher
mean).
"""

from __future__ import annotations

import torch

__all__ = ["assign_labels", "classify", "class_scores"]


def _check_counts(counts: torch.Tensor, name: str = "counts") -> torch.Tensor:
    if not isinstance(counts, torch.Tensor):
        counts = torch.as_tensor(counts)
    if counts.dim() != 2:
        raise ValueError(f"{name} must be (N, n_exc), got shape {tuple(counts.shape)}")
    counts = counts.to(torch.float64)
    if not bool(torch.isfinite(counts).all()) or bool((counts < 0).any()):
        raise ValueError(f"{name} must be finite spike counts >= 0")
    return counts


def assign_labels(counts: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Assign every excitatory neuron the class with its highest mean spike count.

    Parameters
    ----------
    counts : ``(N, n_exc)`` spike counts of ``N`` labelled examples (learning off).
    labels : ``(N,)`` integer classes in ``0 .. n_classes - 1``.
    n_classes : number of classes.

    Returns
    -------
    ``(n_exc,)`` int64 class of every neuron, ``-1`` for a neuron that never fired.
    """
    counts = _check_counts(counts)
    labels = torch.as_tensor(labels).to(device=counts.device)
    if labels.dim() != 1 or labels.shape[0] != counts.shape[0]:
        raise ValueError(
            f"labels must be (N,) with N = {counts.shape[0]} (rows of counts), got shape "
            f"{tuple(labels.shape)}"
        )
    if labels.dtype.is_floating_point or labels.dtype == torch.bool:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if not isinstance(n_classes, int) or n_classes < 1:
        raise ValueError(f"n_classes must be a positive integer, got {n_classes!r}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= n_classes):
        raise ValueError(f"labels must lie in 0 .. {n_classes - 1}")
    labels = labels.long()
    sums = torch.zeros((n_classes, counts.shape[1]), dtype=torch.float64, device=counts.device)
    sums.index_add_(0, labels, counts)
    per_class = torch.bincount(labels, minlength=n_classes).to(torch.float64)
    means = sums / per_class.clamp(min=1)[:, None]
    best = means.argmax(dim=0)
    silent = means.amax(dim=0) <= 0
    return torch.where(silent, torch.full_like(best, -1), best)


def class_scores(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Mean spike count of the neurons assigned to each class, ``(N, n_classes)`` (0 for a
    class without neurons; unassigned neurons, class ``-1``, are ignored)."""
    counts = _check_counts(counts)
    assignments = torch.as_tensor(assignments).to(device=counts.device).long()
    if assignments.dim() != 1 or assignments.shape[0] != counts.shape[1]:
        raise ValueError(
            f"assignments must be (n_exc,) with n_exc = {counts.shape[1]}, got shape "
            f"{tuple(assignments.shape)}"
        )
    if assignments.numel() and (int(assignments.min()) < -1 or int(assignments.max()) >= n_classes):
        raise ValueError(f"assignments must lie in -1 .. {n_classes - 1} (-1: unassigned)")
    keep = assignments >= 0
    assigned, counts = assignments[keep], counts[:, keep]
    sums = torch.zeros((counts.shape[0], n_classes), dtype=torch.float64, device=counts.device)
    sums.index_add_(1, assigned, counts)
    per_class = torch.bincount(assigned, minlength=n_classes).to(torch.float64)
    return sums / per_class.clamp(min=1)


def classify(counts: torch.Tensor, assignments: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Predicted class of each example: the class whose assigned neurons have the highest mean
    spike count (:func:`class_scores`). Returns ``(N,)`` int64."""
    return class_scores(counts, assignments, n_classes).argmax(dim=1)
