"""Progress of long steps: to the active display when there is one, nowhere when stderr is not a terminal."""

from __future__ import annotations

import pytest

from mlops.evaluate import PerExampleScores
from mlops.progress import progress, reporting_to, step
from mlops.registry import Compare
from mlops.registry.compare import bootstrap_interval, paired_bootstrap


def test_steps_report_to_the_active_display() -> None:
    seen: list[tuple[str, int, int | None]] = []
    with reporting_to(lambda what, done, total: seen.append((what, done, total))):
        assert list(progress(["a", "b", "c"], "reading")) == ["a", "b", "c"]
        with step("converting") as converting:
            converting.update(1, 2, "converting, half")
        converting.update(2)  # after the step ended: ignored
    assert seen[:4] == [("reading", n, 3) for n in range(4)]
    assert seen[4:] == [("converting", 0, None), ("converting, half", 1, 2)]


def test_without_a_terminal_nothing_is_drawn(capsys: pytest.CaptureFixture[str]) -> None:
    with step("converting") as converting:
        total = sum(progress(range(4), "counting"))
        converting.update(1, 1)
    assert total == 6
    assert capsys.readouterr() == ("", "")


def test_the_bootstrap_reports_its_resamples() -> None:
    labels, predictions = [i % 2 for i in range(20)], [(i // 3) % 2 for i in range(20)]
    scores = PerExampleScores("classification", "digest", [str(i) for i in range(20)], labels, predictions, ["a", "b"])
    seen: list[tuple[str, int, int | None]] = []
    with reporting_to(lambda what, done, total: seen.append((what, done, total))):
        bootstrap_interval(scores, "test_f1", n_bootstrap=600)
        paired_bootstrap(scores, scores, "test_f1", Compare(n_bootstrap=300))
    assert [s for s in seen if s[0] == "bootstrap, test_f1"] == [("bootstrap, test_f1", n, 600) for n in (0, 256, 512, 600)]
    assert seen[-1] == ("paired bootstrap, test_f1", 300, 300)
