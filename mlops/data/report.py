"""The data report: per split, the rows read, kept and dropped by reason, class balance or reference lengths, input
lengths in tokens with the share cut by the token budget, duplicates and cross-split overlaps. Every run that loads
data logs it (`data_report.json`, `data_report.png`, headline metrics); `mlops data check` prints it."""

from __future__ import annotations

import functools
import json
import logging
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlops.tasks import spec_for, task_names
from mlops.tracking import DATA_REPORT_ARTIFACT, log_params_effective

logger = logging.getLogger(__name__)

REPORT_PNG = "data_report.png"
BEFORE_SPLIT = "before splitting"  # where rows of a single file are dropped, before the seeded split


@dataclass
class LengthStats:
    """A length distribution: count, mean, median, 95th percentile, max; and the share above a budget, if any."""

    count: int
    mean: float
    median: float
    p95: float
    max: int
    budget: int | None = None
    share_cut: float | None = None

    @classmethod
    def of(cls, lengths: Sequence[int], budget: int | None = None) -> LengthStats:
        if not lengths:
            return cls(0, 0.0, 0.0, 0.0, 0, budget, 0.0 if budget else None)
        ordered = sorted(lengths)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        share = sum(n > budget for n in lengths) / len(lengths) if budget else None
        return cls(len(lengths), statistics.fmean(lengths), statistics.median(lengths), float(p95), ordered[-1], budget, share)


@dataclass
class SplitReport:
    rows_read: int = 0
    rows_kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0  # exact repeats of an input inside the split
    classes: dict[str, int] = field(default_factory=dict)  # classification: rows per class
    reference_words: LengthStats | None = None  # summarisation: reference summary lengths, in the report's text units
    input_tokens: LengthStats | None = None  # set once a tokenizer is known (`add_token_lengths`)


