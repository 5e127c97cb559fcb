"""Soak and burst against the real server (python app.py), with its memory and disk sampled.

    python bench/soak.py [--clients 4] [--seconds 120] [--burst-clients 50] [--burst-requests 5]
                         [--out bench/results]

Starts app.py on a free port with its own TMPDIR (so the server's private file folder can
be measured), then:
1. burst: B clients at once, R requests each (all must be answered);
2. soak: N clients for T seconds, each sending a request as soon as the last came back;
3. hostile: a 13000 x 13000 PNG sent as a data URL, 100 sessions each sending a 40 MB data URL,
   a 1 GB JSON body and an upload of 12 files of 190 MB, each with and without a declared
   length, 20 uploads of 190 MB at once, and 5,000 sessions sending one event each and never
   reading the answers (time to refusal, extra memory at the peak and after, extra disk at the
   peak);
4. stop: SIGTERM, then counts the image files left under TMPDIR.
Every second it samples the server's resident memory (VmRSS) and its files on disk (disk_bytes).
Writes soak.json and soak.md. Requests go to 127.0.0.1 only. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from demo.guards.garbage import DELAY_S, MIN_GAP_S  # noqa: E402
from tests.server import (  # noqa: E402
    MULTIPART,
    event_id_of,
    multipart_files,
    post_pieces,
    queue_join,
    running_app,
    vm_kib,
)

EXAMPLES = ROOT / "examples"
SETTLE_S = MIN_GAP_S + DELAY_S + 1  # after a case: the longest a refused input may wait for its collection
IMAGES = [EXAMPLES / "astronaut.jpg", EXAMPLES / "four_faces.jpg"]
SESSION_FLOOD = 5000
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}


def disk_bytes(pid: int, tmp: Path) -> int:
    """Bytes of the server's files: those in its folder, and those deleted while it still has them
    open (an upload being written that the sweeper unlinked still takes its space)."""
    total = 0
    for path in tmp.rglob("*"):
        try:
            if path.is_file():
                total += path.stat().st_size
        except FileNotFoundError:  # swept while we looked
            pass
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith(" (deleted)"):
                total += fd.stat().st_size
        except (FileNotFoundError, ProcessLookupError):  # closed while we looked
            pass
    return total


class Sampler(threading.Thread):
    """Resident memory and disk use of the server, once a second."""

    def __init__(self, pid: int, tmp: Path):
        super().__init__(daemon=True)
        self.pid, self.tmp, self.rows, self.phase = pid, tmp, [], "start"
        self._stop = threading.Event()
        self.t0 = time.time()

    def run(self):
        while not self._stop.wait(1.0):
            try:
                self.rows.append({"t": round(time.time() - self.t0, 1), "phase": self.phase,
                                  "rss_mb": round(vm_kib(self.pid, "VmRSS") / 1024, 1),
                                  "disk_mb": round(disk_bytes(self.pid, self.tmp) / 2**20, 2)})
            except (FileNotFoundError, ProcessLookupError):
                return

    def stop(self):
        self._stop.set()


def make_client(url: str, downloads: Path):
    from gradio_client import Client

    return Client(url, verbose=False, download_files=str(downloads))


def one_request(client, image: Path) -> tuple[float, str | None]:
    from gradio_client import handle_file

    start = time.perf_counter()
    try:
        path, faces = client.predict(handle_file(str(image)), "cnn", api_name="/predict")
        with Image.open(path) as im:
            im.load()  # the annotated image arrived whole
        os.unlink(path)
        return time.perf_counter() - start, None
    except Exception as err:  # noqa: BLE001 - a failed request is a result here
        return time.perf_counter() - start, f"{type(err).__name__}: {err}"[:200]


def summarise(results: list[tuple[float, str | None]], seconds: float | None = None) -> dict:
    ok = [t for t, err in results if err is None]
    out = {"requests": len(results), "answered": len(ok), "failed": len(results) - len(ok),
           "errors": sorted({err for _, err in results if err})[:5]}
    if ok:
        out.update(p50_ms=round(float(np.percentile(ok, 50)) * 1000, 1),
                   p95_ms=round(float(np.percentile(ok, 95)) * 1000, 1))
    if seconds:
        out["per_second"] = round(len(ok) / seconds, 1)
    return out


def burst(url: str, downloads: Path, clients: int, requests: int) -> dict:
    def session(i):
        client = make_client(url, downloads)
        return [one_request(client, IMAGES[i % 2]) for _ in range(requests)]

    with ThreadPoolExecutor(clients) as pool:
        results = [r for rows in pool.map(session, range(clients)) for r in rows]
    return {"clients": clients, "requests_each": requests, **summarise(results)}


def soak(url: str, downloads: Path, clients: int, seconds: float) -> dict:
    deadline = time.time() + seconds

    def session(i):
        client, rows = make_client(url, downloads), []
        while time.time() < deadline:
            rows.append(one_request(client, IMAGES[(i + len(rows)) % 2]))
        return rows

    with ThreadPoolExecutor(clients) as pool:
        results = [r for rows in pool.map(session, range(clients)) for r in rows]
    return {"clients": clients, "seconds": seconds, **summarise(results, seconds)}


def peak_during(pid: int, tmp: Path, action) -> dict:
    """The action's result and seconds, and the server's extra memory (at the peak, SETTLE_S after)
    and extra disk (at the peak, sampled every 0.1 s) against before it."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")  # peak resident size (VmHWM) := current, so the peak below is this action's
    before, disk_before, disk_peak = vm_kib(pid, "VmRSS"), disk_bytes(pid, tmp), 0
    done = threading.Event()

    def sample_disk():
        nonlocal disk_peak
        while not done.wait(0.1):
            disk_peak = max(disk_peak, disk_bytes(pid, tmp))

    sampler = threading.Thread(target=sample_disk, daemon=True)
    sampler.start()
    start = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - start
    done.set()
    sampler.join()
    time.sleep(SETTLE_S)  # what the server frees once the answer is out
    return {"refused": result, "seconds": round(elapsed, 3),
            "extra_peak_mb": round((vm_kib(pid, "VmHWM") - before) / 1024, 1),
            "extra_after_mb": round((vm_kib(pid, "VmRSS") - before) / 1024, 1),
            "extra_disk_peak_mb": round(max(0, disk_peak - disk_before) / 2**20, 1)}


