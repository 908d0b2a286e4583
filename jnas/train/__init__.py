"""Train-from-scratch evaluation of a found architecture (the NB201 final-training recipe)."""

from jnas.train._train import TrainConfig, evaluate, train

__all__ = ["TrainConfig", "evaluate", "train"]
