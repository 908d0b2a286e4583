"""Train-from-scratch evaluation of a found architecture (the NB201 final-training recipe),
and many cells of a space trained in one program (`train_cells`)."""

from jnas.train._cells import TrainedCells, train_cells
from jnas.train._train import TrainConfig, evaluate, train

__all__ = ["TrainConfig", "TrainedCells", "evaluate", "train", "train_cells"]
