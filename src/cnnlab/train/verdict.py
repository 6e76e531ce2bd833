"""The verdict of a run: is its result good, and if not, what to do next.

Computed once, here, from what a run folder holds (``metrics.csv``), the evaluation of its kept weights on
the validation split and the training data's class counts; ``cnnlab train`` and ``cnnlab evaluate`` print
it, ``evaluation.json`` and ``--json`` carry it, the report opens with it. Each check is one function:

* **at chance**: accuracy not above the majority-class rate by a binomial margin, one class predicted for
  more than 90% of the images, or a training loss within 1% of ln(classes) (a uniform guess);
* **still improving**: the validation loss still falling at the last epochs: train longer;
* **overfitting**: the onset the learning curves mark (:func:`cnnlab.report.plots.overfitting_onset`), with
  the epoch of the weights kept;
* **class imbalance** in the training data, and classes the model never predicts;
* **possible label errors**: top losses predicted wrong with more than 90% confidence;
* **leakage**: near-duplicate images across train and val (cosine similarity of the pretrained backbone's
  embeddings, :func:`near_duplicates`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

__all__ = [
    "Finding",
    "Verdict",
    "judge",
    "near_duplicates",
]

#: Standard errors above the majority-class rate an accuracy must reach to count as learned (~97.7%).
CHANCE_Z = 2.0
#: A model predicting one class for more than this share of the images has learned nothing else.
ONE_CLASS_SHARE = 0.9
#: A training loss within this fraction of ln(classes) is a uniform guess.
CHANCE_LOSS_TOL = 0.01
#: A wrong prediction at least this confident is listed as a possible label error.
CONFIDENT_WRONG = 0.9
#: Largest over smallest training class count from which the data is called imbalanced.
IMBALANCE_RATIO = 3.0
#: Relative fall of the validation loss over the last epoch that counts as still improving.
IMPROVING_DROP = 0.01
#: Cosine similarity of two images' embeddings above which they count as near-duplicates.
DUPLICATE_COSINE = 0.97

Status = Literal["good", "at chance", "doubtful"]


@dataclass(frozen=True)
class Finding:
    """One check that fired.

    Attributes:
        check: ``chance``, ``improving``, ``overfitting``, ``imbalance``, ``never_predicted``,
            ``label_errors`` or ``leakage``.
        message: What was found, in one line.
        fix: What to do about it ("" when nothing is to be done).
        files: The files concerned (possible label errors, leaked pairs as ``train <-> val``).
    """

    check: str
    message: str
    fix: str = ""
    files: tuple[str, ...] = ()

    def text(self) -> str:
        """The finding and its fix in one line."""
        return f"{self.message}; fix: {self.fix}" if self.fix else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "message": self.message, "fix": self.fix, "files": list(self.files)}


@dataclass(frozen=True)
class Verdict:
    """Whether a run's kept weights are good, and the findings that say otherwise or what to do next.

    Attributes:
        status: ``good``, ``at chance`` (learned nothing) or ``doubtful`` (the accuracy cannot be trusted:
            leakage, classes never predicted).
        accuracy: Validation accuracy of the kept weights (None without an evaluation).
        chance: The majority-class rate of the validation split (what always guessing that class scores).
        findings: The checks that fired, most important first.
    """

    status: Status
    accuracy: float | None = None
    chance: float | None = None
    findings: tuple[Finding, ...] = field(default_factory=tuple)

    def headline(self) -> str:
        """The verdict in a few words: ``good: 99.0% validation accuracy (chance 50.0%)``."""
        score = ""
        if self.accuracy is not None:
            chance = f" (chance {self.chance:.1%})" if self.chance is not None else ""
            score = f": {self.accuracy:.1%} validation accuracy{chance}"
        return f"{self.status}{score}"

    def line(self) -> str:
        """One line for the end of ``train`` and ``evaluate``: the headline, then each finding and its fix."""
        return "; ".join([f"verdict: {self.headline()}", *(f.text() for f in self.findings)])

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Verdict:
        """The verdict :meth:`to_dict` wrote (``run.json``, ``evaluation.json``)."""
        findings = tuple(Finding(str(f["check"]), str(f["message"]), str(f.get("fix", "")),
                                 tuple(map(str, f.get("files", ())))) for f in d.get("findings", []))
        return cls(d["status"], d.get("accuracy"), d.get("chance"), findings)

    def to_dict(self) -> dict[str, Any]:
        """The ``verdict`` of ``evaluation.json`` and ``--json``."""
        return {"status": self.status, "accuracy": self.accuracy, "chance": self.chance,
                "line": self.line(), "findings": [f.to_dict() for f in self.findings]}


# -- the checks ----------------------------------------------------------------------------------------


def _chance(accuracy: float, confusion: Sequence[Sequence[int]], classes: Sequence[str],
            train_loss: float | None, fix: str, items: str = "images") -> Finding | None:
    n = sum(sum(row) for row in confusion)
    k = len(classes)
    if n == 0 or k < 2:
        return None
    support = [sum(row) for row in confusion]
    majority = max(support) / n
    margin = CHANCE_Z * math.sqrt(max(majority * (1 - majority), 1e-12) / n)
    predicted = [sum(row[j] for row in confusion) for j in range(k)]
    top = max(range(k), key=predicted.__getitem__)
    reasons = []
    if accuracy <= majority + margin:
        reasons.append(f"accuracy {accuracy:.1%} is not above the majority-class rate {majority:.1%} "
                       f"(+{margin:.1%} margin)")
    if predicted[top] > ONE_CLASS_SHARE * n and support[top] <= ONE_CLASS_SHARE * n:
        reasons.append(f"{classes[top]!r} is predicted for {predicted[top]} of {n} {items}")
    uniform = math.log(k)
    if train_loss is not None and abs(train_loss - uniform) <= CHANCE_LOSS_TOL * uniform:
        reasons.append(f"the training loss {train_loss:.4f} is a uniform guess's ln({k}) = {uniform:.4f}")
    if not reasons:
        return None
    return Finding("chance", "the model has learned nothing: " + "; ".join(reasons), fix)


def _chance_fix(*, epochs: int, pretrained: bool, lr: float | None, run: str, backbone: bool = True) -> str:
    fixes = [f"train longer (`cnnlab train --out {run} --resume --epochs {max(2 * epochs, 10)}`)"]
    if lr is not None:
        fixes.append(f"or train with a lower learning rate (`--lr {lr / 3:.1g}`)")
    if not pretrained and backbone:
        fixes.append("or use transfer learning: train the pretrained backbone (`--model efficientnet_lite0 "
                     "--pretrained --transfer features`)")
    return " ".join(fixes)


def _improving(rows: Sequence[Mapping[str, float]], *, run: str, epochs: int) -> Finding | None:
    if len(rows) < 2:
        return None
    last, before = float(rows[-1]["val_loss"]), float(rows[-2]["val_loss"])
    best = min(float(r["val_loss"]) for r in rows)
    if not (last <= best and last < before * (1 - IMPROVING_DROP)):
        return None
    more = 2 * max(epochs, len(rows))
    return Finding("improving", f"still improving: the validation loss fell {before:.4f} -> {last:.4f} "
                   "in the last epoch", f"train longer (`cnnlab train --out {run} --resume --epochs {more}`)")


def _overfitting(rows: Sequence[Mapping[str, float]], kept_epoch: int | None,
                 preset: str = "standard") -> Finding | None:
    from ..report.plots import overfitting_onset  # the marker the learning curves draw

    onset = overfitting_onset([float(r["val_loss"]) for r in rows], [float(r["train_loss"]) for r in rows])
    if onset is None:
        return None
    epoch = int(rows[onset]["epoch"])
    kept = f"; the kept weights are epoch {kept_epoch}'s" if kept_epoch is not None else ""
    return Finding("overfitting", f"overfitting from epoch {epoch} (validation loss rises while the training "
                   f"loss falls){kept}", f"more data, or train with `--augment {preset}` or fewer epochs")


def _imbalance(train_counts: Mapping[str, int], items: str = "images") -> Finding | None:
    counts = {c: n for c, n in train_counts.items()}
    if len(counts) < 2 or min(counts.values()) == 0:
        small = [c for c, n in counts.items() if n == 0]
        if small:
            return Finding("imbalance", f"class imbalance: no training {items} of {', '.join(small)}",
                           f"add training {items} of every class")
        return None
    big, little = max(counts, key=counts.__getitem__), min(counts, key=counts.__getitem__)
    ratio = counts[big] / counts[little]
    if ratio < IMBALANCE_RATIO:
        return None
    return Finding("imbalance", f"class imbalance: {counts[big]} training {items} of {big!r}, "
                   f"{counts[little]} of {little!r} ({ratio:.1f}x)",
                   f"add {items} of the small classes; read the per-class recall, not the accuracy")


def _never_predicted(confusion: Sequence[Sequence[int]], classes: Sequence[str],
                     items: str = "images") -> Finding | None:
    never = [c for j, c in enumerate(classes) if sum(row[j] for row in confusion) == 0 and
             sum(confusion[j]) > 0]
    if not never:
        return None
    shown = ", ".join(never[:10]) + (f" and {len(never) - 10} more" if len(never) > 10 else "")
    return Finding("never_predicted", f"never predicted: {shown} ({len(never)} of {len(classes)} classes)",
                   f"train longer, or add {items} of these classes")


def _label_errors(top_losses: Sequence[Mapping[str, Any]], items: str = "image(s)") -> Finding | None:
    wrong = [t for t in top_losses if t.get("label") != t.get("predicted")
             and float(t.get("confidence", 0.0)) > CONFIDENT_WRONG]
    if not wrong:
        return None
    files = tuple(str(t.get("path", f"#{t.get('index')}")) for t in wrong)
    names = ", ".join(f"{f.rsplit('/', 1)[-1]} ({t['label']} -> {t['predicted']} "
                      f"{float(t['confidence']):.0%})" for f, t in zip(files, wrong, strict=True))
    return Finding("label_errors", f"possible label errors: {len(wrong)} {items} predicted wrong with > "
                   f"{CONFIDENT_WRONG:.0%} confidence: {names}", "look at them; relabel or remove the "
                   "wrong ones", files)


def _leakage(pairs: Sequence[tuple[str, str, float]]) -> Finding | None:
    if not pairs:
        return None
    files = tuple(f"{a} <-> {b}" for a, b, _ in pairs)
    shown = ", ".join(f"{a.rsplit('/', 1)[-1]} <-> {b.rsplit('/', 1)[-1]} ({s:.3f})" for a, b, s in pairs[:5])
    more = f" and {len(pairs) - 5} more" if len(pairs) > 5 else ""
    return Finding("leakage", f"leakage: {len(pairs)} validation image(s) nearly duplicate a training image "
                   f"(cosine > {DUPLICATE_COSINE}): {shown}{more}", "remove the duplicates from one "
                   "split; the validation accuracy is optimistic until then", files)


def judge(
    rows: Sequence[Mapping[str, float]],
    *,
    classes: Sequence[str],
    accuracy: float | None = None,
    confusion: Sequence[Sequence[int]] | None = None,
    top_losses: Sequence[Mapping[str, Any]] = (),
    train_counts: Mapping[str, int] | None = None,
    duplicates: Sequence[tuple[str, str, float]] = (),
    kept_epoch: int | None = None,
    pretrained: bool = False,
    lr: float | None = None,
    run: str = "RUN",
    series: bool = False,
    backbone: bool = True,
) -> Verdict:
    """The verdict of a run from its epochs and the evaluation of its kept weights.

    Args:
        rows: The rows of ``metrics.csv`` (``epoch``, ``train_loss``, ``val_loss``, ...).
        classes: The class names (confusion order).
        accuracy: Validation accuracy of the kept weights (an :class:`~cnnlab.train.evaluate.EvalResult`'s).
        confusion: ``confusion[true][predicted]`` counts of the same evaluation.
        top_losses: Its highest-loss images (``label``, ``predicted``, ``confidence``, ``path``).
        train_counts: Training images per class.
        duplicates: Near-duplicate (train file, val file, cosine) pairs (:func:`near_duplicates`).
        kept_epoch: The epoch whose weights the run kept (best validation loss).
        pretrained: The run started from pretrained weights (the fix for chance is then not "use them").
        lr: The run's learning rate (the fix may suggest a lower one).
        run: The run folder, as the fixes should name it.
        series: The run is a 1-D convnet's: findings say "series", fixes name the series presets.
        backbone: The pretrained ImageNet backbone suits the data (photos: not series, not small grayscale
            images), so a run at chance is told to use it.

    Returns:
        A :class:`Verdict`.
    """
    epochs = len(rows)
    train_loss = float(rows[-1]["train_loss"]) if rows else None
    if kept_epoch is None and rows:
        kept_epoch = int(min(rows, key=lambda r: float(r["val_loss"]))["epoch"])
    chance = None
    # what the findings count, how the label-error finding counts them, and the augmentation to suggest
    items, counted, preset = ("series", "series", "series") if series else ("images", "image(s)", "standard")
    findings: list[Finding | None] = []
    if confusion is not None and accuracy is not None:
        n = sum(sum(r) for r in confusion)
        chance = max(sum(r) for r in confusion) / n if n else None
        fix = _chance_fix(epochs=epochs, pretrained=pretrained, lr=lr, run=run, backbone=backbone)
        findings.append(_chance(accuracy, confusion, classes, train_loss, fix, items))
    elif rows and train_loss is not None and len(classes) >= 2:  # no evaluation: the loss alone
        uniform = math.log(len(classes))
        if abs(train_loss - uniform) <= CHANCE_LOSS_TOL * uniform:
            findings.append(Finding("chance", f"the model has learned nothing: the training loss "
                                    f"{train_loss:.4f} is a uniform guess's ln({len(classes)})",
                                    _chance_fix(epochs=epochs, pretrained=pretrained, lr=lr, run=run,
                                                backbone=backbone)))
    at_chance = any(f is not None for f in findings)
    findings += [
        _leakage(duplicates),
        _never_predicted(confusion, classes, items) if confusion is not None and not at_chance else None,
        None if at_chance else _improving(rows, run=run, epochs=epochs),
        _overfitting(rows, kept_epoch, preset) if rows else None,
        _imbalance(train_counts, items) if train_counts is not None else None,
        _label_errors(top_losses, counted),
    ]
    kept = tuple(f for f in findings if f is not None)
    checks = {f.check for f in kept}
    status: Status = ("at chance" if "chance" in checks
                      else "doubtful" if checks & {"leakage", "never_predicted"} else "good")
    return Verdict(status, accuracy, chance, kept)


def near_duplicates(
    train: torch.Tensor,
    val: torch.Tensor,
    train_files: Sequence[str],
    val_files: Sequence[str],
    *,
    threshold: float = DUPLICATE_COSINE,
    limit: int = 50,
) -> list[tuple[str, str, float]]:
    """Validation images whose embedding nearly equals a training image's (cosine above ``threshold``).

    Args:
        train: Training embeddings ``[N, D]`` (e.g. a pretrained backbone's pooled features).
        val: Validation embeddings ``[M, D]``.
        train_files: The N training files; ``val_files``: the M validation files.
        threshold: Cosine similarity above which two images count as the same.
        limit: At most this many pairs, most similar first.

    Returns:
        ``(train file, val file, cosine)`` for each validation image's nearest training image above it.
    """
    import torch
    import torch.nn.functional as F

    if train.numel() == 0 or val.numel() == 0:
        return []
    a = F.normalize(train.flatten(1).float(), dim=1)
    b = F.normalize(val.flatten(1).float(), dim=1)
    best, where = torch.empty(b.shape[0]), torch.empty(b.shape[0], dtype=torch.long)
    for start in range(0, b.shape[0], 1024):  # a [1024, N] block at a time: bounded memory
        sim = b[start : start + 1024] @ a.T
        best[start : start + 1024], where[start : start + 1024] = sim.max(dim=1)
    hits = [(float(best[j]), j) for j in range(b.shape[0]) if float(best[j]) > threshold]
    hits.sort(reverse=True)
    return [(str(train_files[int(where[j])]), str(val_files[j]), s) for s, j in hits[:limit]]

