"""Train-from-scratch evaluation of a found architecture (the NB201 final-training recipe),
many cells of a space trained in one program (`train_cells`), and NASH hill climbing with
network morphisms (`nash`), and recurrent language models of recipe cells (`train_lm`)."""

from jnas.train._cells import TrainedCells, train_cells
from jnas.train._lm import LMRun, train_lm
from jnas.train._nash import nash, random_morphism
from jnas.train._train import TrainConfig, evaluate, train

__all__ = [
    "LMRun",
    "TrainConfig",
    "TrainedCells",
    "evaluate",
    "nash",
    "random_morphism",
    "train",
    "train_cells",
    "train_lm",
]
