"""The README's picture of the page: the real app, an example photo uploaded and analysed, in Chromium.

    python tools/screenshot.py [--out assets/page.png] [--image examples/four_faces.jpg]

Starts `python app.py` on a free port (tests/server.py), opens it in Debian's headless Chromium
(playwright drives it; no browser is downloaded), uploads the image, presses Analyse and
photographs the page once the faces are listed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from server import running_app  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, default=ROOT / "assets" / "page.png")
    p.add_argument("--image", type=Path, default=ROOT / "examples" / "four_faces.jpg")
    p.add_argument("--weights", type=Path, default=ROOT / "weights")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, running_app(args.weights, Path(tmp) / "app.log") as server, \
            sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=args.chromium, headless=True,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(server.url, wait_until="load")
        page.locator("input[type=file]").first.set_input_files(str(args.image))
        page.get_by_role("button", name="Analyse").click()
        page.get_by_text("top 3:").first.wait_for(timeout=120_000)  # the summary of the faces found
        page.locator("img[alt='Result'], [data-testid='image'] img").last.wait_for(timeout=60_000)
        page.wait_for_timeout(1500)  # the annotated image fades in
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
