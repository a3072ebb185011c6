"""Fit load = w_t * temperature + w_h * hour + b by gradient descent, logging to labtrack.

`labtrack run` starts this with LABTRACK_RUN_ID set, so `labtrack.start_run()` continues the
run it created (with the parameters and git provenance already recorded). Run directly
(`python train.py`), it starts a run of its own.
"""

import argparse
import csv
import math
import random

import labtrack

parser = argparse.ArgumentParser(description=__doc__)
parser.add_argument("--learning-rate", type=float, default=0.1)
parser.add_argument("--epochs", type=int, default=50)
parser.add_argument("--data", default="data/demand.csv")
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

with open(args.data, newline="") as handle:
    rows = [(float(r["temperature"]), float(r["hour"]), float(r["load"]))
            for r in csv.DictReader(handle)]
random.Random(args.seed).shuffle(rows)
split = int(len(rows) * 0.75)
train, test = rows[:split], rows[split:]


def scale(column: int) -> tuple[float, float]:
    values = [r[column] for r in train]
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) or 1.0


(mt, st), (mh, sh) = scale(0), scale(1)


def features(row):
    return (row[0] - mt) / st, (row[1] - mh) / sh


def rmse(weights, data) -> float:
    wt, wh, b = weights
    errors = [(wt * x1 + wh * x2 + b - row[2]) ** 2
              for row in data for x1, x2 in [features(row)]]
    return math.sqrt(sum(errors) / len(errors))


with labtrack.start_run() as run:
    wt = wh = b = 0.0
    for epoch in range(args.epochs):
        gt = gh = gb = 0.0
        for row in train:
            x1, x2 = features(row)
            error = wt * x1 + wh * x2 + b - row[2]
            gt, gh, gb = gt + error * x1, gh + error * x2, gb + error
        n = len(train)
        wt -= args.learning_rate * 2 * gt / n
        wh -= args.learning_rate * 2 * gh / n
        b -= args.learning_rate * 2 * gb / n
        labtrack.log_metric("train_rmse", rmse((wt, wh, b), train), step=epoch)
    score = rmse((wt, wh, b), test)
    labtrack.log_metric("rmse", score)
    labtrack.log_dict({"temperature": wt / st, "hour": wh / sh,
                       "intercept": b - wt * mt / st - wh * mh / sh}, "model/coefficients.json")
    print(f"run {run.run_id}: test rmse {score:.3f} after {args.epochs} epochs "
          f"(learning rate {args.learning_rate})")
