"""Run an archive job's units on Ray: embedded on this machine, or on a cluster you already run.

Each unit is a Ray task (one CPU). A worker process keeps the model and the detector it loaded
for the next task, so each is loaded once per worker, not once per unit. Tasks in flight are
bounded (Ray's pattern with ray.wait), so a job of a million files holds a few hundred results
at a time, and each finished unit is handed back at once (to go into the manifest). A task on
a node that is lost is retried by Ray on another node (max_retries); a unit that fails for any
other reason comes back failed with its error, and the rest go on.

On a cluster, every node must see the files, the output folder and this repository at the
same paths (a shared file system), and run the same Python environment.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path

from demo.archive.units import Unit

ROOT = Path(__file__).resolve().parents[2]
IN_FLIGHT_PER_WORKER = 2
TASK_RETRIES = 3  # Ray's retries of a task whose worker or node died


class RayUnavailable(RuntimeError):
    pass


@functools.lru_cache(maxsize=2)
def _loaded(weights: str | None, model: str, runtime: str, detector: str):
    """The model and detector of this worker process, loaded on its first unit."""
    from demo.pipeline.classify import ModelStore
    from demo.pipeline.faces import FaceDetector

    store = ModelStore(Path(weights) if weights else None, runtime=runtime)
    return store.get(model), FaceDetector(detector)


@functools.lru_cache(maxsize=8)
def _frame_times(path: str) -> list[int]:
    from demo.archive.video_ranges import frame_times

    return frame_times(Path(path))


def run_unit(unit: Unit, settings: dict) -> list[dict]:
    """One unit's records (or a long video's intermediate results); the single process runs the same code."""
    from demo.archive import video_ranges
    from demo.archive.units import image_records, video_record

    model, detector = _loaded(settings["weights"], settings["model"], settings["runtime"], settings["detector"])
    path, a = Path(unit.paths[0]), unit.args
    csv_path = Path(a["csv"]) if a.get("csv") else None
    if unit.kind == "images":
        return image_records(list(unit.paths), model, detector, settings["whole_image"])
    if unit.kind == "video":
        return [video_record(path, Path(a["out"]), csv_path, model, detector)]
    if unit.kind == "range":
        return [video_ranges.analyse_range(path, _frame_times(str(path)), *a["range"], model, detector)]
    if unit.kind == "render":
        video_ranges.render_range(path, _frame_times(str(path)), *a["range"], a["rows"], Path(a["segment"]))
        return [{"segment": a["segment"]}]
    if unit.kind == "join":
        return [video_ranges.join(path, [Path(s) for s in a["segments"]], a["rows"], a["frames"], Path(a["out"]),
                                  csv_path, model.class_names)]
    raise ValueError(f"unknown unit kind {unit.kind!r}")


def connect(address: str | None):
    """ray.init: embedded on this machine (no address), or an existing cluster ("auto", "ray://host:port")."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--engine ray needs Ray: pip install -r requirements-cluster.txt") from None
    env = {"env_vars": {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}}
    try:
        ray.init(address=address, runtime_env=env, log_to_driver=False, logging_level="ERROR",
                 include_dashboard=False if address is None else None)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise RayUnavailable(f"could not reach the Ray cluster at {address}: {err}") from None
    return ray


def run(units: Iterable[Unit], settings: dict, address: str | None, workers: int | None,
        on_done: Callable[[Unit, str, list[dict] | str], Iterable[Unit]]) -> None:
    """Every unit through Ray tasks. on_done(unit, "done", results) or (unit, "failed", reason) is called
    as each ends and returns the units that became ready (a long video's next phase), which run too."""
    ray = connect(address)
    try:
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(run_unit)
        # --workers caps the tasks running at once; by default every CPU of the cluster works, with a
        # second task queued behind each so that no worker waits for the driver.
        slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1))) * IN_FLIGHT_PER_WORKER
        settings_ref = ray.put(settings)
        todo, pending = deque(units), {}
        while todo or pending:
            while todo and len(pending) < slots:
                unit = todo.popleft()
                pending[task.remote(unit, settings_ref)] = unit
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                unit = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    todo.extend(on_done(unit, "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"))
                else:
                    todo.extend(on_done(unit, "done", result))
    finally:
        ray.shutdown()
