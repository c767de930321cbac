"""An ensemble's members spread over every visible device: one code path for one device, several, or several hosts.

The members axis (the leading axis of the stacked parameters and optimizer state) is sharded over a 1-D mesh of
all devices (`jax.devices()`, which after `jax.distributed.initialize()` spans every host); the data are
replicated.  The jitted training step then runs each device's members where they live, with no communication.
A chunk whose member count is not a multiple of the device count is padded with copies of its last member,
whose results are dropped.  With one device nothing is sharded and the trainer runs exactly as before.

Every process computes the same full arrays (initialization is deterministic in the seed), so a global array
is built from each process's own shards (`jax.make_array_from_callback`), and results come back to every
process (`multihost_utils.process_allgather` when there are several).
"""
from __future__ import annotations

from typing import Optional

import jax
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "members"
"""The mesh axis name of the ensemble's members."""


def member_mesh(devices: Optional[list] = None) -> Optional[Mesh]:
    """A 1-D mesh over the devices for the members axis, or None when there is only one device.

    Args:
        devices: the devices to use; None (default) for all of `jax.devices()` (every host's).

    Returns:
        The Mesh, or None for a single device (no sharding).
    """
    devices = list(jax.devices() if devices is None else devices)
    return Mesh(np.array(devices), (AXIS,)) if len(devices) > 1 else None


def padded_count(n: int, mesh: Optional[Mesh]) -> int:
    """The number of members to train so that every device holds as many: n rounded up to the device count.

    Args:
        n: the members of a chunk (>= 1).
        mesh: the members mesh, or None (one device).

    Returns:
        n itself without a mesh, else the smallest multiple of the device count >= n.
    """
    if mesh is None:
        return n
    d = mesh.devices.size
    return -(-n // d) * d


def _global(x, sharding: NamedSharding):
    """A global array of the host array x with this sharding (each process fills its own devices)."""
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def shard_members(tree, mesh: Optional[Mesh]):
    """Each leaf's leading (members) axis split over the mesh's devices; the tree unchanged without a mesh.

    Args:
        tree: a pytree of arrays with a leading members axis of length a multiple of the device count.
        mesh: the members mesh, or None.

    Returns:
        The pytree of sharded global arrays (or the input tree).
    """
    if mesh is None:
        return tree
    return jax.tree.map(lambda a: _global(a, NamedSharding(mesh, PartitionSpec(AXIS))), tree)


def replicate(x, mesh: Optional[Mesh]):
    """The array on every device of the mesh (the shared data); unchanged without a mesh.

    Args:
        x: an array.
        mesh: the members mesh, or None.

    Returns:
        The replicated global array (or x).
    """
    if mesh is None:
        return x
    return _global(x, NamedSharding(mesh, PartitionSpec()))


def to_host(x) -> np.ndarray:
    """A (possibly sharded, possibly multi-host) array as a full NumPy array on this process.

    Args:
        x: a jax array.

    Returns:
        The NumPy array with every member's values.
    """
    if jax.process_count() > 1 and not getattr(x, "is_fully_addressable", True):
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


__all__ = ["AXIS", "member_mesh", "padded_count", "replicate", "shard_members", "to_host"]
