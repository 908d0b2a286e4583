"""NAS-Bench tables on the device, a simulated clock, and the benchmark protocol."""

from jnas.bench._early_stop import curve_stopping
from jnas.bench._load import (
    NB201_DATASETS,
    default_dir,
    load_latency,
    load_nats_sss,
    load_nb201,
)
from jnas.bench._nb101 import (
    encode_model_metrics,
    load_nb101,
    parse_model_metrics,
    read_tfrecord,
    write_tfrecord,
)
from jnas.bench._nb301 import load_nb301, parse_naslib_genotype
from jnas.bench._nbnlp import NBNLP_DATASET, load_nbnlp
from jnas.bench._official import (
    convert_official,
    load_table,
    read_pickle_bz2,
    save_table,
    write_official_fixture,
)
from jnas.bench._pareto import hypervolume, pareto_front, pareto_protocol, simulate_pareto
from jnas.bench._report import (
    NB201_REPORT,
    NBNLP_REPORT,
    arch_report,
    plot_regret,
    regret_curves,
    summarize,
    welch_test,
    write_jsonl,
)
from jnas.bench._simulate import (
    Objective,
    Simulation,
    Stops,
    max_steps_for,
    objective,
    simulate,
    simulate_batch,
    simulate_one,
    stop_decisions,
)
from jnas.bench._subset import SubsetArch, TableSubset, restrict, subset_space
from jnas.bench._table import Table, table_from_numpy

__all__ = [
    "NB201_DATASETS",
    "NB201_REPORT",
    "NBNLP_DATASET",
    "NBNLP_REPORT",
    "Objective",
    "Simulation",
    "Stops",
    "SubsetArch",
    "Table",
    "TableSubset",
    "arch_report",
    "convert_official",
    "curve_stopping",
    "default_dir",
    "encode_model_metrics",
    "hypervolume",
    "load_latency",
    "load_nats_sss",
    "load_nb101",
    "load_nb201",
    "load_nb301",
    "load_nbnlp",
    "load_table",
    "max_steps_for",
    "objective",
    "pareto_front",
    "pareto_protocol",
    "parse_model_metrics",
    "parse_naslib_genotype",
    "plot_regret",
    "read_pickle_bz2",
    "read_tfrecord",
    "regret_curves",
    "restrict",
    "save_table",
    "simulate",
    "simulate_batch",
    "simulate_one",
    "simulate_pareto",
    "stop_decisions",
    "subset_space",
    "summarize",
    "table_from_numpy",
    "welch_test",
    "write_jsonl",
    "write_official_fixture",
    "write_tfrecord",
]
