"""Rule engine throughput: the indexed engine against the naive loop, in one run.

    python bench/rules.py [--rules 1000 --items 10000 --seed 41 --mode all] [--load-sizes 1000,10000]

Generates a rule file (through the real loader, so its validation time is measured too) and items made
of realistic French road/weather bulletins, deterministically from the seed, then times
`Engine.decide` (best of --passes) and `Engine.decide_naive` (one pass) over the same items on one core,
and checks they decide the same thing.
"all" mode (every matching rule fires) is the worst case: first-match stops earlier.
First it prints the load time (YAML read, validation, references) of rule files of each --load-sizes,
min/median/max over --load-rounds, wall clock and CPU time (goal: 10,000 rules in < 1 s).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from alerts.domain import Area, Item, Severity  # noqa: E402
from rules.engine import Engine, EvalState  # noqa: E402
from rules.loader import Known, load_rules  # noqa: E402
from rules.territories import load_territories  # noqa: E402

# Words that carry meaning in bulletins: what rules are written on.
TERMS = """neige verglas congères gel grêle pluie verglaçante brouillard givre inondation crue vent tempête
chute arbres déneigement salage sel chasse-neige saleuse chaussée glissante enneigée bloquée fermée coupée
barrée déviation accident bouchon ralentissement poids lourds camions autocar car scolaire transports
scolaires ramassage collège lycée école cantine bus train TER Rémi SNCF gare aéroport pont tunnel côte
rocade échangeur bretelle péage autoroute nationale départementale communale carrefour rond-point
intempéries vigilance orange rouge jaune alerte préfecture arrêté interdiction circulation stationnement
équipements pneus chaînes hiver plaques glace visibilité réduite prudence vitesse limitée secours pompiers
gendarmerie électricité coupure réseau Enedis eau potable hébergement urgence gymnase""".split()
PHRASES = [
    "chaussée glissante",
    "plaques de verglas",
    "poids lourds",
    "transports scolaires",
    "route barrée",
    "circulation interdite",
    "vigilance orange",
    "vigilance rouge",
    "chasse neige",
    "pluie verglaçante",
    "routes départementales",
    "équipements spéciaux",
    "vitesse limitée",
    "coupure d'électricité",
    "déviation mise en place",
    "accès fermé",
    "voie de droite",
    "sens de circulation",
]
PLACES = """Blois Vendôme Romorantin-Lanthenay Salbris Lamotte-Beuvron Montoire-sur-le-Loir Mer Onzain Contres
Selles-sur-Cher Saint-Aignan Montrichard Mondoubleau Droué Chartres Dreux Châteaudun Nogent-le-Rotrou Lucé
Vernouillet Bonneval Illiers-Combray Auneau Anet Brou Cloyes Orléans Tours Vierzon Sologne Perche Beauce""".split()
ROADS = [f"RD {n}" for n in (957, 956, 924, 765, 2020, 2152, 922, 910, 939, 955, 928, 923, 917, 5, 7, 921)] + [
    "RN 10",
    "RN 12",
    "RN 154",
    "A 10",
    "A 11",
    "A 71",
    "A 85",
]
FILLER = """le la les un une des du de d l à au aux et ou sur sous dans entre vers par pour avec sans est sont
sera seront a ont été il elle on nous vous ce cette ces depuis jusqu demain matin soir nuit ce matin
aujourd hui heure heures km secteur tronçon sens direction hauteur niveau commune communes département
ensemble usagers conducteurs automobilistes informations conditions difficiles fortement recommandé
déplacements limiter éviter reporter possible situation évolue point prochain bulletin services
départementaux agents mobilisés intervention cours nombreux quelques localement""".split()
SOURCES = ["prefecture-41", "prefecture-28", "meteo-vigilance", "routes-41", "routes-28", "bison-fute", "remi", "sncf"]
CHANNELS = ["mastodon", "x", "bluesky", "facebook", "sms", "email", "web"]


def make_rules(rng: random.Random, count: int, mode: str) -> dict:
    """A département's rule book: mostly place- or road-specific rules (a commune or a road AND a
    topic), topic rules filtered by source, a few two-word rules and source-wide rules."""
    topics = TERMS + PHRASES
    anchors = PLACES + ROADS
    rules = []
    for index in range(count):
        when: dict = {}
        keywords: dict = {}
        shape = rng.random()
        if shape < 0.60:
            keywords["any"] = rng.sample(anchors, rng.randint(1, 2))
            keywords["all"] = [rng.choice(topics)]
        elif shape < 0.80:
            keywords["any"] = rng.sample(topics, rng.randint(1, 3))
            when["source"] = rng.sample(SOURCES, rng.randint(1, 2))
        elif shape < 0.90:
            keywords["all"] = rng.sample(topics, 2)
        else:
            when["source"] = [rng.choice(SOURCES)]
            when["severity"] = rng.choice(["Moderate", "Severe", "Extreme"])
        if rng.random() < 0.3:
            keywords["none"] = rng.sample(["exercice", "test", "essai", "rappel", "archive"], 1)
        if keywords:
            when["keywords"] = keywords
        if "severity" not in when and rng.random() < 0.3:
            when["severity"] = rng.choice(["Minor", "Moderate", "Severe", "Extreme"])
        if rng.random() < 0.3:
            when["territories"] = rng.sample(["41", "28"], rng.randint(1, 2))
        if rng.random() < 0.1:
            when["episode"] = rng.random() < 0.5
        if rng.random() < 0.05:
            when["regex"] = [r"\bRD ?\d+\b"]
        if rng.random() < 0.05:
            when["time"] = {"from": "05:00", "to": "22:00"}
        then = {
            "channels": rng.sample(CHANNELS, rng.randint(1, 5)),
            "priority": rng.randint(0, 100),
            "hashtags": [f"#{rng.choice(['neige', 'verglas', 'routes', 'info'])}"],
        }
        if rng.random() < 0.2:
            then["approve"] = True
        if rng.random() < 0.2:
            then["suppress_duplicates"] = "30m"
        rules.append({"name": f"regle-{index:04d}", "when": when, "then": then})
    return {"mode": mode, "rules": rules}


def make_items(rng: random.Random, count: int) -> list[Item]:
    """Bulletins of 20-50 words: filler, one or two places or roads, two to five topic words."""
    items = []
    for index in range(count):
        words = [rng.choice(FILLER) for _ in range(rng.randint(18, 40))]
        extra = [rng.choice(PLACES + ROADS) for _ in range(rng.randint(1, 2))]
        extra += [rng.choice(TERMS) for _ in range(rng.randint(2, 5))]
        if rng.random() < 0.4:
            extra.append(rng.choice(PHRASES))
        for word in extra:
            words.insert(rng.randrange(len(words) + 1), word)
        text = " ".join(words).capitalize() + "."
        title = (
            f"{rng.choice(TERMS).capitalize()} {rng.choice(['sur la', 'à', 'secteur de'])} {rng.choice(PLACES + ROADS)}"
        )
        areas = ()
        if rng.random() < 0.6:
            areas = (Area("departement", rng.choice(["41", "28", "45"])),)
        items.append(
            Item(
                source=rng.choice(SOURCES),
                external_id=str(index),
                title=title,
                text=text,
                severity=rng.choice(list(Severity)),
                areas=areas,
            )
        )
    return items


def load_times(rng: random.Random, count: int, mode: str, territories, rounds: int) -> tuple[list[float], list[float]]:
    """Seconds `load_rules` takes for a generated file of `count` rules, once per round: wall clock, and
    the process's CPU time (what a quiet core would take, when other work shares the machine)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(yaml.safe_dump(make_rules(rng, count, mode), allow_unicode=True), encoding="utf-8")
        walls, cpus = [], []
        for _ in range(rounds):
            started, cpu = time.perf_counter(), time.process_time()
            ruleset = load_rules([path], Known(territories=territories.codes()))
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - cpu)
            assert len(ruleset) == count, f"{len(ruleset)} rules loaded of {count}"
    return walls, cpus


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--mode", choices=["all", "first-match"], default="all")
    parser.add_argument("--passes", type=int, default=3, help="passes of the indexed engine; the best counts")
    parser.add_argument("--naive-items", type=int, default=None, help="items for the naive loop (default: all)")
    parser.add_argument(
        "--load-sizes",
        type=lambda v: [int(x) for x in v.split(",") if x],
        default=[1000, 10000],
        help="rule counts whose load time is measured (empty: skip)",
    )
    parser.add_argument("--load-rounds", type=int, default=3)
    args = parser.parse_args(argv)

    territories = load_territories(ROOT / "examples" / "loir-et-cher" / "territories.yaml")
    for size in args.load_sizes:
        walls, cpus = load_times(random.Random(args.seed), size, args.mode, territories, args.load_rounds)
        print(
            f"load of {size:>6,} rules: {min(walls):.2f}  {statistics.median(walls):.2f}  {max(walls):.2f} s "
            f"(min median max of {len(walls)}; CPU {min(cpus):.2f}  {statistics.median(cpus):.2f}  {max(cpus):.2f} s)"
            f"{'   goal < 1 s' if size == 10_000 else ''}",
            flush=True,
        )

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rules.yaml"
        path.write_text(yaml.safe_dump(make_rules(rng, args.rules, args.mode), allow_unicode=True), encoding="utf-8")
        started = time.perf_counter()
        ruleset = load_rules([path], Known(territories=territories.codes()))
        loaded = time.perf_counter() - started
    started = time.perf_counter()
    engine = Engine(ruleset, territories)
    built = time.perf_counter() - started
    items = make_items(rng, args.items)
    state = EvalState(datetime(2013, 1, 20, 7, tzinfo=timezone.utc), frozenset({"41"}))

    passes = []
    for _ in range(args.passes):  # the first pass also fills the decision cache
        started = time.perf_counter()
        indexed = [engine.decide(item, state) for item in items]
        passes.append(time.perf_counter() - started)
    indexed_time = min(passes)
    naive_items = items[: args.naive_items] if args.naive_items else items
    started = time.perf_counter()
    naive = [engine.decide_naive(item, state) for item in naive_items]
    naive_time = time.perf_counter() - started

    mismatches = sum(1 for a, b in zip(indexed, naive, strict=False) if a != b)
    fired = sum(len(d) for d in indexed)
    indexed_rate = len(items) / indexed_time
    naive_rate = len(naive_items) / naive_time
    print(
        f"rules: {len(ruleset)} ({args.mode}), loaded and validated in {loaded:.2f} s, index built in {built * 1000:.0f} ms"
    )
    print(f"items: {len(items)}, decisions: {fired} ({fired / len(items):.1f} per item)")
    cold = ", first pass " + f"{len(items) / passes[0]:,.0f} items/s" if len(passes) > 1 else ""
    print(f"indexed engine: {indexed_rate:,.0f} items/s ({indexed_time:.2f} s, best of {len(passes)}{cold})")
    print(f"naive loop:     {naive_rate:,.0f} items/s ({naive_time:.2f} s over {len(naive_items)} items)")
    print(f"ratio:          {indexed_rate / naive_rate:.1f}x")
    print(f"same decisions: {'yes' if mismatches == 0 else f'NO, {mismatches} items differ'}")
    return 0 if mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
