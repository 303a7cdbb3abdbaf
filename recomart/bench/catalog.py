"""`python -m recomart.bench.catalog`: products per second of the catalog load, file and REST.

One generated catalog (products.json of `recomart generate`, or --products N made here with the
generator's catalog code) is loaded three ways, each into a new home: from the JSON file and from
a CSV of the same products ([catalog] source = "files"), and over the embedded Fake Store shaped
API ([catalog] source = "api", as `recomart ingest` starts it). Each home gets a first load (every
product new) and a second load of the same catalog with one price changed (the scd2 merge against
a full table: one closed version, one new). Products per second count the `load_catalog` call;
the embedded API's start (reading the file, indexing) is timed apart. Medians of --repeat runs go
to stdout and, with --out, to a JSON file.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import time
from pathlib import Path

import duckdb

from recomart.demo import catalog_api, datagen
from recomart_core import config, env
from recomart_core.env import PROJECT_ROOT

VARIANTS = ("json", "csv", "rest")


def _toml(home: Path, variant: str, products_file: Path) -> Path:
    text = (PROJECT_ROOT / "recomart.toml").read_text(encoding="utf-8")
    if variant != "rest":
        files = products_file if variant == "json" else products_file.with_suffix(".csv")
        text = re.sub(
            r'^source = "api".*$',
            f'source = "files"\nfiles = "{files}"',
            text,
            count=1,
            flags=re.MULTILINE,
        )
    path = home / "recomart.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _cfg(home: Path, toml: Path) -> config.Config:
    os.environ["RECOMART_HOME"] = str(home)
    os.environ["RECOMART_CONFIG"] = str(toml)
    config.load.cache_clear()
    return config.load()


def _write_csv(products_file: Path) -> Path:
    csv = products_file.with_suffix(".csv")
    if not csv.exists():
        with duckdb.connect() as con:
            con.execute(
                "copy (select id, title, price, description, category, image"
                f" from read_json_auto('{products_file}')) to '{csv}' (header, delimiter ',')"
            )
    return csv


def _changed_copy(products_file: Path) -> Path:
    """The same catalog with product 1's price raised by 1 (the second load's listing)."""
    changed = products_file.with_name(products_file.stem + "_changed" + products_file.suffix)
    if not changed.exists():
        products = json.loads(products_file.read_text(encoding="utf-8"))
        products[0]["price"] = round(products[0]["price"] + 1, 2)
        changed.write_text(json.dumps(products, ensure_ascii=False), encoding="utf-8")
        with duckdb.connect() as con:
            con.execute(
                "copy (select id, title, price, description, category, image"
                f" from read_json_auto('{changed}')) to '{changed.with_suffix('.csv')}'"
                " (header, delimiter ',')"
            )
    return changed


def _one_load(cfg: config.Config, variant: str, listing: Path) -> dict:
    from dlt_pipelines.catalog_pipeline import load_catalog

    if variant != "rest":
        started = time.perf_counter()
        summary = load_catalog(cfg)
        return {"seconds": time.perf_counter() - started, "start_api": 0.0, "summary": summary}
    started = time.perf_counter()
    server = catalog_api.serve(catalog_api.load_products(listing))
    url = server.__enter__()
    start_api = time.perf_counter() - started
    try:
        started = time.perf_counter()
        summary = load_catalog(cfg, base_url=url)
        seconds = time.perf_counter() - started
    finally:
        server.__exit__(None, None, None)
    return {"seconds": seconds, "start_api": start_api, "summary": summary}


def run_variant(
    work: Path, variant: str, products_file: Path, changed_file: Path, loads: int = 2
) -> dict:
    home = work / variant
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    first = _one_load(_cfg(home, _toml(home, variant, products_file)), variant, products_file)
    runs = {"first": first}
    if loads > 1:
        cfg = _cfg(home, _toml(home, variant, changed_file))
        runs["second"] = _one_load(cfg, variant, changed_file)
    shutil.rmtree(home, ignore_errors=True)
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products-file", type=Path, help="a generated products.json")
    parser.add_argument("--products", type=int, default=1_000_000, help="made here if no file")
    parser.add_argument("--work", type=Path, default=Path("data/bench_catalog"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--loads", type=int, choices=(1, 2), default=2, help="1: first load only")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    env.prepare()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    products_file = args.products_file
    if products_file is None:
        products_file = work / f"products_{args.products}.json"
        if not products_file.exists():
            datagen.generate(work / "generated", n_items=args.products, n_interactions=1000)
            shutil.move(work / "generated" / datagen.CATALOG_FILE, products_file)
            shutil.rmtree(work / "generated")
    products_file = products_file.resolve()
    _write_csv(products_file)
    changed_file = _changed_copy(products_file)
    _write_csv(changed_file)
    results: dict[str, list[dict]] = {}
    for variant in args.variants.split(","):
        for _ in range(args.repeat):
            run = run_variant(work / "homes", variant, products_file, changed_file, args.loads)
            results.setdefault(variant, []).append(run)
            for which in run:
                s = run[which]["summary"]
                print(
                    f"{variant:4} {which:6} {s['products']:>9} products"
                    f" {run[which]['seconds']:7.2f} s"
                    f" = {s['products'] / run[which]['seconds']:>9,.0f}/s"
                    f" (api start {run[which]['start_api']:.2f} s; new {s['new']},"
                    f" changed {s['changed']}, unchanged {s['unchanged']}, retired {s['retired']})"
                    f" phases {s.get('seconds', {})}",
                    flush=True,
                )
    table = {
        variant: {
            which: {
                "products": runs[0][which]["summary"]["products"],
                "seconds_median": statistics.median(r[which]["seconds"] for r in runs),
                "products_per_second": runs[0][which]["summary"]["products"]
                / statistics.median(r[which]["seconds"] for r in runs),
                "api_start_seconds": statistics.median(r[which]["start_api"] for r in runs),
            }
            for which in runs[0]
        }
        for variant, runs in results.items()
    }
    print(json.dumps(table, indent=2))
    if args.out:
        args.out.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
