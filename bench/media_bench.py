"""A 12-megapixel photo into the three WebP variants (1200², 500², 150², cover, quality 80):
the media pipeline beside pyvips' `thumbnail` and a naive Pillow pipeline, in the same run;
then product-image uploads per second through HTTP with both cores busy.

    python bench/media_bench.py [--quick]

Each pipeline runs in a fresh process of its own, so its peak RSS is its own. Every pipeline
encodes with the same WebP settings (quality 80, the effort the service picks for each size,
metadata stripped), so the comparison is of decoding and resizing, not of encoder effort.

- media: JPEG decoded at reduced size (`draft`), variants derived largest first, each
  encoded in a second thread while the next is resized (as the service runs it);
  media-1-thread is the same on one thread.
- pyvips thumbnail: `thumbnail_buffer` once per variant, as its docs recommend (shrink-on-load).
- pyvips cascade: one `thumbnail_buffer`, the smaller variants by `thumbnail_image` from it.
- naive Pillow: full decode, each variant resized from the full image (the seed's approach).

pyvips uses its own thread pool (both cores) for one image; "media" overlaps each encode with
the next resize, the other Pillow pipelines use one thread. Wall times on a shared machine
swing with its load (a pipeline waits for a core), so the table also gives each pipeline's CPU
time per image and the median of per-round ratios (every round runs all pipelines back to
back); "images/s both cores" runs two images at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import median, percentile, result_line, table, wait_healthy
from PIL import Image, ImageChops, ImageDraw, ImageOps

from media.domain import VARIANTS
from media.imaging import WEBP_QUALITY, harden_pillow, render, webp_method
from rtmn_shared.testing.processes import free_port

SIZES = [(t.width, t.height) for t in VARIANTS]
PIPELINES = ("media", "media-1-thread", "pyvips-thumbnail", "pyvips-cascade", "naive-pillow")
# As the service runs it: encodes overlap the next resize, in a pool as large as the cores.
ENCODER = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="webp")
MAX_PIXELS = 40_000_000


def photo_jpeg(width: int = 4000, height: int = 3000) -> bytes:
    """Gradients, sensor-like noise and shapes, saved at quality 90: sized like a phone photo."""
    gradient = Image.linear_gradient("L")
    gx = gradient.resize((width, height), Image.Resampling.BILINEAR)
    gy = gradient.transpose(Image.Transpose.ROTATE_90).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    noise = Image.effect_noise((width, height), 34)
    image = Image.merge(
        "RGB",
        (
            ImageChops.add(gx, noise, scale=1.3),
            ImageChops.add(gy, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), scale=1.3),
            ImageChops.blend(gx, gy, 0.5),
        ),
    )
    draw = ImageDraw.Draw(image)
    for i in range(40):
        left, top = (width * i * 7 // 40) % width, (height * i * 3 // 40) % height
        draw.ellipse(
            (left, top, left + width // 6, top + height // 5),
            fill=(37 * i % 255, 200 - 4 * i, 60 + 5 * i),
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# -- the pipelines: bytes in, three WebP byte strings out ------------------------------------


def run_media(data: bytes) -> list[bytes]:
    rendered = render(data, VARIANTS, max_pixels=MAX_PIXELS, encoder=ENCODER)
    return [r.data for r in rendered.renditions]


def run_media_serial(data: bytes) -> list[bytes]:
    return [r.data for r in render(data, VARIANTS, max_pixels=MAX_PIXELS).renditions]


def _webp(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=WEBP_QUALITY, method=webp_method(*image.size))
    return out.getvalue()


def run_naive(data: bytes) -> list[bytes]:
    image = Image.open(io.BytesIO(data))
    image.load()
    image = ImageOps.exif_transpose(image)
    return [_webp(ImageOps.fit(image, size, Image.Resampling.LANCZOS)) for size in SIZES]


def _vips_save(image: Any) -> bytes:
    effort = webp_method(image.width, image.height)
    out: bytes = image.webpsave_buffer(Q=WEBP_QUALITY, effort=effort, strip=True)
    return out


def run_vips_thumbnail(data: bytes) -> list[bytes]:
    import pyvips  # noqa: PLC0415 - only this pipeline's process loads libvips

    return [
        _vips_save(pyvips.Image.thumbnail_buffer(data, w, height=h, crop="centre"))
        for w, h in SIZES
    ]


def run_vips_cascade(data: bytes) -> list[bytes]:
    import pyvips  # noqa: PLC0415

    (w, h), *rest = SIZES
    large = pyvips.Image.thumbnail_buffer(data, w, height=h, crop="centre").copy_memory()
    smaller = [large.thumbnail_image(w2, height=h2, crop="centre") for w2, h2 in rest]
    return [_vips_save(large), *(_vips_save(s) for s in smaller)]


RUNNERS = {
    "media": run_media,
    "media-1-thread": run_media_serial,
    "pyvips-thumbnail": run_vips_thumbnail,
    "pyvips-cascade": run_vips_cascade,
    "naive-pillow": run_naive,
}


def worker(name: str, image_path: str, parallel: int) -> None:
    """One pipeline in this process, driven line by line from stdin so that every pipeline
    runs interleaved with the others and a shared machine's drift hits them all alike."""
    harden_pillow()
    data = Path(image_path).read_bytes()
    run = RUNNERS[name]
    if name.startswith("pyvips"):
        import pyvips  # noqa: F401, PLC0415 - counted in the baseline, like Pillow's import
    baseline_kb = _peak_rss_kb()
    outputs = run(data)  # warm-up; also checks the sizes
    sizes = [Image.open(io.BytesIO(o)).size for o in outputs]
    if sizes != SIZES:
        raise SystemExit(f"{name} made {sizes}, not {SIZES}")
    reply: dict[str, Any] = {"bytes": [len(o) for o in outputs]}
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        for command in sys.stdin:
            started, cpu_started = time.perf_counter(), _cpu_ms()
            if command.strip() == "one":
                run(data)
                reply = {
                    "ms": (time.perf_counter() - started) * 1000,
                    "cpu_ms": _cpu_ms() - cpu_started,
                }
            elif command.strip() == "busy":
                # Both cores busy: `parallel` images at a time (pyvips adds its own threads).
                list(pool.map(run, [data] * 2 * parallel))
                reply = {"per_s": 2 * parallel / (time.perf_counter() - started)}
            else:
                peak_kb = _peak_rss_kb()
                reply = {"peak_rss_mb": peak_kb / 1024, "added_mb": (peak_kb - baseline_kb) / 1024}
            print(json.dumps(reply), flush=True)


