"""``losskernel snapshot-docs``: the copy of a run that the documentation quotes."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
import yaml
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from losskernel.cli import main
from losskernel.provenance import PNG_PREFIX, provenance_header
from losskernel.snapshot import (
    SnapshotError,
    format_number,
    read_stamp,
    referenced_figures,
    write_snapshot,
)

COMMIT = "a" * 40


def record(commit: str = COMMIT, dirty: str = "0", host: str | None = None) -> dict[str, str]:
    return {"created_at": "2026-12-01T10:00:00+00:00", "git_commit": commit, "git_dirty": dirty,
            "input_sha256": "{}", "packages": '{"numpy": "2.4.6", "torch": "2.14.1"}',
            "host": socket.gethostname() if host is None else host}


def make_run(root: Path, **overrides: str) -> Path:
    """A run's tables and two figures, each with a provenance record."""
    results = root / "results"
    (results / "tables").mkdir(parents=True)
    header = provenance_header(record(**overrides))
    (results / "tables" / "headline.tsv").write_text(
        header + "experiment\tmetric\tvalue\tmodel_spread\tmodels\tseed_spread\tseeds\n"
                 "modarith\troc_auc\t0.9\t\t1\t0.01\t2\n")
    (results / "tables" / "comparisons.tsv").write_text(header + "experiment\tkernel\n")
    for experiment, name in (("modarith", "umap.png"), ("digits", "roc.png")):
        (results / "figures" / experiment).mkdir(parents=True)
        info = PngInfo()
        for key, value in record(**overrides).items():
            info.add_text(PNG_PREFIX + key, value)
        Image.new("RGB", (4, 4), "white").save(results / "figures" / experiment / name,
                                               pnginfo=info)
    return results


def make_docs(root: Path, *figures: str) -> Path:
    docs = root / "docs"
    (docs / "experiments").mkdir(parents=True)
    (docs / "index.md").write_text("# Home\n" + "".join(
        f"![x](snapshot/figures/{figure})\n" for figure in figures))
    (docs / "experiments" / "page.md").write_text("no figure here\n")
    return docs


def test_copies_the_tables_and_exactly_the_referenced_figures_with_a_stamp(tmp_path):
    results, docs = make_run(tmp_path), make_docs(tmp_path, "modarith/umap.png")
    now = dt.datetime(2026, 12, 7, 12, tzinfo=dt.UTC)
    snapshot = write_snapshot(results, docs, now=now)
    assert referenced_figures(docs) == [("modarith", "umap.png")]
    assert sorted(p.relative_to(docs / "snapshot").as_posix() for p in snapshot.files) == [
        "comparisons.tsv", "figures/modarith/umap.png", "headline.tsv", "stamp.yaml"]
    assert (docs / "snapshot" / "headline.tsv").read_bytes() == \
        (results / "tables" / "headline.tsv").read_bytes()
    stamp = read_stamp(docs / "snapshot")
    assert stamp["commit"] == COMMIT
    assert stamp["run_created_at"] == "2026-12-01T10:00:00+00:00"
    assert stamp["snapshot_taken_at"] == "2026-12-07T12:00:00+00:00"
    assert stamp["packages"] == {"torch": "2.14.1", "numpy": "2.4.6"}
    assert stamp["machine"]["host"] == socket.gethostname()
    assert set(stamp["files"]) == {"headline.tsv", "comparisons.tsv", "figures/modarith/umap.png"}


def test_a_figure_no_page_shows_any_more_leaves_the_snapshot(tmp_path):
    results = make_run(tmp_path)
    docs = make_docs(tmp_path, "modarith/umap.png", "digits/roc.png")
    write_snapshot(results, docs)
    (docs / "index.md").write_text("![x](snapshot/figures/digits/roc.png)\n")
    write_snapshot(results, docs)
    assert not (docs / "snapshot" / "figures" / "modarith").exists()
    assert (docs / "snapshot" / "figures" / "digits" / "roc.png").is_file()


@pytest.mark.parametrize(("overrides", "says"), [
    ({"dirty": "1"}, "uncommitted changes"),
    ({"host": "another-machine"}, "made on host 'another-machine'"),
])
def test_refuses_a_run_it_cannot_vouch_for_and_keeps_the_old_snapshot(tmp_path, overrides, says):
    docs = make_docs(tmp_path, "modarith/umap.png")
    write_snapshot(make_run(tmp_path / "good"), docs)
    before = (docs / "snapshot" / "stamp.yaml").read_text()
    with pytest.raises(SnapshotError, match=says):
        write_snapshot(make_run(tmp_path / "bad", **overrides), docs)
    assert (docs / "snapshot" / "stamp.yaml").read_text() == before


def test_refuses_files_of_different_commits_and_a_missing_figure(tmp_path):
    results = make_run(tmp_path)
    (results / "tables" / "comparisons.tsv").write_text(
        provenance_header(record(commit="b" * 40)) + "experiment\tkernel\n")
    with pytest.raises(SnapshotError, match="different commits"):
        write_snapshot(results, make_docs(tmp_path / "a", "modarith/umap.png"))
    with pytest.raises(SnapshotError, match=r"figures/fashion/none.png.*run the default first"):
        write_snapshot(make_run(tmp_path / "b"), make_docs(tmp_path / "b", "fashion/none.png"))


def test_an_edited_snapshot_file_no_longer_matches_its_stamp(tmp_path):
    docs = make_docs(tmp_path, "modarith/umap.png")
    write_snapshot(make_run(tmp_path), docs)
    headline = docs / "snapshot" / "headline.tsv"
    headline.write_text(headline.read_text().replace("0.9", "0.99"))
    with pytest.raises(SnapshotError, match=r"headline\.tsv differ from stamp\.yaml"):
        read_stamp(docs / "snapshot")


def test_the_command_writes_the_snapshot_and_the_readmes_table_and_names_the_run(
        tmp_path, capsys):
    results, docs = make_run(tmp_path), make_docs(tmp_path, "digits/roc.png")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- snapshot-table: modarith/roc_auc -->\nold\n"
                      "<!-- end snapshot-table -->\nafter\n")
    assert main(["snapshot-docs", "--results", str(results), "--docs", str(docs),
                 "--readme", str(readme)]) == 0
    out = capsys.readouterr().out
    assert f"4 files from commit {COMMIT[:12]}, run on 2026-12-01" in out
    assert yaml.safe_load((docs / "snapshot" / "stamp.yaml").read_text())["commit"] == COMMIT
    table = readme.read_text()
    assert "| modarith | `roc_auc` | 0.9 | one model | 0.01 (2 seeds) |" in table
    assert "old" not in table and table.endswith("<!-- end snapshot-table -->\nafter\n")
    assert f"From `docs/snapshot/`: commit {COMMIT[:12]}" in table
    assert main(["snapshot-docs", "--results", str(tmp_path / "nothing"),
                 "--docs", str(docs), "--readme", str(readme)]) == 2
    assert "run the default first" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "printed"), [
    (0.999608, "0.9996"), (0.494117, "0.494"), (0.0137546, "0.0138"), (1.16234, "1.16"),
    (3.0, "3"), (1347.0, "1,347"), (12345.6, "12,346"), (0.0, "0"), (float("nan"), "n/a"),
    (-0.00421, "-0.00421")])
def test_a_result_prints_with_three_significant_digits_unless_it_would_round_to_a_whole(
        value, printed):
    assert format_number(value) == printed
