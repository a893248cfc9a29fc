"""Conversion on a Dask cluster (a LocalCluster of 2 worker processes): the same bytes as on
one machine; a worker killed mid-job is replaced and its task run again; a job that keeps
failing leaves nothing behind."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import pytest

distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402

import c2s  # noqa: E402
from c2s import C2SError  # noqa: E402
from c2s.sources import MatrixSource  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers need not import tests


@dataclass
class DyingSource(MatrixSource):
    """An .h5ad source whose worker process dies on the first block of rows: once (the
    marker file then exists) or every time."""

    marker: str = ""
    always: bool = False

    def iter_rows(self, start, stop, chunk_size):
        if start == 0 and (self.always or not os.path.exists(self.marker)):
            open(self.marker, "w").close()
            os._exit(1)  # the worker dies mid-job, without a word
        yield from super().iter_rows(start, stop, chunk_size)


@pytest.fixture(scope="module")
def client():
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 2}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture
def h5ad(tmp_path, _pbmc):
    path = tmp_path / "pbmc.h5ad"
    _pbmc.write_h5ad(path)
    return path


def _same_files(a, b) -> None:
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_dask_output_equals_local_output(client, h5ad, tmp_path):
    opts = {"obs_keys": ["cell_type"], "stratify": "cell_type", "shard_size": 160, "seed": 1}
    c2s.io.convert(h5ad, tmp_path / "local", **opts)
    c2s.io.convert(h5ad, tmp_path / "local4", workers=2, **opts)
    ds = c2s.io.convert(h5ad, tmp_path / "dask", client=client, **opts)
    assert len(ds.files) == 5
    _same_files(tmp_path / "local", tmp_path / "dask")
    _same_files(tmp_path / "local", tmp_path / "local4")


def _dying(monkeypatch, tmp_path, always: bool) -> None:
    import c2s.sources as sources

    real = sources.open_source

    def open_dying(*args, **kwargs):
        src = real(*args, **kwargs)
        fields = {k: getattr(src, k) for k in ("where", "shape", "var", "obs", "path")}
        return DyingSource(**fields, marker=str(tmp_path / "died"), always=always)

    monkeypatch.setattr(sources, "open_source", open_dying)


def test_a_worker_killed_mid_job_is_replaced_and_the_task_rerun(
    client, h5ad, tmp_path, monkeypatch
):
    c2s.io.convert(h5ad, tmp_path / "local", shard_size=300)
    _dying(monkeypatch, tmp_path, always=False)
    c2s.io.convert(h5ad, tmp_path / "dask", shard_size=300, client=client)
    assert (tmp_path / "died").exists()  # a worker did die
    _same_files(tmp_path / "local", tmp_path / "dask")


def test_a_job_that_keeps_failing_leaves_nothing(client, h5ad, tmp_path, monkeypatch):
    _dying(monkeypatch, tmp_path, always=True)
    with pytest.raises(C2SError, match="Dask workers died while converting"):
        c2s.io.convert(h5ad, tmp_path / "out", shard_size=300, client=client)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["died", "pbmc.h5ad"]


def test_in_memory_data_is_refused_with_a_client(client, _pbmc, tmp_path):
    with pytest.raises(C2SError, match="write_h5ad"):
        c2s.io.convert(_pbmc, tmp_path / "o", client=client)


def test_soma_queries_and_several_files_convert_the_same_on_dask(client, _pbmc, tmp_path):
    tiledbsoma_io = pytest.importorskip("tiledbsoma.io")
    uri = str(tmp_path / "pbmc_soma")
    tiledbsoma_io.from_anndata(uri, _pbmc, measurement_name="RNA")
    q = {"obs_value_filter": "n_counts > 2000", "obs_keys": ["cell_type"], "shard_size": 100}
    c2s.io.convert(uri, tmp_path / "soma_local", **q)
    c2s.io.convert(uri, tmp_path / "soma_dask", client=client, **q)
    _same_files(tmp_path / "soma_local", tmp_path / "soma_dask")
    files = []
    for i, part in enumerate((_pbmc[:250], _pbmc[250:, 5:])):
        files.append(tmp_path / f"part{i}.h5ad")
        part.copy().write_h5ad(files[-1])
    opts = {"genes": "union", "shard_size": 200, "obs_keys": ["cell_type"]}
    with pytest.warns(UserWarning, match="genes absent"):
        c2s.io.convert(files, tmp_path / "many_local", **opts)
    with pytest.warns(UserWarning, match="genes absent"):
        c2s.io.convert(files, tmp_path / "many_dask", client=client, **opts)
    _same_files(tmp_path / "many_local", tmp_path / "many_dask")
