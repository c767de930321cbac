"""The data: the paper's three tasks and a user's own tables.

MNIST, CIFAR-10 and the simulated calorimeter behind one loader; CSV and npz tables for `ntkuq estimate`.
"""
from ntkuq.data import calorimeter
from ntkuq.data.images import (
                               CIFAR10_ARCHIVE_SHA256,
                               CIFAR10_DIR,
                               CIFAR10_URL,
                               CIFAR_RECORD,
                               FILES,
                               IMAGE_SIZE,
                               IMAGE_STANDARDIZE,
                               MNIST_URL,
                               N_CLASSES,
                               NAMES,
                               SHA256,
                               SPLITS,
                               STD_FLOOR,
                               data_file,
                               load_raw,
                               load_task,
                               parse_cifar_bin,
                               parse_idx_gz,
                               sha256,
                               verify,
)
from ntkuq.data.subsets import TaskData, nested_subsets, subset_sizes
from ntkuq.data.tasks import TASKS, coarse_calorimeter, load
from ntkuq.data.userdata import STANDARDIZE, Preprocessing, Table, check_pair, fit_preprocessing, read_table

__all__ = ["CIFAR10_ARCHIVE_SHA256", "CIFAR10_DIR", "CIFAR10_URL", "CIFAR_RECORD", "FILES", "IMAGE_SIZE",
           "IMAGE_STANDARDIZE", "MNIST_URL", "NAMES", "N_CLASSES", "Preprocessing", "SHA256", "SPLITS",
           "STANDARDIZE", "STD_FLOOR", "TASKS", "Table", "TaskData", "calorimeter", "check_pair",
           "coarse_calorimeter", "data_file", "fit_preprocessing", "load", "load_raw", "load_task",
           "nested_subsets", "parse_cifar_bin", "parse_idx_gz", "read_table", "sha256", "subset_sizes", "verify"]
