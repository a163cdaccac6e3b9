"""The job spec, Flotilla's one contract (../shared/design/jobspec.md), as a pure package.

Imports nothing of Django, Celery or the engine: the web server, the workers, the engine,
the intent parser and HPO all depend on it, never the other way round.
"""

from .model import (
    ADAPTIVE_ALGORITHMS,
    BUILTIN_MODELS,
    DATASETS,
    DP_ALGORITHMS,
    SPEC_VERSION,
    Architecture,
    Attack,
    Compression,
    JobSpec,
    Partition,
    compatible_models,
    flatten,
    format_spec_errors,
    spec_diff,
    spec_errors,
    spec_field_names,
)

__all__ = [
    "ADAPTIVE_ALGORITHMS",
    "BUILTIN_MODELS",
    "DATASETS",
    "DP_ALGORITHMS",
    "SPEC_VERSION",
    "Architecture",
    "Attack",
    "Compression",
    "JobSpec",
    "Partition",
    "compatible_models",
    "flatten",
    "format_spec_errors",
    "spec_diff",
    "spec_errors",
    "spec_field_names",
]