def hostile(url: str, pid: int, tmp: Path) -> list[dict]:
    buf = io.BytesIO()
    Image.new("L", (13000, 13000)).save(buf, "PNG")
    payload = {"path": None, "url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
               "meta": {"_type": "gradio.FileData"}}
    body = json.dumps({"data": [payload, "cnn", False, "short"]}).encode()

    def refused(body: bytes, reason: str) -> bool:
        req = urllib.request.Request(f"{url}gradio_api/call/predict", data=body,
                                     headers={"Content-Type": "application/json"})
        event_id = json.loads(urllib.request.urlopen(req, timeout=60).read())["event_id"]
        answer = urllib.request.urlopen(f"{url}gradio_api/call/predict/{event_id}", timeout=60).read().decode()
        return "event: error" in answer and reason in answer

    # 40 MB of base64 (30 MB of image, over the 25 MB limit), each call a session of its own.
    inline = json.dumps({"data": [{**payload, "url": "data:image/png;base64," + "A" * (40 << 20)},
                                  "cnn", False, "short"]}).encode()
    cases = [(f"13000 x 13000 PNG as a data URL ({round(len(buf.getvalue()) / 1024)} KB)",
              lambda: refused(body, "too large")),
             # Gradio used to keep each session's last input: 100 x ~85 MB, had the page not dropped it.
             ("100 sessions, each sending a 40 MB data URL",
              lambda: all([refused(inline, "the limit is 25 MB") for _ in range(100)]))]
    json_gigabyte = [b'{"data": ["data:image/png;base64,'] + [b"A" * 2**20] * 1024 + [b'", "cnn", false, "short"]}']
    # Gradio takes up to 1,000 files per upload; those being written hold their disk space even
    # once swept (12 x 190 MB took 2.2 GB before the cap).
    for name, pieces, path, content_type in [
            ("1 GB JSON body", json_gigabyte, "/gradio_api/call/predict", "application/json"),
            ("12 files of 190 MB in one upload", multipart_files(12, 190), "/gradio_api/upload", MULTIPART)]:
        for declared in (True, False):
            def too_big(pieces=pieces, path=path, content_type=content_type, declared=declared):
                status, _, sent, _ = post_pieces(url, pieces, path, content_type, declared)
                return status == 413 or (status is None and sent < sum(map(len, pieces)))  # 413, or cut off early
            cases.append((f"{name}, {'length declared' if declared else 'chunked'}", too_big))

    def uploads_at_once():  # past 1 GB in flight the next is told to retry (503)
        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(lambda _: post_pieces(url, multipart_files(1, 190), "/gradio_api/upload",
                                                           MULTIPART, declared=True)[0], range(20)))
        return f"{statuses.count(503)} of 20 (503), {statuses.count(200)} stored"
    cases.append(("20 uploads of a 190 MB file at once", uploads_at_once))

    def sessions():  # each a copy of the page's config (the newest SESSIONS_KEPT), messages nobody reads
        tick = event_id_of(url, "tick")
        with ThreadPoolExecutor(4) as pool:
            statuses = [status for status, _ in pool.map(lambda i: queue_join(url, tick, ["cnn"], f"soak-{i}"),
                                                         range(SESSION_FLOOD))]
        return f"{statuses.count(200)} queued, {statuses.count(503)} told the queue is full (503)"
    cases.append((f"{SESSION_FLOOD} sessions sending one event each, never reading the answer", sessions))
    return [{"case": name, **peak_during(pid, tmp, action)} for name, action in cases]


