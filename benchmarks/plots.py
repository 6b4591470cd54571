"""The throughput plot of the forward batch series."""

from __future__ import annotations

from pathlib import Path

from .common import DTYPES, EQX, GEMM, NETKET, Result


def plot(results: list[Result], path: Path) -> bool:
    """Samples per second against batch size at N=256, alpha=2, one panel per dtype."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = [
        r for r in results if r.group == "RBM forward" and r.params["N"] == 256 and r.params["alpha"] == 2
    ]
    dtypes = [d for d in DTYPES if any(r.params["dtype"] == d for r in series)]
    if not series:
        return False
    fig, axes = plt.subplots(1, len(dtypes), figsize=(4.5 * len(dtypes), 3.8), squeeze=False)
    for ax, dtype in zip(axes[0], dtypes, strict=True):
        points = sorted((r for r in series if r.params["dtype"] == dtype), key=lambda r: r.params["batch"])
        batches = [r.params["batch"] for r in points]
        for name, style in ((EQX, "o-"), (NETKET, "s--"), (GEMM, "^:")):
            ax.plot(
                batches,
                [b / r.median_s[name] for b, r in zip(batches, points, strict=True)],
                style,
                label=name,
            )
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="batch size",
            ylabel="samples / s",
            title=f"RBM N=256 alpha=2, {dtype}",
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
