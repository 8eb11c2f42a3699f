"""Irregular time series: containers, preprocessing, padding and loaders, synthetic tasks.

numpy only at import; pandas is imported by the DataFrame/CSV/Parquet readers that need it.
"""

from . import synthetic as synthetic
from ._loader import IGNORE_INDEX as IGNORE_INDEX
from ._loader import Preprocessor as Preprocessor
from ._loader import SeriesDataset as SeriesDataset
from ._loader import ShardedSampler as ShardedSampler
from ._loader import collate_series as collate_series
from ._loader import forward_fill as forward_fill
from ._loader import make_loader as make_loader
from ._series import IrregularSeries as IrregularSeries
from ._series import compute_timespans as compute_timespans
from ._ucr import read_ts as read_ts
from ._ucr import ucr_splits as ucr_splits
from ._walker2d import walker2d_splits as walker2d_splits

__all__ = [
    "IGNORE_INDEX",
    "IrregularSeries",
    "Preprocessor",
    "SeriesDataset",
    "ShardedSampler",
    "collate_series",
    "compute_timespans",
    "forward_fill",
    "make_loader",
    "read_ts",
    "synthetic",
    "ucr_splits",
    "walker2d_splits",
]
