"""Model fingerprints (a short content hash of the weights, the model's identity in cache keys and records) and sizes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import torch
from accelerate.utils import align_module_device


def model_fingerprint(model: torch.nn.Module) -> str:
    """A 16-hex-digit sha256 of the weights: every state_dict entry's name, shape, dtype and bytes.

    Entries are hashed in name order, so the fingerprint does not depend on
    module registration order, and tied weights count under each name. Weights
    spread over devices, or offloaded to the host or disk by accelerate, are
    read one module at a time: the fingerprint is the same wherever they are.
    """
    digest = hashlib.sha256()
    for name, tensor in _named_tensors(model):
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
        flat = tensor.to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]


def _named_tensors(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """Every state_dict entry in name order, an offloaded one (on the meta device) read from where it is kept."""
    state = model.state_dict(keep_vars=True)
    for name in sorted(state):
        tensor = state[name].detach()
        if tensor.device.type == "meta":
            module_name, _, attribute = name.rpartition(".")
            module = model.get_submodule(module_name)
            with align_module_device(module, torch.device("cpu")):
                tensor = getattr(module, attribute).detach()
        yield name, tensor


def parameter_count(model: torch.nn.Module) -> int:
    """The number of weights the model holds: every parameter element, tied parameters counted once."""
    return sum(p.numel() for p in model.parameters())
