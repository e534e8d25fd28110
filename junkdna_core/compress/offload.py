"""Sequential onloading: calibrated compression of a model larger than its execution device.

The transformer blocks stay in their *storage* — the device they are on
(typically the CPU, with the execution device a GPU), or files in an offload
folder (each block held on the "meta" device in between) — and each one is
moved to the execution device only for its own turn: statistics, compression,
the pass that feeds the next block. Peak device memory is then about one block
plus the calibration activations, as in llm-compressor's sequential pipeline.
The result is the same as compressing the model in place on the device.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from junkdna_core.config.errors import ConfigError


def module_device(module: nn.Module) -> torch.device:
    """The device of ``module``'s first parameter that is not on "meta" (cpu when it has none)."""
    for p in module.parameters():
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


def _block_file(folder: Path, index: int) -> Path:
    return folder / f"block-{index:05d}.safetensors"


def _tensors(block: nn.Module) -> dict[str, torch.Tensor]:
    """Every parameter and buffer of ``block`` by name, non-persistent buffers included."""
    return {**dict(block.named_parameters()), **dict(block.named_buffers())}


def offload_block_to_disk(block: nn.Module, folder: Path, index: int) -> None:
    """Write ``block``'s parameters and buffers to ``folder`` and leave the block on the "meta" device."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().to("cpu").contiguous() for name, t in _tensors(block).items()}
    save_file(state, str(_block_file(folder, index)))
    block.to("meta")


@torch.no_grad()
def load_block_from_disk(block: nn.Module, folder: Path, index: int, device: torch.device | str) -> None:
    """Materialize ``block`` on ``device`` from its file in ``folder`` (written by :func:`offload_block_to_disk`)."""
    path = _block_file(folder, index)
    if not path.is_file():
        raise ConfigError(f"block {index} is on the meta device but {path} does not exist: nothing to load it from")
    stored = load_file(str(path), device=str(device))
    block.to_empty(device=device)
    tensors = _tensors(block)
    if set(stored) != set(tensors):
        raise ConfigError(f"{path} holds {sorted(set(stored) ^ set(tensors))[:3]}..., not the tensors of block {index}")
    for name, tensor in tensors.items():
        tensor.copy_(stored[name])


def offload_blocks_to_disk(blocks: nn.ModuleList, folder: str | Path) -> None:
    """Move every block to files in ``folder`` (one at a time, so peak memory grows by one block at most)."""
    for index, block in enumerate(blocks):
        offload_block_to_disk(block, Path(folder), index)


def load_blocks_from_disk(blocks: nn.ModuleList, folder: str | Path, device: torch.device | str = "cpu") -> None:
    """Bring every block back from ``folder`` onto ``device`` (the inverse of :func:`offload_blocks_to_disk`)."""
    for index, block in enumerate(blocks):
        load_block_from_disk(block, Path(folder), index, device)


class BlockOnloader:
    """Moves one block at a time between its storage and the execution device.

    ``folder`` None: each block is stored on the device it was on; with a
    folder, blocks are stored there as files (blocks still in memory are
    written there first). ``enabled`` False: every block already is on the
    execution device and nothing moves.
    """

    def __init__(
        self, blocks: nn.ModuleList, device: torch.device, *, enabled: bool, folder: str | Path | None = None
    ) -> None:
        self.blocks = blocks
        self.device = device
        self.enabled = enabled or folder is not None
        self.folder = None if folder is None else Path(folder)
        self._homes = [module_device(b) for b in blocks]

    def onload(self, index: int) -> nn.Module:
        """Block ``index`` on the execution device."""
        block = self.blocks[index]
        if not self.enabled:
            return block
        if self.folder is not None and _is_meta(block):
            load_block_from_disk(block, self.folder, index, self.device)
        else:
            block.to(self.device)
        return block

    def offload(self, index: int) -> None:
        """Block ``index`` back to its storage: its own device, or a file in the folder."""
        if not self.enabled:
            return
        block = self.blocks[index]
        if self.folder is not None:
            offload_block_to_disk(block, self.folder, index)
        else:
            block.to(self._homes[index])


def _is_meta(module: nn.Module) -> bool:
    return any(p.device.type == "meta" for p in module.parameters())


def needs_onloading(blocks: nn.ModuleList, device: torch.device) -> bool:
    """True when some block parameter is not on ``device`` (on another device, or on "meta" with its data on disk)."""
    return any(not _same_device(p.device, device) for p in blocks.parameters())


def _device_index(device: torch.device) -> int:
    if device.index is not None:
        return device.index
    return torch.cuda.current_device() if device.type == "cuda" else 0


def _same_device(a: torch.device, b: torch.device) -> bool:
    return a.type == b.type and _device_index(a) == _device_index(b)
