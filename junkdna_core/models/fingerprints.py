"""Model fingerprints (a short content hash of the weights, the model's identity in cache keys and records) and sizes."""

from __future__ import annotations

import hashlib

import torch


def model_fingerprint(model: torch.nn.Module) -> str:
    """A 16-hex-digit sha256 of the weights: every state_dict entry's name, shape, dtype and bytes.

    Entries are hashed in name order, so the fingerprint does not depend on
    module registration order, and tied weights count under each name.
    """
    digest = hashlib.sha256()
    state = model.state_dict()
    for name in sorted(state):
        tensor = state[name].detach()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}\n".encode())
        flat = tensor.to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy().data)
    return digest.hexdigest()[:16]




def parameter_count(model: torch.nn.Module) -> int:
    """The number of weights the model holds: every parameter element, tied parameters counted once."""
    return sum(p.numel() for p in model.parameters())