def markdown(r: dict) -> str:
    b, s, h, m = r["burst"], r["soak"], r["hostile"], r["memory_disk"]
    lines = [
        f"Server soak, {r['machine']}; python app.py with the shipped weights, model cnn, "
        f"requests from gradio_client on 127.0.0.1 (astronaut.jpg and four_faces.jpg in turn).",
        "",
        "| phase | clients | requests | answered | failed | p50 ms | p95 ms | per second |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| burst ({b['requests_each']} each) | {b['clients']} | {b['requests']} | {b['answered']} | {b['failed']} "
        f"| {b.get('p50_ms', '-')} | {b.get('p95_ms', '-')} | |",
        f"| soak ({s['seconds']:.0f} s) | {s['clients']} | {s['requests']} | {s['answered']} | {s['failed']} "
        f"| {s.get('p50_ms', '-')} | {s.get('p95_ms', '-')} | {s.get('per_second', '-')} |",
        "",
        f"Server memory during the soak: {m['soak_rss_start_mb']} MB resident at its start, "
        f"{m['soak_rss_end_mb']} MB at its end (growth {m['soak_rss_growth_mb']} MB, peak {m['soak_rss_max_mb']} MB). "
        f"Its files on disk: at most {m['disk_max_mb']} MB in any 1-second sample ({m['samples']} samples).",
        "",
        "| hostile input | refused | seconds | extra memory at peak (MB) | extra memory after (MB) "
        "| extra disk at peak (MB) |",
        "|---|---|---:|---:|---:|---:|",
        *(f"| {c['case']} | {c['refused']} | {c['seconds']} | {c['extra_peak_mb']} | {c['extra_after_mb']} "
          f"| {c['extra_disk_peak_mb']} |" for c in h),
        "",
        f"Extra memory after: the server's resident size {SETTLE_S:.0f} s after the last answer (time for the "
        "collection that follows refusals, demo/guards/garbage.py), against before the case. Memory the allocator keeps "
        "for reuse counts there, so it varies from run to run. "
        "Disk: files in the server's folder and files it still holds open after they were deleted.",
        "",
        f"After SIGTERM: exit code {r['stop']['exit_code']}, {r['stop']['image_files_left']} image files left "
        f"under the server's TMPDIR.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--burst-clients", type=int, default=50)
    p.add_argument("--burst-requests", type=int, default=5)
    p.add_argument("--weights", type=Path, default=ROOT / "weights", help="folder of models")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="ekspresi-soak-"))
    tmp, downloads = work / "server-tmp", work / "downloads"
    tmp.mkdir()
    downloads.mkdir()
    with running_app(args.weights.resolve(), work / "app.log", tmp=tmp) as server:
        url, proc = server.url, server.proc
        sampler = Sampler(proc.pid, tmp)
        sampler.start()
        print("burst ...", flush=True)
        sampler.phase = "burst"
        burst_result = burst(url, downloads, args.burst_clients, args.burst_requests)
        print(burst_result, flush=True)
        sampler.phase = "warm-up"
        soak(url, downloads, args.clients, 10)  # caches, thread pools and lazily built parts settle first
        print(f"soak {args.clients} clients x {args.seconds:.0f} s ...", flush=True)
        sampler.phase = "soak"
        soak_start = len(sampler.rows)
        soak_result = soak(url, downloads, args.clients, args.seconds)
        soak_rows = sampler.rows[soak_start:]
        print(soak_result, flush=True)
        sampler.phase = "hostile"
        hostile_result = hostile(url, proc.pid, tmp)
        print(hostile_result, flush=True)
        time.sleep(1.5)
        sampler.stop()
        proc.send_signal(signal.SIGTERM)
        exit_code = proc.wait(60)
        left = [q for q in tmp.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_SUFFIXES]
    rss = [row["rss_mb"] for row in soak_rows]
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "burst": burst_result,
        "soak": soak_result,
        "hostile": hostile_result,
        "memory_disk": {"samples": len(sampler.rows), "soak_rss_start_mb": rss[0], "soak_rss_end_mb": rss[-1],
                        "soak_rss_growth_mb": round(rss[-1] - rss[0], 1), "soak_rss_max_mb": max(rss),
                        "disk_max_mb": max(row["disk_mb"] for row in sampler.rows)},
        "stop": {"exit_code": exit_code, "image_files_left": len(left)},
        "samples": sampler.rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "soak.json").write_text(json.dumps(result, indent=1) + "\n")
    (args.out / "soak.md").write_text(markdown(result))
    print(markdown(result))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
