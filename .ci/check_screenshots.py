#!/usr/bin/env python3
"""Check the screenshots scripts/screenshot-notebooks.sh took of the notebooks.

Usage: .ci/check_screenshots.py DIR NOTEBOOK...

For every notebook NAME.ipynb, DIR must hold NAME-top.png and NAME-picture.png. Every
NAME-*.png in DIR (these two, NAME-table.png, the JupyterLab ones) must:
  - decode as a PNG 1280 pixels wide and as tall as the script makes it (2000 for the tops,
    1200 for the others);
  - show something: a blank or nearly blank page (Chromium's result when a page does not
    render) has one colour almost everywhere, a rendered notebook hundreds of colours and
    a quarter or more of its pixels off the background;
  - and a cell screenshot must not be the top of the page again (the cells before the
    chosen one are hidden; if that failed, both show the same).
Needs Pillow.
"""

import sys
from pathlib import Path

from PIL import Image, ImageChops

WIDTH = 1280
HEIGHT = {"top": 2000, "lab-top": 2000}  # every other kind: 1200
MIN_COLOURS = 64
MIN_OFF_BACKGROUND = 0.05  # share of pixels not of the most common colour


def problems_of(png, kind):
    try:
        with Image.open(png) as im:
            im.load()
            image = im.convert("RGB")
    except Exception as exc:  # PIL raises several kinds for a broken file
        return [f"{png}: does not decode: {exc}"], None
    problems = []
    want = (WIDTH, HEIGHT.get(kind, 1200))
    if image.size != want:
        problems.append(f"{png}: {image.size[0]}x{image.size[1]}, expected {want[0]}x{want[1]}")
    colours = image.getcolors(maxcolors=1 << 24)
    most_common = max(count for count, _ in colours)
    off_background = 1 - most_common / (image.width * image.height)
    if len(colours) < MIN_COLOURS or off_background < MIN_OFF_BACKGROUND:
        problems.append(
            f"{png}: looks blank: {len(colours)} colours, "
            f"{100 * off_background:.1f}% of pixels off the background"
        )
    return problems, image


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    folder = Path(argv[0])
    problems = []
    checked = 0
    for notebook in map(Path, argv[1:]):
        name = notebook.stem
        for required in ("top", "picture"):
            if not (folder / f"{name}-{required}.png").is_file():
                problems.append(f"{folder / f'{name}-{required}.png'}: missing")
        tops = {}
        cells = []
        for png in sorted(folder.glob(f"{name}-*.png")):
            kind = png.stem[len(name) + 1 :]
            found, image = problems_of(png, kind)
            problems += found
            checked += 1
            if image is None:
                continue
            if kind.endswith("top"):
                tops[kind.removesuffix("top")] = image
            else:
                cells.append((png, kind, image))
        for png, kind, image in cells:
            top = tops.get("lab-" if kind.startswith("lab-") else "")
            if top is not None and top.width == image.width:
                same_rows = top.crop((0, 0, image.width, image.height))
                if ImageChops.difference(same_rows, image).getbbox() is None:
                    problems.append(f"{png}: the same as the top of the page")
    for problem in problems:
        print(problem)
    print(f"screenshots: {checked} checked, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