def _peak_rss_kb() -> int:
    # VmHWM belongs to this process image; ru_maxrss would carry over the parent's peak
    # from before exec (a Linux quirk), hiding any smaller one.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


class Pipeline:
    def __init__(self, name: str, image_path: str) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--worker", name, "--image", image_path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.times_ms: list[float] = []
        self.cpu_ms: list[float] = []
        self.per_s: list[float] = []
        self.peak_rss_mb = 0.0
        self.added_mb = 0.0  # peak RSS above the process's own after its imports

    def ask(self, command: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"the {self.name} worker died")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        answer = self.ask("rss")
        self.peak_rss_mb, self.added_mb = answer["peak_rss_mb"], answer["added_mb"]
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def measure(image_path: str, runs: int, busy_rounds: int) -> dict[str, Pipeline]:
    pipelines = {name: Pipeline(name, image_path) for name in PIPELINES}
    try:
        for _ in range(runs):
            for pipeline in pipelines.values():
                answer = pipeline.ask("one")
                pipeline.times_ms.append(answer["ms"])
                pipeline.cpu_ms.append(answer["cpu_ms"])
        for _ in range(busy_rounds):
            for pipeline in pipelines.values():
                pipeline.per_s.append(pipeline.ask("busy")["per_s"])
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    return pipelines


# -- uploads through HTTP ------------------------------------------------------------------


