"""The library's names the pages use, in one place: pages import `fmnist_app` modules only, never
`fmnist_core` (whose import loads torch) directly."""
from fmnist_core import CLASS_NAMES, SpecError
from fmnist_core.compare import (METRIC_KIND, band, curves, factor_text, group_rows, in_study, published_value,
                                 run_metric, seed_groups, varying)
from fmnist_core.config import REFERENCE_RESULTS
from fmnist_core.evaluate import most_confused_pairs, normalized_confusion
from fmnist_core.latent import interpolate
from fmnist_core.preprocess import ImageInputError, preprocess, preprocess_bytes
from fmnist_core.presets import PRESETS, SCHEME_DESCRIPTIONS, SCHEMES

__all__ = ["CLASS_NAMES", "REFERENCE_RESULTS", "SCHEME_DESCRIPTIONS", "SCHEMES", "PRESETS", "ImageInputError",
           "SpecError", "most_confused_pairs", "normalized_confusion", "interpolate", "preprocess", "preprocess_bytes",
           "METRIC_KIND", "band", "curves", "factor_text", "group_rows", "in_study", "published_value", "run_metric",
           "seed_groups", "varying"]
