"""Reading runs' results, by responsibility: :mod:`.tables` (a run's metric tables, checked against their
schema), :mod:`.checkpoints` (the synthesis' per-checkpoint table, from the registry's summaries),
:mod:`.runs` (which runs, their labels and identity), :mod:`.evaluation` (what their verdicts rest on) and :mod:`.settings` (runs that differ in their
parameters: a sweep's labels and tables). The names below are the ones pages and notebooks call."""
from .checkpoints import checkpoint_table, checkpoint_tables, noise_curves, noise_curves_of
from .evaluation import evaluation_data, evaluation_sentence
from .runs import parse_run_dirs, run_identity, run_labels, runs_read_sentence
from .settings import run_parameters, setting_labels, sweep_tables
from .tables import has_table, pick_distance, read_metric, step_tables

__all__ = ["checkpoint_table", "checkpoint_tables", "evaluation_data", "evaluation_sentence", "noise_curves",
           "noise_curves_of", "parse_run_dirs",
           "run_identity", "run_labels", "runs_read_sentence", "run_parameters", "setting_labels", "sweep_tables",
           "has_table",
           "pick_distance", "read_metric", "step_tables"]
