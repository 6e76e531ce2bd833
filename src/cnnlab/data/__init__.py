"""Datasets as in-memory uint8 tensors: IDX (MNIST, Fashion-MNIST), image folders, CSV lists, the sample.

Public API: :func:`load_data`, :class:`DataBundle`, :class:`ImageTensorDataset`, :class:`SkippedFile`;
transforms in :mod:`cnnlab.data.transforms`, the Lightning data module in :mod:`cnnlab.data.datamodule`.
"""

from .core import DataBundle, ImageTensorDataset, SkippedFile, stratified_split, stratified_take
from .datasets import DEFAULT_FOLDER_SIZE, list_datasets, load_data, register_dataset

__all__ = [
    "DEFAULT_FOLDER_SIZE",
    "DataBundle",
    "ImageTensorDataset",
    "SkippedFile",
    "list_datasets",
    "load_data",
    "register_dataset",
    "stratified_split",
    "stratified_take",
]
