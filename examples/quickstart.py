"""A first labtrack session: one experiment, a small hyperparameter sweep, a comparison.

Run it with ``python examples/quickstart.py``; the data lands in the embedded store
(``labtrack.get_tracking_uri()`` tells where), which the Jupyter side panel reads too.
"""

import math
import random

import labtrack


def train(lr: float, depth: int, epochs: int = 200) -> float:
    """A stand-in for a training loop: a noisy, decaying loss."""
    rng = random.Random(depth * 1000 + int(lr * 1e4))
    loss = 2.0
    for epoch in range(epochs):
        loss = loss * (1 - lr) + 0.02 * rng.random() + 0.05 / depth
        labtrack.log_metric("loss", loss, step=epoch)
        labtrack.log_metric("accuracy", 1 - math.tanh(loss), step=epoch)
    return loss


def main() -> None:
    labtrack.set_experiment("quickstart")
    with labtrack.start_run(run_name="sweep") as parent:
        for lr in (0.01, 0.05, 0.1):
            for depth in (2, 4, 8):
                with labtrack.start_run(run_name=f"lr={lr} depth={depth}", nested=True):
                    labtrack.log_params({"lr": lr, "depth": depth, "model": "toy"})
                    final = train(lr, depth)
                    labtrack.set_tag("final_loss_bucket", "low" if final < 0.1 else "high")
        labtrack.log_text("9 runs over lr x depth", "notes/summary.txt")

    best = labtrack.search_runs(
        filter_string=f"tags.`mlflow.parentRunId` = '{parent.run_id}' AND metrics.loss < 10",
        order_by=["metrics.loss ASC"],
        max_results=3,
        output_format="list",
    )
    print(f"Tracking URI: {labtrack.get_tracking_uri()}")
    print("Best three runs by final loss:")
    for run in best:
        print(f"  {run.info.run_name:<20} loss={run.data.metrics['loss']:.4f} "
              f"params={run.data.params}")
    chart = labtrack.TrackingClient().get_metric_history_downsampled(
        best[0].info.run_id, "loss", max_points=20
    )[0]
    print(f"Loss of the best run, {len(chart.values)} of {chart.total_points} points:")
    print("  " + " ".join(f"{v:.3f}" for v in chart.values))


if __name__ == "__main__":
    main()