@dataclass
class DataReport:
    """What the data contract checked, kept and dropped, and what the splits look like."""

    task: str
    rows_read: int = 0  # from every source file, before any check
    splits: dict[str, SplitReport] = field(default_factory=dict)
    dropped_before_split: dict[str, int] = field(default_factory=dict)
    overlaps: dict[str, int] = field(default_factory=dict)  # normalised inputs shared: train_validation, train_test, validation_test
    label_ids: dict[str, int] = field(default_factory=dict)
    labels_trimmed: int = 0
    text_tokenizer: str = "words"  # the units of the text lengths, resolved from `dataset.text_tokenizer`

    def split(self, name: str) -> SplitReport:
        return self.splits.setdefault(name, SplitReport())

    def drop(self, where: str, reason: str, n: int) -> None:
        counts = self.dropped_before_split if where == BEFORE_SPLIT else self.split(where).dropped
        counts[reason] = counts.get(reason, 0) + n

    def dropped(self) -> dict[str, int]:
        """Rows dropped by reason, over every split and before splitting (every reason of the task, 0 included)."""
        reasons = spec_for(self.task).drop_reasons if self.task in task_names() else ()  # the spec's: why the contract drops a row
        total = dict.fromkeys(reasons, 0) | self.dropped_before_split
        for split in self.splits.values():
            for reason, n in split.dropped.items():
                total[reason] = total.get(reason, 0) + n
        return total

    def metrics(self) -> dict[str, float]:
        """The headline counts, as run metrics."""
        out: dict[str, float] = {f"rows_dropped_{reason}": float(n) for reason, n in self.dropped().items()}
        for name, split in self.splits.items():
            out[f"rows_{name}"] = float(split.rows_kept)
            out[f"duplicates_{name}"] = float(split.duplicates)
            if split.input_tokens is not None and split.input_tokens.share_cut is not None:
                out[f"share_truncated_{name}"] = split.input_tokens.share_cut
        out |= {f"overlap_{pair}": float(n) for pair, n in self.overlaps.items()}
        if self.label_ids:
            out["rows_label_trimmed"] = float(self.labels_trimmed)
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, document: dict[str, Any]) -> DataReport:
        def lengths(value: dict[str, Any] | None) -> LengthStats | None:
            return LengthStats(**value) if value else None

        splits = {}
        for name, split in document["splits"].items():
            words, tokens = lengths(split["reference_words"]), lengths(split["input_tokens"])
            splits[name] = SplitReport(**{**split, "reference_words": words, "input_tokens": tokens})
        return cls(**{**document, "splits": splits})

    def text(self) -> str:
        """The report as a plain table, for the terminal."""
        lines = [f"{self.task} data: {self.rows_read} rows read", f"{'split':<11}{'read':>7}{'kept':>7}  dropped"]
        for name, split in self.splits.items():
            dropped = ", ".join(f"{r} {n}" for r, n in split.dropped.items()) or "-"
            lines.append(f"{name:<11}{split.rows_read:>7}{split.rows_kept:>7}  {dropped}")
        if self.dropped_before_split:
            lines.append(f"{BEFORE_SPLIT}: dropped " + ", ".join(f"{r} {n}" for r, n in self.dropped_before_split.items()))
        lines.append("duplicates inside a split: " + ", ".join(f"{n} {s.duplicates}" for n, s in self.splits.items()))
        lines.append("inputs shared across splits: " + ", ".join(f"{p.replace('_', '/')} {n}" for p, n in self.overlaps.items()))
        for name, split in self.splits.items():
            if split.classes:
                lines.append(f"{name} classes: " + ", ".join(f"{label} {n}" for label, n in split.classes.items()))
            if split.reference_words is not None:
                r = split.reference_words
                lines.append(f"{name} reference {self.units()}: mean {r.mean:.1f}, median {r.median:g}, p95 {r.p95:g}, max {r.max}")
            if split.input_tokens is not None:
                t = split.input_tokens
                cut = f", {100 * t.share_cut:.1f}% over the budget of {t.budget}" if t.share_cut is not None else ""
                lines.append(f"{name} input tokens: mean {t.mean:.1f}, median {t.median:g}, p95 {t.p95:g}, max {t.max}{cut}")
        if self.label_ids:
            lines.append("label ids: " + ", ".join(f"{label} -> {i}" for label, i in self.label_ids.items()))
            lines.append(f"labels trimmed of surrounding whitespace: {self.labels_trimmed} rows")
        return "\n".join(lines)

    def units(self) -> str:
        """What the text lengths count: words, characters or (jieba's) segmented words."""
        return {"char": "characters", "jieba": "segmented words"}.get(self.text_tokenizer, "words")

    def render(self, path: Path) -> None:
        """A one-figure picture of the report: rows kept and dropped per split, class balance or reference lengths,
        and input lengths against the token budget."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = list(self.splits)
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        kept = [self.splits[n].rows_kept for n in names]
        dropped = [sum(self.splits[n].dropped.values()) for n in names]
        axes[0].bar(names, kept, label="kept")
        axes[0].bar(names, dropped, bottom=kept, label="dropped")
        axes[0].set_title("rows per split")
        axes[0].legend()
        if self.label_ids:
            labels = list(self.label_ids)
            width = 0.8 / max(1, len(names))
            for i, name in enumerate(names):
                counts = [self.splits[name].classes.get(label, 0) for label in labels]
                axes[1].bar([j + i * width for j in range(len(labels))], counts, width=width, label=name)
            family = label_font(labels)
            ticks = [j + 0.4 - width / 2 for j in range(len(labels))]
            if family is None:  # no font has these characters: ids, which `label_ids` in data_report.json names
                axes[1].set_xticks(ticks, [str(self.label_ids[label]) for label in labels])
                axes[1].set_xlabel(f"class id ({DATA_REPORT_ARTIFACT}: label_ids)")
            else:
                axes[1].set_xticks(ticks, labels, fontfamily=family)
            axes[1].set_title("class balance")
            axes[1].legend()
        else:
            refs = {n: s.reference_words for n, s in self.splits.items() if s.reference_words is not None}
            up = [r.p95 - r.mean for r in refs.values()]
            axes[1].bar(list(refs), [r.mean for r in refs.values()], yerr=[[0.0] * len(up), up], capsize=4)
            axes[1].set_title(f"reference summary {self.units()} (mean, p95)")
        tokens = {n: s.input_tokens for n, s in self.splits.items() if s.input_tokens is not None}
        if tokens:
            axes[2].bar(list(tokens), [t.mean for t in tokens.values()], label="mean")
            axes[2].bar(list(tokens), [t.p95 - t.mean for t in tokens.values()], bottom=[t.mean for t in tokens.values()], label="to p95")
            budget = next(iter(tokens.values())).budget
            if budget:
                axes[2].axhline(budget, color="black", linestyle="--", label=f"budget {budget}")
            axes[2].legend()
        axes[2].set_title("input tokens")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)


CJK_FONT_FILES = ("NotoSansCJK", "NotoSerifCJK", "SourceHanSans", "wqy-zenhei")  # Debian's fonts-noto-cjk first


@functools.lru_cache(maxsize=1)
def _fonts() -> tuple[tuple[str, frozenset[int]], ...]:
    """(family, code points) of matplotlib's default font, then of an installed CJK font if any. The CJK font is
    registered with matplotlib here: its font cache may predate the font's installation."""
    from matplotlib import font_manager, rcParams
    from matplotlib.ft2font import FT2Font

    default = font_manager.findfont(font_manager.FontProperties(family=rcParams["font.family"]))
    fonts = [(FT2Font(default).family_name, frozenset(FT2Font(default).get_charmap()))]
    cjk = sorted(p for p in font_manager.findSystemFonts() if Path(p).name.startswith(CJK_FONT_FILES) and "Bold" not in p)
    if cjk:
        font_manager.fontManager.addfont(cjk[0])
        face = FT2Font(cjk[0])
        fonts.append((face.family_name, frozenset(face.get_charmap())))
    return tuple(fonts)


