"""The PRO preference adapter: config, targets and losses, model, training, save/load, inference."""

from preforch.adapter.config import AdapterConfig
from preforch.adapter.model import PreferenceAdapter
from preforch.adapter.targets import target_weights
from preforch.adapter.train import TrainResult, format_report, train_adapter

__all__ = ["AdapterConfig", "PreferenceAdapter", "TrainResult", "format_report", "target_weights", "train_adapter"]
