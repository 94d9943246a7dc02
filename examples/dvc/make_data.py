"""Writes the example pipeline's data: seeded, synthetic flights (is the flight late?) as Parquet.

``train.parquet`` and ``holdout.parquet`` come from one distribution; ``current.parquet`` is "next month":
warmer and with more evening departures, so the drift stage has something to find.

    python dvc/make_data.py --out dvc/out/data --rows 4000 --seed 7
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import pandas as pd

CARRIERS = np.array(["AA", "B6", "DL", "UA"], dtype=object)
ORIGINS = np.array(["EWR", "JFK", "LGA"], dtype=object)


def flights(rng: np.random.Generator, n: int, temp_shift: float = 0.0, evening: float = 0.3) -> pd.DataFrame:
    carrier = CARRIERS[rng.integers(0, len(CARRIERS), n)]
    origin = ORIGINS[rng.integers(0, len(ORIGINS), n)]
    hour = np.where(rng.random(n) < evening, rng.integers(17, 23, n), rng.integers(5, 17, n))
    distance = rng.gamma(2.0, 500.0, n)
    temp = rng.normal(55.0 + temp_shift, 15.0, n)
    wind = rng.gamma(2.0, 5.0, n)
    score = (0.15 * (hour - 12) + 0.06 * wind - 0.0004 * distance
             + np.where(carrier == "B6", 0.8, 0.0) + np.where(origin == "EWR", 0.5, 0.0)
             + 0.02 * np.abs(temp - 60.0) - 1.0)
    late = (2.5 * score + rng.logistic(size=n) > 0).astype(np.int64)
    return pd.DataFrame({"carrier": carrier, "origin": origin, "dep_hour": hour, "distance": distance,
                         "temp": temp, "wind_speed": wind, "late": late})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder for train/holdout/current.parquet")
    p.add_argument("--rows", type=int, default=4000, help="training rows (holdout and current: half as many)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    os.makedirs(args.out, exist_ok=True)
    flights(rng, args.rows).to_parquet(os.path.join(args.out, "train.parquet"), index=False)
    flights(rng, args.rows // 2).to_parquet(os.path.join(args.out, "holdout.parquet"), index=False)
    flights(rng, args.rows // 2, temp_shift=12.0, evening=0.6).to_parquet(os.path.join(args.out, "current.parquet"), index=False)


if __name__ == "__main__":
    main()