def label_font(labels: Sequence[str]) -> str | None:
    """The font family that has every character of `labels` (the default one where it does), or None when no
    installed font has them; says once that the picture then labels classes by id."""
    needed = {ord(c) for label in labels for c in label if not c.isspace()}
    for family, points in _fonts():
        if needed <= points:
            return family
    _say_no_font()
    return None


@functools.lru_cache(maxsize=1)
def _say_no_font() -> None:
    logger.warning(
        "data report: no installed font has the class names' characters; the picture labels classes by id "
        "(install a CJK font: apt-get install fonts-noto-cjk)"
    )


def add_token_lengths(report: DataReport, inputs: dict[str, list[str]], tokenizer: Any, budget: int | None) -> None:
    """Input lengths in tokens per split, and the share above `budget` (`max_length` or `max_document_tokens`)."""
    for name, texts in inputs.items():
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        report.split(name).input_tokens = LengthStats.of([len(x) for x in ids], budget)


@functools.lru_cache(maxsize=4)
def _picture(document: str) -> bytes:
    """The rendered report, once per distinct report: every trial of a sweep logs the same picture."""
    report = DataReport.from_dict(json.loads(document))
    with tempfile.TemporaryDirectory(prefix="mlops-report-") as tmp:
        path = Path(tmp) / REPORT_PNG
        report.render(path)
        return path.read_bytes()


def log_data_report(report: DataReport) -> None:
    """Log the report to the active run: `data_report.json`, `data_report.png` and the headline metrics."""
    import mlflow

    document = report.to_dict()
    log_params_effective({"text_tokenizer": report.text_tokenizer})
    mlflow.log_dict(document, DATA_REPORT_ARTIFACT)
    mlflow.log_metrics(report.metrics())
    with tempfile.TemporaryDirectory(prefix="mlops-report-") as tmp:
        picture = Path(tmp) / REPORT_PNG
        picture.write_bytes(_picture(json.dumps(document)))
        mlflow.log_artifact(str(picture))