async def http_uploads(data: bytes, count: int, clients: int) -> dict[str, Any]:
    import aiohttp  # noqa: PLC0415
    import asyncpg  # noqa: PLC0415

    from media.app import SERVICE  # noqa: PLC0415
    from rtmn_shared.migrations import discover, migrate  # noqa: PLC0415
    from rtmn_shared.provision import drop_database  # noqa: PLC0415
    from rtmn_shared.testing.infra import ADMIN_DSN, Suite, provision_for_tests  # noqa: PLC0415

    # A throwaway database only: the API process publishes nothing, so no broker vhost.
    suite = Suite()
    await provision_for_tests(suite.database, [SERVICE.info])
    server: asyncio.subprocess.Process | None = None
    try:
        info = SERVICE.info
        conn = await asyncpg.connect(suite.database_url, user=info.owner)
        await migrate(conn, info.schema, discover(SERVICE.migrations))
        await conn.close()
        port = free_port()
        files = tempfile.mkdtemp(prefix="rtmn-media-bench-")
        env = {
            **os.environ,
            **suite.environ(),
            "HTTP_PORT": str(port),
            "LOG_LEVEL": "WARNING",
            "MEDIA_LOCAL_DIR": files,
        }
        env.pop("AWS_S3_BUCKET", None)  # the sandbox store: the bench measures the service
        server = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "media",
            "api",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        headers = suite.bearer("bench-user")
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        await wait_healthy(base, server, "media", timeout=40)
        async with aiohttp.ClientSession(base) as http:

            async def one() -> None:
                form = aiohttp.FormData()
                form.add_field("image", io.BytesIO(data), filename="photo.jpg")
                started = time.perf_counter()
                async with http.post(
                    "/api/upload/product-image", data=form, headers=headers
                ) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if response.status == 201:
                    latencies.append((time.perf_counter() - started) * 1000)

            async def client(share: int) -> None:
                for _ in range(share):
                    await one()

            await asyncio.gather(*(one() for _ in range(clients)))  # warm up
            latencies.clear()
            statuses.clear()
            started, cpu_started = time.perf_counter(), _process_cpu_ms(server.pid)
            await asyncio.gather(*(client(count // clients) for _ in range(clients)))
            elapsed = time.perf_counter() - started
            server_cpu_ms = _process_cpu_ms(server.pid) - cpu_started
        done = statuses.get(201, 0)
        return {
            "uploads_per_s": done / elapsed,
            "server_cpu_ms_per_upload": server_cpu_ms / max(done, 1),
            "statuses": statuses,
            "p50_ms": percentile(latencies, 50),
            "p99_ms": percentile(latencies, 99),
            "count": done,
        }
    finally:
        if server is not None and server.returncode is None:
            server.terminate()
            await server.wait()
        await drop_database(ADMIN_DSN, suite.database)


def _process_cpu_ms(pid: int) -> float:
    """user + system CPU of another process, from /proc (Linux); 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def main(quick: bool) -> None:
    runs = 3 if quick else 9
    data = photo_jpeg()
    if len(data) > 5 * 1024 * 1024:
        raise SystemExit(f"the test photo is {len(data)} bytes, over the 5 MB upload cap")
    with Image.open(io.BytesIO(data)) as probe:
        width, height = probe.size
    print(f"source: {width}×{height} JPEG q90, {len(data) / 1e6:.2f} MB; variants {SIZES}; "
          f"WebP q{WEBP_QUALITY}, effort by size; {os.cpu_count()} cores")  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".jpg") as source:
        source.write(data)
        source.flush()
        results = measure(source.name, runs, busy_rounds=1 if quick else 3)
    rows = [("pipeline", "median ms", "min ms", "p99 ms", "CPU ms", "images/s both cores",
             "peak RSS MB (+ over imports)")]  # fmt: skip
    for name, r in results.items():
        rss = f"{r.peak_rss_mb:.0f} (+{r.added_mb:.0f})"
        rows.append((name, f"{median(r.times_ms):.0f}", f"{min(r.times_ms):.0f}",
                     f"{percentile(r.times_ms, 99):.0f}", f"{median(r.cpu_ms):.0f}",
                     f"{median(r.per_s):.2f}", rss))  # fmt: skip
    print(table(rows))
    ours = median(results["media"].times_ms)
    vips = median(results["pyvips-thumbnail"].times_ms)
    cascade = median(results["pyvips-cascade"].times_ms)
    naive = median(results["naive-pillow"].times_ms)
    # Each round runs every pipeline back to back: a round's ratio is immune to slow drift.
    rounds = zip(results["media"].times_ms, results["pyvips-thumbnail"].times_ms, strict=True)
    paired = median([a / b for a, b in rounds])
    cpu_ratio = median(results["media"].cpu_ms) / median(results["pyvips-thumbnail"].cpu_ms)
    print(f"per-round ratio to pyvips thumbnail: {paired:.2f}; CPU time ratio {cpu_ratio:.2f}")
    print(f"media is {ours / vips:.2f}× pyvips thumbnail's time (target ≤ 0.8), "
          f"{ours / cascade:.2f}× the pyvips cascade's, {naive / ours:.1f}× faster than naive "
          f"Pillow (target ≥ 2)")  # fmt: skip

    count = 8 if quick else 24
    http = asyncio.run(http_uploads(data, count, clients=4))
    print(f"HTTP: {http['count']} product-image uploads (original + 3 variants each), 4 clients: "
          f"{http['uploads_per_s']:.2f} uploads/s, p50 {http['p50_ms']:.0f} ms, "
          f"p99 {http['p99_ms']:.0f} ms; server CPU {http['server_cpu_ms_per_upload']:.0f} ms "
          f"per upload; statuses {http['statuses']}")  # fmt: skip
    print(
        result_line(
            "media",
            "ms per 12 MP JPEG into 3 WebP variants",
            ours,
            vips,
            "ms",
            p50_ms=percentile(results["media"].times_ms, 50),
            p99_ms=percentile(results["media"].times_ms, 99),
            ratio_per_round=paired,
            cpu_ratio=cpu_ratio,
            cpu_ms=median(results["media"].cpu_ms),
            pyvips_cpu_ms=median(results["pyvips-thumbnail"].cpu_ms),
            pyvips_cascade_ms=cascade,
            naive_pillow_ms=naive,
            speedup_vs_naive=naive / ours,
            peak_rss_mb=results["media"].peak_rss_mb,
            rss_added_mb=results["media"].added_mb,
            pyvips_peak_rss_mb=results["pyvips-thumbnail"].peak_rss_mb,
            pyvips_rss_added_mb=results["pyvips-thumbnail"].added_mb,
            naive_rss_added_mb=results["naive-pillow"].added_mb,
            images_per_s_both_cores=median(results["media"].per_s),
            pyvips_images_per_s_both_cores=median(results["pyvips-thumbnail"].per_s),
            http_uploads_per_s=http["uploads_per_s"],
            http_p50_ms=http["p50_ms"],
            http_p99_ms=http["p99_ms"],
            http_server_cpu_ms_per_upload=http["server_cpu_ms_per_upload"],
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--worker", choices=PIPELINES)
    parser.add_argument("--image")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.image, parallel=os.cpu_count() or 2)
    else:
        main(args.quick)
