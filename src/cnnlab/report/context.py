"""What the section builders read: one run folder, its model and its data, each loaded once.

:class:`RunContext` loads lazily and remembers failures: a run whose data is not reachable (a moved folder,
no IDX files) or whose weights are missing still gets a report, and every section that needs the missing
input says so in one line (:class:`Unavailable` -> :class:`~cnnlab.report.document.Missing`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import CnnlabError
from .document import Block, Missing

if TYPE_CHECKING:
    from ..data import DataBundle, ImageTensorDataset
    from ..runfolder.folder import LoadedRun
    from ..source import ModelSource
    from ..summary import ModelSummary
    from ..train.config import TrainConfig
    from ..train.evaluate import EvalResult

T = TypeVar("T")

#: ``progress(done, total)`` for work inside one step (decoding images, gradient-ascent steps).
WorkFn = Callable[[int, int], None]


class Unavailable(Exception):
    """An input of a section is missing; the message says which and why, in one line."""


@dataclass
class RunContext:
    """One run folder and, loaded on first use, its model, data, summary and evaluation.

    Attributes:
        path: The run folder.
        data: A data SPEC that replaces the run's own (``--data``), or None.
        top_losses: How many highest-loss validation images the evaluation shows.
        work: Progress of the work inside the current step (set by the report builder), or None.
        label: The run's name on the page (default: the folder as given).
    """

    path: Path
    data: str | None = None
    top_losses: int = 16
    work: WorkFn | None = None
    label: str = ""
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def name(self) -> str:
        """How the run is named on the page: ``label``, else the folder as given."""
        return self.label or str(self.path)

    def _once(self, key: str, load: Callable[[], T]) -> T:
        """``load()`` the first time; afterwards its value, or the same :class:`Unavailable` again."""
        if key not in self._memo:
            try:
                self._memo[key] = load()
            except CnnlabError as exc:
                self._memo[key] = Unavailable(str(exc))
            except Unavailable as exc:
                self._memo[key] = exc
        value = self._memo[key]
        if isinstance(value, Unavailable):
            raise value
        return value  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ files of the run folder

    @property
    def config(self) -> TrainConfig:
        """The run's ``config.yaml`` (the report builder refuses a folder without one before any work)."""
        from ..train.config import TrainConfig

        return self._once("config", lambda: TrainConfig.from_yaml(self.path / "config.yaml"))

    @property
    def info(self) -> dict[str, Any]:
        """``run.json`` (parameter counts, best epoch, image size, normalisation)."""

        def load() -> dict[str, Any]:
            try:
                value = json.loads((self.path / "run.json").read_text())
            except (OSError, ValueError) as exc:
                raise Unavailable(f"{self.path / 'run.json'} is missing or damaged ({exc})") from None
            if not isinstance(value, dict):
                raise Unavailable(f"{self.path / 'run.json'} is damaged (not a mapping)")
            return value

        return self._once("info", load)

    def csv_rows(self, name: str) -> list[dict[str, float]]:
        """The rows of ``metrics.csv`` or ``timing.csv`` (numbers), or :class:`Unavailable`."""
        from ..train.callbacks import METRIC_COLUMNS, TIMING_COLUMNS, read_metrics

        def load() -> list[dict[str, float]]:
            path = self.path / name
            try:
                rows = read_metrics(path, TIMING_COLUMNS if name == "timing.csv" else METRIC_COLUMNS)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise Unavailable(f"{path} is missing or damaged ({type(exc).__name__}: {exc})") from None
            if not rows:
                raise Unavailable(f"{path} holds no epoch")
            return rows

        return self._once(name, load)

    # ------------------------------------------------------------------ the model and its data

    @property
    def source(self) -> ModelSource:
        """The trained model, through :func:`cnnlab.source.resolve_model`."""
        from ..source import resolve_model

        return self._once("source", lambda: resolve_model(self.path))

    @property
    def loaded(self) -> LoadedRun:
        """The run folder read back (model with its best weights, classes, preprocessing)."""
        run = self.source.run
        if run is None:  # resolve_model of a folder always reads it as a run
            raise Unavailable(f"{self.path}: not read as a run folder")
        return run

    @property
    def data_spec(self) -> str:
        """The data the report shows: ``--data``, else the run's own."""
        return self.data if self.data is not None else self.config.data

    @property
    def bundle(self) -> DataBundle:
        """The data, loaded as the evaluation loads it (the model's size and channels, the run's split)."""
        from ..data import load_data

        def load() -> DataBundle:
            cfg, size = self.config, self.info["image_size"]
            series = len(size) == 2  # (C, L): series are read as they are (cnnlab.data.series)
            c, h = size[0], (None if series else size[1])
            own = self.data is None
            try:
                return load_data(
                    self.data_spec,
                    data_dir=cfg.data_dir,
                    img_size=h,
                    val_split=cfg.val_split,
                    seed=cfg.seed,
                    limit=cfg.limit if own else None,
                    grayscale=None if series else c == 1,
                    progress=self.work,
                )
            except CnnlabError as exc:
                raise Unavailable(f"data {self.data_spec!r} is not reachable: {exc}") from None

        return self._once("bundle", load)

    @property
    def is_series(self) -> bool:
        """True for a run on series (its input is (C, L)): the image figures give way to maps along time."""
        return len(self.info["image_size"]) == 2

    def require_images(self, part: str) -> None:
        """Say in one line that ``part`` is drawn for images only, when the run is on series.

        Raises:
            Unavailable: The run is on series.
        """
        if self.is_series:
            raise Unavailable(f"{part}: drawn for images; this run is on series ({self.data_spec}), whose "
                              f"maps along time are under Grad-CAM (`cnnlab explain RUN {self.data_spec}`)")

    @property
    def val(self) -> ImageTensorDataset:
        """The validation split (what the evaluation and the interpretation figures use)."""
        val = self.bundle.val
        if len(val) == 0:
            raise Unavailable(f"data {self.data_spec!r} has no validation images")
        return val

    @property
    def summary(self) -> ModelSummary:
        """:func:`cnnlab.summary.summarize` of the trained model at its input size."""
        from ..summary import summarize

        return self._once(
            "summary",
            lambda: summarize(self.loaded.model, tuple(self.loaded.image_size), model_name=self.config.model),
        )

    @property
    def evaluation(self) -> EvalResult:
        """:func:`cnnlab.train.evaluate.evaluate` of the run on the validation split."""
        from ..train.evaluate import evaluate

        return self._once(
            "evaluation",
            lambda: evaluate(self.loaded, self.val, spec=self.data_spec, top_losses=self.top_losses),
        )


def attempt(build: Callable[[], list[Block]]) -> list[Block]:
    """The blocks ``build`` returns, or one :class:`Missing` line when an input it needs is unavailable."""
    try:
        return build()
    except (Unavailable, CnnlabError) as exc:  # CnnlabError: this run's inputs do not fit (e.g. its data)
        return [Missing(str(exc))]


def blocks_of(*builders: Callable[[], list[Block]]) -> list[Block]:
    """Several :func:`attempt` calls in a row: each part of a section fails (in one line) on its own.

    A missing input that several parts need is said once.
    """
    out: list[Block] = []
    for build in builders:
        out += [b for b in attempt(build) if not (isinstance(b, Missing) and b in out)]
    return out


def iter_once(values: Iterator[T]) -> list[T]:
    """Values in order without repeats (a module called twice is listed once)."""
    seen: list[T] = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen
