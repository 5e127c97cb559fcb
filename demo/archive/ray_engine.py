"""Run an archive job's units on Ray: embedded on this machine, or on a cluster you already run.

Each unit is a Ray task (one CPU). A worker process keeps the model and the detector it loaded
for the next task, so each is loaded once per worker, not once per unit. At most two tasks per
worker are in flight (Ray's pattern for bounding pending tasks with ray.wait), so a job of a
million files holds a few hundred results at a time, and each finished unit goes into the
manifest as soon as it returns. A task on a node that is lost is retried by Ray on another
node (max_retries); a unit that fails for any other reason is marked failed with its error,
and the rest go on.

On a cluster, every node must see the files, the output folder and this repository at the
same paths (a shared file system), and run the same Python environment.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
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


def run_unit(unit: Unit, settings: dict, targets: dict) -> list[dict]:
    """One unit's records; the same function the single process calls."""
    from demo.archive.units import image_records, video_record

    model, detector = _loaded(settings["weights"], settings["model"], settings["runtime"], settings["detector"])
    if unit.kind == "images":
        return image_records(list(unit.paths), model, detector, settings["whole_image"])
    out, csv_path = targets[unit.key]
    return [video_record(Path(unit.paths[0]), Path(out), Path(csv_path) if csv_path else None, model, detector)]


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


def run(units: list[Unit], settings: dict, targets: dict, address: str | None, workers: int | None,
        on_done: Callable[[Unit, str, list[dict] | str], None]) -> None:
    """Every unit through Ray tasks; on_done(unit, "done", records) or (unit, "failed", reason) as each ends."""
    ray = connect(address)
    try:
        task = ray.remote(num_cpus=1, max_retries=TASK_RETRIES)(run_unit)
        # --workers caps the tasks running at once; by default every CPU of the cluster works, with a
        # second task queued behind each so that no worker waits for the driver.
        slots = workers or max(1, int(ray.cluster_resources().get("CPU", 1))) * IN_FLIGHT_PER_WORKER
        settings_ref, targets_ref = ray.put(settings), ray.put(targets)
        todo, pending = deque(units), {}
        while todo or pending:
            while todo and len(pending) < slots:
                unit = todo.popleft()
                pending[task.remote(unit, settings_ref, targets_ref)] = unit
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                unit = pending.pop(ref)
                try:
                    on_done(unit, "done", ray.get(ref))
                except ray.exceptions.RayError as err:
                    on_done(unit, "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
    finally:
        ray.shutdown()

