"""Rank-0 logic for distributed launches (torchrun, `accelerate launch`, mpirun): which process talks to MLflow."""

from __future__ import annotations

import os


def process_rank() -> int:
    """This process's global rank under a distributed launcher (torchrun, `accelerate launch`, mpirun); 0 otherwise."""
    for name in ("RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK", "PMI_RANK"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def is_main_process() -> bool:
    """Only rank 0 talks to MLflow: the other ranks of a distributed run train, and log nothing."""
    return process_rank() == 0


def world_size() -> int:
    """Processes training together (1 without a distributed launcher)."""
    for name in ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE", "PMI_SIZE"):
        if os.environ.get(name, "").isdigit():
            return max(1, int(os.environ[name]))
    return 1
