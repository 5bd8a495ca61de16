"""Result files are written whole or not at all, and a file that cannot be read stops the step
that reads it with an error naming the file and the fix."""

from __future__ import annotations

import errno
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from losskernel import provenance
from losskernel.method.traces import TRACE_VARIABLES, load_traces, save_traces
from losskernel.pipeline.io import load_saved, read_tsv
from losskernel.provenance import (
    UnreadableFileError,
    atomic_path,
    format_lineage,
    lineage,
    reading,
    write_tsv,
)

FIX = "delete it and rerun snakemake, which remakes it"


def test_atomic_path_replaces_the_file_when_the_body_succeeds(tmp_path):
    path = tmp_path / "new" / "table.tsv"  # the parent is created
    with atomic_path(path) as partial:
        assert partial.parent == path.parent and partial.suffix == ".tsv" and partial != path
        partial.write_text("new")
        assert not path.exists()  # nothing at the final path until the body succeeded
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["table.tsv"]


def test_atomic_path_keeps_the_old_file_and_no_temporary_one_when_the_body_fails(tmp_path):
    path = tmp_path / "kernel.nc"
    path.write_text("old")
    with pytest.raises(ZeroDivisionError), atomic_path(path) as partial:
        partial.write_text("half a fi")
        raise ZeroDivisionError
    assert path.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kernel.nc"]


def test_atomic_path_names_a_full_disk(tmp_path, monkeypatch):
    """netCDF reports a write that ran out of space as a bare "HDF error"."""
    path = tmp_path / "kernel.nc"
    monkeypatch.setattr(provenance.shutil, "disk_usage", lambda _: SimpleNamespace(free=0))
    with pytest.raises(OSError, match="No space left on device") as raised, \
            atomic_path(path) as partial:
        partial.write_text("half")
        raise RuntimeError("NetCDF: HDF error")
    assert raised.value.errno == errno.ENOSPC and str(path) in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_reading_names_the_file_and_the_fix_but_not_for_a_missing_file(tmp_path):
    path = tmp_path / "traces.nc"
    with pytest.raises(UnreadableFileError) as raised, reading(path):
        raise OSError("[Errno -101] NetCDF: HDF error")
    assert str(raised.value) == (f"{path} cannot be read (truncated or corrupted: OSError: "
                                 f"[Errno -101] NetCDF: HDF error); {FIX}")
    with pytest.raises(FileNotFoundError), reading(path):
        open(path)


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def overwrite(path, size=1024):
    """Flip every bit of ``size`` bytes in the middle of the file."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + size] = bytes(255 - byte for byte in data[middle:middle + size])
    path.write_bytes(bytes(data))


def tiny_traces(rng) -> xr.Dataset:
    return xr.Dataset({
        "loss": (TRACE_VARIABLES["loss"], rng.random((2, 50, 200), dtype=np.float32)),
        "init_loss": (TRACE_VARIABLES["init_loss"], rng.random(200, dtype=np.float32)),
        "batch_loss": (TRACE_VARIABLES["batch_loss"], rng.random((2, 50), dtype=np.float32)),
        "distance": (TRACE_VARIABLES["distance"], rng.random((2, 50), dtype=np.float32)),
    }, coords={"obs_id": [f"x{i}" for i in range(200)]},
        attrs={"created_at": "now", "git_commit": "abc", "input_sha256": "{}"})


@pytest.mark.parametrize("damage", [truncate, overwrite])
def test_a_damaged_trace_file_is_refused_naming_it(damage, tmp_path, rng):
    """The losses are stored uncompressed: only their checksum notices overwritten bytes."""
    path = tmp_path / "traces.nc"
    save_traces(tiny_traces(rng), path)
    damage(path)
    with pytest.raises(UnreadableFileError, match=f"^{path} cannot be read .*; {FIX}$"):
        load_traces(path)


@pytest.mark.parametrize("damage", [truncate, overwrite])
def test_a_damaged_torch_file_is_refused_naming_it(damage, tmp_path):
    """torch itself loads an archive with overwritten bytes without a word."""
    path = tmp_path / "model.pt"
    torch.save({"state_dict": {"weight": torch.randn(100, 100)}}, path)
    damage(path)
    with pytest.raises(UnreadableFileError, match=f"^{path} cannot be read .*; {FIX}$"):
        load_saved(path)


def test_a_table_that_is_not_text_is_refused_naming_it(tmp_path):
    path = tmp_path / "metrics.tsv"
    write_tsv(pd.DataFrame({"metric": ["auc"], "value": [0.9]}), path, {"rule": "x"})
    path.write_bytes(path.read_bytes() + b"\xff\xfe\x00garbage")
    with pytest.raises(UnreadableFileError, match=FIX):
        read_tsv(path)


def test_the_lineage_of_an_unreadable_file_flags_it(tmp_path, rng):
    path = tmp_path / "traces.nc"
    save_traces(tiny_traces(rng), path)
    truncate(path)
    nodes = lineage(path, workdir=tmp_path)
    assert [node.path for node in nodes] == [str(path)] and FIX in nodes[0].unreadable
    text = format_lineage(nodes)
    assert f"UNREADABLE  {path} cannot be read" in text
    assert text.splitlines()[-1].startswith("UNREADABLE FILES: 1 artifacts, 0 inputs checked, "
                                            "0 changed, 0 missing, 1 unreadable;")
