"""Map and card rendering: the SVG map of a territory and the PNG card of an alert, on one core.

    python bench/card.py [--geo ../shared/geo --territory 41 --alerts 20 --runs 20]

Loads the outlines once (the figure a process pays at its first map), then times building the scene and
writing the SVG for --alerts alerts placed around the département (points, lines, communes, an orange
vigilance over it all), and drawing the 1200 × 630 PNG card of one of them. Prints medians and the worst run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alerts.domain import Alert, Area, Item, Road, Severity  # noqa: E402
from alerts.geo import Atlas  # noqa: E402
from alerts.web.card import card_scene, render_card  # noqa: E402
from alerts.web.map import build_scene, mark_for, to_svg  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--geo", default=str(ROOT.parent / "shared" / "geo"))
    parser.add_argument("--territory", default="41")
    parser.add_argument("--alerts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=41)
    args = parser.parse_args()

    started = time.perf_counter()
    atlas = Atlas.load(args.geo)
    loaded = time.perf_counter() - started
    outline = atlas.departement(args.territory)
    if outline is None:
        raise SystemExit(f"no outline for {args.territory} in {args.geo}")
    communes = atlas.communes_of(args.territory)
    rng = random.Random(args.seed)
    minx, miny, maxx, maxy = outline.shape.bounds
    marks = [
        mark_for(
            Alert("Vigilance orange neige-verglas", "", (args.territory,), (), (), severity=Severity.SEVERE, id=0),
            Item("v", "0", areas=(Area("departement", args.territory),), attributes={"colour": "orange"}),
            atlas,
            {},
        )
    ]
    for n in range(1, args.alerts):
        x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        geometry = (
            {"type": "Point", "coordinates": [x, y]}
            if n % 3 == 0
            else {"type": "LineString", "coordinates": [[x, y], [x + 0.1, y + 0.05], [x + 0.2, y + 0.02]]}
            if n % 3 == 1
            else None
        )
        areas = () if geometry else (Area("commune", rng.choice(communes).code),)
        item = Item("b", str(n), geometry=geometry, areas=areas, event="fermeture" if n % 2 else "")
        alert = Alert(
            f"RD {n} fermée",
            "",
            (args.territory,),
            (),
            (),
            severity=Severity(1 + n % 4),
            roads=(Road("D", str(n)),),
            id=n,
        )
        marks.append(mark_for(alert, item, atlas, {}))

    svg_times, card_times, size = [], [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        svg = to_svg(build_scene(atlas, args.territory, outline.name, marks))
        t1 = time.perf_counter()
        scene = card_scene(atlas, args.territory, outline.name, marks[:2])
        png = render_card(
            Alert(
                "RD 1 fermée entre Blois et Vendôme",
                "",
                (args.territory,),
                ("#route41",),
                (),
                severity=Severity.SEVERE,
                roads=(Road("D", "1"),),
            ),
            scene,
            "Crieur",
            outline.name,
        )
        t2 = time.perf_counter()
        svg_times.append(t1 - t0)
        card_times.append(t2 - t1)
        size = len(png)
    print(
        f"outlines: {len(atlas.departements)} départements, {len(atlas.communes)} communes loaded in {loaded * 1000:.0f} ms"
    )
    print(
        f"SVG map, {len(communes)} communes + {args.alerts} alerts: median {statistics.median(svg_times) * 1000:.1f} ms,"
        f" worst {max(svg_times) * 1000:.1f} ms, {len(svg) / 1024:.0f} KiB"
    )
    print(
        f"PNG card 1200x630: median {statistics.median(card_times) * 1000:.1f} ms,"
        f" worst {max(card_times) * 1000:.1f} ms, {size / 1024:.0f} KiB"
    )


if __name__ == "__main__":
    main()
